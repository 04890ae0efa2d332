"""Model-based variance of a weighted least-squares contrast in a comparison of agencies.

The propensity-weighted economic evaluation (``analysis.economics``, ``economics.weighted_interval:
model``) estimates an incremental cost or effect as the arm coefficient of a weighted
least-squares regression, ``delta = a'y`` with ``a`` the arm row of ``(X'WX)^-1 X'W``.  The
weights depend only on the score covariates and the arms (the score model never sees the
outcome), so given the covariates and arms ``a`` is fixed and

    Var(delta | covariates, arms) = a' V a,

with ``V`` the covariance of the outcomes given the covariates.  Here ``V`` is that of a random
agency intercept with homoscedastic errors, ``V = sigma_b^2 ZZ' + sigma_w^2 I``, fitted by REML to
the outcome on the regression's covariates (which include the score covariates), pooling the
between-agency variance over all agencies: an agency alone in its client group and arm, whose
own variation no resampling of agencies can show, gets the variance the others show.  So

    Var(delta) = c_b sigma_b^2 + c_w sigma_w^2,  c_b = sum_j (sum_{i in j} a_i)^2,  c_w = sum_i a_i^2,

and the interval is delta +/- t_nu SE with Satterthwaite's degrees of freedom
nu = 2 v^2 / Var(v_hat), Var(v_hat) = c' I^-1 c with I the expected REML information of
(sigma_b^2, sigma_w^2) (Satterthwaite FE. Biometrics Bulletin 1946;2:110), with the expected REML information of
the two variances (lmerTest, Kuznetsova A, Brockhoff PB, Christensen RHB. J Stat Softw
2017;82(13), uses the observed information in its own parameterisation; the R reference here
computes the expected one).

Everything is computed with agency sums: no n x n or n x agencies matrix (memory O(n p + G^2)).
Checked against lme4's REML and a dense R implementation of the information
(``tests/reference/agency_variance_golden.R``) and by simulation (docs/methods.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

RHO_MAX = 1.0 - 1e-9  # upper bound of the intra-agency correlation searched


@dataclass(frozen=True)
class RandomIntercept:
    """REML fit of ``y = F b + u_agency + e``: the two variances, the inverse expected REML
    information of (between, within) and the number of agencies."""
    between: float
    within: float
    cov: np.ndarray
    agencies: int

    @property
    def icc(self) -> float:
        """Intra-agency correlation sigma_b^2 / (sigma_b^2 + sigma_w^2)."""
        tot = self.between + self.within
        return float(self.between / tot) if tot > 0 else float("nan")


def _index(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, gi = np.unique(np.asarray(groups), return_inverse=True)
    return gi, np.bincount(gi).astype(float)


def _vinv(M: np.ndarray, gi: np.ndarray, nj: np.ndarray, sb2: float, sw2: float) -> np.ndarray:
    """V^-1 M for V = sb2 ZZ' + sw2 I (per agency: (I - c J) / sw2, c = sb2 / (sw2 + n_j sb2))."""
    c = sb2 / (sw2 + nj * sb2)
    s = np.zeros((len(nj),) + M.shape[1:])
    np.add.at(s, gi, M)
    return (M - (c[:, None] * s if M.ndim == 2 else c * s)[gi]) / sw2


def fit_random_intercept(y: np.ndarray, F: np.ndarray, groups: np.ndarray) -> RandomIntercept:
    """REML estimates of a random-intercept model and the inverse of their expected information.

    The restricted likelihood is profiled over the within variance and maximised over
    rho = sigma_b^2 / (sigma_b^2 + sigma_w^2) in [0, 1 - 1e-9] (the boundary 0 included, as lme4).
    Refused (ValueError) when no agency has two rows: the two variances are then not separable.

    Parameters
    ----------
    y : (n,) outcome; F : (n, p) full-rank fixed-effects design; groups : (n,) agency labels.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(300), 10)
    >>> y = 2 + rng.normal(0, 1, 300)[g] + rng.normal(0, 2, 3000)
    >>> fit = fit_random_intercept(y, np.ones((3000, 1)), g)
    >>> round(fit.between, 1), round(fit.within, 1)   # true 1 and 4
    (1.0, 4.0)
    """
    y, F = np.asarray(y, float), np.asarray(F, float)
    gi, nj = _index(groups)
    n, p = F.shape
    if n <= p:
        raise ValueError(f"random-intercept fit: {n} observations for {p} fixed effects")
    if nj.max() < 2:
        raise ValueError("random-intercept fit: every agency has one participant, so variation between agencies "
                         "cannot be told from variation within them")

    def profile(rho: float) -> tuple[float, float, float]:
        gam = rho / (1 - rho)  # sigma_b^2 / sigma_w^2
        HF, Hy = _vinv(F, gi, nj, gam, 1.0), _vinv(y, gi, nj, gam, 1.0)
        A = F.T @ HF
        b = np.linalg.solve(A, F.T @ Hy)
        r = y - F @ b
        s2 = float(r @ _vinv(r, gi, nj, gam, 1.0)) / (n - p)
        if s2 <= 0:
            return np.inf, gam, 0.0
        return (n - p) * np.log(s2) + np.log1p(nj * gam).sum() + np.linalg.slogdet(A)[1], gam, s2

    res = optimize.minimize_scalar(lambda r: profile(r)[0], bounds=(0.0, RHO_MAX), method="bounded",
                                   options={"xatol": 1e-12})
    rho = float(res.x) if profile(float(res.x))[0] < profile(0.0)[0] else 0.0
    _, gam, s2 = profile(rho)
    sb2, sw2 = gam * s2, s2
    return RandomIntercept(sb2, sw2, _inverse_information(F, gi, nj, sb2, sw2), len(nj))


def _inverse_information(F: np.ndarray, gi: np.ndarray, nj: np.ndarray, sb2: float, sw2: float) -> np.ndarray:
    """Inverse of the expected REML information of (sigma_b^2, sigma_w^2):
    I_rs = tr(P V_r P V_s) / 2, P = V^-1 - V^-1 F (F'V^-1 F)^-1 F'V^-1, V_b = ZZ', V_w = I,
    with agency sums: Z'PZ (agencies x agencies) and PZ, P^2 through V^-1."""
    G = len(nj)
    M = _vinv(F, gi, nj, sb2, sw2)  # V^-1 F
    K = np.linalg.inv(F.T @ M)
    d = nj / (sw2 + nj * sb2)  # Z'V^-1 Z is diagonal
    ZM = np.zeros((G, F.shape[1]))
    np.add.at(ZM, gi, M)  # Z'V^-1 F
    ZKZ = ZM @ K @ ZM.T
    ZPZ = np.diag(d) - ZKZ
    # ||PZ||^2 with PZ = V^-1 Z - M K ZM' (V^-1 Z: column j is e_j = 1/(sw2 + n_j sb2) on agency j),
    # without forming the n x G matrix: sum n_j e_j^2 - 2 sum e_j (ZM K ZM')_jj + tr(K M'M K ZM'ZM)
    e = 1.0 / (sw2 + nj * sb2)
    pz2 = float((nj * e**2).sum() - 2 * (e * np.diag(ZKZ)).sum() + np.trace(K @ (M.T @ M) @ K @ (ZM.T @ ZM)))
    # tr(P^2) = tr(V^-2) - 2 tr(K M'V^-1 M) + tr((K M'M)^2)
    c = sb2 / (sw2 + nj * sb2)
    tr_v2 = float((nj * (1 - 2 * c + nj * c**2)).sum()) / sw2**2  # tr((I - cJ)^2) / sw2^2 per agency
    VM = _vinv(M, gi, nj, sb2, sw2)
    KMM = K @ (M.T @ M)
    tr_p2 = tr_v2 - 2 * float(np.trace(K @ (M.T @ VM))) + float(np.trace(KMM @ KMM))
    info = 0.5 * np.array([[float((ZPZ**2).sum()), pz2], [pz2, tr_p2]])
    return np.linalg.inv(info)


def contrast_row(X: np.ndarray, w: np.ndarray, column: int = 1) -> np.ndarray:
    """The row a with a'y the ``column`` coefficient of the weighted least-squares fit of y on X."""
    A = X.T @ (w[:, None] * X)
    return np.linalg.solve(A, (X * w[:, None]).T)[column]


def agency_level_df(F: np.ndarray, groups: np.ndarray, tol: float = 1e-9) -> int:
    """Agencies minus the rank of the columns of F that are constant within every agency: the
    degrees of freedom left for the variation between agencies (the between-agency or
    containment df of a cluster-level contrast)."""
    gi, nj = _index(groups)
    means = np.zeros((len(nj), F.shape[1]))
    np.add.at(means, gi, F)
    means /= nj[:, None]
    const = np.abs(F - means[gi]).max(axis=0) <= tol * np.maximum(np.abs(F).max(axis=0), 1.0)
    rank = int(np.linalg.matrix_rank(means[:, const])) if const.any() else 0
    return len(nj) - rank


def contrast_variance(a: np.ndarray, groups: np.ndarray, fit: RandomIntercept,
                      df_max: float = np.inf) -> tuple[float, float]:
    """Var(a'y) under the fitted random intercept and its Satterthwaite degrees of freedom, at
    most ``df_max`` (:func:`agency_level_df`: with the between-agency variance estimated at or
    near 0 Satterthwaite's df approach the participants', although the arm is an agency-level
    term)."""
    gi, _ = _index(groups)
    cb = float((np.bincount(gi, weights=a) ** 2).sum())
    cw = float((a**2).sum())
    c = np.array([cb, cw])
    v = cb * fit.between + cw * fit.within
    q = float(c @ fit.cov @ c)
    df = 2 * v**2 / q if q > 0 else np.inf
    return float(v), float(min(df, df_max))


def interval(estimate: float, a: np.ndarray, y: np.ndarray, F: np.ndarray, groups: np.ndarray,
             level: float = 0.95) -> dict:
    """Estimate, SE, Satterthwaite df and the t interval of the contrast ``a'y`` (module docstring)."""
    fit = fit_random_intercept(y, F, groups)
    v, df = contrast_variance(a, groups, fit)
    se = float(np.sqrt(v))
    q = float(stats.t.ppf(0.5 + level / 2, df))
    return dict(se=se, df=df, ci_low=estimate - q * se, ci_high=estimate + q * se, icc=fit.icc)
