"""Feasibility rates and CIs against published values and independent formulae."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import feasibility as feas


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


def _poisson_coverage(mu: float, exposure: float, scale: float = 1.0) -> float:
    """Exact coverage of the (scaled) rate interval when the count is Poisson(mu): the sum of
    the probabilities of the counts whose interval contains the true rate."""
    ks = np.arange(0, int(mu + 12 * math.sqrt(mu) + 20))
    lims = np.array([feas.poisson_rate_ci(int(k), exposure)[1:] for k in ks])
    est = ks / exposure
    lo, hi = est - scale * (est - lims[:, 0]), est + scale * (lims[:, 1] - est)
    rate = mu / exposure
    return float(stats.poisson.pmf(ks, mu)[(lo <= rate) & (rate <= hi)].sum())


def test_poisson_interval_coverage_is_exact_two_sided():
    """The exact (Garwood) interval never covers less than 95%, and no more than it must: over
    a grid of true means its lowest coverage is within half a point of 95% (computed exactly,
    no Monte Carlo error).  Intervals 10% too narrow fall below 95% somewhere; 10% too wide
    ones stay above 95.5% everywhere, so both bounds can fail."""
    mus = np.linspace(0.5, 60, 400)
    lowest = {s: min(_poisson_coverage(mu, 4.0, s) for mu in mus) for s in (0.9, 1.0, 1.1)}
    assert 0.95 <= lowest[1.0] <= 0.955, lowest
    assert lowest[0.9] < 0.95 and lowest[1.1] > 0.955, lowest
    # and a simulation agrees with the exact coverage at one mean (3 Monte Carlo SEs)
    rng = np.random.default_rng(1)
    mu, exposure, n = 7.3, 4.0, 4000
    counts = rng.poisson(mu, size=n)
    cover = np.mean([lo * exposure <= mu <= hi * exposure
                     for lo, hi in (feas.poisson_rate_ci(c, exposure)[1:] for c in counts)])
    exact = _poisson_coverage(mu, exposure)
    assert abs(cover - exact) < 3 * math.sqrt(exact * (1 - exact) / n), (cover, exact)


@pytest.fixture(scope="module")
def demo_tables(demo_prepared):
    return demo_prepared, demo_prepared["linked"]


def test_feasibility_table_counts_match_raw_files(demo_tables, root):
    t, linked = demo_tables
    table = feas.feasibility_table(t["sites"], t["participants"], t["screening"], linked,
                                   primary_outcome="wemwbs_total", arms=["control", "intervention"],
                                   intervention_arm="intervention", recruitment_target=150,
                                   adherence_min_sessions=6, fidelity=t["fidelity"], fidelity_threshold=70)
    raw = root / "data/raw/demo"
    screen = pd.read_csv(raw / "screening_log.csv")
    parts = pd.read_csv(raw / "participants.csv")
    sites = pd.read_csv(raw / "sites.csv")
    fid = pd.read_csv(raw / "fidelity.csv")
    m9 = pd.read_csv(raw / "wave_m9.csv")
    row = table.set_index(["indicator", "timepoint", "arm"])
    assert row.loc[("eligibility", "", "all"), ["numerator", "denominator"]].tolist() == [
        (screen.eligible == "yes").sum(), len(screen)]
    assert row.loc[("consent", "", "all"), ["numerator", "denominator"]].tolist() == [
        (screen.consented == "yes").sum(), (screen.eligible == "yes").sum()]
    ctrl_sites = set(sites.site_id[sites.arm == "control"])
    ctrl = parts[parts.site_id.isin(ctrl_sites)]
    trt = parts[~parts.site_id.isin(ctrl_sites)]
    assert row.loc[("retention", "m9", "control"), ["numerator", "denominator"]].tolist() == [
        m9.participant_id.isin(ctrl.participant_id).sum(), len(ctrl)]
    months = ((pd.to_datetime(sites.recruitment_end) - pd.to_datetime(sites.recruitment_start)).dt.days + 1).sum() / (365.25 / 12)
    r = row.loc[("recruitment_rate", "", "all")]
    assert r.estimate == pytest.approx(len(parts) / months)
    assert r.ci_low < r.estimate < r.ci_high
    wem = [f"wemwbs_{k}" for k in range(1, 15)]
    complete_m9 = m9[wem].notna().all(axis=1)
    assert row.loc[("completion_wemwbs_total", "m9", "all"), "numerator"] == complete_m9.sum()
    assert row.loc[("completion_wemwbs_total", "m9", "intervention"), ["numerator", "denominator"]].tolist() == [
        (complete_m9 & m9.participant_id.isin(trt.participant_id)).sum(), len(trt)]
    assert row.loc[("intervention_receipt", "", "intervention"), ["numerator", "denominator"]].tolist() == [
        (trt.sessions_attended >= 1).sum(), len(trt)]
    assert row.loc[("adherence", "", "intervention"), ["numerator", "denominator"]].tolist() == [
        (trt.sessions_attended >= 6).sum(), len(trt)]
    isites = sites.site_id[sites.arm == "intervention"]
    good = fid.groupby("site_id").fidelity_score.mean().reindex(isites) >= 70
    assert row.loc[("fidelity", "", "intervention"), ["numerator", "denominator"]].tolist() == [good.sum(), len(isites)]
    assert row.loc[("withdrawal", "", "all"), "numerator"] == parts.withdrawal_date.notna().sum()
    assert set(table.columns) >= {"indicator", "numerator", "denominator", "estimate", "ci_low", "ci_high"}


def test_recruitment_interval_inverts_the_poisson_tails(demo_tables):
    """The exact interval's limits are where the one-sided Poisson tails equal alpha/2."""
    t, _ = demo_tables
    by_site = feas.recruitment_by_site(t["sites"], t["participants"], 0.95)
    for r in by_site.itertuples():
        assert r.rate_per_month == pytest.approx(r.recruited / r.site_months)
        assert stats.poisson.sf(r.recruited - 1, r.ci_low * r.site_months) == pytest.approx(0.025, abs=1e-9)
        assert stats.poisson.cdf(r.recruited, r.ci_high * r.site_months) == pytest.approx(0.025, abs=1e-9)


def test_zero_events_give_zero_estimate_and_closed_form_upper_limits():
    n, z = 40, stats.norm.ppf(0.975)
    est, lo, hi = feas.proportion_ci(0, n, "wilson")
    assert (est, lo) == (0.0, 0.0) and hi == pytest.approx(z * z / (n + z * z), abs=1e-12)
    est, lo, hi = feas.proportion_ci(0, n, "clopper-pearson")
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-12)
    est, lo, hi = feas.poisson_rate_ci(0, 6.0)
    assert (est, lo) == (0.0, 0.0) and hi == pytest.approx(-math.log(0.025) / 6.0, abs=1e-12)


def test_zero_event_category_in_the_tables(demo_tables):
    """A trial with no withdrawals: withdrawal 0/n with a Wilson upper limit; declared reasons show n = 0."""
    t, linked = demo_tables
    parts = t["participants"].assign(withdrawal_date=pd.NaT, withdrawal_reason=pd.NA)
    table = feas.feasibility_table(t["sites"], parts, t["screening"], linked, primary_outcome="wemwbs_total",
                                   arms=["control", "intervention"], intervention_arm="intervention")
    w = table.set_index("indicator").loc["withdrawal"]
    n, z = len(parts), stats.norm.ppf(0.975)
    assert (w.numerator, w.denominator, w.estimate, w.ci_low) == (0, n, 0.0, 0.0)
    assert w.ci_high == pytest.approx(z * z / (n + z * z))
    flow = feas.disposition(t["sites"], parts, t["screening"], linked, arms=["control", "intervention"],
                            intervention_arm="intervention", measures=["wemwbs_total"],
                            reasons={"withdrawal": ["withdrew consent", "died"]})
    for tp in ("baseline", "m3", "m9"):
        assert feas.flow_n(flow, "withdrawn", "control", timepoint=tp) == 0
        assert feas.flow_n(flow, "withdrawn", "control", timepoint=tp, reason="died") == 0
        assert feas.flow_n(flow, "withdrawn", "control", timepoint=tp, reason="withdrew consent") == 0


def test_reason_counts_declared_undeclared_and_missing():
    s = pd.Series(["a", "b", "b", None, "", "zz"], dtype="string")
    assert feas.reason_counts(s, ["b", "a", "c"]) == [("b", 2), ("a", 1), ("c", 0), (feas.UNDECLARED, 1),
                                                      (feas.NOT_RECORDED, 2)]
    assert feas.reason_counts(s, None) == [("b", 2), ("a", 1), ("zz", 1), (feas.NOT_RECORDED, 2)]


def test_disposition_partitions_every_arm_and_time_point(demo_tables):
    t, linked = demo_tables
    arms = ["control", "intervention"]
    flow = feas.disposition(t["sites"], t["participants"], t["screening"], linked, arms=arms,
                            intervention_arm="intervention", measures=["wemwbs_total"])
    get = lambda *a, **k: feas.flow_n(flow, *a, **k)  # noqa: E731
    assert get("consented") == sum(get("allocated", a) for a in arms)
    for arm in arms:
        arm_sites = t["sites"].site_id[t["sites"].arm == arm]
        assert get("allocated", arm) == sum(get("allocated", arm, s) for s in arm_sites)
        for tp in ("baseline", "m3", "m9"):
            assert get("assessed", arm, timepoint=tp) + get("withdrawn", arm, timepoint=tp) \
                + get("lost", arm, timepoint=tp) == get("allocated", arm)
    # per site screening adds up to the arm totals
    for arm in arms:
        assert get("screened", arm) == sum(get("screened", arm, s) for s in t["sites"].site_id[t["sites"].arm == arm])


def test_study_arms_single_arm_and_unknown_arm(demo_tables):
    t, _ = demo_tables
    p = t["participants"]
    assert feas.study_arms(p, "control", "intervention") == ["control", "intervention"]
    assert feas.study_arms(p[p.arm == "intervention"], "control", "intervention") == ["intervention"]
    assert feas.study_arms(p, None, "intervention", single_arm=True) == ["intervention"]
    with pytest.raises(ValueError, match="arm 'usual' is neither"):
        feas.study_arms(p.assign(arm="usual"), "control", "intervention")


def test_stage_writes_every_output_reproducibly(demo_cfg, demo_prepared, tmp_path):
    """The feasibility stage on the demo: all outputs, feasibility.csv with band, byte-identical rerun."""
    from analysis.io import write_parquet
    from analysis.stages import feasibility as stage

    t, linked = demo_prepared, demo_prepared["linked"]
    for name in ("sites", "participants", "screening", "fidelity"):
        write_parquet(t[name], tmp_path / f"{name}.parquet")
    write_parquet(linked, tmp_path / "analysis.parquet")
    ext = dict(consort_svg="svg", consort_png="png", figure="png", retention="png")
    names = ["feasibility", "progression", "by_site", "flow", "table1", *ext]
    outs = []
    for run in ("a", "b"):
        out = {n: str(tmp_path / run / f"{n}.{ext.get(n, 'csv')}") for n in names}
        stage.run(demo_cfg, {n: str(tmp_path / f"{f}.parquet") for n, f in
                             (("sites", "sites"), ("participants", "participants"), ("screening", "screening"),
                              ("linked", "analysis"), ("fidelity", "fidelity"))}, out)
        outs.append(out)
    for n in names:
        a, b = (open(o[n], "rb").read() for o in outs)
        assert a == b, n
    f = pd.read_csv(outs[0]["feasibility"])
    assert list(f.columns[:len(feas.FEASIBILITY_COLUMNS)]) == feas.FEASIBILITY_COLUMNS and "band" in f
    prog = pd.read_csv(outs[0]["progression"])
    assert len(prog) == len(demo_cfg["feasibility"]["progression_criteria"])
    banded = f[f.band.notna()]
    assert len(banded) == len(prog)
    assert open(outs[0]["consort_svg"], "rb").read().lstrip().startswith((b"<?xml", b"<svg"))


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
@pytest.mark.parametrize("k,n", [(0, 3), (0, 7), (10, 10), (13, 13), (5, 10)])
def test_interval_contains_the_estimate_at_the_extremes(k, n, method):
    est, lo, hi = feas.proportion_ci(k, n, method)
    assert lo <= est <= hi
    assert (k > 0 or lo == 0.0) and (k < n or hi == 1.0)


@pytest.mark.parametrize("k", [0, 9, 10])
def test_retention_figure_handles_all_or_none_assessed(k):
    """At 0% or 100% the CI limit can sit a rounding error past the estimate; the figure must still draw."""
    from analysis.feasibility_plots import retention_completion_png

    rows = []
    for ind, tp in (("retention", "m3"), ("completion_x", "baseline"), ("completion_x", "m3")):
        for arm in ("a", "b"):
            est, lo, hi = feas.proportion_ci(k, 10)
            lo, hi = (lo + 1e-15, hi) if k == 0 else (lo, hi - 1e-15) if k == 10 else (lo, hi)  # rounding
            rows.append(dict(indicator=ind, timepoint=tp, arm=arm, estimate=est, ci_low=lo, ci_high=hi))
    png = retention_completion_png(pd.DataFrame(rows), ["baseline", "m3"], ["a", "b"], {}, ["x"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_safety_table_counts_by_hand():
    parts = pd.DataFrame({"participant_id": ["a", "b", "c", "d", "e"],
                          "arm": ["control", "control", "intervention", "intervention", "intervention"]})
    ae = pd.DataFrame({"participant_id": ["a", "a", "c", "d", "d", "d"],
                       "serious": ["no", "yes", "no", "yes", "yes", "no"],
                       "related": ["no", "unknown", "yes", None, "yes", "no"]})
    t = feas.safety_table(parts, ae, ["control", "intervention"]).set_index(["measure", "arm"])
    expect = {  # by hand from the six events above
        "events": {"control": 2, "intervention": 4, "all": 6},
        "participants_with_event": {"control": 1, "intervention": 2, "all": 3},
        "serious_events": {"control": 1, "intervention": 2, "all": 3},
        "participants_with_serious_event": {"control": 1, "intervention": 1, "all": 2},
        "related_events": {"control": 0, "intervention": 2, "all": 2},
    }
    for m, by_arm in expect.items():
        for arm, n in by_arm.items():
            assert t.loc[(m, arm), "n"] == n, (m, arm)
    assert t.xs("all", level="arm").denominator.eq(5).all()
    assert t.xs("control", level="arm").denominator.eq(2).all()
    none = feas.safety_table(parts, ae.iloc[0:0], ["control", "intervention"])
    assert len(none) == 15 and (none.n == 0).all()  # recorded, zero events: zeros, not missing
    with pytest.raises(ValueError, match="not allocated"):
        feas.safety_table(parts, ae.assign(participant_id=["a", "a", "c", "d", "d", "zz"]), ["control", "intervention"])
