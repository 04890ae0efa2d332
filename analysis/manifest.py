"""Provenance manifest: what went in, what came out, and with which software.

``reports/<trial>/manifest.json`` records the SHA-256 of every raw input file and every result
table and figure, the hash of the validated config, the git commit (and whether the working
tree had uncommitted changes), Python and every installed package version, the seed, the
fingerprint of the pseudonymisation key (never the key), the run's status against the
registered analysis plan with the SAP lock's hashes (``sap``; :mod:`analysis.sap`), and when it
was made.  A peer reviewer reruns the analysis with ``python -m analysis.verify`` and compares
the result tables' hashes with this file.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from analysis import __version__
from analysis.io import sha256_file

ROOT = Path(__file__).resolve().parent.parent


def config_hash(cfg: dict) -> str:
    """SHA-256 of the validated config (defaults filled in), canonical JSON.

    ``data.raw_dir`` is left out: where the raw files sit does not change the results, and
    their contents are hashed one by one in ``raw_inputs``."""
    cfg = json.loads(json.dumps(cfg, default=str))
    cfg.get("data", {}).pop("raw_dir", None)
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def git_state(repo: Path = ROOT) -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"commit": commit or None, "uncommitted_changes": dirty}


def package_versions() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out[name.lower()] = dist.version
    return dict(sorted(out.items()))


def hash_files(paths: list[Path], base: Path) -> dict[str, str]:
    return {str(p.relative_to(base)).replace("\\", "/"): sha256_file(p) for p in sorted(paths)}


def build_manifest(cfg: dict, raw_files: list[str | Path], report_dir: str | Path,
                   key_fingerprint: str | None = None, sap: dict | None = None) -> dict:
    """Collect the manifest for one trial run (``report_dir`` = reports/<trial>).

    ``key_fingerprint``: fingerprint of the pseudonymisation key the run used
    (:func:`analysis.pseudonym.key_fingerprint`; never the key itself).  ``sap``: the run's
    status against the registered analysis plan (:func:`analysis.sap.check_run`: ``status``,
    the ``lock``'s hashes, who locked it and when, and the deviations), None without a lock."""
    report_dir = Path(report_dir)
    raw = [Path(p) for p in raw_files]
    tables = sorted((report_dir / "tables").glob("*.csv"))
    figures = sorted((report_dir / "figures").glob("*")) if (report_dir / "figures").exists() else []
    raw_base = Path(cfg["data"]["raw_dir"])
    return {
        "pathways_version": __version__,
        "trial_id": cfg["trial_id"],
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config_sha256": config_hash(cfg),
        "seed": cfg["seed"],
        "pseudonym_key_fingerprint": key_fingerprint,
        "git": git_state(),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": Path(sys.executable).name, "platform": platform.platform()},
        "raw_inputs": {str(p.relative_to(raw_base) if p.is_relative_to(raw_base) else p.name): sha256_file(p)
                       for p in sorted(raw)},
        "result_tables": hash_files(tables + [p for p in [report_dir / "data_queries.csv"] if p.exists()],
                                    report_dir),
        "figures": hash_files([f for f in figures if f.is_file()], report_dir),
        "packages": package_versions(),
        "sap": sap,
    }


def write_manifest(manifest: dict, path: str | Path) -> None:
    from analysis.io import write_text
    write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", path)
