"""Programme ingest stage (design.type programme): validate the monitoring, funding and survey
tables and write them typed to data/processed/<trial>/ (survey respondent IDs replaced by
integer codes).  Any bad cell stops the run naming file, line, column, value and rule; raw
files are only read (SHA-256 recorded before and checked after reading)."""

from __future__ import annotations

import pandas as pd

from analysis.io import write_parquet, write_table
from analysis.programme import read_programme
from analysis.stages._common import log
from analysis.stages.ingest import check_manifest, raw_manifest

EMPTY_FUNDING = pd.DataFrame({"neighbourhood": pd.Series([], dtype="str"), "quarter": pd.Series([], dtype="str"),
                              "source": pd.Series([], dtype="str"), "amount_gbp": pd.Series([], dtype=float)})


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str], raw_dir: str | None = None) -> None:
    """Outputs: monitoring, funding, survey (parquet; an empty table for a file not collected),
    manifest (SHA-256 of every raw file)."""
    raw_dir = raw_dir or cfg["data"]["raw_dir"]
    manifest = raw_manifest(raw_dir)
    tables = read_programme(cfg, raw_dir)
    check_manifest(raw_dir, manifest)
    write_parquet(tables["monitoring"], outputs["monitoring"])
    write_parquet(tables.get("funding", EMPTY_FUNDING), outputs["funding"])
    survey = tables.get("survey")
    write_parquet(survey if survey is not None else pd.DataFrame({"respondent": pd.Series([], dtype="int64")}),
                  outputs["survey"], private=True)
    write_table(manifest, outputs["manifest"])
    log.info("programme ingest: %d monitoring rows, %d funding awards, %d survey questionnaires",
             len(tables["monitoring"]), len(tables.get("funding", EMPTY_FUNDING)),
             0 if survey is None else len(survey))
