"""The report notebook is the one source of every report."""

from __future__ import annotations

import json

import nbformat
import pytest

from analysis.reporting import ALL_SECTIONS, AUDIENCES, render_report
from analysis.reporting.notebook import NOTEBOOK, ReportNotebookError, report_from_notebook, sections_from


def test_notebook_has_a_parameters_cell_and_one_cell_per_section_in_order():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert {"config_json", "inputs_json", "audience"} <= {line.split("=")[0].strip()
                                                          for line in code[0].source.splitlines() if "=" in line}
    shown = [c.source.strip()[len('show("'):-len('")')] for c in code if c.source.startswith("show(")]
    assert shown == ALL_SECTIONS
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook without outputs"
    # every audience's sections appear in the notebook in the audience's order
    for label, sections in AUDIENCES.values():
        names = [n for n, _ in sections]
        assert [s for s in ALL_SECTIONS if s in names] == names, label


def test_sections_are_collected_in_cell_order():
    nb = nbformat.v4.new_notebook()
    out = lambda name, html: nbformat.v4.new_output("display_data", data={"text/html": html},  # noqa: E731
                                                    metadata={"pathways_section": name})
    c1, c2 = nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")
    c1.outputs = [out("x", "<h2>X</h2>"), nbformat.v4.new_output("stream", text="noise")]
    c2.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<p>not a section</p>"}),
                  out("y", ["<h2>", "Y</h2>"])]
    nb.cells = [c1, c2]
    assert sections_from(nb) == ["<h2>X</h2>", "<h2>Y</h2>"]


def test_a_failing_section_names_the_audience_and_the_error(tmp_path, demo_cfg):
    with pytest.raises(ReportNotebookError, match=r"funder report .*FileNotFoundError"):
        report_from_notebook(demo_cfg, {"feasibility": str(tmp_path / "missing.csv"),
                                        "effects": str(tmp_path / "missing.csv")}, "funder")


def injected_parameters(executed_ipynb) -> dict:
    """The parameters papermill injected into an executed report notebook."""
    nb = nbformat.read(executed_ipynb, as_version=4)
    cell = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(cell.source, ns)  # noqa: S102 - our own notebook's parameter assignments
    return dict(cfg=json.loads(ns["config_json"]), inputs=json.loads(ns["inputs_json"]), audience=ns["audience"])


def assert_report_is_the_notebooks(executed_ipynb, html_path):
    """The HTML written by the pipeline equals the report rendered directly from the same
    parameters: the notebook adds nothing and loses nothing."""
    p = injected_parameters(executed_ipynb)
    assert html_path.read_text(encoding="utf-8") == render_report(p["cfg"], p["inputs"], p["audience"])
