"""Writing outputs safely and reproducibly.

* Every file is written to a temporary sibling and moved into place with ``os.replace``, so a
  failure never leaves a half-written output.
* Result tables are CSV with a fixed float format (12 significant digits), ``\\n`` line endings
  and no index: the same numbers always give the same bytes.
* CSV files are opened by people in spreadsheets, so a text cell (or header) that a spreadsheet
  would run as a formula, i.e. one beginning with ``=``, ``+``, ``-``, ``@``, a tab, a carriage
  return or a line feed (the OWASP CSV-injection rule), is written with a leading apostrophe
  (``'=cmd``), which spreadsheets show but do not evaluate; line breaks inside a cell are
  written as a (quoted) line feed.  Numbers are never altered: numeric columns are written as
  numbers, and text that is a plain decimal number (``-1.5``) is left as it is.  A text that
  already begins with apostrophes before such a character gets one more, so :func:`read_table`
  restores every cell exactly (carriage returns come back as line feeds).
* Files carrying the trial's own participant IDs (data queries, the pseudonym table) are
  written with mode 0600 (``private=True``): readable by their owner only.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

FLOAT_FORMAT = "%.12g"


PRIVATE_MODE = 0o600
_FORMULA = re.compile(r"^'*[=+\-@\t\r\n]")
_ESCAPED = re.compile(r"^'+[=+\-@\t\r\n]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@contextmanager
def atomic_path(path: str | Path, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    The file gets the usual permissions (0666 less the umask), or 0600 if ``private``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if private:
            os.chmod(tmp_path, PRIVATE_MODE)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def escape_cell(value):
    """A text cell made safe to open in a spreadsheet (see the module docstring)."""
    if not isinstance(value, str):
        return value
    if "\r" in value:
        # Python's csv writer (3.11) leaves a carriage return unquoted when lines end in \n, and a
        # spreadsheet would start a new row there: line breaks in a cell are written as \n, quoted
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if _FORMULA.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def unescape_cell(value):
    """Inverse of :func:`escape_cell`."""
    if isinstance(value, str) and _ESCAPED.match(value):
        return value[1:]
    return value


def _is_text(dtype) -> bool:
    return dtype == object or isinstance(dtype, pd.StringDtype)


def _text_columns(df: pd.DataFrame) -> list:
    return [c for c in df.columns if _is_text(df[c].dtype)
            or (isinstance(df[c].dtype, pd.CategoricalDtype) and _is_text(df[c].cat.categories.dtype))]


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every text cell and header escaped (numbers untouched)."""
    out = df.copy()
    for c in _text_columns(df):
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].cat.rename_categories([escape_cell(v) for v in out[c].cat.categories])
        else:
            out[c] = out[c].map(escape_cell, na_action="ignore")
    out.columns = [escape_cell(c) for c in out.columns]
    return out


#: set by the workflow (workflow/rules/common.smk) during an exploratory run (:mod:`analysis.sap`): the
#: report folder whose tables and figures are labelled (write_table, write_parquet, analysis.figures)
LABEL_ENV = "PATHWAYS_NOT_REGISTERED"


def write_table(df: pd.DataFrame, path: str | Path, private: bool = False) -> None:
    """Write a tidy result table as deterministic, spreadsheet-safe CSV (mode 0600 if ``private``).

    In an exploratory run (:mod:`analysis.sap`: the config departs from the registered analysis
    plan) every table under the trial's report folder gets a last column saying so."""
    if os.environ.get(LABEL_ENV):
        from analysis.sap import LABEL_COLUMN, NOT_REGISTERED, label_applies
        if label_applies(path):
            df = df.assign(**{LABEL_COLUMN: NOT_REGISTERED})
    df = escape_frame(df)
    with atomic_path(path, private) as tmp:
        df.to_csv(tmp, index=False, float_format=FLOAT_FORMAT, lineterminator="\n", encoding="utf-8")


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a CSV written by :func:`write_table` (``pandas.read_csv`` options), undoing the
    spreadsheet escaping so that every cell is what was written."""
    df = pd.read_csv(path, **kwargs)
    for c in _text_columns(df):
        df[c] = df[c].map(unescape_cell, na_action="ignore")
    df.columns = [unescape_cell(c) for c in df.columns]
    return df


def write_parquet(df: pd.DataFrame, path: str | Path, private: bool = False) -> None:
    """Write a processed-data table as Parquet (atomically; mode 0600 if ``private``); labelled
    like :func:`write_table` when it is a report table of an exploratory run."""
    if os.environ.get(LABEL_ENV):
        from analysis.sap import LABEL_COLUMN, NOT_REGISTERED, label_applies
        if label_applies(path):
            df = df.assign(**{LABEL_COLUMN: NOT_REGISTERED})
    with atomic_path(path, private) as tmp:
        df.to_parquet(tmp, index=False)


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_bytes(data: bytes, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def remove_outputs_since(folders: list[str | Path], since: float) -> list[Path]:
    """Delete the files under ``folders`` modified at or after ``since`` (a ``time.time()``):
    the outputs a failed run made, so that a run that stops half way leaves no mixture of new
    and old outputs behind.  Returns the removed paths (sorted)."""
    removed = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_mtime >= since:
                    p.unlink()
                    removed.append(p)
            except FileNotFoundError:  # pragma: no cover - removed meanwhile
                continue
    return removed
