import pandas as pd
import pytest


@pytest.fixture(scope="module")
def linked(demo_prepared):
    return demo_prepared, demo_prepared["linked"]


def test_one_row_per_participant_and_timepoint(linked):
    t, lk = linked
    assert len(lk) == len(t["participants"]) * 3
    assert not lk.duplicated(["participant_id", "timepoint"]).any()
    assert list(lk.timepoint.cat.categories) == ["baseline", "m3", "m9"]


def test_assessed_flag_matches_wave_files(linked, root):
    _, lk = linked
    m3 = pd.read_csv(root / "data/raw/demo/wave_m3.csv")
    got = set(lk[(lk.timepoint == "m3") & lk.assessed].participant_id)
    assert got == set(m3.participant_id)


def test_days_from_baseline_and_baseline_columns(linked, root):
    _, lk = linked
    base = pd.read_csv(root / "data/raw/demo/wave_baseline.csv", parse_dates=["visit_date"]).set_index("participant_id")
    m9 = pd.read_csv(root / "data/raw/demo/wave_m9.csv", parse_dates=["visit_date"]).set_index("participant_id")
    pid = m9.index[0]
    row = lk[(lk.participant_id == pid) & (lk.timepoint == "m9")].iloc[0]
    assert row.days_from_baseline == (m9.visit_date[pid] - base.visit_date[pid]).days
    items = [f"wemwbs_{k}" for k in range(1, 15)]
    if base.loc[pid, items].notna().all():
        assert row.wemwbs_total_bl == base.loc[pid, items].sum()
    assert (lk[lk.timepoint == "baseline"].days_from_baseline.dropna() == 0).all()


def test_arm_and_site_carried_from_sites_file(linked, root):
    _, lk = linked
    sites = pd.read_csv(root / "data/raw/demo/sites.csv").set_index("site_id")
    assert (lk.arm == lk.site_id.map(sites.arm)).all()
