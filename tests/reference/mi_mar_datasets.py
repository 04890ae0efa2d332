"""Simulated trials with outcome dropout missing at random (MAR), for checking analysis.mi
against R's mice (tests/reference/mi_mice_golden.R, tests/test_mi_mice.py).

Individually randomised, n = 200, one follow-up: y1 = 5 + 0.6 y0 + 2 treat + 2 z + e, e ~ N(0, 2^2);
y1 is missing with probability logistic(-0.8 + 1.5 z treat), i.e. dropout depends on the
auxiliary z in the intervention arm only (strongly selective: the intervention participants
with high z, hence high y1, are mostly missing).  The true effect of treat is 2.

    python tests/reference/mi_mar_datasets.py OUT_DIR [N]    # writes OUT_DIR/d000.csv ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

TRUE_EFFECT = 2.0
N_DATASETS = 200


def dataset(i: int, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng([2026, i])
    treat = rng.permutation(np.r_[np.ones(n // 2), np.zeros(n - n // 2)])
    y0 = rng.normal(20, 4, n)
    z = rng.normal(size=n)
    y1 = 5 + 0.6 * y0 + TRUE_EFFECT * treat + 2.0 * z + rng.normal(0, 2, n)
    y1 = np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-(-0.8 + 1.5 * z * treat))), np.nan, y1)
    return pd.DataFrame({"y0": y0, "y1": y1, "treat": treat, "z": z})


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    n = int(argv[1]) if len(argv) > 1 else N_DATASETS
    for i in range(n):
        dataset(i).to_csv(out / f"d{i:03d}.csv", index=False, float_format="%.17g")


if __name__ == "__main__":
    main(sys.argv[1:])
