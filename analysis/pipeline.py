"""The data stages in one process, without Snakemake: ingest, score, link.

For notebooks, tests and scripts that need a trial's analysis tables without running the
workflow.  Nothing is written and IDs are not pseudonymised (the ingest *stage* does that before
anything reaches disk); the tables are those the workflow's stages pass on, so an analysis run
on them gives the workflow's numbers.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from analysis.config import register_trial_instruments
from analysis.ingest import ingest_trial
from analysis.link import link_waves
from analysis.scoring import score_responses


def prepare(cfg: dict, raw_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Typed tables of ``ingest_trial`` plus ``scores`` and ``linked`` (one row per
    participant x time point) for a validated config; raises
    :class:`analysis.ingest.DataValidationError` on bad data."""
    register_trial_instruments(cfg)
    t = dict(ingest_trial(cfg, raw_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # provisional-definition notes: the score stage logs them
        scores, _ = score_responses(t["responses"], t["participants"], cfg["instruments"],
                                    list(cfg.get("prescored") or {}))
    t["scores"] = scores
    t["linked"] = link_waves(t["participants"], t["responses"], scores, cfg["data"]["waves"],
                             covariates=list(cfg.get("covariates") or {}))
    return t
