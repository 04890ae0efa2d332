"""Benchmark: the two-stage cluster bootstrap of a CEA (12 sites x 150 participants).

``analysis.bootstrap`` draws 10,000 two-stage replicates as count matrices and solves the
cost and QALY regressions for whole blocks of replicates with matrix products.  The baseline
is the direct per-replicate approach (index the resampled rows, fit both regressions with
numpy's least squares), timed on a few hundred replicates and reported per replicate.
"""

from __future__ import annotations

import time

import numpy as np

from analysis import bootstrap as boot


def _data(n_sites: int = 12, per_site: int = 150, seed: int = 1):
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), per_site)
    treat = (site % 2).astype(float)
    u0 = np.clip(rng.normal(0.7, 0.2, len(site)), -0.2, 1)
    c0 = rng.gamma(1.5, 400, len(site))
    qaly = 0.1 + 0.6 * u0 + 0.02 * treat + rng.normal(0, 0.05, n_sites)[site] + rng.normal(0, 0.1, len(site))
    cost = 800 + 0.5 * c0 + 600 * treat + rng.normal(0, 300, n_sites)[site] + rng.gamma(1.2, 800, len(site))
    X = np.column_stack([np.ones(len(site)), treat, u0, c0])
    return X, cost, qaly, site, treat


def bench_economics(repeat: int = 3, replicates: int = 10_000) -> None:
    X, cost, qaly, site, treat = _data()
    n = len(cost)

    def stat(W):
        return np.column_stack([boot.weighted_ols(X, cost, W)[:, 1], boot.weighted_ols(X, qaly, W)[:, 1]])

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reps = boot.bootstrap(stat, n, treat, site, replicates=replicates, seed=1, two_stage=True)
        times.append(time.perf_counter() - t0)
    ours = sorted(times)[len(times) // 2]

    rng = np.random.default_rng(2)
    strata = [[np.flatnonzero(site == s) for s in np.unique(site[treat == a])] for a in (0, 1)]
    n_base = 300
    t0 = time.perf_counter()
    for _ in range(n_base):
        rows = []
        for members in strata:
            for k in rng.integers(0, len(members), len(members)):
                m = members[k]
                rows.append(m[rng.integers(0, len(m), len(m))])
        r = np.concatenate(rows)
        np.linalg.lstsq(X[r], cost[r], rcond=None)
        np.linalg.lstsq(X[r], qaly[r], rcond=None)
    base = (time.perf_counter() - t0) / n_base
    print(f"CEA two-stage bootstrap, 12 sites x 150 participants, cost + QALY regressions "
          f"(SE of dQALY {reps[:, 1].std():.4f})")
    print(f"  analysis.bootstrap: {replicates:,} replicates in {ours:6.2f} s "
          f"({ours / replicates * 1e6:7.1f} us each) | per-replicate loop {base * 1e6:7.1f} us each | "
          f"ratio {ours / replicates / base:5.2f}")


def bench_economics_mi(replicates: int = 10_000, m: int = 40) -> None:
    """MI, then bootstrap (economics.missing_data = multiple_imputation) on a demo-sized trial:
    12 sites x about 13 participants, a third missing cost and QALYs."""
    import pandas as pd

    from analysis import economics as E
    from analysis.config import validate_config

    X, cost, qaly, site, treat = _data(n_sites=12, per_site=14, seed=3)
    rng = np.random.default_rng(4)
    lost = rng.random(len(cost)) < 1 / 3
    t = pd.DataFrame(dict(participant_id=np.arange(len(cost)).astype(str), site_id=site.astype(str),
                          arm=np.where(treat == 1, "intervention", "control"), treat=treat, cost_bl=X[:, 3],
                          cost_intervention=300.0 * treat, cost=np.where(lost, np.nan, cost + 300 * treat),
                          utility_bl=X[:, 2], qaly=np.where(lost, np.nan, qaly)))
    econ = validate_config({"trial_id": "b", "economics": {
        "missing_data": "multiple_imputation", "wellby": {"outcome": None},
        "bootstrap": {"replicates": replicates}, "multiple_imputation": {"m": m}}}, check_plan=False)["economics"]
    pdata = E.ParticipantData(t, pd.DataFrame(), [], [])
    t0 = time.perf_counter()
    E.multiply_impute(pdata, econ, seed=1)
    t_imp = time.perf_counter() - t0
    t0 = time.perf_counter()
    E.cost_effectiveness(pdata, econ, seed=1, clustered=True)
    t_all = time.perf_counter() - t0
    print(f"CEA with MI then bootstrap, {len(t)} participants in 12 sites, m = {m}, {replicates:,} replicates: "
          f"{t_all:5.2f} s in all ({t_imp:4.2f} s imputing; includes the complete-case sensitivity run)")


if __name__ == "__main__":
    bench_economics()
    bench_economics_mi()
