rule ingest:
    """Validate the raw files and write typed tables; raw data are only read."""
    input:
        raw_inputs(),
    output:
        **{t: f"{PROC}/{t}.parquet" for t in ["sites", "participants", "screening", "responses", "service_use", "fidelity"]},
        queries=f"{PROC}/ingest_queries.csv",
    params:
        cfg=config,
        raw_dir=RAW,
    log:
        f"{LOGS}/ingest.log",
    script:
        "../scripts/ingest.py"
