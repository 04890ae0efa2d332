REPORT_INPUTS.update(queries=f"{REP}/data_queries.csv")


rule link:
    """Link waves by participant: one row per participant x time point; exclusion counts; data queries."""
    input:
        participants=f"{PROC}/participants.parquet",
        responses=f"{PROC}/responses.parquet",
        scores=f"{PROC}/scores.parquet",
        queries=[f"{PROC}/ingest_queries.csv", f"{PROC}/scoring_queries.csv"],
        pseudonyms=f"{PROC}/pseudonyms.parquet",
        exclusions=f"{PROC}/exclusions.csv",
        manifest=f"{PROC}/raw_manifest.csv",
    output:
        linked=f"{PROC}/analysis.parquet",
        queries=f"{REP}/data_queries.csv",
        exclusions=f"{TABLES}/exclusions.csv",
    log:
        f"{LOGS}/link.log",
    conda:
        SOFTWARE_ENV
    params:
        **config_params("link"),
        key_fingerprint=key_fingerprint_param,
    script:
        "../scripts/link.py"
