from analysis.stages import economics, logged
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    economics.run(from_params(snakemake.params), dict(snakemake.input.items()), dict(snakemake.output.items()))
