"""Each stage's ``run`` without Snakemake (issue 15 item 7; analysis/stages/__init__.py): the demo
trial through every stage in this process, with temporary files laid out as the workflow lays
them out (the session fixture ``demo_stages``, tests/stage_runner.py), each stage given the
sub-config its rule passes.  What the stages wrote is checked against the library run directly
on the same data (``demo_prepared``: ingest, score and link without pseudonyms), against the
raw files, and for the report against the files it describes."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from analysis import outcomes
from analysis.config import primary_timepoint
from analysis.io import read_table
from analysis.pseudonym import PseudonymKeyError, key_fingerprint
from analysis.stages import link
from stage_runner import rule_config

OUTCOMES = ["wemwbs_total", "ucla3_total", "eq5d5l_index", "rguk_total"]


def _raw_ids(df: pd.DataFrame, work) -> pd.DataFrame:
    """A processed table with its pseudonyms mapped back to the trial's own IDs."""
    m = pd.read_parquet(work / "data/processed/demo/pseudonyms.parquet")
    return df.assign(participant_id=df.participant_id.map(dict(zip(m.pseudonym, m.raw_id))))


def _same_rows(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> None:
    cols = [c for c in b.columns if c in a.columns]
    a = a[cols].sort_values(keys).reset_index(drop=True)
    b = b[cols].sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_categorical=False)


# ---- score ---------------------------------------------------------------------------------------

def test_score_stage_writes_the_librarys_scores_summary_and_reliability(demo_stages, demo_prepared):
    out = demo_stages["files"]["score"][1]
    scores = _raw_ids(pd.read_parquet(out["scores"]), demo_stages["work"])
    _same_rows(scores, demo_prepared["scores"], ["participant_id", "timepoint"])
    summary = read_table(out["summary"])
    # instruments in analysis order: the primary outcome's, the secondary ones', then the rest
    assert list(dict.fromkeys(summary.instrument)) == ["wemwbs", "ucla3", "eq5d5l", "rguk", "ons4"]
    assert set(summary.timepoint) == {"baseline", "m3", "m9"}
    rel = read_table(out["reliability"])
    assert rel.alpha.between(0, 1).all() and {"wemwbs", "ucla3"} <= set(rel.instrument)
    q = read_table(out["queries"], dtype=str, keep_default_na=False)
    assert q.rule.str.startswith("score not computed").any()
    assert "rguk" in " ".join(q[q.file == "(trial config: instruments)"].rule)  # provisional definition


# ---- link ----------------------------------------------------------------------------------------

def test_link_stage_writes_one_row_per_participant_and_time_point_and_the_queries(demo_stages, demo_prepared):
    out, work = demo_stages["files"]["link"][1], demo_stages["work"]
    linked = pd.read_parquet(out["linked"])
    assert len(linked) == 160 * 3 and not linked.duplicated(["participant_id", "timepoint"]).any()
    assert linked.participant_id.str.startswith("ps_").all()  # pseudonyms only
    _same_rows(_raw_ids(linked, work), demo_prepared["linked"], ["participant_id", "timepoint"])
    queries = read_table(out["queries"], dtype=str, keep_default_na=False)
    # the data manager's list: the trial's own IDs (scoring queries mapped back), owner-only
    ids = queries.participant_id[queries.participant_id != ""]
    assert len(ids) and ids.str.fullmatch(r"P\d{4}").all()
    assert (work / "reports/demo/data_queries.csv").stat().st_mode & 0o077 == 0
    exclusions = read_table(out["exclusions"])
    assert {"step", "reason", "n"} <= set(exclusions.columns)


def test_link_stage_refuses_data_of_another_key_or_changed_raw_files(demo_stages, tmp_path):
    i, _ = demo_stages["files"]["link"]
    cfg = rule_config("link", demo_stages["cfg"])
    outs = dict(linked=str(tmp_path / "a.parquet"), queries=str(tmp_path / "q.csv"))
    inputs = {k: i[k] for k in ("participants", "responses", "scores", "queries", "pseudonyms")}
    with pytest.raises(PseudonymKeyError):
        link.run(cfg, inputs, outs, key_fingerprint=key_fingerprint(b"another-key-0123456789abcdef"))
    assert not list(tmp_path.iterdir())  # refused before anything was written
    manifest = read_table(i["manifest"], dtype=str)
    manifest.loc[0, "sha256"] = "0" * 64
    changed = tmp_path / "raw_manifest.csv"
    manifest.to_csv(changed, index=False)
    with pytest.raises(RuntimeError, match="changed during the run"):
        link.run(cfg, {**inputs, "manifest": str(changed)}, outs, key_fingerprint=key_fingerprint(demo_stages["key"]))


# ---- outcome -------------------------------------------------------------------------------------

def test_outcome_stage_writes_every_outcomes_analyses_and_its_figures(demo_stages):
    out = demo_stages["files"]["outcome"][1]
    eff = read_table(out["effects"])
    assert list(dict.fromkeys(eff.outcome)) == OUTCOMES
    assert eff.primary.sum() == 1
    p = eff[eff.primary].iloc[0]
    assert (p.outcome, p.timepoint, p.analysis) == ("wemwbs_total", "m9", "primary")
    for y in OUTCOMES:
        assert {"primary", "ancova", "multiple_imputation", "complete_case"} <= set(eff[eff.outcome == y].analysis), y
    assert eff[eff.analysis == "multiple_imputation"].m_imputations.eq(5).all()  # fast settings
    tip = read_table(out["tipping_point"])
    assert set(tip.outcome) == {"wemwbs_total"} and set(tip.shift_sd[tip.kind == "grid"]) == {0.0, 0.2, 0.5}
    desc = read_table(out["descriptives"])
    assert set(desc.outcome) == set(OUTCOMES) and set(desc.population) == {"all"}
    for f in ("figure", "forest"):
        assert open(out[f], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_outcome_stage_estimates_are_the_librarys(demo_stages, demo_prepared):
    """The primary model of the stage (pseudonymised, written with 12 digits) equals the library's
    on the un-pseudonymised tables."""
    cfg = rule_config("outcome", demo_stages["cfg"])
    eff = read_table(demo_stages["files"]["outcome"][1]["effects"])
    for y in ("wemwbs_total", "eq5d5l_index"):
        spec = outcomes.model_spec(cfg, y, demo_prepared["linked"])
        lib = outcomes.primary_effects(demo_prepared["linked"], spec, primary_timepoint(cfg),
                                       y == cfg["primary"]["outcome"]).set_index("timepoint")
        got = eff[(eff.outcome == y) & (eff.analysis == "primary")].set_index("timepoint")
        for col in ("estimate", "se", "ci_low", "ci_high", "df"):
            np.testing.assert_allclose(got[col], lib.loc[got.index, col], rtol=1e-9, err_msg=f"{y} {col}")


# ---- report --------------------------------------------------------------------------------------

def test_report_stage_writes_a_manifest_of_what_it_reports(demo_stages):
    from analysis.manifest import config_hash
    rep = demo_stages["work"] / "reports/demo"
    m = json.loads((rep / "manifest.json").read_text())
    tables = sorted(p.relative_to(rep).as_posix() for p in (rep / "tables").glob("*.csv"))
    assert sorted(k for k in m["result_tables"] if k.startswith("tables/")) == tables
    for name, digest in {**m["result_tables"], **m["figures"]}.items():
        assert hashlib.sha256((rep / name).read_bytes()).hexdigest() == digest, name
    assert m["config_sha256"] == config_hash(rule_config("report", demo_stages["cfg"]))
    assert m["pseudonym_key_fingerprint"] == key_fingerprint(demo_stages["key"])
    assert set(m["raw_inputs"]) >= {"participants.csv", "wave_m9.csv", "sites.csv"}


def test_report_stage_html_is_its_executed_notebooks_rendering(demo_stages):
    from test_report_notebook import assert_report_is_the_notebooks, injected_parameters
    rep = demo_stages["work"] / "reports/demo"
    assert_report_is_the_notebooks(rep / "report.ipynb", rep / "report.html")
    html = (rep / "report.html").read_text()
    for heading in ("Outcomes", "Feasibility", "Economic evaluation", "Questionnaires and scoring", "Methods",
                    "Appendix: data queries", "Appendix: provenance and verification"):
        assert f"<h2>{heading}</h2>" in html, heading
    assert "formats" not in injected_parameters(rep / "report.ipynb")["cfg"]["report"]  # the rule's config


def test_funder_report_stage(demo_stages):
    html = (demo_stages["work"] / "reports/demo/funder/report.html").read_text()
    assert "<h2>Summary for the funder</h2>" in html and "Appendix: data queries" not in html
    assert "ps_" not in html and "P0001" not in html
