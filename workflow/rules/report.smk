rule report:
    """Provenance manifest and the self-contained HTML report (aggregate numbers only)."""
    input:
        **REPORT_INPUTS,
        raw=raw_inputs(),
    output:
        html=report(REPORT, caption="../report/report.rst", category="Report"),
        manifest=report(MANIFEST, caption="../report/manifest.rst", category="Report"),
    params:
        cfg=config,
        report_dir=REP,
    log:
        f"{LOGS}/report.log",
    script:
        "../scripts/report.py"
