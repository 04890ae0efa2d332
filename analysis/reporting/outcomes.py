"""Report section: the primary outcome (headline estimate, effects table, trajectories)."""

from __future__ import annotations

from analysis.reporting.common import fmt, png_data_uri, read_table

TEMPLATE = "sections/outcomes.html.j2"


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    dp = cfg["report"]["decimals"]
    labels = cfg["design"]["arm_labels"]
    effects = read_table(inputs["effects"], ("warnings",))
    desc = read_table(inputs["descriptives"])
    rows = [dict(timepoint=r.timepoint, primary="primary" if r.primary else "",
                 estimate=fmt(r.estimate, dp), ci=f"{fmt(r.ci_low, dp)} to {fmt(r.ci_high, dp)}",
                 df=fmt(r.df, 1), n=r.n, smd=fmt(r.standardised_effect, dp),
                 icc=fmt(r.site_icc, 3), warnings=r.warnings) for r in effects.itertuples()]
    p = effects[effects.primary].iloc[0] if effects.primary.any() else None
    primary = None if p is None else dict(
        timepoint=p.timepoint, estimate=fmt(p.estimate, dp), ci_low=fmt(p.ci_low, dp),
        ci_high=fmt(p.ci_high, dp), df=fmt(p.df, 1), n=int(p.n), analysis=p.analysis,
        smd=fmt(p.standardised_effect, dp), warnings=p.warnings)
    d = cfg["design"]
    return dict(
        outcome=cfg["primary"]["outcome"], primary=primary, effects=rows,
        clustered=d["clustered"],
        intervention=labels.get(d["intervention_arm"], d["intervention_arm"]),
        control=labels.get(d["control_arm"], d["control_arm"]),
        descriptives=[dict(timepoint=r.timepoint, arm=labels.get(r.arm, r.arm), n=r.n,
                           mean_sd=f"{fmt(r.mean, dp)} ({fmt(r.sd, dp)})") for r in desc.itertuples()],
        trajectory=png_data_uri(inputs["trajectory"]))
