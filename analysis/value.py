"""Value for money of a single-arm (pre-post) study (``value_for_money`` in the config).

Without a comparison group there is no effect of the intervention to put a price on, so the
tables here divide the intervention's cost by what was delivered and by the *uncontrolled*
before-after change (labelled as such on every row):

* the cost build-up: every cost item with its source and price year, inflated to one price
  year with the NHS Cost Inflation Index (:func:`analysis.programme.cost_buildup`);
* cost per participant enrolled and per participant completing (the primary outcome measured
  at the value-for-money time point);
* cost per point of change on each named outcome: cost per participant / mean change, the change
  being the primary analysis's mean change from baseline (all participants) turned towards
  improvement.  When the change's confidence interval includes no change, or lies wholly on the
  side of a worsening, there is no ratio (a ratio with a denominator that may be zero or negative
  has no meaning): the row says so and carries no number;
* a WELLBY valuation of the change in life satisfaction (low, central and high value per WELLBY,
  and the central value at each end of the change's interval) with :func:`analysis.programme.
  wellby_table`, or "not collected".

No social-return-on-investment ratio is formed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.programme import NOT_COLLECTED, cost_buildup, wellby_table

#: printed beside every change and cost per point
UNCONTROLLED = "uncontrolled before-after change: not an effect of the intervention"
#: the ratio rule (docs/methods.md, "Value for money (single-arm)")
NO_RATIO_ZERO = ("the change's confidence interval includes no change: a cost per point is not a meaningful "
                 "ratio (its denominator may be zero), so none is given")
NO_RATIO_WORSE = ("the change's confidence interval lies wholly on the side of a worsening: a cost per point is "
                  "not a meaningful ratio, so none is given")
PER_PARTICIPANT_COLUMNS = ["measure", "participants", "total_cost_gbp", "cost_per_participant_gbp", "price_year",
                           "note"]
PER_POINT_COLUMNS = ["outcome", "label", "timepoint", "direction", "change", "ci_low", "ci_high", "n_change",
                     "gain", "gain_ci_low", "gain_ci_high", "ratio_status", "base", "participants",
                     "cost_per_participant_gbp", "cost_per_point_gbp", "cost_per_point_at_gain_ci_high_gbp",
                     "cost_per_point_at_gain_ci_low_gbp", "price_year", "note"]
WELLBY_COLUMNS = ["scenario", "ls_change", "participants", "duration_years", "wellbys", "value_per_wellby",
                  "social_value_gbp", "price_basis", "note"]

WELLBY_ASSUMPTIONS = (
    "The change is the primary analysis's mean change in ONS life satisfaction (0-10) from baseline to the "
    "value-for-money time point; there is no comparison group, so it is not an effect of the intervention "
    "(other changes over the same period are included).",
    "The change measured applies to every participant enrolled, including those not measured at follow-up.",
    "The change lasts value_for_money.wellby.duration_years (shown as Years) and is not discounted; no "
    "displacement, deadweight or drop-off is applied.",
    "Value per WELLBY from HM Treasury (2021) Wellbeing guidance for appraisal: GBP 13,000 (range 10,000-16,000) "
    "in 2019 prices; the price basis is stated on every row.",
)


def vfm_outcomes(cfg: dict) -> list[str]:
    """The outcomes given a cost per point: ``value_for_money.outcomes``, or the primary outcome."""
    return list(cfg["value_for_money"]["outcomes"]) or [cfg["primary"]["outcome"]]


def vfm_timepoint(cfg: dict) -> str:
    """The time point of the change: ``value_for_money.timepoint``, else the primary time point."""
    from analysis.config import primary_timepoint
    return cfg["value_for_money"]["timepoint"] or primary_timepoint(cfg)


def participant_counts(participants: pd.DataFrame, linked: pd.DataFrame, outcome: str,
                       timepoint: str) -> dict[str, int]:
    """Participants enrolled (rows of the participants table) and completing (``outcome`` measured
    at ``timepoint`` in the linked table)."""
    at = linked[(linked.timepoint.astype(str) == timepoint) & linked[outcome].notna()]
    return dict(enrolled=int(participants.participant_id.nunique()), completing=int(at.participant_id.nunique()))


def per_participant(buildup: pd.DataFrame, counts: dict[str, int], timepoint: str, outcome_label: str) -> pd.DataFrame:
    """Cost per participant enrolled and per participant completing (total cost / participants)."""
    total = float(buildup.amount_gbp_analysis_year.sum())
    year = buildup.analysis_price_year.iloc[0]
    rows = []
    for key, measure, note in (
            ("enrolled", "Cost per participant enrolled", "participants who consented and were enrolled"),
            ("completing", "Cost per participant completing",
             f"participants with {outcome_label} measured at {timepoint}")):
        n = counts[key]
        rows.append(dict(measure=measure, participants=n, total_cost_gbp=total,
                         cost_per_participant_gbp=total / n if n else np.nan, price_year=year,
                         note=note if n else note + "; none: not defined"))
    return pd.DataFrame(rows, columns=PER_PARTICIPANT_COLUMNS)


def primary_change(effects: pd.DataFrame, outcome: str, timepoint: str) -> pd.Series | None:
    """The primary analysis's change from baseline at ``timepoint`` (all participants), or None."""
    m = effects[(effects.outcome == outcome) & (effects.population.astype(str) == "all")
                & (effects.analysis == "primary") & (effects.timepoint.astype(str) == timepoint)]
    return None if m.empty else m.iloc[0]


def ratio_status(gain_low: float, gain_high: float) -> str:
    """Whether a cost per point of change is a meaningful ratio.

    Parameters
    ----------
    gain_low, gain_high : float
        Ends of the confidence interval of the change turned towards improvement (the gain).

    Returns
    -------
    str
        'ratio' when the interval lies wholly above zero; 'interval includes no change' when it
        includes zero (an end at exactly zero included); 'worsening' when it lies wholly below
        zero; 'not estimated' when an end is missing.  Only 'ratio' gets a number.

    References
    ----------
    Briggs A, Fenn P. Confidence intervals or surfaces? Uncertainty on the cost-effectiveness
    plane. Health Econ 1998;7:723-740 (a ratio whose denominator's interval includes zero is
    unbounded and changes meaning with its sign).

    Examples
    --------
    >>> from analysis.value import ratio_status
    >>> ratio_status(0.1, 2.0), ratio_status(-0.1, 2.0), ratio_status(-2.0, -0.1), ratio_status(0.0, 1.0)
    ('ratio', 'interval includes no change', 'worsening', 'interval includes no change')
    """
    if not (np.isfinite(gain_low) and np.isfinite(gain_high)):
        return "not estimated"
    if gain_low > 0:
        return "ratio"
    return "worsening" if gain_high < 0 else "interval includes no change"


def per_point(buildup: pd.DataFrame, effects: pd.DataFrame, outcomes: list[str], timepoint: str,
              counts: dict[str, int], directions: dict[str, str], labels: dict[str, str]) -> pd.DataFrame:
    """Cost per point of the before-after change on each outcome, per participant enrolled and per
    participant completing.

    Parameters
    ----------
    buildup : pandas.DataFrame
        :func:`analysis.programme.cost_buildup`.
    effects : pandas.DataFrame
        The outcome stage's effects table (its primary, all-participant rows are used).
    outcomes : list of str
        Outcomes to price (:func:`vfm_outcomes`).
    timepoint : str
        Follow-up time point of the change (:func:`vfm_timepoint`).
    counts : dict
        :func:`participant_counts`.
    directions, labels : dict
        Which way each score is better (higher/lower) and its label.

    Returns
    -------
    pandas.DataFrame
        Two rows per outcome (base enrolled, completing), columns ``PER_POINT_COLUMNS``: the change
        and its interval as estimated, the gain (the change turned so that improvement is
        positive) and its interval, ``ratio_status`` (:func:`ratio_status`) and, only when that is
        'ratio', the cost per point (cost per participant / gain) with its values at the ends of
        the gain's interval.

    References
    ----------
    HM Treasury. The Green Book: central government guidance on appraisal and evaluation. London,
    2022 (values expressed in real terms, in the prices of one base year).

    Examples
    --------
    Total cost GBP 1,550 over 10 participants enrolled and 5 completing; a mean change of 2 points
    (95% CI 1 to 4) and one of 1 point (CI -0.5 to 2.5), which gets no ratio:

    >>> import pandas as pd
    >>> from analysis.value import per_point
    >>> buildup = pd.DataFrame({"amount_gbp_analysis_year": [1000.0, 550.0], "analysis_price_year": "2023/24"})
    >>> effects = pd.DataFrame({"outcome": ["wb", "ls"], "population": "all", "analysis": "primary",
    ...                         "timepoint": "m12", "estimate": [2.0, 1.0], "ci_low": [1.0, -0.5],
    ...                         "ci_high": [4.0, 2.5], "n_participants": [5, 5]})
    >>> t = per_point(buildup, effects, ["wb", "ls"], "m12", {"enrolled": 10, "completing": 5}, {}, {})
    >>> print(t[["outcome", "base", "ratio_status", "cost_per_point_gbp"]].to_string(index=False))
    outcome       base                ratio_status  cost_per_point_gbp
         wb   enrolled                       ratio                77.5
         wb completing                       ratio               155.0
         ls   enrolled interval includes no change                 NaN
         ls completing interval includes no change                 NaN
    """
    total = float(buildup.amount_gbp_analysis_year.sum())
    year = buildup.analysis_price_year.iloc[0]
    rows = []
    for y in outcomes:
        r = primary_change(effects, y, timepoint)
        sign = -1.0 if directions.get(y) == "lower" else 1.0
        est, lo, hi = ((np.nan,) * 3 if r is None else (float(r.estimate), float(r.ci_low), float(r.ci_high)))
        g, glo, ghi = sign * est, min(sign * lo, sign * hi), max(sign * lo, sign * hi)
        status = ratio_status(glo, ghi)
        for base in ("enrolled", "completing"):
            n = counts[base]
            cpp = total / n if n else np.nan
            row = dict(outcome=y, label=labels.get(y, y), timepoint=timepoint, direction=directions.get(y, "higher"),
                       change=est, ci_low=lo, ci_high=hi, n_change=np.nan if r is None else r.n_participants,
                       gain=g, gain_ci_low=glo, gain_ci_high=ghi, ratio_status=status, base=base, participants=n,
                       cost_per_participant_gbp=cpp, price_year=year, note=UNCONTROLLED)
            if status == "ratio" and n:
                row.update(cost_per_point_gbp=cpp / g, cost_per_point_at_gain_ci_high_gbp=cpp / ghi,
                           cost_per_point_at_gain_ci_low_gbp=cpp / glo)
            else:
                row["note"] = {"interval includes no change": NO_RATIO_ZERO, "worsening": NO_RATIO_WORSE}.get(
                    status, "change not estimated (see effects.csv)" if n else "no participants: not defined") \
                    + "; " + UNCONTROLLED
            rows.append(row)
    return pd.DataFrame(rows, columns=PER_POINT_COLUMNS)


def wellby(effects: pd.DataFrame, cfg: dict, timepoint: str, enrolled: int, collected: bool) -> pd.DataFrame:
    """WELLBY valuation of the change in life satisfaction over the participants enrolled
    (:func:`analysis.programme.wellby_table`), or one 'not estimated' row saying why.

    ``collected``: whether ``value_for_money.wellby.outcome`` is one of the study's score columns.
    When the change's interval includes no change, every row says so (the value could be nil or
    negative: the last row uses the lower end)."""
    w = cfg["value_for_money"]["wellby"]
    y = w["outcome"]
    if y is None or not collected:
        why = f"life satisfaction ({y or 'value_for_money.wellby.outcome: null'}): {NOT_COLLECTED}"
        return pd.DataFrame([dict(scenario="not estimated", note=why)], columns=WELLBY_COLUMNS)
    r = primary_change(effects, y, timepoint)
    if r is None or not np.isfinite(float(r.estimate)):
        return pd.DataFrame([dict(scenario="not estimated", note=f"change in {y} at {timepoint} not estimated "
                                  "(see effects.csv)")], columns=WELLBY_COLUMNS)
    change = pd.DataFrame({"outcome": ["ons4_life_satisfaction"], "change": [float(r.estimate)],
                           "ci_low": [float(r.ci_low)], "ci_high": [float(r.ci_high)]})
    out = wellby_table(change, float(enrolled), w).rename(columns={"residents": "participants"})
    note = UNCONTROLLED
    if float(r.ci_low) <= 0 <= float(r.ci_high):
        note = ("the change's confidence interval includes no change: the social value could be nil or negative; "
                + UNCONTROLLED)
    out["note"] = note
    return out.reindex(columns=WELLBY_COLUMNS)


def value_tables(cfg: dict, participants: pd.DataFrame, linked: pd.DataFrame, effects: pd.DataFrame,
                 index: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every value-for-money table: ``buildup``, ``per_participant``, ``per_point`` and ``wellby``.

    ``index``: the inflation index (default the shipped NHS Cost Inflation Index)."""
    from analysis.config import score_directions, score_labels

    v = cfg["value_for_money"]
    tp = vfm_timepoint(cfg)
    labels = score_labels(cfg)
    buildup = cost_buildup(v["costs"], v["price_year"], index)
    counts = participant_counts(participants, linked, cfg["primary"]["outcome"], tp)
    y0 = cfg["primary"]["outcome"]
    directions = score_directions(cfg)
    w = v["wellby"]["outcome"]
    return dict(buildup=buildup, per_participant=per_participant(buildup, counts, tp, labels.get(y0, y0)),
                per_point=per_point(buildup, effects, vfm_outcomes(cfg), tp, counts, directions, labels),
                wellby=wellby(effects, cfg, tp, counts["enrolled"], w is not None and w in directions))
