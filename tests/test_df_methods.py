"""Coverage of the default small-sample method for cluster designs (Kenward-Roger), on the
simulated few-site pilots of benchmarks/df_methods_simulation.py (same seeds, so these are
subsets of the figures in docs/methods.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

_path = Path(__file__).resolve().parent.parent / "benchmarks" / "df_methods_simulation.py"
_spec = importlib.util.spec_from_file_location("df_methods_simulation", _path)
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)


def _fits(sites, icc, reps):
    rows = [r for rep in range(reps)
            for r in sim.one_trial(sim.scenario_seed(sites, icc, rep), sites, icc, ("repeated",))]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def _check(sites, icc, reps, lo, hi):
    f = _fits(sites, icc, reps)
    assert f["converged"].all()
    err = np.abs(f["estimate"] - sim.TRUE_EFFECT)
    half_kr = stats.t.ppf(0.975, f["df_kr"]) * f["se_kr"]
    half_s = stats.t.ppf(0.975, f["df_s"]) * f["se_s"]
    cover = np.mean(err <= half_kr)
    assert lo <= cover <= hi, cover
    # the bounds have power on these very draws: a KR interval 10% too narrow or too wide fails
    assert not lo <= np.mean(err <= 0.9 * half_kr) <= hi
    assert not lo <= np.mean(err <= 1.1 * half_kr) <= hi
    # why KR is the default: where the site variance is estimated at zero, Satterthwaite's
    # df jump towards n - p and its intervals cover clearly less
    zero = f["site_zero"]
    assert zero.sum() > 0.05 * reps
    assert np.mean(err[zero] <= half_kr[zero]) > np.mean(err[zero] <= half_s[zero]) + 0.02


def test_kenward_roger_coverage_8_sites_short():
    """800 pilots with 8 sites, site ICC 0.05, repeated-measures model (about 70 s)."""
    _check(8, 0.05, 800, 0.93, 0.965)


@pytest.mark.slow
@pytest.mark.parametrize("sites", [8, 12])
def test_kenward_roger_coverage_long(sites):
    _check(sites, 0.05, 2000, 0.94, 0.97 if sites == 12 else 0.965)
