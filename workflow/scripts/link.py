from analysis.stages import logged, run_link

with logged(snakemake.log[0]):
    i, o = snakemake.input, snakemake.output
    run_link(snakemake.params.cfg, i.participants, i.responses, i.scores, list(i.queries),
             o.linked, o.queries)
