"""Funder report: the progression decision, key feasibility estimates, the CONSORT flow, effect
estimates with CIs at the configured level (no p-values) and the economic summary.  Every count
comes from the release shared with the ethics report (:mod:`analysis.reporting.audience`); no
identifiers, pseudonyms or free text are read."""

from __future__ import annotations

import re

import pandas as pd

from analysis.config import allocated_to, score_directions, score_labels
from analysis.disclosure import SUPPRESSED
from analysis.feasibility import NOT_COLLECTED
from analysis.reporting import audience as A
from analysis.reporting import flow as F
from analysis.reporting import propensity as propensity_section
from analysis.reporting.common import level_label, money, png_data_uri, read_table, split_notes
from analysis.reporting.feasibility import label as indicator_label

TEMPLATE = "sections/funder.html.j2"
DECISIONS = {"GREEN": "Go: proceed to the definitive trial",
             "AMBER": "Proceed with amendments to address the amber criteria",
             "RED": "Stop, or reconsider the design before proceeding"}


def _decision(bands: list[str]) -> str | None:
    bands = [b for b in bands if b in DECISIONS]
    if not bands:
        return None
    worst = "RED" if "RED" in bands else "AMBER" if "AMBER" in bands else "GREEN"
    return f"{worst}: {DECISIONS[worst]}"


def _scale(unit: str) -> tuple[float, str]:
    return (100.0, "%") if unit == "proportion" else (1.0, "")


def _value(x, unit: str, dp: int) -> str:
    scale, suffix = _scale(unit)
    return A.show_value(x, dp, scale, suffix)


def _ci(lo, hi, unit: str, dp: int) -> str:
    if lo is None or (isinstance(lo, float) and pd.isna(lo)):
        return "–"
    return f"{_value(lo, unit, dp)} to {_value(hi, unit, dp)}"


def _rule(r, unit: str, dp: int) -> str:
    """GREEN/RED thresholds on the estimate's own scale (percent for proportions), the right way
    round for the criterion's direction."""
    g, red = _value(r.green, unit, dp), _value(r.red, unit, dp)
    return f"GREEN ≥ {g}, RED < {red}" if r.direction == "higher" else f"GREEN ≤ {g}, RED > {red}"


def _counts(counts: A.Counts, num, den, denominator, unit: str):
    """'n / N' as released (a rate's denominator is exposure, shown as a number)."""
    from markupsafe import Markup
    if den is not None:
        right = counts.cell(den)
    else:
        right = A.show_count(denominator) if float(denominator).is_integer() else A.show_value(denominator, 1)
    return Markup("{} / {}").format(counts.cell(num), right)


def _estimate(counts, r, unit, dp, *keys) -> tuple[str, str]:
    if counts.withheld(*keys):
        return SUPPRESSED, SUPPRESSED
    return _value(r.estimate, unit, dp), _ci(r.ci_low, r.ci_high, unit, dp)


def scrub(note: str, policy) -> str:
    """A model note for a disclosure-controlled report: whole numbers below the threshold (which
    could count people) shown as '<threshold'."""
    def sub(m):
        n = int(m.group(0))
        return policy.label if policy.is_small(n) else m.group(0)
    return re.sub(r"(?<![\d.])\d+(?![\d.])", sub, note)


def consort(cfg: dict, counts: A.Counts, labels: dict) -> dict:
    d = cfg["design"]
    outcomes = [cfg["primary"]["outcome"], *cfg["outcomes"].get("secondary", [])]
    b = F.boxes(counts.flow, counts.cell, arms=counts.arms, arm_labels=d["arm_labels"],
                timepoints=counts.timepoints, months=[w["month"] for w in cfg["data"]["waves"]],
                single=counts.single, intervention=counts.intervention,
                receipt_min_sessions=cfg["feasibility"]["receipt_min_sessions"],
                analysed=counts.rows["analysed"], outcome_labels=labels,
                site_word="Sites" if d["type"] == "cluster" else "Centres", allocated_to=allocated_to(cfg))
    return dict(arms=b["arms"], rows=F.table_rows(b), outcomes=[labels.get(y, y) for y in outcomes])


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    """Template variables of the funder's report."""
    dp = cfg["report"]["decimals"]
    d = cfg["design"]
    single = d["type"] == "single_arm"
    arm_labels = d["arm_labels"]
    labels = score_labels(cfg)
    level = cfg["outcomes"]["confidence_level"]
    pol = A.policy(cfg)
    counts = A.release(cfg, inputs)
    ctx: dict = dict(policy=pol, outcome=labels.get(cfg["primary"]["outcome"], cfg["primary"]["outcome"]),
                     single_arm=single, level=level_label(level),
                     feas_level=level_label(cfg["feasibility"]["confidence_level"]))
    ctx["criteria"] = _criteria(counts, dp)
    ctx["decision"] = (_decision([c["row"].band for c in counts.rows["funder_criteria"]])
                       if ctx["criteria"] else None)
    feas_all = counts.feas
    ctx["not_collected"] = [indicator_label(r.indicator, labels=labels) for r in
                            feas_all[feas_all.unit == NOT_COLLECTED].itertuples()
                            if r.indicator in A.KEY_INDICATORS
                            or r.indicator == f"completion_{cfg['primary']['outcome']}"]
    ctx["cluster"] = d["type"] == "cluster"
    ctx["feasibility"] = _feasibility(cfg, counts, labels, dp)
    ctx["consort"] = consort(cfg, counts, labels)
    ctx["effects"], ctx["notes"] = _effects(cfg, counts, labels, pol, dp)
    if counts.rows["effects"]:
        r0 = counts.rows["effects"][0]["row"]
        ctx["analysis_label"] = r0.model if isinstance(r0.model, str) and r0.model else "primary model"
    ctx["intervention"] = arm_labels.get(d["intervention_arm"], d["intervention_arm"])
    ctx["control"] = arm_labels.get(d["control_arm"], d["control_arm"]) if d.get("control_arm") else None
    ctx["n_headers"] = ["n"] if single else [f"n ({ctx['intervention']})", f"n ({ctx['control']})"]
    ctx["trajectory"] = png_data_uri(inputs["trajectory"]) if A._exists(inputs, "trajectory") else None
    ctx["nonrandom"] = propensity_section.headline(cfg, inputs)
    ctx["trajectory_outcomes"] = ", ".join(dict.fromkeys(labels.get(y, y) for y in
                                                         [cfg["primary"]["outcome"], *cfg["outcomes"]["secondary"]]))
    if A._exists(inputs, "cea"):
        economics = _economics(inputs)
        if economics is not None:
            ctx["economics"] = economics
    return ctx


def _criteria(counts: A.Counts, dp: int) -> list[dict]:
    """One row per progression criterion as released: counts, estimate, CI, rule and band."""
    criteria = []
    for c in counts.rows["funder_criteria"]:
        r, unit = c["row"], c["unit"]
        estimate, ci = _estimate(counts, r, unit, dp, c["num"], c["den"])
        sites = A.is_about_sites(pd.DataFrame([dict(indicator=r.indicator, denominator_of=r.denominator_of)])).iloc[0]
        criteria.append(dict(name=r.criterion, timepoint=r.timepoint or "–",
                             counts=_counts(counts, c["num"], c["den"], r.denominator, unit),
                             estimate=estimate, ci=ci, rule=_rule(r, unit, dp),
                             band=(SUPPRESSED if counts.bands_withheld and counts.withheld(c["num"], c["den"])
                                   else r.band), sites=bool(sites)))
    return criteria


def _feasibility(cfg: dict, counts: A.Counts, labels: dict, dp: int) -> list[dict]:
    """Key feasibility estimates as released (the site-aware intervals in a cluster design)."""
    d = cfg["design"]
    single = d["type"] == "single_arm"
    feasibility = []
    for c in counts.rows["funder_feasibility"]:
        r = c["row"]
        if r.unit == NOT_COLLECTED:
            continue
        lo, hi = getattr(r, "ci_low_cluster", float("nan")), getattr(r, "ci_high_cluster", float("nan"))
        if d["type"] == "cluster" and lo == lo:  # sites randomised: the intervals allowing for sites
            r = r._replace(ci_low=lo, ci_high=hi)
        unit = "proportion" if r.unit == "proportion" else "rate"
        estimate, ci = _estimate(counts, r, unit, dp, c["num"], c["den"])
        feasibility.append(dict(
            sites=r.indicator == "fidelity",
            indicator=indicator_label(r.indicator, r.unit if r.indicator == "recruitment_rate" else "",
                                      labels=labels, single_arm=single),
            timepoint=r.timepoint or "–",
            arm="All" if r.arm == "all" or single else d["arm_labels"].get(r.arm, r.arm),
            counts=_counts(counts, c["num"], c["den"], r.denominator, unit), estimate=estimate, ci=ci))
    return feasibility


def _effects(cfg: dict, counts: A.Counts, labels: dict, pol, dp: int) -> tuple[list[dict], list[str]]:
    """Effect estimates with CIs and numbers analysed, and the numbered (scrubbed) model notes."""
    directions = score_directions(cfg)
    effects, notes = [], []
    arm_cols = counts._arm_columns()
    for e in counts.rows["effects"]:
        r = e["row"]
        if pd.isna(r.estimate):
            continue
        refs = []
        for w in split_notes(r.warnings, labels):
            w = scrub(w, pol)
            if w not in notes:
                notes.append(w)
            refs.append(str(notes.index(w) + 1))
        effects.append(dict(
            outcome=labels.get(r.outcome, r.outcome), better=directions.get(r.outcome, "higher"),
            timepoint=r.timepoint, primary=bool(r.primary),
            estimate=A.show_value(r.estimate, dp),
            ci=f"{A.show_value(r.ci_low, dp)} to {A.show_value(r.ci_high, dp)}",
            smd=A.show_value(r.standardised_effect, dp),
            n=[counts.cell(e["cells"].get(arm)) for arm, _, _ in arm_cols], notes=", ".join(refs)))
    return effects, notes


def _economics(inputs: dict[str, str]) -> dict | None:
    """Incremental cost and QALYs, ICER, quadrant and CEAC of the primary economic analysis (None: none)."""
    cea = read_table(inputs["cea"], ("threshold", "quadrant", "note", "price_year"))
    q = cea[cea.analysis == "cea_qaly"].set_index("measure", drop=False)
    if not len(q):
        return None

    def est(m, fmt):
        r = q.loc[m]
        return dict(estimate=fmt(r.estimate), ci=f"{fmt(r.ci_low)} to {fmt(r.ci_high)}")
    thr = q[q.measure == "inmb"]
    return dict(
        delta_cost=est("delta_cost", money), delta_qaly=est("delta_qaly", lambda x: A.show_value(x, 3)),
        icer=money(q.loc["icer"].estimate), quadrant=q.loc["icer"].note,
        price_year=q.loc["delta_cost"].price_year,
        thresholds=[dict(threshold=r.threshold, probability=A.show_value(r.probability, 2))
                    for r in thr.itertuples()],
        ceac=png_data_uri(inputs["ceac_figure"]) if A._exists(inputs, "ceac_figure") else None)
