"""Cluster-aware feasibility intervals (cluster designs): Korn-Graubard proportions and the
quasi-Poisson recruitment rate, against R golden files (survey::svyciprop, glm quasipoisson),
edge cases, the wiring of feasibility_table, and coverage by simulation with known
between-site variation.

``python tests/test_feasibility_cluster.py`` prints the long simulation quoted in
docs/methods.md."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analysis import feasibility as feas  # noqa: E402

REF = Path(__file__).resolve().parent / "reference"


# ---- (1) against R ------------------------------------------------------------------------------

def _golden():
    sites = pd.read_csv(REF / "datasets" / "feasibility_sites.csv")
    gold = pd.read_csv(REF / "golden" / "feasibility_cluster.csv")
    return sites, gold


@pytest.mark.parametrize("row", range(len(pd.read_csv(REF / "golden" / "feasibility_cluster.csv"))))
def test_matches_r(row):
    sites, gold = _golden()
    g = gold.iloc[row]
    d = sites[sites.case == g.case]
    if g.kind == "proportion":
        r = feas.cluster_proportion_ci(d.k, d.n, level=g.level)
        assert r["n_eff"] == pytest.approx(g.n_eff, rel=1e-9)
    else:
        r = feas.cluster_rate_ci(d.y, d.t, level=g.level)
        assert r["se_log"] == pytest.approx(g.se_log, rel=1e-9)
    assert r["sites"] == g.df + 1
    for key in ("estimate", "ci_low", "ci_high"):
        assert r[key] == pytest.approx(g[key], rel=1e-9), key
    # glm's reported dispersion uses the weights of its last IRLS step (1e-8 from the optimum)
    assert r["design_effect"] == pytest.approx(g.design_effect, rel=1e-9 if g.kind == "proportion" else 1e-7)


# ---- (2) edge cases -----------------------------------------------------------------------------

def _kg_by_hand(x, n_eff, a=0.05):
    lo = 0.0 if x == 0 else stats.beta.ppf(a / 2, x, n_eff - x + 1)
    hi = 1.0 if x >= n_eff else stats.beta.ppf(1 - a / 2, x + 1, n_eff - x)
    return lo, hi


@pytest.mark.parametrize("k,n", [([0, 0, 0], [10, 12, 8]), ([10, 12, 8], [10, 12, 8]), ([5, 5, 5], [10, 10, 10])])
def test_no_between_site_variation_takes_design_effect_one(k, n):
    """Every site with the same proportion (0, 1 or in between): v = 0, design effect 1, and the
    interval is Clopper-Pearson on N x (t_{N-1}/t_{K-1})^2, with 0 or 1 as the closed limit."""
    r = feas.cluster_proportion_ci(k, n)
    N, K = sum(n), len(n)
    n_eff = N * (stats.t.ppf(0.025, N - 1) / stats.t.ppf(0.025, K - 1)) ** 2
    lo, hi = _kg_by_hand(sum(k) / N * n_eff, n_eff)
    assert r["design_effect"] == 1.0 and "design effect taken as 1" in r["method"]
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
    simple = feas.proportion_ci(sum(k), N, "clopper-pearson")
    assert r["ci_high"] - r["ci_low"] > simple[2] - simple[1]  # K - 1 df: wider than the simple one


def test_one_site_or_empty_gives_no_interval_and_says_why():
    r = feas.cluster_proportion_ci([3, 0], [10, 0])  # the empty site is left out: one site
    assert r["estimate"] == 0.3 and np.isnan(r["ci_low"]) and r["sites"] == 1
    assert "fewer than two sites" in r["method"]
    assert np.isnan(feas.cluster_proportion_ci([0], [0])["estimate"])
    r = feas.cluster_rate_ci([4], [6.0])
    assert np.isnan(r["ci_low"]) and "fewer than two sites" in r["method"]
    r = feas.cluster_rate_ci([0, 0, 0], [5.0, 6.0, 7.0])
    assert r["estimate"] == 0 and np.isnan(r["ci_high"]) and "nobody recruited" in r["method"]


def test_overdispersed_sites_widen_the_interval():
    k, n = [2, 9, 1, 10, 3, 9], [10] * 6
    r = feas.cluster_proportion_ci(k, n)
    _, lo, hi = feas.proportion_ci(sum(k), sum(n), "wilson")
    assert r["design_effect"] > 3 and r["ci_high"] - r["ci_low"] > 2 * (hi - lo)


# ---- (3) the feasibility table -----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(demo_cfg_session, root):
    from analysis.ingest import ingest_trial
    from analysis.link import link_waves
    from analysis.scoring import score_responses
    cfg = dict(demo_cfg_session)
    cfg["data"] = dict(cfg["data"], raw_dir=str(root / "data/raw/demo"))
    t = ingest_trial(cfg)
    scores, _ = score_responses(t["responses"], t["participants"], {"wemwbs": {}})
    linked = link_waves(t["participants"], t["responses"], scores, cfg["data"]["waves"])
    return cfg, t, linked


def _table(demo, cluster, **kw):
    cfg, t, linked = demo
    d = cfg["design"]
    return feas.feasibility_table(
        t["sites"], t["participants"], t["screening"], linked, primary_outcome="wemwbs_total",
        arms=[d["control_arm"], d["intervention_arm"]], intervention_arm=d["intervention_arm"],
        measures=["wemwbs_total"], fidelity=t["fidelity"], fidelity_threshold=70, cluster=cluster, **kw)


def test_table_cluster_columns_recomputed_from_site_counts(demo):
    cfg, t, linked = demo
    tab = _table(demo, True)
    assert list(tab.columns) == feas.FEASIBILITY_COLUMNS
    ctl = cfg["design"]["control_arm"]
    # retention at the last follow-up in the control arm, from the linked table by site
    tp = list(linked.timepoint.cat.categories)[-1]
    sub = linked[(linked.timepoint == tp) & (linked.arm == ctl)]
    by = sub.groupby("site_id").assessed.agg(["sum", "size"])
    expect = feas.cluster_proportion_ci(by["sum"], by["size"])
    row = tab[(tab.indicator == "retention") & (tab.timepoint == tp) & (tab.arm == ctl)].iloc[0]
    assert row.sites == (t["sites"].arm == ctl).sum() == len(by)
    assert (row.ci_low_cluster, row.ci_high_cluster) == (expect["ci_low"], expect["ci_high"])
    # consent: eligible people per site of the screening log
    sc = t["screening"]
    el = sc[sc.eligible.astype(bool)]
    by = el.groupby("site_id").consented.agg(lambda s: s.astype(bool).sum()).to_frame("k")
    by["n"] = el.groupby("site_id").size()
    expect = feas.cluster_proportion_ci(by.k, by.n)
    row = tab[tab.indicator == "consent"].iloc[0]
    assert row.ci_low_cluster == expect["ci_low"] and row.ci_method_cluster == feas.KORN_GRAUBARD
    # recruitment rate: participants per site over site-months
    months = feas.site_months(t["sites"])
    counts = t["participants"].groupby("site_id").size().reindex(months.index, fill_value=0)
    expect = feas.cluster_rate_ci(counts, months)
    row = tab[tab.indicator == "recruitment_rate"].iloc[0]
    assert row.ci_high_cluster == expect["ci_high"] and row.design_effect == expect["design_effect"]
    assert row.ci_method_cluster == feas.QUASI_POISSON
    # fidelity counts sites: its cluster interval is the simple one; every proportion has one
    fid = tab[tab.indicator == "fidelity"].iloc[0]
    assert (fid.ci_low_cluster, fid.ci_high_cluster) == (fid.ci_low, fid.ci_high)
    props = tab[tab.unit == "proportion"]
    assert props.ci_low_cluster.notna().all() and (props.ci_method_cluster != "").all()
    # simple columns unchanged by the cluster option
    plain = _table(demo, False)
    pd.testing.assert_frame_equal(tab[feas.FEASIBILITY_COLUMNS[:11]], plain[feas.FEASIBILITY_COLUMNS[:11]])
    assert plain.ci_low_cluster.isna().all() and (plain.ci_method_cluster == "").all()


def test_not_collected_rows_keep_empty_cluster_columns(demo):
    tab = _table(demo, True, collected={"screening": False, "withdrawal_date": False})
    nc = tab[tab.unit == feas.NOT_COLLECTED]
    assert set(nc.indicator) == {"eligibility", "consent", "withdrawal"}
    assert nc.ci_low_cluster.isna().all() and (nc.ci_method_cluster == "").all()


def test_recruitment_period_has_no_site_interval(demo):
    tab = _table(demo, True, recruitment_period={"start": "2024-01-01", "end": "2024-12-31"})
    row = tab[tab.indicator == "recruitment_rate"].iloc[0]
    assert np.isnan(row.ci_low_cluster) and row.ci_method_cluster.startswith("not estimable")


# ---- (4) coverage with known between-site variation ---------------------------------------------

def _coverage(truth, est, lo, hi, log=False, scales=(1.0,)):
    """Coverage of the intervals, and of the same intervals with half-widths times each scale."""
    f = np.log if log else (lambda x: x)
    e, lo_, hi_ = f(est), f(lo), f(hi)
    return [float(np.mean((e - s * (e - lo_) <= f(truth)) & (f(truth) <= e + s * (hi_ - e)))) for s in scales]


def simulate_proportions(reps, K, mu, icc, mean_n, seed, level=0.95, scales=(1.0,)):
    """Korn-Graubard and Wilson intervals of sum(k)/sum(n) over K sites with site probabilities
    Beta(mean mu, ICC icc) and gamma(4) site sizes of mean mean_n.  Returns the coverage of the
    cluster interval (and of it with half-widths times each of ``scales``), the simple one's, and
    the mean widths."""
    rng = np.random.default_rng(seed)
    out = np.empty((reps, 5))
    for i in range(reps):
        n = np.maximum(2, np.round(rng.gamma(4, mean_n / 4, size=K))).astype(int)
        p = rng.beta(mu * (1 - icc) / icc, (1 - mu) * (1 - icc) / icc, size=K) if icc > 0 else np.full(K, mu)
        k = rng.binomial(n, p)
        r = feas.cluster_proportion_ci(k, n, level)
        slo, shi = proportion_confint(k.sum(), n.sum(), alpha=1 - level, method="wilson")
        out[i] = r["estimate"], r["ci_low"], r["ci_high"], slo, shi
    est, lo, hi, slo, shi = out.T
    return dict(cluster=_coverage(mu, est, lo, hi, scales=scales), simple=_coverage(mu, est, slo, shi)[0],
                width_cluster=float(np.mean(hi - lo)), width_simple=float(np.mean(shi - slo)))


def simulate_rates(reps, K, rate, cv, seed, level=0.95, scales=(1.0,)):
    """Quasi-Poisson and exact Poisson intervals of a recruitment rate over K sites open 4-12
    months whose own rates are gamma with mean ``rate`` and coefficient of variation ``cv``
    (trials with nobody recruited, which have no quasi-Poisson interval, do not occur here)."""
    rng = np.random.default_rng(seed)
    out = np.empty((reps, 5))
    for i in range(reps):
        t = rng.uniform(4, 12, size=K)
        lam = rng.gamma(1 / cv**2, rate * cv**2, size=K) if cv > 0 else np.full(K, rate)
        y = rng.poisson(lam * t)
        r = feas.cluster_rate_ci(y, t, level)
        _, slo, shi = feas.poisson_rate_ci(int(y.sum()), float(t.sum()), level)
        out[i] = r["estimate"], r["ci_low"], r["ci_high"], slo, shi
    est, lo, hi, slo, shi = out.T
    assert np.isfinite(lo).all()
    return dict(cluster=_coverage(rate, est, lo, hi, log=True, scales=scales),
                simple=_coverage(rate, est, slo, shi)[0])


BAND = (0.94, 0.96)  # 20,000 trials: Monte Carlo SD 0.0015
RATE_BAND = (0.938, 0.958)  # t-based on the log scale: 10% wider adds only about 0.016


def test_proportion_coverage_two_sided():
    """12 sites, a retention-like proportion 0.7 with ICC 0.1: the cluster interval covers
    within [0.94, 0.96] (observed 0.948); the same intervals 10% narrower (0.928) or wider
    (0.965) fall outside that band, so the test can fail for either error; the simple Wilson
    interval under-covers (0.768)."""
    res = simulate_proportions(20000, 12, 0.7, 0.1, 14, seed=11, scales=(1.0, 0.9, 1.1))
    ok, narrow, wide = res["cluster"]
    assert BAND[0] <= ok <= BAND[1], res
    assert narrow < BAND[0] and wide > BAND[1], res
    assert res["simple"] < 0.85, res


def test_rate_coverage_two_sided():
    """12 sites whose recruitment rates vary with coefficient of variation 0.4 (mean 2 per
    site-month): quasi-Poisson covers within [0.938, 0.958] (observed 0.945), the same intervals
    10% narrower (0.920) or wider (0.961) fall outside, and the exact Poisson interval that
    ignores sites under-covers (0.700)."""
    res = simulate_rates(20000, 12, 2.0, 0.4, seed=12, scales=(1.0, 0.9, 1.1))
    ok, narrow, wide = res["cluster"]
    assert RATE_BAND[0] <= ok <= RATE_BAND[1], res
    assert narrow < RATE_BAND[0] and wide > RATE_BAND[1], res
    assert res["simple"] < 0.8, res


LONG_PROPORTIONS = [(K, mu, icc) for K in (4, 6, 12) for mu in (0.5, 0.8, 0.95) for icc in (0.0, 0.05, 0.15)]
LONG_RATES = [(K, cv) for K in (4, 6, 12) for cv in (0.0, 0.3, 0.6)]


@pytest.mark.slow
@pytest.mark.parametrize("K,mu,icc", LONG_PROPORTIONS)
def test_proportion_coverage_long(K, mu, icc):
    """Every scenario: the cluster interval is at least nominal within Monte Carlo error, less
    than 0.995, and never below the simple interval's coverage by more than Monte Carlo error."""
    res = simulate_proportions(4000, K, mu, icc, 14, seed=int(1000 * K + 100 * mu + 1000 * icc))
    assert 0.91 <= res["cluster"][0] <= 0.995, res
    if icc >= 0.05:
        assert res["cluster"][0] > res["simple"], res


@pytest.mark.slow
@pytest.mark.parametrize("K,cv", LONG_RATES)
def test_rate_coverage_long(K, cv):
    res = simulate_rates(4000, K, 2.0, cv, seed=int(100 * K + 10 * cv))
    assert 0.93 <= res["cluster"][0] <= 0.97, res


if __name__ == "__main__":  # the figures quoted in docs/methods.md
    print("proportions: K, mu, ICC, coverage (mean width) cluster / simple; 4,000 trials each")
    for K, mu, icc in LONG_PROPORTIONS:
        r = simulate_proportions(4000, K, mu, icc, 14, seed=int(1000 * K + 100 * mu + 1000 * icc))
        print(f"{K:3d} {mu:5.2f} {icc:5.2f}  {r['cluster'][0]:.3f} ({r['width_cluster']:.3f})  "
              f"{r['simple']:.3f} ({r['width_simple']:.3f})")
    print("rates: K, CV of site rates, coverage cluster / simple; 4,000 trials each")
    for K, cv in LONG_RATES:
        r = simulate_rates(4000, K, 2.0, cv, seed=int(100 * K + 10 * cv))
        print(f"{K:3d} {cv:4.1f}  {r['cluster'][0]:.3f}  {r['simple']:.3f}")


# ---- (5) progression criteria in a cluster design ----------------------------------------------

def test_progression_uses_the_cluster_interval_and_the_test_it_inverts(demo):
    from analysis import progression
    tab = _table(demo, True)
    tp = [t for t in tab[tab.indicator == "retention"].timepoint.unique()][-1]
    row = tab[(tab.indicator == "retention") & (tab.timepoint == tp) & (tab.arm == "all")].iloc[0]
    rate = tab[tab.indicator == "recruitment_rate"].iloc[0]
    # RED thresholds exactly at the lower cluster limits: the one-sided p-values are alpha/2
    crit = [dict(indicator="retention", timepoint=tp, green=0.95, red=float(row.ci_low_cluster)),
            dict(indicator="recruitment_rate", green=10.0, red=float(rate.ci_low_cluster)),
            dict(indicator="withdrawal", green=0.0, red=float(tab[tab.indicator == "withdrawal"].ci_high_cluster.iloc[0]),
                 direction="lower"),
            dict(indicator="fidelity", arm=demo[0]["design"]["intervention_arm"], green=0.8, red=0.2)]
    prog = progression.evaluate(tab, crit, test=True, cluster=True)
    assert (prog.interval.iloc[:3] == progression.CLUSTER).all()
    assert prog.ci_low.iloc[0] == row.ci_low_cluster and prog.ci_method.iloc[0] == feas.KORN_GRAUBARD
    assert prog.p_value_vs_red.iloc[:3].to_numpy() == pytest.approx([0.025] * 3, abs=1e-9)
    assert "Korn-Graubard" in prog.test.iloc[0] and "quasi-Poisson" in prog.test.iloc[1]
    # fidelity counts sites: the exact binomial test over sites
    assert prog.test.iloc[3].startswith("exact binomial, H0")
    # the same criteria outside a cluster design: simple intervals and tests
    simple = progression.evaluate(tab, crit, test=True, cluster=False)
    assert (simple.interval == progression.SIMPLE).all() and simple.ci_low.iloc[0] == row.ci_low
    assert list(simple.band) == list(prog.band)  # bands use the point estimate


def test_progression_falls_back_to_simple_and_says_why(demo):
    from analysis import progression
    tab = _table(demo, True, recruitment_period={"start": "2024-01-01", "end": "2024-12-31"})
    prog = progression.evaluate(tab, [dict(indicator="recruitment_rate", green=3.0, red=1.0)],
                                test=True, cluster=True)
    r = prog.iloc[0]
    assert r.interval.startswith("simple (cluster-aware interval not estimable")
    assert r.test.startswith("exact Poisson") and r.ci_method == "exact Poisson (Garwood)"


def test_stage_and_report_on_the_demo(demo_cfg, tmp_path):
    """The demo (a cluster design) end to end through the feasibility stage: progression.csv uses
    the cluster-aware intervals and says so; the statistician's section shows both intervals and
    the methods section cites Korn-Graubard; an individually randomised run keeps the simple ones."""
    from analysis.ingest import ingest_trial
    from analysis.io import write_parquet
    from analysis.link import link_waves
    from analysis.reporting import render_section
    from analysis.scoring import score_responses
    from analysis.stages import feasibility as stage

    t = ingest_trial(demo_cfg)
    scores, _ = score_responses(t["responses"], t["participants"], demo_cfg["instruments"])
    linked = link_waves(t["participants"], t["responses"], scores, demo_cfg["data"]["waves"])
    for name in ("sites", "participants", "screening", "fidelity"):
        write_parquet(t[name], tmp_path / f"{name}.parquet")
    write_parquet(linked, tmp_path / "analysis.parquet")
    ext = dict(consort_svg="svg", consort_png="png", figure="png", retention="png")
    names = ["feasibility", "progression", "by_site", "flow", "table1", *ext]
    out = {n: str(tmp_path / f"{n}.{ext.get(n, 'csv')}") for n in names}
    files = {n: str(tmp_path / f"{f}.parquet") for n, f in
              (("sites", "sites"), ("participants", "participants"), ("screening", "screening"),
              ("linked", "analysis"), ("fidelity", "fidelity"))}
    stage.run(demo_cfg, files, out)
    f = pd.read_csv(out["feasibility"], keep_default_na=False, na_values=[""])
    prog = pd.read_csv(out["progression"], keep_default_na=False, na_values=[""])
    assert (prog.interval == "cluster-aware (allows for between-site variation)").all()
    for r in prog.itertuples():
        row = f[(f.indicator == r.indicator) & (f.timepoint.fillna("") == (r.timepoint if r.timepoint == r.timepoint else ""))
                & (f.arm == r.arm)].iloc[0]
        assert (r.ci_low, r.ci_high) == pytest.approx((row.ci_low_cluster, row.ci_high_cluster), rel=1e-11)
    assert prog.test[prog.indicator == "consent"].iloc[0].startswith("exact binomial on the Korn-Graubard")
    inputs = dict(feasibility=out["feasibility"], progression=out["progression"], table1=out["table1"],
                  consort=out["consort_png"], recruitment=out["figure"], retention=out["retention"])
    html = render_section(demo_cfg, inputs, "statistician", "feasibility")
    assert "CI allowing for sites" in html and "Korn–Graubard intervals for proportions" in html
    assert "Korn-Graubard: Clopper-Pearson on the effective sample size" in html
    methods = render_section(demo_cfg, inputs, "statistician", "methods")
    assert "Korn EL, Graubard BI" in methods and "quasi-Poisson" in methods
    # the same data declared individually randomised: simple intervals only
    cfg = copy.deepcopy(demo_cfg)
    cfg["design"]["type"] = "individual"
    out2 = {n: str(tmp_path / f"i_{n}.{ext.get(n, 'csv')}") for n in names}
    stage.run(cfg, files, out2)
    f2 = pd.read_csv(out2["feasibility"], keep_default_na=False, na_values=[""])
    assert f2.ci_low_cluster.isna().all() and f2.ci_method_cluster.isna().all()
    assert (pd.read_csv(out2["progression"]).interval == "simple").all()
    html = render_section(cfg, dict(inputs, feasibility=out2["feasibility"], progression=out2["progression"]),
                          "statistician", "feasibility")
    assert "allowing for sites" not in html
