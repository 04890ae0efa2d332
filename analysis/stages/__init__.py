"""One module per pipeline stage: read the stage's inputs, call the library, write outputs.

The Snakemake scripts in ``workflow/scripts/`` only unpack ``snakemake.input/params/output``
and call one ``run`` function from here, so every stage can also be run (and tested) without
Snakemake.  ``logged`` routes a stage's log records and warnings to the rule's log file.
"""

from analysis.stages._common import logged  # noqa: F401
