"""Report section: appendix of data queries (counts by rule; the full log stays a CSV)."""

from __future__ import annotations

import re

import pandas as pd

from analysis.io import read_table

TEMPLATE = "sections/appendix.html.j2"


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    q = read_table(inputs["queries"], dtype=str, keep_default_na=False)
    # group record-level rules that differ only by item number ("item wemwbs_3 missing")
    rule = q.rule.str.replace(r"\b([a-z0-9]+)_\d+\b", r"\1_k", regex=True) if len(q) else q.rule
    counts = (pd.DataFrame({"rule": rule, "severity": q.severity}).value_counts()
              .rename("n").reset_index().sort_values(["severity", "n", "rule"], ascending=[True, False, True]))
    return dict(trial_id=cfg["trial_id"], n_queries=len(q), queries=counts.to_dict("records"),
                n_errors=int((q.severity == "error").sum()))
