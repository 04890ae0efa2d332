"""Helpers for the funder and ethics reports: disclosure-controlled tables.

Every count shown in these reports goes through :mod:`analysis.disclosure`; count cells carry
``class="count"`` so the output scan in the tests can find and check every one of them.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.disclosure import SUPPRESSED, Policy, suppress_table


def policy(cfg: dict) -> Policy:
    d = cfg["report"]["disclosure"]
    return Policy(threshold=int(d["threshold"]), suppress_zero=bool(d["suppress_zero"]))


def show_count(x) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return str(int(round(float(x))))


def show_value(x, dp: int, scale: float = 1.0, suffix: str = "") -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{float(x) * scale:.{dp}f}{suffix}"


def is_about_sites(t: pd.DataFrame) -> pd.Series:
    """True for feasibility rows that count sites (organisations), not people."""
    return t["indicator"].astype(str).str.contains("fidelity") | \
        t.get("denominator_of", pd.Series("", index=t.index)).astype(str).str.contains("sites")


def suppressed_feasibility(table: pd.DataFrame, cfg: dict, about_sites: pd.Series | None = None) -> pd.DataFrame:
    """Feasibility proportions with small numerators (and what they imply) suppressed.

    Rates per site-month are counts of people over exposure and are treated like proportions;
    the denominators of proportions are counts of people and are checked too.  Indicators
    about sites (fidelity: sites meeting the threshold / sites) count organisations, not
    people, and are shown as they are.
    """
    pol = policy(cfg)
    t = table.copy()
    t["arm"] = t["arm"].fillna("all")
    t["timepoint"] = t["timepoint"].fillna("")
    about_sites = is_about_sites(t) if about_sites is None else about_sites.reindex(t.index).astype(bool)
    people_rows = t[~about_sites]
    shown, _ = suppress_table(people_rows, "numerator", ["estimate", "ci_low", "ci_high"],
                              ["indicator", "timepoint"], part_col="arm", total_label="all", policy=pol)
    out = t.astype({c: object for c in ("numerator", "estimate", "ci_low", "ci_high")})
    out.loc[shown.index, ["numerator", "estimate", "ci_low", "ci_high"]] = \
        shown[["numerator", "estimate", "ci_low", "ci_high"]]
    people = (out["unit"] == "proportion") & ~about_sites
    small_den = people & t["denominator"].map(pol.is_small)
    out["denominator"] = out["denominator"].astype(object)
    out.loc[small_den, "denominator"] = pol.label
    for c in ("numerator", "estimate", "ci_low", "ci_high"):
        out[c] = out[c].astype(object)
        out.loc[small_den, c] = SUPPRESSED if c != "numerator" else pol.label
    return out


def suppressed_flow(flow: pd.DataFrame, cfg: dict, declared_reasons: set[str]) -> pd.DataFrame:
    """Trial-level flow counts (all sites) with reasons outside the declared lists pooled as
    'other (not itemised)', then primary and secondary suppression within each stage."""
    f = flow[flow.site_id.astype(str) == "all"].copy()
    f["reason"] = f["reason"].fillna("").astype(str)
    f["timepoint"] = f["timepoint"].fillna("").astype(str)
    f["measure"] = f["measure"].fillna("").astype(str)
    undeclared = (f.reason != "") & ~f.reason.isin(declared_reasons)
    f.loc[undeclared, "reason"] = "other (not itemised)"
    f = f.groupby(["stage", "arm", "timepoint", "measure", "reason"], sort=False, as_index=False)["n"].sum()
    out, _ = suppress_table(f, "n", [], ["stage", "arm", "timepoint", "measure"], part_col="reason",
                            total_label="", policy=policy(cfg), extra_groups=flow_identities(f))
    return out


def flow_identities(f: pd.DataFrame) -> list[tuple[object, list]]:
    """The accounting identities of the flow, so that no suppressed box can be recovered by
    subtraction: screened = eligible + not eligible; eligible = consented + declined (per arm
    and overall); allocated = assessed + lost + withdrawn at every time point (per arm)."""
    top = f[(f.reason == "") & (f.measure == "")]
    key = {(r.stage, r.arm, r.timepoint): i for i, r in top.iterrows()}
    groups = []
    for arm in top.arm.unique():
        for total, parts in (("screened", ("eligible", "not_eligible")), ("eligible", ("consented", "declined"))):
            if (total, arm, "") in key:
                groups.append((key[(total, arm, "")], [key[(p, arm, "")] for p in parts if (p, arm, "") in key]))
        for tp in top[top.stage == "assessed"].timepoint.unique():
            if ("allocated", arm, "") in key:
                groups.append((key[("allocated", arm, "")],
                               [key[(s, arm, tp)] for s in ("assessed", "lost", "withdrawn") if (s, arm, tp) in key]))
    return groups
