"""The registered analysis plan (issue 18): lock, compare every run with it, list every deviation.

Unit tests run on the demo config in memory; the end-to-end tests (marked e2e) lock a small
simulated trial with `bash pathways.sh sap-lock` and run the whole workflow three times: with a
declared deviation (listed in the reports, tables and manifest; verify matches), with an
undeclared one (stops before anything is written), and as an exploratory run in a copy of the
first run's folder (every output labelled "not the registered analysis").
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import fast_analysis, make_pathways_venv, pathways_env, visible_text

from analysis import sap
from analysis.config import ConfigError, validate_config
from analysis.io import read_table, sha256_file, write_table

ROOT = Path(__file__).resolve().parent.parent
KEY = "sap-test-pseudonym-key-000000000000000"


def _cfg(demo_cfg, **changes) -> dict:
    """The demo config with dotted-key changes, validated (defaults filled in)."""
    raw = copy.deepcopy(demo_cfg)
    for key, value in changes.items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[int(leaf) if isinstance(node, list) else leaf] = value
    return validate_config(raw)


def _write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def locked(tmp_path, demo_cfg):
    """A config file (the demo trial, raw_dir absolute) and its lock next to it."""
    cfgfile = _write_config(tmp_path / "trial.yaml", demo_cfg)
    lock = sap.make_lock(cfgfile, by="A. Statistician <a@example.org>", base=ROOT)
    sap.write_lock(lock, sap.lock_path_for(cfgfile))
    return cfgfile, lock


# ---- what the plan covers --------------------------------------------------------------------------

HOUSEKEEPING_CHANGES = {
    "title": "Another title",
    "blinded": True,
    "report.decimals": 3,
    "report.formats": ["pdf"],
    "design.arm_labels": {"control": "Usual", "intervention": "CPI"},
    "outcomes.labels": {"wemwbs_total": "Wellbeing"},
    "data.participants": "participants.csv",  # same file, but a file name is housekeeping anyway
    "data.date_formats": ["%Y-%m-%d", "%d/%m/%Y"],
    "pseudonymisation.prefix": "q_",
    "planning.simulation.batch_size": 50,
}
ANALYSIS_CHANGES = {
    "seed": 1,
    "primary.covariates": ["age"],
    "primary.df_method": "satterthwaite",
    "outcomes.multiple_imputation.m": 50,
    "outcomes.secondary": ["ucla3_total"],
    "feasibility.progression_criteria.0.green": 2.5,
    "economics.discount_rate_costs": 0.015,
    "planning.power": 0.8,
    "data.waves.1.month": 4,
    "data.adverse_events": "adverse_events.csv",
    "instruments.eq5d5l": {"method": "crosswalk"},
    "objectives": ["To estimate recruitment"],
}
EXPECTED_KEY = {"feasibility.progression_criteria.0.green": "feasibility.progression_criteria[0].green",
                "data.waves.1.month": "data.waves[1].month", "instruments.eq5d5l": "instruments.eq5d5l.method"}


def test_housekeeping_is_not_part_of_the_plan(demo_cfg):
    base = sap.plan_of(_cfg(demo_cfg), ROOT)
    for key, value in HOUSEKEEPING_CHANGES.items():
        assert sap.differences(base, sap.plan_of(_cfg(demo_cfg, **{key: value}), ROOT)) == [], key
    assert {"design", "data", "primary", "outcomes", "feasibility", "economics", "planning", "scoring",
            "seed"} <= set(base)
    assert "arm_labels" not in base["design"] and "labels" not in base["outcomes"]
    assert "participants" not in base["data"] and "raw_dir" not in base["data"]


@pytest.mark.parametrize("key", list(ANALYSIS_CHANGES))
def test_every_analysis_key_is_compared_with_planned_and_actual_values(demo_cfg, key):
    planned, actual = sap.plan_of(_cfg(demo_cfg), ROOT), sap.plan_of(_cfg(demo_cfg, **{key: ANALYSIS_CHANGES[key]}), ROOT)
    diffs = sap.differences(planned, actual)
    want = EXPECTED_KEY.get(key, key)
    assert [d[0] for d in diffs] == [want], diffs
    assert diffs[0][1] != diffs[0][2]
    if key == "data.adverse_events":
        assert diffs[0][1:] == (None, "given")
    if key == "seed":
        assert diffs[0][1:] == (demo_cfg["seed"], 1)


def test_scoring_rules_are_part_of_the_plan(demo_cfg):
    """A change to an instrument's scoring rule (here the missing-item rule, through the trial's
    overrides) is a change to the plan even though the config key is the instrument's options."""
    plan = sap.plan_of(_cfg(demo_cfg), ROOT)
    assert plan["scoring"]["wemwbs"]["scoring"]["range"] == [14, 70]
    assert plan["scoring"]["wemwbs"]["missing"]["max_missing"] == 0
    assert "verification" not in plan["scoring"]["wemwbs"] and "name" not in plan["scoring"]["wemwbs"]
    assert all("label" not in item for item in plan["scoring"]["wemwbs"]["items"])


def test_plan_hash_is_canonical(demo_cfg):
    """Sorted keys and one spelling per number: key order and 2 vs 2.0 do not change the hash;
    any change of value does; true never equals 1."""
    cfg = _cfg(demo_cfg)
    h = sap.plan_hash(sap.plan_of(cfg, ROOT))
    reordered = {k: cfg[k] for k in reversed(list(cfg))}
    reordered["primary"] = {k: cfg["primary"][k] for k in reversed(list(cfg["primary"]))}
    assert sap.plan_hash(sap.plan_of(reordered, ROOT)) == h
    as_float = copy.deepcopy(cfg)
    as_float["feasibility"]["progression_criteria"][0]["green"] = 2  # 2.0 in the config
    as_float["planning"]["target_difference"] = float(cfg["planning"]["target_difference"])
    assert sap.plan_hash(sap.plan_of(as_float, ROOT)) == h
    assert sap.plan_hash(sap.plan_of(_cfg(demo_cfg, seed=cfg["seed"] + 1), ROOT)) != h
    assert sap.differences({"a": True}, {"a": 1}) == [("a", True, 1)]
    assert sap.canonical_json({"b": 1, "a": [2.0, 0.5]}) == '{"a":[2,0.5],"b":1}'


# ---- the lock ----------------------------------------------------------------------------------------

def test_lock_records_plan_hash_who_when_blinding_version_and_commit(locked, demo_cfg):
    cfgfile, lock = locked
    path = sap.lock_path_for(cfgfile)
    assert path.name == "trial.sap.lock.json"
    back = sap.read_lock(path)
    assert back == lock
    assert back["plan_sha256"] == sap.plan_hash(sap.plan_of(_cfg(demo_cfg), ROOT))
    assert back["locked_by"] == "A. Statistician <a@example.org>"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", back["locked_at"])
    assert back["blinded"] is False and back["data_lock"] is None
    assert back["pathways_version"] and "commit" in back["git"]
    assert back["config_file"] == "trial.yaml" and back["trial_id"] == "demo"
    with pytest.raises(sap.SAPError, match="already locked"):
        sap.write_lock(lock, path)
    sap.write_lock(lock, path, replace=True)


def test_locking_needs_a_name_and_a_clean_plan(tmp_path, demo_cfg, monkeypatch):
    cfgfile = _write_config(tmp_path / "t.yaml", dict(demo_cfg, deviations=[
        {"key": "seed", "reason": "x", "date": "2026-01-01"}]))
    with pytest.raises(sap.SAPError, match="no deviations yet"):
        sap.make_lock(cfgfile, by="me", base=ROOT)
    _write_config(cfgfile, dict(demo_cfg, exploratory=True))
    with pytest.raises(sap.SAPError, match="exploratory"):
        sap.make_lock(cfgfile, by="me", base=ROOT)
    # no name given and none in git's configuration
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    with pytest.raises(sap.SAPError, match="say who locks"):
        sap.who_locks(None)
    assert sap.who_locks("  Jo  ") == "Jo"


@pytest.mark.parametrize("edit, message", [
    (lambda lock: lock["plan"]["primary"].update(covariates=["age"]), "TAMPERED: the plan"),
    (lambda lock: lock.update(locked_by="Someone else"), "TAMPERED: the lock"),
    (lambda lock: lock.update(blinded=True), "TAMPERED: the lock"),
    (lambda lock: lock.update(data_lock={"participants.csv": "0" * 64}), "TAMPERED: the lock"),
])
def test_an_edited_lock_is_refused_as_tampered(locked, edit, message):
    cfgfile, lock = locked
    path = sap.lock_path_for(cfgfile)
    forged = copy.deepcopy(lock)
    edit(forged)
    path.write_text(json.dumps(forged, indent=2), encoding="utf-8")
    with pytest.raises(sap.SAPLockError, match=message):
        sap.read_lock(path)


@pytest.mark.parametrize("text, message", [
    ('{"format": "pathways-sap-lock/1", "format": "x"}', "appears twice"),
    ('{"plan_sha256": NaN}', "not a number JSON allows"),
    ("[1, 2]", "one JSON object"),
    ("{not json", "strict JSON"),
    ("[" * 100_000 + "]" * 100_000, "strict JSON"),
    ('{"format": "pathways-sap-lock/1"}', "is a required property"),
    ("\xff\xfe", "strict JSON"),
])
def test_lock_is_read_as_strict_untrusted_json(tmp_path, text, message):
    path = tmp_path / "x.sap.lock.json"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(sap.SAPLockError, match=message):
        sap.read_lock(path)


def test_lock_with_extra_fields_or_wrong_format_is_refused(locked):
    cfgfile, lock = locked
    path = sap.lock_path_for(cfgfile)
    escape = dict(lock, locked_by="Jo\x1b]0;pwned\x07")  # a terminal escape, hashes made consistent
    escape["lock_sha256"] = sap.lock_hash(escape)
    for forged in (dict(lock, run_this="__import__('os').system('true')"), dict(lock, format="other/9"), escape):
        path.write_text(json.dumps(forged), encoding="utf-8")
        with pytest.raises(sap.SAPLockError, match="not a valid SAP lock"):
            sap.read_lock(path)
    big = tmp = path.with_name("big.sap.lock.json")
    tmp.write_bytes(b" " * (sap.MAX_LOCK_BYTES + 1))
    with pytest.raises(sap.SAPLockError, match="larger than"):
        sap.read_lock(big)


# ---- comparing a run with the lock -------------------------------------------------------------------

def test_undeclared_difference_stops_listing_every_changed_key(locked, demo_cfg):
    cfgfile, _ = locked
    cfg = _cfg(demo_cfg, **{"primary.covariates": ["age"], "data.waves.1.month": 4, "report.decimals": 3})
    with pytest.raises(sap.SAPError) as err:
        sap.check_run(cfg, [cfgfile], ROOT)
    msg = str(err.value)
    assert "in 2 key(s) not declared under deviations" in msg and "nothing was run" in msg
    assert 'UNDECLARED primary.covariates: planned []  ->  actual ["age"]' in msg
    assert "UNDECLARED data.waves[1].month: planned 3  ->  actual 4" in msg
    assert "report.decimals" not in msg
    assert "exploratory" in msg  # says how to run it anyway


def test_declared_deviations_run_and_are_listed(locked, demo_cfg):
    cfgfile, lock = locked
    devs = [{"key": "primary.covariates", "reason": "age prognostic at baseline", "date": "2026-11-01"},
            {"key": "data.waves", "reason": "second follow-up moved", "date": "2026-10-01"}]
    cfg = _cfg(demo_cfg, **{"primary.covariates": ["age"], "data.waves.1.month": 4, "deviations": devs})
    st = sap.check_run(cfg, [cfgfile], ROOT)
    assert st["status"] == sap.STATUS_DEVIATIONS
    assert st["lock"]["lock_sha256"] == lock["lock_sha256"] and st["lock"]["locked_by"] == lock["locked_by"]
    assert st["deviations"] == [
        dict(key="data.waves[1].month", planned="3", actual="4", reason="second follow-up moved",
             date="2026-10-01", declared=True),  # a declared key covers the keys below it
        dict(key="primary.covariates", planned="[]", actual='["age"]', reason="age prognostic at baseline",
             date="2026-11-01", declared=True)]
    assert sap.check_run(_cfg(demo_cfg), [cfgfile], ROOT) == dict(
        status=sap.STATUS_REGISTERED, lock=sap.lock_summary(lock, sap.lock_path_for(cfgfile)), deviations=[])


@pytest.mark.parametrize("devs, message", [
    ([{"key": "report.decimals", "reason": "r", "date": "2026-01-01"}], "does not differ from the registered plan"),
    ([{"key": "seed", "reason": "r", "date": "2026-01-01"}], "does not differ from the registered plan"),
    ([{"key": "primary.covariates", "reason": "r", "date": "2026-01-01"},
      {"key": "primary.covariates", "reason": "again", "date": "2026-01-02"}], "declared twice"),
])
def test_a_declaration_must_match_a_difference(locked, demo_cfg, devs, message):
    cfgfile, _ = locked
    with pytest.raises(sap.SAPError, match=message):
        sap.check_run(_cfg(demo_cfg, **{"primary.covariates": ["age"], "report.decimals": 3, "deviations": devs}),
                      [cfgfile], ROOT)


def test_exploratory_runs_undeclared_differences_and_only_those(locked, demo_cfg, tmp_path):
    cfgfile, _ = locked
    st = sap.check_run(_cfg(demo_cfg, **{"seed": 5, "exploratory": True}), [cfgfile], ROOT)
    assert st["status"] == sap.NOT_REGISTERED == "not the registered analysis"
    assert st["deviations"][0]["key"] == "seed" and st["deviations"][0]["declared"] is False
    with pytest.raises(sap.SAPError, match="matches the registered plan"):
        sap.check_run(_cfg(demo_cfg, exploratory=True), [cfgfile], ROOT)
    nolock = _write_config(tmp_path / "other.yaml", demo_cfg)
    with pytest.raises(sap.SAPError, match="no SAP lock"):
        sap.check_run(_cfg(demo_cfg, exploratory=True), [nolock], ROOT)
    with pytest.raises(sap.SAPError, match="no SAP lock"):
        sap.check_run(_cfg(demo_cfg, deviations=[{"key": "seed", "reason": "r", "date": "2026-01-01"}]), [nolock], ROOT)
    assert sap.check_run(_cfg(demo_cfg), [nolock], ROOT) is None


def test_a_lock_of_another_trial_is_refused(locked, demo_cfg):
    cfgfile, _ = locked
    with pytest.raises(sap.SAPLockError, match="trial 'demo'"):
        sap.check_run(_cfg(demo_cfg, trial_id="other"), [cfgfile], ROOT)


def test_data_lock_detects_a_changed_raw_file(tmp_path, demo_cfg):
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "data/raw/demo", raw)
    cfg = dict(copy.deepcopy(demo_cfg))
    cfg["data"]["raw_dir"] = str(raw)
    cfgfile = _write_config(tmp_path / "t.yaml", cfg)
    lock = sap.make_lock(cfgfile, by="me", data_lock=True, base=ROOT)
    assert lock["data_lock"]["participants.csv"] == sha256_file(raw / "participants.csv")
    sap.write_lock(lock, sap.lock_path_for(cfgfile))
    assert sap.check_run(validate_config(cfg), [cfgfile], ROOT)["status"] == sap.STATUS_REGISTERED
    with open(raw / "participants.csv", "a") as fh:
        fh.write("\n")
    with pytest.raises(sap.SAPError, match=r"UNDECLARED data_lock.participants.csv: planned [0-9a-f]{64}"):
        sap.check_run(validate_config(cfg), [cfgfile], ROOT)
    cfg["deviations"] = [{"key": "data_lock.participants.csv", "reason": "query resolved after the lock",
                          "date": "2026-12-01"}]
    st = sap.check_run(validate_config(cfg), [cfgfile], ROOT)
    assert st["deviations"][0]["actual"] == sha256_file(raw / "participants.csv")


@pytest.mark.parametrize("dev, key", [
    ({"key": "seed", "date": "2026-01-01"}, "config key deviations[0]: 'reason' is a required property"),
    ({"key": "seed", "reason": "  ", "date": "2026-01-01"}, "config key deviations[0].reason"),
    ({"key": "seed", "reason": "r", "date": "1 Jan 2026"}, "config key deviations[0].date"),
    ({"key": "seed", "reason": "r", "date": "2026-01-01", "by": "me"}, "config key deviations[0]: Additional"),
])
def test_deviations_are_schema_validated(demo_cfg, dev, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        validate_config(dict(demo_cfg, deviations=[dev]))


# ---- labelling an exploratory run ---------------------------------------------------------------------

def test_exploratory_label_on_tables_in_the_report_folder_and_on_figures(tmp_path, monkeypatch):
    from analysis import figures
    df = pd.DataFrame({"x": [1.5, 2.0]})
    rep = tmp_path / "reports/t"
    import matplotlib.pyplot as plt

    def png():
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        return figures._png(fig)

    plain = png()
    monkeypatch.setenv(sap.LABEL_ENV, str(rep))
    write_table(df, rep / "tables/a.csv")
    write_table(df, tmp_path / "data/processed/b.csv")
    assert list(read_table(rep / "tables/a.csv").registration) == [sap.NOT_REGISTERED] * 2
    assert "registration" not in read_table(tmp_path / "data/processed/b.csv")
    assert png() != plain
    monkeypatch.delenv(sap.LABEL_ENV)
    assert png() == plain
    write_table(df, rep / "tables/a.csv")
    assert "registration" not in read_table(rep / "tables/a.csv")


# ---- reports and the SAP document ---------------------------------------------------------------------

def _status(**kw):
    lock = dict(file="t.sap.lock.json", lock_sha256="a" * 64, plan_sha256="b" * 64, locked_at="2026-11-20T10:00:00Z",
                locked_by="A. Statistician", blinded_at_lock=True, pathways_version="0.1.0", git_commit="c" * 40,
                data_lock=False)
    return dict(dict(status=sap.STATUS_REGISTERED, lock=lock, deviations=[]), **kw)


@pytest.mark.parametrize("audience", ["statistician", "funder"])
def test_deviations_section_in_statistician_and_funder_reports(tmp_path, demo_cfg, audience):
    from analysis.reporting import AUDIENCES, render_section
    assert "deviations" in dict(AUDIENCES[audience][1]) and "deviations" not in dict(AUDIENCES["ethics"][1])
    path = tmp_path / "sap.json"

    def section(st):
        if st is None:
            return visible_text(render_section(demo_cfg, {}, audience, "deviations"))
        path.write_text(json.dumps(st))
        return re.sub(r"\s+", " ", visible_text(render_section(demo_cfg, {"sap": str(path)}, audience, "deviations")))

    html = section(_status())
    assert "Analysed as registered" in html and "A. Statistician" in html and "while the outputs were blinded" in html
    row = dict(key="primary.covariates", planned="[]", actual='["age"]', reason="age prognostic", date="2026-11-01",
               declared=True)
    html = section(_status(status=sap.STATUS_DEVIATIONS, deviations=[row]))
    assert "Analysed as registered" not in html
    for cell in ("<code>primary.covariates</code>", "<code>[]</code>", "<code>[&#34;age&#34;]</code>",
                 "age prognostic", "2026-11-01"):
        assert cell in html, cell
    html = section(_status(status=sap.NOT_REGISTERED, deviations=[dict(row, declared=False, reason="", date="")]))
    assert "Exploratory run: not the registered analysis" in html and "undeclared" in html
    assert "No SAP lock" in section(None)


def test_exploratory_banner_on_every_report(demo_cfg):
    from analysis.reporting import assemble_report
    for audience in ("statistician", "funder", "ethics"):
        assert "Exploratory run: not the registered analysis" in assemble_report(
            dict(demo_cfg, exploratory=True), audience, [])
        assert "not the registered analysis" not in assemble_report(demo_cfg, audience, [])


def test_sap_document_renders_every_analysis_key_deterministically(locked):
    from analysis.reporting.sap import document_paths, flatten, render_document, write_document
    cfgfile, lock = locked
    html = render_document(lock)
    assert html == render_document(copy.deepcopy(lock))
    text = re.sub(r"\s+", " ", html)
    for heading in ("1. Objectives", "2. Design", "3. Time points and data", "4. Outcomes, instruments and scoring",
                    "5. Primary analysis", "6. Sensitivity and supporting analyses",
                    "7. Feasibility and progression criteria", "8. Economic evaluation",
                    "9. Planning the definitive trial", "10. Every analysis key"):
        assert heading in text, heading
    for key, _ in flatten(lock["plan"]):
        assert f"<code>{key}</code>" in html, key
    assert "Warwick-Edinburgh Mental Wellbeing Scale" in text and "range [14, 70]" in text
    assert "Multiple imputation by chained equations (pmm, m = 20" in text
    assert lock["plan_sha256"] in html and "A. Statistician" in html
    assert "Locked with the allocation visible" in text
    out = write_document(lock, sap.lock_path_for(cfgfile))
    assert out == document_paths(sap.lock_path_for(cfgfile)) == [cfgfile.with_name("trial.sap.html")]
    assert out[0].read_text() == html


# ---- verify checks the lock -----------------------------------------------------------------------------

def _manifest(lock=None, status=sap.STATUS_REGISTERED):
    sap_field = None if lock is None else dict(status=status, deviations=[], lock=sap.lock_summary(lock, "t.sap.lock.json"))
    return {"config_sha256": "c", "raw_inputs": {"a.csv": "1"}, "result_tables": {"tables/x.csv": "2"}, "sap": sap_field}


@pytest.fixture
def fake_verify(monkeypatch, locked):
    from analysis import verify
    calls = []

    def fake_rerun(configfile, workdir, cores=2):
        calls.append(configfile)
        out = Path(workdir) / "reports/demo/manifest.json"
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps(manifest_now[0]))
        return subprocess.CompletedProcess([], 0, "", "")

    manifest_now = [None]
    monkeypatch.setattr(verify, "rerun", fake_rerun)

    def run(cfgfile, manifest, capsys):
        manifest_now[0] = manifest
        mpath = cfgfile.parent / "manifest.json"
        mpath.write_text(json.dumps(manifest))
        code = verify.main(["--configfile", str(cfgfile), "--manifest", str(mpath)])
        return code, capsys.readouterr().out
    return run, calls


def test_verify_checks_the_lock(locked, fake_verify, capsys, demo_cfg):
    cfgfile, lock = locked
    run, calls = fake_verify
    path = sap.lock_path_for(cfgfile)
    code, out = run(cfgfile, _manifest(lock), capsys)
    assert code == 0 and "SAP lock intact and the manifest's" in out and "MATCH" in out, out
    # a tampered lock: refused, nothing rerun
    n = len(calls)
    tampered = copy.deepcopy(lock)
    tampered["plan"]["primary"]["covariates"] = ["age"]
    path.write_text(json.dumps(tampered))
    code, out = run(cfgfile, _manifest(lock), capsys)
    assert code == 1 and "TAMPERED" in out and "nothing was rerun" in out and len(calls) == n, out
    # a consistent forgery (hashes recomputed) is not the lock the manifest's run used
    forged = sap.make_lock(cfgfile, by="Someone else", base=ROOT)
    path.write_text(json.dumps(forged))
    code, out = run(cfgfile, _manifest(lock), capsys)
    assert code == 1 and "SAP lock DIFFERS" in out, out
    # the lock removed after the run
    path.unlink()
    code, out = run(cfgfile, _manifest(lock), capsys)
    assert code == 1 and "SAP lock MISSING" in out, out
    # a lock where the manifest's run had none
    sap.write_lock(lock, path)
    code, out = run(cfgfile, _manifest(None), capsys)
    assert code == 1 and "is new" in out, out


# ---- end to end ------------------------------------------------------------------------------------------

def _snakemake(workdir: Path, configfile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(configfile), "--cores", "2", "--quiet", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200,
                          env=dict(os.environ, PATHWAYS_PSEUDONYM_KEY=KEY))


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    """A small simulated cluster trial, its plan locked with `bash pathways.sh sap-lock`, then run
    with one declared deviation (primary.covariates)."""
    from analysis.simulate import SimulationParameters, write_trial
    base = tmp_path_factory.mktemp("sap")
    write_trial(base / "raw", SimulationParameters(seed=5, trial_id="sap", n_sites=8, truth_mc_draws=2000))
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(trial_id="sap", blinded=True)
    fast_analysis(cfg)
    cfg["data"]["raw_dir"] = str(base / "raw")
    cfgfile = _write_config(base / "trial.yaml", cfg)
    venv = make_pathways_venv(base / "venv")
    res = subprocess.run(["bash", str(ROOT / "pathways.sh"), "sap-lock", str(cfgfile), "--by", "E2E Statistician",
                          "--data-lock"], capture_output=True, text=True, env=pathways_env(venv), timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    again = subprocess.run(["bash", str(ROOT / "pathways.sh"), "sap-lock", str(cfgfile), "--by", "E2E Statistician"],
                           capture_output=True, text=True, env=pathways_env(venv), timeout=600)
    lock = sap.read_lock(base / "trial.sap.lock.json")
    # unblind (housekeeping) and declare one deviation
    cfg.update(blinded=False, deviations=[{"key": "primary.covariates", "reason": "age was prognostic at baseline",
                                           "date": "2026-11-30"}])
    cfg["primary"]["covariates"] = ["age"]
    _write_config(cfgfile, cfg)
    work = base / "run1"
    res = _snakemake(work, cfgfile)
    assert res.returncode == 0, res.stderr[-4000:]
    return dict(base=base, cfg=cfg, cfgfile=cfgfile, lock=lock, work=work, again=again)


@pytest.mark.e2e
def test_sap_lock_command_writes_the_lock_and_document_and_refuses_to_overwrite(trial):
    base, lock = trial["base"], trial["lock"]
    assert lock["blinded"] is True and lock["locked_by"] == "E2E Statistician"
    assert set(lock["data_lock"]) >= {"participants.csv", "sites.csv", "wave_baseline.csv"}
    assert "Statistical analysis plan" in (base / "trial.sap.html").read_text()
    assert trial["again"].returncode != 0 and "already locked" in trial["again"].stderr


@pytest.mark.e2e
def test_declared_deviation_runs_and_is_listed_everywhere(trial):
    rep = trial["work"] / "reports/sap"
    dev = read_table(rep / "tables/deviations.csv")
    assert dev.to_dict("records") == [dict(key="primary.covariates", planned="[]", actual='["age"]',
                                           reason="age was prognostic at baseline", date="2026-11-30", declared=True)]
    m = json.loads((rep / "manifest.json").read_text())
    assert m["sap"]["lock"]["lock_sha256"] == trial["lock"]["lock_sha256"]
    assert m["sap"]["lock"]["plan_sha256"] == trial["lock"]["plan_sha256"]
    assert m["sap"]["status"] == sap.STATUS_DEVIATIONS
    assert "tables/deviations.csv" in m["result_tables"]
    for html in (rep / "report.html", rep / "funder/report.html"):
        text = re.sub(r"\s+", " ", visible_text(html.read_text()))
        assert "Registered analysis plan and deviations" in text, html
        assert "<code>primary.covariates</code>" in text and "age was prognostic at baseline" in text, html
        assert "not the registered analysis" not in text
    # the primary model did adjust for age
    eff = read_table(rep / "tables/effects.csv")
    assert eff[eff.analysis == "primary"].model.astype(str).str.contains("age").any()


@pytest.mark.e2e
def test_undeclared_difference_stops_before_anything_is_written(trial, tmp_path):
    cfg = copy.deepcopy(trial["cfg"])
    cfg["outcomes"]["multiple_imputation"]["m"] = 7
    cfg["planning"]["power"] = 0.8
    cfgfile = _write_config(trial["base"] / "undeclared.yaml", cfg)
    shutil.copyfile(trial["base"] / "trial.sap.lock.json", trial["base"] / "undeclared.sap.lock.json")
    work = tmp_path / "w"
    res = _snakemake(work, cfgfile)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "UNDECLARED outcomes.multiple_imputation.m: planned 5  ->  actual 7" in out, out[-3000:]
    assert "UNDECLARED planning.power: planned 0.9  ->  actual 0.8" in out
    assert "declared   primary.covariates" in out  # every changed key is listed
    assert not (work / "reports").exists() and not (work / "data").exists() and not (work / "logs").exists()


@pytest.mark.e2e
def test_exploratory_run_labels_every_output(trial, tmp_path):
    """Run in a copy of the first run's folder, so outputs of the registered run are there to be
    replaced: every table, report and the manifest must say it is not the registered analysis."""
    work = tmp_path / "run2"
    shutil.copytree(trial["work"], work, symlinks=True)
    cfg = copy.deepcopy(trial["cfg"])
    cfg["seed"] = 99
    cfgfile = _write_config(trial["base"] / "explore.yaml", cfg)
    shutil.copyfile(trial["base"] / "trial.sap.lock.json", trial["base"] / "explore.sap.lock.json")
    res = _snakemake(work, cfgfile, "--config", "exploratory=True")
    assert res.returncode == 0, res.stderr[-4000:]
    rep = work / "reports/sap"
    tables = sorted((rep / "tables").glob("*.csv"))
    assert len(tables) >= 15
    for t in tables + [rep / "data_queries.csv"]:
        df = read_table(t)
        assert list(df.columns)[-1] == "registration" and (df.registration == sap.NOT_REGISTERED).all(), t.name
    dev = read_table(rep / "tables/deviations.csv").set_index("key")
    assert dev.loc["seed", "declared"] == False and dev.loc["primary.covariates", "declared"] == True  # noqa: E712
    for html in [rep / "report.html", rep / "funder/report.html", rep / "ethics/report.html"]:
        assert "Exploratory run: not the registered analysis" in html.read_text(), html
    m = json.loads((rep / "manifest.json").read_text())
    assert m["sap"]["status"] == sap.NOT_REGISTERED
    old = {p.name: p.read_bytes() for p in (trial["work"] / "reports/sap/figures").glob("*.png")}
    assert old and all((rep / "figures" / n).read_bytes() != b for n, b in old.items())


@pytest.mark.e2e
def test_verify_reruns_with_the_lock_and_detects_a_tampered_one(trial):
    base = trial["base"]
    manifest = trial["work"] / "reports/sap/manifest.json"
    res = subprocess.run([sys.executable, "-m", "analysis.verify", "--configfile", str(trial["cfgfile"]),
                          "--manifest", str(manifest)], capture_output=True, text=True, cwd=base, timeout=1200,
                         env=dict(os.environ, PATHWAYS_PSEUDONYM_KEY=KEY))
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "SAP lock intact" in res.stdout and "MATCH" in res.stdout
    # the same config beside an edited copy of the lock
    shutil.copyfile(trial["cfgfile"], base / "tampered.yaml")
    lock = json.loads((base / "trial.sap.lock.json").read_text())
    lock["plan"]["outcomes"]["multiple_imputation"]["m"] = 50
    (base / "tampered.sap.lock.json").write_text(json.dumps(lock))
    res = subprocess.run([sys.executable, "-m", "analysis.verify", "--configfile", str(base / "tampered.yaml"),
                          "--manifest", str(manifest)], capture_output=True, text=True, cwd=base, timeout=600)
    assert res.returncode == 1 and "TAMPERED" in res.stdout and "nothing was rerun" in res.stdout, res.stdout
