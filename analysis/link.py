"""Link waves by participant into one long analysis table."""

from __future__ import annotations

import pandas as pd


def link_waves(participants: pd.DataFrame, responses: pd.DataFrame, scores: pd.DataFrame,
               waves: list[dict]) -> pd.DataFrame:
    """One row per allocated participant x scheduled time point.

    Every participant appears at every time point (``assessed`` is False where no
    questionnaire was returned), so that denominators for retention and completion are the
    allocated participants.  Columns: participant_id, site_id, arm, client_group, age, sex,
    timepoint, month, visit_date, days_from_baseline, assessed, every score, and for every
    numeric score its baseline value as ``<score>_bl``.
    """
    tps = [w["timepoint"] for w in waves]
    grid = pd.MultiIndex.from_product([participants.participant_id, tps],
                                      names=["participant_id", "timepoint"]).to_frame(index=False)
    grid["month"] = grid.timepoint.map({w["timepoint"]: float(w["month"]) for w in waves})
    person_cols = ["participant_id", "site_id", "arm", "client_group", "age", "sex"]
    df = grid.merge(participants[person_cols], on="participant_id", how="left", validate="m:1")
    visits = responses[["participant_id", "timepoint", "visit_date"]]
    df = df.merge(visits, on=["participant_id", "timepoint"], how="left", validate="1:1")
    df["assessed"] = df.visit_date.notna()
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
    return df.sort_values(["participant_id", "timepoint"]).reset_index(drop=True)
