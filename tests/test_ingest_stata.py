"""Stata .dta input, end to end through ingest (issue 15 item 7): raw files written as Stata
files with pyreadstat (as a trial team's Stata export would be), named in the config, read by
ingest and scored, give the same tables as the CSV originals; a query in a .dta file names its
case number."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.ingest import DataValidationError, ingest_trial
from analysis.pipeline import prepare


def _to_dta(csv_path, dta_path, edit=None):
    """A Stata file of a CSV's data: text columns as strings, numeric columns as numbers (missing
    as Stata's system missing), as `import delimited` then `save` would give."""
    import pyreadstat
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    for c in df.columns:
        num = pd.to_numeric(df[c].replace("", np.nan), errors="coerce")
        if num.notna().sum() == (df[c] != "").sum():  # every non-blank value is a number
            df[c] = num.astype(float)
    if edit:
        edit(df)
    pyreadstat.write_dta(df, str(dta_path))
    return df


@pytest.fixture
def stata_trial(demo_cfg, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(demo_cfg["data"]["raw_dir"], raw)
    cfg = copy.deepcopy(demo_cfg)
    cfg["data"]["raw_dir"] = str(raw)
    return cfg, raw


def test_stata_files_ingest_like_their_csv_originals(stata_trial, demo_prepared):
    cfg, raw = stata_trial
    written = _to_dta(raw / "participants.csv", raw / "participants.dta")
    assert written.age.dtype == float and pd.api.types.is_string_dtype(written.participant_id)
    _to_dta(raw / "wave_m3.csv", raw / "wave_m3.dta")
    (raw / "participants.csv").unlink()
    (raw / "wave_m3.csv").unlink()
    cfg["data"]["participants"] = "participants.dta"
    cfg["data"]["waves"][1]["file"] = "wave_m3.dta"
    got = prepare(cfg)
    csv = demo_prepared
    for name in ("participants", "responses", "scores", "linked"):
        a, b = got[name], csv[name]
        if "source_line" in a:  # the case number in the Stata file, the line number in the CSV
            a, b = a.drop(columns="source_line"), b.drop(columns="source_line")
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    m3 = got["responses"][got["responses"].timepoint == "m3"]
    assert sorted(m3.source_line) == list(range(1, len(m3) + 1))  # Stata case numbers


def test_a_bad_value_in_a_stata_file_is_named_by_its_case(stata_trial):
    cfg, raw = stata_trial

    def bad(df):
        df.loc[4, "wemwbs_3"] = 9.0  # WEMWBS items are 1-5
    df = _to_dta(raw / "wave_m3.csv", raw / "wave_m3.dta", edit=bad)
    (raw / "wave_m3.csv").unlink()
    cfg["data"]["waves"][1]["file"] = "wave_m3.dta"
    with pytest.raises(DataValidationError) as err:
        ingest_trial(cfg)
    q = [x for x in err.value.queries if x.file == "wave_m3.dta" and x.column == "wemwbs_3"]
    assert len(q) == 1, err.value.queries[:5]
    assert (int(q[0].line), q[0].participant_id, q[0].value) == (5, df.participant_id[4], "9")
    assert "wave_m3.dta, case 5" in str(err.value)
