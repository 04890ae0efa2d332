"""Blinded mode: arms A/B by a keyed coin flip, nothing in any output reveals the allocation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import fast_analysis

from analysis.blinding import (arm_mapping, blind_tables, blinded_config, coin_flip, relabel_results,
                               treatment_term, unblinding_table)
from analysis.config import validate_config
from analysis.simulate import SimulationParameters, write_trial

ROOT = Path(__file__).resolve().parent.parent


def _keys_with_both_flips(trial_id: str) -> tuple[bytes, bytes]:
    """Two keys, the first labelling the intervention B and the second labelling it A."""
    found = {}
    for i in range(64):
        k = f"blinding-test-key-{i:04d}-0000000000".encode()
        found.setdefault(coin_flip(k, trial_id), k)
        if len(found) == 2:
            return found[True], found[False]
    raise AssertionError("64 keys all gave the same coin flip")


def test_coin_flip_is_keyed_and_deterministic():
    k_b, k_a = _keys_with_both_flips("t")
    assert coin_flip(k_b, "t") and coin_flip(k_b, "t")
    assert not coin_flip(k_a, "t")
    cfg = {"trial_id": "t", "design": {"intervention_arm": "int", "control_arm": "ctl"}}
    assert arm_mapping(cfg, k_b) == {"int": "B", "ctl": "A"}
    assert arm_mapping(cfg, k_a) == {"int": "A", "ctl": "B"}
    assert list(unblinding_table(cfg, k_b).itertuples(index=False)) == [("A", "ctl"), ("B", "int")]
    # the flip is a fair coin over keys (not, e.g., always B)
    flips = [coin_flip(f"key-{i}".encode(), "t") for i in range(400)]
    assert 150 < sum(flips) < 250


def test_blind_tables_relabels_and_withholds_without_touching_inputs():
    k_b, _ = _keys_with_both_flips("t")
    cfg = {"trial_id": "t", "design": {"intervention_arm": "int", "control_arm": "ctl"}}
    parts = pd.DataFrame({"participant_id": ["p1", "p2"], "arm": ["int", "ctl"],
                          "sessions_attended": [4.0, None]})
    fid = pd.DataFrame({"site_id": ["s1"], "fidelity_score": [80.0]})
    excl = pd.DataFrame({"step": ["ingest"], "reason": ["x"], "arm": ["all"], "n": [1]})
    out = blind_tables({"participants": parts, "fidelity": fid, "exclusions": excl}, cfg, k_b)
    assert list(out["participants"].arm) == ["B", "A"]
    assert out["participants"].sessions_attended.isna().all()
    assert len(out["fidelity"]) == 0 and list(out["fidelity"].columns) == ["site_id", "fidelity_score"]
    assert list(out["exclusions"].arm) == ["all"]
    assert list(parts.arm) == ["int", "ctl"] and parts.sessions_attended.iloc[0] == 4.0 and len(fid) == 1


def test_blinded_config_turns_off_what_would_unblind(demo_cfg):
    assert blinded_config(demo_cfg) is demo_cfg  # not blinded: unchanged
    cfg = validate_config({**demo_cfg, "blinded": True})
    b = blinded_config(cfg)
    assert b["design"]["intervention_arm"] == "B" and b["design"]["control_arm"] == "A"
    assert set(b["design"]["arm_labels"].values()) == {"Arm A", "Arm B"}
    assert b["economics"]["enabled"] is False and b["data"]["fidelity"] is None
    ind = {k["indicator"] for k in b["feasibility"]["progression_criteria"]}
    assert ind and not ind & {"intervention_receipt", "adherence", "fidelity"}
    assert all(m.get("source") != "fidelity" for m in b["outcomes"]["effect_modifiers"])
    assert cfg["economics"]["enabled"] is True  # the input config is not modified
    t = pd.DataFrame({"term": ["intervention vs control", "intervention vs control, client_group = x",
                               "interaction: client_group x vs y"], "arm_shifted": ["intervention"] * 3})
    r = relabel_results(t, b)
    assert list(r.term) == ["B vs A", "B vs A, client_group = x", "interaction: client_group x vs y"]
    assert set(r.arm_shifted) == {"B"} and treatment_term(b) == "B vs A"


# ---- end to end: two keys with opposite coin flips -----------------------------------------
ARM_WORDS = ("Connecting People", "Usual care")


@pytest.fixture(scope="module")
def blinded_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("blinded")
    write_trial(base / "raw", SimulationParameters(seed=11, trial_id="bl", n_sites=10, truth_mc_draws=2000))
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(trial_id="bl", title="Blinded test trial", blinded=True)
    cfg["data"]["raw_dir"] = str(base / "raw")
    cfg["report"] = {"audiences": ["funder", "ethics"]}
    fast_analysis(cfg)
    cfgfile = base / "bl.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    runs = {}
    for name, key in zip(("b_is_intervention", "a_is_intervention"), _keys_with_both_flips("bl")):
        work = base / name
        work.mkdir()
        res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work),
                              "--configfile", str(cfgfile), "--cores", "2", "--quiet"], capture_output=True,
                             text=True, timeout=900, env=dict(os.environ, PATHWAYS_PSEUDONYM_KEY=key.decode()))
        assert res.returncode == 0, res.stderr[-4000:]
        runs[name] = work
    return runs


def _outputs(work: Path) -> list[Path]:
    rep = work / "reports/bl"
    return sorted(p for p in rep.rglob("*") if p.suffix in (".csv", ".html", ".json", ".svg"))


@pytest.mark.e2e
def test_no_output_reveals_the_allocation(blinded_runs):
    for work in blinded_runs.values():
        files = _outputs(work)
        assert any(p.name == "report.html" for p in files) and (work / "reports/bl/funder/report.html").exists()
        for p in files:
            text = p.read_text(encoding="utf-8")
            for w in ARM_WORDS:
                assert w not in text, (p.name, w)
            if p.suffix == ".csv":
                t = pd.read_csv(p, dtype=str)
                for col in [c for c in t.columns if c in ("arm", "arm_shifted")]:
                    assert set(t[col].dropna()) <= {"A", "B", "all"}, (p.name, col, set(t[col]))
        tables = work / "reports/bl/tables"
        assert not (tables / "cea.csv").exists()
        feas = pd.read_csv(tables / "feasibility.csv")
        assert not feas.indicator.isin(["intervention_receipt", "adherence", "fidelity"]).any()
        flow = pd.read_csv(tables / "flow_counts.csv")
        assert not flow.stage.isin(["received", "not_received"]).any()
        html = (work / "reports/bl/report.html").read_text()
        assert "Blinded report" in html and re.search(r"Arm B.{0,40}Arm A|B minus A", html, re.S)
        parts = pd.read_parquet(work / "data/processed/bl/participants.parquet")
        assert set(parts.arm) == {"A", "B"} and parts.sessions_attended.isna().all()
        assert len(pd.read_parquet(work / "data/processed/bl/fidelity.parquet")) == 0


@pytest.mark.e2e
def test_the_coin_flip_really_swaps_the_arms(blinded_runs):
    """Under the two keys the same raw data give mirror-image results: B-minus-A estimates
    change sign (the same model with the treatment coding swapped) and arm-level counts swap."""
    e = {k: pd.read_csv(w / "reports/bl/tables/effects.csv") for k, w in blinded_runs.items()}
    sel = {k: v[(v.analysis == "primary") & (v.term == "B vs A")].set_index(["outcome", "timepoint"])
           for k, v in e.items()}
    a, b = sel["b_is_intervention"], sel["a_is_intervention"]
    assert len(a) >= 2
    pd.testing.assert_series_equal(a.estimate, -b.estimate, rtol=1e-5, atol=1e-6)
    pd.testing.assert_series_equal(a.se, b.se, rtol=1e-4)
    f = {k: pd.read_csv(w / "reports/bl/tables/flow_counts.csv") for k, w in blinded_runs.items()}
    alloc = {k: v[(v.stage == "allocated") & (v.site_id.astype(str) == "all")].set_index("arm").n
             for k, v in f.items()}
    assert alloc["b_is_intervention"]["A"] == alloc["a_is_intervention"]["B"]
    assert alloc["b_is_intervention"]["B"] == alloc["a_is_intervention"]["A"]
