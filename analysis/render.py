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


# Page set-up for documents without print rules of their own (the reports carry their print
# layout in their stylesheet, under @media print and @page, so that printing the HTML from a
# browser gives the same pages; rules of the document win over these).
PRINT_CSS = """
@page { size: A4; margin: 15mm 12mm 16mm;
        @bottom-right { content: "page " counter(page) " of " counter(pages); font-size: 7.5pt; color: #666; } }
figure img { max-width: 100%; }
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


def _text_of(box) -> str:
    if hasattr(box, "text"):
        return box.text
    return "".join(_text_of(c) for c in getattr(box, "children", []) or [])


def layout_problems(html: str, tolerance: float = 0.5) -> list[str]:
    """Lay the report out as the PDF would be (WeasyPrint, A4, the print stylesheet) and list
    every box that does not fit: anything whose right edge is beyond the page's content area
    (a cut-off table column, a hash running off the page) and any text that runs out of its
    table cell.  Empty for a report whose every table and figure fits the page."""
    from weasyprint import CSS, HTML
    from weasyprint.formatting_structure import boxes as B

    doc = HTML(string=html, url_fetcher=_data_only_fetcher(), base_url=None).render(
        stylesheets=[CSS(string=PRINT_CSS)])
    problems: list[str] = []

    def right_edge(box) -> float:
        if isinstance(box, (B.TextBox, B.LineBox)):
            return box.position_x + box.width
        return box.border_box_x() + box.border_width()

    def walk(box, page_no, page_right, cell):
        for child in getattr(box, "children", None) or []:
            if isinstance(child, B.TableCellBox):
                walk(child, page_no, page_right, child)
                continue
            if getattr(child, "width", None) is None:
                continue
            r = right_edge(child)
            if r > page_right + tolerance:
                problems.append(f"page {page_no}: {_text_of(child)[:60]!r} ends {r - page_right:.0f}px beyond the page")
            elif cell is not None and isinstance(child, B.TextBox) and \
                    r > cell.border_box_x() + cell.border_width() + tolerance:
                problems.append(f"page {page_no}: {child.text[:60]!r} runs out of its table cell")
            else:
                walk(child, page_no, page_right, cell)

    for i, page in enumerate(doc.pages, 1):
        pb = page._page_box
        page_right = pb.margin_left + pb.border_left_width + pb.padding_left + pb.width
        walk(pb.children[0], i, page_right, None)
    return problems
