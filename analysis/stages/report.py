"""Report stage: provenance manifest, then the HTML report (which shows the manifest)."""

from __future__ import annotations

from analysis.io import write_text
from analysis.manifest import build_manifest, write_manifest
from analysis.reporting import render_report


def run(cfg: dict, inputs: dict[str, str], raw_files: list[str], report_dir: str,
        out_html: str, out_manifest: str) -> None:
    """Write ``manifest.json`` (hashes of raw inputs and result tables, software versions),
    then render the report, whose provenance appendix is read from that manifest."""
    write_manifest(build_manifest(cfg, raw_files, report_dir), out_manifest)
    write_text(render_report(cfg, {**inputs, "manifest": out_manifest}), out_html)


def run_audience(cfg: dict, inputs: dict[str, str], audience: str, out_html: str) -> None:
    """Render the funder or ethics report (disclosure-controlled sections only)."""
    write_text(render_report(cfg, inputs, audience=audience), out_html)


def run_document(html_path: str, out_path: str, fmt: str) -> None:
    """Render a report's HTML as PDF or Word."""
    from pathlib import Path

    from analysis.render import html_to_docx, html_to_pdf
    html = Path(html_path).read_text(encoding="utf-8")
    {"pdf": html_to_pdf, "docx": html_to_docx}[fmt](html, out_path)
