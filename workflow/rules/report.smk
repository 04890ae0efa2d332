rule report:
    """Self-contained HTML report (figures embedded, aggregate numbers only)."""
    input:
        feasibility=f"{TABLES}/feasibility.csv",
        effects=f"{TABLES}/effects.csv",
        descriptives=f"{TABLES}/descriptives.csv",
        queries=f"{REP}/data_queries.csv",
        trajectory=f"{FIGS}/trajectory.png",
        recruitment=f"{FIGS}/recruitment.png",
    output:
        html=report(REPORT, caption="../report/report.rst", category="Report"),
    params:
        cfg=config,
    log:
        f"{LOGS}/report.log",
    script:
        "../scripts/report.py"
