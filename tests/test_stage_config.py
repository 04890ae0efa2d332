"""Every rule passes its stage only the config keys the stage reads (issue 15 item 1).

The keys are listed in ``analysis/stages/config_keys.py``.  Here every stage runs on each
example trial with its rule's sub-config wrapped so that every key read is recorded
(tests/config_tracking.py): a stage that reads a key its rule does not pass fails, naming the
key, whatever the example (a ``cfg.get`` of a key left out would otherwise silently give the
default).  The rerun sets themselves (``snakemake -n`` after a config edit) are checked on a
finished run in tests/test_e2e.py.
"""

from __future__ import annotations

import copy

import pytest

from analysis.config import load_config
from analysis.stages.config_keys import (REPORT_OMITS, STAGE_CONFIG_KEYS, STAGES, as_params, canonical,
                                         from_params, omit, select, stage_config)
from conftest import ROOT, STAGE_KEY, fast_analysis, reversed_keys
from stage_runner import run_all


def _path(key: str) -> tuple:
    return tuple(key.split("."))


def unpassed(stage: str, reads: set) -> list[str]:
    """Key paths ``stage`` read that its rule does not pass."""
    if stage in ("report", "audience_report"):  # everything but the output choices
        omitted = [_path(k) for k in REPORT_OMITS]
        bad = [r for r in reads if any(r[:len(o)] == o for o in omitted)]
    else:
        keys = [_path(k) for k in STAGE_CONFIG_KEYS[stage]]
        bad = [r for r in reads if not any(r[:len(k)] == k for k in keys)]
    return sorted(".".join(map(str, r)) or "(the whole config)" for r in bad)


# ---- the sub-configs ---------------------------------------------------------------------------

def test_select_takes_the_named_keys_with_their_subtrees_sorted():
    cfg = {"z": 1, "design": {"type": "cluster", "arm_labels": {"b": "B", "a": "A"}, "population": None},
           "data": {"waves": [{"month": 0, "file": "w.csv"}], "raw_dir": "r"}}
    sub = select(cfg, ["design.arm_labels", "data", "nope", "design.nope.deeper"])
    assert sub == {"data": {"raw_dir": "r", "waves": [{"file": "w.csv", "month": 0}]},
                   "design": {"arm_labels": {"a": "A", "b": "B"}}}
    assert list(sub) == ["data", "design"] and list(sub["data"]["waves"][0]) == ["file", "month"]
    assert list(sub["design"]["arm_labels"]) == ["a", "b"]
    # a key the config does not have stays absent (no empty parent that `or {}` would see)
    assert "design" not in select(cfg, ["design.stratification"])
    assert omit(cfg, ["design.type", "data.nope"]) == canonical({k: v for k, v in cfg.items() if k != "design"}
                                                                | {"design": {"arm_labels": {"a": "A", "b": "B"},
                                                                              "population": None}})


def test_instruments_follow_the_outcomes_then_the_name():
    cfg = {"primary": {"outcome": "wemwbs_total"}, "outcomes": {"secondary": ["ucla3_total", "weight"]},
           "instruments": {"eq5d5l": {}, "ucla3": {}, "swemwbs": {}, "wemwbs": {}},
           "prescored": {"bdi": {}, "weight": {}}}
    assert list(stage_config("score", cfg)["instruments"]) == ["wemwbs", "ucla3", "eq5d5l", "swemwbs"]
    assert list(stage_config("score", cfg)["prescored"]) == ["weight", "bdi"]


def test_the_same_config_with_its_keys_reordered_gives_every_rule_the_same_parameters(demo_cfg):
    again = reversed_keys(demo_cfg)
    assert list(again) != list(demo_cfg)
    for stage in STAGES:
        a, b = as_params(stage_config(stage, demo_cfg)), as_params(stage_config(stage, again))
        assert list(a) == list(b) and [repr(v) for v in a.values()] == [repr(v) for v in b.values()], stage


def test_output_choices_reach_no_stage(demo_cfg):
    """report.formats and report.audiences only add or remove document jobs."""
    other = copy.deepcopy(demo_cfg)
    other["report"].update(formats=["docx"], audiences=["ethics"])
    for stage in STAGES:
        assert stage_config(stage, other) == stage_config(stage, demo_cfg), stage
    assert "formats" not in stage_config("report", demo_cfg)["report"]


def test_edits_reach_only_the_stages_that_read_them(demo_cfg):
    def changed(edit):
        other = copy.deepcopy(demo_cfg)
        edit(other)
        return {s for s in STAGES if stage_config(s, other) != stage_config(s, demo_cfg)}
    assert changed(lambda c: c["report"].update(decimals=3)) == {"report", "audience_report"}
    assert changed(lambda c: c["economics"]["bootstrap"].update(replicates=99)) == \
        {"economics", "report", "audience_report"}
    assert changed(lambda c: c["outcomes"]["tipping_point"].update(shifts_sd=[1.0])) == \
        {"outcome", "report", "audience_report"}  # the funder's report carries the methods
    assert changed(lambda c: c["planning"]["simulation"].update(replicates=20)) == \
        {"planning", "power", "report", "audience_report"}
    assert changed(lambda c: c.update(title="x")) == {"report", "audience_report", "programme"}


def test_parameters_round_trip_and_name_their_section(demo_cfg):
    sub = stage_config("feasibility", demo_cfg)
    params = as_params(sub)
    assert from_params(params) == sub and list(from_params(params)) == list(sub)
    assert {"design": {"arm_labels": sub["design"]["arm_labels"]}} in params.values()
    assert {"primary": {"outcome": "wemwbs_total"}} in params.values() and {"blinded": False} in params.values()
    empty = {"covariates": {}, "seed": 1}
    assert from_params(as_params(empty)) == empty
    with pytest.raises(ValueError, match="unknown stage"):
        stage_config("scoring", demo_cfg)


# ---- every stage reads only what its rule passes -----------------------------------------------

def test_demo_stages_read_only_the_keys_their_rules_pass(demo_stages):
    assert set(demo_stages["reads"]) == {"ingest", "score", "link", "feasibility", "outcome", "economics",
                                         "planning", "power", "report", "audience_report"}
    for stage, reads in demo_stages["reads"].items():
        assert reads, stage
        assert unpassed(stage, reads) == [], stage


EXAMPLES = ["config/config.yaml:blinded", "config/individual.yaml", "config/single_arm.yaml",
            "config/demo_redcap.yaml", "config/examples/btheb.yaml", "config/examples/anorexia.yaml",
            "config/examples/opt.yaml", "config/cpi_quasi.yaml"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_stage_reads_only_the_keys_its_rule_passes(example, tmp_path):
    path, _, variant = example.partition(":")
    cfg = fast_analysis(load_config(ROOT / path))
    cfg["data"]["raw_dir"] = str(ROOT / cfg["data"]["raw_dir"])
    if variant == "blinded":
        cfg["blinded"] = True
    reads = run_all(cfg, tmp_path, STAGE_KEY, notebooks=False)
    for stage, r in reads.items():
        assert unpassed(stage, r) == [], stage


def test_the_check_can_fail():
    from config_tracking import TrackedConfig
    cfg = TrackedConfig({"design": {"type": "cluster", "arm_labels": {}}, "seed": 1})
    cfg["design"]["type"], cfg.get("blinded"), list(cfg["design"])  # noqa: B018
    assert unpassed("economics", cfg.reads) == ["blinded", "design"]
    assert unpassed("report", {("report", "formats"), ()}) == ["report.formats"]
