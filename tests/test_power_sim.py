"""Simulation-based power (analysis.power_sim): agreement with the analytic power in simple
cases, seeds that make results independent of the batching, and the set-up from the pilot."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from analysis import planning, power_sim
from analysis.io import write_table


def _params(design: str, size: int, sd_e: float = 6.0, sd_site: float = 0.0, delta: float = 3.0,
            m: float | None = None, seed: int = 11) -> tuple[dict, pd.DataFrame]:
    """One follow-up, ANCOVA on the baseline value (with a site intercept in a cluster design),
    no dropout, equal site sizes: the case the analytic formulas describe exactly."""
    cluster = design == "cluster"
    var = {"Residual": sd_e**2, **({"site_id": sd_site**2} if cluster else {})}
    icc = sd_site**2 / (sd_site**2 + sd_e**2)
    params = dict(design=design, outcome="y", primary="fu", followups=["fu"], months=[6.0],
                  formula="y ~ treat + y_bl", groups=["site_id"] if cluster else [], contrast={"treat": 1.0},
                  treatment_terms=["treat"], beta={"Intercept": 20.0, "treat": 0.0, "y_bl": 0.6}, variances=var,
                  variance_scale=1.0, theta={"site_id": sd_site / sd_e} if cluster else {}, retention=[1.0],
                  delta=delta, alpha=0.05, sizes=[size], cluster_size=m, cv=0.0, seed=seed, covariates=[],
                  model="test", analytic=dict(sd_effective=math.sqrt(sd_e**2 + sd_site**2), icc=icc, retention=1.0),
                  intervention_arm="intervention")
    pool = pd.DataFrame({"y_bl": np.random.default_rng(3).normal(50, 8, 400)})
    return params, pool


def _mc_agrees(params, pool, reps):
    res = power_sim.batch(params, pool, 0, 0, reps, reps)
    s = power_sim.summarise(params, res).iloc[0]
    mcse = math.sqrt(s.analytic_power * (1 - s.analytic_power) / reps)
    return s, mcse


def test_simulated_power_matches_the_analytic_power_individual():
    # 40 per arm, difference 3, residual SD 6 after baseline adjustment: analytic power 0.60
    params, pool = _params("individual", 40)
    s, mcse = _mc_agrees(params, pool, 800)
    assert s.failed == 0 and 0.55 < s.analytic_power < 0.65
    assert abs(s.power - s.analytic_power) < 3 * mcse, (s.power, s.analytic_power, mcse)


@pytest.mark.parametrize("reps", [pytest.param(150, id="short"), pytest.param(1000, id="long", marks=pytest.mark.slow)])
def test_simulated_power_matches_the_analytic_power_cluster(reps):
    # 7 sites per arm of 10, ICC 0.1 (conditional on baseline): the mixed model with Satterthwaite df
    # against the design-effect formula with t on 2k - 2 df
    params, pool = _params("cluster", 7, sd_e=6.0, sd_site=2.0, delta=4.0, m=10)
    s, mcse = _mc_agrees(params, pool, reps)
    assert s.failed == 0 and 0.5 < s.analytic_power < 0.95
    assert abs(s.power - s.analytic_power) < 3 * mcse + 0.01, (s.power, s.analytic_power, mcse)


def test_results_do_not_depend_on_the_batching(tmp_path):
    params, pool = _params("cluster", 4, sd_e=6.0, sd_site=2.0, m=6)
    params["sizes"] = [3, 4]
    params["retention"] = [0.8]
    out = []
    for bs in (2, 3, 6):
        parts = [power_sim.batch(params, pool, step, b, bs, 6) for step in (0, 1) for b in range(-(-6 // bs))]
        res = pd.concat(parts, ignore_index=True).sort_values(["size", "replicate"])
        path = tmp_path / f"summary_{bs}.csv"
        write_table(power_sim.summarise(params, res), path)
        write_table(res, tmp_path / f"res_{bs}.csv")
        out.append(((tmp_path / f"res_{bs}.csv").read_bytes(), path.read_bytes()))
    assert out[0] == out[1] == out[2]
    # a replicate is its own seed: the same replicate in another batch is the same trial
    a = power_sim.run_replicate(params, pool, 4, 5)
    b = power_sim.batch(params, pool, 1, 1, 5, 6).iloc[0]
    assert (b["size"], b.replicate, b.estimate, b.se, b.df) == (4, 5, a["estimate"], a["se"], a["df"])


def test_dropout_and_site_sizes_follow_the_assumptions():
    params, pool = _params("cluster", 30, sd_site=1.0, m=12.5)
    params["cv"] = 0.5
    params["retention"] = [0.7]
    d = power_sim.simulate_trial(params, pool, 30, np.random.default_rng(5))
    n_rec = 2 * 30 * 12.5
    assert abs(d.participant_id.nunique() / n_rec - 0.7) < 0.06  # 30% lost, completely at random
    sizes = power_sim._sizes_of_sites(4000, 12.5, 0.5, np.random.default_rng(1))
    assert abs(sizes.mean() - 12.5) < 0.2 and abs(sizes.std() / sizes.mean() - 0.5) < 0.03


def test_setup_from_the_demo_pilot(demo_cfg_session):
    from test_planning import _demo_tables
    cfg = copy.deepcopy(demo_cfg_session)
    linked, parts, sites = _demo_tables()
    inputs = planning.planning_inputs(linked, parts, sites, cfg)
    sizes = planning.sample_size_table(inputs, cfg)
    params, pool = power_sim.setup(linked, cfg, sizes, inputs)
    rec = sizes[sizes.recommended].iloc[0]
    k = int(rec.sites_per_arm)
    assert params["sizes"] == sorted({max(2, round(k * f)) for f in (0.5, 0.75, 1, 1.25, 1.5)})
    assert params["formula"] == "y ~ time + trt_1 + trt_2 + y_bl" and params["contrast"] == {"trt_2": 1.0}
    # the variance components of the pilot's primary model, scaled to the SD's 80% UCL
    i = inputs.set_index("parameter")
    assert params["variance_scale"] == pytest.approx(planning.sd_ucl_factor(i.at["sd_followup", "df"]) ** 2)
    assert params["retention"][1] == pytest.approx(i.at["retention", "estimate"])
    assert params["retention"][0] >= params["retention"][1]
    # baseline values are drawn from every participant with one, not only those followed up
    assert len(pool) == linked[(linked.timepoint == "baseline") & linked.wemwbs_total.notna()].participant_id.nunique()
    r = power_sim.run_replicate(params, pool, params["sizes"][0], 0)
    assert not r["failed"] and r["n_sites"] == 2 * params["sizes"][0]
    cfg["design"]["type"] = "single_arm"
    with pytest.raises(ValueError, match="two-arm"):
        power_sim.setup(linked, cfg, sizes, inputs)


def test_report_shows_the_simulation(tmp_path, demo_cfg_session):
    from analysis.reporting import render_section
    from test_planning import _run_stage
    cfg = copy.deepcopy(demo_cfg_session)
    files = _run_stage(tmp_path / "plan", cfg)
    params, pool = _params("individual", 30)
    params["sizes"] = [20, 30]
    res = pd.concat([power_sim.batch(params, pool, s, 0, 20, 20) for s in (0, 1)], ignore_index=True)
    write_table(power_sim.summarise(params, res), tmp_path / "power_simulation.csv")
    (tmp_path / "power_curve.png").write_bytes(power_sim.power_curve_png(power_sim.summarise(params, res), 0.9))
    html = render_section(cfg, {**files, "power_simulation": str(tmp_path / "power_simulation.csv"),
                                "power_curve": str(tmp_path / "power_curve.png")}, "statistician", "planning")
    assert "Simulation-based power" in html and "95% CI excludes zero" in html and "Landau S" in html
    assert html.count("participants recruited per arm") == 1
