"""REDCap exports: the data dictionary and a longitudinal "raw" records export.

A REDCap project hands over two CSV files: the *data dictionary* (one row per field: form,
field type, choices such as ``1, Yes | 0, No``, text validation type and min/max, identifier
flag) and the *records export* (``record_id``, ``redcap_event_name`` in longitudinal projects,
``redcap_repeat_instrument``/``redcap_repeat_instance`` for repeating instruments,
checkbox fields as ``field___code`` columns, and a ``<form>_complete`` status per form).

This module reads the dictionary, checks the export against it (every column known, every
value a declared choice, numbers and dates valid and within the validation min/max) and cuts
the export into the rows and columns of one canonical table (participants, one wave's
questionnaires, service use), selected by form and event.  Fields flagged ``Identifier? = y``
are never passed on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.readers import RawTable, read_csv
from analysis.validation import Collector, Field, check_fields

DICT_HEADERS = {
    "field_name": ("Variable / Field Name", "field_name"),
    "form_name": ("Form Name", "form_name"),
    "field_type": ("Field Type", "field_type"),
    "choices": ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    "validation": ("Text Validation Type OR Show Slider Number", "text_validation_type_or_show_slider_number"),
    "min": ("Text Validation Min", "text_validation_min"),
    "max": ("Text Validation Max", "text_validation_max"),
    "identifier": ("Identifier?", "identifier"),
}
SPECIAL = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance",
           "redcap_data_access_group", "redcap_survey_identifier")
CHOICE_TYPES = ("radio", "dropdown", "yesno", "truefalse", "checkbox")
NO_DATA_TYPES = ("descriptive",)
DATE_VALIDATIONS = ("date_ymd", "date_dmy", "date_mdy")
FIXED_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}
COMPLETE_CODES = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}


def parse_choices(text: str) -> dict[str, str] | None:
    """``"1, Yes | 0, No"`` -> ``{"1": "Yes", "0": "No"}``; None if malformed."""
    out: dict[str, str] = {}
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if "," not in part:
            return None
        code, label = part.split(",", 1)
        code = code.strip()
        if not code or code in out:
            return None
        out[code] = label.strip()
    return out or None


@dataclass
class Dictionary:
    file: str
    fields: pd.DataFrame  # index: field name; columns form, type, choices, validation, min, max, identifier, line

    def __post_init__(self) -> None:
        self.rec = self.fields.to_dict("index")
        self.identifiers = {k for k, r in self.rec.items() if r["identifier"]}
        self.calcs = {k for k, r in self.rec.items() if r["type"] == "calc"}

    def form_fields(self, forms) -> list[str]:
        f = self.fields
        return list(f.index[f.form.isin(list(forms)) & ~f.type.isin(NO_DATA_TYPES)])

    def columns_of(self, field: str) -> list[str]:
        r = self.rec[field]
        if r["type"] == "checkbox":
            return [f"{field}___{c}" for c in r["choices"]]
        return [field]

    def export_columns(self, forms=None) -> list[str]:
        names = self.form_fields(forms) if forms is not None else \
            list(self.fields.index[~self.fields.type.isin(NO_DATA_TYPES)])
        return [c for n in names for c in self.columns_of(n)]

    @property
    def forms(self) -> list[str]:
        return list(dict.fromkeys(self.fields.form))

    def choices(self) -> dict[str, dict[str, str]]:
        out = {}
        for name, r in self.rec.items():
            if r["choices"] and r["type"] != "checkbox":
                out[name] = r["choices"]
        return out

    def specs(self, columns: list[str], date_formats) -> list[Field]:
        """Validation rules for export columns, derived from the dictionary."""
        out = []
        for col in columns:
            if col.endswith("_complete") and col[: -len("_complete")] in self.forms:
                out.append(Field(col, "code", allowed=tuple(COMPLETE_CODES)))
                continue
            base = col.split("___")[0] if "___" in col else col
            if base not in self.rec:
                continue
            r = self.rec[base]
            if r["type"] == "checkbox":
                out.append(Field(col, "code", allowed=("0", "1")))
            elif r["type"] in CHOICE_TYPES:
                out.append(Field(col, "code", allowed=tuple(r["choices"])))
            elif r["type"] == "slider":
                out.append(Field(col, "number", min=_num(r["min"], 0), max=_num(r["max"], 100)))
            elif r["type"] == "calc":
                out.append(Field(col, "number"))
            elif r["validation"] == "integer":
                out.append(Field(col, "int", min=_num(r["min"]), max=_num(r["max"])))
            elif r["validation"] in ("number", "number_1dp", "number_2dp", "float"):
                out.append(Field(col, "number", min=_num(r["min"]), max=_num(r["max"])))
            elif r["validation"] in DATE_VALIDATIONS:
                out.append(Field(col, "date", min=r["min"] or None, max=r["max"] or None))
            else:
                out.append(Field(col, "text"))
        return out


def _num(v, default=None):
    if v in ("", None):
        return default
    try:
        x = float(v)
    except ValueError:
        return default
    return x if math.isfinite(x) else default


def read_dictionary(raw_dir: Path, name: str, q: Collector) -> Dictionary | None:
    """Read a REDCap data dictionary (the CSV download, or the API's column names)."""
    t = read_csv(Path(raw_dir) / name, name, q) if (Path(raw_dir) / name).is_file() else None
    if t is None:
        if not (Path(raw_dir) / name).is_file():
            q.add(name, None, "", "", "", f"file not found: {Path(raw_dir) / name}")
        return None
    cols = {}
    for key, options in DICT_HEADERS.items():
        hit = [h for h in options if h in t.frame.columns]
        if hit:
            cols[key] = hit[0]
        elif key in ("field_name", "form_name", "field_type"):
            q.add(name, 1, "", options[0], "", "required column(s) missing (is this a REDCap data dictionary?)")
            return None
    f = pd.DataFrame({k: t.frame[v].str.strip() if v in t.frame else "" for k, v in cols.items()})
    for k in DICT_HEADERS:
        if k not in f:
            f[k] = ""
    f["line"] = t.rows
    ok = True
    dup = f.field_name.duplicated()
    for i in np.flatnonzero(dup.to_numpy()):
        q.add(name, t.rows[i], "", "Variable / Field Name", f.field_name.iat[i], "field defined twice in the dictionary")
        ok = False
    choices = []
    for i, r in enumerate(f.itertuples()):
        if r.field_type in FIXED_CHOICES:
            choices.append(FIXED_CHOICES[r.field_type])
        elif r.field_type in CHOICE_TYPES:
            c = parse_choices(r.choices)
            if c is None:
                q.add(name, t.rows[i], "", "Choices, Calculations, OR Slider Labels", r.choices,
                      "choices must be written 'code, label | code, label'")
                ok = False
            choices.append(c or {})
        else:
            choices.append({})
    f["choices"] = choices
    f = f.rename(columns={"form_name": "form", "field_type": "type"})
    f["identifier"] = f.identifier.str.lower().isin(["y", "yes", "1"])
    return Dictionary(name, f.set_index("field_name")) if ok else None


def check_export(export: RawTable, dic: Dictionary, q: Collector, *, record_id: str, forms: list[str],
                 date_formats) -> bool:
    """Check the records export against the dictionary; False if it cannot be used at all."""
    cols = list(export.frame.columns)
    if record_id not in cols:
        if {"Record ID", "Event Name", "Complete?"} & set(cols) or any(c.endswith("Complete?") for c in cols):
            q.add(export.file, 1, "", "", "", "this is a REDCap *labels* export: export the raw data "
                  "('CSV / Microsoft Excel (raw data)') with coded values and variable names")
        else:
            q.add(export.file, 1, "", record_id, "", "required column(s) missing (the record ID field, "
                  "data.redcap.record_id)")
        return False
    known = set(dic.export_columns()) | set(SPECIAL) | {record_id}
    known |= {f"{fm}_complete" for fm in dic.forms} | {f"{fm}_timestamp" for fm in dic.forms}
    for c in cols:
        if c not in known:
            q.add(export.file, 1, "", c, "", f"column is not in the data dictionary {dic.file} "
                  "(are the export and the dictionary from the same version of the project?)")
    unknown_forms = [fm for fm in forms if fm not in dic.forms]
    for fm in unknown_forms:
        q.add(dic.file, None, "", "Form Name", fm, "form named in data.redcap.forms is not in the data dictionary")
    for c in dic.export_columns([fm for fm in forms if fm in dic.forms]):
        if c not in cols:
            q.add(export.file, 1, "", c, "", f"field of the data dictionary {dic.file} is missing from the export")
    ids = export.frame[record_id].str.strip().to_numpy()
    check_cols = [c for c in dic.export_columns(forms) if c in cols] + \
        [f"{fm}_complete" for fm in forms if f"{fm}_complete" in cols]
    check_fields(export, dic.specs(check_cols, date_formats), q, id_col=record_id, date_formats=date_formats)
    blank = (export.frame[record_id].str.strip() == "").to_numpy()
    q.add_many(export, blank, record_id, "required value is missing", ids=ids)
    if "redcap_repeat_instrument" in cols:
        rep = export.frame.redcap_repeat_instrument.str.strip() != ""
        inst = pd.to_numeric(export.frame.get("redcap_repeat_instance", pd.Series("", index=export.frame.index)),
                             errors="coerce")
        bad = (rep & ~((inst >= 1) & np.isfinite(inst))).to_numpy()
        q.add_many(export, bad, "redcap_repeat_instance",
                   "repeating-instrument row needs a positive repeat instance", ids=ids)
    return True


def role_table(export: RawTable, dic: Dictionary, forms: list[str], events: list[str] | None,
               record_id: str, keep: set[str] = frozenset()) -> RawTable:
    """Rows and columns of ``export`` holding ``forms`` at ``events`` (non-repeating rows only).

    A row is taken when at least one field of the forms is filled in.  Identifier fields are
    dropped unless named in ``keep`` (e.g. mapped to a canonical column).
    """
    f = export.frame
    fields = [c for c in dic.export_columns(forms) if c in f.columns]
    data_fields = [c for c in fields if c.split("___")[0] not in dic.identifiers or c in keep]
    mask = pd.Series(True, index=f.index)
    if "redcap_repeat_instrument" in f:
        mask &= f.redcap_repeat_instrument.str.strip() == ""
    if events is not None and "redcap_event_name" in f:
        mask &= f.redcap_event_name.str.strip().isin(events)
    check = [c for c in fields if c.split("___")[0] not in dic.calcs]
    filled = _filled(f, check) if check else mask
    mask &= filled
    extra = [c for c in ("redcap_event_name", "redcap_data_access_group") if c in f]
    complete = [f"{fm}_complete" for fm in forms if f"{fm}_complete" in f]
    cols = [record_id] + [c for c in extra if c != record_id] + [c for c in data_fields if c != record_id] + complete
    sub = export.subset(mask.to_numpy())
    sub.frame = sub.frame[list(dict.fromkeys(cols))]
    sub.labels = {k: v for k, v in dic.choices().items() if k in sub.frame.columns}
    sub.labels.update({c: COMPLETE_CODES for c in complete})
    return sub


def _filled(f: pd.DataFrame, cols: list[str]) -> pd.Series:
    """True where any of ``cols`` holds a non-blank value (one vectorised pass)."""
    a = f[cols].to_numpy(dtype=object).astype(str)
    return pd.Series((np.char.strip(a) != "").any(axis=1), index=f.index)


def unused_rows(export: RawTable, used_events: set[str], used_forms: set[str], dic: Dictionary) -> list[dict]:
    """Counts of export rows no canonical table reads (other events, other repeating instruments)."""
    f = export.frame
    out = []
    rep = f.redcap_repeat_instrument.str.strip() if "redcap_repeat_instrument" in f else pd.Series("", index=f.index)
    for inst, n in rep[rep != ""].value_counts().sort_index().items():
        if inst not in used_forms:
            out.append(dict(reason=f"REDCap repeating instrument '{inst}' is not used by the analysis", n=int(n)))
    if "redcap_event_name" in f:
        ev = f.redcap_event_name.str.strip()
        other = (rep == "") & ~ev.isin(sorted(used_events))
        for e, n in ev[other].value_counts().sort_index().items():
            out.append(dict(reason=f"REDCap event '{e}' is not mapped to a table in the trial config", n=int(n)))
    return out
