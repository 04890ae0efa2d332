from analysis.stages import logged, run_ingest

with logged(snakemake.log[0]):
    run_ingest(snakemake.params.cfg, snakemake.params.raw_dir, dict(snakemake.output.items()))
