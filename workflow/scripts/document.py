from analysis.stages import logged, report

with logged(snakemake.log[0]):
    report.run_document({}, dict(snakemake.input.items()), dict(snakemake.output.items()), fmt=snakemake.wildcards.fmt)
