"""Self-contained HTML report (figures embedded; no external requests).

The report shows only aggregate numbers: no participant identifier, name or free text is
passed to the template.
"""

from __future__ import annotations

import base64
import html
import math

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

import analysis


def _fmt(x, dp: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return "–"
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return str(x)
    return f"{float(x):.{dp}f}"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


INDICATOR_LABELS = {
    "eligibility": "Eligible among screened",
    "consent": "Consented among eligible",
    "recruitment_rate": "Recruitment rate (per site per month)",
    "recruitment_vs_target": "Recruited as a share of target",
    "retention": "Retention (assessed / allocated)",
    "intervention_receipt": "Received the intervention (≥ 1 session)",
    "withdrawal": "Withdrawn",
}


def render_report(cfg: dict, feasibility: pd.DataFrame, effects: pd.DataFrame,
                  descriptives: pd.DataFrame, figures: dict[str, bytes],
                  data_queries: pd.DataFrame) -> str:
    """Render the statistician's report as one HTML string."""
    dp = cfg["report"]["decimals"]
    labels = cfg["design"]["arm_labels"]
    env = Environment(loader=PackageLoader("analysis", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    feas_rows = []
    for r in feasibility.itertuples():
        name = INDICATOR_LABELS.get(r.indicator, r.indicator.replace("_", " "))
        if r.indicator.startswith("completion_"):
            name = f"Completion of {r.indicator[len('completion_'):]}"
        is_rate = r.unit != "proportion"
        scale = 1 if is_rate else 100
        feas_rows.append(dict(
            indicator=name, timepoint=r.timepoint or "–", arm=labels.get(r.arm, r.arm),
            counts=f"{r.numerator} / {_fmt(r.denominator, 1) if is_rate else int(r.denominator)}",
            estimate=_fmt(r.estimate * scale, dp) + ("" if is_rate else "%"),
            ci="–" if pd.isna(r.ci_low) else f"{_fmt(r.ci_low * scale, dp)} to {_fmt(r.ci_high * scale, dp)}",
            method=r.ci_method or "–"))
    eff_rows = [dict(timepoint=r.timepoint, primary="primary" if r.primary else "",
                     estimate=_fmt(r.estimate, dp), ci=f"{_fmt(r.ci_low, dp)} to {_fmt(r.ci_high, dp)}",
                     df=_fmt(r.df, 1), n=r.n, smd=_fmt(r.standardised_effect, dp),
                     icc=_fmt(r.site_icc, 3), warnings=r.warnings)
                for r in effects.itertuples()]
    primary = effects[effects.primary].iloc[0] if effects.primary.any() else None
    desc_rows = [dict(timepoint=r.timepoint, arm=labels.get(r.arm, r.arm), n=r.n,
                      mean_sd=f"{_fmt(r.mean, dp)} ({_fmt(r.sd, dp)})") for r in descriptives.itertuples()]
    queries = data_queries.groupby(["rule", "severity"], dropna=False).size().reset_index(name="n") \
        if len(data_queries) else pd.DataFrame(columns=["rule", "severity", "n"])
    template = env.get_template("report.html.j2")
    return template.render(
        title=cfg["title"], trial_id=cfg["trial_id"], version=analysis.__version__,
        outcome=cfg["primary"]["outcome"], arm_labels=labels,
        intervention=labels.get(cfg["design"]["intervention_arm"], cfg["design"]["intervention_arm"]),
        control=labels.get(cfg["design"]["control_arm"], cfg["design"]["control_arm"]),
        primary=None if primary is None else dict(
            timepoint=primary.timepoint, estimate=_fmt(primary.estimate, dp),
            ci_low=_fmt(primary.ci_low, dp), ci_high=_fmt(primary.ci_high, dp),
            df=_fmt(primary.df, 1), n=int(primary.n), analysis=primary.analysis,
            smd=_fmt(primary.standardised_effect, dp), warnings=primary.warnings),
        feasibility=feas_rows, effects=eff_rows, descriptives=desc_rows,
        figures={k: _data_uri(v) for k, v in figures.items()},
        queries=queries.to_dict("records"), n_queries=len(data_queries),
        clustered=cfg["design"]["clustered"], escape=html.escape,
    )
