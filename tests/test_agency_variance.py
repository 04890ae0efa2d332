"""Model-based intervals of the propensity-weighted economic evaluation (analysis.agency_variance;
analysis.economics with ``economics.weighted_interval: model``, the default) against R.

The reference is tests/reference/agency_variance_golden.R: on the example's participant table
(datasets/cpi_quasi_economics.csv) the glm score, ATT / stabilised ATE / overlap / 0.05-trimmed
ATE weights by hand, lm(..., weights =) adjusted for the baselines and the score covariates,
lme4 REML random agency intercept of each contrast (cost, QALYs, net benefit, SWEMWBS), a'Va and
Satterthwaite's df from the expected REML information built with dense matrices
(golden/econ_propensity_model.csv); and two simulated data sets, one whose lme4 fit is singular
(golden/agency_variance_sim.csv).  Also the REML fit against statsmodels' MixedLM.

With a within-agency variance per cell (``economics.WITHIN_BY_CELL``, the default): nlme's
``lme(..., weights = varIdent(~ 1 | cell), method = "REML")`` and the dense information
(golden/econ_propensity_model_cells*.csv), and a dense numpy check of the agency x cell sums.

Agreement observed (R 4.2.2, lme4 1.1-31 with a tight optimiser tolerance): estimates 7e-11
absolute, SEs 1.1e-7 relative, interval ends 2.6e-7 SE, probabilities 1.5e-8, sigma_w^2 2e-8 and
sigma_b^2 2e-6 relative (where sigma_b^2 is 2% of the total the REML criterion is flat to rounding:
Python's and lme4's optima give the same criterion to 1e-15), Satterthwaite df 1.3e-7 relative.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from analysis import agency_variance as AV
from analysis import economics as E
from analysis.config import validate_config

REF = Path(__file__).parent / "reference"
sys.path.insert(0, str(REF))
import econ_propensity_dataset as DS  # noqa: E402

CASES = {"ATT": ("ATT", 0.0), "ATE": ("ATE", 0.0), "overlap": ("overlap", 0.0), "ATE_trim05": ("ATE", 0.05)}
EQUATIONS = {"cea_qaly": ("cea_qaly", "delta_qaly"), "swemwbs_total": ("cost_per_point:swemwbs_total",
                                                                      "delta_swemwbs_total")}
EST_TOL = 1e-6  # absolute, estimates (observed 7e-11)
REL_TOL = 1e-5  # relative: SE, interval ends (in SEs), df, sigma_b^2 (observed up to 2e-6)
PROB_TOL = 1e-5  # absolute, probabilities (observed 1.5e-8)
CELL_REL_TOL = 2e-5  # relative, the per-cell model against nlme: SE, interval ends (in SEs), df (observed 3e-6)


@pytest.fixture(scope="module")
def example():
    return DS.example("model")


@pytest.fixture(scope="module")
def gold() -> pd.DataFrame:
    return pd.read_csv(REF / "golden" / "econ_propensity_model.csv")


def _weighting(cfg, case):
    estimand, trim = CASES[case]
    return dict(cfg["propensity"], estimand=estimand, trim=trim)


def _contrast(row) -> tuple[float, float]:
    """(alpha, beta) of the golden row's contrast alpha x cost + beta x effect."""
    return {"delta_cost": (1.0, 0.0), "delta_effect": (0.0, 1.0)}.get(row.measure, (-1.0, row["lambda"]))


def test_example_thresholds_are_in_the_golden_file(example, gold):
    """The example's default thresholds are the net-benefit rows R computed (20000 among them)."""
    _, _, econ = example
    lams = {float(t) for t in gold["lambda"].dropna()}
    assert 20000.0 in lams
    assert {float(t["value"]) for t in econ["thresholds"] or E.DEFAULT_THRESHOLDS} == lams


@pytest.fixture(scope="module")
def gold_cells() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(REF / "golden" / "econ_propensity_model_cells.csv"),
            pd.read_csv(REF / "golden" / "econ_propensity_model_cells_components.csv"))


@pytest.mark.parametrize("cells", [False, True], ids=["one_within_variance", "within_by_cell"])
@pytest.mark.parametrize("case", list(CASES))
def test_cea_rows_match_r(example, gold, gold_cells, case, cells, monkeypatch):
    """Every weighted cea.csv row with an interval (incremental cost and effect of both equations,
    net benefit at every threshold) and the probabilities (cost saving, more effective, the net
    benefit's P > 0) equal R's estimate, SE, t interval on Satterthwaite df and P(f > 0): with one
    within-agency variance (lme4) and with one per cell (``WITHIN_BY_CELL``, the default; nlme
    varIdent, whose optimiser stops up to 2.7e-6 relative short in the SE)."""
    pdata, cfg, econ = example
    monkeypatch.setattr(E, "WITHIN_BY_CELL", cells)
    cea = E.cost_effectiveness(pdata, econ, seed=cfg["seed"], clustered=True, weighting=_weighting(cfg, case))["cea"]
    if cells:
        gold = gold_cells[0]
    rel = CELL_REL_TOL if cells else REL_TOL
    rows = gold[gold.weighting == case]
    assert len(rows) == 2 * 2 + 4
    for _, g in rows.iterrows():
        analysis, effect = EQUATIONS[g.equation]
        measure = effect if g.measure == "delta_effect" else g.measure
        ours = cea[(cea.analysis == analysis) & (cea.measure == measure)]
        if measure == "inmb":
            ours = ours[ours["lambda"] == g["lambda"]]
        assert len(ours) == 1, (case, g.equation, measure, g["lambda"])
        o = ours.iloc[0]
        where = (case, g.equation, measure, g["lambda"])
        assert o.n == g.n and o.n_intervention == g.n_intervention, where
        assert o.estimate == pytest.approx(g.estimate, abs=EST_TOL), where
        assert o.se == pytest.approx(g.se, rel=rel), where
        assert o.ci_low == pytest.approx(g.ci_low, abs=rel * g.se), where
        assert o.ci_high == pytest.approx(g.ci_high, abs=rel * g.se), where
        if measure == "inmb":
            assert o.probability == pytest.approx(g.probability, abs=PROB_TOL), where
        if g.equation == "cea_qaly" and g.measure in ("delta_cost", "delta_effect"):
            name, p = (("prob_cost_saving", 1 - g.probability) if g.measure == "delta_cost"
                       else ("prob_more_effective", g.probability))
            assert cea[(cea.analysis == analysis) & (cea.measure == name)].estimate.iloc[0] == \
                pytest.approx(p, abs=PROB_TOL), where
    assert "model-based intervals" in cea.bootstrap.iloc[0]
    assert ("a within-agency variance per cell" in cea.bootstrap.iloc[0]) == cells


def _parts(example, case):
    pdata, cfg, econ = example
    draw = dict(replicates=10, seed=[cfg["seed"], 6], two_stage=True)
    return E._model_weighted_fit(pdata.table, econ, _weighting(cfg, case), draw, 0.95).unc.parts


@pytest.mark.parametrize("case", list(CASES))
def test_fit_random_intercept_and_contrast_variance_match_lme4(example, gold, case):
    """The REML variance components of every contrast's outcome on the rows and design the
    pipeline uses equal lme4's (sigma_b^2 = 0 exactly where lme4's fit is singular: the QALYs);
    c_b, c_w and Satterthwaite's df equal R's dense computation."""
    parts = _parts(example, case)
    rows = gold[gold.weighting == case]
    for k, eq in enumerate(EQUATIONS):
        p = parts[k]
        for _, g in rows[rows.equation == eq].iterrows():
            where = (case, eq, g.measure, g["lambda"])
            alpha, beta = _contrast(g)
            assert len(p["c"]) == g.n, where
            fit = AV.fit_random_intercept(alpha * p["c"] + beta * p["e"], p["F"], p["g"])
            if g.singular:
                assert g.sigma_b2 == 0 and fit.between == 0.0, where
            else:
                # relative to the total variance: where sigma_b^2 is a tiny share of it the REML
                # criterion is flat in that direction (equal criteria at both optima, 0.0 apart)
                assert fit.between == pytest.approx(g.sigma_b2, abs=1e-7 * (g.sigma_b2 + g.sigma_w2)), where
            assert fit.within == pytest.approx(g.sigma_w2, rel=1e-7), where
            gi = pd.factorize(p["g"])[0]
            assert float((np.bincount(gi, weights=p["a"]) ** 2).sum()) == pytest.approx(g.c_b, rel=1e-10), where
            assert float((p["a"] ** 2).sum()) == pytest.approx(g.c_w, rel=1e-10), where
            v, df = AV.contrast_variance(p["a"], p["g"], fit)
            assert np.sqrt(v) == pytest.approx(g.se, rel=REL_TOL), where
            assert df == pytest.approx(g.df_satterthwaite, rel=REL_TOL), where
            # the cap: agencies minus the rank of the agency-level columns (R: tapply over agencies)
            assert AV.agency_level_df(p["F"], p["g"]) == g.df_max == p["df_max"], where
            assert g.df == g.df_satterthwaite, where  # the pipeline does not cap the df
            assert AV.contrast_variance(p["a"], p["g"], fit, p["df_max"])[1] == \
                pytest.approx(min(g.df_satterthwaite, g.df_max), rel=REL_TOL), where

@pytest.mark.parametrize("case", list(CASES))
def test_cell_variances_match_nlme(example, gold_cells, case):
    """With a within-agency variance per cell: the cells (arm x client group x sex, small ones
    merged) and their sizes, the REML variances (nlme varIdent), c' and Satterthwaite's df (R's
    dense expected information) equal R's; where they differ nlme stopped short: our REML
    criterion at our estimates is never above it at nlme's (observed: nlme's up to 4e-7 above).
    Observed agreement: cell variances 8.4e-6 relative, sigma_b^2 7e-7 of the total variance (nlme
    cannot reach the boundary sigma_b^2 = 0, where 28 of the 32 fits are), SE 2.7e-6, df 2.9e-6."""
    gold, comp = gold_cells
    parts = _parts(example, case)
    for k, eq in enumerate(EQUATIONS):
        p = parts[k]
        gi = np.unique(p["g"], return_inverse=True)[1]
        for _, g in gold[(gold.weighting == case) & (gold.equation == eq)].iterrows():
            where = (case, eq, g.measure, g["lambda"])
            alpha, beta = _contrast(g)
            y = alpha * p["c"] + beta * p["e"]
            fit = AV.fit_random_intercept(y, p["F"], p["g"], p["cells"])
            cc = comp[(comp.weighting == case) & (comp.equation == eq) & (comp.measure == g.measure)
                      & ((comp["lambda"] == g["lambda"]) | (comp["lambda"].isna() & np.isnan(g["lambda"])))]
            assert list(cc.cell) == list(fit.cell_labels), where
            assert list(cc.n) == list(np.bincount(fit.cell_of)), where
            assert fit.cells == pytest.approx(cc.sigma2.to_numpy(), rel=5e-5), where
            assert fit.between == pytest.approx(g.sigma_b2, abs=1e-5 * (g.sigma_b2 + g.within)), where
            assert fit.within == pytest.approx(g.within, rel=5e-6), where
            c = np.concatenate([[float((np.bincount(gi, weights=p["a"]) ** 2).sum())],
                                np.bincount(fit.cell_of, weights=p["a"] ** 2)])
            assert c[1:] == pytest.approx(cc.c.to_numpy(), rel=1e-10), where
            v, df = AV.contrast_variance(p["a"], p["g"], fit)
            assert np.sqrt(v) == pytest.approx(g.se, rel=CELL_REL_TOL), where
            assert df == pytest.approx(g.df_satterthwaite, rel=CELL_REL_TOL), where
            m = AV._CellModel(y, p["F"], gi, np.bincount(gi), fit.cell_of, len(fit.cells))
            assert m.criterion(fit.between, fit.cells) <= m.criterion(g.sigma_b2, cc.sigma2.to_numpy()) + 1e-9, where


def test_cell_model_against_dense_matrices():
    """The REML criterion, its gradient and the expected information of the per-cell model from
    agency x cell sums (Woodbury) equal the dense n x n computation, inside and at sigma_b^2 = 0;
    at the fit the gradient is ~0 (sigma_b^2 > 0 here); the one-cell fit equals the one-variance
    fit; cells of one participant are refused."""
    rng = np.random.default_rng(1)
    G, K = 10, 3
    sizes = rng.integers(3, 12, G)
    g = np.repeat(np.arange(G), sizes)
    n = len(g)
    cell = rng.integers(0, K, n)
    F = np.column_stack([np.ones(n), np.repeat(np.arange(G) % 2, sizes), rng.normal(size=n)])
    y = F @ [1, 0.5, 2] + rng.normal(0, 1.0, G)[g] + rng.normal(size=n) * np.array([1.0, 2.0, 3.0])[cell]
    m = AV._CellModel(y, F, g, np.bincount(g), cell, K)
    Z = (g[:, None] == np.arange(G)).astype(float)
    Vs = [Z @ Z.T] + [np.diag((cell == k).astype(float)) for k in range(K)]
    for sb2, s2 in ((0.7, np.array([1.3, 3.0, 8.0])), (0.0, np.array([2.0, 0.5, 4.0]))):
        V = sb2 * Vs[0] + np.diag(s2[cell])
        Vi = np.linalg.inv(V)
        P = Vi - Vi @ F @ np.linalg.inv(F.T @ Vi @ F) @ F.T @ Vi
        crit = np.linalg.slogdet(V)[1] + np.linalg.slogdet(F.T @ Vi @ F)[1] + y @ P @ y
        grad = np.array([np.trace(P @ A) - y @ P @ A @ P @ y for A in Vs])
        info = np.array([[np.trace(P @ A @ P @ B) / 2 for B in Vs] for A in Vs])
        assert m.criterion(sb2, s2) == pytest.approx(crit, rel=1e-12)
        assert m.gradient(sb2, s2) == pytest.approx(grad, rel=1e-9, abs=1e-12)
        assert m.information(sb2, s2) == pytest.approx(info, rel=1e-10)
        ai = np.array([[(A @ P @ y) @ P @ (B @ P @ y) / 2 for B in Vs] for A in Vs])
        assert m.average_information(sb2, s2) == pytest.approx(ai, rel=1e-10)
    fit = AV.fit_random_intercept(y, F, g, cell)
    assert fit.between > 0
    assert np.abs(m.gradient(fit.between, fit.cells) * np.concatenate([[fit.between], fit.cells])).max() < 1e-6
    one = AV.fit_random_intercept(y, F, g, np.zeros(n, int))
    ref = AV.fit_random_intercept(y, F, g)
    assert one.between == pytest.approx(ref.between, rel=1e-6) and one.cells[0] == pytest.approx(ref.within, rel=1e-7)
    assert one.cov == pytest.approx(ref.cov, rel=1e-5)
    with pytest.raises(ValueError, match="fewer than two participants"):
        AV.fit_random_intercept(y, F, g, np.where(np.arange(n) == 0, 9, cell))


def test_merge_small_cells():
    """Cells under the minimum are merged within their arm with the cell sharing the most leading
    levels (the same client group first), smallest first; arms are never merged."""
    cells = np.array(["c|mh|f"] * 4 + ["c|mh|m"] * 9 + ["c|ld|f"] * 15 + ["i|mh|f"] * 3 + ["i|ld|m"] * 20)
    arm = np.array([c[0] for c in cells])
    out = E.merge_small_cells(cells, arm, 10)
    assert set(out) == {"c|mh|f+c|mh|m", "c|ld|f", "i|ld|m+i|mh|f"}
    assert (pd.Series(out).value_counts().sort_index() == pd.Series({"c|ld|f": 15, "c|mh|f+c|mh|m": 13,
                                                                     "i|ld|m+i|mh|f": 23}).sort_index()).all()


def test_the_example_has_boundary_fits(gold):
    """The QALY fits are the boundary case on the example (lme4 singular, sigma_b^2 = 0) in most
    weightings, so the comparisons above include it."""
    qaly = gold[(gold.equation == "cea_qaly") & (gold.measure == "delta_effect")]
    assert qaly.singular.sum() >= 2 and (qaly[qaly.singular].sigma_b2 == 0).all()


@pytest.mark.parametrize("case", ["agency_variance", "boundary"])
def test_simulated_cases_match_lme4(case):
    """Two simulated random-intercept data sets from R (16 agencies, arm by agency, weights 1 or 2):
    with agency variance, and without (lme4's REML fit singular: sigma_b^2 = 0, and so here)."""
    data = pd.read_csv(REF / "datasets" / "agency_variance_sim.csv")
    g = pd.read_csv(REF / "golden" / "agency_variance_sim.csv").set_index("case").loc[case]
    d = data[data.case == case]
    F = np.column_stack([np.ones(len(d)), d.treated, d.x])
    w = d.w.to_numpy(float)
    y = d.y.to_numpy(float)
    a = AV.contrast_row(F, w)
    assert float(a @ y) == pytest.approx(g.estimate, abs=1e-10)
    fit = AV.fit_random_intercept(y, F, d.site_id.to_numpy())
    if case == "boundary":
        assert bool(g.singular) and g.sigma_b2 == 0 and fit.between == 0.0
    else:
        assert not g.singular
        assert fit.between == pytest.approx(g.sigma_b2, rel=REL_TOL)
    assert fit.within == pytest.approx(g.sigma_w2, rel=1e-7)
    r = AV.interval(float(a @ y), a, y, F, d.site_id.to_numpy())
    assert r["se"] == pytest.approx(g.se, rel=REL_TOL)
    assert r["df"] == pytest.approx(g.df, rel=REL_TOL)
    assert r["ci_low"] == pytest.approx(g.ci_low, abs=REL_TOL * g.se)
    assert r["ci_high"] == pytest.approx(g.ci_high, abs=REL_TOL * g.se)


def test_fit_random_intercept_matches_statsmodels_mixedlm():
    """REML variance components against statsmodels MixedLM(reml=True) on simulated data with
    unequal agency sizes and covariates.  statsmodels' default stopping rule leaves it 7e-5 short
    in sigma_b^2; with gradient tolerance 1e-10 agreement is 7e-8 (sigma_b^2) and 3e-9 (sigma_w^2)
    relative, the REML criteria equal to 1e-13."""
    rng = np.random.default_rng(20261205)
    for G, sb, sw in ((12, 1.0, 2.0), (30, 0.5, 1.0), (8, 2.0, 1.0)):
        sizes = rng.integers(4, 20, G)
        g = np.repeat(np.arange(G), sizes)
        n = len(g)
        F = np.column_stack([np.ones(n), np.repeat(np.arange(G) % 2, sizes), rng.normal(size=n),
                             rng.integers(0, 2, n)])
        y = F @ np.array([1.0, 0.5, 2.0, -1.0]) + rng.normal(0, sb, G)[g] + rng.normal(0, sw, n)
        ours = AV.fit_random_intercept(y, F, g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels' convergence chatter
            sm_fit = sm.MixedLM(y, F, groups=g).fit(reml=True, method="bfgs", gtol=1e-10, maxiter=1000)
        assert ours.between == pytest.approx(float(np.asarray(sm_fit.cov_re)[0, 0]), rel=1e-6), (G, sb, sw)
        assert ours.within == pytest.approx(float(sm_fit.scale), rel=1e-7), (G, sb, sw)


def test_golden_file_discriminates_the_mutations(gold):
    """The tolerances above would catch the two plausible mistakes: t on agencies - 2 df instead
    of Satterthwaite's, and the between-agency term c_b sigma_b^2 left out of the variance."""
    q = stats.t.ppf(0.975, gold.df)
    q_naive = stats.t.ppf(0.975, 14 - 2)
    assert (np.abs(q_naive - q) > 100 * REL_TOL).all()  # every half-width would move by more than 1e-3 SE
    se_within = np.sqrt(gold.c_w * gold.sigma_w2)
    moved = np.abs(se_within / gold.se - 1) > REL_TOL
    # every row whose between-agency term is more than 1e-4 of its variance would fail; the
    # singular rows (no between-agency term) rightly would not
    share = gold.c_b * gold.sigma_b2 / gold.se**2
    assert moved[share > 1e-4].all() and not moved[gold.sigma_b2 == 0].any()
    assert (share > 1e-4).sum() >= 20


def test_agency_level_df_and_the_refusals():
    """The df cap counts the agencies left after the agency-level columns (constant within every
    agency), and designs the model cannot separate are refused with a message, not a number."""
    g = np.repeat(np.arange(6), [3, 4, 5, 3, 4, 5])
    arm = (g % 2).astype(float)
    x = np.arange(len(g), dtype=float) % 7  # varies within agencies
    kind = (g >= 4).astype(float)  # an agency characteristic
    F = np.column_stack([np.ones(len(g)), arm, x, kind, arm * kind, arm * x])
    assert AV.agency_level_df(F, g) == 6 - 4  # intercept, arm, kind, arm x kind
    assert AV.agency_level_df(F[:, [0, 2]], g) == 5
    assert AV.agency_level_df(np.column_stack([F[:, :2], 2 * F[:, 1]]), g) == 4  # rank, not count
    with pytest.raises(ValueError, match="every agency has one participant"):
        AV.fit_random_intercept(np.arange(6.0), np.column_stack([np.ones(6), np.arange(6.0) % 2]), np.arange(6))
    with pytest.raises(ValueError, match="3 observations for 3 fixed effects"):
        AV.fit_random_intercept(np.arange(3.0), np.eye(3), np.array([0, 0, 1]))


def test_too_few_agencies_for_the_agency_level_terms_is_refused():
    """Four agencies, one per client group and arm: the intercept, arm, client group and arm x
    client group use up every agency, so nothing is left to estimate the variation between
    agencies; the weighted evaluation stops with a message rather than print an interval."""
    rng = np.random.default_rng(4)
    site = np.repeat(["A", "B", "C", "D"], 12)
    treat = np.isin(site, ["A", "C"]).astype(float)
    group = np.where(np.isin(site, ["A", "B"]), "mental_health", "older_adults")
    n = len(site)
    t = pd.DataFrame(dict(participant_id=[f"P{i:03d}" for i in range(n)], site_id=site,
                          arm=np.where(treat == 1, "intervention", "comparison"), treat=treat,
                          cost_bl=rng.normal(300, 50, n), cost_intervention=0.0, cost=rng.normal(1500, 300, n),
                          utility_bl=rng.uniform(0.4, 0.9, n), qaly=rng.uniform(0.3, 0.9, n),
                          ps_client_group=group, ps_age=rng.integers(20, 80, n)))
    econ = validate_config({"trial_id": "t", "economics": {"enabled": True, "other_outcomes": [],
                                                          "wellby": {"outcome": None}}}, check_plan=False)["economics"]
    with pytest.raises(ValueError, match="4 agencies analysed leave no degrees of freedom"):
        E.cost_effectiveness(E.ParticipantData(t, pd.DataFrame(), [], []), dict(econ, bootstrap={"replicates": 100}),
                             seed=1, clustered=True,
                             weighting={"covariates": ["client_group", "age"], "estimand": "ATT", "trim": 0})
