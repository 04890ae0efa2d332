from analysis.stages import economics, logged

with logged(snakemake.log[0]):
    economics.run(snakemake.params.cfg, dict(snakemake.input.items()), dict(snakemake.output.items()))
