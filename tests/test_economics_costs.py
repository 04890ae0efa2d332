"""Unit-cost table, NHSCII inflation and trial overrides (analysis.costs).

Inflation factors and the worked example are the research note's (shared/reference/
instruments.md §10, COMP from the NHSCII pay-and-prices rates)."""

import numpy as np
import pandas as pd
import pytest

from analysis import costs as C


@pytest.fixture(scope="module")
def index():
    return C.load_inflation_index()


@pytest.mark.parametrize("a, b, factor", [
    ("2022/23", "2023/24", 1.043100), ("2021/22", "2023/24", 1.119455),
    ("2019/20", "2023/24", 1.176930), ("2020/21", "2022/23", 1.100889),
    ("2015/16", "2023/24", 1.262338)])
def test_nhscii_factors(index, a, b, factor):
    assert C.inflation_factor(a, b, index) == pytest.approx(factor, abs=5e-7)
    assert C.inflation_factor(b, a, index) == pytest.approx(1 / factor, abs=5e-7)


def test_worked_example_and_bounds(index):
    assert round(49 * C.inflation_factor("2022/23", "2023/24", index), 2) == 51.11
    assert C.inflation_factor("2024/25", "2024/25", index) == 1.0
    with pytest.raises(C.CostError, match="2024/25 is outside.*inflation_index_file"):
        C.inflation_factor("2022/23", "2024/25", index)
    with pytest.raises(C.CostError, match="YYYY/YY"):
        C.inflation_factor("2022", "2023/24", index)


def test_shipped_table_has_source_year_and_grade_on_every_row():
    t = C.load_unit_costs()
    assert t.item_id.is_unique
    priced = t[t.unit_cost.notna()]
    assert (priced.source.str.len() > 10).all() and priced.price_year.str.match(r"^\d{4}/\d{2}$").all()
    assert set(t.verification) <= {"3P", "PLACEHOLDER"}
    assert t.set_index("item_id").loc["ae_attendance", "unit_cost"] == 280
    assert pd.isna(t.set_index("item_id").loc["inpatient_night", "unit_cost"])


def test_trial_file_and_overrides_replace_rows(tmp_path, index):
    f = tmp_path / "uc.csv"
    f.write_text("item_id,unit_cost,price_year,source\nae_attendance,300,2023/24,trial finance office\n"
                 "peer_worker_hour,30,2023/24,trial budget\n")
    t = C.load_unit_costs(f, [dict(item_id="inpatient_night", unit_cost=400.0, price_year="2022/23",
                                   source="local tariff", verification="TRIAL")]).set_index("item_id")
    assert t.loc["ae_attendance", "unit_cost"] == 300 and t.loc["ae_attendance", "verification"] == "trial-supplied"
    assert t.loc["peer_worker_hour", "unit_cost"] == 30
    assert t.loc["inpatient_night", "unit_cost"] == 400
    priced = C.price_unit_costs(t.reset_index(), ["inpatient_night"], "2023/24", index)
    assert priced.unit_cost_inflated.iloc[0] == pytest.approx(400 * 1.0431)


def test_bad_unit_cost_file_names_line_and_column(tmp_path):
    f = tmp_path / "uc.csv"
    f.write_text("item_id,unit_cost,price_year,source\nx,-5,2023/24,s\n")
    with pytest.raises(C.CostError, match="line 2, column unit_cost"):
        C.load_unit_costs(f)
    f.write_text("item_id,unit_cost,price_year,source\nx,5,2023-24,s\n")
    with pytest.raises(C.CostError, match="line 2, column price_year"):
        C.load_unit_costs(f)


def test_trial_inflation_index_extends_years(tmp_path):
    f = tmp_path / "idx.csv"
    f.write_text("year,pay_and_prices_pct\n2024/25,3.0\n")
    idx = C.load_inflation_index(f)
    assert C.inflation_factor("2023/24", "2024/25", idx) == pytest.approx(1.03)
    assert C.inflation_factor("2022/23", "2024/25", idx) == pytest.approx(1.0431 * 1.03)


def test_intervention_costs_components():
    parts = pd.DataFrame(dict(participant_id=list("abcde"), site_id=["S1", "S1", "S2", "S3", "S3"],
                              arm=["intervention"] * 3 + ["control"] * 2,
                              sessions_attended=[2, pd.NA, 5, pd.NA, pd.NA]))
    priced = pd.DataFrame(dict(item_id=["h"], unit_cost_inflated=[50.0]))
    comps = [dict(name="training", per="site", hours=7, staff=2, unit_cost_item="h"),
             dict(name="pp", per="participant", hours=1, unit_cost_item="h"),
             dict(name="sess", per="session", hours=1.5, unit_cost_item="h")]
    got = C.intervention_costs(parts, comps, priced, "intervention").set_index("participant_id")
    assert list(got.intervention_training) == [350, 350, 700, 0, 0]  # 700 per site shared
    assert list(got.intervention_pp) == [50, 50, 50, 0, 0]
    # b's attendance is unknown: its session cost is unknown (NaN), never 0
    sess = got.intervention_sess.tolist()
    assert sess[0] == 150 and np.isnan(sess[1]) and sess[2:] == [375, 0, 0]
