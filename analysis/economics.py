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

Missing data: complete-case analysis of costs and effects; missing *baseline* covariates are
replaced by their mean, which is valid in a randomised trial (White IR, Thompson SG. Stat Med
2005;24:993).  Multiple imputation is designed in (``missing_data`` option) but not yet done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import bootstrap as boot
from analysis import costs as C
from analysis.qaly import auc, discount_weight

QUADRANTS = {"NE": "more effective, more costly", "SE": "more effective, less costly (dominant)",
             "SW": "less effective, less costly", "NW": "less effective, more costly (dominated)"}
DEFAULT_THRESHOLDS = [
    dict(value=20000, label="£20,000 per QALY (NICE manual 2022, lower)"),
    dict(value=30000, label="£30,000 per QALY (NICE manual 2022, upper)"),
    dict(value=25000, label="£25,000 per QALY (NICE technology appraisals from April 2026, lower)"),
    dict(value=35000, label="£35,000 per QALY (NICE technology appraisals from April 2026, upper)"),
]


def quadrant(d_cost: float, d_effect: float) -> str:
    """Quadrant of the cost-effectiveness plane (effect on x, cost on y); ties go east/north."""
    east = d_effect >= 0
    north = d_cost >= 0
    return ("N" if north else "S") + ("E" if east else "W")


def icer(d_cost: float, d_effect: float) -> float:
    return float(d_cost / d_effect) if d_effect != 0 else float("nan")


def ceac(d_cost: np.ndarray, d_effect: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Pairwise acceptability curve: P(λ ΔE − ΔC > 0) over the replicates, for each λ."""
    d_cost = np.asarray(d_cost, float)
    d_effect = np.asarray(d_effect, float)
    lambdas = np.asarray(lambdas, float)
    return np.mean(lambdas[:, None] * d_effect[None, :] - d_cost[None, :] > 0, axis=1)


def wellby_value(delta_wellby: float, value_per_wellby: float, uprate: float = 1.0) -> float:
    """Monetary value of a WELLBY change: WELLBYs × value (base prices) × uprating factor."""
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
                      econ: dict, *, intervention_arm: str) -> ParticipantData:
    """Costs, QALYs and outcomes per allocated participant (see the module docstring)."""
    notes: list[str] = []
    tps = list(linked.timepoint.cat.categories)
    months = linked.drop_duplicates("timepoint").set_index("timepoint").month.astype(float)
    months = np.array([months[t] for t in tps])
    years_sched = months / 12.0

    # ---- unit costs -------------------------------------------------------------------------
    items = {k: {"units_per_contact": 1.0, "category": k, **v} for k, v in econ["service_items"].items()}
    comps = econ["intervention_costs"]
    ucost = C.load_unit_costs(econ.get("unit_costs_file"), econ.get("unit_cost_overrides"))
    index = C.load_inflation_index(econ.get("inflation_index_file"))
    needed = [v["unit_cost_item"] for v in items.values()] + [c["unit_cost_item"] for c in comps]
    priced = C.price_unit_costs(ucost, needed, econ["price_year"], index)

    # ---- service-use costs --------------------------------------------------------------------
    su = service_use[service_use.participant_id.isin(linked.participant_id)]
    unknown = sorted(set(su.timepoint) - set(tps))
    if unknown:
        raise C.CostError(f"service use: time point(s) {unknown} are not configured waves {tps}")
    sc = C.service_costs(su, items, priced)
    ids = pd.Index(linked.participant_id.unique(), name="participant_id")  # linked (file) order: results must not depend on the pseudonym key
    out = pd.DataFrame(index=ids)
    first = linked[linked.timepoint == tps[0]].set_index("participant_id")
    out["site_id"] = first.site_id.reindex(ids)
    out["arm"] = first.arm.reindex(ids)
    out["treat"] = (out.arm == intervention_arm).astype(float)
    cats = list(dict.fromkeys(v["category"] for v in items.values()))
    base = sc[sc.timepoint == tps[0]].set_index("participant_id").reindex(ids)
    out["cost_bl"] = base[[f"cost_{c}" for c in items]].sum(axis=1, min_count=len(items))
    out.loc[base[[f"cost_{c}" for c in items]].isna().any(axis=1), "cost_bl"] = np.nan
    fu_total = {c: pd.Series(0.0, index=ids) for c in cats}
    rate_c = float(econ["discount_rate_costs"])
    for j in range(1, len(tps)):
        rows = sc[sc.timepoint == tps[j]].set_index("participant_id").reindex(ids)
        w = float(discount_weight(years_sched[j - 1], years_sched[j], rate_c))
        for col, spec in items.items():
            fu_total[spec["category"]] = fu_total[spec["category"]] + rows[f"cost_{col}"] * w
    for c in cats:
        out[f"cost_{c}"] = fu_total[c]  # NaN if any follow-up period is missing (complete case)

    # ---- intervention costs -------------------------------------------------------------------
    parts = participants.set_index("participant_id").reindex(ids).reset_index()
    parts["arm"] = out.arm.to_numpy()
    parts["site_id"] = out.site_id.to_numpy()
    if any(c["per"] == "session" for c in comps):
        miss = parts.sessions_attended.isna() & (parts.arm == intervention_arm)
        if miss.any():
            notes.append(f"{int(miss.sum())} intervention participants have no sessions_attended; "
                         "their session costs are 0")
    ic = C.intervention_costs(parts, comps, priced, intervention_arm).set_index("participant_id")
    out["cost_intervention"] = ic.sum(axis=1) if len(comps) else 0.0
    if len(comps):
        cats = cats + ["intervention"]
    out["cost"] = out[[f"cost_{c}" for c in cats]].sum(axis=1, min_count=len(cats))
    out.loc[out[[f"cost_{c}" for c in cats]].isna().any(axis=1), "cost"] = np.nan

    # ---- QALYs and outcome-years ----------------------------------------------------------------
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
    return ParticipantData(out.reset_index(), priced, cats, notes)


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
            bc = boot.weighted_ols(e["X"], cost, W, e["use"])[:, 1]
            be = boot.weighted_ols(e["X"], t[e["effect"]].to_numpy(float), W, e["use"])[:, 1]
            cols += [bc, be]
        return np.column_stack(cols)
    return stat


def cost_effectiveness(pdata: ParticipantData, econ: dict, *, seed: int, clustered: bool,
                       level: float = 0.95) -> dict[str, pd.DataFrame]:
    """Incremental analysis with bootstrap uncertainty; returns the result tables."""
    if econ["missing_data"] != "complete_case":  # pragma: no cover - schema allows only this
        raise NotImplementedError("multiple imputation for the CEA is not implemented yet")
    t = pdata.table
    eqs = _equations(t, econ)
    stat = _statistic(t, eqs)
    point = stat(np.ones((1, len(t))))[0]
    B = int(econ["bootstrap"]["replicates"])
    two_stage = clustered
    reps = boot.bootstrap(stat, len(t), t.arm.to_numpy(), t.site_id.to_numpy(), replicates=B,
                          seed=[seed, 6], two_stage=two_stage)
    scheme = ("two-stage (sites, then participants within sites), stratified by arm" if two_stage
              else "participants, stratified by arm")
    thresholds = econ["thresholds"] or DEFAULT_THRESHOLDS
    lambdas = _lambda_grid(econ, thresholds)
    a = (1 - level) / 2
    rows = []

    def add(analysis, measure, estimate, draws=None, **kw):
        r = dict(analysis=analysis, measure=measure, estimate=float(estimate))
        if draws is not None:
            d = np.asarray(draws, float)
            d = d[np.isfinite(d)]
            r.update(se=float(np.std(d, ddof=1)), ci_low=float(np.quantile(d, a)),
                     ci_high=float(np.quantile(d, 1 - a)))
        rows.append({**r, **kw})

    ceac_rows = []
    for k, e in enumerate(eqs):
        dc, de = point[2 * k], point[2 * k + 1]
        rc, re = reps[:, 2 * k], reps[:, 2 * k + 1]
        use = e["use"]
        common = dict(n=int(use.sum()), n_intervention=int((use & (t.treat == 1)).sum()),
                      n_control=int((use & (t.treat == 0)).sum()),
                      n_sites=int(t.site_id[use].nunique()))
        an = e["analysis"]
        add(an, "delta_cost", dc, rc, **common)
        add(an, f"delta_{e['effect']}", de, re, **common)
        q = quadrant(dc, de)
        add(an, "icer", icer(dc, de), None, quadrant=q, note=QUADRANTS[q], **common)
        rq = np.where(rc >= 0, "N", "S").astype(object) + np.where(re >= 0, "E", "W")
        for qq in ("NE", "SE", "SW", "NW"):
            add(an, f"share_{qq}", np.mean(rq == qq), None, quadrant=qq, note=QUADRANTS[qq], **common)
        if an == "cea_qaly":
            prob = ceac(rc, re, lambdas)
            for lam, p in zip(lambdas, prob):
                ceac_rows.append(dict(lambda_=lam, prob_cost_effective=p, inmb=lam * de - dc,
                                      inmb_ci_low=float(np.quantile(lam * re - rc, a)),
                                      inmb_ci_high=float(np.quantile(lam * re - rc, 1 - a))))
            for th in thresholds:
                lam = float(th["value"])
                add(an, "inmb", lam * de - dc, lam * re - rc, **{"lambda": lam}, threshold=th["label"],
                    probability=float(ceac(rc, re, [lam])[0]), **common)
            add(an, "prob_cost_saving", np.mean(rc < 0), None, **common)
            add(an, "prob_more_effective", np.mean(re > 0), None, **common)
        if an == "wellby":
            w = econ["wellby"]
            for which, tag in (("value", "central"), ("low", "low"), ("high", "high")):
                val = float(w[which]) * float(w["uprating_factor"])
                add(an, f"wellby_value_{tag}", wellby_value(de, w[which], w["uprating_factor"]),
                    re * val, **{"lambda": val}, note=f"£{val:,.0f} per WELLBY, {w['price_basis']}", **common)
            val = float(w["value"]) * float(w["uprating_factor"])
            add(an, "wellby_net_value", de * val - dc, re * val - rc, **{"lambda": val},
                probability=float(np.mean(re * val - rc > 0)),
                note="WELLBY value (central) minus incremental cost; price years may differ", **common)
    cea = pd.DataFrame(rows)
    for c in ("lambda", "threshold", "probability", "quadrant", "note", "se", "ci_low", "ci_high"):
        if c not in cea:
            cea[c] = np.nan
    cea["bootstrap"] = scheme
    cea["replicates"] = B
    cea["price_year"] = econ["price_year"]
    cea = cea[["analysis", "measure", "lambda", "threshold", "estimate", "se", "ci_low", "ci_high",
               "probability", "quadrant", "n", "n_intervention", "n_control", "n_sites",
               "bootstrap", "replicates", "price_year", "note"]]
    ceac_t = pd.DataFrame(ceac_rows).rename(columns={"lambda_": "lambda"})
    names = []
    for e in eqs:
        tag = e["analysis"].replace("cost_per_point:", "")
        names += [f"delta_cost_{tag}", f"delta_effect_{tag}"]
    rep_t = pd.DataFrame(reps, columns=names)
    rep_t.insert(0, "replicate", np.arange(1, B + 1))
    return dict(cea=cea, ceac=ceac_t, replicates=rep_t, by_arm=summarise_by_arm(pdata, eqs[0]["use"]))


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
                 thresholds: list[dict], effect_label: str = "QALYs") -> bytes:
    """Bootstrap replicates on the cost-effectiveness plane with threshold lines."""
    from analysis.figures import ARM_COLOURS, _png, plt
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.scatter(d_effect, d_cost, s=2, alpha=0.15, color=ARM_COLOURS[0], rasterized=True,
               label="bootstrap replicates")
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
