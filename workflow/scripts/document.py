from analysis.stages import logged, report

with logged(snakemake.log[0]):
    report.run_document(snakemake.input.html, snakemake.output.doc, snakemake.wildcards.fmt)
