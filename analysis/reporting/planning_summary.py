"""Funder report: a one-page summary of the plan for the definitive trial (recommended sample
size with its assumptions, sites and recruitment duration, and how sensitive it is).

Design numbers (participants and sites to recruit) are not counts of people in the pilot; the
pilot's retention, the one input derived from a count of people, is withheld if its count is
small (disclosure control as elsewhere in the funder report)."""

from __future__ import annotations

import os

import pandas as pd

from analysis.planning import SINGLE_ARM_NEEDS
from analysis.reporting import audience as A
from analysis.reporting.common import fmt, read_table
from analysis.reporting.planning import no_recommendation, recommendation

TEMPLATE = "sections/planning_summary.html.j2"


def context(cfg: dict, inputs: dict[str, str]) -> dict | None:
    if not cfg.get("planning", {}).get("enabled") or "planning_inputs" not in inputs \
            or not os.path.exists(inputs["planning_inputs"]):
        return None
    dp = cfg["report"]["decimals"]
    design = cfg["design"]["type"]
    sizes = read_table(inputs["sample_size"], ("sd_basis", "icc_source", "retention_basis"))
    table = read_table(inputs["planning_inputs"], ("parameter", "label", "unit", "method", "note")).set_index("parameter")
    pol = A.policy(cfg)
    ret = None
    if "retention" in table.index and pd.notna(table.at["retention", "estimate"]):
        r = table.loc["retention"]
        n, k = float(r.n), round(float(r.estimate) * float(r.n))
        small = pol.is_small(k) or pol.is_small(n - k)
        ret = "withheld (small numbers)" if small else \
            f"{r.estimate:.0%} ({r.ci_low:.0%} to {r.ci_high:.0%})"
    rate = None
    if "recruitment_rate" in table.index and pd.notna(table.at["recruitment_rate", "estimate"]):
        r = table.loc["recruitment_rate"]
        rate = f"{fmt(r.estimate, dp)} {r.unit} ({fmt(r.ci_low, dp)} to {fmt(r.ci_high, dp)})"
    icc = None
    if design == "cluster":
        key = "icc_adjusted" if cfg["planning"]["ancova"] else "icc"
        if key in table.index and pd.notna(table.at[key, "estimate"]):
            r = table.loc[key]
            icc = dict(estimate=fmt(r.estimate, 3), ci=f"{r.ci_level:.0%} CI {fmt(r.ci_low, 3)} to {fmt(r.ci_high, 3)}")
    return dict(single_arm=design == "single_arm", needs=SINGLE_ARM_NEEDS,
                target_missing=design != "single_arm" and cfg["planning"]["target_difference"] is None,
                rec=recommendation(cfg, sizes, dp), no_rec=no_recommendation(cfg, table.reset_index(), sizes),
                retention=ret, rate=rate, icc=icc)
