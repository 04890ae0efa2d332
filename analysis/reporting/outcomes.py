"""Report section: outcomes (headline estimate, prespecified model for every outcome,
sensitivity analyses, tipping point, effect modification, trajectories and forest plot).

Estimates and CIs only: p-values stay in tables/effects.csv for the statistician."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import BY_BASELINE_SD, CHANGE_TERM
from analysis.blinding import treatment_term
from analysis.reporting import propensity as propensity_section

from analysis.reporting.common import fmt, level_label, plain_text, png_data_uri, read_table, split_notes

TEMPLATE = "sections/outcomes.html.j2"

ANALYSIS_NAMES = {"primary": "Primary model", "ancova": "ANCOVA at this follow-up",
                  "multiple_imputation": "Multiple imputation", "complete_case": "Complete cases"}
SINGLE_ARM_NAMES = {"primary": "Primary model", "paired_change": "Paired change",
                    "complete_case": "Complete cases"}


def _ci(r, dp) -> str:
    if pd.isna(r.ci_low):
        return "not estimable"
    return f"{fmt(r.ci_low, dp)} to {fmt(r.ci_high, dp)}"


def _pop(r) -> str:
    p = getattr(r, "population", "all")
    return "all" if pd.isna(p) else str(p)


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    """Template variables of the outcomes section."""
    dp = cfg["report"]["decimals"]
    d = cfg["design"]
    single = d["type"] == "single_arm"
    labels = d["arm_labels"]
    from analysis.config import score_directions, score_labels
    names = score_labels(cfg)
    level = cfg.get("outcomes", {}).get("confidence_level", 0.95)
    directions = score_directions(cfg)
    effects = read_table(inputs["effects"], ("warnings", "model", "population"))
    if "population" not in effects or not len(effects):
        effects["population"] = "all"
    effects["population"] = effects.population.replace("", "all")
    desc = read_table(inputs["descriptives"], ("population",))
    term = CHANGE_TERM if single else treatment_term(cfg)
    main = effects[effects.term == term]
    populations = list(dict.fromkeys(main.population)) or ["all"]
    by_pop = len(populations) > 1
    prim = main[main.analysis == "primary"]
    rows = _primary_rows(prim, names, directions, dp)
    primary = _headline(prim, names, directions, dp)
    analysis_names = SINGLE_ARM_NAMES if single else ANALYSIS_NAMES
    sens = _sensitivity(main, names, analysis_names, dp)
    mi = main[(main.analysis == "multiple_imputation") & (main.population == "all")]
    mi_note = None
    if len(mi):
        r = mi.iloc[0]
        mi_note = dict(m=int(r.m_imputations), fmi=", ".join(
            f"{names.get(x.outcome, x.outcome)} {x.timepoint} {fmt(x.fmi, 2)}" for x in mi.itertuples()))
    mods = effects[effects.analysis.str.startswith("effect_modification")
                   & effects.term.str.startswith("interaction")]
    modifiers = [dict(outcome=names.get(r.outcome, r.outcome), term=r.term.replace("interaction: ", ""),
                      estimate=fmt(r.estimate, dp), ci=_ci(r, dp), df=fmt(r.df, 1),
                      warnings=plain_text(r.warnings)) for r in mods.itertuples()]
    notes = _numbered_notes(rows + modifiers + [c for s_ in sens for c in s_["cells"]], names)
    tipping, tipping_value = _tipping(inputs, names, directions, dp)
    arm = {"intervention": labels.get(d["intervention_arm"], d["intervention_arm"]),
           "control": labels.get(d.get("control_arm"), d.get("control_arm"))}
    return dict(
        outcome=names.get(cfg["primary"]["outcome"], cfg["primary"]["outcome"]), primary=primary,
        effects=rows, clustered=d["type"] == "cluster", single_arm=single, by_population=by_pop,
        level=level_label(level), intervention=arm["intervention"], control=arm["control"],
        sensitivity=sens, analysis_names=list(analysis_names.values()), mi_note=mi_note,
        modifiers=modifiers, tipping=tipping, tipping_value=tipping_value, notes=notes,
        no_followup=not len(effects),
        descriptives=[dict(outcome=names.get(r.outcome, r.outcome), population=r.population or "all",
                           timepoint=r.timepoint, arm=labels.get(r.arm, r.arm), n=r.n,
                           mean_sd=f"{fmt(r.mean, dp)} ({fmt(r.sd, dp)})") for r in desc.itertuples()],
        nonrandom=propensity_section.context(cfg, inputs),
        trajectory=png_data_uri(inputs["trajectory"]),
        forest=png_data_uri(inputs["forest"]) if inputs.get("forest") else None)


def _primary_rows(prim: pd.DataFrame, names: dict, directions: dict, dp: int) -> list[dict]:
    """One row per outcome x time point of the prespecified (primary) model."""
    return [dict(outcome=names.get(r.outcome, r.outcome), population=_pop(r), timepoint=r.timepoint,
                 primary="primary" if r.primary else "", estimate=fmt(r.estimate, dp),
                 ci=_ci(r, dp), df=fmt(r.df, 1), n=fmt(r.n, 0), smd=fmt(r.standardised_effect, dp),
                 better=directions.get(r.outcome, "higher"),
                 icc=fmt(r.site_icc, 3),
                 icc_ci=("" if pd.isna(r.site_icc_ci_low) else
                         f"{fmt(r.site_icc_ci_low, 3)} to {fmt(r.site_icc_ci_high, 3)}"),
                 warnings=plain_text(r.warnings)) for r in prim.itertuples()]


def _headline(prim: pd.DataFrame, names: dict, directions: dict, dp: int) -> dict | None:
    """The headline (primary outcome at the primary time point) estimate and its model's numbers."""
    p = prim[prim.primary].iloc[0] if prim.primary.any() else None
    return None if p is None else dict(
        timepoint=p.timepoint, estimate=fmt(p.estimate, dp), ci_low=fmt(p.ci_low, dp),
        ci_high=fmt(p.ci_high, dp), df=fmt(p.df, 1), n=fmt(p.n, 0), analysis=p.model,
        smd=fmt(p.standardised_effect, dp), warnings="; ".join(split_notes(p.warnings, names)),
        n_model=fmt(getattr(p, "n_model", float("nan")), 0),
        n_participants_model=fmt(getattr(p, "n_participants_model", float("nan")), 0),
        n_sites_model=fmt(getattr(p, "n_sites_model", float("nan")), 0),
        n_followups=int((prim[(prim.outcome == p.outcome) & (prim.population == p.population)]
                         .estimate.notna()).sum()),
        n_participants=fmt(p.n_participants, 0), better=directions.get(p.outcome, "higher"),
        smd_by=str(getattr(p, "standardised_by", BY_BASELINE_SD) or BY_BASELINE_SD))


def _sensitivity(main: pd.DataFrame, names: dict, analysis_names: dict, dp: int) -> list[dict]:
    """One row per population x outcome x time point, one cell per analysis (estimate and CI)."""
    sens = []
    for (pop, y, tp), g in main.groupby(["population", "outcome", "timepoint"], sort=False):
        cells = {r.analysis: r for r in g.itertuples()}
        sens.append(dict(outcome=names.get(y, y), population=pop, timepoint=tp, cells=[
            (dict(text=f"{fmt(cells[a].estimate, dp)} ({_ci(cells[a], dp)})" if pd.notna(cells[a].estimate)
                  else "not estimable", warnings=plain_text(cells[a].warnings)) if a in cells
             else dict(text="–", warnings=""))
            for a in analysis_names]))
    return sens


def _numbered_notes(cells: list[dict], names: dict) -> list[str]:
    """Each distinct model note once, numbered; every cell gets the numbers of its notes (in place)."""
    # model notes as numbered footnotes: the same note repeated in every row makes the tables
    # unreadable; each distinct note is listed once under the table
    notes: list[str] = []
    for r in cells:
        refs = []
        for w in split_notes(r["warnings"], names):
            if w not in notes:
                notes.append(w)
            refs.append(str(notes.index(w) + 1))
        r["notes"] = ", ".join(refs)
    return notes


def _tipping(inputs: dict[str, str], names: dict, directions: dict, dp: int) -> tuple[list[dict], dict | None]:
    """Rows of the tipping-point analysis and its tipping-value row (empty when it was not run)."""
    tipping, tipping_value = [], None
    tpath = inputs.get("tipping_point")
    if tpath and Path(tpath).exists():
        tip = read_table(tpath, ("arm_shifted", "kind", "towards"))
        for r in tip.itertuples():
            row = dict(outcome=names.get(r.outcome, r.outcome), timepoint=r.timepoint,
                       size=fmt(r.shift_sd, 2), towards=r.towards, delta=fmt(r.delta, dp),
                       estimate=fmt(r.estimate, dp), ci=_ci(r, dp), arm=r.arm_shifted,
                       better=directions.get(r.outcome, "higher"),
                       tipping="changes" if str(r.tipping_point) == "True" else "")
            if r.kind == "tipping value":
                tipping_value = row
            else:
                tipping.append(row)
    return tipping, tipping_value
