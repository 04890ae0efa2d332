from analysis.stages import ingest, logged
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    ingest.run(from_params(snakemake.params), dict(snakemake.input.items()), dict(snakemake.output.items()))
