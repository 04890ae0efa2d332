"""Outcome stage: descriptives, the prespecified model for every configured outcome, multiple
imputation and sensitivity analyses, effect modification, trajectory and forest figures."""

from __future__ import annotations

import pandas as pd

from analysis import figures, outcomes, progress, propensity
from analysis.config import primary_timepoint, score_directions, score_labels
from analysis.blinding import relabel_results
from analysis.io import write_bytes, write_table
from analysis.stages._common import log, read_linked


def outcome_list(cfg: dict) -> list[str]:
    """The primary outcome, then the secondary ones (each once)."""
    return list(dict.fromkeys([cfg["primary"]["outcome"]] + list(cfg["outcomes"]["secondary"])))


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """``inputs``: linked, and optionally fidelity and sites (for effect modifiers read from them)."""
    lk = read_linked(inputs["linked"])
    tables = {}
    for name in ("fidelity", "sites"):
        path = inputs.get(name)
        if path:
            tables[name] = pd.read_parquet(path)
    level = cfg["outcomes"]["confidence_level"]
    followups = [str(t) for t in lk.timepoint.cat.categories][1:]
    single = cfg["design"]["type"] == "single_arm"
    descs, effs, tips = [], [], []
    ys = outcome_list(cfg)
    for k, y in enumerate(ys, 1):
        if y not in lk:
            raise KeyError(f"config key primary.outcome / outcomes.secondary: {y!r} is not a column "
                           f"of the linked table; available: "
                           f"{sorted(c for c in lk.columns if not c.endswith('_bl'))}")
        for pop, sub in outcomes.populations(lk, cfg):
            descs.append(outcomes.describe(sub, y, level=level).assign(population=pop))
        if not followups:
            continue
        log.info("outcome %s: fitting the prespecified model and sensitivity analyses", y)
        with progress.task(f"{y} ({k}/{len(ys)})"):
            eff, tip = outcomes.analyse_outcome(lk, cfg, y, primary_timepoint(cfg), tables, log=log)
        effs.append(eff)
        tips.append(tip)
    if not followups:
        log.warning("no follow-up time point (baseline only): effect estimates are not applicable; "
                    "descriptive statistics only")
    eff = pd.concat(effs, ignore_index=True) if effs else pd.DataFrame(columns=outcomes.EFFECT_COLUMNS)
    desc = pd.concat(descs, ignore_index=True)
    desc = desc[["outcome", "population"] + [c for c in desc.columns if c not in ("outcome", "population")]]
    tip = pd.concat(tips, ignore_index=True) if tips else pd.DataFrame(columns=outcomes.TIPPING_COLUMNS)
    for r in eff[eff.warnings.fillna("") != ""].drop_duplicates(["outcome", "analysis", "warnings"]).itertuples():
        log.warning("model note (%s, %s): %s", r.outcome, r.analysis, r.warnings)
    labels = score_labels(cfg)
    d = cfg["design"]
    write_table(desc, outputs["descriptives"])
    columns = [c for c in outcomes.EFFECT_COLUMNS
               if not (single and c in ("n_intervention", "n_control", "n_intervention_model", "n_control_model"))]
    write_table(relabel_results(eff.reindex(columns=columns), cfg), outputs["effects"])
    write_table(relabel_results(tip.reindex(columns=outcomes.TIPPING_COLUMNS).infer_objects(), cfg),
                outputs["tipping_point"])
    all_desc = desc[desc.population == "all"]
    write_bytes(figures.trajectories_png(all_desc, d["arm_labels"], labels, level=level,
                                         timepoints=[w["timepoint"] for w in cfg["data"]["waves"]]),
                outputs["figure"])
    arm_names = {"control": d["arm_labels"].get(d.get("control_arm"), d.get("control_arm")),
                 "intervention": d["arm_labels"].get(d["intervention_arm"], d["intervention_arm"])}
    write_bytes(figures.forest_png(eff, labels, score_directions(cfg), level=level, arm_labels=arm_names,
                                   single_arm=single), outputs["forest"])
    if non_randomised(cfg):
        run_propensity(cfg, lk, ys, outputs, labels)


def non_randomised(cfg: dict) -> bool:
    return cfg["design"].get("allocation", "randomised") == "non_randomised"


def run_propensity(cfg: dict, lk: pd.DataFrame, ys: list[str], out: dict[str, str], labels: dict) -> None:
    """The non-randomised comparison (analysis.propensity): score model, balance, weighted
    outcome regressions with E-values, love plot."""
    log.info("non-randomised allocation: propensity score (%s) on %s", cfg["propensity"]["estimand"],
             ", ".join(cfg["propensity"]["covariates"]))
    res = propensity.analyse(lk, cfg, ys, primary_timepoint(cfg))
    s = res["summary"].iloc[0]
    if s.n_missing_covariates:
        log.warning("propensity score: %d participant(s) with a missing covariate are left out of the weighted "
                    "analysis", s.n_missing_covariates)
    if s.n_imbalanced_after:
        log.warning("propensity weighting: %d covariate row(s) still imbalanced after weighting (|SMD| > %g)",
                    s.n_imbalanced_after, s.balance_threshold)
    write_table(res["model"], out["propensity_model"])
    write_table(res["balance"], out["propensity_balance"])
    write_table(res["effects"], out["propensity_effects"])
    write_table(res["summary"], out["propensity_summary"])
    labels = {**labels, **{f"{k}_bl": f"{v} at baseline" for k, v in labels.items()}}
    write_bytes(propensity.love_plot_png(res["balance"], threshold=float(s.balance_threshold), labels=labels),
                out["love_plot"])
