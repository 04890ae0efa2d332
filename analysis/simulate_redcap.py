"""The demo trial as a real trial's data manager would hand it over (``data/raw/demo_redcap``).

Same participants, visits and answers as :mod:`analysis.simulate` writes to ``data/raw/demo``,
in the formats real trials arrive in:

* ``PATHWAYS_DATA_raw.csv``: a longitudinal REDCap *raw* records export (events
  ``baseline_arm_1``, ``month_3_arm_1``, ``month_9_arm_1``; forms enrolment,
  intervention_delivery, withdrawal, questionnaires, service_use, each with its
  ``<form>_complete`` status; a repeating ``contact_log`` instrument of follow-up contact
  attempts that the analysis does not use; an identifier field ``participant_initials``), with
  ``PATHWAYS_DataDictionary.csv``, its data dictionary (coded choices such as
  ``1, Female | 2, Male | 3, Other``, date and integer validation with min/max);
* ``sites.xlsx``: an Excel sheet with its own column names, arm labels, recruitment start as
  date cells and recruitment end as bare Excel serial day numbers;
* ``screening_log.csv``: saved from Excel: Windows-1252, ``DD/MM/YYYY`` dates, ``Y``/``N``
  codes and spreadsheet-style headers;
* ``fidelity.sav``: SPSS file with the site as a labelled numeric code.

``config/demo_redcap.yaml`` maps all of it onto the canonical tables.  Regenerate byte for
byte with ``python -m analysis.simulate_redcap data/raw/demo_redcap``; bring the config in
step with ``config/config.yaml`` with ``python -m analysis.simulate_redcap --config``.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.simulate import SERVICE_ITEMS, SIM_DAYS_PER_MONTH, SimulationParameters, simulate_trial

EXPORT = "PATHWAYS_DATA_raw.csv"
DICTIONARY = "PATHWAYS_DataDictionary.csv"
EVENTS = {"baseline": "baseline_arm_1", "m3": "month_3_arm_1", "m9": "month_9_arm_1"}
ITEMS = {"wemwbs": 14, "eq5d5l": 5, "rguk": 27, "ucla3": 3, "ons4": 4}
SEX = {"female": "1", "male": "2", "other": "3"}
WITHDRAWAL = {"withdrew consent": "1", "moved out of area": "2", "too unwell": "3"}
DICT_HEADER = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
               "Choices, Calculations, OR Slider Labels", "Field Note",
               "Text Validation Type OR Show Slider Number", "Text Validation Min", "Text Validation Max",
               "Identifier?", "Branching Logic (Show field only if...)", "Required Field?", "Custom Alignment",
               "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?", "Field Annotation"]
FIXED_TIME = (2025, 1, 1, 0, 0, 0)


def _text_tables(params: SimulationParameters) -> dict[str, pd.DataFrame]:
    """The plain demo tables exactly as their CSV text (what data/raw/demo holds)."""
    out = {}
    for name, obj in simulate_trial(params).items():
        if isinstance(obj, pd.DataFrame):
            buf = obj.to_csv(index=False, lineterminator="\n")
            out[name] = pd.read_csv(io.StringIO(buf), dtype=str, keep_default_na=False)
    return out


def _choices(codes_labels) -> str:
    return " | ".join(f"{c}, {lab}" for c, lab in codes_labels)


def data_dictionary(site_ids: list[str]) -> pd.DataFrame:
    from analysis.instruments import get_definition

    rows = []

    def add(name, form, ftype, label, choices="", validation="", lo="", hi="", ident=""):
        r = dict.fromkeys(DICT_HEADER, "")
        r.update({"Variable / Field Name": name, "Form Name": form, "Field Type": ftype, "Field Label": label,
                  "Choices, Calculations, OR Slider Labels": choices,
                  "Text Validation Type OR Show Slider Number": validation,
                  "Text Validation Min": lo, "Text Validation Max": hi, "Identifier?": ident})
        rows.append(r)

    add("record_id", "enrolment", "text", "Participant ID")
    add("participant_initials", "enrolment", "text", "Participant initials", ident="y")
    add("site", "enrolment", "dropdown", "Site", _choices((i + 1, s) for i, s in enumerate(site_ids)))
    add("consent_date", "enrolment", "text", "Date of consent", validation="date_ymd", lo="2020-01-01")
    add("age", "enrolment", "text", "Age (years)", validation="integer", lo="16", hi="110")
    add("sex", "enrolment", "radio", "Sex", _choices([(1, "Female"), (2, "Male"), (3, "Other")]))
    add("sessions_attended", "intervention_delivery", "text", "Sessions attended", validation="integer", lo="0")
    add("withdrawal_date", "withdrawal", "text", "Date of withdrawal", validation="date_ymd")
    add("withdrawal_reason", "withdrawal", "dropdown", "Reason for withdrawal",
        _choices((c, r) for r, c in WITHDRAWAL.items()))
    add("q_date", "questionnaires", "text", "Date questionnaires completed", validation="date_ymd")
    for inst, n in ITEMS.items():
        defn = get_definition(inst)
        labels = defn["response"].get("labels") or {}
        ch = _choices((c, labels.get(c, str(c))) for c in defn["response"]["codes"])
        for k in range(1, n + 1):
            add(f"{inst}_{k}", "questionnaires", "radio", f"{defn['name']} item {k}", ch)
    add("su_recall_start", "service_use", "text", "Recall period start", validation="date_ymd")
    add("su_recall_end", "service_use", "text", "Recall period end", validation="date_ymd")
    for s in SERVICE_ITEMS:
        add(s, "service_use", "text", s.replace("_", " ").capitalize(), validation="integer", lo="0")
    add("contact_date", "contact_log", "text", "Date of contact attempt", validation="date_ymd")
    add("contact_outcome", "contact_log", "radio", "Outcome",
        _choices([(1, "Reached"), (2, "No answer"), (3, "Wrong number")]))
    return pd.DataFrame(rows, columns=DICT_HEADER)


def records_export(t: dict[str, pd.DataFrame], dictionary: pd.DataFrame) -> pd.DataFrame:
    """Longitudinal raw export: one row per record x event (+ repeating contact_log rows)."""
    parts = t["participants"]
    site_code = {s: str(i + 1) for i, s in enumerate(t["sites"].site_id)}
    forms = list(dict.fromkeys(dictionary["Form Name"]))
    fields = {fm: list(dictionary["Variable / Field Name"][dictionary["Form Name"] == fm]) for fm in forms}
    fields["enrolment"] = [f for f in fields["enrolment"] if f != "record_id"]
    columns = ["record_id", "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for fm in forms:
        columns += fields[fm] + [f"{fm}_complete"]
    rows: dict[tuple, dict] = {}

    def put(pid, tp, values, form, instance=""):
        key = (pid, list(EVENTS).index(tp), form if instance else "", int(instance or 0))
        r = rows.setdefault(key, dict.fromkeys(columns, ""))
        r.update(record_id=pid, redcap_event_name=EVENTS[tp])
        if instance:
            r.update(redcap_repeat_instrument=form, redcap_repeat_instance=str(instance))
        r.update(values)
        r[f"{form}_complete"] = "2"

    rng = np.random.default_rng(20240301)
    letters = np.array(list("ABCDEFGHJKLMNPRSTW"))
    for p in parts.itertuples():
        initials = "".join(rng.choice(letters, 2))
        put(p.participant_id, "baseline", dict(participant_initials=initials, site=site_code[p.site_id],
                                               consent_date=p.consent_date, age=p.age, sex=SEX.get(p.sex, "")),
            "enrolment")
        if p.sessions_attended != "":
            put(p.participant_id, "baseline", dict(sessions_attended=p.sessions_attended), "intervention_delivery")
        if p.withdrawal_date != "":
            put(p.participant_id, "baseline", dict(withdrawal_date=p.withdrawal_date,
                                                   withdrawal_reason=WITHDRAWAL[p.withdrawal_reason]), "withdrawal")
    base = {}
    for tp in EVENTS:
        w = t[f"wave_{tp}"]
        items = [c for c in w.columns if c not in ("participant_id", "visit_date")]
        for r in w.to_dict("records"):
            put(r["participant_id"], tp, {"q_date": r["visit_date"], **{c: r[c] for c in items}}, "questionnaires")
            if tp == "baseline":
                base[r["participant_id"]] = pd.Timestamp(r["visit_date"])
        seen = set(w.participant_id)
        if tp != "baseline":  # two unanswered contact attempts for everyone not seen
            month = int(tp[1:])
            for pid in parts.participant_id:
                if pid in seen or pid not in base:
                    continue
                due = base[pid] + pd.Timedelta(days=round(month * SIM_DAYS_PER_MONTH))
                for k in (1, 2):
                    put(pid, tp, dict(contact_date=(due + pd.Timedelta(days=7 * k)).date().isoformat(),
                                      contact_outcome="2"), "contact_log", instance=k)
    for r in t["service_use"].to_dict("records"):
        put(r["participant_id"], r["timepoint"], {"su_recall_start": r["recall_start"],
                                                 "su_recall_end": r["recall_end"],
                                                 **{s: r[s] for s in SERVICE_ITEMS}}, "service_use")
    return pd.DataFrame([rows[k] for k in sorted(rows)], columns=columns)


def _xlsx_bytes(sites: pd.DataFrame) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sites"
    ws.append(["Site code", "Client group", "Allocation", "Recruitment opened", "Recruitment closed"])
    arm = {"intervention": "Intervention", "control": "Usual care"}
    epoch = dt.date(1899, 12, 30)
    for r in sites.itertuples():
        start = dt.date.fromisoformat(r.recruitment_start)
        end = (dt.date.fromisoformat(r.recruitment_end) - epoch).days  # a bare serial day number
        ws.append([r.site_id, r.client_group, arm[r.arm], start, end])
        ws.cell(ws.max_row, 4).number_format = "dd/mm/yyyy"
    wb.properties.creator = "Pathways demo"
    wb.properties.created = wb.properties.modified = dt.datetime(*FIXED_TIME)
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """Re-pack a zip with fixed member timestamps (byte-identical output)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                import re
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-01-01T00:00:00Z", data)
            dst.writestr(zi, data)
    return out.getvalue()


def _sav_bytes(fid: pd.DataFrame, site_ids: list[str], path: Path) -> bytes:
    import pyreadstat

    code = {s: float(i + 1) for i, s in enumerate(site_ids)}
    df = pd.DataFrame({"site": fid.site_id.map(code),
                       "visit_date": [dt.date.fromisoformat(d) for d in fid.assessment_date],
                       "score": fid.fidelity_score.astype(float)})
    pyreadstat.write_sav(df, str(path), column_labels=["Site", "Date of fidelity visit", "Fidelity score (0-100)"],
                         variable_value_labels={"site": {v: k for k, v in code.items()}})
    data = bytearray(path.read_bytes())
    data[92:109] = b"01 Jan 2500:00:00"  # the header's creation date and time, fixed
    return bytes(data)


def write_redcap_trial(out_dir: str | Path, params: SimulationParameters | None = None) -> list[Path]:
    """Write the REDCap/Excel/SPSS variant of a simulated trial; byte-identical for equal params."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = _text_tables(params or SimulationParameters())
    site_ids = list(t["sites"].site_id)
    dic = data_dictionary(site_ids)
    written = []

    def csv_write(df, name, encoding="utf-8", date_cols=()):
        df = df.copy()
        for c in date_cols:
            df[c] = [pd.Timestamp(v).strftime("%d/%m/%Y") if v else "" for v in df[c]]
        path = out / name
        path.write_bytes(df.to_csv(index=False, lineterminator="\r\n").encode(encoding))
        written.append(path)

    csv_write(dic, DICTIONARY)
    csv_write(records_export(t, dic), EXPORT)
    sc = t["screening_log"].copy()
    yn = {"yes": "Y", "no": "N", "": ""}
    sc["eligible"] = sc.eligible.map(yn)
    sc["consented"] = sc.consented.map(yn)
    sc = sc.rename(columns={"screening_id": "Screening no", "site_id": "Site", "screen_date": "Date screened",
                            "eligible": "Eligible (Y/N)", "exclusion_reason": "Reason not eligible",
                            "consented": "Consented (Y/N)", "decline_reason": "Reason declined",
                            "participant_id": "Trial ID"})
    csv_write(sc, "screening_log.csv", "cp1252", date_cols=["Date screened"])
    (out / "sites.xlsx").write_bytes(_xlsx_bytes(t["sites"]))
    written.append(out / "sites.xlsx")
    path = out / "fidelity.sav"
    path.write_bytes(_sav_bytes(t["fidelity"], site_ids, path))
    written.append(path)
    return written


CONFIG_HEADER = """\
# The demo trial as a data manager would hand it over: a longitudinal REDCap raw export with
# its data dictionary, an Excel sites sheet, a screening log saved from Excel (Windows-1252,
# DD/MM/YYYY) and an SPSS fidelity file (data/raw/demo_redcap/, regenerated by
# `python -m analysis.simulate_redcap data/raw/demo_redcap`).  Same participants and answers
# as the plain demo and the same analysis plan as config/config.yaml (this file is rewritten
# from it by `python -m analysis.simulate_redcap --config`), so the result tables are the same.
# How to map a REDCap project: docs/data-format.md.
"""
CONFIG_DATA = """\
data:
  raw_dir: data/raw/demo_redcap
  sites: sites.xlsx
  participants: PATHWAYS_DATA_raw.csv
  screening: screening_log.csv
  fidelity: fidelity.sav
  service_use: PATHWAYS_DATA_raw.csv
  waves:
    - {timepoint: baseline, month: 0, file: PATHWAYS_DATA_raw.csv, event: baseline_arm_1}
    - {timepoint: m3, month: 3, file: PATHWAYS_DATA_raw.csv, event: month_3_arm_1}
    - {timepoint: m9, month: 9, file: PATHWAYS_DATA_raw.csv, event: month_9_arm_1}
  redcap:
    export: PATHWAYS_DATA_raw.csv
    dictionary: PATHWAYS_DataDictionary.csv
    record_id: record_id
    forms:
      participants: [enrolment, intervention_delivery, withdrawal]
      waves: [questionnaires]
      service_use: [service_use]
  files:
    screening_log.csv: {encoding: cp1252}
  date_formats: ["%Y-%m-%d", "%d/%m/%Y"]
  columns:
    sites: {site_id: Site code, client_group: Client group, arm: Allocation,
            recruitment_start: Recruitment opened, recruitment_end: Recruitment closed}
    participants: {site_id: site}
    screening: {screening_id: Screening no, site_id: Site, screen_date: Date screened,
                eligible: Eligible (Y/N), exclusion_reason: Reason not eligible,
                consented: Consented (Y/N), decline_reason: Reason declined, participant_id: Trial ID}
    waves: {visit_date: q_date}
    service_use: {recall_start: su_recall_start, recall_end: su_recall_end}
    fidelity: {site_id: site, assessment_date: visit_date, fidelity_score: score}
  values:
    sites: {arm: {Intervention: intervention, Usual care: control}}
    participants: {site_id: labels, sex: {"1": female, "2": male, "3": other}, withdrawal_reason: labels}
    screening: {eligible: {Y: "yes", N: "no"}, consented: {Y: "yes", N: "no"}}
    fidelity: {site_id: labels}
"""
TITLE = "Pathways demo (REDCap export): synthetic cluster pilot of a social-connection intervention"


def redcap_config_text(base: str) -> str:
    """config/demo_redcap.yaml from the plain demo's config text: same analysis plan, the
    variant's trial id, title and ``data`` block (run ``--config`` after editing config.yaml)."""
    import re

    body = base[base.index("trial_id:"):]
    body = re.sub(r"^trial_id: .*$", "trial_id: demo_redcap", body, count=1, flags=re.M)
    body = re.sub(r"^title: .*$", f'title: "{TITLE}"', body, count=1, flags=re.M)
    m = re.search(r"^data:.*?(?=^\S)", body, re.S | re.M)
    return CONFIG_HEADER + body[:m.start()] + CONFIG_DATA + body[m.end():]


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Write the REDCap/Excel/SPSS variant of the synthetic demo trial.")
    ap.add_argument("out_dir", nargs="?", default="data/raw/demo_redcap")
    ap.add_argument("--seed", type=int, default=SimulationParameters.seed)
    ap.add_argument("--n-sites", type=int, default=SimulationParameters.n_sites)
    ap.add_argument("--trial-id", default=SimulationParameters.trial_id)
    ap.add_argument("--config", action="store_true",
                    help="instead, rewrite config/demo_redcap.yaml from config/config.yaml")
    a = ap.parse_args(argv)
    if a.config:
        root = Path(__file__).resolve().parent.parent
        out = root / "config/demo_redcap.yaml"
        out.write_text(redcap_config_text((root / "config/config.yaml").read_text(encoding="utf-8")), encoding="utf-8")
        print(out)
        return
    for path in write_redcap_trial(a.out_dir, SimulationParameters(seed=a.seed, n_sites=a.n_sites,
                                                                    trial_id=a.trial_id)):
        print(path)


if __name__ == "__main__":
    main()
