"""One module per pipeline stage: read the stage's inputs, call the library, write outputs.

Every stage has one signature, ``run(cfg, inputs, outputs, **extra)``: ``cfg`` is the config
the rule passes (only the keys the stage reads: :mod:`analysis.stages.config_keys`), ``inputs``
and ``outputs`` map the rule's input and output names to paths (a list of paths where the rule
names a list), and a rule's other values are keyword arguments named as the rule's parameter or
wildcard (``key_fingerprint`` for link and report, ``raw_dir`` for ingest, ``rule`` and
``wildcards`` for power, ``audience`` and ``fmt`` for the report documents, ``status`` for sap).
The report stage's module has three such functions: ``run`` (the statistician's report and the
manifest), ``run_audience`` and ``run_document``.  A programme design (``design.type:
programme``) runs only ``programme_ingest`` and ``programme`` (workflow/rules/programme.smk).

The Snakemake scripts in ``workflow/scripts/`` only unpack ``snakemake.input/params/output``
and call one of them, so every stage can also be run (and tested) without Snakemake
(tests/stage_runner.py).  ``logged`` routes a stage's log records and warnings to the rule's
log file.
"""

from analysis.stages._common import logged  # noqa: F401
