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
