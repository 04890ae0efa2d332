"""Simulation-based power of the definitive trial (docs/methods.md, "Simulation-based power").

Definitive trials are simulated from the pilot-fitted primary model and refitted with the
project's own primary analysis (``analysis.outcomes``: the same formula, random intercepts and
Satterthwaite df); power is the share of trials whose two-sided (1 - alpha) CI for the
difference at the primary follow-up excludes zero, with a Wilson interval.

* **Model.** The prespecified model of the primary outcome is fitted to the pilot (REML): its
  fixed effects (time, baseline, covariates) and variance components (site, participant,
  residual).  The arm x time effects are replaced by the target difference at every follow-up
  (a constant difference, never the pilot's estimate).  When the recommended sample size uses
  the SD's upper confidence limit, every variance component is multiplied by the square of
  Browne's factor; ``planning.icc``, when set, fixes the site share of the total variance.
* **Participants.** Baseline values and covariates are drawn with replacement from the pilot's
  participants with a baseline value; cluster designs have 2k sites of mean size m (the
  recommended recruitment per site) with gamma-distributed sizes of the pilot's CV.
* **Dropout.** Missing completely at random and monotone: one uniform draw per participant,
  observed at follow-up j while it is below the pilot's retention at j (made non-increasing).
* **Seeds.** Replicate r at sample size s uses ``numpy.random.default_rng([seed, 17, s, r])``, so a
  replicate's result does not depend on which batch (Snakemake job) ran it: the gathered table is
  byte-identical whatever the batching or the executor (local cores or SLURM).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import patsy

from analysis import planning
from analysis.outcomes import PID, SITE, _analysable, design, fit_model, long_frame, model_spec

RESULT_COLUMNS = ["size", "replicate", "estimate", "se", "df", "ci_low", "ci_high", "reject", "failed",
                  "n_participants", "n_analysed", "n_sites", "warning"]
SUMMARY_COLUMNS = ["size", "size_unit", "n_recruited_total", "sites_total", "replicates", "failed", "rejections",
                   "power", "ci_low", "ci_high", "analytic_power", "target_difference", "site_variance",
                   "participant_variance", "residual_variance", "model", "dropout", "seed"]
STREAM = 17  # the simulation's own stream of the trial seed


def _treatment_terms(formula: str) -> list[str]:
    return [t.strip() for t in formula.split("~", 1)[1].split("+") if t.strip() == "treat" or
            t.strip().startswith("trt_") or t.strip() == "treat_month"]


def setup(linked: pd.DataFrame, cfg: dict, sample_size: pd.DataFrame, inputs: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """The simulation's parameters (JSON-able) and the pool of baseline rows, from the pilot."""
    from analysis.config import primary_timepoint
    d_type = cfg["design"]["type"]
    if d_type == "single_arm":
        raise ValueError("simulation-based power needs a two-arm design: a single-arm study cannot size a "
                         "definitive two-arm trial")
    pl, sim = cfg["planning"], cfg["planning"]["simulation"]
    if pl["target_difference"] is None or not len(sample_size) or not sample_size.recommended.astype(bool).any():
        raise ValueError("simulation-based power needs planning.target_difference and a recommended analytic "
                         "sample size (tables/sample_size.csv)")
    rec = sample_size[sample_size.recommended.astype(bool)].iloc[0]
    outcome = cfg["primary"]["outcome"]
    tp = primary_timepoint(cfg)
    spec = model_spec(cfg, outcome, linked)
    d = _analysable(long_frame(linked, spec), spec)
    fu = [str(t) for t in d.time.cat.categories if (d.time.astype(str) == str(t)).any()]
    d = d[d.time.astype(str).isin(fu)].copy()
    d["time"] = pd.Categorical(d.time.astype(str), categories=fu)
    months = [float(d.loc[d.time == t, "month"].iloc[0]) for t in fu]
    formula, contrasts, desc = design(spec, fu, months)
    groups = [g for g in spec.groups if not (g == PID and len(fu) == 1)]
    fit = fit_model(d, formula, groups)
    beta = {str(k): float(v) for k, v in (fit.lmm.params.items() if fit.lmm is not None else
                                          _ols_params(d, formula).items())}
    var = {k: float(v) for k, v in fit.variances.items()}
    scale = 1.0
    if pl["sd_method"] == "ucl":
        i = inputs.set_index("parameter")
        scale = planning.sd_ucl_factor(float(i.at["sd_followup", "df"]), pl["sd_ucl_level"]) ** 2
    var = {k: v * scale for k, v in var.items()}
    if pl["icc"] is not None and SITE in var:
        rest = sum(v for k, v in var.items() if k != SITE)
        var[SITE] = pl["icc"] / (1 - pl["icc"]) * rest
    # retention by follow-up (outcome observed / allocated), made non-increasing
    alloc = linked[PID].nunique()
    observed = long_frame(linked, spec)
    observed = observed[observed.y.notna()]
    ret = [float(observed.loc[observed.time.astype(str) == t, PID].nunique()) / alloc for t in fu]
    ret = [float(x) for x in np.minimum.accumulate(ret)]
    cluster = d_type == "cluster"
    rec_size = int(rec.sites_per_arm) if cluster else int(rec.n_recruited_per_arm)
    sizes = sim["sizes"] or sorted({max(2, int(round(rec_size * f))) for f in (0.5, 0.75, 1.0, 1.25, 1.5)})
    pool_cols = ["y_bl"] + [c for c, _ in spec.covariates if c != SITE]
    every = long_frame(linked, spec)  # every participant with a baseline value, followed up or not
    pool = every.drop_duplicates(PID)[pool_cols].dropna().reset_index(drop=True)
    params = dict(
        design=d_type, outcome=outcome, primary=tp, followups=fu, months=months, formula=formula,
        groups=groups, contrast=contrasts[tp], treatment_terms=_treatment_terms(formula), beta=beta,
        variances=var, variance_scale=scale, theta=({g: math.sqrt(var[g] / var["Residual"]) for g in groups}),
        retention=ret, delta=float(pl["target_difference"]), alpha=float(pl["alpha"]),
        sizes=[int(s) for s in sizes], cluster_size=float(rec.cluster_size_recruited) if cluster else None,
        cv=float(rec.cv) if cluster else 0.0, seed=int(cfg["seed"]),
        covariates=[[c, t] for c, t in spec.covariates if c != SITE],
        model=desc + " + " + " + ".join(f"(1 | {g})" for g in groups) if groups else desc,
        analytic=dict(sd_effective=float(rec.sd_effective), icc=float(rec.icc) if cluster else 0.0,
                      retention=float(rec.retention)),
        intervention_arm=cfg["design"]["intervention_arm"])
    return params, pool


def _ols_params(d: pd.DataFrame, formula: str) -> pd.Series:
    import statsmodels.formula.api as smf
    return smf.ols(formula, data=d).fit().params


def _sizes_of_sites(k_total: int, m: float, cv: float, rng: np.random.Generator) -> np.ndarray:
    if cv > 0:
        shape = 1.0 / (cv * cv)
        s = np.rint(rng.gamma(shape, m / shape, size=k_total)).astype(int)
    else:
        s = np.floor(m).astype(int) + (rng.random(k_total) < (m - math.floor(m))).astype(int)
    return np.maximum(s, 1)


def simulate_trial(params: dict, pool: pd.DataFrame, size: int, rng: np.random.Generator) -> pd.DataFrame:
    """One simulated definitive trial in the long format of the primary analysis (observed rows)."""
    cluster = params["design"] == "cluster"
    if cluster:
        k = int(size)
        site_n = _sizes_of_sites(2 * k, params["cluster_size"], params["cv"], rng)
        site = np.repeat(np.arange(2 * k), site_n)
        treat = (site < k).astype(float)
    else:
        n = int(size)
        site = np.zeros(2 * n, dtype=int)
        treat = np.repeat([1.0, 0.0], n)
    N = len(treat)
    base = pool.iloc[rng.integers(0, len(pool), N)].reset_index(drop=True)
    fu, months = params["followups"], params["months"]
    var = params["variances"]
    u_site = rng.normal(0, math.sqrt(var.get(SITE, 0.0)), size=site.max() + 1)
    u_pid = rng.normal(0, math.sqrt(var.get(PID, 0.0)), size=N)
    u = rng.random(N)
    parts = []
    for j, (tp, mo) in enumerate(zip(fu, months)):
        p = base.copy()
        p[PID] = np.arange(N)
        p[SITE] = site.astype(str)
        p["treat"] = treat
        p["time"] = tp
        p["month"] = mo
        p["_e"] = rng.normal(0, math.sqrt(var["Residual"]), size=N)
        p["_observed"] = u < params["retention"][j]
        parts.append(p)
    d = pd.concat(parts, ignore_index=True)
    d["time"] = pd.Categorical(d.time, categories=fu)
    for j, tp in enumerate(fu, 1):
        d[f"trt_{j}"] = d.treat * (d.time == tp)
    d["treat_month"] = d.treat * d.month
    rhs = params["formula"].split("~", 1)[1]
    X = patsy.dmatrix(rhs, d, return_type="dataframe", NA_action="raise")
    beta = dict(params["beta"])
    for t in params["treatment_terms"]:
        beta[t] = params["delta"] if t in ("treat",) or t.startswith("trt_") else 0.0
    missing = [c for c in X.columns if c not in beta]
    if missing:
        raise ValueError(f"simulated design has terms the pilot model does not: {missing}")
    d["y"] = X.to_numpy() @ np.array([beta[c] for c in X.columns]) + u_site[site][d[PID].to_numpy()] \
        + u_pid[d[PID].to_numpy()] + d["_e"].to_numpy()
    d = d[d._observed].drop(columns=["_e", "_observed"]).reset_index(drop=True)
    d[PID] = d[PID].astype(str)
    return d


def run_replicate(params: dict, pool: pd.DataFrame, size: int, replicate: int) -> dict:
    """Simulate and analyse replicate ``replicate`` at sample size ``size``."""
    rng = np.random.default_rng([params["seed"], STREAM, int(size), int(replicate)])
    d = simulate_trial(params, pool, size, rng)
    out = dict(size=int(size), replicate=int(replicate), n_participants=int(d[PID].nunique()),
               n_analysed=int((d.time == params["primary"]).sum()),
               n_sites=int(d[SITE].nunique()) if params["design"] == "cluster" else np.nan, warning="")
    try:
        groups = params["groups"]
        start = [params["theta"][g] for g in groups] if groups else None
        fit = fit_model(d, params["formula"], groups, start=start)
        c = fit.contrast(params["contrast"], 1.0 - params["alpha"])
        reject = bool(c["ci_low"] > 0 or c["ci_high"] < 0)
        out.update(estimate=float(c["estimate"]), se=float(c["se"]), df=float(c["df"]),
                   ci_low=float(c["ci_low"]), ci_high=float(c["ci_high"]), reject=reject, failed=False,
                   warning=" | ".join(w for w in fit.warnings if "boundary" not in w and "estimated as" not in w))
    except (ValueError, np.linalg.LinAlgError) as exc:  # a degenerate simulated data set: counted, not hidden
        out.update(estimate=np.nan, se=np.nan, df=np.nan, ci_low=np.nan, ci_high=np.nan, reject=False, failed=True,
                   warning=str(exc)[:200])
    return out


def batch(params: dict, pool: pd.DataFrame, step: int, batch_index: int, batch_size: int,
          replicates: int) -> pd.DataFrame:
    """Replicates [batch_index * batch_size, ...) of the ``step``-th sample size."""
    size = params["sizes"][step]
    lo = batch_index * batch_size
    hi = min(replicates, lo + batch_size)
    rows = [run_replicate(params, pool, size, r) for r in range(lo, hi)]
    return pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)


def analytic_power(params: dict, size: int) -> float:
    a = params["analytic"]
    if params["design"] == "cluster":
        m_an = params["cluster_size"] * a["retention"]
        return planning.power_cluster(int(size), m_an, params["delta"], a["sd_effective"], a["icc"],
                                      params["cv"], params["alpha"])
    return planning.power_individual(size * a["retention"], params["delta"], a["sd_effective"], params["alpha"])


#: level of the Monte Carlo interval of a simulated power (its precision, not the trial's CI level)
MC_LEVEL = 0.95


def summarise(params: dict, results: pd.DataFrame) -> pd.DataFrame:
    """Power at each sample size with its Wilson interval (failed fits count as not rejecting and
    are reported)."""
    from statsmodels.stats.proportion import proportion_confint
    cluster = params["design"] == "cluster"
    var = params["variances"]
    rows = []
    for size in params["sizes"]:
        r = results[results["size"] == size]
        n = len(r)
        k = int(r.reject.astype(bool).sum())
        lo, hi = proportion_confint(k, n, alpha=1 - MC_LEVEL, method="wilson") if n else (np.nan, np.nan)
        rows.append(dict(
            size=size, size_unit="sites per arm" if cluster else "participants recruited per arm",
            n_recruited_total=(2 * math.ceil(size * params["cluster_size"]) if cluster else 2 * size),
            sites_total=2 * size if cluster else np.nan, replicates=n, failed=int(r.failed.astype(bool).sum()),
            rejections=k, power=k / n if n else np.nan, ci_low=lo, ci_high=hi,
            analytic_power=analytic_power(params, size), target_difference=params["delta"],
            site_variance=var.get(SITE, np.nan), participant_variance=var.get(PID, np.nan),
            residual_variance=var["Residual"], model=params["model"],
            dropout="monotone dropout completely at random with the pilot's retention at each follow-up ("
                    + ", ".join(f"{t} {r:.0%}" for t, r in zip(params["followups"], params["retention"])) + ")",
            seed=params["seed"]))
    return pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)


def power_curve_png(summary: pd.DataFrame, target_power: float) -> bytes:
    from analysis.figures import _png, plt
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    x = summary["size"].to_numpy()
    err = [np.clip(summary.power - summary.ci_low, 0, None), np.clip(summary.ci_high - summary.power, 0, None)]
    ax.errorbar(x, summary.power, yerr=err,
                marker="o", capsize=4, color="#1b6ca8", label=f"simulated ({MC_LEVEL * 100:g}% CI)")
    ax.plot(x, summary.analytic_power, ls="--", color="#d1495b", label="analytic")
    ax.axhline(target_power, color="0.5", lw=1, ls=":", label=f"target {target_power:.0%}")
    ax.set_xlabel(str(summary.size_unit.iloc[0]))
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def write_setup(params: dict, pool: pd.DataFrame, json_path: str, pool_path: str) -> None:
    from analysis.io import write_parquet, write_text
    write_text(json.dumps(params, indent=1, sort_keys=True), json_path)
    write_parquet(pool, pool_path)


def read_params(json_path: str) -> dict:
    with open(json_path, encoding="utf-8") as fh:
        return json.load(fh)


def read_setup(json_path: str, pool_path: str) -> tuple[dict, pd.DataFrame]:
    return read_params(json_path), pd.read_parquet(pool_path)
