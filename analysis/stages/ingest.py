"""Ingest stage: hash the raw files, validate them, pseudonymise IDs, write typed tables.

Writes data/processed/<trial>/: the typed tables (participant and screening IDs replaced by
pseudonyms), ``ingest_queries.csv`` (data queries with the trial's own IDs, for the data
manager), ``exclusions.csv`` (records excluded and rows not read, with reasons),
``raw_manifest.csv`` (SHA-256 of every raw file, taken before reading and checked after) and
``pseudonyms.parquet`` (the only table linking IDs to pseudonyms).  Nothing is written unless
every error-level rule passes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.blinding import blind_tables
from analysis.ingest import ingest_trial
from analysis.io import sha256_file, write_parquet, write_table
from analysis.pseudonym import load_key, pseudonymise_tables
from analysis.stages._common import log

TABLES = ("sites", "participants", "screening", "responses", "service_use", "fidelity", "adverse_events")


def raw_manifest(raw_dir: str | Path) -> pd.DataFrame:
    """file, bytes, sha256 of every file under the raw folder (sorted by name)."""
    root = Path(raw_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return pd.DataFrame({"file": [p.relative_to(root).as_posix() for p in files],
                         "bytes": [p.stat().st_size for p in files],
                         "sha256": [sha256_file(p) for p in files]}, columns=["file", "bytes", "sha256"])


def check_manifest(raw_dir: str | Path, manifest: pd.DataFrame) -> None:
    """Raise if any raw file changed, appeared or disappeared since the manifest was taken."""
    now = raw_manifest(raw_dir)
    a = manifest.set_index("file").sha256.to_dict()
    b = now.set_index("file").sha256.to_dict()
    if a != b:
        changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise RuntimeError(f"raw data in {raw_dir} changed during the run (SHA-256 differs): {changed}")


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str], *, raw_dir: str | None = None,
        key: bytes | None = None) -> None:
    """Read the raw files the config names (under ``raw_dir``, by default ``data.raw_dir``;
    ``inputs`` is not read: the rule lists the raw files only so that Snakemake tracks them) and
    write the typed, pseudonymised tables.  ``key``: the pseudonymisation key (by default
    :func:`analysis.pseudonym.load_key`'s)."""
    raw_dir = raw_dir or cfg["data"]["raw_dir"]
    manifest = raw_manifest(raw_dir)
    tables = ingest_trial(cfg, raw_dir)
    check_manifest(raw_dir, manifest)
    ps = cfg.get("pseudonymisation") or {}
    if key is None:
        key = load_key(ps.get("key_file"))
    tables, mapping = pseudonymise_tables(tables, key, trial_id=cfg["trial_id"],
                                          prefix=ps.get("prefix", "ps_"), length=ps.get("length", 12))
    if cfg.get("blinded"):
        tables = blind_tables(tables, cfg, key)
        log.info("ingest: blinded: arms relabelled A/B by the keyed coin flip; attendance and "
                 "fidelity withheld")
    for name in TABLES:
        write_parquet(tables[name], outputs[name])
    write_table(tables["queries"], outputs["queries"], private=True)  # the trial's own IDs
    write_table(tables["exclusions"], outputs["exclusions"])
    if "collected" in outputs:
        write_table(tables["collected"], outputs["collected"])
    write_table(manifest, outputs["manifest"])
    write_parquet(mapping, outputs["pseudonyms"], private=True)
    log.info("ingest: %d raw files hashed; %d participants, %d response records, %d warnings; "
             "IDs pseudonymised", len(manifest), len(tables["participants"]), len(tables["responses"]),
             int((tables["queries"].severity == "warning").sum()))
