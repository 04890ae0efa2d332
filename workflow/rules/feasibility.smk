REPORT_INPUTS.update(
    feasibility=f"{TABLES}/feasibility.csv", recruitment=f"{FIGS}/recruitment.png"
)


rule feasibility:
    """Recruitment, consent, retention, completion and receipt with 95% CIs."""
    input:
        sites=f"{PROC}/sites.parquet",
        participants=f"{PROC}/participants.parquet",
        screening=f"{PROC}/screening.parquet",
        linked=f"{PROC}/analysis.parquet",
    output:
        feasibility=report(f"{TABLES}/feasibility.csv", caption="../report/feasibility.rst", category="Feasibility"),
        by_site=f"{TABLES}/recruitment_by_site.csv",
        flow=f"{TABLES}/flow_counts.csv",
        figure=report(f"{FIGS}/recruitment.png", caption="../report/recruitment.rst", category="Feasibility"),
    params:
        cfg=config,
    log:
        f"{LOGS}/feasibility.log",
    script:
        "../scripts/feasibility.py"
