from analysis.stages import logged, run_feasibility

with logged(snakemake.log[0]):
    i = snakemake.input
    run_feasibility(snakemake.params.cfg, i.sites, i.participants, i.screening, i.linked,
                    dict(snakemake.output.items()))
