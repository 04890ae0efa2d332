"""Report stage: render the HTML report from the result tables and figures."""

from __future__ import annotations

from analysis.io import write_text
from analysis.reporting import render_report


def run(cfg: dict, inputs: dict[str, str], out_html: str) -> None:
    write_text(render_report(cfg, inputs), out_html)
