"""Pathways benchmarks: prints wall-clock figures and ratios against baselines run alongside.

    .venv/bin/python benchmarks/run.py [--quick] [--only NAME ...]

Each figure is the median of several repeats (the nested mixed-model scaling figures: the
minimum of alternating runs in fresh processes, see benchmarks/bench_lmm_scale.py).  Ratios
compare against a baseline measured in the same run on the same data, so they are comparable
across machines; absolute seconds are not.  Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd


def timeit(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cluster_data(n_sites: int, per_site: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), per_site)
    treat = (site % 2).astype(float)
    y0 = 45 + rng.normal(0, 1.5, n_sites)[site] + rng.normal(0, 8, len(site))
    y = 10 + 0.75 * y0 + 2 * treat + rng.normal(0, 1.5, n_sites)[site] + rng.normal(0, 6, len(site))
    return pd.DataFrame({"site": site.astype(str), "treat": treat, "y0": y0, "y": y})


def bench_lmm(repeat: int) -> None:
    import statsmodels.formula.api as smf

    from analysis.lmm import fit_lmm
    print("ANCOVA with a random site intercept (REML): analysis.lmm (with Satterthwaite df) vs "
          "statsmodels MixedLM (point estimates and z-tests only)")
    for n_sites, per in [(12, 12), (20, 50), (40, 100)]:
        d = cluster_data(n_sites, per)
        ours = timeit(lambda: fit_lmm(d, "y ~ treat + y0", groups=["site"]), repeat)

        def sm():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                smf.mixedlm("y ~ treat + y0", d, groups=d["site"]).fit(reml=True)
        base = timeit(sm, repeat)
        print(f"  {n_sites:3d} sites x {per:3d}: analysis.lmm {ours * 1000:8.1f} ms | "
              f"statsmodels {base * 1000:8.1f} ms | ratio {ours / base:5.2f}")


def bench_pipeline_stages(repeat: int) -> None:
    from pathlib import Path

    from analysis.config import load_config
    from analysis.ingest import ingest_trial
    from analysis.scoring import score_responses
    root = Path(__file__).resolve().parent.parent
    cfg = load_config(root / "config/config.yaml")
    cfg["data"]["raw_dir"] = str(root / "data/raw/demo")
    t_ingest = timeit(lambda: ingest_trial(cfg), repeat)
    tables = ingest_trial(cfg)
    t_read = timeit(lambda: [pd.read_csv(root / "data/raw/demo" / w["file"]) for w in cfg["data"]["waves"]]
                    + [pd.read_csv(root / "data/raw/demo" / f) for f in ("participants.csv", "screening_log.csv",
                                                                          "sites.csv", "service_use.csv")], repeat)
    print("Demo trial stages (160 participants, 3 waves)")
    print(f"  ingest + validate {t_ingest * 1000:8.1f} ms | plain pandas.read_csv of the same files "
          f"{t_read * 1000:6.1f} ms | ratio {t_ingest / t_read:5.1f}")
    big = pd.concat([tables["responses"]] * 25, ignore_index=True)
    t_score = timeit(lambda: score_responses(big, tables["participants"], cfg["instruments"]), repeat)
    print(f"  scoring {len(big):,} records x {len(cfg['instruments'])} instruments: {t_score * 1000:8.1f} ms")


def bench_eq5d(repeat: int) -> None:
    """EQ-5D-5L scoring of 10,000 rows per method, against a plain pandas merge of the same
    rows onto the crosswalk table (the least a lookup can cost)."""
    from analysis import instruments
    from analysis.instruments import _eq5d  # noqa: F401  (tables load on first use)
    rng = np.random.default_rng(1)
    n = 10_000
    frame = pd.DataFrame({f"eq5d5l_{d}": rng.integers(1, 6, n) for d in range(1, 6)})
    frame["age"] = rng.integers(18, 90, n)
    frame["sex"] = rng.choice(["male", "female"], n)
    instruments.score("eq5d5l", frame.head(5))
    table = pd.DataFrame({"state": [int("".join(map(str, s))) for s in
                                    np.array(np.meshgrid(*[range(1, 6)] * 5, indexing="ij")).reshape(5, -1).T],
                          "value": rng.random(3125)})
    state = (frame[[f"eq5d5l_{d}" for d in range(1, 6)]].astype(str).agg("".join, axis=1)).astype(int)
    base = timeit(lambda: pd.DataFrame({"state": state}).merge(table, on="state", how="left"), repeat)
    print(f"EQ-5D-5L scoring, {n:,} rows (validation, reasons and method column included)")
    for method in ["dsu", "crosswalk", "devlin2018", "rowen2026"]:
        t = timeit(lambda: instruments.score("eq5d5l", frame, method=method), repeat)
        print(f"  {method:10s} {t * 1000:8.1f} ms | plain merge {base * 1000:6.1f} ms | ratio {t / base:5.1f}")


def bench_lmm_scale(quick: bool) -> None:
    """Nested LMM fits at 200 / 2,000 / 20,000 / 200,000 participants: the new engine against
    the previous engine (commit cc61ce4, up to 20,000) and lme4, with peak memory; then 1,000
    warm-started pilot-size fits against lme4 (issue [speed] targets)."""
    import tempfile
    from pathlib import Path

    from bench_lmm_scale import bench_pilot, bench_sizes, header
    sizes = [200, 2000] if quick else [200, 2000, 20000, 200000]
    repeat = 1 if quick else 3
    header("satterthwaite", repeat)
    with tempfile.TemporaryDirectory() as tmp:
        bench_sizes(sizes, repeat, "satterthwaite", Path(tmp), previous_max=20000)
        bench_pilot(100 if quick else 1000, 1, "satterthwaite", Path(tmp))


def bench_mi_scale(quick: bool) -> None:
    """Multiple imputation at 2,000 to 200,000 participants against the previous implementation
    (pivoted QR per regression; up to 20,000), see benchmarks/bench_mi.py."""
    from bench_mi import bench_mi
    bench_mi([2000, 20000] if quick else [2000, 20000, 200000], m=2, iterations=2,
             repeat=1 if quick else 2, previous_max=20000)


BENCHES = ("lmm", "stages", "eq5d", "economics", "lmm_scale", "mi")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one repeat instead of five (smaller sizes for lmm_scale)")
    ap.add_argument("--only", nargs="+", choices=BENCHES, help="run only these benchmarks")
    a = ap.parse_args()
    only = set(a.only or BENCHES)
    repeat = 1 if a.quick else 5
    if "lmm" in only:
        bench_lmm(repeat)
    if "stages" in only:
        bench_pipeline_stages(repeat)
    if "eq5d" in only:
        bench_eq5d(repeat)
    if "economics" in only:
        from bench_economics import bench_economics  # benchmarks/ is on sys.path when run as a script
        bench_economics(repeat=1 if a.quick else 3)
    if "lmm_scale" in only:
        bench_lmm_scale(a.quick)
    if "mi" in only:
        bench_mi_scale(a.quick)


if __name__ == "__main__":
    main()
