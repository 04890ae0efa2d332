from analysis.stages import logged, report
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    inputs = {k: v for k, v in snakemake.input.items() if k != "notebook"}
    report.run_audience(cfg, inputs, snakemake.wildcards.audience, snakemake.output.html,
                        snakemake.input.notebook)
