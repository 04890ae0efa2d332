"""Definitions as data: registry, validation, overrides, switches, verification status."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from analysis import instruments
from analysis.instruments import DefinitionError

EXPECTED_IDS = {"wemwbs", "swemwbs", "eq5d3l", "eq5d5l", "ons4", "ucla3", "rguk", "sis", "arc"}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "instruments.md"


def test_list_instruments():
    assert EXPECTED_IDS <= set(instruments.list_instruments())


@pytest.mark.parametrize("instrument_id", sorted(EXPECTED_IDS))
def test_every_definition_has_source_and_verification(instrument_id):
    defn = instruments.get_definition(instrument_id)
    assert defn["id"] == instrument_id
    assert defn["source"]["citation"]
    assert defn["verification"]
    assert all("status" in entry and "source" in entry for entry in defn["verification"].values())


@pytest.mark.parametrize("instrument_id, n_items, codes", [
    ("wemwbs", 14, [1, 2, 3, 4, 5]), ("swemwbs", 7, [1, 2, 3, 4, 5]), ("eq5d3l", 5, [1, 2, 3]),
    ("eq5d5l", 5, [1, 2, 3, 4, 5]), ("ons4", 4, list(range(11))), ("ucla3", 3, [1, 2, 3]),
    ("rguk", 27, [1, 2, 3, 4, 5]),
])
def test_item_counts_and_codes_from_the_note(instrument_id, n_items, codes):
    defn = instruments.get_definition(instrument_id)
    assert len(defn["items"]) == n_items
    assert defn["response"]["codes"] == codes


def test_verified_instruments_do_not_warn_and_provisional_ones_do():
    frame = pd.DataFrame({f"ucla3_{k}": [1] for k in (1, 2, 3)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instruments.score("ucla3", frame)
    for instrument_id in ("rguk", "sis", "arc"):
        assert instruments.provisional_facts(instruments.get_definition(instrument_id))


@pytest.mark.parametrize("instrument_id", ["wemwbs", "swemwbs", "eq5d3l", "eq5d5l", "ons4", "ucla3"])
def test_verified_instruments_have_no_provisional_facts(instrument_id):
    assert instruments.provisional_facts(instruments.get_definition(instrument_id)) == []


def test_strict_mode_refuses_provisional_facts():
    frame = pd.DataFrame({f"rguk_{k}": [2] for k in range(1, 28)})
    with pytest.raises(ValueError, match="provisional"):
        instruments.score("rguk", frame, strict=True)


def test_trial_config_can_confirm_or_replace_provisional_facts():
    frame = pd.DataFrame({f"rguk_{k}": [2] for k in range(1, 28)})
    confirmed = {fact: {"status": "verified", "source": "trial SAP v1.2, checked against Webber & Huxley 2007"}
                 for fact in instruments.provisional_facts(instruments.get_definition("rguk"))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = instruments.score("rguk", frame, overrides={"verification": confirmed})
    assert out["rguk_total"].iloc[0] == 27


def test_overrides_mark_touched_facts_and_leave_the_builtin_untouched():
    defn = instruments.get_definition("rguk", {"subscales": {"domestic": [1, 2, 3]}})
    assert defn["verification"]["subscales"]["status"] == "trial-config"
    assert defn["verification"]["subscales"]["was"]["status"] == "provisional"
    assert defn["verification"]["scoring"]["status"] == "provisional"
    assert instruments.get_definition("rguk")["subscales"] == {}


def test_merge_overrides_semantics():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    merged = instruments.merge_overrides(base, {"a": {"c": [9]}, "d": None, "e": 5})
    assert merged == {"a": {"b": 1, "c": [9]}, "e": 5}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 3}


@pytest.mark.parametrize("overrides, message", [
    ({"subscales": {"bad": [99]}}, "outside 1..27"),
    ({"subscales": {"total": [1]}}, "lower_snake_case"),
    ({"scoring": {"item_scores": {9: 1}}}, "must map exactly the codes"),
    ({"colour": "red"}, "unknown override keys"),
    ({"id": "other"}, "may not change"),
    ({"missing": {"max_missing": 9}}, "exceeds"),
])
def test_bad_overrides_are_rejected(overrides, message):
    with pytest.raises(DefinitionError, match=message):
        instruments.get_definition("rguk", overrides)


def test_unknown_instrument_and_unknown_option():
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(ValueError, match="unknown instrument id 'phq9'.*wemwbs"):
        instruments.score("phq9", frame)
    with pytest.raises(ValueError, match=r"unknown options \['method'\]"):
        instruments.score("ucla3", pd.DataFrame({f"ucla3_{k}": [1] for k in (1, 2, 3)}), method="x")


def test_missing_item_columns_are_named():
    frame = pd.DataFrame({f"wemwbs_{k}": [3] for k in range(1, 13)})
    with pytest.raises(ValueError, match=r"\['wemwbs_13', 'wemwbs_14'\]"):
        instruments.score("wemwbs", frame)


def test_register_a_new_instrument_without_code(tmp_path):
    path = tmp_path / "gad2.yaml"
    path.write_text("""
id: gad2_demo
name: Two-item demo scale
source: {citation: "demo"}
response: {codes: [0, 1, 2, 3]}
items: [{number: 1}, {number: 2}]
scoring: {method: sum, direction: lower, bands: [{label: low, min: 0, max: 2}, {label: high, min: 3, max: 6}]}
missing: {max_missing: 0, max_missing_limit: 0}
verification: {items: {status: verified, source: demo}}
""", encoding="utf-8")
    try:
        assert instruments.register_definition(path) == "gad2_demo"
        out = instruments.score("gad2_demo", pd.DataFrame({"gad2_demo_1": [0, 3], "gad2_demo_2": [1, 3]}))
        assert out["gad2_demo_total"].tolist() == [1, 6]
        assert out["gad2_demo_total_band"].tolist() == ["low", "high"]
        with pytest.raises(ValueError, match="already exists"):
            instruments.register_definition(path)
    finally:
        instruments.unregister_definition("gad2_demo")
    assert "gad2_demo" not in instruments.list_instruments()


def test_get_definition_returns_a_copy():
    defn = instruments.get_definition("wemwbs")
    defn["items"].clear()
    assert len(instruments.get_definition("wemwbs")["items"]) == 14


@pytest.mark.skipif(not DOCS.is_file(), reason="docs not present")
def test_docs_cover_every_instrument():
    text = DOCS.read_text(encoding="utf-8")
    for instrument_id in EXPECTED_IDS:
        assert f"`{instrument_id}`" in text
