"""Outcome stage: descriptives, the primary ANCOVA at each follow-up, trajectory figure."""

from __future__ import annotations

from analysis import figures, outcomes
from analysis.config import primary_timepoint
from analysis.io import write_bytes, write_table
from analysis.stages._common import log, read_linked


def run(cfg: dict, linked: str, out: dict[str, str]) -> None:
    lk = read_linked(linked)
    y = cfg["primary"]["outcome"]
    if y not in lk:
        raise KeyError(f"config key primary.outcome: {y!r} is not a scored outcome; "
                       f"available: {sorted(c for c in lk.columns if not c.endswith('_bl'))}")
    desc = outcomes.describe(lk, y)
    eff = outcomes.ancova_effects(lk, y, intervention_arm=cfg["design"]["intervention_arm"],
                                  clustered=cfg["design"]["clustered"],
                                  primary_timepoint=primary_timepoint(cfg),
                                  covariates=cfg["primary"]["covariates"])
    for w in eff.warnings[eff.warnings != ""]:
        log.warning("model: %s", w)
    write_table(desc, out["descriptives"])
    write_table(eff, out["effects"])
    write_bytes(figures.trajectory_png(desc, cfg["design"]["arm_labels"], y), out["figure"])
