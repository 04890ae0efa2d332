"""Kenward-Roger inference in analysis.lmm against pbkrtest 0.5.2 golden files.

Every expected number comes from tests/reference/golden/kr_*.csv (made by
tests/reference/kr_golden.R from pbkrtest's vcovAdj and Lb_ddf, cross-checked there against
lmerTest's contest(ddf = "Kenward-Roger") and KRmodcomp); R is not needed to run these tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import outcomes
from analysis.config import load_config
from analysis.lmm import fit_lmm
from test_lmm import assert_close, r_name

REF = Path(__file__).parent / "reference"
DATA = REF / "datasets"
GOLDEN = REF / "golden"

RTOL_EST = 1e-5   # estimates, adjusted SEs, CIs, adjusted covariance
RTOL_DF = 1e-3    # KR df (and p-values)


def _read(name, time=None):
    d = pd.read_csv(DATA / name)
    for col in ("Subject", "site", "participant"):
        if col in d:
            d[col] = d[col].astype(str)
    return d if time is None else d[d["time"] == time]


NESTED = ("y ~ arm * time + y0", ["site", "participant"])
CASES = {
    "cluster_nested": (lambda: _read("cluster_pilot.csv"), *NESTED),
    "cluster_ancova": (lambda: _read("cluster_pilot.csv", "t1"), "y ~ arm + y0", ["site"]),
    "cluster_ancova_t2": (lambda: _read("cluster_pilot.csv", "t2"), "y ~ arm + y0", ["site"]),
    "singular": (lambda: _read("singular_pilot.csv"), *NESTED),
    "boundary": (lambda: _read("boundary_pilot.csv"), *NESTED),
    "four_site": (lambda: _read("four_site_pilot.csv"), *NESTED),
    "four_site_ancova": (lambda: _read("four_site_pilot.csv", "t2"), "y ~ arm + y0", ["site"]),
    "individual": (lambda: _read("individual_trial.csv"), "y ~ arm * time + y0", ["participant"]),
    "sleepstudy": (lambda: _read("sleepstudy.csv"), "Reaction ~ Days", ["Subject"]),
}


def _fit(case):
    data, formula, groups = CASES[case]
    return fit_lmm(data(), formula, groups, df_method="kenward_roger")


@pytest.mark.parametrize("case", list(CASES))
def test_kenward_roger_matches_pbkrtest(case):
    res = _fit(case)
    gold = pd.read_csv(GOLDEN / f"kr_{case}.csv")
    to_mine = {r_name(t): t for t in res.fixed["term"]}
    fixed = res.fixed.set_index("term")
    for _, row in gold.iterrows():
        weights = {to_mine[k]: float(w) for k, w in
                   (kv.split("=") for kv in row["weights"].split(";"))}
        out = res.contrast(weights)
        what = f"{case} {row['name']}"
        for col in ("estimate", "se", "t"):
            assert_close(out[col], row[col], RTOL_EST, 1e-8, f"{what} {col}")
        for col in ("ci_low", "ci_high"):  # a limit can be near 0: error on the SE's scale
            assert_close(out[col], row[col], 0, RTOL_EST * row["se"], f"{what} {col}")
        assert_close(out["df"], row["df"], RTOL_DF, 0, f"{what} df")
        assert_close(out["p_value"], row["p_value"], RTOL_DF, 1e-14, f"{what} p")
        # the unadjusted SE is the Satterthwaite one (model-based)
        sat = res.contrast(weights, df_method="satterthwaite")
        assert_close(sat["se"], row["se_unadjusted"], RTOL_EST, 1e-8, f"{what} se_unadjusted")
        if len(weights) == 1:  # a coefficient: the fixed-effects table uses KR too
            term = next(iter(weights))
            assert_close(fixed.loc[term, ["se", "df"]].to_numpy(), [out["se"], out["df"]],
                         1e-12, 0, f"{what} fixed table")


@pytest.mark.parametrize("case", ["cluster_nested", "singular", "four_site"])
def test_adjusted_covariance_matches_vcovadj(case):
    res = _fit(case)
    gold = pd.read_csv(GOLDEN / f"kr_{case}_vcov.csv").set_index("term")
    mine = res.vcov_kenward_roger.rename(index=r_name, columns=r_name).loc[gold.index, gold.index]
    scale = np.sqrt(np.outer(np.diag(gold), np.diag(gold)))
    assert np.max(np.abs(mine.to_numpy() - gold.to_numpy()) / scale) < RTOL_EST


def test_kenward_roger_stays_small_sample_when_the_site_variance_is_zero():
    """The point of KR for few sites: with the site variance estimated at zero the
    Satterthwaite df of the arm effect jump towards n - p, the KR df do not (golden values
    show the same; here the two methods are compared on one fit)."""
    res = _fit("singular")
    assert res.theta["site"] == 0.0
    sat = res.contrast({"arm[T.intervention]": 1}, df_method="satterthwaite")
    kr = res.contrast({"arm[T.intervention]": 1})
    assert sat["df"] > 60 and kr["df"] < 15
    assert kr["se"] > sat["se"]


def test_kenward_roger_needs_reml_and_a_known_method():
    d = _read("cluster_pilot.csv", "t1")
    with pytest.raises(ValueError, match="REML"):
        fit_lmm(d, "y ~ arm + y0", ["site"], reml=False, df_method="kenward_roger")
    with pytest.raises(ValueError, match="df_method"):
        fit_lmm(d, "y ~ arm + y0", ["site"], df_method="containment")
    res = fit_lmm(d, "y ~ arm + y0", ["site"])
    with pytest.raises(ValueError, match="df_method"):
        res.contrast({"arm[T.intervention]": 1}, df_method="z")


# --------------------------------------------------------------------------
# the pipeline: Kenward-Roger is the default for a cluster design (primary.df_method: auto)
# --------------------------------------------------------------------------

def _demo_linked() -> pd.DataFrame:
    """The demo's linked table as committed for the R references (tests/test_outcomes.py
    checks it is what the pipeline produces), in the pipeline's layout."""
    d = pd.read_csv(DATA / "demo_linked.csv").rename(columns={"participant": "participant_id"})
    d["timepoint"] = pd.Categorical(d.timepoint, categories=["baseline", "m3", "m9"], ordered=True)
    return d


def test_demo_effects_use_kenward_roger_by_default_and_match_pbkrtest(root):
    cfg = load_config(root / "config" / "config.yaml")
    assert cfg["primary"]["df_method"] == "auto" and cfg["design"]["type"] == "cluster"
    lk = _demo_linked()
    gold = pd.read_csv(GOLDEN / "kr_demo.csv")
    got = []
    for y in gold.outcome.unique():
        spec = outcomes.model_spec(cfg, y, lk)
        assert spec.df_method == "kenward_roger"
        got.append(outcomes.primary_effects(lk, spec, "m9", icc_ci=False))
        if y == "wemwbs_total":
            got.append(outcomes.primary_effects(lk, spec, "m9", analysis="complete_case",
                                                complete_case=True, icc_ci=False))
            got.append(outcomes.ancova_effects(lk, y, intervention_arm="intervention",
                                               clustered=True, primary_timepoint="m9", spec=spec))
    got = pd.concat(got).set_index(["outcome", "analysis", "timepoint"])
    for g in gold.itertuples():
        e = got.loc[(g.outcome, g.analysis, g.timepoint)]
        what = f"{g.outcome} {g.analysis} {g.timepoint}"
        assert_close(e[["estimate", "se"]].to_numpy(float), [g.estimate, g.se], RTOL_EST, 1e-10, what)
        assert_close(e.df, g.df, RTOL_DF, 0, f"{what} df")
        assert_close(e[["ci_low", "ci_high"]].to_numpy(float), [g.ci_low, g.ci_high], 0,
                     RTOL_EST * g.se, f"{what} CI")
        assert "REML; Kenward-Roger df and adjusted SE" in e.model
    # an individually randomised design keeps Satterthwaite; an explicit choice wins
    ind = dict(cfg, design=dict(cfg["design"], type="individual"),
               primary=dict(cfg["primary"], clustering=None))
    assert outcomes.model_spec(ind, "wemwbs_total", lk).df_method == "satterthwaite"
    sat = dict(cfg, primary=dict(cfg["primary"], df_method="satterthwaite"))
    spec = outcomes.model_spec(sat, "wemwbs_total", lk)
    assert spec.df_method == "satterthwaite"
    assert "REML; Satterthwaite df" in outcomes.primary_effects(lk, spec, "m9", icc_ci=False).model.iloc[0]
