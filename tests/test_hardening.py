"""Untrusted configs and release files (issue 13): no code from a config, no files outside the
raw folder, spreadsheet-safe CSVs, owner-only identifier files, usable-key checks, and a
reviewer verification that fails whenever anything differs.

The end-to-end checks (kill -9 recovery, a misspelt input after a run, a changed key, modes
of a real run's outputs) reuse the run of tests/test_e2e.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import make_pathways_venv, pathways_env

from analysis import safe_yaml
from analysis.config import ConfigError, check_input_files, check_paths, load_config, validate_config
from analysis.io import read_table, write_parquet, write_table
from analysis.pseudonym import (ENV_VAR, MissingKeyError, PseudonymKeyError, check_key_unchanged,
                                key_fingerprint, load_key, pseudonymise_tables)

ROOT = Path(__file__).resolve().parent.parent
DEMO = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def hostile_config(tmp_path: Path, marker: Path) -> Path:
    """A demo config that, if Snakemake's YTE templating ever ran it, writes ``marker``."""
    cfg = dict(DEMO)
    cfg["data"] = dict(DEMO["data"], raw_dir=str(ROOT / "data/raw/demo"))
    text = yaml.safe_dump(cfg, sort_keys=False).replace("title: ", "title_: ", 1)
    text = "__use_yte__: true\n" + text.replace(
        "title_: ", f"title: ?open({str(marker)!r}, 'w').write('pwned') and 'x'\n_unused: ", 1)
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    return path


# ---- strict YAML (items 1 and 13) -------------------------------------------------------------

@pytest.mark.parametrize("text, rule", [
    ("__use_yte__: true\ntrial_id: x\n", "key '__use_yte__' is not allowed"),
    ("trial_id: x\n__definitions__:\n  - import os\n", "key '__definitions__' is not allowed"),
    ("trial_id: !!python/object/apply:os.system ['true']\n", "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("trial_id: !!python/name:os.system\n", "is not allowed (tags can build objects"),
    ("trial_id: !env HOME\n", "YAML tag '!env' is not allowed"),
    ("trial_id: ! x\n", "YAML tag '!' is not allowed"),
    ("trial_id: !!str x\n", "YAML tag 'tag:yaml.org,2002:str' is not allowed"),
    ("trial_id: x\ntitle: a\ntitle: b\n", "line 3: key 'title' appears twice"),
    ("a: &a [*a]\n", "recursive YAML alias"),
])
def test_config_using_tags_templating_or_tricks_is_refused(tmp_path, text, rule):
    path = tmp_path / "trial.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert rule in str(err.value) and str(path) in str(err.value)


def test_yaml_anchor_bomb_is_refused_quickly(tmp_path):
    """Nine levels of nine aliases: 9**9 (387 million) values once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("trial_id: x\n" + "\n".join(lines) + "\n")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 200,000 values through anchors and aliases"):
        load_config(path)
    assert time.perf_counter() - t < 2
    # a modest anchor is still plain YAML
    assert safe_yaml.loads("a: &x {b: 1}\nc: *x\n") == {"a": {"b": 1}, "c": {"b": 1}}


def test_instrument_definition_file_is_read_as_untrusted_yaml(tmp_path):
    from analysis.instruments import register_definition
    path = tmp_path / "inst.yaml"
    path.write_text("id: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(safe_yaml.UnsafeYAMLError, match="YAML tag"):
        register_definition(path)


def test_non_finite_numbers_in_a_config_are_refused():
    cfg = json.loads(json.dumps(DEMO))
    cfg["economics"]["unit_cost_overrides"] = [{"item_id": "x", "unit_cost": float("inf"),
                                                "price_year": "2024/25", "source": "s"}]
    with pytest.raises(ConfigError, match=r"economics.unit_cost_overrides\[0\].unit_cost: must be a finite number"):
        validate_config(cfg)


# ---- a hostile config writes nothing on any entry point (item 1) ------------------------------

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    return make_pathways_venv(tmp_path_factory.mktemp("venv") / "venv")


def test_hostile_config_runs_no_code_on_run_dry_run_verify_or_plain_snakemake(venv, tmp_path):
    marker = tmp_path / "marker"
    cfg = hostile_config(tmp_path, marker)
    env = pathways_env(venv)
    runs = {
        "run": ["bash", str(ROOT / "pathways.sh"), "run", str(cfg), "-d", str(tmp_path / "w")],
        "run -n": ["bash", str(ROOT / "pathways.sh"), "run", str(cfg), "-n", "-d", str(tmp_path / "w")],
        "verify": ["bash", str(ROOT / "pathways.sh"), "verify", str(cfg)],
        "python -m analysis.verify": [str(venv / "bin/python"), "-m", "analysis.verify", "--configfile", str(cfg)],
        # Snakemake itself: refused by the config guard that `pathways.sh setup` installed
        "snakemake -n": [str(venv / "bin/snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "w"),
                         "--configfile", str(cfg), "-n", "--cores", "1"],
        "python -m snakemake": [str(venv / "bin/python"), "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                                "-d", str(tmp_path / "w"), "--configfile", str(cfg), "--cores", "1"],
    }
    for name, cmd in runs.items():
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode != 0, (name, res.stdout[-2000:], res.stderr[-2000:])
        assert "__use_yte__' is not allowed" in res.stdout + res.stderr, (name, res.stdout[-2000:], res.stderr[-2000:])
        assert not marker.exists(), f"{name}: the config's code ran"
    assert not (tmp_path / "w" / "data").exists() and not (tmp_path / "w" / "reports").exists()
    guard = subprocess.run([str(venv / "bin/python"), "-m", "analysis.snakemake_guard", "status"],
                           capture_output=True, text=True, env=env)
    assert guard.returncode == 0 and "active" in guard.stdout


def test_without_the_guard_snakemake_evaluates_yte_but_the_workflow_still_refuses(venv, tmp_path):
    """The documented limit: a Snakemake whose environment lacks the guard (here: -S skips the
    .pth start-up files) evaluates the config before the Snakefile runs; the Snakefile then
    refuses it, so nothing of the workflow runs.  This test shows the limit is real, so the
    guard test above is meaningful."""
    marker = tmp_path / "marker"
    cfg = hostile_config(tmp_path, marker)
    code = ("import sys, site; sys.path.append(%r); sys.path.append(%r); from snakemake.cli import main; "
            "sys.argv = ['snakemake'] + sys.argv[1:]; main()") % (str(ROOT), __import__("sysconfig").get_paths()["purelib"])
    res = subprocess.run([sys.executable, "-S", "-c", code, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "w"),
                          "--configfile", str(cfg), "-n", "--cores", "1"], capture_output=True, text=True, timeout=300)
    assert marker.exists(), "expected Snakemake without the guard to evaluate YTE (see analysis/snakemake_guard.py)"
    assert res.returncode != 0 and "__use_yte__' is not allowed" in res.stdout + res.stderr


# ---- files named by the config stay inside raw_dir (item 9) -----------------------------------

def _cfg(raw: Path, **data) -> dict:
    cfg = json.loads(json.dumps(DEMO))
    cfg["data"]["raw_dir"] = str(raw)
    cfg["data"].update(data)
    return cfg


@pytest.mark.parametrize("key, value", [
    ("participants", "../../etc/passwd"),
    ("participants", "../other_trial/participants.csv"),
    ("sites", "/etc/passwd"),
    ("screening", "sub/../../screening_log.csv"),
    ("service_use", "~/service_use.csv"),
])
def test_paths_outside_raw_dir_are_refused_naming_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError) as err:
        validate_config(_cfg(tmp_path, **{key: value}))
    msg = str(err.value)
    assert f"config key data.{key}: the file name" in msg and "nothing was read" in msg
    assert value not in msg  # the path is not echoed


def test_wave_files_file_options_and_economics_files_are_confined_too(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["data"]["waves"][1]["file"] = "../x.csv"
    cfg["data"]["files"] = {"../../secret.csv": {"encoding": "cp1252"}}
    cfg["economics"]["unit_costs_file"] = "/etc/passwd"
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    msg = str(err.value)
    for key in ("data.waves[1].file", "data.files.../../secret.csv", "economics.unit_costs_file"):
        assert f"config key {key}" in msg, key


def test_symlink_leading_out_of_raw_dir_is_refused(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "elsewhere.csv").write_text("secret\n")
    (raw / "participants.csv").symlink_to(tmp_path / "elsewhere.csv")
    (raw / "inside.csv").write_text("ok\n")
    (raw / "alias.csv").symlink_to(raw / "inside.csv")
    with pytest.raises(ConfigError, match="config key data.participants: the file name leads outside data.raw_dir"):
        validate_config(_cfg(raw))
    cfg = validate_config(_cfg(raw, participants="alias.csv"))  # a link that stays inside is fine
    check_paths(cfg)


def test_missing_input_file_stops_naming_key_and_file(tmp_path):
    import shutil
    raw = tmp_path / "raw"
    shutil.copytree(ROOT / "data/raw/demo", raw)
    cfg = validate_config(_cfg(raw, participants="participant.csv"))
    with pytest.raises(ConfigError, match="config key data.participants: file not found in data.raw_dir: participant.csv"):
        check_input_files(cfg)
    check_input_files(validate_config(_cfg(raw)))


# ---- release files (item 10) ------------------------------------------------------------------

def test_csv_cells_that_spreadsheets_would_run_are_escaped_numbers_are_not(tmp_path):
    df = pd.DataFrame({"value": ["-cmd", "=HYPERLINK(\"http://x\")", "+44 20", "@SUM(A1)", "\tx", "\rx",
                                 "-1.5", "2e-3", "plain", "'=already", None, "ok\r=cmd()"],
                       "number": [-1.5, -2.0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]})
    df["category"] = pd.Categorical(["=a"] * 11 + ["b"])
    path = tmp_path / "t.csv"
    write_table(df, path)
    cells = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(cells.value) == ["'-cmd", "'=HYPERLINK(\"http://x\")", "'+44 20", "'@SUM(A1)", "'\tx", "'\nx",
                                 "-1.5", "2e-3", "plain", "''=already", "", "ok\n=cmd()"]
    # a carriage return inside a cell is quoted (a spreadsheet would otherwise start a new row there)
    assert '"ok\n=cmd()"' in path.read_text()
    assert list(cells.number[:2]) == ["-1.5", "-2"] and set(cells.category) == {"'=a", "b"}
    back = read_table(path)
    assert back.value.tolist()[:5] + back.value.tolist()[6:10] == df.value.tolist()[:5] + df.value.tolist()[6:10]
    assert back.value[5] == "\nx" and back.number.tolist() == df.number.tolist()


def test_identifier_files_are_owner_only_and_other_outputs_are_not(tmp_path):
    old = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "queries.csv", private=True)
        write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "pseudonyms.parquet", private=True)
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "effects.csv")
    finally:
        os.umask(old)
    assert (tmp_path / "queries.csv").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pseudonyms.parquet").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "effects.csv").stat().st_mode & 0o777 == 0o644


def test_ingest_stage_writes_identifier_files_owner_only(tmp_path, demo_cfg):
    from analysis.stages import ingest
    out = {t: str(tmp_path / f"{t}.parquet") for t in ingest.TABLES + ("pseudonyms",)}
    out.update(queries=str(tmp_path / "ingest_queries.csv"), exclusions=str(tmp_path / "exclusions.csv"),
               manifest=str(tmp_path / "raw_manifest.csv"))
    ingest.run(demo_cfg, {}, out, key=b"k" * 20)
    assert Path(out["pseudonyms"]).stat().st_mode & 0o077 == 0
    assert Path(out["queries"]).stat().st_mode & 0o077 == 0
    mapping = pd.read_parquet(out["pseudonyms"])
    assert set(mapping.key_fingerprint) == {key_fingerprint(b"k" * 20)}


def test_empty_key_variable_is_an_error():
    with pytest.raises(PseudonymKeyError, match="is set but empty"):
        load_key(env={ENV_VAR: ""})
    with pytest.raises(PseudonymKeyError, match="is set but empty"):
        load_key(env={ENV_VAR: "   "})


def test_key_file_readable_by_others_warns(tmp_path, caplog):
    kf = tmp_path / "k.key"
    kf.write_text("a" * 32 + "\n")
    kf.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="pathways"):
        assert load_key(str(kf), env={}) == b"a" * 32
    assert "can be read by other users" in caplog.text and "chmod 600" in caplog.text
    caplog.clear()
    kf.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="pathways"):
        load_key(str(kf), env={})
    assert "other users" not in caplog.text


@pytest.mark.parametrize("kind", ["folder", "under_a_file", "unreadable", "not_utf8"])
def test_unusable_key_paths_give_a_message(tmp_path, kind):
    if kind == "folder":
        path, rule = tmp_path, "is not a file (a folder?)"
    elif kind == "under_a_file":
        (tmp_path / "f").write_text("x")
        path, rule = tmp_path / "f" / "k.key", "cannot create the pseudonymisation key file"
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root can read any file")
        path, rule = tmp_path / "k.key", "cannot read the pseudonymisation key file"
        path.write_text("a" * 32)
        path.chmod(0)
    else:
        path, rule = tmp_path / "k.key", "cannot read the pseudonymisation key file"
        path.write_bytes(b"\xff\xfe" + b"a" * 32)
    with pytest.raises(PseudonymKeyError) as err:
        load_key(str(path), env={})
    assert rule in str(err.value) and str(path) in str(err.value)


def test_key_fingerprint_reveals_nothing_and_a_changed_key_is_refused():
    a, b = b"first-key-0123456789abcdef", b"second-key-0123456789abcdef"
    assert key_fingerprint(a) == key_fingerprint(a) != key_fingerprint(b)
    assert len(key_fingerprint(a)) == 16 and a.decode() not in key_fingerprint(a)
    _, mapping = pseudonymise_tables({"participants": pd.DataFrame({"participant_id": ["P1", "P2"]})}, a,
                                     trial_id="t")
    check_key_unchanged(mapping, key_fingerprint(a))
    with pytest.raises(PseudonymKeyError, match="key changed since the processed data were made"):
        check_key_unchanged(mapping, key_fingerprint(b))
    with pytest.raises(MissingKeyError):
        load_key("/nonexistent-dir-for-test/k.key", create=False, env={})


def test_a_stage_stopped_by_bad_input_prints_its_message_without_a_traceback(tmp_path):
    code = ("from analysis.stages import logged\nfrom analysis.pseudonym import load_key\n"
            f"with logged({str(tmp_path / 'x.log')!r}):\n    load_key(env={{'{ENV_VAR}': ''}})\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1
    assert "pathways: PATHWAYS_PSEUDONYM_KEY is set but empty" in res.stderr
    assert "Traceback" not in res.stderr and "is set but empty" in (tmp_path / "x.log").read_text()
    assert (tmp_path / "x.log").stat().st_mode & 0o777 == 0o600  # logs can name the trial's own IDs


# ---- verify exits 1 whenever anything differs (item 12) ---------------------------------------

def _manifest(**changes) -> dict:
    m = {"raw_inputs": {"sites.csv": "a" * 64}, "config_sha256": "c" * 64,
         "result_tables": {"tables/effects.csv": "e" * 64, "data_queries.csv": "d" * 64}}
    for k, v in changes.items():
        m[k] = v
    return m


@pytest.mark.parametrize("change, expect", [
    ({}, "MATCH: all 2 result tables are byte-identical"),
    ({"raw_inputs": {"sites.csv": "b" * 64}}, "DIFFERS  sites.csv"),
    ({"raw_inputs": {"sites.csv": "a" * 64, "extra.csv": "f" * 64}}, "NEW      extra.csv"),
    ({"config_sha256": "0" * 64}, "the validated config differs"),
    ({"result_tables": {"tables/effects.csv": "0" * 64, "data_queries.csv": "d" * 64}}, "DIFFERS  tables/effects.csv"),
])
def test_verify_exit_code_is_1_whenever_anything_differs(tmp_path, monkeypatch, capsys, change, expect):
    from analysis import verify
    cfgfile = tmp_path / "trial.yaml"
    cfg = dict(DEMO, trial_id="t")
    cfg["data"] = dict(DEMO["data"], raw_dir=str(ROOT / "data/raw/demo"))
    cfgfile.write_text(yaml.safe_dump(cfg))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(_manifest()))

    def fake_rerun(configfile, workdir, cores=2):
        out = Path(workdir) / "reports/t/manifest.json"
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps(_manifest(**change)))
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(verify, "rerun", fake_rerun)
    code = verify.main(["--configfile", str(cfgfile), "--manifest", str(manifest)])
    out = capsys.readouterr().out
    assert expect in out
    assert code == (0 if not change else 1), out
    if change:
        assert "MATCH" not in out


def test_every_csv_is_written_through_write_table():
    """The escaping and permissions live in analysis.io.write_table: no other module writes CSV
    (simulate writes the synthetic *raw* data, which is input, not output)."""
    import re as _re
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "analysis").rglob("*.py")
                 if p.name not in ("io.py", "simulate.py", "simulate_redcap.py")
                 and _re.search(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(", p.read_text())]
    assert offenders == []


# ---- stale-lock recovery helpers (item 7; the kill -9 test is in test_e2e.py) -----------------

def test_working_directory_from_snakemake_options(tmp_path):
    from analysis.runlock import workdir_from_args
    assert workdir_from_args(["--cores", "2"], tmp_path) == tmp_path.resolve()
    assert workdir_from_args(["-d", "w", "-n"], tmp_path) == (tmp_path / "w").resolve()
    assert workdir_from_args(["--directory=/x/y"], tmp_path) == Path("/x/y")
    assert workdir_from_args(["-dw"], tmp_path) == (tmp_path / "w").resolve()


def test_a_lock_with_no_run_behind_it_is_removed_and_a_live_ones_is_kept(tmp_path):
    from analysis.runlock import live_runs, recover
    locks = tmp_path / ".snakemake/locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x")
    (locks / "0.output.lock").write_text("y")
    # a live "snakemake" process working in the directory keeps the lock
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"], cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert live.pid in live_runs(tmp_path)
        assert recover(tmp_path, out=io.StringIO()) is False
        assert len(list(locks.iterdir())) == 2
    finally:
        live.kill()
        live.wait()
    assert recover(tmp_path, out=io.StringIO()) is True
    assert list(locks.iterdir()) == []
