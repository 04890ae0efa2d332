from analysis.stages import link, logged
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    i, o = snakemake.input, snakemake.output
    link.run(cfg, i.participants, i.responses, i.scores, list(i.queries),
             o.linked, o.queries, pseudonyms=i.pseudonyms, exclusions=i.exclusions,
             manifest=i.manifest, out_exclusions=o.exclusions,
             key_fingerprint=snakemake.params.key_fingerprint)
