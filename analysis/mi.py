"""Multiple imputation by chained equations (fully conditional specification).

Own implementation, because statsmodels' MICE imputes numeric variables only and has no
way to keep site as a fixed-effect predictor. It follows van Buuren's mice (Flexible
Imputation of Missing Data, 2nd ed., 2018, ch. 3-4) closely:

* every incomplete variable is imputed in turn from all other variables (the current
  completed values), for ``iterations`` sweeps, starting from random draws of its
  observed values;
* numeric variables: predictive mean matching (mice's ``pmm``, "type 1" matching). A
  Bayesian linear regression is fitted to the observed cases; sigma* and beta* are drawn
  from its posterior; observed cases get predicted means from beta-hat and missing cases
  from beta*; each missing case takes the observed value of one of its ``donors`` nearest
  observed cases, chosen at random. Imputed values are therefore always values that were
  observed (no out-of-range scores). The donors are found by a sorted search (binary search
  in the sorted observed predicted means, as mice's ``matchindex``; time O(n log n), not
  missing x observed), with tied distances broken by a random order of the observed cases
  drawn from the imputation's stream (see :func:`_pmm_donors`);
* numeric variables with ``norm``: the same Bayesian linear-regression draw, imputing
  x*beta* plus normal noise with SD sigma* (mice's ``norm``).  Unlike PMM it can impute
  values never observed, but it does not run short of donors: when the missing cases'
  predicted values lie beyond the observed ones (strongly selective dropout), PMM pulls
  imputations towards the observed range and attenuates effects a little; checked against
  mice in tests/test_mi_mice.py;
* categorical variables (binary or more levels): logistic / multinomial regression fitted
  to a bootstrap resample of the observed cases (an approximate draw from the posterior of
  the parameters, which makes the imputation "proper"), then a category is drawn from the
  predicted probabilities of each missing case;
* categorical predictors enter as indicator columns, so site enters as fixed effects;
  columns that are linearly dependent on earlier columns among the observed cases (e.g. arm in
  a cluster trial, which is a function of site) are dropped from that regression, the later of
  two aliased columns going as in R's ``lm`` (with a looser threshold than ``lm``'s, as the
  check works on cross-products: :func:`_independent_gram`). The regressions work from the
  cross-products of one block design holding every variable's columns, updated in place as
  values are imputed, so no regression copies the design or factors it: O(n q^2) for the q
  numeric columns plus O(p^3) for the aliasing check, not the O(n p^2) of a pivoted QR.

Each imputation uses its own random stream spawned from one seed
(``numpy.random.SeedSequence(seed).spawn(m)``), so results are reproducible and do not
depend on the order in which imputations are run. Donor selection cannot reproduce R's
mice draw for draw (different random number generators); agreement with mice is checked
in distribution (pooled estimates on the same data) and by simulation (coverage under MAR).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as sla

from analysis import progress
from analysis.threads import one_blas_thread

__all__ = ["impute", "default_methods"]

RIDGE = 1e-5  # as mice's default ridge for the linear-regression draw


def default_methods(data: pd.DataFrame) -> dict[str, str]:
    """Default imputation method of each column, as R's mice chooses them.

    Parameters
    ----------
    data : pandas.DataFrame
        The data to impute.

    Returns
    -------
    dict
        ``pmm`` for a numeric column with missing values, ``logreg`` for a categorical one
        (object, category or bool), ``''`` (not imputed) for a complete column.

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K. mice: multivariate imputation by chained equations in
    R. J Stat Softw 2011;45(3):1-67.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.mi import default_methods
    >>> default_methods(pd.DataFrame({"age": [34.0, 51.0], "score": [50.0, None], "sex": ["F", None]}))
    {'age': '', 'score': 'pmm', 'sex': 'logreg'}
    """
    out = {}
    for c in data.columns:
        if not data[c].isna().any():
            out[c] = ""
        elif pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c]):
            out[c] = "pmm"
        else:
            out[c] = "logreg"
    return out


def _block(values, levels: list | None) -> np.ndarray:
    """Design columns of one variable: itself (numeric) or indicators of levels[1:]."""
    if levels is None:
        return np.asarray(values, dtype=float)[:, None]
    v = np.asarray(values, dtype=object)
    return np.column_stack([(v == lev).astype(float) for lev in levels[1:]]) if len(levels) > 1 \
        else np.zeros((len(v), 0))


class _Design:
    """The design of every regression at once, stored by blocks.

    Logically it is an intercept, then each column's block in data order: a numeric column
    itself, a categorical column the indicators of its levels but the first (``span[c]`` is the
    range of c's columns; regressing c on the others uses every column outside it).  It is
    stored as a dense matrix of the intercept and the numeric columns, and each categorical
    column as integer codes (0 = first level), so a site with 200 levels costs one integer per
    row, not 199 indicator columns.  Cross-products of the indicators with anything are then
    group sums (O(n) per dense column) and contingency tables, and predictions index a
    coefficient vector by the codes: a regression costs O(n q^2) in the q numeric columns
    instead of O(n p^2) in all p columns.  Values are replaced in place as they are imputed."""

    def __init__(self, values: dict, levels: dict, cols: list):
        self.levels = levels
        self.span, pos = {}, 1
        for c in cols:
            width = 1 if levels[c] is None else max(len(levels[c]) - 1, 0)
            self.span[c], pos = (pos, pos + width), pos + width
        self.width = pos
        self.numeric = [c for c in cols if levels[c] is None]
        self.dense_pos = np.array([0] + [self.span[c][0] for c in self.numeric], dtype=np.intp)
        self.categorical = [c for c in cols if levels[c] is not None and len(levels[c]) > 1]
        self.D = np.ones((len(values[cols[0]]), len(self.dense_pos)))
        self.codes: dict = {}
        for c in cols:
            self.set(c, values[c])

    def set(self, c, v) -> None:
        """Replace column c's values."""
        if self.levels[c] is None:
            self.D[:, 1 + self.numeric.index(c)] = np.asarray(v, dtype=float)
        elif c in self.categorical:
            lookup = {lev: i for i, lev in enumerate(self.levels[c])}
            self.codes[c] = np.fromiter((lookup[x] for x in v), dtype=np.intp, count=len(v))

    def gram(self, rows: np.ndarray) -> np.ndarray:
        """The cross-product matrix Z'Z of the rows selected by the boolean ``rows``."""
        D, dp = self.D[rows], self.dense_pos
        G = np.zeros((self.width, self.width))
        G[np.ix_(dp, dp)] = D.T @ D
        for i, c in enumerate(self.categorical):
            k, n_lev, (a, b) = self.codes[c][rows], len(self.levels[c]), self.span[c]
            sums = np.column_stack([np.bincount(k, weights=D[:, j], minlength=n_lev)
                                    for j in range(D.shape[1])])[1:]
            G[a:b, dp], G[np.ix_(dp, np.arange(a, b))] = sums, sums.T
            for d in self.categorical[i:]:
                k2, n2, (a2, b2) = self.codes[d][rows], len(self.levels[d]), self.span[d]
                tab = np.bincount(k * n2 + k2, minlength=n_lev * n2).reshape(n_lev, n2)[1:, 1:]
                G[a:b, a2:b2], G[a2:b2, a:b] = tab, tab.T
        return G

    def predict(self, rows: np.ndarray, coef: np.ndarray) -> np.ndarray:
        """Z @ coef for the rows selected by the boolean ``rows`` (coef over all columns)."""
        out = self.D[rows] @ coef[self.dense_pos]
        for c in self.categorical:
            a, b = self.span[c]
            out += np.concatenate([[0.0], coef[a:b]])[self.codes[c][rows]]
        return out

    def dense(self, cols: np.ndarray) -> np.ndarray:
        """The columns ``cols`` as an ordinary matrix (for the logistic imputation)."""
        Z = np.zeros((len(self.D), self.width))
        Z[:, self.dense_pos] = self.D
        for c in self.categorical:
            a, b = self.span[c]
            rows = np.flatnonzero(self.codes[c] > 0)
            Z[rows, a - 1 + self.codes[c][rows]] = 1.0
        return Z[:, cols]


def _independent_gram(G: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Indices of the columns kept from a cross-product matrix ``G = X'X``, in order.

    A column is kept when the part of it that the columns kept before it do not explain has a
    squared length above ``tol`` times its own (columns scaled to length 1, i.e. a residual norm
    above 1e-5 of the column's); otherwise it is linearly dependent on them and dropped, as R's
    ``lm`` drops the later of two aliased columns (``lm``'s threshold is 1e-7 on the residual
    norm; this one is looser because it works on cross-products).  Symmetric Gaussian
    elimination on the scaled ``G``, one kept column at a time (each step leaves the later
    columns' residual cross-products), so the cost is O(p^3) in the number of columns and none
    in the number of rows.  Rounding: cross-products of indicators are exact integers; for other
    columns the relative error per entry is about sqrt(n) x 1e-16, far below ``tol`` at any
    trial size.
    """
    p = G.shape[0]
    d = np.sqrt(np.clip(np.diag(G), 0, None))
    d[d == 0] = 1.0
    C = G / d[:, None] / d[None, :]
    keep: list[int] = []
    for j in range(p):
        r = C[j, j]
        if r > tol:
            keep.append(j)
            col = C[j + 1:, j]
            C[j + 1:, j + 1:] -= np.outer(col, col / r)
    return np.asarray(keep, dtype=np.intp)


def _bayes_draw(y: np.ndarray, ry: np.ndarray, Z: _Design, cols: np.ndarray, ycol: int,
                rng: np.random.Generator):
    """mice's ``.norm.draw`` with ``ls.meth = "ridge"``: least-squares fit to the observed
    cases with mice's ridge (1e-5 x the diagonal),
    then sigma* and beta* drawn from the posterior under a flat prior.

    The design is the columns ``cols`` of ``Z`` and the response its column ``ycol``.  The
    cross-products come from the observed rows of ``Z`` (:meth:`_Design.gram`; X'y is a column
    of them), the columns that are linearly dependent among the observed cases are dropped
    (:func:`_independent_gram`), and predictions use ``Z`` with zero coefficients elsewhere.
    Returns the observed predicted means from beta-hat, the missing cases' from beta*, observed
    y and sigma*."""
    yo = y[ry]
    G = Z.gram(ry)
    sel = cols[_independent_gram(G[np.ix_(cols, cols)])]
    n, p = len(yo), len(sel)
    xtx = G[np.ix_(sel, sel)]
    xtx = xtx + np.diag(np.diag(xtx)) * RIDGE
    v = np.linalg.inv(xtx)
    v = (v + v.T) / 2
    coef = v @ G[sel, ycol]
    full = np.zeros(Z.width)
    full[sel] = coef
    yhat_obs = Z.predict(ry, full)
    resid = yo - yhat_obs
    df = max(n - p, 1)
    sigma_star = np.sqrt(float(resid @ resid) / rng.chisquare(df))
    full[sel] = coef + sigma_star * (np.linalg.cholesky(v) @ rng.standard_normal(p))
    yhat_mis = Z.predict(~ry, full)
    return yhat_obs, yhat_mis, yo, sigma_star


def _norm(y: np.ndarray, ry: np.ndarray, Z: _Design, cols: np.ndarray, ycol: int,
          rng: np.random.Generator) -> np.ndarray:
    """mice's ``norm``: Bayesian linear regression; imputations are x*beta* + N(0, sigma*^2)."""
    _, yhat_mis, _, sigma_star = _bayes_draw(y, ry, Z, cols, ycol, rng)
    return yhat_mis + sigma_star * rng.standard_normal(len(yhat_mis))


def _pmm(y: np.ndarray, ry: np.ndarray, Z: _Design, cols: np.ndarray, ycol: int, donors: int,
         rng: np.random.Generator) -> np.ndarray:
    yhat_obs, yhat_mis, yo, _ = _bayes_draw(y, ry, Z, cols, ycol, rng)
    n = len(yo)
    k = int(min(donors, n))
    priority = rng.permutation(n)  # random tie-breaking: the observed cases in a random order
    nearest = _pmm_donors(yhat_mis, yhat_obs, k, priority)
    pick = nearest[np.arange(len(yhat_mis)), rng.integers(0, k, size=len(yhat_mis))]
    return yo[pick]


def _pmm_donors(yhat_mis: np.ndarray, yhat_obs: np.ndarray, k: int,
                priority: np.ndarray) -> np.ndarray:
    """The ``k`` observed cases nearest each missing case's predicted mean (missing x k).

    Donors are ranked by the distance |yhat_obs - yhat_mis| and, at equal distance, by
    ``priority`` (distinct integers; :func:`_pmm` passes a random permutation of the observed
    cases, so ties are broken uniformly at random, as mice's matcher does by shuffling the
    donors before sorting them); row i holds the k first observed cases in that ranking, in
    that order.  Sorted search (as mice's ``matchindex``): the observed predicted means are
    sorted once, by (value, priority) for the cases at or above a missing case's predicted
    mean and by (value, -priority) for those below, so that walking away from the insertion
    point (binary search) on either side meets the cases in ranking order; the k best of the
    union are among the k first on each side.  Time O((n_mis + n_obs) log n_obs + n_mis k log
    k), memory O(n_obs + n_mis k); the donor sets do not depend on how numpy sorts."""
    n_mis, n = len(yhat_mis), len(yhat_obs)
    if n_mis == 0:
        return np.zeros((0, k), dtype=np.intp)
    up, down = _two_orders(yhat_obs, priority)
    s = yhat_obs[up]
    start = np.searchsorted(s, yhat_mis, side="left")  # first observed value >= yhat_mis
    step = np.arange(k)
    right = start[:, None] + step[None, :]
    left = start[:, None] - 1 - step[None, :]
    ok_r, ok_l = right < n, left >= 0
    cand = np.concatenate([up[np.where(ok_r, right, 0)], down[np.where(ok_l, left, 0)]], axis=1)
    ok = np.concatenate([ok_r, ok_l], axis=1)
    dist = np.where(ok, np.abs(yhat_obs[cand] - yhat_mis[:, None]), np.inf)
    rank = np.where(ok, priority[cand], n)
    best = np.lexsort((rank, dist), axis=1)[:, :k]
    return np.take_along_axis(cand, best, axis=1)


def _two_orders(values: np.ndarray, priority: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The orders (value, priority ascending) and (value ascending, priority descending) of a
    permutation ``priority``: one stable sort of the values listed in priority order, then each
    run of equal values reversed for the second (the same as two ``np.lexsort`` calls, in half
    the time)."""
    n = len(values)
    by_priority = np.empty(n, dtype=np.intp)
    by_priority[priority] = np.arange(n)
    up = by_priority[np.argsort(values[by_priority], kind="stable")]
    s = values[up]
    new_run = np.r_[True, s[1:] != s[:-1]]
    start = np.flatnonzero(new_run)
    end = np.r_[start[1:], n]
    run = np.cumsum(new_run) - 1
    return up, up[start[run] + end[run] - 1 - np.arange(n)]


def _categorical(y: pd.Series, ry: np.ndarray, X: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    yo = y[ry].to_numpy()
    classes = np.array(sorted(pd.unique(yo), key=str), dtype=object)
    Xs = X[:, 1:]  # sklearn fits its own intercept
    mu = Xs[ry].mean(axis=0)
    sd = Xs[ry].std(axis=0)
    sd[sd == 0] = 1.0
    Z = (Xs - mu) / sd
    zo, zm = Z[ry], Z[~ry]
    if len(classes) == 1:
        return np.repeat(classes[0], len(zm))
    idx = rng.integers(0, len(yo), size=len(yo))  # bootstrap draw of the parameters
    if len(pd.unique(yo[idx])) < len(classes):
        idx = np.arange(len(yo))
    # mild ridge (C = 100 on standardised predictors) keeps separated data finite
    model = LogisticRegression(C=100.0, max_iter=2000)
    model.fit(zo[idx], yo[idx].astype(str))
    prob = model.predict_proba(zm)
    labels = model.classes_
    u = rng.uniform(size=len(zm))
    choice = (prob.cumsum(axis=1) < u[:, None]).sum(axis=1)
    choice = np.minimum(choice, len(labels) - 1)
    lookup = {str(c): c for c in classes}
    return np.array([lookup[labels[j]] for j in choice], dtype=object)


def impute(data: pd.DataFrame, m: int = 20, iterations: int = 10, seed: int = 0,
           donors: int = 5, methods: dict[str, str] | None = None) -> list[pd.DataFrame]:
    """Multiple imputation by chained equations: ``m`` completed copies of ``data``.

    Every column is a predictor for every other; columns with dtype object/category/bool are
    categorical.  Incomplete columns are visited from the least to the most incomplete, starting
    from random draws of their observed values, for ``iterations`` sweeps.  BLAS runs on one
    thread (small matrices, many times: see analysis.threads).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit (e.g. participant, wide format).
    m : int
        Number of imputations.
    iterations : int
        Sweeps of the chained equations per imputation.
    seed : int
        Seed; imputation k uses the k-th child of ``numpy.random.SeedSequence(seed)``, so it is
        the same whatever ``m``.
    donors : int
        Donor pool size for predictive mean matching.
    methods : dict, optional
        Column to ``pmm`` (predictive mean matching), ``norm`` (Bayesian linear regression),
        ``logreg`` (binary or multinomial logistic) or ``''`` (not imputed); the default is
        :func:`default_methods`.

    Returns
    -------
    list of pandas.DataFrame
        ``m`` completed copies of ``data`` (same index and columns); analyse each and pool with
        :func:`analysis.mi_pool.pool`.

    References
    ----------
    van Buuren S, Groothuis-Oudshoorn K. mice: multivariate imputation by chained equations in
    R. J Stat Softw 2011;45(3):1-67.

    Morris TP, White IR, Royston P. Tuning multiple imputation by predictive mean matching and
    local residual draws. BMC Med Res Methodol 2014;14:75.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.mi import impute
    >>> d = pd.DataFrame({"age": [34.0, 51, 45, 29, 62, 40], "score": [50.0, np.nan, 47, 55, np.nan, 49],
    ...                   "sex": ["F", "M", None, "F", "M", "F"]})
    >>> completed = impute(d, m=3, iterations=5, seed=1)
    >>> len(completed), [int(c.isna().sum().sum()) for c in completed]
    (3, [0, 0, 0])
    >>> completed[0].score.tolist()
    [50.0, 47.0, 47.0, 55.0, 50.0, 49.0]
    """
    with one_blas_thread():
        return _impute(data, m, iterations, seed, donors, methods)


def _impute(data: pd.DataFrame, m: int, iterations: int, seed: int, donors: int,
            methods: dict[str, str] | None) -> list[pd.DataFrame]:
    if m < 1:
        raise ValueError("m (number of imputations) must be at least 1.")
    if iterations < 1:
        raise ValueError("iterations must be at least 1.")
    methods = dict(default_methods(data), **(methods or {}))
    categorical = {c for c in data.columns
                   if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])}
    for c, meth in methods.items():
        if meth not in ("", "pmm", "norm", "logreg"):
            raise ValueError(f"Unknown imputation method {meth!r} for column {c!r} "
                             "(use 'pmm', 'norm', 'logreg' or '').")
        if meth in ("pmm", "norm") and c in categorical:
            raise ValueError(f"Column {c!r} is categorical; impute it with 'logreg', not {meth!r}.")
        if meth and data[c].notna().sum() < 2:
            raise ValueError(f"Column {c!r} has fewer than 2 observed values; it cannot be imputed.")
        if not meth and data[c].isna().any():
            raise ValueError(f"Column {c!r} has missing values but no imputation method (''): impute it "
                             "('pmm', 'norm' or 'logreg') or leave it out of the data.")
    targets = [c for c in data.columns if methods.get(c) and data[c].isna().any()]
    # visit incomplete variables from the least to the most incomplete (stable order)
    targets.sort(key=lambda c: (int(data[c].isna().sum()), list(data.columns).index(c)))
    miss = {c: data[c].isna().to_numpy() for c in targets}
    cols = list(data.columns)
    levels = {c: (sorted(pd.unique(data[c].dropna()), key=str) if c in categorical else None)
              for c in cols}
    out = []
    for k, ss in enumerate(np.random.SeedSequence(seed).spawn(m), 1):
        progress.step("imputation", k, m)
        rng = np.random.default_rng(ss)
        cur = data.copy()
        for c in cols:
            cur[c] = cur[c].astype(object) if c in categorical else cur[c].astype(float)
        for c in targets:  # start from random draws of the observed values
            obs = data[c][~miss[c]].to_numpy()
            cur.loc[miss[c], c] = obs[rng.integers(0, len(obs), size=int(miss[c].sum()))]
        values = {c: cur[c].to_numpy() for c in cols}
        Z = _Design(values, levels, cols)
        n_sweeps = iterations if len(targets) > 1 else 1
        for _ in range(n_sweeps):
            for c in targets:
                ry = ~miss[c]
                a, b = Z.span[c]
                others = np.r_[0:a, b:Z.width]  # every column but c's own
                if methods[c] == "pmm":
                    vals = _pmm(values[c].astype(float), ry, Z, others, a, donors, rng)
                elif methods[c] == "norm":
                    vals = _norm(values[c].astype(float), ry, Z, others, a, rng)
                else:
                    vals = _categorical(pd.Series(values[c]), ry, Z.dense(others), rng)
                v = values[c].copy()
                v[~ry] = vals
                values[c] = v
                Z.set(c, v)
        for c in cols:
            cur[c] = pd.to_numeric(pd.Series(values[c], index=data.index)) if c not in categorical \
                else pd.Series(values[c], index=data.index, dtype=object)
        out.append(cur)
    return out
