"""analysis.propensity against R (glm, hand-made weights, survey::svyglm: golden files from
tests/reference/propensity_golden.R on datasets/propensity_pilot.csv), the E-value's published
example, and a simulation with known confounding (analysis.simulate_designs.cpi_quasi_people):
the unweighted comparison is biased, the weighted ones recover the true effect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import propensity as P
from analysis.simulate_designs import CpiQuasiParameters, cpi_quasi_people, cpi_quasi_sites

REF = Path(__file__).parent / "reference"
COVS = ["client_group", "age", "sex"]
TOL = 1e-6


@pytest.fixture(scope="module")
def pilot() -> pd.DataFrame:
    return pd.read_csv(REF / "datasets" / "propensity_pilot.csv")


@pytest.fixture(scope="module")
def golden() -> dict[str, pd.DataFrame]:
    return {k: pd.read_csv(REF / "golden" / f"propensity_{k}.csv", keep_default_na=True)
            for k in ("model", "weights", "balance", "effects", "evalue")}


def _weights(pilot, estimand, trim=0.0):
    ps = P.propensity_scores(pilot, "treated", COVS)
    return P.ps_weights(ps, pilot.treated, estimand, trim=trim)


def test_propensity_model_matches_glm(pilot, golden):
    ours = P.propensity_model(pilot, "treated", COVS)
    ref = golden["model"]
    assert len(ours) == len(ref)
    # same order: intercept, client_group levels after the first (sorted), age, sex
    np.testing.assert_allclose(ours.estimate, ref.estimate, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.se, ref.se, rtol=0, atol=TOL)
    assert list(ours.term) == ["(Intercept)", "client_group[mental_health]", "client_group[older_adults]", "age",
                               "sex[male]"]


@pytest.mark.parametrize("estimand,column,trim", [("ATT", "ATT", 0.0), ("ATE", "ATE", 0.0),
                                                  ("overlap", "overlap", 0.0), ("ATE", "ATE_trim05", 0.05)])
def test_weights_match_r(pilot, golden, estimand, column, trim):
    w = _weights(pilot, estimand, trim)
    np.testing.assert_allclose(w.ps, golden["weights"].ps, rtol=0, atol=TOL)
    np.testing.assert_allclose(w.weight, golden["weights"][column], rtol=0, atol=TOL)
    if trim:
        assert w.trimmed.sum() == (golden["weights"][column] == 0).sum() > 0


@pytest.mark.parametrize("estimand", ["ATT", "ATE", "overlap"])
def test_balance_matches_r(pilot, golden, estimand):
    w = _weights(pilot, estimand)
    ours = P.balance_table(pilot, pilot.treated, COVS + ["y_bl"], w.weight, estimand=estimand)
    ref = golden["balance"][golden["balance"].estimand == estimand].fillna({"level": ""})
    m = ours.merge(ref, on=["covariate", "level"], suffixes=("", "_r"), validate="1:1")
    assert len(m) == len(ours) == len(ref) == 7
    for c in ("smd_before", "smd_after", "variance_ratio_before", "variance_ratio_after"):
        np.testing.assert_allclose(m[c].astype(float), m[f"{c}_r"].astype(float), rtol=0, atol=TOL)


def test_overlap_weights_balance_the_score_covariates_exactly(pilot):
    """Overlap weights with a logistic score give exact mean balance on every covariate of the
    score model (Li, Morgan & Zaslavsky 2018): a property check independent of R."""
    w = _weights(pilot, "overlap")
    b = P.balance_table(pilot, pilot.treated, COVS, w.weight, estimand="overlap")
    assert b.smd_after.abs().max() < 1e-8
    assert b.smd_before.abs().max() > 0.3


@pytest.mark.parametrize("weights", ["unweighted", "ATT", "ATE", "overlap", "ATE_trim05"])
@pytest.mark.parametrize("adjustment", ["baseline", "full"])
def test_weighted_effect_matches_svyglm(pilot, golden, weights, adjustment):
    if weights == "unweighted":
        w = None
    else:
        est, trim = ("ATE", 0.05) if weights == "ATE_trim05" else (weights, 0.0)
        w = _weights(pilot, est, trim).weight
    covs = ["y_bl"] + (COVS if adjustment == "full" else [])
    ours = P.weighted_effect(pilot, "y", "treated", covs, w, "site_id")
    ref = golden["effects"].set_index(["weights", "adjustment"]).loc[(weights, adjustment)]
    for k in ("estimate", "se", "df", "ci_low", "ci_high"):
        assert ours[k] == pytest.approx(ref[k], abs=TOL), k
    assert ours["n"] == ref["n"]


def test_e_value_matches_r_and_the_published_example(golden):
    for r in golden["evalue"].itertuples():
        ours = P.e_value(r.d, r.d_ci_low, r.d_ci_high)
        assert ours["rr_approx"] == pytest.approx(r.rr_approx, abs=TOL)
        assert ours["e_value"] == pytest.approx(r.e_value, abs=TOL)
        assert ours["e_value_ci"] == pytest.approx(r.e_value_ci, abs=TOL)
    # VanderWeele & Ding 2017: observed RR 3.9 (95% CI 1.8 to 8.7) -> E-values 7.26 and 3.0
    assert P.e_value_rr(3.9) == pytest.approx(7.26, abs=0.005)
    assert P.e_value_rr(1.8) == pytest.approx(3.0, abs=0.005)
    assert P.e_value_rr(1 / 3.9) == pytest.approx(P.e_value_rr(3.9))
    assert P.e_value_rr(1.0) == 1.0


def test_refusals(pilot):
    ps = P.propensity_scores(pilot, "treated", COVS)
    with pytest.raises(ValueError, match="estimand must be one of ATT, ATE, overlap"):
        P.ps_weights(ps, pilot.treated, "ATC")
    with pytest.raises(ValueError, match="trim"):
        P.ps_weights(ps, pilot.treated, "ATE", trim=0.6)
    sep = pilot.assign(grp=np.where(pilot.treated == 1, "a", "b"))
    with pytest.raises(ValueError, match="separation"):
        P.propensity_scores(sep, "treated", ["grp"])
    with pytest.raises(ValueError, match="missing"):
        P.propensity_scores(pilot.assign(age=pilot.age.where(pilot.index > 0)), "treated", COVS)
    with pytest.raises(ValueError, match="cannot support"):
        P.weighted_effect(pilot[pilot.site_id.isin(["A01", "A02", "A07"])], "y", "treated", ["y_bl"] + COVS,
                          None, "site_id")


def test_love_plot_is_a_deterministic_png(pilot):
    w = _weights(pilot, "ATT")
    b = P.balance_table(pilot, pilot.treated, COVS, w.weight)
    png = P.love_plot_png(b, labels={"age": "Age"})
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == P.love_plot_png(b, labels={"age": "Age"})


# ------------------------------------------------------------------- simulation, known confounding


def _simulate(replicates: int, seed: int, per_site: float):
    """Replicates of the example's confounding structure (allocation by client group, younger
    clients in intervention agencies, change depending on client group and age) with the
    continuous latent outcome, whose true effect is effect_latent exactly for every estimand.
    The outcome model adjusts for the baseline value only, so any adjustment for client group
    and age comes from the weights."""
    p = CpiQuasiParameters(recruited_per_site=per_site)
    est = {k: [] for k in ("unweighted", "ATT", "ATE", "overlap")}
    cover = {k: [] for k in est}
    for r in range(replicates):
        rng = np.random.default_rng([seed, r])
        d = cpi_quasi_people(rng, p, cpi_quasi_sites(rng, p)).rename(columns={"eta_m12": "y",
                                                                             "eta_baseline": "y_bl"})
        ps = P.propensity_scores(d, "treated", ["client_group", "age"])
        for k in est:
            w = None if k == "unweighted" else P.ps_weights(ps, d.treated, k).weight
            e = P.weighted_effect(d, "y", "treated", ["y_bl"], w, "site_id")
            est[k].append(e["estimate"])
            cover[k].append(e["ci_low"] <= p.effect_latent <= e["ci_high"])
    bias = {k: float(np.mean(v) - p.effect_latent) for k, v in est.items()}
    mcse = {k: float(np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in est.items()}
    return bias, mcse, {k: float(np.mean(v)) for k, v in cover.items()}


def test_weighting_removes_known_confounding():
    """200 example-sized comparisons (14 agencies, about 210 participants; measured: unweighted
    bias +0.437 (MC SE 0.006), coverage 50%; weighted ATT +0.002 (0.008), ATE +0.009 (0.007),
    overlap +0.001 (0.005), coverage 98.5-100%, on a true effect of 0.25)."""
    bias, mcse, cover = _simulate(200, 11, 15.0)
    assert bias["unweighted"] > 0.3 and cover["unweighted"] < 0.7  # badly confounded
    for k in ("ATT", "ATE", "overlap"):
        # within 3 Monte Carlo SEs of the truth, or within 10% of the confounding bias (finite-sample
        # bias of inverse-probability weights with few intervention participants in some strata)
        assert abs(bias[k]) < max(3 * mcse[k], 0.1 * bias["unweighted"]), (k, bias[k], mcse[k])
        assert cover[k] >= 0.93, (k, cover[k])  # the sandwich treats the weights as known: conservative


def test_weighting_is_consistent_in_large_agencies():
    """Four times the participants per agency (about 10 s): every weighted estimate within 3 MC SEs of the truth
    (measured: unweighted +0.433, ATT +0.003, ATE +0.002, overlap +0.001, MC SEs 0.002-0.003)."""
    bias, mcse, cover = _simulate(400, 12, 60.0)
    assert bias["unweighted"] > 0.3
    for k in ("ATT", "ATE", "overlap"):
        assert abs(bias[k]) < 3 * mcse[k], (k, bias[k], mcse[k])
        assert cover[k] >= 0.93, (k, cover[k])
