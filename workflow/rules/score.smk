REPORT_INPUTS.update(scoring_summary=f"{TABLES}/scoring_summary.csv", reliability=f"{TABLES}/reliability.csv")


rule score:
    """Score every configured instrument with the instrument library; reliability per time point."""
    input:
        responses=f"{PROC}/responses.parquet",
        participants=f"{PROC}/participants.parquet",
    output:
        scores=f"{PROC}/scores.parquet",
        queries=f"{PROC}/scoring_queries.csv",
        summary=report(f"{TABLES}/scoring_summary.csv", caption="../report/scoring_summary.rst", category="Scoring"),
        reliability=report(f"{TABLES}/reliability.csv", caption="../report/reliability.rst", category="Scoring"),
    log:
        f"{LOGS}/score.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("score"),
    script:
        "../scripts/score.py"
