from analysis.stages import logged, report

with logged(snakemake.log[0]):
    report.run(snakemake.params.cfg, dict(snakemake.input.items()), snakemake.output.html)
