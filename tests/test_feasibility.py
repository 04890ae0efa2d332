"""Feasibility rates and CIs against published values and independent formulae."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import feasibility as feas
from analysis.ingest import ingest_trial
from analysis.link import link_waves
from analysis.scoring import score_responses


def wilson_by_hand(k, n, level=0.95):
    z = stats.norm.ppf(0.5 + level / 2)
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return centre - half, centre + half


def test_wilson_newcombe_1998_example():
    """Newcombe (Stat Med 1998;17:857), example 81/263: score interval 0.2553 to 0.3662."""
    est, lo, hi = feas.proportion_ci(81, 263, "wilson")
    assert est == pytest.approx(81 / 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (37, 120), (149, 150)])
@pytest.mark.parametrize("level", [0.9, 0.95])
def test_wilson_matches_formula(k, n, level):
    _, lo, hi = feas.proportion_ci(k, n, "wilson", level)
    elo, ehi = wilson_by_hand(k, n, level)
    assert lo == pytest.approx(max(elo, 0.0), abs=1e-12) and hi == pytest.approx(min(ehi, 1.0), abs=1e-12)


@pytest.mark.parametrize("k,n", [(0, 12), (3, 12), (12, 12), (81, 263)])
def test_clopper_pearson_matches_beta_quantiles(k, n):
    _, lo, hi = feas.proportion_ci(k, n, "clopper-pearson")
    elo = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
    ehi = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
    assert lo == pytest.approx(elo, abs=1e-10) and hi == pytest.approx(ehi, abs=1e-10)


def test_zero_denominator_gives_nan_not_error():
    assert all(np.isnan(feas.proportion_ci(0, 0)))


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown CI method"):
        feas.proportion_ci(1, 2, "wald")


def test_poisson_exact_published_values():
    """Exact 95% limits for a Poisson count: 0 -> (0, 3.689); 10 -> (4.795, 18.390)."""
    _, lo, hi = feas.poisson_rate_ci(0, 1.0)
    assert lo == 0.0 and hi == pytest.approx(-math.log(0.025), abs=1e-9)
    est, lo, hi = feas.poisson_rate_ci(10, 2.0)
    assert est == 5.0
    assert (round(lo * 2, 3), round(hi * 2, 3)) == (4.795, 18.390)


def test_poisson_interval_covers_about_95_percent():
    rng = np.random.default_rng(1)
    mu, exposure = 7.3, 4.0
    counts = rng.poisson(mu, size=4000)
    cover = np.mean([lo * exposure <= mu <= hi * exposure
                     for lo, hi in (feas.poisson_rate_ci(c, exposure)[1:] for c in counts)])
    assert cover >= 0.95  # exact intervals are conservative


@pytest.fixture(scope="module")
def demo_tables(demo_cfg_session, root):
    cfg = dict(demo_cfg_session)
    cfg["data"] = dict(cfg["data"], raw_dir=str(root / "data/raw/demo"))
    t = ingest_trial(cfg)
    scores, _ = score_responses(t["responses"], t["participants"], {"wemwbs": {}})
    linked = link_waves(t["participants"], t["responses"], scores, cfg["data"]["waves"])
    return t, linked


def test_feasibility_table_counts_match_raw_files(demo_tables, root):
    t, linked = demo_tables
    table = feas.feasibility_table(t["sites"], t["participants"], t["screening"], linked,
                                   primary_outcome="wemwbs_total", arms=["control", "intervention"],
                                   intervention_arm="intervention", recruitment_target=150)
    raw = root / "data/raw/demo"
    screen = pd.read_csv(raw / "screening_log.csv")
    parts = pd.read_csv(raw / "participants.csv")
    sites = pd.read_csv(raw / "sites.csv")
    m9 = pd.read_csv(raw / "wave_m9.csv")
    row = table.set_index(["indicator", "timepoint", "arm"])
    assert row.loc[("eligibility", "", "all"), ["numerator", "denominator"]].tolist() == [
        (screen.eligible == "yes").sum(), len(screen)]
    assert row.loc[("consent", "", "all"), ["numerator", "denominator"]].tolist() == [
        (screen.consented == "yes").sum(), (screen.eligible == "yes").sum()]
    ctrl_sites = set(sites.site_id[sites.arm == "control"])
    ctrl = parts[parts.site_id.isin(ctrl_sites)]
    assert row.loc[("retention", "m9", "control"), ["numerator", "denominator"]].tolist() == [
        m9.participant_id.isin(ctrl.participant_id).sum(), len(ctrl)]
    months = ((pd.to_datetime(sites.recruitment_end) - pd.to_datetime(sites.recruitment_start)).dt.days + 1).sum() / (365.25 / 12)
    r = row.loc[("recruitment_rate", "", "all")]
    assert r.estimate == pytest.approx(len(parts) / months)
    assert r.ci_low < r.estimate < r.ci_high
    wem = [f"wemwbs_{k}" for k in range(1, 15)]
    complete_m9 = m9[wem].notna().all(axis=1).sum()
    assert row.loc[("completion_wemwbs_total", "m9", "all"), "numerator"] == complete_m9
    assert set(table.columns) >= {"indicator", "numerator", "denominator", "estimate", "ci_low", "ci_high"}


def test_flow_counts_reconcile(demo_tables):
    t, linked = demo_tables
    flow = feas.flow_counts(t["screening"], t["participants"], linked, ["control", "intervention"])
    get = lambda stage, arm="all", tp="": int(flow.query("stage == @stage and arm == @arm and timepoint == @tp").n.iloc[0])  # noqa: E731
    assert get("consented") == get("allocated", "control") + get("allocated", "intervention")
    for arm in ("control", "intervention"):
        assert get("assessed", arm, "baseline") <= get("allocated", arm)
        assert get("assessed", arm, "m9") <= get("assessed", arm, "baseline") + get("allocated", arm)
