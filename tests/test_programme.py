"""Community programme monitoring (design.type programme; issue [designs] items 2 and 3).

Reference numbers come from R (tests/reference/programme_golden.R: t.test, cumulative totals
from the raw files) or from the generator's truth (data/raw/c2_programme/truth.json, and a
coverage simulation with the same generator); bad inputs go through the real reader from raw
files; the embedded example runs end to end under Snakemake."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import programme as pg
from analysis.config import ConfigError, read_config_file, validate_config
from analysis.costs import load_inflation_index
from analysis.stages import config_keys
from analysis.validation import DataValidationError
from conftest import visible_text

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "data/raw/c2_programme"
GOLDEN = ROOT / "tests/reference/golden"
PAIRED = ROOT / "tests/reference/datasets/programme_paired_survey.csv"


def _raw_cfg() -> dict:
    cfg = read_config_file(ROOT / "config/c2_programme.yaml")
    cfg["data"]["raw_dir"] = str(EXAMPLE)
    return cfg


@pytest.fixture
def cfg() -> dict:
    return validate_config(_raw_cfg())


@pytest.fixture
def raw(tmp_path) -> Path:
    d = tmp_path / "raw"
    shutil.copytree(EXAMPLE, d)
    return d


def _cfg_at(raw_dir: Path, edit=None) -> dict:
    c = _raw_cfg()
    c["data"]["raw_dir"] = str(raw_dir)
    if edit:
        edit(c)
    return validate_config(c)


def _analyse(cfg: dict, raw_dir=None) -> dict:
    t = pg.read_programme(cfg, raw_dir)
    p = cfg["programme"]
    grid = pg.quarterly_grid(t["monitoring"], t.get("funding"), p["indicators"], p["neighbourhoods"])
    cum = pg.cumulative(grid, p["indicators"])
    out = dict(tables=t, grid=grid, cum=cum, targets=pg.against_targets(
        cum, p["targets"], p["rag"], pg.cumulative_by_neighbourhood(grid, p["indicators"])))
    if "survey" in t:
        out["scores"] = pg.score_survey(t["survey"])
        out["change"] = pg.survey_change(out["scores"], ["ons4_life_satisfaction", "ons4_worthwhile",
                                                         "ons4_happiness", "ons4_anxiety", "swemwbs_total",
                                                         "swemwbs_metric"], design=p["survey"]["design"])
    return out


# ---- the config ---------------------------------------------------------------------------------

def test_example_config_is_valid_and_reads_no_participant_files(cfg):
    from analysis.config import check_input_files, raw_file_keys
    check_input_files(cfg)
    assert sorted(k for k, _ in raw_file_keys(cfg)) == ["data.funding", "data.monitoring", "data.survey"]
    w = cfg["programme"]["wellby"]
    # the Green Book values of docs/methods.md (HM Treasury 2021 wellbeing guidance, 2019 prices)
    assert (w["low"], w["value"], w["high"]) == (10000, 13000, 16000) and "2019 prices" in w["price_basis"]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(primary={"outcome": "swemwbs_metric"}), r"config key primary: design.type programme .*no "
                                                                 r"participant-level analysis \(mixed model"),
    (lambda c: c.update(outcomes={"secondary": ["ons4_life_satisfaction"]}), r"config key outcomes: "),
    (lambda c: c.update(instruments={"swemwbs": {}}), r"config key instruments: "),
    (lambda c: c.update(economics={"enabled": True}), r"config key economics.enabled: .*programme.costs"),
    (lambda c: c["data"].update(participants="people.csv"), r"config key data.participants: "),
    (lambda c: c["data"].update(waves=[{"timepoint": "baseline", "month": 0, "file": "s.csv"}]),
     r"config key data.waves: "),
    (lambda c: c.update(blinded=True), r"config key blinded: a programme design has no allocation"),
    (lambda c: c["data"].update(monitoring=None), r"config key data.monitoring: a programme design needs"),
    (lambda c: c["programme"]["targets"].append({"indicator": "residents_engagd", "period": "2024Q4",
                                                 "target": 5}),
     r"programme.targets\[13\].indicator: 'residents_engagd' is not an id"),
    (lambda c: c["programme"]["targets"].append({"indicator": "residents_engaged", "period": "2024Q4",
                                                 "target": 5}), r"a second target for residents_engaged in 2024Q4"),
    (lambda c: c["programme"].update(rag={"green": 0.9, "amber": 0.95}), r"programme.rag.amber: 0.95 must not exceed"),
    (lambda c: c["programme"].update(engaged_indicator="engaged"), r"programme.engaged_indicator: 'engaged'"),
    # the denominators are counts summed over quarters, never the last quarter's figure
    (lambda c: c["programme"]["indicators"][1].update(aggregation="latest"),
     r"config key programme.engaged_indicator: indicator 'residents_engaged' has aggregation 'latest'.*"
     r"\(aggregation: sum\)"),
    (lambda c: c["programme"]["indicators"][5].update(aggregation="latest"),
     r"config key programme.volunteer_hours_indicator: indicator 'volunteer_hours' has aggregation 'latest'.*"
     r"cost per volunteer hour"),
    (lambda c: c["programme"].update(volunteer_hours_indicator="volunteers_regular"),
     r"config key programme.volunteer_hours_indicator: indicator 'volunteers_regular' has aggregation 'latest'"),
    (lambda c: c["data"].update(funding=None), r"funding_gbp is the funding table's total, but data.funding is null"),
    (lambda c: c["programme"].pop("funding_sources"), r"config key programme.funding_sources: list the categories"),
    (lambda c: c["programme"]["costs"][0].update(price_year="2030/31"),
     r"programme.costs\[0\].price_year \(2030/31 to programme.price_year 2023/24\): price year 2030/31 is outside"),
    (lambda c: c["programme"]["costs"][0].pop("source"), r"programme.costs\[0\]: 'source' is a required property"),
    (lambda c: c["programme"]["targets"][0].update(period="2024-Q4"), r"programme.targets\[0\].period: "),
])
def test_a_config_the_design_cannot_run_is_refused_naming_the_key(edit, message):
    c = _raw_cfg()
    edit(c)
    with pytest.raises(ConfigError, match=message):
        validate_config(c)


# ---- reading the raw tables ---------------------------------------------------------------------

def _edit_line(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text().split("\n")
    assert old in lines[line - 1], lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines))


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[line - 2, column] = value
    df.to_csv(path, index=False, lineterminator="\n")


BAD_INPUTS = [
    ("monitoring.csv", lambda p: _set_cell(p, 3, "residents_reached", "-5"),
     "monitoring.csv, line 3, column 'residents_reached', value '-5': a count must be 0 or more"),
    ("monitoring.csv", lambda p: _set_cell(p, 4, "residents_engaged", "12.5"),
     "monitoring.csv, line 4, column 'residents_engaged', value '12.5': must be a whole number or blank"),
    ("monitoring.csv", lambda p: _set_cell(p, 5, "partnerships_established", "two"),
     "monitoring.csv, line 5, column 'partnerships_established', value 'two': must be a whole number or blank"),
    ("monitoring.csv", lambda p: _set_cell(p, 6, "quarter", "2024-Q1"),
     "monitoring.csv, line 6, column 'quarter', value '2024-Q1': quarter must be written YYYYQn"),
    ("monitoring.csv", lambda p: _set_cell(p, 3, "quarter", "2023Q1"),
     "monitoring.csv, line 3, column 'quarter', value 'Abbey Hulton 2023Q1': a second row for the same "
     "neighbourhood and quarter"),
    ("monitoring.csv", lambda p: _set_cell(p, 7, "neighbourhood", ""),
     "monitoring.csv, line 7, column 'neighbourhood': required value is missing"),
    ("monitoring.csv", lambda p: _edit_line(p, 1, "volunteer_hours", "volunteer_hrs"),
     "monitoring.csv, column 'volunteer_hrs': unknown column in the monitoring table"),
    ("monitoring.csv", lambda p: _edit_line(p, 1, "volunteer_hours", "volunteer_hrs"),
     "monitoring.csv, column 'volunteer_hours': required column missing from the monitoring table "
     "(programme.indicators names it)"),
    ("funding.csv", lambda p: _set_cell(p, 2, "amount_gbp", "-100"),
     "funding.csv, line 2, column 'amount_gbp', value '-100': an amount secured must be 0 or more"),
    ("funding.csv", lambda p: _set_cell(p, 3, "amount_gbp", "£1,500"),
     "funding.csv, line 3, column 'amount_gbp', value '£1,500': must be a number or blank"),
    ("funding.csv", lambda p: _set_cell(p, 4, "neighbourhood", "Hanley"),
     "funding.csv, line 4, column 'neighbourhood', value 'Hanley': neighbourhood not in the monitoring table"),
    ("funding.csv", lambda p: _set_cell(p, 6, "quarter", "2025Q1"),
     "funding.csv, line 6, column 'quarter', value '2025Q1': quarter outside the quarters monitored"),
    ("funding.csv", lambda p: _set_cell(p, 5, "source", ""),
     "funding.csv, line 5, column 'source': required value is missing"),
    # free text (a donor's name) is refused: only the plan's categories reach the funder summary
    ("funding.csv", lambda p: _set_cell(p, 5, "source", "Mrs J Smith"),
     "funding.csv, line 5, column 'source', value 'Mrs J Smith': value not allowed (allowed: "),
    ("survey.csv", lambda p: _set_cell(p, 2, "ons4_1", "11"),
     "survey.csv, line 2, participant S0001, column 'ons4_1', value '11': value out of range (0 to 10)"),
    ("survey.csv", lambda p: _set_cell(p, 3, "swemwbs_2", "0"),
     "survey.csv, line 3, participant S0002, column 'swemwbs_2', value '0': value out of range (1 to 5)"),
    ("survey.csv", lambda p: _set_cell(p, 4, "wave", "during"),
     "survey.csv, line 4, participant S0003, column 'wave', value 'during': value not allowed "
     "(allowed: after, before)"),
    ("survey.csv", lambda p: _set_cell(p, 3, "respondent_id", "S0001"),
     "survey.csv, line 3, participant S0001, column 'wave', value 'S0001 before': a second row for the same "
     "respondent and wave"),
]


@pytest.mark.parametrize("file, edit, message", BAD_INPUTS, ids=[f"{b[0]}:{i}" for i, b in enumerate(BAD_INPUTS)])
def test_bad_input_is_refused_naming_file_line_column_value_and_rule(raw, file, edit, message):
    edit(raw / file)
    before = hashlib.sha256((raw / file).read_bytes()).hexdigest()
    with pytest.raises(DataValidationError) as err:
        pg.read_programme(_cfg_at(raw))
    assert message in str(err.value), str(err.value)
    assert hashlib.sha256((raw / file).read_bytes()).hexdigest() == before  # raw data only read


def test_missing_codes_read_as_not_recorded(raw):
    _set_cell(raw / "monitoring.csv", 3, "residents_reached", "-99")
    _set_cell(raw / "survey.csv", 2, "ons4_1", "-99")
    with pytest.raises(DataValidationError, match="value '-99': a count must be 0 or more"):
        pg.read_programme(_cfg_at(raw))
    t = pg.read_programme(_cfg_at(raw, lambda c: c["data"].update(missing_codes=["-99"])))
    assert pd.isna(t["monitoring"].residents_reached.iloc[1]) and pd.isna(t["survey"].ons4_1.iloc[0])
    assert t["monitoring"].residents_reached.notna().sum() == len(t["monitoring"]) - 1


def test_survey_respondent_ids_do_not_leave_ingest(cfg):
    t = pg.read_programme(cfg)
    assert "respondent_id" not in t["survey"] and t["survey"].respondent.dtype == "int64"
    assert not t["survey"].astype(str).apply(lambda s: s.str.match(r"^S\d{4}$")).any().any()


# ---- cumulative totals, targets and RAG ---------------------------------------------------------

def test_cumulative_totals_match_r_computed_from_the_raw_files(cfg):
    cum = _analyse(cfg)["cum"]
    ref = pd.read_csv(GOLDEN / "programme_cumulative.csv")
    got = cum.merge(ref, on=["indicator", "quarter"], suffixes=("", "_r"), validate="1:1")
    assert len(got) == len(ref) == len(cum) == 7 * 8
    for c in ("value", "cumulative", "missing_cells"):
        np.testing.assert_allclose(got[c].astype(float), got[f"{c}_r"].astype(float), rtol=1e-12, err_msg=c)


def test_the_blank_cell_is_not_recorded_never_zero_and_its_target_is_not_rated(cfg):
    truth = json.loads((EXAMPLE / "truth.json").read_text())["not_recorded"]
    res = _analyse(cfg)
    cell = res["grid"][(res["grid"].neighbourhood == truth["neighbourhood"]) &
                       (res["grid"].quarter == truth["quarter"])][truth["indicator"]]
    assert cell.isna().all()
    t = res["targets"].set_index(["indicator", "period"])
    assert t.loc[(truth["indicator"], "2024Q4"), "rag"] == "incomplete"
    assert t.loc[(truth["indicator"], "2024Q4"), "missing_cells"] == 1
    assert t.loc[("residents_engaged", "2025Q2"), "rag"] == "not yet due"
    assert set(t.rag) == {"green", "amber", "red", "incomplete", "not yet due"}


def test_an_absent_monitoring_row_is_not_recorded_never_zero(raw):
    """The example has blank cells only; here one neighbourhood-quarter row is deleted from the
    raw file.  Expected figures come from the edited raw CSV itself (pandas), not the reader."""
    hood, quarter = "Meir North", "2024Q3"
    lines = (raw / "monitoring.csv").read_text().split("\n")
    gone = [i for i, x in enumerate(lines) if x.startswith(f"{hood},{quarter},")]
    assert len(gone) == 1
    del lines[gone[0]]
    (raw / "monitoring.csv").write_text("\n".join(lines))
    left = pd.read_csv(raw / "monitoring.csv")
    assert len(left) == 6 * 8 - 2 - 1 and not ((left.neighbourhood == hood) & (left.quarter == quarter)).any()
    assert left[["residents_reached", "volunteers_regular"]].notna().all().all()  # no blank cell in these
    c = _cfg_at(raw)
    res = _analyse(c)
    cum = res["cum"].set_index(["indicator", "quarter"])
    # sum indicator: the absent quarter is missing from then on; the figure adds what was recorded
    r = cum.loc[("residents_reached", quarter)]
    assert r.missing_cells == 1
    assert r.cumulative == left[left.quarter <= quarter].residents_reached.sum()
    assert cum.loc[("residents_reached", "2024Q2"), "missing_cells"] == 0
    assert cum.loc[("residents_reached", "2024Q4"), "missing_cells"] == 1
    assert cum.loc[("residents_reached", "2024Q4"), "cumulative"] == left.residents_reached.sum()
    # latest indicator: only the quarter's own figure is affected
    v = cum.loc[("volunteers_regular", quarter)]
    assert v.missing_cells == 1 and v.cumulative == left[left.quarter == quarter].volunteers_regular.sum()
    assert cum.loc[("volunteers_regular", "2024Q4"), "missing_cells"] == 0
    t = res["targets"].set_index(["indicator", "period"])
    assert t.loc[("residents_reached", "2024Q4"), "rag"] == "incomplete"
    assert t.loc[("residents_reached", "2024Q4"), "missing_cells"] == 1
    assert t.loc[("residents_reached", "2024Q4"), "achieved"] == left.residents_reached.sum()
    assert t.loc[("residents_reached", "2023Q4"), "rag"] in ("green", "amber", "red")  # before the gap: rated
    hoods = pg.by_neighbourhood(res["grid"], c["programme"]["indicators"])
    h = hoods.set_index(["neighbourhood", "indicator"]).loc[(hood, "residents_reached")]
    assert h.missing_cells == 1 and h.figure == left[left.neighbourhood == hood].residents_reached.sum()


def test_the_examples_late_neighbourhood_is_declared_and_outside_the_grid_before_it_joined(cfg):
    """Chell Heath joins in 2023Q3 (truth.json): the config declares it, the raw files have no row
    or award before then, and its earlier quarters are neither counted nor missing.  Without
    the declaration they would be missing cells, which the R golden file (no row: not in the
    programme) would not match."""
    late = json.loads((EXAMPLE / "truth.json").read_text())["late_start"]
    assert {h["id"]: h["start"] for h in cfg["programme"]["neighbourhoods"]}[late["neighbourhood"]] == late["start"]
    raw = pd.read_csv(EXAMPLE / "monitoring.csv")
    own = raw[raw.neighbourhood == late["neighbourhood"]]
    assert own.quarter.min() == late["start"] and len(own) == 6
    res = _analyse(cfg)
    assert res["cum"].groupby("indicator").missing_cells.max().to_dict() == {
        i["id"]: int(i["id"] == "volunteer_hours") for i in cfg["programme"]["indicators"]}
    t = res["targets"].set_index(["indicator", "neighbourhood", "period"])
    r = t.loc[("residents_engaged", late["neighbourhood"], "2024Q4")]
    assert r.achieved == own.residents_engaged.sum() and r.rag == rag_of(r.achieved / 180)
    b = t.loc[("residents_engaged", "Bentilee", "2024Q4")]
    assert b.achieved == raw[raw.neighbourhood == "Bentilee"].residents_engaged.sum() and b.rag == rag_of(b.achieved / 240)

    def undeclared(c):
        c["programme"]["neighbourhoods"] = []
        c["programme"]["targets"] = [t for t in c["programme"]["targets"] if "neighbourhood" not in t]
    cum = _analyse(_cfg_at(EXAMPLE, undeclared))["cum"].set_index(["indicator", "quarter"])
    assert cum.loc[("residents_reached", "2023Q1"), "missing_cells"] == 1  # the golden file says 0
    assert pd.read_csv(GOLDEN / "programme_cumulative.csv").set_index(["indicator", "quarter"]).loc[
        ("residents_reached", "2023Q1"), "missing_cells"] == 0


def rag_of(ratio: float) -> str:
    return "green" if ratio >= 1.0 else "amber" if ratio >= 0.8 else "red"


def test_neighbourhood_figures_add_up_from_the_raw_file(cfg):
    res = _analyse(cfg)
    hoods = pg.by_neighbourhood(res["grid"], cfg["programme"]["indicators"]).set_index(["neighbourhood", "indicator"])
    raw = pd.read_csv(EXAMPLE / "monitoring.csv")
    sums = raw.groupby("neighbourhood").residents_engaged.sum()
    last = raw[raw.quarter == raw.quarter.max()].set_index("neighbourhood").volunteers_regular
    funding = pd.read_csv(EXAMPLE / "funding.csv").groupby("neighbourhood").amount_gbp.sum()
    for h in sums.index:
        assert hoods.loc[(h, "residents_engaged"), "figure"] == sums[h]
        assert hoods.loc[(h, "volunteers_regular"), "figure"] == last[h]
        assert hoods.loc[(h, "funding_gbp"), "figure"] == pytest.approx(funding.get(h, 0.0))
    truth = json.loads((EXAMPLE / "truth.json").read_text())["not_recorded"]
    assert hoods.loc[(truth["neighbourhood"], truth["indicator"]), "missing_cells"] == 1
    assert hoods.missing_cells.sum() == 1


def test_rag_bands_follow_the_config_at_their_boundaries():
    """Targets set from the achieved figure itself: exactly at the green and amber boundaries
    and just below amber."""
    mon = pd.DataFrame({"neighbourhood": ["a", "b", "a", "b"], "quarter": ["2024Q1", "2024Q1", "2024Q2", "2024Q2"],
                        "n": pd.array([3, 4, 5, 6], dtype="Int64"), "v": pd.array([7, 1, 2, 9], dtype="Int64")})
    inds = [{"id": "n", "label": "N", "unit": "x", "aggregation": "sum"},
            {"id": "v", "label": "V", "unit": "x", "aggregation": "latest"}]
    cum = pg.cumulative(pg.quarterly_grid(mon, None, inds), inds)
    n_end = float(mon.n.sum())
    v_end = float(mon[mon.quarter == "2024Q2"].v.sum())
    v_q1 = float(mon[mon.quarter == "2024Q1"].v.sum())
    rag = {"green": 1.0, "amber": 0.8}
    targets = [{"indicator": "n", "period": "2024Q2", "target": n_end},
               {"indicator": "v", "period": "2024Q2", "target": v_end / 0.8},
               {"indicator": "v", "period": "2024Q1", "target": v_q1 / 0.79}]
    t = pg.against_targets(cum, targets, rag).set_index(["indicator", "period"])
    assert t.loc[("n", "2024Q2"), "achieved"] == n_end
    assert t.loc[("v", "2024Q2"), "achieved"] == v_end  # latest: the quarter's own figure, not a sum
    assert list(t.rag) == ["green", "red", "amber"]


# ---- neighbourhood start quarters and neighbourhood targets ---------------------------------------
# A small programme written as raw files: A monitored from 2024Q1, B joins in 2024Q2 (no row
# before).  Expected figures are worked out by hand from these few cells.

STAGGERED_MONITORING = """neighbourhood,quarter,n,v
A,2024Q1,10,3
A,2024Q2,20,4
A,2024Q3,,5
B,2024Q2,7,2
B,2024Q3,8,6
"""
STAGGERED_FUNDING = """neighbourhood,quarter,source,amount_gbp
A,2024Q1,Grant,100
B,2024Q2,Grant,50
"""


def _staggered(tmp_path: Path, declare=True, edit=None) -> dict:
    raw = tmp_path / "staggered"
    raw.mkdir(exist_ok=True)
    (raw / "monitoring.csv").write_text(STAGGERED_MONITORING)
    (raw / "funding.csv").write_text(STAGGERED_FUNDING)
    c = {"trial_id": "staggered", "title": "Staggered", "design": {"type": "programme"},
         "data": {"raw_dir": str(raw), "monitoring": "monitoring.csv", "funding": "funding.csv", "survey": None},
         "programme": {"indicators": [{"id": "n", "label": "N", "unit": "x"},
                                      {"id": "v", "label": "V", "unit": "x", "aggregation": "latest"},
                                      {"id": "funding_gbp", "label": "Funding", "unit": "GBP"}],
                       "targets": [{"indicator": "n", "period": "2024Q2", "target": 37},
                                   {"indicator": "v", "period": "2024Q1", "target": 3}],
                       "funding_sources": ["Grant"]}}
    if declare:
        c["programme"]["neighbourhoods"] = [{"id": "A", "start": "2024Q1"}, {"id": "B", "start": "2024Q2"}]
    if edit:
        edit(c)
    return validate_config(c)


def _staggered_results(c: dict) -> dict:
    t = pg.read_programme(c)
    p = c["programme"]
    grid = pg.quarterly_grid(t["monitoring"], t["funding"], p["indicators"], p["neighbourhoods"])
    cum = pg.cumulative(grid, p["indicators"])
    hood_cum = pg.cumulative_by_neighbourhood(grid, p["indicators"])
    return dict(grid=grid, cum=cum.set_index(["indicator", "quarter"]),
                targets=pg.against_targets(cum, p["targets"], p["rag"], hood_cum),
                hoods=pg.by_neighbourhood(grid, p["indicators"]).set_index(["neighbourhood", "indicator"]))


def test_quarters_before_a_declared_start_are_outside_the_grid_not_missing(tmp_path):
    res = _staggered_results(_staggered(tmp_path))
    assert sorted(map(tuple, res["grid"][["neighbourhood", "quarter"]].to_numpy())) == [
        ("A", "2024Q1"), ("A", "2024Q2"), ("A", "2024Q3"), ("B", "2024Q2"), ("B", "2024Q3")]
    cum = res["cum"]
    # sum: 10 | 10+20+7 = 37 | 37+8 = 45 (A's blank 2024Q3 is the only cell not recorded)
    assert list(cum.loc["n"].cumulative) == [10, 37, 45] and list(cum.loc["n"].missing_cells) == [0, 0, 1]
    # latest: each quarter's own figure over the neighbourhoods in the programme then; B adds nothing in 2024Q1
    assert list(cum.loc["v"].cumulative) == [3, 6, 11] and list(cum.loc["v"].missing_cells) == [0, 0, 0]
    assert list(cum.loc["funding_gbp"].cumulative) == [100, 150, 150]
    assert list(cum.loc["n"].neighbourhoods_in_programme) == [1, 2, 2]
    t = res["targets"].set_index(["indicator", "period"])
    assert (t.loc[("n", "2024Q2"), "rag"], t.loc[("n", "2024Q2"), "achieved"]) == ("green", 37)
    assert (t.loc[("v", "2024Q1"), "rag"], t.loc[("v", "2024Q1"), "achieved"]) == ("green", 3)
    h = res["hoods"]
    assert (h.loc[("B", "n"), "figure"], h.loc[("B", "n"), "missing_cells"], h.loc[("B", "n"), "start"]) == \
        (15, 0, "2024Q2")
    assert (h.loc[("A", "n"), "figure"], h.loc[("A", "n"), "missing_cells"], h.loc[("A", "n"), "start"]) == \
        (30, 1, "2024Q1")
    assert h.loc[("B", "v"), "figure"] == 6 and h.missing_cells.sum() == 1


def test_without_the_declaration_a_late_neighbourhood_is_still_counted_as_not_recorded(tmp_path):
    """The behaviour the declaration changes, unchanged when it is absent: B's 2024Q1 is a
    neighbourhood-quarter not recorded (counted in every later sum), so both targets are incomplete."""
    res = _staggered_results(_staggered(tmp_path, declare=False))
    assert list(res["cum"].loc["n"].missing_cells) == [1, 1, 2]
    assert list(res["cum"].loc["v"].missing_cells) == [1, 0, 0]
    assert list(res["targets"].rag) == ["incomplete", "incomplete"]
    assert res["hoods"].loc[("B", "n"), "start"] == "2024Q1" and res["hoods"].loc[("B", "n"), "missing_cells"] == 1


def test_a_declared_start_before_the_first_row_leaves_those_quarters_not_recorded(tmp_path):
    """Declaring A from 2023Q4 (one quarter before any row) puts 2023Q4 on the grid: A was in
    the programme and nothing was recorded."""
    res = _staggered_results(_staggered(tmp_path, edit=lambda c: c["programme"]["neighbourhoods"][0].update(
        start="2023Q4")))
    assert list(res["cum"].loc["n"].index) == ["2023Q4", "2024Q1", "2024Q2", "2024Q3"]
    assert list(res["cum"].loc["n"].missing_cells) == [1, 1, 1, 2]
    assert np.isnan(res["cum"].loc[("v", "2023Q4"), "cumulative"])


def test_neighbourhood_targets_use_that_neighbourhoods_figure(tmp_path):
    targets = [{"indicator": "n", "period": "2024Q3", "target": 20, "neighbourhood": "B"},   # 15 / 20 = 75%: red
               {"indicator": "n", "period": "2024Q3", "target": 30, "neighbourhood": "A"},   # 30, A's 2024Q3 blank
               {"indicator": "v", "period": "2024Q2", "target": 2.4, "neighbourhood": "B"},  # 2 / 2.4 = 83%: amber
               {"indicator": "n", "period": "2024Q4", "target": 40, "neighbourhood": "B"},
               {"indicator": "n", "period": "2024Q3", "target": 45}]                          # programme-wide
    res = _staggered_results(_staggered(tmp_path, edit=lambda c: c["programme"].update(targets=targets)))
    t = res["targets"]
    assert list(t.columns[:2]) == ["indicator", "neighbourhood"]
    got = t[["indicator", "neighbourhood", "period", "achieved", "rag", "missing_cells"]].astype(object).fillna("-").astype(str)
    assert got.values.tolist() == [
        ["n", "all", "2024Q3", "45.0", "incomplete", "1"],
        ["n", "A", "2024Q3", "30.0", "incomplete", "1"],
        ["n", "B", "2024Q3", "15.0", "red", "0"],
        ["n", "B", "2024Q4", "-", "not yet due", "0"],
        ["v", "B", "2024Q2", "2.0", "amber", "0"]]
    assert t.percent_of_target.iloc[2] == pytest.approx(75.0)


def test_a_neighbourhood_target_without_a_declared_start_before_its_first_row_is_incomplete(tmp_path):
    """B declared without a start joins at the grid's first quarter (2024Q1), where it has no
    row: that quarter is not recorded, so its 2024Q1 target is incomplete, not zero."""
    def edit(c):
        c["programme"]["neighbourhoods"][1]["start"] = None
        c["programme"]["targets"] = [{"indicator": "n", "period": "2024Q1", "target": 1, "neighbourhood": "B"}]
    t = _staggered_results(_staggered(tmp_path, edit=edit))["targets"]
    assert (t.rag.iloc[0], t.missing_cells.iloc[0], t.achieved.iloc[0]) == ("incomplete", 1, 0)


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["targets"].append({"indicator": "n", "period": "2024Q3", "target": 5, "neighbourhood": "C"}),
     r"config key programme.targets\[2\].neighbourhood: 'C' is not an id of programme.neighbourhoods \(\['A', 'B'\]\)"),
    (lambda p: p["targets"].append({"indicator": "n", "period": "2024Q1", "target": 5, "neighbourhood": "B"}),
     r"config key programme.targets\[2\].period: 2024Q1 is before B's start quarter 2024Q2"),
    (lambda p: p.update(neighbourhoods=[]) or p["targets"].append(
        {"indicator": "n", "period": "2024Q3", "target": 5, "neighbourhood": "B"}),
     r"programme.targets\[2\].neighbourhood: 'B' names a neighbourhood, but programme.neighbourhoods is not given"),
    (lambda p: p["targets"].extend([{"indicator": "n", "period": "2024Q3", "target": 5, "neighbourhood": "B"}] * 2),
     r"programme.targets\[3\]: a second target for n in 2024Q3 for neighbourhood B"),
    (lambda p: p["neighbourhoods"].append({"id": "A"}), r"programme.neighbourhoods: neighbourhood ids must be unique"),
    (lambda p: p["neighbourhoods"].append({"id": "All"}), r"programme.neighbourhoods\[2\].id: 'All' is reserved"),
    (lambda p: p["targets"].append({"indicator": "n", "period": "2024Q3", "target": 5, "neighbourhood": "all"}),
     r"programme.targets\[2\].neighbourhood: 'all': a programme-wide target has no neighbourhood key"),
    (lambda p: p["neighbourhoods"][0].update(start="2024-Q1"), r"programme.neighbourhoods\[0\].start"),
])
def test_a_bad_neighbourhood_declaration_or_target_is_a_config_error(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        _staggered(tmp_path, edit=lambda c: edit(c["programme"]))


@pytest.mark.parametrize("file, line, message", [
    ("monitoring.csv", "B,2024Q1,1,1", "monitoring.csv, line 7, column 'quarter', value '2024Q1': quarter before B's "
     "start quarter 2024Q2 (programme.neighbourhoods)"),
    ("funding.csv", "B,2024Q1,Grant,5", "funding.csv, line 4, column 'quarter', value '2024Q1': quarter before B's "
     "start quarter 2024Q2 (programme.neighbourhoods)"),
    ("monitoring.csv", "C,2024Q3,1,1", "monitoring.csv, line 7, column 'neighbourhood', value 'C': neighbourhood not "
     "declared in programme.neighbourhoods (A, B)"),
])
def test_a_row_before_its_start_or_of_an_undeclared_neighbourhood_is_a_data_error(tmp_path, file, line, message):
    c = _staggered(tmp_path)
    raw = Path(c["data"]["raw_dir"])
    (raw / file).write_text((raw / file).read_text() + line + "\n")
    with pytest.raises(DataValidationError) as err:
        pg.read_programme(c)
    assert message in str(err.value), str(err.value)
    assert len(err.value.queries) == 1  # only the added row is wrong


def test_a_declared_neighbourhood_without_monitoring_rows_is_a_data_error(tmp_path):
    c = _staggered(tmp_path, edit=lambda c: c["programme"]["neighbourhoods"].append({"id": "Bentilee"}))
    with pytest.raises(DataValidationError) as err:
        pg.read_programme(c)
    assert ("monitoring.csv, column 'neighbourhood', value 'Bentilee': neighbourhood declared in "
            "programme.neighbourhoods has no row in the monitoring table") in str(err.value)


# ---- the survey ---------------------------------------------------------------------------------

COLUMNS = ["n_before", "n_after", "mean_before", "mean_after", "change", "ci_low", "ci_high", "df", "p_value"]


def _compare(got: pd.DataFrame, ref: pd.DataFrame):
    m = got.merge(ref, on="outcome", suffixes=("", "_r"), validate="1:1")
    assert len(m) == len(ref) == 6
    assert (m.method == m.method_r).all()
    for c in COLUMNS:
        np.testing.assert_allclose(m[c].astype(float), m[f"{c}_r"].astype(float), rtol=1e-9, err_msg=c)


def test_independent_survey_change_matches_r_welch_t_test(cfg):
    assert cfg["programme"]["survey"]["design"] == "independent"  # declared in config/c2_programme.yaml
    res = _analyse(cfg)
    ref = pd.read_csv(GOLDEN / "programme_survey.csv")
    _compare(res["change"], ref[ref.case == "example_welch"])
    assert (res["change"].design == "independent").all()


def _paired_cfg(raw: Path, design: str | None = "paired") -> dict:
    shutil.copy(PAIRED, raw / "paired.csv")

    def edit(c):
        c["data"].update(survey="paired.csv")
        if design is None:
            c["programme"].pop("survey", None)
        else:
            c["programme"]["survey"] = {"design": design}
    return _cfg_at(raw, edit)


def test_a_survey_declared_paired_matches_r_paired_t_test_and_states_matched_and_left_out(raw):
    """The R construction (tests/reference/programme_golden.R): 90 residents answer twice, 20
    only before, 12 only after; P005's before ons4_2 and P090's after swemwbs_3 are blank."""
    res = _analyse(_paired_cfg(raw))
    ref = pd.read_csv(GOLDEN / "programme_survey.csv")
    _compare(res["change"], ref[ref.case == "paired"])
    ch = res["change"].set_index("outcome")
    assert (ch.design == "paired").all()
    ls, worth, metric = ch.loc["ons4_life_satisfaction"], ch.loc["ons4_worthwhile"], ch.loc["swemwbs_metric"]
    assert (ls.n_before, ls.n_unpaired_excluded) == (90, 20 + 12)  # answered once
    # worthwhile: 109 scored before, 102 after, 89 pairs; SWEMWBS: 110 before, 101 after, 89 pairs
    assert (worth.n_before, worth.n_unpaired_excluded) == (89, 109 + 102 - 2 * 89)
    assert (metric.n_before, metric.n_unpaired_excluded) == (89, 110 + 101 - 2 * 89)
    assert ls.note == ("paired t on 90 respondents matched (scored in both waves); 32 questionnaire(s) without a "
                       "scored partner in the other wave left out")


def test_the_summary_page_of_a_paired_survey_says_how_many_were_matched_and_left_out(raw, tmp_path):
    from analysis.stages import programme, programme_ingest
    c = _paired_cfg(raw)
    ing, ing_out, outs = _stage_files(tmp_path)
    programme_ingest.run(config_keys.stage_config("programme_ingest", c), {}, ing_out)
    programme.run(config_keys.stage_config("programme", c), ing, outs)
    text = visible_text(Path(outs["summary"]).read_text())
    assert "programme.survey.design: paired" in text and "Residents matched" in text and "Left out" in text
    row = re.search(r"<td>ONS4 life satisfaction \(0-10\)</td><td>(\d+)</td><td>(\d+)</td>", text)
    assert row and row.groups() == ("90", "32"), text
    assert pd.read_csv(outs["wellby"]).social_value_gbp.notna().all()


def _survey_lines(path: Path) -> pd.DataFrame:
    d = pd.read_csv(path, dtype=str, keep_default_na=False)
    return d.assign(line=np.arange(2, len(d) + 2))


def test_a_respondent_in_both_waves_of_a_survey_declared_independent_is_a_data_error(raw):
    """One recurring ID used to switch the whole survey to a paired analysis; the design is
    declared now, and under independent the recurring ID is refused naming file, line, column,
    value and rule."""
    lines = _survey_lines(raw / "survey.csv")
    first_before = lines[lines.wave == "before"].iloc[0]
    first_after = lines[lines.wave == "after"].iloc[0]
    _set_cell(raw / "survey.csv", first_after.line, "respondent_id", first_before.respondent_id)
    with pytest.raises(DataValidationError) as err:
        pg.read_programme(_cfg_at(raw))
    assert len(err.value.queries) == 1, str(err.value)
    assert (f"survey.csv, line {first_after.line}, participant {first_before.respondent_id}, column 'respondent_id', "
            f"value '{first_before.respondent_id}': the survey is declared independent (programme.survey.design): a "
            f"respondent in both waves (before: line {first_before.line})") in str(err.value)
    # the default is independent: a config without programme.survey refuses it too
    with pytest.raises(DataValidationError, match="declared independent"):
        pg.read_programme(_cfg_at(raw, lambda c: c["programme"].pop("survey")))
    # declared paired, the same file is read (the resident is matched)
    t = pg.read_programme(_cfg_at(raw, lambda c: c["programme"].update(survey={"design": "paired"})))
    assert pg.respondents_in_both_waves(t["survey"]) == 1


def test_ids_restarted_in_each_wave_are_refused_before_any_output_is_written(raw, tmp_path):
    """A contractor restarting IDs at 1 in each wave: every after-wave ID up to the smaller wave's
    size recurs (the example has 320 before, 300 after), and ingest stops with nothing written."""
    from analysis.stages import programme_ingest
    d = pd.read_csv(raw / "survey.csv", dtype=str, keep_default_na=False)
    d["respondent_id"] = (d.groupby("wave").cumcount() + 1).astype(str)
    d.to_csv(raw / "survey.csv", index=False, lineterminator="\n")
    n = int(min((d.wave == "before").sum(), (d.wave == "after").sum()))
    assert n == 300
    c = _cfg_at(raw)
    _, ing_out, _ = _stage_files(tmp_path / "work")
    with pytest.raises(DataValidationError) as err:
        programme_ingest.run(config_keys.stage_config("programme_ingest", c), {}, ing_out)
    assert len(err.value.queries) == n
    assert {q.column for q in err.value.queries} == {"respondent_id"}
    assert all("declared independent (programme.survey.design)" in q.rule for q in err.value.queries)
    assert not (tmp_path / "work").exists() or not [p for p in (tmp_path / "work").rglob("*") if p.is_file()]


def test_survey_change_refuses_recurring_respondents_under_independent(raw):
    scores = pg.score_survey(pg.read_programme(_paired_cfg(raw))["survey"])
    with pytest.raises(ValueError, match="declared independent but a respondent answered both waves"):
        pg.survey_change(scores, ["ons4_life_satisfaction"], design="independent")


def test_example_intervals_cover_the_true_change(cfg):
    truth = json.loads((EXAMPLE / "truth.json").read_text())["true_mean_change"]
    ch = _analyse(cfg)["change"]
    for _, r in ch.iterrows():
        assert r.ci_low < truth[r.outcome] < r.ci_high, r.outcome


def test_welch_intervals_cover_the_true_change_at_their_level():
    """3,000 surveys from the example's generator (independent cross-sections, 150 before and
    150 after): the 95% interval of the change in mean life satisfaction and in the SWEMWBS metric
    score covers the true change (Monte Carlo on the observed scale) within [0.938, 0.962]
    (binomial Monte Carlo SE 0.4 points: three SEs either side), and the same intervals 10%
    narrower (expected about 0.922) or 10% wider (about 0.969) fall outside that band.  Observed:
    life satisfaction 0.954 (0.923 narrower, 0.972 wider), SWEMWBS metric 0.954 (0.924, 0.970)."""
    from analysis.simulate_programme import ProgrammeParameters, _survey, true_mean_change
    p = ProgrammeParameters(n_survey_before=150, n_survey_after=150, truth_mc_draws=200_000)
    truth = true_mean_change(p)
    outcomes = ["ons4_life_satisfaction", "swemwbs_metric"]
    scales = (1.0, 0.9, 1.1)
    hits = {(y, k): 0 for y in outcomes for k in scales}
    reps = 3000
    for i in range(reps):
        s = _survey(np.random.default_rng([p.seed, 31, i]), p)
        s.insert(0, "respondent", np.arange(len(s)))
        ch = pg.survey_change(pg.score_survey(s.drop(columns="respondent_id")), outcomes).set_index("outcome")
        for y in outcomes:
            mid, half = (ch.loc[y, "ci_low"] + ch.loc[y, "ci_high"]) / 2, (ch.loc[y, "ci_high"] - ch.loc[y, "ci_low"]) / 2
            for k in scales:
                hits[(y, k)] += abs(truth[y] - mid) < k * half
    cover = {key: h / reps for key, h in hits.items()}
    for y in outcomes:
        assert 0.938 <= cover[(y, 1.0)] <= 0.962, cover
        assert cover[(y, 0.9)] < 0.938 and cover[(y, 1.1)] > 0.962, cover


def test_a_survey_with_one_wave_gives_no_change_and_says_why(cfg):
    scores = _analyse(cfg)["scores"]
    ch = pg.survey_change(scores[scores.wave == "before"], ["ons4_life_satisfaction"])
    assert np.isnan(ch.change.iloc[0]) and "change not estimated" in ch.note.iloc[0] and ch.n_after.iloc[0] == 0
    assert pg.wellby_table(ch, 100.0, cfg["programme"]["wellby"]).social_value_gbp.isna().all()
    b = pg.cost_buildup(cfg["programme"]["costs"], cfg["programme"]["price_year"])
    v = pg.value_for_money(b, 100.0, None, ch).set_index("measure")
    assert v.loc["Cost per point of life satisfaction (0-10) gained per resident", "note"] == \
        "survey change not estimated (see survey_change.csv)"


# ---- WELLBY and value for money -----------------------------------------------------------------

def test_wellby_value_is_change_times_residents_times_years_times_value(cfg):
    ref = pd.read_csv(GOLDEN / "programme_survey.csv").set_index(["case", "outcome"])
    r = ref.loc[("example_welch", "ons4_life_satisfaction")]
    cum = pd.read_csv(GOLDEN / "programme_cumulative.csv")
    engaged = float(cum[(cum.indicator == "residents_engaged") & (cum.quarter == "2024Q4")].cumulative.iloc[0])
    res = _analyse(cfg)
    w = cfg["programme"]["wellby"]
    tab = pg.wellby_table(res["change"], pg.final_total(res["cum"], "residents_engaged")[0], w).set_index("scenario")
    years = w["duration_years"]
    for scen, dls, val in (("low value", r.change, 10000), ("central", r.change, 13000), ("high value", r.change, 16000),
                           ("central value, lower CI of change", r.ci_low, 13000),
                           ("central value, upper CI of change", r.ci_high, 13000)):
        assert tab.loc[scen, "social_value_gbp"] == pytest.approx(dls * engaged * years * val, rel=1e-9), scen
    assert (tab.price_basis.str.contains("2019 prices")).all()


def test_wellby_and_costs_per_point_say_not_collected_without_a_survey(raw):
    c = _cfg_at(raw, lambda c: c["data"].update(survey=None))
    res = _analyse(c)
    tab = pg.wellby_table(None, 100.0, c["programme"]["wellby"])
    assert list(tab.scenario) == ["not estimated"] and "resident survey: not collected" in tab.note.iloc[0]
    b = pg.cost_buildup(c["programme"]["costs"], c["programme"]["price_year"])
    v = pg.value_for_money(b, pg.final_total(res["cum"], "residents_engaged")[0], None, None).set_index("measure")
    assert v.loc["Cost per volunteer hour", "note"] == "not collected"
    assert np.isnan(v.loc["Cost per volunteer hour", "cost_per_unit_gbp"])
    assert "resident survey: not collected" in v.loc[
        "Cost per point of life satisfaction (0-10) gained per resident", "note"]


@pytest.mark.parametrize("outcomes", [["swemwbs_metric"], ["ons4_life_satisfaction"], []])
def test_a_score_left_out_of_the_survey_outcomes_is_not_analysed_not_not_collected(outcomes, tmp_path):
    """The survey was collected: a score not listed in programme.survey.outcomes has no WELLBY
    or cost per point, and the note says it was not analysed, never 'not collected'."""
    from analysis.stages import programme, programme_ingest
    c = _cfg_at(EXAMPLE, lambda c: c["programme"].update(survey={"design": "independent", "outcomes": outcomes}))
    ing, ing_out, outs = _stage_files(tmp_path)
    programme_ingest.run(config_keys.stage_config("programme_ingest", c), {}, ing_out)
    programme.run(config_keys.stage_config("programme", c), ing, outs)
    wellby = pd.read_csv(outs["wellby"], keep_default_na=False)
    vfm = pd.read_csv(outs["vfm"], keep_default_na=False).set_index("measure")
    ls_row = vfm.loc["Cost per point of life satisfaction (0-10) gained per resident"]
    sw_row = vfm.loc["Cost per SWEMWBS metric point gained per resident"]
    ls_msg = ("ons4_life_satisfaction is not among programme.survey.outcomes: not analysed (the resident survey "
              "was collected)")
    sw_msg = "swemwbs_metric is not among programme.survey.outcomes: not analysed (the resident survey was collected)"
    if "ons4_life_satisfaction" in outcomes:
        assert list(wellby.scenario)[:3] == ["low value", "central", "high value"]
        assert float(ls_row.cost_per_unit_gbp) > 0
    else:
        assert list(wellby.scenario) == ["not estimated"] and wellby.note.iloc[0] == ls_msg
        assert ls_row.note == ls_msg and ls_row.cost_per_unit_gbp == ""
    if "swemwbs_metric" in outcomes:
        assert float(sw_row.cost_per_unit_gbp) > 0
    else:
        assert sw_row.note == sw_msg and sw_row.cost_per_unit_gbp == ""
    assert not vfm.note.str.contains("not collected").any() and not wellby.note.str.contains("not collected").any()
    assert "resident survey: not collected" not in Path(outs["summary"]).read_text()


def test_value_for_money_from_the_sourced_costs_inflated_with_the_nhs_index(cfg):
    p = cfg["programme"]
    rates = pd.read_csv(ROOT / "analysis/data/nhscii_pay_prices.csv", dtype={"year": str}).set_index("year")
    # 2022/23 to 2023/24 prices: the index's rise into 2023/24
    factor = {"2023/24": 1.0, "2022/23": 1 + rates.loc["2023/24", "pay_and_prices_pct"] / 100}
    total = sum(c["amount_gbp"] * factor[c["price_year"]] for c in p["costs"])
    b = pg.cost_buildup(p["costs"], p["price_year"], load_inflation_index())
    assert b.amount_gbp_analysis_year.sum() == pytest.approx(total, rel=1e-12)
    assert (b.source.str.len() > 0).all() and len(b) == len(p["costs"])
    cum = pd.read_csv(GOLDEN / "programme_cumulative.csv").set_index(["indicator", "quarter"])
    engaged = cum.loc[("residents_engaged", "2024Q4"), "cumulative"]
    hours = cum.loc[("volunteer_hours", "2024Q4"), "cumulative"]
    ls = pd.read_csv(GOLDEN / "programme_survey.csv").set_index(["case", "outcome"]).loc[
        ("example_welch", "ons4_life_satisfaction"), "change"]
    res = _analyse(cfg)
    v = pg.value_for_money(b, pg.final_total(res["cum"], "residents_engaged")[0],
                           pg.final_total(res["cum"], "volunteer_hours")[0], res["change"],
                           {"volunteer_hours": 1}).set_index("measure")
    assert v.loc["Cost per resident engaged", "cost_per_unit_gbp"] == pytest.approx(total / engaged, rel=1e-12)
    assert v.loc["Cost per volunteer hour", "cost_per_unit_gbp"] == pytest.approx(total / hours, rel=1e-12)
    assert "1 neighbourhood-quarter(s) not recorded" in v.loc["Cost per volunteer hour", "note"]
    assert v.loc["Cost per point of life satisfaction (0-10) gained per resident", "cost_per_unit_gbp"] == \
        pytest.approx(total / (ls * engaged), rel=1e-9)
    # a change that is not a gain has no cost per point
    worse = res["change"].assign(change=-res["change"].change)
    v2 = pg.value_for_money(b, engaged, hours, worse).set_index("measure")
    assert np.isnan(v2.loc["Cost per SWEMWBS metric point gained per resident", "cost_per_unit_gbp"])


# ---- the stages: config keys, determinism --------------------------------------------------------

def _stage_files(work: Path) -> tuple[dict, dict, dict]:
    proc, rep = work / "proc", work / "rep"
    ing = {k: str(proc / f"{k}.parquet") for k in ("monitoring", "funding", "survey")}
    ing_out = {**ing, "manifest": str(proc / "raw_manifest.csv")}
    outs = {k: str(rep / f"{k}.csv") for k in ("cumulative", "targets", "by_neighbourhood", "funding", "trend_data",
                                               "survey_change",
                                               "wellby", "costs", "vfm")}
    outs.update(trend_png=str(rep / "trend.png"), trend_svg=str(rep / "trend.svg"), summary=str(rep / "summary.html"))
    return ing, ing_out, outs


def test_stages_read_only_the_keys_their_rules_pass_and_rerun_byte_identically(cfg, tmp_path):
    from config_tracking import TrackedConfig

    from analysis.stages import programme, programme_ingest
    digests = []
    for run in ("a", "b"):
        ing, ing_out, outs = _stage_files(tmp_path / run)
        reads = {}
        for stage, fn, i, o in (("programme_ingest", programme_ingest.run, {}, ing_out),
                                ("programme", programme.run, ing, outs)):
            tracked = TrackedConfig(config_keys.stage_config(stage, cfg))
            fn(tracked, i, o)
            keys = [tuple(k.split(".")) for k in config_keys.STAGE_CONFIG_KEYS[stage]]
            reads[stage] = sorted(".".join(map(str, r)) for r in tracked.reads
                                  if not any(r[:len(k)] == k for k in keys))
        assert reads == {"programme_ingest": [], "programme": []}
        digests.append({Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in outs.values()})
    assert digests[0] == digests[1]


# ---- end to end ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from test_e2e import run_config, run_snakemake
    c = yaml.safe_load((ROOT / "config/c2_programme.yaml").read_text())
    c["data"]["raw_dir"] = str(EXAMPLE)
    work, cfgfile = run_config(tmp_path_factory.mktemp("c2"), c, "c2.yaml")
    return dict(work=work, cfgfile=cfgfile, rep=work / "reports/c2_programme", run=run_snakemake)


@pytest.mark.e2e
def test_the_example_runs_end_to_end_with_no_participant_level_rule(e2e):
    rep, work = e2e["rep"], e2e["work"]
    for f in ("summary.html", "tables/monitoring_targets.csv", "tables/monitoring_cumulative.csv",
              "tables/monitoring_by_neighbourhood.csv",
              "tables/funding_by_source.csv", "tables/survey_change.csv", "tables/wellby.csv",
              "tables/cost_buildup.csv", "tables/value_for_money.csv", "figures/monitoring_trend.png",
              "figures/monitoring_trend.svg", "figures/monitoring_trend_data.csv"):
        assert (rep / f).stat().st_size > 100, f
    assert sorted(p.name for p in (work / "logs/c2_programme").iterdir()) == ["programme.log", "programme_ingest.log"]
    assert not (rep / "report.html").exists() and not (work / "data/processed/c2_programme/analysis.parquet").exists()
    html = (rep / "summary.html").read_text()
    for words in ("Progress against targets", "not yet due", "incomplete", "Welch", "2019 prices",
                  "Social value estimate (WELLBY-based", "Cost per resident engaged", "No social return on investment"):
        assert words in html, words
    nothing = e2e["run"](work, e2e["cfgfile"], "-n", quiet=False)
    assert "Nothing to be done" in nothing.stdout + nothing.stderr


@pytest.mark.e2e
def test_no_identifier_reaches_any_output(e2e):
    ids = set(pd.read_csv(EXAMPLE / "survey.csv").respondent_id)
    for p in sorted(e2e["rep"].rglob("*")):
        if p.suffix in (".csv", ".html", ".svg"):
            text = visible_text(p.read_text(encoding="utf-8"))
            assert not ids & set(re.findall(r"S\d{4}", text)), p
            assert "respondent_id" not in text, p


@pytest.mark.e2e
def test_bad_monitoring_file_stops_the_run_with_no_outputs(e2e, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(EXAMPLE, raw)
    _set_cell(raw / "monitoring.csv", 3, "residents_reached", "-5")
    c = yaml.safe_load(e2e["cfgfile"].read_text())
    c["data"]["raw_dir"] = str(raw)
    cfgfile = tmp_path / "bad.yaml"
    cfgfile.write_text(yaml.safe_dump(c))
    work = tmp_path / "run"
    work.mkdir()
    res = e2e["run"](work, cfgfile)
    assert res.returncode != 0
    assert "monitoring.csv, line 3, column 'residents_reached', value '-5': a count must be 0 or more" in res.stderr
    assert not [p for p in (work / "reports").rglob("*") if p.is_file()] if (work / "reports").exists() else True
    assert not list((work / "data/processed").rglob("*.parquet")) if (work / "data/processed").exists() else True


@pytest.mark.e2e
def test_a_programme_config_asking_for_a_mixed_model_stops_before_anything_runs(e2e, tmp_path):
    c = yaml.safe_load(e2e["cfgfile"].read_text())
    c["primary"] = {"outcome": "swemwbs_metric", "timepoint": "m12"}
    cfgfile = tmp_path / "mixed.yaml"
    cfgfile.write_text(yaml.safe_dump(c))
    work = tmp_path / "run"
    work.mkdir()
    res = e2e["run"](work, cfgfile)
    assert res.returncode != 0
    assert "config key primary: design.type programme analyses aggregate monitoring counts" in res.stderr
    assert not (work / "reports").exists()


@pytest.mark.e2e
def test_a_neighbourhood_joining_late_runs_end_to_end_with_its_own_target(e2e, tmp_path):
    """The example (Chell Heath joins in 2023Q3) with Meir North also joining late, in 2024Q1
    (its 2023 rows and awards removed from the raw files, its start declared), and a target of
    its own, run by Snakemake.  Expected figures
    come from the edited raw files (pandas)."""
    hood = "Meir North"
    raw = tmp_path / "raw"
    shutil.copytree(EXAMPLE, raw)
    for f in ("monitoring.csv", "funding.csv"):
        d = pd.read_csv(raw / f, dtype=str, keep_default_na=False)
        d[~((d.neighbourhood == hood) & d.quarter.str.startswith("2023"))].to_csv(raw / f, index=False,
                                                                                   lineterminator="\n")
    mon = pd.read_csv(raw / "monitoring.csv")
    engaged = float(mon[mon.neighbourhood == hood].residents_engaged.sum())
    assert (mon.neighbourhood == hood).sum() == 4 and mon[mon.neighbourhood == hood].residents_engaged.notna().all()
    c = yaml.safe_load(e2e["cfgfile"].read_text())
    c["data"]["raw_dir"] = str(raw)
    for h in c["programme"]["neighbourhoods"]:
        if h["id"] == hood:
            h["start"] = "2024Q1"
    starts = {h["id"]: h.get("start") or "2023Q1" for h in c["programme"]["neighbourhoods"]}
    assert starts["Chell Heath"] == "2023Q3"  # the example's own late neighbourhood
    c["programme"]["targets"].append({"indicator": "residents_engaged", "period": "2024Q4", "target": engaged / 0.9,
                                      "neighbourhood": hood})
    cfgfile = tmp_path / "late.yaml"
    cfgfile.write_text(yaml.safe_dump(c))
    work = tmp_path / "run"
    work.mkdir()
    res = e2e["run"](work, cfgfile)
    assert res.returncode == 0, res.stderr[-4000:]
    rep = work / "reports/c2_programme"
    t = pd.read_csv(rep / "tables/monitoring_targets.csv", keep_default_na=False).set_index(
        ["indicator", "neighbourhood", "period"])
    own = t.loc[("residents_engaged", hood, "2024Q4")]
    assert float(own.achieved) == engaged and own.rag == "amber" and float(own.percent_of_target) == pytest.approx(90)
    # programme-wide: Meir North's 2023 is outside the grid, not missing; 2023Q4 adds the other five only
    cum = pd.read_csv(rep / "tables/monitoring_cumulative.csv").set_index(["indicator", "quarter"])
    assert cum.loc[("residents_reached", "2023Q4"), "missing_cells"] == 0
    assert cum.loc[("residents_reached", "2023Q4"), "cumulative"] == mon[mon.quarter <= "2023Q4"].residents_reached.sum()
    assert list(cum.loc["residents_reached"].neighbourhoods_in_programme) == [4, 4, 5, 5, 6, 6, 6, 6]
    assert (cum.loc["residents_reached"].missing_cells == 0).all()
    assert t.loc[("residents_reached", "all", "2023Q4"), "rag"] in ("green", "amber", "red")
    hoods = pd.read_csv(rep / "tables/monitoring_by_neighbourhood.csv").set_index(["neighbourhood", "indicator"])
    assert hoods.loc[(hood, "residents_engaged"), "start"] == "2024Q1"
    assert hoods.loc[(hood, "residents_engaged"), "missing_cells"] == 0
    trend = pd.read_csv(rep / "figures/monitoring_trend_data.csv")
    assert len(trend) == 6 * 8 - 2 - 4 == len(mon)
    assert not ((trend.neighbourhood == hood) & (trend.quarter < "2024Q1")).any()
    page = (rep / "summary.html").read_text()
    assert "<th>Neighbourhood</th>" in page and "In the programme from" in page and "before it" in page
    from analysis.render import layout_problems
    assert layout_problems(page) == []  # the extra column and row still fit an A4 page


def test_plan_locking_and_verify_say_they_do_not_apply_to_a_programme(tmp_path, capsys):
    from analysis import verify
    from analysis.sap import SAPError, make_lock
    c = _raw_cfg()
    f = tmp_path / "c2.yaml"
    f.write_text(yaml.safe_dump(c))
    with pytest.raises(SAPError, match="cannot be locked for programme monitoring"):
        make_lock(f)
    assert verify.main(["--configfile", str(f)]) == 2
    assert "not available for design.type programme" in capsys.readouterr().err


@pytest.mark.e2e
def test_the_summary_page_is_self_contained_and_prints(e2e, tmp_path):
    """The funder page loads nothing from outside itself (WeasyPrint with a data:-only fetcher),
    every table fits the page, and it prints to PDF."""
    from analysis.render import html_to_pdf
    html = (e2e["rep"] / "summary.html").read_text()
    assert "data:image/png;base64," in html and not re.search(r"(?i)(src|href)=['\"](?!data:)", html)
    from analysis.render import layout_problems
    assert layout_problems(html) == []  # every table fits an A4 page
    html_to_pdf(html, tmp_path / "summary.pdf")
    assert (tmp_path / "summary.pdf").read_bytes()[:4] == b"%PDF"


def test_a_programme_without_survey_or_funding_reports_them_not_collected(tmp_path):
    from analysis.stages import programme, programme_ingest

    def edit(c):
        c["data"].update(survey=None, funding=None)
        p = c["programme"]
        p["indicators"] = [i for i in p["indicators"] if i["id"] != "funding_gbp"]
        p["targets"] = [t for t in p["targets"] if t["indicator"] != "funding_gbp"]
    c = _cfg_at(EXAMPLE, edit)
    ing, ing_out, outs = _stage_files(tmp_path)
    programme_ingest.run(config_keys.stage_config("programme_ingest", c), {}, ing_out)
    programme.run(config_keys.stage_config("programme", c), ing, outs)
    assert "resident survey: not collected" in Path(outs["survey_change"]).read_text()
    assert "resident survey: not collected" in Path(outs["wellby"]).read_text()
    vfm = pd.read_csv(outs["vfm"]).set_index("measure")
    assert vfm.loc["Cost per resident engaged", "cost_per_unit_gbp"] > 0
    assert vfm.note.str.contains("resident survey: not collected").sum() == 2
    html = Path(outs["summary"]).read_text()
    assert "Resident survey: not collected" in html and "Funding levered: not collected" in html


# ---- the summary page: template, escaping, neutralised tables ------------------------------------

def test_summary_cells_are_plain_text_formatted_for_reading():
    from analysis.reporting.programme_summary import text
    assert [text(None), text(float("nan")), text(pd.NA), text(1234.5, 1), text(-2.0, 0, True), text(-0.004, 2),
            text(1500.0, 0, True), text("<b>")] == ["—", "—", "—", "1,234.5", "−£2", "0.00", "£1,500", "<b>"]


def test_hostile_labels_and_sources_are_escaped_on_the_page_and_neutralised_in_the_tables(raw, tmp_path):
    """Text from the config (title, an indicator's label, a funding category) and the data (the
    funding table's source) reaches the page only escaped by the template, and the CSV tables
    only with a formula neutralised."""
    from analysis.stages import programme, programme_ingest
    script, formula = "<script>alert(1)</script>", '=HYPERLINK("http://x","y")'
    hood = "<img src=x onerror=alert(2)>"  # a neighbourhood name from the data, declared and targeted in the config
    for name in ("monitoring.csv", "funding.csv", "survey.csv"):
        (raw / name).write_text((raw / name).read_text().replace("Bentilee", hood))
    fun = pd.read_csv(raw / "funding.csv", dtype=str, keep_default_na=False)
    fun["source"] = fun.source.replace("National Lottery Community Fund", formula)
    fun.to_csv(raw / "funding.csv", index=False, lineterminator="\n")
    assert (fun.source == formula).any()

    def edit(c):
        c["title"] = "<i>Programme</i> & co"
        c["programme"]["indicators"][0]["label"] = script
        c["programme"]["funding_sources"] = [formula if s == "National Lottery Community Fund" else s
                                             for s in c["programme"]["funding_sources"]]
        for x in c["programme"]["neighbourhoods"] + c["programme"]["targets"]:
            for k in ("id", "neighbourhood"):
                if x.get(k) == "Bentilee":
                    x[k] = hood
        assert any(t.get("neighbourhood") == hood for t in c["programme"]["targets"])
    c = _cfg_at(raw, edit)
    ing, ing_out, outs = _stage_files(tmp_path)
    programme_ingest.run(config_keys.stage_config("programme_ingest", c), {}, ing_out)
    programme.run(config_keys.stage_config("programme", c), ing, outs)
    page = Path(outs["summary"]).read_text()
    assert "<script" not in page and "<i>" not in page and "HYPERLINK(\"" not in page and "<img src=x" not in page
    # the neighbourhood's name: in the figures table's header and the targets table's Neighbourhood column
    assert page.count("&lt;img src=x onerror=alert(2)&gt;") >= 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;i&gt;Programme&lt;/i&gt; &amp; co" in page
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in page
    src = pd.read_csv(outs["funding"], dtype=str).source
    assert "'" + formula in set(src) and formula not in set(src)
    assert (pd.read_csv(outs["targets"], dtype=str).label == script).sum() == 2  # CSV: text, not a formula


def test_the_summary_page_is_rendered_from_its_template():
    """The page's markup lives in the template; analysis/programme.py keeps the computations."""
    import ast
    src = (ROOT / "analysis/programme.py").read_text()
    names = {n.name for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef)}
    assert not names & {"summary_html", "_table", "_fmt"} and "<table" not in src and "<h2>" not in src
    assert "{{ table(targets.table) }}" in (ROOT / "analysis/templates/programme_summary.html.j2").read_text()



def test_funding_in_a_declared_quarter_before_the_first_row_is_accepted_and_counted(tmp_path):
    """A declared start earlier than a neighbourhood's first monitoring row puts the quarters
    between on the grid (not recorded), so an award in one of them is inside the quarters
    monitored: read, and counted in the funding total (review finding: it used to be refused as
    'not in the monitoring table')."""
    c = _staggered(tmp_path, edit=lambda c: c["programme"]["neighbourhoods"][0].update(start="2023Q4"))
    with open(Path(c["data"]["raw_dir"]) / "funding.csv", "a") as f:
        f.write("A,2023Q4,Grant,30\n")
    res = _staggered_results(c)
    cum = res["cum"]
    assert list(cum.loc["funding_gbp"].index) == ["2023Q4", "2024Q1", "2024Q2", "2024Q3"]
    assert list(cum.loc["funding_gbp"].cumulative) == [30, 130, 180, 180]
    assert list(cum.loc["n"].missing_cells) == [1, 1, 1, 2]  # A's 2023Q4 was in the programme, not recorded
    # a quarter before every declared start and every row is still refused
    with open(Path(c["data"]["raw_dir"]) / "funding.csv", "a") as f:
        f.write("A,2023Q3,Grant,5\n")
    with pytest.raises(DataValidationError, match="value '2023Q3': quarter outside the quarters monitored"):
        pg.read_programme(c)


def test_summary_prints_targets_at_their_precision_and_never_rounds_up_to_the_target(tmp_path):
    """A target of 11.05 with 11 achieved is 99.5% (amber): the page must not print '11 of 11,
    100%, amber' (review finding), and a target of 2.4 is not printed as 2."""
    from analysis.reporting import programme_summary as ps

    def edit(c):
        c["programme"]["targets"] = [{"indicator": "v", "period": "2024Q3", "target": 11.05},
                                     {"indicator": "n", "period": "2024Q3", "target": 2.4, "neighbourhood": "B"}]
    c = _staggered(tmp_path, edit=edit)
    res = _staggered_results(c)
    t = ps._targets(c, res["targets"])["table"]
    cells = [[x["text"] for x in row] for row in t["rows"]]
    head = t["head"]
    rows = {r[head.index("Neighbourhood")]: dict(zip(head, r)) for r in cells}
    assert (rows["all"]["Target"], rows["all"]["Achieved"], rows["all"]["% of target"], rows["all"]["RAG"]) == \
        ("11.05", "11", "99.5", "amber")
    assert rows["B"]["Target"] == "2.4" and rows["B"]["RAG"] == "green"


def test_neighbourhood_targets_of_the_example_match_r(cfg):
    """Each neighbourhood-level target of the example (its own running total from its declared
    start, % of target, RAG, cells not recorded) against R computed from the raw monitoring file
    and the config (tests/reference/programme_golden.R, section 4)."""
    p = cfg["programme"]
    t = pg.read_programme(cfg)
    grid = pg.quarterly_grid(t["monitoring"], t.get("funding"), p["indicators"], p["neighbourhoods"])
    got = pg.against_targets(pg.cumulative(grid, p["indicators"]), p["targets"], p["rag"],
                             pg.cumulative_by_neighbourhood(grid, p["indicators"]))
    got = got[got.neighbourhood != "all"]
    ref = pd.read_csv(GOLDEN / "programme_neighbourhood_targets.csv")
    m = got.merge(ref, on=["indicator", "neighbourhood", "period"], suffixes=("", "_r"), validate="1:1")
    assert len(m) == len(ref) == len(got) >= 2
    for c in ("target", "achieved", "percent_of_target", "missing_cells"):
        np.testing.assert_allclose(m[c].astype(float), m[f"{c}_r"].astype(float), rtol=1e-12, err_msg=c)
    assert (m.rag == m.rag_r).all(), m[["neighbourhood", "rag", "rag_r"]]


def test_target_before_monitoring_began_is_not_called_a_late_join():
    """A target dated before the first quarter monitored is 'not assessed'.  The note says a
    neighbourhood joined late only when it did: B is declared without a start quarter, so it is
    in the programme from the first quarter monitored (2024Q1), and a target of B's for 2023Q4
    is before monitoring began, not before B joined; A, declared to start in 2024Q2, did join late."""
    from analysis.programme import against_targets, cumulative, cumulative_by_neighbourhood, quarterly_grid
    mon = pd.DataFrame({"neighbourhood": ["B", "A", "B"], "quarter": ["2024Q1", "2024Q2", "2024Q2"],
                        "engaged": pd.array([10, 5, 20], dtype="Int64")})
    inds = [{"id": "engaged", "label": "Residents engaged", "unit": "residents", "aggregation": "sum"}]
    hoods = [{"id": "A", "start": "2024Q2"}, {"id": "B", "start": None}]
    grid = quarterly_grid(mon, None, inds, hoods)
    t = against_targets(cumulative(grid, inds),
                        [{"indicator": "engaged", "period": "2023Q4", "target": 5, "neighbourhood": "B"},
                         {"indicator": "engaged", "period": "2024Q1", "target": 5, "neighbourhood": "A"},
                         {"indicator": "engaged", "period": "2023Q4", "target": 5}],
                        {"green": 1.0, "amber": 0.8}, cumulative_by_neighbourhood(grid, inds)).set_index(
                            ["neighbourhood", "period"])
    assert (t.rag == "not assessed").all()
    assert t.note[("B", "2023Q4")] == "before the first quarter monitored"
    assert t.note[("A", "2024Q1")] == "before A joined the programme (2024Q2)"
    assert t.note[("all", "2023Q4")] == "before the first quarter monitored"
