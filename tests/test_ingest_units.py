"""Unit checks of the readers, date parsing, REDCap dictionary, pseudonyms and link counts."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat

import numpy as np
import pandas as pd
import pytest

from analysis.pseudonym import ENV_VAR, PseudonymKeyError, load_key, pseudonymise, pseudonymise_tables
from analysis.readers import read_csv, read_stats_file, read_xlsx
from analysis.redcap import parse_choices
from analysis.validation import Collector, parse_dates


def test_parse_dates_formats_serials_and_ambiguity():
    s = pd.Series(["2024-03-04", "04/03/2024", "13/03/2024", "2024-02-30", "45413", "", "March 4"])
    d, rule = parse_dates(s, ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y"])
    assert d[0] == pd.Timestamp("2024-03-04") and rule[0] == ""
    assert pd.isna(d[1]) and rule[1].startswith("ambiguous date: reads as 2024-03-04 or 2024-04-03")
    assert d[2] == pd.Timestamp("2024-03-13")  # only one reading: not ambiguous
    assert rule[3] == "not a real calendar date"
    assert "Excel serial" in rule[4] and pd.isna(d[4])
    assert rule[5] == "" and pd.isna(d[5])
    assert rule[6].startswith("date not in an accepted format")
    d2, r2 = parse_dates(pd.Series(["45413", "1"]), ["%Y-%m-%d"], serial_ok=True)
    # Excel (1900 system): serial 45413 is 2024-05-01; serial 1 is 1900-01-01
    assert list(d2) == [pd.Timestamp("2024-05-01"), pd.Timestamp("1900-01-01")] and (r2 == "").all()


def test_csv_reader_keeps_line_numbers_with_multiline_fields(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('id,note\nA,"two\nlines"\n\nB,x\n', encoding="utf-8")
    q = Collector()
    t = read_csv(p, "a.csv", q)
    assert list(t.rows) == [2, 5] and t.frame.note[0] == "two\nlines" and not q.queries


def test_xlsx_reader_cells_as_text(tmp_path):
    import datetime as dt

    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "when", "n", "x"])
    ws.append(["A", dt.datetime(2024, 5, 1), 3, 2.5])
    ws.append([None, None, None, None])
    ws.append(["B", 45413, 4.0, None])
    wb.save(tmp_path / "s.xlsx")
    q = Collector()
    t = read_xlsx(tmp_path / "s.xlsx", "s.xlsx", q)
    assert t.frame.values.tolist() == [["A", "2024-05-01", "3", "2.5"], ["B", "45413", "4", ""]]
    assert list(t.rows) == [2, 4] and t.serial_dates_ok
    assert [x.rule for x in q.queries] == ["blank row ignored"]


def test_sav_reader_keeps_value_labels(tmp_path):
    import pyreadstat
    df = pd.DataFrame({"site": [1.0, 2.0], "score": [50.0, 77.5]})
    pyreadstat.write_sav(df, str(tmp_path / "f.sav"), variable_value_labels={"site": {1: "S01", 2: "S02"}})
    t = read_stats_file(tmp_path / "f.sav", "f.sav", Collector(), "sav")
    assert t.frame.values.tolist() == [["1", "50"], ["2", "77.5"]]
    assert t.labels == {"site": {"1": "S01", "2": "S02"}} and list(t.rows) == [1, 2]


def test_redcap_choices():
    assert parse_choices("1, Yes | 0, No") == {"1": "Yes", "0": "No"}
    assert parse_choices("1, Often, or always | 2, Never") == {"1": "Often, or always", "2": "Never"}
    assert parse_choices("1 Yes | 0, No") is None and parse_choices("1, a | 1, b") is None


def test_pseudonym_is_hmac_sha256_and_stable():
    key = b"0123456789abcdef0123"
    ids = pd.Series(["P0001", "P0002", None], dtype="str")
    ps = pseudonymise(ids, key, trial_id="t")
    expect = "ps_" + hmac.new(key, b"t:participant:P0001", hashlib.sha256).hexdigest()[:12]
    assert ps[0] == expect and ps[0] != ps[1] and pd.isna(ps[2])
    assert pseudonymise(ids, key, trial_id="t").equals(ps)
    assert pseudonymise(ids, b"another-key-000000000", trial_id="t")[0] != ps[0]


def test_pseudonymise_tables_replaces_every_id():
    key = b"0123456789abcdef0123"
    t = {"participants": pd.DataFrame({"participant_id": ["P1", "P2"]}),
         "responses": pd.DataFrame({"participant_id": ["P2", "P1", "P2"]}),
         "screening": pd.DataFrame({"screening_id": ["S1", "S2", "S3"], "participant_id": ["P1", None, "P2"]}),
         "queries": pd.DataFrame({"participant_id": ["P1"]})}
    out, mapping = pseudonymise_tables(t, key, trial_id="x")
    m = dict(zip(mapping.raw_id, mapping.pseudonym))
    assert list(out["responses"].participant_id) == [m["P2"], m["P1"], m["P2"]]
    assert out["screening"].participant_id.isna().tolist() == [False, True, False]
    assert out["screening"].screening_id.str.startswith("sc_").all()
    assert list(out["queries"].participant_id) == ["P1"]  # the data manager's queries keep the real IDs


def test_key_from_env_file_and_created_outside_repo(tmp_path, monkeypatch):
    assert load_key(env={ENV_VAR: "x" * 20}) == b"x" * 20
    with pytest.raises(PseudonymKeyError, match="too short"):
        load_key(env={ENV_VAR: "short"})
    kf = tmp_path / "k" / "pseudonym.key"
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    k1 = load_key(str(kf), env={})
    assert stat.S_IMODE(os.stat(kf).st_mode) == 0o600 and len(k1) == 64
    assert load_key(str(kf), env={}) == k1
    from analysis.pseudonym import REPO_ROOT
    with pytest.raises(PseudonymKeyError, match="inside"):
        load_key(str(REPO_ROOT / "pseudonym.key"), env={})
    assert not (REPO_ROOT / "pseudonym.key").exists()
    (tmp_path / "work" / ".git").mkdir()  # a key inside the working directory's repository is refused too
    with pytest.raises(PseudonymKeyError, match="inside"):
        load_key(str(tmp_path / "work" / "keys" / "k"), env={})


def test_exclusion_counts_from_linked_table():
    from analysis.link import exclusion_counts
    lk = pd.DataFrame({"participant_id": ["a", "a", "b", "b"], "arm": ["c", "c", "i", "i"],
                       "timepoint": pd.Categorical(["bl", "m3", "bl", "m3"], categories=["bl", "m3"], ordered=True),
                       "assessed": [True, False, True, True]})
    ing = pd.DataFrame([dict(step="ingest", reason="r", timepoint="m3", arm="c", n=1)])
    out = exclusion_counts(lk, ing)
    assert out.iloc[0].tolist() == ["ingest", "r", "m3", "c", 1]
    miss = out[out.reason.str.startswith("no questionnaire")].set_index(["timepoint", "arm"]).n
    assert miss[("m3", "c")] == 1 and miss[("m3", "i")] == 0 and miss[("bl", "c")] == 0
    assert np.issubdtype(out.n.dtype, np.integer)
