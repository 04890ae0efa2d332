"""The HTML report, assembled from one section module per stage.

Each section module exposes ``TEMPLATE`` (a Jinja template under ``analysis/templates/``)
and ``context(cfg, inputs) -> dict`` which reads the result files it needs from ``inputs``
(the report rule's named inputs).  Sections only ever receive aggregate tables: no
participant identifier, name or free text reaches the report.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

import analysis
from analysis.blinding import withheld
from analysis.reporting import (appendix, economics, ethics, feasibility, funder, methods, outcomes,
                                provenance, scoring)

# The statistician's report shows everything; the funder and ethics reports have their own
# disclosure-controlled sections and never include the data-query appendix (it carries raw IDs).
SECTIONS = [("outcomes", outcomes), ("feasibility", feasibility),
            ("economics", economics), ("scoring", scoring),
            ("methods", methods), ("appendix", appendix), ("provenance", provenance)]
AUDIENCES = {
    "statistician": ("Statistician's report", SECTIONS),
    "funder": ("Funder report", [("funder", funder), ("methods", methods), ("provenance", provenance)]),
    "ethics": ("Ethics committee report", [("ethics", ethics), ("provenance", provenance)]),
}


def render_report(cfg: dict, inputs: dict[str, str], audience: str = "statistician") -> str:
    """Render one audience's report as a self-contained HTML string."""
    if audience not in AUDIENCES:
        raise ValueError(f"unknown report audience {audience!r}; choose one of {sorted(AUDIENCES)}")
    label, section_list = AUDIENCES[audience]
    env = Environment(loader=PackageLoader("analysis", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    sections = []
    for name, module in section_list:
        ctx = module.context(cfg, inputs)
        if ctx is not None:
            sections.append(env.get_template(module.TEMPLATE).render(cfg=cfg, audience=audience, **ctx))
    return env.get_template("report.html.j2").render(
        title=cfg["title"], trial_id=cfg["trial_id"], version=analysis.__version__,
        audience=audience, audience_label=label, sections=sections, withheld=withheld(cfg))
