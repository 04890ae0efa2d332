"""Report stage: provenance manifest, then the HTML report (which shows the manifest)."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.io import write_text
from analysis.manifest import build_manifest, write_manifest
from analysis.reporting.notebook import report_from_notebook


def run(cfg: dict, inputs: dict[str, str], raw_files: list[str], report_dir: str,
        out_html: str, out_manifest: str, notebook: str, out_ipynb: str,
        key_fingerprint: str | None = None) -> None:
    """Write ``manifest.json`` (hashes of raw inputs and result tables, software versions),
    then execute the report notebook for the statistician (its provenance appendix is read
    from that manifest); keep the executed notebook and write the HTML assembled from it."""
    sap = json.loads(Path(inputs["sap"]).read_text(encoding="utf-8")) if inputs.get("sap") else None
    write_manifest(build_manifest(cfg, raw_files, report_dir, key_fingerprint=key_fingerprint, sap=sap),
                   out_manifest)
    html = report_from_notebook(cfg, {**inputs, "manifest": out_manifest}, "statistician",
                                out_ipynb=out_ipynb, notebook=notebook)
    write_text(html, out_html)


def run_audience(cfg: dict, inputs: dict[str, str], audience: str, out_html: str, notebook: str) -> None:
    """Execute the report notebook for the funder or ethics report (disclosure-controlled
    sections only).  Only the HTML is kept: the executed notebook is not a funder output."""
    write_text(report_from_notebook(cfg, inputs, audience, notebook=notebook), out_html)


def run_document(html_path: str, out_path: str, fmt: str) -> None:
    """Render a report's HTML as PDF or Word."""
    from pathlib import Path

    from analysis.render import html_to_docx, html_to_pdf
    html = Path(html_path).read_text(encoding="utf-8")
    {"pdf": html_to_pdf, "docx": html_to_docx}[fmt](html, out_path)
