"""Cronbach's alpha: hand-checkable cases and a direct numpy implementation of the formula."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import instruments
from analysis.instruments import ProvisionalDefinitionWarning


def numpy_alpha(x: np.ndarray) -> tuple[float, float, float]:
    """alpha = k/(k-1) * (1 - sum of item variances / variance of the total), with the
    Feldt F-distribution 95% CI."""
    n, k = x.shape
    item_var = x.var(axis=0, ddof=1).sum()
    total_var = x.sum(axis=1).var(ddof=1)
    alpha = k / (k - 1) * (1 - item_var / total_var)
    df1, df2 = n - 1, (n - 1) * (k - 1)
    low = 1 - (1 - alpha) * stats.f.ppf(0.975, df1, df2)
    high = 1 - (1 - alpha) * stats.f.ppf(0.025, df1, df2)
    return alpha, low, high


def frame(instrument_id: str, x) -> pd.DataFrame:
    x = np.asarray(x, dtype=float)
    return pd.DataFrame(x, columns=[f"{instrument_id}_{k}" for k in range(1, x.shape[1] + 1)])


def test_identical_items_give_alpha_one():
    x = np.repeat(np.array([[1], [2], [3], [2], [1]]), 3, axis=1)
    out = instruments.reliability("ucla3", frame("ucla3", x))
    assert out["alpha"].iloc[0] == pytest.approx(1.0)


def test_uncorrelated_items_give_alpha_zero():
    # a 2x2x2 factorial: every pair of items has zero covariance, so the variance of the
    # total equals the sum of the item variances and alpha = 3/2 * (1 - 1) = 0
    x = [[a, b, c] for a in (1, 2) for b in (1, 2) for c in (1, 2)]
    out = instruments.reliability("ucla3", frame("ucla3", x))
    assert out["alpha"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert out["n"].iloc[0] == 8


def test_wemwbs_alpha_matches_numpy_formula_and_uses_complete_cases():
    rng = np.random.default_rng(7)
    latent = rng.normal(size=(60, 1))
    x = np.clip(np.rint(3 + latent + rng.normal(scale=0.8, size=(60, 14))), 1, 5)
    data = frame("wemwbs", x)
    data.iloc[0, 3] = np.nan
    data.iloc[1, 0] = 9  # invalid: excluded like a missing answer
    out = instruments.reliability("wemwbs", data)
    assert list(out.columns) == ["instrument", "scale", "n", "n_items", "alpha", "ci_low", "ci_high"]
    alpha, low, high = numpy_alpha(x[2:])
    row = out.iloc[0]
    assert (row["instrument"], row["scale"], row["n"], row["n_items"]) == ("wemwbs", "total", 58, 14)
    assert row["alpha"] == pytest.approx(alpha, rel=1e-12)
    assert row["ci_low"] == pytest.approx(low, abs=5e-4)  # pingouin rounds the CI to 3 d.p.
    assert row["ci_high"] == pytest.approx(high, abs=5e-4)


def test_subscales_use_scored_items_after_reverse_keying():
    rng = np.random.default_rng(3)
    latent = rng.normal(size=(40, 1))
    inclusion = np.clip(np.rint(2.5 + latent + rng.normal(scale=0.7, size=(40, 22))), 1, 4)
    raw = inclusion.copy()
    raw[:, :7] = 5 - raw[:, :7]  # isolation items are answered in the reverse direction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProvisionalDefinitionWarning)
        out = instruments.reliability("sis", frame("sis", raw))
    assert out["scale"].tolist() == ["total", "social_isolation", "social_relations", "social_acceptance"]
    assert out["n_items"].tolist() == [22, 7, 8, 7]
    expected = [numpy_alpha(inclusion)[0], numpy_alpha(inclusion[:, :7])[0],
                numpy_alpha(inclusion[:, 7:15])[0], numpy_alpha(inclusion[:, 15:])[0]]
    np.testing.assert_allclose(out["alpha"], expected, rtol=1e-12)


def test_too_few_rows_gives_nan_not_an_error():
    out = instruments.reliability("ucla3", frame("ucla3", [[1, 2, 3]]))
    assert out["n"].iloc[0] == 1 and np.isnan(out["alpha"].iloc[0])


def test_reliability_refuses_non_summed_instruments():
    with pytest.raises(ValueError, match="summed"):
        instruments.reliability("ons4", frame("ons4", [[1, 2, 3, 4]]))
