"""Report section: outcomes (headline estimate, prespecified model for every outcome,
sensitivity analyses, tipping point, effect modification, trajectories and forest plot).

Estimates and CIs only: p-values stay in tables/effects.csv for the statistician."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.blinding import treatment_term

from analysis.reporting.common import fmt, png_data_uri, read_table

TEMPLATE = "sections/outcomes.html.j2"

ANALYSIS_NAMES = {"primary": "Primary model", "ancova": "ANCOVA at this follow-up",
                  "multiple_imputation": "Multiple imputation", "complete_case": "Complete cases"}


def _ci(r, dp) -> str:
    return f"{fmt(r.ci_low, dp)} to {fmt(r.ci_high, dp)}"


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    dp = cfg["report"]["decimals"]
    d = cfg["design"]
    labels = d["arm_labels"]
    names = cfg.get("outcomes", {}).get("labels", {})
    level = cfg.get("outcomes", {}).get("confidence_level", 0.95)
    effects = read_table(inputs["effects"], ("warnings", "model"))
    desc = read_table(inputs["descriptives"])
    main = effects[effects.term == treatment_term(cfg)]
    prim = main[main.analysis == "primary"]
    rows = [dict(outcome=names.get(r.outcome, r.outcome), timepoint=r.timepoint,
                 primary="primary" if r.primary else "", estimate=fmt(r.estimate, dp),
                 ci=_ci(r, dp), df=fmt(r.df, 1), n=int(r.n), smd=fmt(r.standardised_effect, dp),
                 icc=fmt(r.site_icc, 3),
                 icc_ci=("" if pd.isna(r.site_icc_ci_low) else
                         f"{fmt(r.site_icc_ci_low, 3)} to {fmt(r.site_icc_ci_high, 3)}"),
                 warnings=r.warnings) for r in prim.itertuples()]
    p = prim[prim.primary].iloc[0] if prim.primary.any() else None
    primary = None if p is None else dict(
        timepoint=p.timepoint, estimate=fmt(p.estimate, dp), ci_low=fmt(p.ci_low, dp),
        ci_high=fmt(p.ci_high, dp), df=fmt(p.df, 1), n=int(p.n), analysis=p.model,
        smd=fmt(p.standardised_effect, dp), warnings=p.warnings)
    sens = []
    for (y, tp), g in main.groupby(["outcome", "timepoint"], sort=False):
        cells = {r.analysis: r for r in g.itertuples()}
        sens.append(dict(outcome=names.get(y, y), timepoint=tp, cells=[
            (f"{fmt(cells[a].estimate, dp)} ({_ci(cells[a], dp)})" if a in cells else "–")
            for a in ANALYSIS_NAMES]))
    mi = main[main.analysis == "multiple_imputation"]
    mi_note = None
    if len(mi):
        r = mi.iloc[0]
        mi_note = dict(m=int(r.m_imputations), fmi=", ".join(
            f"{names.get(x.outcome, x.outcome)} {x.timepoint} {fmt(x.fmi, 2)}" for x in mi.itertuples()))
    mods = effects[effects.analysis.str.startswith("effect_modification")
                   & effects.term.str.startswith("interaction")]
    modifiers = [dict(outcome=names.get(r.outcome, r.outcome), term=r.term.replace("interaction: ", ""),
                      estimate=fmt(r.estimate, dp), ci=_ci(r, dp), df=fmt(r.df, 1), warnings=r.warnings)
                 for r in mods.itertuples()]
    # model notes as numbered footnotes: the same note repeated in every row makes the tables
    # unreadable; each distinct note is listed once under the table
    notes: list[str] = []
    for r in rows + modifiers:
        refs = []
        for w in [x.strip() for x in str(r["warnings"] or "").split(" | ") if x.strip()]:
            if w not in notes:
                notes.append(w)
            refs.append(str(notes.index(w) + 1))
        r["notes"] = ", ".join(refs)
    tipping = []
    tpath = inputs.get("tipping_point")
    if tpath and Path(tpath).exists():
        tip = read_table(tpath, ("arm_shifted",))
        for r in tip.itertuples():
            tipping.append(dict(outcome=names.get(r.outcome, r.outcome), timepoint=r.timepoint,
                                delta_sd=fmt(r.delta_sd, 2), delta=fmt(r.delta, dp),
                                estimate=fmt(r.estimate, dp), ci=_ci(r, dp), arm=r.arm_shifted,
                                tipping="changes" if str(r.tipping_point) == "True" else ""))
    return dict(
        outcome=names.get(cfg["primary"]["outcome"], cfg["primary"]["outcome"]), primary=primary,
        effects=rows, clustered=d["clustered"], level=int(round(level * 100)),
        intervention=labels.get(d["intervention_arm"], d["intervention_arm"]),
        control=labels.get(d["control_arm"], d["control_arm"]),
        sensitivity=sens, analysis_names=list(ANALYSIS_NAMES.values()), mi_note=mi_note,
        modifiers=modifiers, tipping=tipping, notes=notes,
        descriptives=[dict(outcome=names.get(r.outcome, r.outcome), timepoint=r.timepoint,
                           arm=labels.get(r.arm, r.arm), n=r.n,
                           mean_sd=f"{fmt(r.mean, dp)} ({fmt(r.sd, dp)})") for r in desc.itertuples()],
        trajectory=png_data_uri(inputs["trajectory"]),
        forest=png_data_uri(inputs["forest"]) if inputs.get("forest") else None)
