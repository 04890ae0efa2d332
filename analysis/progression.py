"""Prespecified progression criteria (traffic light) and the decision they imply.

Each criterion names a row of the feasibility table (indicator, time point, arm) and gives a
GREEN threshold g and a RED threshold r (Avery KNL et al. BMJ Open 2017;7:e013537):

* ``direction: higher`` (higher is better; needs r <= g): GREEN if estimate >= g, RED if
  estimate < r, AMBER otherwise (r <= estimate < g);
* ``direction: lower`` (lower is better, e.g. withdrawal; needs g <= r): GREEN if estimate <= g,
  RED if estimate > r, AMBER otherwise (g < estimate <= r).

So an estimate exactly on the GREEN threshold is GREEN and exactly on the RED threshold is
AMBER, in both directions.  Overall: any RED -> stop or reconsider; otherwise any criterion
that cannot be estimated (denominator 0) -> undetermined; otherwise any AMBER -> proceed with
amendments; all GREEN -> go.

Optional one-sided test against the RED threshold (Lewis M et al. Pilot Feasibility Stud
2021;7:40): for a proportion, the exact binomial test (``scipy.stats.binomtest``) of
H0: p <= r against H1: p > r (``direction: higher``) or of H0: p >= r against H1: p < r
(``direction: lower``); for the recruitment rate, the exact Poisson test of H0: rate <= r
(or >= r) using P(X >= k | mean = r x site-months) (or P(X <= k)).  A small p-value is
evidence that the true value is better than the RED threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.feasibility import denominator_of

GREEN, AMBER, RED, NOT_ESTIMABLE = "GREEN", "AMBER", "RED", "NOT ESTIMABLE"
DECISIONS = {
    GREEN: "go: proceed to the definitive trial",
    AMBER: "proceed with amendments",
    RED: "stop or reconsider",
    NOT_ESTIMABLE: "undetermined: at least one criterion could not be estimated",
}
PROGRESSION_COLUMNS = ["criterion", "indicator", "timepoint", "arm", "direction", "denominator_of",
                       "numerator", "denominator", "estimate", "ci_low", "ci_high", "ci_method",
                       "green", "red", "band", "test", "p_value_vs_red"]


def band(estimate: float, green: float, red: float, direction: str = "higher") -> str:
    """Traffic-light band of one estimate (see the module docstring for the rule)."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if (direction == "higher" and red > green) or (direction == "lower" and red < green):
        raise ValueError(f"thresholds inconsistent with direction {direction!r}: green={green}, red={red} "
                         f"(need red {'<=' if direction == 'higher' else '>='} green)")
    if estimate is None or (isinstance(estimate, float) and math.isnan(estimate)):
        return NOT_ESTIMABLE
    if direction == "higher":
        return GREEN if estimate >= green else RED if estimate < red else AMBER
    return GREEN if estimate <= green else RED if estimate > red else AMBER


def decision(bands: list[str]) -> str | None:
    """Overall progression decision from the bands (None when there are no criteria)."""
    if not bands:
        return None
    for b in (RED, NOT_ESTIMABLE, AMBER):
        if b in bands:
            return DECISIONS[b]
    return DECISIONS[GREEN]


def overall_band(bands: list[str]) -> str | None:
    if not bands:
        return None
    for b in (RED, NOT_ESTIMABLE, AMBER):
        if b in bands:
            return b
    return GREEN


def red_threshold_test(row, red: float, direction: str) -> tuple[str, float]:
    """One-sided exact test of the estimate against the RED threshold (Lewis 2021)."""
    k = int(row.numerator)
    alt = "greater" if direction == "higher" else "less"
    if row.unit == "proportion":
        n = int(row.denominator)
        if n == 0:
            return ("", np.nan)
        if not 0 <= red <= 1:
            raise ValueError(f"RED threshold {red} of a proportion must lie in [0, 1]")
        p = stats.binomtest(k, n, red, alternative=alt).pvalue
        op = "<=" if direction == "higher" else ">="
        return (f"exact binomial, H0: p {op} {red:g}", float(p))
    if row.indicator == "recruitment_rate":
        mu = red * float(row.denominator)
        p = stats.poisson.sf(k - 1, mu) if direction == "higher" else stats.poisson.cdf(k, mu)
        op = "<=" if direction == "higher" else ">="
        return (f"exact Poisson, H0: rate {op} {red:g}", float(p))
    return ("", np.nan)


def evaluate(table: pd.DataFrame, criteria: list[dict], *, test: bool = False) -> pd.DataFrame:
    """One row per criterion: the matched feasibility row, thresholds, band and optional test.

    Raises ValueError naming the criterion (``feasibility.progression_criteria[i]``) when it
    matches no row, states a different denominator, or repeats another criterion's row.
    """
    rows, seen = [], {}
    for i, c in enumerate(criteria):
        key = f"config key feasibility.progression_criteria[{i}]"
        tp = c.get("timepoint") or ""
        arm = c.get("arm") or "all"
        direction = c.get("direction", "higher")
        hit = table[(table.indicator == c["indicator"]) & (table.timepoint.fillna("") == tp)
                    & (table.arm == arm)]
        if len(hit) != 1:
            avail = table[table.indicator == c["indicator"]][["timepoint", "arm"]].fillna("")
            avail = sorted({(t or "-", a) for t, a in avail.itertuples(index=False)})
            raise ValueError(f"{key}: no feasibility row for indicator {c['indicator']!r}, timepoint "
                             f"{tp or None!r}, arm {arm!r}; available (timepoint, arm): {avail or 'none'}")
        r = hit.iloc[0]
        if r.unit == "not collected":
            raise ValueError(f"{key}: indicator {c['indicator']!r} cannot be evaluated: {r.definition}")
        if (c["indicator"], tp, arm) in seen:
            raise ValueError(f"{key}: repeats criterion {seen[(c['indicator'], tp, arm)]} for the same row")
        seen[(c["indicator"], tp, arm)] = i
        denom = "months open" if r.unit == "participants per month" else denominator_of(c["indicator"])
        if c.get("denominator") and c["denominator"].strip().lower() != denom:
            raise ValueError(f"{key}: denominator {c['denominator']!r} differs from the one "
                             f"{c['indicator']!r} is computed over ({denom!r})")
        if r.unit == "proportion" and not (0 <= c["green"] <= 1 and 0 <= c["red"] <= 1):
            raise ValueError(f"{key}: thresholds of a proportion must lie in [0, 1] "
                             f"(green={c['green']}, red={c['red']})")
        try:
            b = band(float(r.estimate), c["green"], c["red"], direction)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
        t, p = red_threshold_test(r, c["red"], direction) if test else ("", np.nan)
        rows.append(dict(criterion=c.get("name") or c["indicator"], indicator=c["indicator"],
                         timepoint=tp, arm=arm, direction=direction, denominator_of=denom,
                         numerator=r.numerator, denominator=r.denominator, estimate=r.estimate,
                         ci_low=r.ci_low, ci_high=r.ci_high, ci_method=r.ci_method,
                         green=c["green"], red=c["red"], band=b, test=t, p_value_vs_red=p))
    return pd.DataFrame(rows, columns=PROGRESSION_COLUMNS)


def add_bands(table: pd.DataFrame, progression: pd.DataFrame) -> pd.DataFrame:
    """The feasibility table with a ``band`` column ('' where no criterion applies)."""
    out = table.copy()
    key = dict(((r.indicator, r.timepoint, r.arm), r.band) for r in progression.itertuples())
    out["band"] = [key.get((r.indicator, r.timepoint or "", r.arm), "")
                   for r in out.fillna({"timepoint": ""}).itertuples()]
    return out
