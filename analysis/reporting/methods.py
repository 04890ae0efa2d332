"""Report section: the methods actually used in this run, each with its reference.

Only methods whose outputs exist (and whose config options were chosen) are listed, so the
reference list cites what the numbers rest on and nothing else."""

from __future__ import annotations

import os

from analysis.propensity import REFERENCES as PS_REFERENCES
from analysis.reporting.common import level_label, read_table

TEMPLATE = "sections/methods.html.j2"

REFS = {
    "consort": "Eldridge SM, Chan CL, Campbell MJ, et al. CONSORT 2010 statement: extension to randomised pilot and feasibility trials. BMJ 2016;355:i5239.",
    "wilson": "Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of seven methods. Stat Med 1998;17:857-72.",
    "clopper": "Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of the binomial. Biometrika 1934;26:404-13.",
    "garwood": "Garwood F. Fiducial limits for the Poisson distribution. Biometrika 1936;28:437-42.",
    "korn_graubard": "Korn EL, Graubard BI. Confidence intervals for proportions with small expected number of positive counts estimated from survey data. Survey Methodology 1998;24:193-201.",
    "quasi_poisson": "McCullagh P, Nelder JA. Generalized Linear Models. 2nd ed. Chapman & Hall; 1989 (section 6.2, over-dispersion).",
    "progression": "Avery KNL, Williamson PR, Gamble C, et al. Informing efficient randomised controlled trials: exploration of challenges in developing progression criteria for internal pilot studies. BMJ Open 2017;7:e013537.",
    "lewis": "Lewis M, Bromley K, Sutton CJ, et al. Determining sample size for progression criteria for pragmatic pilot RCTs: the hypothesis test strikes back! Pilot Feasibility Stud 2021;7:40.",
    "lme4": "Bates D, Mächler M, Bolker B, Walker S. Fitting linear mixed-effects models using lme4. J Stat Softw 2015;67(1):1-48.",
    "satterthwaite": "Kuznetsova A, Brockhoff PB, Christensen RHB. lmerTest package: tests in linear mixed effects models. J Stat Softw 2017;82(13):1-26.",
    "satterthwaite_1946": "Satterthwaite FE. An approximate distribution of estimates of variance components. Biometrics Bulletin 1946;2:110-4.",
    "kenward_roger": "Kenward MG, Roger JH. Small sample inference for fixed effects from restricted maximum likelihood. Biometrics 1997;53:983-97.",
    "mice": "van Buuren S. Flexible Imputation of Missing Data. 2nd ed. Chapman & Hall/CRC; 2018.",
    "barnard_rubin": "Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation. Biometrika 1999;86:948-55.",
    "manca": "Manca A, Hawkins N, Sculpher MJ. Estimating mean QALYs in trial-based cost-effectiveness analysis: the importance of controlling for baseline utility. Health Econ 2005;14:487-96.",
    "cluster_boot": "Ng ESW, Grieve R, Carpenter JR. Two-stage nonparametric bootstrap sampling with shrinkage correction for clustered data. Stata J 2013;13:141-64.",
    "davison_hinkley": "Davison AC, Hinkley DV. Bootstrap Methods and their Application. Cambridge University Press; 1997 (section 3.8).",
    "wellby": "HM Treasury. Wellbeing Guidance for Appraisal: Supplementary Green Book Guidance. 2021.",
    "brand": "Brand J, van Buuren S, le Cessie S, van den Hout W. Combining multiple imputation and bootstrap in the analysis of cost-effectiveness trial data. Stat Med 2019;38:210-20.",
    "alpha": "Cronbach LJ. Coefficient alpha and the internal structure of tests. Psychometrika 1951;16:297-334.",
    "kahan": "Kahan BC, Morris TP. Improper analysis of trials randomised using stratified blocks or minimisation. Stat Med 2012;31:328-40.",
    **{f"ps_{k}": v for k, v in PS_REFERENCES.items()},
    "srm": "Liang MH, Fossel AH, Larson MG. Comparisons of five health status instruments for orthopedic evaluation. Med Care 1990;28:632-42.",
}


def _exists(inputs, key):
    return key in inputs and os.path.exists(inputs[key])


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    """The methods statements of this run, each with its numbered references, and the reference list."""
    used = _feasibility_methods(cfg)
    if _exists(inputs, "progression") and len(read_table(inputs["progression"])):
        used.append(_progression_method(inputs))
    if _exists(inputs, "effects"):
        used.append(_effects_method(cfg, inputs))
    if _exists(inputs, "propensity_summary"):
        used.append(_propensity_method(cfg))
    if _exists(inputs, "reliability") and len(read_table(inputs["reliability"])):
        used.append(("Internal consistency of each scale is summarised by Cronbach's alpha.", ["alpha"]))
    if _exists(inputs, "cea"):
        used += _economics_methods(cfg)
    if _exists(inputs, "vfm_wellby"):
        used.append(("Value for money divides the intervention's cost (every item with its source, inflated to one "
                     "price year) by the participants enrolled and completing and by the uncontrolled before-after "
                     "change of the primary analysis (no ratio when the change's interval includes no change); a "
                     "change in life satisfaction, when collected, is valued in WELLBYs.", ["wellby"]))
    return _numbered(used)


def _feasibility_methods(cfg: dict) -> list[tuple[str, list[str]]]:
    """Intervals of the feasibility outcomes (and the cluster-aware ones in a cluster design)."""
    used: list[tuple[str, list[str]]] = []
    f = cfg["feasibility"]
    ci = "wilson" if f["ci_method"] == "wilson" else "clopper"
    used.append(("Feasibility outcomes are reported as estimates with "
                 f"{level_label(f['confidence_level'])} confidence intervals, following the CONSORT extension for pilot "
                 "and feasibility trials; proportions use the "
                 + ("Wilson score interval" if ci == "wilson" else "Clopper–Pearson exact interval")
                 + " and rates the exact Poisson interval.", ["consort", ci, "garwood"]))
    if cfg["design"]["type"] == "cluster":
        units = ("Because sites were the units that delivered the intervention or not (allocation was not random)"
                 if cfg["design"].get("allocation") == "non_randomised" else "Because sites were randomised")
        used.append((units + ", proportions and the recruitment rate also get intervals that "
                     "allow for variation between sites, which the progression criteria use: Korn and Graubard's "
                     "interval for proportions (Clopper–Pearson on the effective sample size) and a quasi-Poisson "
                     "interval over site-months for the recruitment rate, each with t on sites − 1 degrees of "
                     "freedom.", ["korn_graubard", "quasi_poisson"]))
    return used


def _progression_method(inputs: dict[str, str]) -> tuple[str, list[str]]:
    """How progression criteria were classified (and tested against RED thresholds)."""
    prog = read_table(inputs["progression"], ("test",))
    refs = ["progression"] + (["lewis"] if (prog.test.astype(str) != "").any() else [])
    return ("Prespecified progression criteria are classified GREEN, AMBER or RED from their point "
            "estimates" + (", with a one-sided test against each RED threshold" if len(refs) > 1 else "")
            + "."), refs


def _effects_method(cfg: dict, inputs: dict[str, str]) -> tuple[str, list[str]]:
    """The mixed models of the effects (or changes, single arm), their df method and any imputation."""
    eff = read_table(inputs["effects"], ("analysis", "model"))
    design = cfg["design"]["type"]
    kr = eff.model.str.contains("Kenward-Roger").any()
    sat = eff.model.str.contains("Satterthwaite").any() or not kr
    refs = ["lme4"] + (["kenward_roger"] if kr else []) + (["satterthwaite"] if sat else [])
    df = " and ".join((["Kenward–Roger adjusted standard errors and degrees of freedom"] if kr else [])
                      + (["Satterthwaite degrees of freedom"] if sat else []))
    if design == "single_arm":
        text = ("Changes from baseline are estimated with a linear mixed model over every wave (time as a "
                "factor, a random participant intercept), fitted by restricted maximum likelihood with "
                "Satterthwaite small-sample degrees of freedom, and at each follow-up as the paired mean "
                "change (t interval) with the standardised response mean. With no comparison group these "
                "changes are not effects of the intervention.")
        refs.append("srm")
    else:
        random = "random intercepts for site and participant" if design == "cluster" else \
            "a random participant intercept"
        text = ("Intervention effects are estimated with linear mixed models (" + random + ", the baseline "
                "value of the outcome as a covariate) fitted by restricted maximum likelihood, with "
                f"small-sample inference by {df} (as stated for each model).")
        if design == "individual" and (cfg["design"].get("stratification") or
                                       eff.model.str.contains(r"\bsite_id\b").any()):
            text += " The analysis adjusts for the factors the randomisation was stratified on."
            refs.append("kahan")
    if (eff.analysis.astype(str) == "multiple_imputation").any():
        refs += ["mice", "barnard_rubin"]
        text += (" Missing outcomes are handled by multiple imputation by chained equations, combined by "
                 "Rubin's rules with Barnard–Rubin degrees of freedom.")
    return text, refs


def _propensity_method(cfg: dict) -> tuple[str, list[str]]:
    """The propensity-score weighting of a non-randomised comparison."""
    pc = cfg["propensity"]
    est = pc["estimand"]
    indiv = cfg["design"]["type"] == "individual"
    refs = ["ps_rosenbaum", *([] if indiv else ["ps_li_multilevel"]), "ps_austin", "ps_lumley", "ps_evalue"]
    weights = {"ATT": "weights 1 (intervention) and e/(1 − e) (comparison) for the effect among participants "
                      + ("of the intervention group (ATT)" if indiv else "of intervention sites (ATT)"),
               "ATE": "inverse-probability weights 1/e and 1/(1 − e)"
                      + (", stabilised by the marginal probability of each group," if pc["stabilise"] else "")
                      + " for the average effect among all participants (ATE)",
               "overlap": "overlap weights 1 − e (intervention) and e (comparison), which target the "
                          "participants for whom the groups overlap most"}[est]
    refs += (["ps_li_overlap"] if est == "overlap" else []) + (["ps_robins"] if est == "ATE" else [])
    text = ("Allocation was not random. The probability e of being in "
            + ("the intervention group" if indiv else "an intervention site") + " was estimated by "
            "logistic regression of participants on baseline covariates (" + ", ".join(pc["covariates"])
            + "), and participants were weighted with " + weights + ".")
    if pc["trim"] > 0:
        text += f" Participants with e outside {pc['trim']:g} to {1 - pc['trim']:g} were left out (trimming)."
        refs.append("ps_crump")
    text += (" Balance is reported as standardised mean differences before and after weighting and variance "
             "ratios. Each outcome at each follow-up was compared by weighted least squares ("
             + ("the baseline value and the propensity covariates" if pc["outcome_adjustment"] == "covariates"
                else "the baseline value") + " as covariates) with "
             + ("heteroscedasticity-robust (sandwich) standard errors, each participant their own cluster "
                "(HC0 × n/(n − 1)), and t on participants − coefficients degrees of freedom" if indiv else
                "cluster-robust (sandwich) standard errors, sites as clusters and t on sites − coefficients "
                "degrees of freedom") + ", as survey::svyglm; the sandwich treats the weights as known. "
             "Sensitivity to unmeasured confounding is summarised by the E-value of the standardised "
             "difference (approximate risk ratio exp(0.91 d)).")
    return text, refs


def _economics_methods(cfg: dict) -> list[tuple[str, list[str]]]:
    """QALYs, incremental analysis and bootstrap of the economic evaluation (and imputation, if used)."""
    used: list[tuple[str, list[str]]] = []
    cluster = cfg["design"]["type"] == "cluster"
    shrunk = cluster and (cfg.get("economics") or {}).get("bootstrap", {}).get("cluster_correction") == "shrinkage_t"
    boot_text = ("two-stage (cluster) bootstrap with the shrinkage correction and t intervals on sites − 2 "
                 "degrees of freedom" if shrunk else
                 "two-stage (cluster) bootstrap" if cluster else "bootstrap stratified by arm")
    used.append(("The economic evaluation estimates QALYs by the area under the EQ-5D utility curve adjusted "
                 "for baseline utility, and incremental costs and QALYs by regression, with a "
                 + boot_text + " for uncertainty; wellbeing changes are valued in WELLBYs.",
                 (["manca", "cluster_boot"] + (["davison_hinkley"] if shrunk else []) + ["wellby"]
                  if cluster else ["manca", "wellby"])))
    if cfg["design"].get("allocation") == "non_randomised" and \
            (cfg.get("economics") or {}).get("weighted_interval", "model") == "model":
        used.append(("Because allocation was not random, the incremental costs and effects are estimated by "
                     "regressions weighted with the same propensity weights as the outcomes and adjusted for the "
                     "score covariates. Their variances are model-based and conditional on the covariates and "
                     "arms: the variance of each weighted estimate under a random agency intercept fitted by "
                     "restricted maximum likelihood to all agencies, with a within-agency variance for each arm "
                     "and level of the categorical score covariates, and t intervals on Satterthwaite degrees of "
                     "freedom; the acceptability curve comes from the same t distributions.", ["satterthwaite_1946", "satterthwaite"]))
    elif cfg["design"].get("allocation") == "non_randomised":
        used.append(("Because allocation was not random, the incremental costs and effects are estimated by "
                     "regressions weighted with the same propensity weights as the outcomes; in every bootstrap "
                     "replicate the propensity score model is re-estimated and the weights recomputed, so that "
                     "the intervals allow for the estimation of the score. Replicates in which a level of a "
                     "categorical score covariate was drawn from one group only, or the score model separated, "
                     "are set aside and counted; the intervals are expanded percentile intervals (t on clusters "
                     "- 2 degrees of freedom) of the replicates kept.", ["ps_austin_variance", "ps_hesterberg"]))
    if (cfg.get("economics") or {}).get("missing_data") == "multiple_imputation":
        used.append(("Missing costs and QALYs are multiply imputed by chained equations before the bootstrap; "
                     "estimates are combined by Rubin's rules.", ["mice", "brand"]))
    return used


def _numbered(used: list[tuple[str, list[str]]]) -> dict:
    """Number the references in order of first citation; statements carry their numbers."""
    order: list[str] = []
    for _, refs in used:
        order += [r for r in refs if r not in order]
    number = {r: i + 1 for i, r in enumerate(order)}
    return dict(statements=[(t, ", ".join(str(number[r]) for r in refs)) for t, refs in used],
                references=[REFS[r] for r in order])
