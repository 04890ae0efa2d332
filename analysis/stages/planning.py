"""Planning stage: planning inputs from the pilot, the analytic sample size over a grid of
assumptions, and its figure (analysis.planning)."""

from __future__ import annotations

import pandas as pd

from analysis import planning
from analysis.ingest import read_collected
from analysis.io import write_bytes, write_table
from analysis.stages._common import log, read_linked


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    linked = read_linked(inputs["linked"])
    participants = pd.read_parquet(inputs["participants"])
    sites = pd.read_parquet(inputs["sites"])
    collected = read_collected(inputs["collected"]) if inputs.get("collected") else {}
    econ = pd.read_parquet(inputs["economics"]) if inputs.get("economics") else None
    table = planning.planning_inputs(linked, participants, sites, cfg, economics=econ,
                                     recruitment_window=collected.get("recruitment_window", True))
    for r in table.itertuples():
        log.info("planning input %s: %s (%s to %s) %s", r.parameter, r.estimate, r.ci_low, r.ci_high, r.method)
    sizes = planning.sample_size_table(table, cfg)
    pl = cfg["planning"]
    if cfg["design"]["type"] == "single_arm":
        log.info("planning: single-arm pilot; no sample size for a definitive trial is computed (it needs a "
                 "comparison group)")
    elif pl["target_difference"] is None:
        log.warning("planning: planning.target_difference is not set, so no sample size is computed")
    else:
        rec = sizes[sizes.recommended].iloc[0]
        log.info("planning: recommended %d participants to recruit (%s sites), power %.3f", rec.n_recruited_total,
                 rec.sites_total, rec.power)
    write_table(table, outputs["inputs"])
    write_table(sizes, outputs["sample_size"])
    if "figure" in outputs:
        if len(sizes):
            write_bytes(planning.sample_size_figure(table, sizes, cfg), outputs["figure"])
        else:
            write_bytes(planning.placeholder_png("No sample size: set planning.target_difference"), outputs["figure"])
