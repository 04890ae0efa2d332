"""Summed scales and separately reported items: WEMWBS, SWEMWBS, UCLA-3, ONS4, RG-UK, SIS, ARC.

Expected values come from tests/instruments_vectors/ (transcribed from the reference note),
from the note's stated rules, or from the shipped SWEMWBS conversion table.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import instruments
from analysis.instruments import ProvisionalDefinitionWarning

VECTORS = Path(__file__).parent / "instruments_vectors"
DATA = Path(instruments.__file__).parent / "data"


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def items_frame(instrument_id: str, rows: list[list]) -> pd.DataFrame:
    n = len(rows[0])
    return pd.DataFrame(rows, columns=[f"{instrument_id}_{k}" for k in range(1, n + 1)])


def score_quietly(instrument_id: str, frame: pd.DataFrame, **options) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProvisionalDefinitionWarning)
        return instruments.score(instrument_id, frame, **options)


def parse_items(text: str) -> list[int]:
    return [int(x) for x in text.split()]


# --------------------------------------------------------------------------- WEMWBS

def test_wemwbs_note_vectors():
    rows = read_rows(VECTORS / "wemwbs.csv")
    out = instruments.score("wemwbs", items_frame("wemwbs", [parse_items(r["items"]) for r in rows]))
    assert out["wemwbs_total"].tolist() == [float(r["total"]) for r in rows]
    assert out["wemwbs_reason"].isna().all()


def test_wemwbs_missing_or_invalid_item_gives_nan_with_reason_and_other_rows_scored():
    good = [3] * 14
    missing = [3] * 14
    missing[2] = None
    invalid = [3] * 14
    invalid[4] = 6
    text = [3] * 14
    text[0] = "often"
    frame = items_frame("wemwbs", [good, missing, invalid, text, good])
    out = instruments.score("wemwbs", frame)
    assert out["wemwbs_total"].tolist()[0] == 42 and out["wemwbs_total"].tolist()[4] == 42
    assert out["wemwbs_total"].iloc[1:4].isna().all()
    assert out["wemwbs_reason"].iloc[1] == "item wemwbs_3 missing"
    assert out["wemwbs_reason"].iloc[2] == "item wemwbs_5 value 6 not in allowed codes 1-5"
    assert out["wemwbs_reason"].iloc[3] == "item wemwbs_1 value 'often' not in allowed codes 1-5"
    assert out.index.equals(frame.index)


def test_wemwbs_keeps_the_index_and_accepts_string_and_nullable_columns():
    frame = items_frame("wemwbs", [[3] * 14, [5] * 14])
    frame.index = pd.MultiIndex.from_tuples([("p1", "baseline"), ("p1", "m6")])
    frame["wemwbs_1"] = frame["wemwbs_1"].astype("Int64")
    frame["wemwbs_2"] = frame["wemwbs_2"].astype(str)
    frame["other"] = ["x", "y"]
    out = instruments.score("wemwbs", frame)
    assert out.index.equals(frame.index)
    assert out["wemwbs_total"].tolist() == [42, 70]


def test_wemwbs_prorating_is_off_by_default_and_capped():
    row = [4] * 14
    row[0] = None
    row[1] = None
    frame = items_frame("wemwbs", [row])
    assert np.isnan(instruments.score("wemwbs", frame)["wemwbs_total"].iloc[0])
    out = instruments.score("wemwbs", frame, max_missing=3)
    # mean of the 12 answered items (4) x 14 items
    assert out["wemwbs_total"].iloc[0] == 56
    assert out["wemwbs_n_missing"].iloc[0] == 2
    assert pd.isna(out["wemwbs_reason"].iloc[0])
    out = instruments.score("wemwbs", frame, max_missing=1)
    assert np.isnan(out["wemwbs_total"].iloc[0])
    assert "2 items missing, more than max_missing=1" in out["wemwbs_reason"].iloc[0]
    with pytest.raises(ValueError, match="documented limit of 3"):
        instruments.score("wemwbs", frame, max_missing=4)


def test_prorating_never_imputes_over_an_invalid_answer():
    row = [4] * 14
    row[0] = 9
    out = instruments.score("wemwbs", items_frame("wemwbs", [row]), max_missing=3)
    assert np.isnan(out["wemwbs_total"].iloc[0])
    assert "value 9" in out["wemwbs_reason"].iloc[0]


def test_missing_codes_option_treats_codes_as_missing():
    row = [3] * 14
    row[5] = -99
    row[6] = "UNK"
    out = instruments.score("wemwbs", items_frame("wemwbs", [row, [3] * 14]), missing_codes=[-99, "UNK"])
    assert out["wemwbs_reason"].iloc[0] == "item wemwbs_6 missing; item wemwbs_7 missing"
    assert out["wemwbs_total"].iloc[1] == 42


@settings(max_examples=50, deadline=None)
@given(items=st.lists(st.integers(1, 5), min_size=14, max_size=14), which=st.integers(0, 13))
def test_wemwbs_range_sum_and_monotonicity(items, which):
    better = list(items)
    better[which] = min(5, better[which] + 1)
    out = instruments.score("wemwbs", items_frame("wemwbs", [items, better]))["wemwbs_total"].tolist()
    assert 14 <= out[0] <= 70 and out[0] == sum(items)
    assert out[1] >= out[0]


@settings(max_examples=20, deadline=None)
@given(rows=st.lists(st.lists(st.one_of(st.integers(0, 6), st.none()), min_size=14, max_size=14),
                     min_size=1, max_size=6))
def test_rows_are_scored_independently(rows):
    frame = items_frame("wemwbs", rows)
    together = instruments.score("wemwbs", frame)
    for i in range(len(rows)):
        alone = instruments.score("wemwbs", frame.iloc[[i]])
        pd.testing.assert_frame_equal(together.iloc[[i]], alone)
        valid = all(v is not None and 1 <= v <= 5 for v in rows[i])
        assert (together["wemwbs_total"].iloc[i] == sum(rows[i])) if valid else \
            (np.isnan(together["wemwbs_total"].iloc[i]) and isinstance(together["wemwbs_reason"].iloc[i], str))


# --------------------------------------------------------------------------- SWEMWBS

def test_swemwbs_note_vectors_from_both_forms():
    for row in read_rows(VECTORS / "swemwbs.csv"):
        items = parse_items(row["items"])
        if row["form"] == "swemwbs":
            out = instruments.score("swemwbs", items_frame("swemwbs", [items]))
        else:
            out = instruments.score("swemwbs", items_frame("wemwbs", [items]), source="wemwbs")
        assert out["swemwbs_total"].iloc[0] == float(row["raw"]), row
        assert out["swemwbs_metric"].iloc[0] == float(row["metric"]), row


def test_swemwbs_conversion_table_in_full():
    table = read_rows(DATA / "swemwbs_conversion.csv")
    assert [int(r["raw"]) for r in table] == list(range(7, 36))
    rows = []
    for r in table:  # any answers that sum to the raw score
        raw = int(r["raw"])
        items = [1] * 7
        for k in range(raw - 7):
            items[k % 7] += 1
        rows.append(items)
    out = instruments.score("swemwbs", items_frame("swemwbs", rows))
    assert out["swemwbs_total"].tolist() == [float(r["raw"]) for r in table]
    assert out["swemwbs_metric"].tolist() == [float(r["metric"]) for r in table]
    metric = out["swemwbs_metric"].to_numpy()
    assert np.all(np.diff(metric) > 0)


def test_swemwbs_incomplete_form_has_no_metric_and_cannot_be_prorated():
    frame = items_frame("swemwbs", [[3, 3, None, 3, 3, 3, 3]])
    out = instruments.score("swemwbs", frame)
    assert out[["swemwbs_total", "swemwbs_metric"]].isna().all(axis=None)
    assert out["swemwbs_reason"].iloc[0] == "item swemwbs_3 missing"
    with pytest.raises(ValueError, match="limit of 0"):
        instruments.score("swemwbs", frame, max_missing=1)


def test_swemwbs_from_wemwbs_names_the_wemwbs_column_in_reasons():
    row = [3] * 14
    row[5] = None  # WEMWBS item 6 = SWEMWBS item 4
    row[4] = None  # WEMWBS item 5 is not a SWEMWBS item
    out = instruments.score("swemwbs", items_frame("wemwbs", [row]), source="wemwbs")
    assert out["swemwbs_reason"].iloc[0] == "item wemwbs_6 missing"
    with pytest.raises(ValueError, match="swemwbs_1"):
        instruments.score("swemwbs", items_frame("wemwbs", [row]))


# --------------------------------------------------------------------------- UCLA-3

def test_ucla3_note_vectors_and_missing():
    rows = read_rows(VECTORS / "ucla3.csv")
    frame = items_frame("ucla3", [parse_items(r["items"]) for r in rows] + [[1, None, 2]])
    out = instruments.score("ucla3", frame)
    assert out["ucla3_total"].iloc[:-1].tolist() == [float(r["total"]) for r in rows]
    assert np.isnan(out["ucla3_total"].iloc[-1])
    assert out["ucla3_reason"].iloc[-1] == "item ucla3_2 missing"


def test_ucla3_cutoff_is_an_override_band():
    bands = [{"label": "not lonely", "min": 3, "max": 5}, {"label": "lonely", "min": 6, "max": 9}]
    frame = items_frame("ucla3", [[1, 2, 2], [2, 2, 2], [3, 3, 3]])
    out = instruments.score("ucla3", frame, overrides={"scoring": {"bands": bands}})
    assert out["ucla3_total_band"].tolist() == ["not lonely", "lonely", "lonely"]


# --------------------------------------------------------------------------- ONS4

def test_ons4_note_threshold_vectors():
    rows = read_rows(VECTORS / "ons4.csv")
    position = {"life_satisfaction": 0, "worthwhile": 1, "happiness": 2, "anxiety": 3}
    for row in rows:
        answers = [5, 5, 5, 5]
        answers[position[row["output"]]] = int(row["value"])
        out = instruments.score("ons4", items_frame("ons4", [answers]))
        assert out[f"ons4_{row['output']}"].iloc[0] == float(row["value"])
        assert out[f"ons4_{row['output']}_band"].iloc[0] == row["band"], row


def test_ons4_items_are_independent_and_invalid_values_flagged():
    frame = items_frame("ons4", [[7, None, 11, 2.5], [8, 9, 10, 0]])
    out = instruments.score("ons4", frame)
    assert out["ons4_life_satisfaction"].iloc[0] == 7
    assert out["ons4_life_satisfaction_band"].iloc[0] == "high"
    assert out.loc[0, ["ons4_worthwhile", "ons4_happiness", "ons4_anxiety"]].isna().all()
    assert out["ons4_reason"].iloc[0] == ("item ons4_2 missing; "
                                          "item ons4_3 value 11 not in allowed codes 0-10; "
                                          "item ons4_4 value 2.5 not in allowed codes 0-10")
    assert pd.isna(out["ons4_reason"].iloc[1])
    assert list(out.columns) == [
        "ons4_life_satisfaction", "ons4_life_satisfaction_band", "ons4_worthwhile",
        "ons4_worthwhile_band", "ons4_happiness", "ons4_happiness_band", "ons4_anxiety",
        "ons4_anxiety_band", "ons4_reason"]


# --------------------------------------------------------------------------- RG-UK

def rguk_row(counts: dict[int, int]) -> list[int]:
    row = []
    for code, n in counts.items():
        row += [code] * n
    assert len(row) == 27
    return row


def test_rguk_provisional_note_vectors():
    frame = items_frame("rguk", [rguk_row({5: 27}), rguk_row({3: 27}),
                                 rguk_row({2: 10, 4: 5, 5: 12})])
    with pytest.warns(ProvisionalDefinitionWarning, match="rguk"):
        out = instruments.score("rguk", frame)
    assert out["rguk_total"].tolist() == [0, 27, 15]
    assert [c for c in out.columns] == ["rguk_total", "rguk_reason"]  # no subscales by default


def test_rguk_count_self_switch():
    frame = items_frame("rguk", [rguk_row({1: 7, 3: 10, 5: 10})])
    assert score_quietly("rguk", frame)["rguk_total"].iloc[0] == 10
    assert score_quietly("rguk", frame, count_self=True)["rguk_total"].iloc[0] == 17
    assert score_quietly("rguk", frame, count_self=False)["rguk_total"].iloc[0] == 10


def test_rguk_subscales_from_trial_config():
    subscales = {"domestic": [1, 2, 3], "expert_advice": [4, 5]}
    frame = items_frame("rguk", [rguk_row({2: 2, 5: 3, 3: 22})])
    out = score_quietly("rguk", frame, overrides={"subscales": subscales})
    assert out["rguk_domestic"].iloc[0] == 2 and out["rguk_expert_advice"].iloc[0] == 0


# --------------------------------------------------------------------------- SIS and ARC (provisional)

def test_sis_provisional_reverse_keying_and_subscales():
    # isolation items 1-7 reverse-keyed (5 - code) under the provisional definition
    frame = items_frame("sis", [[1] * 7 + [4] * 15, [4] * 22])
    with pytest.warns(ProvisionalDefinitionWarning, match="sis"):
        out = instruments.score("sis", frame)
    assert out["sis_social_isolation"].tolist() == [28, 7]
    assert out["sis_social_relations"].tolist() == [32, 32]
    assert out["sis_social_acceptance"].tolist() == [28, 28]
    assert out["sis_total"].tolist() == [88, 67]


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.integers(1, 4), min_size=22, max_size=22), which=st.integers(0, 21))
def test_sis_reverse_keyed_items_move_the_total_the_other_way(items, which):
    higher = list(items)
    higher[which] = min(4, higher[which] + 1)
    total = score_quietly("sis", items_frame("sis", [items, higher]))["sis_total"].tolist()
    assert 22 <= total[0] <= 88
    if which < 7:
        assert total[1] <= total[0]
    else:
        assert total[1] >= total[0]


def test_arc_provisional_binary_vectors():
    social_support = [0] * 50
    for k in (21, 22, 23):  # items of the provisional social_support block (21-25)
        social_support[k - 1] = 1
    frame = items_frame("arc", [[1] * 50, social_support, [1] * 49 + [2]])
    with pytest.warns(ProvisionalDefinitionWarning, match="arc"):
        out = instruments.score("arc", frame)
    assert out["arc_total"].iloc[0] == 50
    assert out["arc_social_support"].iloc[1] == 3 and out["arc_total"].iloc[1] == 3
    assert np.isnan(out["arc_total"].iloc[2]) and np.isnan(out["arc_recovery_experience"].iloc[2])
    assert out["arc_substance_use_and_sobriety"].iloc[2] == 5  # other subscales still scored
    assert out["arc_reason"].iloc[2] == "item arc_50 value 2 not in allowed codes 0-1"
    subscale_cols = [c for c in out.columns if c not in ("arc_total", "arc_reason")]
    assert len(subscale_cols) == 10


# --------------------------------------------------------------------------- edge cases

def test_blank_form_gets_one_reason_and_empty_frames_score():
    frame = items_frame("wemwbs", [[None] * 14, [3] * 14])
    out = instruments.score("wemwbs", frame)
    assert out["wemwbs_reason"].iloc[0] == "all 14 items missing"
    assert out["wemwbs_total"].iloc[1] == 42
    empty = instruments.score("wemwbs", frame.iloc[:0])
    assert list(empty.columns) == ["wemwbs_total", "wemwbs_reason"] and len(empty) == 0


def test_duplicate_index_labels_are_kept_in_order():
    frame = items_frame("ucla3", [[1, 1, 1], [3, 3, 3], [2, 2, 2]])
    frame.index = ["p1", "p1", "p2"]
    out = instruments.score("ucla3", frame)
    assert out.index.tolist() == ["p1", "p1", "p2"]
    assert out["ucla3_total"].tolist() == [3, 9, 6]


def test_prorating_options_refused_where_no_missing_items_are_allowed():
    frame = items_frame("eq5d5l", [[1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="limit of 0"):
        instruments.score("eq5d5l", frame, method="crosswalk", max_missing=1)
    with pytest.raises(ValueError, match="limit of 0"):
        instruments.score("ucla3", items_frame("ucla3", [[1, 1, 1]]), max_missing=1)
