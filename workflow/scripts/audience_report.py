from analysis.stages import logged, report

with logged(snakemake.log[0]):
    inputs = {k: v for k, v in snakemake.input.items() if k != "notebook"}
    report.run_audience(snakemake.params.cfg, inputs, snakemake.wildcards.audience, snakemake.output.html,
                        snakemake.input.notebook)
