from analysis.stages import ingest, logged
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    ingest.run(cfg, snakemake.params.raw_dir, dict(snakemake.output.items()))
