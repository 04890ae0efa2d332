"""Report section: front matter (CONSORT 2010 pilot extension items 1b, 2b, 7a, 23-25): what
kind of study this is, its objectives, registration, protocol, the rationale for its sample
size and funding, from ``report.front_matter`` in the trial config.

Items the config leaves out are listed as not stated in the statistician's report (naming the
config key, so they can be filled in) and left out of the funder's and ethics committee's."""

from __future__ import annotations

TEMPLATE = "sections/front.html.j2"
ITEMS = [("registration", "Registration"), ("protocol", "Protocol"),
         ("sample_size_rationale", "Sample size"), ("funding", "Funding")]


def design_sentence(cfg: dict) -> str:
    d = cfg["design"]
    labels = d["arm_labels"]
    itv = labels.get(d["intervention_arm"], d["intervention_arm"])
    if d["type"] == "single_arm":
        return ("Single-arm pilot and feasibility study: everyone enrolled receives the intervention; there is "
                "no comparison group, so changes from baseline are described, not attributed to the intervention.")
    ctl = labels.get(d.get("control_arm"), d.get("control_arm"))
    if d.get("allocation", "randomised") == "non_randomised" and d["type"] == "individual":
        return (f"Non-randomised comparison: allocation was NOT random. Participants in the group {itv} are "
                f"compared with participants in the group {ctl}; they were not allocated by chance and may differ, "
                "so the comparison is weighted by a propensity score of baseline characteristics, and it remains "
                "open to confounding by anything that was not measured.")
    if d.get("allocation", "randomised") == "non_randomised":
        return (f"Non-randomised comparison: allocation was NOT random. {itv} (sites that delivered the "
                f"intervention) are compared with {ctl} (sites that did not); they may serve different "
                "people, so the comparison is weighted "
                "by a propensity score of baseline characteristics, and it remains open to confounding by "
                "anything that was not measured.")
    unit = "sites (clusters)" if d["type"] == "cluster" else "participants"
    return f"Randomised pilot and feasibility trial: {unit} allocated to {itv} or {ctl}."


def context(cfg: dict, inputs: dict[str, str], audience: str = "statistician") -> dict:
    fm = (cfg.get("report") or {}).get("front_matter") or {}
    items = [(label, fm.get(key)) for key, label in ITEMS if fm.get(key)]
    missing = [f"report.front_matter.{key}" for key, _ in ITEMS if not fm.get(key)]
    if not fm.get("objectives"):
        missing.insert(0, "report.front_matter.objectives")
    return dict(design=design_sentence(cfg), objectives=list(fm.get("objectives") or []), items=items,
                missing=missing)
