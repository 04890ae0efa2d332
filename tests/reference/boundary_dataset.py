"""Write datasets/boundary_pilot.csv, a 12-site pilot whose REML optimum lies just off the
boundary (site variance small but positive), and datasets/four_site_pilot.csv, a 4-site pilot
(2 sites per arm) for the Kenward-Roger golden files.

On this data set the optimiser of analysis/lmm.py before issue 12 (commit 4d9e03d) stopped at
theta_site = 0 (REML criterion 1870.886603, arm difference at t2 3.0028, SE 0.9145,
Satterthwaite df 295.6) although the deviance falls as the site variance grows from zero;
lme4 reaches theta_site = 0.0258 (criterion 1870.886124, 3.0007, SE 0.9168, df 31.3). It is the
simulated pilot with seed 202 of the generator below: among seeds 0-399 the old code stopped
on the boundary short of the optimum for seeds 176, 202, 242, 253 and 376 (about 1% of cold
fits); 202 was kept because its deviance gap (0.0005) is as small as in the issue's example.

Layout as the other pilot datasets (long format, follow-up rows, y missing after dropout;
values rounded to 2 decimals so R and Python read identical numbers).

Usage: python boundary_dataset.py <dataset_dir>
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 202
FOUR_SITE_SEED = 11


def simulate(seed: int = SEED, n_sites: int = 12, per_site: int = 14, site_sd: float = 0.6,
             person_sd: float = 3.0, sd: float = 4.5) -> pd.DataFrame:
    """Cluster-randomised pilot, follow-ups t1 and t2 (true arm effects 1.5 and 3.0), a
    small site effect and MAR dropout depending on the baseline value."""
    rng = np.random.default_rng(seed)
    size = rng.poisson(per_site, n_sites) + 4
    site = np.repeat(np.arange(n_sites), size)
    n = len(site)
    arm_site = rng.permutation(np.r_[np.zeros(n_sites // 2), np.ones(n_sites - n_sites // 2)])
    treat = arm_site[site]
    u = rng.normal(0, site_sd, n_sites)[site]
    b = rng.normal(0, person_sd, n)
    y0 = 45 + u + rng.normal(0, 6, n)
    out = []
    for k, (tp, eff) in enumerate((("t1", 1.5), ("t2", 3.0))):
        y = 14 + 0.7 * y0 + k * 0.5 + eff * treat + u + b + rng.normal(0, sd, n)
        p_miss = 1 / (1 + np.exp(-(-1.5 + 0.1 * (45 - y0) + 0.5 * k)))
        y = np.where(rng.uniform(size=n) < p_miss, np.nan, y)
        out.append(pd.DataFrame({
            "site": [f"S{s + 1:02d}" for s in site],
            "participant": [f"P{i + 1:03d}" for i in range(n)],
            "arm": np.where(treat == 1, "intervention", "control"), "time": tp,
            "y0": y0, "y": y}))
    d = pd.concat(out, ignore_index=True)
    d["y0"] = d.y0.round(2)
    d["y"] = d.y.round(2)
    return d.sort_values(["site", "participant", "time"]).reset_index(drop=True)


def linked(d: pd.DataFrame) -> pd.DataFrame:
    """The same trial in the pipeline's linked-table layout (baseline rows added, columns
    participant_id, site_id, arm, timepoint, month, score), for tests of analysis.outcomes."""
    base = d.drop_duplicates("participant").assign(time="baseline", y=lambda x: x.y0)
    x = pd.concat([base, d], ignore_index=True).drop(columns="y0")
    x = x.rename(columns={"participant": "participant_id", "site": "site_id",
                          "time": "timepoint", "y": "score"})
    x["month"] = x.timepoint.map({"baseline": 0.0, "t1": 3.0, "t2": 9.0})
    x["timepoint"] = pd.Categorical(x.timepoint, categories=["baseline", "t1", "t2"],
                                    ordered=True)
    return x.sort_values(["participant_id", "timepoint"]).reset_index(drop=True)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "datasets")
    out.mkdir(parents=True, exist_ok=True)
    simulate().to_csv(out / "boundary_pilot.csv", index=False, na_rep="")
    simulate(seed=FOUR_SITE_SEED, n_sites=4, per_site=15, site_sd=1.5).to_csv(
        out / "four_site_pilot.csv", index=False, na_rep="")
