"""QALYs (and other outcome-years, e.g. WELLBYs) by area under the curve, with discounting.

Utilities are joined by straight lines between assessments (the trapezoidal rule) with time
in years: ``sum (t[i+1] - t[i]) (u[i] + u[i+1]) / 2``.  Negative utilities are kept.

Discounting follows the convention that the first year is not discounted and year k
(k = 0, 1, 2, ... counted from baseline) is discounted by ``(1 + r) ** -k``: the integrand is
multiplied by a step function that drops at each anniversary.  The integral of a straight
line times that step function is exact (each segment is split at whole years), so a
follow-up of 12 months or less is never discounted.  For utility 1.0 over two years at 3.5%
this gives 1 + 1/1.035 = 1.966184.
"""

from __future__ import annotations

import numpy as np


def discount_weight(t0, t1, rate: float) -> np.ndarray:
    """Mean of the annual step discount factor over [t0, t1] (years).

    Used for a cost spread evenly over a recall period (module docstring: the first year is not
    discounted, year k by (1 + rate) ** -k).

    Parameters
    ----------
    t0, t1 : array-like
        Start and end of each period, in years from baseline.
    rate : float
        Annual discount rate (0.035 in NICE's reference case).

    Returns
    -------
    numpy.ndarray
        One weight per period; 1 where t1 <= 1.

    References
    ----------
    National Institute for Health and Care Excellence. NICE health technology evaluations: the
    manual (PMG36), 2022, section 4.5 (discounting).

    Examples
    --------
    >>> from analysis.qaly import discount_weight
    >>> discount_weight([0.0, 1.0, 1.5], [1.0, 2.0, 2.5], 0.035).round(4)
    array([1.    , 0.9662, 0.9498])
    """
    t0 = np.asarray(t0, float)
    t1 = np.asarray(t1, float)
    ones = np.ones_like(t0 + t1)
    if rate == 0:
        return ones
    return np.where(t1 > t0, auc(np.stack([t0, t1], -1), np.stack([ones, ones], -1), rate)
                    / np.where(t1 > t0, t1 - t0, 1.0), 1.0 / (1 + rate) ** np.floor(t0))


def auc(times, values, discount_rate: float = 0.0):
    """Area under the piecewise-linear curve through (times, values), for each row.

    Utilities are joined by straight lines (the trapezoidal rule), with the exact annual step
    discounting of the module docstring when ``discount_rate`` is positive.

    Parameters
    ----------
    times : array-like of shape (n, k) or (k,)
        Times in years from baseline, increasing along each row (one row may serve all).
    values : array-like of shape (n, k) or (k,)
        Utilities (or another outcome) at those times; negative values are kept.
    discount_rate : float
        Annual discount rate; 0 for none.

    Returns
    -------
    numpy.ndarray or float
        n areas (QALYs when the values are utilities); a float for a single 1-D curve.  A row
        with any missing value gives NaN.

    References
    ----------
    Matthews JNS, Altman DG, Campbell MJ, Royston P. Analysis of serial measurements in medical
    research. BMJ 1990;300:230-235.

    Manca A, Hawkins N, Sculpher MJ. Estimating mean QALYs in trial-based cost-effectiveness
    analysis: the importance of controlling for baseline utility. Health Econ 2005;14:487-496.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.qaly import auc
    >>> float(auc([0, 0.25, 0.75], [0.6, 0.7, 0.8]))
    0.5375
    >>> round(auc([0, 1, 2], [1.0, 1.0, 1.0], discount_rate=0.035), 6)
    1.966184
    >>> auc([[0, 0.5, 1.0], [0, 0.5, 1.0]], [[0.5, 0.6, 0.7], [0.4, np.nan, 0.6]])
    array([0.6, nan])
    """
    t = np.atleast_2d(np.asarray(times, float))
    u = np.atleast_2d(np.asarray(values, float))
    if t.shape != u.shape:
        t = np.broadcast_to(t, u.shape)
    if np.any(np.diff(t, axis=1) < 0):
        raise ValueError("auc: times must increase along each row")
    total = np.zeros(u.shape[0])
    for j in range(u.shape[1] - 1):
        a, b = t[:, j], t[:, j + 1]
        ua, ub = u[:, j], u[:, j + 1]
        slope = np.divide(ub - ua, b - a, out=np.zeros_like(ua), where=b > a)
        if discount_rate == 0:
            total += (b - a) * (ua + ub) / 2
            continue
        # split [a, b] at whole years; each piece has a constant discount factor
        k_lo = np.floor(np.nan_to_num(a))
        k_hi = np.ceil(np.nan_to_num(b))
        for k in range(int(np.min(k_lo)) if len(a) else 0, int(np.max(k_hi)) + 1 if len(a) else 0):
            lo = np.clip(a, k, k + 1)
            hi = np.clip(b, k, k + 1)
            ulo = ua + slope * (lo - a)
            uhi = ua + slope * (hi - a)
            total += (hi - lo) * (ulo + uhi) / 2 / (1.0 + discount_rate) ** k
    total[np.isnan(u).any(axis=1) | np.isnan(t).any(axis=1)] = np.nan
    return total if np.ndim(values) > 1 else float(total[0])
