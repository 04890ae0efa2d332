"""Report sections (analysis/reporting/*) rendered directly from the result tables the demo's
stages wrote (``demo_stages``), without the notebook: each section shows the numbers of its
tables, formatted as the config says, and only to the audiences that get it."""

from __future__ import annotations

import copy
import html as htmlmod
import json

import pytest

from analysis.io import read_table
from analysis.reporting import ALL_SECTIONS, AUDIENCES, render_report, render_section
from analysis.reporting.common import fmt
from stage_runner import rule_config


@pytest.fixture(scope="module")
def rep(demo_stages):
    files = demo_stages["files"]
    inputs = {**files["report"][0], "manifest": files["report"][1]["manifest"]}
    return dict(cfg=rule_config("report", demo_stages["cfg"]), inputs=inputs,
                audience_cfg=rule_config("audience_report", demo_stages["cfg"]),
                audience_inputs=files["audience_report"][0])


def _text(html: str) -> str:
    return htmlmod.unescape(html)


def test_each_audience_gets_its_sections_and_no_other(rep):
    for audience, (_, sections) in AUDIENCES.items():
        cfg, inputs = ((rep["cfg"], rep["inputs"]) if audience == "statistician"
                       else (rep["audience_cfg"], rep["audience_inputs"]))
        mine = {name for name, _ in sections}
        for name in ALL_SECTIONS:
            html = render_section(cfg, inputs, audience, name)
            # value for money is a single-arm study's (tests/test_value.py); the demo is a cluster trial
            expected = name in mine and (name != "value" or cfg["value_for_money"]["enabled"])
            assert (html is not None) == expected, (audience, name)
    assert not rep["cfg"]["value_for_money"]["enabled"]


def test_outcomes_section_shows_the_primary_estimate_to_the_configured_decimals(rep):
    eff = read_table(rep["inputs"]["effects"])
    p = eff[eff.primary].iloc[0]
    for dp in (2, 3):
        cfg = copy.deepcopy(rep["cfg"])
        cfg["report"]["decimals"] = dp
        text = _text(render_section(cfg, rep["inputs"], "statistician", "outcomes"))
        assert f"{fmt(p.ci_low, dp)} to {fmt(p.ci_high, dp)}" in text, dp
        assert fmt(p.estimate, dp) in text
    assert "WEMWBS (wellbeing)" in text and "p_value" not in text


def test_feasibility_section_shows_every_progression_criterion_and_its_band(rep):
    text = _text(render_section(rep["cfg"], rep["inputs"], "statistician", "feasibility"))
    prog = read_table(rep["inputs"]["progression"])
    assert len(prog) == 7
    for r in prog.itertuples():
        assert r.criterion in text and r.band in text, r.criterion


def test_scoring_section_lists_every_instrument_with_its_reliability(rep):
    text = _text(render_section(rep["cfg"], rep["inputs"], "statistician", "scoring"))
    summary = read_table(rep["inputs"]["scoring_summary"])
    for name in dict.fromkeys(summary["name"]):
        assert name in text, name
    rel = read_table(rep["inputs"]["reliability"])
    for r in rel.itertuples():
        assert f"{fmt(r.ci_low, 2)} to {fmt(r.ci_high, 2)}" in text


def test_appendix_counts_the_queries_without_showing_identifiers(rep):
    text = _text(render_section(rep["cfg"], rep["inputs"], "statistician", "appendix"))
    n = len(read_table(rep["inputs"]["queries"], dtype=str, keep_default_na=False))
    assert str(n) in text and "P0001" not in text


def test_provenance_section_shows_the_manifest_hashes(rep):
    text = render_section(rep["cfg"], rep["inputs"], "statistician", "provenance")
    m = json.loads(open(rep["inputs"]["manifest"]).read())
    for name, digest in m["result_tables"].items():
        assert digest in text, name


def test_economics_section_only_when_the_evaluation_ran(rep):
    text = _text(render_section(rep["cfg"], rep["inputs"], "statistician", "economics"))
    cea = read_table(rep["inputs"]["cea"])
    assert "Economic evaluation" in text and len(cea)
    off = copy.deepcopy(rep["cfg"])
    off["economics"]["enabled"] = False
    assert render_section(off, rep["inputs"], "statistician", "economics") is None


def test_ethics_report_shows_declared_reasons_and_statements_only(rep):
    text = _text(render_report(rep["audience_cfg"], rep["audience_inputs"], "ethics"))
    assert "Report for the research ethics committee" in text
    assert rep["audience_cfg"]["report"]["data_protection_statement"] in text
    for reason in rep["audience_cfg"]["feasibility"]["reasons"]["withdrawal"]:
        assert reason in text or "<5" in text
    assert "ps_" not in text and "P0001" not in text


def test_funder_report_shows_counts_under_five_as_such(rep):
    text = _text(render_section(rep["audience_cfg"], rep["audience_inputs"], "funder", "funder"))
    assert "Summary for the funder" in text
    import re
    for n in re.findall(r'class="count"[^>]*>\s*([0-9]+)\s*<', render_section(
            rep["audience_cfg"], rep["audience_inputs"], "funder", "funder")):
        assert not 1 <= int(n) <= 4, n


def test_counts_by_reason_no_suppression_can_protect_are_withheld_and_only_totals_released(rep, monkeypatch):
    """Several reasons given by one person each can leave small counts that no suppression
    pattern protects: the funder and ethics reports then release the totals without the
    breakdown by reason (and say so) rather than not being written at all; a release that is
    still unprotected without reasons refuses the reports."""
    from analysis import disclosure
    from analysis.reporting import audience

    def with_reason(ledger):
        return [k for k in ledger.published if k.startswith("flow:") and k.split(":")[5]]

    def fails_while_reasons_are_released(ledger, policy, **kw):
        res = disclosure.protect_ledger(ledger, policy, **kw)
        res.unprotected = with_reason(ledger)[:1]
        return res

    monkeypatch.setattr(audience, "protect_ledger", fails_while_reasons_are_released)
    audience._CACHE.clear()
    counts = audience.release(rep["audience_cfg"], rep["audience_inputs"])
    assert counts.reasons_withheld and not with_reason(counts.L) and counts.release.unprotected == []
    assert (counts.flow.reason == "").all() and (counts.flow.stage == "withdrawn").any()
    ethics = _text(render_section(rep["audience_cfg"], rep["audience_inputs"], "ethics", "ethics"))
    assert "Reasons (for exclusion, declining and withdrawal) are not broken down" in ethics
    assert "withdrew consent" not in ethics and "not interested" not in ethics

    def always_fails(ledger, policy, **kw):
        res = disclosure.protect_ledger(ledger, policy, **kw)
        res.unprotected = ["flow:allocated:all::::"]
        return res

    monkeypatch.setattr(audience, "protect_ledger", always_fails)
    audience._CACHE.clear()
    with pytest.raises(RuntimeError, match="could not protect"):
        audience.release(rep["audience_cfg"], rep["audience_inputs"])
    audience._CACHE.clear()
