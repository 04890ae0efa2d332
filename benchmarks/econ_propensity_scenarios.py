"""Coverage and width of the propensity-weighted economic evaluation's intervals (model-based,
the default, or the bootstrap) in scenarios beyond the one the bootstrap was chosen on
(docs/methods.md, "Non-randomised comparison").

    .venv/bin/python benchmarks/econ_propensity_scenarios.py SCENARIO [--comparisons 400]
        [--replicates 400] [--seed 7101] [--interval model|bootstrap] [--out FILE.csv]
    .venv/bin/python benchmarks/econ_propensity_scenarios.py --truth  # each scenario's true values

Each simulated comparison follows the example's confounding (``cpi_quasi_people``: intervention
agencies mostly mental health, younger clients; costs and QALYs that depend on client group and
age beyond their baseline values; agency effects on cost), as the simulation of
tests/test_economics_propensity.py does, with three things that can change:

* the effect by client group (``effect_modification``): the true incremental cost and QALY gain
  differ between mental health, learning disability and older adults, so ATT, ATE and overlap
  estimands differ; each one's true value for the simulated population is computed exactly
  (:func:`truth`) from the distribution of client group, arm and (rounded, clipped) age that
  generates the participants;
* the number of agencies per client group and of intervention agencies among them;
* the mean number of participants per agency (Poisson);
* the agency effects' SDs, and (``skewed_costs``) a skewed, heteroscedastic individual cost error.

For every comparison and estimand the weighted analysis is run as the pipeline runs it
(``analysis.economics._fit`` with the propensity weighting and ``--interval``: ``model``, the
default, regressions adjusted for the score covariates with REML random-agency-intercept
variances and Satterthwaite t intervals, the replicates being only the plane's draws;
``bootstrap``, two-stage bootstrap, score refitted in every replicate, replicates without
overlap set aside, expanded percentile interval), and the incremental cost, QALYs and net
monetary benefit at £20,000 per QALY are recorded with their intervals and SEs.  The summary
gives, per estimand and measure, the bias, coverage of the true value with its Monte Carlo SE,
the width ratio = mean interval width / (2 x 1.96 x empirical SD of the estimates) (the long
test's ratio), with a delta-method Monte Carlo SE, and the SE ratio = sqrt(mean SE^2) /
empirical SD (for a t interval the right criterion with the coverage: its width ratio exceeds
1).  One process (BLAS at one thread); every comparison has its own seed
(``SeedSequence(seed).spawn``).  The numbers in
docs/methods.md come from the commands listed there.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from analysis import economics as E  # noqa: E402
from analysis.config import validate_config  # noqa: E402
from analysis.simulate_designs import (  # noqa: E402
    CPI_QUASI_GROUPS, CpiQuasiParameters, cpi_quasi_people, cpi_quasi_sites)

ESTIMANDS = ("ATT", "ATE", "overlap")
MEASURES = ("dc", "dq", "nmb")
LAMBDA = 20_000.0  # willingness to pay for the net monetary benefit


@dataclass(frozen=True)
class Scenario:
    """One simulated design: agencies per client group, intervention agencies among them, mean
    participants per agency, true incremental cost and QALY gain per client group."""
    sites_per_group: tuple[int, int, int] = (5, 4, 5)  # mental health, learning disability, older adults
    intervention_sites: tuple[int, int, int] = (4, 2, 1)
    recruited_per_site: float = 15.0
    cost_effect: tuple[float, float, float] = (400.0, 400.0, 400.0)
    qaly_effect: tuple[float, float, float] = (0.03, 0.03, 0.03)
    qaly_agency_sd: float = 0.0  # agency effects on QALYs (SD; 0.05 within)
    cost_agency_sd: float = 150.0  # agency effects on the cost (SD; 500 within)
    # the cost's individual error: None, normal with SD 500; else a centred gamma of shape 1
    # (skewness 2) with these SDs for mental health, learning disability, older adults
    skewed_cost_sd: tuple[float, float, float] | None = None

    def parameters(self) -> CpiQuasiParameters:
        return CpiQuasiParameters(sites_per_group=dict(zip(CPI_QUASI_GROUPS, self.sites_per_group)),
                                  intervention_sites=dict(zip(CPI_QUASI_GROUPS, self.intervention_sites)),
                                  recruited_per_site=self.recruited_per_site)


EM_COST, EM_QALY = (100.0, 400.0, 1000.0), (0.05, 0.03, 0.0)
SCENARIOS = {
    "default": Scenario(),
    "effect_modification": Scenario(cost_effect=EM_COST, qaly_effect=EM_QALY),
    "agencies_10": Scenario(sites_per_group=(4, 3, 3), intervention_sites=(3, 1, 1)),
    "agencies_8": Scenario(sites_per_group=(3, 2, 3), intervention_sites=(2, 1, 1)),
    "small_agencies_8": Scenario(recruited_per_site=8.0),
    # the default with agency effects on QALYs in the cost's proportion (0.015 against 0.05):
    # whether the QALY interval's excess width comes from the QALYs' lack of agency variation
    "qaly_agency_effects": Scenario(qaly_agency_sd=0.015),
    # larger agency effects (intra-agency correlation about 0.26 for both outcomes, 0.08 above)
    "large_agency_effects": Scenario(cost_agency_sd=300.0, qaly_agency_sd=0.03),
    # the default with a skewed, heteroscedastic individual cost error, as real costs are: a
    # centred gamma of shape 1 (skewness 2, an exponential minus its mean) with SD 300, 500 and
    # 800 for mental health, learning disability and older adults, drawn in place of the normal
    # error (the other scenarios' random numbers are unchanged); a constant effect, so the true
    # values are the default's
    "skewed_costs": Scenario(skewed_cost_sd=(300.0, 500.0, 800.0)),
    # the reverse: the intervention agencies' main client group (mental health) has the most variable costs
    "skewed_costs_reverse": Scenario(skewed_cost_sd=(800.0, 500.0, 300.0)),
}


def sim_table(rng: np.random.Generator, sc: Scenario) -> E.ParticipantData:
    """One comparison's participant table (the model of tests/test_economics_propensity.py's
    ``_sim_table`` with the scenario's agencies and effects)."""
    p = sc.parameters()
    d = cpi_quasi_people(rng, p, cpi_quasi_sites(rng, p))
    n = len(d)
    group = d.client_group.to_numpy()
    older = (group == "older_adults").astype(float)
    mh = (group == "mental_health").astype(float)
    age = d.age.to_numpy(float) - 50
    treat = d.treated.to_numpy(float)
    sites = d.site_id.to_numpy()
    uniq, site_idx = np.unique(sites, return_inverse=True)
    site_c = rng.normal(0, sc.cost_agency_sd, len(uniq))[site_idx]
    gi = np.array([CPI_QUASI_GROUPS.index(g) for g in group], dtype=int)
    dc, dq = np.asarray(sc.cost_effect)[gi], np.asarray(sc.qaly_effect)[gi]
    u0 = np.clip(0.75 - 0.003 * age - 0.05 * mh + rng.normal(0, 0.12, n), -0.2, 1.0)
    c0 = np.maximum(0, 300 + 6 * age + 100 * older + rng.normal(0, 150, n))
    if sc.skewed_cost_sd is None:
        err = rng.normal(0, 500, n)
    else:  # centred gamma (shape 1: mean = SD = scale), SD by client group
        err = np.asarray(sc.skewed_cost_sd)[gi] * (rng.gamma(1.0, 1.0, n) - 1.0)
    cost = (1200 + 0.8 * c0 + 900 * older - 300 * mh + 25 * age + dc * treat + site_c + err)
    qaly = 0.2 + 0.6 * u0 - 0.04 * older - 0.0015 * age + dq * treat + rng.normal(0, 0.05, n)
    if sc.qaly_agency_sd:  # drawn last, so the other scenarios' random numbers are unchanged
        qaly = qaly + rng.normal(0, sc.qaly_agency_sd, len(uniq))[site_idx]
    t = pd.DataFrame(dict(participant_id=[f"P{i:04d}" for i in range(n)], site_id=sites,
                          arm=np.where(treat == 1, "intervention", "comparison"), treat=treat,
                          cost_bl=c0, cost_intervention=0.0, cost=cost, utility_bl=u0, qaly=qaly,
                          ps_client_group=group, ps_age=d.age.to_numpy(), ps_sex=d.sex.to_numpy()))
    return E.ParticipantData(t, pd.DataFrame(), [], [])


def _age_probabilities(mean: float, sd: float) -> np.ndarray:
    """P(age = a), a = 18..99, for ``clip(rint(Normal(mean, sd)), 18, 99)``."""
    edges = np.arange(18, 99) + 0.5  # 18.5 .. 98.5
    cdf = stats.norm.cdf(edges, mean, sd)
    return np.diff(np.r_[0.0, cdf, 1.0])


def truth(sc: Scenario) -> dict[str, float]:
    """True ATT, ATE and overlap estimands of the incremental cost, QALYs and net benefit.

    Agencies recruit equal expected numbers, so P(group g, intervention) is proportional to the
    number of intervention agencies of g and P(g, comparison) to its comparison agencies; age
    given (g, arm) is the rounded, clipped normal of ``cpi_quasi_people`` (intervention agencies
    shifted).  The true score is e(g, a) = P(intervention | g, a) from that joint distribution;
    the effect depends on the group only, so ATT = sum_g P(g | intervention) effect_g, ATE =
    sum_g P(g) effect_g and overlap = sum_{g,a} P(g, a) e(1 - e) effect_g / sum P(g, a) e(1 - e)
    (Li, Morgan & Zaslavsky 2018).  Checked against the weighted estimates of very large
    comparisons by :func:`large_sample_check`."""
    p = sc.parameters()
    k, m = np.asarray(sc.sites_per_group, float), np.asarray(sc.intervention_sites, float)
    p1, p0 = m / k.sum(), (k - m) / k.sum()  # P(g, arm) per unit
    joint1 = np.array([p1[j] * _age_probabilities(p.age_mean[g] + p.intervention_age_shift, p.age_sd[g])
                       for j, g in enumerate(CPI_QUASI_GROUPS)])
    joint0 = np.array([p0[j] * _age_probabilities(p.age_mean[g], p.age_sd[g]) for j, g in enumerate(CPI_QUASI_GROUPS)])
    pg_a = joint1 + joint0
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.where(pg_a > 0, joint1 / pg_a, 0.0)
    h = pg_a * e * (1 - e)
    out = {}
    for name, eff in (("dc", np.asarray(sc.cost_effect)), ("dq", np.asarray(sc.qaly_effect)),
                      ("nmb", LAMBDA * np.asarray(sc.qaly_effect) - np.asarray(sc.cost_effect))):
        out[f"ATT_{name}"] = float((p1 * eff).sum() / p1.sum())
        out[f"ATE_{name}"] = float(((p1 + p0) * eff).sum())
        out[f"overlap_{name}"] = float((h.sum(axis=1) * eff).sum() / h.sum())
    return out


def large_sample_check(sc: Scenario, mult: int = 1000, seeds: int = 5) -> dict[str, tuple[float, float]]:
    """An independent check of :func:`truth`: the weighted point estimates (the pipeline's score
    model and weights) in very large comparisons (``mult`` times the scenario's agencies, about
    200,000 participants) converge to the estimands.  Noise is removed by common random
    numbers: each large comparison is drawn twice from the same seed, with the scenario's effects
    and with a constant effect (400, 0.03: every estimand equals the constant); the estimate is
    the difference plus the constant.  Mean and SE over ``seeds`` draws."""
    from dataclasses import replace

    from analysis import propensity as P
    big = replace(sc, sites_per_group=tuple(mult * x for x in sc.sites_per_group),
                  intervention_sites=tuple(mult * x for x in sc.intervention_sites))
    flat = replace(big, cost_effect=(400.0,) * 3, qaly_effect=(0.03,) * 3)
    covs = ["client_group", "age", "sex"]
    got: dict[str, list[float]] = {}
    for seed in range(seeds):
        points = []
        for s in (big, flat):
            t = sim_table(np.random.default_rng([seed, 99]), s).table
            data = pd.DataFrame({c: t[f"ps_{c}"] for c in covs}).assign(treated=t.treat.astype(int))
            ps = P.propensity_scores(data, "treated", covs)
            stat = E._statistic(t, E._equations(t, _econ(10)))
            points.append({est: stat(P.ps_weights(ps, data.treated, est).weight.to_numpy()[None, :])[0]
                           for est in ESTIMANDS})
        for est in ESTIMANDS:
            d = points[0][est] - points[1][est] + np.array([400.0, 0.03])
            for name, v in (("dc", d[0]), ("dq", d[1]), ("nmb", LAMBDA * d[1] - d[0])):
                got.setdefault(f"{est}_{name}", []).append(float(v))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else np.nan)
            for k, v in got.items()}


def _econ(replicates: int, interval: str = "model") -> dict:
    """The economics settings; ``interval`` the weighted interval (``economics.weighted_interval``):
    for ``model`` the replicates are only the cost-effectiveness plane's draws."""
    econ = {"enabled": True, "missing_data": "complete_case", "other_outcomes": [], "wellby": {"outcome": None},
            "bootstrap": {"replicates": 100}}
    econ = validate_config({"trial_id": "t", "economics": econ}, check_plan=False)["economics"]
    return dict(econ, bootstrap=dict(econ["bootstrap"], replicates=replicates), weighted_interval=interval)


def one(rng: np.random.Generator, sc: Scenario, replicates: int, interval: str = "model") -> dict:
    """One comparison: every estimand's estimates, intervals and SEs (cea_qaly equation; for the
    model interval also the df), the replicates kept and the warning; NaN for an estimand whose
    analysis refused the data."""
    pdata = sim_table(rng, sc)
    econ = _econ(replicates, interval)
    out = {"n": len(pdata.table), "agencies": pdata.table.site_id.nunique()}
    for est in ESTIMANDS:
        try:
            fit = E._fit(pdata, econ, "complete_case", seed=1, clustered=True, level=0.95,
                         weighting={"covariates": ["client_group", "age", "sex"], "estimand": est,
                                    "stabilise": True, "trim": 0})
        except (ValueError, np.linalg.LinAlgError) as exc:
            out[f"{est}_error"] = str(exc)[:80]
            continue
        pc, pq = fit.point[0], fit.point[1]
        for name, f, point in (("dc", lambda c, q: c, pc), ("dq", lambda c, q: q, pq),
                               ("nmb", lambda c, q: LAMBDA * q - c, LAMBDA * pq - pc)):
            ci = fit.unc(f, 0)
            out[f"{est}_{name}"], out[f"{est}_{name}_lo"], out[f"{est}_{name}_hi"] = point, ci["ci_low"], ci["ci_high"]
            out[f"{est}_{name}_se"] = ci["se"]
            if isinstance(fit.unc, E._ModelBased):
                out[f"{est}_{name}_df"] = fit.unc._fit(0, *E._ModelBased._coef(f))[1]
        out[f"{est}_kept"] = int(np.isfinite(fit.pair(0)[0]).sum())
        out[f"{est}_warned"] = "WARNING: the expanded" in fit.scheme
    return out


def composition_term(rng: np.random.Generator, sc: Scenario, replicates: int) -> dict:
    """Why an effect that differs by client group widens the interval: the comparison of
    :func:`one` with its outcomes replaced by the effect's departure from the constant 400 alone
    (cost = (effect_g - 400) x intervention, QALYs likewise from 0.03).  Its weighted estimate is
    the part of the estimate that the effect modification adds (the regressions are linear in
    the outcome; the rest is the default scenario's estimate on the same random numbers); its
    spread over comparisons is what the agencies' fixed client-group mix leaves of it, its
    bootstrap SD what redrawing the agencies (and so their client-group mix) makes of it."""
    pdata = sim_table(rng, sc)
    t = pdata.table.copy()
    gi = np.array([CPI_QUASI_GROUPS.index(g) for g in t.ps_client_group], dtype=int)
    t["cost"] = (np.asarray(sc.cost_effect)[gi] - 400.0) * t.treat
    t["qaly"] = (np.asarray(sc.qaly_effect)[gi] - 0.03) * t.treat
    out = {}
    for est in ESTIMANDS:
        fit = E._fit(E.ParticipantData(t, pdata.unit_costs, pdata.categories, pdata.notes),
                     _econ(replicates, "bootstrap"),
                     "complete_case", seed=1, clustered=True, level=0.95,
                     weighting={"covariates": ["client_group", "age", "sex"], "estimand": est,
                                "stabilise": True, "trim": 0})
        out[f"{est}_dc"], out[f"{est}_dc_bootsd"] = fit.point[0], fit.unc(lambda c, q: c, 0)["se"]
    return out


def run(sc: Scenario, comparisons: int, replicates: int, seed: int, progress: bool = True, fn=None,
        interval: str = "model") -> pd.DataFrame:
    rows = []
    t0 = time.time()
    for i, q in enumerate(np.random.SeedSequence(seed).spawn(comparisons)):
        rng = np.random.default_rng(q)
        rows.append(fn(rng, sc, replicates) if fn else one(rng, sc, replicates, interval))
        if progress and (i + 1) % 50 == 0:
            print(f"  {i + 1} comparisons, {time.time() - t0:.0f} s", flush=True)
    return pd.DataFrame(rows)


def summarise(res: pd.DataFrame, truth_: dict, scale: float = 1.0) -> pd.DataFrame:
    """Coverage (MC SE) and width ratio (delta-method MC SE) per estimand and measure; ``scale``
    widens or narrows every interval about its estimate (the self-check of a two-sided test).
    When the per-comparison SEs were recorded, also the SE ratio sqrt(mean(se^2)) / empirical SD
    (delta-method MC SE; the SEs scaled by ``scale`` too): for a t interval the width ratio of a
    right interval exceeds 1 (t quantile above 1.96, SEs that vary), the SE ratio does not; and
    the mean df when recorded (model interval)."""
    rows = []
    for est in ESTIMANDS:
        for m in MEASURES:
            col = f"{est}_{m}"
            if col not in res:
                continue
            d = res[[col, f"{col}_lo", f"{col}_hi"]].dropna()
            e = d[col].to_numpy()
            lo, hi = e - scale * (e - d[f"{col}_lo"].to_numpy()), e + scale * (d[f"{col}_hi"].to_numpy() - e)
            n = len(d)
            cover = float(np.mean((lo <= truth_[col]) & (truth_[col] <= hi)))
            w = (hi - lo) / (2 * 1.96)
            sd = float(e.std(ddof=1))
            ratio = float(w.mean() / sd)
            # delta method: var(mean w)/sd^2 + ratio^2 var(sd)/sd^2, var(sd) ~ sd^2 (kurtosis - 1) / (4 n)
            kurt = float(stats.kurtosis(e, fisher=False))
            cov_ws = float(np.cov(w, (e - e.mean()) ** 2)[0, 1])
            var_ratio = (w.var(ddof=1) / n) / sd**2 + ratio**2 * (kurt - 1) / (4 * n) \
                - ratio * cov_ws / (n * sd**3)
            row = dict(estimand=est, measure=m, comparisons=n, truth=truth_[col],
                       bias=float(e.mean() - truth_[col]), bias_se=sd / np.sqrt(n),
                       coverage=cover, coverage_se=float(np.sqrt(cover * (1 - cover) / n)),
                       width_ratio=ratio, width_ratio_se=float(np.sqrt(max(var_ratio, 0.0))))
            if f"{col}_se" in res:
                s2 = (scale * res.loc[d.index, f"{col}_se"].to_numpy(float)) ** 2
                m2 = s2.mean()
                se_ratio = float(np.sqrt(m2) / sd)
                # delta method on log(ratio) = log(m2) / 2 - log(sd^2) / 2
                cov_s = float(np.cov(s2, (e - e.mean()) ** 2)[0, 1])
                var_log = s2.var(ddof=1) / (4 * n * m2**2) + (kurt - 1) / (4 * n) - cov_s / (2 * n * m2 * sd**2)
                row.update(se_ratio=se_ratio, se_ratio_se=float(se_ratio * np.sqrt(max(var_log, 0.0))))
            if f"{col}_df" in res:
                row["mean_df"] = float(res.loc[d.index, f"{col}_df"].mean())
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", choices=sorted(SCENARIOS))
    ap.add_argument("--comparisons", type=int, default=400)
    ap.add_argument("--replicates", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7101)
    ap.add_argument("--interval", choices=("model", "bootstrap"), default="model",
                    help="economics.weighted_interval (model: the replicates are the plane's draws only)")
    ap.add_argument("--out", help="per-comparison results as CSV")
    ap.add_argument("--summarise", help="re-tabulate an earlier --out file (with the scenario)")
    ap.add_argument("--truth", action="store_true", help="print every scenario's true values")
    ap.add_argument("--composition", action="store_true",
                    help="the effect modification's part of the cost estimate: its SD over comparisons and "
                         "mean bootstrap SD (composition_term)")
    ap.add_argument("--df-cap", action="store_true",
                    help="model interval: Satterthwaite's df capped at agencies - agency-level terms "
                         "(analysis.economics.CAP_DF = True; measured for docs/methods.md, not used)")
    a = ap.parse_args()
    if a.df_cap:
        E.CAP_DF = True
    pd.set_option("display.width", 200)
    if a.truth:
        print(pd.DataFrame({k: truth(s) for k, s in SCENARIOS.items()}).T.round(4).to_string())
        em = SCENARIOS["effect_modification"]
        tr = truth(em)
        print("effect modification, large-sample weighted estimates (mean, SE) against the truth:")
        for k, (m, se) in large_sample_check(em).items():
            print(f"  {k}: {m:.4f} ({se:.4f}), truth {tr[k]:.4f}")
        return
    sc = SCENARIOS[a.scenario]
    if a.composition:
        res = run(sc, a.comparisons, a.replicates, a.seed, fn=composition_term)
        for est in ESTIMANDS:
            print(f"{est}: SD over comparisons {res[f'{est}_dc'].std(ddof=1):.1f}, mean bootstrap SD "
                  f"{res[f'{est}_dc_bootsd'].mean():.1f} ({len(res)} comparisons)")
        return
    if a.summarise:
        res = pd.read_csv(a.summarise)
    else:
        t0 = time.time()
        res = run(sc, a.comparisons, a.replicates, a.seed, interval=a.interval)
        print(f"{a.scenario}: {a.interval} interval, {a.comparisons} comparisons x {a.replicates} replicates, "
              f"{time.time() - t0:.0f} s")
        if a.out:
            res.to_csv(a.out, index=False)
    for est in ESTIMANDS:
        if f"{est}_kept" in res and f"{est}_dc_df" not in res:
            print(f"{est}: replicates kept median {res[f'{est}_kept'].median():.0f} "
                  f"(range {res[f'{est}_kept'].min():.0f}-{res[f'{est}_kept'].max():.0f}), "
                  f"few-kept warning in {100 * res[f'{est}_warned'].mean():.0f}%, "
                  f"refused {int(res[f'{est}_dc'].isna().sum())}")
        elif f"{est}_dc" in res:
            print(f"{est}: refused {int(res[f'{est}_dc'].isna().sum())}")
    print(f"participants per comparison: mean {res.n.mean():.0f}, agencies {res.agencies.min()}-{res.agencies.max()}")
    print(summarise(res, truth(sc)).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
