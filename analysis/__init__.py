"""Pathways: statistics for pilot and feasibility trials of community and social-care interventions.

Every statistical routine lives in this package as a pure function; the Snakemake workflow in
``workflow/`` only reads inputs, calls one function per stage and writes outputs.
"""

__version__ = "0.1.0"

# One month, in days, wherever the analysis turns months into days or back: recruitment windows and
# rates (feasibility, planning), the scheduled date of a visit (ingest's visit windows, follow-up due
# dates).  The synthetic-data generators keep their own month (analysis.simulate.SIM_DAYS_PER_MONTH):
# it made the committed example data sets.
DAYS_PER_MONTH = 365.25 / 12

# The vocabulary of the effects table (analysis.outcomes writes it; the figures and the report
# sections read it without importing the model code): the term of a single-arm study's estimates
# (change from baseline) and what a standardised difference is divided by.
CHANGE_TERM = "change from baseline"
BY_BASELINE_SD = "baseline SD"
