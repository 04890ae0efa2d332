"""The non-randomised comparison in the reports (``design.allocation: non_randomised``): the
propensity-weighted primary estimate with its E-value, the weights, the balance table and love
plot, and every outcome's weighted and unweighted regressions (analysis.propensity).  Used by
the outcomes section (statistician) and, as a headline only, by the funder's section.  Only
aggregate tables are read."""

from __future__ import annotations

import os

import pandas as pd

from analysis.propensity import ANALYSIS_LABELS, REFERENCES
from analysis.reporting.common import fmt, png_data_uri, read_table

ESTIMAND_WORDS = {
    "ATT": "the average effect among participants of intervention sites (ATT)",
    "ATE": "the average effect among all participants of either kind of site (ATE)",
    "overlap": "the average effect among the participants for whom the two kinds of site overlap most "
               "(overlap weights, ATO)",
}
NOT_RANDOM = ("Allocation was not random: the sites that delivered the intervention chose to (or were chosen), "
              "and they may serve different people from the comparison sites. Differences between the groups can "
              "reflect those differences, not the intervention.")
# the words of an individual design, where participants (not sites) are in one group or the other
ESTIMAND_WORDS_INDIVIDUAL = {
    "ATT": "the average effect among participants of the intervention group (ATT)",
    "ATE": "the average effect among all participants of either group (ATE)",
    "overlap": "the average effect among the participants for whom the two groups overlap most "
               "(overlap weights, ATO)",
}
NOT_RANDOM_INDIVIDUAL = ("Allocation was not random: participants came to be in the intervention or the comparison "
                         "group by their own or others' choice, and the groups may differ in ways that affect the "
                         "outcome. Differences between the groups can reflect those differences, not the "
                         "intervention.")
WORDS = {
    "cluster": dict(group="being in an intervention site", differs="the sites",
                    variance="cluster-robust (sandwich) standard errors with sites as clusters, t on sites − number "
                             "of coefficients degrees of freedom (as survey::svyglm)"),
    "individual": dict(group="being in the intervention group", differs="the groups",
                       variance="heteroscedasticity-robust (sandwich) standard errors with each participant as their "
                                "own cluster (HC0 × n/(n − 1)), t on participants − number of coefficients degrees of "
                                "freedom (as survey::svyglm with ids = ~1)"),
}


def words(cfg: dict) -> dict:
    """The design's words for the reports (cluster: sites; individual: participants)."""
    return WORDS["individual" if cfg["design"]["type"] == "individual" else "cluster"]


def non_randomised(cfg: dict) -> bool:
    return cfg["design"].get("allocation", "randomised") == "non_randomised"


def _ci(lo, hi, dp) -> str:
    return "not estimable" if pd.isna(lo) else f"{fmt(lo, dp)} to {fmt(hi, dp)}"


def headline(cfg: dict, inputs: dict[str, str]) -> dict | None:
    """The weighted primary estimate and its E-value; None when the design is randomised or the
    tables are absent."""
    if not non_randomised(cfg) or not os.path.exists(inputs.get("propensity_effects", "")):
        return None
    from analysis.config import score_labels
    dp = cfg["report"]["decimals"]
    eff = read_table(inputs["propensity_effects"], ("analysis", "estimand"))
    summ = read_table(inputs["propensity_summary"], ("estimand", "covariates")).iloc[0]
    p = eff[eff.primary.astype(str) == "True"]
    prim = None
    if len(p):
        r = p.iloc[0]
        prim = dict(outcome=score_labels(cfg).get(r.outcome, r.outcome), timepoint=r.timepoint,
                    analysis=ANALYSIS_LABELS[r.analysis], estimate=fmt(r.estimate, dp), ci=_ci(r.ci_low, r.ci_high, dp),
                    df=fmt(r.df, 0), n=fmt(r.n, 0), smd=fmt(r.standardised_effect, dp),
                    e_value=fmt(r.e_value, 2), e_value_ci=fmt(r.e_value_ci, 2),
                    ci_includes_null=bool(r.ci_low <= 0 <= r.ci_high))
    indiv = cfg["design"]["type"] == "individual"
    return dict(not_random=NOT_RANDOM_INDIVIDUAL if indiv else NOT_RANDOM,
                estimand=(ESTIMAND_WORDS_INDIVIDUAL if indiv else ESTIMAND_WORDS)[summ.estimand],
                covariates=summ.covariates, primary=prim, summary=summ, words=words(cfg))


def context(cfg: dict, inputs: dict[str, str]) -> dict | None:
    """Everything the statistician's report shows about the non-randomised comparison."""
    head = headline(cfg, inputs)
    if head is None:
        return None
    from analysis.config import score_labels
    dp = cfg["report"]["decimals"]
    names = score_labels(cfg)
    s = head["summary"]
    bal = read_table(inputs["propensity_balance"], ("covariate", "level", "type"))
    balance = [dict(covariate=names.get(r.covariate, r.covariate.removesuffix("_bl")
                                        + (" (baseline)" if r.covariate.endswith("_bl") else "")),
                    level=r.level, smd_before=fmt(r.smd_before, 2), smd_after=fmt(r.smd_after, 2),
                    vr_before=fmt(r.variance_ratio_before, 2), vr_after=fmt(r.variance_ratio_after, 2),
                    flag=str(r.imbalanced_after) == "True") for r in bal.itertuples()]
    eff = read_table(inputs["propensity_effects"], ("analysis", "estimand"))
    rows = [dict(outcome=names.get(r.outcome, r.outcome), timepoint=r.timepoint, analysis=ANALYSIS_LABELS[r.analysis],
                 primary=str(r.primary) == "True",
                 estimate=fmt(r.estimate, dp) if pd.notna(r.estimate) else (
                     r.note if isinstance(r.note, str) and r.note else "not estimable"),
                 ci=_ci(r.ci_low, r.ci_high, dp), df=fmt(r.df, 0), n=fmt(r.n, 0),
                 ess=f"{fmt(r.ess_intervention, 0)} / {fmt(r.ess_control, 0)}",
                 smd=fmt(r.standardised_effect, dp),
                 e_value=fmt(r.e_value, 2) if r.analysis.startswith("weighted") else "",
                 e_value_ci=fmt(r.e_value_ci, 2) if r.analysis.startswith("weighted") else "")
            for r in eff.itertuples()]
    weights = dict(n=fmt(s.n_participants, 0), missing=int(s.n_missing_covariates), trimmed=int(s.n_trimmed),
                   trim=float(s.trim), stabilised=str(s.stabilised) == "True",
                   n_int=fmt(s.n_intervention, 0), n_cmp=fmt(s.n_comparison, 0),
                   sites_int=fmt(s.n_sites_intervention, 0) if pd.notna(s.n_sites_intervention) else None,
                   sites_cmp=fmt(s.n_sites_comparison, 0) if pd.notna(s.n_sites_comparison) else None,
                   ess_int=fmt(s.ess_intervention, 1), ess_cmp=fmt(s.ess_comparison, 1),
                   ps_int=f"{fmt(s.ps_min_intervention, 3)} to {fmt(s.ps_max_intervention, 3)}",
                   ps_cmp=f"{fmt(s.ps_min_comparison, 3)} to {fmt(s.ps_max_comparison, 3)}",
                   max_before=fmt(s.max_abs_smd_before, 2), max_after=fmt(s.max_abs_smd_after, 2),
                   n_imbalanced=int(s.n_imbalanced_after), threshold=fmt(s.balance_threshold, 2))
    return dict(head, weights=weights, balance=balance, effects=rows,
                love_plot=png_data_uri(inputs["love_plot"]), references=list(REFERENCES.values()))
