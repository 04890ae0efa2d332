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


def rerun(configfile: Path, workdir: Path, cores: int = 2) -> subprocess.CompletedProcess:
    cfg = read_config_file(configfile)
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
    manifest_path = Path(a.manifest or f"reports/{cfg['trial_id']}/manifest.json")
    if not manifest_path.exists():
        print(f"verify: no manifest at {manifest_path}: run the workflow first", file=sys.stderr)
        return 2
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    work = Path(tempfile.mkdtemp(prefix=f"pathways-verify-{cfg['trial_id']}-"))
    try:
        print(f"verify: rerunning {cfg['trial_id']} from raw data in {work} ...", flush=True)
        res = rerun(configfile, work, a.cores)
        if res.returncode != 0:
            print(res.stdout[-3000:], res.stderr[-5000:], sep="\n", file=sys.stderr)
            print("verify: FAILED (the rerun did not complete)")
            return 1
        rerun_manifest = json.loads((work / f"reports/{cfg['trial_id']}/manifest.json").read_text())
        lines, ok = verdict(manifest, rerun_manifest)
        print(f"{lines[0]} ({manifest_path})")
        for line in lines[1:]:
            print(line)
        return 0 if ok else 1
    finally:
        if a.keep:
            print(f"verify: rerun kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
