"""Execute the report notebook (the one source of every report) and assemble its HTML.

``workflow/notebooks/report.ipynb`` has a papermill ``parameters`` cell (``config_json``,
``inputs_json``, ``audience``) and one cell per report section, in the order of
:data:`analysis.reporting.ALL_SECTIONS`; each section cell displays the section's HTML with the
output metadata ``{"pathways_section": <name>}``.  :func:`report_from_notebook` executes the
notebook in a fresh kernel, collects those outputs in order and wraps them in the report page:
the result is byte-identical to :func:`analysis.reporting.render_report` (a test checks this),
so the notebook is the source, and the HTML, PDF and Word reports are its renderings.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from analysis.io import atomic_path
from analysis.reporting import assemble_report
from analysis.reporting.kernel import ReportKernelManager

SECTION_KEY = "pathways_section"
NOTEBOOK = Path(__file__).resolve().parents[2] / "workflow" / "notebooks" / "report.ipynb"


class ReportNotebookError(RuntimeError):
    """The report notebook failed to execute or produced no report."""


def execute(cfg: dict, inputs: dict[str, str], audience: str, out_ipynb: str | None = None,
            notebook: str | Path = NOTEBOOK):
    """Execute the notebook for one audience; return the executed notebook (nbformat node).

    Input paths are made absolute so the kernel's working directory does not matter.  With
    ``out_ipynb`` the executed notebook is kept there (atomically), for a statistician to open."""
    import nbformat
    import papermill as pm

    params = dict(config_json=json.dumps(cfg, sort_keys=True, default=str),
                  inputs_json=json.dumps({k: str(Path(v).resolve()) for k, v in inputs.items()}, sort_keys=True),
                  audience=audience)
    with tempfile.TemporaryDirectory(prefix="pathways-report-") as d:
        executed = Path(d) / "report.ipynb"
        try:
            pm.execute_notebook(str(notebook), str(executed), parameters=params, kernel_name="python3",
                                progress_bar=False, log_output=False, cwd=os.getcwd(),
                                start_timeout=600,  # a busy machine can take minutes to start a kernel
                                kernel_manager_class=ReportKernelManager)  # no spurious ERROR at shutdown
        except pm.PapermillExecutionError as e:
            raise ReportNotebookError(f"report notebook {notebook} failed for the {audience} report "
                                      f"in cell {e.exec_count}: {e.ename}: {e.evalue}") from e
        nb = nbformat.read(executed, as_version=4)
        if out_ipynb:
            with atomic_path(out_ipynb) as tmp:
                shutil.copyfile(executed, tmp)
    return nb


def sections_from(nb) -> list[str]:
    """The section HTML displayed by an executed notebook, in cell order."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "display_data" and SECTION_KEY in o.get("metadata", {}):
                html = o["data"]["text/html"]
                out.append("".join(html) if isinstance(html, list) else html)
    return out


def report_from_notebook(cfg: dict, inputs: dict[str, str], audience: str = "statistician",
                         out_ipynb: str | None = None, notebook: str | Path = NOTEBOOK) -> str:
    """Execute the report notebook and return the audience's self-contained HTML report."""
    nb = execute(cfg, inputs, audience, out_ipynb, notebook)
    sections = sections_from(nb)
    if not sections:
        raise ReportNotebookError(f"report notebook {notebook} displayed no report section for the "
                                  f"{audience} report")
    return assemble_report(cfg, audience, sections)
