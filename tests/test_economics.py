"""Trial-based economic evaluation: QALYs, discounting, Manca adjustment, CEAC, WELLBYs, and the
participant table and CEA on a small hand-built trial.

Expected values come from the project's research note (shared/reference/instruments.md §7,
§10: the Manca worked example, AUC vectors, discounting and WELLBY test vectors), from
statsmodels, or are computed by hand in the test.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis import bootstrap as boot
from analysis import economics as E
from analysis.config import validate_config
from analysis.qaly import auc, discount_weight

# ---- QALYs by area under the curve -------------------------------------------------------

AUC_VECTORS = [  # research note §10 (COMP)
    ([0, 0.5, 1], [0.6, 0.7, 0.8], 0.700),
    ([0, 0.25, 0.5, 1], [0.5, 0.5, 0.8, 0.8], 0.6875),
    ([0, 1], [-0.2, 0.4], 0.100),
    ([0, 0.25, 0.5, 1], [0.883, 0.796, 0.725, 1.000], 0.83125),
]


@pytest.mark.parametrize("times, utils, qaly", AUC_VECTORS)
def test_auc_vectors(times, utils, qaly):
    assert auc(times, utils) == pytest.approx(qaly, abs=1e-12)
    # within 12 months discounting changes nothing
    assert auc(times, utils, 0.035) == pytest.approx(qaly, abs=1e-12)


def test_auc_rows_and_missing():
    t = np.array([[0, 0.5, 1], [0, 0.5, 1]])
    u = np.array([[0.6, 0.7, 0.8], [0.6, np.nan, 0.8]])
    got = auc(t, u)
    assert got[0] == pytest.approx(0.7) and np.isnan(got[1])


def test_discounting_beyond_twelve_months():
    # research note §10: utility 1.0 for 2 years, year 1 undiscounted, year 2 / 1.035
    assert auc([0, 2], [1, 1], 0.035) == pytest.approx(1.966184, abs=1e-6)
    assert auc([0, 2], [1, 1], 0.0) == pytest.approx(2.0)
    # a line u = t/2 crossing the anniversary: 1/4 + (3/4)/1.035, split exactly at t = 1
    assert auc([0, 0.5, 2], [0, 0.25, 1], 0.035) == pytest.approx(0.25 + 0.75 / 1.035, abs=1e-12)
    # mean discount factor over a cost period
    assert discount_weight(0.25, 0.75, 0.035) == pytest.approx(1.0)
    assert discount_weight(1.0, 2.0, 0.035) == pytest.approx(1 / 1.035)
    assert discount_weight(0.5, 1.5, 0.035) == pytest.approx((0.5 + 0.5 / 1.035) / 1.0)


# ---- Manca baseline-utility adjustment ------------------------------------------------------

MANCA = pd.DataFrame({  # research note §10 (COMP, exact by rational arithmetic)
    "treat": [0, 0, 0, 0, 1, 1, 1, 1],
    "u0": [0.5, 0.7, 0.6, 0.8, 0.4, 0.6, 0.7, 0.5],
    "qaly": [0.55, 0.72, 0.64, 0.81, 0.52, 0.70, 0.78, 0.60]})


def test_manca_worked_example():
    X = np.column_stack([np.ones(8), MANCA.treat, MANCA.u0])
    beta = boot.weighted_ols(X, MANCA.qaly.to_numpy(), np.ones((1, 8)))[0]
    np.testing.assert_allclose(beta, [0.1145, 0.057, 0.87], atol=1e-12)
    unadj = MANCA.qaly[MANCA.treat == 1].mean() - MANCA.qaly[MANCA.treat == 0].mean()
    assert unadj == pytest.approx(-0.030)


# ---- ICER, quadrants, CEAC, WELLBY ----------------------------------------------------------

def test_quadrant_and_icer():
    assert E.quadrant(100, 0.01) == "NE" and E.quadrant(-100, 0.01) == "SE"
    assert E.quadrant(-100, -0.01) == "SW" and E.quadrant(100, -0.01) == "NW"
    assert E.icer(1000, 0.05) == pytest.approx(20000)
    assert np.isnan(E.icer(1000, 0.0))


def test_ceac_limits():
    rng = np.random.default_rng(0)
    dc = rng.normal(300, 500, 20_000)
    de = rng.normal(0.02, 0.03, 20_000)
    p = E.ceac(dc, de, [0.0, 1e12])
    assert p[0] == np.mean(dc < 0)  # lambda -> 0: probability of saving money
    assert p[1] == np.mean(de > 0)  # lambda -> infinity: probability of a QALY gain
    # monotone in lambda when every replicate is in the NE quadrant
    p2 = E.ceac(np.abs(dc), np.abs(de), np.linspace(0, 1e5, 50))
    assert np.all(np.diff(p2) >= 0)
    # pairwise INMB at lambda = threshold: a replicate exactly on the line is not cost-effective
    assert E.ceac([200.0], [0.01], [20000.0])[0] == 0.0


def test_wellby_vectors():
    # research note §7: mean change +0.5 sustained a year for 40 people = 20 WELLBYs = GBP 260,000
    per_person = auc([0, 1], [0.5, 0.5])
    assert 40 * per_person == pytest.approx(20)
    assert E.wellby_value(40 * per_person, 13000) == pytest.approx(260_000)
    assert E.wellby_value(20, 10000) == pytest.approx(200_000)
    assert E.wellby_value(20, 16000) == pytest.approx(320_000)
    assert E.wellby_value(auc([0, 2], [0.2, 0.2]), 13000) == pytest.approx(5200)
    assert E.wellby_value(1, 13000, uprate=1.1) == pytest.approx(14300)


# ---- participant table and CEA on a hand-built trial ----------------------------------------

def _trial(n_per_site=6, seed=0, lose_every=None):
    """Four sites (two per arm), baseline + 6 + 12 months; service use per recall period.
    With ``lose_every=k`` every k-th participant misses the 12-month visit (no utility,
    outcomes or service use then)."""
    rng = np.random.default_rng(seed)
    sites = ["A", "B", "C", "D"]
    arms = {"A": "control", "B": "control", "C": "intervention", "D": "intervention"}
    pids = [f"X{i:03d}" for i in range(4 * n_per_site)]
    site_of = {p: sites[i // n_per_site] for i, p in enumerate(pids)}
    tps = ["baseline", "m6", "m12"]
    rows, su = [], []
    for i, p in enumerate(pids):
        lost = bool(lose_every) and i % lose_every == lose_every - 1
        for j, tp in enumerate(tps):
            miss = lost and tp == "m12"
            row = dict(participant_id=p, timepoint=tp, month=[0.0, 6.0, 12.0][j],
                       site_id=site_of[p], arm=arms[site_of[p]], age=float(30 + i),
                       days_from_baseline=[0, 180, 370][j],
                       eq5d5l_index=float(np.clip(rng.normal(0.7, 0.15), -0.2, 1)),
                       eq5d5l_method="dsu", ons4_life_satisfaction=float(rng.integers(0, 11)),
                       wemwbs_total=float(rng.integers(20, 70)))
            visit = dict(participant_id=p, timepoint=tp, gp_contacts=int(rng.poisson(2)),
                         social_worker_contacts=int(rng.poisson(1)))
            if miss:
                row.update(eq5d5l_index=np.nan, ons4_life_satisfaction=np.nan, wemwbs_total=np.nan)
            else:
                su.append(visit)
            rows.append(row)
    linked = pd.DataFrame(rows)
    linked["timepoint"] = pd.Categorical(linked.timepoint, categories=tps, ordered=True)
    participants = pd.DataFrame(dict(participant_id=pids, site_id=[site_of[p] for p in pids],
                                     sessions_attended=[3 if arms[site_of[p]] == "intervention" else pd.NA
                                                        for p in pids]))
    return linked, pd.DataFrame(su), participants


ECON = dict(
    enabled=True, price_year="2023/24",
    unit_cost_overrides=[dict(item_id="sw_2022", unit_cost=100.0, price_year="2022/23",
                              source="test value", verification="TEST")],
    service_items=dict(gp_contacts=dict(unit_cost_item="gp_consultation_10min_2023", category="primary_care"),
                       social_worker_contacts=dict(unit_cost_item="sw_2022", units_per_contact=0.5,
                                                   category="social_care")),
    intervention_costs=[dict(name="training", per="site", hours=10, staff=2, unit_cost_item="sw_2022"),
                        dict(name="delivery", per="session", hours=1, unit_cost_item="sw_2022")],
    other_outcomes=["wemwbs_total"], bootstrap=dict(replicates=400))


def _econ(**kw):
    cfg = validate_config({"trial_id": "t", "economics": {**ECON, **kw}}, check_plan=False)
    return cfg["economics"]


def test_participant_table_costs_by_hand():
    linked, su, parts = _trial()
    econ = _econ()
    pd_ = E.participant_table(linked, su, parts, econ, intervention_arm="intervention")
    t = pd_.table.set_index("participant_id")
    f = 1.0431  # NHSCII 2022/23 -> 2023/24 (research note §10)
    gp, sw = 49 * f, 100 * f * 0.5
    p = "X000"  # control
    s = su[su.participant_id == p].set_index("timepoint")
    assert t.loc[p, "cost_bl"] == pytest.approx(s.gp_contacts["baseline"] * gp + s.social_worker_contacts["baseline"] * sw)
    fu = s.loc[["m6", "m12"]]
    assert t.loc[p, "cost_primary_care"] == pytest.approx(fu.gp_contacts.sum() * gp)  # no discounting <= 12 m
    assert t.loc[p, "cost_intervention"] == 0
    q = "X020"  # intervention site D with 6 participants: training shared, 3 sessions
    assert t.loc[q, "cost_intervention"] == pytest.approx(10 * 2 * 100 * f / 6 + 3 * 100 * f)
    s = su[su.participant_id == q].set_index("timepoint").loc[["m6", "m12"]]
    assert t.loc[q, "cost"] == pytest.approx(s.gp_contacts.sum() * gp + s.social_worker_contacts.sum() * sw
                                             + t.loc[q, "cost_intervention"])
    u = linked[linked.participant_id == q].eq5d5l_index.to_numpy()
    assert t.loc[q, "qaly"] == pytest.approx(0.25 * (u[0] + u[1]) + 0.25 * (u[1] + u[2]))
    assert t.loc[q, "utility_bl"] == pytest.approx(u[0])
    assert pd_.unit_costs.set_index("item_id").loc["sw_2022", "inflation_factor"] == pytest.approx(f)
    # observed times: the 12-month visit at day 370 is beyond a year and gets discounted
    obs = E.participant_table(linked, su, parts, _econ(time_basis="observed"), intervention_arm="intervention")
    t2 = obs.table.set_index("participant_id")
    assert t2.loc[q, "qaly"] == pytest.approx(auc([[0, 180 / 365.25, 370 / 365.25]], [u], 0.035)[0])


def test_missing_followup_cost_is_complete_case():
    linked, su, parts = _trial()
    su = su[~((su.participant_id == "X001") & (su.timepoint == "m6"))]
    t = E.participant_table(linked, su, parts, _econ(), intervention_arm="intervention").table
    t = t.set_index("participant_id")
    assert np.isnan(t.loc["X001", "cost"]) and np.isfinite(t.loc["X002", "cost"])


def test_cea_matches_statsmodels_and_is_reproducible():
    linked, su, parts = _trial(n_per_site=10, seed=3)
    econ = _econ()
    pdat = E.participant_table(linked, su, parts, econ, intervention_arm="intervention")
    res = E.cost_effectiveness(pdat, econ, seed=1, clustered=True)
    t = pdat.table
    X = sm.add_constant(np.column_stack([t.treat, t.utility_bl, t.cost_bl]))
    ref_c = sm.OLS(t.cost.to_numpy(), X).fit().params[1]
    ref_e = sm.OLS(t.qaly.to_numpy(), X).fit().params[1]
    cea = res["cea"]
    main = cea[cea.analysis == "cea_qaly"].set_index("measure")
    assert main.estimate["delta_cost"] == pytest.approx(ref_c, rel=1e-10)
    assert main.estimate["delta_qaly"] == pytest.approx(ref_e, rel=1e-10)
    assert main.estimate["icer"] == pytest.approx(ref_c / ref_e)
    assert main.quadrant["icer"] == E.quadrant(ref_c, ref_e)
    shares = main.estimate[[f"share_{q}" for q in ("NE", "SE", "SW", "NW")]]
    assert shares.sum() == pytest.approx(1.0)
    inmb = cea[(cea.analysis == "cea_qaly") & (cea.measure == "inmb")]
    assert list(inmb["lambda"]) == [20000, 30000, 25000, 35000]
    assert inmb.threshold.str.contains("2026").sum() == 2
    for r in inmb.itertuples():
        assert r.estimate == pytest.approx(r._3 * ref_e - ref_c)
    ceac = res["ceac"]
    reps = res["replicates"]
    lo = ceac.loc[ceac["lambda"] == 0, "prob_cost_effective"].iloc[0]
    assert lo == np.mean(reps.delta_cost_cea_qaly < 0)
    assert len(reps) == 400 and "delta_effect_wemwbs_total" in reps and "delta_effect_wellby" in reps
    res2 = E.cost_effectiveness(pdat, econ, seed=1, clustered=True)
    pd.testing.assert_frame_equal(res["cea"], res2["cea"])
    pd.testing.assert_frame_equal(res["replicates"], res2["replicates"])
    assert "two-stage" in cea.bootstrap.iloc[0]
    naive = E.cost_effectiveness(pdat, econ, seed=1, clustered=False)["cea"]
    assert "participants" in naive.bootstrap.iloc[0]
    wv = cea[(cea.analysis == "wellby")].set_index("measure")
    assert wv.estimate["wellby_value_central"] == pytest.approx(13000 * wv.estimate["delta_wellby"])


def test_placeholder_unit_cost_stops_with_a_clear_message():
    linked, su, parts = _trial()
    su = su.assign(inpatient_nights=0)
    econ = _econ(service_items=dict(inpatient_nights=dict(unit_cost_item="inpatient_night")),
                 intervention_costs=[])
    with pytest.raises(ValueError, match="inpatient_night.*PLACEHOLDER.*unit_cost_overrides"):
        E.participant_table(linked, su, parts, econ, intervention_arm="intervention")


def test_unknown_service_column_names_the_config_key():
    linked, su, parts = _trial()
    econ = _econ(service_items=dict(gp_visits=dict(unit_cost_item="gp_consultation_10min_2023")))
    with pytest.raises(ValueError, match="economics.service_items.gp_visits"):
        E.participant_table(linked, su, parts, econ, intervention_arm="intervention")
