from analysis.stages import logged, report
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    report.run_audience(from_params(snakemake.params), dict(snakemake.input.items()), dict(snakemake.output.items()),
                        audience=snakemake.wildcards.audience)
