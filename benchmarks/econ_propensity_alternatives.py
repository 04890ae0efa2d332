"""Analytic alternatives to the propensity-weighted economic evaluation's bootstrap interval,
measured on the scenarios of ``econ_propensity_scenarios.py`` (docs/methods.md, "Non-randomised
comparison": the interval's dependence on the intra-agency correlation, and what was tried).

    .venv/bin/python benchmarks/econ_propensity_alternatives.py METHOD SCENARIO [--comparisons 400] [--seed 7101]

METHOD:

* ``fixed`` -- the cluster-robust sandwich of the weighted regression with the full-sample
  weights held fixed (``survey::svyglm`` with ids = agency, as the outcome analysis uses), t on
  agencies - p df;
* ``mest`` -- the M-estimation sandwich that stacks the score model's estimating equations
  (logistic regression), the treated proportion (for stabilised ATE weights) and the weighted
  regression, so that the score's estimation enters the variance: V = J^-1 (sum over agencies
  of U_g U_g') J^-T x G/(G - 1), with J the Jacobian of the summed estimating functions (central
  differences), t on agencies - p df (Lunceford JK, Davidian M. Stat Med 2004;23:2937; Stefanski
  LA, Boos DD. Am Stat 2002;56:29);
* ``mest_cr2``, ``mest_cr3`` -- the same M-estimation sandwich with each agency's summed
  estimating function corrected for its leverage H_g = D_g J^-1 (D_g the agency's own Jacobian):
  (I - H_g)^-1/2 U_g (Kauermann G, Carroll RJ. JASA 2001;96:1387; the CR2 analogue) or
  (I - H_g)^-1 U_g (Mancl LA, DeRouen TA. Biometrics 2001;57:126; CR3), without the G/(G - 1)
  factor;
* ``model``, ``model_satt``, ``model_normal`` -- the prototype of the model-based interval the
  pipeline now uses (``economics.weighted_interval: model``; analysis/agency_variance.py): the
  variance a'Va of the weighted contrast under a REML random agency intercept with one within
  variance (dense matrices here), with t on agencies - 2 df, Satterthwaite's df or the normal
  quantile; ``--adjust`` also adjusts the regression for the score covariates (as the pipeline
  does), and the environment variable ``PW_INTERACT=1`` adds the arm x score covariate terms to
  the variance model (as the pipeline does; the pipeline also has a within variance per cell,
  which this prototype does not);
* ``jack`` -- the leave-one-agency-out jackknife of the whole estimate (score refitted without
  the agency, columns of levels left empty dropped), V = (G - 1)/G x sum (theta_(g) - mean)^2,
  t on agencies - p df.

The comparisons and true values are those of ``econ_propensity_scenarios.py`` (same seeds), so
the rows compare directly with its table; no bootstrap is run (seconds per 100 comparisons).
The sandwich and jackknife methods are not used by the pipeline: they are recorded because
they were tried.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import econ_propensity_scenarios as S  # noqa: E402

from analysis import economics as E  # noqa: E402
from analysis import propensity as PS  # noqa: E402


def _weights(e: np.ndarray, t: np.ndarray, estimand: str, pbar: float) -> np.ndarray:
    if estimand == "ATT":
        return t + (1 - t) * e / (1 - e)
    if estimand == "ATE":  # stabilised
        return t * pbar / e + (1 - t) * (1 - pbar) / (1 - e)
    return t * (1 - e) + (1 - t) * e  # overlap


def _logit(Z: np.ndarray, t: np.ndarray) -> np.ndarray:
    gam = np.zeros(Z.shape[1])
    for _ in range(100):
        e = 1 / (1 + np.exp(-(Z @ gam)))
        step = np.linalg.solve(Z.T @ (Z * (e * (1 - e))[:, None]), Z.T @ (t - e))
        gam += step
        if np.abs(step).max() < 1e-12:
            break
    return gam


def _psi(theta, Z, t, X, y, estimand):
    """Per-participant estimating functions: score model, treated proportion, weighted regression."""
    q = Z.shape[1]
    gam, pbar, beta = theta[:q], theta[q], theta[q + 1:]
    e = 1 / (1 + np.exp(-(Z @ gam)))
    w = _weights(e, t, estimand, pbar)
    return np.column_stack([Z * (t - e)[:, None], (t - pbar)[:, None], X * (w * (y - X @ beta))[:, None]])


def _cluster_v(U: np.ndarray, g: np.ndarray, bread: np.ndarray) -> np.ndarray:
    G = len(set(g))
    S_ = pd.DataFrame(U).groupby(g).sum().to_numpy()
    return G / (G - 1.0) * bread @ (S_.T @ S_) @ bread.T


def _point(Z, t, X, y, estimand) -> float:
    gam = _logit(Z, t)
    w = _weights(1 / (1 + np.exp(-(Z @ gam))), t, estimand, float(t.mean()))
    return float(np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * y))[1])


def _jackknife(Z, t, X, y, g, estimand) -> tuple[float, float, float]:
    import warnings
    loo = []
    for h in sorted(set(g)):
        k = g != h
        Zk = Z[k][:, np.abs(Z[k]).sum(0) > 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a level left with one group: the score separates
            try:
                loo.append(_point(Zk, t[k], X[k], y[k], estimand))
            except np.linalg.LinAlgError:
                loo.append(np.nan)
    loo = np.array(loo)
    G = len(loo)
    se = float(np.sqrt((G - 1) / G * np.nansum((loo - np.nanmean(loo)) ** 2)))
    return _point(Z, t, X, y, estimand), se, float(G - X.shape[1])


def reml_intercept(y: np.ndarray, F: np.ndarray, g: np.ndarray) -> tuple[float, float, np.ndarray]:
    """REML fit of y = F b + u_agency + e (random agency intercept, homoscedastic errors):
    (sigma_b^2, sigma_w^2, covariance of the two from the inverse expected REML information)."""
    from scipy import optimize
    labels, gi = np.unique(g, return_inverse=True)
    nj = np.bincount(gi).astype(float)
    n, p = F.shape

    def parts(rho):  # gamma = sigma_b^2 / sigma_w^2 = rho / (1 - rho)
        gam = rho / (1 - rho)
        c = gam / (1 + nj * gam)
        def hinv(M):  # H^-1 M with H = I + gamma J per agency
            s = np.zeros((len(nj),) + M.shape[1:])
            np.add.at(s, gi, M)
            return M - (c[:, None] * s)[gi] if M.ndim == 2 else M - (c * s)[gi]
        HF = hinv(F)
        A = F.T @ HF
        b = np.linalg.solve(A, HF.T @ y)
        r = y - F @ b
        rss = float(r @ hinv(r))
        s2 = rss / (n - p)
        ll = (n - p) * np.log(s2) + np.log1p(nj * gam).sum() + np.linalg.slogdet(A)[1]
        return ll, gam, s2

    res = optimize.minimize_scalar(lambda r: parts(r)[0], bounds=(0.0, 0.995), method="bounded",
                                   options={"xatol": 1e-10})
    rho = res.x if parts(res.x)[0] < parts(0.0)[0] else 0.0
    _, gam, s2 = parts(rho)
    sb2, sw2 = gam * s2, s2
    Zc = (gi[:, None] == np.arange(len(nj))[None, :]).astype(float)
    V = sb2 * Zc @ Zc.T + sw2 * np.eye(n)
    Vi = np.linalg.inv(V)
    ViF = Vi @ F
    P = Vi - ViF @ np.linalg.solve(F.T @ ViF, ViF.T)
    PVb, PVw = P @ (Zc @ Zc.T), P
    info = 0.5 * np.array([[np.sum(PVb * PVb.T), np.sum(PVb * PVw.T)],
                           [np.sum(PVw * PVb.T), np.sum(PVw * PVw.T)]])
    return sb2, sw2, np.linalg.inv(info)


def _model_based(Z, t, X, y, g, w, beta, satterthwaite: bool) -> tuple[float, float, float]:
    """Var(a'y | covariates, arms) = a' V a: a the WLS coefficient row (weights fixed given the
    covariates and arms, which is all the score depends on), V the random-intercept covariance
    estimated by REML from the outcome on the regression's and the score model's covariates."""
    A = X.T @ (w[:, None] * X)
    a = np.linalg.solve(A, (X * w[:, None]).T)[1]
    F = X if X.shape[1] > 4 else np.column_stack([X, Z[:, 1:]])
    if os.environ.get("PW_INTERACT"):  # variance model also with arm x score covariates
        F = np.column_stack([F, t[:, None] * Z[:, 1:]])
    assert np.linalg.matrix_rank(F) == F.shape[1]
    sb2, sw2, cov = reml_intercept(y, F, g)
    labels, gi = np.unique(g, return_inverse=True)
    cb, cw = float((np.bincount(gi, weights=a) ** 2).sum()), float((a ** 2).sum())
    v = cb * sb2 + cw * sw2
    c = np.array([cb, cw])
    if satterthwaite:
        df = float(2 * v ** 2 / (c @ cov @ c))
    else:
        df = float(len(labels) - 2)
    return float(beta[1]), float(np.sqrt(v)), df


def estimate(method: str, Z, t, X, y, g, estimand) -> tuple[float, float, float]:
    """Estimate, SE and df of the arm coefficient (column 1 of X)."""
    if method == "jack":
        return _jackknife(Z, t, X, y, g, estimand)
    gam = _logit(Z, t)
    pbar = float(t.mean())
    w = _weights(1 / (1 + np.exp(-(Z @ gam))), t, estimand, pbar)
    A = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(A, X.T @ (w * y))
    df = float(len(set(g)) - X.shape[1])
    if method in ("model", "model_satt", "model_normal"):
        b, se, dfm = _model_based(Z, t, X, y, g, w, beta, method == "model_satt")
        return b, se, (1e9 if method == "model_normal" else dfm)
    if method == "fixed":
        V = _cluster_v(X * (w * (y - X @ beta))[:, None], g, np.linalg.inv(A))
        return float(beta[1]), float(np.sqrt(V[1, 1])), df
    theta = np.concatenate([gam, [pbar], beta])
    J = np.zeros((len(theta), len(theta)))
    for j in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        J[:, j] = (_psi(up, Z, t, X, y, estimand).sum(0) - _psi(dn, Z, t, X, y, estimand).sum(0)) / (2 * h)
    k = Z.shape[1] + 2  # the arm coefficient's position in theta
    if method == "mest":
        V = _cluster_v(_psi(theta, Z, t, X, y, estimand), g, np.linalg.inv(J))
        return float(beta[1]), float(np.sqrt(V[k, k])), df
    V = _leverage_corrected(theta, Z, t, X, y, g, estimand, J, power=0.5 if method == "mest_cr2" else 1.0)
    return float(beta[1]), float(np.sqrt(V[k, k])), df


def _leverage_corrected(theta, Z, t, X, y, g, estimand, J, power: float) -> np.ndarray:
    """J^-1 [sum_g (I - H_g)^-power U_g U_g' (I - H_g)^-power'] J^-T with H_g = D_g J^-1."""
    m = len(theta)
    labels, gi = np.unique(g, return_inverse=True)
    G = len(labels)
    D = np.zeros((G, m, m))
    for j in range(m):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        d = (_psi(up, Z, t, X, y, estimand) - _psi(dn, Z, t, X, y, estimand)) / (2 * h)
        for r in range(m):
            D[:, r, j] = np.bincount(gi, weights=d[:, r], minlength=G)
    Ji = np.linalg.inv(J)
    P = _psi(theta, Z, t, X, y, estimand)
    U = np.stack([np.bincount(gi, weights=P[:, r], minlength=G) for r in range(m)], axis=1)
    meat = np.zeros((m, m))
    for c in range(G):
        vals, vecs = np.linalg.eig(np.eye(m) - D[c] @ Ji)
        R = (vecs @ np.diag(vals.astype(complex) ** -power) @ np.linalg.inv(vecs)).real
        u = R @ U[c]
        meat += np.outer(u, u)
    return Ji @ meat @ Ji.T


def one(rng: np.random.Generator, sc: S.Scenario, method: str, adjust: bool = False) -> dict:
    tab = S.sim_table(rng, sc).table
    covs = ["client_group", "age", "sex"]
    data = pd.DataFrame({c: tab[f"ps_{c}"] for c in covs}).assign(treated=tab.treat.astype(int))
    eq = E._equations(tab, S._econ(10))[0]  # cea_qaly: cost and QALYs on arm, baseline utility and cost
    use = eq["use"]
    _, Z = PS.score_fit(data, "treated", covs)
    Z, t, X = Z[use], tab.treat.to_numpy(float)[use], eq["X"][use]
    g = tab.site_id.astype(str).to_numpy()[use]
    if adjust:  # the weighted regression also adjusts for the score covariates
        X = np.column_stack([X, Z[:, 1:]])
    cost, qaly = tab.cost.to_numpy(float)[use], tab.qaly.to_numpy(float)[use]
    out = {}
    for est in S.ESTIMANDS:
        for name, y in (("dc", cost), ("dq", qaly), ("nmb", S.LAMBDA * qaly - cost)):
            b, se, df = estimate(method, Z, t, X, y, g, est)
            half = float(stats.t.ppf(0.975, df)) * se
            out[f"{est}_{name}"], out[f"{est}_{name}_lo"], out[f"{est}_{name}_hi"] = b, b - half, b + half
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method", choices=["fixed", "mest", "mest_cr2", "mest_cr3", "jack", "model", "model_satt", "model_normal"])
    ap.add_argument("scenario", choices=sorted(S.SCENARIOS))
    ap.add_argument("--comparisons", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7101)
    ap.add_argument("--adjust", action="store_true", help="regression also on the score covariates")
    a = ap.parse_args()
    sc = S.SCENARIOS[a.scenario]
    rows = [one(np.random.default_rng(q), sc, a.method, a.adjust) for q in np.random.SeedSequence(a.seed).spawn(a.comparisons)]
    print(f"{a.method} {a.scenario}{' adjusted' if a.adjust else ''}: {a.comparisons} comparisons")
    print(S.summarise(pd.DataFrame(rows), S.truth(sc)).to_string(index=False))


if __name__ == "__main__":
    main()
