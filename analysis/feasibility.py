"""Feasibility outcomes: disposition counts, recruitment, consent, retention, completion,
receipt, adherence and fidelity, with CIs.

Methods (docs/methods.md §Feasibility):

* proportions use the Wilson score interval by default (Clopper–Pearson as an option), via
  ``statsmodels.stats.proportion.proportion_confint``;
* the recruitment rate is participants per site-month open, with the exact (Garwood) Poisson
  interval on the count divided by the exposure;
* in a cluster design every participant-level proportion and the recruitment rate also get an
  interval that allows for between-site variation (columns ``*_cluster``): Korn-Graubard for
  proportions (:func:`cluster_proportion_ci`) and quasi-Poisson for the site recruitment rate
  (:func:`cluster_rate_ci`), with sites as the units of variation;
* the disposition of every allocated participant at every time point is one of *assessed*
  (questionnaire returned), *withdrawn* (withdrawal dated on or before the time point's
  scheduled date, and not assessed) or *lost* (neither), so the three always add up to the
  number allocated.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analysis import DAYS_PER_MONTH

FEASIBILITY_COLUMNS = ["indicator", "timepoint", "arm", "numerator", "denominator", "estimate",
                       "ci_low", "ci_high", "ci_method", "unit", "definition",
                       "ci_low_cluster", "ci_high_cluster", "ci_method_cluster", "sites", "design_effect"]
KORN_GRAUBARD = ("Korn-Graubard: Clopper-Pearson on the effective sample size, sites as clusters, "
                 "t on sites - 1 df")
QUASI_POISSON = "quasi-Poisson over site-months: Pearson dispersion, t on sites - 1 df, log scale"
FLOW_COLUMNS = ["stage", "arm", "site_id", "timepoint", "measure", "reason", "n"]
_SM_METHOD = {"wilson": "wilson", "clopper-pearson": "beta"}
NOT_RECORDED = "reason not recorded"
UNDECLARED = "other reason (not on the declared list)"

# The denominator of every indicator (progression criteria may state it; it is checked).
DENOMINATORS = {
    "eligibility": "screened", "consent": "eligible", "recruitment_rate": "site-months open",
    "recruitment_vs_target": "target", "retention": "allocated", "completion": "allocated",
    "intervention_receipt": "allocated to intervention with attendance recorded",
    "adherence": "allocated to intervention with attendance recorded",
    "fidelity": "intervention sites", "withdrawal": "allocated",
}


def denominator_of(indicator: str) -> str:
    """The denominator an indicator is computed over (see ``DENOMINATORS``)."""
    key = "completion" if indicator.startswith("completion_") else indicator
    if key not in DENOMINATORS:
        raise KeyError(f"unknown feasibility indicator {indicator!r}; known: "
                       f"{sorted(DENOMINATORS)} and completion_<measure>")
    return DENOMINATORS[key]


def proportion_ci(k: int, n: int, method: str = "wilson", level: float = 0.95) -> tuple[float, float, float]:
    """Estimate and two-sided confidence interval for a binomial proportion k/n.

    Parameters
    ----------
    k : int
        Number of events (e.g. people consenting).
    n : int
        Number of trials (e.g. people eligible).
    method : {"wilson", "clopper-pearson"}
        Wilson's score interval (default) or the exact Clopper-Pearson interval.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        (estimate, ci_low, ci_high); NaNs when ``n`` is 0.  The limits at k = 0 and k = n are
        exactly 0 and 1.

    References
    ----------
    Wilson EB. Probable inference, the law of succession, and statistical inference. J Am Stat
    Assoc 1927;22:209-212.

    Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of
    the binomial. Biometrika 1934;26:404-413.

    Examples
    --------
    12 of 40 eligible people consent:

    >>> from analysis.feasibility import proportion_ci
    >>> [round(x, 4) for x in proportion_ci(12, 40)]
    [0.3, 0.1807, 0.4543]
    >>> [round(x, 4) for x in proportion_ci(12, 40, method="clopper-pearson")]
    [0.3, 0.1656, 0.4653]
    """
    if method not in _SM_METHOD:
        raise ValueError(f"unknown CI method {method!r}; choose one of {sorted(_SM_METHOD)}")
    if n == 0:
        return (np.nan, np.nan, np.nan)
    lo, hi = proportion_confint(k, n, alpha=1 - level, method=_SM_METHOD[method])
    # the limits at k = 0 and k = n are exactly 0 and 1; floating point can miss them by ~1e-16
    return (k / n, 0.0 if k == 0 else float(lo), 1.0 if k == n else float(hi))


def poisson_rate_ci(count: int, exposure: float, level: float = 0.95) -> tuple[float, float, float]:
    """Exact (Garwood) confidence interval for a Poisson rate count/exposure.

    Parameters
    ----------
    count : int
        Number of events (e.g. participants recruited).
    exposure : float
        Exposure over which they happened (e.g. site-months of recruitment).
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        (rate, ci_low, ci_high), from chi-square quantiles; NaNs when ``exposure`` is not positive.

    References
    ----------
    Garwood F. Fiducial limits for the Poisson distribution. Biometrika 1936;28:437-442.

    Examples
    --------
    30 participants recruited over 12 site-months:

    >>> from analysis.feasibility import poisson_rate_ci
    >>> [round(float(x), 4) for x in poisson_rate_ci(30, 12.0)]
    [2.5, 1.6867, 3.5689]
    """
    if exposure <= 0:
        return (np.nan, np.nan, np.nan)
    a = 1 - level
    lo = 0.0 if count == 0 else stats.chi2.ppf(a / 2, 2 * count) / 2
    hi = stats.chi2.ppf(1 - a / 2, 2 * count + 2) / 2
    return (count / exposure, lo / exposure, hi / exposure)


def cluster_proportion_ci(k, n, level: float = 0.95) -> dict:
    """Proportion over sites with an interval that allows for between-site variation.

    The estimate is sum(k)/sum(n), with a Korn-Graubard interval, as R's
    ``survey::svyciprop(method = "beta")`` for a design with sites as clusters.  The variance of
    the pooled (ratio) estimate p is the with-replacement cluster estimate
    v = K/(K-1) sum_j ((k_j - p n_j) / N)^2 over the K sites; the design effect is
    d = v / (p(1-p)/N) and the effective sample size N/d, multiplied by (t_{N-1} / t_{K-1})^2 at
    the interval's tail probability so that the interval reflects the K - 1 degrees of freedom of
    v.  The interval is Clopper-Pearson's (beta quantiles) for p x n_eff events in n_eff trials,
    non-integer counts allowed.  When every site has the same proportion (p = 0 or 1 included) v
    is 0 and the between-site variation cannot be estimated: the design effect is taken as 1.

    Parameters
    ----------
    k, n : array-like
        Events and denominators per site (sites with n = 0 are left out).
    level : float
        Confidence level.

    Returns
    -------
    dict
        estimate, ci_low, ci_high, method (text for the report), sites, design_effect and n_eff
        (df-adjusted).  Fewer than two sites: no interval (NaN) and the method says why.

    References
    ----------
    Korn EL, Graubard BI. Confidence intervals for proportions with small expected number of
    positive counts estimated from survey data. Survey Methodology 1998;24:193-201.

    Examples
    --------
    Retention at four sites:

    >>> from analysis.feasibility import cluster_proportion_ci
    >>> r = cluster_proportion_ci([8, 12, 5, 10], [10, 15, 10, 12])
    >>> round(r["estimate"], 4), round(r["ci_low"], 4), round(r["ci_high"], 4), round(r["design_effect"], 3)
    (0.7447, 0.4661, 0.9262, 1.211)
    """
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    keep = n > 0
    k, n = k[keep], n[keep]
    K, N = len(n), float(n.sum())
    out = dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, method=KORN_GRAUBARD, sites=K,
               design_effect=np.nan, n_eff=np.nan)
    if N == 0:
        return out
    p = float(k.sum()) / N
    out["estimate"] = p
    if K < 2:
        out["method"] = "not estimable: fewer than two sites contribute (no between-site variation)"
        return out
    v = K / (K - 1) * float(np.sum(((k - p * n) / N) ** 2))
    if 0 < p < 1 and v > 0:
        deff = v / (p * (1 - p) / N)
    else:
        deff = 1.0
        out["method"] = KORN_GRAUBARD + " (every site has the same proportion: design effect taken as 1)"
    a = 1 - level
    n_eff = N / deff * (stats.t.ppf(a / 2, N - 1) / stats.t.ppf(a / 2, K - 1)) ** 2
    x = p * n_eff
    lo = 0.0 if k.sum() == 0 else float(stats.beta.ppf(a / 2, x, n_eff - x + 1))
    hi = 1.0 if k.sum() == N else float(stats.beta.ppf(1 - a / 2, x + 1, n_eff - x))
    out.update(ci_low=lo, ci_high=hi, design_effect=float(deff), n_eff=float(n_eff))
    return out


def cluster_rate_ci(counts, exposure, level: float = 0.95) -> dict:
    """Rate over sites with an interval that allows for between-site variation.

    The estimate is sum(counts)/sum(exposure); the interval comes from the quasi-Poisson model
    log E[y_j] = log(t_j) + log(rate), Var(y_j) = phi E[y_j] (R's
    ``glm(y ~ 1 + offset(log(t)), family = quasipoisson)``).  phi is the Pearson statistic over
    K - 1 degrees of freedom, the standard error of log(rate) is sqrt(phi / sum(y)), and the
    interval is exp(log(rate) +/- t_{K-1} SE).

    Parameters
    ----------
    counts, exposure : array-like
        Events and exposure per site (e.g. participants recruited and site-months); sites with no
        exposure are left out.
    level : float
        Confidence level.

    Returns
    -------
    dict
        estimate, ci_low, ci_high, method (text for the report), sites, design_effect (= phi) and
        se_log.  With no events the log scale is undefined and with fewer than two sites phi cannot
        be estimated: no interval (NaN) and the method says why.

    References
    ----------
    McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. London: Chapman and Hall, 1989,
    section 6.2.

    Examples
    --------
    Recruitment at four sites over 17 site-months:

    >>> from analysis.feasibility import cluster_rate_ci
    >>> r = cluster_rate_ci([10, 14, 6, 12], [4.0, 5.0, 3.5, 4.5])
    >>> round(r["estimate"], 4), round(r["ci_low"], 4), round(r["ci_high"], 4), round(r["design_effect"], 3)
    (2.4706, 1.8348, 3.3267, 0.367)
    """
    y = np.asarray(counts, float)
    t = np.asarray(exposure, float)
    keep = t > 0
    y, t = y[keep], t[keep]
    K, Y, T = len(t), float(y.sum()), float(t.sum())
    out = dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, method=QUASI_POISSON, sites=K,
               design_effect=np.nan, se_log=np.nan)
    if T <= 0:
        return out
    rate = Y / T
    out["estimate"] = rate
    if K < 2:
        out["method"] = "not estimable: fewer than two sites with a recruitment window"
        return out
    if Y == 0:
        out["method"] = "not estimable: nobody recruited (the quasi-Poisson interval needs events)"
        return out
    mu = rate * t
    phi = float(np.sum((y - mu) ** 2 / mu)) / (K - 1)
    se = math.sqrt(phi / Y)
    q = stats.t.ppf(0.5 + level / 2, K - 1)
    out.update(ci_low=rate * math.exp(-q * se), ci_high=rate * math.exp(q * se),
               design_effect=phi, se_log=se)
    return out


def site_months(sites: pd.DataFrame) -> pd.Series:
    """Months each site was open to recruitment (inclusive of both end dates)."""
    days = (sites.recruitment_end - sites.recruitment_start).dt.days + 1
    return pd.Series(days.to_numpy() / DAYS_PER_MONTH, index=sites.site_id.to_numpy())


def study_arms(participants: pd.DataFrame, control_arm: str, intervention_arm: str,
               single_arm: bool = False) -> list[str]:
    """Arms present among the participants, in the order control, intervention (one arm in a
    single-arm study: the flow then has no allocation split).  An arm code that is neither
    configured arm is an error (ingest has refused it already)."""
    if single_arm:
        return [intervention_arm]
    present = list(dict.fromkeys(participants.arm.dropna().astype(str)))
    unknown = [a for a in present if a not in (control_arm, intervention_arm)]
    if unknown:
        raise ValueError(f"participants: arm {unknown[0]!r} is neither design.control_arm "
                         f"({control_arm!r}) nor design.intervention_arm ({intervention_arm!r})")
    return [a for a in (control_arm, intervention_arm) if a in present]


def score_measures(linked: pd.DataFrame, measures: list[str] | None = None) -> list[str]:
    """The measures assessed for each objective: configured, or every numeric score with a baseline."""
    available = [c[:-3] for c in linked.columns if c.endswith("_bl") and c[:-3] in linked.columns]
    if measures is None:
        return available
    missing = [m for m in measures if m not in linked.columns]
    if missing:
        raise ValueError(f"config key feasibility.measures: {missing[0]!r} is not a score column of the "
                         f"linked table (available: {available})")
    return list(measures)


def _is_true(s: pd.Series) -> pd.Series:
    return s.astype("boolean").fillna(False).astype(bool)


def reason_counts(reasons: pd.Series, declared: list[str] | None) -> list[tuple[str, int]]:
    """Counts per reason.  With a declared list: every declared reason in its order (n = 0
    included), then undeclared reasons pooled, then missing reasons.  Without one: the
    reasons seen, most frequent first (ties alphabetically), then missing reasons."""
    r = reasons.astype("string").str.strip()
    missing = int((r.isna() | (r == "")).sum())
    seen = r[r.notna() & (r != "")].value_counts()
    if declared is None:
        out = sorted(((str(k), int(v)) for k, v in seen.items()), key=lambda kv: (-kv[1], kv[0]))
    else:
        out = [(d, int(seen.get(d, 0))) for d in declared]
        other = int(seen[~seen.index.isin(declared)].sum())
        if other:
            out.append((UNDECLARED, other))
    if missing:
        out.append((NOT_RECORDED, missing))
    return out


def scheduled_status(participants: pd.DataFrame, linked: pd.DataFrame) -> pd.DataFrame:
    """Per participant x time point: assessed / withdrawn / lost.

    The scheduled date of a time point is the baseline visit date (consent date if there was no
    baseline visit) plus ``month`` months of 365.25/12 days.  A participant not assessed at a
    time point counts as *withdrawn* there if their withdrawal is dated on or before that
    scheduled date, otherwise as *lost*.  When the scheduled date cannot be known (no visit or
    consent date, or the time point's month is not known) a participant who withdrew at any
    time and was not assessed counts as withdrawn.
    """
    tps = list(linked.timepoint.cat.categories)
    base = linked[linked.timepoint == tps[0]].set_index("participant_id").visit_date
    p = participants.set_index("participant_id")
    anchor = base.reindex(p.index).fillna(p.consent_date)
    lk = linked[["participant_id", "timepoint", "month", "arm", "site_id", "assessed"]].copy()
    lk["scheduled"] = anchor.reindex(lk.participant_id).to_numpy() + pd.to_timedelta(
        lk.month.to_numpy() * DAYS_PER_MONTH, unit="D")
    wd = pd.Series(p.withdrawal_date.reindex(lk.participant_id).to_numpy(), index=lk.index)
    lk["withdrawal_reason"] = p.withdrawal_reason.reindex(lk.participant_id).to_numpy()
    sched = lk.scheduled
    withdrawn_by = wd.notna() & (sched.isna() | (wd <= sched))
    lk["status"] = np.where(lk.assessed, "assessed", np.where(withdrawn_by, "withdrawn", "lost"))
    return lk


def disposition(sites: pd.DataFrame, participants: pd.DataFrame, screening: pd.DataFrame | None,
                linked: pd.DataFrame, *, arms: list[str], intervention_arm: str | None,
                measures: list[str], reasons: dict | None = None,
                receipt_min_sessions: int = 1, cluster: bool = True,
                collected: dict[str, bool] | None = None) -> pd.DataFrame:
    """Every count of the CONSORT pilot flow, tidy: stage, arm, site_id, timepoint, measure,
    reason, n (``"all"`` / ``""`` where a column does not apply).

    Stages: screened, not_eligible (+ reasons), eligible, declined (+ reasons), consented (only
    with a screening log; otherwise ``enrolled``), allocated (by arm and by site),
    allocated_sites (cluster designs), received / not_received / receipt_unknown (intervention
    arm, when attendance was recorded; ``sessions >= receipt_min_sessions``), and per time point:
    assessed, withdrawn (+ reasons; only when withdrawals are recorded), lost, assessed_sites
    (cluster designs: sites with at least one participant assessed) and assessed_measure (per
    measure: a scorable value).  Stages whose data were not collected are
    absent, never zero.
    """
    reasons = reasons or {}
    collected = collected or {}
    rows = []

    def add(stage, n, arm="all", site="all", tp="", measure="", reason=""):
        rows.append(dict(stage=stage, arm=arm, site_id=site, timepoint=tp, measure=measure,
                         reason=reason, n=int(n)))

    if screening is not None and len(screening.columns) and collected.get("screening", True):
        # people are screened before allocation: only in a cluster design does the site give an arm
        site_arm = sites.set_index("site_id").arm if cluster else None
        sc = screening.assign(arm=screening.site_id.map(site_arm) if cluster else "all")
        groups = [("all", "all", sc)]
        if cluster:
            groups += [(a, "all", sc[sc.arm == a]) for a in arms]
        groups += [(site_arm[s] if cluster else "all", s, sc[sc.site_id == s]) for s in sites.site_id]
        for arm, site, g in groups:
            elig = g[_is_true(g.eligible)]
            add("screened", len(g), arm, site)
            add("not_eligible", len(g) - len(elig), arm, site)
            add("eligible", len(elig), arm, site)
            consented = _is_true(elig.consented)
            add("declined", (~consented).sum(), arm, site)
            add("consented", consented.sum(), arm, site)
            if arm == "all" and site == "all":
                for r, n in reason_counts(g.loc[~_is_true(g.eligible), "exclusion_reason"], reasons.get("exclusion")):
                    add("not_eligible", n, reason=r)
                for r, n in reason_counts(elig.loc[~consented, "decline_reason"], reasons.get("decline")):
                    add("declined", n, reason=r)
    else:
        add("enrolled", len(participants))

    sessions_known = collected.get("sessions_attended", True)
    for arm in arms:
        p = participants[participants.arm == arm]
        add("allocated", len(p), arm)
        if cluster:
            add("allocated_sites", (sites.arm == arm).sum(), arm)
        for s in (sites.site_id[sites.arm == arm] if cluster else sites.site_id):
            add("allocated", (p.site_id == s).sum(), arm, s)
        if arm == intervention_arm and sessions_known:
            sess = p.sessions_attended
            known = sess.notna()
            got = known & (sess.fillna(0) >= receipt_min_sessions)
            add("received", got.sum(), arm)
            add("not_received", (known & ~got).sum(), arm)
            if (~known).any():
                add("receipt_unknown", (~known).sum(), arm)

    withdrawal = collected.get("withdrawal_date", True)
    status = scheduled_status(participants, linked)
    for tp in linked.timepoint.cat.categories:
        st = status[status.timepoint == tp]
        for arm in arms:
            a = st[st.arm == arm]
            if withdrawal:
                for s in ("assessed", "withdrawn", "lost"):
                    add(s, (a.status == s).sum(), arm, tp=str(tp))
                for r, n in reason_counts(a.loc[a.status == "withdrawn", "withdrawal_reason"],
                                          reasons.get("withdrawal")):
                    add("withdrawn", n, arm, tp=str(tp), reason=r)
            else:
                add("assessed", (a.status == "assessed").sum(), arm, tp=str(tp))
                add("lost", (a.status != "assessed").sum(), arm, tp=str(tp))
            if cluster:  # CONSORT cluster extension: sites still contributing at each time point
                add("assessed_sites", a.loc[a.status == "assessed", "site_id"].dropna().nunique(), arm, tp=str(tp))
            sub = linked[(linked.timepoint == tp) & (linked.arm == arm)]
            for m in measures:
                add("assessed_measure", sub[m].notna().sum(), arm, tp=str(tp), measure=m)
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)


def flow_n(flow: pd.DataFrame, stage: str, arm: str = "all", site_id: str = "all", timepoint: str = "",
           measure: str = "", reason: str = "") -> int:
    """One count from a disposition table (KeyError if absent)."""
    hit = flow[(flow.stage == stage) & (flow.arm == arm) & (flow.site_id == site_id)
               & (flow.timepoint == timepoint) & (flow.measure == measure) & (flow.reason == reason)]
    if len(hit) != 1:
        raise KeyError(f"no single disposition count for {stage}/{arm}/{site_id}/{timepoint}/{measure}/{reason}")
    return int(hit.n.iloc[0])


NOT_COLLECTED = "not collected"


def feasibility_table(sites: pd.DataFrame, participants: pd.DataFrame, screening: pd.DataFrame | None,
                      linked: pd.DataFrame, *, primary_outcome: str, arms: list[str],
                      intervention_arm: str | None, ci_method: str = "wilson", level: float = 0.95,
                      recruitment_target: int | None = None, measures: list[str] | None = None,
                      receipt_min_sessions: int = 1, adherence_min_sessions: int | None = None,
                      fidelity: pd.DataFrame | None = None,
                      fidelity_threshold: float | None = None,
                      collected: dict[str, bool] | None = None,
                      recruitment_period: dict | None = None, single_arm: bool = False,
                      cluster: bool = False) -> pd.DataFrame:
    """The tidy feasibility table: one row per indicator x time point x arm, each with its CI.

    Indicators: eligibility and consent (screening log), recruitment rate per site-month (exact
    Poisson, :func:`poisson_rate_ci`), retention and completion of each measure per follow-up,
    intervention receipt and adherence (sessions attended), fidelity (sites reaching the
    threshold) and withdrawal; proportions with :func:`proportion_ci`.

    An indicator whose data the trial did not collect (``collected``, from ingest) gets one row
    with no numbers, ``unit`` = ``not collected`` and the reason in ``definition``; it is never
    computed from defaults.  A single-arm study's rows are all ``arm`` = ``all`` (one group).

    Parameters
    ----------
    sites, participants, screening, linked : pandas.DataFrame
        Ingest's sites, participants and screening log (None if not kept) and the linked
        analysis table (one row per participant x time point).
    primary_outcome : str
        Score column whose completion defines retention.
    arms : list of str
        Arms in display order (:func:`study_arms`).
    intervention_arm : str or None
        Arm whose receipt, adherence and fidelity are reported (None: not reported, e.g. blinded).
    ci_method : {"wilson", "clopper-pearson"}
        Interval for proportions.
    level : float
        Confidence level.
    recruitment_target : int, optional
        Target sample size (recruited / target is reported).
    measures : list of str, optional
        Score columns whose completion is reported (default: the primary outcome).
    receipt_min_sessions, adherence_min_sessions : int
        Sessions attended that count as receipt and as adherence (None: no adherence row).
    fidelity : pandas.DataFrame, optional
        Fidelity assessments per site, with ``fidelity_threshold`` the score that counts as
        faithful delivery.
    collected : dict, optional
        Ingest's record of which optional inputs the trial collected.
    recruitment_period : dict, optional
        ``feasibility.recruitment_period`` (start, end), when sites carry no recruitment window.
    single_arm : bool
        A single-arm study (no allocation).
    cluster : bool
        A cluster-randomised design: every participant-level proportion and the recruitment rate
        also get the interval that allows for between-site variation (ci_low_cluster,
        ci_high_cluster, ci_method_cluster, sites, design_effect: :func:`cluster_proportion_ci`,
        :func:`cluster_rate_ci`); the fidelity indicator counts sites, so its cluster-aware
        interval is the simple one.  Elsewhere those columns are empty.

    Returns
    -------
    pandas.DataFrame
        Columns ``FEASIBILITY_COLUMNS``: indicator, timepoint, arm, numerator, denominator,
        estimate, ci_low, ci_high, ci_method, unit, definition and the cluster-aware columns.

    References
    ----------
    Eldridge SM, Chan CL, Campbell MJ, et al. CONSORT 2010 statement: extension to randomised
    pilot and feasibility trials. BMJ 2016;355:i5239.

    Examples
    --------
    The committed demo trial (twelve sites, randomised by site):

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> from analysis.feasibility import feasibility_table
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> table = feasibility_table(t["sites"], t["participants"], t["screening"], t["linked"],
    ...                           primary_outcome="wemwbs_total", arms=["control", "intervention"],
    ...                           intervention_arm="intervention", cluster=True)
    >>> table.indicator.unique().tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['eligibility', 'consent', 'recruitment_rate', 'retention', 'completion_wemwbs_total',
     'intervention_receipt', 'withdrawal']
    >>> retention = table[(table.indicator == "retention") & (table.arm == "all")]
    >>> print(retention[["timepoint", "numerator", "denominator", "estimate", "ci_low", "ci_high", "ci_low_cluster",
    ...                  "ci_high_cluster"]].round(3).to_string(index=False))
    timepoint  numerator  denominator  estimate  ci_low  ci_high  ci_low_cluster  ci_high_cluster
           m3        142        160.0     0.888   0.829    0.928           0.807            0.943
           m9        109        160.0     0.681   0.606    0.748           0.559            0.788
    """
    collected = collected or {}
    r = _Rows(ci_method, level, cluster)
    measures = measures if measures is not None else [primary_outcome]
    _screening_rows(r, screening, collected)
    _recruitment_rows(r, sites, participants, collected, recruitment_period, recruitment_target)
    groups = ["all"] + arms if len(arms) > 1 else (["all"] if single_arm else arms)
    _retention_rows(r, linked, groups, measures)
    treated = participants[participants.arm == intervention_arm] if intervention_arm else participants.iloc[0:0]
    if intervention_arm in arms and len(treated):
        iarm = "all" if single_arm else intervention_arm
        who = "participants" if single_arm else "intervention-arm participants"
        _delivery_rows(r, treated, collected, iarm, who, receipt_min_sessions, adherence_min_sessions)
        if fidelity is not None and fidelity_threshold is not None:
            _fidelity_row(r, sites, fidelity, fidelity_threshold, intervention_arm, iarm)
    if collected.get("withdrawal_date", True):
        withdrawn = participants.withdrawal_date.notna().sum()
        r.prop("withdrawal", withdrawn, len(participants), "participants withdrawn / participants allocated",
               by_site=lambda: (participants.withdrawal_date.notna(), participants.site_id))
    else:
        r.absent("withdrawal", "no withdrawal_date column in the participants file")
    out = pd.DataFrame(r.rows, columns=FEASIBILITY_COLUMNS)
    out["ci_method_cluster"] = out.ci_method_cluster.astype(object).fillna("")
    return out


class _Rows:
    """The feasibility table's rows as they are built, with the interval settings they share."""

    def __init__(self, ci_method: str, level: float, cluster: bool):
        self.rows: list[dict] = []
        self.ci_method, self.level, self.cluster = ci_method, level, cluster
        self.method_label = {"wilson": "Wilson score", "clopper-pearson": "Clopper-Pearson exact"}[ci_method]

    def prop(self, indicator, k, n, definition, timepoint="", arm="all", by_site=None):
        """Add a proportion row; by_site: a function giving (hit, site) over the denominator's members,
        for the cluster interval (called only in a cluster design: other designs need no site column)."""
        est, lo, hi = proportion_ci(int(k), int(n), self.ci_method, self.level)
        row = dict(indicator=indicator, timepoint=timepoint, arm=arm, numerator=int(k),
                   denominator=int(n), estimate=est, ci_low=lo, ci_high=hi,
                   ci_method=self.method_label, unit="proportion", definition=definition)
        if self.cluster and by_site is not None:
            hit, site = by_site()
            g = pd.DataFrame({"hit": np.asarray(hit, bool), "site": np.asarray(site)}).groupby("site").hit
            c = cluster_proportion_ci(g.sum().to_numpy(), g.size().to_numpy(), self.level)
            row.update(ci_low_cluster=c["ci_low"], ci_high_cluster=c["ci_high"],
                       ci_method_cluster=c["method"], sites=c["sites"], design_effect=c["design_effect"])
        self.rows.append(row)

    def absent(self, indicator, why, arm="all"):
        """Add the row of an indicator whose data the trial did not collect."""
        self.rows.append(dict(indicator=indicator, timepoint="", arm=arm, numerator=np.nan, denominator=np.nan,
                              estimate=np.nan, ci_low=np.nan, ci_high=np.nan, ci_method="", unit=NOT_COLLECTED,
                              definition=f"not collected: {why}"))


def _screening_rows(r: _Rows, screening: pd.DataFrame | None, collected: dict) -> None:
    """Eligibility and consent rows from the screening log (or their not-collected rows)."""
    if collected.get("screening", True) and screening is not None:
        n_screened = len(screening)
        eligible = _is_true(screening.eligible)
        n_eligible = int(eligible.sum())
        n_consented = int((eligible & _is_true(screening.consented)).sum())
        consented = eligible & _is_true(screening.consented)
        r.prop("eligibility", n_eligible, n_screened, "eligible / screened",
               by_site=lambda: (eligible, screening.site_id))
        r.prop("consent", n_consented, n_eligible, "consented / eligible",
               by_site=lambda: (consented[eligible], screening.site_id[eligible]))
    else:
        r.absent("eligibility", "no screening log (data.screening)")
        r.absent("consent", "no screening log (data.screening)")


def _recruitment_rows(r: _Rows, sites: pd.DataFrame, participants: pd.DataFrame, collected: dict,
                      recruitment_period: dict | None, recruitment_target: int | None) -> None:
    """Recruitment rate (per site-month, or per month of the trial's period) and recruited / target."""
    n_alloc = len(participants)
    windows = sites.recruitment_start.notna() & sites.recruitment_end.notna() if len(sites) else pd.Series(dtype=bool)
    if len(sites) and windows.all() and collected.get("recruitment_window", True) and not recruitment_period:
        exposure = float(site_months(sites).sum())
        est, lo, hi = poisson_rate_ci(n_alloc, exposure, r.level)
        row = dict(indicator="recruitment_rate", timepoint="", arm="all", numerator=n_alloc,
                   denominator=exposure, estimate=est, ci_low=lo, ci_high=hi,
                   ci_method="exact Poisson (Garwood)", unit="participants per site-month",
                   definition="participants recruited / site-months open to recruitment")
        if r.cluster:
            per_site = participants.groupby("site_id").size().reindex(sites.site_id, fill_value=0)
            c = cluster_rate_ci(per_site.to_numpy(), site_months(sites).reindex(sites.site_id).to_numpy(), r.level)
            row.update(ci_low_cluster=c["ci_low"], ci_high_cluster=c["ci_high"], ci_method_cluster=c["method"],
                       sites=c["sites"], design_effect=c["design_effect"])
        r.rows.append(row)
    elif recruitment_period:
        start, end = pd.Timestamp(recruitment_period["start"]), pd.Timestamp(recruitment_period["end"])
        exposure = ((end - start).days + 1) / DAYS_PER_MONTH
        est, lo, hi = poisson_rate_ci(n_alloc, exposure, r.level)
        r.rows.append(dict(indicator="recruitment_rate", timepoint="", arm="all", numerator=n_alloc,
                           denominator=exposure, estimate=est, ci_low=lo, ci_high=hi,
                           ci_method="exact Poisson (Garwood)", unit="participants per month",
                           definition=f"participants recruited / months open to recruitment "
                                      f"({recruitment_period['start']} to {recruitment_period['end']})",
                           **({"ci_method_cluster": "not estimable: one recruitment period for the whole "
                               "trial, no per-site recruitment windows"} if r.cluster else {})))
    else:
        r.absent("recruitment_rate", "no recruitment windows (recruitment_start/recruitment_end in the sites "
                 "file, or feasibility.recruitment_period)")
    if recruitment_target:
        r.rows.append(dict(indicator="recruitment_vs_target", timepoint="", arm="all",
                           numerator=n_alloc, denominator=int(recruitment_target),
                           estimate=n_alloc / recruitment_target, ci_low=np.nan, ci_high=np.nan,
                           ci_method="", unit="ratio", definition="participants recruited / target"))


def _retention_rows(r: _Rows, linked: pd.DataFrame, groups: list[str], measures: list[str]) -> None:
    """Retention per follow-up and completion of each measure per time point, by arm."""
    tps = list(linked.timepoint.cat.categories)
    for tp in tps[1:]:
        at = linked[linked.timepoint == tp]
        for arm in groups:
            sub = at if arm == "all" else at[at.arm == arm]
            r.prop("retention", sub.assessed.sum(), len(sub),
                   "participants assessed at this time point / participants allocated", tp, arm,
                   by_site=lambda: (sub.assessed, sub.site_id))
    for m in measures:
        for tp in tps:
            at = linked[linked.timepoint == tp]
            for arm in groups:
                sub = at if arm == "all" else at[at.arm == arm]
                r.prop(f"completion_{m}", sub[m].notna().sum(), len(sub),
                       f"participants with a scorable {m} / participants allocated", tp, arm,
                       by_site=lambda: (sub[m].notna(), sub.site_id))


def _delivery_rows(r: _Rows, treated: pd.DataFrame, collected: dict, iarm: str, who: str,
                   receipt_min_sessions: int, adherence_min_sessions: int | None) -> None:
    """Intervention receipt and adherence rows from the sessions attended (or not-collected rows)."""
    if not collected.get("sessions_attended", True):
        r.absent("intervention_receipt", "no sessions_attended column in the participants file", iarm)
        if adherence_min_sessions is not None:
            r.absent("adherence", "no sessions_attended column in the participants file", iarm)
        return
    sessions = treated.sessions_attended
    known = sessions.notna()
    n_known, n_unknown = int(known.sum()), int((~known).sum())
    unk = f" ({n_unknown} with attendance not recorded are left out)" if n_unknown else ""
    r.prop("intervention_receipt", (sessions[known] >= receipt_min_sessions).sum(), n_known,
           f"{who} attending >= {receipt_min_sessions} session(s) / "
           f"{who} whose attendance is recorded{unk}", arm=iarm,
           by_site=lambda: (sessions[known] >= receipt_min_sessions, treated.site_id[known]))
    if adherence_min_sessions is not None:
        r.prop("adherence", (sessions[known] >= adherence_min_sessions).sum(), n_known,
               f"{who} attending >= {adherence_min_sessions} sessions / "
               f"{who} whose attendance is recorded{unk}", arm=iarm,
               by_site=lambda: (sessions[known] >= adherence_min_sessions, treated.site_id[known]))


def _fidelity_row(r: _Rows, sites: pd.DataFrame, fidelity: pd.DataFrame, fidelity_threshold: float,
                  intervention_arm: str, iarm: str) -> None:
    """Intervention sites whose mean fidelity score reaches the threshold (the units are sites)."""
    isites = sites.site_id[sites.arm == intervention_arm] if sites.arm.notna().any() \
        else pd.Series(sorted(fidelity.site_id.unique()))
    mean_score = fidelity.groupby("site_id").fidelity_score.mean().reindex(isites)
    r.prop("fidelity", (mean_score >= fidelity_threshold).sum(), len(isites),
           f"intervention sites with mean fidelity score >= {fidelity_threshold:g} / intervention "
           "sites (a site without an assessment counts as not meeting it)", arm=iarm)
    if r.cluster:  # the units counted are sites: the simple interval already is the cluster one
        row = r.rows[-1]
        row.update(ci_low_cluster=row["ci_low"], ci_high_cluster=row["ci_high"], sites=len(isites),
                   ci_method_cluster=f"{r.method_label} (the units counted are sites)", design_effect=1.0)


SAFETY_COLUMNS = ["measure", "arm", "n", "denominator"]
SAFETY_MEASURES = {
    "events": "adverse events",
    "participants_with_event": "participants with at least one adverse event",
    "serious_events": "serious adverse events",
    "participants_with_serious_event": "participants with at least one serious adverse event",
    "related_events": "adverse events judged related to the intervention or trial",
}


def safety_table(participants: pd.DataFrame, adverse_events: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Adverse-event counts by arm and overall (tidy: measure, arm, n, denominator).

    Events are counted as recorded (one row = one event); "participants with" counts people with
    at least one such event; the denominator is the number of participants allocated to the arm.
    No rates or tests: a pilot describes safety, it does not compare it.

    Parameters
    ----------
    participants : pandas.DataFrame
        One row per participant: participant_id, arm.
    adverse_events : pandas.DataFrame
        One row per event: participant_id, event_date, serious, related (booleans).
    arms : list of str
        Arms in display order ("all" is added).

    Returns
    -------
    pandas.DataFrame
        measure (events, participants_with_event, serious_events, participants_with_serious_event,
        related_events), arm, n, denominator.  An event for a participant not in ``participants``
        raises (ingest has already refused such orphans).

    References
    ----------
    Ioannidis JPA, Evans SJW, Gotzsche PC, et al. Better reporting of harms in randomized trials:
    an extension of the CONSORT statement. Ann Intern Med 2004;141:781-788.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.feasibility import safety_table
    >>> parts = pd.DataFrame({"participant_id": ["P1", "P2", "P3", "P4", "P5"], "arm": ["A", "A", "A", "B", "B"]})
    >>> events = pd.DataFrame({"participant_id": ["P1", "P1", "P4"], "serious": [False, True, False],
    ...                        "related": [False, False, True],
    ...                        "event_date": pd.to_datetime(["2024-03-01", "2024-04-01", "2024-05-01"])})
    >>> t = safety_table(parts, events, ["A", "B"])
    >>> print(t[t.arm == "all"].to_string(index=False))
                            measure arm  n  denominator
                             events all  3            5
            participants_with_event all  2            5
                     serious_events all  1            5
    participants_with_serious_event all  1            5
                     related_events all  1            5
    """
    arm_of = participants.set_index("participant_id").arm
    ae = adverse_events.assign(arm=adverse_events.participant_id.map(arm_of))
    if ae.arm.isna().any():
        raise ValueError("adverse events for participants who are not allocated: "
                         f"{sorted(ae.participant_id[ae.arm.isna()].unique())[:5]}")
    serious = _is_true(ae.serious.astype(str).str.lower().map({"yes": True, "no": False, "true": True,
                                                               "false": False}))
    related = ae.related.astype(str).str.lower().isin(["yes", "true"])
    rows = []
    for arm in [*arms, "all"]:
        sel = pd.Series(True, index=ae.index) if arm == "all" else ae.arm == arm
        denom = len(participants) if arm == "all" else int((participants.arm == arm).sum())
        counts = {"events": int(sel.sum()),
                  "participants_with_event": int(ae.participant_id[sel].nunique()),
                  "serious_events": int((sel & serious).sum()),
                  "participants_with_serious_event": int(ae.participant_id[sel & serious].nunique()),
                  "related_events": int((sel & related).sum())}
        rows += [dict(measure=m, arm=arm, n=counts[m], denominator=denom) for m in SAFETY_MEASURES]
    return pd.DataFrame(rows, columns=SAFETY_COLUMNS)


def recruitment_by_site(sites: pd.DataFrame, participants: pd.DataFrame,
                        level: float = 0.95) -> pd.DataFrame:
    """Recruitment per site: participants, site-months open and the rate with its exact CI.

    Parameters
    ----------
    sites : pandas.DataFrame
        One row per site: site_id, arm, client_group, recruitment_start, recruitment_end.
    participants : pandas.DataFrame
        One row per participant with site_id.
    level : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        site_id, arm, client_group, recruited, site_months (days open, inclusive, over
        ``analysis.DAYS_PER_MONTH``), rate_per_month, ci_low, ci_high (Garwood, as
        :func:`poisson_rate_ci`); the rate is left empty for a site without a recruitment window
        (not collected).

    References
    ----------
    Garwood F. Fiducial limits for the Poisson distribution. Biometrika 1936;28:437-442.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.feasibility import recruitment_by_site
    >>> sites = pd.DataFrame({"site_id": ["S1", "S2"], "arm": ["A", "B"], "client_group": ["psychosis"] * 2,
    ...                       "recruitment_start": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    ...                       "recruitment_end": pd.to_datetime(["2024-06-30", "2024-06-30"])})
    >>> parts = pd.DataFrame({"participant_id": ["P1", "P2", "P3", "P4", "P5"],
    ...                       "site_id": ["S1", "S1", "S1", "S2", "S2"]})
    >>> t = recruitment_by_site(sites, parts)
    >>> print(t[["site_id", "recruited", "site_months", "rate_per_month", "ci_low", "ci_high"]].round(3)
    ...       .to_string(index=False))
    site_id  recruited  site_months  rate_per_month  ci_low  ci_high
         S1          3        5.979           0.502   0.103    1.466
         S2          2        4.961           0.403   0.049    1.456
    """
    months = site_months(sites)
    counts = participants.groupby("site_id").size().reindex(sites.site_id, fill_value=0)
    rows = []
    for _, s in sites.iterrows():
        mo = float(months[s.site_id])
        est, lo, hi = poisson_rate_ci(int(counts[s.site_id]), mo, level) if mo == mo else (np.nan,) * 3
        rows.append(dict(site_id=s.site_id, arm=s.arm, client_group=s.client_group,
                         recruited=int(counts[s.site_id]), site_months=mo,
                         rate_per_month=est, ci_low=lo, ci_high=hi))
    return pd.DataFrame(rows, columns=["site_id", "arm", "client_group", "recruited", "site_months",
                                       "rate_per_month", "ci_low", "ci_high"])
