"""Ethics report: recruitment and consent, withdrawals and losses with reasons, safety, and
the data-protection statement.  All counts pass disclosure control; reasons are shown only
when they are among the reasons the trial config declares (anything else is pooled)."""

from __future__ import annotations

from analysis.reporting import audience as A

TEMPLATE = "sections/ethics.html.j2"
STAGE_LABELS = {"screened": "Screened", "not_eligible": "Not eligible", "eligible": "Eligible",
                "declined": "Declined", "consented": "Consented", "allocated": "Allocated",
                "enrolled": "Enrolled (no screening log)", "receipt_unknown": "Attendance not recorded",
                "withdrawn": "Withdrawn (cumulative)", "lost": "Not assessed, not withdrawn",
                "assessed": "Assessed", "received": "Received the intervention",
                "not_received": "Did not receive the intervention"}


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    labels = cfg["design"]["arm_labels"]
    single = cfg["design"]["type"] == "single_arm"
    counts = A.release(cfg, inputs)
    flow = counts.flow
    withdrawal_recorded = bool((flow.stage == "withdrawn").any())

    def rows(kind):
        out = []
        for r in counts.rows[kind]:
            if single and r["stage"] == "allocated":
                stage = "Enrolled"
            elif r["stage"] == "lost" and not withdrawal_recorded:
                stage = "Not assessed (withdrawal not recorded)"
            else:
                stage = STAGE_LABELS.get(r["stage"], r["stage"])
            arm = "All" if r["arm"] == "all" or single else labels.get(r["arm"], r["arm"])
            out.append(dict(stage=stage, arm=arm, timepoint=r["timepoint"] or "–",
                            reason=r["reason"] or "all reasons", n=counts.cell(r["key"])))
        return out

    from analysis.feasibility import SAFETY_MEASURES
    safety_rows = [dict(measure=SAFETY_MEASURES.get(r["measure"], r["measure"]),
                        arm="All" if r["arm"] == "all" else labels.get(r["arm"], r["arm"]),
                        n=counts.cell(r["key"]), denominator=counts.cell(r["den"])) for r in counts.rows["safety"]]
    d = cfg["report"]
    return dict(
        safety_rows=safety_rows,
        policy=A.policy(cfg),
        recruitment=rows("ethics_recruitment"),
        not_collected=[w for stage, w in (("screened", "screening (eligibility and consent)"),
                                          ("withdrawn", "withdrawals")) if not (flow.stage == stage).any()],
        followup=rows("ethics_followup"),
        safety=d.get("safety_statement") or "",
        data_protection=d.get("data_protection_statement") or "",
        blinded=cfg.get("blinded", False),
        reasons_withheld=counts.reasons_withheld)
