"""Pathways: statistics for pilot and feasibility trials of community and social-care interventions.

Every statistical routine lives in this package as a pure function; the Snakemake workflow in
``workflow/`` only reads inputs, calls one function per stage and writes outputs.
"""

__version__ = "0.1.0"
