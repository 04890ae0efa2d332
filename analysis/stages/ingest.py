"""Ingest stage: validate raw files; write typed Parquet tables and the ingest query log."""

from __future__ import annotations

from pathlib import Path

from analysis.ingest import ingest_trial
from analysis.io import sha256_file, write_parquet, write_table
from analysis.stages._common import log

TABLES = ("sites", "participants", "screening", "responses", "service_use", "fidelity")


def run(cfg: dict, raw_dir: str, outputs: dict[str, str]) -> None:
    raw_files = sorted(p for p in Path(raw_dir).iterdir() if p.is_file())
    before = {p.name: sha256_file(p) for p in raw_files}
    tables = ingest_trial(cfg, raw_dir)
    after = {p.name: sha256_file(p) for p in raw_files}
    if before != after:  # pragma: no cover - defensive: ingest only reads
        raise RuntimeError(f"raw data in {raw_dir} changed while being read")
    for name in TABLES:
        write_parquet(tables[name], outputs[name])
    write_table(tables["queries"], outputs["queries"])
    log.info("ingest: %d participants, %d response records, %d warnings",
             len(tables["participants"]), len(tables["responses"]),
             int((tables["queries"].severity == "warning").sum()))
