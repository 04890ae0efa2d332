from analysis.stages import logged, run_score

with logged(snakemake.log[0]):
    i = snakemake.input
    run_score(snakemake.params.cfg, i.responses, i.participants, dict(snakemake.output.items()))
