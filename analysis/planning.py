"""Planning the definitive trial from the pilot: planning inputs with their uncertainty, and
the analytic sample size over a grid of assumptions (docs/methods.md, "Planning the
definitive trial").

Formulas (each checked in ``tests/test_planning.py``):

* Two arms, continuous outcome, 1:1 allocation, two-sided test at level alpha.  Power of the
  t-test with ``n`` analysed per arm: P(|T| > t_{1-alpha/2, 2n-2}) with T non-central t on
  2n - 2 df and non-centrality delta / (sigma sqrt(2/n)); the sample size is the smallest n
  reaching the target power (as ``statsmodels.stats.power.TTestIndPower``).  The normal
  approximation 2 (z_{1-alpha/2} + z_{1-beta})^2 sigma^2 / delta^2 is given beside it.
* ANCOVA on the baseline value: sigma^2 is multiplied by (1 - r^2), r the baseline-follow-up
  correlation (Borm GF, Fransen J, Lemmens WA. J Clin Epidemiol 2007;60:1234).
* The SD from the pilot: Browne's upper confidence limit s sqrt(df / chi^2_{1-level, df})
  (Browne RH. Stat Med 1995;14:1933; level 80% one-sided by default), or Sim & Lewis's
  adjustment of the sample size computed from the observed SD by the same variance factor
  df / chi^2_{1-level, df} (Sim J, Lewis M. J Clin Epidemiol 2012;65:301).
* Clustering: design effect 1 + ((CV^2 + 1) m - 1) rho for mean (analysed) cluster size m,
  coefficient of variation CV of cluster sizes and ICC rho (Eldridge SM, Ashby D, Kerry S.
  Int J Epidemiol 2006;35:1292); power from the non-central t on 2k - 2 df for k sites per
  arm (the between-site df of a cluster-level comparison), non-centrality
  delta / sqrt(2 sigma^2 DE / (k m)).
* Attrition: individually randomised, n analysed / retention recruited per arm; cluster
  randomised, the analysed cluster size is m x retention (the design effect is computed for
  the analysed size) and k sites of m recruited each.

The target difference always comes from the config (``planning.target_difference``), never
from the pilot's estimate of the effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis import DAYS_PER_MONTH
from analysis.feasibility import (cluster_proportion_ci, cluster_rate_ci, poisson_rate_ci,
                                  proportion_ci, site_months)

SITE, PID = "site_id", "participant_id"

INPUT_COLUMNS = ["parameter", "label", "estimate", "ci_low", "ci_high", "ci_level", "ucl", "ucl_level",
                 "n", "df", "sites", "unit", "method", "note"]
SIZE_COLUMNS = ["scenario", "recommended", "target_difference", "standardised_difference", "sd_basis", "sd",
                "correlation", "sd_effective", "icc_source", "icc", "cv", "design_effect",
                "cluster_size_recruited", "cluster_size_analysed", "retention_basis", "retention",
                "n_analysed_per_arm", "n_recruited_per_arm", "n_recruited_total", "sites_per_arm", "sites_total",
                "power", "recruitment_rate", "recruitment_months", "recruitment_months_low",
                "recruitment_months_high", "centres"]

SD_BASIS_LABEL = {"point": "pilot SD (point estimate)", "ucl": "Browne upper confidence limit of the SD",
                  "sim_lewis": "Sim & Lewis: sample size from the pilot SD × variance inflation factor"}


# ---------------------------------------------------------------------------------------------
# the SD and its upper confidence limit
# ---------------------------------------------------------------------------------------------

def sd_ucl_factor(df: float, level: float = 0.8) -> float:
    """Browne's factor for the upper confidence limit of an SD from a pilot.

    The one-sided ``level`` upper confidence limit of sigma is s times
    sqrt(df / chi^2_{1-level, df}) (chi-square quantile at lower-tail probability 1 - level).

    Parameters
    ----------
    df : float
        Degrees of freedom of the pilot SD (n - 1, or the pooled within-arm df).
    level : float
        One-sided confidence level (Browne used 0.8).

    Returns
    -------
    float
        The factor; NaN when df < 1.

    References
    ----------
    Browne RH. On the use of a pilot sample for sample size determination. Stat Med
    1995;14:1933-1940.

    Examples
    --------
    >>> from analysis.planning import sd_ucl_factor
    >>> round(sd_ucl_factor(30), 4)
    1.1331
    """
    if df < 1:
        return float("nan")
    return math.sqrt(df / stats.chi2.ppf(1.0 - level, df))


def sim_lewis_factor(df: float, level: float = 0.8) -> float:
    """Sim and Lewis's inflation of a sample size computed from a pilot's SD.

    df / chi^2_{1-level, df}: the square of Browne's factor (:func:`sd_ucl_factor`), so that the
    main trial has the planned power with confidence ``level`` whatever the true SD.

    Parameters
    ----------
    df : float
        Degrees of freedom of the pilot SD.
    level : float
        One-sided confidence level.

    Returns
    -------
    float
        The factor by which to multiply the sample size.

    References
    ----------
    Sim J, Lewis M. The size of a pilot study for a clinical trial should be calculated in
    relation to considerations of precision and efficiency. J Clin Epidemiol 2012;65:301-308.

    Examples
    --------
    >>> from analysis.planning import sim_lewis_factor
    >>> round(sim_lewis_factor(30), 4)
    1.284
    """
    return sd_ucl_factor(df, level) ** 2


def sd_ci(sd: float, df: float, level: float = 0.95) -> tuple[float, float]:
    """Two-sided chi-square confidence interval for sigma (normal data).

    Parameters
    ----------
    sd : float
        Sample SD.
    df : float
        Its degrees of freedom.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        (ci_low, ci_high) = sd sqrt(df / chi^2 quantiles); NaNs when df < 1 or sd is not finite.

    References
    ----------
    Casella G, Berger RL. Statistical Inference, 2nd ed. Pacific Grove: Duxbury, 2002, section 9.2.

    Examples
    --------
    >>> from analysis.planning import sd_ci
    >>> tuple(round(x, 3) for x in sd_ci(10.0, 30))
    (7.991, 13.367)
    """
    if not df >= 1 or not np.isfinite(sd):
        return (float("nan"), float("nan"))
    a = 1.0 - level
    return (sd * math.sqrt(df / stats.chi2.ppf(1 - a / 2, df)), sd * math.sqrt(df / stats.chi2.ppf(a / 2, df)))


def correlation_ci(r: float, n: int, level: float = 0.95, controlled: int = 0) -> tuple[float, float]:
    """Fisher-z confidence interval for a (partial) correlation.

    z = atanh(r) +/- z_{1-a/2} / sqrt(n - 3 - controlled), transformed back with tanh.

    Parameters
    ----------
    r : float
        Sample (partial) correlation, e.g. between baseline and follow-up.
    n : int
        Number of pairs.
    level : float
        Confidence level.
    controlled : int
        Number of variables partialled out.

    Returns
    -------
    tuple of float
        (ci_low, ci_high); NaNs when n - 3 - controlled < 1; (r, r) when abs(r) is 1.

    References
    ----------
    Fisher RA. On the "probable error" of a coefficient of correlation deduced from a small
    sample. Metron 1921;1:3-32.

    Examples
    --------
    >>> from analysis.planning import correlation_ci
    >>> tuple(round(x, 3) for x in correlation_ci(0.6, 50))
    (0.386, 0.753)
    >>> tuple(round(x, 3) for x in correlation_ci(0.6, 50, controlled=1))
    (0.384, 0.754)
    """
    m = n - 3 - controlled
    if m < 1 or not np.isfinite(r):
        return (float("nan"), float("nan"))
    if abs(r) >= 1:
        return (float(r), float(r))
    z = math.atanh(r)
    h = stats.norm.ppf(0.5 + level / 2) / math.sqrt(m)
    return (math.tanh(z - h), math.tanh(z + h))


def cv_ci(cv: float, k: int, level: float = 0.95) -> tuple[float, float]:
    """Vangel's modified McKay interval for a coefficient of variation from k values.

    CV / sqrt(((u + 2) / k - 1) CV^2 + u / (k - 1)), u a chi^2_{k-1} quantile (the upper quantile
    gives the lower limit, the lower quantile the upper limit); assumes roughly normal values.

    Parameters
    ----------
    cv : float
        Sample coefficient of variation (e.g. of site sizes).
    k : int
        Number of values (sites).
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        (ci_low, ci_high); NaNs when k < 2; (0, 0) when cv is 0; an infinite upper limit when
        the formula's denominator is not positive.

    References
    ----------
    Vangel MG. Confidence intervals for a normal coefficient of variation. Am Stat 1996;50:21-26.

    Examples
    --------
    >>> from analysis.planning import cv_ci
    >>> tuple(round(x, 3) for x in cv_ci(0.4, 12))
    (0.273, 0.778)
    """
    if k < 2 or not np.isfinite(cv):
        return (float("nan"), float("nan"))
    if cv == 0:
        return (0.0, 0.0)
    a, nu = 1.0 - level, k - 1

    def lim(u):
        den = ((u + 2.0) / k - 1.0) * cv * cv + u / nu
        return cv / math.sqrt(den) if den > 0 else float("inf")
    return (lim(stats.chi2.ppf(1 - a / 2, nu)), lim(stats.chi2.ppf(a / 2, nu)))


# ---------------------------------------------------------------------------------------------
# power and sample size
# ---------------------------------------------------------------------------------------------

def design_effect(m: float, icc: float, cv: float = 0.0) -> float:
    """Design effect of a cluster randomised trial with variable cluster sizes.

    1 + ((CV^2 + 1) m - 1) rho; with CV = 0 the usual 1 + (m - 1) rho.

    Parameters
    ----------
    m : float
        Mean analysed cluster (site) size.
    icc : float
        Intracluster correlation coefficient rho.
    cv : float
        Coefficient of variation of cluster sizes.

    Returns
    -------
    float
        The factor by which clustering inflates the variance of a mean.

    References
    ----------
    Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
    coefficient of variation of cluster size and analysis method. Int J Epidemiol
    2006;35:1292-1300.

    Examples
    --------
    >>> from analysis.planning import design_effect
    >>> design_effect(10, 0.05)
    1.45
    >>> round(design_effect(10, 0.05, cv=0.6), 3)
    1.63
    """
    return 1.0 + ((cv * cv + 1.0) * m - 1.0) * icc


def _t_power(ncp: float, df: float, alpha: float) -> float:
    """Two-sided power of a t-test with non-centrality ncp on df degrees of freedom."""
    if not df > 0:
        return float("nan")
    c = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(c, df, ncp) + stats.nct.cdf(-c, df, ncp))


def power_individual(n_per_arm: float, delta: float, sd: float, alpha: float = 0.05) -> float:
    """Power of the two-sided two-sample t-test with n per arm (as statsmodels' TTestIndPower).

    Parameters
    ----------
    n_per_arm : float
        Participants analysed per arm.
    delta : float
        Target difference in means.
    sd : float
        Common SD.
    alpha : float
        Two-sided significance level.

    Returns
    -------
    float
        Power from the non-central t distribution on 2n - 2 df.

    References
    ----------
    Chow SC, Shao J, Wang H. Sample Size Calculations in Clinical Research, 2nd ed. Boca Raton:
    Chapman and Hall/CRC, 2008, section 3.2.

    Examples
    --------
    >>> from analysis.planning import power_individual
    >>> round(power_individual(86, 5.0, 10.0), 4)
    0.9032
    """
    return _t_power(abs(delta) / (sd * math.sqrt(2.0 / n_per_arm)), 2 * n_per_arm - 2, alpha)


def n_per_arm_normal(delta: float, sd: float, alpha: float = 0.05, power: float = 0.9) -> float:
    """Normal-approximation sample size per arm, 2 (z_{1-alpha/2} + z_{power})^2 sd^2 / delta^2.

    Parameters
    ----------
    delta : float
        Target difference in means.
    sd : float
        Common SD.
    alpha : float
        Two-sided significance level.
    power : float
        Target power.

    Returns
    -------
    float
        Participants analysed per arm, not rounded (:func:`n_per_arm` gives the exact t-test
        size).

    References
    ----------
    Chow SC, Shao J, Wang H. Sample Size Calculations in Clinical Research, 2nd ed. Boca Raton:
    Chapman and Hall/CRC, 2008, section 3.2.

    Examples
    --------
    >>> from analysis.planning import n_per_arm_normal
    >>> round(float(n_per_arm_normal(5.0, 10.0)), 2)
    84.06
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return 2.0 * z * z * sd * sd / (delta * delta)


def _smallest(f, lo: int, target: float, hi_cap: int = 10**8) -> int:
    """Smallest integer x >= lo with f(x) >= target, f increasing."""
    if f(lo) >= target:
        return lo
    hi = max(lo + 1, 2 * lo)
    while f(hi) < target:
        lo, hi = hi, hi * 2
        if hi > hi_cap:
            raise ValueError("the required sample size exceeds 10^8: the target difference is too small "
                             "relative to the SD (or the ICC too large) for this design")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi


def n_per_arm(delta: float, sd: float, alpha: float = 0.05, power: float = 0.9) -> int:
    """Smallest number analysed per arm for which the two-sample t-test has at least ``power``.

    Parameters
    ----------
    delta : float
        Target difference in means (non-zero).
    sd : float
        Common SD (positive).
    alpha : float
        Two-sided significance level.
    power : float
        Target power.

    Returns
    -------
    int
        Participants analysed per arm (:func:`power_individual` reaches ``power``).

    References
    ----------
    Chow SC, Shao J, Wang H. Sample Size Calculations in Clinical Research, 2nd ed. Boca Raton:
    Chapman and Hall/CRC, 2008, section 3.2.

    Examples
    --------
    >>> from analysis.planning import n_per_arm
    >>> n_per_arm(5.0, 10.0)
    86
    """
    if not (delta != 0 and sd > 0):
        raise ValueError("the target difference must be non-zero and the SD positive")
    return _smallest(lambda n: power_individual(n, delta, sd, alpha), 2, power)


def power_cluster(k_per_arm: int, m: float, delta: float, sd: float, icc: float, cv: float = 0.0,
                  alpha: float = 0.05) -> float:
    """Power of a cluster randomised trial with k sites per arm of mean analysed size m.

    The variance of the difference in means is 2 sd^2 DE / (k m), DE the design effect
    (:func:`design_effect`); power from the non-central t distribution on 2k - 2 df.

    Parameters
    ----------
    k_per_arm : int
        Sites per arm.
    m : float
        Mean analysed participants per site.
    delta, sd : float
        Target difference in means and total SD.
    icc : float
        Intracluster correlation coefficient.
    cv : float
        Coefficient of variation of site sizes.
    alpha : float
        Two-sided significance level.

    Returns
    -------
    float
        Power.

    References
    ----------
    Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
    coefficient of variation of cluster size and analysis method. Int J Epidemiol
    2006;35:1292-1300.

    Examples
    --------
    >>> from analysis.planning import power_cluster
    >>> round(power_cluster(10, 12, 5.0, 10.0, 0.05), 4)
    0.8368
    """
    var = 2.0 * sd * sd * design_effect(m, icc, cv) / (k_per_arm * m)
    return _t_power(abs(delta) / math.sqrt(var), 2 * k_per_arm - 2, alpha)


def sites_per_arm(delta: float, sd: float, icc: float, m: float, cv: float = 0.0,
                  alpha: float = 0.05, power: float = 0.9) -> int:
    """Smallest number of sites per arm (each of mean analysed size m) reaching ``power``.

    Parameters
    ----------
    delta, sd : float
        Target difference in means (non-zero) and total SD (positive).
    icc : float
        Intracluster correlation coefficient.
    m : float
        Mean analysed participants per site (positive).
    cv : float
        Coefficient of variation of site sizes.
    alpha : float
        Two-sided significance level.
    power : float
        Target power.

    Returns
    -------
    int
        Sites per arm (:func:`power_cluster` reaches ``power``).

    References
    ----------
    Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
    coefficient of variation of cluster size and analysis method. Int J Epidemiol
    2006;35:1292-1300.

    Examples
    --------
    >>> from analysis.planning import sites_per_arm
    >>> sites_per_arm(5.0, 10.0, 0.05, 12)
    12
    """
    if not (delta != 0 and sd > 0 and m > 0):
        raise ValueError("the target difference must be non-zero, the SD and the cluster size positive")
    return _smallest(lambda k: power_cluster(k, m, delta, sd, icc, cv, alpha), 2, power)


# ---------------------------------------------------------------------------------------------
# planning inputs from the pilot
# ---------------------------------------------------------------------------------------------

def _pooled_sd(y: pd.Series, group: pd.Series | None) -> tuple[float, int, int]:
    """Pooled within-group SD, its df and n (one group when ``group`` is None)."""
    y = pd.to_numeric(y, errors="coerce").astype(float)
    ok = y.notna()
    y = y[ok]
    if group is None:
        n = len(y)
        return (float(y.std(ddof=1)) if n > 1 else float("nan"), n - 1, n)
    g = group[ok]
    ss, df = 0.0, 0
    for _, yy in y.groupby(g, sort=True):
        if len(yy) > 1:
            ss += float(((yy - yy.mean()) ** 2).sum())
            df += len(yy) - 1
    return (math.sqrt(ss / df) if df > 0 else float("nan"), df, len(y))


def _row(parameter, label, estimate, ci=(np.nan, np.nan), level=np.nan, ucl=np.nan, ucl_level=np.nan,
         n=np.nan, df=np.nan, sites=np.nan, unit="", method="", note="") -> dict:
    return dict(parameter=parameter, label=label, estimate=estimate, ci_low=ci[0], ci_high=ci[1],
                ci_level=level, ucl=ucl, ucl_level=ucl_level, n=n, df=df, sites=sites, unit=unit,
                method=method, note=note)


def _icc_row(parameter, label, d: pd.DataFrame, formula: str, level: float, note: str) -> dict:
    from analysis.lmm import fit_lmm
    k = d[SITE].nunique()
    if k < 3 or len(d) <= k + 2:
        return _row(parameter, label, np.nan, method="not estimable: fewer than three sites with data",
                    n=len(d), sites=k, note=note)
    fit = fit_lmm(d, formula, [SITE])
    icc = fit.icc(SITE)
    lo, hi = fit.icc_ci(SITE, level)
    method = ("site variance / (site + residual variance) of "
              + formula.replace("treat", "arm").replace("y_bl", "baseline") + " + (1 | site), REML; profile-likelihood CI")
    warn = " | ".join(fit.warnings)
    return _row(parameter, label, icc, (lo, hi), level, n=len(d), sites=k, unit="ICC", method=method,
                note="; ".join(x for x in (note, warn) if x))


def planning_inputs(linked: pd.DataFrame, participants: pd.DataFrame, sites: pd.DataFrame, cfg: dict,
                    economics: pd.DataFrame | None = None,
                    recruitment_window: bool = True) -> pd.DataFrame:
    """Every input of the definitive trial's sample size that the pilot estimates, with its uncertainty.

    SDs of the primary outcome at its time point (raw and residual after the baseline, with a
    confidence interval and Browne's upper confidence limit), the baseline-follow-up correlation,
    ICCs (site variance share, raw and after baseline adjustment, profile-likelihood CIs), site
    sizes and their CV, retention and the recruitment rate; the method of each in words.

    Parameters
    ----------
    linked : pandas.DataFrame
        The linked analysis table (one row per participant x time point).
    participants, sites : pandas.DataFrame
        Ingest's participants and sites.
    cfg : dict
        The validated config (design, primary outcome, planning, confidence levels).
    economics : pandas.DataFrame, optional
        Per-participant costs and QALYs (the economics stage's table): adds their SDs, their
        correlation and (cluster design) the ICC of costs.
    recruitment_window : bool
        Whether the sites' recruitment windows were collected (else no recruitment rate).

    Returns
    -------
    pandas.DataFrame
        One row per parameter, columns ``INPUT_COLUMNS``: parameter, label, estimate, ci_low,
        ci_high, ci_level, ucl, ucl_level, n, df, sites, unit, method, note.

    References
    ----------
    Browne RH. On the use of a pilot sample for sample size determination. Stat Med
    1995;14:1933-1940.

    Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
    coefficient of variation of cluster size and analysis method. Int J Epidemiol
    2006;35:1292-1300.

    Teare MD, Dimairo M, Shephard N, Hayman A, Whitehead A, Walters SJ. Sample size requirements
    to estimate key design parameters from external pilot randomised controlled trials: a
    simulation study. Trials 2014;15:264.

    Examples
    --------
    The committed demo trial (cluster randomised, WEMWBS at 9 months the primary outcome):

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> from analysis.planning import planning_inputs, sample_size_table
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> inputs = planning_inputs(t["linked"], t["participants"], t["sites"], cfg)
    >>> print(inputs[["parameter", "estimate", "ci_low", "ci_high"]].head(4).round(2).to_string(index=False))
      parameter  estimate  ci_low  ci_high
    sd_followup      8.46    7.44     9.82
    sd_residual      5.43    4.75     6.35
    correlation      0.77    0.67     0.84
            icc      0.07    0.00     0.30
    """
    from analysis.config import primary_timepoint
    from analysis.outcomes import long_frame, model_spec

    design = cfg["design"]["type"]
    cluster = design == "cluster"
    single = design == "single_arm"
    level = cfg["outcomes"]["confidence_level"]
    flevel = cfg["feasibility"]["confidence_level"]
    outcome = cfg["primary"]["outcome"]
    tp = primary_timepoint(cfg)
    label = cfg["outcomes"]["labels"].get(outcome, outcome)
    rows: list[dict] = []
    if tp is None:  # baseline only
        rows.append(_row("sd_followup", f"SD of {label}", np.nan,
                         method="not estimable: the pilot has no follow-up"))
        return pd.DataFrame(rows).reindex(columns=INPUT_COLUMNS)

    spec = model_spec(cfg, outcome, linked)
    spec.covariates = []  # the planning quantities are unadjusted (apart from the baseline)
    d_all = long_frame(linked, spec)
    d = d_all[(d_all.time.astype(str) == tp) & d_all.y.notna()].reset_index(drop=True)
    where = f"{label} at {tp}"
    rows.append(_sd_followup_row(d, cfg, where, tp, single, cluster))
    both = d[d.y_bl.notna()].reset_index(drop=True)
    rows += _baseline_rows(both, cfg, label, where, tp, single)
    if cluster:
        rows.append(_icc_row("icc", f"ICC of {where} (no adjustment for baseline)", d, "y ~ treat", level,
                             "the ICC a sample size without baseline adjustment needs"))
        rows.append(_icc_row("icc_adjusted", f"ICC of {where} after adjusting for baseline", both,
                             "y ~ treat + y_bl", level,
                             "the ICC of the baseline-adjusted (ANCOVA) outcome; differs from the site share "
                             "of the repeated-measures model in effects.csv"))
        rows += _site_size_rows(participants, sites, level)
    rows.append(_retention_row(linked, d_all, tp, label, cluster, flevel))
    rows.append(_recruitment_row(participants, sites, cfg, flevel, recruitment_window))
    if economics is not None and len(economics):
        rows += _economics_rows(economics, cluster, level)
    return pd.DataFrame(rows).reindex(columns=INPUT_COLUMNS)


def _sd_followup_row(d: pd.DataFrame, cfg: dict, where: str, tp: str, single: bool, cluster: bool) -> dict:
    """SD of the primary outcome at its time point (pooled within arms), CI and Browne's UCL."""
    level = cfg["outcomes"]["confidence_level"]
    ucl_level = cfg["planning"]["sd_ucl_level"]
    pooled = "" if single else " (pooled within arms)"
    sd, df, n = _pooled_sd(d.y, None if single else d.treat)
    if n > 1:
        return _row("sd_followup", f"SD of {where}{pooled}", sd, sd_ci(sd, df, level), level,
                    sd * sd_ucl_factor(df, ucl_level), ucl_level, n, df, unit=cfg_unit(cfg),
                    method=f"SD on {df} df; chi-square CI; Browne's one-sided {ucl_level:.0%} upper "
                           "confidence limit s·sqrt(df/χ²(1−level, df))",
                    note="sites ignored: with clustering the df overstate the SD's precision"
                         if cluster else "")
    return _row("sd_followup", f"SD of {where}", np.nan, n=n,
                method=f"not estimable: {n} participant(s) with the outcome at {tp}")


def _baseline_rows(both: pd.DataFrame, cfg: dict, label: str, where: str, tp: str, single: bool) -> list[dict]:
    """Residual SD after adjusting for baseline and the baseline-follow-up correlation (arm partialled out)."""
    level = cfg["outcomes"]["confidence_level"]
    ucl_level = cfg["planning"]["sd_ucl_level"]
    pooled = "" if single else " (pooled within arms)"
    nb = len(both)
    p_adj = 1 if single else 2  # intercept (+ arm) besides the baseline slope
    if not nb > p_adj + 2:
        return [_row("correlation", f"Correlation of {label} at baseline and {tp}", np.nan, n=nb,
                     method="not estimable: too few participants with baseline and follow-up")]
    X = np.column_stack([np.ones(nb)] + ([] if single else [both.treat.to_numpy()]) + [both.y_bl.to_numpy()])
    beta, *_ = np.linalg.lstsq(X, both.y.to_numpy(), rcond=None)
    res = both.y.to_numpy() - X @ beta
    dfr = nb - X.shape[1]
    sr = math.sqrt(float(res @ res) / dfr)
    rows = [_row("sd_residual", f"Residual SD of {where} after adjusting for baseline", sr,
                 sd_ci(sr, dfr, level), level, sr * sd_ucl_factor(dfr, ucl_level), ucl_level, nb, dfr,
                 unit=cfg_unit(cfg),
                 method="root mean squared residual of least squares "
                        + ("y ~ baseline" if single else "y ~ arm + baseline")
                        + f" on {dfr} df; chi-square CI; Browne's {ucl_level:.0%} upper confidence limit")]
    # (partial) correlation of baseline and follow-up, arm partialled out
    if single:
        r = float(np.corrcoef(both.y_bl, both.y)[0, 1])
    else:
        ry = both.y - both.groupby("treat").y.transform("mean")
        rb = both.y_bl - both.groupby("treat").y_bl.transform("mean")
        r = float(np.corrcoef(rb, ry)[0, 1])
    rows.append(_row("correlation", f"Correlation of {label} at baseline and {tp}{pooled}", r,
                     correlation_ci(r, nb, level, 0 if single else 1), level, n=nb,
                     method="Pearson correlation" + ("" if single else " within arms (arm partialled out)")
                            + "; Fisher z interval"))
    return rows


def _site_size_rows(participants: pd.DataFrame, sites: pd.DataFrame, level: float) -> list[dict]:
    """Mean participants per site (t interval) and the CV of site sizes (Vangel's interval)."""
    sizes = participants.groupby(SITE).size()
    sizes = sizes.reindex(sorted(set(sites[SITE]) if len(sites) else sizes.index), fill_value=0)
    k = len(sizes)
    mean_m = float(sizes.mean())
    sd_m = float(sizes.std(ddof=1)) if k > 1 else float("nan")
    half = stats.t.ppf(0.5 + level / 2, k - 1) * sd_m / math.sqrt(k) if k > 1 else float("nan")
    cv = sd_m / mean_m if mean_m > 0 else float("nan")
    return [_row("cluster_size_mean", "Participants recruited per site (mean)", mean_m,
                 (mean_m - half, mean_m + half), level, n=int(sizes.sum()), sites=k,
                 unit="participants per site", method="mean over sites; t interval"),
            _row("cluster_size_cv", "Coefficient of variation of site sizes", cv, cv_ci(cv, k, level),
                 level, n=int(sizes.sum()), sites=k, unit="CV",
                 method="SD / mean of participants recruited per site (SD with k − 1); Vangel's modified "
                        "McKay interval (assumes roughly normal site sizes)")]


def _retention_row(linked: pd.DataFrame, d_all: pd.DataFrame, tp: str, label: str, cluster: bool,
                   flevel: float) -> dict:
    """Retention of the primary outcome at the primary follow-up (cluster-aware interval in a cluster design)."""
    n_alloc = int(linked[PID].nunique())
    obs = d_all[d_all.time.astype(str) == tp].groupby(PID).y.apply(lambda s: s.notna().any())
    allocated = linked.drop_duplicates(PID).set_index(PID)
    observed = obs.reindex(allocated.index, fill_value=False)
    k_ret = int(observed.sum())
    if cluster:
        by_site = pd.DataFrame({"k": observed.astype(int), "site": allocated[SITE]}).groupby("site").k
        ci = cluster_proportion_ci(by_site.sum(), by_site.size(), flevel)
        return _row("retention", f"Retention: {label} observed at {tp} / allocated", ci["estimate"],
                    (ci["ci_low"], ci["ci_high"]), flevel, n=n_alloc, sites=ci["sites"], unit="proportion",
                    method=ci["method"], note=f"{k_ret} of {n_alloc}; design effect {ci['design_effect']:.2f}")
    est, lo, hi = proportion_ci(k_ret, n_alloc, "wilson", flevel)
    return _row("retention", f"Retention: {label} observed at {tp} / allocated", est, (lo, hi), flevel,
                n=n_alloc, unit="proportion", method="Wilson score interval",
                note=f"{k_ret} of {n_alloc}")


def cfg_unit(cfg: dict) -> str:
    out = cfg["primary"]["outcome"]
    spec = (cfg.get("prescored") or {}).get(out) or {}
    return spec.get("unit") or "points"


def _recruitment_row(participants: pd.DataFrame, sites: pd.DataFrame, cfg: dict, level: float,
                     window: bool) -> dict:
    period = cfg["feasibility"].get("recruitment_period")
    has_windows = (window and len(sites) > 0 and "recruitment_start" in sites
                   and sites.recruitment_start.notna().all() and sites.recruitment_end.notna().all())
    if has_windows and not period:
        months = site_months(sites)
        counts = participants.groupby(SITE).size().reindex(months.index, fill_value=0)
        if len(months) >= 2:
            ci = cluster_rate_ci(counts.to_numpy(), months.to_numpy(), level)
            return _row("recruitment_rate", "Recruitment per site-month", ci["estimate"], (ci["ci_low"], ci["ci_high"]),
                        level, n=int(counts.sum()), sites=len(months), unit="participants per site-month",
                        method=ci["method"], note=f"{int(counts.sum())} participants over "
                                                 f"{months.sum():.1f} site-months; dispersion "
                                                 f"{ci['design_effect']:.2f}")
        est, lo, hi = poisson_rate_ci(int(counts.sum()), float(months.sum()), level)
        return _row("recruitment_rate", "Recruitment per site-month", est, (lo, hi), level, n=int(counts.sum()),
                    sites=1, unit="participants per site-month", method="exact Poisson (Garwood)")
    if period:
        start, end = pd.Timestamp(period["start"]), pd.Timestamp(period["end"])
        exposure = ((end - start).days + 1) / DAYS_PER_MONTH
        n = len(participants)
        est, lo, hi = poisson_rate_ci(n, exposure, level)
        centres = int(participants[SITE].dropna().nunique()) if SITE in participants else 0
        return _row("recruitment_rate", "Recruitment per month (whole pilot)", est, (lo, hi), level, n=n,
                    sites=max(centres, 1), unit="participants per month",
                    method="exact Poisson (Garwood) over the recruitment period",
                    note=f"{n} participants over {exposure:.1f} months at {max(centres, 1)} centre(s)")
    return _row("recruitment_rate", "Recruitment rate", np.nan,
                method="not collected: no recruitment windows (sites file) or feasibility.recruitment_period")


def _economics_rows(e: pd.DataFrame, cluster: bool, level: float) -> list[dict]:
    rows = []
    cc = e[e.cost.notna() & e.qaly.notna()].reset_index(drop=True)
    for col, lab, unit, caveat in (("cost", "costs per participant over follow-up", "£",
                                    " (assumes normality: costs are usually skewed)"),
                                   ("qaly", "QALYs per participant over follow-up", "QALY", "")):
        sd, df, n = _pooled_sd(cc[col], cc.treat)
        rows.append(_row(f"sd_{col}", f"SD of {lab} (pooled within arms)", sd, sd_ci(sd, df, level), level,
                         n=n, df=df, unit=unit, method=f"SD on {df} df (n − 2), complete cases; chi-square CI"
                                                       + caveat))
    if len(cc) > 4:
        rc = cc.cost - cc.groupby("treat").cost.transform("mean")
        rq = cc.qaly - cc.groupby("treat").qaly.transform("mean")
        r = float(np.corrcoef(rc, rq)[0, 1])
        rows.append(_row("correlation_cost_qaly", "Correlation of costs and QALYs (within arms)", r,
                         correlation_ci(r, len(cc), level, 1), level, n=len(cc),
                         method="Pearson correlation within arms, complete cases; Fisher z interval"))
    if cluster and SITE in cc:
        d = cc.rename(columns={"cost": "y"})
        rows.append(_icc_row("icc_cost", "ICC of costs", d, "y ~ treat", level, "complete cases"))
    return rows


# ---------------------------------------------------------------------------------------------
# the sample-size grid
# ---------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """The pilot-derived values a sample-size calculation uses (from ``planning_inputs``)."""

    design: str
    sd: float
    sd_df: float
    sd_ucl: float
    correlation: float
    icc: float = float("nan")
    icc_ci: tuple = (float("nan"), float("nan"))
    icc_adjusted: float = float("nan")
    icc_adjusted_ci: tuple = (float("nan"), float("nan"))
    cluster_size: float = float("nan")
    cv: float = 0.0
    retention: float = 1.0
    retention_low: float = 1.0
    rate: float = float("nan")
    rate_ci: tuple = (float("nan"), float("nan"))
    rate_unit: str = ""
    centres: int = 1

    @classmethod
    def from_inputs(cls, inputs: pd.DataFrame, design: str) -> "Plan":
        p = inputs.set_index("parameter")

        def g(name, col="estimate"):
            return float(p.at[name, col]) if name in p.index and pd.notna(p.at[name, col]) else float("nan")
        plan = cls(design=design, sd=g("sd_followup"), sd_df=g("sd_followup", "df"), sd_ucl=g("sd_followup", "ucl"),
                   correlation=g("correlation"))
        plan.icc, plan.icc_ci = g("icc"), (g("icc", "ci_low"), g("icc", "ci_high"))
        plan.icc_adjusted, plan.icc_adjusted_ci = g("icc_adjusted"), (g("icc_adjusted", "ci_low"),
                                                                      g("icc_adjusted", "ci_high"))
        plan.cluster_size = g("cluster_size_mean")
        cv = g("cluster_size_cv")
        plan.cv = cv if np.isfinite(cv) else 0.0
        plan.retention, plan.retention_low = g("retention"), g("retention", "ci_low")
        plan.rate, plan.rate_ci = g("recruitment_rate"), (g("recruitment_rate", "ci_low"),
                                                          g("recruitment_rate", "ci_high"))
        if "recruitment_rate" in p.index:
            plan.rate_unit = str(p.at["recruitment_rate", "unit"])
            s = p.at["recruitment_rate", "sites"]
            plan.centres = int(s) if pd.notna(s) and s >= 1 else 1
        return plan


def icc_scenarios(plan: Plan, pl: dict, level: float = 0.95) -> list[tuple[str, float]]:
    """(source, value) of every ICC in the grid, the recommended one first."""
    ancova = pl["ancova"]
    main, main_ci = (plan.icc_adjusted, plan.icc_adjusted_ci) if ancova else (plan.icc, plan.icc_ci)
    other = plan.icc if ancova else plan.icc_adjusted
    what = "after baseline adjustment" if ancova else "unadjusted"
    out = []
    if pl["icc"] is not None:
        out.append(("assumed in planning.icc" + (f": {pl['icc_source']}" if pl.get("icc_source") else ""),
                    float(pl["icc"])))
    if np.isfinite(main):
        out.append((f"pilot estimate, {what}", main))
    if np.isfinite(main_ci[1]):
        out.append((f"pilot upper {level:.0%} confidence limit, {what}", main_ci[1]))
    if np.isfinite(other):
        out.append(("pilot estimate, " + ("unadjusted" if ancova else "after baseline adjustment"), other))
    for ext in pl["icc_values"]:
        out.append((f"external: {ext.get('source') or 'no source given'}", float(ext["value"])))
    seen, uniq = set(), []
    for src, v in out:
        key = round(v, 12)
        if key not in seen:
            seen.add(key)
            uniq.append((src, v))
    return uniq


def _sd_effective(sd: float, r: float, ancova: bool) -> float:
    if not ancova or not np.isfinite(r):
        return sd
    return sd * math.sqrt(1.0 - r * r)


def recommended_icc(plan: Plan, pl: dict) -> float:
    if pl["icc"] is not None:
        return float(pl["icc"])
    return plan.icc_adjusted if pl["ancova"] else plan.icc


def _duration(n_recruited_total: float, per_site: float, plan: Plan, pl: dict, sites_total: int | None):
    """Months to recruit: per site in parallel (cluster) or over the centres (individual)."""
    if not np.isfinite(plan.rate) or plan.rate <= 0:
        return (np.nan, np.nan, np.nan, np.nan)
    per_centre = plan.rate if "site-month" in plan.rate_unit else plan.rate / max(plan.centres, 1)
    lo_r, hi_r = plan.rate_ci
    if "site-month" not in plan.rate_unit:
        lo_r, hi_r = lo_r / max(plan.centres, 1), hi_r / max(plan.centres, 1)
    if sites_total is not None:  # cluster: every site recruits its own participants
        need, centres = per_site, sites_total
    else:
        centres = pl["centres"] or plan.centres
        need = n_recruited_total / centres
    months = need / per_centre
    low = need / hi_r if np.isfinite(hi_r) and hi_r > 0 else np.nan
    high = need / lo_r if np.isfinite(lo_r) and lo_r > 0 else np.nan
    return (months, low, high, centres)


def sample_size_table(inputs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Analytic sample size of the definitive trial over a grid of assumptions.

    Scenarios cross the target differences, the SD basis (point estimate or Browne's upper
    confidence limit), the retention basis and, in a cluster design, the ICC values (pilot
    estimates and ``planning.icc_values``); each gives participants analysed and recruited per
    arm (ANCOVA-adjusted SD when ``planning.ancova``), sites per arm with the design effect for
    variable site sizes, the power reached and the months of recruitment needed.

    Parameters
    ----------
    inputs : pandas.DataFrame
        The pilot's planning inputs (:func:`planning_inputs`).
    cfg : dict
        The validated config (``planning``: target difference(s), alpha, power, choices).

    Returns
    -------
    pandas.DataFrame
        One row per scenario (``SIZE_COLUMNS``); the row computed with the configured choices has
        ``recommended`` True.  Empty for a single-arm pilot or without a target difference.

    References
    ----------
    Browne RH. On the use of a pilot sample for sample size determination. Stat Med
    1995;14:1933-1940.

    Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of
    coefficient of variation of cluster size and analysis method. Int J Epidemiol
    2006;35:1292-1300.

    Teare MD, Dimairo M, Shephard N, Hayman A, Whitehead A, Walters SJ. Sample size requirements
    to estimate key design parameters from external pilot randomised controlled trials: a
    simulation study. Trials 2014;15:264.

    Examples
    --------
    The committed demo trial (cluster randomised, WEMWBS at 9 months the primary outcome):

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> from analysis.planning import planning_inputs, sample_size_table
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> inputs = planning_inputs(t["linked"], t["participants"], t["sites"], cfg)
    >>> sizes = sample_size_table(inputs, cfg)
    >>> rec = sizes[sizes.recommended].iloc[0]
    >>> float(rec.target_difference), rec.sd_basis, int(rec.n_recruited_total), int(rec.sites_total)
    (3.0, 'ucl', 508, 38)
    """
    pl = cfg["planning"]
    design = cfg["design"]["type"]
    if design == "single_arm" or pl["target_difference"] is None:
        return pd.DataFrame(columns=SIZE_COLUMNS)
    plan = Plan.from_inputs(inputs, design)
    if not np.isfinite(plan.sd):
        return pd.DataFrame(columns=SIZE_COLUMNS)
    r = float(pl["correlation"]) if pl["correlation"] is not None else plan.correlation
    diffs = [float(pl["target_difference"])] + [float(x) for x in pl["target_differences"]
                                                if float(x) != float(pl["target_difference"])]
    sd_bases = list(dict.fromkeys([pl["sd_method"], "point", "ucl"]))
    ret_bases = list(dict.fromkeys([pl["retention_basis"], "point", "lower"]))
    if design == "cluster":
        iccs = icc_scenarios(plan, pl, cfg["outcomes"]["confidence_level"])
        if not iccs:
            return pd.DataFrame(columns=SIZE_COLUMNS)
        rec_icc = recommended_icc(plan, pl)
        m_rec = float(pl["cluster_size"] or plan.cluster_size)
        cv = float(pl["cv_cluster_size"]) if pl["cv_cluster_size"] is not None else plan.cv
    else:
        iccs, rec_icc, m_rec, cv = [("none (individually randomised)", 0.0)], 0.0, np.nan, 0.0
    rows = []
    for delta in diffs:
        for sb in sd_bases:
            sd = plan.sd_ucl if sb == "ucl" else plan.sd
            factor = sim_lewis_factor(plan.sd_df, pl["sd_ucl_level"]) if sb == "sim_lewis" else 1.0
            sde = _sd_effective(sd, r, pl["ancova"])
            for rb in ret_bases:
                ret = plan.retention if rb == "point" else plan.retention_low
                if not (np.isfinite(ret) and ret > 0):
                    ret = 1.0
                for src, icc in iccs:
                    row = dict(target_difference=delta, standardised_difference=delta / sde, sd_basis=sb, sd=sd,
                               correlation=r if pl["ancova"] else np.nan, sd_effective=sde, icc_source=src,
                               icc=icc if design == "cluster" else np.nan, cv=cv if design == "cluster" else np.nan,
                               retention_basis=rb, retention=ret,
                               recommended=bool(delta == diffs[0] and sb == pl["sd_method"]
                                                and rb == pl["retention_basis"]
                                                and (design != "cluster" or np.isclose(icc, rec_icc))))
                    if design == "cluster":
                        row.update(_cluster_size(plan, pl, delta, sde, icc, m_rec, cv, ret, factor))
                    else:
                        row.update(_individual_size(plan, pl, delta, sde, ret, factor))
                    rows.append(row)
    out = pd.DataFrame(rows)
    # one recommended row only (the first match, should ICC values coincide)
    rec = out.index[out.recommended]
    out.loc[rec[1:], "recommended"] = False
    out.insert(0, "scenario", np.arange(1, len(out) + 1))
    return out.reindex(columns=SIZE_COLUMNS)


def _cluster_size(plan: Plan, pl: dict, delta: float, sde: float, icc: float, m_rec: float, cv: float,
                  ret: float, factor: float) -> dict:
    """Sites, participants, design effect, power and recruitment time of one cluster scenario."""
    alpha, power = pl["alpha"], pl["power"]
    m_an = m_rec * ret
    k = sites_per_arm(delta, sde, icc, m_an, cv, alpha, power)
    if factor != 1.0:
        k = int(math.ceil(k * factor))
    n_rec_arm = int(math.ceil(k * m_rec))
    months, lo, hi, centres = _duration(2 * n_rec_arm, m_rec, plan, pl, 2 * k)
    return dict(design_effect=design_effect(m_an, icc, cv), cluster_size_recruited=m_rec,
                cluster_size_analysed=m_an, n_analysed_per_arm=k * m_an,
                n_recruited_per_arm=n_rec_arm, n_recruited_total=2 * n_rec_arm,
                sites_per_arm=k, sites_total=2 * k,
                power=power_cluster(k, m_an, delta, sde, icc, cv, alpha),
                recruitment_rate=plan.rate, recruitment_months=months, recruitment_months_low=lo,
                recruitment_months_high=hi, centres=centres)


def _individual_size(plan: Plan, pl: dict, delta: float, sde: float, ret: float, factor: float) -> dict:
    """Participants analysed and recruited, power and recruitment time of one individually randomised scenario."""
    alpha, power = pl["alpha"], pl["power"]
    n = n_per_arm(delta, sde, alpha, power)
    if factor != 1.0:
        n = int(math.ceil(n * factor))
    n_rec = int(math.ceil(n / ret - 1e-9))
    months, lo, hi, centres = _duration(2 * n_rec, np.nan, plan, pl, None)
    return dict(design_effect=1.0, n_analysed_per_arm=n, n_recruited_per_arm=n_rec,
                n_recruited_total=2 * n_rec, power=power_individual(n, delta, sde, alpha),
                recruitment_rate=plan.rate, recruitment_months=months, recruitment_months_low=lo,
                recruitment_months_high=hi, centres=centres)


# ---------------------------------------------------------------------------------------------
# figure
# ---------------------------------------------------------------------------------------------

def sample_size_figure(inputs: pd.DataFrame, table: pd.DataFrame, cfg: dict) -> bytes:
    """Cluster design: participants to recruit (and sites) against the ICC, for the pilot SD and
    its upper confidence limit, with the pilot's ICC and its CI and the external ICCs marked.
    Individually randomised: participants to recruit against the target difference."""
    from analysis.figures import _png, plt

    pl = cfg["planning"]
    design = cfg["design"]["type"]
    plan = Plan.from_inputs(inputs, design)
    rec = table[table.recommended].iloc[0]
    alpha, power = pl["alpha"], pl["power"]
    r = float(rec.correlation) if pd.notna(rec.correlation) else 0.0
    ret = float(rec.retention)
    unit = cfg_unit(cfg)
    fig, ax = plt.subplots(figsize=(6.6, 4.0))
    styles = [("ucl", plan.sd_ucl, "-", "#d1495b", f"SD: upper {pl['sd_ucl_level']:.0%} confidence limit"),
              ("point", plan.sd, "--", "#1b6ca8", "SD: pilot estimate")]
    if design == "cluster":
        m_rec, cv = float(rec.cluster_size_recruited), float(rec.cv)
        hi_icc = max([0.3] + [float(v) for v in table.icc.dropna()]) * 1.1
        grid = np.linspace(0.0, min(hi_icc, 0.95), 61)
        delta = float(rec.target_difference)
        for _, sd, ls, col, lab in styles:
            sde = _sd_effective(sd, r, pl["ancova"])
            tot = [2 * math.ceil(sites_per_arm(delta, sde, g, m_rec * ret, cv, alpha, power) * m_rec) for g in grid]
            ax.step(grid, tot, where="post", ls=ls, color=col, label=lab)
        icc_est = plan.icc_adjusted if pl["ancova"] else plan.icc
        icc_ci = plan.icc_adjusted_ci if pl["ancova"] else plan.icc_ci
        if np.isfinite(icc_est):
            ax.axvspan(icc_ci[0], min(icc_ci[1], grid[-1]), color="0.93", zorder=0,
                       label=f"pilot ICC {cfg['outcomes']['confidence_level']:.0%} CI")
            ax.axvline(icc_est, color="0.3", lw=1, label="pilot ICC estimate")
        for ext in pl["icc_values"]:
            ax.axvline(float(ext["value"]), color="#66a182", lw=1, ls=":")
        if pl["icc_values"]:
            ax.plot([], [], color="#66a182", lw=1, ls=":", label="external ICC value(s)")
        ax.plot([rec.icc], [rec.n_recruited_total], "o", color="black", label="recommended")
        ax.set_xlabel("ICC" + (" (baseline-adjusted outcome)" if pl["ancova"] else ""))
        ax.set_ylabel("participants to recruit (both arms)")
        sec = ax.secondary_yaxis("right", functions=(lambda y: y / m_rec, lambda s: s * m_rec))
        sec.set_ylabel(f"sites (at {m_rec:.1f} recruited per site)")
        ax.set_title(f"Difference {delta:g} {unit}, power {power:.0%}, two-sided α {alpha:g}, "
                     f"retention {ret:.0%}", fontsize=9)
    else:
        base = float(pl["target_difference"])
        diffs = [base] + [float(x) for x in pl["target_differences"]]
        lo, hi = 0.5 * min(map(abs, diffs)), 1.5 * max(map(abs, diffs))
        grid = np.linspace(lo, hi, 60)
        for _, sd, ls, col, lab in styles:
            sde = _sd_effective(sd, r, pl["ancova"])
            tot = [2 * math.ceil(n_per_arm(g, sde, alpha, power) / ret - 1e-9) for g in grid]
            ax.plot(grid, tot, ls=ls, color=col, label=lab)
        ax.plot([abs(rec.target_difference)], [rec.n_recruited_total], "o", color="black", label="recommended")
        ax.set_xlabel(f"target difference ({unit})")
        ax.set_ylabel("participants to recruit (both arms)")
        ax.set_yscale("log")
        ax.set_title(f"Power {power:.0%}, two-sided α {alpha:g}, retention {ret:.0%}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


SINGLE_ARM_NEEDS = [
    "a comparison group: a definitive trial of effectiveness randomises participants (or sites) to the "
    "intervention or to a comparator such as usual care; this pilot had no comparison group, so it cannot "
    "say how the outcome would differ between arms",
    "a decision on the unit of randomisation (participants, or sites when the intervention is delivered to "
    "whole services), and for sites an ICC from published estimates for the outcome, since this pilot "
    "cannot estimate between-site variation between arms",
    "a target difference between arms (planning.target_difference) from the literature or stakeholders, "
    "never the change from baseline seen here",
]


def placeholder_png(text: str) -> bytes:
    """A small figure that says why there is no sample-size figure."""
    from analysis.figures import _png, plt

    fig, ax = plt.subplots(figsize=(6.6, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    return _png(fig)
