from analysis.stages import link, logged

with logged(snakemake.log[0]):
    i, o = snakemake.input, snakemake.output
    link.run(snakemake.params.cfg, i.participants, i.responses, i.scores, list(i.queries),
             o.linked, o.queries, pseudonyms=i.pseudonyms, exclusions=i.exclusions,
             manifest=i.manifest, out_exclusions=o.exclusions,
             key_fingerprint=snakemake.params.key_fingerprint)
