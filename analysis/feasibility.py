"""Feasibility outcomes: recruitment, consent, retention, completion and receipt, with CIs.

Methods (docs/methods.md §Feasibility):

* proportions use the Wilson score interval by default (Clopper–Pearson as an option), via
  ``statsmodels.stats.proportion.proportion_confint``;
* the recruitment rate is participants per site-month open, with the exact (Garwood) Poisson
  interval on the count divided by the exposure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

FEASIBILITY_COLUMNS = ["indicator", "timepoint", "arm", "numerator", "denominator", "estimate",
                       "ci_low", "ci_high", "ci_method", "unit", "definition"]
_SM_METHOD = {"wilson": "wilson", "clopper-pearson": "beta"}
DAYS_PER_MONTH = 365.25 / 12


def proportion_ci(k: int, n: int, method: str = "wilson", level: float = 0.95) -> tuple[float, float, float]:
    """Estimate and two-sided CI for a binomial proportion k/n (NaNs when n == 0)."""
    if method not in _SM_METHOD:
        raise ValueError(f"unknown CI method {method!r}; choose one of {sorted(_SM_METHOD)}")
    if n == 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = proportion_confint(k, n, alpha=1 - level, method=_SM_METHOD[method])
    return (k / n, float(lo), float(hi))


def poisson_rate_ci(count: int, exposure: float, level: float = 0.95) -> tuple[float, float, float]:
    """Exact (Garwood) CI for a Poisson rate count/exposure."""
    if exposure <= 0:
        return (np.nan, np.nan, np.nan)
    a = 1 - level
    lo = 0.0 if count == 0 else stats.chi2.ppf(a / 2, 2 * count) / 2
    hi = stats.chi2.ppf(1 - a / 2, 2 * count + 2) / 2
    return (count / exposure, lo / exposure, hi / exposure)


def site_months(sites: pd.DataFrame) -> pd.Series:
    """Months each site was open to recruitment (inclusive of both end dates)."""
    days = (sites.recruitment_end - sites.recruitment_start).dt.days + 1
    return pd.Series(days.to_numpy() / DAYS_PER_MONTH, index=sites.site_id.to_numpy())


def feasibility_table(sites: pd.DataFrame, participants: pd.DataFrame, screening: pd.DataFrame,
                      linked: pd.DataFrame, *, primary_outcome: str, arms: list[str],
                      intervention_arm: str, ci_method: str = "wilson", level: float = 0.95,
                      recruitment_target: int | None = None) -> pd.DataFrame:
    """The tidy feasibility table (one row per indicator x time point x arm)."""
    rows = []
    method_label = {"wilson": "Wilson score", "clopper-pearson": "Clopper-Pearson exact"}[ci_method]

    def prop(indicator, k, n, definition, timepoint="", arm="all"):
        est, lo, hi = proportion_ci(int(k), int(n), ci_method, level)
        rows.append(dict(indicator=indicator, timepoint=timepoint, arm=arm, numerator=int(k),
                         denominator=int(n), estimate=est, ci_low=lo, ci_high=hi,
                         ci_method=method_label, unit="proportion", definition=definition))

    n_screened = len(screening)
    n_eligible = int(screening.eligible.sum())
    n_consented = int((screening.consented == True).sum())  # noqa: E712 (nullable boolean)
    prop("eligibility", n_eligible, n_screened, "eligible / screened")
    prop("consent", n_consented, n_eligible, "consented / eligible")

    n_alloc = len(participants)
    exposure = float(site_months(sites).sum())
    est, lo, hi = poisson_rate_ci(n_alloc, exposure, level)
    rows.append(dict(indicator="recruitment_rate", timepoint="", arm="all", numerator=n_alloc,
                     denominator=exposure, estimate=est, ci_low=lo, ci_high=hi,
                     ci_method="exact Poisson (Garwood)", unit="participants per site-month",
                     definition="participants recruited / site-months open to recruitment"))
    if recruitment_target:
        rows.append(dict(indicator="recruitment_vs_target", timepoint="", arm="all",
                         numerator=n_alloc, denominator=int(recruitment_target),
                         estimate=n_alloc / recruitment_target, ci_low=np.nan, ci_high=np.nan,
                         ci_method="", unit="ratio", definition="participants recruited / target"))

    tps = list(linked.timepoint.cat.categories)
    for tp in tps[1:]:
        at = linked[linked.timepoint == tp]
        for arm in ["all"] + arms:
            sub = at if arm == "all" else at[at.arm == arm]
            prop("retention", sub.assessed.sum(), len(sub),
                 "participants assessed at this time point / participants allocated", tp, arm)
    for tp in tps:
        at = linked[linked.timepoint == tp]
        prop(f"completion_{primary_outcome}", at[primary_outcome].notna().sum(), len(at),
             f"participants with a scorable {primary_outcome} / participants allocated", tp)

    treated = participants[participants.arm == intervention_arm]
    if "sessions_attended" in treated and len(treated):
        received = (treated.sessions_attended.fillna(0) > 0).sum()
        prop("intervention_receipt", received, len(treated),
             "intervention-arm participants attending >= 1 session / allocated to intervention",
             arm=intervention_arm)
    withdrawn = participants.withdrawal_date.notna().sum()
    prop("withdrawal", withdrawn, n_alloc, "participants withdrawn / participants allocated")
    return pd.DataFrame(rows, columns=FEASIBILITY_COLUMNS)


def recruitment_by_site(sites: pd.DataFrame, participants: pd.DataFrame,
                        level: float = 0.95) -> pd.DataFrame:
    """Participants, site-months open and recruitment rate (exact Poisson CI) per site."""
    months = site_months(sites)
    counts = participants.groupby("site_id").size().reindex(sites.site_id, fill_value=0)
    rows = []
    for _, s in sites.iterrows():
        est, lo, hi = poisson_rate_ci(int(counts[s.site_id]), float(months[s.site_id]), level)
        rows.append(dict(site_id=s.site_id, arm=s.arm, client_group=s.client_group,
                         recruited=int(counts[s.site_id]), site_months=float(months[s.site_id]),
                         rate_per_month=est, ci_low=lo, ci_high=hi))
    return pd.DataFrame(rows)


def flow_counts(screening: pd.DataFrame, participants: pd.DataFrame, linked: pd.DataFrame,
                arms: list[str]) -> pd.DataFrame:
    """Disposition counts by stage and arm (the numbers behind a CONSORT flow)."""
    rows = [dict(stage="screened", arm="all", timepoint="", n=len(screening)),
            dict(stage="eligible", arm="all", timepoint="", n=int(screening.eligible.sum())),
            dict(stage="consented", arm="all", timepoint="", n=int((screening.consented == True).sum()))]  # noqa: E712
    for arm in arms:
        p = participants[participants.arm == arm]
        rows.append(dict(stage="allocated", arm=arm, timepoint="", n=len(p)))
        rows.append(dict(stage="withdrawn", arm=arm, timepoint="", n=int(p.withdrawal_date.notna().sum())))
        for tp in linked.timepoint.cat.categories:
            at = linked[(linked.timepoint == tp) & (linked.arm == arm)]
            rows.append(dict(stage="assessed", arm=arm, timepoint=str(tp), n=int(at.assessed.sum())))
    return pd.DataFrame(rows)
