"""The demo's linked analysis table in a form fit for committing as an R reference dataset.

Participant IDs are replaced by neutral codes (p001, p002, ...) assigned in an order that
depends only on the data (site, arm, then each participant's values), never on the IDs
themselves: ingest may replace IDs by keyed-hash pseudonyms, and the comparison in
tests/test_outcomes.py must not care. Site fidelity (mean fidelity_score per intervention
site, empty for control sites) is added for the effect-modification reference.

    python tests/reference/demo_dataset.py data/processed/demo tests/reference/datasets/demo_linked.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

OUTCOMES = ["wemwbs_total", "ucla3_total", "eq5d5l_index", "rguk_total"]
COLUMNS = ["participant", "site_id", "arm", "client_group", "age", "sex", "timepoint", "month",
           "site_fidelity"] + OUTCOMES


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    return f"{v:.12g}" if isinstance(v, (float, np.floating)) else str(v)


def canonical(linked: pd.DataFrame, fidelity: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``linked`` with neutral participant codes and a data-determined row order."""
    d = linked.copy()
    tps = list(d.timepoint.cat.categories)
    d["timepoint"] = d.timepoint.astype(str)
    fid = fidelity.groupby("site_id").fidelity_score.mean()
    d["site_fidelity"] = d.site_id.map(fid).astype(float)
    keys = {}
    for pid, g in d.groupby("participant_id", sort=False):
        g = g.set_index("timepoint").reindex([str(t) for t in tps])
        first = g.iloc[0]
        sig = [first.site_id, first.arm, _fmt(first.client_group), _fmt(first.age), _fmt(first.sex)]
        sig += [_fmt(g.at[str(t), y]) for y in OUTCOMES for t in tps]
        keys[pid] = tuple(sig)
    order = sorted(keys, key=lambda p: keys[p])
    code = {pid: f"p{i:03d}" for i, pid in enumerate(order, 1)}
    d["participant"] = d.participant_id.map(code)
    d["_t"] = d.timepoint.map({str(t): i for i, t in enumerate(tps)})
    d = d.sort_values(["participant", "_t"]).reset_index(drop=True)
    out = d[COLUMNS].copy()
    out["age"] = out.age.astype(float)
    return out


if __name__ == "__main__":
    proc, dest = sys.argv[1], sys.argv[2]
    lk = pd.read_parquet(f"{proc}/analysis.parquet")
    fid = pd.read_parquet(f"{proc}/fidelity.parquet")
    canonical(lk, fid).to_csv(dest, index=False, float_format="%.17g")
