"""Benchmark: multiple imputation by chained equations at 2,000 to 200,000 participants (issue [speed]).

The data are shaped like the economics stage's imputation frame (analysis.economics.
imputation_frame): one row per participant, site as a categorical predictor (fixed effects:
40 / 100 / 200 sites), arm (a function of site, so aliased with the site indicators), the
intervention cost, and nine incomplete numeric variables (baseline and follow-up cost, utility,
QALYs, two outcomes and their baselines; 10-30% missing each, missing at random given the
baseline values).  ``analysis.mi.impute`` runs ``--m`` imputations of ``--iterations`` sweeps
(predictive mean matching), and so does the previous implementation: ``analysis/mi.py`` of
commit ``PREVIOUS`` (read with ``git show``; pivoted QR of the copied design in every regression),
on the same data in the same process, alternating.  The figure kept is the minimum over
``--repeat`` runs; the ratio compares the two minimums from the same run.  Absolute seconds
depend on the machine and its load; ratios much less.  Peak memory is not separated here (both
run in one process): see bench_e2e.py for whole-stage peaks.  Not a test: nothing asserts a time.

    .venv/bin/python benchmarks/bench_mi.py [--sizes 2000 20000 200000] [--m 2] [--iterations 2]
        [--repeat 2] [--previous-max 20000]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
#: the commit whose analysis/mi.py is "the previous implementation" (pivoted QR per regression)
PREVIOUS = "3937aa8"
SITES = {2000: 40, 20000: 100, 200000: 200}


def frame(n: int, n_sites: int, seed: int = 1) -> pd.DataFrame:
    """An economics-shaped imputation frame with MAR missingness (see the module docstring)."""
    rng = np.random.default_rng([seed, n])
    site = rng.integers(0, n_sites, n)
    treat = (site % 2).astype(float)
    u = rng.normal(0, 0.3, n_sites)[site]
    util_bl = np.clip(0.7 + 0.1 * u + rng.normal(0, 0.15, n), -0.2, 1)
    cost_bl = np.exp(6 + 0.5 * u + rng.normal(0, 0.8, n)).round(2)
    f = pd.DataFrame({"site_id": ("s" + pd.Series(site).astype(str)).astype(object), "treat": treat,
                      "cost_intervention": np.where(treat == 1, 400.0, 0.0), "cost_bl": cost_bl,
                      "utility_bl": util_bl.round(3)})
    f["cost_services"] = (0.6 * cost_bl + np.exp(5.5 + rng.normal(0, 0.8, n))).round(2)
    f["qaly"] = (0.9 * util_bl + 0.05 * treat + rng.normal(0, 0.05, n)).round(4)
    for k, y in enumerate(["wemwbs", "rguk"]):
        bl = rng.normal(45 - 20 * k, 8, n).round()
        f[f"{y}_bl"] = bl
        f[y] = (0.6 * bl + 3 * treat + 5 * u + rng.normal(0, 6, n)).round()
    for j, c in enumerate(["cost_bl", "utility_bl", "cost_services", "qaly", "wemwbs_bl", "wemwbs",
                           "rguk_bl", "rguk"]):
        p = 0.1 + 0.2 * (j % 3) / 2  # 10%, 20% or 30%
        low = f["utility_bl"].fillna(0.7).to_numpy() < 0.7  # MAR: more missing among the worse-off
        f.loc[rng.random(n) < np.where(low, 1.5 * p, 0.5 * p), c] = np.nan
    return f


def previous_module(tmp: Path):
    """analysis/mi.py of commit PREVIOUS, imported under another name."""
    src = subprocess.run(["git", "show", f"{PREVIOUS}:analysis/mi.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = tmp / "mi_previous.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("mi_previous", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(impute, f: pd.DataFrame, m: int, iterations: int) -> float:
    t0 = time.perf_counter()
    impute(f, m=m, iterations=iterations, seed=3)
    return time.perf_counter() - t0


def bench_mi(sizes, m: int, iterations: int, repeat: int, previous_max: int) -> None:
    from analysis.mi import impute
    with tempfile.TemporaryDirectory() as tmp:
        old = previous_module(Path(tmp))
        print(f"Multiple imputation (PMM, {m} imputations x {iterations} sweeps, economics-shaped frame): "
              f"this code vs analysis/mi.py of {PREVIOUS}; minimum of {repeat} alternating runs")
        print(f"{'participants':>12} {'sites':>5} {'regressions':>11} {'this code':>10} {'previous':>10} "
              f"{'ratio':>6} {'ms/regression':>13}")
        for n in sizes:
            f = frame(n, SITES.get(n, 100))
            regs = m * iterations * int(f.isna().any().sum())
            new_t, old_t = [], []
            for _ in range(repeat):
                new_t.append(timed(impute, f, m, iterations))
                if n <= previous_max:
                    old_t.append(timed(old.impute, f, m, iterations))
            a, b = min(new_t), (min(old_t) if old_t else float("nan"))
            print(f"{n:>12,} {SITES.get(n, 100):>5} {regs:>11} {a:>9.2f}s {b:>9.2f}s {a / b:>6.3f} "
                  f"{1000 * a / regs:>13.1f}")
            sys.stdout.flush()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[2000, 20000, 200000])
    ap.add_argument("--m", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--previous-max", type=int, default=20000,
                    help="largest size at which the previous implementation is run")
    a = ap.parse_args()
    bench_mi(a.sizes, a.m, a.iterations, a.repeat, a.previous_max)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
