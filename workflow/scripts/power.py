from analysis.stages import logged, power

with logged(snakemake.log[0]):
    power.run(snakemake.rule, snakemake.params.cfg, dict(snakemake.input.items()),
              dict(snakemake.output.items()), dict(snakemake.wildcards.items()))
