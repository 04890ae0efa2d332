"""Validation rules declared as data, checked column-wise (vectorised).

A table's rules are a list of :class:`Field` declarations (type, required, unique, allowed
codes, range).  :func:`check_fields` converts a text table (:class:`analysis.readers.RawTable`)
into typed columns and files one *data query* per broken rule and cell, naming the file, the
record's position in the file, the participant, the column, the value and the rule.  Nothing is
corrected: a bad cell becomes missing in the typed column *and* an error query, and any error
stops the run before anything is written.

The field declarations for the canonical tables live in :mod:`analysis.ingest` (``ROLE_FIELDS``);
a REDCap data dictionary adds its own declarations (field types, choices, validation min/max)
through :mod:`analysis.redcap`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.readers import ROW_WORD

QUERY_COLUMNS = ["file", "line", "participant_id", "column", "value", "rule", "severity"]
EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # Excel's (1900 date system) day 0, after its 1900 leap-year bug
DATE_MIN, DATE_MAX = pd.Timestamp("1900-01-01"), pd.Timestamp("2100-12-31")
# text that pandas reads as "not a number" (the infinities, e.g. inf, -Infinity, 1e999, are found
# by their value)
_NAN_TEXT = r"(?i)[+-]?nan"


@dataclass(frozen=True)
class Query:
    file: str
    line: int | None
    participant_id: str
    column: str
    value: str
    rule: str
    severity: str = "error"

    def __str__(self) -> str:
        word = ROW_WORD.get(_kind_of(self.file), "line")
        where = f"{self.file}, {word} {self.line}" if self.line else self.file
        who = f", participant {self.participant_id}" if self.participant_id else ""
        col = f", column '{self.column}'" if self.column else ""
        val = f", value {self.value!r}" if self.value != "" else ""
        return f"{where}{who}{col}{val}: {self.rule}"


def _kind_of(file: str) -> str:
    from analysis.readers import detect_format
    return detect_format(file) or "csv"


class DataValidationError(ValueError):
    """Raw data break one or more error-level rules; nothing was written."""

    def __init__(self, queries: list[Query]):
        self.queries = queries
        shown = "\n  ".join(str(q) for q in queries[:50])
        more = f"\n  ... and {len(queries) - 50} more" if len(queries) > 50 else ""
        super().__init__(f"{len(queries)} data error(s); nothing was written:\n  {shown}{more}")


class Collector:
    """Accumulates data queries; duplicates (same cell, same rule) are kept once."""

    def __init__(self) -> None:
        self.queries: list[Query] = []
        self._seen: set = set()

    def add(self, file, line, pid, column, value, rule, severity="error"):
        qy = Query(str(file), None if line is None or pd.isna(line) else int(line), str(pid or ""),
                   str(column or ""), "" if value is None else str(value), rule, severity)
        key = (qy.file, qy.line, qy.column, qy.value, qy.rule)
        if key not in self._seen:
            self._seen.add(key)
            self.queries.append(qy)

    def add_many(self, table, mask, column, rule, severity="error", values=None, ids=None):
        """One query per True in ``mask`` (aligned with ``table.frame``)."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        idx = np.flatnonzero(mask)
        if values is not None:
            vals = np.asarray(pd.Series(values).to_numpy(), dtype=object)[idx]
        elif column in table.frame:
            vals = table.frame[column].to_numpy()[idx]
        else:
            vals = [""] * len(idx)
        pids = [""] * len(idx) if ids is None else np.asarray(ids, dtype=object)[idx]
        rules = rule if isinstance(rule, (list, np.ndarray, pd.Series)) else None
        for j, i in enumerate(idx):
            r = np.asarray(rules, dtype=object)[i] if rules is not None else rule
            v = vals[j]
            self.add(table.file, table.rows[i], pids[j], column, "" if v is None or v is pd.NA else v, r, severity)

    @property
    def errors(self) -> list[Query]:
        return [q for q in self.queries if q.severity == "error"]

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame([q.__dict__ for q in self.queries], columns=QUERY_COLUMNS)
        return df.astype({"line": "Int64"})


@dataclass(frozen=True)
class Field:
    """One column's rules.

    kind: ``id`` (identifier text), ``text``, ``code`` (one of ``allowed``), ``int`` (whole
    number), ``number``, ``date``.  ``min``/``max`` bound numbers (and dates, as ISO text);
    ``range_rule`` overrides the wording of the range message.
    """

    name: str
    kind: str = "text"
    required: bool = False
    unique: bool = False
    allowed: tuple | None = None
    min: float | str | None = None
    max: float | str | None = None
    range_rule: str | None = None


def blank_missing_codes(frame: pd.DataFrame, codes, keep: tuple[str, ...] = (),
                        columns: list[str] | None = None) -> int:
    """Cells (text, as the readers return them) holding one of the missing-data ``codes`` (e.g.
    ``data.missing_codes``, or an instrument's own) become blank (not recorded), in ``columns``
    (default: all) except the key columns ``keep``; returns how many were blanked."""
    codes = {str(c).strip() for c in codes or []}
    n = 0
    if not codes:
        return n
    for c in frame.columns if columns is None else columns:
        if c in keep:
            continue
        hit = frame[c].astype(str).str.strip().isin(codes)
        if hit.any():
            n += int(hit.sum())
            frame[c] = frame[c].where(~hit, "")
    return n


# ---- dates ------------------------------------------------------------------------------------

def describe_format(fmt: str) -> str:
    if fmt == "excel_serial":
        return "Excel serial day number"
    return fmt.replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")


def _shape(fmt: str) -> re.Pattern:
    parts = re.split(r"(%[Ymd])", fmt)
    rx = "".join({"%Y": r"\d{4}", "%m": r"\d{1,2}", "%d": r"\d{1,2}"}.get(p, re.escape(p)) for p in parts)
    return re.compile(rf"^{rx}$")


def parse_dates(s: pd.Series, formats: list[str], serial_ok: bool = False):
    """See :func:`_parse_dates`; parses each distinct value once."""
    s = s.astype(object).where(s.notna(), "").astype(str)
    uniq = pd.Series(pd.unique(s.to_numpy()), dtype=object)
    d, rule = _parse_dates(uniq, formats, serial_ok)
    pos = pd.Index(uniq).get_indexer(s.to_numpy())
    return (pd.Series(d.to_numpy()[pos], index=s.index).astype("datetime64[us]"),
            pd.Series(rule.to_numpy()[pos], index=s.index, dtype=object))


def _parse_dates(s: pd.Series, formats: list[str], serial_ok: bool = False):
    """Parse text dates by the accepted formats.

    Returns ``(dates, rule)``: ``dates`` is datetime64 (NaT where blank or bad) and ``rule`` is
    an object Series with the broken rule for each bad value ('' elsewhere).  A value that
    reads as two different dates under two accepted formats is refused as ambiguous.  Numbers
    are read as Excel serial day numbers when the cell came from a workbook (``serial_ok``) or
    ``excel_serial`` is an accepted format.
    """
    s = s.astype(object).where(s.notna(), "").astype(str)
    blank = s == ""
    fmts = [f for f in formats if f != "excel_serial"]
    serial_ok = serial_ok or "excel_serial" in formats
    parsed = [pd.to_datetime(s.where(s.str.match(_shape(f).pattern)), format=f, errors="coerce") for f in fmts]
    shape_ok = pd.Series(False, index=s.index)
    for f in fmts:
        shape_ok |= s.str.match(_shape(f).pattern)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    rule = pd.Series("", index=s.index, dtype=object)
    ambiguous = pd.Series(False, index=s.index)
    for p in parsed:
        p = p.astype("datetime64[us]")
        clash = out.notna() & p.notna() & (out != p)
        ambiguous |= clash
        out = out.where(out.notna(), p)
    if ambiguous.any():
        alts = [" or ".join(sorted({p[i].strftime("%Y-%m-%d") for p in parsed if pd.notna(p[i])}))
                for i in s.index[ambiguous]]
        rule[ambiguous] = [f"ambiguous date: reads as {a} under the accepted formats" for a in alts]
        out[ambiguous] = pd.NaT
    numeric = pd.to_numeric(s.where(~blank & out.isna() & ~ambiguous), errors="coerce")
    serial = numeric.notna() & (numeric == np.floor(numeric)) & (numeric >= 1) & (numeric <= 73050)
    if serial_ok:
        # Excel's 1900 date system counts a non-existent 1900-02-29 (serial 60): serials below it
        # are one day later than a plain count from 1899-12-30
        fake = serial & (numeric == 60)
        rule[fake] = "Excel serial 60 is the non-existent date 1900-02-29"
        days = numeric.where(serial & ~fake) + (numeric < 60).astype(float)
        out = out.where(~(serial & ~fake), EXCEL_EPOCH + pd.to_timedelta(days, unit="D"))
    else:
        rule[serial & (rule == "")] = ("looks like an Excel serial day number; dates must be written "
                                       + " or ".join(describe_format(f) for f in fmts)
                                       + " (add excel_serial to data.date_formats to accept it)")
    unparsed = ~blank & out.isna() & (rule == "")
    rule[unparsed & shape_ok] = "not a real calendar date"
    rule[unparsed & ~shape_ok] = ("date not in an accepted format ("
                                  + ", ".join(describe_format(f) for f in formats) + ")")
    implausible = out.notna() & ((out < DATE_MIN) | (out > DATE_MAX))
    rule[implausible] = "implausible date (year outside 1900-2100)"
    out[implausible] = pd.NaT
    return out.astype("datetime64[us]"), rule


# ---- typed conversion -------------------------------------------------------------------------

def _fmt_allowed(allowed) -> str:
    vals = sorted(map(str, allowed))
    return ", ".join(vals) if len(vals) <= 15 else ", ".join(vals[:15]) + ", ..."


def check_fields(table, fields: list[Field], q: Collector, *, id_col: str | None = None,
                 date_formats: list[str] = ("%Y-%m-%d",)) -> pd.DataFrame:
    """Typed copy of ``table.frame[fields]``; one query per broken rule.

    Text is compared after trimming surrounding spaces; in identifier columns surrounding
    spaces are themselves reported (as warnings) because they make IDs fail to match.
    Numeric columns are parsed together as one block (one vectorised pass for all items).
    """
    df = table.frame
    ids = df[id_col].astype(str).str.strip().to_numpy() if id_col and id_col in df else None
    present = [f for f in fields if f.name in df]
    numeric = [f for f in present if f.kind in ("int", "number")]
    out: dict[str, object] = {}
    if numeric:
        out |= _check_numeric_block(table, numeric, q, ids)
    codes = [f for f in present if f.kind == "code" and not f.required and not f.unique]
    if len(codes) > 3:  # many coded columns (questionnaire items): one pass per set of choices
        out |= _check_code_block(table, codes, q, ids)
    done = {f.name for f in codes} if len(codes) > 3 else set()
    for f in present:
        if f.kind in ("int", "number") or f.name in done:
            continue
        out[f.name] = _check_other_field(table, f, q, ids, date_formats)
    res = pd.DataFrame({f.name: out[f.name] for f in present}, index=df.index)
    for f in present:
        if f.kind == "date":
            res[f.name] = res[f.name].astype("datetime64[us]")
    return res


def _check_numeric_block(table, numeric: list[Field], q: Collector, ids) -> dict[str, object]:
    """Parse every numeric column in one vectorised pass, check each and return the typed columns."""
    df = table.frame
    n = len(df)
    out: dict[str, object] = {}
    names = [f.name for f in numeric]
    flat = pd.Series(df[names].to_numpy(dtype=object).ravel(order="F"), dtype=object).astype(str).str.strip()
    sv = flat.to_numpy(dtype=object).reshape(n, len(names), order="F")
    blank_all = sv == ""
    num_all = pd.to_numeric(flat.where(flat != ""), errors="coerce").to_numpy(dtype=float) \
        .reshape(n, len(names), order="F")
    # inf, -inf, Infinity, 1e999, nan, NaN: read by pandas as non-finite floats; never data
    nonfinite_all = ~blank_all & (np.isinf(num_all) | flat.str.fullmatch(_NAN_TEXT).to_numpy()
                                  .reshape(n, len(names), order="F"))
    for j, f in enumerate(numeric):
        x, b, vals = num_all[:, j].copy(), blank_all[:, j], sv[:, j]
        _common_checks(table, f, q, vals, b, ids)
        _check_numeric_values(table, f, q, x, b, nonfinite_all[:, j], vals, ids)
        if f.kind == "int":
            mask = np.isnan(x)
            out[f.name] = pd.arrays.IntegerArray(np.where(mask, 0, np.round(np.nan_to_num(x))).astype(np.int64), mask)
        else:
            out[f.name] = x
    return out


def _check_numeric_values(table, f: Field, q: Collector, x: np.ndarray, b, nonfinite, vals, ids) -> None:
    """Finite, whole (int), allowed and in-range checks of one numeric column; x is blanked where bad, in place."""
    q.add_many(table, nonfinite, f.name, "must be a finite number (inf, nan and the like are not data)",
               values=vals, ids=ids)
    x[nonfinite] = np.nan
    nan = np.isnan(x)
    with np.errstate(invalid="ignore"):
        if f.kind == "int":
            bad = ~b & ~nonfinite & (nan | (x != np.floor(x)))
            q.add_many(table, bad, f.name, "must be a whole number or blank", values=vals, ids=ids)
        else:
            bad = ~b & ~nonfinite & nan
            q.add_many(table, bad, f.name, "must be a number or blank", values=vals, ids=ids)
        bad |= nonfinite
        x[bad] = np.nan
        ok = ~np.isnan(x)
        if f.allowed is not None:
            off = ok & ~np.isin(x, [float(a) for a in f.allowed])
            q.add_many(table, off, f.name, f.range_rule or
                       f"code not allowed (allowed: {_fmt_allowed(f.allowed)})", values=vals, ids=ids)
        lo = -np.inf if f.min is None else float(f.min)
        hi = np.inf if f.max is None else float(f.max)
        out_of = ok & ((x < lo) | (x > hi))
        q.add_many(table, out_of, f.name,
                   f.range_rule or f"value out of range ({_range_text(f.min, f.max)})", values=vals, ids=ids)


def _check_code_block(table, codes: list[Field], q: Collector, ids) -> dict[str, object]:
    """Check many optional coded columns in one pass per set of allowed codes; return the typed columns."""
    df = table.frame
    n = len(df)
    out: dict[str, object] = {}
    groups: dict[tuple, list[Field]] = {}
    for f in codes:
        groups.setdefault(tuple(map(str, f.allowed)), []).append(f)
    for allowed, fs in groups.items():
        names = [f.name for f in fs]
        flat = pd.Series(df[names].to_numpy(dtype=object).ravel(order="F"), dtype=object).astype(str).str.strip()
        ok = flat.isin(list(allowed)).to_numpy() | (flat == "").to_numpy()
        sv = flat.to_numpy(dtype=object).reshape(n, len(names), order="F")
        okm = ok.reshape(n, len(names), order="F")
        for j, f in enumerate(fs):
            q.add_many(table, ~okm[:, j], f.name, f"value not allowed (allowed: {_fmt_allowed(f.allowed)})",
                       values=sv[:, j], ids=ids)
            col = np.where(okm[:, j] & (sv[:, j] != ""), sv[:, j], None)
            out[f.name] = pd.array(col, dtype="str")
    return out


def _check_other_field(table, f: Field, q: Collector, ids, date_formats):
    """Check one identifier, text, code or date column and return its typed values."""
    raw = table.frame[f.name].astype(str)
    s = raw.str.strip()
    blank = (s == "").to_numpy()
    if f.kind == "id":
        spaced = (raw != s).to_numpy() & ~blank
        q.add_many(table, spaced, f.name, "identifier has leading/trailing spaces (removed for matching)",
                   "warning", values=raw, ids=ids)
    _common_checks(table, f, q, s.to_numpy(dtype=object), blank, ids)
    if f.kind in ("id", "text"):
        col = s.where(~blank, None).astype("str")
    elif f.kind == "code":
        bad = ~blank & ~s.isin([str(a) for a in f.allowed]).to_numpy()
        q.add_many(table, bad, f.name, f"value not allowed (allowed: {_fmt_allowed(f.allowed)})",
                   values=s, ids=ids)
        col = s.where(~blank & ~bad, None).astype("str")
    elif f.kind == "date":
        d, rule = parse_dates(s, list(date_formats), table.serial_dates_ok)
        bad = (rule != "").to_numpy()
        q.add_many(table, bad, f.name, rule.to_numpy(), values=s, ids=ids)
        if f.min is not None or f.max is not None:
            lo = pd.Timestamp(f.min) if f.min is not None else DATE_MIN
            hi = pd.Timestamp(f.max) if f.max is not None else DATE_MAX
            out_of = d.notna() & ((d < lo) | (d > hi))
            q.add_many(table, out_of.to_numpy(), f.name,
                       f.range_rule or f"date out of range ({_range_text(f.min, f.max)})", values=s, ids=ids)
        col = d
    else:  # pragma: no cover - declarations are internal
        raise ValueError(f"unknown field kind {f.kind!r}")
    return col.to_numpy() if f.kind == "date" else col.array


def _common_checks(table, f: Field, q: Collector, vals, blank, ids) -> None:
    if f.required:
        q.add_many(table, blank, f.name, "required value is missing", ids=ids)
    if f.unique:
        s = pd.Series(vals, dtype=object)
        dup = s.duplicated(keep="first").to_numpy() & ~blank
        q.add_many(table, dup, f.name, "duplicate identifier (must be unique)", values=vals, ids=ids)
        case_dup = s.str.casefold().duplicated(keep="first").to_numpy() & ~blank & ~dup
        q.add_many(table, case_dup, f.name,
                   "identifier differs from another only in upper/lower case (IDs are case-sensitive: "
                   "correct one of them)", values=vals, ids=ids)


def _range_text(lo, hi) -> str:
    def g(v):
        return f"{v:g}" if isinstance(v, (int, float)) else str(v)
    if lo is not None and hi is not None:
        return f"{g(lo)} to {g(hi)}"
    return f">= {g(lo)}" if lo is not None else f"<= {g(hi)}"
