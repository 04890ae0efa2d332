from analysis.stages import economics, logged
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    economics.run(cfg, dict(snakemake.input.items()), dict(snakemake.output.items()))
