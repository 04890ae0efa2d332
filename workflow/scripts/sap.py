from analysis.stages import logged, sap

with logged(snakemake.log[0]):
    sap.run(dict(snakemake.params.status), snakemake.output.status, snakemake.output.deviations)
