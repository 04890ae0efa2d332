"""One function per pipeline stage: read the stage's inputs, call the library, write outputs.

The Snakemake scripts in ``workflow/scripts/`` only unpack ``snakemake.input/params/output``
and call one of these, so every stage can also be run (and tested) without Snakemake.
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from analysis import feasibility as feas
from analysis import figures, outcomes
from analysis.config import primary_timepoint
from analysis.ingest import QUERY_COLUMNS, ingest_trial
from analysis.io import sha256_file, write_bytes, write_parquet, write_table, write_text
from analysis.link import link_waves
from analysis.report import render_report
from analysis.scoring import reliability_table, score_responses, scoring_summary

log = logging.getLogger("pathways")
INGEST_TABLES = ("sites", "participants", "screening", "responses", "service_use", "fidelity")


@contextmanager
def logged(log_path: str | Path):
    """Send log records and warnings to the rule's log file; log any exception, then re-raise."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield log
    except Exception:
        log.error("stage failed:\n%s", traceback.format_exc())
        print(traceback.format_exc(), file=sys.stderr)
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def run_ingest(cfg: dict, raw_dir: str, outputs: dict[str, str]) -> None:
    """Validate raw files; write typed Parquet tables and the ingest query log."""
    raw_files = sorted(p for p in Path(raw_dir).iterdir() if p.is_file())
    before = {p.name: sha256_file(p) for p in raw_files}
    tables = ingest_trial(cfg, raw_dir)
    after = {p.name: sha256_file(p) for p in raw_files}
    if before != after:  # pragma: no cover - defensive: ingest only reads
        raise RuntimeError(f"raw data in {raw_dir} changed while being read")
    for name in INGEST_TABLES:
        write_parquet(tables[name], outputs[name])
    write_table(tables["queries"], outputs["queries"])
    n_err = (tables["queries"].severity == "warning").sum()
    log.info("ingest: %d participants, %d response records, %d warnings",
             len(tables["participants"]), len(tables["responses"]), n_err)


def run_score(cfg: dict, responses: str, participants: str, out: dict[str, str]) -> None:
    """Score every configured instrument; write scores, scoring queries, the scoring summary
    (method and verification status per instrument) and Cronbach's alpha per time point."""
    out_scores, out_queries = out["scores"], out["queries"]
    resp = pd.read_parquet(responses)
    parts = pd.read_parquet(participants)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores, reasons = score_responses(resp, parts, cfg["instruments"])
    notes = sorted({str(w.message) for w in caught})
    for n in notes:
        log.warning("scoring: %s", n)
    write_parquet(scores, out_scores)
    q = pd.DataFrame({
        "file": reasons.timepoint.map({w["timepoint"]: w["file"] for w in cfg["data"]["waves"]}),
        "line": reasons.source_line.astype("Int64"), "participant_id": reasons.participant_id,
        "column": reasons.instrument, "value": "", "rule": "score not computed: " + reasons.reason,
        "severity": "warning"}, columns=QUERY_COLUMNS)
    q = pd.concat([pd.DataFrame({"file": "(trial config: instruments)", "line": pd.NA, "participant_id": "",
                                 "column": "", "value": "", "rule": notes, "severity": "warning"},
                                columns=QUERY_COLUMNS), q], ignore_index=True)
    write_table(q, out_queries)
    write_table(scoring_summary(resp, scores, cfg["instruments"]), out["summary"])
    write_table(reliability_table(resp, cfg["instruments"]), out["reliability"])
    log.info("scored %s for %d records; %d scores not computable", list(cfg["instruments"]),
             len(scores), len(q))


def run_link(cfg: dict, participants: str, responses: str, scores: str, query_files: list[str],
             out_linked: str, out_queries: str) -> None:
    linked = link_waves(pd.read_parquet(participants), pd.read_parquet(responses),
                        pd.read_parquet(scores), cfg["data"]["waves"])
    write_parquet(linked, out_linked)
    queries = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in query_files],
                        ignore_index=True)
    write_table(queries, out_queries)
    log.info("linked %d participant x time point rows", len(linked))


def _read_linked(path: str) -> pd.DataFrame:
    df = pd.read_parquet(path)
    if not isinstance(df.timepoint.dtype, pd.CategoricalDtype):  # pragma: no cover
        raise TypeError("linked table lost its ordered time points")
    return df


def run_feasibility(cfg: dict, sites: str, participants: str, screening: str, linked: str,
                    out: dict[str, str]) -> None:
    s, p, sc, lk = (pd.read_parquet(sites), pd.read_parquet(participants),
                    pd.read_parquet(screening), _read_linked(linked))
    d, f = cfg["design"], cfg["feasibility"]
    arms = [d["control_arm"], d["intervention_arm"]]
    table = feas.feasibility_table(s, p, sc, lk, primary_outcome=cfg["primary"]["outcome"],
                                   arms=arms, intervention_arm=d["intervention_arm"],
                                   ci_method=f["ci_method"], level=f["confidence_level"],
                                   recruitment_target=f["recruitment_target"])
    write_table(table, out["feasibility"])
    write_table(feas.recruitment_by_site(s, p, f["confidence_level"]), out["by_site"])
    write_table(feas.flow_counts(sc, p, lk, arms), out["flow"])
    write_bytes(figures.recruitment_png(p, f["recruitment_target"]), out["figure"])


def run_outcome(cfg: dict, linked: str, out: dict[str, str]) -> None:
    lk = _read_linked(linked)
    y = cfg["primary"]["outcome"]
    if y not in lk:
        raise KeyError(f"config key primary.outcome: {y!r} is not a scored outcome; "
                       f"available: {sorted(c for c in lk.columns if not c.endswith('_bl'))}")
    desc = outcomes.describe(lk, y)
    eff = outcomes.ancova_effects(lk, y, intervention_arm=cfg["design"]["intervention_arm"],
                                  clustered=cfg["design"]["clustered"],
                                  primary_timepoint=primary_timepoint(cfg),
                                  covariates=cfg["primary"]["covariates"])
    for w in eff.warnings[eff.warnings != ""]:
        log.warning("model: %s", w)
    write_table(desc, out["descriptives"])
    write_table(eff, out["effects"])
    write_bytes(figures.trajectory_png(desc, cfg["design"]["arm_labels"], y), out["figure"])


def run_report(cfg: dict, feasibility: str, effects: str, descriptives: str, queries: str,
               trajectory_png: str, recruitment_png: str, out_html: str) -> None:
    html = render_report(
        cfg, pd.read_csv(feasibility).fillna({"timepoint": "", "ci_method": "", "arm": ""}),
        pd.read_csv(effects).fillna({"warnings": ""}),
        pd.read_csv(descriptives), {"trajectory": Path(trajectory_png).read_bytes(),
                                    "recruitment": Path(recruitment_png).read_bytes()},
        pd.read_csv(queries, dtype=str, keep_default_na=False))
    write_text(html, out_html)
