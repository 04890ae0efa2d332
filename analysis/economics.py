"""Trial-based cost-effectiveness analysis (CEA) with a cluster-aware bootstrap.

Pipeline (each step a pure function; the stage module ``analysis.stages.economics`` wires
them to files):

1. :func:`participant_table` — one row per allocated participant: follow-up cost by category
   (service use × inflated unit costs, plus the intervention cost built up from its
   components), baseline cost (the baseline recall period), QALYs by area under the utility
   curve, baseline utility, life-satisfaction-years (for WELLBYs) and the non-QALY outcomes at
   the last follow-up with their baseline values.
2. :func:`cost_effectiveness` — incremental cost and effect by regression on
   ``[1, treat, baseline effect, baseline cost]`` (the same regressors in both equations, so
   seemingly unrelated regression gives exactly the equation-by-equation OLS estimates:
   Zellner A. JASA 1962;57:348), the ICER and its quadrant, INMB over a λ grid, the
   cost-effectiveness plane and acceptability curve from a seeded, stratified (two-stage when
   clustered) bootstrap, cost per point gained on other outcomes, and the WELLBY value.
   ``economics.bootstrap.cluster_correction: shrinkage_t`` (cluster designs) resamples
   shrinkage-corrected residuals (:func:`analysis.bootstrap.shrink_residuals`) and gives
   intervals estimate +/- t on (sites - 2) df x bootstrap SE, for trials with few sites per arm
   where the plain two-stage percentile interval is too narrow (docs/methods.md, "Few sites").

Missing data (``economics.missing_data``):

* ``complete_case`` — costs and effects of the participants with both observed; missing
  *baseline* covariates are replaced by their mean, which is valid in a randomised trial
  (White IR, Thompson SG. Stat Med 2005;24:993).
* ``multiple_imputation`` — "MI, then bootstrap" (:func:`multiply_impute`): ``m`` completed
  participant tables from chained equations (``analysis.mi``: predictive mean matching for the
  follow-up service cost, QALYs, WELLBYs, other outcomes and baseline covariates; site as fixed
  effects, arm, intervention cost and auxiliary variables as predictors).  The analysis is run
  on each; B bootstrap replicates are split into m consecutive chunks of about B/m, chunk k
  resampling imputation k with the same seeded draws the complete-case analysis would use.
  Point estimates and intervals of every linear quantity (incremental cost and effect, INMB,
  WELLBY values) follow Rubin's rules with each imputation's bootstrap variance as its
  within-imputation variance and complete-data df sites - 2 in a cluster design (the arm is a
  site-level contrast), participants - 4 otherwise ("MI Boot" in the terminology of Schomaker & Heumann, Stat Med
  2018;37:2252; valid when imputation and analysis models are congenial, Bartlett & Hughes,
  Stat Methods Med Res 2020;29:3533);
  the pooled replicates give the cost-effectiveness plane, quadrant shares and the
  acceptability curve.  Brand J et al. (Stat Med 2019;38:210) compare the orderings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace as dc_replace
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis import agency_variance as AV
from analysis import bootstrap as boot
from analysis import costs as C
from analysis import mi as MI
from analysis import mi_pool
from analysis import propensity as PS
from analysis.qaly import auc, discount_weight

MISSING_DATA_METHODS = ("complete_case", "multiple_imputation")
CLUSTER_CORRECTIONS = ("none", "shrinkage_t")
QUADRANTS = {"NE": "more effective, more costly", "SE": "more effective, less costly (dominant)",
             "SW": "less effective, less costly", "NW": "less effective, more costly (dominated)"}
DEFAULT_THRESHOLDS = [
    dict(value=20000, label="£20,000 per QALY (NICE manual 2022, lower)"),
    dict(value=30000, label="£30,000 per QALY (NICE manual 2022, upper)"),
    dict(value=25000, label="£25,000 per QALY (NICE technology appraisals from April 2026, lower)"),
    dict(value=35000, label="£35,000 per QALY (NICE technology appraisals from April 2026, upper)"),
]


def quadrant(d_cost: float, d_effect: float) -> str:
    """Quadrant of the cost-effectiveness plane (effect on x, cost on y).

    Parameters
    ----------
    d_cost, d_effect : float
        Incremental cost and effect (intervention minus control).

    Returns
    -------
    str
        "NE", "SE", "SW" or "NW"; a zero difference counts as east (effect) or north (cost).

    References
    ----------
    Black WC. The CE plane: a graphic representation of cost-effectiveness. Med Decis Making
    1990;10:212-214.

    Examples
    --------
    >>> from analysis.economics import quadrant
    >>> quadrant(1500.0, 0.05), quadrant(-200.0, 0.05), quadrant(300.0, -0.01)
    ('NE', 'SE', 'NW')
    """
    east = d_effect >= 0
    north = d_cost >= 0
    return ("N" if north else "S") + ("E" if east else "W")


def icer(d_cost: float, d_effect: float) -> float:
    """Incremental cost-effectiveness ratio: incremental cost per unit of incremental effect.

    Parameters
    ----------
    d_cost, d_effect : float
        Incremental cost and effect (intervention minus control), e.g. pounds and QALYs.

    Returns
    -------
    float
        d_cost / d_effect; NaN when d_effect is 0.  A negative ratio is ambiguous on its own
        (dominance or a trade-off): read it with :func:`quadrant`.

    References
    ----------
    Black WC. The CE plane: a graphic representation of cost-effectiveness. Med Decis Making
    1990;10:212-214.

    Examples
    --------
    >>> from analysis.economics import icer
    >>> icer(1500.0, 0.05)
    30000.0
    >>> icer(1500.0, 0.0)
    nan
    """
    return float(d_cost / d_effect) if d_effect != 0 else float("nan")


def ceac(d_cost: np.ndarray, d_effect: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Cost-effectiveness acceptability curve: P(lambda dE - dC > 0) over replicates, per lambda.

    Parameters
    ----------
    d_cost, d_effect : array-like of shape (r,)
        Incremental cost and effect in each of r bootstrap replicates (or imputation-bootstrap
        draws).
    lambdas : array-like of shape (w,)
        Willingness-to-pay values per unit of effect.

    Returns
    -------
    numpy.ndarray of shape (w,)
        The share of replicates in which the intervention has the higher net monetary benefit.

    References
    ----------
    Fenwick E, Claxton K, Sculpher M. Representing uncertainty: the role of cost-effectiveness
    acceptability curves. Health Econ 2001;10:779-787.

    Examples
    --------
    >>> from analysis.economics import ceac
    >>> ceac([1000, 2500, -500, 4000], [0.05, 0.04, 0.01, 0.1], [0, 20000, 50000])
    array([0.25, 0.25, 0.75])
    """
    d_cost = np.asarray(d_cost, float)
    d_effect = np.asarray(d_effect, float)
    lambdas = np.asarray(lambdas, float)
    return np.mean(lambdas[:, None] * d_effect[None, :] - d_cost[None, :] > 0, axis=1)


def wellby_value(delta_wellby: float, value_per_wellby: float, uprate: float = 1.0) -> float:
    """Monetary value of a WELLBY change.

    Parameters
    ----------
    delta_wellby : float
        Incremental WELLBYs (one point of life satisfaction on a 0-10 scale for one person for one
        year).
    value_per_wellby : float
        Value of one WELLBY at the guidance's base prices.
    uprate : float
        Factor from those base prices to the analysis's price year.

    Returns
    -------
    float
        WELLBYs x value x uprating factor.

    References
    ----------
    HM Treasury. Wellbeing guidance for appraisal: supplementary Green Book guidance. London,
    2021.

    Examples
    --------
    >>> from analysis.economics import wellby_value
    >>> round(wellby_value(0.5, 13000.0, uprate=1.1), 2)
    7150.0
    """
    return float(delta_wellby) * float(value_per_wellby) * float(uprate)


def _lambda_grid(opts: dict, thresholds: list[dict]) -> np.ndarray:
    grid = np.arange(0.0, float(opts["wtp_max"]) + 0.5 * opts["wtp_step"], float(opts["wtp_step"]))
    return np.unique(np.concatenate([grid, [t["value"] for t in thresholds]]))


# ----------------------------------------------------------------------------------------------
# Per-participant costs and outcomes
# ----------------------------------------------------------------------------------------------

@dataclass
class ParticipantData:
    table: pd.DataFrame  # one row per allocated participant (identifiers stay in processed data)
    unit_costs: pd.DataFrame  # unit costs used, with sources and inflation factors
    categories: list[str]  # cost categories, in order
    notes: list[str]


def participant_table(linked: pd.DataFrame, service_use: pd.DataFrame, participants: pd.DataFrame,
                      econ: dict, *, intervention_arm: str, ps_covariates: Sequence[str] = ()) -> ParticipantData:
    """Costs, QALYs and outcomes per allocated participant (see the module docstring).

    Follow-up cost by category (service use x inflated unit costs, :func:`analysis.costs.service_costs`,
    plus the intervention cost built up from its components), baseline cost (the baseline recall
    period), QALYs by area under the utility curve (:func:`analysis.qaly.auc`), baseline utility,
    life-satisfaction-years (for WELLBYs) and the non-QALY outcomes at the last follow-up with
    their baseline values.

    Parameters
    ----------
    linked : pandas.DataFrame
        The linked analysis table (utilities and outcomes per participant x time point).
    service_use : pandas.DataFrame
        Ingest's service use (counts per participant and time point).
    participants : pandas.DataFrame
        Ingest's participants (sessions attended, site, covariates).
    econ : dict
        The config's ``economics`` block (service items, intervention costs, price year,
        discounting, time basis, outcomes).
    intervention_arm : str
        The arm that receives the intervention (and its costs).
    ps_covariates : sequence of str
        Propensity-score covariates of a non-randomised comparison, added as ``ps_<name>``
        (baseline values) for the weighted analysis of :func:`cost_effectiveness`.

    Returns
    -------
    ParticipantData
        ``table`` (one row per allocated participant: arm, site, costs by category, total cost,
        QALYs, outcomes, baseline covariates), ``unit_costs`` (the priced unit costs) and
        ``notes`` (plain-English notes for the log).

    References
    ----------
    Drummond MF, Sculpher MJ, Claxton K, Stoddart GL, Torrance GW. Methods for the Economic
    Evaluation of Health Care Programmes, 4th ed. Oxford University Press, 2015.

    Ramsey SD, Willke RJ, Glick H, et al. Cost-effectiveness analysis alongside clinical trials
    II: an ISPOR Good Research Practices Task Force report. Value Health 2015;18:161-172.

    Examples
    --------
    The committed demo trial, complete cases and 200 two-stage bootstrap replicates (the demo
    itself uses multiple imputation and 10,000):

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> from analysis.economics import cost_effectiveness, participant_table
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> econ = dict(cfg["economics"], missing_data="complete_case",
    ...             bootstrap=dict(cfg["economics"]["bootstrap"], replicates=200))
    >>> pdata = participant_table(t["linked"], t["service_use"], t["participants"], econ,
    ...                           intervention_arm="intervention")
    >>> pdata.table.shape, sorted(pdata.table.arm.unique())
    ((160, 23), ['control', 'intervention'])
    """
    notes: list[str] = []
    tps = list(linked.timepoint.cat.categories)
    months = linked.drop_duplicates("timepoint").set_index("timepoint").month.astype(float)
    years_sched = np.array([months[t] for t in tps]) / 12.0
    items, comps, priced = _priced_unit_costs(econ)
    su = service_use[service_use.participant_id.isin(linked.participant_id)]
    unknown = sorted(set(su.timepoint) - set(tps))
    if unknown:
        raise C.CostError(f"service use: time point(s) {unknown} are not configured waves {tps}")
    sc = C.service_costs(su, items, priced)
    ids = pd.Index(linked.participant_id.unique(), name="participant_id")  # linked (file) order: results must not depend on the pseudonym key
    out = _allocation_columns(linked, econ, ids, tps[0], intervention_arm, ps_covariates)
    cats = _service_cost_columns(out, sc, items, tps, years_sched, float(econ["discount_rate_costs"]))
    cats = _intervention_cost_columns(out, participants, comps, priced, cats, intervention_arm, notes)
    _effect_columns(out, linked, econ, tps, years_sched, notes)
    return ParticipantData(out.reset_index(), priced, cats, notes)


def _priced_unit_costs(econ: dict) -> tuple[dict, list[dict], pd.DataFrame]:
    """The service items (with their defaults), the intervention cost components and the unit
    costs they need, inflated to the price year."""
    items = {k: {**v, "units_per_contact": v.get("units_per_contact") or 1.0, "category": v.get("category") or k}
             for k, v in econ["service_items"].items()}
    comps = econ["intervention_costs"]
    ucost = C.load_unit_costs(econ.get("unit_costs_file"), econ.get("unit_cost_overrides"))
    index = C.load_inflation_index(econ.get("inflation_index_file"))
    needed = [v["unit_cost_item"] for v in items.values()] + [c["unit_cost_item"] for c in comps]
    return items, comps, C.price_unit_costs(ucost, needed, econ["price_year"], index)


def _allocation_columns(linked: pd.DataFrame, econ: dict, ids: pd.Index, first_tp, intervention_arm: str,
                        ps_covariates: Sequence[str] = ()) -> pd.DataFrame:
    """A table indexed by ``ids`` with site, arm, treat (0/1), the imputation model's
    auxiliary variables (``aux_<name>``) and the propensity covariates (``ps_<name>``) at the
    first time point."""
    out = pd.DataFrame(index=ids)
    first = linked[linked.timepoint == first_tp].set_index("participant_id")
    out["site_id"] = first.site_id.reindex(ids)
    out["arm"] = first.arm.reindex(ids)
    out["treat"] = (out.arm == intervention_arm).astype(float)
    for c in _mi_options(econ)["auxiliary"]:
        if c not in linked:
            raise KeyError(f"config key economics.multiple_imputation.auxiliary: {c!r} is not a column "
                           "of the linked data")
        col = first[c].reindex(ids)
        out[f"aux_{c}"] = pd.to_numeric(col).astype(float) if _is_numeric(col) else \
            col.astype(object).where(col.notna(), None)
    for c in ps_covariates:
        if c not in linked:
            raise KeyError(f"config key propensity.covariates: {c!r} is not a column of the linked data")
        out[f"ps_{c}"] = first[c].reindex(ids)
    return out


def _service_cost_columns(out: pd.DataFrame, sc: pd.DataFrame, items: dict, tps: list, years_sched: np.ndarray,
                          rate_c: float) -> list[str]:
    """Add the baseline service cost (``cost_bl``) and the discounted follow-up service cost by
    category (``cost_<category>``) to ``out``; returns the categories in order."""
    ids = out.index
    cats = list(dict.fromkeys(v["category"] for v in items.values()))
    base = sc[sc.timepoint == tps[0]].set_index("participant_id").reindex(ids)
    out["cost_bl"] = base[[f"cost_{c}" for c in items]].sum(axis=1, min_count=len(items))
    out.loc[base[[f"cost_{c}" for c in items]].isna().any(axis=1), "cost_bl"] = np.nan
    fu_total = {c: pd.Series(0.0, index=ids) for c in cats}
    for j in range(1, len(tps)):
        rows = sc[sc.timepoint == tps[j]].set_index("participant_id").reindex(ids)
        w = float(discount_weight(years_sched[j - 1], years_sched[j], rate_c))
        for col, spec in items.items():
            fu_total[spec["category"]] = fu_total[spec["category"]] + rows[f"cost_{col}"] * w
    for c in cats:
        out[f"cost_{c}"] = fu_total[c]  # NaN if any follow-up period is missing (complete case)
    return cats


def _intervention_cost_columns(out: pd.DataFrame, participants: pd.DataFrame, comps: list[dict],
                               priced: pd.DataFrame, cats: list[str], intervention_arm: str,
                               notes: list[str]) -> list[str]:
    """Add the intervention cost built up from its components, the service cost and the total
    cost to ``out``; returns the cost categories including ``intervention`` when it has components."""
    ids = out.index
    parts = participants.set_index("participant_id").reindex(ids).reset_index()
    parts["arm"] = out.arm.to_numpy()
    parts["site_id"] = out.site_id.to_numpy()
    if any(c["per"] == "session" for c in comps):
        miss = parts.sessions_attended.isna() & (parts.arm == intervention_arm)
        if miss.any():
            notes.append(f"{int(miss.sum())} intervention participants have no sessions_attended: their "
                         "session costs are unknown (missing, not 0: imputed under multiple imputation, "
                         "left out of a complete-case analysis)")
    ic = C.intervention_costs(parts, comps, priced, intervention_arm).set_index("participant_id")
    out["cost_intervention"] = ic.sum(axis=1, min_count=ic.shape[1]) if len(comps) else 0.0
    service_cats = list(cats)
    out["cost_services"] = out[[f"cost_{c}" for c in service_cats]].sum(axis=1, min_count=len(service_cats)) \
        if service_cats else 0.0
    if len(comps):
        cats = cats + ["intervention"]
    out["cost"] = out[[f"cost_{c}" for c in cats]].sum(axis=1, min_count=len(cats))
    out.loc[out[[f"cost_{c}" for c in cats]].isna().any(axis=1), "cost"] = np.nan
    return cats


def _effect_columns(out: pd.DataFrame, linked: pd.DataFrame, econ: dict, tps: list, years_sched: np.ndarray,
                    notes: list[str]) -> None:
    """Add baseline utility and QALYs (area under the utility curve), life-satisfaction-years
    (for WELLBYs) and the other outcomes at the last follow-up with their baseline values."""
    ids = out.index
    rate_e = float(econ["discount_rate_effects"])

    def wide(col):
        return linked.pivot(index="participant_id", columns="timepoint", values=col).reindex(
            index=ids, columns=tps).to_numpy(float)

    if econ["time_basis"] == "observed":
        times = wide("days_from_baseline") / 365.25
        times[:, 0] = 0.0
    else:
        times = np.broadcast_to(years_sched, (len(ids), len(tps)))
    ucol = econ["utility"]
    if ucol not in linked:
        raise KeyError(f"config key economics.utility: {ucol!r} is not a scored column of the linked data")
    u = wide(ucol)
    out["utility_bl"] = u[:, 0]
    out["qaly"] = auc(times, u, rate_e)
    mcol = ucol.replace("_index", "_method")
    methods = sorted(set(linked[mcol].dropna().astype(str))) if mcol in linked else []
    notes.append(f"utilities: {ucol}" + (f" (method: {', '.join(methods)})" if methods else ""))
    ls = econ["wellby"]["outcome"]
    if ls and ls in linked:
        v = wide(ls)
        out["ls_bl"] = v[:, 0]
        out["wellby"] = auc(times, v, rate_e)
    for y in econ["other_outcomes"]:
        if y not in linked:
            raise KeyError(f"config key economics.other_outcomes: {y!r} is not a scored column")
        v = wide(y)
        out[f"{y}_bl"] = v[:, 0]
        out[y] = v[:, -1]


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _mi_options(econ: dict) -> dict:
    return {"m": None, "iterations": 10, "donors": 5, "auxiliary": [],
            **(econ.get("multiple_imputation") or {})}


# ----------------------------------------------------------------------------------------------
# Multiple imputation of missing costs and outcomes
# ----------------------------------------------------------------------------------------------

def imputation_frame(t: pd.DataFrame, econ: dict) -> pd.DataFrame:
    """The variables of the imputation model, one row per participant (wide).

    Imputed when missing (predictive mean matching): the follow-up *service* cost (the
    intervention cost is known for everyone and is added back), QALYs, baseline cost and
    utility, and for the other analyses the outcome and its baseline value.  Predictors only:
    site (fixed effects), arm, the intervention cost and the auxiliary variables (imputed
    too if incomplete).  The intervention cost is imputed too where it is unknown (an
    intervention participant whose attendance was not recorded)."""
    f = pd.DataFrame(index=t.index)
    if t.site_id.nunique() > 1:
        f["site_id"] = t.site_id.astype(object)
    f["treat"] = t.treat.astype(float)
    f["cost_intervention"] = t.cost_intervention.astype(float)
    f["cost_bl"] = t.cost_bl.astype(float)
    f["utility_bl"] = t.utility_bl.astype(float)
    f["cost_services"] = (t.cost_services if "cost_services" in t else t.cost - t.cost_intervention).astype(float)
    f["qaly"] = t.qaly.astype(float)
    for y in econ["other_outcomes"]:
        f[f"{y}_bl"] = t[f"{y}_bl"].astype(float)
        f[y] = t[y].astype(float)
    if "wellby" in t:
        f["ls_bl"] = t.ls_bl.astype(float)
        f["wellby"] = t.wellby.astype(float)
    for c in [c for c in t.columns if c.startswith("aux_")]:
        f[c] = t[c]
    return f.loc[:, ~f.columns.duplicated()]


def n_imputations(frame: pd.DataFrame, m: int | None) -> int:
    """``m`` if given, else the larger of 20 and the percentage of participants with any
    missing value in the imputation model (White IR, Royston P, Wood AM. Stat Med 2011;30:377)."""
    if m is not None:
        return int(m)
    pct = 100.0 * float(frame.isna().any(axis=1).mean())
    return max(20, int(np.ceil(pct - 1e-9)))


def multiply_impute(pdata: ParticipantData, econ: dict, *, seed: int) -> list[pd.DataFrame]:
    """``m`` completed copies of the participant table (observed values are kept exactly)."""
    opts = _mi_options(econ)
    t = pdata.table
    frame = imputation_frame(t, econ)
    m = n_imputations(frame, opts["m"])
    if m < 2:
        raise ValueError("config key economics.multiple_imputation.m: at least 2 imputations are needed")
    imps = MI.impute(frame, m=m, iterations=int(opts["iterations"]), seed=[int(seed), 7],
                     donors=int(opts["donors"]))
    out = []
    for f in imps:
        c = t.copy()
        for col in frame.columns:
            if col in ("site_id", "treat", "cost_services"):
                continue
            c[col] = f[col].to_numpy() if not _is_numeric(t[col]) else \
                np.where(t[col].isna(), f[col].to_numpy(float), t[col].to_numpy(float))
        cost = f.cost_services.to_numpy(float) + c.cost_intervention.to_numpy(float)
        c["cost"] = np.where(t.cost.isna(), cost, t.cost.to_numpy(float))
        out.append(c)
    return out


# ----------------------------------------------------------------------------------------------
# Incremental analysis and bootstrap
# ----------------------------------------------------------------------------------------------

def _mean_impute(x: pd.Series) -> np.ndarray:
    v = x.to_numpy(float)
    return np.where(np.isnan(v), np.nanmean(v), v)


def _equations(t: pd.DataFrame, econ: dict) -> list[dict]:
    """The analyses: (cost, effect) pairs, each with its design matrix and complete cases."""
    cost_bl = _mean_impute(t.cost_bl)
    one = np.ones(len(t))
    eqs = [dict(analysis="cea_qaly", effect="qaly", effect_label="QALY",
                X=np.column_stack([one, t.treat, _mean_impute(t.utility_bl), cost_bl]),
                use=t.cost.notna().to_numpy() & t.qaly.notna().to_numpy())]
    for y in econ["other_outcomes"]:
        eqs.append(dict(analysis=f"cost_per_point:{y}", effect=y, effect_label=f"point of {y}",
                        X=np.column_stack([one, t.treat, _mean_impute(t[f"{y}_bl"]), cost_bl]),
                        use=t.cost.notna().to_numpy() & t[y].notna().to_numpy()))
    if "wellby" in t:
        eqs.append(dict(analysis="wellby", effect="wellby", effect_label="WELLBY",
                        X=np.column_stack([one, t.treat, _mean_impute(t.ls_bl), cost_bl]),
                        use=t.cost.notna().to_numpy() & t.wellby.notna().to_numpy()))
    return eqs


def _statistic(t: pd.DataFrame, eqs: list[dict]):
    cost = t.cost.to_numpy(float)

    def stat(W: np.ndarray) -> np.ndarray:
        cols = []
        for e in eqs:
            bc = boot.weighted_ols(e["X"], e.get("y_cost", cost), W, e["use"])[:, 1]
            be = boot.weighted_ols(e["X"], e.get("y_effect", t[e["effect"]].to_numpy(float)), W, e["use"])[:, 1]
            cols += [bc, be]
        return np.column_stack(cols)
    return stat


def _shrunk(t: pd.DataFrame, eqs: list[dict]) -> list[dict]:
    """The equations with cost and effect replaced, for resampling only, by the values of
    :func:`analysis.bootstrap.shrink_residuals` (shrinkage-corrected two-stage bootstrap)."""
    arm, site = t.arm.to_numpy(), t.site_id.to_numpy()
    out = []
    for e in eqs:
        try:
            yc, _ = boot.shrink_residuals(e["X"], t.cost.to_numpy(float), e["use"], arm, site)
            ye, _ = boot.shrink_residuals(e["X"], t[e["effect"]].to_numpy(float), e["use"], arm, site)
        except ValueError as err:
            raise ValueError(f"config key economics.bootstrap.cluster_correction: shrinkage_t cannot be used "
                             f"for {e['analysis']}: {err}") from None
        out.append({**e, "y_cost": yc, "y_effect": ye})
    return out


def _clusters(t: pd.DataFrame, use: np.ndarray | None = None) -> int:
    """Number of (arm, site) clusters among the rows ``use`` (the units the two-stage bootstrap draws)."""
    sel = t if use is None else t[use]
    return int(sel[["arm", "site_id"]].drop_duplicates().shape[0])


class _Percentile:
    """Complete cases: SE = SD of the replicates, percentile interval.  With ``dfs`` (one per
    equation; the propensity-weighted analysis) the expanded percentile interval: the
    percentiles at the tail probability whose normal quantile is the t quantile on ``dfs[k]``
    degrees of freedom (Hesterberg 2015), a small-sample widening for few clusters."""

    def __init__(self, reps: np.ndarray, level: float, dfs: list[float] | None = None):
        self.reps = reps
        a = (1 - level) / 2
        self.a = ([a] * (reps.shape[1] // 2) if dfs is None
                  else [float(stats.norm.sf(stats.t.isf(a, d))) for d in dfs])

    def __call__(self, f, k: int) -> dict:
        d = np.asarray(f(self.reps[:, 2 * k], self.reps[:, 2 * k + 1]), float)
        d = d[np.isfinite(d)]
        return dict(se=float(np.std(d, ddof=1)), ci_low=float(np.quantile(d, self.a[k])),
                    ci_high=float(np.quantile(d, 1 - self.a[k])))

    def ceac_ci(self, rc, re, lam, k: int = 0) -> tuple[float, float]:
        a = self.a[k]
        return float(np.quantile(lam * re - rc, a)), float(np.quantile(lam * re - rc, 1 - a))


class _StudentT:
    """Complete cases with ``cluster_correction: shrinkage_t``: SE = SD of the (shrinkage-corrected)
    replicates, interval = estimate +/- t_{df} SE with df = clusters - 2 of the equation."""

    def __init__(self, reps: np.ndarray, point: np.ndarray, dfs: list[float], level: float):
        self.reps, self.point, self.dfs = reps, point, dfs
        self.q = [float(stats.t.ppf(0.5 + level / 2, d)) for d in dfs]

    def __call__(self, f, k: int) -> dict:
        d = np.asarray(f(self.reps[:, 2 * k], self.reps[:, 2 * k + 1]), float)
        d = d[np.isfinite(d)]
        est = float(f(self.point[2 * k], self.point[2 * k + 1]))
        se = float(np.std(d, ddof=1))
        return dict(se=se, ci_low=est - self.q[k] * se, ci_high=est + self.q[k] * se)

    def ceac_ci(self, rc, re, lam, k: int = 0) -> tuple[float, float]:
        est = lam * self.point[2 * k + 1] - self.point[2 * k]
        se = float(np.std(lam * re - rc, ddof=1))
        return est - self.q[k] * se, est + self.q[k] * se


class _Rubin:
    """Multiple imputation: Rubin's rules (Barnard-Rubin df) on the per-imputation estimates,
    with each imputation's bootstrap variance as its within-imputation variance."""

    def __init__(self, Q: np.ndarray, reps: np.ndarray, which: np.ndarray, df_complete: float,
                 level: float):
        self.Q, self.reps, self.which, self.dfcom, self.level = Q, reps, which, df_complete, level
        self.m = Q.shape[0]

    def _within(self, d: np.ndarray) -> np.ndarray:
        return np.stack([np.nanvar(d[self.which == j], axis=0, ddof=1) for j in range(self.m)])

    def pooled(self, f, k: int) -> dict:
        q = np.asarray(f(self.Q[:, 2 * k], self.Q[:, 2 * k + 1]), float)
        u = self._within(np.asarray(f(self.reps[:, 2 * k], self.reps[:, 2 * k + 1]), float))
        return mi_pool.pool(q, u, df_complete=self.dfcom, level=self.level)

    def __call__(self, f, k: int) -> dict:
        p = self.pooled(f, k)
        return dict(se=p["se"], ci_low=p["ci_low"], ci_high=p["ci_high"])

    def ceac_table(self, k: int, lambdas: np.ndarray):
        """Pooled INMB intervals over the whole λ grid at once."""
        lam = np.asarray(lambdas, float)[None, :]
        q = lam * self.Q[:, [2 * k + 1]] - self.Q[:, [2 * k]]
        u = self._within(lam * self.reps[:, [2 * k + 1]] - self.reps[:, [2 * k]])
        p = mi_pool.pool(q, u, df_complete=self.dfcom, level=self.level)
        return p["ci_low"], p["ci_high"]


def cost_effectiveness(pdata: ParticipantData, econ: dict, *, seed: int, clustered: bool,
                       level: float = 0.95, weighting: dict | None = None) -> dict[str, pd.DataFrame]:
    """Incremental cost-effectiveness analysis with bootstrap uncertainty.

    Incremental cost and effect by regression on ``[1, treat, baseline effect, baseline cost]``
    (the same regressors in both equations, so seemingly unrelated regression gives the
    equation-by-equation OLS estimates), the ICER and its quadrant, INMB over a willingness-to-pay
    grid, the cost-effectiveness plane and acceptability curve from a seeded, stratified bootstrap
    (two-stage when clustered; optionally shrinkage-corrected), cost per point gained on other
    outcomes and the WELLBY value.  ``econ["missing_data"]`` chooses complete cases or multiple
    imputation ("MI, then bootstrap", pooled by Rubin's rules); ``weighting`` a propensity-weighted
    analysis of a non-randomised comparison (module docstring).

    Parameters
    ----------
    pdata : ParticipantData
        Per-participant costs and effects (:func:`participant_table`).
    econ : dict
        The config's ``economics`` block (bootstrap replicates, thresholds, willingness-to-pay
        grid, missing data, outcomes).
    seed : int
        Seed of the bootstrap and the imputations.
    clustered : bool
        A cluster-randomised design: resample sites, then participants within sites.
    level : float
        Confidence level of the intervals.
    weighting : dict, optional
        The config's ``propensity`` block: weighted regressions (complete cases only).

    Returns
    -------
    dict of pandas.DataFrame
        ``cea`` (one row per analysis and measure: delta_cost, delta_qaly, icer, quadrant shares,
        inmb at each threshold, probabilities, with CIs and counts), ``ceac`` (probability
        cost-effective and incremental net monetary benefit per willingness-to-pay value),
        ``replicates`` (the bootstrap replicates) and ``by_arm`` (means by arm); with multiple
        imputation also ``fmi`` (fractions of missing information).

    References
    ----------
    Drummond MF, Sculpher MJ, Claxton K, Stoddart GL, Torrance GW. Methods for the Economic
    Evaluation of Health Care Programmes, 4th ed. Oxford University Press, 2015.

    Ramsey SD, Willke RJ, Glick H, et al. Cost-effectiveness analysis alongside clinical trials
    II: an ISPOR Good Research Practices Task Force report. Value Health 2015;18:161-172.

    Ng ES-W, Grieve R, Carpenter JR. Two-stage nonparametric bootstrap sampling with shrinkage
    correction for clustered data. Stata J 2013;13:141-164.

    Hesterberg TC. What teachers should know about the bootstrap: resampling in the
    undergraduate statistics curriculum. Am Stat 2015;69:371-386 (the expanded percentile
    interval of the propensity-weighted analysis, whose replicates without overlap in the score
    model are set aside: :func:`analysis.propensity.without_overlap`).

    Examples
    --------
    The committed demo trial, complete cases and 200 two-stage bootstrap replicates (the demo
    itself uses multiple imputation and 10,000):

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> from analysis.economics import cost_effectiveness, participant_table
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> econ = dict(cfg["economics"], missing_data="complete_case",
    ...             bootstrap=dict(cfg["economics"]["bootstrap"], replicates=200))
    >>> pdata = participant_table(t["linked"], t["service_use"], t["participants"], econ,
    ...                           intervention_arm="intervention")
    >>> res = cost_effectiveness(pdata, econ, seed=cfg["seed"], clustered=True)
    >>> main = res["cea"][res["cea"].analysis == "cea_qaly"].set_index("measure")
    >>> print(main.loc[["delta_cost", "delta_qaly"], ["estimate", "ci_low", "ci_high", "n"]].round(4).to_string())
                estimate    ci_low    ci_high   n
    measure
    delta_cost  847.5562 -238.0742  1703.0097  99
    delta_qaly    0.0281   -0.0072     0.0618  99
    """
    method = _check_options(econ, clustered, weighting)
    t = pdata.table
    fit = _fit(pdata, econ, method, seed=seed, clustered=clustered, level=level, weighting=weighting)
    thresholds = econ["thresholds"] or DEFAULT_THRESHOLDS
    table, lambdas = _ResultRows(t, fit), _lambda_grid(econ, thresholds)
    for k in range(len(fit.eqs)):
        table.add_equation(k, econ, thresholds, lambdas)
    cea = _with_sensitivity(_cea_table(table.rows, fit, econ, method), pdata, econ, fit, weighting,
                            seed=seed, clustered=clustered, level=level)
    out = dict(cea=cea[CEA_COLUMNS], ceac=pd.DataFrame(table.ceac_rows).rename(columns={"lambda_": "lambda"}),
               replicates=_replicate_table(fit),
               by_arm=summarise_by_arm(pdata, t.cost.notna().to_numpy() & t.qaly.notna().to_numpy()))
    if fit.m is not None:
        out["fmi"] = table.fmi
    return out


CEA_COLUMNS = ["analysis", "measure", "lambda", "threshold", "estimate", "se", "ci_low", "ci_high",
               "probability", "quadrant", "n", "n_intervention", "n_control", "n_sites",
               "bootstrap", "replicates", "price_year", "note", "missing_data", "imputations"]


def _check_options(econ: dict, clustered: bool, weighting: dict | None = None) -> str:
    """The missing-data method, after checking it, the bootstrap's cluster correction and
    that propensity weighting is asked for with complete cases and no correction."""
    method = econ.get("missing_data", "complete_case")
    if method not in MISSING_DATA_METHODS:
        raise ValueError(f"config key economics.missing_data: {method!r} is not one of "
                         f"{list(MISSING_DATA_METHODS)}")
    if weighting is not None and method != "complete_case":
        raise ValueError(f"config key economics.missing_data: {method!r} cannot be combined with the propensity "
                         "weighting of a non-randomised comparison (design.allocation: non_randomised); the "
                         "weighted economic evaluation supports complete_case only")
    if weighting is not None and econ["bootstrap"].get("cluster_correction", "none") != "none":
        raise ValueError("config key economics.bootstrap.cluster_correction: the shrinkage correction cannot be "
                         "combined with the propensity weighting of a non-randomised comparison; use 'none'")
    correction = econ["bootstrap"].get("cluster_correction", "none")
    if correction not in CLUSTER_CORRECTIONS:
        raise ValueError(f"config key economics.bootstrap.cluster_correction: {correction!r} is not one of "
                         f"{list(CLUSTER_CORRECTIONS)}")
    if correction != "none" and not clustered:
        raise ValueError(f"config key economics.bootstrap.cluster_correction: {correction!r} applies to "
                         "cluster-randomised designs only (design.type: cluster); use 'none'")
    return method


def _fit(pdata: ParticipantData, econ: dict, method: str, *, seed: int, clustered: bool, level: float,
         weighting: dict | None = None) -> _Fit:
    """Point estimates and seeded bootstrap replicates of every equation by ``method``."""
    shrink = econ["bootstrap"].get("cluster_correction", "none") == "shrinkage_t"
    draw = dict(replicates=int(econ["bootstrap"]["replicates"]), seed=[seed, 6], two_stage=clustered)
    if weighting is not None:
        if econ.get("weighted_interval", "model") == "model":
            return _model_weighted_fit(pdata.table, econ, weighting, draw, level)
        return _weighted_fit(pdata.table, econ, weighting, draw, level)
    if method == "complete_case":
        return _complete_case_fit(pdata.table, econ, shrink, draw, level)
    return _mi_fit(pdata, econ, seed, shrink, draw, clustered, level)


def _scheme(two_stage: bool, shrink: bool) -> str:
    """Plain-English description of the resampling (the ``bootstrap`` column)."""
    if shrink:
        return ("two-stage with shrinkage correction (sites, then participants within sites, residuals "
                "shrunk to unbiased variance components), stratified by arm")
    return ("two-stage (sites, then participants within sites), stratified by arm" if two_stage
            else "participants, stratified by arm")


@dataclass
class _Fit:
    """The analysis of every equation: point estimates and bootstrap replicates (columns 2k and
    2k + 1 are equation k's incremental cost and effect), their summary (``unc``), the
    resampling description and, under multiple imputation, m and each replicate's imputation."""
    eqs: list[dict]
    point: np.ndarray
    reps: np.ndarray
    unc: object
    scheme: str
    replicates: int
    m: int | None = None
    which: np.ndarray | None = None
    weight: np.ndarray | None = None  # propensity weights of the point estimate (0: left out)
    aside: np.ndarray | None = None  # weighted: replicates set aside (no overlap), kept out of the intervals

    def pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Equation k's replicates of incremental cost and effect (weighted: the defined ones,
        without those set aside)."""
        rc, re = self.reps[:, 2 * k], self.reps[:, 2 * k + 1]
        if self.weight is None:
            return rc, re
        keep = np.isfinite(rc) & np.isfinite(re) & ~self.aside
        return rc[keep], re[keep]


def _complete_case_fit(t: pd.DataFrame, econ: dict, shrink: bool, draw: dict, level: float) -> _Fit:
    """Complete cases: percentile intervals, or estimate +/- t x bootstrap SE with shrinkage."""
    scheme = _scheme(draw["two_stage"], shrink)
    eqs = _equations(t, econ)
    stat = _statistic(t, eqs)
    point = stat(np.ones((1, len(t))))[0]
    reps = boot.bootstrap(_statistic(t, _shrunk(t, eqs)) if shrink else stat, len(t), t.arm.to_numpy(),
                          t.site_id.to_numpy(), **draw)
    if shrink:
        dfs = [float(_clusters(t, e["use"]) - 2) for e in eqs]
        unc = _StudentT(reps, point, dfs, level)
        scheme += f"; intervals: estimate +/- t on clusters - 2 df ({', '.join(f'{d:g}' for d in dfs)}) x bootstrap SE"
    else:
        unc = _Percentile(reps, level)
        scheme += "; percentile intervals"
    return _Fit(eqs, point, reps, unc, scheme, draw["replicates"])


def _mi_fit(pdata: ParticipantData, econ: dict, seed: int, shrink: bool, draw: dict, clustered: bool,
            level: float) -> _Fit:
    """MI, then bootstrap: B replicates shared among the m imputations, Rubin's rules."""
    t = pdata.table
    B = draw["replicates"]
    imps = multiply_impute(pdata, econ, seed=seed)
    m = len(imps)
    if B < 2 * m:
        raise ValueError(f"config key economics.bootstrap.replicates: {B} replicates cannot be "
                         f"shared among {m} imputations (need at least 2 per imputation)")
    eqs_k = [_equations(imp, econ) for imp in imps]
    Q = np.vstack([_statistic(imp, e)(np.ones((1, len(t))))[0] for imp, e in zip(imps, eqs_k)])
    stat_k = [_statistic(imp, _shrunk(imp, e) if shrink else e) for imp, e in zip(imps, eqs_k)]
    which = np.repeat(np.arange(m), np.diff((np.arange(m + 1) * B) // m))
    reps = np.empty((B, Q.shape[1]))
    off = 0
    for counts in boot.count_blocks(len(t), t.arm.to_numpy(), t.site_id.to_numpy(), **draw):
        w = which[off:off + len(counts)]
        for k in np.unique(w):
            sel = np.flatnonzero(w == k)
            reps[off + sel] = stat_k[k](counts[sel].astype(float))
        off += len(counts)
    eqs = eqs_k[0]
    # complete-data df of the arm contrast: clusters - 2 when sites were randomised (the arm is a
    # cluster-level term), participants - regressors otherwise
    dfcom = _clusters(t) - 2 if clustered else len(t) - eqs[0]["X"].shape[1]
    if dfcom < 1:
        raise ValueError(f"economics: {_clusters(t)} clusters leave no degrees of freedom for Rubin's rules "
                         "(need at least three sites)")
    unc = _Rubin(Q, reps, which, df_complete=dfcom, level=level)
    scheme = _scheme(draw["two_stage"], shrink) + (
        f"; MI then bootstrap, {m} imputations x about {B // m} replicates each, pooled by "
        f"Rubin's rules (complete-data df {dfcom})")
    return _Fit(eqs, Q.mean(axis=0), reps, unc, scheme, B, m=m, which=which)


def _weighted_fit(t: pd.DataFrame, econ: dict, weighting: dict, draw: dict, level: float) -> _Fit:
    """Propensity-weighted complete-case analysis of a non-randomised comparison: the weighted
    least-squares regressions of :func:`_equations` with the weights of the outcome analysis
    (:func:`analysis.propensity.ps_weights`, same estimand); in every bootstrap replicate the
    score model is refitted with the replicate's counts and the weights recomputed (Austin PC.
    Stat Med 2016;35:5642), the regression weights being counts x weights.  Participants with a
    missing score covariate are left out, as in the outcome analysis.  Replicates without overlap
    (a level of a categorical score covariate drawn from one group only, or a separated score)
    are set aside and counted; the intervals are expanded percentile intervals (clusters - 2 df)
    of the replicates kept (docs/methods.md, "Non-randomised comparison")."""
    if not draw["two_stage"]:
        raise ValueError("economics: the propensity-weighted economic evaluation is implemented for cluster designs "
                         "(two-stage bootstrap of agencies) only")
    covs, data, ok, weight, beta, X, (est, stab, trim) = _score_inputs(t, weighting)
    eqs = [{**e, "use": e["use"] & ok} for e in _equations(t, econ)]
    stat, treat, levels = _statistic(t, eqs), t.treat.to_numpy(float), PS.level_indicators(data, covs)
    flags = []  # per block: (no weight left in a group, no overlap in a level, separated score)

    def weighted(counts: np.ndarray) -> np.ndarray:
        counts = counts * ok
        w, converged = PS.bootstrap_weights(X, treat, counts, beta, est, stab, trim)
        valid = np.isfinite(w).all(axis=1)
        gap = PS.without_overlap(levels, treat, counts) & valid
        flags.append(np.column_stack([~valid, gap, ~converged & valid & ~gap]))
        out = np.full((len(counts), 2 * len(eqs)), np.nan)
        out[valid] = stat(counts[valid] * w[valid])
        return out

    point = stat(weight[None, :])[0]
    reps = boot.bootstrap(weighted, len(t), t.arm.to_numpy(), t.site_id.to_numpy(), **draw)
    flags = np.vstack(flags)
    aside = flags[:, 1] | flags[:, 2]
    if (aside | flags[:, 0]).all():
        raise ValueError("economics: no bootstrap replicate of the propensity-weighted analysis has overlap "
                         "(every replicate drew a level of a score covariate from one group only, or left a "
                         "group without weight); merge sparse levels or add agencies")
    scheme = (_scheme(draw["two_stage"], False) + f"; propensity weighted ({est}"
              + (f", trimmed at {trim:g}" if trim else "") + "), the score model refitted in every replicate"
              + _set_aside_text(flags.sum(axis=0), draw["replicates"]))
    dfs = [float(max(_clusters(t, e["use"]) - 2, 1)) for e in eqs]
    scheme += ("; expanded percentile intervals of the replicates kept (a variant of Hesterberg 2015's expansion, "
               "chosen by simulation: the percentiles at the tail probability whose normal quantile is the t "
               f"quantile on clusters - 2 df, {', '.join(f'{d:g}' for d in dfs)})")
    scheme += _few_kept_text(int((~aside & ~flags[:, 0]).sum()), dfs, level)
    scheme += _agency_level_text(data[ok], covs, t.site_id.to_numpy()[ok])
    scheme += _agency_icc_text(t, eqs, X)
    used = np.where(aside[:, None], np.nan, reps)
    return _Fit(eqs, point, reps, _Percentile(used, level, dfs), scheme, draw["replicates"], weight=weight,
                aside=aside)


def _score_inputs(t: pd.DataFrame, weighting: dict):
    """The score covariates' data, the rows with all of them, the point-estimate weights (0 for
    those left out or trimmed), the score model's coefficients and design (rows left out: 0)."""
    covs = list(weighting["covariates"])
    absent = [c for c in covs if f"ps_{c}" not in t]
    if absent:
        raise KeyError(f"economics: propensity covariates {absent} are not in the participant table "
                       "(participant_table(..., ps_covariates=...))")
    data = pd.DataFrame({c: t[f"ps_{c}"] for c in covs}).assign(treated=t.treat.astype(int))
    ok = data[covs].notna().all(axis=1).to_numpy()
    if not ok.any():
        raise ValueError("economics: no participant has every propensity covariate")
    est, stab, trim = weighting.get("estimand", "ATT"), bool(weighting.get("stabilise", True)), \
        float(weighting.get("trim", 0))
    w0 = PS.ps_weights(PS.propensity_scores(data[ok], "treated", covs), data.treated[ok], est, stab, trim)
    weight = np.zeros(len(t))
    weight[ok] = w0.weight.to_numpy()
    beta, Xok = PS.score_fit(data[ok], "treated", covs)
    X = np.zeros((len(t), Xok.shape[1]))
    X[ok] = Xok
    return covs, data, ok, weight, beta, X, (est, stab, trim)


def _model_weighted_fit(t: pd.DataFrame, econ: dict, weighting: dict, draw: dict, level: float) -> _Fit:
    """Propensity-weighted analysis with model-based intervals (``economics.weighted_interval:
    model``, the default; docs/methods.md, "Non-randomised comparison"): each equation's weighted
    least-squares regression also adjusts for the score covariates (weighting plus regression, as
    the outcome analysis's default), and every linear contrast of the incremental cost and effect
    gets the variance a'Va of :mod:`analysis.agency_variance` (a random agency intercept fitted by
    REML to that contrast's outcome, e.g. the net benefit at a threshold, on the regression's
    terms and the arm x score covariate terms; with ``WITHIN_BY_CELL``, the default, a
    within-agency variance per cell of arm x the categorical score covariates' levels, cells of
    fewer than ``CELL_MIN`` participants merged by :func:`merge_small_cells`, so that the
    variance where the weights put their mass is not the pooled one) with an interval on
    Satterthwaite's degrees of freedom.  The cost-effectiveness plane and quadrant shares use
    seeded draws from the bivariate t with that covariance (``economics.bootstrap.replicates``
    draws in antithetic pairs, df the smaller of the two); the acceptability curve and the
    probabilities are P(contrast > 0) from the same t distribution as the contrast's interval.
    Refused when the agency-level terms leave no agency to estimate the variation between them."""
    if not draw["two_stage"]:
        raise ValueError("economics: the propensity-weighted economic evaluation is implemented for cluster designs "
                         "(agencies) only")
    covs, data, ok, weight, _, X, (est, _, trim) = _score_inputs(t, weighting)
    eqs = []
    for e in _equations(t, econ):
        use = e["use"] & (weight > 0)
        Xa = np.column_stack([e["X"], X[:, 1:]])
        if np.linalg.matrix_rank(Xa[use]) < Xa.shape[1]:
            raise ValueError(f"economics: in {e['analysis']} the score covariates ({', '.join(covs)}) are collinear "
                             "with the arm or the baseline values among the participants analysed, so the weighted "
                             "regression adjusted for them has no unique estimate; drop or merge the covariate "
                             "that is constant within an arm or duplicates a baseline value")
        # the variance model also has the arm x score covariate terms, so that an effect differing
        # by a covariate (e.g. client group, an agency characteristic) is not taken for variation
        # between agencies
        Fa = np.column_stack([Xa, X[:, 1:] * t.treat.to_numpy(float)[:, None]])
        eqs.append({**e, "X": Xa, "use": use, "F": Fa[:, _independent_columns(Fa[use])]})
    point = _statistic(t, eqs)(weight[None, :])[0]
    unc = _ModelBased(t, eqs, weight, point, level, _variance_cells(t, data, covs) if WITHIN_BY_CELL else None)
    B = draw["replicates"]
    rng = np.random.default_rng(draw["seed"])
    reps = np.empty((B, 2 * len(eqs)))
    for k in range(len(eqs)):
        cov, df = unc.covariance(k)
        half = (B + 1) // 2  # antithetic pairs: the draws are symmetric about the estimates
        # eigh when the covariance is (numerically) singular, e.g. the correlation clipped at +/-1:
        # there Cholesky can fail although every eigenvalue computed is positive
        definite = np.linalg.eigvalsh(cov).min() > 1e-10 * np.trace(cov)
        z = rng.multivariate_normal(np.zeros(2), cov, size=half, method="cholesky" if definite else "eigh")
        s = np.sqrt(df / rng.chisquare(df, size=half)) if np.isfinite(df) else np.ones(half)
        z, scale = np.vstack([z, -z])[:B], np.concatenate([s, s])[:B]
        reps[:, 2 * k:2 * k + 2] = point[2 * k:2 * k + 2] + z * scale[:, None]
    scheme = (f"propensity weighted ({est}" + (f", trimmed at {trim:g}" if trim else "")
              + "); weighted regressions adjusted for the baseline values and the score covariates "
              f"({', '.join(covs)}); model-based intervals: variance a'Va with a random agency intercept fitted "
              "by REML to each contrast's outcome on those terms and the arm x score covariate terms "
              "(between-agency variance pooled over all agencies" + (
                  "; a within-agency variance per cell of arm x the categorical score covariates' levels, "
                  f"cells of fewer than {CELL_MIN} participants merged with the nearest other cell of their arm (the most leading levels shared, then the smallest): "
                  + unc.cells_text() if WITHIN_BY_CELL else "") + "), conditional on the covariates and arms, "
              "t on Satterthwaite's degrees of freedom (" + unc.describe()
              + "); cost-effectiveness plane "
              f"and quadrant shares from {B} seeded draws (antithetic pairs) of the bivariate t with that "
              "covariance (df the smaller of the cost's and the effect's); acceptability "
              "curve and probabilities from the t distribution of each contrast; not a bootstrap")
    scheme += _agency_level_text_model(data[ok], covs, t.site_id.to_numpy()[ok])
    return _Fit(eqs, point, reps, unc, scheme, B, weight=weight, aside=np.zeros(B, dtype=bool))


def _independent_columns(F: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Indices of the columns of F kept, left to right, each not a linear combination of those
    before it (a level of a score covariate seen in one arm only has no arm x level term): the
    columns whose diagonal element of R in the QR decomposition of the max-scaled F is not ~0.

    >>> x = np.arange(6.0)
    >>> _independent_columns(np.column_stack([np.ones(6), x, 2 * x, x**2])).tolist()
    [0, 1, 3]
    """
    sub = F / np.maximum(np.abs(F).max(axis=0), 1e-300)
    r = np.abs(np.diag(np.linalg.qr(sub, mode="r")))
    return np.flatnonzero(r > tol * np.sqrt(len(F)))


def _agency_level_text_model(data: pd.DataFrame, covs: list[str], sites: np.ndarray) -> str:
    """A note when a categorical score covariate is an agency characteristic: the interval is
    for a comparison of agencies with this mix of its levels (conditional on the covariates)."""
    agency = [c for c in covs if not _is_numeric(data[c])
              and (pd.DataFrame({"s": sites, "x": data[c].to_numpy()}).groupby("s").x.nunique() <= 1).all()]
    if not agency:
        return ""
    return (f"; note: {', '.join(agency)} is a characteristic of the agency; the intervals are for agencies with "
            "this mix of its levels, and the variance between agencies is assumed the same at every level")


# Satterthwaite's df are not capped at the agencies minus the agency-level terms: measured in
# simulation, the cap made the default scenario's intervals conservative (cost coverage 96.6-97.3%
# against 95.4-96.3%) for little gain with large agency effects (docs/methods.md); True only to
# measure it (benchmarks/econ_propensity_scenarios.py --df-cap)
CAP_DF = False
WITHIN_BY_CELL = True  # a within-agency variance per cell of arm x categorical score covariates (False: one)
CELL_MIN = 10  # cells with fewer participants analysed are merged with the nearest other cell of their arm


def _variance_cells(t: pd.DataFrame, data: pd.DataFrame, covs: list[str]) -> np.ndarray:
    """Each participant's cell for the within-agency variances: the arm and the levels of the
    categorical score covariates (numeric covariates define no cells), as a label such as
    ``intervention|mental_health|female``; rows without every covariate get their arm's label
    with ``?`` (they are not analysed)."""
    arm = np.where(t.treat.to_numpy(float) == 1, "intervention", "comparison").astype(object)
    out = arm.copy()
    for c in covs:
        if not _is_numeric(data[c]):
            out = out + "|" + data[c].astype(object).where(data[c].notna(), "?").astype(str).to_numpy()
    return out


def _shared_levels(a: str, b: str) -> int:
    """The most leading ``|``-separated levels a part of cell a shares with a part of cell b."""
    def lead(x, y):
        n = 0
        for u, v in zip(x.split("|"), y.split("|")):
            if u != v:
                break
            n += 1
        return n
    return max(lead(x, y) for x in a.split("+") for y in b.split("+"))


def merge_small_cells(cells: np.ndarray, arm: np.ndarray, minimum: int = CELL_MIN) -> np.ndarray:
    """Cells of fewer than ``minimum`` rows merged, smallest first, with the other cell of the same
    arm that shares the most leading levels with it (e.g. the same client group, the other sex),
    the smallest of those (labels joined by ``+``), until every cell of an arm has ``minimum``
    rows or the arm is one cell.

    >>> merge_small_cells(np.array(["a"] * 3 + ["b"] * 12 + ["c"] * 20), np.zeros(35), 10).tolist()[:4]
    ['a+b', 'a+b', 'a+b', 'a+b']
    """
    cells = np.asarray(cells, dtype=object).copy()
    for a in pd.unique(arm):
        rows = np.asarray(arm == a)
        while True:
            labels, counts = np.unique(cells[rows].astype(str), return_counts=True)
            if len(labels) < 2 or counts.min() >= minimum:
                break
            small = labels[np.argsort(counts, kind="stable")[0]]
            # the other cell sharing the most leading levels with it (arm, first covariate, ...), then the smallest
            others = [(-_shared_levels(small, lab), c, lab) for lab, c in zip(labels, counts) if lab != small]
            other = min(others)[2]
            cells[rows & ((cells == small) | (cells == other))] = "+".join(sorted([small, other]))
    return cells


class _ModelBased:
    """Model-based intervals of the weighted analysis (:func:`_model_weighted_fit`): for a linear
    function f of (incremental cost, incremental effect) of equation k, the REML random-intercept
    variance of the weighted contrast of f(cost, effect) and Satterthwaite's df."""

    def __init__(self, t: pd.DataFrame, eqs: list[dict], weight: np.ndarray, point: np.ndarray, level: float,
                 cells: np.ndarray | None = None):
        self.level, self.point, self.parts, self._cache = level, point, [], {}
        sites, cost = t.site_id.to_numpy(), t.cost.to_numpy(float)
        arm = t.treat.to_numpy(float)
        for e in eqs:
            use = e["use"]
            X = e["X"][use]
            df_max = AV.agency_level_df(e["F"][use], sites[use])
            if df_max < 1:
                raise ValueError(f"economics: in {e['analysis']} the {len(set(sites[use]))} agencies analysed leave no "
                                 "degrees of freedom for the variation between them once the agency-level terms "
                                 "(arm, agency-level score covariates and their arm interactions) are fitted; the "
                                 "model-based interval needs more agencies")
            self.parts.append(dict(X=X, F=e["F"][use], g=sites[use], c=cost[use], df_max=df_max,
                                   e=t[e["effect"]].to_numpy(float)[use],
                                   a=AV.contrast_row(X, weight[use]), effect=e["effect"],
                                   analysis=e["analysis"],
                                   cells=None if cells is None else merge_small_cells(cells[use], arm[use])))

    def _fit(self, k: int, alpha: float, beta: float) -> tuple[float, float, float]:
        """Variance, df and intra-agency correlation of the contrast of alpha x cost + beta x effect
        (fitted once per direction: a multiple of a contrast has the multiple squared as variance,
        the same df and correlation)."""
        norm = float(np.hypot(alpha, beta))
        sign = 1.0 if (alpha > 0 or (alpha == 0 and beta > 0)) else -1.0
        key = (k, round(sign * alpha / norm, 12), round(sign * beta / norm, 12))
        if key not in self._cache:
            p = self.parts[k]
            fit = AV.fit_random_intercept(key[1] * p["c"] + key[2] * p["e"], p["F"], p["g"], p["cells"])
            v, df = AV.contrast_variance(p["a"], p["g"], fit, p["df_max"] if CAP_DF else np.inf)
            self._cache[key] = (v, df, fit.icc)
        v, df, icc = self._cache[key]
        return v * norm**2, df, icc

    @staticmethod
    def _coef(f) -> tuple[float, float]:
        alpha, beta = float(f(1.0, 0.0)), float(f(0.0, 1.0))
        if abs(float(f(0.0, 0.0))) > 0 or abs(float(f(2.0, 3.0)) - (2 * alpha + 3 * beta)) > 1e-9 * (1 + abs(alpha) + abs(beta)):
            raise ValueError("model-based intervals are for linear functions of the incremental cost and effect")
        return alpha, beta

    def __call__(self, f, k: int) -> dict:
        alpha, beta = self._coef(f)
        v, df, _ = self._fit(k, alpha, beta)
        est = alpha * self.point[2 * k] + beta * self.point[2 * k + 1]
        se = float(np.sqrt(v))
        q = float(stats.t.ppf(0.5 + self.level / 2, df))
        return dict(se=se, ci_low=est - q * se, ci_high=est + q * se)

    def prob(self, f, k: int) -> float:
        """P(f > 0) from the contrast's t distribution (the parametric acceptability curve)."""
        alpha, beta = self._coef(f)
        v, df, _ = self._fit(k, alpha, beta)
        est = alpha * self.point[2 * k] + beta * self.point[2 * k + 1]
        return float(stats.t.cdf(est / np.sqrt(v), df)) if v > 0 else float(est > 0)

    def ceac_ci(self, rc, re, lam, k: int = 0) -> tuple[float, float]:
        r = self(lambda c, e, lam=lam: lam * e - c, k)
        return r["ci_low"], r["ci_high"]

    def covariance(self, k: int) -> tuple[np.ndarray, float]:
        """Covariance of (incremental cost, effect) of equation k: the cross term from the variance
        of cost + s x effect (s = SD ratio), and the smaller of the two dfs."""
        vc, dfc, _ = self._fit(k, 1.0, 0.0)
        ve, dfe, _ = self._fit(k, 0.0, 1.0)
        s = float(np.sqrt(vc / ve)) if ve > 0 else 1.0
        vs, _, _ = self._fit(k, 1.0, s)
        cce = (vs - vc - s * s * ve) / (2 * s)
        lim = np.sqrt(vc * ve)
        cce = float(np.clip(cce, -lim, lim))
        return np.array([[vc, cce], [cce, ve]]), float(min(dfc, dfe))

    def cells_text(self) -> str:
        """The cells of each equation with their participants analysed."""
        out = []
        for p in self.parts:
            labels, counts = np.unique(p["cells"].astype(str), return_counts=True)
            out.append(f"{p['analysis']}: " + ", ".join(f"{lab} {c}" for lab, c in zip(labels, counts)))
        return "; ".join(out)

    def describe(self) -> str:
        out = []
        for k, p in enumerate(self.parts):
            vc, dfc, ic = self._fit(k, 1.0, 0.0)
            ve, dfe, ie = self._fit(k, 0.0, 1.0)
            out.append(f"{p['analysis']}: cost df {dfc:.1f}, intra-agency correlation {ic:.2f}, {p['effect']} "
                       f"df {dfe:.1f}, intra-agency correlation {ie:.2f}")
        return "; ".join(out)


SET_ASIDE_WARNING = 0.5  # above this share of replicates set aside, the scheme carries a warning


def _few_kept_text(kept: int, dfs: list[float], level: float) -> str:
    """A warning when the replicates kept are too few for the expanded tails: about 10 replicates
    are wanted beyond each end (fewer, and an end is one of the most extreme replicates, which
    moves with the number of replicates); with very few clusters no number of replicates is
    enough, because the tails become vanishingly small."""
    tail = min(float(stats.norm.sf(stats.t.isf((1 - level) / 2, d))) for d in dfs)
    need = int(np.ceil(10 / tail)) if tail > 0 else 0
    if tail > 0 and kept >= need:
        return ""
    wanted = f"about {need:,}" if 0 < need <= 10**7 else "an impractical number of"
    return (f"; WARNING: the expanded interval's tails ({100 * tail:.2g}% each) need {wanted} replicates kept, "
            f"and {kept} were: its ends are among the most extreme replicates; increase "
            "economics.bootstrap.replicates" + ("; with so few agencies the interval is not validated"
                                                  if min(dfs) < 6 else ""))


AGENCY_ICC_WARNING = 0.15  # above this intra-agency correlation the weighted interval may be too narrow


def residual_icc(y: np.ndarray, Z: np.ndarray, sites: np.ndarray) -> float:
    """One-way analysis-of-variance estimate of the intra-agency correlation of the residuals of
    ``y`` regressed on ``Z`` by least squares (unequal agency sizes: the n0 of Searle, Casella &
    McCulloch 1992, section 3.6), truncated at 0; NaN with fewer than two agencies.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> sites = np.repeat(np.arange(200), 20)
    >>> y = rng.normal(0, 1, 200)[sites] + rng.normal(0, 2, len(sites))   # true 1 / (1 + 4) = 0.2
    >>> abs(residual_icc(y, np.ones((len(y), 1)), sites) - 0.2) < 0.05   # estimate 0.17
    True
    """
    r = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
    _, idx = np.unique(sites, return_inverse=True)
    size = np.bincount(idx).astype(float)
    k, n = len(size), len(r)
    if k < 2 or n <= k:
        return float("nan")
    means = np.bincount(idx, r) / size
    msb = float((size * (means - r.mean()) ** 2).sum() / (k - 1))
    msw = float(((r - means[idx]) ** 2).sum() / (n - k))
    between = max(float((msb - msw) / ((n - (size**2).sum() / n) / (k - 1))), 0.0)
    return between / (between + msw) if between + msw > 0 else float("nan")


def _agency_icc_text(t: pd.DataFrame, eqs: list[dict], score_X: np.ndarray) -> str:
    """The intra-agency correlation of the cost and of each effect, given the equation's regressors
    and the score covariates (:func:`residual_icc`), and a warning above ``AGENCY_ICC_WARNING``.
    In simulation (docs/methods.md) the weighted interval was about right with a true correlation
    of 0.08 (this estimate averaged 0.05: the agency-level regressors take up some of the
    between-agency variance), too wide near 0 and too narrow at 0.26 (estimate 0.18; above 0.15
    in 62% of comparisons, against 2.5% at 0.08)."""
    sites = t.site_id.to_numpy()
    icc = {}
    for k, e in enumerate(eqs):
        use = e["use"]
        Z = np.column_stack([e["X"][use], score_X[use][:, 1:]])
        outcomes = ([("cost", t.cost)] if k == 0 else []) + [(e["effect"], t[e["effect"]])]
        for name, y in outcomes:
            icc[name] = residual_icc(y.to_numpy(float)[use], Z, sites[use])
    text = ("; intra-agency correlation of the residuals given the regressors and the score covariates: "
            + ", ".join(f"{k} {v:.2f}" for k, v in icc.items())
            + " (in simulation the intervals were about right where this averaged 0.05, too wide near 0 and "
               "too narrow where it averaged 0.18)")
    high = [k for k, v in icc.items() if v > AGENCY_ICC_WARNING]
    if high:
        text += (f"; WARNING: the intra-agency correlation of {', '.join(high)} is above {AGENCY_ICC_WARNING:g}: "
                 "the intervals may be too narrow (in simulation with agencies differing this much, 13-24% too "
                 "narrow, coverage 85-92% for 95%; docs/methods.md); an effect that differs by an agency "
                 "characteristic also raises it")
    return text


def _agency_level_text(data: pd.DataFrame, covs: list[str], sites: np.ndarray) -> str:
    """A note when a categorical score covariate is a characteristic of the agency (one level in
    every agency, e.g. the client group an agency serves): redrawing agencies then redraws each
    arm's mix of that covariate's levels, and with an effect that differs between its levels the
    interval includes that variation, which a comparison of these very agencies does not have
    (docs/methods.md: cost intervals 14-20% wider than the estimates' spread over comparisons with
    the mix held fixed, in simulation, against 0-9% with a constant effect)."""
    agency = [c for c in covs if not _is_numeric(data[c])
              and (pd.DataFrame({"s": sites, "x": data[c].to_numpy()}).groupby("s").x.nunique() <= 1).all()]
    if not agency:
        return ""
    return (f"; note: {', '.join(agency)} is a characteristic of the agency, so the bootstrap redraws each arm's "
            "mix of agencies by it; if the effect differs between its levels, the interval also covers "
            "other mixes of agencies and is wider than for this mix (in simulation the cost interval was 14-20% "
            "wider than the spread of estimates for a fixed mix; docs/methods.md)")


def _set_aside_text(n: np.ndarray, replicates: int) -> str:
    """The ``bootstrap`` column's account of the weighted replicates left out: ``n`` counts those
    with no weight left in a group, with no overlap in a level of a categorical score covariate,
    and with a separated score model (fitted scores at 0 or 1) otherwise."""
    no_weight, gap, separated = (int(x) for x in n)
    aside = gap + separated
    text = ("; rule: a replicate without overlap is set aside (a level of a categorical score covariate "
            "drawn from one group only, or a score model without a finite fit, scores at 0 or 1), so the "
            "interval comes from the resamples in which the estimand is defined, as in the full sample; "
            f"set aside: {aside} of {replicates} replicates ({gap} without overlap in a level, {separated} "
            "with a separated score)")
    if no_weight:
        text += f"; {no_weight} replicates with no weight left in one group are left out"
    used = replicates - aside - no_weight
    if aside + no_weight > SET_ASIDE_WARNING * replicates:
        text += (f"; WARNING: more than half the replicates were set aside, so the interval rests on the "
                 f"{used} that remain; some level has very few agencies in one group: a larger number of "
                 "replicates steadies the interval, and merging that level or adding agencies makes the "
                 "comparison less fragile")
    return text


class _ResultRows:
    """The rows of the ``cea`` table (one per analysis and measure) and of the ``ceac`` table,
    equation by equation, with the fractions of missing information under MI."""

    def __init__(self, t: pd.DataFrame, fit: _Fit):
        self.t, self.fit, self.rows, self.ceac_rows, self.fmi = t, fit, [], [], {}

    def add(self, analysis, measure, estimate, k=None, f=None, **kw):
        r = dict(analysis=analysis, measure=measure, estimate=float(estimate))
        if f is not None:
            r.update(self.fit.unc(f, k))
        self.rows.append({**r, **kw})

    def add_equation(self, k: int, econ: dict, thresholds: list[dict], lambdas: np.ndarray) -> None:
        t, fit, e = self.t, self.fit, self.fit.eqs[k]
        dc, de = fit.point[2 * k], fit.point[2 * k + 1]
        rc, re = fit.pair(k)
        use = e["use"] if fit.weight is None else e["use"] & (fit.weight > 0)
        common = dict(n=int(use.sum()), n_intervention=int((use & (t.treat == 1)).sum()),
                      n_control=int((use & (t.treat == 0)).sum()), n_sites=int(t.site_id[use].nunique()))
        an = e["analysis"]
        self.add(an, "delta_cost", dc, k, lambda c, e_: c, **common)
        self.add(an, f"delta_{e['effect']}", de, k, lambda c, e_: e_, **common)
        if fit.m is not None:
            self.fmi[an] = (fit.unc.pooled(lambda c, e_: c, k)["fmi"], fit.unc.pooled(lambda c, e_: e_, k)["fmi"])
        q = quadrant(dc, de)
        self.add(an, "icer", icer(dc, de), quadrant=q, note=QUADRANTS[q], **common)
        rq = np.where(rc >= 0, "N", "S").astype(object) + np.where(re >= 0, "E", "W")
        for qq in ("NE", "SE", "SW", "NW"):
            self.add(an, f"share_{qq}", np.mean(rq == qq), quadrant=qq, note=QUADRANTS[qq], **common)
        if an == "cea_qaly":
            self._qaly_rows(k, thresholds, lambdas, common)
        if an == "wellby":
            self._wellby_rows(k, econ["wellby"], common)

    def _qaly_rows(self, k: int, thresholds: list[dict], lambdas: np.ndarray, common: dict) -> None:
        """Acceptability curve with INMB intervals, INMB at each threshold, P(cost saving) and
        P(more effective)."""
        fit, an = self.fit, self.fit.eqs[k]["analysis"]
        dc, de = fit.point[2 * k], fit.point[2 * k + 1]
        rc, re = fit.pair(k)
        prob = (ceac(rc, re, lambdas) if not hasattr(fit.unc, "prob")
                else np.array([fit.unc.prob(lambda c, e_, lam=lam: lam * e_ - c, k) for lam in lambdas]))
        if fit.m is None:
            cis = [fit.unc.ceac_ci(rc, re, lam) for lam in lambdas]  # cea_qaly is equation 0
        else:
            lo, hi = fit.unc.ceac_table(k, lambdas)
            cis = list(zip(lo.tolist(), hi.tolist()))
        for lam, p, (lo_, hi_) in zip(lambdas, prob, cis):
            self.ceac_rows.append(dict(lambda_=lam, prob_cost_effective=p, inmb=lam * de - dc,
                                       inmb_ci_low=lo_, inmb_ci_high=hi_))
        for th in thresholds:
            lam = float(th["value"])
            self.add(an, "inmb", lam * de - dc, k, lambda c, e_, lam=lam: lam * e_ - c, **{"lambda": lam},
                     threshold=th["label"], probability=self._prob(k, lambda c, e_, lam=lam: lam * e_ - c),
                     **common)
        self.add(an, "prob_cost_saving", self._prob(k, lambda c, e_: -c), **common)
        self.add(an, "prob_more_effective", self._prob(k, lambda c, e_: e_), **common)

    def _prob(self, k: int, f) -> float:
        """P(f(incremental cost, effect) > 0): the share of replicates, or under model-based
        intervals the contrast's t distribution."""
        if hasattr(self.fit.unc, "prob"):
            return self.fit.unc.prob(f, k)
        rc, re = self.fit.pair(k)
        return float(np.mean(f(rc, re) > 0))

    def _wellby_rows(self, k: int, w: dict, common: dict) -> None:
        """WELLBY values (central, low, high) and the net value (central value minus cost)."""
        fit, an = self.fit, self.fit.eqs[k]["analysis"]
        dc, de = fit.point[2 * k], fit.point[2 * k + 1]
        rc, re = fit.pair(k)
        for which_, tag in (("value", "central"), ("low", "low"), ("high", "high")):
            val = float(w[which_]) * float(w["uprating_factor"])
            self.add(an, f"wellby_value_{tag}", wellby_value(de, w[which_], w["uprating_factor"]),
                     k, lambda c, e_, val=val: e_ * val, **{"lambda": val},
                     note=f"£{val:,.0f} per WELLBY, {w['price_basis']}", **common)
        val = float(w["value"]) * float(w["uprating_factor"])
        self.add(an, "wellby_net_value", de * val - dc, k, lambda c, e_, val=val: e_ * val - c,
                 **{"lambda": val}, probability=self._prob(k, lambda c, e_, val=val: e_ * val - c),
                 note="WELLBY value (central) minus incremental cost; price years may differ", **common)


def _cea_table(rows: list[dict], fit: _Fit, econ: dict, method: str) -> pd.DataFrame:
    """The rows as a table with every column of :data:`CEA_COLUMNS` and the analysis settings."""
    cea = pd.DataFrame(rows)
    for c in ("lambda", "threshold", "probability", "quadrant", "note", "se", "ci_low", "ci_high"):
        if c not in cea:
            cea[c] = np.nan
    cea["bootstrap"] = fit.scheme
    cea["replicates"] = fit.replicates
    cea["price_year"] = econ["price_year"]
    cea["missing_data"] = method
    cea["imputations"] = np.nan if fit.m is None else float(fit.m)
    return cea[CEA_COLUMNS]


def _with_sensitivity(cea: pd.DataFrame, pdata: ParticipantData, econ: dict, fit: _Fit, weighting: dict | None,
                      **kw) -> pd.DataFrame:
    """``cea`` with the main result (incremental cost, QALYs, ICER) of the sensitivity analyses
    appended: complete cases after multiple imputation (``cea_qaly_complete_case``), the
    unweighted comparison after propensity weighting (``cea_qaly_unweighted``, ignoring the
    non-random allocation; on the participants the weighted analysis uses, those with every score
    covariate, so the two differ by the weighting only)."""
    others = []
    if fit.m is not None:
        others.append(("cea_qaly_complete_case", {**econ, "missing_data": "complete_case"}))
    if weighting is not None:
        others.append(("cea_qaly_unweighted", econ))
    for label, econ_ in others:
        data = pdata
        if label == "cea_qaly_unweighted":  # the same participants as the weighted analysis
            keep = pdata.table[[f"ps_{c}" for c in weighting["covariates"]]].notna().all(axis=1)
            data = dc_replace(pdata, table=pdata.table[keep].reset_index(drop=True))
        other = cost_effectiveness(data, econ_, **kw)["cea"]
        other = other[(other.analysis == "cea_qaly") & other.measure.isin(["delta_cost", "delta_qaly", "icer"])]
        cea = pd.concat([cea, other.assign(analysis=label)], ignore_index=True)
    return cea


def _replicate_table(fit: _Fit) -> pd.DataFrame:
    """The bootstrap replicates, two columns (cost, effect) per analysis; after propensity
    weighting also ``set_aside`` (the replicates without overlap, left out of the intervals)."""
    names = []
    for e in fit.eqs:
        tag = e["analysis"].replace("cost_per_point:", "")
        names += [f"delta_cost_{tag}", f"delta_effect_{tag}"]
    rep_t = pd.DataFrame(fit.reps, columns=names)
    rep_t.insert(0, "replicate", np.arange(1, fit.replicates + 1))
    if fit.m is not None:
        rep_t.insert(1, "imputation", fit.which + 1)
    if fit.aside is not None:  # weighted: kept in the table, left out of the intervals and the plane
        rep_t["set_aside"] = fit.aside
    return rep_t


def summarise_by_arm(pdata: ParticipantData, use: np.ndarray) -> pd.DataFrame:
    """Mean (SD) cost by category, total cost, baseline cost, QALYs and baseline utility by arm
    among the complete cases of the main analysis."""
    t = pdata.table[use]
    rows = []
    cols = [(f"cost_{c}", "cost", c) for c in pdata.categories] + [
        ("cost", "cost", "total"), ("cost_bl", "cost", "baseline (recall period)"),
        ("qaly", "effect", "QALY"), ("utility_bl", "effect", "baseline utility")]
    if "wellby" in t:
        cols.append(("wellby", "effect", "life-satisfaction years"))
    for arm, g in t.groupby("arm", sort=True):
        for col, kind, label in cols:
            v = g[col].dropna().astype(float)
            rows.append(dict(arm=arm, kind=kind, item=label, n=len(v), mean=float(v.mean()),
                             sd=float(v.std(ddof=1)) if len(v) > 1 else np.nan))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------

def ce_plane_png(d_effect: np.ndarray, d_cost: np.ndarray, point: tuple[float, float],
                 thresholds: list[dict], effect_label: str = "QALYs",
                 replicate_label: str = "bootstrap replicates") -> bytes:
    """Bootstrap replicates (or, model-based, draws) on the cost-effectiveness plane with threshold lines."""
    from analysis.figures import ARM_COLOURS, _png, plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.scatter(d_effect, d_cost, s=2, alpha=0.15, color=ARM_COLOURS[0], rasterized=True,
               label=replicate_label)
    ax.axhline(0, color="black", lw=0.8)
    ax.axvline(0, color="black", lw=0.8)
    xmax = float(np.nanmax(np.abs(d_effect))) * 1.05 or 1.0
    xs = np.array([-xmax, xmax])
    for i, th in enumerate(thresholds):
        ax.plot(xs, th["value"] * xs, ls=["--", ":", "-.", (0, (5, 1))][i % 4], color="grey",
                lw=1, label=f"£{th['value']:,.0f} per {effect_label[:-1] if effect_label.endswith('s') else effect_label}")
    ax.scatter([point[0]], [point[1]], color=ARM_COLOURS[1], s=40, zorder=5, label="point estimate")
    ymax = float(np.nanmax(np.abs(d_cost))) * 1.05 or 1.0
    ax.set_xlim(-xmax, xmax)
    ax.set_ylim(-ymax, ymax)
    ax.set_xlabel(f"Incremental {effect_label}")
    ax.set_ylabel("Incremental cost (£)")
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_title("Cost-effectiveness plane (intervention minus control)")
    return _png(fig)


def ceac_png(ceac_table: pd.DataFrame, thresholds: list[dict]) -> bytes:
    """Cost-effectiveness acceptability curve with the labelled thresholds."""
    from analysis.figures import ARM_COLOURS, _png, plt
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(ceac_table["lambda"], ceac_table.prob_cost_effective, color=ARM_COLOURS[0])
    for i, th in enumerate(thresholds):
        ax.axvline(th["value"], ls=["--", ":", "-.", (0, (5, 1))][i % 4], color="grey", lw=1,
                   label=th["label"])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Willingness to pay per QALY, λ (£)")
    ax.set_ylabel("Probability intervention is cost-effective")
    ax.legend(frameon=False, fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    ax.set_title("Cost-effectiveness acceptability curve")
    return _png(fig)
