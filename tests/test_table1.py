"""Table 1: summaries against hand-computed values; missing counts; levels absent in an arm;
demo counts against the raw participants file; no p-values."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.table1 import baseline_frame, table1


@pytest.fixture
def frame():
    return pd.DataFrame({
        "arm": ["a"] * 6 + ["b"] * 4,
        "age": [1, 2, 3, 4, 10, None, 20, 30, 40, 50],
        "sex": ["female", "male", "female", None, "female", "female", "female", "female", "", "female"],
    })


def test_continuous_summaries_by_hand(frame):
    t = table1(frame, ["a", "b"], ["age"], []).set_index(["variable", "arm"])
    a = t.loc[("age", "a")]
    # 1, 2, 3, 4, 10: mean 4; squared deviations 9+4+1+0+36 = 50, var 50/4; median 3;
    # type-7 quartiles: positions 1 and 3 (0-based) of the sorted values -> 2 and 4
    assert (a.n, a.missing) == (5, 1)
    assert a["mean"] == 4 and a.sd == pytest.approx(math.sqrt(12.5)) and a["median"] == 3
    assert (a.q1, a.q3) == (2, 4)
    b = t.loc[("age", "b")]
    # 20, 30, 40, 50: quartile positions 0.75 and 2.25 -> 27.5 and 42.5
    assert (b.n, b.missing, b["mean"], b["median"], b.q1, b.q3) == (4, 0, 35, 35, 27.5, 42.5)
    assert b.sd == pytest.approx(math.sqrt(500 / 3))
    al = t.loc[("age", "all")]
    assert (al.n, al.missing) == (9, 1) and al["mean"] == pytest.approx(160 / 9)


def test_categorical_percent_of_non_missing_and_zero_levels(frame):
    t = table1(frame, ["a", "b"], [], ["sex"])
    get = lambda arm, lev: t[(t.arm == arm) & (t.level == lev)].iloc[0]  # noqa: E731
    assert (get("a", "female")["count"], get("a", "female").n, get("a", "female").missing) == (4, 5, 1)
    assert get("a", "female").percent == pytest.approx(80.0)
    assert (get("b", "male")["count"], get("b", "male").percent) == (0, 0.0)     # level absent in arm b: n = 0
    assert get("b", "female").n == 3 and get("b", "female").missing == 1     # "" counts as missing
    assert get("all", "female")["count"] == 7 and get("all", "female").n == 8


def test_no_p_values_and_single_arm_has_no_overall_column(frame):
    t = table1(frame, ["a", "b"], ["age"], ["sex"])
    assert not any("p" == c or c.startswith("p_") for c in t.columns)
    one = table1(frame[frame.arm == "a"], ["a"], ["age"], ["sex"])
    assert set(one.arm) == {"a"}


def test_demo_counts_match_raw_participants(demo_prepared, root):
    t, linked = demo_prepared, demo_prepared["linked"]
    tab = table1(baseline_frame(t["participants"], linked, ["wemwbs_total"]), ["control", "intervention"],
                 ["age", "wemwbs_total"], ["sex", "client_group"])
    raw = root / "data/raw/demo"
    parts = pd.read_csv(raw / "participants.csv")
    sites = pd.read_csv(raw / "sites.csv").set_index("site_id")
    parts["arm"] = parts.site_id.map(sites.arm)
    for arm in ("control", "intervention"):
        p = parts[parts.arm == arm]
        row = tab[(tab.variable == "participants") & (tab.arm == arm)].iloc[0]
        assert row["count"] == len(p)
        age = tab[(tab.variable == "age") & (tab.arm == arm)].iloc[0]
        assert age["mean"] == pytest.approx(p.age.mean()) and age.sd == pytest.approx(p.age.std())
        for sex, n in p.sex.value_counts().items():
            assert tab[(tab.variable == "sex") & (tab.arm == arm) & (tab.level == sex)].iloc[0]["count"] == n
    wem = tab[(tab.variable == "wemwbs_total") & (tab.arm == "all")].iloc[0]
    bl = linked[linked.timepoint == "baseline"].wemwbs_total
    assert (wem.n, wem.missing) == (bl.notna().sum(), bl.isna().sum())
    assert wem["median"] == np.median(bl.dropna())
