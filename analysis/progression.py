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

In a cluster design (``cluster=True``) each criterion reports the feasibility row's
cluster-aware interval (the ``*_cluster`` columns, which allow for between-site variation) and
the test is the one that interval inverts: for a proportion the exact binomial tail on the
Korn-Graubard effective sample size, P = I_r(x, n - x + 1) (``direction: higher``) or
1 - I_r(x + 1, n - x) (``lower``), with x = p n_eff and the regularised incomplete beta
function allowing non-integer counts; for the recruitment rate the quasi-Poisson t test on the
log scale, t = (log(rate) - log(r)) / SE on sites - 1 df.  The ``interval`` column says which
interval a criterion used; where the cluster-aware one is not estimable (e.g. fewer than two
sites) the simple interval and test are used and ``interval`` says why.  The band always uses
the point estimate, which is the same for both.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from analysis.feasibility import NOT_COLLECTED, denominator_of

GREEN, AMBER, RED, NOT_ESTIMABLE = "GREEN", "AMBER", "RED", "NOT ESTIMABLE"
DECISIONS = {
    GREEN: "go: proceed to the definitive trial",
    AMBER: "proceed with amendments",
    RED: "stop or reconsider",
    NOT_ESTIMABLE: "undetermined: at least one criterion could not be estimated",
}
PROGRESSION_COLUMNS = ["criterion", "indicator", "timepoint", "arm", "direction", "denominator_of",
                       "numerator", "denominator", "estimate", "ci_low", "ci_high", "ci_method",
                       "interval", "green", "red", "band", "test", "p_value_vs_red"]
SIMPLE, CLUSTER = "simple", "cluster-aware (allows for between-site variation)"


def band(estimate: float, green: float, red: float, direction: str = "higher") -> str:
    """Traffic-light band of one feasibility estimate against its progression criterion.

    Parameters
    ----------
    estimate : float
        The feasibility estimate (e.g. a retention proportion); None or NaN if not estimable.
    green, red : float
        Thresholds: GREEN at or beyond ``green``, RED beyond ``red`` on the wrong side, AMBER
        between.
    direction : {"higher", "lower"}
        Whether higher (e.g. retention) or lower (e.g. withdrawal) values are better; the
        thresholds must agree with it.

    Returns
    -------
    str
        "GREEN", "AMBER", "RED" or "NOT ESTIMABLE".

    References
    ----------
    Avery KNL, Williamson PR, Gamble C, et al. Informing efficient randomised controlled trials:
    exploration of challenges in developing progression criteria for internal pilot studies. BMJ
    Open 2017;7:e013537.

    Examples
    --------
    >>> from analysis.progression import band
    >>> band(0.72, green=0.8, red=0.6), band(0.85, green=0.8, red=0.6), band(0.5, green=0.8, red=0.6)
    ('AMBER', 'GREEN', 'RED')
    >>> band(0.15, green=0.1, red=0.2, direction="lower")
    'AMBER'
    """
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
    """Overall progression decision from the criteria's bands: the worst band decides.

    Parameters
    ----------
    bands : list of str
        One band per criterion (:func:`band`).

    Returns
    -------
    str or None
        Stop (any RED), not estimable, proceed with changes (any AMBER) or go; None when there are
        no criteria.

    References
    ----------
    Avery KNL, Williamson PR, Gamble C, et al. Informing efficient randomised controlled trials:
    exploration of challenges in developing progression criteria for internal pilot studies. BMJ
    Open 2017;7:e013537.

    Examples
    --------
    >>> from analysis.progression import AMBER, GREEN, decision
    >>> decision([GREEN, GREEN])
    'go: proceed to the definitive trial'
    >>> decision([]) is None
    True
    """
    if not bands:
        return None
    for b in (RED, NOT_ESTIMABLE, AMBER):
        if b in bands:
            return DECISIONS[b]
    return DECISIONS[GREEN]


def overall_band(bands: list[str]) -> str | None:
    """The worst of the criteria's bands (RED, then NOT ESTIMABLE, then AMBER, else GREEN).

    Parameters
    ----------
    bands : list of str
        One band per criterion (:func:`band`).

    Returns
    -------
    str or None
        The overall band; None when there are no criteria.

    References
    ----------
    Avery KNL, Williamson PR, Gamble C, et al. Informing efficient randomised controlled trials:
    exploration of challenges in developing progression criteria for internal pilot studies. BMJ
    Open 2017;7:e013537.

    Lewis M, Bromley K, Sutton CJ, McCray G, Myers HL, Lancaster GA. Determining sample size for
    progression criteria for pragmatic pilot RCTs: the hypothesis test strikes back! Pilot
    Feasibility Stud 2021;7:40.

    Examples
    --------
    >>> from analysis.progression import AMBER, GREEN, overall_band
    >>> overall_band([GREEN, AMBER]), overall_band([])
    ('AMBER', None)
    """
    if not bands:
        return None
    for b in (RED, NOT_ESTIMABLE, AMBER):
        if b in bands:
            return b
    return GREEN


def red_threshold_test(row, red: float, direction: str) -> tuple[str, float]:
    """One-sided exact test of a feasibility estimate against its RED threshold.

    H0: the true value is at the RED threshold or worse.  A proportion gets the exact binomial
    test, the recruitment rate the exact Poisson test on its site-months; other indicators no
    test.

    Parameters
    ----------
    row : row of the feasibility table
        indicator, unit, numerator and denominator (a named tuple or pandas Series).
    red : float
        The RED threshold.
    direction : {"higher", "lower"}
        Whether higher values are better.

    Returns
    -------
    tuple of (str, float)
        The test in words and its one-sided p-value; ("", NaN) when no test applies.

    References
    ----------
    Lewis M, Bromley K, Sutton CJ, McCray G, Myers HL, Lancaster GA. Determining sample size for
    progression criteria for pragmatic pilot RCTs: the hypothesis test strikes back! Pilot
    Feasibility Stud 2021;7:40.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.progression import red_threshold_test
    >>> row = pd.Series(dict(indicator="retention", unit="proportion", numerator=58, denominator=80))
    >>> test, p = red_threshold_test(row, 0.6, "higher")
    >>> test, round(p, 4)
    ('exact binomial, H0: p <= 0.6', 0.0136)
    """
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


def cluster_test(row, red: float, direction: str, level: float = 0.95) -> tuple[str, float]:
    """One-sided test against the RED threshold that the cluster-aware interval inverts.

    Recomputed from the row's estimate, counts, sites and design effect: for a proportion the
    exact binomial test on the Korn-Graubard effective sample size, for the recruitment rate the
    quasi-Poisson t test on the log rate (sites - 1 df).

    Parameters
    ----------
    row : row of the feasibility table
        indicator, unit, numerator, denominator, estimate, sites and design_effect.
    red : float
        The RED threshold.
    direction : {"higher", "lower"}
        Whether higher values are better.
    level : float
        The feasibility table's confidence level (it sets the effective sample size).

    Returns
    -------
    tuple of (str, float)
        The test in words and its one-sided p-value; ("", NaN) when no test applies.

    References
    ----------
    Lewis M, Bromley K, Sutton CJ, McCray G, Myers HL, Lancaster GA. Determining sample size for
    progression criteria for pragmatic pilot RCTs: the hypothesis test strikes back! Pilot
    Feasibility Stud 2021;7:40.

    Korn EL, Graubard BI. Confidence intervals for proportions with small expected number of
    positive counts estimated from survey data. Survey Methodology 1998;24:193-201.

    Examples
    --------
    Retention at four sites (as :func:`analysis.feasibility.cluster_proportion_ci`):

    >>> import pandas as pd
    >>> from analysis.feasibility import cluster_proportion_ci
    >>> from analysis.progression import cluster_test
    >>> c = cluster_proportion_ci([8, 12, 5, 10], [10, 15, 10, 12])
    >>> row = pd.Series(dict(indicator="retention", unit="proportion", numerator=35, denominator=47,
    ...                      estimate=c["estimate"], sites=c["sites"], design_effect=c["design_effect"]))
    >>> test, p = cluster_test(row, 0.6, "higher")
    >>> test, round(p, 4)
    ('exact binomial on the Korn-Graubard effective sample size (15.5), H0: p <= 0.6', 0.184)
    """
    op = "<=" if direction == "higher" else ">="
    if row.unit == "proportion":
        if not 0 <= red <= 1:
            raise ValueError(f"RED threshold {red} of a proportion must lie in [0, 1]")
        N, K, deff = float(row.denominator), int(row.sites), float(row.design_effect)
        a = 1 - level
        n_eff = N / deff * (stats.t.ppf(a / 2, N - 1) / stats.t.ppf(a / 2, K - 1)) ** 2
        x = float(row.estimate) * n_eff
        if direction == "higher":
            p = 1.0 if x <= 0 else float(stats.beta.cdf(red, x, n_eff - x + 1))
        else:
            p = 1.0 if x >= n_eff else float(stats.beta.sf(red, x + 1, n_eff - x))
        return (f"exact binomial on the Korn-Graubard effective sample size ({n_eff:.1f}), H0: p {op} {red:g}", p)
    if row.indicator == "recruitment_rate":
        K, phi = int(row.sites), float(row.design_effect)
        if red <= 0:
            return ("", np.nan)
        t = (math.log(float(row.estimate)) - math.log(red)) / math.sqrt(phi / float(row.numerator))
        p = stats.t.sf(t, K - 1) if direction == "higher" else stats.t.cdf(t, K - 1)
        return (f"quasi-Poisson t test on the log rate ({K - 1} df), H0: rate {op} {red:g}", float(p))
    return ("", np.nan)


def _has_cluster_interval(r) -> bool:
    ci = getattr(r, "ci_low_cluster", np.nan)
    return ci == ci and not str(getattr(r, "ci_method_cluster", "")).startswith("not estimable")


def evaluate(table: pd.DataFrame, criteria: list[dict], *, test: bool = False, cluster: bool = False,
             level: float = 0.95) -> pd.DataFrame:
    """Judge the progression criteria against the feasibility table.

    One row per criterion: the matched feasibility row, thresholds, band and optional test.

    Parameters
    ----------
    table : pandas.DataFrame
        The feasibility table (:func:`analysis.feasibility.feasibility_table`; columns
        ``FEASIBILITY_COLUMNS``).
    criteria : list of dict
        ``feasibility.progression_criteria``: indicator, optional timepoint, arm and name, green
        and red thresholds, optional direction.
    test : bool
        Add the one-sided test of each estimate against its RED threshold (Lewis 2021).
    cluster : bool
        Report the cluster-aware interval and test where the row has one (module docstring).
    level : float
        The feasibility table's confidence level (for the effective sample size).

    Returns
    -------
    pandas.DataFrame
        criterion, indicator, timepoint, arm, direction, denominator_of, numerator, denominator,
        estimate, ci_low, ci_high, ci_method, interval, green, red, band, and with ``test`` the
        test and p_value_vs_red.  Raises ValueError naming the criterion
        (``feasibility.progression_criteria[i]``) when it matches no row, states a different
        denominator, or repeats another criterion's row.

    References
    ----------
    Avery KNL, Williamson PR, Gamble C, et al. Informing efficient randomised controlled trials:
    exploration of challenges in developing progression criteria for internal pilot studies. BMJ
    Open 2017;7:e013537.

    Lewis M, Bromley K, Sutton CJ, McCray G, Myers HL, Lancaster GA. Determining sample size for
    progression criteria for pragmatic pilot RCTs: the hypothesis test strikes back! Pilot
    Feasibility Stud 2021;7:40.

    Examples
    --------
    58 of 80 participants retained at 9 months, against GREEN 80% and RED 60%:

    >>> import pandas as pd
    >>> from analysis.feasibility import FEASIBILITY_COLUMNS, proportion_ci
    >>> from analysis.progression import evaluate
    >>> est, lo, hi = proportion_ci(58, 80)
    >>> table = pd.DataFrame([dict(indicator="retention", timepoint="m9", arm="all", numerator=58, denominator=80,
    ...                            estimate=est, ci_low=lo, ci_high=hi, ci_method="wilson", unit="proportion")],
    ...                      columns=FEASIBILITY_COLUMNS)
    >>> r = evaluate(table, [dict(indicator="retention", timepoint="m9", green=0.8, red=0.6)], test=True).iloc[0]
    >>> r.band, round(float(r.ci_low), 3), r.test, round(float(r.p_value_vs_red), 4)
    ('AMBER', 0.619, 'exact binomial, H0: p <= 0.6', 0.0136)
    """
    rows, seen = [], {}
    for i, c in enumerate(criteria):
        key = f"config key feasibility.progression_criteria[{i}]"
        tp = c.get("timepoint") or ""
        arm = c.get("arm") or "all"
        direction = c.get("direction", "higher")
        r = _matched_row(table, c, key, tp, arm)
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
        lo, hi, how, interval = r.ci_low, r.ci_high, r.ci_method, SIMPLE
        use_cluster = cluster and _has_cluster_interval(r)
        if use_cluster:
            lo, hi, how, interval = r.ci_low_cluster, r.ci_high_cluster, r.ci_method_cluster, CLUSTER
        elif cluster:
            why = str(getattr(r, "ci_method_cluster", "") or "")
            interval = f"simple (cluster-aware interval {why})" if why else \
                "simple (no cluster-aware interval for this indicator)"
        t, p = _criterion_test(r, c, key, direction, use_cluster, level) if test else ("", np.nan)
        rows.append(dict(criterion=c.get("name") or c["indicator"], indicator=c["indicator"],
                         timepoint=tp, arm=arm, direction=direction, denominator_of=denom,
                         numerator=r.numerator, denominator=r.denominator, estimate=r.estimate,
                         ci_low=lo, ci_high=hi, ci_method=how, interval=interval,
                         green=c["green"], red=c["red"], band=b, test=t, p_value_vs_red=p))
    return pd.DataFrame(rows, columns=PROGRESSION_COLUMNS)


def _matched_row(table: pd.DataFrame, c: dict, key: str, tp: str, arm: str):
    """The one feasibility row a criterion judges (an error naming the rows there are, if none)."""
    hit = table[(table.indicator == c["indicator"]) & (table.timepoint.fillna("") == tp)
                & (table.arm == arm)]
    if len(hit) != 1:
        avail = table[table.indicator == c["indicator"]][["timepoint", "arm"]].fillna("")
        avail = sorted({(t or "-", a) for t, a in avail.itertuples(index=False)})
        raise ValueError(f"{key}: no feasibility row for indicator {c['indicator']!r}, timepoint "
                         f"{tp or None!r}, arm {arm!r}; available (timepoint, arm): {avail or 'none'}")
    r = hit.iloc[0]
    if r.unit == NOT_COLLECTED:
        raise ValueError(f"{key}: indicator {c['indicator']!r} cannot be evaluated: {r.definition}")
    return r


def _criterion_test(r, c: dict, key: str, direction: str, use_cluster: bool, level: float):
    """One-sided test of the estimate against the RED threshold (cluster-aware when its interval is)."""
    sites_are_units = c["indicator"] == "fidelity"  # counts sites: the simple test is the cluster one
    if use_cluster and not sites_are_units:
        try:
            return cluster_test(r, c["red"], direction, level)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
    return red_threshold_test(r, c["red"], direction)


def add_bands(table: pd.DataFrame, progression: pd.DataFrame) -> pd.DataFrame:
    """The feasibility table with a ``band`` column ('' where no criterion applies)."""
    out = table.copy()
    key = dict(((r.indicator, r.timepoint, r.arm), r.band) for r in progression.itertuples())
    out["band"] = [key.get((r.indicator, r.timepoint or "", r.arm), "")
                   for r in out.fillna({"timepoint": ""}).itertuples()]
    return out
