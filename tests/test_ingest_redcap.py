"""The REDCap/Excel/SPSS variant of the demo gives the same tables as the plain-CSV demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import fast_analysis
import yaml

from analysis.config import load_config
from analysis.pipeline import prepare
from analysis.simulate import SimulationParameters
from analysis.simulate_redcap import redcap_config_text, write_redcap_trial

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["sites", "participants", "screening", "responses", "service_use", "fidelity"]


@pytest.fixture(scope="module")
def both(demo_prepared):
    """The plain demo (the shared session tables) and its REDCap variant, each ingested, scored
    and linked (analysis.pipeline.prepare)."""
    plain = load_config(ROOT / "config/config.yaml")
    plain["data"]["raw_dir"] = str(ROOT / "data/raw/demo")
    red = load_config(ROOT / "config/demo_redcap.yaml")
    red["data"]["raw_dir"] = str(ROOT / "data/raw/demo_redcap")
    return plain, demo_prepared, red, prepare(red)


def test_committed_variant_is_reproduced_byte_for_byte(tmp_path):
    write_redcap_trial(tmp_path, SimulationParameters())
    committed = sorted(p.name for p in (ROOT / "data/raw/demo_redcap").iterdir() if p.name != "README.md")
    assert committed == sorted(p.name for p in tmp_path.iterdir())
    for name in committed:
        assert (tmp_path / name).read_bytes() == (ROOT / "data/raw/demo_redcap" / name).read_bytes(), name


def test_variant_config_has_the_demo_analysis_plan():
    """config/demo_redcap.yaml = config/config.yaml with the variant's data block; after editing
    config.yaml run `python -m analysis.simulate_redcap --config` to bring it in step."""
    assert (ROOT / "config/demo_redcap.yaml").read_text() == \
        redcap_config_text((ROOT / "config/config.yaml").read_text())


def test_variant_really_uses_the_other_formats():
    import datetime as dt

    import openpyxl
    import pyreadstat

    raw = ROOT / "data/raw/demo_redcap"
    export = pd.read_csv(raw / "PATHWAYS_DATA_raw.csv", dtype=str, keep_default_na=False)
    assert {"redcap_event_name", "redcap_repeat_instrument", "questionnaires_complete"} <= set(export.columns)
    assert (export.redcap_repeat_instrument == "contact_log").any()
    assert set(export.sex) <= {"1", "2", "3", ""}
    assert "/" in (raw / "screening_log.csv").read_text(encoding="cp1252").split("\n")[1]
    ws = openpyxl.load_workbook(raw / "sites.xlsx").active
    assert isinstance(ws["D2"].value, dt.datetime) and isinstance(ws["E2"].value, int)  # date cell; serial number
    _, meta = pyreadstat.read_sav(str(raw / "fidelity.sav"))
    assert meta.variable_value_labels["site"][1.0] == "S01"


def test_ingest_variant_without_errors(both):
    _, _, _, r = both
    assert (r["queries"].severity != "error").all()
    assert r["exclusions"].reason.str.contains("contact_log").any()  # repeating rows counted, not dropped silently
    assert "participant_initials" not in r["participants"]  # identifier field never leaves ingest


@pytest.mark.parametrize("table", TABLES)
def test_same_typed_tables(both, table):
    _, p, _, r = both
    a, b = p[table], r[table]
    if "source_line" in a:
        a, b = a.drop(columns="source_line"), b.drop(columns="source_line")
    pd.testing.assert_frame_equal(a, b)


def test_same_linked_table(both):
    _, p, _, r = both
    pd.testing.assert_frame_equal(p["linked"], r["linked"])


@pytest.mark.e2e
def test_full_dag_gives_identical_result_tables(tmp_path):
    """Both demos through the whole Snakemake DAG: every result table byte-identical.

    Both runs use the same trial_id and key (tests/test_e2e.py checks separately that result
    tables do not depend on the key).  The analysis plan is the demo's with fewer imputations
    and replicates (conftest.fast_analysis): the comparison is of inputs, not of Monte Carlo
    precision."""
    env = dict(os.environ, PATHWAYS_PSEUDONYM_KEY="e2e-redcap-comparison-key-000000")
    runs = {}
    for name, cfgfile, raw in (("demo", "config/config.yaml", "data/raw/demo"),
                               ("demo_redcap", "config/demo_redcap.yaml", "data/raw/demo_redcap")):
        cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())  # the current analysis plan
        cfg["data"] = yaml.safe_load((ROOT / cfgfile).read_text())["data"]
        cfg["data"]["raw_dir"] = str(ROOT / raw)
        cfg["trial_id"] = "demo"
        fast_analysis(cfg)
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump(cfg))
        work = tmp_path / name
        work.mkdir()
        res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
                              "--configfile", str(f), "--cores", "2", "--quiet"],
                             capture_output=True, text=True, timeout=900, env=env)
        assert res.returncode == 0, res.stderr[-4000:]
        runs[name] = work / "reports" / "demo" / "tables"
    names = sorted(p.name for p in runs["demo"].glob("*.csv"))
    assert names == sorted(p.name for p in runs["demo_redcap"].glob("*.csv")) and "effects.csv" in names
    differ = [n for n in names if n != "exclusions.csv"
              and (runs["demo"] / n).read_bytes() != (runs["demo_redcap"] / n).read_bytes()]
    assert not differ, differ
    # exclusions differ only by the REDCap rows the analysis does not read (contact attempts)
    a = pd.read_csv(runs["demo"] / "exclusions.csv")
    b = pd.read_csv(runs["demo_redcap"] / "exclusions.csv")
    pd.testing.assert_frame_equal(a, b[~b.reason.str.startswith("REDCap")].reset_index(drop=True))
