# Pathways: one trial = one config file.
#   snakemake --cores 2                                  # the embedded demo trial
#   snakemake --cores 2 --configfile path/to/trial.yaml  # any other trial
# A --configfile on the command line replaces the demo config entirely (it is not merged into
# it), so keys a trial leaves out take the schema defaults, never the demo's values.
from snakemake.utils import min_version

min_version("9.27")  # the pinned Snakemake (pyproject.toml)

if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


if config["design"]["type"] == "programme":

    # aggregate programme monitoring: its own rules only, no participant-level analysis
    include: "workflow/rules/programme.smk"

    rule all:
        input:
            PROGRAMME_OUTPUTS.values(),

else:

    include: "workflow/rules/sap.smk"
    include: "workflow/rules/ingest.smk"
    include: "workflow/rules/score.smk"
    include: "workflow/rules/link.smk"
    include: "workflow/rules/feasibility.smk"
    include: "workflow/rules/outcome.smk"
    include: "workflow/rules/economics.smk"
    include: "workflow/rules/value.smk"
    include: "workflow/rules/planning.smk"
    include: "workflow/rules/report.smk"

    rule all:
        input:
            REPORT,
            MANIFEST,
            REPORT_DOCUMENTS,


# A run that fails half way removes what it wrote (processed data, tables, figures, reports),
# so no output of this run is left beside outputs of earlier runs; the log files stay.
onerror:
    from analysis.io import remove_outputs_since

    _gone = remove_outputs_since([PROC, REP], RUN_STARTED)
    print(
        f"pathways: the run failed; removed the {len(_gone)} output file(s) it had written "
        f"under {PROC}/ and {REP}/ (logs kept in {LOGS}/)"
    )
