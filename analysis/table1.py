"""Table 1: baseline characteristics by arm and overall (CONSORT item 15), without p-values.

Continuous variables: n non-missing, mean (SD, n - 1 denominator) and median (IQR: 25th and
75th percentiles by linear interpolation, R's default type 7); categorical variables: n (%) per
level with the percentage of non-missing values; every variable reports its missing count.
Every level seen in any arm is listed in every arm (with n = 0 where absent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TABLE1_COLUMNS = ["variable", "type", "level", "arm", "n", "missing", "count", "percent",
                  "mean", "sd", "median", "q1", "q3"]


def baseline_frame(participants: pd.DataFrame, linked: pd.DataFrame, measures: list[str],
                   covariates: list[str] = ()) -> pd.DataFrame:
    """One row per allocated participant: arm, age, sex, client_group, the declared covariates
    and baseline scores."""
    base_tp = linked.timepoint.cat.categories[0]
    base = linked[linked.timepoint == base_tp].set_index("participant_id")
    cols = list(dict.fromkeys(["arm", "age", "sex", "client_group"] + list(covariates)))
    out = participants.set_index("participant_id")[[c for c in cols if c in participants]].copy()
    for m in measures:
        out[m] = base[m].reindex(out.index)
    return out.reset_index(drop=True)


def table1(frame: pd.DataFrame, arms: list[str], continuous: list[str], categorical: list[str],
           levels: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Tidy Table 1: baseline characteristics by arm.

    One row per variable x level x arm; "all" is every allocated participant (when there is more
    than one arm).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per participant with an ``arm`` column (:func:`baseline_frame`).
    arms : list of str
        Arms in display order.
    continuous : list of str
        Columns summarised by n, missing, mean, SD, median and quartiles.
    categorical : list of str
        Columns summarised by count and percent per level (blank values are missing).
    levels : dict, optional
        Declared level order per categorical column (declared levels are listed even if unseen);
        other levels follow, sorted.

    Returns
    -------
    pandas.DataFrame
        Columns variable, type (count, continuous, categorical), level, arm, n, missing, count,
        percent, mean, sd, median, q1, q3.  No tests of baseline differences (CONSORT advises
        against them).

    References
    ----------
    Eldridge SM, Chan CL, Campbell MJ, et al. CONSORT 2010 statement: extension to randomised
    pilot and feasibility trials. BMJ 2016;355:i5239 (item 15).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.table1 import table1
    >>> frame = pd.DataFrame({"arm": ["A", "A", "A", "B", "B"], "age": [34, 51, None, 45, 29],
    ...                       "sex": ["F", "M", "F", "F", "M"]})
    >>> t = table1(frame, ["A", "B"], continuous=["age"], categorical=["sex"])
    >>> print(t[t.variable == "age"][["arm", "n", "missing", "mean", "sd"]].round(2).to_string(index=False))
    arm  n  missing  mean    sd
      A  2        1 42.50 12.02
      B  2        0 37.00 11.31
    all  4        1 39.75 10.05
    >>> print(t[t.variable == "sex"][["level", "arm", "n", "count"]].head(2).to_string(index=False))
    level arm  n  count
        F   A  3      2
        M   A  3      1
    """
    levels_of = levels or {}
    groups = list(arms) + (["all"] if len(arms) > 1 else [])
    rows = []

    def sub(arm):
        return frame if arm == "all" else frame[frame.arm == arm]

    for arm in groups:
        rows.append(dict(variable="participants", type="count", level="", arm=arm, n=len(sub(arm)),
                         missing=0, count=len(sub(arm))))
    for v in continuous:
        for arm in groups:
            x = pd.to_numeric(sub(arm)[v], errors="coerce").astype(float)
            obs = x.dropna().to_numpy()
            rows.append(dict(
                variable=v, type="continuous", level="", arm=arm, n=len(obs), missing=int(x.isna().sum()),
                mean=obs.mean() if len(obs) else np.nan,
                sd=obs.std(ddof=1) if len(obs) > 1 else np.nan,
                median=np.median(obs) if len(obs) else np.nan,
                q1=np.quantile(obs, 0.25) if len(obs) else np.nan,
                q3=np.quantile(obs, 0.75) if len(obs) else np.nan))
    for v in categorical:
        col = frame[v].astype("string").str.strip().replace("", pd.NA)
        seen = sorted(col.dropna().unique())
        declared = [str(v) for v in levels_of.get(v, [])]
        levels = declared + [x for x in seen if x not in declared]  # declared levels even if unseen
        for arm in groups:
            x = col if arm == "all" else col[frame.arm == arm]
            n = int(x.notna().sum())
            for lev in levels:
                k = int((x == lev).sum())
                rows.append(dict(variable=v, type="categorical", level=lev, arm=arm, n=n,
                                 missing=int(x.isna().sum()), count=k,
                                 percent=100 * k / n if n else np.nan))
    out = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    out["count"] = out["count"].astype("Int64")
    return out
