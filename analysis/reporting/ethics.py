"""Ethics report: recruitment and consent, withdrawals and losses with reasons, safety, and
the data-protection statement.  All counts pass disclosure control; reasons are shown only
when they are among the reasons the trial config declares (anything else is pooled)."""

from __future__ import annotations

from analysis.reporting import audience as A
from analysis.reporting.common import read_table

TEMPLATE = "sections/ethics.html.j2"
STAGE_LABELS = {"screened": "Screened", "not_eligible": "Not eligible", "eligible": "Eligible",
                "declined": "Declined", "consented": "Consented", "allocated": "Allocated",
                "enrolled": "Enrolled (no screening log)", "receipt_unknown": "Attendance not recorded",
                "withdrawn": "Withdrawn (cumulative)", "lost": "Not assessed, not withdrawn",
                "assessed": "Assessed", "received": "Received the intervention",
                "not_received": "Did not receive the intervention"}


def declared_reasons(cfg: dict) -> set[str]:
    reasons = cfg.get("feasibility", {}).get("reasons", {}) or {}
    return {r for lst in reasons.values() for r in (lst or [])}


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    labels = cfg["design"]["arm_labels"]
    single = cfg["design"]["type"] == "single_arm"
    flow = read_table(inputs["flow"], ("reason", "timepoint", "measure", "arm", "site_id"))
    shown = A.suppressed_flow(flow, cfg, declared_reasons(cfg))
    shown = shown[shown.measure == ""]

    def rows(stages, with_timepoint=False):
        out = []
        for r in shown[shown.stage.isin(stages)].itertuples():
            if single and r.stage == "allocated":
                stage = "Enrolled"
            else:
                stage = STAGE_LABELS.get(r.stage, r.stage)
            if not (flow.stage == "withdrawn").any() and r.stage == "lost":
                stage = "Not assessed (withdrawal not recorded)"
            out.append(dict(stage=stage, arm="All" if r.arm in ("all", cfg["design"]["intervention_arm"]) and single
                            else labels.get(r.arm, r.arm),
                            timepoint=r.timepoint or "–", reason=r.reason or "all reasons",
                            n=A.show_count(r.n)))
        return out

    safety_rows = []
    if "safety" in inputs:
        from analysis.disclosure import suppress_table
        from analysis.feasibility import SAFETY_MEASURES
        st = read_table(inputs["safety"], ("measure", "arm"))
        if len(st):
            st, _ = suppress_table(st, "n", [], ["measure"], part_col="arm", total_label="all",
                                   policy=A.policy(cfg))
            safety_rows = [dict(measure=SAFETY_MEASURES.get(r.measure, r.measure),
                                arm="All" if r.arm == "all" else labels.get(r.arm, r.arm), n=A.show_count(r.n),
                                denominator=A.show_count(r.denominator)) for r in st.itertuples()]
    d = cfg["report"]
    return dict(
        safety_rows=safety_rows,
        policy=A.policy(cfg),
        recruitment=rows(["screened", "not_eligible", "eligible", "declined", "consented", "enrolled", "allocated"]),
        not_collected=[w for stage, w in (("screened", "screening (eligibility and consent)"),
                                          ("withdrawn", "withdrawals")) if not (flow.stage == stage).any()],
        followup=rows(["assessed", "lost", "withdrawn"], with_timepoint=True),
        safety=d.get("safety_statement") or "",
        data_protection=d.get("data_protection_statement") or "",
        blinded=cfg.get("blinded", False))
