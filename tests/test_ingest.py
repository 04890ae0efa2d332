"""Ingest: the demo passes; broken inputs fail with file, line, column, value and rule.

The full bad-input corpus belongs to the [ingest] issue; these cases pin the behaviour the
spine relies on.
"""

import shutil

import pandas as pd
import pytest

from analysis import DAYS_PER_MONTH
from analysis.ingest import DataValidationError, ingest_trial
from analysis.io import sha256_file


@pytest.fixture
def raw(tmp_path, root):
    d = tmp_path / "raw"
    shutil.copytree(root / "data/raw/demo", d)
    return d


def _edit(path, old, new, count=1):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, count))


def _fails(cfg, raw):
    with pytest.raises(DataValidationError) as err:
        ingest_trial(cfg, raw)
    return str(err.value), err.value.queries


def test_demo_ingests_cleanly(demo_cfg, root):
    before = {p.name: sha256_file(p) for p in (root / "data/raw/demo").iterdir()}
    out = ingest_trial(demo_cfg)
    after = {p.name: sha256_file(p) for p in (root / "data/raw/demo").iterdir()}
    assert before == after  # raw data untouched
    raw_parts = pd.read_csv(root / "data/raw/demo/participants.csv")
    assert len(out["participants"]) == len(raw_parts)
    n_records = sum(len(pd.read_csv(root / "data/raw/demo" / w["file"])) for w in demo_cfg["data"]["waves"])
    assert len(out["responses"]) == n_records
    assert (out["queries"].severity != "error").all()
    assert out["responses"]["wemwbs_1"].dtype == "Int64"
    assert set(out["participants"].arm) == {"control", "intervention"}


def test_duplicate_participant(demo_cfg, raw):
    p = raw / "participants.csv"
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines + [lines[1]]))
    msg, qs = _fails(demo_cfg, raw)
    q = [q for q in qs if q.rule.startswith("duplicate identifier")][0]
    assert (q.file, q.column, q.line) == ("participants.csv", "participant_id", len(lines) + 1)
    assert "participants.csv, line" in msg and "duplicate identifier" in msg


def test_orphan_followup(demo_cfg, raw):
    _edit(raw / "wave_m3.csv", "\nP0002,", "\nP9999,")
    msg, qs = _fails(demo_cfg, raw)
    q = [q for q in qs if "orphan" in q.rule][0]
    assert q.file == "wave_m3.csv" and q.line == 2 and q.value == "P9999" and q.column == "participant_id"


def test_text_in_numeric_item(demo_cfg, raw):
    w = raw / "wave_baseline.csv"
    df = pd.read_csv(w, dtype=str, keep_default_na=False)
    df.loc[4, "wemwbs_3"] = "four"
    df.to_csv(w, index=False)
    msg, qs = _fails(demo_cfg, raw)
    assert "wave_baseline.csv, line 6" in msg and "'wemwbs_3'" in msg and "'four'" in msg
    assert "whole number" in msg


def test_impossible_date(demo_cfg, raw):
    w = raw / "wave_m9.csv"
    df = pd.read_csv(w, dtype=str, keep_default_na=False)
    df.loc[0, "visit_date"] = "2025-02-30"
    df.to_csv(w, index=False)
    msg, qs = _fails(demo_cfg, raw)
    q = [q for q in qs if q.column == "visit_date"][0]
    assert (q.file, q.line, q.value, q.rule) == ("wave_m9.csv", 2, "2025-02-30", "not a real calendar date")


def test_followup_before_baseline(demo_cfg, raw):
    w = raw / "wave_m3.csv"
    df = pd.read_csv(w, dtype=str, keep_default_na=False)
    df.loc[0, "visit_date"] = "2024-01-01"
    df.to_csv(w, index=False)
    msg, qs = _fails(demo_cfg, raw)
    assert any(q.rule in ("follow-up visit is not after the baseline visit", "visit is dated before consent")
               and q.line == 2 for q in qs)


def test_missing_column_and_wrong_delimiter(demo_cfg, raw):
    s = raw / "sites.csv"
    s.write_text(s.read_text().replace(",", ";"))
    msg, qs = _fails(demo_cfg, raw)
    assert "sites.csv, line 1" in msg and "required column(s) missing (is the delimiter a comma?" in msg
    assert len(qs) == 1 and "separated by ';'" in qs[0].rule


def test_empty_file(demo_cfg, raw):
    (raw / "screening_log.csv").write_text("")
    msg, _ = _fails(demo_cfg, raw)
    assert "screening_log.csv: file is empty" in msg


def test_arm_code_not_in_config(demo_cfg, raw):
    _edit(raw / "sites.csv", ",intervention,", ",interventon,")
    msg, qs = _fails(demo_cfg, raw)
    q = [q for q in qs if q.column == "arm"][0]
    assert q.value == "interventon" and "allowed: control, intervention" in q.rule


def _withdraw_first_m9_participant(raw):
    """Give the first participant with a 9-month record a withdrawal date of 2024-12-31."""
    parts = pd.read_csv(raw / "participants.csv", dtype=str, keep_default_na=False)
    m9 = pd.read_csv(raw / "wave_m9.csv", dtype=str, keep_default_na=False)
    pid = m9.participant_id[0]
    parts.loc[parts.participant_id == pid, ["withdrawal_date", "withdrawal_reason"]] = ["2024-12-31", "withdrew consent"]
    parts.to_csv(raw / "participants.csv", index=False)
    return parts, m9, pid


def test_visit_after_withdrawal_is_excluded_and_counted(demo_cfg, raw):
    parts, m9, pid = _withdraw_first_m9_participant(raw)
    m9.loc[0, "visit_date"] = "2025-01-15"
    m9.to_csv(raw / "wave_m9.csv", index=False)
    out = ingest_trial(demo_cfg, raw)
    assert not ((out["responses"].participant_id == pid) & (out["responses"].timepoint == "m9")).any()
    q = out["queries"]
    hit = q[q.rule.str.startswith("visit after withdrawal")]
    assert len(hit) == 1 and hit.iloc[0].participant_id == pid and hit.iloc[0].severity == "warning"


def test_declared_missing_codes_read_as_blank_and_counted(demo_cfg, raw):
    """data.missing_codes: a -99 in an item cell is read as not recorded (the item is blank and
    the wave still ingests), the identifier columns are never blanked, and the count is in the
    exclusions table; without the declaration -99 is an out-of-range error."""
    _edit(raw / "wave_m3.csv", "\nP0002,2024-08-28,5,5,", "\nP0002,2024-08-28,-99,-99,")
    msg, _ = _fails(demo_cfg, raw)
    assert "-99" in msg
    cfg = {**demo_cfg, "data": {**demo_cfg["data"], "missing_codes": [-99]}}
    out = ingest_trial(cfg, raw)
    r = out["responses"]
    row = r[(r.participant_id == "P0002") & (r.timepoint == "m3")]
    assert len(row) == 1 and row.wemwbs_1.isna().all() and row.wemwbs_2.isna().all()
    assert row.wemwbs_3.iloc[0] == 5
    ex = out["exclusions"]
    assert ex[ex.reason.str.contains("missing-data code")].n.sum() == 2


def test_instrument_missing_codes_blank_that_instruments_items_only(demo_cfg, raw):
    """instruments.<name>.missing_codes: a code declared for WEMWBS is read as not recorded in
    WEMWBS items (counted in the exclusions); undeclared it is an error."""
    _edit(raw / "wave_m3.csv", "\nP0002,2024-08-28,5,5,", "\nP0002,2024-08-28,9,5,")
    msg, _ = _fails(demo_cfg, raw)
    assert "wemwbs_1" in msg and "9" in msg
    cfg = {**demo_cfg, "instruments": {**demo_cfg["instruments"],
                                       "wemwbs": {**(demo_cfg["instruments"]["wemwbs"] or {}), "missing_codes": [9]}}}
    out = ingest_trial(cfg, raw)
    r = out["responses"]
    row = r[(r.participant_id == "P0002") & (r.timepoint == "m3")]
    assert len(row) == 1 and row.wemwbs_1.isna().all() and row.wemwbs_2.iloc[0] == 5
    ex = out["exclusions"]
    assert ex[ex.reason.str.contains("missing-data code")].n.sum() == 1


def test_all_errors_reported_at_once(demo_cfg, raw):
    _edit(raw / "wave_m3.csv", "\nP0002,", "\nP9998,")
    _edit(raw / "sites.csv", ",control,", ",ctrl,")
    _, qs = _fails(demo_cfg, raw)
    assert {q.file for q in qs} >= {"wave_m3.csv", "sites.csv"}


def test_withdrawal_exclusions_are_counted_or_kept(demo_cfg, raw):
    parts, m9, pid = _withdraw_first_m9_participant(raw)
    arm = pd.read_csv(raw / "sites.csv").set_index("site_id").arm[parts.set_index("participant_id").site_id[pid]]
    out = ingest_trial(demo_cfg, raw)
    ex = out["exclusions"]
    q = ex[ex.reason.str.startswith("questionnaire record dated after withdrawal")]
    assert q[["timepoint", "arm", "n"]].values.tolist() == [["m9", arm, 1]]
    demo_cfg["data"]["after_withdrawal"] = "keep"
    kept = ingest_trial(demo_cfg, raw)
    assert ((kept["responses"].participant_id == pid) & (kept["responses"].timepoint == "m9")).sum() == 1
    assert kept["queries"].rule.str.contains("record kept").sum() == 1


def test_visit_window_warning(demo_cfg, raw):
    base = pd.read_csv(raw / "wave_baseline.csv", dtype=str, keep_default_na=False).set_index("participant_id")
    m3 = pd.read_csv(raw / "wave_m3.csv", dtype=str, keep_default_na=False)
    demo_cfg["data"]["waves"][1]["window_days"] = [14, 28]
    out = ingest_trial(demo_cfg, raw)
    target = pd.to_datetime(m3.participant_id.map(base.visit_date)) + pd.Timedelta(days=round(3 * DAYS_PER_MONTH))
    delta = (pd.to_datetime(m3.visit_date) - target).dt.days
    expected = set((m3.index[(delta < -14) | (delta > 28)] + 2).tolist())  # file lines
    q = out["queries"]
    got = set(q[q.rule.str.startswith("visit outside its window")].line.astype(int))
    assert got == expected and len(expected) > 0
    assert len(out["responses"]) == sum(len(pd.read_csv(raw / w["file"])) for w in demo_cfg["data"]["waves"])


def test_adverse_events_are_typed_and_their_free_text_never_leaves_ingest(demo_cfg, raw):
    (raw / "adverse_events.csv").write_text(
        "participant_id,event_date,serious,related,description\n"
        "P0003,2024-09-01,yes,no,admitted after a fall at her sister Jane's house\n"
        "P0001,2024-03-01,no,unknown,headache\n")
    demo_cfg["data"]["adverse_events"] = "adverse_events.csv"
    out = ingest_trial(demo_cfg, raw)
    ae = out["adverse_events"]
    assert list(ae.columns) == ["participant_id", "event_date", "serious", "related"]
    assert list(ae.participant_id) == ["P0001", "P0003"]  # participants-file order
    assert "Jane" not in ae.to_csv()
    q = out["queries"]
    before = q[q.rule.str.startswith("adverse event dated before consent")]
    assert len(before) == 1 and before.iloc[0].line == 3 and before.iloc[0].severity == "warning"
