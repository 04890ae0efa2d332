# The registered analysis plan (analysis/sap.py, docs/sap.md).  common.smk compared the config
# with the SAP lock next to it (SAP_STATUS; an undeclared difference stopped the run there).  With
# a lock, every run writes its status and deviations (tables/deviations.csv, sap.json) for the
# reports and the manifest.
from analysis.sap import find_lock, set_output_label

# An exploratory run labels every table and figure it writes (analysis.io.write_table,
# analysis.figures): the variable is inherited by every job's script.
set_output_label(REP if OUTPUT_LABEL else None)

if SAP_STATUS is not None:
    REPORT_INPUTS.update(sap=f"{REP}/sap.json", deviations=f"{TABLES}/deviations.csv")

    rule sap:
        """The run against the registered analysis plan: its status and every deviation."""
        input:
            lock=str(find_lock(workflow.configfiles)),
        output:
            status=f"{REP}/sap.json",
            deviations=report(f"{TABLES}/deviations.csv", caption="../report/deviations.rst", category="Analysis plan"),
        log:
            f"{LOGS}/sap.log",
        conda:
            SOFTWARE_ENV
        params:
            status=SAP_STATUS,
        script:
            "../scripts/sap.py"
