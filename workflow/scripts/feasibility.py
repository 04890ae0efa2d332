from analysis.stages import feasibility, logged

with logged(snakemake.log[0]):
    i = snakemake.input
    feasibility.run(snakemake.params.cfg, i.sites, i.participants, i.screening, i.linked,
                    i.fidelity, dict(snakemake.output.items()), adverse_events=i.adverse_events,
                    collected=i.collected)
