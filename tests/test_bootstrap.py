"""The vectorised stratified and two-stage bootstrap (analysis.bootstrap).

Checked against sampling distributions known in closed form (the ideal bootstrap variance of
a mean under each scheme), against statsmodels OLS on explicitly resampled rows, and for
reproducibility.
"""

import numpy as np
import pytest
import statsmodels.api as sm

from analysis import bootstrap as boot

B = 10_000


def _means(values, strata_mask):
    def stat(W):
        w = W * strata_mask
        return ((w @ values) / w.sum(axis=1))[:, None]
    return stat


def test_participant_bootstrap_variance_matches_ideal_bootstrap():
    # ideal bootstrap variance of a stratum mean = plug-in variance (divisor n) / n;
    # the difference of two independent stratum means adds the two.
    rng = np.random.default_rng(1)
    x = np.r_[rng.gamma(2.0, 300.0, 40), rng.gamma(2.0, 400.0, 55)]  # skewed, like costs
    arm = np.r_[np.zeros(40), np.ones(55)]

    def diff(W):
        w1, w0 = W * arm, W * (1 - arm)
        return ((w1 @ x) / w1.sum(1) - (w0 @ x) / w0.sum(1))[:, None]

    reps = boot.bootstrap(diff, len(x), arm, replicates=B, seed=11)[:, 0]
    exact = np.var(x[arm == 1]) / 55 + np.var(x[arm == 0]) / 40
    # the variance estimate from B draws has relative SE about sqrt(2/B) = 1.4%
    assert abs(reps.var(ddof=1) / exact - 1) < 4 * np.sqrt(2 / B)
    # and the bootstrap mean is unbiased for the observed difference
    obs = x[arm == 1].mean() - x[arm == 0].mean()
    assert abs(reps.mean() - obs) < 4 * np.sqrt(exact / B)


def test_two_stage_variance_matches_closed_form():
    # K equal clusters of size m, sites then participants both with replacement:
    # Var(mean*) = (1/K) [ (1/K) sum (xbar_i - xbar)^2 + (1/(K m)) sum_i s2_i ],
    # s2_i the plug-in within-site variance.
    rng = np.random.default_rng(2)
    K, m = 8, 15
    site = np.repeat(np.arange(K), m)
    x = rng.normal(0, 1.0, K)[site] + rng.normal(0, 2.0, K * m)
    arm = np.zeros(K * m)
    reps = boot.bootstrap(_means(x, np.ones(K * m)), K * m, arm, site, replicates=B, seed=5,
                          two_stage=True)[:, 0]
    xbar_i = x.reshape(K, m).mean(1)
    s2_i = x.reshape(K, m).var(1)
    exact = (np.mean((xbar_i - xbar_i.mean()) ** 2) + np.mean(s2_i) / m) / K
    assert abs(reps.var(ddof=1) / exact - 1) < 4 * np.sqrt(2 / B)


def test_cluster_bootstrap_se_exceeds_naive_when_icc_positive():
    rng = np.random.default_rng(3)
    K, m = 12, 25
    site = np.repeat(np.arange(K), m)
    arm = (site % 2).astype(float)
    y = 1.0 * rng.normal(size=K)[site] + rng.normal(size=K * m)  # ICC 0.5

    def diff(W):
        w1, w0 = W * arm, W * (1 - arm)
        return ((w1 @ y) / w1.sum(1) - (w0 @ y) / w0.sum(1))[:, None]

    naive = boot.bootstrap(diff, len(y), arm, replicates=2000, seed=1)[:, 0].std()
    clus = boot.bootstrap(diff, len(y), arm, site, replicates=2000, seed=1, two_stage=True)[:, 0].std()
    assert clus > 2 * naive  # design effect 1 + (m - 1) ICC = 13 -> SE ratio about 3.6


def test_same_seed_same_replicates_and_strata_sizes_kept():
    arm = np.r_[np.zeros(30), np.ones(20)]
    site = np.r_[np.repeat([0, 1, 2], 10), np.repeat([3, 4], 10)]
    a = np.concatenate(list(boot.count_blocks(50, arm, site, replicates=1200, seed=9, two_stage=True)))
    b = np.concatenate(list(boot.count_blocks(50, arm, site, replicates=1200, seed=9, two_stage=True)))
    c = np.concatenate(list(boot.count_blocks(50, arm, site, replicates=1200, seed=10, two_stage=True)))
    assert a.shape == (1200, 50)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    p = np.concatenate(list(boot.count_blocks(50, arm, replicates=300, seed=1, two_stage=False)))
    assert (p[:, arm == 0].sum(1) == 30).all() and (p[:, arm == 1].sum(1) == 20).all()
    # two-stage: each replicate draws 3 control sites and 2 intervention sites of 10
    assert (a[:, arm == 0].sum(1) == 30).all() and (a[:, arm == 1].sum(1) == 20).all()
    # a participant is only ever drawn together with its own site's members
    assert a.min() >= 0 and a.max() <= 30


def test_blocks_hold_at_most_cells_counts_for_large_trials():
    """Above CELLS / 500 participants a block holds fewer replicates (memory bounded whatever n),
    every replicate is still a valid two-stage draw, and the block size depends on n only."""
    n = 35_000  # 35 sites of 1,000: 479 replicates per block
    site = np.arange(n) // 1000
    arm = site % 2
    blocks = list(boot.count_blocks(n, arm, site, replicates=1000, seed=3, two_stage=True))
    sizes = [len(b) for b in blocks]
    assert sizes == [boot.CELLS // n, boot.CELLS // n, 1000 - 2 * (boot.CELLS // n)]
    assert all(b.size <= boot.CELLS for b in blocks)
    a = np.concatenate(blocks)
    assert a.shape == (1000, n) and (a.sum(1) % 1000 == 0).all()  # whole sites of 1,000 drawn
    again = np.concatenate(list(boot.count_blocks(n, arm, site, replicates=1000, seed=3, two_stage=True)))
    assert np.array_equal(a, again)
    small = list(boot.count_blocks(50, np.repeat([0, 1], 25), replicates=1200, seed=1, two_stage=False))
    assert [len(b) for b in small] == [500, 500, 200]


def test_weighted_ols_equals_statsmodels_on_resampled_rows():
    rng = np.random.default_rng(4)
    n = 60
    X = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=n)])
    y = X @ [1.0, 0.5, -2.0] + rng.normal(size=n)
    use = rng.random(n) > 0.2
    counts = next(boot.count_blocks(n, X[:, 1], replicates=3, seed=2, two_stage=False)).astype(float)
    got = boot.weighted_ols(X, y, counts, use)
    for r in range(3):
        rows = np.repeat(np.arange(n), counts[r].astype(int))
        rows = rows[use[rows]]
        ref = sm.OLS(y[rows], X[rows]).fit().params
        np.testing.assert_allclose(got[r], ref, rtol=1e-10, atol=1e-12)


def test_two_stage_needs_clusters():
    with pytest.raises(ValueError, match="cluster"):
        next(boot.count_blocks(4, [0, 0, 1, 1], None, replicates=2, seed=0, two_stage=True))
