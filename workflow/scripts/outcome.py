from analysis.stages import logged, run_outcome

with logged(snakemake.log[0]):
    run_outcome(snakemake.params.cfg, snakemake.input.linked, dict(snakemake.output.items()))
