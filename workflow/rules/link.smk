REPORT_INPUTS.update(queries=f"{REP}/data_queries.csv")


rule link:
    """Link waves by participant: one row per participant x time point; collect data queries."""
    input:
        participants=f"{PROC}/participants.parquet",
        responses=f"{PROC}/responses.parquet",
        scores=f"{PROC}/scores.parquet",
        queries=[f"{PROC}/ingest_queries.csv", f"{PROC}/scoring_queries.csv"],
    output:
        linked=f"{PROC}/analysis.parquet",
        queries=f"{REP}/data_queries.csv",
    params:
        cfg=config,
    log:
        f"{LOGS}/link.log",
    script:
        "../scripts/link.py"
