from analysis.stages import logged, score
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    i = snakemake.input
    score.run(cfg, i.responses, i.participants, dict(snakemake.output.items()))
