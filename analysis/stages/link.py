"""Link stage: one row per participant x time point; collect all data queries."""

from __future__ import annotations

import pandas as pd

from analysis.io import write_parquet, write_table
from analysis.link import link_waves
from analysis.stages._common import log


def run(cfg: dict, participants: str, responses: str, scores: str, query_files: list[str],
        out_linked: str, out_queries: str) -> None:
    linked = link_waves(pd.read_parquet(participants), pd.read_parquet(responses),
                        pd.read_parquet(scores), cfg["data"]["waves"])
    write_parquet(linked, out_linked)
    queries = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in query_files],
                        ignore_index=True)
    write_table(queries, out_queries)
    log.info("linked %d participant x time point rows", len(linked))
