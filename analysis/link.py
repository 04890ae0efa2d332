"""Link waves by participant into one long analysis table; count exclusions for the flow."""

from __future__ import annotations

import numpy as np
import pandas as pd

EXCLUSION_COLUMNS = ["step", "reason", "timepoint", "arm", "n"]


def link_waves(participants: pd.DataFrame, responses: pd.DataFrame, scores: pd.DataFrame,
               waves: list[dict], covariates: list[str] = ()) -> pd.DataFrame:
    """One row per allocated participant x scheduled time point.

    Every participant appears at every time point (``assessed`` is False where no
    questionnaire was returned), so that denominators for retention and completion are the
    allocated participants.  Columns: participant_id, site_id, arm, client_group, age, sex,
    the declared ``covariates`` (participant level, baseline),
    timepoint, month, visit_date, days_from_baseline, assessed (a record exists for that time
    point), every score, and for every
    numeric score its baseline value as ``<score>_bl``.  Rows follow the order of the
    participants table (canonical, independent of pseudonyms) and then time point.
    """
    tps = [w["timepoint"] for w in waves]
    grid = pd.MultiIndex.from_product([participants.participant_id, tps],
                                      names=["participant_id", "timepoint"]).to_frame(index=False)
    grid["month"] = grid.timepoint.map({w["timepoint"]: np.nan if w["month"] is None else float(w["month"])
                                        for w in waves}).astype(float)
    person_cols = list(dict.fromkeys(["participant_id", "site_id", "arm", "client_group", "age", "sex"]
                                     + list(covariates)))
    df = grid.merge(participants[person_cols], on="participant_id", how="left", validate="m:1")
    visits = responses[["participant_id", "timepoint", "visit_date"]].assign(_record=True)
    df = df.merge(visits, on=["participant_id", "timepoint"], how="left", validate="1:1")
    df["assessed"] = df.pop("_record").notna().to_numpy()  # a questionnaire record (dated or not)
    base = df[df.timepoint == tps[0]].set_index("participant_id").visit_date
    df["days_from_baseline"] = (df.visit_date - df.participant_id.map(base)).dt.days.astype("Int64")
    score_cols = [c for c in scores.columns if c not in ("participant_id", "timepoint", "month")]
    df = df.merge(scores[["participant_id", "timepoint"] + score_cols],
                  on=["participant_id", "timepoint"], how="left", validate="1:1")
    numeric = [c for c in score_cols if pd.api.types.is_numeric_dtype(df[c])]
    bl = df[df.timepoint == tps[0]].set_index("participant_id")[numeric]
    for c in numeric:
        df[f"{c}_bl"] = df.participant_id.map(bl[c])
    df["timepoint"] = pd.Categorical(df.timepoint, categories=tps, ordered=True)
    order = pd.Series(range(len(participants)), index=participants.participant_id.to_numpy())
    df["_order"] = df.participant_id.map(order)
    return df.sort_values(["_order", "timepoint"], kind="stable").drop(columns="_order").reset_index(drop=True)


def exclusion_counts(linked: pd.DataFrame, ingest_exclusions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tidy counts (step, reason, timepoint, arm, n) of records excluded and participants not
    assessed, for the CONSORT flow.  Ingest counts (records excluded, rows not read) come first;
    then, per time point and arm, participants allocated and those without a usable record."""
    rows = []
    if ingest_exclusions is not None and len(ingest_exclusions):
        rows += ingest_exclusions[EXCLUSION_COLUMNS].to_dict("records")
    arms = sorted(linked.arm.dropna().unique())
    for tp in linked.timepoint.cat.categories:
        at = linked[linked.timepoint == tp]
        for arm in arms:
            a = at[at.arm == arm]
            rows.append(dict(step="link", reason="participants allocated", timepoint=str(tp), arm=arm, n=len(a)))
            rows.append(dict(step="link", reason="no questionnaire record at this time point (not assessed)",
                             timepoint=str(tp), arm=arm, n=int((~a.assessed).sum())))
    out = pd.DataFrame(rows, columns=EXCLUSION_COLUMNS)
    out["timepoint"] = out.timepoint.fillna("").astype(str)
    out["n"] = out.n.astype("int64")
    return out
