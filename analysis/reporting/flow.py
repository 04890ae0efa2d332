"""The CONSORT 2010 flow diagram (pilot and cluster extensions) as an HTML table.

One box per stage and arm, in the CONSORT order (enrolment, allocation, follow-up at each time
point, analysis), with stage names in the first column.  A table keeps the diagram readable in
every format the reports come in: the browser, an A4 PDF page (text at body size, not a shrunken
picture) and Word (pandoc turns it into a Word table); the drawn version for publication stays
in ``figures/consort.svg``.

Items of the pilot extension (Eldridge et al. BMJ 2016, item 13a) and the cluster extension
(Campbell et al. BMJ 2012, item 13): screened, excluded with reasons, allocated (sites and
participants), received the intervention, assessed / withdrawn (with reasons) / lost at each time
point with the numbers assessed for each objective, sites with a participant assessed at each
time point, and the numbers analysed for each objective (participants in each outcome's primary
model, sites in the model).

Counts come through a ``cell(key)`` function (``analysis.reporting.audience.flow_key`` keys), so
the statistician's report shows the exact counts and the funder's the disclosure-controlled ones.
"""

from __future__ import annotations

from markupsafe import Markup

from analysis.reporting.audience import flow_key


def _line(label: str, n, indent: int = 0) -> dict:
    return dict(label=label, n=n, indent=indent)


def boxes(flow, cell, *, arms: list[str], arm_labels: dict, timepoints: list[str], months: list,
          single: bool, intervention: str | None, receipt_min_sessions: int = 1,
          measures: list[str] = (), measure_labels: dict | None = None,
          analysed: list[dict] = (), outcome_labels: dict | None = None, site_word: str = "Sites",
          allocated_to: str = "Allocated to") -> dict:
    """The diagram's boxes: lists of lines (label, count markup, indent).  ``flow`` is the
    disposition table (site 'all' rows); ``cell(key)`` renders one count; ``analysed`` lists
    dict(outcome, cells={arm: key}, sites=n) for the analysis row."""
    measure_labels = measure_labels or {}
    outcome_labels = outcome_labels or {}
    have = {(r.stage, r.arm, r.timepoint, r.measure, r.reason) for r in flow.itertuples()}

    def has(stage, arm="all", tp="", measure="", reason=""):
        return (stage, arm, tp, measure, reason) in have

    def n(stage, arm="all", tp="", measure="", reason=""):
        return cell(flow_key(stage, arm, tp, measure, reason))

    def reasons(stage, arm="all", tp=""):
        rs = [r.reason for r in flow.itertuples()
              if r.stage == stage and r.arm == arm and r.timepoint == tp and r.reason]
        return [_line(r, n(stage, arm, tp, reason=r), 1) for r in dict.fromkeys(rs)]

    out: dict = dict(enrolment=[], excluded=[], consented=[], allocation={}, followup=[], analysis={},
                     analysis_note="", arms=[(a, ("Participants" if single else arm_labels.get(a, a))) for a in arms])
    if has("screened"):
        out["enrolment"] = [_line("Assessed for eligibility (screened)", n("screened"))]
        out["excluded"] = [_line("Not eligible", n("not_eligible"))] + reasons("not_eligible") + \
            [_line("Declined to take part", n("declined"))] + reasons("declined")
        out["consented"] = [_line("Consented" + (" and enrolled" if single else ""), n("consented"))]
    elif has("enrolled"):
        out["enrolment"] = [_line("Enrolled (no screening log: eligibility and consent not collected)",
                                  n("enrolled"))]
    for a in arms:
        label = arm_labels.get(a, a)
        lines = [_line("Enrolled" if single else f"{allocated_to} {label}", n("allocated", a))]
        if has("allocated_sites", a):
            lines.append(_line("Sites", n("allocated_sites", a), 1))
        if a == intervention and has("received", a):
            s = "session" if receipt_min_sessions == 1 else "sessions"
            lines += [_line(f"Received the intervention (≥ {receipt_min_sessions} {s})", n("received", a), 1),
                      _line("Did not receive the intervention", n("not_received", a), 1)]
            if has("receipt_unknown", a):
                lines.append(_line("Attendance not recorded", n("receipt_unknown", a), 1))
        out["allocation"][a] = lines
    withdrawal = any(r.stage == "withdrawn" for r in flow.itertuples())
    for k, (tp, month) in enumerate(zip(timepoints, months)):
        when = "Baseline" if k == 0 else (f"{tp} (month {month:g})" if month is not None else tp)
        per_arm = {}
        for a in arms:
            lines = [_line("Assessed", n("assessed", a, tp))]
            if has("assessed_sites", a, tp):
                lines.append(_line("Sites with a participant assessed", n("assessed_sites", a, tp), 1))
            if withdrawal:
                lines.append(_line("Withdrawn by this time point", n("withdrawn", a, tp)))
                lines += reasons("withdrawn", a, tp)
                lines.append(_line("Lost to follow-up (not withdrawn, not assessed)", n("lost", a, tp)))
            else:
                lines.append(_line("Not assessed (withdrawal not recorded)", n("lost", a, tp)))
            shown = [m for m in measures if has("assessed_measure", a, tp, m)]
            if shown:
                lines.append(_line("Assessed for each objective:", None))
                lines += [_line(measure_labels.get(m, m), n("assessed_measure", a, tp, m), 1) for m in shown]
            per_arm[a] = lines
        out["followup"].append((when, per_arm))
    if analysed:
        for a in arms:
            lines = [_line("Analysed (participants in the primary model):", None)]
            for row in analysed:
                if a in row["cells"]:
                    lines.append(_line(outcome_labels.get(row["outcome"], row["outcome"]), cell(row["cells"][a]), 1))
            out["analysis"][a] = lines
        sites = [r.get("sites") for r in analysed if r.get("sites") == r.get("sites") and r.get("sites") is not None]
        if sites:
            lo, hi = int(min(sites)), int(max(sites))
            out["analysis_note"] = (f"{site_word} in the primary model: {lo}"
                                    + (f" to {hi} (by outcome)" if hi != lo else ""))
    return out


def render_lines(lines: list[dict]) -> Markup:
    parts = []
    for ln in lines:
        pad = Markup("&#160;&#160;&#160;&#160;") * ln["indent"]
        if ln["n"] is None:
            parts.append(Markup("{}{}").format(pad, ln["label"]))
        else:
            parts.append(Markup("{}{} (n = {})").format(pad, ln["label"], ln["n"]))
    return Markup("<br>").join(parts)


def table_rows(b: dict) -> list[dict]:
    """Rows of the diagram table: dict(stage, cells=[dict(html, colspan, side)])."""
    ncol = max(1, len(b["arms"]))
    rows = []
    if b["enrolment"]:
        rows.append(dict(stage="Enrolment", cells=[dict(html=render_lines(b["enrolment"]), colspan=ncol)]))
    if b["excluded"]:
        rows.append(dict(stage="", cells=[dict(html=render_lines(b["excluded"]), colspan=ncol, side=True)]))
    if b["consented"]:
        rows.append(dict(stage="", cells=[dict(html=render_lines(b["consented"]), colspan=ncol)]))
    if b["allocation"]:
        rows.append(dict(stage="Enrolled" if len(b["arms"]) == 1 else "Allocation",
                         cells=[dict(html=render_lines(b["allocation"][a]), colspan=1) for a, _ in b["arms"]]))
    for when, per_arm in b["followup"]:
        rows.append(dict(stage=f"Follow-up: {when}" if when != "Baseline" else "Baseline",
                         cells=[dict(html=render_lines(per_arm[a]), colspan=1) for a, _ in b["arms"]]))
    if b["analysis"]:
        rows.append(dict(stage="Analysis", cells=[dict(html=render_lines(b["analysis"][a]), colspan=1)
                                                   for a, _ in b["arms"]]))
        if b["analysis_note"]:
            rows.append(dict(stage="", cells=[dict(html=Markup("{}").format(b["analysis_note"]), colspan=ncol)]))
    return rows
