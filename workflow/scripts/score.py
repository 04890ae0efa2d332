from analysis.stages import logged, score

with logged(snakemake.log[0]):
    i = snakemake.input
    score.run(snakemake.params.cfg, i.responses, i.participants, dict(snakemake.output.items()))
