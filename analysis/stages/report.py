"""Report stage: provenance manifest, then the HTML report (which shows the manifest)."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.io import write_text
from analysis.manifest import build_manifest, write_manifest
from analysis.reporting.notebook import report_from_notebook


def run(cfg: dict, inputs: dict, outputs: dict[str, str], *, report_dir: str | None = None,
        key_fingerprint: str | None = None) -> None:
    """Write ``manifest.json`` (hashes of raw inputs and result tables, software versions),
    then execute the report notebook for the statistician (its provenance appendix is read
    from that manifest); keep the executed notebook and write the HTML assembled from it.

    ``inputs``: every result file the report reads (by name, as the report rule has them), raw
    (the raw files, hashed in the manifest) and notebook; ``outputs``: html, manifest, notebook (the
    executed one).  ``report_dir`` (whose result tables the manifest hashes) is by default the
    folder of the HTML report."""
    raw_files = [inputs["raw"]] if isinstance(inputs["raw"], str) else list(inputs["raw"])
    results = {k: v for k, v in inputs.items() if k not in ("raw", "notebook")}
    report_dir = report_dir or str(Path(outputs["html"]).parent)
    sap = json.loads(Path(results["sap"]).read_text(encoding="utf-8")) if results.get("sap") else None
    write_manifest(build_manifest(cfg, raw_files, report_dir, key_fingerprint=key_fingerprint, sap=sap),
                   outputs["manifest"])
    html = report_from_notebook(cfg, {**results, "manifest": outputs["manifest"]}, "statistician",
                                out_ipynb=outputs["notebook"], notebook=inputs["notebook"])
    write_text(html, outputs["html"])


def run_audience(cfg: dict, inputs: dict[str, str], outputs: dict[str, str], *, audience: str) -> None:
    """Execute the report notebook (``inputs["notebook"]``) for the funder or ethics report
    (disclosure-controlled sections only) and write ``outputs["html"]``.  Only the HTML is kept:
    the executed notebook is not a funder output."""
    results = {k: v for k, v in inputs.items() if k != "notebook"}
    write_text(report_from_notebook(cfg, results, audience, notebook=inputs["notebook"]), outputs["html"])


def run_document(cfg: dict, inputs: dict[str, str], outputs: dict[str, str], *, fmt: str) -> None:
    """Render a report's HTML (``inputs["html"]``) as PDF or Word (``outputs["doc"]``); ``cfg`` is
    not read (the HTML carries everything)."""
    from analysis.render import html_to_docx, html_to_pdf
    html = Path(inputs["html"]).read_text(encoding="utf-8")
    {"pdf": html_to_pdf, "docx": html_to_docx}[fmt](html, outputs["doc"])
