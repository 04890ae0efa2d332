"""Value for money of a single-arm study (analysis/value.py, value_for_money in the config).

The calculations are checked against arithmetic done here by hand from the inputs (the config's
cost items, the shipped NHS Cost Inflation Index, the raw questionnaire files), never by calling
the same code again; the single-arm example is then run through the real stages (ingest to the
funder report, tests/stage_runner.py) and every number of its vfm_* tables is compared with R's
(tests/reference/value_golden.R, from the raw files and the config); its report sections are
checked, including that no participant identifier reaches the funder's report."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.config import ConfigError, load_config, validate_config
from analysis.value import (NO_RATIO_WORSE, NO_RATIO_ZERO, UNCONTROLLED, per_participant, per_point, ratio_status,
                            wellby)
from analysis.programme import cost_buildup
from conftest import ROOT, STAGE_KEY, fast_analysis, visible_text

INDEX = pd.DataFrame({"year": ["2022/23", "2023/24"], "rate_pct": [5.0, 10.0]})
COSTS = [{"item": "staff", "amount_gbp": 1000, "price_year": "2023/24", "source": "budget"},
         {"item": "rooms", "amount_gbp": 500, "price_year": "2022/23", "source": "invoices"}]
# 1000 + 500 x 1.10 = 1550 in 2023/24 prices
TOTAL = 1550.0
COUNTS = {"enrolled": 10, "completing": 5}


def _effects(rows: list[tuple]) -> pd.DataFrame:
    """An effects table: (outcome, estimate, ci_low, ci_high, n) rows of the primary analysis at m12, all
    participants, among decoys (another time point, population and analysis) that must not be used."""
    out = []
    for y, est, lo, hi, n in rows:
        base = dict(outcome=y, population="all", analysis="primary", timepoint="m12", estimate=est, ci_low=lo,
                    ci_high=hi, n_participants=n)
        out += [base, {**base, "timepoint": "m6", "estimate": 99.0}, {**base, "population": "staff", "estimate": 99.0},
                {**base, "analysis": "paired_change", "estimate": 99.0}]
    return pd.DataFrame(out)


def _point(rows, directions=None):
    b = cost_buildup(COSTS, "2023/24", INDEX)
    ys = [r[0] for r in rows]
    return per_point(b, _effects(rows), ys, "m12", COUNTS, directions or {}, {}).set_index(["outcome", "base"])


# ---- the calculations, by hand -----------------------------------------------------------------

def test_cost_per_participant_enrolled_and_completing():
    b = cost_buildup(COSTS, "2023/24", INDEX)
    assert b.amount_gbp_analysis_year.tolist() == pytest.approx([1000.0, 550.0])
    t = per_participant(b, COUNTS, "m12", "SWEMWBS").set_index("measure")
    assert t.loc["Cost per participant enrolled"].cost_per_participant_gbp == pytest.approx(155.0)
    assert t.loc["Cost per participant completing"].cost_per_participant_gbp == pytest.approx(310.0)
    assert set(t.price_year) == {"2023/24"} and set(t.total_cost_gbp) == {TOTAL}
    none = per_participant(b, {"enrolled": 10, "completing": 0}, "m12", "SWEMWBS").set_index("measure")
    assert np.isnan(none.loc["Cost per participant completing"].cost_per_participant_gbp)


def test_cost_per_point_is_cost_per_participant_over_the_mean_change_with_its_interval():
    t = _point([("wb", 2.0, 1.0, 4.0, 8)])
    e, c = t.loc[("wb", "enrolled")], t.loc[("wb", "completing")]
    assert e.ratio_status == "ratio" and e.change == 2.0 and e.n_change == 8  # the primary, all, m12 row
    assert e.cost_per_point_gbp == pytest.approx(155.0 / 2)
    assert e.cost_per_point_at_gain_ci_high_gbp == pytest.approx(155.0 / 4)
    assert e.cost_per_point_at_gain_ci_low_gbp == pytest.approx(155.0 / 1)
    assert c.cost_per_point_gbp == pytest.approx(310.0 / 2)
    assert UNCONTROLLED in e.note


def test_a_fall_is_the_gain_on_a_score_where_lower_is_better():
    t = _point([("lonely", -0.5, -1.0, -0.25, 8)], {"lonely": "lower"})
    r = t.loc[("lonely", "enrolled")]
    assert (r.gain, r.gain_ci_low, r.gain_ci_high) == (0.5, 0.25, 1.0)
    assert r.cost_per_point_gbp == pytest.approx(155.0 / 0.5)
    assert r.cost_per_point_at_gain_ci_low_gbp == pytest.approx(155.0 / 0.25)
    # the same numbers on a score where higher is better are a worsening: no ratio
    assert _point([("wb", -0.5, -1.0, -0.25, 8)]).loc[("wb", "enrolled")].ratio_status == "worsening"


@pytest.mark.parametrize("est,lo,hi,status,note", [
    (1.0, -0.5, 2.5, "interval includes no change", NO_RATIO_ZERO),
    (1.0, 0.0, 2.0, "interval includes no change", NO_RATIO_ZERO),  # touching zero includes it
    (-1.0, -2.0, -0.5, "worsening", NO_RATIO_WORSE),
    (-0.2, -1.0, 0.6, "interval includes no change", NO_RATIO_ZERO),  # a negative estimate inside
])
def test_no_cost_per_point_when_the_interval_includes_no_change_or_a_worsening(est, lo, hi, status, note):
    t = _point([("wb", est, lo, hi, 8)])
    for base in ("enrolled", "completing"):
        r = t.loc[("wb", base)]
        assert r.ratio_status == status and note in r.note and UNCONTROLLED in r.note
        assert np.isnan(r.cost_per_point_gbp) and np.isnan(r.cost_per_point_at_gain_ci_low_gbp)
        assert np.isnan(r.cost_per_point_at_gain_ci_high_gbp)
        assert r.cost_per_participant_gbp == pytest.approx(TOTAL / COUNTS[base])  # still shown


def test_ratio_status_rule():
    assert ratio_status(1e-9, 1.0) == "ratio"
    assert ratio_status(0.0, 1.0) == ratio_status(-1.0, 1.0) == "interval includes no change"
    assert ratio_status(-2.0, -1.0) == "worsening"
    assert ratio_status(np.nan, np.nan) == "not estimated"


def _wellby_cfg(outcome="ons4_life_satisfaction"):
    return {"value_for_money": {"wellby": {"outcome": outcome, "value": 13000, "low": 10000, "high": 16000,
                                           "uprating_factor": 1.0, "duration_years": 2.0,
                                           "price_basis": "2019 prices"}}}


def test_wellby_value_of_the_life_satisfaction_change():
    eff = _effects([("ons4_life_satisfaction", 0.5, 0.2, 0.8, 8)])
    w = wellby(eff, _wellby_cfg(), "m12", 10, collected=True).set_index("scenario")
    # WELLBYs = 0.5 x 10 participants x 2 years = 10
    assert w.loc["central"].wellbys == pytest.approx(10.0) and w.loc["central"].participants == 10
    assert w.social_value_gbp.to_dict() == pytest.approx({
        "low value": 100000.0, "central": 130000.0, "high value": 160000.0,
        "central value, lower CI of change": 0.2 * 10 * 2 * 13000, "central value, upper CI of change": 0.8 * 10 * 2 * 13000})
    assert set(w.price_basis) == {"2019 prices"} and set(w.note) == {UNCONTROLLED}
    zero = wellby(_effects([("ons4_life_satisfaction", 0.1, -0.2, 0.4, 8)]), _wellby_cfg(), "m12", 10, True)
    assert zero.note.str.contains("includes no change").all()
    assert zero.set_index("scenario").loc["central value, lower CI of change"].social_value_gbp < 0


def test_wellby_not_collected():
    eff = _effects([("swemwbs_metric", 1.0, 0.5, 1.5, 8)])
    for w in (wellby(eff, _wellby_cfg(), "m12", 10, collected=False), wellby(eff, _wellby_cfg(None), "m12", 10, True)):
        assert w.scenario.tolist() == ["not estimated"] and "not collected" in w.note.iloc[0]
        assert w.social_value_gbp.isna().all()


# ---- the config --------------------------------------------------------------------------------

def _single_arm_raw() -> dict:
    cfg = yaml.safe_load((ROOT / "config/single_arm.yaml").read_text())
    cfg["data"]["raw_dir"] = str(ROOT / cfg["data"]["raw_dir"])
    return cfg


def _no_life_satisfaction(c):
    """Life satisfaction collected but no longer analysed (nor priced)."""
    c["outcomes"]["secondary"] = ["ucla3_total"]
    c["value_for_money"]["outcomes"] = ["swemwbs_metric"]


@pytest.mark.parametrize("edit,message", [
    (lambda c: c["value_for_money"].update(costs=[]), "value_for_money.costs"),
    (lambda c: c["value_for_money"].update(outcomes=["wemwbs_total"]), "value_for_money.outcomes"),
    (lambda c: c["value_for_money"].update(timepoint="m3"), "value_for_money.timepoint"),
    (_no_life_satisfaction, "value_for_money.wellby.outcome"),
    (lambda c: c["value_for_money"]["costs"][0].pop("source"), "source"),
])
def test_config_refuses_a_value_for_money_plan_that_cannot_run(edit, message):
    cfg = _single_arm_raw()
    validate_config(copy.deepcopy(cfg))  # the example itself is valid
    edit(cfg)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(cfg)


def test_value_for_money_is_refused_outside_the_single_arm_design():
    cfg = yaml.safe_load((ROOT / "config/individual.yaml").read_text())
    cfg["value_for_money"] = {"enabled": True, "costs": COSTS}
    with pytest.raises(ConfigError, match="value_for_money.enabled: value for money is for a single-arm study"):
        validate_config(cfg)


def test_the_example_declares_every_cost_with_its_source_and_price_year():
    v = load_config(ROOT / "config/single_arm.yaml")["value_for_money"]
    assert v["enabled"] and len(v["costs"]) >= 3
    assert all(c["source"].strip() and re.fullmatch(r"\d{4}/\d{2}", c["price_year"]) for c in v["costs"])


# ---- the single-arm example through the real stages --------------------------------------------

@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    from stage_runner import run_all, stage_files
    cfg = fast_analysis(load_config(ROOT / "config/single_arm.yaml"))
    cfg["data"]["raw_dir"] = str(ROOT / cfg["data"]["raw_dir"])
    work = tmp_path_factory.mktemp("vfm")
    run_all(cfg, work, STAGE_KEY, notebooks=True)
    return dict(cfg=cfg, work=work, files=stage_files(cfg, work))


def test_single_arm_run_writes_the_tables_from_its_inputs(single_run):
    cfg, out = single_run["cfg"], single_run["files"]["value"][1]
    raw = ROOT / "data/raw/single_arm"
    index = pd.read_csv(ROOT / "analysis/data/nhscii_pay_prices.csv", dtype={"year": str})
    rate = 1 + index.set_index("year").loc["2023/24", "pay_and_prices_pct"] / 100  # 2022/23 -> 2023/24
    total = sum(c["amount_gbp"] * (rate if c["price_year"] == "2022/23" else 1.0)
                for c in cfg["value_for_money"]["costs"])
    assert {c["price_year"] for c in cfg["value_for_money"]["costs"]} == {"2022/23", "2023/24"}
    b = pd.read_csv(out["buildup"])
    assert b.amount_gbp_analysis_year.sum() == pytest.approx(total) and b.source.str.len().min() > 0
    enrolled = len(pd.read_csv(raw / "participants.csv"))
    m12 = pd.read_csv(raw / "wave_m12.csv")
    # the SWEMWBS metric needs all seven items (no prorating): the completers are those rows
    completing = int(m12[[f"swemwbs_{k}" for k in range(1, 8)]].notna().all(axis=1).sum())
    pp = pd.read_csv(out["per_participant"]).set_index("measure")
    assert pp.participants.tolist() == [enrolled, completing]
    assert pp.loc["Cost per participant enrolled"].cost_per_participant_gbp == pytest.approx(total / enrolled)
    assert pp.loc["Cost per participant completing"].cost_per_participant_gbp == pytest.approx(total / completing)
    eff = pd.read_csv(single_run["files"]["outcome"][1]["effects"])
    pt = pd.read_csv(out["per_point"], keep_default_na=False, na_values=[""])
    assert set(pt.outcome) == {"swemwbs_metric", "ons4_life_satisfaction"}
    for r in pt.itertuples():
        e = eff[(eff.outcome == r.outcome) & (eff.analysis == "primary") & (eff.population == "all")
                & (eff.timepoint == "m12")].iloc[0]
        assert r.change == pytest.approx(e.estimate) and e.ci_low > 0  # the example's changes exclude zero
        n = enrolled if r.base == "enrolled" else completing
        assert r.cost_per_point_gbp == pytest.approx(total / n / e.estimate)
    w = pd.read_csv(out["wellby"]).set_index("scenario")
    ls = eff[(eff.outcome == "ons4_life_satisfaction") & (eff.analysis == "primary") & (eff.population == "all")
             & (eff.timepoint == "m12")].iloc[0].estimate
    assert w.loc["central"].social_value_gbp == pytest.approx(ls * enrolled * 1.0 * 13000)
    assert w.loc["low value"].social_value_gbp == pytest.approx(ls * enrolled * 10000)


GOLDEN = ROOT / "tests/reference/golden"
# keys of each value-for-money table, and its columns that are text and compared exactly
GOLDEN_TABLES = {"buildup": ("vfm_cost_buildup", ["item"], ["price_year", "analysis_price_year"]),
                 "per_participant": ("vfm_cost_per_participant", ["measure"], ["price_year"]),
                 "per_point": ("vfm_cost_per_point", ["outcome", "base"],
                               ["timepoint", "direction", "ratio_status", "price_year"]),
                 "wellby": ("vfm_wellby", ["scenario"], [])}
# relative tolerances: the costs and counts are arithmetic on the config and the index (the tables are
# written to 12 significant digits); what rests on the mixed model differs from R's tightly converged
# fit by up to 3e-9
ARITHMETIC_TOL, MODEL_TOL = 1e-11, 1e-8
FROM_THE_MODEL = {"change", "ci_low", "ci_high", "gain", "gain_ci_low", "gain_ci_high", "cost_per_point_gbp",
                  "cost_per_point_at_gain_ci_high_gbp", "cost_per_point_at_gain_ci_low_gbp", "ls_change", "wellbys",
                  "social_value_gbp"}


def _compare_with_r(tables: dict[str, pd.DataFrame], case: str) -> None:
    for name, (golden, keys, text) in GOLDEN_TABLES.items():
        gold = pd.read_csv(GOLDEN / f"{golden}.csv", keep_default_na=False, na_values=[""])
        if "case" in gold:
            gold = gold[gold.case == case]
        ours, gold = tables[name].set_index(keys), gold.set_index(keys)
        assert len(ours) and sorted(ours.index) == sorted(gold.index), (case, name)
        gold = gold.loc[ours.index]
        numbers = [c for c in ours.columns if pd.api.types.is_numeric_dtype(ours[c])]
        assert numbers and set(numbers) <= set(gold.columns), (name, set(numbers) - set(gold.columns))
        for c in numbers:  # a number missing in R (no ratio) must be missing here too
            tol = MODEL_TOL if c in FROM_THE_MODEL else ARITHMETIC_TOL
            np.testing.assert_allclose(ours[c].to_numpy(float), gold[c].to_numpy(float), rtol=tol, atol=0,
                                       err_msg=f"{case}: {golden}.{c}")
        for c in text:
            assert ours[c].astype(str).tolist() == gold[c].astype(str).tolist(), (case, golden, c)


def test_single_arm_value_for_money_tables_match_r(single_run):
    """Every number of the four vfm_* tables of the single-arm example equals R's, computed in
    tests/reference/value_golden.R from the raw questionnaires, the config and the inflation index
    (scores from the published scoring facts, lmerTest for the change, arithmetic for the rest):
    the tables the stage wrote, then the stage's function on the same run's outputs with every
    analysed outcome priced at 12 months (gains that are falls in loneliness and anxiety) and at
    6 months (where those two intervals include no change: no ratio)."""
    from analysis.stages._common import read_linked
    from analysis.value import value_tables
    files = single_run["files"]
    out = files["value"][1]
    _compare_with_r({k: pd.read_csv(out[k], keep_default_na=False, na_values=[""]) for k in GOLDEN_TABLES}, "example")
    participants = pd.read_parquet(files["value"][0]["participants"])
    linked = read_linked(files["value"][0]["linked"])
    effects = pd.read_csv(files["outcome"][1]["effects"])
    cfg = single_run["cfg"]
    every = [cfg["primary"]["outcome"]] + list(cfg["outcomes"]["secondary"])
    for tp in ("m12", "m6"):
        c = copy.deepcopy(cfg)
        c["value_for_money"].update(outcomes=every, timepoint=tp)
        _compare_with_r(value_tables(c, participants, linked, effects), f"every_outcome_{tp}")
    # the change behind the costs per point: R's fit has the same rows, standard error and df
    eff = effects[(effects.analysis == "primary") & (effects.population == "all")].set_index(["outcome", "timepoint"])
    gold = pd.read_csv(GOLDEN / "vfm_cost_per_point.csv").drop_duplicates(["outcome", "timepoint"])
    gold = gold.set_index(["outcome", "timepoint"])
    assert len(gold) == 8
    np.testing.assert_allclose(eff.loc[gold.index, ["se", "df"]].to_numpy(float),
                               gold[["se", "df"]].to_numpy(float), rtol=MODEL_TOL)
    assert eff.loc[gold.index, "n_model"].tolist() == gold.n_model.tolist()
    assert set(gold.ratio_status) == {"ratio", "interval includes no change"}
    assert set(gold.direction) == {"higher", "lower"}


def _section(html: str) -> str:
    i = html.index("<h2>Value for money</h2>")
    return visible_text(html[i:html.index("<h2", i + 5)])


def test_single_arm_reports_carry_the_value_for_money_section(single_run):
    files = single_run["files"]
    pt = pd.read_csv(files["value"][1]["per_point"]).set_index(["outcome", "base"])
    cpp = pt.loc[("swemwbs_metric", "enrolled")].cost_per_point_gbp
    for html in (files["report"][1]["html"], files["audience_report"][1]["funder"]):
        text = _section(open(html, encoding="utf-8").read())
        assert "Uncontrolled before-after change: not an effect of the intervention" in text
        assert f"£{cpp:,.2f}" in text, html
        assert "Illustrative: synthetic programme budget, staff line" in text  # the source of each cost
        assert "£13,000" in text and "2019 prices" in text and "SROI" in text
    from analysis.reporting import render_section
    assert render_section(single_run["cfg"], files["audience_report"][0], "ethics", "value") is None
    methods = open(files["report"][1]["html"], encoding="utf-8").read()
    assert "Value for money divides the intervention" in methods and "Supplementary Green Book Guidance" in methods


def test_no_participant_identifier_reaches_the_funder_report(single_run):
    files = single_run["files"]
    html = open(files["audience_report"][1]["funder"], encoding="utf-8").read()
    raw_ids = pd.read_csv(ROOT / "data/raw/single_arm/participants.csv", dtype=str).participant_id
    pseudonyms = pd.read_parquet(files["ingest"][1]["participants"]).participant_id
    assert len(raw_ids) > 100 and str(pseudonyms.iloc[0]) != str(raw_ids.iloc[0])
    for pid in list(raw_ids) + list(pseudonyms):
        assert pid not in html, pid
    for path in files["value"][1].values():  # the tables the section reads hold no identifier either
        text = open(path, encoding="utf-8").read()
        assert not any(pid in text for pid in list(raw_ids) + list(pseudonyms)), path


def test_funder_report_suppresses_small_counts_and_the_costs_they_give(single_run, tmp_path):
    """A count below the disclosure threshold (here: 3 completing) is '<5' in the funder's report,
    and the cost per participant and per point on it are withheld; the statistician sees them."""
    from analysis.reporting import render_section
    files = single_run["files"]
    inputs = {k: v for k, v in files["report"][0].items()}
    pp = pd.read_csv(files["value"][1]["per_participant"])
    pp.loc[pp.measure == "Cost per participant completing", "participants"] = 3
    pp.loc[pp.measure == "Cost per participant completing", "cost_per_participant_gbp"] = 12345.67
    pt = pd.read_csv(files["value"][1]["per_point"])
    pt.loc[pt.base == "completing", ["participants", "cost_per_point_gbp"]] = [3, 7654.32]
    inputs["vfm_per_participant"], inputs["vfm_per_point"] = str(tmp_path / "pp.csv"), str(tmp_path / "pt.csv")
    pp.to_csv(inputs["vfm_per_participant"], index=False)
    pt.to_csv(inputs["vfm_per_point"], index=False)
    cfg = copy.deepcopy(single_run["cfg"])
    funder = visible_text(render_section(cfg, inputs, "funder", "value"))
    stat = visible_text(render_section(cfg, inputs, "statistician", "value"))
    assert "£12,345.67" in stat and "£7,654.32" in stat
    assert "£12,345.67" not in funder and "£7,654.32" not in funder
    assert "&lt;5" in funder and funder.count(">suppressed<") >= 3  # one count, two costs per point


def test_value_for_money_is_part_of_the_registered_plan_only_when_enabled():
    """A changed cost after the SAP lock is a difference to declare; a plan without value for money
    (every other design, and configs written before it existed) has no such key, so its lock still matches."""
    from analysis.sap import differences, plan_of
    cfg = load_config(ROOT / "config/single_arm.yaml")
    planned = plan_of(cfg, ROOT)
    assert planned["value_for_money"]["costs"][0]["amount_gbp"] == 78000
    later = copy.deepcopy(cfg)
    later["value_for_money"]["costs"][0]["amount_gbp"] = 70000
    assert [d[0] for d in differences(planned, plan_of(later, ROOT))] == ["value_for_money.costs[0].amount_gbp"]
    off = copy.deepcopy(cfg)
    off["value_for_money"]["enabled"] = False
    assert "value_for_money" not in plan_of(off, ROOT)
    assert "value_for_money" not in plan_of(load_config(ROOT / "config/individual.yaml"), ROOT)


def test_value_for_money_is_refused_in_a_programme_design():
    cfg = yaml.safe_load((ROOT / "config/c2_programme.yaml").read_text())
    cfg["data"]["raw_dir"] = str(ROOT / cfg["data"]["raw_dir"])
    validate_config(copy.deepcopy(cfg))
    cfg["value_for_money"] = {"enabled": True, "costs": COSTS}
    with pytest.raises(ConfigError, match=r"value_for_money\.enabled: .*programme\.costs"):
        validate_config(cfg)


HOSTILE_ITEM = '=HYPERLINK("http://evil","x")'
HOSTILE_SOURCE = "<script>alert(1)</script>"


def test_hostile_cost_item_and_source_are_inert_in_the_tables_and_the_reports(tmp_path):
    """A config is untrusted: a cost item named like a spreadsheet formula and a source holding a
    script tag go through the real stages (ingest to the funder report).  The vfm CSVs write the
    formula with its leading quote (a spreadsheet shows it as text) and the pipeline reads it back
    unchanged; the statistician's report.html and the funder's report show both strings as text,
    HTML-escaped, and never carry the raw script tag."""
    import csv
    import html as html_lib

    from analysis.io import read_table
    from stage_runner import run_all, stage_files
    cfg = fast_analysis(load_config(ROOT / "config/single_arm.yaml"))
    cfg["data"]["raw_dir"] = str(ROOT / cfg["data"]["raw_dir"])
    cfg["value_for_money"]["costs"][0].update(item=HOSTILE_ITEM, source=HOSTILE_SOURCE)
    validate_config(copy.deepcopy(cfg))  # the config itself is accepted: the strings are only text
    run_all(cfg, tmp_path, STAGE_KEY, notebooks=True)
    files = stage_files(cfg, tmp_path)
    path = files["value"][1]["buildup"]
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["item"] == "'" + HOSTILE_ITEM and rows[0]["source"] == HOSTILE_SOURCE
    cells = []  # every cell of every CSV the run wrote that holds the formula
    for table in tmp_path.rglob("*.csv"):
        with open(table, newline="", encoding="utf-8") as f:
            cells += [c for row in csv.reader(f) for c in row if "HYPERLINK" in c]
    assert cells and all(c.startswith("'") for c in cells), cells
    back = read_table(path)
    assert back.item.iloc[0] == HOSTILE_ITEM and back.source.iloc[0] == HOSTILE_SOURCE
    for html_path in (files["report"][1]["html"], files["audience_report"][1]["funder"]):
        text = open(html_path, encoding="utf-8").read()
        assert HOSTILE_SOURCE not in text, html_path
        assert "<script>alert" not in text.lower(), html_path
        shown = html_lib.unescape(_section(text))
        assert HOSTILE_SOURCE in shown and HOSTILE_ITEM in shown, html_path  # shown, as text
