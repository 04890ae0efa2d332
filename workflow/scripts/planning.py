from analysis.stages import logged, planning

with logged(snakemake.log[0]):
    planning.run(snakemake.params.cfg, dict(snakemake.input.items()), dict(snakemake.output.items()))
