"""Rubin's rules for combining estimates from multiply imputed data sets.

Degrees of freedom follow Barnard & Rubin (Biometrika 1999;86:948) exactly as
implemented in R's mice (``pool()`` / ``pool.scalar()``, mice 3.x), including its
safeguard for a between-imputation variance of (almost) zero:

* lambda = (1 + 1/m) B / T is floored at 1e-4 *for the df computation only*
  (the reported ``lambda`` is the unfloored value). So B = 0 gives
  nu_old = (m - 1) / 1e-8, a very large but finite df, never NaN or a division by 0.
* df_complete = inf (the default; "large sample"): nu = nu_old, and nu_obs is
  reported as inf.
* finite df_complete: nu = nu_old nu_obs / (nu_old + nu_obs), with
  nu_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda); with B = 0 this is
  essentially nu_obs = (nu_com + 1) / (nu_com + 3) nu_com.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["pool"]

LAMBDA_FLOOR = 1e-4  # as mice:::barnard.rubin


def pool(estimates, variances, df_complete: float = np.inf, level: float = 0.95) -> dict:
    """Pool m per-imputation estimates and their squared standard errors (Rubin's rules).

    Parameters
    ----------
    estimates, variances : array-like of shape (m,) or (m, k)
        One quantity per imputation, or k quantities pooled separately (column by column).
    df_complete : float
        Residual df the analysis would have with complete data (nu_com; e.g. n - p for a
        regression); ``np.inf`` for large samples.
    level : float
        Confidence level of the interval.

    Returns
    -------
    dict
        m, qbar, ubar, b, t, se, lambda, riv, fmi, df_old, df_obs, df (Barnard-Rubin), statistic
        (qbar / se), p_value (two-sided, t on df), ci_low, ci_high.  Values are floats for 1-D
        input, arrays of length k for 2-D input.

    References
    ----------
    Rubin DB. Multiple Imputation for Nonresponse in Surveys. New York: Wiley, 1987.

    Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation. Biometrika
    1999;86:948-955.

    Examples
    --------
    A treatment effect estimated in each of five imputed data sets:

    >>> from analysis.mi_pool import pool
    >>> r = pool([1.2, 1.5, 1.1, 1.4, 1.3], [0.04, 0.05, 0.04, 0.05, 0.04], df_complete=50)
    >>> [round(float(r[k]), 4) for k in ("qbar", "se", "fmi", "df", "ci_low", "ci_high")]
    [1.3, 0.272, 0.479, 13.1503, 0.713, 1.887]
    """
    Q = np.asarray(estimates, dtype=float)
    U = np.asarray(variances, dtype=float)
    if Q.shape != U.shape:
        raise ValueError(f"estimates {Q.shape} and variances {U.shape} differ in shape.")
    if Q.ndim not in (1, 2):
        raise ValueError("estimates must be 1-D (m,) or 2-D (m, k).")
    m = Q.shape[0]
    if m < 2:
        raise ValueError("Rubin's rules need at least 2 imputations.")
    if np.any(~np.isfinite(Q)) or np.any(~np.isfinite(U)):
        raise ValueError("estimates and variances must be finite.")
    if np.any(U < 0):
        raise ValueError("variances must be non-negative.")
    dfcom = float(df_complete)
    if not dfcom > 0:
        raise ValueError("df_complete must be positive (np.inf for large samples).")

    qbar = Q.mean(axis=0)
    ubar = U.mean(axis=0)
    b = Q.var(axis=0, ddof=1)
    t = ubar + (1.0 + 1.0 / m) * b
    if np.any(t <= 0):
        raise ValueError("The total variance is zero: every imputation gives the same "
                         "estimate with zero variance; nothing to pool.")
    lam = (1.0 + 1.0 / m) * b / t
    lam_df = np.maximum(lam, LAMBDA_FLOOR)
    df_old = (m - 1) / lam_df**2
    if np.isinf(dfcom):
        df_obs = np.full_like(df_old, np.inf)
        df = df_old
    else:
        df_obs = (dfcom + 1.0) / (dfcom + 3.0) * dfcom * (1.0 - lam_df)
        df = df_old * df_obs / (df_old + df_obs)
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = np.where(ubar > 0, (1.0 + 1.0 / m) * b / np.where(ubar > 0, ubar, 1.0), np.inf)
    fmi = (riv + 2.0 / (df + 3.0)) / (riv + 1.0)
    fmi = np.where(np.isinf(riv), 1.0, fmi)
    se = np.sqrt(t)
    stat = qbar / se
    p = 2.0 * stats.t.sf(np.abs(stat), df)
    q = stats.t.ppf(0.5 + level / 2.0, df)
    out = {
        "m": m, "qbar": qbar, "ubar": ubar, "b": b, "t": t, "se": se,
        "lambda": lam, "riv": riv, "fmi": fmi, "df_old": df_old, "df_obs": df_obs,
        "df": df, "statistic": stat, "p_value": p,
        "ci_low": qbar - q * se, "ci_high": qbar + q * se,
    }
    if Q.ndim == 1:
        out = {k: (v if k == "m" else float(v)) for k, v in out.items()}
    return out
