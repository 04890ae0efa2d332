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
(sigma_b^2, sigma_w^2) (Satterthwaite FE. Biometrics Bulletin 1946;2:110; lmerTest, Kuznetsova A,
Brockhoff PB, Christensen RHB. J Stat Softw 2017;82(13), uses the observed information in its own
parameterisation instead; the R reference here computes the expected one).

With ``cells`` (``fit_random_intercept(..., cells=)``; the pipeline's default,
``economics.WITHIN_BY_CELL``: arm x the categorical score covariates' levels) the within-agency
variance differs by cell, V_j = sigma_b^2 11' + diag(sigma^2_cell(i)) (nlme's ``varIdent``), so
that the variance where the weights put their mass is not replaced by the pooled one:

    Var(delta) = c_b sigma_b^2 + sum_k c_k sigma_k^2,  c_k = sum_{i in cell k} a_i^2,

with the expected REML information of (sigma_b^2, sigma_1^2..sigma_K^2) for Satterthwaite's df.

Everything is computed with agency (and agency x cell) sums: no n x n or n x agencies matrix
(memory O(n p + G^2), with cells O(n p + K (G + p)^2)).
Checked against lme4's REML and a dense R implementation of the information
and nlme's varIdent REML (``tests/reference/agency_variance_golden.R``) and by simulation
(docs/methods.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse, stats

RHO_MAX = 1.0 - 1e-9  # upper bound of the intra-agency correlation searched


@dataclass(frozen=True)
class RandomIntercept:
    """REML fit of ``y = F b + u_agency + e``: the between-agency variance, the within-agency
    variance, the inverse expected REML information of (between, within) and the number of
    agencies.  With a within-agency variance per cell (``fit_random_intercept(..., cells=)``):
    ``cells`` the K cell variances (in the order of ``cell_labels``, the sorted labels),
    ``cell_of`` each row's cell index, ``cov`` the inverse information of (between, cell 1, ...,
    cell K), and ``within`` the participant-weighted mean of the cell variances (for the
    intra-agency correlation)."""
    between: float
    within: float
    cov: np.ndarray
    agencies: int
    cells: np.ndarray | None = None
    cell_of: np.ndarray | None = None
    cell_labels: np.ndarray | None = None

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


def fit_random_intercept(y: np.ndarray, F: np.ndarray, groups: np.ndarray,
                         cells: np.ndarray | None = None) -> RandomIntercept:
    """REML estimates of a random-intercept model and the inverse of their expected information.

    Without ``cells`` (one within-agency variance): the restricted likelihood is profiled over the
    within variance and maximised over rho = sigma_b^2 / (sigma_b^2 + sigma_w^2) in [0, 1 - 1e-9]
    (the boundary 0 included, as lme4).  With ``cells`` (a label per row), a within-agency
    variance per cell, V_j = sigma_b^2 11' + diag(sigma^2_cell(i)) (nlme's
    ``lme(..., weights = varIdent(form = ~ 1 | cell), method = "REML")``): see :func:`_fit_cells`.
    Refused (ValueError) when no agency has two rows (the variances are then not separable) and
    when a cell has fewer than two rows (merge such cells first).

    Parameters
    ----------
    y : (n,) outcome; F : (n, p) full-rank fixed-effects design; groups : (n,) agency labels;
    cells : (n,) cell labels or None.

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
    if cells is not None:
        return _fit_cells(y, F, gi, nj, cells)

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


def _fit_cells(y: np.ndarray, F: np.ndarray, gi: np.ndarray, nj: np.ndarray, cells: np.ndarray) -> RandomIntercept:
    """REML fit with a within-agency variance per cell: average-information (AI-REML) Newton steps
    over (sigma_b^2 >= 0, sigma_1^2..sigma_K^2) with the analytic gradient tr(P V_r) - y'P V_r P y
    (:class:`_CellModel`), from the one-variance fit's between variance and its
    within variance shared among the cells as their residual variances are; the fit with
    sigma_b^2 = 0 is also computed and kept when its criterion is not larger (the boundary, as
    the one-variance fit)."""
    labels, ci = np.unique(np.asarray(cells), return_inverse=True)
    nk = np.bincount(ci, minlength=len(labels))
    if nk.min() < 2:
        raise ValueError(f"random-intercept fit: cell(s) {list(labels[nk < 2])} have fewer than two participants, "
                         "so their within-agency variance cannot be estimated; merge them with another cell")
    m = _CellModel(y, F, gi, nj, ci, len(labels))
    # start: the one-variance fit's between variance, each cell's share of its within variance
    start = fit_random_intercept(y, F, np.asarray(gi))
    r = y - F @ np.linalg.lstsq(F, y, rcond=None)[0]
    ratio = np.bincount(ci, weights=r**2) / nk
    ratio = np.where(ratio > 0, ratio, ratio[ratio > 0].mean() if (ratio > 0).any() else 1.0)
    s2_0 = start.within * ratio / (ratio @ nk / nk.sum())
    sb2, s2 = m.optimise(start.between, s2_0, True)
    if sb2 > 0:  # the boundary: the fit with sigma_b^2 = 0, kept when its criterion is not larger
        sb0, s20 = m.optimise(0.0, s2, False)
        if m.criterion(sb0, s20) <= m.criterion(sb2, s2):
            sb2, s2 = sb0, s20
    within = float(s2 @ nk / nk.sum())
    return RandomIntercept(float(sb2), within, np.linalg.inv(m.information(sb2, s2)), len(nj),
                           cells=s2, cell_of=ci, cell_labels=labels)


class _CellModel:
    """The REML criterion (-2 log restricted likelihood + const), its gradient and the expected
    information of V = sigma_b^2 ZZ' + D, D = diag(sigma^2_cell(i)), with agency x cell sums only:
    V_j^-1 = D^-1 - w_j D^-1 1 1' D^-1, w_j = sigma_b^2 / (1 + sigma_b^2 g_j), g_j = sum_{i in j} 1/d_i.
    No n x n (or n x agencies) matrix is formed."""

    def __init__(self, y, F, gi, nj, ci, K):
        self.y, self.F, self.gi, self.ci, self.K = y, F, gi, ci, K
        self.G, (self.n, self.p) = len(nj), F.shape
        self.nk = np.bincount(ci, minlength=K).astype(float)
        self.njk = np.zeros((self.G, K))
        np.add.at(self.njk, (gi, ci), 1.0)
        self.Z = sparse.csr_matrix((np.ones(self.n), (np.arange(self.n), gi)), shape=(self.n, self.G))
        self.ZT = self.Z.T.tocsr()
        self.rows = [np.flatnonzero(ci == k) for k in range(K)]
        self.ZkT = [self.Z[r].T.tocsr() for r in self.rows]
        self.scale = float(np.var(y - F @ np.linalg.lstsq(F, y, rcond=None)[0])) or 1.0

    def _setup(self, sb2, s2):
        dinv = 1.0 / s2[self.ci]
        g = np.bincount(self.gi, weights=dinv, minlength=self.G)
        w = sb2 / (1.0 + sb2 * g)
        return dinv, g, w

    def _vinv(self, M, dinv, w):
        Md = M * (dinv[:, None] if M.ndim == 2 else dinv)
        s = self.ZT @ Md
        s = (w[:, None] * s) if M.ndim == 2 else w * s
        return Md - (dinv[:, None] if M.ndim == 2 else dinv) * (self.Z @ s)

    def _core(self, sb2, s2):
        dinv, g, w = self._setup(sb2, s2)
        M = self._vinv(self.F, dinv, w)
        A = self.F.T @ M
        Kinv = np.linalg.inv(A)
        b = Kinv @ (M.T @ self.y)
        r = self.y - self.F @ b
        Pr = self._vinv(r, dinv, w)  # P y
        return dinv, g, w, M, A, Kinv, r, Pr

    def criterion(self, sb2, s2):
        dinv, g, w, M, A, Kinv, r, Pr = self._core(sb2, s2)
        return float(np.log(s2) @ self.nk + np.log1p(sb2 * g).sum() + np.linalg.slogdet(A)[1] + r @ Pr)

    def gradient(self, sb2, s2, core=None):
        """d criterion / d (sigma_b^2, sigma_1^2, ..., sigma_K^2) = tr(P V_r) - y'P V_r P y."""
        dinv, g, w, M, A, Kinv, r, Pr = core or self._core(sb2, s2)
        Mz = self.ZT @ M
        tr0 = float((g - w * g**2).sum() - np.trace(Kinv @ (Mz.T @ Mz)))
        diag_p = dinv - w[self.gi] * dinv**2 - np.einsum("ij,jk,ik->i", M, Kinv, M)
        trk = np.bincount(self.ci, weights=diag_p, minlength=self.K)
        zr = self.ZT @ Pr
        return np.concatenate([[tr0 - float(zr @ zr)], trk - np.bincount(self.ci, weights=Pr**2, minlength=self.K)])

    def average_information(self, sb2, s2, core=None):
        """The average information (AI-REML; Gilmour, Thompson & Cullis, Biometrics 1995;51:1440)
        of (sigma_b^2, sigma_1^2..sigma_K^2), (V_r P y)' P (V_s P y) / 2: the Newton step's matrix
        near the optimum, from K + 1 vectors."""
        dinv, g, w, M, A, Kinv, r, Pr = core or self._core(sb2, s2)
        U = np.empty((self.n, self.K + 1))
        U[:, 0] = (self.ZT @ Pr)[self.gi]
        U[:, 1:] = (self.ci[:, None] == np.arange(self.K)) * Pr[:, None]
        PU = self._vinv(U, dinv, w) - M @ (Kinv @ (M.T @ U))
        return 0.5 * (U.T @ PU)

    def information(self, sb2, s2, core=None):
        """Expected REML information of (sigma_b^2, sigma_1^2..sigma_K^2), I_rs = tr(P V_r P V_s) / 2,
        V_0 = ZZ', V_k = diag(1{cell = k}).  With P = D^-1 - L C L', L = [U, M] (U: column j is
        D^-1 1 on agency j, M = V^-1 F), C = blockdiag(diag(w), (F'V^-1 F)^-1), S_k = L'E_k L:
        I_kl = (delta_kl (n_k / d_k^2 - 2 tr(C S_k) / d_k) + tr(C S_k C S_l)) / 2,
        I_0k = (n_k / d_k^2 - 2 tr(T_k C Q) + tr(Q'C S_k C Q)) / 2 with Q = L'Z, T_k = Z'D^-1 E_k L,
        I_00 = ||diag(g) - Q'C Q||^2 / 2 -- all (agencies + p)-dimensional."""
        dinv_k = 1.0 / s2
        dinv, g, w, M, A, Kinv, r, Pr = core or self._core(sb2, s2)
        G, p, K = self.G, self.p, self.K
        m = G + p
        C = np.zeros((m, m))
        C[:G, :G] = np.diag(w)
        C[G:, G:] = Kinv
        Q = np.vstack([np.diag(g), (self.ZT @ M).T])
        CQ = C @ Q
        S = []
        for k in range(K):
            Mk = M[self.rows[k]]
            Sk = np.zeros((m, m))
            Sk[:G, :G] = np.diag(self.njk[:, k] * dinv_k[k] ** 2)
            Sk[:G, G:] = dinv_k[k] * (self.ZkT[k] @ Mk)
            Sk[G:, :G] = Sk[:G, G:].T
            Sk[G:, G:] = Mk.T @ Mk
            S.append(Sk)
        S = np.array(S)
        CS = C @ S  # (K, m, m)
        info = np.zeros((K + 1, K + 1))
        ZPZ = np.diag(g) - Q.T @ CQ
        info[0, 0] = float((ZPZ**2).sum())
        info[0, 1:] = info[1:, 0] = (self.nk * dinv_k**2 - 2 * np.einsum("kga,ag->k", S[:, :G, :], CQ)
                                     + np.einsum("ag,kab,bg->k", CQ, S, CQ))
        info[1:, 1:] = np.einsum("kab,lba->kl", CS, CS)
        info[1:, 1:] += np.diag(self.nk * dinv_k**2 - 2 * dinv_k * np.einsum("kaa->k", CS))
        return 0.5 * info

    def optimise(self, sb2_0: float, s2_0: np.ndarray, free: bool, steps: int = 200) -> tuple[float, np.ndarray]:
        """Minimise the criterion from (sb2_0, s2_0), sigma_b^2 free (>= 0) or fixed at 0, by
        average-information (AI-REML) steps: a step taken only when the criterion does not increase (halved up to 40 times);
        sigma_b^2 held at 0 for a step that would make it negative; stopped when no parameter moves
        by more than 1e-11 relative (sigma_b^2: of the total variance)."""
        sb2, s2 = (max(float(sb2_0), 0.0) if free else 0.0), np.asarray(s2_0, float).copy()
        val = self.criterion(sb2, s2)
        for _ in range(steps):
            theta = np.concatenate([[sb2], s2])
            core = self._core(sb2, s2)
            gr, info = self.gradient(sb2, s2, core), self.average_information(sb2, s2, core)
            idx = np.arange(len(theta)) if free and sb2 > 0 else np.arange(1, len(theta))
            step = -0.5 * np.linalg.solve(info[np.ix_(idx, idx)], gr[idx])
            if free and sb2 == 0 and gr[0] < 0:  # leave the boundary when the criterion falls into the interior
                idx = np.arange(len(theta))
                step = -0.5 * np.linalg.solve(info, gr)
            if free and theta[0] + (step[0] if idx[0] == 0 else 0) < 0:
                idx = np.arange(1, len(theta))
                theta[0] = 0.0
                step = -0.5 * np.linalg.solve(info[np.ix_(idx, idx)], gr[idx])
            moved = False
            for _ in range(40):
                new = theta.copy()
                new[idx] += step
                if new[0] >= 0 and (new[1:] > 0).all():
                    nv = self.criterion(new[0], new[1:])
                    if nv <= val:
                        moved = True
                        break
                step = step / 2
            if not moved:
                break
            tot = new[0] + new[1:] @ self.nk / self.nk.sum()
            change = np.max(np.abs(new - np.concatenate([[sb2], s2])) / np.concatenate([[tot], new[1:]]))
            sb2, s2, val = float(new[0]), new[1:], nv
            if change < 1e-11:
                break
        return float(sb2), np.asarray(s2, float)


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
    if fit.cells is None:
        cw = float((a**2).sum())
        c = np.array([cb, cw])
        v = cb * fit.between + cw * fit.within
    else:  # c = [sum_j (sum a_i)^2, sum_{i in cell k} a_i^2 for each k]
        c = np.concatenate([[cb], np.bincount(fit.cell_of, weights=a**2, minlength=len(fit.cells))])
        v = float(c @ np.concatenate([[fit.between], fit.cells]))
    q = float(c @ fit.cov @ c)
    df = 2 * v**2 / q if q > 0 else np.inf
    return float(v), float(min(df, df_max))


def interval(estimate: float, a: np.ndarray, y: np.ndarray, F: np.ndarray, groups: np.ndarray,
             level: float = 0.95, cells: np.ndarray | None = None) -> dict:
    """Estimate, SE, Satterthwaite df and the t interval of the contrast ``a'y`` (module docstring)."""
    fit = fit_random_intercept(y, F, groups, cells)
    v, df = contrast_variance(a, groups, fit)
    se = float(np.sqrt(v))
    q = float(stats.t.ppf(0.5 + level / 2, df))
    return dict(se=se, df=df, ci_low=estimate - q * se, ci_high=estimate + q * se, icc=fit.icc)
