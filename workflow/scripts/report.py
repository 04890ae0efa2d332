from analysis.stages import logged, report
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    i, o = snakemake.input, snakemake.output
    inputs = {k: v for k, v in i.items() if k not in ("raw", "notebook")}
    report.run(cfg, inputs, list(i.raw), snakemake.params.report_dir, o.html, o.manifest,
               i.notebook, o.notebook, key_fingerprint=snakemake.params.key_fingerprint)
