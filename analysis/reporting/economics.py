"""Report section: the trial-based cost-effectiveness analysis (present only when enabled)."""

from __future__ import annotations

from analysis.reporting.common import fmt, level_label, money, png_data_uri, read_table

TEMPLATE = "sections/economics.html.j2"


def _weighted(cfg: dict, cea) -> dict | None:
    """A non-randomised comparison: the estimand of the propensity weighting and the unweighted
    result (``cea_qaly_unweighted``), or None."""
    from analysis.reporting.propensity import ESTIMAND_WORDS, non_randomised
    if not non_randomised(cfg):
        return None
    un = cea[cea.analysis == "cea_qaly_unweighted"].set_index("measure")
    ps = cfg["propensity"]
    out = dict(estimand=ESTIMAND_WORDS[ps["estimand"]], covariates=", ".join(ps["covariates"]), unweighted=None,
               model=cfg["economics"].get("weighted_interval", "model") == "model")
    if len(un):
        dc, dq = un.loc["delta_cost"], un.loc["delta_qaly"]
        out["unweighted"] = dict(d_cost=money(dc.estimate), d_cost_ci=f"{money(dc.ci_low)} to {money(dc.ci_high)}",
                                 d_qaly=fmt(dq.estimate, 4), d_qaly_ci=f"{fmt(dq.ci_low, 4)} to {fmt(dq.ci_high, 4)}",
                                 icer=money(un.loc["icer"].estimate), quadrant=un.loc["icer"].note)
    return out


def context(cfg: dict, inputs: dict[str, str]) -> dict | None:
    """Template variables of the economics section (None when the evaluation is off)."""
    if not cfg["economics"]["enabled"] or "cea" not in inputs:
        return None
    econ = cfg["economics"]
    labels = cfg["design"]["arm_labels"]
    cea = read_table(inputs["cea"], ("analysis", "measure", "threshold", "quadrant", "note", "bootstrap",
                                     "missing_data"))
    main = cea[cea.analysis == "cea_qaly"].set_index("measure")
    dc, de = main.loc["delta_cost"], main.loc["delta_qaly"]
    icer = main.loc["icer"]
    thresholds = [dict(label=r.threshold, inmb=money(r.estimate),
                       ci=f"{money(r.ci_low)} to {money(r.ci_high)}", prob=fmt(r.probability, 2))
                  for r in cea[(cea.analysis == "cea_qaly") & (cea.measure == "inmb")].itertuples()]
    shares = {q: fmt(main.loc[f"share_{q}"].estimate, 3) for q in ("NE", "SE", "SW", "NW")}
    from analysis.config import score_labels
    names = score_labels(cfg)
    others = _other_outcomes(cea, names)
    wellby = _wellby(cea, econ, names) if "wellby" in set(cea.analysis) else None
    method, missing, sensitivity = _missing_data(cea, main)
    arms, arm_rows, n_arm = _by_arm(inputs)
    unit_costs = _unit_costs(inputs)
    unverified = sorted({u["verification"] for u in unit_costs} - {"PUB"})
    weighted = _weighted(cfg, cea)
    return dict(
        model_based=bool(weighted and weighted["model"]),
        level=level_label(cfg["outcomes"]["confidence_level"]),
        price_year=econ["price_year"], d_cost=money(dc.estimate),
        d_cost_ci=f"{money(dc.ci_low)} to {money(dc.ci_high)}",
        d_qaly=fmt(de.estimate, 4), d_qaly_ci=f"{fmt(de.ci_low, 4)} to {fmt(de.ci_high, 4)}",
        icer=money(icer.estimate), quadrant=icer.note, n=int(dc.n), n_int=int(dc.n_intervention),
        n_ctl=int(dc.n_control), n_sites=int(dc.n_sites), bootstrap=dc.bootstrap,
        few_sites=(cfg["design"]["type"] == "cluster" and int(dc.n_sites) <= 6 and not (weighted and weighted["model"])
                   and econ["bootstrap"].get("cluster_correction", "none") == "none"),
        replicates=int(dc.replicates), thresholds=thresholds, shares=shares,
        p_saving=fmt(main.loc["prob_cost_saving"].estimate, 3),
        p_effective=fmt(main.loc["prob_more_effective"].estimate, 3),
        others=others, wellby=wellby, arms=[labels.get(a, a) for a in arms],
        arm_n=[n_arm[a] for a in arms], arm_rows=arm_rows, unit_costs=unit_costs,
        unverified=", ".join(unverified), utility=names.get(econ["utility"], econ["utility"]),
        discount=dict(c=econ["discount_rate_costs"], e=econ["discount_rate_effects"]),
        time_basis=econ["time_basis"], missing_data=method, missing_method=missing, sensitivity=sensitivity,
        weighted=weighted,
        ce_plane=png_data_uri(inputs["ce_plane"]), ceac=png_data_uri(inputs["ceac_figure"]))


def _other_outcomes(cea, names: dict) -> list[dict]:
    """Incremental cost per point of each other outcome (cost, effect, ratio and quadrant)."""
    others = []
    for an in sorted(a for a in set(cea.analysis) if a.startswith("cost_per_point:")):
        d = cea[cea.analysis == an].set_index("measure")
        y = an.split(":", 1)[1]
        e = d.loc[f"delta_{y}"]
        others.append(dict(outcome=names.get(y, y), d_cost=money(d.loc["delta_cost"].estimate),
                           d_effect=fmt(e.estimate, 2), ci=f"{fmt(e.ci_low, 2)} to {fmt(e.ci_high, 2)}",
                           ratio=money(d.loc["icer"].estimate), quadrant=d.loc["icer"].note,
                           n=int(e.n)))
    return others


def _wellby(cea, econ: dict, names: dict) -> dict:
    """The WELLBY valuation of the wellbeing change (central, low and high values and net value)."""
    w = cea[cea.analysis == "wellby"].set_index("measure")
    dw = w.loc["delta_wellby"]
    return dict(delta=fmt(dw.estimate, 3), ci=f"{fmt(dw.ci_low, 3)} to {fmt(dw.ci_high, 3)}",
                central=money(w.loc["wellby_value_central"].estimate),
                central_ci=f"{money(w.loc['wellby_value_central'].ci_low)} to "
                           f"{money(w.loc['wellby_value_central'].ci_high)}",
                low=money(w.loc["wellby_value_low"].estimate),
                high=money(w.loc["wellby_value_high"].estimate),
                basis=econ["wellby"]["price_basis"],
                outcome=names.get(econ["wellby"]["outcome"], econ["wellby"]["outcome"]),
                net=money(w.loc["wellby_net_value"].estimate),
                net_prob=fmt(w.loc["wellby_net_value"].probability, 2), n=int(dw.n))


def _missing_data(cea, main) -> tuple[str, str, dict | None]:
    """How missing costs and QALYs were handled, in words, and the complete-case sensitivity analysis."""
    method = str(main.loc["delta_cost"].get("missing_data", "complete_case"))
    if method != "multiple_imputation":  # older tables have no missing_data column
        method = "complete_case"
    sensitivity = None
    if method == "multiple_imputation":
        m = int(main.loc["delta_cost"].imputations)
        missing = (f"multiple imputation, then bootstrap ({m} imputations by chained equations with predictive "
                   "mean matching, site, arm, baseline cost and utility and auxiliary variables as predictors; "
                   "each imputation bootstrapped with its share of the replicates; Rubin's rules for estimates "
                   "and intervals, pooled replicates for the plane and acceptability curve; orderings compared by "
                   "Brand et al., Stat Med 2019, and Bartlett & Hughes, Stat Methods Med Res 2020)")
        cc = cea[cea.analysis == "cea_qaly_complete_case"].set_index("measure")
        if len(cc):
            sensitivity = dict(d_cost=money(cc.loc["delta_cost"].estimate),
                               d_cost_ci=f"{money(cc.loc['delta_cost'].ci_low)} to {money(cc.loc['delta_cost'].ci_high)}",
                               d_qaly=fmt(cc.loc["delta_qaly"].estimate, 4),
                               d_qaly_ci=f"{fmt(cc.loc['delta_qaly'].ci_low, 4)} to {fmt(cc.loc['delta_qaly'].ci_high, 4)}",
                               icer=money(cc.loc["icer"].estimate), n=int(cc.loc["delta_cost"].n))
    else:
        missing = "complete-case analysis; missing baseline covariates replaced by their mean"
    return method, missing, sensitivity


def _by_arm(inputs: dict[str, str]) -> tuple[list, list[dict], dict]:
    """Mean (SD) of each cost and QALY item by arm, and each arm's number of participants."""
    by_arm = read_table(inputs["cea_by_arm"], ("arm", "kind", "item"))
    arms = sorted(by_arm.arm.unique())
    items = list(dict.fromkeys(by_arm.item))
    cell = {(r.arm, r.item): (r.mean, r.sd, r.kind) for r in by_arm.itertuples()}
    arm_rows = []
    for it in items:
        vals = []
        for a in arms:
            m, s, kind = cell[(a, it)]
            vals.append(f"{money(m)} ({money(s)})" if kind == "cost" else f"{fmt(m, 3)} ({fmt(s, 3)})")
        arm_rows.append(dict(item=it.replace("_", " "), cells=vals))
    n_arm = {a: int(by_arm[(by_arm.arm == a) & (by_arm.item == "total")].n.iloc[0]) for a in arms}
    return arms, arm_rows, n_arm


def _unit_costs(inputs: dict[str, str]) -> list[dict]:
    """The unit costs with price year, inflation factor, source and verification status."""
    uc = read_table(inputs["unit_costs"], ("item_id", "description", "unit", "price_year", "source",
                                           "table", "verification", "note"))
    return [dict(item=r.item_id, description=r.description, unit=r.unit,
                 cost=f"£{r.unit_cost:,.2f}", year=r.price_year, factor=fmt(r.inflation_factor, 4),
                 inflated=f"£{r.unit_cost_inflated:,.2f}", source=f"{r.source}, {r.table}".strip(", "),
                 verification=r.verification) for r in uc.itertuples()]
