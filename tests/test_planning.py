"""Planning the definitive trial (analysis.planning): formulas against statsmodels and published
values, planning inputs against R, the sample-size grid, the stage and the report sections."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from analysis import planning as P
from conftest import ROOT

GOLDEN = ROOT / "tests" / "reference" / "golden"


# ---- the SD: Browne's upper confidence limit ---------------------------------------------------

@pytest.mark.parametrize("df,table_q", [(9, 5.380), (19, 13.716), (29, 22.475), (10, 6.179), (20, 14.578),
                                        (30, 23.364)])
def test_browne_ucl_factor_from_tabulated_chi_square_quantiles(df, table_q):
    # 0.20 lower-tail chi-square quantiles as printed in standard tables (3 decimals); Browne's
    # 80% one-sided UCL of sigma is s sqrt(df / chi2_{0.2, df})
    assert P.sd_ucl_factor(df, 0.8) == pytest.approx(math.sqrt(df / table_q), rel=1e-4)
    assert P.sim_lewis_factor(df, 0.8) == pytest.approx(df / table_q, rel=2e-4)


def test_browne_ucl_covers_sigma_with_its_confidence():
    # the defining property: P(sigma <= UCL) = level for normal samples (simulation, seeded)
    rng = np.random.default_rng(1)
    n, reps = 12, 20000
    s = rng.normal(0, 2.0, size=(reps, n)).std(axis=1, ddof=1)
    cover = np.mean(2.0 <= s * P.sd_ucl_factor(n - 1, 0.8))
    assert abs(cover - 0.8) < 3 * math.sqrt(0.8 * 0.2 / reps)
    lo, hi = P.sd_ci(1.0, n - 1, 0.95)
    assert (lo, hi) == pytest.approx((math.sqrt(11 / stats.chi2.ppf(0.975, 11)), math.sqrt(11 / stats.chi2.ppf(0.025, 11))))


# ---- two-arm sample size: statsmodels and Cohen's table ----------------------------------------

@pytest.mark.parametrize("d,n,alpha", [(0.5, 64, 0.05), (0.2, 100, 0.05), (0.8, 10, 0.01), (0.35, 171, 0.05),
                                       (1.2, 3, 0.05)])
def test_power_equals_statsmodels(d, n, alpha):
    assert P.power_individual(n, d * 7.0, 7.0, alpha) == pytest.approx(
        TTestIndPower().power(effect_size=d, nobs1=n, alpha=alpha, ratio=1.0, alternative="two-sided"), abs=1e-12)


@pytest.mark.parametrize("d,power,alpha", [(0.5, 0.8, 0.05), (0.5, 0.9, 0.05), (0.2, 0.9, 0.05), (0.3, 0.8, 0.01),
                                           (0.8, 0.9, 0.05), (0.1, 0.8, 0.05)])
def test_sample_size_equals_statsmodels_rounded_up(d, power, alpha):
    n_sm = TTestIndPower().solve_power(effect_size=d, power=power, alpha=alpha, ratio=1.0)
    n = P.n_per_arm(d, 1.0, alpha, power)
    assert n == math.ceil(n_sm)
    assert P.power_individual(n, d, 1.0, alpha) >= power > P.power_individual(n - 1, d, 1.0, alpha)


def test_cohen_table_and_normal_formula():
    # Cohen J. Statistical Power Analysis for the Behavioral Sciences, 2nd ed. 1988, Table 2.4.1
    # (two-tailed alpha 0.05, power 0.80): d = 0.5 -> 64 per group, d = 0.8 -> 26, d = 0.2 -> 393
    assert P.n_per_arm(0.5, 1, 0.05, 0.8) == 64
    assert P.n_per_arm(0.8, 1, 0.05, 0.8) == 26
    assert abs(P.n_per_arm(0.2, 1, 0.05, 0.8) - 393) <= 1  # Cohen's table rounds an approximation
    # the normal formula 2 (z_{0.975} + z_{0.8})^2 / d^2: the textbook 62.8 (63 per group) at d = 0.5
    assert P.n_per_arm_normal(0.5, 1, 0.05, 0.8) == pytest.approx(2 * (1.959964 + 0.841621) ** 2 / 0.25, rel=1e-6)
    # ANCOVA (Borm et al. 2007): sigma^2 (1 - r^2) -> r = 0.6 needs 64% of the unadjusted size
    assert P.n_per_arm_normal(0.5, math.sqrt(1 - 0.36), 0.05, 0.8) == pytest.approx(0.64 * P.n_per_arm_normal(0.5, 1, 0.05, 0.8))


# ---- clustering: Eldridge's design effect -------------------------------------------------------

def test_design_effect_equal_clusters_matches_killip_table():
    # Killip S, Mahfoud Z, Pearce K. Ann Fam Med 2004;2:204, table: 4 clusters, rho = 0.017;
    # design effect, effective sample size (truncated) and the power (%, truncated) of a two-sample
    # t-test on the effective sample size for a standardised difference of 0.5
    for m, de, ess, pct in [(10, 1.153, 34, 29), (20, 1.323, 60, 47), (40, 1.663, 96, 67), (80, 2.343, 136, 82)]:
        assert P.design_effect(m, 0.017) == pytest.approx(de, abs=5e-4)
        assert math.floor(4 * m / P.design_effect(m, 0.017)) == ess
        assert math.floor(100 * P.power_individual(ess / 2, 0.5, 1.0)) == pct
        # the same trial analysed with its 2 sites per arm has far less power (t on 2 df)
        assert P.power_cluster(2, m, 0.5, 1.0, 0.017) < 0.5 * P.power_individual(ess / 2, 0.5, 1.0)


def test_eldridge_design_effect_is_exact_for_the_individually_weighted_mean():
    # Var of the mean over all individuals of clusters of sizes m_j, with between- and within-cluster
    # variances s_b, s_w: (sum m_j^2 s_b + N s_w) / N^2 = (s_b + s_w) / N x DE, where DE is
    # Eldridge's formula with the mean size and the CV of sizes (population SD)
    sizes = np.array([3, 8, 15, 22, 5, 40, 12, 9, 30, 6])
    s_b, s_w = 0.7, 6.3
    N = sizes.sum()
    var = (np.sum(sizes**2) * s_b + N * s_w) / N**2
    cv = sizes.std(ddof=0) / sizes.mean()
    assert var == pytest.approx((s_b + s_w) / N * P.design_effect(sizes.mean(), s_b / (s_b + s_w), cv), rel=1e-12)


def test_unequal_sizes_matter_little_below_cv_023():
    # Eldridge et al. 2006: with CV < 0.23 the adjustment for variable cluster size is negligible
    for m in (5, 10, 20, 50, 100):
        for rho in (0.01, 0.05, 0.1):
            assert 1 <= P.design_effect(m, rho, 0.23) / P.design_effect(m, rho) < 1.05
    assert P.design_effect(20, 0.05, 0.65) / P.design_effect(20, 0.05) > 1.2  # but not at the typical 0.65


def test_cluster_power_is_the_t_test_on_cluster_means():
    # equal sizes: the cluster means have variance sigma^2 DE / m, and the analysis compares k means
    # per arm with a t-test (2k - 2 df): the power is statsmodels' with n = k per arm
    for k, m, rho, d in [(6, 10, 0.05, 0.4), (12, 25, 0.02, 0.3), (3, 40, 0.1, 0.9)]:
        sd_mean = math.sqrt(P.design_effect(m, rho) / m)
        assert P.power_cluster(k, m, d, 1.0, rho) == pytest.approx(
            TTestIndPower().power(effect_size=d / sd_mean, nobs1=k, alpha=0.05), abs=1e-12)
    k = P.sites_per_arm(0.3, 1.0, 0.05, 12, 0.4, 0.05, 0.9)
    assert P.power_cluster(k, 12, 0.3, 1.0, 0.05, 0.4) >= 0.9 > P.power_cluster(k - 1, 12, 0.3, 1.0, 0.05, 0.4)


# ---- other intervals ----------------------------------------------------------------------------

def test_correlation_and_cv_intervals():
    lo, hi = P.correlation_ci(0.5, 50, 0.95)
    h = stats.norm.ppf(0.975) / math.sqrt(47)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(0.5) - h), math.tanh(math.atanh(0.5) + h)))
    assert P.correlation_ci(0.5, 50, 0.95, controlled=1)[0] < lo
    # Vangel's interval covers a normal CV about 95% of the time (12 sites, CV 0.27)
    rng = np.random.default_rng(7)
    x = rng.normal(13.3, 13.3 * 0.27, size=(4000, 12))
    cv = x.std(axis=1, ddof=1) / x.mean(axis=1)
    cover = np.mean([lo <= 0.27 <= hi for lo, hi in (P.cv_ci(c, 12, 0.95) for c in cv)])
    assert abs(cover - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 4000) + 0.005


# ---- planning inputs of the demo against R ------------------------------------------------------

def _demo_tables():
    d = pd.read_csv(ROOT / "tests/reference/datasets/demo_linked.csv")
    linked = d.rename(columns={"participant": "participant_id"})
    linked["timepoint"] = pd.Categorical(linked.timepoint, categories=["baseline", "m3", "m9"], ordered=True)
    parts = linked[linked.timepoint == "baseline"][["participant_id", "site_id", "arm"]].reset_index(drop=True)
    sites = pd.read_csv(ROOT / "data/raw/demo/sites.csv", parse_dates=["recruitment_start", "recruitment_end"])
    return linked, parts, sites


@pytest.fixture(scope="module")
def demo_inputs(demo_cfg_session):
    linked, parts, sites = _demo_tables()
    return P.planning_inputs(linked, parts, sites, demo_cfg_session)


def test_planning_inputs_match_r(demo_inputs):
    gold = pd.read_csv(GOLDEN / "planning_inputs_demo.csv").set_index("parameter")
    ours = demo_inputs.set_index("parameter")
    for name, g in gold.iterrows():
        for col in ("estimate", "ci_low", "ci_high", "ucl"):
            if pd.notna(g[col]):
                assert ours.at[name, col] == pytest.approx(g[col], rel=1e-6, abs=1e-8), (name, col)
        assert ours.at[name, "n"] == g["n"], name
    assert "Korn-Graubard" in ours.at["retention", "method"] and "quasi-Poisson" in ours.at["recruitment_rate", "method"]


def test_sample_size_grid_and_recommendation(demo_inputs, demo_cfg_session):
    cfg = copy.deepcopy(demo_cfg_session)
    t = P.sample_size_table(demo_inputs, cfg)
    assert t.recommended.sum() == 1
    rec = t[t.recommended].iloc[0]
    pl = cfg["planning"]
    assert rec.target_difference == pl["target_difference"] and rec.sd_basis == "ucl" and rec.retention_basis == "point"
    inp = demo_inputs.set_index("parameter")
    # recompute the recommendation by hand from the inputs
    sd = inp.at["sd_followup", "ucl"] * math.sqrt(1 - inp.at["correlation", "estimate"] ** 2)
    icc, ret = inp.at["icc_adjusted", "estimate"], inp.at["retention", "estimate"]
    m, cv = inp.at["cluster_size_mean", "estimate"], inp.at["cluster_size_cv", "estimate"]
    k = P.sites_per_arm(3.0, sd, icc, m * ret, cv, 0.05, 0.9)
    assert (rec.sites_per_arm, rec.n_recruited_total) == (k, 2 * math.ceil(k * m))
    assert rec.recruitment_months == pytest.approx(m / inp.at["recruitment_rate", "estimate"])
    # every assumption of the grid is there: 3 differences x SD point/UCL x retention point/lower x ICCs
    iccs = {0.05, round(icc, 12), round(inp.at["icc_adjusted", "ci_high"], 12), round(inp.at["icc", "estimate"], 12)}
    assert {round(x, 12) for x in t.icc} == iccs
    assert len(t) == 3 * 2 * 2 * len(iccs)
    # more conservative assumptions never need fewer sites
    for keys, g in t.groupby(["target_difference", "retention_basis", "icc"]):
        assert g.set_index("sd_basis").sites_per_arm["ucl"] >= g.set_index("sd_basis").sites_per_arm["point"]
    for _, g in t.groupby(["target_difference", "sd_basis", "retention_basis"]):
        assert g.sort_values("icc").sites_per_arm.is_monotonic_increasing
    # the target difference comes from the config; the pilot's effect estimate is nowhere used
    cfg["planning"]["target_difference"] = None
    assert P.sample_size_table(demo_inputs, cfg).empty


def test_individual_and_single_arm_designs(demo_inputs, demo_cfg_session):
    cfg = copy.deepcopy(demo_cfg_session)
    cfg["design"]["type"] = "individual"
    inp = demo_inputs[~demo_inputs.parameter.str.startswith(("icc", "cluster_size"))]
    t = P.sample_size_table(inp, cfg)
    assert t.icc.isna().all() and t.sites_per_arm.isna().all()
    rec = t[t.recommended].iloc[0]
    i = inp.set_index("parameter")
    sd = i.at["sd_followup", "ucl"] * math.sqrt(1 - i.at["correlation", "estimate"] ** 2)
    n = P.n_per_arm(3.0, sd, 0.05, 0.9)
    assert rec.n_analysed_per_arm == n and rec.n_recruited_per_arm == math.ceil(n / i.at["retention", "estimate"])
    cfg["planning"]["sd_method"] = "sim_lewis"
    rec = P.sample_size_table(inp, cfg).query("recommended").iloc[0]
    sd_pt = i.at["sd_followup", "estimate"] * math.sqrt(1 - i.at["correlation", "estimate"] ** 2)
    assert rec.n_analysed_per_arm == math.ceil(P.n_per_arm(3.0, sd_pt) * P.sim_lewis_factor(i.at["sd_followup", "df"]))
    cfg["design"]["type"] = "single_arm"
    assert P.sample_size_table(inp, cfg).empty


# ---- stage, figure and report sections ----------------------------------------------------------

def _run_stage(tmp_path, cfg):
    from analysis.stages import planning as stage
    tmp_path.mkdir(parents=True)
    linked, parts, sites = _demo_tables()
    paths = {k: str(tmp_path / f"{k}.parquet") for k in ("linked", "participants", "sites")}
    linked.to_parquet(paths["linked"])
    parts.to_parquet(paths["participants"])
    sites.to_parquet(paths["sites"])
    out = {"inputs": str(tmp_path / "planning_inputs.csv"), "sample_size": str(tmp_path / "sample_size.csv")}
    if cfg["design"]["type"] != "single_arm":
        out["figure"] = str(tmp_path / "sample_size.png")
    stage.run(cfg, paths, out)
    return dict(planning_inputs=out["inputs"], sample_size=out["sample_size"],
                **({"sample_size_figure": out["figure"]} if "figure" in out else {}))


def test_stage_outputs_are_deterministic_and_the_reports_say_where_the_difference_comes_from(tmp_path, demo_cfg_session):
    from analysis.reporting import render_section
    cfg = copy.deepcopy(demo_cfg_session)
    a = _run_stage(tmp_path / "a", cfg)
    b = _run_stage(tmp_path / "b", cfg)
    for k in a:
        assert open(a[k], "rb").read() == open(b[k], "rb").read(), k
    assert open(a["sample_size_figure"], "rb").read().startswith(b"\x89PNG")
    rec = pd.read_csv(a["sample_size"]).query("recommended").iloc[0]
    html = render_section(cfg, a, "statistician", "planning")
    assert "not from the pilot's estimate of the effect" in html and "Maheswaran" in html
    assert f"{int(rec.n_recruited_total)} participants" in html and f"{int(rec.sites_total)} sites" in html
    assert "Browne RH" in html and "Eldridge SM" in html and html.count("<tr") > 40
    funder = render_section(cfg, a, "funder", "planning_summary")
    assert f"Recommended: {int(rec.n_recruited_total)} participants in {int(rec.sites_total)} sites" in funder
    assert "How sensitive it is" in funder and "chosen from outside the pilot" in funder
    assert render_section(cfg, a, "ethics", "planning_summary") is None  # funder only
    assert render_section(cfg, a, "funder", "planning") is None  # statistician only


def test_reports_without_a_target_difference_and_for_a_single_arm_study(tmp_path, demo_cfg_session):
    from analysis.reporting import render_section
    cfg = copy.deepcopy(demo_cfg_session)
    cfg["planning"]["target_difference"] = None
    a = _run_stage(tmp_path / "none", cfg)
    assert pd.read_csv(a["sample_size"]).empty
    html = render_section(cfg, a, "statistician", "planning")
    assert "No sample size:" in html and "planning.target_difference" in html and "Kraemer" in html
    assert "has not been set" in render_section(cfg, a, "funder", "planning_summary")
    cfg = copy.deepcopy(demo_cfg_session)
    cfg["design"] = {**cfg["design"], "type": "single_arm"}
    cfg["economics"]["enabled"] = False
    a = _run_stage(tmp_path / "single", cfg)
    html = render_section(cfg, a, "statistician", "planning")
    assert "comparison group" in html and "No sample size for a definitive trial" in html
    t = pd.read_csv(a["planning_inputs"])
    assert not t.parameter.str.startswith("icc").any()  # no ICC without randomised sites
    assert "cannot size a definitive trial" in render_section(cfg, a, "funder", "planning_summary")


def test_planning_keys_that_do_not_fit_the_design_are_refused(root):
    import yaml

    from analysis.config import ConfigError, validate_config
    single = yaml.safe_load((root / "config/single_arm.yaml").read_text())
    single["planning"] = {"target_difference": 3, "icc": 0.05}
    with pytest.raises(ConfigError) as err:
        validate_config(single, check_plan=True)
    assert "planning.target_difference: a single-arm study has no comparison group" in str(err.value)
    assert "planning.icc: only a cluster design" in str(err.value)
    demo = yaml.safe_load((root / "config/config.yaml").read_text())
    demo["planning"]["centres"] = 10
    with pytest.raises(ConfigError, match="planning.centres: in a cluster design"):
        validate_config(demo)
    for name in ("config/individual.yaml", "config/single_arm.yaml", "config/examples/btheb.yaml"):
        assert validate_config(yaml.safe_load((root / name).read_text()))["planning"]["target_difference"] is None
