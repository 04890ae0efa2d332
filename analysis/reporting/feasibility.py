"""Report section: progression criteria, feasibility indicators, CONSORT flow, Table 1, figures."""

from __future__ import annotations

from analysis.progression import decision, overall_band
from analysis.reporting.common import count, fmt, png_data_uri, read_table

TEMPLATE = "sections/feasibility.html.j2"

INDICATOR_LABELS = {
    "eligibility": "Eligible among screened",
    "consent": "Consented among eligible",
    "recruitment_rate": "Recruitment rate",
    "recruitment_vs_target": "Recruited as a share of target",
    "retention": "Retention (assessed / allocated)",
    "intervention_receipt": "Received the intervention",
    "adherence": "Adherent to the intervention",
    "fidelity": "Sites delivering with fidelity",
    "withdrawal": "Withdrawn",
}
BAND_COLOURS = {"GREEN": "#cde8d4", "AMBER": "#fbe3b5", "RED": "#f4c5c5", "NOT ESTIMABLE": "#e4e4e4"}


def label(indicator: str, unit: str = "") -> str:
    if indicator == "recruitment_rate" and unit:
        return f"Recruitment rate ({unit})"
    if indicator.startswith("completion_"):
        return f"Completion of {indicator[len('completion_'):]}"
    return INDICATOR_LABELS.get(indicator, indicator.replace("_", " "))


def _num(unit: str, x, dp: int) -> str:
    return fmt(x * 100, dp) + "%" if unit == "proportion" else fmt(x, dp)


def _ci(unit: str, lo, hi, dp: int) -> str:
    return "–" if lo != lo else f"{_num(unit, lo, dp)} to {_num(unit, hi, dp)}"


def _p(p: float) -> str:
    return "–" if p != p else ("< 0.0001" if p < 0.0001 else f"{p:.4f}")


def _arm(labels: dict, arm: str) -> str:
    return "All" if arm == "all" else labels.get(arm, arm)


def _table1_rows(t1, arms: list[str], dp: int) -> list[dict]:
    rows = []
    for (var, typ), g in t1.groupby(["variable", "type"], sort=False):
        if typ == "count":
            rows.append(dict(label="Participants", cells=[count(g.set_index("arm").n.get(a)) for a in arms]))
            continue
        by = {a: g[g.arm == a] for a in arms}
        if typ == "continuous":
            rows.append(dict(label=var, cells=["" for _ in arms], head=True))
            r = {a: by[a].iloc[0] for a in arms}
            rows.append(dict(label="n", cells=[count(r[a].n) for a in arms]))
            rows.append(dict(label="mean (SD)", cells=[f"{fmt(r[a]['mean'], dp)} ({fmt(r[a].sd, dp)})" for a in arms]))
            rows.append(dict(label="median (IQR)", cells=[
                f"{fmt(r[a]['median'], dp)} ({fmt(r[a].q1, dp)} to {fmt(r[a].q3, dp)})" for a in arms]))
        else:
            rows.append(dict(label=f"{var}, n (%)", cells=["" for _ in arms], head=True))
            for lev in dict.fromkeys(g.level):
                cell = {a: by[a][by[a].level == lev].iloc[0] for a in arms}
                rows.append(dict(label=lev, cells=[f"{count(cell[a]['count'])} ({fmt(cell[a].percent, 1)}%)"
                                                   for a in arms]))
        rows.append(dict(label="missing", cells=[count(by[a].iloc[0].missing) for a in arms]))
    return rows


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    dp = cfg["report"]["decimals"]
    labels = cfg["design"]["arm_labels"]
    level = cfg["feasibility"]["confidence_level"]
    table = read_table(inputs["feasibility"], ("timepoint", "ci_method", "arm", "band", "unit", "definition",
                                               "ci_method_cluster"))
    cluster = cfg["design"]["type"] == "cluster"
    rows = []
    for r in table.itertuples():
        cl_lo, cl_hi = getattr(r, "ci_low_cluster", float("nan")), getattr(r, "ci_high_cluster", float("nan"))
        rows.append(dict(
            indicator=label(r.indicator, r.unit), timepoint=r.timepoint or "–", arm=_arm(labels, r.arm),
            counts=("not collected" if r.unit == "not collected" else f"{count(r.numerator)} / {count(r.denominator)}"),
            estimate=("–" if r.unit == "not collected" else _num(r.unit, r.estimate, dp)),
            ci=_ci(r.unit, r.ci_low, r.ci_high, dp),
            method=(r.definition if r.unit == "not collected" else (r.ci_method or "–")),
            ci_cluster=_ci(r.unit, cl_lo, cl_hi, dp),
            method_cluster=("" if r.unit == "not collected" else (getattr(r, "ci_method_cluster", "") or "–")),
            band=r.band, colour=BAND_COLOURS.get(r.band, "")))

    prog = read_table(inputs["progression"], ("timepoint", "arm", "band", "test", "ci_method", "denominator_of",
                                              "interval"))
    unit = dict(zip(table.indicator, table.unit))
    criteria = []
    for r in prog.itertuples():
        u = unit.get(r.indicator, "")
        criteria.append(dict(
            name=r.criterion, timepoint=r.timepoint or "–", arm=_arm(labels, r.arm),
            counts=f"{count(r.numerator)} / {count(r.denominator)} ({r.denominator_of})",
            estimate=_num(u, r.estimate, dp), ci=_ci(u, r.ci_low, r.ci_high, dp),
            rule=(f"GREEN ≥ {_num(u, r.green, dp)}, RED < {_num(u, r.red, dp)}" if r.direction == "higher"
                  else f"GREEN ≤ {_num(u, r.green, dp)}, RED > {_num(u, r.red, dp)}"),
            band=r.band, colour=BAND_COLOURS.get(r.band, ""),
            p=_p(r.p_value_vs_red) if r.test else "–", test=r.test,
            interval=getattr(r, "interval", "") or "simple", ci_method=r.ci_method or ""))
    bands = list(prog.band)

    t1 = read_table(inputs["table1"], ("level", "arm"))
    arms = list(dict.fromkeys(t1.arm))
    safety = None
    if "safety" in inputs and cfg["data"].get("adverse_events"):
        from analysis.feasibility import SAFETY_MEASURES
        st = read_table(inputs["safety"], ("measure", "arm"))
        safety = dict(arms=[("Overall" if a == "all" else labels.get(a, a)) for a in dict.fromkeys(st.arm)],
                      rows=[dict(label=SAFETY_MEASURES.get(m, m),
                                 cells=[f"{int(r.n)} / {int(r.denominator)}" for r in g.itertuples()])
                            for m, g in st.groupby("measure", sort=False)])
    return dict(
        safety=safety,
        feasibility=rows, criteria=criteria, cluster=cluster,
        cluster_criteria=any(c["interval"] != "simple" for c in criteria), decision=decision(bands), overall=overall_band(bands),
        overall_colour=BAND_COLOURS.get(overall_band(bands) or "", ""),
        any_test=any(c["test"] for c in criteria), level=f"{level:.0%}",
        table1=_table1_rows(t1, arms, dp),
        table1_arms=[("Overall" if a == "all" else labels.get(a, a)) for a in arms],
        consort=png_data_uri(inputs["consort"]), recruitment=png_data_uri(inputs["recruitment"]),
        retention=png_data_uri(inputs["retention"]), target=cfg["feasibility"]["recruitment_target"])
