"""Linear mixed models with independent random intercepts and small-sample inference.

The model is

    y = X beta + sum_k Z_k b_k + e,    b_k ~ N(0, sigma^2 theta_k^2 I),  e ~ N(0, sigma^2 I),

one random intercept per grouping column (``groups``). Nested designs are written
as independent intercepts on uniquely coded IDs (lme4's ``(1|site) + (1|participant)``);
crossed designs work the same way.

Estimation follows lme4's formulation: the residual variance and the fixed effects
are profiled out and the (RE)ML deviance is minimised over the relative standard
deviations ``theta_k = sd_k / sigma`` subject to ``theta_k >= 0``. The optimum is
found with bounded Nelder-Mead from theta = 1 (as lme4 starts its derivative-free
BOBYQA), refined with L-BFGS-B and polished with projected Newton steps on
Richardson-extrapolated derivatives, so estimates agree with a tightly converged
lme4 fit to about 1e-7 relative. Because the deviance depends on theta_k only through
theta_k^2, its theta-gradient vanishes at 0 whatever the deviance does nearby; a component
at (or near) zero is therefore accepted only if the one-sided slope of the deviance in the
variance theta_k^2 is non-negative, and otherwise moved off the boundary and re-optimised on
the variance scale. A variance component is reported as a boundary (singular) fit when
theta_k < 1e-4, lme4's isSingular rule.

Computation: everything is done on cross-products. Nested random intercepts (participant
within site, site alone, participant alone) use the block-wise engine :class:`_NestedCore`:
the Woodbury identity per participant and then per site, with participants grouped into
cells of the same site and number of rows, so one deviance evaluation costs
O(cells * p^2) after an O(n p^2) set-up (cells <= participants), with exact gradient and
Hessian of the deviance, exact Jacobian of Var(beta-hat) for the Satterthwaite df and the
Kenward-Roger pieces block by block. Other structures (crossed factors) use the general
engine :class:`_Core`: the grouping factor with the most levels contributes a diagonal block
that is eliminated analytically and the remaining factors form a dense Schur complement, so
one evaluation costs O(q_big * q_small^2 + q_small^3 + p^3) after the set-up, which grows
with the number of levels of both factors; there the derivatives are taken numerically as
below.

Fixed-effect inference uses Satterthwaite degrees of freedom computed exactly as
lmerTest (Kuznetsova, Brockhoff & Christensen, JSS 2017;82(13)) does: the
variance parameters are (theta_1..theta_K, sigma); their asymptotic covariance is
twice the (pseudo-)inverse of the Hessian of the unprofiled (RE)ML deviance, and
the Jacobian of Var(beta-hat) with respect to them; both are exact in the block-wise
engine and taken numerically in the general one, with the Richardson scheme of R's
numDeriv (with larger steps, see below), so the df match lmerTest.
For a contrast L: df = 2 (L C L')^2 / (g' A g), g_j = L (dC/dvarpar_j) L'.

With ``df_method="kenward_roger"`` the SE comes from the Kenward-Roger adjusted covariance
and the df from the KR formula, both as pbkrtest (vcovAdj, Lb_ddf), with the covariance of
y parametrised linearly in the variances (see :func:`_kenward_roger_pieces`).
"""

from __future__ import annotations

import ast
import builtins
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import patsy
import scipy.linalg as sla
import scipy.optimize as sopt
import scipy.sparse as sp
from scipy import stats
from scipy.linalg.lapack import dpotrf as _potrf, dpotrs as _potrs

from analysis.threads import one_blas_thread

__all__ = ["fit_lmm", "LMMResult"]

#: theta below this is reported as a boundary (singular) fit, as lme4::isSingular.
SINGULAR_TOL = 1e-4
#: eigenvalue tolerance for the deviance Hessian, as lmerTest.
HESSIAN_EIG_TOL = 1e-8
#: small-sample df methods for fixed-effect contrasts
DF_METHODS = ("satterthwaite", "kenward_roger")

_PATSY_NAMES = {
    "C", "I", "Q", "center", "standardize", "scale", "Treatment", "Sum", "Poly",
    "Helmert", "Diff", "np", "numpy", "pd", "math",
}


# --------------------------------------------------------------------------
# numerical derivatives replicating numDeriv (Richardson, d = eps = 1e-4, r = 4)
# --------------------------------------------------------------------------

def _steps(x: np.ndarray, d: float = 1e-4, eps: float = 1e-4) -> np.ndarray:
    zero_tol = math.sqrt(np.finfo(float).eps / 7e-7)
    return np.abs(d * x) + eps * (np.abs(x) < zero_tol)


def _richardson(a: np.ndarray) -> np.ndarray:
    """Extrapolate along axis 0 (successive halvings of the step) as numDeriv."""
    r = a.shape[0]
    for m in range(1, r):
        a = (a[1:] * 4.0**m - a[:-1]) / (4.0**m - 1)
    return a[0]


def _hessian(func, x: np.ndarray, d: float = 1e-4, r: int = 4, min_step: float = 0.0):
    """Gradient and Hessian of a scalar function (numDeriv::genD algorithm).

    ``min_step`` puts a floor under the first step: with purely relative steps a small x
    gets tiny steps, and the second differences then drown in the function's rounding."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = func(x)
    h0 = np.maximum(_steps(x, d=d), min_step)
    grad = np.empty(n)
    hess = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        h = h0.copy()
        da = np.empty(r)
        ha = np.empty(r)
        for k in range(r):
            f1 = func(x + e * h)
            f2 = func(x - e * h)
            da[k] = (f1 - f2) / (2 * h[i])
            ha[k] = (f1 - 2 * f0 + f2) / h[i] ** 2
            h = h / 2
        grad[i] = _richardson(da)
        hess[i, i] = _richardson(ha)
    for i in range(n):
        for j in range(i):
            ei = np.zeros(n)
            ei[i] = 1.0
            ej = np.zeros(n)
            ej[j] = 1.0
            h = h0.copy()
            da = np.empty(r)
            for k in range(r):
                f1 = func(x + ei * h + ej * h)
                f2 = func(x - ei * h - ej * h)
                da[k] = (f1 - 2 * f0 + f2 - hess[i, i] * h[i] ** 2
                         - hess[j, j] * h[j] ** 2) / (2 * h[i] * h[j])
                h = h / 2
            hess[i, j] = hess[j, i] = _richardson(da)
    return f0, grad, hess


def _jacobian(func, x: np.ndarray, d: float = 1e-4, r: int = 4) -> np.ndarray:
    """Jacobian of an array-valued function; result has shape f.shape + (len(x),)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = np.asarray(func(x))
    h = _steps(x, d=d)
    a = np.empty((r,) + f0.shape + (n,))
    for k in range(r):
        for i in range(n):
            e = np.zeros(n)
            e[i] = h[i]
            a[k, ..., i] = (np.asarray(func(x + e)) - np.asarray(func(x - e))) / (2 * h[i])
        h = h / 2
    return _richardson(a)


# --------------------------------------------------------------------------
# the deviance machinery
# --------------------------------------------------------------------------

class _Deviance:
    """The (RE)ML deviance from an engine's penalised least squares ``pls(theta, full)``, which
    returns (log|V| part, log|X' V^-1 X| part, beta, residual sum of squares, (X' V^-1 X)^-1)."""

    def _denom(self) -> int:
        return self.n - self.p if self.reml else self.n

    def profiled_deviance(self, theta: np.ndarray) -> float:
        try:
            la, lm, _, r2, _ = self.pls(theta, full=False)
        except np.linalg.LinAlgError:
            return np.inf
        nd = self._denom()
        dev = la + nd * (1.0 + math.log(2.0 * math.pi * r2 / nd))
        if self.reml:
            dev += lm
        return dev

    def sigma(self, theta: np.ndarray) -> float:
        _, _, _, r2, _ = self.pls(theta)
        return math.sqrt(r2 / self._denom())

    def deviance_vp(self, varpar: np.ndarray) -> float:
        """Unprofiled (RE)ML deviance at (theta..., sigma), as lmerTest's devfun_vp."""
        theta, sigma = varpar[:-1], varpar[-1]
        s2 = sigma * sigma
        la, lm, _, r2, _ = self.pls(theta, full=False)
        dev = la + r2 / s2 + self.n * math.log(2.0 * math.pi * s2)
        if self.reml:
            dev += lm - self.p * math.log(2.0 * math.pi * s2)
        return dev

    def cov_beta(self, varpar: np.ndarray) -> np.ndarray:
        """Var(beta-hat) at (theta..., sigma), as lmerTest's get_covbeta."""
        theta, sigma = varpar[:-1], varpar[-1]
        *_, Minv = self.pls(theta)
        return sigma * sigma * Minv


class _Core(_Deviance):
    """Cross-products and (RE)ML deviance for given relative SDs theta."""

    def __init__(self, X: np.ndarray, y: np.ndarray, codes: list[np.ndarray],
                 nlevels: list[int], reml: bool):
        self.n, self.p = X.shape
        self.reml = reml
        self.K = len(codes)
        # Remove the OLS fit first: it leaves beta-hat and all deviances unchanged
        # (shift of y within the column space of X) but avoids cancellation.
        self.beta_ols, *_ = np.linalg.lstsq(X, y, rcond=None)
        e = y - X @ self.beta_ols
        F = np.column_stack([X, e])
        Z = [sp.csr_matrix((np.ones(self.n), (np.arange(self.n), c)),
                           shape=(self.n, m)) for c, m in zip(codes, nlevels)]
        self.X, self.Z = X, Z  # kept for Kenward-Roger (built on request only)
        self.big = int(np.argmax(nlevels))
        self.small = [k for k in range(self.K) if k != self.big]
        Zb = Z[self.big]
        self.nb = np.asarray(Zb.sum(axis=0)).ravel()
        self.ZbF = np.asarray((Zb.T @ F))
        self.FF = F.T @ F
        if self.small:
            Zs = sp.hstack([Z[k] for k in self.small]).tocsr()
            self.ZsZs = (Zs.T @ Zs).toarray()
            self.Nsb = (Zs.T @ Zb).toarray()
            self.ZsF = np.asarray(Zs.T @ F)
            self.small_index = np.concatenate(
                [np.full(nlevels[k], k) for k in self.small])
            self.qs = self.ZsZs.shape[0]

    def pls(self, theta: np.ndarray, full: bool = True):
        """Return log|A|, log|X'V^-1 X|, beta, penalised RSS, (X'V^-1 X)^-1.

        With ``full=False`` beta and the inverse are not computed (returned as None)."""
        theta = np.asarray(theta, dtype=float)
        p = self.p
        tb = theta[self.big]
        D = 1.0 + tb * tb * self.nb
        Wb = tb * self.ZbF
        Q = Wb.T @ (Wb / D[:, None])
        logdet_a = float(np.sum(np.log(D)))
        if self.small:
            ls = theta[self.small_index]
            C = (ls[:, None] * self.Nsb) * tb
            CDi = C / D[None, :]
            S = np.eye(self.qs) + np.outer(ls, ls) * self.ZsZs - CDi @ C.T
            R = ls[:, None] * self.ZsF - CDi @ Wb
            Ls = np.linalg.cholesky(S)
            logdet_a += 2.0 * float(np.sum(np.log(np.diag(Ls))))
            T = sla.solve_triangular(Ls, R, lower=True, check_finite=False)
            Q = Q + T.T @ T
        G = self.FF - Q
        M = G[:p, :p]
        c = G[:p, p]
        Lm = np.linalg.cholesky(M)
        logdet_m = 2.0 * float(np.sum(np.log(np.diag(Lm))))
        z = sla.solve_triangular(Lm, c, lower=True, check_finite=False)
        r2 = float(G[p, p] - z @ z)
        if not full:
            return logdet_a, logdet_m, None, r2, None
        Minv = sla.cho_solve((Lm, True), np.eye(p), check_finite=False)
        beta = self.beta_ols + Minv @ c
        return logdet_a, logdet_m, beta, r2, Minv




class _NestedCore(_Deviance):
    """Deviance, its analytic derivatives and the Kenward-Roger pieces for nested intercepts.

    Handles one grouping factor (participant alone, or site alone) and two factors of which the
    one with fewer levels (site) nests the other (every participant in one site). In units of
    the residual variance the covariance of y is V = I + a B + s J, with a = theta_big^2,
    s = theta_small^2, B and J the indicator cross-products of the big and small factors'
    levels (block diagonal by site). With f_j the sums of F = [X, e] over level j of the big
    factor, n_j its number of rows, D_j = 1 + a n_j, and per site h = sum_j f_j / D_j,
    tau = sum_j n_j / D_j (the Woodbury identity twice):

        F' V^-1 F = F'F - sum_j (a / D_j) f_j f_j' - sum_sites s / (1 + s tau) h h'
        log|V|    = sum_j log D_j + sum_sites log(1 + s tau).

    D_j depends on j only through n_j, so the big levels are grouped into cells (site, n_j)
    once (sums of f_j over a cell, and of f_j f_j' over all j with the same n_j): one
    evaluation costs O(cells * p^2), independent of the number of observations and of the
    number of participants, after an O(n p^2) set-up. Derivatives of these expressions in
    (a, s) to second order are explicit (``_expand``), which gives the gradient and Hessian
    of the profiled deviance, the Hessian of the unprofiled deviance and the Jacobian of
    Var(beta-hat) that the Satterthwaite df need, and the derivatives of X' Sigma^-1 X and
    log|Sigma| in the variances that the Kenward-Roger adjustment needs.
    """

    has_derivatives = True

    def __init__(self, X: np.ndarray, y: np.ndarray, codes: list[np.ndarray],
                 nlevels: list[int], reml: bool, big: int, small: int | None):
        self.n, self.p = X.shape
        self.reml = reml
        self.K = len(codes)
        self.X = X
        self._codes, self._nlevels = codes, nlevels
        self.beta_ols, *_ = np.linalg.lstsq(X, y, rcond=None)
        e = y - X @ self.beta_ols
        F = np.column_stack([X, e])
        self.big = big
        self.small = [] if small is None else [small]
        self.vmap = [big] + self.small  # theta index of v[0] (= a) and v[1] (= s)
        cb = codes[big]
        qb = nlevels[big]
        Zt = sp.csr_matrix((np.ones(self.n), (cb, np.arange(self.n))), shape=(qb, self.n))
        f = np.asarray(Zt @ F)
        nb = np.bincount(cb, minlength=qb).astype(float)
        self.FF = F.T @ F
        self.cvals, cidx = np.unique(nb, return_inverse=True)
        self.Nc = np.bincount(cidx).astype(float)
        Gs = np.stack([f[cidx == i].T @ f[cidx == i] for i in range(len(self.cvals))])
        self.Gflat = Gs.reshape(len(self.cvals), -1)  # one row per distinct n_j
        self.m = F.shape[1]
        if small is not None:
            site_of = np.empty(qb, dtype=np.int64)
            site_of[cb] = codes[small]
            nd = len(self.cvals)
            keys, cell = np.unique(site_of * nd + cidx, return_inverse=True)  # site-major
            cell_site = keys // nd
            self.cell_ci = keys % nd
            self.cell_c = self.cvals[self.cell_ci]
            self.cell_N = np.bincount(cell).astype(float)
            S = sp.csr_matrix((np.ones(qb), (cell, np.arange(qb))), shape=(len(keys), qb))
            self.cell_H = np.asarray(S @ f)
            self.starts = np.flatnonzero(np.r_[True, cell_site[1:] != cell_site[:-1]])

    @property
    def Z(self) -> list:
        """Indicator matrices of the grouping factors (for the dense reference computations)."""
        return [sp.csr_matrix((np.ones(self.n), (np.arange(self.n), c)), shape=(self.n, m))
                for c, m in zip(self._codes, self._nlevels)]

    def _v(self, theta: np.ndarray) -> np.ndarray:
        return np.asarray(theta, dtype=float)[self.vmap] ** 2

    def _expand(self, v: np.ndarray, order: int):
        """F'V^-1 F and log|V| at v = (a[, s]) with their derivatives up to ``order``."""
        a = float(v[0])
        c = self.cvals
        dc = 1.0 + a * c
        idc = 1.0 / dc
        Gs = self.Gflat
        m = self.m
        G = self.FF - ((a * idc) @ Gs).reshape(m, m)
        logv = float(self.Nc @ np.log1p(a * c))
        nv = len(self.vmap)
        dG = d2G = dl = d2l = None
        if order >= 1:
            dG = np.zeros((nv, m, m))
            dl = np.zeros(nv)
            dG[0] = -((idc * idc) @ Gs).reshape(m, m)
            dl[0] = float(self.Nc @ (c * idc))
        if order >= 2:
            d2G = np.zeros((nv, nv, m, m))
            d2l = np.zeros((nv, nv))
            d2G[0, 0] = ((2.0 * c * idc**3) @ Gs).reshape(m, m)
            d2l[0, 0] = -float(self.Nc @ (c * c * idc * idc))
        if nv == 1:
            return G, logv, dG, dl, d2G, d2l
        s = float(v[1])
        st = self.starts
        cc, N, H = self.cell_c, self.cell_N, self.cell_H
        w = idc[self.cell_ci]

        def rs(x):
            return np.add.reduceat(x, st, axis=0)

        h = rs(H * w[:, None])
        tau = rs(N * cc * w)
        den = 1.0 + s * tau
        kap = s / den
        G = G - h.T @ (kap[:, None] * h)
        logv += float(np.sum(np.log1p(s * tau)))
        if order >= 1:
            w2 = w * w
            h_a = -rs(H * (cc * w2)[:, None])
            tau_a = -rs(N * cc * cc * w2)
            k_tau = -s * s / den**2
            k_a = k_tau * tau_a
            k_s = 1.0 / den**2
            A = h_a.T @ (kap[:, None] * h)
            dG[0] -= h.T @ (k_a[:, None] * h) + A + A.T
            dG[1] = -(h.T @ (k_s[:, None] * h))
            dl[0] += float(np.sum(s / den * tau_a))
            dl[1] = float(np.sum(tau / den))
        if order >= 2:
            w3 = w2 * w
            h_aa = 2.0 * rs(H * (cc * cc * w3)[:, None])
            tau_aa = 2.0 * rs(N * cc**3 * w3)
            k_aa = 2.0 * s**3 / den**3 * tau_a**2 + k_tau * tau_aa
            k_ss = -2.0 * tau / den**3
            k_as = -2.0 * s / den**3 * tau_a
            B1 = h_a.T @ (k_a[:, None] * h)
            C1 = h_aa.T @ (kap[:, None] * h)
            E1 = h_a.T @ (kap[:, None] * h_a)
            d2G[0, 0] -= h.T @ (k_aa[:, None] * h) + 2.0 * (B1 + B1.T) + C1 + C1.T + 2.0 * E1
            B2 = h_a.T @ (k_s[:, None] * h)
            d2G[0, 1] = d2G[1, 0] = -(h.T @ (k_as[:, None] * h) + B2 + B2.T)
            d2G[1, 1] = -(h.T @ (k_ss[:, None] * h))
            d2l[0, 0] += float(np.sum(-s * s / den**2 * tau_a**2 + s / den * tau_aa))
            d2l[0, 1] = d2l[1, 0] = float(np.sum(tau_a / den**2))
            d2l[1, 1] = float(np.sum(-(tau**2) / den**2))
        return G, logv, dG, dl, d2G, d2l

    def _solve(self, G):
        """Cholesky factor of M = X'V^-1 X (LAPACK directly: these are p x p matrices, where
        the wrappers' checks would cost more than the factorisation), log|M|, M^-1 c, r2."""
        p = self.p
        Lm, info = _potrf(G[:p, :p], lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("X'V^-1 X is not positive definite")
        logdet_m = 2.0 * float(np.sum(np.log(np.diag(Lm))))
        b = _potrs(Lm, G[:p, p], lower=1)[0]
        r2 = float(G[p, p] - G[:p, p] @ b)
        return Lm, logdet_m, b, r2

    def _inverse(self, Lm):
        return _potrs(Lm, np.eye(self.p), lower=1)[0]

    def pls(self, theta: np.ndarray, full: bool = True):
        """Return log|A|, log|X'V^-1 X|, beta, penalised RSS, (X'V^-1 X)^-1 (as _Core.pls)."""
        G, logv, *_ = self._expand(self._v(theta), 0)
        Lm, logdet_m, b, r2 = self._solve(G)
        if not full:
            return logv, logdet_m, None, r2, None
        return logv, logdet_m, self.beta_ols + b, r2, self._inverse(Lm)



    # ---- derivatives ---------------------------------------------------------------------

    def _v_derivs(self, v: np.ndarray, order: int) -> dict:
        """r2, log|V|, log|M| and their derivatives in v (v order: big, small)."""
        p = self.p
        G, logv, dG, dl, d2G, d2l = self._expand(v, order)
        Lm, logm, b, r2 = self._solve(G)
        Minv = self._inverse(Lm)
        out = dict(G=G, logv=logv, logm=logm, r2=r2, Minv=Minv, dG=dG, dl=dl, d2G=d2G, d2l=d2l)
        if order == 0:
            return out
        u = np.append(-b, 1.0)
        nv = len(v)
        Gu = np.stack([dG[k] @ u for k in range(nv)])
        out["r2_v"] = Gu @ u
        MiMk = [Minv @ dG[k][:p, :p] for k in range(nv)]
        out["logm_v"] = np.array([float(np.trace(x)) for x in MiMk])
        out["MiMk"] = MiMk
        if order >= 2:
            r2_vv = np.empty((nv, nv))
            logm_vv = np.empty((nv, nv))
            for k in range(nv):
                for j in range(k, nv):
                    r2_vv[k, j] = r2_vv[j, k] = (u @ d2G[k, j] @ u
                                                 - 2.0 * Gu[j, :p] @ Minv @ Gu[k, :p])
                    logm_vv[k, j] = logm_vv[j, k] = (float(np.sum(Minv * d2G[k, j][:p, :p]))
                                                     - float(np.sum(MiMk[k] * MiMk[j].T)))
            out["r2_vv"], out["logm_vv"] = r2_vv, logm_vv
        return out

    def _profiled_v(self, v: np.ndarray, order: int):
        """Profiled (RE)ML deviance and its gradient (and Hessian) in v."""
        d = self._v_derivs(v, order)
        nd = self._denom()
        rm = 1.0 if self.reml else 0.0
        r2 = d["r2"]
        dev = d["logv"] + nd * (1.0 + math.log(2.0 * math.pi * r2 / nd)) + rm * d["logm"]
        g = d["dl"] + nd * d["r2_v"] / r2 + rm * d["logm_v"]
        if order < 2:
            return dev, g, None
        H = (d["d2l"] + nd * (d["r2_vv"] / r2 - np.outer(d["r2_v"], d["r2_v"]) / r2**2)
             + rm * d["logm_vv"])
        return dev, g, H

    def variance_slope(self, theta: np.ndarray) -> np.ndarray:
        """Gradient of the profiled deviance in the variances theta_k^2 (theta order)."""
        try:
            _, gv, _ = self._profiled_v(self._v(theta), 1)
        except np.linalg.LinAlgError:
            return np.full(self.K, np.nan)
        out = np.empty(self.K)
        out[self.vmap] = gv
        return out

    def theta_derivs(self, theta: np.ndarray):
        """Profiled deviance, its gradient and Hessian in theta (exact)."""
        theta = np.asarray(theta, dtype=float)
        dev, gv, Hv = self._profiled_v(self._v(theta), 2)
        t = theta[self.vmap]
        g = np.empty(self.K)
        H = np.empty((self.K, self.K))
        g[self.vmap] = 2.0 * t * gv
        Ht = 4.0 * np.outer(t, t) * Hv + np.diag(2.0 * gv)
        H[np.ix_(self.vmap, self.vmap)] = Ht
        return dev, g, H

    def deviance_and_gradient(self, theta: np.ndarray):
        """Profiled deviance and its theta-gradient (for quasi-Newton optimisers)."""
        theta = np.asarray(theta, dtype=float)
        try:
            dev, gv, _ = self._profiled_v(self._v(theta), 1)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros(self.K)
        g = np.empty(self.K)
        g[self.vmap] = 2.0 * theta[self.vmap] * gv
        return dev, g

    def vp_hessian(self, varpar: np.ndarray) -> np.ndarray:
        """Exact Hessian of :meth:`deviance_vp` in (theta..., sigma)."""
        theta = np.asarray(varpar[:-1], dtype=float)
        sig = float(varpar[-1])
        s2 = sig * sig
        d = self._v_derivs(self._v(theta), 2)
        rm = 1.0 if self.reml else 0.0
        gv = d["dl"] + d["r2_v"] / s2 + rm * d["logm_v"]
        Hv = d["d2l"] + d["r2_vv"] / s2 + rm * d["logm_vv"]
        t = theta[self.vmap]
        K = self.K
        H = np.empty((K + 1, K + 1))
        H[np.ix_(self.vmap, self.vmap)] = 4.0 * np.outer(t, t) * Hv + np.diag(2.0 * gv)
        cross = -4.0 * t * d["r2_v"] / sig**3
        H[self.vmap, K] = cross
        H[K, self.vmap] = cross
        H[K, K] = 6.0 * d["r2"] / s2**2 - 2.0 * self._denom() / s2
        return H

    def cov_beta_jacobian(self, varpar: np.ndarray) -> np.ndarray:
        """Exact Jacobian of :meth:`cov_beta` in (theta..., sigma): shape p x p x (K + 1)."""
        theta = np.asarray(varpar[:-1], dtype=float)
        sig = float(varpar[-1])
        d = self._v_derivs(self._v(theta), 1)
        Minv = d["Minv"]
        p, K = self.p, self.K
        J = np.empty((p, p, K + 1))
        for iv, it in enumerate(self.vmap):
            J[:, :, it] = -sig * sig * 2.0 * theta[it] * (d["MiMk"][iv] @ Minv)
        J[:, :, K] = 2.0 * sig * Minv
        return J

    def kr_pieces(self, variances: np.ndarray, phi: np.ndarray):
        """Kenward-Roger adjusted covariance, [P_i] and W, as :func:`_kenward_roger_pieces`
        (pbkrtest's vcovAdj), from derivatives instead of n x n matrices.

        With x = (s_1..s_K, sigma^2) and Sigma = sigma^2 I + sum_k s_k Z_k Z_k':
        P_i = d(X' Sigma^-1 X)/dx_i, Q_ij + Q_ji = d^2(X' Sigma^-1 X)/dx_i dx_j and
        tr(Sigma^-1 G_i Sigma^-1 G_j) = -d^2 log|Sigma| / dx_i dx_j. Derivatives in the
        random-effect variances come from :meth:`_expand` (Sigma = sigma^2 V(s_k / sigma^2));
        those involving sigma^2 from Euler's relation for homogeneous functions
        (X' Sigma^-1 X has degree -1 in x, log|Sigma| - n log(sigma^2) degree 0)."""
        variances = np.asarray(variances, dtype=float)
        e = float(variances[-1])
        x = variances[:-1]
        K, p = self.K, self.p
        G, logv, dG, dl, d2G, d2l = self._expand(x[self.vmap] / e, 2)
        r = K + 1
        f = G[:p, :p] / e
        fk = np.zeros((r, p, p))
        fkl = np.zeros((r, r, p, p))
        gk = np.zeros(r)
        gkl = np.zeros((r, r))
        for iv, it in enumerate(self.vmap):
            fk[it] = dG[iv][:p, :p] / e**2
            gk[it] = dl[iv] / e
            for jv, jt in enumerate(self.vmap):
                fkl[it, jt] = d2G[iv, jv][:p, :p] / e**3
                gkl[it, jt] = d2l[iv, jv] / e**2
        R = K
        fk[R] = (-f - np.tensordot(x, fk[:K], axes=1)) / e
        gk[R] = (self.n - float(x @ gk[:K])) / e
        for k in range(K):
            fkl[k, R] = fkl[R, k] = (-2.0 * fk[k] - np.tensordot(x, fkl[k, :K], axes=1)) / e
            gkl[k, R] = gkl[R, k] = (-gk[k] - float(x @ gkl[k, :K])) / e
        fkl[R, R] = (-2.0 * fk[R] - np.tensordot(x, fkl[:K, R], axes=1)) / e
        gkl[R, R] = (-gk[R] - float(x @ gkl[:K, R])) / e
        P = [fk[i] for i in range(r)]
        info2 = np.empty((r, r))
        phiP = [phi @ P[i] for i in range(r)]
        for i in range(r):
            for j in range(i, r):
                info2[i, j] = info2[j, i] = (-gkl[i, j] - float(np.sum(phi * fkl[i, j]))
                                             + float(np.sum(phiP[i] * phiP[j].T)))
        eig = np.linalg.eigvalsh(info2)
        W = 2.0 * (np.linalg.inv(info2) if np.min(np.abs(eig)) > 1e-10 else np.linalg.pinv(info2))
        U = np.zeros((p, p))
        for i in range(r):
            for j in range(r):
                U += W[i, j] * (0.5 * fkl[i, j] - P[i] @ phi @ P[j])
        phi_a = phi + 2.0 * phi @ U @ phi
        return (phi_a + phi_a.T) / 2.0, P, W


def _nesting(codes: list[np.ndarray], nlevels: list[int]):
    """(big, small) if the intercepts are nested as _NestedCore handles, else None."""
    K = len(codes)
    big = int(np.argmax(nlevels))
    if K == 1:
        return big, None
    if K != 2:
        return None
    small = 1 - big
    site_of = np.full(nlevels[big], -1, dtype=np.int64)
    site_of[codes[big]] = codes[small]
    if np.array_equal(site_of[codes[big]], codes[small]):
        return big, small
    return None


#: set to True (tests only) to use the general dense-Schur engine for every structure
_FORCE_DENSE = False


def _make_core(X, y, codes, nlevels, reml):
    nest = None if _FORCE_DENSE else _nesting(codes, nlevels)
    if nest is None:
        return _Core(X, y, codes, nlevels, reml)
    return _NestedCore(X, y, codes, nlevels, reml, *nest)


def _boundary_slope(f, theta: np.ndarray, k: int, h: float = 1e-3, r: int = 4) -> float:
    """One-sided derivative of ``f`` with respect to the variance v_k = theta_k^2 at theta_k = 0.

    The deviance depends on theta only through the variances theta_k^2 (it is even in each
    theta_k), so its derivative in theta_k at 0 is always 0 and says nothing; its derivative
    in v_k is the informative one: theta_k = 0 can only be a minimum if it is >= 0. Forward
    differences in v_k (steps h, h/2, ...) with Richardson extrapolation."""
    f0 = f(theta)
    a = np.empty(r)
    for i in range(r):
        t = theta.copy()
        t[k] = math.sqrt(h)
        a[i] = (f(t) - f0) / h
        h /= 2
    for m in range(1, r):  # forward-difference error is a power series in h
        a = (a[1:] * 2.0**m - a[:-1]) / (2.0**m - 1)
    return float(a[0])


def _numerical_derivs(f):
    """(gradient, Hessian) of ``f`` in theta by Richardson-extrapolated differences."""
    def gH(theta):
        _, g, H = _hessian(f, theta, d=1e-3, min_step=OPT_MIN_STEP)
        return g, H
    return gH


def _polish(f, theta: np.ndarray, gH=None) -> tuple[np.ndarray, float]:
    """Projected Newton steps (theta scale) on exact derivatives ``gH(theta) -> (g, H)``
    or, by default, on Richardson-extrapolated ones.

    A component at zero with non-negative curvature there stays fixed; the polish stops
    when the free part of the Hessian is not positive definite (the boundary check in
    :func:`_optimise` deals with that case)."""
    gH = gH or _numerical_derivs(f)
    fval = f(theta)
    for _ in range(50):
        near0 = (theta > 0) & (theta < 1e-6)
        if np.any(near0):
            t0 = np.where(near0, 0.0, theta)
            f0 = f(t0)
            if f0 <= fval + 1e-12:
                theta, fval = t0, f0
        g, H = gH(theta)
        free = _free_set(theta, H)
        if not np.any(free):
            break
        Hf = H[np.ix_(free, free)]
        if np.linalg.eigvalsh(Hf).min() <= 0:
            break
        step = -np.linalg.solve(Hf, g[free])
        t = 1.0
        cand, fc = theta, fval
        for _ls in range(30):  # backtracking, projected onto theta >= 0
            trial = theta.copy()
            trial[free] = np.maximum(theta[free] + t * step, 0.0)
            ft = f(trial)
            if ft <= fval:
                cand, fc = trial, ft
                break
            t /= 2
        move = float(np.max(np.abs(cand - theta)))
        theta, fval = cand, fc
        if move < 1e-11:
            break
    return theta, fval


def _free_set(theta: np.ndarray, H: np.ndarray) -> np.ndarray:
    # at theta_k = 0 the curvature in theta_k is twice the slope in theta_k^2
    return ~((theta == 0.0) & (np.diag(H) >= 0))


def _leave_boundary(f, theta: np.ndarray, slopes: dict[int, float], fv_grad=None):
    """Move the zero components with a negative slope off the boundary and re-optimise.

    Line search along the direction of steepest descent in the variances (theta_k^2),
    then L-BFGS-B over the variances v = theta^2 >= 0: on that scale the gradient at
    v_k = 0 is the (non-zero) slope, so the quasi-Newton run cannot stall on the bound
    the way it can on the theta scale, where the gradient there is exactly zero.
    ``fv_grad(v) -> (deviance, gradient in v)`` gives exact gradients when available."""
    K = theta.size
    w = np.zeros(K)
    for k, s in slopes.items():
        w[k] = -s
    w /= w.max()
    v0 = theta**2

    def along(s):
        return f(np.sqrt(v0 + s * w))

    upper = max(4.0, 4.0 * float(v0.max()))
    line = sopt.minimize_scalar(along, bounds=(0.0, upper), method="bounded",
                                options={"xatol": 1e-10})
    v1 = v0 + line.x * w
    opts = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000}
    if fv_grad is None:
        fv = lambda v: f(np.sqrt(np.maximum(v, 0.0)))  # noqa: E731
        res = sopt.minimize(fv, v1, method="L-BFGS-B", bounds=[(0.0, None)] * K, options=opts)
    else:
        res = sopt.minimize(fv_grad, v1, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * K,
                            options=opts)
    v = res.x if res.fun <= line.fun else v1
    return np.sqrt(np.maximum(v, 0.0))


#: smallest step (theta scale) of the derivatives used to polish and check the optimum: a
#: component at 0.002 with relative steps would get steps of 2e-6, whose second differences
#: are rounding noise (seen as spurious negative curvature in 8 of 24,000 simulated fits)
OPT_MIN_STEP = 1e-4
#: a zero variance component is a boundary optimum when the one-sided slope of the
#: deviance in that variance (theta_k^2) is at least -BOUNDARY_SLOPE_TOL
BOUNDARY_SLOPE_TOL = 1e-6
#: Nelder-Mead's stopping tolerance on the deviance, relative to its size
NM_FATOL_REL = 1e-14


def plain_number(x) -> str:
    """A number as a reader writes it (four significant digits, no numpy repr such as
    ``np.float64(0.0)`` and no Python dict or list): for warning and note texts that reach
    reports."""
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def plain_numbers(xs) -> str:
    return ", ".join(plain_number(x) for x in np.asarray(xs, dtype=float).ravel())


def convergence_warning(group_names: list[str], theta) -> str:
    """The warning of a fit whose optimiser did not converge, naming each variance component's
    relative SD plainly ('site_id 0, participant_id 0.4321')."""
    sds = ", ".join(f"{g} {plain_number(t)}" for g, t in zip(group_names, np.asarray(theta, dtype=float)))
    return ("The optimiser did not converge: the variance components (relative SDs " + sds + ") may not be "
            "at the maximum of the likelihood, so estimates, SEs and df are unreliable.")


def _optimise(core: _Core, warnings: list[str], group_names: list[str], start=None):
    """Minimise the profiled deviance over theta >= 0; return theta, deviance, converged.

    The result is checked against the optimality conditions of the bounded problem: the
    free components have a positive-definite Hessian and a small Newton step, and every
    component at zero has a non-negative one-sided slope in its variance (otherwise the
    fit is moved off the boundary and re-optimised).

    With a core that has exact derivatives (:class:`_NestedCore`) the quasi-Newton runs use
    the exact gradient, the polish and the checks the exact Hessian, and the boundary check
    the exact slope in the variance; otherwise they are taken numerically."""
    K = core.K
    f = core.profiled_deviance
    bounds = [(0.0, None)] * K
    gH, slope, fv_grad, lbfgs = _optimiser_derivatives(core, bounds)
    # Derivative-free start (like lme4's BOBYQA, from theta = 1): a quasi-Newton
    # first step can jump onto theta = 0, where the deviance (even in theta) has
    # zero gradient, and stall there even when 0 is a local maximum.
    if start is None:
        # fatol relative to the deviance's size: with hundreds of thousands of observations
        # its rounding noise exceeds 1e-12 and Nelder-Mead would never stop before maxfev
        fatol = max(1e-12, NM_FATOL_REL * abs(f(np.ones(K))))
        nm = sopt.minimize(f, np.ones(K), method="Nelder-Mead", bounds=bounds,
                           options={"xatol": 1e-8, "fatol": fatol, "maxiter": 4000 * K,
                                    "maxfev": 4000 * K})
        # Bounded Nelder-Mead can overshoot onto theta = 0 and collapse there (seen on the
        # demo trial's 3-month ANCOVA, where lme4 finds an interior optimum), so quasi-Newton
        # runs from several interior starts are added and the lowest deviance wins.
        candidates = [nm]
        starts = [np.maximum(nm.x, 0.0)] + [np.full(K, s) for s in (0.05, 0.2, 0.5, 1.0, 2.0)]
    else:
        # warm start (e.g. refits on imputed data sets): quasi-Newton from the given theta
        # (moved off the boundary, where the even deviance has zero gradient) and from 1
        candidates = []
        starts = [np.maximum(np.asarray(start, dtype=float), 0.05), np.ones(K)]
    for st in starts:
        candidates.append(lbfgs(st))
    best = min(candidates, key=lambda r: r.fun)
    theta, fval = _polish(f, np.maximum(best.x, 0.0), gH)
    theta, fval = _off_the_boundary(f, theta, fval, gH, slope, fv_grad)
    converged = _optimum_checks_pass(theta, gH, slope)
    if not converged:
        warnings.append(convergence_warning(group_names, theta))
    return theta, fval, converged


def _optimiser_derivatives(core: _Core, bounds):
    """Gradient-and-Hessian, boundary slope, variance-scale gradient and L-BFGS-B run: exact or numerical."""
    f = core.profiled_deviance
    if getattr(core, "has_derivatives", False):
        def gH(theta):
            _, g, H = core.theta_derivs(theta)
            return g, H

        def slope(theta, k):
            return float(core.variance_slope(theta)[k])

        def fv_grad(v):
            t = np.sqrt(np.maximum(v, 0.0))
            dev = f(t)
            return dev, core.variance_slope(t)

        def lbfgs(st):
            return sopt.minimize(core.deviance_and_gradient, st, jac=True, method="L-BFGS-B",
                                 bounds=bounds,
                                 options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    else:
        gH = _numerical_derivs(f)
        fv_grad = None

        def slope(theta, k):
            return _boundary_slope(f, theta, k)

        def lbfgs(st):
            return sopt.minimize(f, st, method="L-BFGS-B", bounds=bounds,
                                 options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
    return gH, slope, fv_grad, lbfgs


def _off_the_boundary(f, theta, fval, gH, slope, fv_grad):
    """Move components at (or just above) zero off the boundary while the deviance falls there."""
    # Boundary check. Every optimiser above works on the theta scale, where the gradient
    # at theta_k = 0 is exactly zero whatever the deviance does nearby, so a run that lands
    # on the bound can stop there although the deviance falls as theta_k grows. A zero
    # component is kept only if the one-sided slope in its variance is non-negative.
    # Components that stopped just above zero (theta_k < 1e-4, where the deviance is as flat
    # as at zero) are checked the same way, from theta_k = 0.
    for _round in range(5):
        near = np.flatnonzero(theta < SINGULAR_TOL)
        base = theta.copy()
        base[near] = 0.0
        slopes = {int(k): slope(base, int(k)) for k in near}
        bad = {k: s for k, s in slopes.items() if s < -BOUNDARY_SLOPE_TOL}
        if not bad:
            break
        moved, fmoved = _polish(f, _leave_boundary(f, base, bad, fv_grad), gH)
        if not fmoved < fval - 1e-12:
            break  # no lower deviance off the boundary: the slope was rounding noise
        theta, fval = moved, fmoved
    return theta, fval


def _optimum_checks_pass(theta, gH, slope) -> bool:
    """lme4-style convergence check: positive-definite free Hessian, small Newton step, no falling zero."""
    # Convergence check in the spirit of lme4's: the free part of the Hessian is
    # positive definite and the Newton step (gradient scaled by the Hessian) is
    # small (lme4 warns above 2e-3); zero components have a non-negative slope.
    g, H = gH(theta)
    free = _free_set(theta, H)
    converged = True
    if np.any(free):
        Hf = H[np.ix_(free, free)]
        if np.linalg.eigvalsh(Hf).min() <= 0:
            converged = False
        else:
            converged = bool(np.max(np.abs(np.linalg.solve(Hf, g[free]))) < 2e-3)
    slopes = {int(k): slope(theta, int(k)) for k in np.flatnonzero(theta == 0.0)}
    if any(s < -BOUNDARY_SLOPE_TOL for s in slopes.values()):
        converged = False
    return converged


# --------------------------------------------------------------------------
# Kenward-Roger (as pbkrtest's vcovAdj and Lb_ddf)
# --------------------------------------------------------------------------

def _kenward_roger_pieces(X: np.ndarray, Z: list, variances: np.ndarray, phi: np.ndarray):
    """Adjusted covariance of beta-hat and the pieces the KR df need, as pbkrtest 0.5.

    The covariance of y is written linearly in the variance parameters,
    Sigma = sum_i s_i G_i with G_i = Z_i Z_i' (one per random intercept) and G = I for the
    residual; ``variances`` are their REML estimates (s_1, ..., s_K, sigma^2) and ``phi`` is
    the unadjusted Var(beta-hat) = (X' Sigma^-1 X)^-1. With P_i = -X' S G_i S X,
    Q_ij = X' S G_i S G_j S X (S = Sigma^-1) and the REML expected information
    I_ij = (tr(S G_i S G_j) - 2 tr(phi Q_ij) + tr(phi P_i phi P_j)) / 2, W = I^-1 and

        Phi_A = phi + 2 phi [sum_ij W_ij (Q_ij - P_i phi P_j)] phi

    (Kenward & Roger, Biometrics 1997;53:983, eq. for Lambda; the second-derivative terms
    R_ij vanish for a covariance linear in its parameters). Returns Phi_A, [P_i], W."""
    n, p = X.shape
    mats = list(Z) + [sp.identity(n, format="csr")]
    sigma = np.zeros((n, n))
    for s_i, M in zip(variances, mats):
        sigma += s_i * (M @ M.T).toarray()
    chol = sla.cho_factor(sigma, lower=True, check_finite=False)
    sinv = sla.cho_solve(chol, np.eye(n), check_finite=False)
    sinv = (sinv + sinv.T) / 2.0
    tt = sinv @ X
    A = [np.asarray(M.T @ tt) for M in mats]            # Z_i' S X
    Srows = [np.asarray((M.T @ sinv)) for M in mats]     # Z_i' S
    P = [-(a.T @ a) for a in A]
    r = len(mats)
    info2 = np.empty((r, r))
    Q = {}
    for i in range(r):
        phiPi = phi @ P[i]
        for j in range(i, r):
            C = np.asarray((mats[j].T @ Srows[i].T).T)    # Z_i' S Z_j
            Q[i, j] = A[i].T @ C @ A[j]
            info2[i, j] = info2[j, i] = (float(np.sum(C * C)) - 2.0 * float(np.sum(phi * Q[i, j]))
                                         + float(np.sum(phiPi * (P[j] @ phi))))
    eig = np.linalg.eigvalsh(info2)
    W = 2.0 * (np.linalg.inv(info2) if np.min(np.abs(eig)) > 1e-10 else np.linalg.pinv(info2))
    U = np.zeros((p, p))
    for i in range(r - 1):
        for j in range(i + 1, r):
            U += W[i, j] * (Q[i, j] - P[i] @ phi @ P[j])
    U = U + U.T
    for i in range(r):
        U += W[i, i] * (Q[i, i] - P[i] @ phi @ P[i])
    phi_a = phi + 2.0 * phi @ U @ phi
    return (phi_a + phi_a.T) / 2.0, P, W


def _kenward_roger_df(L: np.ndarray, phi: np.ndarray, P: list, W: np.ndarray) -> float:
    """Denominator df of the KR F test of L beta = 0 (pbkrtest's Lb_ddf, here rank 1)."""
    L = np.atleast_2d(L)
    q = int(np.linalg.matrix_rank(L))
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    theta_phi = theta @ phi
    a1 = a2 = 0.0
    r = len(P)
    for i in range(r):
        for j in range(i, r):
            e = 1.0 if i == j else 2.0
            ui = theta_phi @ P[i] @ phi
            uj = theta_phi @ P[j] @ phi
            a1 += e * W[i, j] * float(np.trace(ui)) * float(np.trace(uj))
            a2 += e * W[i, j] * float(np.sum(ui * uj.T))
    B = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    v0, v1, v2 = 1.0 + c1 * B, 1.0 - c2 * B, 1.0 - c3 * B
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    x = 1.0 - a2 / q
    ratio = 1.0 if (abs(x) < 1e-14 and abs(v1) < 1e-14) else x / v1
    rho = ratio**2 * v0 / v2 / q
    return float(4.0 + (q + 2) / (q * rho - 1.0))


# --------------------------------------------------------------------------
# formula handling
# --------------------------------------------------------------------------

def _formula_columns(formula: str, data: pd.DataFrame) -> list[str]:
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        raise ValueError(f"Could not parse the formula {formula!r}: {exc}") from exc
    if not desc.lhs_termlist:
        raise ValueError(f"The formula {formula!r} has no outcome (left-hand side).")
    names: list[str] = []
    for term in list(desc.lhs_termlist) + list(desc.rhs_termlist):
        for factor in term.factors:
            tree = ast.parse(factor.code, mode="eval")
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id not in names:
                    names.append(node.id)
    cols = [nm for nm in names if nm in data.columns]
    missing = [nm for nm in names if nm not in data.columns
               and nm not in _PATSY_NAMES and not hasattr(builtins, nm)]
    if missing:
        raise ValueError(
            f"The formula {formula!r} refers to column(s) not found in the data: "
            f"{', '.join(missing)}. Available columns: {', '.join(map(str, data.columns))}.")
    return cols


# --------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------

@dataclass
class LMMResult:
    """Fitted linear mixed model.

    Attributes
    ----------
    fixed : DataFrame with columns term, estimate, se, df (per ``df_method``), t,
        p_value (two-sided, t on df), ci_low, ci_high (95%).
    variance : DataFrame with columns component, variance, sd, theta (one row per
        grouping column, then "Residual").
    nobs : rows used after dropping rows with missing values.
    n_dropped : rows dropped for missing values.
    ngroups : number of levels of each grouping column among the rows used.
    loglik : log-likelihood at the estimates (the REML log-likelihood for REML fits,
        as R's logLik).
    reml_criterion : -2 x REML log-likelihood (lme4's REMLcrit) for REML fits,
        NaN for ML fits.
    deviance : -2 x loglik (for ML fits, lme4's deviance()).
    converged, singular : optimiser convergence; any theta < 1e-4 (lme4's isSingular).
    df_method : "satterthwaite" (lmerTest) or "kenward_roger" (pbkrtest): the df and, for
        Kenward-Roger, the adjusted covariance behind ``fixed`` and :meth:`contrast`.
    warnings : plain-English warnings (boundary fits, convergence, Hessian problems).
    notes : plain-English notes (e.g. rows dropped).
    """

    formula: str
    groups: list[str]
    method: str
    fixed: pd.DataFrame
    variance: pd.DataFrame
    nobs: int
    n_dropped: int
    ngroups: dict[str, int]
    loglik: float
    reml_criterion: float
    deviance: float
    converged: bool
    singular: bool
    sigma: float
    theta: dict[str, float]
    vcov: pd.DataFrame
    vcov_varpar: np.ndarray
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    df_method: str = "satterthwaite"
    _jac: np.ndarray | None = field(default=None, repr=False)
    _core: object = field(default=None, repr=False)
    _kr: tuple | None = field(default=None, repr=False)

    @property
    def vcov_kenward_roger(self) -> pd.DataFrame:
        """Kenward-Roger adjusted covariance of the fixed effects (pbkrtest's vcovAdj)."""
        return pd.DataFrame(self._kenward_roger()[0], index=self.vcov.index,
                            columns=self.vcov.columns)

    def _kenward_roger(self):
        if self._kr is None:
            if self.method != "REML":
                raise ValueError("Kenward-Roger df need a REML fit; this model was fitted by ML.")
            core: _Core = self._core
            v = self.variance["variance"].to_numpy()
            if hasattr(core, "kr_pieces"):  # block-wise: no n x n matrices
                self._kr = core.kr_pieces(v, self.vcov.to_numpy())
            else:
                self._kr = _kenward_roger_pieces(core.X, core.Z, v, self.vcov.to_numpy())
        return self._kr

    @property
    def params(self) -> pd.Series:
        return pd.Series(self.fixed["estimate"].to_numpy(), index=self.fixed["term"])

    def _as_vector(self, L) -> np.ndarray:
        terms = list(self.fixed["term"])
        if isinstance(L, Mapping) or isinstance(L, pd.Series):
            items = dict(L)
            unknown = [k for k in items if k not in terms]
            if unknown:
                raise KeyError(f"Unknown term(s) {unknown}; model terms are {terms}.")
            vec = np.array([float(items.get(t, 0.0)) for t in terms])
        else:
            vec = np.asarray(L, dtype=float).ravel()
            if vec.size != len(terms):
                raise ValueError(f"Contrast has length {vec.size}; the model has "
                                 f"{len(terms)} fixed effects {terms}.")
        return vec

    def contrast(self, L, level: float = 0.95, df_method: str | None = None) -> pd.Series:
        """Estimate, SE, small-sample df, t, p and CI for the linear combination L.beta.

        ``L`` is a vector over the fixed-effect terms (in ``fixed['term']`` order) or
        a mapping ``term -> weight`` (unnamed terms get weight 0). ``df_method`` (default:
        the fit's) is "satterthwaite" (lmerTest: model-based SE, Satterthwaite df) or
        "kenward_roger" (pbkrtest: SE from the adjusted covariance, KR df).
        """
        method = self.df_method if df_method is None else df_method
        if method not in DF_METHODS:
            raise ValueError(f"df_method must be one of {DF_METHODS}, not {method!r}.")
        vec = self._as_vector(L)
        beta = self.fixed["estimate"].to_numpy()
        C = self.vcov.to_numpy()
        est = float(vec @ beta)
        if method == "kenward_roger":
            phi_a, P, W = self._kenward_roger()
            var = float(vec @ phi_a @ vec)
            with np.errstate(divide="ignore", invalid="ignore"):
                df = _kenward_roger_df(vec, C, P, W)
        else:
            var = float(vec @ C @ vec)
            grad = np.einsum("i,ijk,j->k", vec, self._jac, vec)
            denom = float(grad @ self.vcov_varpar @ grad)
            with np.errstate(divide="ignore", invalid="ignore"):
                df = 2.0 * var**2 / denom if denom > 0 else np.inf
        se = math.sqrt(var)
        t = est / se if se > 0 else np.nan
        p = float(2.0 * stats.t.sf(abs(t), df))
        q = float(stats.t.ppf(0.5 + level / 2.0, df))
        return pd.Series({"estimate": est, "se": se, "df": float(df), "t": t,
                          "p_value": p, "ci_low": est - q * se, "ci_high": est + q * se})

    def _coefficient_table(self, level: float = 0.95) -> pd.DataFrame:
        """se, df, t, p_value, ci_low, ci_high of every coefficient: :meth:`contrast` of each
        unit vector (the same numbers), computed for all coefficients at once."""
        beta = self.fixed["estimate"].to_numpy()
        C = self.vcov.to_numpy()
        p = len(beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.df_method == "kenward_roger":
                phi_a, P, W = self._kenward_roger()
                var = np.diag(phi_a).copy()
                df = np.array([_kenward_roger_df(np.eye(p)[i], C, P, W) for i in range(p)])
            else:
                var = np.diag(C).copy()
                grad = np.stack([self._jac[i, i, :] for i in range(p)])
                denom = np.einsum("ik,kl,il->i", grad, self.vcov_varpar, grad)
                df = np.where(denom > 0, 2.0 * var**2 / np.where(denom > 0, denom, 1.0), np.inf)
            se = np.sqrt(var)
            t = np.where(se > 0, beta / np.where(se > 0, se, 1.0), np.nan)
        pval = 2.0 * stats.t.sf(np.abs(t), df)
        q = stats.t.ppf(0.5 + level / 2.0, df)
        return pd.DataFrame({"se": se, "df": df.astype(float), "t": t, "p_value": pval,
                             "ci_low": beta - q * se, "ci_high": beta + q * se})

    def icc(self, group: str) -> float:
        """Share of the total variance (all components + residual) due to ``group``."""
        v = self.variance.set_index("component")["variance"]
        if group not in v.index or group == "Residual":
            raise KeyError(f"No random intercept for {group!r}; have {list(self.groups)}.")
        return float(v[group] / v.sum())

    def icc_ci(self, group: str, level: float = 0.95) -> tuple[float, float]:
        """Profile-likelihood CI for :meth:`icc` (share of variance due to ``group``).

        With relative SDs theta (theta_k = sd_k / sigma) the ICC of component j is
        rho = theta_j^2 / (1 + sum_k theta_k^2). For a fixed rho the (RE)ML deviance,
        already profiled over beta and sigma, is minimised over the other theta_k (with
        theta_j^2 = rho (1 + sum_{k != j} theta_k^2) / (1 - rho)); the interval is the set
        of rho whose profiled deviance is within the chi-square(1) quantile of the
        minimum (Wilks). A limit at 0 means the interval reaches the boundary.
        """
        if group not in self.groups:
            raise KeyError(f"No random intercept for {group!r}; have {list(self.groups)}.")
        if self._core is None:
            raise ValueError("This fit has no deviance function attached.")
        core: _Core = self._core
        j = self.groups.index(group)
        others = [k for k in range(len(self.groups)) if k != j]
        th_hat = np.array([self.theta[g] for g in self.groups])
        dmin = core.profiled_deviance(th_hat)
        crit = float(stats.chi2.ppf(level, 1))

        def theta_at(rho, t_other):
            th = np.zeros(len(self.groups))
            th[others] = t_other
            th[j] = math.sqrt(rho * (1.0 + float(np.sum(np.square(t_other)))) / (1.0 - rho))
            return th

        def prof(rho):
            if not others:
                return core.profiled_deviance(theta_at(rho, np.zeros(0)))
            f = lambda t: core.profiled_deviance(theta_at(rho, np.abs(np.atleast_1d(t))))  # noqa: E731
            if len(others) == 1:
                upper = max(20.0, 5.0 * float(th_hat[others][0]))
                r = sopt.minimize_scalar(f, bounds=(0.0, upper), method="bounded",
                                         options={"xatol": 1e-10})
                return float(r.fun)
            r = sopt.minimize(f, np.maximum(th_hat[others], 0.05), method="L-BFGS-B",
                              bounds=[(0.0, None)] * len(others))
            return float(r.fun)

        rho_hat = float(th_hat[j] ** 2 / (1.0 + np.sum(th_hat**2)))
        g = lambda rho: prof(rho) - dmin - crit  # noqa: E731
        with one_blas_thread(), np.errstate(invalid="ignore", over="ignore"):
            lo = 0.0
            if rho_hat > 0 and g(0.0) > 0:
                lo = float(sopt.brentq(g, 0.0, rho_hat, xtol=1e-9))
            hi_edge = 1.0 - 1e-6
            if g(hi_edge) <= 0:
                hi = 1.0
            else:
                hi = float(sopt.brentq(g, max(rho_hat, 1e-12), hi_edge, xtol=1e-9))
        return lo, hi


# --------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------

def fit_lmm(data: pd.DataFrame, formula: str, groups: Sequence[str],
            reml: bool = True, start: Sequence[float] | None = None,
            df_method: str = "satterthwaite") -> LMMResult:
    """Fit ``formula`` with an independent random intercept for each column in ``groups``.

    Parameters
    ----------
    data : pandas.DataFrame
        Long-format data, one row per observation; rows with a missing value in a used column
        are dropped (``n_dropped``, ``notes``).
    formula : str
        Fixed-effects formula, patsy syntax (e.g. ``"y ~ C(arm) * C(time) + y0"``).
    groups : sequence of str
        Grouping columns; e.g. ``["site", "participant"]`` for participants (uniquely coded)
        nested in sites, ``["participant"]`` for an individually randomised trial.
    reml : bool
        REML (default) or maximum likelihood.
    start : sequence of float, optional
        Starting relative SDs theta (one per group), e.g. from a fit of the same model to similar
        data; skips the multi-start search (faster refits).
    df_method : {"satterthwaite", "kenward_roger"}
        Small-sample inference for ``fixed`` and, by default, :meth:`LMMResult.contrast`
        (Kenward-Roger needs REML).

    Returns
    -------
    LMMResult
        Fixed effects with SEs, df, t, p and CIs, variance components, likelihood, convergence
        and plain-English warnings (:class:`LMMResult`).

    Notes
    -----
    The matrices involved are small, so multithreaded BLAS only adds overhead (badly so on shared
    cores) and run-to-run rounding differences; the fit runs with BLAS limited to one thread when
    threadpoolctl is available.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S. Fitting linear mixed-effects models using lme4. J
    Stat Softw 2015;67(1):1-48.

    Kuznetsova A, Brockhoff PB, Christensen RHB. lmerTest package: tests in linear mixed effects
    models. J Stat Softw 2017;82(13):1-26 (Satterthwaite df).

    Kenward MG, Roger JH. Small sample inference for fixed effects from restricted maximum
    likelihood. Biometrics 1997;53:983-997.

    Examples
    --------
    Six sites of eight participants, an effect of 2 for ``x``:

    >>> import numpy as np, pandas as pd
    >>> from analysis.lmm import fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> site = np.repeat(np.arange(6), 8)
    >>> d = pd.DataFrame({"site": site, "x": np.tile([0, 1], 24)})
    >>> d["y"] = 10 + 2 * d.x + rng.normal(0, 1, 6)[site] + rng.normal(0, 1, len(d))
    >>> fit = fit_lmm(d, "y ~ x", ["site"])
    >>> fit.fixed.set_index("term").loc["x", ["estimate", "se"]].round(2).tolist()
    [1.95, 0.26]
    """
    with np.errstate(invalid="ignore", over="ignore"), one_blas_thread():
        return _fit_lmm(data, formula, groups, reml, start, df_method)


def _fit_lmm(data: pd.DataFrame, formula: str, groups: Sequence[str],
             reml: bool, start=None, df_method: str = "satterthwaite") -> LMMResult:
    """Implementation of :func:`fit_lmm`."""
    groups = _checked_groups(data, groups, reml, df_method)
    cols = _formula_columns(formula, data)
    d, n_dropped, notes = _complete_rows(data, cols, groups)
    _text_to_categorical(d, cols)
    X, y, terms = _design_matrices(formula, d)
    n = X.shape[0]
    codes, nlevels, ngroups = _group_codes(d, groups, n)
    warnings: list[str] = []
    core = _make_core(X, y, codes, nlevels, reml)
    if start is not None and len(start) != len(groups):
        raise ValueError(f"start has {len(start)} values; there are {len(groups)} groups.")
    opt_warnings: list[str] = []
    theta, crit, converged = _optimise(core, opt_warnings, groups, start)
    if start is not None and not converged:
        # a warm start that did not reach a verified optimum: refit from the default starts
        opt_warnings = []
        theta, crit, converged = _optimise(core, opt_warnings, groups, None)
    warnings += opt_warnings
    la, lm, beta, r2, Minv = core.pls(theta)
    sigma = math.sqrt(r2 / core._denom())
    vcov = sigma**2 * Minv
    vcov_varpar, jac = _satterthwaite_parts(core, np.append(theta, sigma), groups, warnings)
    singular = bool(np.any(theta < SINGULAR_TOL))
    warnings += _singular_warnings(groups, theta)

    loglik = -crit / 2.0
    result = LMMResult(
        formula=formula, groups=groups, method="REML" if reml else "ML",
        fixed=pd.DataFrame(), variance=pd.DataFrame(), nobs=int(n),
        n_dropped=int(n_dropped), ngroups=ngroups, loglik=loglik,
        reml_criterion=crit if reml else float("nan"), deviance=crit,
        converged=converged, singular=singular, sigma=sigma,
        theta=dict(zip(groups, theta.tolist())),
        vcov=pd.DataFrame(vcov, index=terms, columns=terms),
        vcov_varpar=vcov_varpar, warnings=warnings, notes=notes, df_method=df_method,
        _jac=jac, _core=core)
    var = np.append(sigma**2 * theta**2, sigma**2)
    result.variance = pd.DataFrame({
        "component": groups + ["Residual"], "variance": var, "sd": np.sqrt(var),
        "theta": np.append(theta, np.nan)})
    result.fixed = pd.DataFrame({"term": terms, "estimate": beta})
    result.fixed = pd.concat([result.fixed, result._coefficient_table()], axis=1)
    return result


def _checked_groups(data: pd.DataFrame, groups: Sequence[str] | str, reml: bool, df_method: str) -> list[str]:
    """Check the df method and the grouping columns; return the grouping columns as a list."""
    if df_method not in DF_METHODS:
        raise ValueError(f"df_method must be one of {DF_METHODS}, not {df_method!r}.")
    if df_method == "kenward_roger" and not reml:
        raise ValueError("Kenward-Roger df need a REML fit (reml=True).")
    if isinstance(groups, str):
        groups = [groups]
    groups = list(groups)
    if not groups:
        raise ValueError("At least one grouping column is needed for a mixed model.")
    missing_g = [g for g in groups if g not in data.columns]
    if missing_g:
        raise ValueError(f"Grouping column(s) not found in the data: {', '.join(missing_g)}. "
                         f"Available columns: {', '.join(map(str, data.columns))}.")
    return groups


def _complete_rows(data: pd.DataFrame, cols: list[str], groups: list[str]) -> tuple[pd.DataFrame, int, list[str]]:
    """The rows complete in the model's columns, how many were dropped and the note saying so."""
    used = list(dict.fromkeys(cols + groups))
    n_all = len(data)
    d = data.loc[data[used].notna().all(axis=1), used].copy()
    n_dropped = n_all - len(d)
    for c in d.columns:
        if isinstance(d[c].dtype, pd.CategoricalDtype):
            d[c] = d[c].cat.remove_unused_categories()
    d = d.reset_index(drop=True)
    if len(d) == 0:
        raise ValueError("No rows left after dropping rows with missing values in "
                         f"{', '.join(used)}.")
    notes: list[str] = []
    if n_dropped:
        notes.append(f"{n_dropped} of {n_all} rows were dropped because of missing values "
                     f"in {', '.join(used)}; {len(d)} rows were analysed.")
    return d, n_dropped, notes


def _text_to_categorical(d: pd.DataFrame, cols: list[str]) -> None:
    """Text columns become categoricals with patsy's own (sorted) level order, in place."""
    for c in cols:
        # text columns become categoricals with patsy's own level order (sorted): patsy reads a
        # pandas Categorical through its codes, but a text column value by value, which at
        # hundreds of thousands of rows takes longer than the whole fit
        col = d[c]
        if (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)) \
                and not isinstance(col.dtype, pd.CategoricalDtype):
            codes, levels = pd.factorize(col)
            levels = list(levels)
            if all(type(v) is str for v in levels):
                order = sorted(range(len(levels)), key=levels.__getitem__)
                rank = np.empty(len(order), dtype=np.int64)
                rank[order] = np.arange(len(order))
                d[c] = pd.Categorical.from_codes(rank[codes], categories=[levels[i] for i in order])


def _design_matrices(formula: str, d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fixed-effects design X, outcome y and term names; a rank-deficient design is an error."""
    env = patsy.EvalEnvironment([{"np": np, "pd": pd, "math": math}])
    y_df, X_df = patsy.dmatrices(formula, d, eval_env=env, return_type="dataframe",
                                 NA_action="raise")
    if y_df.shape[1] != 1:
        raise ValueError("The outcome must be a single numeric column.")
    X = X_df.to_numpy(dtype=float)
    y = y_df.to_numpy(dtype=float).ravel()
    terms = list(X_df.columns)
    p = X.shape[1]
    rank = np.linalg.matrix_rank(X)
    if rank < p:
        raise ValueError(
            f"The fixed-effects design is rank deficient (rank {rank} < {p} columns: "
            f"{terms}); some terms are confounded or a factor level has no data.")
    return X, y, terms


def _group_codes(d: pd.DataFrame, groups: list[str], n: int) -> tuple[list, list[int], dict[str, int]]:
    """Integer codes and level counts of each grouping column; each needs 2 to n - 1 levels."""
    codes, nlevels, ngroups = [], [], {}
    for g in groups:
        c, lev = pd.factorize(d[g], sort=False)  # order of appearance: independent of the pseudonym key
        codes.append(c)
        nlevels.append(len(lev))
        ngroups[g] = len(lev)
    for g in groups:
        if ngroups[g] < 2:
            raise ValueError(f"The grouping column {g!r} has {ngroups[g]} level(s) among the "
                             "rows used; a random intercept needs at least 2.")
        if ngroups[g] >= n:
            raise ValueError(f"The grouping column {g!r} has as many levels ({ngroups[g]}) "
                             f"as observations ({n}); its variance is not identifiable "
                             "from the residual variance.")
    return codes, nlevels, ngroups


def _satterthwaite_parts(core: _Core, varpar: np.ndarray, groups: list[str], warnings: list[str]):
    """Covariance of the variance parameters and Jacobian of cov(beta) (lmerTest); warns on a bad Hessian."""
    # Satterthwaite machinery (lmerTest's as_lmerModLT).
    # lmerTest uses numDeriv's default relative step d = 1e-4; with our cross-product
    # evaluation the deviance carries ~1e-13 rounding noise that such small steps
    # amplify to ~1e-3 in the Hessian, so we use larger steps (same Richardson
    # scheme), which reproduce lmerTest's Hessian to ~1e-7.
    if getattr(core, "has_derivatives", False):
        H = core.vp_hessian(varpar)  # exact (block-wise engine)
    else:
        _, _, H = _hessian(core.deviance_vp, varpar, d=1e-2)
    evals, evecs = np.linalg.eigh(H)
    names_vp = [f"theta[{g}]" for g in groups] + ["sigma"]
    if np.any(evals < -HESSIAN_EIG_TOL):
        warnings.append(
            "The likelihood surface is not at a maximum (the Hessian of the deviance "
            f"has negative eigenvalue(s) {plain_numbers(evals[evals < -HESSIAN_EIG_TOL])} "
            "for parameters " + ", ".join(names_vp) + "): the model may not have "
            "converged, and the small-sample df may be unreliable.")
    zero = np.abs(evals) < HESSIAN_EIG_TOL
    if np.any(zero):
        warnings.append(
            "The likelihood is flat in some direction of the variance parameters "
            f"(Hessian eigenvalue(s) close to zero: {plain_numbers(evals[zero])}); the model may "
            "not have converged and the small-sample df may be unreliable.")
    pos = evals > HESSIAN_EIG_TOL
    h_inv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    vcov_varpar = 2.0 * h_inv
    if getattr(core, "has_derivatives", False):
        jac = core.cov_beta_jacobian(varpar)  # p x p x (K+1), exact
    else:
        jac = _jacobian(core.cov_beta, varpar, d=1e-3)  # p x p x (K+1)
    return vcov_varpar, jac


def _singular_warnings(groups: list[str], theta: np.ndarray) -> list[str]:
    """One warning per random intercept whose variance is (practically) zero."""
    warnings = []
    for g, th in zip(groups, theta):
        if th < SINGULAR_TOL:
            if th == 0.0:
                what = "estimated as zero"
            else:
                what = f"estimated as practically zero (relative SD {th:.2g})"
            warnings.append(
                f"The {g} variance was {what} (boundary/singular fit): the {g} random "
                f"intercept adds nothing; inference equals a model without it.")
    return warnings
