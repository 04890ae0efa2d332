from analysis.stages import logged, report
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    report.run(from_params(snakemake.params), dict(snakemake.input.items()), dict(snakemake.output.items()),
               key_fingerprint=snakemake.params.key_fingerprint)
