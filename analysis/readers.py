"""Readers for raw trial files: CSV, Excel (.xlsx), SPSS (.sav) and Stata (.dta).

Every reader returns a :class:`RawTable`: the cells exactly as stored, as text (blank cells
are ``""``), with the position of every record in its file (``rows``: the file line of a CSV
record, the spreadsheet row of an Excel row, the case number in SPSS/Stata) so that every data
query can point a data manager at the right place.  Readers only read; problems (an empty file,
text that is not in the declared encoding, a ragged row, a workbook that cannot be opened) are
added to the query collector and the reader returns ``None``.

Conversions made here are only those needed to express a cell as text without losing anything:

* Excel date cells become ``YYYY-MM-DD`` (``YYYY-MM-DD HH:MM:SS`` if they carry a time);
  numeric cells holding a whole number become ``"3"`` rather than ``"3.0"``; other numbers keep
  their shortest round-trip form.  Numbers in date columns of a workbook are read later as
  Excel serial day numbers (see :mod:`analysis.validation`).
* SPSS/Stata numeric values are written the same way; value labels are kept in
  ``RawTable.labels`` (code -> label) and applied only where the trial config asks for it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("csv", "xlsx", "sav", "dta")
_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
               ".sav": "sav", ".zsav": "sav", ".dta": "dta"}
ROW_WORD = {"csv": "line", "redcap": "line", "xlsx": "row", "sav": "case", "dta": "case"}


@dataclass
class RawTable:
    """One raw table, all cells as text, with each record's position in its file."""

    file: str
    frame: pd.DataFrame
    rows: np.ndarray
    kind: str = "csv"
    labels: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def serial_dates_ok(self) -> bool:
        return self.kind == "xlsx"

    def subset(self, mask) -> "RawTable":
        mask = np.asarray(mask, dtype=bool)
        return RawTable(self.file, self.frame[mask].reset_index(drop=True), self.rows[mask],
                        self.kind, self.labels)


def detect_format(name: str) -> str | None:
    return _EXTENSIONS.get(Path(name).suffix.lower())


def cell_text(v) -> str:
    """Text of one spreadsheet / statistics-package cell, losing nothing."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (_dt.datetime, pd.Timestamp)):
        if pd.isna(v):
            return ""
        if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return v.strftime("%Y-%m-%d")
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, _dt.time):
        return v.isoformat()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        if float(v).is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(float(v))
    return str(v)


def _frame(records: list[list[str]], header: list[str]) -> pd.DataFrame:
    arr = np.array(records, dtype=object).reshape(len(records), len(header))
    return pd.DataFrame(arr, columns=header, dtype=object)


def _check_header(name: str, header: list[str], q, row: int = 1) -> bool:
    ok = True
    blank = [i + 1 for i, h in enumerate(header) if h == ""]
    if blank:
        q.add(name, row, "", "", f"column {blank[0]}", "header has a blank column name")
        ok = False
    seen: set[str] = set()
    for h in header:
        if h and h in seen:
            q.add(name, row, "", h, "", "column name appears twice in the header")
            ok = False
        seen.add(h)
    return ok


# What a file that is not CSV text usually is, by its first bytes.
_BINARY_SIGNATURES = [
    (b"PK\x03\x04", "an Excel workbook (.xlsx, a zip file)", "xlsx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel .xls workbook (save it as .xlsx or CSV UTF-8)", None),
    (b"$FL2", "an SPSS .sav file", "sav"),
    (b"$FL3", "an SPSS .zsav file", "sav"),
    (b"<stata_dta>", "a Stata .dta file", "dta"),
    (b"\x1f\x8b", "a gzip-compressed file", None),
    (b"%PDF", "a PDF document", None),
]
_BOMS = [(b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
         (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")]


def sniff_not_text(raw: bytes, name: str, encoding: str) -> str | None:
    """The rule a file breaks if its bytes show it is not a CSV in ``encoding`` (None if they
    do not): another file format named .csv, or UTF-16/UTF-32 text."""
    head = raw[:16]
    for magic, what, fmt in _BINARY_SIGNATURES:
        if head.startswith(magic):
            fix = (f": set data.files.{name}.format: {fmt}, or save it as CSV UTF-8") if fmt else ""
            return f"file is not CSV text: it is {what}{fix}"
    if len(head) >= 4 and head[0] in (0x71, 0x72, 0x73) and head[1] in (1, 2) and head[2] == 1 and head[3] == 0:
        return f"file is not CSV text: it is a Stata .dta file: set data.files.{name}.format: dta"
    enc = encoding.lower().replace("_", "-")
    for bom, what in _BOMS:
        if head.startswith(bom) and not enc.startswith(what.lower()):
            return (f"file is {what} text (it starts with a {what} byte-order mark, as Excel's 'Unicode text' "
                    f"does): save it as 'CSV UTF-8', or set data.files.{name}.encoding: {what.lower()}")
    if b"\x00" in raw[:4096] and not enc.startswith(("utf-16", "utf-32")):
        return ("file contains NUL bytes: it is not plain text (UTF-16 text without a byte-order mark, or "
                f"a binary file named .csv?): save it as 'CSV UTF-8', or set data.files.{name}.encoding: utf-16")
    return None


def _decode_hint(raw: bytes, start: int, encoding: str, name: str) -> str:
    """Why the bytes at ``start`` are not ``encoding`` text, and what to do, from what they look like."""
    enc = encoding.lower().replace("_", "-")
    if enc not in ("utf-8", "utf8", "utf-8-sig"):
        return ""
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return " (the bytes are neither UTF-8 nor Windows-1252 text: re-save the file as 'CSV UTF-8')"
    if raw[start:start + 1] and raw[start] >= 0x80:
        return (" (it reads as Windows-1252 text, as Excel's plain 'CSV' saves it: set data.files."
                f"{name}.encoding: cp1252, or re-save as 'CSV UTF-8')")
    return ""


def read_csv(path: Path, name: str, q, encoding: str = "utf-8", delimiter: str = ",") -> RawTable | None:
    """Read a delimited text file with exact line numbers (quoted fields may span lines).

    Line numbers are physical lines: the record's first line, counting line feeds as an editor
    or ``sed -n 7p`` does (a carriage return inside a quoted value does not start a new line;
    a file with old-Mac carriage-return line ends is counted by those)."""
    raw = path.read_bytes()
    if not raw.strip():
        q.add(name, None, "", "", "", "file is empty (no header row)")
        return None
    not_text = sniff_not_text(raw, name, encoding)
    if not_text:
        q.add(name, None, "", "", "", not_text)
        return None
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig") else encoding
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        q.add(name, line, "", "", repr(raw[exc.start:exc.start + 8]),
              f"file is not valid {encoding} text{_decode_hint(raw, exc.start, encoding, name)}")
        return None
    except LookupError:
        q.add(name, None, "", "", encoding, f"unknown text encoding in data.files.{name}.encoding")
        return None
    newline = "\n" if "\n" in text else ""  # count line feeds; CR-only files by their CRs
    reader = csv.reader(io.StringIO(text, newline=newline), delimiter=delimiter, strict=True)
    records, starts, header = [], [], None
    prev = 0
    try:
        for rec in reader:
            start, prev = prev + 1, reader.line_num
            if header is None:
                header = [h.strip() for h in rec]
                header_line = start
                continue
            if not rec or all(v.strip() == "" for v in rec):
                if rec and len(rec) > 1:
                    q.add(name, start, "", "", "", "blank row ignored", "warning")
                continue
            if len(rec) != len(header):
                q.add(name, start, "", "", f"{len(rec)} fields",
                      f"row has {len(rec)} fields but the header has {len(header)} "
                      "(a stray delimiter or quote?)")
                continue
            records.append(rec)
            starts.append(start)
    except csv.Error as exc:
        why = ("a line break (carriage return) inside a value that is not in quotes"
               if "new-line character" in str(exc) else str(exc))
        q.add(name, reader.line_num, "", "", "", f"file cannot be parsed as CSV: {why}")
        return None
    if header is None:
        q.add(name, None, "", "", "", "file is empty (no header row)")
        return None
    if not _check_header(name, header, q, header_line):
        return None
    return RawTable(name, _frame(records, header), np.array(starts, dtype=np.int64), "csv")


def read_xlsx(path: Path, name: str, q, sheet: str | None = None) -> RawTable | None:
    """Read one worksheet (the first unless ``sheet`` is given); row 1 is the header."""
    import zipfile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        q.add(name, None, "", "", "", f"cannot open as an Excel .xlsx workbook ({type(exc).__name__})")
        return None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            q.add(name, None, "", "", sheet, f"worksheet not found (sheets: {', '.join(wb.sheetnames)})")
            return None
        ws = wb[sheet] if sheet is not None else wb.worksheets[0]
        rows = [[cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    while rows and all(v.strip() == "" for v in rows[-1]):
        rows.pop()
    if not rows:
        q.add(name, None, "", "", "", "worksheet is empty (no header row)")
        return None
    header = [h.strip() for h in rows[0]]
    while header and header[-1] == "":  # trailing formatted-but-empty columns
        header.pop()
    width = len(header)
    records, starts = [], []
    for i, r in enumerate(rows[1:], start=2):
        r = (r + [""] * width)[:width] if len(r) < width else r
        extra = [v for v in r[width:] if v.strip() != ""]
        if extra:
            q.add(name, i, "", "", extra[0], "value in a column with no header")
        r = r[:width]
        if all(v.strip() == "" for v in r):
            q.add(name, i, "", "", "", "blank row ignored", "warning")
            continue
        records.append(r)
        starts.append(i)
    if not _check_header(name, header, q):
        return None
    return RawTable(name, _frame(records, header), np.array(starts, dtype=np.int64), "xlsx")


def read_stats_file(path: Path, name: str, q, kind: str) -> RawTable | None:
    """Read an SPSS .sav or Stata .dta file with pyreadstat; value labels are kept."""
    import pyreadstat

    fn = pyreadstat.read_sav if kind == "sav" else pyreadstat.read_dta
    try:
        df, meta = fn(str(path), apply_value_formats=False)
    except Exception as exc:  # pyreadstat raises its own error types
        q.add(name, None, "", "", "", f"cannot read as {'SPSS .sav' if kind == 'sav' else 'Stata .dta'} "
              f"({type(exc).__name__}: {exc})")
        return None
    header = list(df.columns)
    text = pd.DataFrame({c: [cell_text(v) for v in df[c].tolist()] for c in header}, dtype=object)
    labels = {c: {cell_text(k): str(v) for k, v in lab.items()}
              for c, lab in (meta.variable_value_labels or {}).items()}
    return RawTable(name, text.reindex(columns=header), np.arange(1, len(df) + 1, dtype=np.int64), kind, labels)


def read_file(raw_dir: Path, name: str, q, options: dict | None = None) -> RawTable | None:
    """Read ``raw_dir/name`` with the reader chosen by ``options['format']`` or the extension."""
    options = options or {}
    path = Path(raw_dir) / name
    try:
        inside = path.resolve().is_relative_to(Path(raw_dir).resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside or Path(name).is_absolute() or ".." in Path(name).parts:
        q.add(name, None, "", "", "", "file is not inside data.raw_dir: refused (it is not read)")
        return None
    if not path.is_file():
        q.add(name, None, "", "", "", f"file not found: {path}")
        return None
    kind = options.get("format") or detect_format(name)
    if kind not in FORMATS:
        q.add(name, None, "", "", Path(name).suffix,
              f"unknown file type: set data.files.{name}.format to one of {', '.join(FORMATS)}")
        return None
    if kind == "csv":
        return read_csv(path, name, q, options.get("encoding") or "utf-8", options.get("delimiter") or ",")
    if kind == "xlsx":
        return read_xlsx(path, name, q, options.get("sheet"))
    return read_stats_file(path, name, q, kind)
