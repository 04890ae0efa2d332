"""PDF and Word rendering of the HTML report (offline, atomic)."""

import base64
import io
import zipfile

import pytest

from analysis.render import ExternalResourceError, html_to_docx, html_to_pdf


@pytest.fixture(scope="module")
def html():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return (f"<html><head><meta charset='utf-8'><title>T</title></head><body><h1>Report ÅΩ</h1>"
            f"<table><tr><th>a</th></tr><tr><td>1.23</td></tr></table><img src='{uri}'></body></html>")


def test_pdf(html, tmp_path):
    out = tmp_path / "r.pdf"
    html_to_pdf(html, out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and (b"/Image" in data or b"/XObject" in data)


def test_docx_embeds_the_figure(html, tmp_path):
    out = tmp_path / "r.docx"
    html_to_docx(html, out)
    z = zipfile.ZipFile(out)
    assert "word/document.xml" in z.namelist()
    assert any(n.startswith("word/media/") for n in z.namelist())
    assert "Report ÅΩ" in z.read("word/document.xml").decode("utf-8")


def test_pdf_refuses_external_resources_and_writes_nothing(tmp_path):
    out = tmp_path / "x.pdf"
    with pytest.raises(ExternalResourceError, match="external resource"):
        html_to_pdf("<html><body><img src='http://example.org/a.png'></body></html>", out)
    assert list(tmp_path.iterdir()) == []
