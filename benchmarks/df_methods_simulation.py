"""Coverage of small-sample df methods for the arm effect in cluster pilots with few sites.

    .venv/bin/python benchmarks/df_methods_simulation.py [--reps 1000] [--out FILE]

Simulates cluster-randomised pilots (sites randomised 1:1, unequal site sizes, baseline and two
follow-ups with MAR dropout depending on the baseline value) with a small site ICC, so that
the site variance is often estimated at zero, and fits the two models the pipeline uses:

* the repeated-measures model ``y ~ arm * time + y0 + (1 | site) + (1 | participant)`` (arm
  difference at the last follow-up), and
* the single-follow-up ANCOVA ``y ~ arm + y0 + (1 | site)`` at the last follow-up.

For each fit the 95% interval for the arm difference is formed four ways:

* ``satterthwaite``: model-based SE, Satterthwaite df (lmerTest);
* ``kenward_roger``: KR-adjusted SE and KR df (pbkrtest);
* ``satterthwaite_bw``: model-based SE, df = min(Satterthwaite, G - 2), the between-within
  df of a site-level arm (G sites, intercept and arm at site level) used as a cap;
* ``kenward_roger_bw``: KR SE, df = min(KR, G - 2).

Prints coverage (with Monte Carlo SE), mean interval width relative to Satterthwaite, and
coverage among fits with the site variance at zero, for every scenario; writes the per-fit
results as CSV (``--out``) and the markdown table of docs/methods.md. Every trial has its own
seed (scenario, replicate), so any subset reproduces exactly. The figures in docs/methods.md
come from ``--reps 2000`` (about 30 minutes on one core); ``--summarise FILE`` re-tabulates an
earlier ``--out`` file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.lmm import fit_lmm

TRUE_EFFECT = 3.0  # arm difference at the last follow-up
PERSON_SD, RESID_SD = 3.0, 4.5
SCENARIOS = [(g, icc) for g in (6, 8, 12) for icc in (0.01, 0.05)]
METHODS = ["satterthwaite", "kenward_roger", "satterthwaite_bw", "kenward_roger_bw"]


def simulate(seed: int, n_sites: int, icc: float, per_site: int = 14) -> pd.DataFrame:
    """One pilot; ``icc`` = site variance / (site + participant + residual) at follow-up,
    given the baseline value."""
    rng = np.random.default_rng(seed)
    within = PERSON_SD**2 + RESID_SD**2
    site_sd = np.sqrt(icc / (1 - icc) * within)
    size = rng.poisson(per_site, n_sites) + 4
    site = np.repeat(np.arange(n_sites), size)
    n = len(site)
    treat = rng.permutation(np.r_[np.zeros(n_sites // 2), np.ones(n_sites - n_sites // 2)])[site]
    y0 = 45 + rng.normal(0, 1.0, n_sites)[site] + rng.normal(0, 6, n)
    u = rng.normal(0, site_sd, n_sites)[site]
    b = rng.normal(0, PERSON_SD, n)
    out = []
    for k, (tp, eff) in enumerate((("t1", 1.5), ("t2", TRUE_EFFECT))):
        y = 14 + 0.7 * y0 + 0.5 * k + eff * treat + u + b + rng.normal(0, RESID_SD, n)
        p_miss = 1 / (1 + np.exp(-(-1.5 + 0.1 * (45 - y0) + 0.5 * k)))
        y = np.where(rng.uniform(size=n) < p_miss, np.nan, y)
        out.append(pd.DataFrame({"site": site.astype(str), "participant": np.arange(n).astype(str),
                                 "arm": np.where(treat == 1, "b_int", "a_ctl"), "time": tp,
                                 "y0": y0, "y": y}))
    return pd.concat(out, ignore_index=True)


def scenario_seed(n_sites: int, icc: float, rep: int) -> int:
    """Seed of replicate ``rep`` of a scenario (so any subset reproduces exactly)."""
    return 1_000_000 * (SCENARIOS.index((n_sites, icc)) + 1) + rep


def one_trial(seed: int, n_sites: int, icc: float,
              models: tuple[str, ...] = ("repeated", "ancova")) -> list[dict]:
    d = simulate(seed, n_sites, icc)
    rows = []
    for model, data, formula, groups, L in (
            ("repeated", d, "y ~ arm * time + y0", ["site", "participant"],
             {"arm[T.b_int]": 1.0, "arm[T.b_int]:time[T.t2]": 1.0}),
            ("ancova", d[d.time == "t2"], "y ~ arm + y0", ["site"], {"arm[T.b_int]": 1.0})):
        if model not in models:
            continue
        fit = fit_lmm(data, formula, groups, df_method="kenward_roger")
        s = fit.contrast(L, df_method="satterthwaite")
        k = fit.contrast(L, df_method="kenward_roger")
        rows.append(dict(seed=seed, sites=n_sites, icc=icc, model=model,
                         site_zero=fit.theta["site"] < 1e-4, converged=fit.converged,
                         estimate=s["estimate"], se_s=s["se"], df_s=s["df"], se_kr=k["se"],
                         df_kr=k["df"]))
    return rows


def summarise(res: pd.DataFrame) -> pd.DataFrame:
    res = res.copy()
    cap = res.sites - 2
    spec = {"satterthwaite": (res.se_s, res.df_s),
            "kenward_roger": (res.se_kr, res.df_kr),
            "satterthwaite_bw": (res.se_s, np.minimum(res.df_s, cap)),
            "kenward_roger_bw": (res.se_kr, np.minimum(res.df_kr, cap))}
    for m, (se, df) in spec.items():
        half = stats.t.ppf(0.975, df) * se
        res[f"cover_{m}"] = (np.abs(res.estimate - TRUE_EFFECT) <= half).astype(float)
        res[f"width_{m}"] = 2 * half
    out = []
    for (model, g, icc), r in res.groupby(["model", "sites", "icc"], sort=True):
        row = dict(model=model, sites=g, icc=icc, reps=len(r), site_zero=r.site_zero.mean(),
                   median_df_s=r.df_s.median(), median_df_kr=r.df_kr.median())
        for m in METHODS:
            c = r[f"cover_{m}"].mean()
            row[f"cover_{m}"] = c
            row[f"mcse_{m}"] = np.sqrt(c * (1 - c) / len(r))
            row[f"width_{m}"] = r[f"width_{m}"].mean() / r["width_satterthwaite"].mean()
            z = r[r.site_zero]
            row[f"cover_zero_{m}"] = z[f"cover_{m}"].mean() if len(z) else np.nan
        out.append(row)
    return pd.DataFrame(out)


def markdown(summ: pd.DataFrame) -> str:
    """The table of docs/methods.md (coverage in %, widths relative to Satterthwaite)."""
    lines = ["| model | G | ICC | fits with site variance 0 | S | KR | S-BW | KR-BW | S, site var. 0 "
             "| KR, site var. 0 | S-BW, site var. 0 | width KR / S | width S-BW / S |",
             "|" + "---|" * 13]
    names = {"repeated": "repeated measures", "ancova": "ANCOVA"}
    for model in ("repeated", "ancova"):
        for r in summ[summ.model == model].itertuples():
            pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
            lines.append(
                f"| {names[model]} | {r.sites} | {r.icc:g} | {100 * r.site_zero:.0f}% | "
                f"{pct(r.cover_satterthwaite)} | {pct(r.cover_kenward_roger)} | "
                f"{pct(r.cover_satterthwaite_bw)} | {pct(r.cover_kenward_roger_bw)} | "
                f"{pct(r.cover_zero_satterthwaite)} | {pct(r.cover_zero_kenward_roger)} | "
                f"{pct(r.cover_zero_satterthwaite_bw)} | {r.width_kenward_roger:.2f} | "
                f"{r.width_satterthwaite_bw:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="per-fit results (CSV)")
    ap.add_argument("--summarise", type=Path, default=None,
                    help="summarise an earlier --out file instead of simulating")
    args = ap.parse_args(argv)
    if args.summarise:
        res = pd.read_csv(args.summarise)
    else:
        rows = []
        t0 = time.time()
        for g, icc in SCENARIOS:
            for rep in range(args.reps):
                rows += one_trial(seed=scenario_seed(g, icc, rep), n_sites=g, icc=icc)
            print(f"scenario {g} sites, ICC {icc}: done ({time.time() - t0:.0f} s)", flush=True)
        res = pd.DataFrame(rows)
    if args.out:
        res.to_csv(args.out, index=False, float_format="%.10g")
    summ = summarise(res)
    print(f"not converged: {int((~res.converged.astype(bool)).sum())} of {len(res)} fits")
    pd.set_option("display.width", 200)
    cols = ["model", "sites", "icc", "reps", "site_zero", "median_df_s", "median_df_kr"]
    print(summ[cols].round(3).to_string(index=False))
    print("\ncoverage (MC SE)")
    cov = summ[["model", "sites", "icc"]].copy()
    for m in METHODS:
        cov[m] = [f"{c:.3f} ({s:.3f})" for c, s in zip(summ[f"cover_{m}"], summ[f"mcse_{m}"])]
    print(cov.to_string(index=False))
    print("\ncoverage among fits with the site variance at zero")
    print(summ[["model", "sites", "icc"] + [f"cover_zero_{m}" for m in METHODS]].round(3)
          .to_string(index=False))
    print("\nmean interval width relative to Satterthwaite")
    print(summ[["model", "sites", "icc"] + [f"width_{m}" for m in METHODS]].round(3)
          .to_string(index=False))
    print("\n" + markdown(summ))


if __name__ == "__main__":
    main()
