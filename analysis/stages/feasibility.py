"""Feasibility stage: feasibility table with progression bands, progression criteria, recruitment
by site, disposition (CONSORT) counts and diagram, Table 1, and the feasibility figures."""

from __future__ import annotations

import logging

import pandas as pd

from analysis import consort
from analysis import feasibility as feas
from analysis import feasibility_plots, progression
from analysis.config import allocated_to, score_labels
from analysis.ingest import read_collected
from analysis.io import write_bytes, write_table
from analysis.stages._common import read_linked
from analysis.table1 import baseline_frame, table1

log = logging.getLogger("pathways")


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str]) -> None:
    """``inputs``: sites, participants, screening, linked, and optionally fidelity, adverse_events
    and collected (which optional inputs the trial collected); ``outputs``: every table and figure
    (safety only when named)."""
    sites, participants, screening, linked = (inputs[k] for k in ("sites", "participants", "screening", "linked"))
    fidelity, adverse_events, collected = (inputs.get(k) for k in ("fidelity", "adverse_events", "collected"))
    s, p, sc, lk = (pd.read_parquet(sites), pd.read_parquet(participants),
                    pd.read_parquet(screening), read_linked(linked))
    got = read_collected(collected) if collected else {}
    d, f = cfg["design"], cfg["feasibility"]
    single, cluster = d["type"] == "single_arm", d["type"] == "cluster"
    if f["fidelity_threshold"] is not None and not cfg["data"]["fidelity"]:
        raise ValueError("config key feasibility.fidelity_threshold is set but data.fidelity is null "
                         "(no fidelity assessments to evaluate)")
    fid = pd.read_parquet(fidelity) if fidelity and cfg["data"]["fidelity"] else None
    arms = feas.study_arms(p, d.get("control_arm"), d["intervention_arm"], single_arm=single)
    intervention = d["intervention_arm"] if d["intervention_arm"] in arms else None
    if cfg.get("blinded"):  # receipt exists only in the intervention arm: it would unblind
        intervention = None
    if single:
        log.info("single-arm study: flow without allocation, no between-arm comparison")
    screen = sc if got.get("screening", bool(cfg["data"].get("screening"))) else None
    measures = feas.score_measures(lk, f["measures"])
    level = f["confidence_level"]

    table = feas.feasibility_table(
        s, p, screen, lk, primary_outcome=cfg["primary"]["outcome"], arms=arms, intervention_arm=intervention,
        ci_method=f["ci_method"], level=level, recruitment_target=f["recruitment_target"],
        measures=measures, receipt_min_sessions=f["receipt_min_sessions"],
        adherence_min_sessions=f["adherence_min_sessions"], fidelity=fid,
        fidelity_threshold=f["fidelity_threshold"], collected=got,
        recruitment_period=f.get("recruitment_period"), single_arm=single, cluster=cluster)
    for r in table[table.unit == feas.NOT_COLLECTED].itertuples():
        log.info("feasibility: %s %s", r.indicator, r.definition)
    prog = progression.evaluate(table, f["progression_criteria"], test=f["progression_test"],
                                cluster=cluster, level=level)
    if len(prog):
        log.info("progression: %s (%s)", progression.decision(list(prog.band)),
                 ", ".join(f"{r.criterion}: {r.band}" for r in prog.itertuples()))
    write_table(progression.add_bands(table, prog), outputs["feasibility"])
    write_table(prog, outputs["progression"])
    write_table(feas.recruitment_by_site(s, p, level), outputs["by_site"])

    flow = feas.disposition(s, p, screen, lk, arms=arms, intervention_arm=intervention, measures=measures,
                            reasons=f["reasons"], receipt_min_sessions=f["receipt_min_sessions"],
                            cluster=cluster, collected=got)
    if screen is not None:
        consented = feas.flow_n(flow, "consented")
        if consented != len(p):
            log.warning("screening log records %d consented but the participants file has %d allocated",
                        consented, len(p))
    write_table(flow, outputs["flow"])
    waves = cfg["data"]["waves"]
    svg, png = consort.diagram(flow, arms=arms, intervention_arm=intervention, arm_labels=d["arm_labels"],
                               timepoints=[w["timepoint"] for w in waves], months=[w["month"] for w in waves],
                               measures=measures, receipt_min_sessions=f["receipt_min_sessions"],
                               measure_labels=score_labels(cfg), allocated_to=allocated_to(cfg))
    write_bytes(svg, outputs["consort_svg"])
    write_bytes(png, outputs["consort_png"])

    covs = cfg.get("covariates") or {}
    base = baseline_frame(p, lk, measures, list(covs))
    present = {c: got.get(c, True) for c in ("age", "sex")}
    continuous = [c for c in ["age"] if present["age"]] + \
        [c for c, v in covs.items() if v["type"] == "numeric"] + measures
    categorical = [c for c in ["sex"] if present["sex"]] + \
        (["client_group"] if got.get("client_group", True) and p.client_group.notna().any() else []) + \
        [c for c, v in covs.items() if v["type"] == "categorical"]
    levels = {c: v["levels"] for c, v in covs.items() if v.get("levels")}
    write_table(table1(base, arms, continuous, categorical, levels), outputs["table1"])

    write_bytes(feasibility_plots.recruitment_png(p, s, f["recruitment_target"], arms, d["arm_labels"],
                                                  cluster=cluster), outputs["figure"])
    if "safety" in outputs:  # an empty table when the trial records no adverse events
        if adverse_events and cfg["data"].get("adverse_events"):
            safety = feas.safety_table(p, pd.read_parquet(adverse_events), arms)
        else:
            safety = pd.DataFrame(columns=feas.SAFETY_COLUMNS)
        write_table(safety, outputs["safety"])
    shown = table.copy()
    if cluster:  # the figure shows the intervals that allow for sites (the report's caption says so)
        has = shown.ci_low_cluster.notna()
        shown.loc[has, "ci_low"], shown.loc[has, "ci_high"] = shown.ci_low_cluster[has], shown.ci_high_cluster[has]
    write_bytes(feasibility_plots.retention_completion_png(
        shown, [w["timepoint"] for w in waves], arms, d["arm_labels"], measures, level,
        labels=score_labels(cfg), single_arm=single), outputs["retention"])
