from analysis.stages import logged, sap

with logged(snakemake.log[0]):
    sap.run({}, dict(snakemake.input.items()), dict(snakemake.output.items()), status=dict(snakemake.params.status))
