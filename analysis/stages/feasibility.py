"""Feasibility stage: feasibility table, recruitment by site, flow counts, recruitment figure."""

from __future__ import annotations

import pandas as pd

from analysis import feasibility as feas
from analysis import figures
from analysis.io import write_bytes, write_table
from analysis.stages._common import read_linked


def run(cfg: dict, sites: str, participants: str, screening: str, linked: str,
        out: dict[str, str]) -> None:
    s, p, sc, lk = (pd.read_parquet(sites), pd.read_parquet(participants),
                    pd.read_parquet(screening), read_linked(linked))
    d, f = cfg["design"], cfg["feasibility"]
    arms = [d["control_arm"], d["intervention_arm"]]
    table = feas.feasibility_table(s, p, sc, lk, primary_outcome=cfg["primary"]["outcome"],
                                   arms=arms, intervention_arm=d["intervention_arm"],
                                   ci_method=f["ci_method"], level=f["confidence_level"],
                                   recruitment_target=f["recruitment_target"])
    write_table(table, out["feasibility"])
    write_table(feas.recruitment_by_site(s, p, f["confidence_level"]), out["by_site"])
    write_table(feas.flow_counts(sc, p, lk, arms), out["flow"])
    write_bytes(figures.recruitment_png(p, f["recruitment_target"]), out["figure"])
