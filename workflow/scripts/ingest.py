from analysis.stages import ingest, logged

with logged(snakemake.log[0]):
    ingest.run(snakemake.params.cfg, snakemake.params.raw_dir, dict(snakemake.output.items()))
