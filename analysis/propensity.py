"""Propensity-score weighting for a non-randomised comparison (``design.allocation: non_randomised``).

Pure functions returning tidy DataFrames, in the order an analysis uses them:

* :func:`propensity_model` / :func:`propensity_scores`: the probability of being in an
  intervention agency given baseline covariates, by logistic regression (statsmodels ``Logit``,
  maximum likelihood).  Allocation was by agency, but the score is fitted to participants: it
  is the probability that a participant *with these characteristics* is served by an
  intervention agency (the marginal-model approach of Li, Zaslavsky & Landrum 2013).
* :func:`ps_weights`: weights for the estimand asked for (``estimand``):

  ======== ======================= =========================== ===================================
  estimand treated weight          comparison weight           population the effect is about
  ======== ======================= =========================== ===================================
  ATT      1                       e / (1 - e)                 people like those in intervention
                                                               agencies
  ATE      1 / e  (x P(T=1))       1 / (1 - e)  (x P(T=0))     everyone in either kind of agency
  overlap  1 - e                   e                           the people for whom the two kinds
                                                               of agency overlap most (ATO)
  ======== ======================= =========================== ===================================

  ATE weights are stabilised (``stabilise``, default true) by the marginal probability of the
  group received (Robins, Hernán & Brumback 2000; Xu et al. 2010), which leaves the weighted
  difference unchanged for a pure difference in means and keeps the sum of weights near the
  sample size; ATT and overlap weights are bounded and are not stabilised.  ``trim`` = a > 0
  drops participants whose score lies outside [a, 1 - a] (Crump et al. 2009; weight 0,
  ``trimmed`` true): the estimand is then the one named *within the trimmed population*.
* :func:`balance_table`: standardised mean differences before and after weighting and
  variance ratios for every covariate (each level of a categorical one as a 0/1 column).
* :func:`weighted_effect`: the weighted outcome regression ``y ~ arm + y_baseline +
  covariates`` at one follow-up by weighted least squares, with the cluster-robust (sandwich)
  variance of ``survey::svyglm`` for a one-stage cluster design (agencies as PSUs) and its
  degrees of freedom (agencies − number of coefficients).  In an individual design (a
  non-randomised comparison of participants, e.g. the NHEFS example) each participant is their
  own PSU: the robust sandwich HC0 × n/(n − 1) on n − p degrees of freedom.  The same regression with all weights
  1 is the unweighted comparison.
* :func:`e_value`: VanderWeele & Ding's (2017) E-value of the estimate and of the CI limit
  nearer the null, after converting the standardised difference to an approximate risk ratio.

Every number is checked against R (glm, hand-made weights, survey::svyglm):
tests/reference/propensity_golden.R, tests/test_propensity.py; on published data (individual
design) tests/reference/nhefs_golden.R, tests/test_nhefs.py.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

__all__ = ["ESTIMANDS", "covariate_matrix", "propensity_model", "propensity_scores", "ps_weights", "score_fit",
           "logit_many", "bootstrap_weights", "level_indicators", "without_overlap",
           "balance_table", "weighted_effect", "e_value_rr", "e_value", "love_plot_png", "REFERENCES"]

ESTIMANDS = ("ATT", "ATE", "overlap")
# VanderWeele & Ding (2017): a standardised mean difference d corresponds to a risk ratio of
# about exp(0.91 d) (Chinn 2000's conversion via the log odds ratio, then the square root of the OR).
SMD_TO_LOG_RR = 0.91

REFERENCES = {
    "rosenbaum": "Rosenbaum PR, Rubin DB. The central role of the propensity score in observational studies for "
                 "causal effects. Biometrika 1983;70:41-55.",
    "li_multilevel": "Li F, Zaslavsky AM, Landrum MB. Propensity score weighting with multilevel data. "
                     "Stat Med 2013;32:3373-87.",
    "li_overlap": "Li F, Morgan KL, Zaslavsky AM. Balancing covariates via propensity score weighting. "
                  "J Am Stat Assoc 2018;113:390-400.",
    "robins": "Robins JM, Hernán MA, Brumback B. Marginal structural models and causal inference in "
              "epidemiology. Epidemiology 2000;11:550-60.",
    "crump": "Crump RK, Hotz VJ, Imbens GW, Mitnik OA. Dealing with limited overlap in estimation of average "
             "treatment effects. Biometrika 2009;96:187-99.",
    "austin": "Austin PC, Stuart EA. Moving towards best practice when using inverse probability of treatment "
              "weighting (IPTW) using the propensity score to estimate causal treatment effects in "
              "observational studies. Stat Med 2015;34:3661-79.",
    "austin_variance": "Austin PC. Variance estimation when using inverse probability of treatment weighting (IPTW) "
                       "with survival analysis. Stat Med 2016;35:5642-55.",
    "hesterberg": "Hesterberg TC. What teachers should know about the bootstrap: resampling in the undergraduate "
                  "statistics curriculum. Am Stat 2015;69:371-86 (the expanded percentile interval).",
    "lumley": "Lumley T. Analysis of complex survey samples. J Stat Softw 2004;9(8):1-19 (R package survey).",
    "evalue": "VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the "
              "E-value. Ann Intern Med 2017;167:268-74.",
}


# ------------------------------------------------------------------------------- score model


def covariate_matrix(data: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """The covariates as model columns: numeric ones as they are, a categorical (pandas
    categorical, text or boolean) as 0/1 columns ``name[level]`` for every level but the first
    (its categories' order, else sorted).  No intercept."""
    cols = {}
    for c in covariates:
        x = data[c]
        if isinstance(x.dtype, pd.CategoricalDtype) or x.dtype == object or x.dtype == bool \
                or pd.api.types.is_string_dtype(x):
            levels = (list(x.cat.categories) if isinstance(x.dtype, pd.CategoricalDtype)
                      else sorted(x.dropna().unique()))
            for lev in levels[1:]:
                cols[f"{c}[{lev}]"] = (x == lev).astype(float).where(x.notna())
        else:
            cols[c] = pd.to_numeric(x).astype(float)
    return pd.DataFrame(cols, index=data.index)


def _levels(data: pd.DataFrame, c: str) -> list | None:
    x = data[c]
    if isinstance(x.dtype, pd.CategoricalDtype):
        return list(x.cat.categories)
    if x.dtype == object or x.dtype == bool or pd.api.types.is_string_dtype(x):
        return sorted(x.dropna().unique())
    return None


def _fit_logit(data: pd.DataFrame, treatment: str, covariates: Sequence[str]):
    X = sm.add_constant(covariate_matrix(data, covariates), has_constant="add")
    y = data[treatment].astype(float)
    if X.isna().any().any() or y.isna().any():
        raise ValueError("propensity model: a covariate or the group is missing for some participants; "
                         "drop or impute them first")
    if y.nunique() != 2:
        raise ValueError("propensity model: both intervention and comparison participants are needed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation is reported below in plain words
        try:
            res = sm.Logit(y.to_numpy(), X.to_numpy(), missing="raise").fit(method="newton", tol=1e-12,
                                                                             maxiter=200, disp=False)
        except np.linalg.LinAlgError:
            res = None
    if res is None or not res.mle_retvals.get("converged", False) or np.max(np.abs(res.params)) > 30:
        raise ValueError("propensity model did not converge (complete separation: a covariate predicts the "
                         "group perfectly; remove it or merge its levels)")
    return res, X


def propensity_model(data: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> pd.DataFrame:
    """Coefficients of the logistic propensity model: term, estimate (log odds), SE, z, p."""
    res, X = _fit_logit(data, treatment, covariates)
    names = ["(Intercept)"] + list(X.columns[1:])
    return pd.DataFrame({"term": names, "estimate": res.params, "se": res.bse, "z": res.tvalues,
                         "p": res.pvalues})


def score_fit(data: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The score model's coefficients and design matrix (intercept first, then the columns of
    :func:`covariate_matrix`): the starting point of :func:`bootstrap_weights`."""
    res, X = _fit_logit(data, treatment, covariates)
    return np.asarray(res.params, float), X.to_numpy(float)


def propensity_scores(data: pd.DataFrame, treatment: str, covariates: Sequence[str]) -> pd.Series:
    """Fitted probability of the intervention group for every row of ``data`` (same index)."""
    res, X = _fit_logit(data, treatment, covariates)
    return pd.Series(res.predict(X.to_numpy()), index=data.index, name="ps")


# ------------------------------------------------------------------------------- weights


def ps_weights(ps: pd.Series, treated: pd.Series, estimand: str = "ATT", stabilise: bool = True,
               trim: float = 0.0) -> pd.DataFrame:
    """Weights for ``estimand`` (module table), with ATE stabilisation and score trimming.

    Returns a DataFrame (index of ``ps``) with ``ps``, ``treated`` (0/1), ``trimmed`` and
    ``weight`` (0 for a trimmed participant)."""
    if estimand not in ESTIMANDS:
        raise ValueError(f"propensity.estimand must be one of {', '.join(ESTIMANDS)}, not {estimand!r}")
    if not 0.0 <= trim < 0.5:
        raise ValueError("propensity.trim must be at least 0 and below 0.5")
    e = ps.astype(float).to_numpy()
    t = treated.astype(float).to_numpy()
    trimmed = (e < trim) | (e > 1.0 - trim) if trim > 0 else np.zeros(len(e), dtype=bool)
    keep = ~trimmed
    w = _weight_formula(e, t, estimand, stabilise, keep, t[keep].mean() if keep.any() else np.nan)
    if (w[keep & (t == 1)].sum() <= 0) or (w[keep & (t == 0)].sum() <= 0):
        raise ValueError("propensity weights: one group has no participant left after trimming")
    return pd.DataFrame({"ps": e, "treated": t.astype(int), "trimmed": trimmed, "weight": w}, index=ps.index)


def _weight_formula(e: np.ndarray, t: np.ndarray, estimand: str, stabilise: bool, keep: np.ndarray,
                    p1) -> np.ndarray:
    """The weights of the module table for scores ``e`` (any shape, broadcast with ``t``), 0
    where not ``keep``; ``p1`` is the share of the intervention group among those kept (ATE
    stabilisation)."""
    if estimand == "ATT":
        w = np.where(t == 1, 1.0, e / (1.0 - e))
    elif estimand == "ATE":
        w = np.where(t == 1, 1.0 / e, 1.0 / (1.0 - e))
        if stabilise:
            w = w * np.where(t == 1, p1, 1.0 - p1)
    else:
        w = np.where(t == 1, 1.0 - e, e)
    return np.where(keep, w, 0.0)


SEPARATION_EPS = 1e-8  # a fitted score this close to 0 or 1: the replicate's score model has no finite estimate
MAX_STEP = 2.0  # largest Newton step (log odds): a separated replicate's coefficients grow steadily, not wildly


def logit_many(X: np.ndarray, y: np.ndarray, W: np.ndarray, start: np.ndarray, maxiter: int = 60,
               tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression of ``y`` on ``X`` for many frequency weightings at
    once (rows of ``W``, e.g. bootstrap counts), by Newton-Raphson from ``start`` (the fit with
    all weights 1), each step at most ``MAX_STEP`` in every coefficient: the score model
    refitted in every bootstrap replicate.  Returns the
    coefficients (b, p) and whether each fit converged to a finite estimate (largest step below
    ``tol`` and every fitted probability of a row with weight > 0 at least ``SEPARATION_EPS``
    from 0 and 1: a replicate in which a covariate level has only one group's participants has
    no finite estimate, and its scores there tend to 0 or 1, as R's ``glm`` with its "fitted
    probabilities numerically 0 or 1" warning)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    W = np.atleast_2d(np.asarray(W, float))
    b, p = W.shape[0], X.shape[1]
    Z = (X[:, :, None] * X[:, None, :]).reshape(len(y), p * p)
    beta = np.tile(np.asarray(start, float), (b, 1))
    done = np.zeros(b, dtype=bool)
    for _ in range(maxiter):
        live = np.flatnonzero(~done)
        if not len(live):
            break
        mu = 1.0 / (1.0 + np.exp(-np.clip(beta[live] @ X.T, -700, 700)))
        grad = (W[live] * (y - mu)) @ X
        H = ((W[live] * mu * (1.0 - mu)) @ Z).reshape(-1, p, p)
        try:
            step = np.linalg.solve(H, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # separation in some replicate: least squares per row
            step = np.stack([np.linalg.lstsq(a, g, rcond=None)[0] for a, g in zip(H, grad)])
        big = np.max(np.abs(step), axis=1, keepdims=True)
        step = np.where(big > MAX_STEP, step * (MAX_STEP / np.where(big > 0, big, 1.0)), step)
        step = np.where(np.isfinite(step), step, 0.0)
        beta[live] += step
        done[live] = np.max(np.abs(step), axis=1) < tol
    mu = 1.0 / (1.0 + np.exp(-np.clip(beta @ X.T, -700, 700)))
    limit = ((mu < SEPARATION_EPS) | (mu > 1.0 - SEPARATION_EPS)) & (W > 0)
    return beta, done & ~limit.any(axis=1)


def bootstrap_weights(X: np.ndarray, treated: np.ndarray, counts: np.ndarray, start: np.ndarray,
                      estimand: str = "ATT", stabilise: bool = True, trim: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Propensity weights re-estimated in each bootstrap replicate (Austin PC. Stat Med
    2016;35:5642): the score model refitted with the replicate's counts as frequency weights
    (:func:`logit_many`; ``X`` is the score model's design matrix with its intercept,
    ``start`` the full-sample coefficients), then the weights of :func:`ps_weights` (the same
    estimand, ATE stabilisation by the replicate's share of the intervention group, trimming).
    Returns the weights (b, n), to be multiplied by the counts (a row of NaN where one group has
    no weight left, e.g. everyone trimmed), and the convergence flags (b,)."""
    t = np.asarray(treated, float)
    counts = np.atleast_2d(np.asarray(counts, float))
    beta, ok = logit_many(X, t, counts, start)
    e = 1.0 / (1.0 + np.exp(-np.clip(beta @ np.asarray(X, float).T, -700, 700)))
    keep = ~((e < trim) | (e > 1.0 - trim)) if trim > 0 else np.ones(e.shape, dtype=bool)
    ck = counts * keep
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p1 = ((ck * t).sum(axis=1) / ck.sum(axis=1))[:, None]
        w = np.where(counts > 0, _weight_formula(e, t[None, :], estimand, stabilise, keep, p1), 0.0)
    cw = counts * w
    empty = ((cw * t).sum(axis=1) <= 0) | ((cw * (1.0 - t)).sum(axis=1) <= 0) | ~np.isfinite(cw).all(axis=1)
    w[empty] = np.nan  # one group has no weight left (as ps_weights refuses): no estimate
    return w, ok


def level_indicators(data: pd.DataFrame, covariates: Sequence[str]) -> np.ndarray:
    """One 0/1 column per level (the first included) of every categorical covariate of the
    score model, 1 where the participant has that level (0 where the covariate is missing);
    an array with no columns when every covariate is numeric.

    Parameters
    ----------
    data : pandas.DataFrame
        The participants, with the covariates as columns.
    covariates : sequence of str
        The score model's covariates; numeric ones are skipped.

    Returns
    -------
    numpy.ndarray
        Shape (n, number of levels), the input of :func:`without_overlap`.
    """
    cols = [(data[c] == lev).to_numpy(float) for c in covariates
            if (levels := _levels(data, c)) is not None for lev in levels]
    return np.column_stack(cols) if cols else np.zeros((len(data), 0))


def without_overlap(levels: np.ndarray, treated: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Which bootstrap replicates have no overlap in a level of a categorical score covariate:
    the level was drawn (positive count) in one group only.

    In such a replicate the score model has no finite estimate (its scores in that level tend
    to 0 or 1), so the weighted comparison it gives is not the estimand of the full sample but a
    comparison of that level's participants with those of other levels.
    :func:`analysis.economics.cost_effectiveness` sets these replicates aside.

    Parameters
    ----------
    levels : numpy.ndarray
        (n, L) level indicators (:func:`level_indicators`).
    treated : numpy.ndarray
        (n,) 1 for the intervention group, 0 for the comparison group.
    counts : numpy.ndarray
        (b, n) bootstrap counts (frequency weights) of the replicates.

    Returns
    -------
    numpy.ndarray
        (b,) True where some level has participants of one group only.

    Examples
    --------
    >>> import numpy as np
    >>> levels = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], float)   # two client groups
    >>> treated = np.array([1, 0, 1, 0], float)
    >>> counts = np.array([[1, 1, 1, 1], [2, 0, 1, 1], [0, 0, 2, 2]], float)
    >>> without_overlap(levels, treated, counts).tolist()
    [False, True, False]
    """
    t = np.asarray(treated, float)
    counts = np.atleast_2d(np.asarray(counts, float))
    in1 = (counts * t) @ levels > 0
    in0 = (counts * (1.0 - t)) @ levels > 0
    return (in1 != in0).any(axis=1)


def effective_sample_size(w) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2."""
    w = np.asarray(w, dtype=float)
    return float(w.sum() ** 2 / (w ** 2).sum())


# ------------------------------------------------------------------------------- balance


def _wmean(x, w):
    return float(np.sum(w * x) / np.sum(w))


def _wvar(x, w):
    """Weighted variance with the reliability-weights bias correction (n - 1 when all w = 1):
    sum w (x - m)^2 * sum w / ((sum w)^2 - sum w^2)."""
    m = _wmean(x, w)
    sw, sw2 = np.sum(w), np.sum(w ** 2)
    return float(np.sum(w * (x - m) ** 2) * sw / (sw ** 2 - sw2))


def balance_table(data: pd.DataFrame, treated: pd.Series, covariates: Sequence[str], weights: pd.Series,
                  estimand: str = "ATT") -> pd.DataFrame:
    """Covariate balance before and after weighting.

    One row per numeric covariate and per level of a categorical one (a 0/1 column, every level
    shown): means in each group unweighted and weighted, the standardised mean difference
    (intervention minus comparison) before and after, and the variance ratio (intervention /
    comparison) before and after.  The SMD's denominator is the same before and after
    weighting, from the unweighted data: the intervention group's SD for ATT, else
    sqrt((s²_intervention + s²_comparison) / 2) (Austin & Stuart 2015).  Variances use the
    reliability-weights formula of :func:`_wvar`.  Rows with weight 0 (trimmed) count before
    weighting only."""
    t = treated.astype(int).to_numpy()
    w = weights.astype(float).to_numpy()
    rows = []
    for c in covariates:
        levels = _levels(data, c)
        if levels is None:
            cols = [(c, "", "numeric", pd.to_numeric(data[c]).astype(float).to_numpy())]
        else:
            cols = [(c, str(lev), "level", (data[c] == lev).astype(float).to_numpy()) for lev in levels]
        for name, level, kind, x in cols:
            r = {"covariate": name, "level": level, "type": kind}
            ones = np.ones(len(x))
            v1, v0 = _wvar(x[t == 1], ones[t == 1]), _wvar(x[t == 0], ones[t == 0])
            denom = np.sqrt(v1) if estimand == "ATT" else np.sqrt((v1 + v0) / 2.0)
            for tag, ww in (("before", ones), ("after", w)):
                k1, k0 = (t == 1) & (ww > 0), (t == 0) & (ww > 0)
                m1, m0 = _wmean(x[k1], ww[k1]), _wmean(x[k0], ww[k0])
                r[f"mean_intervention_{tag}"] = m1
                r[f"mean_comparison_{tag}"] = m0
                r[f"smd_{tag}"] = (m1 - m0) / denom if denom > 0 else np.nan
                s1, s0 = _wvar(x[k1], ww[k1]), _wvar(x[k0], ww[k0])
                r[f"variance_ratio_{tag}"] = s1 / s0 if kind == "numeric" and s0 > 0 else np.nan
            r["sd_denominator"] = denom
            rows.append(r)
    out = pd.DataFrame(rows)
    return out[["covariate", "level", "type", "mean_intervention_before", "mean_comparison_before",
                "mean_intervention_after", "mean_comparison_after", "smd_before", "smd_after",
                "variance_ratio_before", "variance_ratio_after", "sd_denominator"]]


# ------------------------------------------------------------------------------- outcome model


def weighted_effect(data: pd.DataFrame, outcome: str, treatment: str, covariates: Sequence[str],
                    weights: pd.Series | None, cluster: str | None, level: float = 0.95) -> dict:
    """Difference intervention − comparison in ``outcome`` from the weighted regression
    ``outcome ~ treatment + covariates`` (least squares with weights ``weights``; all 1 when
    None), with the cluster-robust variance of ``survey::svyglm`` for a one-stage cluster
    design (clusters = ``cluster``, no strata or finite-population correction):

        V = G/(G-1) · A⁻¹ [Σ_g U_g U_gᵀ] A⁻¹,  A = Xᵀ W X,  U_g = Σ_{i in g} w_i x_i r_i,

    and t with G − p degrees of freedom (G clusters, p coefficients), as ``summary.svyglm``.
    ``cluster`` None (an individual design): every participant is their own cluster, so G = n
    and V is the heteroscedasticity-robust sandwich with the n/(n − 1) factor (HC0 × n/(n − 1)),
    with n − p degrees of freedom: ``svyglm`` with ``svydesign(ids = ~1, weights = ~w)``.
    Rows with weight 0 are left out.  Returns estimate, se, df, t, p, CI, the counts, the
    number of clusters (participants when ``cluster`` is None) and the Kish effective sample
    size of each group."""
    cols = [outcome, treatment, *([cluster] if cluster else []), *covariates]
    d = data.dropna(subset=list(dict.fromkeys(cols))).copy()
    w = (pd.Series(1.0, index=d.index) if weights is None else weights.reindex(d.index).astype(float))
    keep = (w > 0).to_numpy()
    d, w = d[keep], w[keep].to_numpy()
    X = pd.concat([pd.Series(1.0, index=d.index, name="(Intercept)"),
                   d[treatment].astype(float).rename("treated"), covariate_matrix(d, covariates)], axis=1)
    Xv, y = X.to_numpy(), d[outcome].astype(float).to_numpy()
    g = d[cluster].astype(str).to_numpy() if cluster else np.arange(len(d))
    G, p = len(set(g)), Xv.shape[1]
    if G - p < 1:
        unit = "agencies" if cluster else "participants"
        raise ValueError(f"weighted outcome model: {G} {unit} cannot support {p} coefficients "
                         "(fewer outcome-model covariates are needed)")
    A = Xv.T @ (w[:, None] * Xv)
    if np.linalg.matrix_rank(A) < p:
        raise ValueError("weighted outcome model: the covariates are collinear (e.g. a level with no "
                         "participants left); remove or merge them")
    beta = np.linalg.solve(A, Xv.T @ (w * y))
    r = y - Xv @ beta
    scores = Xv * (w * r)[:, None]
    U = pd.DataFrame(scores).groupby(g).sum().to_numpy()
    Ainv = np.linalg.inv(A)
    V = G / (G - 1.0) * Ainv @ (U.T @ U) @ Ainv
    est, se = float(beta[1]), float(np.sqrt(V[1, 1]))
    df = float(G - p)
    q = float(stats.t.ppf(0.5 + level / 2.0, df))
    tt = d[treatment].astype(int).to_numpy()
    return dict(estimate=est, se=se, df=df, t=est / se, p=float(2 * stats.t.sf(abs(est / se), df)),
                ci_low=est - q * se, ci_high=est + q * se, n=int(len(d)), n_intervention=int(tt.sum()),
                n_control=int(len(tt) - tt.sum()), n_clusters=int(G),
                ess_intervention=effective_sample_size(w[tt == 1]),
                ess_control=effective_sample_size(w[tt == 0]))


# ------------------------------------------------------------------------------- E-value


def e_value_rr(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): RR + sqrt(RR (RR − 1)) for RR ≥ 1, and
    the same of 1/RR for RR < 1: the minimum strength of association (risk-ratio scale) an
    unmeasured confounder would need with both the group and the outcome to explain the
    association away."""
    rr = float(rr)
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = 1.0 / rr if rr < 1 else rr
    return float(rr + np.sqrt(rr * (rr - 1.0)))


def e_value(d: float, d_ci_low: float, d_ci_high: float) -> dict:
    """E-values of a standardised mean difference ``d`` and its CI (VanderWeele & Ding 2017,
    continuous outcomes): RR ≈ exp(0.91 d); the E-value of the CI is that of the limit nearer
    the null, and 1 when the CI includes 0."""
    rr = float(np.exp(SMD_TO_LOG_RR * d))
    if d_ci_low <= 0 <= d_ci_high:
        ci = 1.0
    else:
        near = d_ci_low if d > 0 else d_ci_high
        ci = e_value_rr(np.exp(SMD_TO_LOG_RR * near))
    return dict(rr_approx=rr, e_value=e_value_rr(rr), e_value_ci=ci)


# ------------------------------------------------------------------------------- love plot


def love_plot_png(balance: pd.DataFrame, threshold: float = 0.1, labels: dict[str, str] | None = None) -> bytes:
    """Love plot: absolute standardised mean difference of every covariate row before (open)
    and after (filled) weighting, with the conventional 0.1 threshold dashed."""
    from analysis.figures import _png, plt
    labels = labels or {}
    b = balance.iloc[::-1].reset_index(drop=True)
    names = [labels.get(r.covariate, r.covariate) + (f": {r.level}" if r.level else "") for r in b.itertuples()]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(b) + 1.4))
    y = np.arange(len(b))
    ax.scatter(b.smd_before.abs(), y, facecolors="none", edgecolors="#d1495b", label="before weighting", zorder=3)
    ax.scatter(b.smd_after.abs(), y, color="#1b6ca8", label="after weighting", zorder=3)
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, names)
    ax.set_xlabel("Absolute standardised mean difference (intervention − comparison)")
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------------------- the pipeline's analysis

ANALYSES = ("unweighted_baseline", "unweighted_covariates", "weighted_baseline", "weighted_covariates")
ANALYSIS_LABELS = {
    "unweighted_baseline": "Unweighted, adjusted for the baseline value only (ignores the non-random allocation)",
    "unweighted_covariates": "Unweighted, regression adjustment for the baseline value and the propensity covariates",
    "weighted_baseline": "Propensity weighted, adjusted for the baseline value",
    "weighted_covariates": "Propensity weighted, adjusted for the baseline value and the propensity covariates",
}
EFFECT_COLUMNS = ["outcome", "timepoint", "analysis", "primary", "estimand", "estimate", "se", "df", "t", "p",
                  "ci_low", "ci_high", "n", "n_intervention", "n_control", "n_clusters", "ess_intervention",
                  "ess_control", "standardised_effect", "standardised_ci_low", "standardised_ci_high",
                  "baseline_sd", "rr_approx", "e_value", "e_value_ci"]


def participant_table(linked: pd.DataFrame, cfg: dict) -> tuple[pd.DataFrame, list[str]]:
    """One row per participant (their baseline row) with ``treated`` and the propensity
    covariates; a score covariate is its baseline value.  Returns the table and the model's
    column names (the covariates, in the config's order)."""
    first = linked.timepoint.cat.categories[0]
    base = linked[linked.timepoint == first].drop_duplicates("participant_id").set_index("participant_id")
    base = base.assign(treated=(base.arm == cfg["design"]["intervention_arm"]).astype(int))
    covs = list(cfg["propensity"]["covariates"])
    missing = [c for c in covs if c not in base]
    if missing:
        raise KeyError(f"config key propensity.covariates: {missing} are not columns of the linked table")
    return base, covs


def analyse(linked: pd.DataFrame, cfg: dict, outcomes: Sequence[str], primary_timepoint: str) -> dict:
    """The non-randomised comparison of every outcome at every follow-up (``propensity`` config):
    score model, weights, balance (the covariates and the primary outcome's baseline value),
    the four outcome regressions of :data:`ANALYSES` with standardised effects and E-values,
    and a one-row summary.  Only aggregate tables: no participant identifier leaves here."""
    from analysis.outcomes import standardised_effect

    pc = cfg["propensity"]
    level = cfg["outcomes"]["confidence_level"]
    estimand = pc["estimand"]
    base, covs = participant_table(linked, cfg)
    complete = base.dropna(subset=covs)
    model = propensity_model(complete, "treated", covs)
    ps = propensity_scores(complete, "treated", covs)
    w = ps_weights(ps, complete.treated, estimand, stabilise=pc["stabilise"], trim=pc["trim"])
    prim = outcomes[0]
    balance = balance_table(complete, complete.treated, covs, w.weight, estimand)
    if prim not in covs and f"{prim}_bl" in complete:  # the primary outcome at baseline, where observed
        has = complete.dropna(subset=[f"{prim}_bl"])
        balance = pd.concat([balance, balance_table(has, has.treated, [f"{prim}_bl"], w.weight.reindex(has.index),
                                                    estimand)], ignore_index=True)
    balance["imbalanced_after"] = balance.smd_after.abs() > pc["balance_threshold"]

    weight_by_pid = w.weight
    cluster = "site_id" if cfg["design"]["type"] == "cluster" else None  # individual: robust, per participant
    rows = []
    for y in outcomes:
        bl_sd = linked.loc[linked.timepoint == linked.timepoint.cat.categories[0], y].dropna().astype(float)
        sd, n_bl = float(bl_sd.std(ddof=1)), int(len(bl_sd))
        for tp in list(linked.timepoint.cat.categories)[1:]:
            d = linked[linked.timepoint == tp].drop_duplicates("participant_id").set_index("participant_id")
            d = d[d.index.isin(complete.index)].copy()
            d["treated"] = complete.treated.reindex(d.index)
            for c in covs:
                d[f"_ps_{c}"] = complete[c].reindex(d.index)
            if f"{y}_bl" not in d or d[[y, f"{y}_bl"]].dropna().empty:
                continue
            d = d.rename(columns={f"{y}_bl": "_y_bl"})
            adj = {"baseline": ["_y_bl"], "covariates": ["_y_bl"] + [f"_ps_{c}" for c in covs if c != y]}
            for name in ANALYSES:
                weighted, adjustment = name.split("_")
                try:
                    r = weighted_effect(d, y, "treated", adj[adjustment],
                                        weight_by_pid.reindex(d.index) if weighted == "weighted" else None,
                                        cluster, level=level)
                except ValueError as e:  # too few agencies for the covariates: a row saying why
                    rows.append(dict(outcome=y, timepoint=str(tp), analysis=name, estimand=estimand,
                                     primary=False, note=str(e)))
                    continue
                st = standardised_effect(r["estimate"], r["se"], r["df"], sd, n_bl, level=level)
                ev = e_value(st["standardised_effect"], st["standardised_ci_low"], st["standardised_ci_high"])
                rows.append(dict(outcome=y, timepoint=str(tp), analysis=name,
                                 primary=(y == prim and str(tp) == primary_timepoint
                                          and name == f"weighted_{pc['outcome_adjustment']}"),
                                 estimand=estimand if weighted == "weighted" else "none (unweighted)",
                                 **r, **st, baseline_sd=sd, **ev))
    effects = pd.DataFrame(rows).reindex(columns=EFFECT_COLUMNS + ["note"])
    t = complete.treated.to_numpy()
    kept = ~w.trimmed.to_numpy()
    summary = pd.DataFrame([dict(
        estimand=estimand, stabilised=bool(pc["stabilise"] and estimand == "ATE"), trim=float(pc["trim"]),
        covariates=", ".join(covs), n_participants=int(len(base)),
        n_missing_covariates=int(len(base) - len(complete)),
        n_trimmed=int(w.trimmed.sum()), n_intervention=int(t[kept].sum()), n_comparison=int((1 - t[kept]).sum()),
        n_sites_intervention=int(complete[t == 1].site_id.nunique()) if cluster else np.nan,
        n_sites_comparison=int(complete[t == 0].site_id.nunique()) if cluster else np.nan,
        ps_min_intervention=float(w.ps[t == 1].min()), ps_max_intervention=float(w.ps[t == 1].max()),
        ps_min_comparison=float(w.ps[t == 0].min()), ps_max_comparison=float(w.ps[t == 0].max()),
        ess_intervention=effective_sample_size(w.weight[(t == 1) & kept]),
        ess_comparison=effective_sample_size(w.weight[(t == 0) & kept]),
        max_abs_smd_before=float(balance.smd_before.abs().max()),
        max_abs_smd_after=float(balance.smd_after.abs().max()),
        n_imbalanced_after=int(balance.imbalanced_after.sum()), balance_threshold=float(pc["balance_threshold"]))])
    return {"model": model, "balance": balance, "effects": effects, "summary": summary}
