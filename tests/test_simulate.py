import json

import numpy as np
import pandas as pd
import pytest

from analysis.simulate import SimulationParameters, simulate_trial, true_wemwbs_effect, write_trial


def test_committed_demo_is_reproduced_byte_for_byte(root, tmp_path):
    """data/raw/demo is exactly what `python -m analysis.simulate data/raw/demo` writes."""
    write_trial(tmp_path, SimulationParameters())
    committed = sorted(p.name for p in (root / "data/raw/demo").iterdir() if p.is_file() and p.name != "README.md")
    assert committed == sorted(p.name for p in tmp_path.iterdir())
    for name in committed:
        assert (tmp_path / name).read_bytes() == (root / "data/raw/demo" / name).read_bytes(), name


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    small = dict(n_sites=6, screened_per_site=15, truth_mc_draws=2000)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_trial(a, SimulationParameters(seed=1, **small))
    write_trial(b, SimulationParameters(seed=1, **small))
    write_trial(c, SimulationParameters(seed=2, **small))
    for p in a.iterdir():
        assert p.read_bytes() == (b / p.name).read_bytes()
    assert (a / "wave_baseline.csv").read_bytes() != (c / "wave_baseline.csv").read_bytes()


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(SimulationParameters(truth_mc_draws=2000))


def test_design_shape(trial):
    sites = trial["sites"]
    assert len(sites) == 12
    # stratified cluster allocation: both arms within every client group
    assert (sites.groupby("client_group").arm.nunique() == 2).all()
    assert 120 <= len(trial["participants"]) <= 200
    assert set(trial["participants"].site_id) <= set(sites.site_id)
    # every consented person in the screening log is a participant and vice versa
    consented = trial["screening_log"].query("consented == 'yes'").participant_id
    assert sorted(consented) == sorted(trial["participants"].participant_id)
    # screening reasons are given exactly where they apply
    s = trial["screening_log"]
    assert (s.query("eligible == 'no'").exclusion_reason != "").all()
    assert (s.query("consented == 'no'").decline_reason != "").all()


def test_items_on_their_scales(trial):
    w = pd.concat([trial["wave_baseline"], trial["wave_m3"], trial["wave_m9"]])
    ranges = {"wemwbs": (1, 5, 14), "eq5d5l": (1, 5, 5), "rguk": (1, 5, 27), "ucla3": (1, 3, 3), "ons4": (0, 10, 4)}
    for inst, (lo, hi, k) in ranges.items():
        cols = [f"{inst}_{i}" for i in range(1, k + 1)]
        vals = w[cols].stack().dropna().astype(int)
        assert vals.between(lo, hi).all(), inst
        assert vals.nunique() >= min(3, hi - lo + 1), inst


def test_followup_after_baseline_and_withdrawals_have_no_later_visits(trial):
    p = trial["participants"].set_index("participant_id")
    base = trial["wave_baseline"].set_index("participant_id").visit_date
    for tp in ("wave_m3", "wave_m9"):
        w = trial[tp].set_index("participant_id")
        assert (pd.to_datetime(w.visit_date) > pd.to_datetime(base.reindex(w.index))).all()
        wd = pd.to_datetime(p.withdrawal_date.reindex(w.index).replace("", None))
        assert not (pd.to_datetime(w.visit_date) > wd).any()


def test_loss_to_follow_up_is_mar_on_baseline_wellbeing():
    """Dropout depends on observed baseline wellbeing: responders had higher baseline scores."""
    t = simulate_trial(SimulationParameters(seed=11, n_sites=30, truth_mc_draws=2000))
    base = t["wave_baseline"].set_index("participant_id")
    total = base[[f"wemwbs_{k}" for k in range(1, 15)]].astype(float).sum(axis=1, min_count=14)
    seen = total.index.isin(t["wave_m9"].participant_id)
    assert total[seen].mean() - total[~seen].mean() > 1.0


def test_true_effect_matches_item_scale_theory():
    """Away from floor and ceiling, and with item noise wide enough (SD 0.6) that rounding is
    unbiased to within 0.1%,  the effect on the 14-item total
    is 14 x the latent item-level effect (an independent check of the Monte Carlo truth)."""
    p = SimulationParameters(wellbeing_mean=3.0, site_sd=0.05, participant_sd=0.1, occasion_sd=0.1,
                             item_sd=0.6, effect_latent=0.1, group_effects={
                                 "psychosis": 0.0, "common_mental_health": 0.0, "learning_disability": 0.0},
                             time_trend_per_followup=0.0, truth_mc_draws=200_000)
    assert true_wemwbs_effect(p, 0) == pytest.approx(14 * 0.1, rel=0.03)
    assert true_wemwbs_effect(SimulationParameters(effect_latent=0.0, truth_mc_draws=5000), 0) == 0.0


def test_ceiling_attenuates_the_true_effect():
    high = SimulationParameters(wellbeing_mean=4.6, truth_mc_draws=50_000)
    assert true_wemwbs_effect(high, 0) < 14 * high.effect_latent * 0.8


def test_truth_json_records_parameters(root):
    truth = json.loads((root / "data/raw/demo/truth.json").read_text())
    assert truth["parameters"]["seed"] == SimulationParameters().seed
    assert set(truth["true_effects"]["wemwbs_total"]) == {"m3", "m9"}
    assert truth["n_consented"] == len(pd.read_csv(root / "data/raw/demo/participants.csv"))


# ======================================================= single-arm and individually randomised

from analysis import simulate as simulate_module  # noqa: E402
from analysis.simulate_designs import (  # noqa: E402
    IndividualParameters, SingleArmParameters, simulate_individual, simulate_single_arm,
    true_individual_effects, true_single_arm_change)


def _csv_text(table: pd.DataFrame) -> pd.DataFrame:
    """A table as its CSV text reads back (strings, blanks as '')."""
    import io
    return pd.read_csv(io.StringIO(table.to_csv(index=False)), dtype=str, keep_default_na=False)


def _sum_items(wave: pd.DataFrame, inst: str, k: int) -> pd.Series:
    cols = [f"{inst}_{i}" for i in range(1, k + 1)]
    return wave.set_index("participant_id")[cols].astype(float).sum(axis=1, min_count=k)


@pytest.mark.parametrize("design", ["single_arm", "individual", "cpi_quasi", "c2_programme"])
def test_committed_design_is_reproduced_byte_for_byte(root, tmp_path, design):
    """data/raw/<design> is exactly what `python -m analysis.simulate --design <design>
    data/raw/<design>` writes (the command its README documents)."""
    simulate_module.main(["--design", design, str(tmp_path)])
    committed = sorted(p.name for p in (root / "data/raw" / design).iterdir()
                       if p.is_file() and p.name != "README.md")
    assert committed == sorted(p.name for p in tmp_path.iterdir())
    for name in committed:
        assert (tmp_path / name).read_bytes() == (root / "data/raw" / design / name).read_bytes(), name
    readme = (root / "data/raw" / design / "README.md").read_text()
    assert f"python -m analysis.simulate --design {design} data/raw/{design}" in readme


@pytest.fixture(scope="module")
def single_arm():
    return simulate_single_arm(SingleArmParameters(truth_mc_draws=2000))


@pytest.fixture(scope="module")
def individual():
    return simulate_individual(IndividualParameters(truth_mc_draws=2000))


def test_single_arm_has_no_arm_anywhere_and_two_populations(single_arm):
    tables = {k: v for k, v in single_arm.items() if k != "truth"}
    assert set(tables) == {"screening_log", "participants", "wave_baseline", "wave_m6", "wave_m12"}
    for name, t in tables.items():
        assert not any("arm" == c.lower() or c.lower().startswith("arm_") for c in t.columns), name
    p = single_arm["participants"]
    assert set(p.population) == {"service_user", "staff"}
    assert 4 <= p.site_id.nunique() <= 6
    assert 90 <= len(p) <= 180
    consented = single_arm["screening_log"].query("consented == 'yes'").participant_id
    assert sorted(consented) == sorted(p.participant_id)
    assert set(single_arm["screening_log"].site_id) == set(p.site_id)
    s = single_arm["screening_log"]
    assert (s.query("eligible == 'no'").exclusion_reason != "").all()
    assert (s.query("consented == 'no'").decline_reason != "").all()


def test_single_arm_items_sessions_withdrawals_and_dates(single_arm):
    w = pd.concat([single_arm[f"wave_{tp}"] for tp in ("baseline", "m6", "m12")])
    for inst, (lo, hi, k) in {"swemwbs": (1, 5, 7), "ucla3": (1, 3, 3), "ons4": (0, 10, 4)}.items():
        vals = w[[f"{inst}_{i}" for i in range(1, k + 1)]].stack().dropna().astype(int)
        assert vals.between(lo, hi).all() and vals.nunique() >= min(3, hi - lo + 1), inst
    p = _csv_text(single_arm["participants"]).set_index("participant_id")
    sessions = p.sessions_attended
    assert (sessions == "").sum() >= 3 and (sessions == "0").sum() >= 1  # unknown is not zero
    assert ((p.withdrawal_date == "") == (p.withdrawal_reason == "")).all()
    assert (p.withdrawal_date != "").sum() >= 3
    consent = pd.to_datetime(p.consent_date)
    visits = []
    for tp in ("baseline", "m6", "m12"):
        v = single_arm[f"wave_{tp}"].set_index("participant_id").visit_date.pipe(pd.to_datetime)
        assert (v >= consent.reindex(v.index)).all()
        for earlier in visits:
            both = v.index.intersection(earlier.index)
            assert (v[both] > earlier[both]).all()
        if visits:
            assert len(v) < len(visits[0])  # loss to follow-up
        wd = pd.to_datetime(p.withdrawal_date.reindex(v.index).replace("", None))
        assert not (v > wd).any()
        visits.append(v)


def test_individual_arm_only_in_participants_and_balanced_within_strata(individual):
    assert set(individual) == {"sites", "participants", "wave_baseline", "wave_m3", "wave_m6", "truth"}
    sites, p = individual["sites"], individual["participants"]
    assert list(sites.columns) == ["site_id", "recruitment_start", "recruitment_end"]
    assert 4 <= len(sites) <= 6 and set(p.site_id) == set(sites.site_id)
    assert set(p.arm) == {"control", "intervention"}
    for tp in ("baseline", "m3", "m6"):
        assert "arm" not in individual[f"wave_{tp}"].columns
    assert set(p.referral_route) == {"professional", "self"}
    counts = pd.crosstab([p.site_id, p.referral_route], p.arm)
    assert (counts.sub(counts.mean(axis=1), axis=0).abs() <= 1).all(axis=None)  # blocks of 2 and 4
    # sessions attended: blank in the control arm, some unknown in the intervention arm
    text = _csv_text(p)
    assert (text.query("arm == 'control'").sessions_attended == "").all()
    assert (text.query("arm == 'intervention'").sessions_attended == "").sum() >= 1
    # consented (hence randomised) in date order, within each centre's recruitment window
    window = sites.set_index("site_id")
    consent = pd.to_datetime(p.consent_date)
    assert consent.is_monotonic_increasing
    assert (consent >= pd.to_datetime(window.recruitment_start.reindex(p.site_id)).to_numpy()).all()
    assert (consent <= pd.to_datetime(window.recruitment_end.reindex(p.site_id)).to_numpy()).all()


def test_individual_prescored_outcome_has_one_decimal_and_gaps(individual):
    base = individual["wave_baseline"]
    for tp in ("baseline", "m3", "m6"):
        hours = _csv_text(individual[f"wave_{tp}"]).weekly_activity_hours
        given = hours[hours != ""]
        assert given.str.fullmatch(r"\d{1,2}\.\d").all(), tp
        assert given.astype(float).between(0, 80).all()
        assert (hours == "").sum() >= 1 and given.str.endswith(".0").mean() < 0.5
        assert len(individual[f"wave_{tp}"]) <= len(base)
    assert len(individual["wave_m6"]) < len(individual["wave_m3"]) < len(base)  # dropout
    vals = individual["wave_m6"][[f"wemwbs_{i}" for i in range(1, 15)]].stack().dropna().astype(int)
    assert vals.between(1, 5).all()


@pytest.fixture(scope="module")
def large_single_arm():
    """About 14,000 participants in 200 centres, nobody lost: sample means vs truth."""
    return simulate_single_arm(SingleArmParameters(
        seed=5, n_sites=200, screened_per_site=120, p_withdraw=0.0,
        retention_logit_intercept=(30.0, 30.0), p_item_missing=0.0, truth_mc_draws=200_000))


def test_single_arm_truth_matches_large_sample_mean_change(large_single_arm):
    t = large_single_arm
    pop = t["participants"].set_index("participant_id").population
    scores = {"swemwbs_total": ("swemwbs", 7), "ucla3_total": ("ucla3", 3)}
    for j, tp in enumerate(("m6", "m12")):
        assert len(t[f"wave_{tp}"]) == len(pop)
        for score, (inst, k) in scores.items():
            change = _sum_items(t[f"wave_{tp}"], inst, k) - _sum_items(t["wave_baseline"], inst, k)
            truth = t["truth"]["true_mean_change"][score][tp]
            for g in ("service_user", "staff"):
                c = change[pop.reindex(change.index) == g]
                assert abs(c.mean() - truth[g]) < 4 * c.std() / np.sqrt(len(c)) + 0.005, (score, tp, g)
            mix = t["truth"]["true_mean_change_enrolled_mix"][score][tp]
            assert abs(change.mean() - mix) < 4 * change.std() / np.sqrt(len(change)) + 0.005
    # service users, who start lower, gain more: the truth says so and so do the data
    assert t["truth"]["true_mean_change"]["swemwbs_total"]["m12"]["service_user"] > \
        t["truth"]["true_mean_change"]["swemwbs_total"]["m12"]["staff"] + 1.0


@pytest.fixture(scope="module")
def large_individual():
    """About 40,000 participants in 100 centres, nobody lost: arm differences vs truth."""
    return simulate_individual(IndividualParameters(
        seed=5, n_sites=100, recruited_per_site=400, p_withdraw=0.0,
        retention_logit_intercept=(30.0, 30.0), p_item_missing=0.0, p_activity_missing=0.0,
        truth_mc_draws=200_000))


def test_individual_truth_matches_large_sample_arm_difference(large_individual):
    t = large_individual
    arm = t["participants"].set_index("participant_id").arm

    def activity(wave):
        return wave.set_index("participant_id").weekly_activity_hours.astype(float)

    for tp in ("m3", "m6"):
        changes = {"wemwbs_total": _sum_items(t[f"wave_{tp}"], "wemwbs", 14)
                   - _sum_items(t["wave_baseline"], "wemwbs", 14),
                   "weekly_activity_hours": activity(t[f"wave_{tp}"]) - activity(t["wave_baseline"])}
        for score, change in changes.items():
            a = arm.reindex(change.index)
            c1, c0 = change[a == "intervention"], change[a == "control"]
            se = np.sqrt(c1.var() / len(c1) + c0.var() / len(c0))
            truth = t["truth"]["true_effects"][score][tp]
            assert abs(c1.mean() - c0.mean() - truth) < 4 * se + 0.005, (score, tp)


@pytest.mark.parametrize("design", ["single_arm", "individual"])
def test_designs_dropout_is_mar_on_baseline_wellbeing(design):
    """Responders at the last follow-up had higher baseline wellbeing (observed: MAR)."""
    if design == "single_arm":
        t = simulate_single_arm(SingleArmParameters(seed=11, n_sites=30, truth_mc_draws=2000))
        total, last = _sum_items(t["wave_baseline"], "swemwbs", 7), "wave_m12"
        gap = 0.5
    else:
        t = simulate_individual(IndividualParameters(seed=11, n_sites=30, truth_mc_draws=2000))
        total, last = _sum_items(t["wave_baseline"], "wemwbs", 14), "wave_m6"
        gap = 1.0
    seen = total.index.isin(t[last].participant_id)
    assert (~seen).sum() > 50
    assert total[seen].mean() - total[~seen].mean() > gap


def test_design_truths_match_item_scale_theory():
    """Mid-scale, with little spread and wide item noise, rounding is nearly unbiased: the
    change in a k-item total is k x the latent item-level change (independent of the MC)."""
    sa = SingleArmParameters(wellbeing_mean={"service_user": 3.0, "staff": 3.0}, site_sd=0.05,
                             participant_sd=0.1, occasion_sd=0.1, item_sd=0.6,
                             change_wellbeing={"service_user": (0.1, 0.2), "staff": (0.0, 0.0)},
                             truth_mc_draws=200_000)
    assert true_single_arm_change(sa, 1)["swemwbs_total"]["service_user"] == pytest.approx(7 * 0.2, rel=0.03)
    assert true_single_arm_change(sa, 0)["swemwbs_total"]["staff"] == 0.0
    ind = IndividualParameters(wellbeing_mean=3.0, site_sd=0.05, participant_sd=0.1, occasion_sd=0.1,
                               item_sd=0.6, referral_effect={"professional": 0.0, "self": 0.0},
                               age_effect_per_year=0.0, time_trend=(0.0, 0.0), effect_latent=(0.1, 0.1),
                               truth_mc_draws=200_000)
    assert true_individual_effects(ind, 0)["wemwbs_total"] == pytest.approx(14 * 0.1, rel=0.03)
    null = IndividualParameters(effect_latent=(0.0, 0.0), activity_effect_log=(0.0, 0.0),
                                truth_mc_draws=5000)
    assert true_individual_effects(null, 1) == {"wemwbs_total": 0.0, "weekly_activity_hours": 0.0}


@pytest.mark.parametrize("design", ["single_arm", "individual"])
def test_design_truth_json_records_parameters(root, design):
    truth = json.loads((root / "data/raw" / design / "truth.json").read_text())
    assert truth["design"] == design
    params = {"single_arm": SingleArmParameters, "individual": IndividualParameters}[design]()
    assert truth["parameters"] == json.loads(json.dumps(params.to_json_dict()))
    participants = pd.read_csv(root / "data/raw" / design / "participants.csv")
    if design == "single_arm":
        assert truth["n_consented"] == len(participants)
        assert set(truth["true_mean_change"]) >= {"swemwbs_total", "swemwbs_metric", "ucla3_total"}
        for score in truth["true_mean_change"].values():
            assert set(score) == {"m6", "m12"}
            assert all(set(v) == {"all", "service_user", "staff"} for v in score.values())
    else:
        assert truth["n_randomised"] == len(participants)
        assert set(truth["true_effects"]["wemwbs_total"]) == {"m3", "m6"}
        assert set(truth["true_effects"]["weekly_activity_hours"]) == {"m3", "m6"}
