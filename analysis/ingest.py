"""Read and validate a trial's raw files into typed tables.

Raw files are only read, never written.  Problems are reported as *data queries* naming the
file, the line (header = line 1), the participant, the column, the value and the rule broken:

* ``error`` queries stop the run (:class:`DataValidationError` lists them all at once);
* ``warning`` queries let the run continue and are listed in ``data_queries.csv`` and the
  report's appendix.

This is the first cut of ingest; the [ingest] issue adds REDCap/Excel/SPSS readers, column
mapping and pseudonymisation behind the same outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

QUERY_COLUMNS = ["file", "line", "participant_id", "column", "value", "rule", "severity"]

SITE_COLUMNS = ["site_id", "client_group", "arm", "recruitment_start", "recruitment_end"]
PARTICIPANT_COLUMNS = ["participant_id", "site_id", "consent_date", "age", "sex",
                       "sessions_attended", "withdrawal_date", "withdrawal_reason"]
SCREENING_COLUMNS = ["screening_id", "site_id", "screen_date", "eligible", "exclusion_reason",
                     "consented", "decline_reason", "participant_id"]
WAVE_FIXED_COLUMNS = ["participant_id", "visit_date"]
SERVICE_FIXED_COLUMNS = ["participant_id", "timepoint", "recall_start", "recall_end"]
FIDELITY_COLUMNS = ["site_id", "assessment_date", "fidelity_score"]
ITEM_PATTERN = re.compile(r"^(?P<instrument>[a-z0-9]+)_(?P<k>\d+)$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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
        where = f"{self.file}, line {self.line}" if self.line else self.file
        who = f", participant {self.participant_id}" if self.participant_id else ""
        col = f", column '{self.column}'" if self.column else ""
        val = f", value {self.value!r}" if self.value != "" else ""
        return f"{where}{who}{col}{val}: {self.rule}"


class DataValidationError(ValueError):
    """Raw data break one or more error-level rules; nothing was written."""

    def __init__(self, queries: list[Query]):
        self.queries = queries
        shown = "\n  ".join(str(q) for q in queries[:50])
        more = f"\n  ... and {len(queries) - 50} more" if len(queries) > 50 else ""
        super().__init__(f"{len(queries)} data error(s); nothing was written:\n  {shown}{more}")


class _Collector:
    def __init__(self) -> None:
        self.queries: list[Query] = []

    def add(self, file, line, pid, column, value, rule, severity="error"):
        self.queries.append(Query(str(file), None if line is None else int(line), str(pid or ""),
                                  str(column or ""), "" if value is None else str(value), rule, severity))

    @property
    def errors(self) -> list[Query]:
        return [q for q in self.queries if q.severity == "error"]

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame([q.__dict__ for q in self.queries], columns=QUERY_COLUMNS)
        return df.astype({"line": "Int64"})


def read_raw_csv(path: Path, required: list[str], q: _Collector) -> pd.DataFrame | None:
    """Read a CSV as text, exactly as stored; check it has a header and the required columns."""
    name = path.name
    if not path.exists():
        q.add(name, None, "", "", "", f"file not found: {path}")
        return None
    raw = path.read_bytes()
    if not raw.strip():
        q.add(name, None, "", "", "", "file is empty (no header row)")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        q.add(name, line, "", "", repr(raw[exc.start:exc.start + 8]), "file is not valid UTF-8 text")
        return None
    from io import StringIO
    df = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = " (is the delimiter a comma?)" if len(df.columns) == 1 else ""
        q.add(name, 1, "", ", ".join(missing), "", f"required column(s) missing{hint}")
        return None
    df = df.apply(lambda s: s.str.strip())
    df.index = pd.RangeIndex(2, len(df) + 2, name="line")  # file line numbers
    return df


def _parse_dates(df, col, name, q, required=True, id_col=None):
    out = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us]")
    for line, v in df[col].items():
        pid = df.at[line, id_col] if id_col else ""
        if v == "":
            if required:
                q.add(name, line, pid, col, v, "required date is missing")
            continue
        if not ISO_DATE.match(v):
            q.add(name, line, pid, col, v, "date must be written YYYY-MM-DD")
            continue
        try:
            out[line] = pd.Timestamp(v)
        except ValueError:
            q.add(name, line, pid, col, v, "not a real calendar date")
    return out


def _unique(df, col, name, q, id_col=None):
    dup = df[col].duplicated(keep="first") & (df[col] != "")
    for line in df.index[dup]:
        q.add(name, line, df.at[line, id_col] if id_col else "", col, df.at[line, col],
              "duplicate identifier (must be unique)")


def _allowed(df, col, allowed, name, q, id_col=None, allow_blank=False):
    for line, v in df[col].items():
        if v == "" and allow_blank:
            continue
        if v not in allowed:
            q.add(name, line, df.at[line, id_col] if id_col else "", col, v,
                  f"value not allowed (allowed: {', '.join(sorted(allowed))})")


def _integers(df, cols, name, q, id_col):
    """Convert item columns to nullable integers; text or decimals are errors."""
    out = {}
    for col in cols:
        s = df[col]
        num = pd.to_numeric(s.where(s != "", None), errors="coerce")
        bad = (s != "") & (num.isna() | (num.notna() & (num != np.floor(num.fillna(0)))))
        for line in df.index[bad]:
            q.add(name, line, df.at[line, id_col], col, s[line], "must be a whole number or blank")
        out[col] = pd.array(num.where(~bad).round().astype("Int64"), dtype="Int64")
    return pd.DataFrame(out, index=df.index)


def ingest_trial(cfg: dict, raw_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Validate the raw files named in ``cfg`` and return typed tables.

    Returns a dict with ``sites``, ``participants``, ``screening``, ``responses`` (long: one row
    per participant and time point, item columns as nullable integers), ``service_use``,
    ``fidelity`` and ``queries``.  Raises :class:`DataValidationError` if any error-level rule
    is broken.
    """
    data = cfg["data"]
    raw = Path(raw_dir or data["raw_dir"])
    design = cfg["design"]
    arms = {design["control_arm"], design["intervention_arm"]}
    q = _Collector()

    # ---- sites ------------------------------------------------------------------------------
    f = data["sites"]
    sites = read_raw_csv(raw / f, SITE_COLUMNS, q)
    if sites is not None:
        _unique(sites, "site_id", f, q)
        _allowed(sites, "arm", arms, f, q)
        for c in ("site_id", "client_group"):
            for line in sites.index[sites[c] == ""]:
                q.add(f, line, "", c, "", "required value is missing")
        sites["recruitment_start"] = _parse_dates(sites, "recruitment_start", f, q)
        sites["recruitment_end"] = _parse_dates(sites, "recruitment_end", f, q)
        bad = sites.recruitment_end < sites.recruitment_start
        for line in sites.index[bad]:
            q.add(f, line, "", "recruitment_end", sites.at[line, "recruitment_end"].date(),
                  "recruitment ends before it starts")
    if sites is None:
        raise DataValidationError(q.errors)
    site_ids = set(sites.site_id)

    # ---- participants -------------------------------------------------------------------------
    f = data["participants"]
    parts = read_raw_csv(raw / f, PARTICIPANT_COLUMNS, q)
    if parts is not None:
        for line in parts.index[parts.participant_id == ""]:
            q.add(f, line, "", "participant_id", "", "required value is missing")
        _unique(parts, "participant_id", f, q, "participant_id")
        _allowed(parts, "site_id", site_ids, f, q, "participant_id")
        _allowed(parts, "sex", {"female", "male", "other"}, f, q, "participant_id", allow_blank=True)
        parts["consent_date"] = _parse_dates(parts, "consent_date", f, q, id_col="participant_id")
        parts["withdrawal_date"] = _parse_dates(parts, "withdrawal_date", f, q, required=False,
                                                id_col="participant_id")
        ints = _integers(parts, ["age", "sessions_attended"], f, q, "participant_id")
        for line, v in ints["age"].items():
            if pd.notna(v) and not 16 <= v <= 110:
                q.add(f, line, parts.at[line, "participant_id"], "age", v, "age must be 16-110 years")
        parts["age"] = ints["age"]
        parts["sessions_attended"] = ints["sessions_attended"]
        before = parts.withdrawal_date < parts.consent_date
        for line in parts.index[before]:
            q.add(f, line, parts.at[line, "participant_id"], "withdrawal_date",
                  parts.at[line, "withdrawal_date"].date(), "withdrawal is dated before consent")
        no_reason = parts.withdrawal_date.notna() & (parts.withdrawal_reason == "")
        for line in parts.index[no_reason]:
            q.add(f, line, parts.at[line, "participant_id"], "withdrawal_reason", "",
                  "withdrawal has no reason recorded", "warning")

    # ---- screening log ------------------------------------------------------------------------
    f = data["screening"]
    screen = read_raw_csv(raw / f, SCREENING_COLUMNS, q)
    if screen is not None:
        _unique(screen, "screening_id", f, q)
        _allowed(screen, "site_id", site_ids, f, q)
        _allowed(screen, "eligible", {"yes", "no"}, f, q)
        _allowed(screen, "consented", {"yes", "no"}, f, q, allow_blank=True)
        screen["screen_date"] = _parse_dates(screen, "screen_date", f, q)
        for line, r in screen.iterrows():
            if r.eligible == "yes" and r.consented == "":
                q.add(f, line, "", "consented", "", "eligible person has no consent decision")
            if r.eligible == "no" and r.consented == "yes":
                q.add(f, line, r.participant_id, "consented", "yes", "ineligible person recorded as consented")
            if r.eligible == "no" and r.exclusion_reason == "":
                q.add(f, line, "", "exclusion_reason", "", "ineligible without a reason", "warning")
            if r.consented == "yes" and r.participant_id == "":
                q.add(f, line, "", "participant_id", "", "consented person has no participant_id")
        _unique(screen, "participant_id", f, q)
        if parts is not None:
            known = set(parts.participant_id)
            for line, pid in screen.participant_id.items():
                if pid and pid not in known:
                    q.add(f, line, pid, "participant_id", pid,
                          "screening log names a participant missing from the participants file")
            logged = set(screen.participant_id[screen.consented == "yes"])
            for line, pid in parts.participant_id.items():
                if pid and pid not in logged:
                    q.add(data["participants"], line, pid, "participant_id", pid,
                          "participant has no consented entry in the screening log", "warning")

    # ---- questionnaire waves --------------------------------------------------------------------
    waves = []
    known = set(parts.participant_id) if parts is not None else set()
    person = parts.drop_duplicates("participant_id").set_index("participant_id") if parts is not None else None
    consent = person.consent_date if person is not None else None
    withdrawn = person.withdrawal_date if person is not None else None
    baseline_dates = None
    item_cols_all: list[str] = []
    for w in data["waves"]:
        f = w["file"]
        wave = read_raw_csv(raw / f, WAVE_FIXED_COLUMNS, q)
        if wave is None:
            continue
        items = [c for c in wave.columns if c not in WAVE_FIXED_COLUMNS]
        bad_names = [c for c in items if not ITEM_PATTERN.match(c)]
        for c in bad_names:
            q.add(f, 1, "", c, "", "unexpected column (item columns are named <instrument>_<k>)")
        items = [c for c in items if c not in bad_names]
        for line in wave.index[wave.participant_id == ""]:
            q.add(f, line, "", "participant_id", "", "required value is missing")
        _unique(wave, "participant_id", f, q, "participant_id")
        for line, pid in wave.participant_id.items():
            if pid and pid not in known:
                q.add(f, line, pid, "participant_id", pid,
                      "record for a participant who is not in the participants file (orphan)")
        visit = _parse_dates(wave, "visit_date", f, q, id_col="participant_id")
        values = _integers(wave, items, f, q, "participant_id")
        out = pd.concat([wave[["participant_id"]], visit.rename("visit_date"), values], axis=1)
        out["timepoint"] = w["timepoint"]
        out["month"] = float(w["month"])
        out["source_line"] = out.index.astype(int)
        if consent is not None:
            cd = out.participant_id.map(consent)
            for line in out.index[out.visit_date < cd]:
                q.add(f, line, out.at[line, "participant_id"], "visit_date", out.at[line, "visit_date"].date(),
                      "visit is dated before consent")
            wd = out.participant_id.map(withdrawn)
            after = out.visit_date > wd
            for line in out.index[after]:
                q.add(f, line, out.at[line, "participant_id"], "visit_date", out.at[line, "visit_date"].date(),
                      "visit after withdrawal: record excluded from analysis", "warning")
            out = out[~after.fillna(False)]
        if baseline_dates is None:
            baseline_dates = out.drop_duplicates("participant_id").set_index("participant_id").visit_date
        else:
            bd = out.participant_id.map(baseline_dates)
            for line in out.index[out.visit_date <= bd]:
                q.add(f, line, out.at[line, "participant_id"], "visit_date", out.at[line, "visit_date"].date(),
                      "follow-up visit is not after the baseline visit")
        item_cols_all += [c for c in items if c not in item_cols_all]
        waves.append(out)

    # ---- service use and fidelity (optional) ----------------------------------------------------
    service = None
    if data.get("service_use"):
        f = data["service_use"]
        su = read_raw_csv(raw / f, SERVICE_FIXED_COLUMNS, q)
        if su is not None:
            tps = {w["timepoint"] for w in data["waves"]}
            _allowed(su, "timepoint", tps, f, q, "participant_id")
            for line, pid in su.participant_id.items():
                if pid not in known:
                    q.add(f, line, pid, "participant_id", pid, "record for a participant who is not in the participants file (orphan)")
            key = su.participant_id + "|" + su.timepoint
            for line in su.index[key.duplicated()]:
                q.add(f, line, su.at[line, "participant_id"], "timepoint", su.at[line, "timepoint"],
                      "duplicate participant and time point")
            counts = [c for c in su.columns if c not in SERVICE_FIXED_COLUMNS]
            vals = _integers(su, counts, f, q, "participant_id")
            for c in counts:
                for line in vals.index[vals[c] < 0]:
                    q.add(f, line, su.at[line, "participant_id"], c, vals.at[line, c], "count cannot be negative")
            service = pd.concat([su[["participant_id", "timepoint"]],
                                 _parse_dates(su, "recall_start", f, q, id_col="participant_id").rename("recall_start"),
                                 _parse_dates(su, "recall_end", f, q, id_col="participant_id").rename("recall_end"),
                                 vals], axis=1)
    fidelity = None
    if data.get("fidelity"):
        f = data["fidelity"]
        fd = read_raw_csv(raw / f, FIDELITY_COLUMNS, q)
        if fd is not None:
            _allowed(fd, "site_id", site_ids, f, q)
            score = pd.to_numeric(fd.fidelity_score, errors="coerce")
            for line in fd.index[score.isna() | (score < 0) | (score > 100)]:
                q.add(f, line, "", "fidelity_score", fd.at[line, "fidelity_score"], "fidelity score must be a number 0-100")
            fidelity = pd.DataFrame({"site_id": fd.site_id,
                                     "assessment_date": _parse_dates(fd, "assessment_date", f, q),
                                     "fidelity_score": score})

    if q.errors:
        raise DataValidationError(q.errors)

    # ---- typed outputs ----------------------------------------------------------------------------
    sites = sites.reset_index(drop=True)
    arm_of = sites.set_index("site_id").arm
    group_of = sites.set_index("site_id").client_group
    parts = parts.reset_index(drop=True)
    parts.insert(2, "arm", parts.site_id.map(arm_of))
    parts.insert(3, "client_group", parts.site_id.map(group_of))
    parts["withdrawal_reason"] = parts.withdrawal_reason.replace("", pd.NA)
    parts["sex"] = parts.sex.replace("", pd.NA)
    screen = screen.reset_index(drop=True)
    screen["eligible"] = screen.eligible == "yes"
    screen["consented"] = screen.consented.map({"yes": True, "no": False}).astype("boolean")
    for c in ("exclusion_reason", "decline_reason", "participant_id"):
        screen[c] = screen[c].replace("", pd.NA)
    responses = pd.concat(waves, ignore_index=True)
    responses = responses[["participant_id", "timepoint", "month", "visit_date", "source_line"]
                          + [c for c in item_cols_all if c in responses.columns]]
    return {
        "sites": sites,
        "participants": parts,
        "screening": screen,
        "responses": responses,
        "service_use": service if service is not None else pd.DataFrame(columns=SERVICE_FIXED_COLUMNS),
        "fidelity": fidelity.reset_index(drop=True) if fidelity is not None else pd.DataFrame(columns=FIDELITY_COLUMNS),
        "queries": q.frame(),
    }
