rule report:
    """Self-contained HTML report (figures embedded, aggregate numbers only)."""
    input:
        **REPORT_INPUTS,
    output:
        html=report(REPORT, caption="../report/report.rst", category="Report"),
    params:
        cfg=config,
    log:
        f"{LOGS}/report.log",
    script:
        "../scripts/report.py"
