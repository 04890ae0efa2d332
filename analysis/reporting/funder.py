"""Funder report: the progression decision, key feasibility estimates, effect estimates with
95% CIs (no p-values) and the economic summary.  Counts pass through disclosure control; no
identifiers, pseudonyms or free text are read."""

from __future__ import annotations

import os

import pandas as pd

from analysis.reporting import audience as A
from analysis.reporting.common import png_data_uri, read_table
from analysis.reporting.feasibility import label as indicator_label

TEMPLATE = "sections/funder.html.j2"
KEY_INDICATORS = ("consent", "recruitment_rate", "retention", "intervention_receipt", "withdrawal")
DECISIONS = {"GREEN": "Go: proceed to the definitive trial",
             "AMBER": "Proceed with amendments to address the amber criteria",
             "RED": "Stop, or reconsider the design before proceeding"}


def _decision(bands: list[str]) -> str | None:
    bands = [b for b in bands if b in DECISIONS]
    if not bands:
        return None
    worst = "RED" if "RED" in bands else "AMBER" if "AMBER" in bands else "GREEN"
    return f"{worst}: {DECISIONS[worst]}"


def _counts(r) -> str:
    """numerator / denominator as shown (a rate's denominator is exposure, not a count)."""
    den = A.show_count(r.denominator) if r.unit == "proportion" else A.show_value(r.denominator, 1)
    return f"{A.show_count(r.numerator)} / {den}"


def _exists(inputs, key):
    return key in inputs and os.path.exists(inputs[key])


def _rule(r, unit: str, dp: int) -> str:
    """GREEN/RED thresholds on the estimate's own scale, the right way round for the direction."""
    scale, suffix = (100, "%") if unit == "proportion" else (1, "")
    g, red = A.show_value(r.green, dp, scale, suffix), A.show_value(r.red, dp, scale, suffix)
    return f"GREEN ≥ {g}, RED < {red}" if r.direction == "higher" else f"GREEN ≤ {g}, RED > {red}"


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    dp = cfg["report"]["decimals"]
    d = cfg["design"]
    single = d["type"] == "single_arm"
    labels = d["arm_labels"]
    names = cfg["outcomes"]["labels"]
    level = cfg["outcomes"]["confidence_level"]
    pol = A.policy(cfg)
    ctx: dict = dict(policy=pol, outcome=names.get(cfg["primary"]["outcome"], cfg["primary"]["outcome"]),
                     single_arm=single, level=f"{level * 100:g}",
                     feas_level=f"{cfg['feasibility']['confidence_level'] * 100:g}")

    feas_all = read_table(inputs["feasibility"], ("timepoint", "arm", "ci_method", "band", "unit", "definition",
                                                  "ci_method_cluster"))
    ctx["cluster"] = d["type"] == "cluster"
    if ctx["cluster"] and "ci_low_cluster" in feas_all:  # sites randomised: intervals allowing for sites
        has = feas_all.ci_low_cluster.notna()
        feas_all.loc[has, "ci_low"] = feas_all.ci_low_cluster[has]
        feas_all.loc[has, "ci_high"] = feas_all.ci_high_cluster[has]
    unit_of = dict(zip(feas_all.indicator, feas_all.unit))
    if _exists(inputs, "progression"):
        prog = read_table(inputs["progression"], ("timepoint", "band", "arm", "direction"))
        site_rows = A.is_about_sites(prog)  # by the indicator code, before it is replaced by the name
        units = prog.indicator.map(unit_of).fillna("proportion")
        prog = prog.assign(indicator=prog.criterion).rename(columns={"criterion": "name"})
        prog["unit"] = ["proportion" if u == "proportion" else "rate" for u in units]
        shown = A.suppressed_feasibility(prog.assign(indicator=prog.name), cfg, about_sites=site_rows)
        ctx["criteria"] = [dict(
            name=r.name, timepoint=r.timepoint or "–",
            counts=_counts(r),
            estimate=A.show_value(r.estimate, dp, 1 if r.unit == "rate" else 100, "" if r.unit == "rate" else "%"),
            ci=f"{A.show_value(r.ci_low, dp, 1 if r.unit == 'rate' else 100)} to {A.show_value(r.ci_high, dp, 1 if r.unit == 'rate' else 100)}",
            rule=_rule(r, r.unit, dp), band=r.band, sites=bool(site_rows[r.Index]))
            for r in shown.itertuples()]
        ctx["decision"] = _decision(list(prog.band))

    primary_completion = f"completion_{cfg['primary']['outcome']}"
    feas = feas_all[(feas_all.indicator.isin(KEY_INDICATORS) | (feas_all.indicator == primary_completion))]
    ctx["not_collected"] = [indicator_label(r.indicator) for r in feas[feas.unit == "not collected"].itertuples()]
    feas = feas[feas.unit != "not collected"]
    shown = A.suppressed_feasibility(feas, cfg)
    site_rows = A.is_about_sites(feas)
    ctx["feasibility"] = [dict(sites=bool(site_rows[r.Index]),
        indicator=indicator_label(r.indicator, r.unit if r.indicator == "recruitment_rate" else ""),
        timepoint=r.timepoint or "–", arm="All" if r.arm == "all" else labels.get(r.arm, r.arm),
        counts=_counts(r),
        estimate=A.show_value(r.estimate, dp, 100 if r.unit == "proportion" else 1, "%" if r.unit == "proportion" else ""),
        ci=("–" if not isinstance(r.ci_low, str) and pd.isna(r.ci_low) else
            f"{A.show_value(r.ci_low, dp, 100 if r.unit == 'proportion' else 1)} to "
            f"{A.show_value(r.ci_high, dp, 100 if r.unit == 'proportion' else 1)}"))
        for r in shown.itertuples()]

    eff = read_table(inputs["effects"], ("warnings", "analysis", "timepoint", "population", "model"))
    ctx["effects"] = []
    if len(eff):
        if "population" in eff:
            eff = eff[eff.population.isin(["", "all"])]
        eff = eff[eff.estimate.notna()]
        primary_analysis = eff[eff.primary.astype(bool)].analysis.iloc[0] if eff.primary.astype(bool).any() \
            else (eff.analysis.iloc[0] if len(eff) else "primary")
        term = "change from baseline" if single else None
        rows = eff[(eff.analysis == primary_analysis) & ((eff.term == term) if term else
                                                         ~eff.term.astype(str).str.contains(","))]
        ctx["effects"] = [dict(outcome=names.get(r.outcome, r.outcome), timepoint=r.timepoint,
                               estimate=A.show_value(r.estimate, dp),
                               ci=f"{A.show_value(r.ci_low, dp)} to {A.show_value(r.ci_high, dp)}",
                               smd=A.show_value(r.standardised_effect, dp),
                               n=A.show_count(pol.label if pol.is_small(r.n) else r.n),
                               n_int=A.show_count(pol.label if pol.is_small(getattr(r, "n_intervention", None))
                                                  else getattr(r, "n_intervention", None)),
                               n_ctl=A.show_count(pol.label if pol.is_small(getattr(r, "n_control", None))
                                                  else getattr(r, "n_control", None)),
                               primary=bool(r.primary)) for r in rows.itertuples()]
        ctx["analysis_label"] = rows.model.iloc[0] if "model" in rows and len(rows) else primary_analysis
    ctx["intervention"] = labels.get(d["intervention_arm"], d["intervention_arm"])
    ctx["control"] = labels.get(d["control_arm"], d["control_arm"]) if d.get("control_arm") else None
    ctx["trajectory"] = png_data_uri(inputs["trajectory"]) if _exists(inputs, "trajectory") else None

    if _exists(inputs, "cea"):
        cea = read_table(inputs["cea"], ("threshold", "quadrant", "note", "price_year"))
        q = cea[cea.analysis == "cea_qaly"].set_index("measure", drop=False)
        if len(q):
            def est(m, scale=1.0, d=dp):
                r = q.loc[m]
                return dict(estimate=A.show_value(r.estimate, d, scale),
                            ci=f"{A.show_value(r.ci_low, d, scale)} to {A.show_value(r.ci_high, d, scale)}")
            thr = q[q.measure == "inmb"]
            ctx["economics"] = dict(
                delta_cost=est("delta_cost", d=0), delta_qaly=est("delta_qaly", d=3),
                icer=A.show_value(q.loc["icer"].estimate, 0), quadrant=q.loc["icer"].note,
                price_year=q.loc["delta_cost"].price_year,
                thresholds=[dict(threshold=r.threshold, probability=A.show_value(r.probability, 2))
                            for r in thr.itertuples()],
                ceac=png_data_uri(inputs["ceac_figure"]) if _exists(inputs, "ceac_figure") else None)
    return ctx
