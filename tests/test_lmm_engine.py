"""The block-wise mixed-model engine (analysis.lmm._NestedCore) against the dense-Schur engine
it replaced for nested random intercepts (issue [speed]).

* refits of 240 random data sets (tests/reference/lmm_random_cases.py: participant within
  site, site alone, participant alone; zero, tiny and large site variances) against
  tests/reference/golden/lmm_engine_v1.csv, written by the previous engine (commit cc61ce4);
* the deviance, Var(beta-hat) and the Kenward-Roger pieces of the two engines at the same
  variance parameters (the dense engine is kept for crossed designs);
* the exact derivatives against differences.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest

from analysis import lmm
from analysis.lmm import fit_lmm

REF = Path(__file__).resolve().parent / "reference"
_spec = importlib.util.spec_from_file_location("lmm_random_cases", REF / "lmm_random_cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)


def _cores(seed: int):
    """(dense core, block-wise core) for random case ``seed`` (None if rank deficient)."""
    d, formula, groups = cases.case(seed)
    y, X = patsy.dmatrices(formula, d, return_type="dataframe")
    X = X.to_numpy(float)
    y = y.to_numpy(float).ravel()
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return None
    codes, nlevels = [], []
    for g in groups:
        c, lev = pd.factorize(d[g], sort=False)
        codes.append(c)
        nlevels.append(len(lev))
    return lmm._Core(X, y, codes, nlevels, True), lmm._make_core(X, y, codes, nlevels, True)


def _compare_with_previous_engine(seeds):
    old = pd.read_csv(REF / "golden" / "lmm_engine_v1.csv")
    old["error"] = old.error.fillna("")
    old = old[old.case.isin(seeds)]
    new = pd.DataFrame([r for s in seeds for r in cases.fit_rows(s)])
    new["error"] = new.error.fillna("")
    assert list(new.case) == list(old.case) and list(new.error) == list(old.error)
    ok = (old.error == "").to_numpy()
    o, n = old[ok], new[ok]

    def rel(col, floor):
        a, b = n[col].to_numpy(float), o[col].to_numpy(float)
        return np.nan_to_num(np.abs(a - b) / np.maximum(np.abs(b), floor))

    # REML criterion: same optimum (both engines polish to ~1e-12)
    assert np.max(rel("reml", 1.0)) < 1e-12
    # theta is determined only to ~sqrt(rounding) along the flat directions of the deviance
    assert np.max(np.abs(n.theta_1.to_numpy() - o.theta_1.to_numpy())) < 1e-5
    assert np.nanmax(np.abs(n.theta_2.to_numpy() - o.theta_2.to_numpy())) < 1e-5
    for col in ("estimate", "se", "se_kr"):
        assert np.max(rel(col, 1e-3)) < 1e-5, col
    # Satterthwaite df: the old engine's numerical Hessian was noisy for tiny theta; the new
    # one is exact
    assert np.max(rel("df", 1e-8)) < 1e-3
    assert np.max(rel("df_kr", 1e-8)) < 1e-5
    assert (n.converged.astype(bool).to_numpy() == o.converged.astype(bool).to_numpy()).all()
    assert (n.singular.astype(bool).to_numpy() == o.singular.astype(bool).to_numpy()).all()


def test_block_engine_reproduces_previous_engine_on_random_data():
    """A quarter of the 240 cases (every structure, boundary and interior optima)."""
    _compare_with_previous_engine(list(range(0, cases.N_CASES, 4)))


@pytest.mark.slow
def test_block_engine_reproduces_previous_engine_on_all_random_cases():
    _compare_with_previous_engine(list(range(cases.N_CASES)))


@pytest.mark.parametrize("seed", range(0, 45))
def test_block_core_equals_dense_core(seed):
    pair = _cores(seed)
    if pair is None:
        pytest.skip("rank-deficient design")
    dense, block = pair
    assert isinstance(block, lmm._NestedCore)
    rng = np.random.default_rng(seed)
    K = block.K
    for theta in (rng.uniform(0, 2, K), np.r_[0.0, rng.uniform(0, 2, K - 1)],
                  rng.uniform(0, 0.01, K)):
        assert block.profiled_deviance(theta) == pytest.approx(dense.profiled_deviance(theta),
                                                               rel=1e-13)
        la, lm_, beta, r2, Minv = dense.pls(theta)
        la2, lm2, beta2, r22, Minv2 = block.pls(theta)
        np.testing.assert_allclose([la2, lm2, r22], [la, lm_, r2], rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(beta2, beta, rtol=1e-10, atol=1e-12 * np.abs(beta).max())
        np.testing.assert_allclose(Minv2, Minv, rtol=1e-9, atol=1e-11 * np.abs(Minv).max())
        variances = np.append(1.7**2 * theta**2, 1.7**2)
        phi = 1.7**2 * Minv
        a = lmm._kenward_roger_pieces(dense.X, dense.Z, variances, phi)
        b = block.kr_pieces(variances, phi)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-9, atol=1e-12 * np.abs(a[0]).max())
        for x, y in zip(b[1], a[1]):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
        np.testing.assert_allclose(b[2], a[2], rtol=1e-9, atol=1e-12 * np.abs(a[2]).max())


@pytest.mark.parametrize("seed", range(0, 30))
def test_exact_derivatives(seed):
    pair = _cores(seed)
    if pair is None:
        pytest.skip("rank-deficient design")
    _, core = pair
    rng = np.random.default_rng(seed)
    K = core.K
    for theta in (rng.uniform(0.05, 2, K), np.r_[0.0, rng.uniform(0.05, 2, K - 1)]):
        dev, g, H = core.theta_derivs(theta)
        assert dev == pytest.approx(core.profiled_deviance(theta), rel=1e-14)
        # Hessian = differences of the exact gradient; gradient = differences of the deviance
        for k in range(K):
            h = 1e-5 * max(0.01, theta[k])
            e = np.zeros(K)
            e[k] = h
            gp, gm = core.theta_derivs(theta + e)[1], core.theta_derivs(theta - e)[1]
            np.testing.assert_allclose(H[:, k], (gp - gm) / (2 * h), rtol=1e-6,
                                       atol=1e-6 * (1 + np.abs(H).max()))
        _, gn, _ = lmm._hessian(core.profiled_deviance, theta, d=1e-3, min_step=1e-4)
        np.testing.assert_allclose(g, gn, rtol=1e-6, atol=1e-6 * (1 + np.abs(g).max()))
        # the variance slope is the gradient in theta^2
        sl = core.variance_slope(theta)
        free = theta > 0
        np.testing.assert_allclose(sl[free] * 2 * theta[free], g[free], rtol=1e-12)
        # the Satterthwaite pieces against lmerTest-style numerical derivatives (interior
        # only: at theta_k = 0 the numerical second differences are rounding noise)
        if not np.all(theta > 0):
            continue
        vp = np.append(theta, 1.3)
        _, _, Hn = lmm._hessian(core.deviance_vp, vp, d=1e-2)
        np.testing.assert_allclose(core.vp_hessian(vp), Hn, rtol=1e-5,
                                   atol=1e-6 * np.abs(Hn).max())
        Jn = lmm._jacobian(core.cov_beta, vp, d=1e-3)
        np.testing.assert_allclose(core.cov_beta_jacobian(vp), Jn, rtol=1e-6,
                                   atol=1e-8 * np.abs(Jn).max())


@pytest.mark.parametrize("seed", [0, 1, 2, 6, 9, 13, 16, 22])
@pytest.mark.parametrize("df_method", ["satterthwaite", "kenward_roger"])
def test_fixed_table_equals_contrasts(seed, df_method):
    d, formula, groups = cases.case(seed)
    res = fit_lmm(d, formula, groups, df_method=df_method)
    for i, row in res.fixed.iterrows():
        c = res.contrast(np.eye(len(res.fixed))[i])
        for col in ("se", "df", "t", "p_value", "ci_low", "ci_high"):
            assert row[col] == pytest.approx(c[col], rel=1e-13, abs=1e-300), col


@pytest.mark.parametrize("seed", [0, 3, 6, 9, 1, 4, 2, 5])
def test_forced_dense_engine_gives_the_same_fit(seed, monkeypatch):
    d, formula, groups = cases.case(seed)
    block = fit_lmm(d, formula, groups)
    monkeypatch.setattr(lmm, "_FORCE_DENSE", True)
    dense = fit_lmm(d, formula, groups)
    assert isinstance(dense._core, lmm._Core) and isinstance(block._core, lmm._NestedCore)
    assert block.reml_criterion == pytest.approx(dense.reml_criterion, rel=1e-12)
    np.testing.assert_allclose(block.fixed.estimate, dense.fixed.estimate, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(block.fixed.se, dense.fixed.se, rtol=1e-6)
    np.testing.assert_allclose(block.fixed.df, dense.fixed.df, rtol=1e-3)


def test_structures_that_use_the_block_engine():
    rng = np.random.default_rng(1)
    site = np.repeat(np.arange(6), 20)
    part = np.repeat(np.arange(30), 4)  # 5 participants of 4 rows in each site of 20 rows
    d = pd.DataFrame({"y": rng.normal(size=120), "site": site.astype(str),
                      "participant": part.astype(str), "ward": (np.arange(120) % 7).astype(str)})
    assert isinstance(fit_lmm(d, "y ~ 1", ["site", "participant"])._core, lmm._NestedCore)
    assert isinstance(fit_lmm(d, "y ~ 1", ["participant", "site"])._core, lmm._NestedCore)
    assert isinstance(fit_lmm(d, "y ~ 1", ["site"])._core, lmm._NestedCore)
    # crossed (participants in several wards) and three factors: the general engine
    crossed = fit_lmm(d, "y ~ 1", ["participant", "ward"])
    assert isinstance(crossed._core, lmm._Core)
    assert isinstance(fit_lmm(d, "y ~ 1", ["site", "participant", "ward"])._core, lmm._Core)
