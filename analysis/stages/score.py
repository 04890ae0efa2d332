"""Scoring stage: scores, scoring queries, scoring summary and reliability."""

from __future__ import annotations

import warnings

import pandas as pd

from analysis.config import register_trial_instruments
from analysis.ingest import QUERY_COLUMNS
from analysis.io import write_parquet, write_table
from analysis.scoring import reliability_table, score_responses, scoring_summary
from analysis.stages._common import log


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """Score every configured instrument; write scores, scoring queries, the scoring summary
    (method and verification status per instrument) and Cronbach's alpha per time point.
    ``inputs``: responses, participants."""
    resp = pd.read_parquet(inputs["responses"])
    parts = pd.read_parquet(inputs["participants"])
    register_trial_instruments(cfg)
    pre = list(cfg.get("prescored") or {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, reasons = score_responses(resp, parts, cfg["instruments"], pre)
    notes = sorted({str(w.message) for w in caught})
    for n in notes:
        log.warning("scoring: %s", n)
    write_parquet(scores, outputs["scores"])
    files = {w["timepoint"]: w["file"] for w in cfg["data"]["waves"]}
    record_queries = pd.DataFrame({
        "file": reasons.timepoint.map(files), "line": reasons.source_line.astype("Int64"),
        "participant_id": reasons.participant_id, "column": reasons.instrument, "value": "",
        "rule": "score not computed: " + reasons.reason, "severity": "warning"}, columns=QUERY_COLUMNS)
    config_notes = pd.DataFrame({"file": "(trial config: instruments)", "line": pd.NA, "participant_id": "",
                                 "column": "", "value": "", "rule": notes, "severity": "warning"},
                                columns=QUERY_COLUMNS)
    write_table(pd.concat([config_notes, record_queries], ignore_index=True), outputs["queries"])
    write_table(scoring_summary(resp, scores, cfg["instruments"], cfg.get("prescored")), outputs["summary"])
    write_table(reliability_table(resp, cfg["instruments"], level=cfg["outcomes"]["confidence_level"]),
                outputs["reliability"])
    log.info("scored %s for %d records; %d scores not computable", list(cfg["instruments"]),
             len(scores), len(record_queries))
