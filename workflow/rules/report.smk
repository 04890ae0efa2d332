AUDIENCE_REPORTS = [f"{REP}/{a}/report.html" for a in config["report"]["audiences"]]
REPORT_DOCUMENTS = AUDIENCE_REPORTS + [
    html[: -len(".html")] + f".{fmt}" for html in [REPORT] + AUDIENCE_REPORTS for fmt in config["report"]["formats"]
]


rule report:
    """Provenance manifest, then the report notebook executed for the statistician: the executed
    notebook and the self-contained HTML report assembled from it."""
    input:
        **REPORT_INPUTS,
        raw=raw_inputs(),
        notebook=REPORT_NOTEBOOK,
    output:
        html=report(REPORT, caption="../report/report.rst", category="Report"),
        manifest=report(MANIFEST, caption="../report/manifest.rst", category="Report"),
        notebook=f"{REP}/report.ipynb",
    log:
        f"{LOGS}/report.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("report"),
        key_fingerprint=key_fingerprint_param,
    script:
        "../scripts/report.py"


rule audience_report:
    """Funder or ethics report (the report notebook executed for that audience): its own
    disclosure-controlled sections, no identifiers."""
    input:
        **REPORT_INPUTS,
        notebook=REPORT_NOTEBOOK,
        manifest=MANIFEST,
    output:
        html=report(f"{REP}/{{audience}}/report.html", caption="../report/audience_report.rst", category="Report"),
    log:
        f"{LOGS}/report_{{audience}}.log",
    wildcard_constraints:
        audience="funder|ethics",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("audience_report"),
    script:
        "../scripts/audience_report.py"


rule document:
    """PDF (WeasyPrint) or Word (pandoc) version of a report, rendered offline from its HTML."""
    input:
        html=f"{REP}/{{path}}report.html",
    output:
        doc=f"{REP}/{{path}}report.{{fmt}}",
    log:
        f"{LOGS}/document/{{path}}report_{{fmt}}.log",
    wildcard_constraints:
        path="(funder/|ethics/)?",
        fmt="pdf|docx",
    conda:
        SOFTWARE_ENV
    script:
        "../scripts/document.py"
