from analysis.stages import logged, value
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    value.run(from_params(snakemake.params), dict(snakemake.input.items()), dict(snakemake.output.items()))
