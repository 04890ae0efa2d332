"""Link stage: one row per participant x time point; exclusion counts; all data queries.

``data_queries.csv`` is for the data manager: it carries the trial's own participant IDs (the
scoring queries' pseudonyms are mapped back) and file lines, so each query can be acted on.  It
is never shown in the report beyond counts by rule.  The raw files' SHA-256 are checked again
against the manifest taken at ingest.
"""

from __future__ import annotations

import pandas as pd

from analysis.io import read_table, write_parquet, write_table
from analysis.link import exclusion_counts, link_waves
from analysis.pseudonym import check_key_unchanged
from analysis.stages._common import log
from analysis.stages.ingest import check_manifest


def run(cfg: dict, inputs: dict, outputs: dict[str, str], *, key_fingerprint: str | None = None) -> None:
    """``inputs``: participants, responses, scores, queries (the ingest and scoring query files),
    and optionally pseudonyms (with ``key_fingerprint``: refuse data made with another key),
    exclusions (ingest's) and manifest (the raw files' SHA-256, checked again); ``outputs``: linked,
    queries and optionally exclusions."""
    pseudonyms, exclusions, manifest = (inputs.get(k) for k in ("pseudonyms", "exclusions", "manifest"))
    participants, responses, scores = inputs["participants"], inputs["responses"], inputs["scores"]
    query_files = [inputs["queries"]] if isinstance(inputs["queries"], str) else list(inputs["queries"])
    out_linked, out_queries, out_exclusions = outputs["linked"], outputs["queries"], outputs.get("exclusions")
    mapping = pd.read_parquet(pseudonyms) if pseudonyms else None
    if mapping is not None and key_fingerprint is not None:
        check_key_unchanged(mapping, key_fingerprint)  # before anything is written
    parts = pd.read_parquet(participants)
    linked = link_waves(parts, pd.read_parquet(responses), pd.read_parquet(scores), cfg["data"]["waves"],
                        covariates=list(cfg.get("covariates") or {}))
    write_parquet(linked, out_linked)
    queries = pd.concat([read_table(f, dtype=str, keep_default_na=False) for f in query_files],
                        ignore_index=True)
    if mapping is not None:
        back = dict(zip(mapping.pseudonym, mapping.raw_id))
        queries["participant_id"] = queries.participant_id.map(lambda v: back.get(v, v))
    write_table(queries, out_queries, private=True)  # the trial's own IDs: owner-only
    if out_exclusions:
        ing = read_table(exclusions, dtype={"timepoint": str}, keep_default_na=False) if exclusions else None
        write_table(exclusion_counts(linked, ing), out_exclusions)
    if manifest:
        check_manifest(cfg["data"]["raw_dir"], read_table(manifest, dtype=str))
        log.info("raw files unchanged since ingest (SHA-256 checked)")
    log.info("linked %d participant x time point rows", len(linked))
