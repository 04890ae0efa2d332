from analysis.stages import link, logged

with logged(snakemake.log[0]):
    i, o = snakemake.input, snakemake.output
    link.run(snakemake.params.cfg, i.participants, i.responses, i.scores, list(i.queries),
             o.linked, o.queries)
