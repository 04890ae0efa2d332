"""Vectorised, seeded non-parametric bootstrap for trial data, stratified by arm.

A bootstrap replicate is represented by a row of *counts*: how many times each participant
was drawn.  Any statistic that is a weighted sum over participants (means, least-squares
normal equations) is then computed for a whole block of replicates with one matrix product,
with no per-replicate pandas work.  Weighting by counts gives exactly the same estimate as
stacking the drawn rows.

Two resampling schemes, both stratified (by arm: each stratum keeps its own size):

* ``participants`` — draw the stratum's participants with replacement (individually
  randomised trials).
* ``two_stage`` — draw the stratum's clusters (sites) with replacement, then, inside each
  drawn site, draw as many participants as the site has, with replacement from that site
  (Davison AC, Hinkley DV. Bootstrap Methods and their Application, 1997, §3.8; Ng ES-W,
  Grieve R, Carpenter JR. Stata J 2013;13:141).  With replacement at both stages the
  bootstrap variance of an arm mean over K sites of m participants is, in expectation,
  (K-1)/K x sigma_b^2/K + (2 - 1/K - 1/m) x sigma_w^2/(K m): the between-site part is
  shrunk by (K-1)/K and the within-site part counted about twice.  With many sites or a small
  ICC the second term dominates and intervals are conservative; with 2-3 sites per arm and a
  large ICC the first dominates and they are too narrow (docs/methods.md, "Bootstrap").
  :func:`shrink_residuals` prepares data whose two-stage bootstrap has unbiased variance
  components (the shrinkage correction).

Replicates are drawn in fixed blocks from one ``numpy.random.Generator`` seeded with the
trial seed, so the same seed and data give the same replicates, whatever statistic is computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from analysis import progress

BLOCK = 500  # replicates per block at most; fixed so that results never depend on memory settings
CELLS = 2**24  # counts per block at most (n > 33,554 participants: fewer replicates per block)


def _groups(strata: np.ndarray, clusters: np.ndarray | None):
    """Per stratum: arrays of member indices per cluster (sorted, deterministic)."""
    out = []
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        if clusters is None:
            out.append([idx])  # one pseudo-cluster: participant-level resampling
            continue
        cl = clusters[idx]
        out.append([idx[cl == c] for c in np.unique(cl)])
    return out


def count_blocks(n: int, strata, clusters=None, *, replicates: int, seed, two_stage: bool,
                 block: int = BLOCK) -> Iterator[np.ndarray]:
    """Yield count matrices of shape (b, n), b <= ``block``, ``replicates`` rows in total.

    ``strata``: stratum label per participant (the arm).  ``clusters``: site label per
    participant, needed when ``two_stage``.  Row sums equal n for participant resampling and
    vary (the drawn sites' sizes) for the two-stage scheme.

    A block holds at most ``block`` replicates and at most ``CELLS`` counts (b = max(1,
    min(block, CELLS // n))), so each of its arrays stays under about 130 MB whatever the number
    of participants (500 replicates x 200,000 participants would be 800 MB per array, several at
    once).  The block size depends on n only, so the same data and seed give the same replicates
    on any machine; it is 500 up to 33,554 participants.
    """
    strata = np.asarray(strata)
    if len(strata) != n:
        raise ValueError("strata must have one label per participant")
    if two_stage and clusters is None:
        raise ValueError("the two-stage bootstrap needs a cluster (site) label per participant")
    groups = _groups(strata, np.asarray(clusters) if two_stage else None)
    block = max(1, min(int(block), CELLS // max(n, 1)))
    rng = np.random.default_rng(seed)
    done = 0
    while done < replicates:
        b = min(block, replicates - done)
        counts = np.zeros(b * n, dtype=np.int64)
        for members in groups:
            if not two_stage:
                idx = members[0]
                draw = idx[rng.integers(0, len(idx), size=(b, len(idx)))]
                counts += np.bincount((np.arange(b)[:, None] * n + draw).ravel(), minlength=b * n)
                continue
            k = len(members)
            sizes = np.array([len(m) for m in members])
            flat = np.concatenate(members)
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            site = rng.integers(0, k, size=(b, k))  # stage 1: sites with replacement
            m = sizes[site].ravel()
            rep = np.repeat(np.repeat(np.arange(b), k), m)
            drawn_site = np.repeat(site.ravel(), m)
            # stage 2: participants with replacement within each drawn site
            within = np.floor(rng.random(len(drawn_site)) * sizes[drawn_site]).astype(np.int64)
            who = flat[offsets[drawn_site] + within]
            counts += np.bincount(rep * n + who, minlength=b * n)
        yield counts.reshape(b, n)
        done += b
        progress.step("bootstrap replicates", done, replicates)


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, strata, clusters=None, *,
              replicates: int = 10_000, seed=0, two_stage: bool = False) -> np.ndarray:
    """Stratified (optionally two-stage) nonparametric bootstrap of a weighted statistic.

    Each replicate is a vector of resampling counts per participant: participants are drawn with
    replacement within each stratum (the arm), or, with ``two_stage``, sites within each stratum
    and then participants within each drawn site.  ``statistic`` receives the counts as weights
    for a block of replicates at once.

    Parameters
    ----------
    statistic : callable
        Maps weights of shape (b, n) to an array of shape (b, k), e.g. :func:`weighted_ols`.
    n : int
        Number of participants.
    strata : array-like of shape (n,)
        Stratum (arm) of each participant.
    clusters : array-like of shape (n,), optional
        Site of each participant; needed when ``two_stage``.
    replicates : int
        Number of bootstrap replicates B.
    seed : int or numpy.random.SeedSequence
        Seed of ``numpy.random.default_rng``: the same seed gives the same replicates.
    two_stage : bool
        Resample sites, then participants within sites.

    Returns
    -------
    numpy.ndarray of shape (B, k)
        The statistic in each replicate.

    References
    ----------
    Efron B, Tibshirani RJ. An Introduction to the Bootstrap. New York: Chapman and Hall, 1993.

    Davison AC, Hinkley DV. Bootstrap Methods and their Application. Cambridge University Press,
    1997, section 3.8 (two-stage resampling of clustered data).

    Examples
    --------
    Percentile interval for a difference in means (the regression coefficient of the arm):

    >>> import numpy as np
    >>> from analysis.bootstrap import bootstrap, weighted_ols
    >>> X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    >>> y = np.array([3.0, 4, 5, 6, 8, 7])
    >>> reps = bootstrap(lambda w: weighted_ols(X, y, w)[:, 1:], 6, strata=X[:, 1], replicates=1000, seed=3)
    >>> reps.shape, np.percentile(reps[:, 0], [2.5, 97.5]).round(2).tolist()
    ((1000, 1), [1.67, 4.33])
    """
    parts = [np.asarray(statistic(c.astype(float)))
             for c in count_blocks(n, strata, clusters, replicates=replicates, seed=seed,
                                   two_stage=two_stage)]
    return np.concatenate(parts, axis=0)


def weighted_ols(X: np.ndarray, y: np.ndarray, weights: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """Least-squares coefficients for many weightings at once.

    Solves the normal equations (X'WX) beta = X'Wy with one matrix product per block of
    weightings (a least-squares solve per row for a singular replicate).

    Parameters
    ----------
    X : numpy.ndarray of shape (n, p)
        Design matrix.
    y : numpy.ndarray of shape (n,)
        Outcome.
    weights : numpy.ndarray of shape (b, n)
        One weighting per row (bootstrap counts; ones for the point estimate).
    use : numpy.ndarray of shape (n,), optional
        Rows that enter (complete cases); all by default.

    Returns
    -------
    numpy.ndarray of shape (b, p)
        Coefficients for each weighting.

    References
    ----------
    Efron B, Tibshirani RJ. An Introduction to the Bootstrap. New York: Chapman and Hall, 1993.

    Davison AC, Hinkley DV. Bootstrap Methods and their Application. Cambridge University Press,
    1997, section 3.8 (two-stage resampling of clustered data).

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.bootstrap import weighted_ols
    >>> X = np.column_stack([np.ones(6), [0, 0, 0, 1, 1, 1]])
    >>> y = np.array([3.0, 4, 5, 6, 8, 7])
    >>> weighted_ols(X, y, np.ones((1, 6)))
    array([[4., 3.]])
    >>> weighted_ols(X, y, np.array([[2, 1, 0, 1, 1, 1]]))
    array([[3.33333333, 3.66666667]])
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    use = np.ones(len(y), bool) if use is None else np.asarray(use, bool)
    Xu = np.where(use[:, None], X, 0.0)
    yu = np.where(use, y, 0.0)
    p = X.shape[1]
    Z = (Xu[:, :, None] * Xu[:, None, :]).reshape(len(y), p * p)
    W = np.atleast_2d(weights)
    xtx = (W @ Z).reshape(-1, p, p)
    xty = W @ (Xu * yu[:, None])
    try:
        return np.linalg.solve(xtx, xty[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # a replicate with a singular design: least squares per row
        return np.stack([np.linalg.lstsq(a, v, rcond=None)[0] for a, v in zip(xtx, xty)])


def shrink_residuals(X: np.ndarray, y: np.ndarray, use: np.ndarray, strata, clusters) -> tuple[np.ndarray, dict]:
    """Outcome values whose two-stage bootstrap has unbiased between- and within-site variance
    (the shrinkage correction of Davison AC, Hinkley DV. Bootstrap Methods and their Application,
    1997, section 3.8, applied to regression residuals as in Ng, Grieve & Carpenter 2013).

    The least-squares fit of ``y`` on ``X`` over the rows ``use`` gives residuals r_ij (site i,
    participant j).  Within each stratum (arm) they are split into site means and deviations
    from them; one-way ANOVA over the sites of every arm (unbalanced: n0 = (N - sum_g sum_i
    n_i^2 / N_g) / (K - G)) estimates the within-site variance s_w^2 = SSW / (N - K) and the
    between-site variance s_b^2 = max(0, (MSB - s_w^2) / n0).  The returned values are
    X beta + r~ with

        r~_ij = rbar_g + c (rbar_i - rbar_g) + d (r_ij - rbar_i),
        d^2 = s_w^2 / (SSW / N),       c^2 = s_b^2 / (mean over sites of (rbar_i - rbar_g)^2),

    where rbar_g is the unweighted mean of arm g's site means, so that drawing sites (uniformly)
    and then participants with replacement reproduces s_b^2 between sites and s_w^2 within
    them, instead of (K-1)/K s_b^2 and about twice s_w^2.  r~ is then made orthogonal to X (its
    least-squares fit on X is subtracted), so the full-sample estimate from the returned values
    is exactly beta.  Rows outside ``use`` are returned unchanged.

    Returns the values and a dict with c, d, s2_between, s2_within.  Needs two or more sites in
    every stratum and more participants than sites (else ValueError).
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    use = np.asarray(use, bool)
    idx = np.flatnonzero(use)
    strata = np.asarray(strata)[idx]
    clusters = np.asarray(clusters)[idx]
    Xu, yu = X[idx], y[idx]
    beta = np.linalg.lstsq(Xu, yu, rcond=None)[0]
    r = yu - Xu @ beta
    # one code per (stratum, site); sites nest in strata in a cluster design
    pair = np.array([f"{a}\x1f{b}" for a, b in zip(strata, clusters)])
    sites, site_of = np.unique(pair, return_inverse=True)
    site_stratum = np.array([s.split("\x1f")[0] for s in sites])
    n_i = np.bincount(site_of).astype(float)
    rbar_i = np.bincount(site_of, weights=r) / n_i
    N, K = float(len(r)), len(sites)
    groups = np.unique(site_stratum)
    G = len(groups)
    per_group = {g: np.flatnonzero(site_stratum == g) for g in groups}
    if min(len(v) for v in per_group.values()) < 2:
        raise ValueError("the shrinkage-corrected two-stage bootstrap needs at least two sites in each arm "
                         "(with one site the between-site variance cannot be estimated)")
    if N <= K:
        raise ValueError("the shrinkage-corrected two-stage bootstrap needs more participants than sites")
    dev = r - rbar_i[site_of]
    ssw = float(np.sum(dev ** 2))
    s2_w = ssw / (N - K)
    # between sites within arms: size-weighted ANOVA (estimator) and unweighted spread (what the
    # uniform draw of sites sees)
    ssb, sum_sq_frac, spread, centre = 0.0, 0.0, 0.0, np.empty(K)
    for g, members in per_group.items():
        ng = n_i[members]
        wmean = float(np.sum(ng * rbar_i[members]) / ng.sum())
        ssb += float(np.sum(ng * (rbar_i[members] - wmean) ** 2))
        sum_sq_frac += float(np.sum(ng ** 2) / ng.sum())
        umean = float(rbar_i[members].mean())
        centre[members] = umean
        spread += float(np.sum((rbar_i[members] - umean) ** 2))
    msb = ssb / (K - G)
    n0 = (N - sum_sq_frac) / (K - G)
    s2_b = max(0.0, (msb - s2_w) / n0)
    d = np.sqrt(s2_w / (ssw / N)) if ssw > 0 else 1.0
    c = np.sqrt(s2_b / (spread / K)) if spread > 0 else 0.0
    r_new = centre[site_of] + c * (rbar_i - centre)[site_of] + d * dev
    r_new = r_new - Xu @ np.linalg.lstsq(Xu, r_new, rcond=None)[0]
    out = y.copy()
    out[idx] = Xu @ beta + r_new
    return out, dict(c=float(c), d=float(d), s2_between=s2_b, s2_within=s2_w)
