"""Value-for-money stage of a single-arm study (``value_for_money.enabled``): the cost build-up,
cost per participant, cost per point of the uncontrolled before-after change and the WELLBY
valuation (analysis/value.py).  Only counts and aggregates are written: no participant ID."""

from __future__ import annotations

import pandas as pd

from analysis import value
from analysis.io import read_table, write_table
from analysis.stages._common import log, read_linked


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """``inputs``: effects (the outcome stage's table), linked, participants.  ``outputs``:
    buildup, per_participant, per_point, wellby (CSV tables)."""
    t = value.value_tables(cfg, pd.read_parquet(inputs["participants"]), read_linked(inputs["linked"]),
                           read_table(inputs["effects"]))
    for name in ("buildup", "per_participant", "per_point", "wellby"):
        write_table(t[name], outputs[name])
    pp = t["per_participant"].set_index("measure").cost_per_participant_gbp
    log.info("value for money: %d cost item(s), total GBP %.0f (%s prices); %s", len(t["buildup"]),
             t["buildup"].amount_gbp_analysis_year.sum(), cfg["value_for_money"]["price_year"],
             "; ".join(f"{k} GBP {v:.2f}" for k, v in pp.items()))
    for r in t["per_point"][t["per_point"].base == "enrolled"].itertuples():
        log.info("value for money: %s at %s: %s", r.outcome, r.timepoint, r.ratio_status)
