"""Refits on multiply imputed data (issue 12): warm-started refits reach the cold-fit optimum,
a fit that does not converge is never pooled, and the Barnard-Rubin complete-data df is not
inflated by the odd imputation whose site variance is estimated at zero."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize as sopt

from analysis import lmm, outcomes
from analysis.lmm import fit_lmm
from analysis.mi_pool import pool

REF = Path(__file__).resolve().parent / "reference"
_spec = importlib.util.spec_from_file_location("boundary_dataset", REF / "boundary_dataset.py")
boundary_dataset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(boundary_dataset)

SPEC = outcomes.ModelSpec(outcome="score", intervention_arm="intervention")
FORMULA = "y ~ time + trt_1 + trt_2 + y_bl"
GROUPS = ["site_id", "participant_id"]


def _best_deviance(core) -> float:
    """Lowest REML criterion found by an optimiser independent of analysis.lmm's: L-BFGS-B
    over the variances (theta^2 >= 0, where the gradient at zero is not degenerate), from
    several starts."""
    f = lambda v: core.profiled_deviance(np.sqrt(np.maximum(v, 0.0)))  # noqa: E731
    runs = [sopt.minimize(f, np.full(core.K, s), method="L-BFGS-B", bounds=[(0, None)] * core.K,
                          options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
            for s in (1e-3, 0.05, 1.0)]
    return min(r.fun for r in runs)


def _warm_vs_cold(n_pilots: int, first_seed: int):
    """For each simulated 12-site pilot (small site variance), 20 imputations; each imputed
    data set is fitted cold and warm-started from the previous imputation's fit (as
    pooled_effects does). Returns per-data-set differences and the cold fits' gaps to the
    independent optimiser."""
    dev_diff, est_diff, gap, n_zero = [], [], [], 0
    for k in range(n_pilots):
        lk = boundary_dataset.linked(boundary_dataset.simulate(seed=first_seed + k))
        _, imps = outcomes.multiply_impute(lk, SPEC, m=20, iterations=5, seed=first_seed + k)
        prev = None
        for imp in imps:
            d = outcomes._long_from_wide(imp, lk, SPEC)
            cold = fit_lmm(d, FORMULA, GROUPS)
            warm = fit_lmm(d, FORMULA, GROUPS, start=prev)
            prev = [warm.theta[g] for g in GROUPS]
            assert cold.converged and warm.converged
            n_zero += cold.theta["site_id"] == 0.0
            dev_diff.append(warm.reml_criterion - cold.reml_criterion)
            est_diff.append(warm.contrast({"trt_2": 1})["estimate"]
                            - cold.contrast({"trt_2": 1})["estimate"])
            gap.append(cold.reml_criterion - _best_deviance(cold._core))
    return np.array(dev_diff), np.array(est_diff), np.array(gap), n_zero


def _check_refits(n_pilots, first_seed):
    dev_diff, est_diff, gap, n_zero = _warm_vs_cold(n_pilots, first_seed)
    assert len(dev_diff) == 20 * n_pilots
    # the setting really is near the boundary: some fits at zero site variance, most not
    assert 0 < n_zero < len(dev_diff)
    # same optimum (the old optimiser's warm refits differed by up to ~1.8 in the criterion)
    assert np.max(np.abs(dev_diff)) < 1e-7
    assert np.max(np.abs(est_diff)) < 1e-5
    # and that optimum is the minimum: no optimiser finds a lower criterion
    assert np.max(gap) < 1e-7


def test_warm_and_cold_refits_agree_on_200_imputed_data_sets():
    """10 pilots x 20 imputations = 200 imputed data sets (~30 s)."""
    _check_refits(10, first_seed=1000)


@pytest.mark.slow
def test_warm_and_cold_refits_agree_long():
    """60 pilots x 20 imputations = 1,200 imputed data sets."""
    _check_refits(60, first_seed=5000)


def test_pooled_effects_equals_pooling_cold_fits():
    """The pipeline's pooled result (warm-started refits) equals Rubin's rules applied to
    cold fits of the same imputed data sets."""
    lk = boundary_dataset.linked(boundary_dataset.simulate(seed=1002))
    w, imps = outcomes.multiply_impute(lk, SPEC, m=20, iterations=5, seed=1002)
    got = outcomes.pooled_effects(lk, SPEC, w, imps, "t2").set_index("timepoint")
    for tp, term in (("t1", "trt_1"), ("t2", "trt_2")):
        cs = [fit_lmm(outcomes._long_from_wide(imp, lk, SPEC), FORMULA, GROUPS).contrast({term: 1})
              for imp in imps]
        p = pool([c["estimate"] for c in cs], [c["se"] ** 2 for c in cs],
                 df_complete=float(np.median([c["df"] for c in cs])))
        assert got.loc[tp, "estimate"] == pytest.approx(p["qbar"], rel=1e-7)
        assert got.loc[tp, "se"] == pytest.approx(p["se"], rel=1e-6)
        assert got.loc[tp, "df"] == pytest.approx(p["df"], rel=1e-4)


# --------------------------------------------------------------------------
# a fit that does not converge is never pooled silently
# --------------------------------------------------------------------------

def _fake_optimiser(fail_when):
    real = lmm._optimise

    def fake(core, warnings, group_names, start=None):
        theta, fval, converged = real(core, warnings, group_names, start)
        if fail_when(start):
            warnings.append("The optimiser did not converge: (simulated failure)")
            return theta, fval, False
        return theta, fval, converged
    return fake


def test_warm_start_that_fails_is_refitted_from_cold(monkeypatch):
    d = outcomes._long_from_wide(
        outcomes.multiply_impute(boundary_dataset.linked(boundary_dataset.simulate(seed=1000)),
                                 SPEC, m=1, iterations=2, seed=1)[1][0],
        boundary_dataset.linked(boundary_dataset.simulate(seed=1000)), SPEC)
    cold = fit_lmm(d, FORMULA, GROUPS)
    monkeypatch.setattr(lmm, "_optimise", _fake_optimiser(lambda start: start is not None))
    warm = fit_lmm(d, FORMULA, GROUPS, start=[0.0, 0.3])
    assert warm.converged
    assert not any("did not converge" in m for m in warm.warnings)
    assert warm.reml_criterion == pytest.approx(cold.reml_criterion, rel=1e-12)


def test_fit_that_does_not_converge_stops_pooling_with_a_clear_message(monkeypatch):
    lk = boundary_dataset.linked(boundary_dataset.simulate(seed=1000))
    w, imps = outcomes.multiply_impute(lk, SPEC, m=3, iterations=2, seed=1)
    calls = {"n": 0}

    def fail_third(start):
        calls["n"] += 1
        return calls["n"] >= 2  # the 2nd imputation's warm fit fails, and so does its cold refit
    monkeypatch.setattr(lmm, "_optimise", _fake_optimiser(fail_third))
    with pytest.raises(RuntimeError, match=r"multiple imputation of 'score': the model did not "
                       r"converge on imputed data set 2 of 3.*cannot be pooled.*simulated failure"):
        outcomes.pooled_effects(lk, SPEC, w, imps, "t2")


# --------------------------------------------------------------------------
# complete-data df: one boundary fit must not inflate a 4-site pilot's pooled df
# --------------------------------------------------------------------------

def _four_site_case():
    """A 4-site pilot (2 sites per arm) and 20 completed data sets made by a simple seeded
    regression imputation (independent of analysis.mi): one of them gives a fit with the site
    variance at zero, whose Satterthwaite df (~190) dwarf the others' (3-7)."""
    lk = boundary_dataset.linked(boundary_dataset.simulate(seed=4, n_sites=4, per_site=15,
                                                           site_sd=1.0))
    w = outcomes.wide_frame(lk, SPEC)
    rng = np.random.default_rng(4)
    imps = []
    for _ in range(20):
        imp = w.copy()
        X = np.column_stack([np.ones(len(imp)), imp.y__baseline, imp.treat])
        for c in ("y__t1", "y__t2"):
            obs = imp[c].notna().to_numpy()
            b, *_ = np.linalg.lstsq(X[obs], imp.loc[obs, c], rcond=None)
            sd = np.std(imp.loc[obs, c] - X[obs] @ b, ddof=3)
            imp.loc[~obs, c] = (X[~obs] @ b + rng.normal(0, sd, (~obs).sum())).round(2)
        imps.append(imp)
    return lk, w, imps


def test_four_site_pooled_df_not_inflated_by_one_boundary_fit():
    lk, w, imps = _four_site_case()
    cs = [fit_lmm(outcomes._long_from_wide(imp, lk, SPEC), FORMULA, GROUPS) for imp in imps]
    dfs = np.array([c.contrast({"trt_2": 1})["df"] for c in cs])
    at_zero = np.array([c.theta["site_id"] == 0.0 for c in cs])
    # the case is what it is meant to be: one boundary fit with large df, the rest small
    assert at_zero.sum() == 1 and dfs[at_zero][0] > 100
    assert np.all(dfs[~at_zero] < 10)
    got = outcomes.pooled_effects(lk, SPEC, w, imps, "t2").set_index("timepoint").loc["t2"]
    est = [c.contrast({"trt_2": 1})["estimate"] for c in cs]
    var = [c.contrast({"trt_2": 1})["se"] ** 2 for c in cs]
    # pooled df as Barnard-Rubin (mice-checked pool()) with the median as complete-data df
    assert got["df"] == pytest.approx(pool(est, var, df_complete=float(np.median(dfs)))["df"],
                                      rel=1e-6)
    # not inflated: no larger than the df of the non-boundary fits ...
    assert got["df"] <= dfs[~at_zero].max()
    # ... whereas the mean rule would have given several times more
    assert pool(est, var, df_complete=float(np.mean(dfs)))["df"] > 2.5 * got["df"]
