from analysis.stages import logged, run_report

with logged(snakemake.log[0]):
    i = snakemake.input
    run_report(snakemake.params.cfg, i.feasibility, i.effects, i.descriptives, i.queries,
               i.trajectory, i.recruitment, snakemake.output.html)
