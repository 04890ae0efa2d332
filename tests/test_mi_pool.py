"""analysis.mi_pool against mice 3.15 (pool.scalar / pool) golden values.

Expected numbers come from tests/reference/golden/mi_pool.csv (made by
tests/reference/mi_golden.R); R is not needed to run these tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.mi_pool import pool

GOLDEN = Path(__file__).parent / "reference" / "golden" / "mi_pool.csv"
CASES = pd.read_csv(GOLDEN, dtype=str, keep_default_na=False)
KEYS = ["qbar", "ubar", "b", "t", "se", "lambda", "riv", "fmi", "df", "statistic",
        "p_value", "ci_low", "ci_high"]


def _floats(s: str) -> np.ndarray:
    return np.array([float(x) for x in s.split(";")])


@pytest.mark.parametrize("row", [r for _, r in CASES.iterrows()], ids=list(CASES["case"]))
def test_pool_matches_mice(row):
    out = pool(_floats(row["estimates"]), _floats(row["variances"]),
               df_complete=float(row["df_complete"]))
    assert out["m"] == int(row["m"])
    for key in KEYS:
        expected = float(row[key])
        # b, lambda and riv of the "tiny B" case are differences of nearly equal
        # numbers: compare them on an absolute scale
        assert out[key] == pytest.approx(expected, rel=1e-9, abs=1e-15), key
        assert np.isfinite(out[key]), key


def test_zero_between_variance_gives_finite_large_df():
    row = CASES.set_index("case").loc["zero_b_infinite_dfcom"]
    out = pool(_floats(row["estimates"]), _floats(row["variances"]))
    assert out["b"] == 0.0 and out["lambda"] == 0.0
    # mice floors lambda at 1e-4 for the df: (m - 1) / 1e-8
    assert out["df"] == pytest.approx(float(row["df"]), rel=1e-12)
    assert out["df_obs"] == np.inf
    assert all(np.isfinite(out[k]) for k in KEYS)


def test_vector_input_pools_columnwise():
    rows = CASES.set_index("case").loc[["finite_dfcom", "zero_b_finite_dfcom"]]
    Q = np.column_stack([_floats(r) for r in rows["estimates"]])
    U = np.column_stack([_floats(r) for r in rows["variances"]])
    # both cases use df_complete values; pool each column with its own below
    for j, (case, r) in enumerate(rows.iterrows()):
        single = pool(Q[:, j], U[:, j], df_complete=float(r["df_complete"]))
        assert single["df"] == pytest.approx(float(r["df"]), rel=1e-9)
    out = pool(Q, U, df_complete=30.0)
    assert out["qbar"].shape == (2,)
    assert out["df"][1] == pytest.approx(float(rows.loc["zero_b_finite_dfcom", "df"]), rel=1e-9)


def test_bad_input():
    with pytest.raises(ValueError):
        pool([1.0], [0.1])
    with pytest.raises(ValueError):
        pool([1.0, 2.0], [0.1])
    with pytest.raises(ValueError):
        pool([1.0, 1.0], [0.0, 0.0])
