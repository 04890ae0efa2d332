"""Outcome analysis: descriptives, the prespecified mixed model, multiple imputation and
sensitivity analyses, effect modification.

For every configured outcome (a numeric column of the linked table) the prespecified model
is fitted to the follow-up rows (long format, one row per participant x follow-up):

* several follow-ups: ``y ~ time + arm:time + y_baseline [+ covariates] [+ interactions]
  + (1 | site) + (1 | participant)`` by REML (time categorical; with ``time: linear`` the
  arm effect is ``treat + treat:month``); the intervention-minus-control difference at each
  follow-up is a contrast of the fixed effects;
* one follow-up: ANCOVA ``y ~ treat + y_baseline [+ covariates] + (1 | site)``;
* no random effect left (individually randomised, one follow-up): ordinary least squares.

Inference uses Kenward-Roger (default when sites are a random effect; checked against
pbkrtest) or Satterthwaite df (``analysis.lmm``, checked against lmerTest). Sensitivity
analyses use the same model: on multiply imputed data (``analysis.mi``, Rubin's rules with
Barnard-Rubin df, ``analysis.mi_pool``), on complete cases (participants with the outcome at
every follow-up), and delta-adjusted (tipping point). Effect modification adds a treatment
x modifier interaction (common to all follow-ups).
"""

from __future__ import annotations

import re
import zlib
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis import BY_BASELINE_SD, CHANGE_TERM, progress
from analysis.blinding import UNBLINDED_TERM
from analysis.lmm import fit_lmm
from analysis.mi import default_methods, impute
from analysis.mi_pool import pool

EFFECT_COLUMNS = ["outcome", "population", "timepoint", "analysis", "primary", "term", "estimate", "se",
                  "ci_low", "ci_high", "df", "p_value", "n", "n_participants", "n_intervention",
                  "n_control", "n_sites", "n_model", "n_participants_model", "n_intervention_model",
                  "n_control_model", "n_sites_model", "standardised_effect", "standardised_ci_low",
                  "standardised_ci_high", "standardised_by", "baseline_sd", "site_variance",
                  "participant_variance", "residual_variance", "site_icc", "site_icc_ci_low",
                  "site_icc_ci_high", "m_imputations", "fmi", "model", "warnings"]
TIPPING_COLUMNS = ["outcome", "timepoint", "kind", "shift_sd", "towards", "delta_sd", "delta", "arm_shifted",
                   "estimate", "se", "ci_low", "ci_high", "df", "p_value", "m_imputations", "tipping_point"]
SITE, PID = "site_id", "participant_id"
TERM = UNBLINDED_TERM  # the between-arm term of effects.csv ("B vs A" once blinded)
BY_CHANGE_SD = "SD of change (standardised response mean)"


# --------------------------------------------------------------------------
# descriptives
# --------------------------------------------------------------------------

def describe(linked: pd.DataFrame, outcome: str, level: float = 0.95) -> pd.DataFrame:
    """Mean, SD and a t-based CI of the mean of ``outcome`` by time point and arm.

    Parameters
    ----------
    linked : pandas.DataFrame
        The linked analysis table (one row per participant x time point).
    outcome : str
        Score column.
    level : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        outcome, timepoint, month, arm, n (observed), mean, sd, ci_low, ci_high (mean +/-
        t_{n-1} sd / sqrt(n)); no between-arm tests (a pilot estimates, it does not test).

    References
    ----------
    Lancaster GA, Dodd S, Williamson PR. Design and analysis of pilot studies: recommendations for
    good practice. J Eval Clin Pract 2004;10:307-312.

    Examples
    --------
    The committed demo trial:

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> from analysis.outcomes import describe
    >>> print(describe(t["linked"], "wemwbs_total").round(2).tail(2).to_string(index=False))
         outcome timepoint  month          arm  n  mean   sd  ci_low  ci_high
    wemwbs_total        m9    9.0      control 56 46.27 8.60   43.96    48.57
    wemwbs_total        m9    9.0 intervention 46 48.54 8.29   46.08    51.01
    """
    rows = []
    for (tp, arm), g in linked.groupby(["timepoint", "arm"], observed=True, sort=True):
        y = pd.to_numeric(g[outcome], errors="coerce").dropna().astype(float)
        n = len(y)
        mean = float(y.mean()) if n else np.nan
        sd = float(y.std(ddof=1)) if n > 1 else np.nan
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
        rows.append(dict(outcome=outcome, timepoint=str(tp), month=float(g.month.iloc[0]), arm=arm,
                         n=n, mean=mean, sd=sd, ci_low=mean - half, ci_high=mean + half))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# the prespecified model
# --------------------------------------------------------------------------

@dataclass
class ModelSpec:
    """The analysis plan's model for one outcome (see ``model_spec``)."""

    outcome: str
    intervention_arm: str
    time: str = "categorical"                      # or "linear" (in months)
    covariates: list[tuple[str, str]] = field(default_factory=list)  # (column, numeric|categorical)
    interactions: list[str] = field(default_factory=list)            # "a:b"
    groups: list[str] = field(default_factory=lambda: [SITE, PID])
    level: float = 0.95
    single_arm: bool = False                       # no comparison group: change from baseline
    levels: dict[str, list[str]] = field(default_factory=dict)  # declared covariate levels (first = reference)
    df_method: str = "satterthwaite"                # or "kenward_roger" (see model_spec)


def model_spec(cfg: dict, outcome: str, linked: pd.DataFrame | None = None) -> ModelSpec:
    """Build the model for ``outcome`` from the validated trial config and the design.

    Fixed effects besides arm x time and the baseline value: the stratification factors
    (categorical, always), the centre (categorical) in an individual or single-arm design with
    several centres and ``design.centre_effect: fixed``, then ``primary.covariates``.  Random
    intercepts: site and participant in a cluster design, participant otherwise (plus centre
    with ``centre_effect: random``), unless ``primary.clustering`` says otherwise."""
    pr, d = cfg["primary"], cfg["design"]
    covs = []
    forced = set(pr.get("categorical_covariates", []))
    unknown = forced - set(pr.get("covariates", []))
    if unknown:
        raise ValueError(f"config key primary.categorical_covariates: {sorted(unknown)} are not "
                         f"listed in primary.covariates {pr.get('covariates', [])}")
    declared = {k: v["type"] for k, v in (cfg.get("covariates") or {}).items()}
    typ_design = d.get("type", "cluster")
    centres = 0
    if linked is not None and SITE in linked:
        centres = int(linked[SITE].dropna().nunique())
    if typ_design != "cluster" and centres > 1 and d.get("centre_effect", "fixed") == "fixed":
        covs.append((SITE, "categorical"))
    for c in d.get("stratification") or []:
        if c != SITE and c not in dict(covs):
            covs.append((c, "categorical"))
    for c in pr.get("covariates", []):
        if c in dict(covs):
            continue
        name, typ = c, ("categorical" if c in forced else declared.get(c, "auto"))
        if typ == "auto":
            typ = "numeric" if (linked is not None and name in linked
                                and pd.api.types.is_numeric_dtype(linked[name])
                                and not pd.api.types.is_bool_dtype(linked[name])) else "categorical"
        covs.append((name, typ))
    groups = pr.get("clustering")
    if groups is None:
        if typ_design == "cluster":
            groups = [SITE, PID]
        elif centres > 1 and d.get("centre_effect", "fixed") == "random":
            groups = [SITE, PID]
        else:
            groups = [PID]
    level = cfg.get("outcomes", {}).get("confidence_level", 0.95)
    # small-sample df: Kenward-Roger by default when sites are a random effect (see
    # docs/methods.md for the simulation behind this choice), Satterthwaite otherwise
    df_method = pr.get("df_method", "auto")
    if df_method == "auto":
        df_method = "kenward_roger" if SITE in groups else "satterthwaite"
    return ModelSpec(outcome=outcome, intervention_arm=d["intervention_arm"],
                     time=pr.get("time", "categorical"), covariates=covs,
                     interactions=list(pr.get("interactions", [])), groups=list(groups), level=level,
                     single_arm=typ_design == "single_arm",
                     levels={k: [str(x) for x in v["levels"]] for k, v in (cfg.get("covariates") or {}).items()
                             if v.get("levels")},
                     df_method=df_method)


def _check_columns(linked: pd.DataFrame, spec: ModelSpec, extra: list[str] = ()) -> None:
    need = [spec.outcome] + [c for c, _ in spec.covariates] + list(spec.groups) + list(extra)
    missing = [c for c in dict.fromkeys(need) if c not in linked.columns]
    if missing:
        raise KeyError(
            f"outcome analysis of {spec.outcome!r}: column(s) {missing} are not in the linked "
            f"analysis table (config keys primary.outcome / outcomes.secondary / "
            f"primary.covariates / primary.clustering); available: {sorted(linked.columns)}")
    y = linked[spec.outcome]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise TypeError(f"outcome {spec.outcome!r} is not numeric (dtype {y.dtype}); only "
                        "numeric scores can be analysed with the linear mixed model.")


def long_frame(linked: pd.DataFrame, spec: ModelSpec, extra: list[str] = ()) -> pd.DataFrame:
    """Follow-up rows with columns y, y_bl, treat, time, month, groups, covariates, extra.

    The baseline value is the outcome at the first (baseline) time point of the same
    participant, so any numeric column works as an outcome (a pre-scored total declared in
    ingest as much as an instrument score)."""
    _check_columns(linked, spec, extra)
    tps = list(linked.timepoint.cat.categories)
    base = linked.loc[linked.timepoint == tps[0], [PID, spec.outcome]]
    base = base.drop_duplicates(PID).set_index(PID)[spec.outcome]
    keep = list(dict.fromkeys([PID, SITE, "arm", "timepoint", "month", spec.outcome]
                              + [c for c, _ in spec.covariates] + list(spec.groups) + list(extra)))
    d = linked.loc[linked.timepoint != tps[0], [c for c in keep if c in linked.columns]].copy()
    d["y"] = pd.to_numeric(d[spec.outcome]).astype(float)
    d["y_bl"] = d[PID].map(base).astype(float)
    d["treat"] = (d.arm == spec.intervention_arm).astype(float)
    fu = [t for t in tps[1:]]
    d["time"] = pd.Categorical(d.timepoint.astype(str), categories=[str(t) for t in fu])
    d["month"] = d.month.astype(float)
    for k, tp in enumerate(fu, 1):
        d[f"trt_{k}"] = d.treat * (d.time == str(tp))
    d["treat_month"] = d.treat * d.month
    _type_covariates(d, spec)
    return d.reset_index(drop=True)


def _type_covariates(d: pd.DataFrame, spec: ModelSpec) -> None:
    """Numeric covariates as floats; categorical ones as pandas categoricals whose first
    category (the reference level of the model) is the first declared level, else the first
    in sort order."""
    for c, typ in spec.covariates:
        if typ == "numeric":
            d[c] = pd.to_numeric(d[c]).astype(float)
            continue
        v = d[c].astype(object).where(d[c].notna(), None)
        v = v.map(lambda x: None if x is None else str(x))
        seen = sorted(v.dropna().unique())
        cats = [x for x in spec.levels.get(c, []) if x in seen] + [x for x in seen if x not in spec.levels.get(c, [])]
        d[c] = pd.Categorical(v, categories=cats)


def _cov_term(spec: ModelSpec, name: str) -> str:
    if name == "time":
        return "month" if spec.time == "linear" else "time"
    if name == "baseline":
        return "y_bl"
    typ = dict(spec.covariates).get(name)
    if typ is None:
        raise ValueError(f"config key primary.interactions: {name!r} is not a covariate, 'time' "
                         f"or 'baseline' (covariates: {[c for c, _ in spec.covariates]})")
    return f"C({name})" if typ == "categorical" else name


def design(spec: ModelSpec, followups: list[str], months: list[float],
           extra_terms: list[str] = ()) -> tuple[str, dict[str, dict[str, float]], str]:
    """Formula, the contrast (term -> weight) giving the arm difference at each follow-up,
    and a plain description of the model."""
    rhs: list[str] = []
    if len(followups) == 1:
        rhs.append("treat")
        contrasts = {followups[0]: {"treat": 1.0}}
        desc = "ANCOVA: treat + baseline"
    elif spec.time == "linear":
        rhs += ["month", "treat", "treat_month"]
        contrasts = {tp: {"treat": 1.0, "treat_month": float(mo)} for tp, mo in zip(followups, months)}
        desc = "arm x time (linear in months) + baseline"
    else:
        rhs.append("time")
        rhs += [f"trt_{k}" for k in range(1, len(followups) + 1)]
        contrasts = {tp: {f"trt_{k}": 1.0} for k, tp in enumerate(followups, 1)}
        desc = "arm x time (categorical) + baseline"
    rhs.append("y_bl")
    rhs += [_cov_term(spec, c) for c, _ in spec.covariates]
    for inter in spec.interactions:
        parts = [p.strip() for p in inter.split(":")]
        if len(parts) < 2:
            raise ValueError(f"config key primary.interactions: {inter!r} must be 'a:b'")
        rhs.append(":".join(_cov_term(spec, p) for p in parts))
    rhs += list(extra_terms)
    if spec.covariates:
        desc += " + " + " + ".join(c for c, _ in spec.covariates)
    if spec.interactions:
        desc += " + " + " + ".join(spec.interactions)
    return "y ~ " + " + ".join(rhs), contrasts, desc


def _groups_for(spec: ModelSpec, d: pd.DataFrame, n_followups: int) -> list[str]:
    groups = [g for g in spec.groups if not (g == PID and n_followups == 1)]
    return groups


@dataclass
class Fit:
    """Uniform view of an LMM or OLS fit (estimates, contrasts, variance components)."""

    kind: str
    formula: str
    groups: list[str]
    nobs: int
    contrast_fn: object
    variances: dict[str, float]
    warnings: list[str]
    lmm: object = None

    def contrast(self, L: dict[str, float], level: float) -> pd.Series:
        return self.contrast_fn(L, level)


def _fit_ols(d: pd.DataFrame, formula: str) -> Fit:
    import statsmodels.formula.api as smf

    cols = [c for c in d.columns if re.search(rf"\b{re.escape(c)}\b", formula)]
    dd = d.dropna(subset=cols)
    ols = smf.ols(formula, data=dd).fit()
    names = list(ols.params.index)

    def contrast(L, level):
        vec = np.array([float(L.get(t, 0.0)) for t in names])
        unknown = set(L) - set(names)
        if unknown:
            raise KeyError(f"unknown term(s) {sorted(unknown)}; model terms are {names}")
        est = float(vec @ ols.params.to_numpy())
        se = float(np.sqrt(vec @ ols.cov_params().to_numpy() @ vec))
        df = float(ols.df_resid)
        q = stats.t.ppf(0.5 + level / 2, df)
        return pd.Series({"estimate": est, "se": se, "df": df,
                          "p_value": float(2 * stats.t.sf(abs(est / se), df)),
                          "ci_low": est - q * se, "ci_high": est + q * se})

    return Fit("ols", formula, [], int(ols.nobs), contrast, {"Residual": float(ols.scale)}, [])


def fit_model(d: pd.DataFrame, formula: str, groups: list[str], start=None,
              df_method: str = "satterthwaite") -> Fit:
    """LMM by REML with Satterthwaite or Kenward-Roger df, or OLS when there is no grouping
    level."""
    if not groups:
        return _fit_ols(d, formula)
    fit = fit_lmm(d, formula, groups=groups, reml=True, start=start, df_method=df_method)
    var = dict(zip(fit.variance.component, fit.variance.variance))
    return Fit("lmm", formula, list(groups), fit.nobs, fit.contrast, var,
               list(fit.warnings) + list(fit.notes), lmm=fit)


def _model_label(spec: ModelSpec, fit: Fit, desc: str) -> str:
    if fit.kind == "ols":
        return f"{desc}; ordinary least squares (no random effects)"
    re_ = " + ".join(f"(1 | {g})" for g in fit.groups)
    df = {"kenward_roger": "Kenward-Roger df and adjusted SE"}.get(fit.lmm.df_method,
                                                                    "Satterthwaite df")
    return f"{desc} + {re_}; REML; {df}"


def _counts(d: pd.DataFrame, single_arm: bool = False) -> dict:
    n_sites = int(d[SITE].dropna().nunique()) if SITE in d else 0
    return dict(n=int(len(d)), n_participants=int(d[PID].nunique()),
                n_intervention=int(d.loc[d.treat == 1, PID].nunique()),
                n_control=np.nan if single_arm else int(d.loc[d.treat == 0, PID].nunique()),
                n_sites=n_sites if n_sites else np.nan)


def _model_counts(d: pd.DataFrame, single_arm: bool = False) -> dict:
    """Counts of the whole model: observations (rows), participants, participants per arm and
    sites analysed (``n`` and its siblings count the rows at one follow-up only)."""
    c = _counts(d, single_arm)
    return dict(n_model=c["n"], n_participants_model=c["n_participants"],
                n_intervention_model=c["n_intervention"], n_control_model=c["n_control"],
                n_sites_model=c["n_sites"])


def _variance_cols(fit: Fit, icc_ci: bool, level: float) -> dict:
    v = fit.variances
    out = dict(site_variance=v.get(SITE, np.nan), participant_variance=v.get(PID, np.nan),
               residual_variance=v.get("Residual", np.nan), site_icc=np.nan,
               site_icc_ci_low=np.nan, site_icc_ci_high=np.nan)
    if fit.kind == "lmm" and SITE in fit.groups:
        out["site_icc"] = fit.lmm.icc(SITE)
        if icc_ci:
            out["site_icc_ci_low"], out["site_icc_ci_high"] = fit.lmm.icc_ci(SITE, level)
    return out


def _analysis_rows(d, spec, fit, contrasts, desc, analysis, baseline, primary_tp,
                   is_primary_outcome, icc_ci=True, term=TERM) -> list[dict]:
    rows = []
    var = _variance_cols(fit, icc_ci, spec.level)
    for tp, L in contrasts.items():
        c = fit.contrast(L, spec.level)
        dt = d[d.time == tp] if len(contrasts) > 1 else d
        rows.append(dict(
            outcome=spec.outcome, timepoint=tp, analysis=analysis,
            primary=bool(is_primary_outcome and analysis == "primary" and tp == primary_tp),
            term=term, estimate=float(c["estimate"]), se=float(c["se"]),
            ci_low=float(c["ci_low"]), ci_high=float(c["ci_high"]), df=float(c["df"]),
            p_value=float(c["p_value"]), **_counts(dt), **_model_counts(d),
            **standardised_effect(c["estimate"], c["se"], c["df"], *baseline, spec.level),
            standardised_by=BY_BASELINE_SD, baseline_sd=baseline[0],
            **var, m_imputations=np.nan, fmi=np.nan,
            model=_model_label(spec, fit, desc), warnings=" | ".join(fit.warnings)))
    return rows


def _baseline(linked: pd.DataFrame, outcome: str) -> tuple[float, int]:
    """SD (n - 1 denominator) and number of the non-missing baseline values of ``outcome``."""
    tps = list(linked.timepoint.cat.categories)
    y = pd.to_numeric(linked.loc[linked.timepoint == tps[0], outcome]).dropna()
    return float(y.std(ddof=1)), int(len(y))


def _baseline_sd(linked: pd.DataFrame, outcome: str) -> float:
    return _baseline(linked, outcome)[0]


def standardised_effect(estimate: float, se: float, df: float, baseline_sd: float,
                        n_baseline: int, level: float = 0.95) -> dict[str, float]:
    """Standardised difference with a CI that allows for the sampling error of the SD.

    d = estimate / baseline SD, with the delta-method standard error

        SE(d)^2 = (se / s)^2 + d^2 / (2 (n_baseline - 1)),

    the second term being Var(s) / s^2 for a normal sample, as in the usual large-sample variance
    of Cohen's d; the difference and the baseline SD are treated as independent.  Interval
    d +/- t(level, df) SE(d), on the analysis' df.

    Parameters
    ----------
    estimate, se, df : float
        The adjusted difference in means, its standard error and df (from the model).
    baseline_sd : float
        SD of the outcome at baseline (pooled over arms).
    n_baseline : int
        Participants behind that SD.
    level : float
        Confidence level.

    Returns
    -------
    dict
        standardised_effect, standardised_ci_low, standardised_ci_high.

    References
    ----------
    Hedges LV, Olkin I. Statistical Methods for Meta-Analysis. Orlando: Academic Press, 1985.

    Examples
    --------
    >>> from analysis.outcomes import standardised_effect
    >>> r = standardised_effect(2.0, 0.8, 10.0, 8.0, 160)
    >>> {k: round(v, 4) for k, v in r.items()}
    {'standardised_effect': 0.25, 'standardised_ci_low': 0.025, 'standardised_ci_high': 0.475}
    """
    d = float(estimate) / baseline_sd
    se_d = float(np.sqrt((float(se) / baseline_sd) ** 2 + d * d / (2.0 * (n_baseline - 1))))
    q = float(stats.t.ppf(0.5 + level / 2.0, df))
    return dict(standardised_effect=d, standardised_ci_low=d - q * se_d,
                standardised_ci_high=d + q * se_d)


def _analysable(d: pd.DataFrame, spec: ModelSpec, extra: list[str] = ()) -> pd.DataFrame:
    need = ["y", "y_bl"] + [c for c, _ in spec.covariates] + list(spec.groups) + list(extra)
    return d.dropna(subset=[c for c in dict.fromkeys(need) if c in d]).reset_index(drop=True)


def _check_centres(d: pd.DataFrame, spec: ModelSpec) -> None:
    """Centre fixed effects need both arms within some centre: when every centre has one arm
    only, allocation was by centre and the design is a cluster design."""
    if spec.single_arm or (SITE, "categorical") not in spec.covariates or not len(d):
        return
    arms_per_centre = d.groupby(SITE, observed=True).treat.nunique()
    if (arms_per_centre < 2).all():
        raise ValueError(f"outcome {spec.outcome!r}: every centre has participants in one arm only, so "
                         "centre fixed effects (design.centre_effect: fixed) cannot be estimated beside the "
                         "arm; if sites were randomised, the design is design.type: cluster")


def _set_followups(d: pd.DataFrame, fu: list[str]) -> pd.DataFrame:
    """Keep the rows of follow-ups ``fu`` and rebuild the time factor and the arm x time
    indicators for exactly those follow-ups."""
    d = d[d.time.astype(str).isin(fu)].copy()
    d["time"] = pd.Categorical(d.time.astype(str), categories=list(fu))
    for c in [c for c in d.columns if c.startswith("trt_")]:
        del d[c]
    for k, tp in enumerate(fu, 1):
        d[f"trt_{k}"] = d.treat * (d.time == tp)
    return d.reset_index(drop=True)


def estimable_followups(d: pd.DataFrame, fu: list[str], spec: ModelSpec) -> tuple[list[str], dict[str, str]]:
    """Follow-ups with analysable data (in both arms unless single-arm); the others with why."""
    ok, why = [], {}
    for tp in fu:
        at = d[d.time.astype(str) == tp]
        if not len(at):
            why[tp] = f"not estimable: no participant has {spec.outcome} (with its baseline value) at {tp}"
        elif not spec.single_arm and at.treat.nunique() < 2:
            arm = "control" if (at.treat == 1).all() else "intervention"
            why[tp] = f"not estimable: no participant in the {arm} arm has {spec.outcome} at {tp}"
        else:
            ok.append(tp)
    return ok, why


def _not_estimable_rows(spec: ModelSpec, why: dict[str, str], analysis: str, term: str) -> list[dict]:
    return [dict(outcome=spec.outcome, timepoint=tp, analysis=analysis, primary=False, term=term,
                 warnings=w) for tp, w in why.items()]


def primary_effects(linked: pd.DataFrame, spec: ModelSpec, primary_tp: str,
                    is_primary_outcome: bool = True, analysis: str = "primary",
                    complete_case: bool = False, icc_ci: bool = True) -> pd.DataFrame:
    """The prespecified model on observed data (all available follow-ups), or on complete
    cases (participants with the outcome at every follow-up).  A follow-up at which the
    outcome was not measured (or not in both arms) is left out of the model and gets a row
    saying why, so the other follow-ups are still estimated."""
    d = long_frame(linked, spec)
    fu = list(d.time.cat.categories)
    n_all = len(d)
    d = _analysable(d, spec)
    _check_centres(d, spec)
    fu_ok, why = estimable_followups(d, fu, spec)
    dropped = _not_estimable_rows(spec, why, analysis, TERM)
    if not fu_ok:
        return _frame(dropped)
    if len(fu_ok) < len(fu):
        n_all = int((long_frame(linked, spec).time.astype(str).isin(fu_ok)).sum())
        d = _set_followups(d, fu_ok)
    months = [float(d.loc[d.time == t, "month"].iloc[0]) for t in fu_ok]
    note = []
    if complete_case:
        full = d.groupby(PID).y.transform("size") == len(fu_ok)
        d = d[full].reset_index(drop=True)
        note.append(f"complete cases: {d[PID].nunique()} participants with {spec.outcome} "
                    f"at every follow-up")
    elif n_all > len(d):
        note.append(f"{n_all - len(d)} of {n_all} follow-up rows not analysed (outcome, "
                    "baseline or a covariate missing)")
    if why:
        note.append("follow-up(s) " + ", ".join(why) + f" not in the model: {spec.outcome} not measured there")
    formula, contrasts, desc = design(spec, fu_ok, months)
    fit = fit_model(d, formula, _groups_for(spec, d, len(fu_ok)), df_method=spec.df_method)
    fit.warnings = note + fit.warnings if complete_case else fit.warnings + note
    rows = _analysis_rows(d, spec, fit, contrasts, desc, analysis, _baseline(linked, spec.outcome),
                          primary_tp, is_primary_outcome, icc_ci=icc_ci)
    return _frame(rows + dropped)


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=EFFECT_COLUMNS)


def ancova_effects(linked: pd.DataFrame, outcome: str, *, intervention_arm: str,
                   clustered: bool, primary_timepoint: str, covariates: list | None = None,
                   level: float = 0.95, spec: ModelSpec | None = None,
                   is_primary_outcome: bool = True, icc_ci: bool = False) -> pd.DataFrame:
    """ANCOVA at each follow-up separately: ``y ~ treat + y_bl [+ covariates] + (1 | site)``.

    With a single follow-up this is the primary model (``analysis == 'primary'``); with several it
    is a supportive analysis (``analysis == 'ancova'``).  The site random intercept is fitted in a
    cluster design (:func:`analysis.lmm.fit_lmm`, Satterthwaite df), ordinary least squares
    otherwise.

    Parameters
    ----------
    linked : pandas.DataFrame
        The linked analysis table (one row per participant x time point).
    outcome : str
        Score column.
    intervention_arm : str
        The arm coded 1 in ``treat``.
    clustered : bool
        Add a random intercept for site.
    primary_timepoint : str
        The follow-up whose row is the primary one (when it is the only follow-up).
    covariates : list of str, optional
        Baseline covariates (numeric or categorical, by dtype).
    level : float
        Confidence level.
    spec : ModelSpec, optional
        A full model specification (:func:`model_spec`), instead of the arguments above.
    is_primary_outcome : bool
        Whether ``outcome`` is the trial's primary outcome.
    icc_ci : bool
        Add the profile-likelihood CI of the site ICC.

    Returns
    -------
    pandas.DataFrame
        One row per follow-up, columns ``EFFECT_COLUMNS`` (estimate, se, ci_low, ci_high, df,
        p_value, counts, the standardised effect, variance components, warnings).

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S. Fitting linear mixed-effects models using lme4. J
    Stat Softw 2015;67(1):1-48.

    Vickers AJ, Altman DG. Analysing controlled trials with baseline and follow up measurements.
    BMJ 2001;323:1123-1124.

    Examples
    --------
    The committed demo trial (sites randomised), unadjusted for covariates:

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> from analysis.outcomes import ancova_effects
    >>> e = ancova_effects(t["linked"], "wemwbs_total", intervention_arm="intervention", clustered=True,
    ...                    primary_timepoint="m9")
    >>> print(e[["analysis", "timepoint", "estimate", "ci_low", "ci_high"]].round(2).to_string(index=False))
    analysis timepoint  estimate  ci_low  ci_high
      ancova        m3      1.50   -1.34     4.35
      ancova        m9      3.04   -0.36     6.45
    """
    if spec is None:
        covs = [(c, "auto") for c in (covariates or [])]
        covs = [(c, "numeric" if pd.api.types.is_numeric_dtype(linked[c]) else "categorical")
                for c, _ in covs]
        spec = ModelSpec(outcome=outcome, intervention_arm=intervention_arm, covariates=covs,
                         groups=[SITE] if clustered else [], level=level)
    d_all = long_frame(linked, spec)
    fu = list(d_all.time.cat.categories)
    analysis = "primary" if len(fu) == 1 else "ancova"
    groups = [g for g in spec.groups if g != PID]
    rows = []
    ok, why = estimable_followups(_analysable(d_all, spec), fu, spec)
    rows += _not_estimable_rows(spec, why, analysis, TERM)
    for tp in ok:
        d = _analysable(d_all[d_all.time == tp], spec)
        formula, _, desc = design(spec, [tp], [0.0])
        fit = fit_model(d, formula, groups, df_method=spec.df_method)
        rows += _analysis_rows(d, spec, fit, {tp: {"treat": 1.0}}, desc, analysis,
                               _baseline(linked, outcome), primary_timepoint,
                               is_primary_outcome, icc_ci=icc_ci)
    return _frame(rows)


# --------------------------------------------------------------------------
# multiple imputation
# --------------------------------------------------------------------------

def wide_frame(linked: pd.DataFrame, spec: ModelSpec, auxiliary: list[str] = (),
               followups: list[str] | None = None) -> pd.DataFrame:
    """One row per participant: site, treat, covariates, auxiliary variables and the outcome
    at baseline and every follow-up (``y__<timepoint>``; only ``followups`` if given); the
    imputation model's data."""
    tps = [str(t) for t in linked.timepoint.cat.categories]
    if followups is not None:
        tps = tps[:1] + [t for t in tps[1:] if t in followups]
    _check_columns(linked, spec, list(auxiliary))
    first = linked[linked.timepoint == tps[0]].drop_duplicates(PID).set_index(PID)
    w = pd.DataFrame(index=first.index)
    if SITE in first:
        w[SITE] = first[SITE].astype(str)
    w["treat"] = (first.arm == spec.intervention_arm).astype(float)
    for c in dict.fromkeys([c for c, _ in spec.covariates] + list(auxiliary)):
        if c in (SITE, PID, "treat"):
            continue
        col = first[c]
        typ = dict(spec.covariates).get(c)
        if typ is None:
            typ = "numeric" if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
                else "categorical"
        w[c] = pd.to_numeric(col).astype(float) if typ == "numeric" else \
            col.astype(object).where(col.notna(), None)
    y = linked.assign(_tp=linked.timepoint.astype(str)).pivot(index=PID, columns="_tp",
                                                               values=spec.outcome)
    for tp in tps:
        w[f"y__{tp}"] = pd.to_numeric(y[tp]).astype(float).reindex(w.index) if tp in y else np.nan
    if SITE in w and w[SITE].nunique() < 2:
        w = w.drop(columns=SITE)
    return w


def _long_from_wide(w: pd.DataFrame, linked: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    tps = [str(t) for t in linked.timepoint.cat.categories]
    fu = [t for t in tps[1:] if f"y__{t}" in w.columns]
    months = linked.groupby(linked.timepoint.astype(str), observed=True).month.first().reindex(tps)
    parts = []
    for k, tp in enumerate(fu, 1):
        p = pd.DataFrame({PID: w.index, "y": w[f"y__{tp}"].to_numpy(),
                          "y_bl": w[f"y__{tps[0]}"].to_numpy(), "treat": w.treat.to_numpy(),
                          "timepoint": tp, "month": float(months[tp])})
        for c, _ in spec.covariates:
            p[c] = w[c].to_numpy()
        parts.append(p)
    d = pd.concat(parts, ignore_index=True)
    site = linked.drop_duplicates(PID).set_index(PID)[SITE] if SITE in linked else None
    if site is not None and site.notna().any():
        d[SITE] = d[PID].map(site).astype(str)
    d["time"] = pd.Categorical(d.timepoint, categories=fu)
    for k, tp in enumerate(fu, 1):
        d[f"trt_{k}"] = d.treat * (d.time == tp)
    d["treat_month"] = d.treat * d.month
    _type_covariates(d, spec)
    return d


def _seed(base: int, outcome: str) -> int:
    return int((int(base) * 1_000_003 + zlib.crc32(outcome.encode())) % (2**32))


def multiply_impute(linked: pd.DataFrame, spec: ModelSpec, m: int, iterations: int, seed: int,
                    donors: int = 5, auxiliary: list[str] = (), method: str = "pmm",
                    followups: list[str] | None = None) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The wide data (with missing values) and ``m`` completed copies; ``method`` (pmm or
    norm) imputes the numeric variables; ``followups`` restricts the outcome columns to
    follow-ups where it was measured."""
    w = wide_frame(linked, spec, auxiliary, followups)
    methods = {c: method for c in w.columns if method != "pmm" and c in default_methods(w)
               and default_methods(w)[c] == "pmm"}
    imps = impute(w, m=m, iterations=iterations, seed=_seed(seed, spec.outcome), donors=donors,
                  methods=methods)
    return w, imps


def pooled_effects(linked: pd.DataFrame, spec: ModelSpec, w: pd.DataFrame, imps: list[pd.DataFrame],
                   primary_tp: str, delta: float = 0.0, shift_arm: float | None = 1.0,
                   analysis: str = "multiple_imputation") -> pd.DataFrame:
    """Fit the prespecified model to each completed data set and pool by Rubin's rules.

    ``delta`` is added to the *imputed* follow-up values of the arm with treat == shift_arm
    (both arms when shift_arm is None): the delta-adjusted (MNAR) sensitivity analysis.
    The complete-data df for Barnard-Rubin is the median over the imputations of the
    contrast's small-sample df (n - p for least squares): every completed data set is a
    complete data set, so each gives an estimate of it, and the median is not moved by the
    few imputations whose site variance is estimated at zero (where Satterthwaite df jump
    towards n - p). A fit that does not converge (after a refit from the default starting
    values) stops the analysis: it is never pooled."""
    tps = [str(t) for t in linked.timepoint.cat.categories]
    fu = [t for t in tps[1:] if f"y__{t}" in w.columns]
    months = [float(linked.loc[linked.timepoint == t, "month"].iloc[0]) for t in fu]
    formula, contrasts, desc = design(spec, fu, months)
    groups = [g for g in _groups_for(spec, None, len(fu)) if g in (SITE, PID)]
    if SITE not in w.columns and SITE in groups and linked[SITE].nunique() < 2:
        groups.remove(SITE)
    est = {tp: [] for tp in fu}
    var = {tp: [] for tp in fu}
    dfs = {tp: [] for tp in fu}
    warns: list[str] = []
    fit = None
    for i_imp, imp in enumerate(imps, 1):
        progress.step("imputation", i_imp, len(imps))
        imp = imp.copy()
        if delta:
            rows = np.ones(len(imp), bool) if shift_arm is None else (imp.treat == shift_arm).to_numpy()
            for tp in fu:
                mis = w[f"y__{tp}"].isna().to_numpy() & rows
                imp.loc[mis, f"y__{tp}"] += delta
        d = _long_from_wide(imp, linked, spec)
        start = None if fit is None or fit.lmm is None else [fit.lmm.theta[g] for g in groups]
        fit = fit_model(d, formula, groups, start=start, df_method=spec.df_method)
        if fit.lmm is not None and not fit.lmm.converged:
            why = next((m for m in fit.lmm.warnings if "converge" in m), "")
            raise RuntimeError(
                f"multiple imputation of {spec.outcome!r}: the model did not converge on "
                f"imputed data set {i_imp} of {len(imps)}, even when fitted from the default "
                f"starting values, so its estimate cannot be pooled. {why} Check the model "
                "(e.g. primary.clustering) and the imputation settings "
                "(outcomes.multiple_imputation).")
        for tp, L in contrasts.items():
            c = fit.contrast(L, spec.level)
            est[tp].append(c["estimate"])
            var[tp].append(c["se"] ** 2)
            dfs[tp].append(c["df"])
        for wmsg in fit.warnings:
            if wmsg not in warns:
                warns.append(wmsg)
    bsd, n_bl = _baseline(linked, spec.outcome)
    rows = []
    for tp in fu:
        dfcom = float(np.median(dfs[tp]))
        p = pool(est[tp], var[tp], df_complete=dfcom, level=spec.level)
        rows.append(dict(
            outcome=spec.outcome, timepoint=tp, analysis=analysis, primary=False, term=TERM,
            estimate=p["qbar"], se=p["se"], ci_low=p["ci_low"], ci_high=p["ci_high"], df=p["df"],
            p_value=p["p_value"], n=int(len(w)), n_participants=int(len(w)),
            n_intervention=int((w.treat == 1).sum()), n_control=int((w.treat == 0).sum()),
            n_sites=int(w[SITE].nunique()) if SITE in w else np.nan,
            n_model=int(len(w) * len(fu)), n_participants_model=int(len(w)),
            n_intervention_model=int((w.treat == 1).sum()), n_control_model=int((w.treat == 0).sum()),
            n_sites_model=int(w[SITE].nunique()) if SITE in w else np.nan,
            **standardised_effect(p["qbar"], p["se"], p["df"], bsd, n_bl, spec.level),
            standardised_by=BY_BASELINE_SD, baseline_sd=bsd, m_imputations=len(imps),
            fmi=p["fmi"],
            model=(_model_label(spec, fit, desc) + f"; {len(imps)} imputations (chained "
                   "equations, PMM), Rubin's rules, Barnard-Rubin df"),
            warnings=(f"in some imputations: {' | '.join(warns)}" if warns else "")))
    return _frame(rows)


def shift_sign(direction: str) -> float:
    """Sign of a shift towards a *worse* outcome: down when higher is better, up when lower is."""
    return -1.0 if direction == "higher" else 1.0


def tipping_point(linked: pd.DataFrame, spec: ModelSpec, w: pd.DataFrame, imps: list[pd.DataFrame],
                  primary_tp: str, deltas_sd: list[float], shift: str = "intervention",
                  direction: str = "higher", resolution: float = 0.01,
                  unshifted: pd.DataFrame | None = None) -> pd.DataFrame:
    """Delta-adjusted MI: imputed follow-up values of the shifted arm are moved towards a worse
    outcome by ``size`` baseline SDs (down when higher is better, up when lower is better;
    a negative size moves them towards better) and the imputed data re-pooled.

    The shift is added to the imputed values after imputation (it is not carried into the
    imputation of later waves).  Rows: every size on the grid (0 included) at every follow-up,
    ``tipping_point`` True on the first size (by increasing |size|, worse side first) at which
    the CI of the difference at that follow-up no longer lies on the same side of zero as at
    size 0 (or, when it includes zero at size 0, the first at which it no longer does); and, at
    the primary follow-up, the exact tipping size found by root-finding between that grid value
    and the previous one (``kind`` = ``tipping value``, to ``resolution`` SD).

    Each size is pooled once (the root-finding starts from two grid sizes already pooled);
    ``unshifted``, the ordinary MI result (:func:`pooled_effects` of the same ``imps`` with no
    shift), is taken as size 0 instead of refitting the same imputed data sets again: the
    shift is zero there, so the refits would repeat it exactly."""
    bsd = _baseline_sd(linked, spec.outcome)
    shift_arm = {"intervention": 1.0, "control": 0.0, "both": None}[shift]
    sign = shift_sign(direction)
    towards = "worse"
    done: dict[float, pd.DataFrame] = {} if unshifted is None else {0.0: unshifted}

    def pooled(size):
        size = float(size) + 0.0  # -0.0 and 0.0 are the same shift
        if size not in done:
            done[size] = pooled_effects(linked, spec, w, imps, primary_tp, delta=sign * size * bsd,
                                        shift_arm=shift_arm)
        return done[size]

    def row(r, size, kind):
        return dict(outcome=spec.outcome, timepoint=r.timepoint, kind=kind, shift_sd=size,
                    towards=towards if size >= 0 else "better", delta_sd=sign * size + 0.0,
                    delta=sign * size * bsd + 0.0, arm_shifted=shift, estimate=r.estimate, se=r.se,
                    ci_low=r.ci_low, ci_high=r.ci_high, df=r.df, p_value=r.p_value,
                    m_imputations=r.m_imputations, tipping_point=False)

    rows = []
    grid = sorted(set([0.0] + [float(x) for x in deltas_sd]), key=lambda x: (abs(x), -x))
    for k, size in enumerate(grid, 1):
        progress.step("shift", k, len(grid))
        for r in pooled(size).itertuples():
            if pd.notna(r.estimate):
                rows.append(row(r, size, "grid"))
    out = pd.DataFrame(rows, columns=TIPPING_COLUMNS)

    def side(lo, hi):
        return 1 if lo > 0 else (-1 if hi < 0 else 0)

    exact = []
    for tp, g in out.groupby("timepoint", sort=False):
        s0 = side(g.iloc[0].ci_low, g.iloc[0].ci_high)
        for half in (g[g.shift_sd >= 0], g[g.shift_sd <= 0]):
            half = half.sort_values("shift_sd", key=abs)
            prev = half.iloc[0]
            for idx, r in half.iloc[1:].iterrows():
                s1 = side(r.ci_low, r.ci_high)
                if s1 != s0:
                    out.loc[idx, "tipping_point"] = True
                    if tp == primary_tp:
                        bound = "ci_low" if (s0 == 1 or (s0 == 0 and s1 == 1)) else "ci_high"
                        exact.append(_tipping_value(pooled, tp, bound, prev.shift_sd, r.shift_sd,
                                                    resolution, row))
                    break
                prev = r
            else:
                continue
            break
    if exact:
        out = pd.concat([out, pd.DataFrame(exact, columns=TIPPING_COLUMNS)], ignore_index=True)
    return out


def _tipping_value(pooled, tp: str, bound: str, a: float, b: float, resolution: float, row) -> dict:
    """The shift size between grid values ``a`` and ``b`` at which the CI bound ``bound`` of
    the difference at ``tp`` reaches zero (Brent's method to ``resolution`` SD)."""
    from scipy.optimize import brentq

    def f(size):
        r = pooled(size)
        return float(r.loc[r.timepoint == tp, bound].iloc[0])

    root = brentq(f, a, b, xtol=resolution / 4)
    size = float(np.round(root / resolution) * resolution)
    r = pooled(size)
    r = next(x for x in r.itertuples() if x.timepoint == tp)
    out = row(r, size, "tipping value")
    out["tipping_point"] = True
    return out


# --------------------------------------------------------------------------
# effect modification
# --------------------------------------------------------------------------

def modifier_column(linked: pd.DataFrame, mod: dict, tables: dict[str, pd.DataFrame]) -> pd.Series:
    """The modifier for every row of ``linked`` (categorical labels)."""
    var = mod["variable"]
    src = mod.get("source", "linked")
    if src == "linked":
        if var not in linked:
            raise KeyError(f"config key outcomes.effect_modifiers: {var!r} is not a column of the "
                           f"linked table; available: {sorted(linked.columns)}")
        col = linked[var]
    else:
        t = tables.get(src)
        if t is None or var not in t or SITE not in t:
            raise KeyError(f"config key outcomes.effect_modifiers: {var!r} not found in the "
                           f"{src} table (needs columns site_id and {var})")
        per_site = t.groupby(SITE)[var].mean()
        col = linked[SITE].map(per_site)
    cutoff = mod.get("cutoff")
    if cutoff is not None:
        x = pd.to_numeric(col)
        lab = np.where(x.isna(), None, np.where(x >= cutoff, f"high (>= {cutoff:g})",
                                                f"low (< {cutoff:g})"))
        col = pd.Series(lab, index=linked.index, dtype=object)
    return col.astype(object).where(col.notna(), None)


def effect_modification(linked: pd.DataFrame, spec: ModelSpec, mod: dict,
                        tables: dict[str, pd.DataFrame], primary_tp: str) -> pd.DataFrame:
    """Treatment x modifier interaction added to the prespecified model.

    The modifier M (categorical; numeric ones are dichotomised at ``cutoff``) enters as
    treat x [M = level] for every non-reference level, common to all follow-ups, plus its
    main effect when it is defined in the control arm too. A modifier defined only in the
    intervention arm (site fidelity) has no main effect: control rows form the comparison
    for every level. Rows: the interaction (difference in effect, level vs reference) and the
    effect within each level at each follow-up."""
    name = mod.get("label") or mod["variable"]
    lk = linked.copy()
    lk["_mod"] = modifier_column(linked, mod, tables)
    d = long_frame(lk, spec, extra=["_mod"])
    fu = list(d.time.cat.categories)
    d = _analysable(d, spec)
    fu_ok, _ = estimable_followups(d, fu, spec)
    if not fu_ok:
        return _frame([])
    if len(fu_ok) < len(fu):  # a follow-up without the outcome is left out, as in the primary model
        d, fu = _set_followups(d, fu_ok), fu_ok
    months = [float(d.loc[d.time == t, "month"].iloc[0]) for t in fu]
    ctrl_defined = d.loc[d.treat == 0, "_mod"].notna().any()
    d = d[d._mod.notna() | ((d.treat == 0) & ~ctrl_defined)].reset_index(drop=True)
    levels = sorted(d._mod.dropna().unique(), key=str)
    if mod.get("cutoff") is not None:  # low first: the reference
        levels = sorted(levels, key=lambda v: not str(v).startswith("low"))
    if mod.get("reference") is not None:
        if mod["reference"] not in levels:
            raise ValueError(f"effect modifier {name!r}: reference {mod['reference']!r} is not "
                             f"one of its levels {levels}")
        levels = [mod["reference"]] + [v for v in levels if v != mod["reference"]]
    if len(levels) < 2:
        raise ValueError(f"effect modifier {name!r}: fewer than two levels among analysed rows "
                         f"({levels})")
    ref = levels[0]
    extra = []
    # a modifier that is already a categorical covariate of the model (a stratification factor,
    # say) has its main effect there: adding it again would alias it
    in_model = mod.get("source", "linked") == "linked" and mod.get("cutoff") is None and \
        dict(spec.covariates).get(mod["variable"]) == "categorical"
    for k, lev in enumerate(levels[1:], 1):
        d[f"mod_{k}"] = (d._mod == lev).astype(float)
        d[f"trtmod_{k}"] = d.treat * d[f"mod_{k}"]
        extra += ([f"mod_{k}"] if ctrl_defined and not in_model else []) + [f"trtmod_{k}"]
    formula, contrasts, desc = design(spec, fu, months, extra)
    fit = fit_model(d, formula, _groups_for(spec, d, len(fu)), df_method=spec.df_method)
    label = _model_label(spec, fit, desc + f" + treat x {name}")
    bsd, n_bl = _baseline(linked, spec.outcome)
    rows = []

    def row(tp, term, L, sub):
        c = fit.contrast(L, spec.level)
        rows.append(dict(outcome=spec.outcome, timepoint=tp, analysis=f"effect_modification:{name}",
                         primary=False, term=term, estimate=c["estimate"], se=c["se"],
                         ci_low=c["ci_low"], ci_high=c["ci_high"], df=c["df"], p_value=c["p_value"],
                         **_counts(sub), **_model_counts(d), standardised_by=BY_BASELINE_SD, baseline_sd=bsd,
                         **standardised_effect(c["estimate"], c["se"], c["df"], bsd, n_bl, spec.level),
                         **_variance_cols(fit, False, spec.level), model=label,
                         warnings=" | ".join(fit.warnings)))

    for k, lev in enumerate(levels[1:], 1):
        row("all follow-ups", f"interaction: {name} {lev} vs {ref}", {f"trtmod_{k}": 1.0}, d)
    for tp, L in contrasts.items():
        sub_tp = d[d.time == tp]
        for k, lev in enumerate(levels):
            L2 = dict(L)
            if k:
                L2[f"trtmod_{k}"] = 1.0
            row(tp, f"{TERM}, {name} = {lev}", L2,
                sub_tp[(sub_tp._mod == lev) | ((sub_tp.treat == 0) & ~ctrl_defined)])
    return _frame(rows)


# --------------------------------------------------------------------------
# everything for one outcome
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# single-arm (pre-post) studies
# --------------------------------------------------------------------------

def paired_change(linked: pd.DataFrame, spec: ModelSpec, primary_tp: str, is_primary_outcome: bool,
                  analysis: str = "paired_change") -> pd.DataFrame:
    """Mean change from baseline at each follow-up over the participants measured at both
    (paired t interval, df n - 1) and the standardised response mean (mean change / SD of
    change)."""
    d = long_frame(linked, spec)
    bsd = _baseline_sd(linked, spec.outcome)
    rows = []
    for tp in d.time.cat.categories:
        g = d[(d.time == tp) & d.y.notna() & d.y_bl.notna()]
        ch = (g.y - g.y_bl).to_numpy(float)
        n = len(ch)
        row = dict(outcome=spec.outcome, timepoint=str(tp), analysis=analysis,
                   primary=bool(is_primary_outcome and analysis == "primary" and str(tp) == primary_tp),
                   term=CHANGE_TERM, n=n, n_participants=n, n_intervention=n, n_control=np.nan,
                   n_sites=_counts(g, True)["n_sites"] if n else np.nan,
                   n_model=2 * n, n_participants_model=n, n_intervention_model=n, n_control_model=np.nan,
                   n_sites_model=_counts(g, True)["n_sites"] if n else np.nan, baseline_sd=bsd,
                   standardised_by=BY_CHANGE_SD,
                   model="paired mean change from baseline (participants measured at baseline and "
                         f"{tp}); t interval with n - 1 df; standardised response mean = mean change / "
                         "SD of change")
        if n < 2:
            row["warnings"] = f"not estimable: {n} participant(s) measured at baseline and {tp}"
        else:
            mean, sd = float(ch.mean()), float(ch.std(ddof=1))
            se = sd / np.sqrt(n)
            q = stats.t.ppf(0.5 + spec.level / 2, n - 1)
            row.update(estimate=mean, se=se, ci_low=mean - q * se, ci_high=mean + q * se, df=float(n - 1),
                       p_value=float(2 * stats.t.sf(abs(mean / se), n - 1)) if se > 0 else np.nan,
                       warnings="")
            if sd > 0:  # SRM with its CI: SE^2 = 1/n + SRM^2 / (2(n - 1)), the same delta method
                row.update(standardised_effect(mean, se, n - 1, sd, n, spec.level))
        rows.append(row)
    return _frame(rows)


def change_model(linked: pd.DataFrame, spec: ModelSpec, primary_tp: str, is_primary_outcome: bool,
                 analysis: str = "primary", complete_case: bool = False, icc_ci: bool = True) -> pd.DataFrame:
    """Single-arm mixed model over all waves, baseline included: ``y ~ wave_1 + ... + wave_K
    [+ covariates] + (1 | participant) [+ (1 | site)]``; the change at follow-up k is the
    coefficient of wave_k (valid under MAR, using every observed wave)."""
    tps = [str(t) for t in linked.timepoint.cat.categories]
    keep = list(dict.fromkeys([PID, SITE, "timepoint", "month", spec.outcome]
                              + [c for c, _ in spec.covariates] + list(spec.groups)))
    d = linked[[c for c in keep if c in linked.columns]].copy()
    d["y"] = pd.to_numeric(d[spec.outcome]).astype(float)
    d["treat"] = 1.0
    d["time"] = pd.Categorical(d.timepoint.astype(str), categories=tps)
    _type_covariates(d, spec)
    n_all = len(d)
    d = d.dropna(subset=["y"] + [c for c, _ in spec.covariates] + [g for g in spec.groups if g in d])
    fu = [t for t in tps[1:] if (d.time == t).any()]
    why = {t: f"not estimable: no participant has {spec.outcome} at {t}" for t in tps[1:] if t not in fu}
    dropped = _not_estimable_rows(spec, why, analysis, CHANGE_TERM)
    if not fu or not (d.time == tps[0]).any():
        return _frame(dropped)
    d = d[d.time.isin([tps[0]] + fu)].reset_index(drop=True)
    note = []
    if complete_case:
        full = d.groupby(PID).y.transform("size") == len(fu) + 1
        d = d[full].reset_index(drop=True)
        note.append(f"complete cases: {d[PID].nunique()} participants with {spec.outcome} at every wave")
    elif n_all > len(d):
        note.append(f"{n_all - len(d)} of {n_all} participant x wave rows not analysed (outcome or a "
                    "covariate missing)")
    for k, t in enumerate(fu, 1):
        d[f"wave_{k}"] = (d.time == t).astype(float)
    rhs = [f"wave_{k}" for k in range(1, len(fu) + 1)] + [_cov_term(spec, c) for c, _ in spec.covariates]
    formula = "y ~ " + " + ".join(rhs)
    groups = [g for g in spec.groups if g in d]
    fit = fit_model(d, formula, groups, df_method=spec.df_method)
    fit.warnings = note + fit.warnings if complete_case else fit.warnings + note
    desc = "change from baseline over all waves (time as a factor, baseline the reference)"
    if spec.covariates:
        desc += " + " + " + ".join(c for c, _ in spec.covariates)
    contrasts = {t: {f"wave_{k}": 1.0} for k, t in enumerate(fu, 1)}
    bsd, n_bl = _baseline(linked, spec.outcome)
    rows = []
    var = _variance_cols(fit, icc_ci, spec.level)
    for t, L in contrasts.items():
        c = fit.contrast(L, spec.level)
        dt = d[d.time == t]
        rows.append(dict(
            outcome=spec.outcome, timepoint=t, analysis=analysis,
            primary=bool(is_primary_outcome and analysis == "primary" and t == primary_tp),
            term=CHANGE_TERM, estimate=float(c["estimate"]), se=float(c["se"]),
            ci_low=float(c["ci_low"]), ci_high=float(c["ci_high"]), df=float(c["df"]),
            p_value=float(c["p_value"]), **_counts(dt, single_arm=True), **_model_counts(d, single_arm=True),
            **standardised_effect(c["estimate"], c["se"], c["df"], bsd, n_bl, spec.level),
            standardised_by=BY_BASELINE_SD, baseline_sd=bsd,
            **var, m_imputations=np.nan, fmi=np.nan, model=_model_label(spec, fit, desc),
            warnings=" | ".join(fit.warnings)))
    return _frame(rows + dropped)


# --------------------------------------------------------------------------
# everything for one outcome
# --------------------------------------------------------------------------

def populations(linked: pd.DataFrame, cfg: dict) -> list[tuple[str, pd.DataFrame]]:
    """("all", everyone), then one (level, subset) per level of ``design.population``."""
    var = cfg["design"].get("population")
    out = [("all", linked)]
    if var:
        levels = [str(v) for v in (cfg.get("covariates") or {}).get(var, {}).get("levels") or []]
        seen = sorted(str(v) for v in linked[var].dropna().unique())
        for lev in [v for v in levels if v in seen] + [v for v in seen if v not in levels]:
            out.append((lev, linked[linked[var].astype(str) == lev]))
    return out


def analyse_outcome(linked: pd.DataFrame, cfg: dict, outcome: str, primary_tp: str,
                    tables: dict[str, pd.DataFrame] | None = None,
                    log=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All configured analyses of one outcome, for all participants and within each population.

    The prespecified model (repeated measures over the follow-ups with a baseline adjustment,
    random intercepts for participant and, in a cluster design, site), the separate ANCOVA per
    follow-up, multiple imputation and complete-case sensitivity analyses, the tipping-point
    analysis (all participants) and effect modification, as the config asks; a single-arm study
    gets change-from-baseline analyses instead.  Populations come from ``design.population``.

    Parameters
    ----------
    linked : pandas.DataFrame
        The linked analysis table (one row per participant x time point).
    cfg : dict
        The validated config (design, primary, outcomes, covariates).
    outcome : str
        Score column.
    primary_tp : str
        The primary time point (:func:`analysis.config.primary_timepoint`).
    tables : dict of pandas.DataFrame, optional
        Other tables effect modifiers are read from (``fidelity``, ``sites``).
    log : logging.Logger, optional
        Where to log progress notes.

    Returns
    -------
    effects : pandas.DataFrame
        One row per population, analysis, time point (and modifier level), columns
        ``EFFECT_COLUMNS``; ``primary`` marks the primary analysis of the primary time point.
    tipping_point : pandas.DataFrame
        The tipping-point rows (``TIPPING_COLUMNS``), empty when not run.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S. Fitting linear mixed-effects models using lme4. J
    Stat Softw 2015;67(1):1-48.

    Vickers AJ, Altman DG. Analysing controlled trials with baseline and follow up measurements.
    BMJ 2001;323:1123-1124.

    Rubin DB. Multiple Imputation for Nonresponse in Surveys. New York: Wiley, 1987.

    Examples
    --------
    The committed demo trial, with 5 imputations instead of 20 and no tipping point (quicker):

    >>> from pathlib import Path
    >>> import analysis
    >>> from analysis.config import load_config
    >>> from analysis.pipeline import prepare
    >>> root = Path(analysis.__file__).parent.parent
    >>> cfg = load_config(root / "config/config.yaml")
    >>> t = prepare(cfg, root / cfg["data"]["raw_dir"])
    >>> from analysis.config import primary_timepoint
    >>> from analysis.outcomes import analyse_outcome
    >>> cfg["outcomes"]["multiple_imputation"].update(m=5, iterations=5)
    >>> cfg["outcomes"]["tipping_point"]["enabled"] = False
    >>> eff, tip = analyse_outcome(t["linked"], cfg, "wemwbs_total", primary_timepoint(cfg),
    ...                            tables={"fidelity": t["fidelity"], "sites": t["sites"]})
    >>> print(eff[eff.timepoint == "m9"][["analysis", "primary", "estimate", "ci_low", "ci_high"]].head(4).round(2)
    ...       .to_string(index=False))
               analysis  primary  estimate  ci_low  ci_high
                primary     True      3.37    0.16     6.59
                 ancova    False      3.04   -0.39     6.48
    multiple_imputation    False      3.26   -1.07     7.60
          complete_case    False      3.62    0.78     6.45
    """
    effs, tips = [], []
    var = cfg["design"].get("population")
    for pop, lk in populations(linked, cfg):
        spec = model_spec(cfg, outcome, lk)
        if pop != "all":
            spec.covariates = [(c, t) for c, t in spec.covariates if c != var]
            if log is not None:
                log.info("%s: population %s (%d participants)", outcome, pop, lk.participant_id.nunique())
        with progress.task(f"population {pop}") if var else nullcontext():
            eff, tip = _analyse_one(lk, cfg, spec, primary_tp, tables or {}, log, pop == "all")
        eff["population"] = pop
        effs.append(eff)
        if pop == "all":
            tips.append(tip)
    eff = pd.concat(effs, ignore_index=True).reindex(columns=EFFECT_COLUMNS)
    eff["primary"] = eff.primary.fillna(False).astype(bool) & (eff.population == "all")
    return eff, (tips[0] if tips else pd.DataFrame(columns=TIPPING_COLUMNS))


def _analyse_one(linked: pd.DataFrame, cfg: dict, spec: ModelSpec, primary_tp: str,
                 tables: dict, log, with_modifiers: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    oc = cfg.get("outcomes", {})
    outcome = spec.outcome
    is_primary = outcome == cfg["primary"]["outcome"]
    fu = [str(t) for t in linked.timepoint.cat.categories][1:]
    tip = pd.DataFrame(columns=TIPPING_COLUMNS)
    if not fu:
        return _frame([]), tip
    if spec.single_arm:
        if len(fu) == 1:
            parts = [paired_change(linked, spec, primary_tp, is_primary, analysis="primary")]
        else:
            parts = [change_model(linked, spec, primary_tp, is_primary),
                     paired_change(linked, spec, primary_tp, is_primary)]
            if oc.get("complete_case", True):
                parts.append(change_model(linked, spec, primary_tp, is_primary, analysis="complete_case",
                                          complete_case=True, icc_ci=False))
        return pd.concat([p for p in parts if len(p)], ignore_index=True).reindex(columns=EFFECT_COLUMNS), tip
    with progress.task("primary model"):
        parts = [primary_effects(linked, spec, primary_tp, is_primary)]
    if len(fu) > 1 and oc.get("ancova_each_followup", True):
        with progress.task("ANCOVA"):
            parts.append(ancova_effects(linked, outcome, intervention_arm=spec.intervention_arm,
                                        clustered=SITE in spec.groups, primary_timepoint=primary_tp,
                                        spec=spec, is_primary_outcome=is_primary))
    mi = oc.get("multiple_imputation", {})
    if mi.get("enabled", True):
        ok, _ = estimable_followups(_analysable(long_frame(linked, spec), spec), fu, spec)
        if ok:
            seed = mi.get("seed")
            seed = cfg.get("seed", 0) if seed is None else seed
            with progress.task("imputing"):
                w, imps = multiply_impute(linked, spec, m=mi.get("m", 20), iterations=mi.get("iterations", 10),
                                          seed=seed, donors=mi.get("donors", 5),
                                          auxiliary=mi.get("auxiliary", []), method=mi.get("method", "pmm"),
                                          followups=ok)
            if w.filter(like="y__").isna().any().any() or w.isna().any().any():
                with progress.task("MI analysis"):
                    mi_result = pooled_effects(linked, spec, w, imps, primary_tp)
                    parts.append(mi_result)
                tp_cfg = oc.get("tipping_point", {})
                if tp_cfg.get("enabled", True) and (is_primary or tp_cfg.get("all_outcomes", False)) \
                        and with_modifiers:
                    with progress.task("tipping point"):
                        tip = tipping_point(linked, spec, w, imps, primary_tp, tp_cfg.get("shifts_sd", []),
                                            tp_cfg.get("arm", "intervention"),
                                            direction=outcome_direction(cfg, outcome), unshifted=mi_result)
            elif log is not None:
                log.info("%s: no missing values; multiple imputation skipped", outcome)
    if oc.get("complete_case", True):
        with progress.task("complete cases"):
            parts.append(primary_effects(linked, spec, primary_tp, is_primary,
                                         analysis="complete_case", complete_case=True, icc_ci=False))
    if with_modifiers:
        for mod in oc.get("effect_modifiers", []):
            with progress.task(f"effect modification by {mod.get('label') or mod['variable']}"):
                parts.append(effect_modification(linked, spec, mod, tables, primary_tp))
    eff = pd.concat([p for p in parts if len(p)], ignore_index=True).reindex(columns=EFFECT_COLUMNS)
    return eff, tip


def outcome_direction(cfg: dict, outcome: str) -> str:
    """'higher' or 'lower': which way is better for ``outcome`` (analysis.config.score_directions)."""
    from analysis.config import score_directions
    return score_directions(cfg).get(outcome, "higher")
