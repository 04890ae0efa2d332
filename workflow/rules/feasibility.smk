REPORT_INPUTS.update(
    feasibility=f"{TABLES}/feasibility.csv",
    recruitment=f"{FIGS}/recruitment.png",
    progression=f"{TABLES}/progression.csv",
    table1=f"{TABLES}/table1.csv",
    consort=f"{FIGS}/consort.png",
    retention=f"{FIGS}/retention_completion.png",
    safety=f"{TABLES}/safety.csv",
    flow=f"{TABLES}/flow_counts.csv",
)


rule feasibility:
    """Feasibility indicators with CIs, progression criteria, CONSORT flow, Table 1 and figures."""
    input:
        sites=f"{PROC}/sites.parquet",
        participants=f"{PROC}/participants.parquet",
        screening=f"{PROC}/screening.parquet",
        linked=f"{PROC}/analysis.parquet",
        fidelity=f"{PROC}/fidelity.parquet",
        adverse_events=f"{PROC}/adverse_events.parquet",
        collected=f"{PROC}/collected.csv",
    output:
        feasibility=report(f"{TABLES}/feasibility.csv", caption="../report/feasibility.rst", category="Feasibility"),
        progression=report(
            f"{TABLES}/progression.csv", caption="../report/feasibility_progression.rst", category="Feasibility"
        ),
        by_site=f"{TABLES}/recruitment_by_site.csv",
        safety=report(f"{TABLES}/safety.csv", caption="../report/safety.rst", category="Feasibility"),
        flow=f"{TABLES}/flow_counts.csv",
        table1=report(f"{TABLES}/table1.csv", caption="../report/table1.rst", category="Feasibility"),
        consort_svg=report(f"{FIGS}/consort.svg", caption="../report/consort.rst", category="Feasibility"),
        consort_png=f"{FIGS}/consort.png",
        figure=report(
            f"{FIGS}/recruitment.png", caption="../report/feasibility_recruitment.rst", category="Feasibility"
        ),
        retention=report(
            f"{FIGS}/retention_completion.png", caption="../report/feasibility_retention.rst", category="Feasibility"
        ),
    log:
        f"{LOGS}/feasibility.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("feasibility"),
    script:
        "../scripts/feasibility.py"
