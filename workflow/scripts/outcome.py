from analysis.stages import logged, outcome
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    outcome.run(cfg, snakemake.input.linked, dict(snakemake.output.items()),
                fidelity=snakemake.input.fidelity, sites=snakemake.input.sites)
