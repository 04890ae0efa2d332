from analysis.stages import logged, report

with logged(snakemake.log[0]):
    i, o = snakemake.input, snakemake.output
    inputs = {k: v for k, v in i.items() if k not in ("raw", "notebook")}
    report.run(snakemake.params.cfg, inputs, list(i.raw), snakemake.params.report_dir, o.html, o.manifest,
               i.notebook, o.notebook, key_fingerprint=snakemake.params.key_fingerprint)
