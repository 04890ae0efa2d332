"""The HTML report, assembled from one section module per stage.

Each section module exposes ``TEMPLATE`` (a Jinja template under ``analysis/templates/``)
and ``context(cfg, inputs) -> dict`` which reads the result files it needs from ``inputs``
(the report rule's named inputs).  Sections only ever receive aggregate tables: no
participant identifier, name or free text reaches the report.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

import analysis
from analysis.reporting import appendix, feasibility, outcomes, provenance, scoring

SECTIONS = [("outcomes", outcomes), ("feasibility", feasibility),
            ("scoring", scoring),
            ("appendix", appendix), ("provenance", provenance)]


def render_report(cfg: dict, inputs: dict[str, str]) -> str:
    """Render the statistician's report as one self-contained HTML string."""
    env = Environment(loader=PackageLoader("analysis", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    sections = []
    for name, module in SECTIONS:
        ctx = module.context(cfg, inputs)
        if ctx is not None:
            sections.append(env.get_template(module.TEMPLATE).render(cfg=cfg, **ctx))
    return env.get_template("report.html.j2").render(
        title=cfg["title"], trial_id=cfg["trial_id"], version=analysis.__version__,
        sections=sections)
