"""Random data sets for checking analysis.lmm's engine against an earlier version of itself.

``python tests/reference/lmm_random_cases.py OUT.csv`` fits every case with the analysis.lmm
found on PYTHONPATH and writes one row per (case, fixed-effect term) with the fit's theta,
REML criterion, estimate and the Satterthwaite and Kenward-Roger SE and df.
``tests/reference/golden/lmm_engine_v1.csv`` was written this way by the dense-Schur engine
of commit cc61ce4 (before the block-wise engine); tests/test_lmm_engine.py refits the same
cases with the current engine and compares.

The cases cover the three random-intercept structures the pipeline uses (participant within
site, site alone, participant alone), 2-40 sites, 1-4 follow-ups with dropout, unequal site
sizes and site variances from exactly zero to large (boundary, near-boundary and interior
optima).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

N_CASES = 240


def case(seed: int):
    """(data, formula, groups) for case ``seed``."""
    rng = np.random.default_rng([seed, 20261205])
    kind = ("nested", "site", "participant")[seed % 3]
    n_sites = int(rng.integers(2, 41)) if kind != "participant" else int(rng.integers(1, 6))
    if kind != "participant" and n_sites < 4:
        n_sites = 4
    per_site = rng.integers(2, 31, size=n_sites)
    visits = int(rng.integers(2, 5)) if kind != "site" else 1
    site_sd = float(rng.choice([0.0, 0.02, 0.1, 0.3, 1.0]))
    part_sd = float(rng.choice([0.0, 0.3, 1.0, 2.0]))
    rows = []
    pid = 0
    for s in range(n_sites):
        arm = s % 2 if kind != "participant" else None
        u_s = rng.normal(0, site_sd)
        for _ in range(per_site[s]):
            a = arm if arm is not None else int(rng.integers(0, 2))
            u_p = rng.normal(0, part_sd)
            y0 = rng.normal(0, 1)
            for t in range(visits):
                if t > 0 and rng.random() < 0.2:
                    continue
                y = 0.5 * y0 + 0.3 * a + 0.1 * t + u_s + u_p + rng.normal(0, 1)
                rows.append((f"s{s}", f"p{pid}", "intervention" if a else "control",
                             f"t{t + 1}", round(y0, 3), round(y, 3)))
            pid += 1
    d = pd.DataFrame(rows, columns=["site", "participant", "arm", "time", "y0", "y"])
    if d.arm.nunique() < 2:
        d.loc[d.index[-1], "arm"] = "intervention" if d.arm.iloc[0] == "control" else "control"
    formula = "y ~ arm * time + y0" if d.time.nunique() > 1 else "y ~ arm + y0"
    groups = {"nested": ["site", "participant"], "site": ["site"],
              "participant": ["participant"]}[kind]
    return d, formula, groups


def fit_rows(seed: int) -> list[dict]:
    from analysis.lmm import fit_lmm
    d, formula, groups = case(seed)
    try:
        sat = fit_lmm(d, formula, groups)
        kr = fit_lmm(d, formula, groups, df_method="kenward_roger")
    except ValueError as e:  # e.g. a factor level without data
        return [dict(case=seed, error=str(e)[:60])]
    out = []
    for i, term in enumerate(sat.fixed.term):
        out.append(dict(case=seed, groups="+".join(groups), nobs=sat.nobs, term=term,
                        theta_1=sat.theta[groups[0]],
                        theta_2=sat.theta[groups[1]] if len(groups) > 1 else np.nan,
                        reml=sat.reml_criterion, converged=sat.converged, singular=sat.singular,
                        estimate=sat.fixed.estimate[i], se=sat.fixed.se[i], df=sat.fixed.df[i],
                        se_kr=kr.fixed.se[i], df_kr=kr.fixed.df[i], error=""))
    return out


if __name__ == "__main__":
    rows = [r for s in range(N_CASES) for r in fit_rows(s)]
    pd.DataFrame(rows).to_csv(sys.argv[1], index=False, float_format="%.17g")
