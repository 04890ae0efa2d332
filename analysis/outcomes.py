"""Outcome analysis: descriptives by arm and time, and the primary mixed-model ANCOVA.

The first cut fits, at every follow-up, ``y ~ treat + y_bl [+ covariates] + (1 | site)`` by
REML with Satterthwaite degrees of freedom (``analysis.lmm``, checked against lme4/lmerTest).
For an individually randomised trial (``design.clustered: false``) the site intercept is
dropped and the model is ordinary least squares.  The [outcomes] issue extends this to the
repeated-measures model, multiple imputation and sensitivity analyses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.lmm import fit_lmm

EFFECT_COLUMNS = ["outcome", "timepoint", "analysis", "primary", "term", "estimate", "se",
                  "ci_low", "ci_high", "df", "p_value", "n", "n_intervention", "n_control",
                  "n_sites", "standardised_effect", "baseline_sd", "site_variance",
                  "residual_variance", "site_icc", "warnings"]


def describe(linked: pd.DataFrame, outcome: str, level: float = 0.95) -> pd.DataFrame:
    """Mean, SD and a t-based CI of the mean of ``outcome`` by arm and time point."""
    rows = []
    for (tp, arm), g in linked.groupby(["timepoint", "arm"], observed=True, sort=True):
        y = g[outcome].dropna().astype(float)
        n = len(y)
        mean = float(y.mean()) if n else np.nan
        sd = float(y.std(ddof=1)) if n > 1 else np.nan
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n) if n > 1 else np.nan
        rows.append(dict(outcome=outcome, timepoint=str(tp), month=float(g.month.iloc[0]), arm=arm,
                         n=n, mean=mean, sd=sd, ci_low=mean - half, ci_high=mean + half))
    return pd.DataFrame(rows)


def ancova_effects(linked: pd.DataFrame, outcome: str, *, intervention_arm: str,
                   clustered: bool, primary_timepoint: str, covariates: list[str] | None = None,
                   level: float = 0.95) -> pd.DataFrame:
    """Adjusted intervention effect at each follow-up (one row per time point)."""
    covariates = list(covariates or [])
    base = f"{outcome}_bl"
    tps = list(linked.timepoint.cat.categories)
    baseline = linked[linked.timepoint == tps[0]]
    baseline_sd = float(baseline[outcome].dropna().std(ddof=1))
    rows = []
    for tp in tps[1:]:
        d = linked[linked.timepoint == tp].copy()
        d["treat"] = (d.arm == intervention_arm).astype(float)
        d = d.dropna(subset=[outcome, base] + covariates)
        rhs = " + ".join(["treat", base] + [f"C({c})" if not pd.api.types.is_numeric_dtype(d[c])
                                              else c for c in covariates])
        formula = f"{outcome} ~ {rhs}"
        if clustered:
            fit = fit_lmm(d, formula, groups=["site_id"], reml=True)
            ci = fit.fixed.set_index("term").loc["treat"]
            var = fit.variance.set_index("component").variance
            site_var = float(var["site_id"])
            resid_var = float(var["Residual"])
            label = "ANCOVA, random site intercept (REML), Satterthwaite df"
            warn = " | ".join(fit.warnings + fit.notes)
            if level != 0.95:
                c = fit.contrast({"treat": 1.0}, level=level)
                ci = pd.Series({**ci.to_dict(), "ci_low": c["ci_low"], "ci_high": c["ci_high"]})
        else:
            import statsmodels.formula.api as smf
            ols = smf.ols(formula, data=d).fit()
            lo, hi = ols.conf_int(alpha=1 - level).loc["treat"]
            ci = pd.Series({"estimate": ols.params["treat"], "se": ols.bse["treat"],
                            "df": ols.df_resid, "p_value": ols.pvalues["treat"],
                            "ci_low": lo, "ci_high": hi})
            site_var, resid_var, warn = np.nan, float(ols.scale), ""
            label = "ANCOVA (OLS)"
        rows.append(dict(
            outcome=outcome, timepoint=str(tp), analysis=label, primary=(str(tp) == primary_timepoint),
            term="intervention vs control", estimate=float(ci["estimate"]), se=float(ci["se"]),
            ci_low=float(ci["ci_low"]), ci_high=float(ci["ci_high"]), df=float(ci["df"]),
            p_value=float(ci["p_value"]), n=int(len(d)), n_intervention=int(d.treat.sum()),
            n_control=int((1 - d.treat).sum()), n_sites=int(d.site_id.nunique()),
            standardised_effect=float(ci["estimate"]) / baseline_sd, baseline_sd=baseline_sd,
            site_variance=site_var, residual_variance=resid_var,
            site_icc=site_var / (site_var + resid_var) if clustered else np.nan,
            warnings=warn))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)
