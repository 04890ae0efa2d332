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
  Grieve R, Carpenter JR. Stata J 2013;13:141).  No shrinkage correction is applied: with
  replacement at both stages the bootstrap variance of a mean includes the within-site
  variance twice over (once through the site means), so intervals are slightly conservative,
  the safer error with the few sites of a pilot.

Replicates are drawn in fixed blocks from one ``numpy.random.Generator`` seeded with the
trial seed, so the same seed and data give the same replicates, whatever statistic is computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from analysis import progress

BLOCK = 500  # replicates per block; fixed so that results never depend on memory settings


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
    """
    strata = np.asarray(strata)
    if len(strata) != n:
        raise ValueError("strata must have one label per participant")
    if two_stage and clusters is None:
        raise ValueError("the two-stage bootstrap needs a cluster (site) label per participant")
    groups = _groups(strata, np.asarray(clusters) if two_stage else None)
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
    """Apply ``statistic`` (counts (b, n) -> array (b, k)) to every replicate; returns (B, k)."""
    parts = [np.asarray(statistic(c.astype(float)))
             for c in count_blocks(n, strata, clusters, replicates=replicates, seed=seed,
                                   two_stage=two_stage)]
    return np.concatenate(parts, axis=0)


def weighted_ols(X: np.ndarray, y: np.ndarray, weights: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """Least-squares coefficients for many weightings at once.

    ``X`` (n, p), ``y`` (n,), ``weights`` (b, n) (bootstrap counts; ones for the point
    estimate), ``use`` (n,) boolean: rows that enter (complete cases).  Returns (b, p).
    Solves the normal equations (X'WX) beta = X'Wy with one matrix product per block.
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
