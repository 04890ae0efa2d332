"""Primary outcome analysis: parity with lme4/lmerTest on the demo, and simulation validity."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import outcomes
from analysis.ingest import ingest_trial
from analysis.link import link_waves
from analysis.scoring import score_responses

REF = Path(__file__).resolve().parent / "reference"


@pytest.fixture(scope="module")
def demo_linked(demo_cfg_session, root):
    cfg = dict(demo_cfg_session)
    cfg["data"] = dict(cfg["data"], raw_dir=str(root / "data/raw/demo"))
    t = ingest_trial(cfg)
    scores, _ = score_responses(t["responses"], t["participants"], {"wemwbs": {}})
    return link_waves(t["participants"], t["responses"], scores, cfg["data"]["waves"])


def test_golden_dataset_is_what_the_pipeline_produces(demo_linked):
    """The R reference was fitted on exactly the rows the pipeline analyses."""
    committed = pd.read_csv(REF / "datasets/demo_ancova.csv")
    mine = demo_linked[demo_linked.timepoint != "baseline"][list(committed.columns)].copy()
    mine["timepoint"] = mine.timepoint.astype(str)
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), committed, check_dtype=False)


def test_demo_ancova_matches_lme4_lmertest(demo_linked):
    golden = pd.read_csv(REF / "golden/demo_ancova.csv").set_index("timepoint")
    eff = outcomes.ancova_effects(demo_linked, "wemwbs_total", intervention_arm="intervention",
                                  clustered=True, primary_timepoint="m9").set_index("timepoint")
    for tp in ("m3", "m9"):
        g, e = golden.loc[tp], eff.loc[tp]
        assert e.n == g.n
        for col in ("estimate", "se", "ci_low", "ci_high", "site_variance", "residual_variance"):
            assert e[col] == pytest.approx(g[col], rel=1e-5), (tp, col)
        assert e.df == pytest.approx(g.df, rel=1e-3)
        assert e.p_value == pytest.approx(g.p_value, rel=1e-4)
        assert e.warnings == ""  # lme4 reports a regular (non-singular) fit for both
    assert eff.primary.tolist() == [False, True]


def test_unclustered_ancova_is_ols(demo_linked):
    eff = outcomes.ancova_effects(demo_linked, "wemwbs_total", intervention_arm="intervention",
                                  clustered=False, primary_timepoint="m9").set_index("timepoint")
    d = demo_linked[demo_linked.timepoint == "m9"].dropna(subset=["wemwbs_total", "wemwbs_total_bl"])
    X = np.column_stack([np.ones(len(d)), (d.arm == "intervention").astype(float), d.wemwbs_total_bl])
    beta, rss, *_ = np.linalg.lstsq(X, d.wemwbs_total.to_numpy(float), rcond=None)
    se = np.sqrt(rss[0] / (len(d) - 3) * np.linalg.inv(X.T @ X)[1, 1])
    assert eff.loc["m9", "estimate"] == pytest.approx(beta[1], rel=1e-10)
    assert eff.loc["m9", "se"] == pytest.approx(se, rel=1e-10)
    assert eff.loc["m9", "df"] == len(d) - 3


def test_describe_matches_t_interval(demo_linked):
    desc = outcomes.describe(demo_linked, "wemwbs_total").set_index(["timepoint", "arm"])
    y = demo_linked[(demo_linked.timepoint == "m3") & (demo_linked.arm == "control")].wemwbs_total.dropna()
    lo, hi = stats.t.interval(0.95, len(y) - 1, loc=y.mean(), scale=stats.sem(y))
    r = desc.loc[("m3", "control")]
    assert (r.n, r["mean"], r.sd) == (len(y), pytest.approx(y.mean()), pytest.approx(y.std()))
    assert (r.ci_low, r.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def _cluster_trial(rng, delta, n_sites=12, per_site=10, site_sd=1.5, sd=5.0):
    sites = np.repeat(np.arange(n_sites), per_site)
    arm = np.where(sites % 2 == 0, "intervention", "control")
    u = rng.normal(0, site_sd, n_sites)[sites]
    y0 = 45 + u + rng.normal(0, sd, len(sites))
    y1 = 10 + 0.75 * y0 + delta * (arm == "intervention") + rng.normal(0, site_sd, n_sites)[sites] \
        + rng.normal(0, sd, len(sites))
    pid = np.arange(len(sites))
    rows = pd.DataFrame({"participant_id": np.r_[pid, pid], "site_id": np.r_[sites, sites].astype(str),
                         "arm": np.r_[arm, arm], "timepoint": ["baseline"] * len(pid) + ["m6"] * len(pid),
                         "month": [0.0] * len(pid) + [6.0] * len(pid), "y": np.r_[y0, y1]})
    rows["y_bl"] = np.r_[y0, y0]
    rows["timepoint"] = pd.Categorical(rows.timepoint, categories=["baseline", "m6"], ordered=True)
    return rows


def _coverage(n_sims, seed):
    rng = np.random.default_rng(seed)
    delta = 2.0
    est, cover = [], []
    for _ in range(n_sims):
        eff = outcomes.ancova_effects(_cluster_trial(rng, delta), "y", intervention_arm="intervention",
                                      clustered=True, primary_timepoint="m6").iloc[0]
        est.append(eff.estimate)
        cover.append(eff.ci_low <= delta <= eff.ci_high)
    est = np.array(est)
    return est.mean() - delta, est.std(ddof=1) / np.sqrt(n_sims), float(np.mean(cover))


def test_primary_model_recovers_truth_short():
    """100 simulated 12-site pilots: unbiased, and Satterthwaite 95% CIs cover about 95%.

    Tolerances are ~2.7 binomial SDs for 100 trials (the long version uses 1,000)."""
    bias, mcse, coverage = _coverage(100, seed=2026)
    assert abs(bias) < 3 * mcse
    assert 0.89 <= coverage <= 0.995


@pytest.mark.slow
def test_primary_model_recovers_truth_long():
    bias, mcse, coverage = _coverage(1000, seed=99)
    assert abs(bias) < 3 * mcse
    assert 0.935 <= coverage <= 0.965
