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

    Parameters
    ----------
    responses : pandas.DataFrame
        One row per participant and time point (ingest's ``responses``): participant_id,
        timepoint, month, source_line and the item columns ``<instrument>_<k>``.
    participants : pandas.DataFrame
        One row per participant (age and sex are read for the EQ-5D-5L DSU mapping).
    instrument_options : dict
        ``instruments`` of the config: instrument name to its options (method, overrides,
        missing codes, ...), scored with :func:`analysis.instruments.score`.
    prescored : list of str
        Pre-scored columns, copied as read (validated at ingest, not rescored).

    Returns
    -------
    scores : pandas.DataFrame
        One row per response record with the instrument outputs (totals, indices, subscales, and
        the EQ-5D method used) and the pre-scored columns.
    reasons : pandas.DataFrame
        participant_id, timepoint, source_line, instrument, reason for every score that could not
        be computed (it feeds the data-query log).

    References
    ----------
    Each instrument's scoring rule cites its source (``analysis/instruments/definitions``; the
    scoring summary lists them).  The SWEMWBS of the example: Stewart-Brown S, Tennant A, Tennant
    R, Platt S, Parkinson J, Weich S. Internal construct validity of the Warwick-Edinburgh Mental
    Well-being Scale (WEMWBS): a Rasch analysis using data from the Scottish Health Education
    Population Survey. Health Qual Life Outcomes 2009;7:15.

    Examples
    --------
    >>> import pandas as pd
    >>> items = {"P1": [4, 5, 3, 5, 3, 4, 4], "P2": [1, 1, 2, 2, 2, 2, 2], "P3": [2, 3, 1, 3, 3, 1, 3],
    ...          "P4": [2, 1, 2, 3, 3, 1, 3], "P5": [4, 3, 2, 4, 4, 2, 4], "P6": [5, 3, None, 4, 5, 4, 5]}
    >>> responses = pd.DataFrame([[p, "baseline", 0.0, line] + v for line, (p, v) in enumerate(items.items(), 2)],
    ...                          columns=["participant_id", "timepoint", "month", "source_line"]
    ...                          + [f"swemwbs_{k}" for k in range(1, 8)]).astype({"swemwbs_3": "Int64"})
    >>> from analysis.scoring import score_responses
    >>> scores, reasons = score_responses(responses, responses[["participant_id"]], {"swemwbs": {}})
    >>> scores.swemwbs_total.tolist()
    [28.0, 12.0, 16.0, 15.0, 23.0, nan]
    >>> print(reasons[["participant_id", "instrument", "reason"]].to_string(index=False))
    participant_id instrument                 reason
                P6    swemwbs item swemwbs_3 missing
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
    """Cronbach's alpha with its CI per instrument, scale and time point (complete cases).

    Utility indices (EQ-5D) and separately reported items (ONS4) are not summed scales and are
    left out.

    Parameters
    ----------
    responses : pandas.DataFrame
        Ingest's ``responses`` (item columns ``<instrument>_<k>``).
    instrument_options : dict
        ``instruments`` of the config (overrides, source and missing codes are used).
    level : float
        Confidence level of the interval for alpha.

    Returns
    -------
    pandas.DataFrame
        instrument, timepoint, scale, n (complete cases), n_items, alpha, ci_low, ci_high
        (:func:`analysis.instruments.reliability`).

    References
    ----------
    Cronbach LJ. Coefficient alpha and the internal structure of tests. Psychometrika
    1951;16:297-334.

    Feldt LS, Woodruff DJ, Salih FA. Statistical inference for coefficient alpha. Appl Psychol
    Meas 1987;11:93-103.

    Examples
    --------
    >>> import pandas as pd
    >>> items = {"P1": [4, 5, 3, 5, 3, 4, 4], "P2": [1, 1, 2, 2, 2, 2, 2], "P3": [2, 3, 1, 3, 3, 1, 3],
    ...          "P4": [2, 1, 2, 3, 3, 1, 3], "P5": [4, 3, 2, 4, 4, 2, 4], "P6": [5, 3, None, 4, 5, 4, 5]}
    >>> responses = pd.DataFrame([[p, "baseline", 0.0, line] + v for line, (p, v) in enumerate(items.items(), 2)],
    ...                          columns=["participant_id", "timepoint", "month", "source_line"]
    ...                          + [f"swemwbs_{k}" for k in range(1, 8)]).astype({"swemwbs_3": "Int64"})
    >>> from analysis.scoring import reliability_table
    >>> print(reliability_table(responses, {"swemwbs": {}}).round(3).to_string(index=False))
    instrument timepoint scale  n  n_items  alpha  ci_low  ci_high
       swemwbs  baseline total  5        7  0.918   0.723     0.99
    """
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
