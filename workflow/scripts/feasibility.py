from analysis.stages import feasibility, logged
from analysis.stages.config_keys import from_params

with logged(snakemake.log[0]):
    cfg = from_params(snakemake.params)
    i = snakemake.input
    feasibility.run(cfg, i.sites, i.participants, i.screening, i.linked,
                    i.fidelity, dict(snakemake.output.items()), adverse_events=i.adverse_events,
                    collected=i.collected)
