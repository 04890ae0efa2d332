"""Turn a self-contained HTML report into PDF (WeasyPrint) and Word (pandoc) documents.

Both converters are offline: WeasyPrint is given a URL fetcher that only accepts ``data:``
URLs (the report embeds its figures), and pandoc comes inside the ``pypandoc-binary`` wheel.
"""

from __future__ import annotations

from pathlib import Path

from analysis.io import atomic_path


class ExternalResourceError(RuntimeError):
    """The report tried to load something from outside the document."""


def _data_only_fetcher():
    """WeasyPrint fetcher that accepts only ``data:`` URLs and fails on anything else."""
    from weasyprint.urls import URLFetcher
    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


PRINT_CSS = """
@page { size: A4; margin: 18mm 15mm; @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 8pt; color: #666; } }
body { max-width: none; margin: 0; font-size: 9.5pt; }
table { page-break-inside: auto; } tr { page-break-inside: avoid; }
h2 { page-break-after: avoid; } figure { page-break-inside: avoid; }
figure img { max-width: 16cm; }
"""


def html_to_pdf(html: str, out_path: str | Path) -> None:
    """Render HTML to an A4 PDF, atomically; refuses external resources."""
    from weasyprint import CSS, HTML
    doc = HTML(string=html, url_fetcher=_data_only_fetcher(), base_url=None)
    with atomic_path(out_path) as tmp:
        try:
            doc.write_pdf(tmp, stylesheets=[CSS(string=PRINT_CSS)])
        except BaseException as exc:  # WeasyPrint raises FatalURLFetchingError (a BaseException)
            if type(exc).__name__ in ("FatalURLFetchingError", "URLFetchingError"):
                raise ExternalResourceError(f"report refers to an external resource: {exc}") from None
            raise


def html_to_docx(html: str, out_path: str | Path) -> None:
    """Convert HTML to a Word document with pandoc (figures travel as embedded images)."""
    import pypandoc
    with atomic_path(out_path) as tmp:
        docx = Path(str(tmp) + ".docx")
        try:
            pypandoc.convert_text(html, "docx", format="html", outputfile=str(docx),
                                  extra_args=["--standalone"])
            docx.replace(tmp)
        finally:
            docx.unlink(missing_ok=True)
