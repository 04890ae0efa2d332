from analysis.stages import logged, report

with logged(snakemake.log[0]):
    report.run_audience(snakemake.params.cfg, dict(snakemake.input.items()),
                        snakemake.wildcards.audience, snakemake.output.html)
