from analysis.stages import logged, power
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    power.run(from_params(snakemake.params), dict(snakemake.input.items()), dict(snakemake.output.items()),
              rule=snakemake.rule, wildcards=dict(snakemake.wildcards.items()))
