"""Report section: feasibility indicators and the recruitment figure."""

from __future__ import annotations

from analysis.reporting.common import count, fmt, png_data_uri, read_table

TEMPLATE = "sections/feasibility.html.j2"

INDICATOR_LABELS = {
    "eligibility": "Eligible among screened",
    "consent": "Consented among eligible",
    "recruitment_rate": "Recruitment rate (per site per month)",
    "recruitment_vs_target": "Recruited as a share of target",
    "retention": "Retention (assessed / allocated)",
    "intervention_receipt": "Received the intervention (≥ 1 session)",
    "withdrawal": "Withdrawn",
}


def label(indicator: str) -> str:
    if indicator.startswith("completion_"):
        return f"Completion of {indicator[len('completion_'):]}"
    return INDICATOR_LABELS.get(indicator, indicator.replace("_", " "))


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    dp = cfg["report"]["decimals"]
    labels = cfg["design"]["arm_labels"]
    table = read_table(inputs["feasibility"], ("timepoint", "ci_method", "arm"))
    rows = []
    for r in table.itertuples():
        scale = 100 if r.unit == "proportion" else 1
        suffix = "%" if r.unit == "proportion" else ""
        rows.append(dict(
            indicator=label(r.indicator), timepoint=r.timepoint or "–", arm=labels.get(r.arm, r.arm),
            counts=f"{count(r.numerator)} / {count(r.denominator)}",
            estimate=fmt(r.estimate * scale, dp) + suffix,
            ci="–" if r.ci_low != r.ci_low else f"{fmt(r.ci_low * scale, dp)} to {fmt(r.ci_high * scale, dp)}",
            method=r.ci_method or "–"))
    return dict(feasibility=rows, recruitment=png_data_uri(inputs["recruitment"]),
                target=cfg["feasibility"]["recruitment_target"])
