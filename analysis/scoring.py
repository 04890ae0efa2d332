"""Scoring stage: apply the instrument library to every configured questionnaire."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import instruments

KEY = ["participant_id", "timepoint"]


def score_responses(responses: pd.DataFrame, participants: pd.DataFrame,
                    instrument_options: dict[str, dict],
                    prescored: list[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score each configured instrument for every participant and time point.

    Returns ``(scores, reasons)``: ``scores`` has one row per response record with the
    instrument outputs (totals, indices, subscales, and the EQ-5D method used) and the
    pre-scored columns as read (``prescored``: validated at ingest, not rescored);
    ``reasons`` is a long table (participant_id, timepoint, instrument, reason) of every score
    that could not be computed, which feeds the data-query log.
    """
    out = responses[KEY + ["month"]].copy()
    reasons = []
    person = participants.set_index("participant_id")
    for inst, options in instrument_options.items():
        opts = dict(options or {})
        if inst == "eq5d5l" and opts.get("method", "dsu") == "dsu":
            opts.setdefault("age", responses.participant_id.map(person.age).astype("Float64"))
            opts.setdefault("sex", responses.participant_id.map(person.sex))
        items = [c for c in responses.columns if c.startswith(f"{inst}_")]
        if inst == "swemwbs" and opts.get("source") == "wemwbs":
            items = [c for c in responses.columns if c.startswith("wemwbs_")]
        scored = instruments.score(inst, responses[items], **opts)
        reason_col = f"{inst}_reason"
        if reason_col in scored:
            r = scored[reason_col]
            bad = r.notna() & (r.astype(str) != "")
            if bad.any():
                reasons.append(pd.DataFrame({"participant_id": responses.participant_id[bad],
                                             "timepoint": responses.timepoint[bad],
                                             "source_line": responses.source_line[bad],
                                             "instrument": inst, "reason": r[bad].astype(str)}))
            scored = scored.drop(columns=[reason_col])
        out = pd.concat([out, scored], axis=1)
    for c in prescored:
        out[c] = pd.to_numeric(responses[c]).astype(float) if c in responses else np.nan
    reasons_df = (pd.concat(reasons, ignore_index=True) if reasons else
                  pd.DataFrame(columns=["participant_id", "timepoint", "source_line", "instrument", "reason"]))
    return out.reset_index(drop=True), reasons_df


def _item_columns(inst: str, responses: pd.DataFrame, options: dict) -> list[str]:
    prefix = "wemwbs_" if inst == "swemwbs" and (options or {}).get("source") == "wemwbs" else f"{inst}_"
    return [c for c in responses.columns if c.startswith(prefix)]


def scoring_summary(responses: pd.DataFrame, scores: pd.DataFrame,
                    instrument_options: dict[str, dict], prescored: dict | None = None) -> pd.DataFrame:
    """Per instrument and time point: records, scores computed, the scoring method and the
    verification status of the definition (so every output says how it was scored).
    Pre-scored columns are listed with method 'pre-scored'."""
    rows = []
    for name, spec in (prescored or {}).items():
        if name not in scores:
            continue
        for tp, idx in scores.groupby("timepoint", sort=False).groups.items():
            rows.append(dict(instrument="(pre-scored)", name=spec.get("label") or name, timepoint=tp,
                             output=name, method="pre-scored", records=len(idx),
                             scored=int(scores.loc[idx, name].notna().sum()), provisional_facts="",
                             citation=""))
    for inst, options in instrument_options.items():
        opts = dict(options or {})
        defn = instruments.get_definition(inst, opts.get("overrides"))
        provisional = instruments.provisional_facts(defn)
        outputs = [c for c in scores.columns if c.startswith(f"{inst}_") and c != f"{inst}_method"
                   and pd.api.types.is_float_dtype(scores[c])]
        method = str(scores[f"{inst}_method"].dropna().iloc[0]) if f"{inst}_method" in scores \
            and scores[f"{inst}_method"].notna().any() else defn["scoring"].get("method", "")
        for tp, idx in scores.groupby("timepoint", sort=False).groups.items():
            for out in outputs:
                rows.append(dict(instrument=inst, name=defn["name"], timepoint=tp, output=out,
                                 method=method, records=len(idx),
                                 scored=int(scores.loc[idx, out].notna().sum()),
                                 provisional_facts=";".join(provisional),
                                 citation=defn.get("source", {}).get("citation", "")))
    return pd.DataFrame(rows)


def reliability_table(responses: pd.DataFrame, instrument_options: dict[str, dict],
                      level: float = 0.95) -> pd.DataFrame:
    """Cronbach's alpha (CI at ``level``) per instrument, scale and time point (complete cases)."""
    frames = []
    for inst, options in instrument_options.items():
        opts = {k: v for k, v in dict(options or {}).items() if k in ("overrides", "source", "missing_codes")}
        items = _item_columns(inst, responses, opts)
        defn = instruments.get_definition(inst, opts.get("overrides"))
        if defn["scoring"].get("method") in ("eq5d",) or inst == "ons4":
            continue  # a utility index and separately reported items are not summed scales
        for tp, g in responses.groupby("timepoint", sort=False):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # provisional-definition notes are logged by scoring
                rel = instruments.reliability(inst, g[items], level=level, **opts)
            rel.insert(1, "timepoint", tp)
            frames.append(rel)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["instrument", "timepoint", "scale", "n", "n_items", "alpha", "ci_low", "ci_high"])
