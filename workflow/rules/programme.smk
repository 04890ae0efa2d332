# Community programme monitoring (design.type programme, docs/designs.md): aggregate counts per
# neighbourhood and quarter against targets, a before/after resident survey valued in WELLBYs,
# value for money and a funder-ready summary page.  The participant-level rules (ingest, score,
# link, feasibility, outcome, economics, planning, report) are not included for this design
# (the Snakefile), so no individual-level model runs on aggregate data.
PROGRAMME_OUTPUTS = dict(
    cumulative=f"{TABLES}/monitoring_cumulative.csv",
    targets=f"{TABLES}/monitoring_targets.csv",
    by_neighbourhood=f"{TABLES}/monitoring_by_neighbourhood.csv",
    funding=f"{TABLES}/funding_by_source.csv",
    trend_data=f"{FIGS}/monitoring_trend_data.csv",
    trend_png=f"{FIGS}/monitoring_trend.png",
    trend_svg=f"{FIGS}/monitoring_trend.svg",
    survey_change=f"{TABLES}/survey_change.csv",
    wellby=f"{TABLES}/wellby.csv",
    costs=f"{TABLES}/cost_buildup.csv",
    vfm=f"{TABLES}/value_for_money.csv",
    summary=f"{REP}/summary.html",
)


rule programme_ingest:
    """Hash and validate the monitoring, funding and survey tables; write them typed (survey
    respondent IDs replaced by codes); raw data are only read."""
    input:
        programme_raw_inputs(),
    output:
        monitoring=f"{PROC}/monitoring.parquet",
        funding=f"{PROC}/funding.parquet",
        survey=f"{PROC}/survey.parquet",
        manifest=f"{PROC}/raw_manifest.csv",
    log:
        f"{LOGS}/programme_ingest.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("programme_ingest"),
    script:
        "../scripts/programme_ingest.py"


rule programme:
    """Cumulative totals against targets (RAG), trend by neighbourhood, funding by source, survey
    change and its WELLBY value, cost build-up, value for money and the summary page."""
    input:
        monitoring=f"{PROC}/monitoring.parquet",
        funding=f"{PROC}/funding.parquet",
        survey=f"{PROC}/survey.parquet",
    output:
        **PROGRAMME_OUTPUTS,
    log:
        f"{LOGS}/programme.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("programme"),
    script:
        "../scripts/programme.py"
