"""EQ-5D scoring: published vectors, full-table round trips, DSU age/sex bands, properties.

Expected values come from tests/instruments_vectors/ (transcribed from the reference note) or
from the published tables in tests/reference/eq5d/ (the R package eq5d's export, committed with
its provenance and licence; the code reads its own copy in analysis/instruments/data/), read
here with the csv module and evaluated with a separate plain loop, never from the scoring code.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import instruments

VECTORS = Path(__file__).parent / "instruments_vectors"
DATA = Path(instruments.__file__).parent / "data"
REFERENCE = Path(__file__).parent / "reference" / "eq5d"
TABLES = ["eq5d3l_valueset_uk_dolan1997.csv", "eq5d5l_valueset_england_devlin2018.csv",
          "eq5d5l_valueset_uk_rowen2026.csv", "eq5d5l_crosswalk_uk_vanhout2012.csv",
          "eq5d5l_to_3l_uk_dsu_hernandez_alava.csv"]
DIMS = ["MO", "SC", "UA", "PD", "AD"]


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def frame_of_states(instrument_id: str, states: list[str], **extra) -> pd.DataFrame:
    data = {f"{instrument_id}_{d + 1}": [int(s[d]) for s in states] for d in range(5)}
    data.update(extra)
    return pd.DataFrame(data)


def utility(instrument_id: str, states: list[str], **options) -> np.ndarray:
    frame_extra = options.pop("columns", {})
    out = instruments.score(instrument_id, frame_of_states(instrument_id, states, **frame_extra),
                            **options)
    return out[f"{instrument_id}_index"].to_numpy()


def additive_value(coefficients: dict[str, float], state: str) -> float:
    """Independent evaluation of an additive EQ-5D value set, in thousandths."""
    units = 0
    levels = [int(ch) for ch in state]
    for term, coef in coefficients.items():
        thousandths = int(round(coef * 1000))
        if term in ("StartValue", "FullHealth"):
            units += thousandths
        elif term == "AtLeastOne2Or3":
            units += thousandths if any(lv in (2, 3) for lv in levels) else 0
        elif term == "AtLeastOne3":
            units += thousandths if 3 in levels else 0
        else:
            dim, level = term[:2], int(term[2:])
            units += thousandths if levels[DIMS.index(dim)] == level else 0
    return units / 1000


def coefficients(filename: str) -> dict[str, float]:
    return {r["term"]: float(r["coefficient"]) for r in read_rows(REFERENCE / filename)}


ALL_5L = ["".join(map(str, s)) for s in itertools.product(range(1, 6), repeat=5)]
ALL_3L = ["".join(map(str, s)) for s in itertools.product(range(1, 4), repeat=5)]


# --------------------------------------------------------------------------- 3L

def test_eq5d3l_note_vectors_exact_to_3dp():
    rows = read_rows(VECTORS / "eq5d3l.csv")
    got = utility("eq5d3l", [r["state"] for r in rows])
    for row, value in zip(rows, got):
        assert value == float(row["value"]), row["state"]


def test_eq5d3l_all_243_states_match_independent_loop():
    coef = coefficients("eq5d3l_valueset_uk_dolan1997.csv")
    got = utility("eq5d3l", ALL_3L)
    expected = [additive_value(coef, s) for s in ALL_3L]
    assert list(got) == expected
    assert got.max() == 1.0 and got.min() == -0.594


def test_eq5d3l_method_column():
    out = instruments.score("eq5d3l", frame_of_states("eq5d3l", ["11111"]))
    assert out["eq5d3l_method"].tolist() == ["dolan1997"]


# --------------------------------------------------------------------------- 5L value sets

@pytest.mark.parametrize("method", ["devlin2018", "rowen2026"])
def test_5l_value_set_note_vectors(method):
    rows = read_rows(VECTORS / "eq5d5l_valuesets.csv")
    got = utility("eq5d5l", [r["state"] for r in rows], method=method)
    for row, value in zip(rows, got):
        assert value == float(row[method]), (method, row["state"])


@pytest.mark.parametrize("method, filename", [
    ("devlin2018", "eq5d5l_valueset_england_devlin2018.csv"),
    ("rowen2026", "eq5d5l_valueset_uk_rowen2026.csv"),
])
def test_5l_value_set_all_3125_states_match_independent_loop(method, filename):
    coef = coefficients(filename)
    got = utility("eq5d5l", ALL_5L, method=method)
    expected = [additive_value(coef, s) for s in ALL_5L]
    assert list(got) == expected


def test_5l_value_set_named_known_values():
    assert utility("eq5d5l", ["23245", "55555"], method="devlin2018").tolist() == [0.247, -0.285]
    assert utility("eq5d5l", ["11111", "55555"], method="rowen2026").tolist() == [1.0, -0.567]


# --------------------------------------------------------------------------- crosswalk

def test_crosswalk_note_vectors():
    rows = read_rows(VECTORS / "eq5d5l_crosswalk.csv")
    got = utility("eq5d5l", [r["state"] for r in rows], method="crosswalk")
    for row, value in zip(rows, got):
        assert value == float(row["value"]), row["state"]


def test_crosswalk_all_3125_states_round_trip():
    table = read_rows(REFERENCE / "eq5d5l_crosswalk_uk_vanhout2012.csv")
    assert len(table) == 3125
    states = [r["state"] for r in table]
    got = utility("eq5d5l", states, method="crosswalk")
    assert list(got) == [float(r["utility_3l"]) for r in table]


def test_crosswalk_is_monotone_in_every_dimension():
    # a property of the published table, checked exhaustively
    lookup = {r["state"]: float(r["utility_3l"])
              for r in read_rows(REFERENCE / "eq5d5l_crosswalk_uk_vanhout2012.csv")}
    for state in ALL_5L:
        for d in range(5):
            if state[d] != "5":
                worse = state[:d] + str(int(state[d]) + 1) + state[d + 1:]
                assert lookup[worse] <= lookup[state]


# --------------------------------------------------------------------------- DSU mapping

def test_dsu_note_vectors():
    rows = read_rows(VECTORS / "eq5d5l_dsu.csv")
    frame = frame_of_states("eq5d5l", [r["state"] for r in rows],
                            age=[int(r["age"]) for r in rows], sex=[r["sex"] for r in rows])
    got = instruments.score("eq5d5l", frame)["eq5d5l_index"].to_numpy()
    expected = np.array([float(r["value"]) for r in rows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-9)


def test_dsu_is_the_default_method():
    frame = frame_of_states("eq5d5l", ["12345"], age=[30], sex=["female"])
    out = instruments.score("eq5d5l", frame)
    assert out["eq5d5l_method"].tolist() == ["dsu"]
    assert out["eq5d5l_index"].iloc[0] == pytest.approx(0.06718718, abs=5e-9)


def _dsu_table() -> dict[tuple[str, str, str], float]:
    return {(r["state"], r["age_band"], r["sex"]): float(r["utility_3l"])
            for r in read_rows(REFERENCE / "eq5d5l_to_3l_uk_dsu_hernandez_alava.csv")}


AGE_EDGES = [(18, "18-34"), (34, "18-34"), (35, "35-44"), (44, "35-44"), (45, "45-54"),
             (54, "45-54"), (55, "55-64"), (64, "55-64"), (65, "65+"), (100, "65+")]


@pytest.mark.parametrize("sex", ["male", "female"])
def test_dsu_age_band_edges_against_table_rows(sex):
    table = _dsu_table()
    states = ["11111", "12345", "24112", "55555", "33333"]
    for age, band in AGE_EDGES:
        frame = frame_of_states("eq5d5l", states, age=[age] * len(states), sex=[sex] * len(states))
        got = instruments.score("eq5d5l", frame)["eq5d5l_index"].tolist()
        assert got == [table[(s, band, sex)] for s in states], (age, band)


def test_dsu_all_31250_rows_round_trip():
    table = read_rows(REFERENCE / "eq5d5l_to_3l_uk_dsu_hernandez_alava.csv")
    assert len(table) == 31250
    band_age = {"18-34": 18, "35-44": 40, "45-54": 54.5, "55-64": 60, "65+": 88}
    frame = frame_of_states("eq5d5l", [r["state"] for r in table],
                            age=[band_age[r["age_band"]] for r in table],
                            sex=[r["sex"] for r in table])
    got = instruments.score("eq5d5l", frame)["eq5d5l_index"].to_numpy()
    assert np.array_equal(got, np.array([float(r["utility_3l"]) for r in table]))


def test_dsu_age_and_sex_as_options_series_scalars_and_codes():
    frame = frame_of_states("eq5d5l", ["12345", "24112"])
    frame.index = ["p1", "p2"]
    expected = [0.06718718, 0.76065003]  # female 18-34, female 45-54 (note section 4.2)
    age = pd.Series([50, 30], index=["p2", "p1"])  # aligned on the index, not by position
    out = instruments.score("eq5d5l", frame, age=age, sex="female")
    np.testing.assert_allclose(out["eq5d5l_index"], expected, atol=5e-9)
    frame["dob_age"], frame["gender"] = [30, 50], [2, 2]
    out = instruments.score("eq5d5l", frame, age="dob_age", sex="gender", sex_codes={1: "male", 2: "female"})
    np.testing.assert_allclose(out["eq5d5l_index"], expected, atol=5e-9)
    out = instruments.score("eq5d5l", frame, age=np.array([30, 50]), sex=["F", "f"])
    np.testing.assert_allclose(out["eq5d5l_index"], expected, atol=5e-9)


def test_dsu_bad_age_or_sex_gives_nan_and_reason_for_that_row_only():
    frame = frame_of_states("eq5d5l", ["12345"] * 6,
                            age=[30, 17, 101, None, 30, 30],
                            sex=["female", "female", "female", "female", None, "other"])
    out = instruments.score("eq5d5l", frame)
    assert out["eq5d5l_index"].iloc[0] == pytest.approx(0.06718718, abs=5e-9)
    assert out["eq5d5l_index"].iloc[1:].isna().all()
    reasons = out["eq5d5l_reason"].tolist()
    assert pd.isna(reasons[0])
    assert "age 17 outside 18-100" in reasons[1]
    assert "age 101 outside 18-100" in reasons[2]
    assert reasons[3] == "age missing"
    assert reasons[4] == "sex missing"
    assert "sex 'other' not recognised" in reasons[5]


def test_dsu_without_age_or_sex_is_a_clear_error():
    frame = frame_of_states("eq5d5l", ["12345"])
    with pytest.raises(ValueError, match="needs age"):
        instruments.score("eq5d5l", frame)
    with pytest.raises(ValueError, match="needs sex"):
        instruments.score("eq5d5l", frame, age=40)
    with pytest.raises(ValueError, match="column 'agee' not in responses"):
        instruments.score("eq5d5l", frame, age="agee", sex="male")


# --------------------------------------------------------------------------- invalid input

def test_invalid_and_missing_levels():
    frame = pd.DataFrame({"eq5d5l_1": [1, 1, 1, 1], "eq5d5l_2": [7, 1, 1, 1],
                          "eq5d5l_3": [1, None, 1, 1], "eq5d5l_4": [1, 1, 2.5, 1],
                          "eq5d5l_5": [1, 1, 1, 1]})
    out = instruments.score("eq5d5l", frame, method="crosswalk")
    assert out["eq5d5l_index"].iloc[:3].isna().all()
    assert out["eq5d5l_index"].iloc[3] == 1.0
    assert out["eq5d5l_reason"].iloc[0] == "item eq5d5l_2 value 7 not in allowed codes 1-5"
    assert out["eq5d5l_reason"].iloc[1] == "item eq5d5l_3 missing"
    assert out["eq5d5l_reason"].iloc[2] == "item eq5d5l_4 value 2.5 not in allowed codes 1-5"
    assert pd.isna(out["eq5d5l_reason"].iloc[3])
    assert out["eq5d5l_method"].tolist() == ["crosswalk"] * 4


def test_unknown_method_and_missing_columns():
    frame = frame_of_states("eq5d5l", ["11111"])
    with pytest.raises(ValueError, match="unknown method 'tto'"):
        instruments.score("eq5d5l", frame, method="tto")
    with pytest.raises(ValueError, match=r"eq5d5l_3"):
        instruments.score("eq5d5l", frame.drop(columns="eq5d5l_3"), method="crosswalk")


# --------------------------------------------------------------------------- properties

VALUE_SETS = [("eq5d3l", None, 3), ("eq5d5l", "devlin2018", 5), ("eq5d5l", "rowen2026", 5)]


@pytest.mark.parametrize("instrument_id, method, levels", VALUE_SETS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_value_sets_worse_level_never_raises_utility(instrument_id, method, levels, data):
    state = data.draw(st.lists(st.integers(1, levels), min_size=5, max_size=5))
    dim = data.draw(st.integers(0, 4))
    if state[dim] == levels:
        return
    worse = list(state)
    worse[dim] += 1
    options = {"method": method} if method else {}
    u = utility(instrument_id, ["".join(map(str, state)), "".join(map(str, worse))], **options)
    assert u[1] <= u[0]
    assert -1 < u[1] <= 1


@settings(max_examples=40, deadline=None)
@given(levels=st.lists(st.lists(st.integers(1, 5), min_size=5, max_size=5), min_size=1, max_size=8),
       age=st.integers(18, 100), sex=st.sampled_from(["male", "female"]))
def test_dsu_utilities_within_published_range(levels, age, sex):
    states = ["".join(map(str, s)) for s in levels]
    u = utility("eq5d5l", states, columns={"age": [age] * len(states), "sex": [sex] * len(states)})
    assert np.all((u >= -0.53158) & (u <= 0.98853))  # UK range stated in the note


def test_scoring_10000_rows_scores_every_row():
    """Large frames are scored completely (speed is measured in benchmarks/run.py, not here)."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"eq5d5l_{d}": rng.integers(1, 6, 10_000) for d in range(1, 6)})
    frame["age"] = rng.integers(18, 90, 10_000)
    frame["sex"] = rng.choice(["male", "female"], 10_000)
    for method in ["dsu", "crosswalk", "devlin2018", "rowen2026"]:
        out = instruments.score("eq5d5l", frame, method=method)
        assert out["eq5d5l_index"].notna().all() and len(out) == len(frame), method


# --------------------------------------------------------------------------- shipped data

@pytest.mark.parametrize("name", TABLES)
def test_shipped_tables_identical_to_the_reference(name):
    assert (DATA / name).read_bytes() == (REFERENCE / name).read_bytes()


def test_reference_tables_are_the_recorded_export():
    """The committed reference is the eq5d export from the shared reference folder, unchanged
    (SHA-256 recorded when it was copied), with its provenance and licence beside it."""
    import hashlib
    recorded = dict(line.split()[::-1] for line in (REFERENCE / "SHA256SUMS.shared").read_text().splitlines())
    for name in TABLES:
        assert hashlib.sha256((REFERENCE / name).read_bytes()).hexdigest() == recorded[name], name
    readme = (REFERENCE / "README.md").read_text(encoding="utf-8")
    assert "bfdc7ca014bda447b38e5f4e68823b9ba4638a02" in readme and all(t in readme for t in TABLES)
    assert "Copyright (c) 2019 Fraser Morton" in (REFERENCE / "LICENSE").read_text()


def test_provenance_file_keeps_package_commit_and_sources():
    text = (DATA / "PROVENANCE.md").read_text(encoding="utf-8")
    for fact in ["bfdc7ca014bda447b38e5f4e68823b9ba4638a02", "fragla/eq5d", "Dolan",
                 "Devlin", "Rowen", "van Hout", "Hernández Alava", "MIT"]:
        assert fact in text
