rule ingest:
    """Hash and validate the raw files, pseudonymise IDs, write typed tables; raw data are only read."""
    input:
        raw_inputs(),
        [f"{RAW}/{config['data']['redcap']['dictionary']}"] if config["data"]["redcap"].get("dictionary") else [],
    output:
        **{
            t: f"{PROC}/{t}.parquet"
            for t in ["sites", "participants", "screening", "responses", "service_use", "fidelity", "adverse_events"]
        },
        queries=f"{PROC}/ingest_queries.csv",
        exclusions=f"{PROC}/exclusions.csv",
        collected=f"{PROC}/collected.csv",
        manifest=f"{PROC}/raw_manifest.csv",
        pseudonyms=f"{PROC}/pseudonyms.parquet",
    log:
        f"{LOGS}/ingest.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("ingest"),
        key_fingerprint=key_fingerprint_param,
    script:
        "../scripts/ingest.py"
