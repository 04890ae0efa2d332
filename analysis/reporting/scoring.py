"""Report section: how each questionnaire was scored, and its reliability."""

from __future__ import annotations

from analysis.reporting.common import fmt, level_label, read_table

TEMPLATE = "sections/scoring.html.j2"


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    summary = read_table(inputs["scoring_summary"], ("provisional_facts", "method", "citation"))
    rel = read_table(inputs["reliability"])
    instruments = []
    for inst, g in summary.groupby("instrument", sort=False):
        first = g.iloc[0]
        instruments.append(dict(
            id=inst, name=first["name"], method=first.method, citation=first.citation,
            provisional=first.provisional_facts.replace(";", ", "),
            scored="; ".join(f"{tp}: {int(s.scored.min())}/{int(s.records.max())}"
                             for tp, s in g.groupby("timepoint", sort=False))))
    names = dict(zip(summary.instrument, summary["name"])) if len(summary) else {}
    reliability = [dict(instrument=names.get(r.instrument, r.instrument), timepoint=r.timepoint, scale=r.scale, n=r.n,
                        alpha=fmt(r.alpha, 2), ci=f"{fmt(r.ci_low, 2)} to {fmt(r.ci_high, 2)}")
                   for r in rel.itertuples()]
    return dict(instruments=instruments, reliability=reliability,
                level=level_label(cfg["outcomes"]["confidence_level"]))
