"""Reviewer verification: rerun a trial from its raw data and compare with its manifest.

    python -m analysis.verify [--configfile config/config.yaml] [--manifest PATH] [--keep]

Runs the whole workflow from the raw files in a clean temporary directory (nothing in the
project's own data/processed or reports is touched), then compares the SHA-256 of every result
table with ``reports/<trial_id>/manifest.json``.  Prints MATCH, or each table that differs,
is missing or is new.  The raw inputs' hashes and the validated config's hash are compared
too, so a reviewer knows whether they were given the same data and analysis plan.  Exit code 0
only when everything matches (result tables, raw inputs and config); 1 when anything differs or
the rerun fails; 2 when there is nothing to compare with.

The config is untrusted: it is read with :mod:`analysis.safe_yaml` and validated before the
rerun (a config with YAML tags or templating is refused before anything evaluates it), and the
rerun is given a plain re-serialised copy of it.

The registered analysis plan is checked too (:func:`check_sap_lock`): a SAP lock next to the
config (``<trial>.sap.lock.json``, :mod:`analysis.sap`) is read strictly and its hashes
recomputed, so a lock edited after it was made is reported as TAMPERED (exit 1, nothing rerun);
its hash must be the one the manifest's run used (``sap.lock.lock_sha256``), and the rerun gets a
copy of it, so it compares the config with the plan again and remakes ``deviations.csv``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from analysis.config import WORKDIR_FILE_KEYS, ConfigError, load_config, read_config_file
from analysis.manifest import ROOT, sha256_file
from analysis.sap import NOT_REGISTERED, SAPLockError, lock_path_for, read_lock


def compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Lines describing every difference between two {name: sha256} maps (empty = match)."""
    lines = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            lines.append(f"MISSING  {name} (in the manifest, not produced by the rerun)")
        elif name not in expected:
            lines.append(f"NEW      {name} (produced by the rerun, not in the manifest)")
        elif expected[name] != actual[name]:
            lines.append(f"DIFFERS  {name}")
    return lines


def verdict(manifest: dict, rerun_manifest: dict) -> tuple[list[str], bool]:
    """The report lines comparing a manifest with the rerun's, and whether everything matches."""
    raw_diff = compare(manifest["raw_inputs"], rerun_manifest["raw_inputs"])
    table_diff = compare(manifest["result_tables"], rerun_manifest["result_tables"])
    config_differs = manifest["config_sha256"] != rerun_manifest["config_sha256"]
    n = len(manifest["result_tables"])
    lines = []
    if not table_diff:
        if raw_diff or config_differs:
            lines.append(f"verify: all {n} result tables are byte-identical, but the inputs are not the manifest's:")
        else:
            lines.append(f"MATCH: all {n} result tables are byte-identical")
    else:
        lines.append(f"verify: {len(table_diff)} of {n} result tables do not match")
    if raw_diff:
        lines += ["raw inputs differ from the manifest's:"] + [f"  {d}" for d in raw_diff]
    if config_differs:
        lines.append("the validated config differs from the manifest's (config_sha256)")
    lines += table_diff
    return lines, not (table_diff or raw_diff or config_differs)


def check_sap_lock(configfile: Path, manifest: dict) -> tuple[list[str], bool, bool]:
    """Lines about the SAP lock next to ``configfile``, whether it is the manifest's, and whether
    the rerun can go ahead (False when the lock is invalid or tampered with)."""
    path = lock_path_for(configfile)
    sap = manifest.get("sap") or None
    expected = (sap or {}).get("lock", {}).get("lock_sha256") if sap else None
    if not path.exists():
        if expected:
            return [f"SAP lock MISSING: the manifest's run used {sap['lock'].get('file')} (lock_sha256 "
                    f"{expected[:16]}...), but there is no {path.name} next to the config"], False, True
        return [], True, True
    try:
        lock = read_lock(path)
    except SAPLockError as exc:
        return [f"SAP lock refused: {exc}"], False, False
    if expected is None:
        return [f"SAP lock {path.name} (lock_sha256 {lock['lock_sha256'][:16]}...) is new: the manifest's run "
                "had no lock"], False, True
    if lock["lock_sha256"] != expected:
        return [f"SAP lock DIFFERS: {path.name} has lock_sha256 {lock['lock_sha256'][:16]}..., the manifest's run "
                f"used {expected[:16]}... (locked {sap['lock'].get('locked_at')} by {sap['lock'].get('locked_by')})"], \
            False, True
    return [f"SAP lock intact and the manifest's: {path.name} (lock_sha256 {expected[:16]}..., status: "
            f"{sap.get('status')})"], True, True


def rerun(configfile: Path, workdir: Path, cores: int = 2, exploratory: bool = False) -> subprocess.CompletedProcess:
    """Rerun the workflow from a plain copy of the config (with the SAP lock beside it, if any)
    in ``workdir``; ``exploratory`` as the manifest's run was (it may have been given on the
    command line)."""
    cfg = read_config_file(configfile)
    if exploratory:
        cfg["exploratory"] = True
    raw_dir = Path(cfg.get("data", {}).get("raw_dir", "data/raw/demo"))
    if not raw_dir.is_absolute():
        raw_dir = (Path.cwd() / raw_dir).resolve()
    cfg.setdefault("data", {})["raw_dir"] = str(raw_dir)
    for section, key in WORKDIR_FILE_KEYS:  # relative to the working directory: made absolute
        value = (cfg.get(section) or {}).get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            cfg[section][key] = str((Path.cwd() / value).resolve())
    cfg_copy = workdir / "trial.yaml"
    cfg_copy.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    if lock_path_for(configfile).exists():  # read and checked by the rerun's workflow too
        shutil.copyfile(lock_path_for(configfile), lock_path_for(cfg_copy))
    # Only what the manifest records: the result tables (and the statistician's report that is
    # written with the manifest); the PDF/Word renderings and audience reports are not rerun.
    target = f"reports/{load_config(cfg_copy)['trial_id']}/manifest.json"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(cfg_copy), "--cores", str(cores), "--quiet", "all", "--", target]
    return subprocess.run(cmd, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Rerun a trial from raw data and compare with its manifest.")
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--manifest", default=None, help="default: reports/<trial_id>/manifest.json")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temporary rerun directory")
    a = ap.parse_args(argv)
    configfile = Path(a.configfile).resolve()
    try:
        cfg = load_config(configfile)
    except (ConfigError, OSError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    if cfg["design"]["type"] == "programme":
        print("verify: not available for design.type programme (programme monitoring writes no manifest.json); "
              "rerun it and compare the tables, which are byte-identical for the same inputs", file=sys.stderr)
        return 2
    manifest_path = Path(a.manifest or f"reports/{cfg['trial_id']}/manifest.json")
    if not manifest_path.exists():
        print(f"verify: no manifest at {manifest_path}: run the workflow first", file=sys.stderr)
        return 2
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    sap_lines, sap_ok, can_rerun = check_sap_lock(configfile, manifest)
    for line in sap_lines:
        print(f"verify: {line}")
    if not can_rerun:
        print("verify: FAILED (the SAP lock is not intact; nothing was rerun)")
        return 1
    exploratory = ((manifest.get("sap") or {}).get("status") == NOT_REGISTERED)
    if exploratory:
        print(f"verify: the manifest's run was exploratory ({NOT_REGISTERED}); rerunning it the same way")
    work = Path(tempfile.mkdtemp(prefix=f"pathways-verify-{cfg['trial_id']}-"))
    try:
        print(f"verify: rerunning {cfg['trial_id']} from raw data in {work} ...", flush=True)
        res = rerun(configfile, work, a.cores, **({"exploratory": True} if exploratory else {}))
        if res.returncode != 0:
            print(res.stdout[-3000:], res.stderr[-5000:], sep="\n", file=sys.stderr)
            print("verify: FAILED (the rerun did not complete)")
            return 1
        rerun_manifest = json.loads((work / f"reports/{cfg['trial_id']}/manifest.json").read_text())
        lines, ok = verdict(manifest, rerun_manifest)
        print(f"{lines[0]} ({manifest_path})")
        for line in lines[1:]:
            print(line)
        if not sap_ok:
            print("the SAP lock is not the one the manifest's run used (see above)")
        return 0 if ok and sap_ok else 1
    finally:
        if a.keep:
            print(f"verify: rerun kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
