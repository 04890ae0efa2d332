"""The HTML report, assembled from one section module per stage.

Each section module exposes ``TEMPLATE`` (a Jinja template under ``analysis/templates/``)
and ``context(cfg, inputs) -> dict`` which reads the result files it needs from ``inputs``
(the report rule's named inputs).  Sections only ever receive aggregate tables: no
participant identifier, name or free text reaches the report.
"""

from __future__ import annotations

import functools

from jinja2 import Environment, PackageLoader, select_autoescape

import analysis
from analysis.blinding import withheld
from analysis.reporting import (appendix, economics, ethics, feasibility, front, funder, methods, outcomes,
                                provenance, scoring, value)
from analysis.reporting import deviations
from analysis.reporting import planning, planning_summary

# The statistician's report shows everything; the funder and ethics reports have their own
# disclosure-controlled sections and never include the data-query appendix (it carries raw IDs).
# A pilot's report leads with feasibility; effect estimates follow (CONSORT pilot extension).
SECTIONS = [("front", front), ("deviations", deviations), ("feasibility", feasibility), ("outcomes", outcomes),
            ("economics", economics), ("value", value), ("planning", planning), ("scoring", scoring),
            ("methods", methods), ("appendix", appendix), ("provenance", provenance)]
AUDIENCES = {
    "statistician": ("Statistician's report", SECTIONS),
    "funder": ("Funder report", [("front", front), ("funder", funder), ("planning_summary", planning_summary),
                                 ("deviations", deviations), ("value", value), ("methods", methods),
                                 ("provenance", provenance)]),
    "ethics": ("Ethics committee report", [("front", front), ("ethics", ethics), ("provenance", provenance)]),
}


# Every section in the one order consistent with all three audiences: the report notebook
# (workflow/notebooks/report.ipynb) has one cell per section in this order.
ALL_SECTIONS = ["front", "funder", "planning_summary", "ethics", "deviations", "feasibility", "outcomes", "economics",
                "value", "planning",
                "scoring", "methods", "appendix", "provenance"]


@functools.lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("analysis", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _check_audience(audience: str) -> None:
    if audience not in AUDIENCES:
        raise ValueError(f"unknown report audience {audience!r}; choose one of {sorted(AUDIENCES)}")


def render_section(cfg: dict, inputs: dict[str, str], audience: str, name: str) -> str | None:
    """One section's HTML for this audience, or None when the audience does not get the section
    or the trial has nothing for it (e.g. economics not enabled)."""
    _check_audience(audience)
    modules = dict(AUDIENCES[audience][1])
    if name not in modules:
        return None
    module = modules[name]
    ctx = module.context(cfg, inputs)
    if ctx is None:
        return None
    return _env().get_template(module.TEMPLATE).render(cfg=cfg, audience=audience, **ctx)


def assemble_report(cfg: dict, audience: str, sections: list[str]) -> str:
    """The self-contained HTML page around rendered sections."""
    _check_audience(audience)
    return _env().get_template("report.html.j2").render(
        title=cfg["title"], trial_id=cfg["trial_id"], version=analysis.__version__,
        audience=audience, audience_label=AUDIENCES[audience][0], sections=sections,
        withheld=withheld(cfg), exploratory=bool(cfg.get("exploratory")))


def render_report(cfg: dict, inputs: dict[str, str], audience: str = "statistician") -> str:
    """Render one audience's report as a self-contained HTML string (the same HTML the report
    notebook produces; see :mod:`analysis.reporting.notebook`)."""
    _check_audience(audience)
    sections = [render_section(cfg, inputs, audience, name) for name, _ in AUDIENCES[audience][1]]
    return assemble_report(cfg, audience, [s for s in sections if s is not None])
