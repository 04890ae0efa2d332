"""Report section: progression criteria, feasibility indicators, CONSORT flow, Table 1, figures."""

from __future__ import annotations

import os

from analysis.config import allocated_to
from analysis.feasibility import NOT_COLLECTED
from analysis.progression import decision, overall_band
from analysis.reporting.common import count, fmt, level_label, png_data_uri, read_table

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


def label(indicator: str, unit: str = "", labels: dict | None = None, single_arm: bool = False) -> str:
    """Display name of a feasibility indicator; a completion indicator names its measure by its
    label (``analysis.config.score_labels``), never by the raw column name."""
    labels = labels or {}
    if indicator == "recruitment_rate" and unit:
        return f"Recruitment rate ({unit})"
    if indicator.startswith("completion_"):
        m = indicator[len("completion_"):]
        return f"Completion of {labels.get(m, m)}"
    if single_arm and indicator == "retention":
        return "Retention (assessed / enrolled)"
    return INDICATOR_LABELS.get(indicator, indicator.replace("_", " "))


def _num(unit: str, x, dp: int) -> str:
    return fmt(x * 100, dp) + "%" if unit == "proportion" else fmt(x, dp)


def _ci(unit: str, lo, hi, dp: int) -> str:
    return "–" if lo != lo else f"{_num(unit, lo, dp)} to {_num(unit, hi, dp)}"


def _p(p: float) -> str:
    return "–" if p != p else ("< 0.0001" if p < 0.0001 else f"{p:.4f}")


def _arm(labels: dict, arm: str) -> str:
    return "All" if arm == "all" else labels.get(arm, arm)


def _table1_rows(t1, arms: list[str], dp: int, names: dict | None = None) -> list[dict]:
    names = names or {}
    rows = []
    for (var, typ), g in t1.groupby(["variable", "type"], sort=False):
        var = names.get(var, var)
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


def _arm_groups(table, labels: dict, single: bool) -> list[tuple[str, str]]:
    groups = list(dict.fromkeys(table.arm))
    groups = ["all"] + [g for g in groups if g != "all"]
    return [(g, ("All" if single else "All participants") if g == "all" else labels.get(g, g)) for g in groups]


def _feasibility_rows(table, groups, labels: dict, names: dict, dp: int, single: bool,
                      cluster: bool = False) -> tuple[list[dict], list[str]]:
    """One row per indicator and time point, one column per arm (and all participants):
    'n / N' above 'estimate (CI)', and in a cluster design the interval allowing for sites
    below.  The CI method of each kind of indicator is named once, under the table."""
    rows, methods = [], {}
    key = ["indicator", "timepoint"]
    for (ind, tp), g in table.groupby(key, sort=False):
        first = g.iloc[0]
        name = label(ind, first.unit, names, single)
        if first.unit == NOT_COLLECTED:
            rows.append(dict(indicator=name, timepoint="–", not_collected=first.definition, band=""))
            continue
        cells = []
        for arm, _ in groups:
            r = g[g.arm == arm]
            if not len(r):
                cells.append(None)
                continue
            r = r.iloc[0]
            kind = "proportions" if r.unit == "proportion" else "rates"
            if r.ci_method:
                methods.setdefault(kind, r.ci_method)
            ci = _ci(r.unit, r.ci_low, r.ci_high, dp)
            cell = dict(counts=f"{count(r.numerator)} / {count(r.denominator)}",
                        estimate=_num(r.unit, r.estimate, dp) + ("" if ci == "–" else f" ({ci})"))
            if cluster:
                lo, hi = getattr(r, "ci_low_cluster", float("nan")), getattr(r, "ci_high_cluster", float("nan"))
                cell["ci_cluster"] = _ci(r.unit, lo, hi, dp) if lo == lo else ""
                how = getattr(r, "ci_method_cluster", "") or ""
                if cell["ci_cluster"] and how and "units counted are sites" not in how:
                    methods.setdefault(f"{kind} allowing for sites", how)
            cells.append(cell)
        bands = [b for b in g.band if b]
        band = bands[0] if bands else ""
        rows.append(dict(indicator=name, timepoint=tp or "–", cells=cells, band=band,
                         colour=BAND_COLOURS.get(band, "")))
    return rows, [f"{k}: {v}" for k, v in methods.items()]


def consort_table(cfg: dict, inputs: dict[str, str], names: dict) -> dict | None:
    """The statistician's CONSORT diagram (exact counts) as a table: see analysis.reporting.flow."""
    from markupsafe import Markup

    from analysis.reporting import flow as F
    from analysis.reporting.audience import flow_key
    if "flow" not in inputs or not os.path.exists(inputs["flow"]):
        return None
    flow = read_table(inputs["flow"], ("reason", "timepoint", "measure", "arm", "site_id"))
    flow = flow[flow.site_id.astype(str) == "all"]
    for c in ("reason", "timepoint", "measure", "arm"):
        flow[c] = flow[c].fillna("").astype(str)
    values = {flow_key(r.stage, r.arm, r.timepoint, r.measure, r.reason): int(r.n) for r in flow.itertuples()}
    d = cfg["design"]
    single = d["type"] == "single_arm"
    arms = list(dict.fromkeys(flow[flow.stage == "allocated"].arm))
    analysed = []
    if "effects" in inputs and os.path.exists(inputs["effects"]):
        eff = read_table(inputs["effects"], ("analysis", "term", "population", "timepoint"))
        if len(eff) and "n_participants_model" in eff:
            eff = eff[(eff.analysis == "primary") & eff.population.isin(["", "all"])
                      & ~eff.term.astype(str).str.contains(",")]
            cols = ([(arms[0], "n_participants_model")] if single else
                    [(d["intervention_arm"] if not cfg.get("blinded") else "B", "n_intervention_model"),
                     (d.get("control_arm") if not cfg.get("blinded") else "A", "n_control_model")])
            for y, g in eff.groupby("outcome", sort=False):
                r = g.iloc[0]
                cells = {}
                for arm, col in cols:
                    if col in r and r[col] == r[col]:
                        key = f"analysed:{y}:{arm}"
                        values[key] = int(r[col])
                        cells[arm] = key
                analysed.append(dict(outcome=y, cells=cells, sites=r.get("n_sites_model")))
    measures = list(dict.fromkeys(flow[flow.stage == "assessed_measure"].measure))
    intervention = d["intervention_arm"] if not cfg.get("blinded") else None
    b = F.boxes(flow, lambda k: Markup("{}").format(values[k]) if k in values else Markup("–"),
                arms=arms, arm_labels=d["arm_labels"],
                timepoints=[str(w["timepoint"]) for w in cfg["data"]["waves"]],
                months=[w["month"] for w in cfg["data"]["waves"]], single=single, intervention=intervention,
                receipt_min_sessions=cfg["feasibility"]["receipt_min_sessions"], measures=measures,
                measure_labels=names, analysed=analysed, outcome_labels=names,
                site_word="Sites" if d["type"] == "cluster" else "Centres", allocated_to=allocated_to(cfg))
    return dict(arms=b["arms"], rows=F.table_rows(b))


COVARIATE_NAMES = {"age": "Age (years)", "sex": "Sex", "client_group": "Client group", "participants": "Participants"}


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    from analysis.config import score_labels
    dp = cfg["report"]["decimals"]
    labels = cfg["design"]["arm_labels"]
    single = cfg["design"]["type"] == "single_arm"
    names = score_labels(cfg)
    level = cfg["feasibility"]["confidence_level"]
    table = read_table(inputs["feasibility"], ("timepoint", "ci_method", "arm", "band", "unit", "definition",
                                               "ci_method_cluster"))
    cluster = cfg["design"]["type"] == "cluster"
    groups = _arm_groups(table, labels, single)
    rows, methods = _feasibility_rows(table, groups, labels, names, dp, single, cluster)

    prog = read_table(inputs["progression"], ("timepoint", "arm", "band", "test", "ci_method", "denominator_of",
                                              "interval"))
    unit = dict(zip(table.indicator, table.unit))
    criteria = []
    for r in prog.itertuples():
        u = unit.get(r.indicator, "")
        criteria.append(dict(
            name=r.criterion, timepoint=r.timepoint or "–", arm=_arm(labels, r.arm),
            counts=f"{count(r.numerator)} / {count(r.denominator)}", denominator_of=r.denominator_of,
            estimate=_num(u, r.estimate, dp), ci=_ci(u, r.ci_low, r.ci_high, dp),
            rule=(f"GREEN ≥ {_num(u, r.green, dp)}, RED < {_num(u, r.red, dp)}" if r.direction == "higher"
                  else f"GREEN ≤ {_num(u, r.green, dp)}, RED > {_num(u, r.red, dp)}"),
            band=r.band, colour=BAND_COLOURS.get(r.band, ""),
            p=_p(r.p_value_vs_red) if r.test else "–", test=r.test,
            interval=getattr(r, "interval", "") or "simple", ci_method=r.ci_method or ""))
    bands = list(prog.band)

    t1 = read_table(inputs["table1"], ("level", "arm"))
    arms = list(dict.fromkeys(t1.arm))
    covariate_names = {k: v.get("label") or k for k, v in (cfg.get("covariates") or {}).items()}
    safety = None
    if "safety" in inputs and cfg["data"].get("adverse_events"):
        from analysis.feasibility import SAFETY_MEASURES
        st = read_table(inputs["safety"], ("measure", "arm"))
        safety = dict(arms=[("Overall" if a == "all" else labels.get(a, a)) for a in dict.fromkeys(st.arm)],
                      rows=[dict(label=SAFETY_MEASURES.get(m, m),
                                 cells=[f"{int(r.n)} / {int(r.denominator)}" for r in g.itertuples()])
                            for m, g in st.groupby("measure", sort=False)])
    return dict(
        safety=safety, single_arm=single,
        feasibility=rows, groups=[g for _, g in groups], ci_methods=methods, cluster=cluster,
        criteria=criteria, cluster_criteria=any(c["interval"] != "simple" for c in criteria),
        decision=decision(bands), overall=overall_band(bands),
        overall_colour=BAND_COLOURS.get(overall_band(bands) or "", ""),
        any_test=any(c["test"] for c in criteria), level=level_label(level),
        table1=_table1_rows(t1, arms, dp, {**COVARIATE_NAMES, **names, **covariate_names}),
        table1_arms=[("Overall" if a == "all" else labels.get(a, a)) for a in arms],
        consort=consort_table(cfg, inputs, names), recruitment=png_data_uri(inputs["recruitment"]),
        retention=png_data_uri(inputs["retention"]), target=cfg["feasibility"]["recruitment_target"])
