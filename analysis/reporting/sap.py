"""The statistical analysis plan (SAP) document, rendered from a SAP lock.

``pathways.sh sap-lock`` writes ``<trial>.sap.html`` (and PDF/Word with ``--formats``) next to
the lock; ``python -m analysis.sap document <trial>.sap.lock.json`` renders it again.  Every
number and setting in it is read from the lock's plan (the config's analysis keys as locked:
:func:`analysis.sap.plan_of`), so the config that runs the analysis is the SAP: objectives,
design, time points, outcomes with their instruments and scoring rules, the primary model,
sensitivity analyses, multiple imputation, progression criteria, the economic evaluation and
the definitive-trial planning settings, and, as an appendix, every analysis key with its locked
value and meaning (from the config schema).  The same lock always gives the same HTML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analysis.config import load_schema
from analysis.sap import LOCK_SUFFIX, PLAN_SECTIONS, show

TEMPLATE = "sap.html.j2"
DESIGNS = {
    "cluster": "Cluster randomised: sites were randomised, and the arm of each site is read from the sites file.",
    "individual": "Individually randomised: participants were randomised, and the arm is read from the participants file.",
    "single_arm": "Single-arm (pre-post) study with no comparison group: effects are changes from baseline.",
}
NON_RANDOMISED = ("Non-randomised cluster comparison: allocation was NOT random; sites that delivered the "
                  "intervention are compared with sites that did not, weighted by a propensity score (key "
                  "propensity), and the arm of each site is read from the sites file.")
NON_RANDOMISED_INDIVIDUAL = ("Non-randomised comparison of participants: allocation was NOT random; participants "
                             "in the intervention group are compared with those in the comparison group, weighted "
                             "by a propensity score (key propensity), and each participant's group is read from "
                             "the participants file.")
SECTION_TITLES = {
    "objectives": "Objectives", "seed": "Seed", "design": "Design", "data": "Time points and inputs analysed",
    "propensity": "Propensity-score weighting (non-randomised comparison)",
    "instruments": "Instruments and their options", "scoring": "Scoring rules", "prescored": "Pre-scored outcomes",
    "covariates": "Covariates", "feasibility": "Feasibility and progression", "primary": "Primary model",
    "outcomes": "Outcomes, sensitivity analyses and multiple imputation", "economics": "Economic evaluation",
    "value_for_money": "Value for money (single-arm study)",
    "planning": "Planning the definitive trial"}
SCORING_NOTE = "Scoring rule of the instrument definition (response codes, items, reverse items, scoring, missing items)."
PLAN_NOTES = {
    "data.sites": "Whether the sites file is analysed (given) or not collected (null); file names are housekeeping.",
    "data.screening": "Whether the screening log is analysed (given) or not collected (null).",
    "data.fidelity": "Whether fidelity assessments are analysed (given) or not collected (null).",
    "data.adverse_events": "Whether the adverse-event log is analysed (given) or not collected (null).",
    "data.service_use": "Whether service-use data are analysed (given) or not collected (null).",
    "economics.unit_costs_file": "SHA-256 of the trial's unit-cost file at lock time.",
    "economics.inflation_index_file": "SHA-256 of the trial's inflation-index file at lock time.",
}


def _describe(schema: dict, parts: list[str]) -> str:
    """The schema's description of a plan key (parts of its dotted path; list indices dropped)."""
    node = schema
    for part in parts:
        if node.get("type") == "array" or "items" in node and "properties" not in node:
            node = node.get("items") or {}
        props = node.get("properties") or {}
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return ""
    return " ".join(str(node.get("description", "")).split())


def flatten(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf: mappings and lists of mappings are opened, other
    lists and empty containers are kept whole."""
    if isinstance(value, dict) and value:
        return [kv for k in sorted(value) for kv in flatten(value[k], f"{key}.{k}" if key else k)]
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        return [kv for i, x in enumerate(value) for kv in flatten(x, f"{key}[{i}]")]
    return [(key, value)]


def settings(plan: dict, section: str, schema: dict) -> list[dict]:
    """Rows (key, value, meaning) of one section of the plan."""
    rows = []
    for key, value in flatten(plan.get(section, {}), section):
        parts = [p.split("[")[0] for p in key.split(".")]
        if section == "scoring":
            meaning = SCORING_NOTE if key.count(".") == 1 else ""
        elif section == "instruments":
            meaning = "Scoring option of the instrument (docs/instruments.md); {} means its defaults."
        else:
            meaning = PLAN_NOTES.get(key) or _describe(schema, parts)
        rows.append(dict(key=key, value=show(value), meaning=meaning))
    return rows


def _label(code: str) -> str:
    return str(code).replace("_", " ")


def objectives(plan: dict) -> tuple[list[str], bool]:
    """The stated objectives, or ones derived from the plan (second item True when derived)."""
    if plan.get("objectives"):
        return list(plan["objectives"]), False
    out = []
    crit = (plan.get("feasibility") or {}).get("progression_criteria") or []
    if crit:
        out.append("To estimate the feasibility of a definitive trial against prespecified progression criteria: "
                   + "; ".join(c.get("name") or c.get("indicator", "") for c in crit) + ".")
    else:
        out.append("To estimate recruitment, retention, completion of outcome measures and intervention "
                   "receipt, with confidence intervals.")
    p = plan["primary"]
    fu = _followups(plan)
    tp = p.get("timepoint") or (fu[-1] if fu else None)
    single = plan["design"]["type"] == "single_arm"
    out.append(f"To estimate {'the change from baseline in' if single else 'the difference between arms in'} "
               f"{p['outcome']} at {tp or 'the last follow-up'}, with its confidence interval (a pilot is not "
               "powered to test it).")
    if (plan.get("outcomes") or {}).get("secondary"):
        out.append("To estimate the same for " + ", ".join(plan["outcomes"]["secondary"]) + ".")
    if (plan.get("economics") or {}).get("enabled"):
        out.append("To estimate costs, QALYs and cost-effectiveness, and to test the economic data collection.")
    pl = plan.get("planning") or {}
    if pl.get("enabled", True) and not single:
        out.append("To estimate the inputs for planning the definitive trial (SD, correlation, ICC, retention, "
                   "recruitment) and its sample size.")
    return out, True


def _followups(plan: dict) -> list[str]:
    return [w["timepoint"] for w in plan["data"]["waves"][1:]]


def primary_model(plan: dict) -> list[str]:
    """The primary analysis in words (docs/methods.md, "Primary outcome")."""
    p, d, o = plan["primary"], plan["design"], plan.get("outcomes") or {}
    fu = _followups(plan)
    tp = p.get("timepoint") or (fu[-1] if fu else None)
    level = f"{float(o.get('confidence_level', 0.95)) * 100:g}%"
    strat = d.get("stratification") or []
    adj = ["the baseline value of the outcome"] + ([f"stratification factors {', '.join(strat)} (categorical)"]
                                                     if strat else [])
    if p.get("covariates"):
        adj.append("covariates " + ", ".join(p["covariates"]))
    clustering = p.get("clustering")
    if clustering is None:
        clustering = ["site_id", "participant_id"] if d["type"] == "cluster" else ["participant_id"]
    df = {"auto": "Kenward-Roger when sites are a random effect, Satterthwaite otherwise",
          "satterthwaite": "Satterthwaite", "kenward_roger": "Kenward-Roger"}.get(p.get("df_method"), p.get("df_method"))
    out = [f"Primary outcome: {p['outcome']}; primary follow-up: {tp} (every follow-up is reported, this one "
           "marked primary)."]
    if d["type"] == "single_arm":
        out.append("Linear mixed model over every wave, baseline included, with time as a factor (baseline the "
                   "reference) and a random participant intercept; the change at each follow-up is the "
                   f"coefficient of its time point, with a {level} confidence interval. The paired change and "
                   "the standardised response mean are reported beside it.")
    elif len(fu) > 1:
        time = ("time as a factor, so a separate arm difference at each follow-up (arm × time)"
                if p.get("time") == "categorical" else "the arm effect linear in months (treat + treat × month)")
        out.append(f"Linear mixed model on the follow-up values, fitted by REML, with {time}, adjusted for "
                   f"{', '.join(adj)}; random intercepts for {', '.join(clustering) or 'none'}. The "
                   f"intervention-minus-control difference at each follow-up is reported with a {level} confidence "
                   f"interval (small-sample degrees of freedom: {df}).")
    else:
        out.append(f"ANCOVA at the single follow-up, adjusted for {', '.join(adj)}"
                   f"{' with a random site intercept' if 'site_id' in clustering else ''}; the difference is "
                   f"reported with a {level} confidence interval (small-sample degrees of freedom: {df}).")
    if p.get("interactions"):
        out.append("Further interaction terms: " + ", ".join(p["interactions"]) + ".")
    if d.get("centre_effect") and d["type"] != "cluster":
        out.append(f"Centres (when there are several) enter as {d['centre_effect']} effects.")
    return out


def sensitivity(plan: dict) -> list[str]:
    o = plan.get("outcomes") or {}
    out = []
    if o.get("ancova_each_followup"):
        out.append("ANCOVA at each follow-up separately.")
    if o.get("complete_case"):
        out.append("The primary model on complete cases (participants with the outcome at every follow-up).")
    mi = o.get("multiple_imputation") or {}
    if mi.get("enabled"):
        out.append(f"Multiple imputation by chained equations ({mi.get('method')}, m = {mi.get('m')}, "
                   f"{mi.get('iterations')} iterations), analysed with the primary model and pooled by Rubin's rules.")
    tip = o.get("tipping_point") or {}
    if tip.get("enabled"):
        out.append(f"Delta-adjusted tipping-point analysis: imputed values of the {tip.get('arm')} arm shifted "
                   f"towards a worse outcome by {', '.join(str(s) for s in tip.get('shifts_sd') or [])} baseline SDs"
                   f"{' for every outcome' if tip.get('all_outcomes') else ' (primary outcome)'}.")
    for m in o.get("effect_modifiers") or []:
        out.append(f"Prespecified effect modification by {m.get('label') or m['variable']} "
                   f"(source {m.get('source', 'linked')}{', cut-off ' + str(m['cutoff']) if m.get('cutoff') is not None else ''}).")
    return out


def instruments_table(lock: dict) -> list[dict]:
    plan = lock["plan"]
    rows = []
    for inst, rule in (plan.get("scoring") or {}).items():
        src = (lock.get("instrument_sources") or {}).get(inst, {})
        sc, miss = rule.get("scoring") or {}, rule.get("missing") or {}
        rows.append(dict(
            id=inst, name=src.get("name", inst), citation=src.get("citation", ""),
            options=show((plan.get("instruments") or {}).get(inst) or {}),
            n_items=len(rule.get("items") or []), codes=show((rule.get("response") or {}).get("codes")),
            reverse=show(rule.get("reverse") or []), method=sc.get("method", ""),
            range=show(sc.get("range")) if sc.get("range") is not None else "–",
            direction=sc.get("direction", ""), subscales=", ".join(rule.get("subscales") or {}) or "–",
            missing=f"at most {miss.get('max_missing', 0)} missing item(s) (prorated)" if miss.get("max_missing")
            else "complete forms only"))
    return rows


def context(lock: dict) -> dict:
    schema = load_schema()
    plan = lock["plan"]
    objs, derived = objectives(plan)
    d = plan["design"]
    f = plan.get("feasibility") or {}
    return dict(
        lock=lock, plan=plan, objectives=objs, objectives_derived=derived,
        design=((NON_RANDOMISED_INDIVIDUAL if d["type"] == "individual" else NON_RANDOMISED)
                if d.get("allocation") == "non_randomised" else DESIGNS.get(d["type"], d["type"])),
        arms=None if d["type"] == "single_arm" else
        dict(intervention=d.get("intervention_arm"), control=d.get("control_arm")),
        waves=plan["data"]["waves"], data_rows=settings(plan, "data", schema),
        instruments=instruments_table(lock), prescored=plan.get("prescored") or {},
        secondary=(plan.get("outcomes") or {}).get("secondary") or [],
        primary_model=primary_model(plan), sensitivity=sensitivity(plan),
        criteria=f.get("progression_criteria") or [],
        sections=[(SECTION_TITLES[key], settings(plan, key, schema)) for key in PLAN_SECTIONS if key in plan],
        economics_enabled=bool((plan.get("economics") or {}).get("enabled")),
        planning=plan.get("planning") or {}, label=_label,
        data_lock=sorted((lock.get("data_lock") or {}).items()),
        plan_json=json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False))


def render_document(lock: dict) -> str:
    """The SAP document (self-contained HTML) of a lock read with :func:`analysis.sap.read_lock`."""
    from analysis.reporting import _env
    return _env().get_template(TEMPLATE).render(**context(lock))


def document_paths(lock_path: str | Path, formats=("html",)) -> list[Path]:
    """``trial.sap.lock.json`` -> ``trial.sap.html`` (and ``.pdf``, ``.docx``)."""
    p = Path(lock_path)
    stem = p.name[: -len(LOCK_SUFFIX)] if p.name.endswith(LOCK_SUFFIX) else p.stem
    fmts = ["html"] + [f for f in formats if f != "html"]
    return [p.with_name(f"{stem}.sap.{fmt}") for fmt in fmts]


def write_document(lock: dict, lock_path: str | Path, formats=("html",)) -> list[Path]:
    """Write the SAP document next to the lock; returns the paths written (HTML first)."""
    from analysis.io import write_text
    from analysis.render import html_to_docx, html_to_pdf

    html = render_document(lock)
    paths = document_paths(lock_path, formats)
    write_text(html, paths[0])
    for path in paths[1:]:
        {"pdf": html_to_pdf, "docx": html_to_docx}[path.suffix[1:]](html, path)
    return paths
