"""Read and validate a trial's raw files into typed tables.

Raw files are only read, never written.  Each canonical table (*role*: sites, participants,
screening, one table per questionnaire wave, service use, fidelity) comes from one source: a
CSV, Excel, SPSS or Stata file (:mod:`analysis.readers`) or the forms and events of a REDCap
export checked against its data dictionary (:mod:`analysis.redcap`).  The trial config maps
source columns to canonical names (``data.columns``) and coded values to canonical values
(``data.values``).

The rules are declared as data (``role_fields``: types, required fields, unique keys, allowed
codes, ranges) and checked column-wise (:mod:`analysis.validation`); cross-table rules
(referential integrity, consent <= baseline <= follow-up, visit windows, withdrawal) follow.
Problems are *data queries* naming the file, the record's line (header = line 1; spreadsheet
row; SPSS/Stata case), the participant, the column, the value and the rule:

* ``error`` queries stop the run (:class:`DataValidationError` lists them all at once);
* ``warning`` queries let the run continue and are listed in ``data_queries.csv`` and the
  report's appendix.

Nothing is changed silently: records excluded (e.g. dated after withdrawal of consent) are
each listed as a warning and counted in the ``exclusions`` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import DAYS_PER_MONTH
from analysis import redcap as rc
from analysis.readers import RawTable, read_file
from analysis.validation import (QUERY_COLUMNS, Collector, DataValidationError, Field, Query,  # noqa: F401
                                 blank_missing_codes, check_fields)

__all__ = ["ingest_trial", "DataValidationError", "Query", "QUERY_COLUMNS", "role_fields", "EXCLUSION_COLUMNS"]

SITE_COLUMNS = ["site_id", "client_group", "arm", "recruitment_start", "recruitment_end"]
PARTICIPANT_COLUMNS = ["participant_id", "site_id", "consent_date", "age", "sex",
                       "sessions_attended", "withdrawal_date", "withdrawal_reason"]
# typed participants table: the canonical columns, then the declared covariates
PARTICIPANT_OUTPUT = ["participant_id", "site_id", "arm", "client_group"] + PARTICIPANT_COLUMNS[2:]
SCREENING_COLUMNS = ["screening_id", "site_id", "screen_date", "eligible", "exclusion_reason",
                     "consented", "decline_reason", "participant_id"]
WAVE_FIXED_COLUMNS = ["participant_id", "visit_date"]
SERVICE_FIXED_COLUMNS = ["participant_id", "timepoint", "recall_start", "recall_end"]
FIDELITY_COLUMNS = ["site_id", "assessment_date", "fidelity_score"]
ADVERSE_EVENT_COLUMNS = ["participant_id", "event_date", "serious", "related"]
# An adverse-event log's free-text description is accepted in the file but never read on:
# no free text goes downstream of ingest.
ADVERSE_EVENT_FREE_TEXT = ["description"]
ITEM_PATTERN = re.compile(r"^(?P<instrument>[a-z0-9]+)_(?P<k>\d+)$")
EXCLUSION_COLUMNS = ["step", "reason", "timepoint", "arm", "n"]
_ORPHAN = "record for a participant who is not in the participants file (orphan)"


def role_fields(cfg: dict, site_ids=None) -> dict[str, list[Field]]:
    """The declared rules of every canonical table (``site_ids`` once the sites are known).

    A field's ``required`` means a blank value is an error *when the column is in the file*;
    which columns a file must have depends on the design (:func:`required_columns`)."""
    d = cfg["design"]
    arms = (d.get("control_arm"), d["intervention_arm"])
    sites = tuple(sorted(site_ids)) if site_ids is not None else None
    site = Field("site_id", "code", required=True, allowed=sites) if sites is not None else \
        Field("site_id", "text", required=True)
    tps = tuple(w["timepoint"] for w in cfg["data"]["waves"])
    return {
        "sites": [Field("site_id", "id", required=True, unique=True),
                  Field("client_group", "text", required=True),
                  Field("arm", "code", required=True, allowed=arms),
                  Field("recruitment_start", "date", required=True),
                  Field("recruitment_end", "date", required=True)],
        "participants": [Field("participant_id", "id", required=True, unique=True), site,
                         Field("arm", "code", required=True, allowed=arms),
                         Field("consent_date", "date", required=True),
                         Field("age", "int", min=16, max=110, range_rule="age must be 16-110 years"),
                         Field("sex", "code", allowed=("female", "male", "other")),
                         Field("sessions_attended", "int", min=0, range_rule="sessions cannot be negative"),
                         Field("withdrawal_date", "date"),
                         Field("withdrawal_reason", "text")] + covariate_fields(cfg),
        "screening": [Field("screening_id", "id", required=True, unique=True), site,
                      Field("screen_date", "date", required=True),
                      Field("eligible", "code", required=True, allowed=("yes", "no")),
                      Field("exclusion_reason", "text"),
                      Field("consented", "code", allowed=("yes", "no")),
                      Field("decline_reason", "text"),
                      Field("participant_id", "id", unique=True)],
        "waves": [Field("participant_id", "id", required=True, unique=True),
                  Field("visit_date", "date", required=True)],
        "service_use": [Field("participant_id", "id", required=True),
                        Field("timepoint", "code", required=True, allowed=tps),
                        Field("recall_start", "date", required=True),
                        Field("recall_end", "date", required=True)],
        "fidelity": [site, Field("assessment_date", "date", required=True),
                     Field("fidelity_score", "number", required=True, min=0, max=100,
                           range_rule="fidelity score must be a number 0-100")],
        "adverse_events": [Field("participant_id", "id", required=True),
                           Field("event_date", "date", required=True),
                           Field("serious", "code", required=True, allowed=("yes", "no")),
                           Field("related", "code", allowed=("yes", "no", "unknown"))],
    }


def _bounds_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    return f">= {lo:g}" if lo is not None else (f"<= {hi:g}" if hi is not None else "any finite number")


def covariate_fields(cfg: dict) -> list[Field]:
    """Rules of the declared participant-level covariates (``covariates``); stratification
    factors are required."""
    strat = set(cfg["design"].get("stratification") or [])
    out = []
    for name, spec in (cfg.get("covariates") or {}).items():
        req = bool(spec.get("required")) or name in strat
        if spec["type"] == "categorical":
            levels = tuple(str(v) for v in spec["levels"]) if spec.get("levels") else None
            out.append(Field(name, "code" if levels else "text", required=req, allowed=levels))
        else:
            lo, hi = spec.get("min"), spec.get("max")
            kind = "int" if spec.get("integer") else "number"
            out.append(Field(name, kind, required=req, min=lo, max=hi,
                             range_rule=f"covariate {name} must be {_bounds_text(lo, hi)}"
                             if lo is not None or hi is not None else None))
    return out


def prescored_fields(cfg: dict, timepoint: str | None = None) -> list[Field]:
    """Rules of the declared pre-scored outcome columns (``prescored``)."""
    out = []
    for name, spec in (cfg.get("prescored") or {}).items():
        lo, hi = spec.get("min"), spec.get("max")
        kind = "int" if spec.get("integer") else "number"
        what = spec.get("label") or name
        out.append(Field(name, kind, min=lo, max=hi,
                         range_rule=f"{what} must be {_bounds_text(lo, hi)}"
                         if lo is not None or hi is not None else None))
    return out


def prescored_expected(cfg: dict, timepoint: str) -> list[str]:
    """Pre-scored columns a wave file must have at ``timepoint``."""
    return [n for n, spec in (cfg.get("prescored") or {}).items()
            if spec.get("timepoints") is None or timepoint in spec["timepoints"]]


def required_columns(cfg: dict, role: str) -> list[str]:
    """Columns the design requires in each file (docs/designs.md)."""
    d = cfg["design"]
    typ = d["type"]
    if role == "sites":
        return ["site_id"] + (["arm"] if typ == "cluster" else [])
    if role == "participants":
        cols = ["participant_id"]
        if typ == "cluster" or cfg["data"].get("sites"):
            cols.append("site_id")
        if typ == "individual":
            cols.append("arm")
        strat = set(d.get("stratification") or [])
        cols += [n for n, spec in (cfg.get("covariates") or {}).items() if spec.get("required") or n in strat]
        return cols
    if role == "screening":
        return SCREENING_COLUMNS
    if role == "waves":
        return ["participant_id"]
    raise KeyError(role)


def item_rules(cfg: dict) -> dict[str, dict]:
    """Allowed codes and expected item columns of each configured instrument."""
    from analysis import instruments
    from analysis.config import register_trial_instruments

    register_trial_instruments(cfg)
    out = {}
    for inst, opts in (cfg.get("instruments") or {}).items():
        opts = dict(opts or {})
        if inst == "swemwbs" and opts.get("source") == "wemwbs":
            continue
        try:
            defn = instruments.get_definition(inst, opts.get("overrides"))
        except Exception:  # pragma: no cover - the scorer reports unknown instruments
            continue
        codes = [float(c) for c in defn["response"]["codes"]]
        missing = [str(m) for m in opts.get("missing_codes", [])]
        n_items = len(defn.get("items", []))
        out[inst] = dict(codes=codes, missing=missing, items=[f"{inst}_{k}" for k in range(1, n_items + 1)])
    return out


@dataclass
class _Context:
    cfg: dict
    raw: Path
    q: Collector
    exclusions: list = field(default_factory=list)
    export: RawTable | None = None
    dictionary: rc.Dictionary | None = None
    missing_code_count: int = 0

    @property
    def data(self) -> dict:
        return self.cfg["data"]

    @property
    def date_formats(self) -> list[str]:
        return list(self.data.get("date_formats") or ["%Y-%m-%d"])

    def is_redcap(self, file: str | None) -> bool:
        return bool(file) and file == (self.data.get("redcap") or {}).get("export")


def _load(ctx: _Context, role: str, file: str, known: list[str], *, free: str | None = None,
          events: list[str] | None = None, event_tp: dict | None = None) -> RawTable | None:
    """Read one role's source, rename its columns to canonical names, recode mapped values.

    ``known``: canonical columns of the role (required ones are checked by the caller's
    ``required`` list in :func:`_require`); ``free``: 'items' (wave item columns) or 'counts'
    (service-use count columns) for roles that take extra columns.
    """
    q, data = ctx.q, ctx.data
    mapping = dict((data.get("columns") or {}).get(role) or {})
    if ctx.is_redcap(file):
        if ctx.export is None:
            return None
        rcfg = data["redcap"]
        forms = list((rcfg.get("forms") or {}).get(role) or [])
        if not forms:
            q.add(file, None, "", "", "", f"data.redcap.forms.{role} names no REDCap form for the {role} table")
            return None
        mapping.setdefault("participant_id", rcfg["record_id"])
        t = rc.role_table(ctx.export, ctx.dictionary, forms, events, rcfg["record_id"], keep=set(mapping.values()))
        f = t.frame
        # a form holding data but saved as Incomplete is worth a look
        for fm in forms:
            cc = f"{fm}_complete"
            cols = [c for c in ctx.dictionary.export_columns([fm]) if c in f]
            if cc in f and cols:
                has = rc._filled(f, cols).to_numpy()
                q.add_many(t, has & (f[cc].str.strip() == "0").to_numpy(), cc,
                           f"form '{fm}' has data but is marked Incomplete (0)", "warning",
                           ids=f[rcfg["record_id"]].str.strip())
        if event_tp is not None and "redcap_event_name" in f:
            f = f.copy()
            f["timepoint"] = f.redcap_event_name.str.strip().map(event_tp).fillna("")
            t.frame = f
        if len(t.frame) == 0:
            q.add(file, None, "", "redcap_event_name", ", ".join(events or []),
                  f"no rows with data for REDCap event(s) {', '.join(events or ['(any)'])} and form(s) "
                  f"{', '.join(forms)} (check data.waves[].event and data.redcap.forms.{role})")
            return None
        drop = [c for c in t.frame.columns if c.startswith("redcap_") or
                (c.endswith("_complete") and c[:-9] in ctx.dictionary.forms)]
        t.frame = t.frame.drop(columns=drop)
    else:
        t = read_file(ctx.raw, file, q, (data.get("files") or {}).get(file))
        if t is None:
            return None
    f = t.frame
    f.columns = [str(c) for c in f.columns]
    missing_src = [src for can, src in mapping.items() if src not in f.columns and can not in f.columns]
    if missing_src:
        q.add(file, 1, "", ", ".join(missing_src), "",
              f"column(s) named in data.columns.{role} not found in the file")
        return None
    rename = {src: can for can, src in mapping.items() if src in f.columns and src != can}
    clash = [can for can in rename.values() if can in f.columns and can not in rename]
    if clash:
        q.add(file, 1, "", ", ".join(clash), "",
              f"data.columns.{role} maps another column onto a column the file already has")
        return None
    f = f.rename(columns=rename)
    t.labels = {rename.get(k, k): v for k, v in t.labels.items()}
    ignore = set((data.get("ignore_columns") or {}).get(role) or [])
    unexpected = [c for c in f.columns if c not in known and c not in ignore and c not in rename.values()]
    if free == "items":
        unexpected = [c for c in unexpected if not ITEM_PATTERN.match(c)]
        rule = "unexpected column (item columns are named <instrument>_<k>; map or ignore other columns)"
    else:
        rule = (f"unexpected column (not a column of the {role} table: map it in data.columns.{role} "
                f"or list it in data.ignore_columns.{role})")
    if free == "counts" or (len(f.columns) == 1 and any(sep in f.columns[0] for sep in ";\t|")):
        unexpected = []  # counts are free; a wrongly delimited header is reported as missing columns
    for c in unexpected:
        q.add(file, 1, "", c, "", rule)
    f = f.drop(columns=[c for c in f.columns if c in ignore and c not in known])
    # declared missing-data codes -> blank (counted), except in identifier columns
    ctx.missing_code_count += blank_missing_codes(f, data.get("missing_codes"),
                                                  ("participant_id", "site_id", "screening_id"))
    t.frame = f
    _recode(ctx, role, t)
    return t


def _recode(ctx: _Context, role: str, t: RawTable) -> None:
    """Apply data.values.<role>: every non-blank value needs a mapping (else an error)."""
    rules = (ctx.data.get("values") or {}).get(role) or {}
    for col, m in rules.items():
        if col not in t.frame:
            continue
        if m == "labels":
            m = t.labels.get(col)
            if not m:
                ctx.q.add(t.file, None, "", col, "", f"data.values.{role}.{col} asks for value labels "
                          "but the file declares none for this column")
                continue
            what = "code has no value label / dictionary choice"
        else:
            what = f"value has no mapping in data.values.{role}.{col}"
        m = {str(k): str(v) for k, v in m.items()}
        s = t.frame[col].str.strip()
        bad = (s != "") & ~s.isin(list(m))
        ctx.q.add_many(t, bad.to_numpy(), col, f"{what} (mapped: {', '.join(sorted(m)[:12])})", values=s,
                       ids=_ids(t))
        t.frame[col] = s.map(m).where(~bad & (s != ""), "").fillna("")


def _ids(t: RawTable):
    return t.frame["participant_id"].str.strip().to_numpy() if "participant_id" in t.frame else None


def _require(ctx: _Context, t: RawTable | None, required: list[str]) -> RawTable | None:
    if t is None:
        return None
    missing = [c for c in required if c not in t.frame.columns]
    if missing:
        hint = ""
        if len(t.frame.columns) == 1:
            h = t.frame.columns[0]
            for sep, nm in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
                if sep in h:
                    hint = f" (is the delimiter a comma? the header looks separated by {nm}: " \
                           f"set data.files.{t.file}.delimiter)"
                    break
            else:
                hint = " (is the delimiter a comma?)"
        ctx.q.add(t.file, 1, "", ", ".join(missing), "", f"required column(s) missing{hint}")
        return None
    if len(t.frame) == 0:
        ctx.q.add(t.file, None, "", "", "", "file has a header but no data rows")
        return None
    return t


def _id_match(ctx: _Context, t: RawTable, ids: pd.Series, known: set, rule: str, column="participant_id"):
    """Flag IDs missing from ``known``; say so when only case or spaces differ."""
    folded = {str(k).casefold(): k for k in known}
    bad = (ids != "") & ~ids.isin(known)
    if not bad.any():
        return bad.to_numpy()
    rules = np.array([rule] * len(ids), dtype=object)
    for i in np.flatnonzero(bad.to_numpy()):
        near = folded.get(ids.iat[i].casefold())
        if near is not None:
            rules[i] = (f"participant ID matches '{near}' only if upper/lower case is ignored "
                        "(IDs are case-sensitive: correct the ID)")
    ctx.q.add_many(t, bad.to_numpy(), column, rules, values=ids, ids=ids)
    return bad.to_numpy()


def _typed_rows(t: RawTable, typed: pd.DataFrame) -> pd.DataFrame:
    typed = typed.copy()
    typed["source_line"] = t.rows
    return typed


def _with_absent(parts: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """The typed participants with every canonical column, an absent one (not collected) as
    missing values of its type, so later rules can be written once."""
    parts = parts.copy()
    kinds = {f.name: f.kind for f in role_fields(cfg)["participants"]}
    for c in PARTICIPANT_OUTPUT[:1] + ["site_id", "arm"] + PARTICIPANT_COLUMNS[2:] + list(cfg.get("covariates") or {}):
        if c in parts:
            continue
        kind = kinds.get(c, "text")
        if kind == "date":
            parts[c] = pd.Series(pd.NaT, index=parts.index, dtype="datetime64[us]")
        elif kind == "int":
            parts[c] = pd.array([pd.NA] * len(parts), dtype="Int64")
        elif kind == "number":
            parts[c] = np.nan
        else:
            parts[c] = pd.array([None] * len(parts), dtype="str")
    return parts


def _allocate(parts: pd.DataFrame, sites: pd.DataFrame | None, cfg: dict) -> pd.DataFrame:
    """Each participant's arm (from the site in a cluster design, from the participants file in
    an individual design, the one arm in a single-arm study) and site-level client group."""
    d = cfg["design"]
    parts = parts.copy()
    if d["type"] == "cluster":
        parts["arm"] = parts.site_id.map(dict(zip(sites.site_id, sites.arm))).astype("str")
    elif d["type"] == "single_arm":
        parts["arm"] = pd.array([d["intervention_arm"]] * len(parts), dtype="str")
    if sites is not None and "client_group" in sites:
        parts["client_group"] = parts.site_id.map(dict(zip(sites.site_id, sites.client_group))).astype("str")
    else:
        parts["client_group"] = pd.array([None] * len(parts), dtype="str")
    return parts


def _collected_inputs(cfg: dict, sites_table: RawTable | None, dates: dict[str, bool],
                      prescored_seen: set[str]) -> dict[str, bool]:
    data = cfg["data"]
    cols = set(sites_table.frame.columns) if sites_table is not None else set()
    out = {"sites": bool(data.get("sites")),
           "client_group": "client_group" in cols,
           "recruitment_window": {"recruitment_start", "recruitment_end"} <= cols
           or bool(cfg["feasibility"].get("recruitment_period")),
           "screening": bool(data.get("screening")),
           "fidelity": bool(data.get("fidelity")),
           "service_use": bool(data.get("service_use")),
           "adverse_events": bool(data.get("adverse_events"))}
    out.update({f"visit_date:{tp}": ok for tp, ok in dates.items()})
    out.update({f"prescored:{c}": c in prescored_seen for c in cfg.get("prescored") or {}})
    return out


def collected_table(collected: dict[str, bool]) -> pd.DataFrame:
    """Which optional inputs the trial collected (``collected.csv``): the reports say "not
    collected" for the indicators that need a missing one, instead of computing them."""
    return pd.DataFrame({"input": list(collected), "collected": [bool(v) for v in collected.values()]},
                        columns=["input", "collected"])


def read_collected(path) -> dict[str, bool]:
    t = pd.read_csv(path, dtype={"input": str}, keep_default_na=False)
    return {r.input: str(r.collected).lower() == "true" for r in t.itertuples()}


def _plan_needs_columns(ctx: _Context, cfg: dict, part_cols: set[str], site_cols: set[str],
                        dates: dict[str, bool], service_cols: set[str] | None = None) -> None:
    """The analysis plan asks for something a file does not have: an error naming the file,
    the missing column and the config key that needs it (found before anything is written)."""
    q, data = ctx.q, cfg["data"]
    pf, sf = data["participants"], data.get("sites")

    def need(file, col, why):
        q.add(file, 1, "", col, "", f"column not in the file but needed by {why}")

    for i, c in enumerate(cfg["feasibility"]["progression_criteria"]):
        ind, key = c["indicator"], f"feasibility.progression_criteria[{i}] ({c.get('name') or c['indicator']})"
        if ind in ("intervention_receipt", "adherence") and "sessions_attended" not in part_cols:
            need(pf, "sessions_attended", key)
        if ind == "withdrawal" and "withdrawal_date" not in part_cols:
            need(pf, "withdrawal_date", key)
        if ind == "recruitment_rate" and not cfg["feasibility"].get("recruitment_period") and \
                not {"recruitment_start", "recruitment_end"} <= site_cols:
            need(sf or pf, "recruitment_start, recruitment_end", key + " (or set feasibility.recruitment_period)")
    if cfg["feasibility"].get("adherence_min_sessions") is not None and "sessions_attended" not in part_cols:
        need(pf, "sessions_attended", "feasibility.adherence_min_sessions (set it to null if attendance "
                                      "was not recorded)")
    for inst, opts in (cfg.get("instruments") or {}).items():
        if inst == "eq5d5l" and (opts or {}).get("method", "dsu") == "dsu":
            for c in ("age", "sex"):
                if c not in part_cols:
                    need(pf, c, "instruments.eq5d5l method dsu (the mapping depends on age and sex; "
                                "choose another method if they were not collected)")
    uses = list(cfg["primary"]["covariates"]) + list(cfg["outcomes"]["multiple_imputation"]["auxiliary"]) \
        + list(cfg["economics"]["multiple_imputation"]["auxiliary"]) \
        + [m["variable"] for m in cfg["outcomes"]["effect_modifiers"] if m.get("source", "linked") == "linked"]
    for c in dict.fromkeys(uses):
        if c in ("age", "sex") and c not in part_cols:
            need(pf, c, f"the analysis plan ({c} is used as a covariate, auxiliary variable or effect modifier)")
        if c == "client_group" and "client_group" not in site_cols:
            need(sf or "(no sites file)", "client_group", "the analysis plan (client_group is a site-level "
                                                          "covariate, auxiliary variable or effect modifier)")
    e = cfg["economics"]
    if e["enabled"] and service_cols is not None:
        for item in e["service_items"]:
            if item not in service_cols:
                need(data["service_use"], item, f"economics.service_items.{item}")
    if e["enabled"] and e["time_basis"] == "observed":
        for w in data["waves"]:
            if not dates.get(w["timepoint"], True):
                need(w["file"], "visit_date", "economics.time_basis: observed")


def ingest_trial(cfg: dict, raw_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Validate the raw files named in ``cfg`` and return typed tables.

    Returns a dict with ``sites``, ``participants``, ``screening``, ``responses`` (long: one row
    per participant and time point, item columns as nullable integers), ``service_use``,
    ``fidelity``, ``queries`` (every data query) and ``exclusions`` (step, reason, timepoint,
    arm, n: records excluded and rows not read, with reasons).  IDs are the trial's own; the
    ingest stage pseudonymises them.  Raises :class:`DataValidationError` if any error-level
    rule is broken.

    Each input file has its own reader below (``_read_<file>``), called in this order: a file's
    checks can use the files read before it (participants' sites, waves' consent dates).
    """
    ctx = _Context(cfg, Path(raw_dir or cfg["data"]["raw_dir"]), Collector())
    event_tp = _read_redcap(ctx)
    sites, st = _read_sites(ctx)
    rules = role_fields(cfg, set(sites.site_id.dropna()) if sites is not None else None)
    parts, pt, collected = _read_participants(ctx, rules, sites)
    known = set(parts.participant_id.dropna()) if parts is not None else set()
    screen = _read_screening(ctx, rules, parts, pt, known)
    person = parts.dropna(subset=["participant_id"]).drop_duplicates("participant_id").set_index("participant_id") \
        if parts is not None else None
    waves = _read_waves(ctx, rules, parts, known, person)
    service = _read_service_use(ctx, rules, parts, known, person, event_tp)
    fidelity = _read_fidelity(ctx, rules, sites)
    adverse = _read_adverse_events(ctx, rules, parts, known, person)
    _unused_redcap_rows(ctx, event_tp)
    if pt is not None:
        _plan_needs_columns(ctx, cfg, set(pt.frame.columns), set(st.frame.columns) if st is not None else set(),
                            waves.dates, set(service.columns) if service is not None else None)
    if ctx.q.errors:
        raise DataValidationError(ctx.q.errors)
    # typed outputs: canonical columns and order, independent of the source format
    tps = [w["timepoint"] for w in cfg["data"]["waves"]]
    parts = parts.sort_values("participant_id", kind="stable")[PARTICIPANT_OUTPUT + list(cfg.get("covariates") or {})] \
        .reset_index(drop=True)
    order = {p: i for i, p in enumerate(parts.participant_id)}
    collected.update(_collected_inputs(cfg, st, waves.dates, waves.prescored_seen))
    return {
        "sites": _sites_output(sites, parts, cfg["design"]["type"]),
        "participants": parts,
        "screening": _screening_output(screen),
        "responses": _responses_output(cfg, waves, tps, order),
        "service_use": _service_use_output(service, tps, order),
        "fidelity": fidelity[FIDELITY_COLUMNS].sort_values(["site_id", "assessment_date"], kind="stable")
        .reset_index(drop=True) if fidelity is not None else pd.DataFrame(columns=FIDELITY_COLUMNS),
        "adverse_events": _adverse_events_output(adverse, order),
        "queries": ctx.q.frame(),
        "exclusions": _exclusions_output(ctx),
        "collected": collected_table(collected),
    }


def _read_redcap(ctx: _Context) -> dict[str, str]:
    """The REDCap export and its data dictionary, when the trial has one (``ctx.export``,
    ``ctx.dictionary``); returns {REDCap event: time point}."""
    q, data, waves_cfg = ctx.q, ctx.data, ctx.data["waves"]
    rcfg = data.get("redcap") or {}
    if rcfg.get("export"):
        if not rcfg.get("dictionary"):
            q.add("(trial config: data.redcap)", None, "", "dictionary", "",
                  "a REDCap export needs its data dictionary (data.redcap.dictionary)")
            raise DataValidationError(q.errors)
        ctx.dictionary = rc.read_dictionary(ctx.raw, rcfg["dictionary"], q)
        export = read_file(ctx.raw, rcfg["export"], q, {"format": "csv", **((data.get("files") or {})
                                                                            .get(rcfg["export"]) or {})})
        forms = [fm for v in (rcfg.get("forms") or {}).values() for fm in v]
        if export is not None and ctx.dictionary is not None and \
                rc.check_export(export, ctx.dictionary, q, record_id=rcfg["record_id"], forms=forms,
                                date_formats=ctx.date_formats):
            export.kind = "redcap"
            ctx.export = export
        for w in waves_cfg:
            if ctx.is_redcap(w["file"]) and not w.get("event"):
                q.add("(trial config: data.waves)", None, "", "event", w["timepoint"],
                      "a wave read from the REDCap export needs its event (data.waves[].event)")
        if ctx.export is None or q.errors:
            raise DataValidationError(q.errors)
    return {w["event"]: w["timepoint"] for w in waves_cfg if w.get("event")}


def _read_sites(ctx: _Context) -> tuple[pd.DataFrame | None, RawTable | None]:
    """The sites file (required in a cluster design, optional otherwise): (typed, raw) or (None, None)."""
    q, cfg, f = ctx.q, ctx.cfg, ctx.data.get("sites")
    if not f:
        return None, None
    design = cfg["design"]["type"]
    st = _require(ctx, _load(ctx, "sites", f, SITE_COLUMNS), required_columns(cfg, "sites"))
    if st is None:
        raise DataValidationError(q.errors)
    if "arm" in st.frame and design != "cluster":
        q.add(f, 1, "", "arm", "", f"the sites file has an arm column but design.type is {design} "
              "(allocation was not by site): remove the column or list it in data.ignore_columns.sites")
    for c in ("recruitment_start", "recruitment_end"):
        other = "recruitment_end" if c == "recruitment_start" else "recruitment_start"
        if c in st.frame and other not in st.frame:
            q.add(f, 1, "", other, "", f"{c} is given without {other}: the recruitment window needs both")
    sites = check_fields(st, role_fields(cfg)["sites"], q, date_formats=ctx.date_formats)
    if {"recruitment_start", "recruitment_end"} <= set(sites.columns):
        bad = (sites.recruitment_end < sites.recruitment_start).to_numpy()
        q.add_many(st, bad, "recruitment_end", "recruitment ends before it starts")
    return sites, st


def _read_participants(ctx: _Context, rules: dict[str, list[Field]], sites: pd.DataFrame | None
                       ) -> tuple[pd.DataFrame | None, RawTable | None, dict[str, bool]]:
    """The participants file: (typed with each one's arm and client group, raw, {optional
    column: collected}); (None, None, {}) when it cannot be read."""
    q, cfg, data = ctx.q, ctx.cfg, ctx.data
    design = cfg["design"]["type"]
    f = data["participants"]
    rcfg = data.get("redcap") or {}
    enrol = [rcfg.get("enrolment_event") or data["waves"][0].get("event")] if ctx.is_redcap(f) else None
    known_cols = PARTICIPANT_COLUMNS + ["arm"] + list(cfg.get("covariates") or {})
    pt = _require(ctx, _load(ctx, "participants", f, known_cols, events=enrol),
                  required_columns(cfg, "participants"))
    if pt is None:
        return None, None, {}
    if "arm" in pt.frame and design == "single_arm":
        q.add(f, 1, "", "arm", "", "the participants file has an arm column but design.type is single_arm "
              "(no comparison group): remove the column or list it in data.ignore_columns.participants")
    parts = check_fields(pt, rules["participants"], q, id_col="participant_id", date_formats=ctx.date_formats)
    collected = {c: c in parts.columns for c in PARTICIPANT_COLUMNS[2:] + ["arm", "site_id"]}
    participant_columns_seen = {c for c in ("arm", "site_id") if collected.pop(c)}
    parts = _with_absent(parts, cfg)
    pid = parts.participant_id.fillna("")
    before = (parts.withdrawal_date < parts.consent_date).to_numpy()
    q.add_many(pt, before, "withdrawal_date", "withdrawal is dated before consent", ids=pid)
    if collected["withdrawal_date"] and collected["withdrawal_reason"]:
        no_reason = (parts.withdrawal_date.notna() & parts.withdrawal_reason.isna()).to_numpy()
        q.add_many(pt, no_reason, "withdrawal_reason", "withdrawal has no reason recorded", "warning", ids=pid)
        reason_no_date = (parts.withdrawal_date.isna() & parts.withdrawal_reason.notna()).to_numpy()
        q.add_many(pt, reason_no_date, "withdrawal_date", "withdrawal reason given without a withdrawal date",
                   ids=pid)
    elif collected["withdrawal_reason"]:
        q.add(f, 1, "", "withdrawal_date", "", "withdrawal_reason is given without withdrawal_date: a "
              "withdrawal needs its date")
    if design == "cluster" and "arm" in participant_columns_seen and sites is not None:
        site_arm = parts.site_id.map(dict(zip(sites.site_id, sites.arm)))
        clash = (parts.arm.notna() & site_arm.notna() & (parts.arm != site_arm)).to_numpy()
        q.add_many(pt, clash, "arm",
                   [f"arm differs from the arm of the participant's site ({s}: {a}) in the sites file "
                    "(cluster design: allocation is by site)" for s, a in zip(parts.site_id, site_arm)],
                   ids=pid)
    return _allocate(parts, sites, cfg), pt, collected


def _read_screening(ctx: _Context, rules: dict[str, list[Field]], parts: pd.DataFrame | None,
                    pt: RawTable | None, known: set) -> pd.DataFrame | None:
    """The screening log (optional), reconciled with the participants file."""
    q, f = ctx.q, ctx.data.get("screening")
    if not f:
        return None
    sc = _require(ctx, _load(ctx, "screening", f, SCREENING_COLUMNS), required_columns(ctx.cfg, "screening"))
    if sc is None:
        return None
    screen = check_fields(sc, rules["screening"], q, date_formats=ctx.date_formats)
    el, co = screen.eligible.fillna(""), screen.consented.fillna("")
    spid = screen.participant_id.fillna("")
    q.add_many(sc, ((el == "yes") & (co == "")).to_numpy(), "consented",
               "eligible person has no consent decision")
    q.add_many(sc, ((el == "no") & (co == "yes")).to_numpy(), "consented",
               "ineligible person recorded as consented", ids=spid)
    q.add_many(sc, ((el == "no") & screen.exclusion_reason.isna()).to_numpy(), "exclusion_reason",
               "ineligible without a reason", "warning")
    q.add_many(sc, ((co == "yes") & (spid == "")).to_numpy(), "participant_id",
               "consented person has no participant_id")
    q.add_many(sc, ((co != "yes") & (spid != "")).to_numpy(), "participant_id",
               "participant_id given for a person not recorded as consented", ids=spid)
    if parts is None:
        return screen
    _id_match(ctx, sc, spid, known, "screening log names a participant missing from the participants file")
    logged = set(spid[co == "yes"])
    # the CONSORT flow must reconcile: everyone enrolled was screened and consented
    q.add_many(pt, ~parts.participant_id.fillna("").isin(logged).to_numpy() &
               parts.participant_id.notna().to_numpy(), "participant_id",
               "participant has no consented entry in the screening log (the flow diagram would "
               "count fewer consented than enrolled: add the entry, or set data.screening: null "
               "if the log is incomplete)",
               values=parts.participant_id, ids=parts.participant_id.fillna(""))
    # the same person in two files must agree: site, and screening before consent
    who = parts.drop_duplicates("participant_id").set_index("participant_id")
    lnk = (co == "yes") & spid.isin(known)
    p_site = spid.map(who.site_id)
    clash = (lnk & screen.site_id.notna() & p_site.notna() & (screen.site_id != p_site)).to_numpy()
    q.add_many(sc, clash, "site_id",
               [f"screening log puts the participant at site {a} but the participants file at "
                f"site {b}" for a, b in zip(screen.site_id, p_site)], ids=spid)
    late = (lnk & (screen.screen_date > spid.map(who.consent_date))).to_numpy()
    q.add_many(sc, late, "screen_date",
               [f"screened after consenting (consent dated {c:%Y-%m-%d})" if pd.notna(c) else ""
                for c in spid.map(who.consent_date)], ids=spid)
    return screen


@dataclass
class _Waves:
    """What the questionnaire waves gave: one typed table per wave (records kept), the item
    columns seen (first-seen order), the pre-scored columns seen, {time point: visit_date given}."""
    frames: list = field(default_factory=list)
    items: list = field(default_factory=list)
    prescored_seen: set = field(default_factory=set)
    dates: dict = field(default_factory=dict)


def _read_waves(ctx: _Context, rules: dict[str, list[Field]], parts: pd.DataFrame | None, known: set,
                person: pd.DataFrame | None) -> _Waves:
    """Every questionnaire wave: items against their instruments' codes, visit dates against
    consent, withdrawal, baseline, the previous wave and the visit window."""
    cfg, out_waves = ctx.cfg, _Waves()
    irules = item_rules(cfg)
    pre = list(cfg.get("prescored") or {})
    visits: dict[str, pd.Series | None] = {"baseline": None, "previous": None}
    for w in ctx.data["waves"]:
        f = w["file"]
        ev = [w["event"]] if ctx.is_redcap(f) else None
        wt = _require(ctx, _load(ctx, "waves", f, WAVE_FIXED_COLUMNS + pre, free="items", events=ev),
                      required_columns(cfg, "waves"))
        if wt is None:
            continue
        out_waves.dates[w["timepoint"]] = "visit_date" in wt.frame.columns
        items = [c for c in wt.frame.columns if c not in WAVE_FIXED_COLUMNS and c not in pre and ITEM_PATTERN.match(c)]
        typed = check_fields(wt, rules["waves"] + _wave_item_fields(ctx, w, wt, items, irules) + prescored_fields(cfg),
                             ctx.q, id_col="participant_id", date_formats=ctx.date_formats)
        if "visit_date" not in typed:
            typed["visit_date"] = pd.Series(pd.NaT, index=typed.index, dtype="datetime64[us]")
        out = _typed_rows(wt, typed)
        for c in pre:
            if c in out:
                out[c] = pd.to_numeric(out[c]).astype(float)
                out_waves.prescored_seen.add(c)
        out["timepoint"] = w["timepoint"]
        out["month"] = np.nan if w["month"] is None else float(w["month"])
        keep = _check_wave_dates(ctx, w, wt, out, parts, known, person, visits)
        out_waves.items += [c for c in items if c not in out_waves.items]
        out_waves.frames.append(out[keep])
    return out_waves


def _wave_item_fields(ctx: _Context, w: dict, wt: RawTable, items: list[str], irules: dict) -> list[Field]:
    """The wave's item columns as fields with their instruments' allowed codes (declared
    missing-data codes blanked); a query for missing pre-scored columns and for each instrument
    whose items are missing."""
    q, f = ctx.q, w["file"]
    expected = prescored_expected(ctx.cfg, w["timepoint"])
    absent = [c for c in expected if c not in wt.frame.columns]
    if absent:
        q.add(f, 1, "", ", ".join(absent), "",
              f"declared pre-scored column(s) missing at time point {w['timepoint']} (prescored.<name>: "
              "map the file's column in data.columns.waves, or list the time points where it was "
              "measured in prescored.<name>.timepoints)")
    for inst, r in irules.items():
        miss = [c for c in r["items"] if c not in items]
        if miss and len(miss) < len(r["items"]):
            q.add(f, 1, "", ", ".join(miss), "", f"item column(s) of instrument {inst} missing")
        elif miss:
            q.add(f, 1, "", f"{inst}_1..{inst}_{len(r['items'])}", "",
                  f"configured instrument {inst} has no item columns in this wave (not scored here)",
                  "warning")
    item_fields = []
    for c in items:
        inst = ITEM_PATTERN.match(c)["instrument"]
        r = irules.get(inst)
        if r:
            ctx.missing_code_count += blank_missing_codes(wt.frame, r["missing"], columns=[c])
        allowed = tuple(r["codes"]) if r else None
        item_fields.append(Field(c, "int", allowed=allowed,
                                 range_rule=None if r is None else
                                 f"code not allowed for {inst} (allowed: "
                                 f"{', '.join(str(int(x)) if x.is_integer() else str(x) for x in r['codes'])})"))
    return item_fields


def _check_wave_dates(ctx: _Context, w: dict, wt: RawTable, out: pd.DataFrame, parts: pd.DataFrame | None,
                      known: set, person: pd.DataFrame | None, visits: dict) -> np.ndarray:
    """Queries on one wave's participant IDs and visit dates; returns the records kept (those
    after withdrawal are excluded unless data.after_withdrawal is keep).  ``visits`` carries
    each participant's baseline and latest visit date from wave to wave."""
    q = ctx.q
    pid = out.participant_id.fillna("")
    orphan = _id_match(ctx, wt, pid, known, _ORPHAN) if parts is not None else np.zeros(len(out), bool)
    keep = np.ones(len(out), dtype=bool)
    if person is not None:
        cd = pid.map(person.consent_date)
        q.add_many(wt, (out.visit_date < cd).to_numpy(), "visit_date", "visit is dated before consent",
                   values=wt.frame.get("visit_date"), ids=pid)
        wd = pid.map(person.withdrawal_date)
        after = (out.visit_date > wd).to_numpy()
        if ctx.data.get("after_withdrawal", "exclude") == "exclude":
            q.add_many(wt, after, "visit_date", "visit after withdrawal: record excluded from analysis",
                       "warning", values=wt.frame.get("visit_date"), ids=pid)
            keep &= ~after
            _count_excluded(ctx, "questionnaire record dated after withdrawal of consent",
                            w["timepoint"], pid[after].map(person.arm))
        else:
            q.add_many(wt, after, "visit_date", "visit after withdrawal: record kept (after_withdrawal: keep)",
                       "warning", values=wt.frame.get("visit_date"), ids=pid)
    baseline_dates = visits["baseline"]
    if baseline_dates is None:
        # a duplicated participant is already a "duplicate identifier" query: map by the first
        visits["baseline"] = visits["previous"] = \
            out[keep & ~orphan].drop_duplicates("participant_id").set_index("participant_id").visit_date
        return keep
    bd = pid.map(baseline_dates)
    q.add_many(wt, (out.visit_date <= bd).to_numpy(), "visit_date",
               "follow-up visit is not after the baseline visit", values=wt.frame.get("visit_date"), ids=pid)
    pd_ = pid.map(visits["previous"])
    q.add_many(wt, ((out.visit_date <= pd_) & ~(out.visit_date <= bd)).to_numpy(), "visit_date",
               "visit is not after the previous time point's visit", values=wt.frame.get("visit_date"), ids=pid)
    no_bl = (pid != "") & ~pid.isin(baseline_dates.index) & ~orphan
    q.add_many(wt, no_bl.to_numpy(), "participant_id", "follow-up record without a baseline record",
               "warning", ids=pid)
    win = w.get("window_days")
    if win:
        target = bd + pd.to_timedelta(round(float(w["month"]) * DAYS_PER_MONTH), unit="D")
        off = ((out.visit_date < target - pd.to_timedelta(win[0], unit="D")) |
               (out.visit_date > target + pd.to_timedelta(win[1], unit="D"))).to_numpy()
        q.add_many(wt, off, "visit_date",
                   f"visit outside its window ({win[0]:g} days before to {win[1]:g} days after "
                   f"month {w['month']:g}): kept", "warning", values=wt.frame.get("visit_date"), ids=pid)
    cur = out[keep & ~orphan].drop_duplicates("participant_id").set_index("participant_id").visit_date
    visits["previous"] = cur.combine_first(visits["previous"])
    return keep


def _read_service_use(ctx: _Context, rules: dict[str, list[Field]], parts: pd.DataFrame | None, known: set,
                      person: pd.DataFrame | None, event_tp: dict[str, str]) -> pd.DataFrame | None:
    """The service-use file (optional): counts per participant and time point."""
    q, f = ctx.q, ctx.data.get("service_use")
    if not f:
        return None
    ev = sorted(event_tp) if ctx.is_redcap(f) else None
    su = _require(ctx, _load(ctx, "service_use", f, SERVICE_FIXED_COLUMNS, free="counts", events=ev,
                             event_tp=event_tp if ctx.is_redcap(f) else None), SERVICE_FIXED_COLUMNS)
    if su is None:
        return None
    counts = [c for c in su.frame.columns if c not in SERVICE_FIXED_COLUMNS]
    cfields = [Field(c, "int", min=0, range_rule="count cannot be negative") for c in counts]
    service = check_fields(su, rules["service_use"] + cfields, q, id_col="participant_id",
                           date_formats=ctx.date_formats)
    pid = service.participant_id.fillna("")
    orphan = _id_match(ctx, su, pid, known, _ORPHAN) if parts is not None else None
    dup = (pid + "|" + service.timepoint.fillna("")).duplicated().to_numpy() & (pid != "").to_numpy()
    q.add_many(su, dup, "timepoint", "duplicate participant and time point", ids=pid)
    q.add_many(su, (service.recall_end < service.recall_start).to_numpy(), "recall_end",
               "recall period ends before it starts", ids=pid)
    if person is not None:
        wd = pid.map(person.withdrawal_date)
        after = (service.recall_end > wd).to_numpy() & ~orphan
        if ctx.data.get("after_withdrawal", "exclude") == "exclude" and after.any():
            q.add_many(su, after, "recall_end",
                       "service use recorded after withdrawal: record excluded from analysis",
                       "warning", ids=pid)
            for tp in (w["timepoint"] for w in ctx.data["waves"]):
                m = after & (service.timepoint == tp).to_numpy()
                _count_excluded(ctx, "service-use record dated after withdrawal of consent", tp,
                                pid[m].map(person.arm))
            service = service[~after]
    return service[SERVICE_FIXED_COLUMNS + counts]


def _read_fidelity(ctx: _Context, rules: dict[str, list[Field]], sites: pd.DataFrame | None) -> pd.DataFrame | None:
    """The fidelity assessments (optional), by site."""
    f = ctx.data.get("fidelity")
    if not f:
        return None
    ft = _require(ctx, _load(ctx, "fidelity", f, FIDELITY_COLUMNS), FIDELITY_COLUMNS)
    if ft is None:
        return None
    fidelity = check_fields(ft, rules["fidelity"], ctx.q, date_formats=ctx.date_formats)
    if ctx.cfg["design"]["type"] == "cluster":
        arm_of = dict(zip(sites.site_id, sites.arm))
        ctrl = fidelity.site_id.map(arm_of) == ctx.cfg["design"].get("control_arm")
        ctx.q.add_many(ft, ctrl.to_numpy(), "site_id", "fidelity assessed at a control-arm site", "warning")
    return fidelity


def _read_adverse_events(ctx: _Context, rules: dict[str, list[Field]], parts: pd.DataFrame | None, known: set,
                         person: pd.DataFrame | None) -> pd.DataFrame | None:
    """The adverse events (optional), checked against the participants' consent dates."""
    f = ctx.data.get("adverse_events")
    if not f:
        return None
    at = _require(ctx, _load(ctx, "adverse_events", f, ADVERSE_EVENT_COLUMNS + ADVERSE_EVENT_FREE_TEXT),
                  ADVERSE_EVENT_COLUMNS[:3])
    if at is None:
        return None
    adverse = check_fields(at, rules["adverse_events"], ctx.q, id_col="participant_id",
                           date_formats=ctx.date_formats)
    pid = adverse.participant_id.fillna("")
    orphan = _id_match(ctx, at, pid, known, _ORPHAN) if parts is not None else np.zeros(len(pid), bool)
    if person is not None:
        before = (adverse.event_date < pid.map(person.consent_date)).to_numpy() & ~orphan
        ctx.q.add_many(at, before, "event_date", "adverse event dated before consent: kept", "warning",
                       values=at.frame.event_date, ids=pid)
    return adverse


def _unused_redcap_rows(ctx: _Context, event_tp: dict[str, str]) -> None:
    """Rows of the REDCap export that no configured event and form reads, as exclusions."""
    if ctx.export is None:
        return
    rcfg = ctx.data.get("redcap") or {}
    used_forms = {fm for v in (rcfg.get("forms") or {}).values() for fm in v}
    used_events = set(event_tp) | {rcfg.get("enrolment_event") or ctx.data["waves"][0].get("event")}
    for r in rc.unused_rows(ctx.export, used_events, used_forms, ctx.dictionary):
        ctx.exclusions.append(dict(step="ingest", reason=r["reason"], timepoint="", arm="all", n=r["n"]))


def _sites_output(sites: pd.DataFrame | None, parts: pd.DataFrame, design: str) -> pd.DataFrame:
    if sites is None:  # centres (if any) known only from the participants file
        sites = pd.DataFrame({"site_id": pd.array(sorted(parts.site_id.dropna().unique()), dtype="str")})
    for c in SITE_COLUMNS:
        if c not in sites:
            sites[c] = pd.Series(pd.NaT, index=sites.index, dtype="datetime64[us]") if c.startswith("recruitment") \
                else pd.array([None] * len(sites), dtype="str")
    sites = sites[SITE_COLUMNS].reset_index(drop=True)
    if design != "cluster":
        sites["arm"] = pd.array([None] * len(sites), dtype="str")
    return sites


def _screening_output(screen: pd.DataFrame | None) -> pd.DataFrame:
    if screen is None:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in SCREENING_COLUMNS})
    screen = screen[SCREENING_COLUMNS].sort_values("screening_id", kind="stable").reset_index(drop=True)
    screen["eligible"] = screen.eligible == "yes"
    screen["consented"] = screen.consented.map({"yes": True, "no": False}).astype("boolean")
    return screen


def _responses_output(cfg: dict, waves: _Waves, tps: list[str], order: dict[str, int]) -> pd.DataFrame:
    responses = pd.concat(waves.frames, ignore_index=True)
    pre = [c for c in (cfg.get("prescored") or {}) if c in waves.prescored_seen]
    responses = responses[["participant_id", "timepoint", "month", "visit_date", "source_line"]
                          + [c for c in waves.items if c in responses.columns] + pre]
    responses["_tp"] = responses.timepoint.map({t: i for i, t in enumerate(tps)})
    responses["_p"] = responses.participant_id.map(order)
    responses = responses.sort_values(["_tp", "_p"], kind="stable").drop(columns=["_tp", "_p"]).reset_index(drop=True)
    responses["timepoint"] = responses.timepoint.astype("str")
    for c in waves.items:
        if c in responses:
            responses[c] = responses[c].astype("Int64")
    return responses


def _service_use_output(service: pd.DataFrame | None, tps: list[str], order: dict[str, int]) -> pd.DataFrame:
    if service is None:
        return pd.DataFrame(columns=SERVICE_FIXED_COLUMNS)
    service = service.assign(_tp=service.timepoint.map({t: i for i, t in enumerate(tps)}),
                             _p=service.participant_id.map(order))
    return service.sort_values(["_tp", "_p"], kind="stable").drop(columns=["_tp", "_p"]).reset_index(drop=True)


def _adverse_events_output(adverse: pd.DataFrame | None, order: dict[str, int]) -> pd.DataFrame:
    if adverse is None:
        return pd.DataFrame(columns=ADVERSE_EVENT_COLUMNS)
    adverse = adverse[[c for c in ADVERSE_EVENT_COLUMNS if c in adverse]].reindex(columns=ADVERSE_EVENT_COLUMNS)
    return adverse.assign(_p=adverse.participant_id.map(order)) \
        .sort_values(["_p", "event_date"], kind="stable").drop(columns="_p").reset_index(drop=True)


def _exclusions_output(ctx: _Context) -> pd.DataFrame:
    if ctx.missing_code_count:
        ctx.exclusions.append(dict(step="ingest", reason="values equal to a declared missing-data code read as blank",
                                   timepoint="", arm="all", n=ctx.missing_code_count))
    exclusions = pd.DataFrame(ctx.exclusions, columns=EXCLUSION_COLUMNS)
    if len(exclusions):
        exclusions = exclusions.groupby(["step", "reason", "timepoint", "arm"], sort=False, as_index=False).n.sum()
    return exclusions[EXCLUSION_COLUMNS].astype({"n": "int64"})


def _count_excluded(ctx: _Context, reason: str, timepoint: str, arm_of_rows: pd.Series):
    if not len(arm_of_rows):
        return
    for a, n in arm_of_rows.astype(str).value_counts().sort_index().items():
        ctx.exclusions.append(dict(step="ingest", reason=reason, timepoint=timepoint, arm=a, n=int(n)))
