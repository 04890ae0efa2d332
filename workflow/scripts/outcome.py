from analysis.stages import logged, outcome

with logged(snakemake.log[0]):
    outcome.run(snakemake.params.cfg, snakemake.input.linked, dict(snakemake.output.items()),
                fidelity=snakemake.input.fidelity, sites=snakemake.input.sites)
