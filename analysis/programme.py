"""Community programme monitoring (``design.type: programme``; docs/designs.md).

An asset-based community programme (shaped like Stoke-on-Trent's C2 programme) is monitored
with *aggregate* counts, not participants: per neighbourhood and quarter, residents reached and
engaged, partnerships established, volunteers, volunteer hours and additional funding secured.
This module reads and validates those tables, compares cumulative totals with the config's
targets (RAG bands), compares a before/after resident survey (ONS4, SWEMWBS), values the change
in life satisfaction in WELLBYs and sets the programme's costs against its outputs.  No
individual-level model is fitted: the counts are what was collected and are reported as such.

* **Cumulative figures.**  An indicator with ``aggregation: sum`` counts new things each
  quarter (its cumulative figure at quarter q is the sum over neighbourhoods and quarters up to
  q); ``latest`` counts what is current (volunteers active: the figure at q is q's value summed
  over neighbourhoods).  A neighbourhood-quarter whose count was not recorded (blank cell or
  absent row) is never read as zero: the figure is the sum of what was recorded and the row
  says how many neighbourhood-quarters are missing; its RAG rating is then "incomplete".  A
  quarter before a neighbourhood's declared start (``programme.neighbourhoods``) is outside the
  grid: neither counted nor missing.  A target may name a neighbourhood: it is then rated on
  that neighbourhood's own figure.
* **RAG.**  achieved / target >= ``rag.green`` is green, >= ``rag.amber`` amber, else red.
* **Survey change.**  The design is declared (``programme.survey.design``), never guessed
  from the data: ``independent`` cross-sections (Welch's t interval; a respondent_id in both
  waves is a data error at ingest) or ``paired`` (the respondents with both questionnaires
  compared with a paired t interval; the numbers matched and left out are reported).
* **WELLBY.**  change in mean life satisfaction x residents engaged x years x value per WELLBY
  (HM Treasury 2021: GBP 13,000, range 10,000-16,000, 2019 prices), through
  :func:`analysis.economics.wellby_value`.  A before/after change in one group is not an effect
  of the programme: the estimate is labelled as an upper-bound style illustration with its
  assumptions listed.
* **Value for money.**  Total cost (every item sourced, inflated to one price year with the
  NHS cost inflation index of :mod:`analysis.costs`) per resident engaged, per volunteer hour
  and per point of wellbeing gained.  No SROI ratio is computed.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.readers import read_file
from analysis.validation import Collector, DataValidationError, Field, blank_missing_codes, check_fields

QUARTER_RE = re.compile(r"^([0-9]{4})Q([1-4])$")
WAVES = ("before", "after")
ONS4_ITEMS = [f"ons4_{k}" for k in range(1, 5)]
SWEMWBS_ITEMS = [f"swemwbs_{k}" for k in range(1, 8)]
FUNDING_INDICATOR = "funding_gbp"
SCORE_LABELS = {"ons4_life_satisfaction": "ONS4 life satisfaction (0-10)", "ons4_worthwhile": "ONS4 worthwhile (0-10)",
                "ons4_happiness": "ONS4 happiness (0-10)", "ons4_anxiety": "ONS4 anxiety (0-10, lower is better)",
                "swemwbs_total": "SWEMWBS raw total (7-35)", "swemwbs_metric": "SWEMWBS metric score (7-35)"}
NOT_COLLECTED = "not collected"


def not_analysed(outcome: str) -> str:
    """Why a survey score has no figure although the survey was collected."""
    return f"{outcome} is not among programme.survey.outcomes: not analysed (the resident survey was collected)"

# keys of participant-level designs: a programme config that gives one is refused (nothing
# participant-level runs, so the key would silently do nothing)
PARTICIPANT_KEYS = ("primary", "outcomes", "feasibility", "propensity", "covariates", "instruments", "prescored",
                    "instrument_definitions")
PARTICIPANT_DATA_KEYS = ("sites", "participants", "screening", "service_use", "fidelity", "adverse_events", "waves",
                         "redcap")


# ---- the plan ------------------------------------------------------------------------------------

def programme_plan_problems(raw: dict, cfg: dict) -> list[str]:
    """Inconsistencies of a programme config (``raw``: the file as written; ``cfg``: validated,
    defaults filled).  Empty when the plan can run."""
    why = ("design.type programme analyses aggregate monitoring counts and a before/after resident survey; "
           "no participant-level analysis (mixed model, feasibility, imputation) runs, so the key would do "
           "nothing: remove it (docs/designs.md, 'Community programme monitoring')")
    probs = [f"config key {k}: {why}" for k in PARTICIPANT_KEYS if k in raw]
    for k in ("economics", "planning", "value_for_money"):
        if ((raw.get(k) or {}).get("enabled")):
            probs.append(f"config key {k}.enabled: {why}; costs and value for money of a programme are "
                         "programme.costs")
    for k in PARTICIPANT_DATA_KEYS:
        if k in (raw.get("data") or {}):
            probs.append(f"config key data.{k}: {why}")
    if cfg.get("blinded"):
        probs.append("config key blinded: a programme design has no allocation to blind")
    if (raw.get("data") or {}).get("funding") and not cfg["programme"]["funding_sources"]:
        probs.append("config key programme.funding_sources: list the categories the funding table's source column "
                     "may take (data.funding is given); the source is printed on the funder summary, so it must be "
                     "a category from the plan, never free text")
    p, data = cfg["programme"], cfg["data"]
    if not data.get("monitoring"):
        probs.append("config key data.monitoring: a programme design needs the monitoring table "
                     "(neighbourhood x quarter counts)")
    ids = [i["id"] for i in p["indicators"]]
    if not ids:
        probs.append("config key programme.indicators: declare at least one indicator (a column of the "
                     "monitoring table)")
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        probs.append(f"config key programme.indicators: indicator ids must be unique, repeated: {dup}")
    if FUNDING_INDICATOR in ids and not data.get("funding"):
        probs.append(f"config key programme.indicators: {FUNDING_INDICATOR} is the funding table's total, "
                     "but data.funding is null")
    for n, i in enumerate(p["indicators"]):
        if i["id"] in ("neighbourhood", "quarter"):
            probs.append(f"config key programme.indicators[{n}].id: {i['id']!r} is a key column, not an indicator")
    seen = set()
    for n, t in enumerate(p["targets"]):
        if t["indicator"] not in ids:
            probs.append(f"config key programme.targets[{n}].indicator: {t['indicator']!r} is not an id of "
                         f"programme.indicators ({ids})")
        key = (t["indicator"], t["period"], t.get("neighbourhood"))
        if key in seen:
            where = f" for neighbourhood {key[2]}" if key[2] is not None else ""
            probs.append(f"config key programme.targets[{n}]: a second target for {t['indicator']} in "
                         f"{t['period']}{where}")
        seen.add(key)
    probs += _neighbourhood_problems(p)
    if p["rag"]["amber"] > p["rag"]["green"]:
        probs.append(f"config key programme.rag.amber: {p['rag']['amber']} must not exceed programme.rag.green "
                     f"({p['rag']['green']})")
    probs += _denominator_problems(p, ids)
    w = p["wellby"]
    if not w["low"] <= w["value"] <= w["high"]:
        probs.append(f"config key programme.wellby: low <= value <= high is required, got {w['low']}, "
                     f"{w['value']}, {w['high']}")
    from analysis.costs import CostError, _check_year
    for n, c in enumerate(p["costs"]):
        try:
            _check_year(c["price_year"], f"config key programme.costs[{n}].price_year")
        except CostError as e:
            probs.append(str(e))
    try:
        _check_year(p["price_year"], "config key programme.price_year")
    except CostError as e:
        probs.append(str(e))
    if p["costs"] and not probs:
        from analysis.costs import inflation_factor, load_inflation_index
        index = load_inflation_index()
        for n, c in enumerate(p["costs"]):
            try:
                inflation_factor(c["price_year"], p["price_year"], index)
            except CostError as e:
                probs.append(f"config key programme.costs[{n}].price_year ({c['price_year']} to programme.price_year "
                             f"{p['price_year']}): {str(e).split(';')[0]}; costs are inflated with the NHS cost "
                             "inflation index (analysis/data/nhscii_pay_prices.csv)")
    return probs


ALL_NEIGHBOURHOODS = "all"


def _neighbourhood_problems(p: dict) -> list[str]:
    """programme.neighbourhoods: unique ids, 'all' reserved (the targets table's word for a
    programme-wide target); a target naming a neighbourhood needs it declared, and may not fall
    before the neighbourhood's declared start."""
    probs = []
    hoods = [h["id"] for h in p["neighbourhoods"]]
    dup = sorted({h for h in hoods if hoods.count(h) > 1})
    if dup:
        probs.append(f"config key programme.neighbourhoods: neighbourhood ids must be unique, repeated: {dup}")
    for n, h in enumerate(hoods):
        if h.strip().lower() == ALL_NEIGHBOURHOODS:
            probs.append(f"config key programme.neighbourhoods[{n}].id: {h!r} is reserved (the targets table lists "
                         "programme-wide targets as 'all'); rename the neighbourhood")
    start = {h["id"]: h.get("start") for h in p["neighbourhoods"]}
    for n, t in enumerate(p["targets"]):
        h = t.get("neighbourhood")
        if h is None:
            continue
        if h.strip().lower() == ALL_NEIGHBOURHOODS:
            probs.append(f"config key programme.targets[{n}].neighbourhood: {h!r}: a programme-wide target has no "
                         "neighbourhood key (the targets table shows it as 'all'); remove the key")
        elif not hoods:
            probs.append(f"config key programme.targets[{n}].neighbourhood: {h!r} names a neighbourhood, but "
                         "programme.neighbourhoods is not given: declare the neighbourhoods (id, start) to set a "
                         "target for one of them")
        elif h not in start:
            probs.append(f"config key programme.targets[{n}].neighbourhood: {h!r} is not an id of "
                         f"programme.neighbourhoods ({hoods})")
        elif start[h] and QUARTER_RE.match(t["period"]) and quarter_index(t["period"]) < quarter_index(start[h]):
            probs.append(f"config key programme.targets[{n}].period: {t['period']} is before {h}'s start quarter "
                         f"{start[h]} (programme.neighbourhoods): the neighbourhood was not yet in the programme")
    return probs


def _denominator_problems(p: dict, ids: list[str]) -> list[str]:
    """programme.engaged_indicator and programme.volunteer_hours_indicator must be indicators
    counting new things each quarter (aggregation sum): their cumulative figure is the WELLBY's
    residents and the cost-per-unit denominator, which a ``latest`` indicator would make the
    last quarter's count only."""
    probs = []
    aggregation = {i["id"]: i["aggregation"] for i in p["indicators"]}
    for k, use in (("engaged_indicator", "the residents the WELLBY value applies to and the denominator of the "
                    "cost per resident engaged and per point gained"),
                   ("volunteer_hours_indicator", "the denominator of the cost per volunteer hour")):
        if p[k] is None:
            continue
        if p[k] not in ids:
            probs.append(f"config key programme.{k}: {p[k]!r} is not an id of programme.indicators ({ids})")
        elif aggregation[p[k]] != "sum":
            probs.append(f"config key programme.{k}: indicator {p[k]!r} has aggregation {aggregation[p[k]]!r}, but "
                         f"its cumulative figure is {use}: it must count new things each quarter, summed over the "
                         "quarters (aggregation: sum); a 'latest' figure would be the last quarter's count only")
    return probs


# ---- reading and validating the raw tables -------------------------------------------------------

def quarter_index(q: str) -> int:
    m = QUARTER_RE.match(q)
    return int(m.group(1)) * 4 + int(m.group(2)) - 1


def quarter_label(i: int) -> str:
    return f"{i // 4}Q{i % 4 + 1}"


def _grid_quarters(monitoring: pd.DataFrame, declared: list[dict]) -> set[str]:
    """The quarters of the monitoring grid (quarterly_grid): from the first quarter monitored or
    declared as a start to the last quarter monitored, gaps included; quarters written wrongly
    (already reported) are ignored."""
    seen = [quarter_index(x) for x in monitoring.quarter.dropna().astype(str) if QUARTER_RE.fullmatch(x)]
    starts = [quarter_index(h["start"]) for h in declared or [] if h.get("start")]
    if not seen:
        return set()
    return {quarter_label(i) for i in range(min(seen + starts), max(seen) + 1)}


def _check_quarters(table, q: Collector, col: str = "quarter") -> None:
    s = table.frame[col].astype(str).str.strip()
    bad = (s != "") & ~s.str.match(QUARTER_RE.pattern)
    q.add_many(table, bad.to_numpy(), col, "quarter must be written YYYYQn (e.g. 2024Q1)", values=s)


def _unknown_columns(table, known: list[str], q: Collector, role: str) -> None:
    for c in table.frame.columns:
        if c not in known:
            q.add(table.file, None, "", c, "", f"unknown column in the {role} table (expected: {', '.join(known)}); "
                  "declare it under programme.indicators or remove it")


def _missing_columns(table, needed: list[str], q: Collector, role: str, why: str = "") -> bool:
    missing = [c for c in needed if c not in table.frame.columns]
    for c in missing:
        q.add(table.file, None, "", c, "", f"required column missing from the {role} table{why}")
    return not missing


def _duplicates(table, typed: pd.DataFrame, keys: list[str], q: Collector, what: str, ids=None) -> None:
    dup = typed.duplicated(keys, keep="first") & typed[keys].notna().all(axis=1)
    vals = typed[keys].astype(object).where(typed[keys].notna(), "").astype(str).agg(" ".join, axis=1)
    q.add_many(table, dup.to_numpy(), keys[-1], f"a second row for the same {what}", values=vals, ids=ids)


def read_programme(cfg: dict, raw_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """The programme's typed tables: monitoring (neighbourhood, quarter, one column per
    indicator, source_line), funding (neighbourhood, quarter, source, amount_gbp) and survey
    (respondent: an integer code, never the raw ID; neighbourhood, wave, items).

    Every broken rule becomes a query naming file, line, column, value and rule; any error
    raises :class:`DataValidationError` listing them all, before anything is written."""
    raw_dir = Path(raw_dir or cfg["data"]["raw_dir"])
    data, p = cfg["data"], cfg["programme"]
    options = data.get("files") or {}
    q = Collector()
    out: dict[str, pd.DataFrame] = {}
    counts = [i["id"] for i in p["indicators"] if i["id"] != FUNDING_INDICATOR]
    mon = read_file(raw_dir, data["monitoring"], q, options.get(data["monitoring"]))
    neighbourhoods: set = set()
    if mon is not None:
        blank_missing_codes(mon.frame, data.get("missing_codes"), ("neighbourhood", "quarter"))
        known = ["neighbourhood", "quarter", *counts]
        _unknown_columns(mon, known, q, "monitoring")
        if _missing_columns(mon, known, q, "monitoring", " (programme.indicators names it)"):
            fields = [Field("neighbourhood", "id", required=True), Field("quarter", "text", required=True)]
            fields += [Field(c, "int", min=0, range_rule="a count must be 0 or more") for c in counts]
            typed = check_fields(mon, fields, q, date_formats=data["date_formats"])
            _check_quarters(mon, q)
            _duplicates(mon, typed, ["neighbourhood", "quarter"], q, "neighbourhood and quarter")
            typed["source_line"] = mon.rows
            _check_declared_neighbourhoods(mon, typed, p["neighbourhoods"], q)
            _before_start(mon, typed, p["neighbourhoods"], q)
            out["monitoring"] = typed
            neighbourhoods = set(typed.neighbourhood.dropna())
    if data.get("funding"):
        fun = read_file(raw_dir, data["funding"], q, options.get(data["funding"]))
        if fun is not None:
            known = ["neighbourhood", "quarter", "source", "amount_gbp"]
            _unknown_columns(fun, known, q, "funding")
            if _missing_columns(fun, known, q, "funding"):
                typed = check_fields(fun, [Field("neighbourhood", "id", required=True),
                                           Field("quarter", "text", required=True),
                                           Field("source", "code", required=True,
                                                 allowed=tuple(p["funding_sources"])),
                                           Field("amount_gbp", "number", required=True, min=0,
                                                 range_rule="an amount secured must be 0 or more")], q)
                _check_quarters(fun, q)
                if mon is not None and "monitoring" in out:
                    off = typed.neighbourhood.notna() & ~typed.neighbourhood.isin(neighbourhoods)
                    q.add_many(fun, off.to_numpy(), "neighbourhood",
                               f"neighbourhood not in the monitoring table ({data['monitoring']})")
                    quarters = _grid_quarters(out["monitoring"], p["neighbourhoods"])
                    off = typed.quarter.notna() & ~typed.quarter.isin(quarters)
                    q.add_many(fun, off.to_numpy(), "quarter",
                               f"quarter outside the quarters monitored ({data['monitoring']}, from the first quarter "
                               "monitored or declared in programme.neighbourhoods to the last quarter monitored): "
                               "funding there would be left out of every total")
                _before_start(fun, typed, p["neighbourhoods"], q)
                out["funding"] = typed
    if data.get("survey"):
        survey = _read_survey(cfg, raw_dir, q, neighbourhoods)
        if survey is not None:
            out["survey"] = survey
    if q.errors:
        raise DataValidationError(q.errors)
    return out


def _check_declared_neighbourhoods(mon, typed: pd.DataFrame, declared: list[dict], q: Collector) -> None:
    """With programme.neighbourhoods given, the monitoring table's neighbourhoods and the declared
    ones must be the same set: an undeclared one is an error on its rows, a declared one with no
    row an error naming the file (a typo on either side would otherwise drop or invent a
    neighbourhood)."""
    if not declared:
        return
    ids = [h["id"] for h in declared]
    off = typed.neighbourhood.notna() & ~typed.neighbourhood.isin(ids)
    q.add_many(mon, off.to_numpy(), "neighbourhood",
               f"neighbourhood not declared in programme.neighbourhoods ({', '.join(ids)})")
    present = set(typed.neighbourhood.dropna())
    for h in ids:
        if h not in present:
            q.add(mon.file, None, "", "neighbourhood", h, "neighbourhood declared in programme.neighbourhoods has no "
                  "row in the monitoring table (check the spelling on both sides, or remove it from the list)")


def _before_start(table, typed: pd.DataFrame, declared: list[dict], q: Collector) -> None:
    """A row dated before its neighbourhood's declared start quarter is a data error: the
    neighbourhood was not in the programme then, so the row cannot be counted."""
    start = {h["id"]: h["start"] for h in declared if h.get("start")}
    if not start:
        return
    qtr = typed.quarter.astype(object)
    ok = qtr.notna() & qtr.astype(str).str.match(QUARTER_RE.pattern)
    hood_start = typed.neighbourhood.map(start)
    early = ok & hood_start.notna()
    early[early] = [quarter_index(a) < quarter_index(b) for a, b in zip(qtr[early], hood_start[early])]
    rules = [f"quarter before {h}'s start quarter {s} (programme.neighbourhoods): the neighbourhood was not yet in "
             "the programme; correct the quarter or the declared start" for h, s in zip(typed.neighbourhood, hood_start)]
    q.add_many(table, early.to_numpy(), "quarter", rules)


def _respondents_in_both_waves(sur, typed: pd.DataFrame, q: Collector) -> None:
    """Under ``programme.survey.design: independent`` a respondent_id in both waves is a data
    error (on the after-wave row, naming the before-wave line): the design is declared, never
    guessed, so a recurring ID is either two people under one code (IDs restarted in each wave)
    or a paired survey declared as independent."""
    rid = typed.respondent_id.astype(object)
    before = typed.wave == "before"
    first_line = pd.Series(np.asarray(sur.rows)[before.to_numpy()], index=rid[before].to_numpy())
    first_line = first_line[~first_line.index.duplicated()]
    both = (typed.wave == "after") & rid.notna() & rid.isin(first_line.index)
    rules = [f"the survey is declared independent (programme.survey.design): a respondent in both waves (before: "
             f"line {first_line.get(r, '?')}) would be read as two different residents; give every questionnaire "
             "its own respondent_id (e.g. when IDs restart at 1 in each wave), or declare programme.survey.design: "
             "paired if the same residents were surveyed twice" for r in rid]
    q.add_many(sur, both.to_numpy(), "respondent_id", rules, ids=rid.fillna("").to_numpy())


def _read_survey(cfg: dict, raw_dir: Path, q: Collector, neighbourhoods: set) -> pd.DataFrame | None:
    """The survey table typed (respondent: an integer code replacing respondent_id), or None
    when it could not be read or broke a rule (the queries are in ``q``)."""
    data = cfg["data"]
    sur = read_file(raw_dir, data["survey"], q, (data.get("files") or {}).get(data["survey"]))
    if sur is None:
        return None
    blank_missing_codes(sur.frame, data.get("missing_codes"), ("respondent_id", "neighbourhood", "wave"))
    known = ["respondent_id", "neighbourhood", "wave", *ONS4_ITEMS, *SWEMWBS_ITEMS]
    _unknown_columns(sur, known, q, "survey")
    if not _missing_columns(sur, known, q, "survey"):
        return None
    fields = [Field("respondent_id", "id", required=True), Field("neighbourhood", "id"),
              Field("wave", "code", required=True, allowed=WAVES)]
    fields += [Field(c, "int", min=0, max=10) for c in ONS4_ITEMS]
    fields += [Field(c, "int", min=1, max=5) for c in SWEMWBS_ITEMS]
    typed = check_fields(sur, fields, q, id_col="respondent_id")
    if neighbourhoods:
        off = typed.neighbourhood.notna() & ~typed.neighbourhood.isin(neighbourhoods)
        q.add_many(sur, off.to_numpy(), "neighbourhood", f"neighbourhood not in the monitoring table ({data['monitoring']})")
    _duplicates(sur, typed, ["respondent_id", "wave"], q, "respondent and wave",
                ids=typed.respondent_id.astype(object).fillna("").to_numpy())
    if cfg["programme"]["survey"]["design"] == "independent":
        _respondents_in_both_waves(sur, typed, q)
    if q.errors:
        return None
    codes = {r: i for i, r in enumerate(sorted(typed.respondent_id.unique()), 1)}
    typed.insert(0, "respondent", typed.respondent_id.map(codes).astype("int64"))
    return typed.drop(columns="respondent_id")


# ---- cumulative totals against targets -----------------------------------------------------------

def neighbourhood_starts(monitoring: pd.DataFrame, declared: list[dict] | None = None) -> dict[str, str]:
    """Each monitored neighbourhood's first quarter in the programme: its declared start
    (``programme.neighbourhoods``), else the grid's first quarter (the earliest quarter monitored
    or declared)."""
    declared = {h["id"]: h.get("start") for h in (declared or [])}
    first = min([quarter_index(x) for x in monitoring.quarter] +
                [quarter_index(x) for x in declared.values() if x])
    hoods = sorted(set(monitoring.neighbourhood.unique()) | set(declared))
    return {h: declared.get(h) or quarter_label(first) for h in hoods}


def quarterly_grid(monitoring: pd.DataFrame, funding: pd.DataFrame | None, indicators: list[dict],
                   neighbourhoods: list[dict] | None = None) -> pd.DataFrame:
    """One row per neighbourhood and quarter from its start (``neighbourhoods``: the declared
    ``programme.neighbourhoods``; without them every neighbourhood starts at the first quarter
    monitored) to the last quarter monitored (a missing row is a row of not-recorded counts),
    one column per indicator; funding_gbp is the funding table's total (a neighbourhood-quarter
    without an award secured nothing: 0).  Quarters before a neighbourhood's start have no row:
    they are outside the programme, neither missing nor zero."""
    starts = neighbourhood_starts(monitoring, neighbourhoods)
    last = max(quarter_index(x) for x in monitoring.quarter)
    grid = pd.DataFrame([(h, quarter_label(i)) for h, s in starts.items() for i in range(quarter_index(s), last + 1)],
                        columns=["neighbourhood", "quarter"])
    counts = [i["id"] for i in indicators if i["id"] != FUNDING_INDICATOR]
    grid = grid.merge(monitoring[["neighbourhood", "quarter", *counts]], how="left", on=["neighbourhood", "quarter"])
    if any(i["id"] == FUNDING_INDICATOR for i in indicators):
        f = funding if funding is not None else pd.DataFrame(columns=["neighbourhood", "quarter", "amount_gbp"])
        tot = f.groupby(["neighbourhood", "quarter"]).amount_gbp.sum().rename(FUNDING_INDICATOR).reset_index()
        grid = grid.merge(tot, how="left", on=["neighbourhood", "quarter"])
        grid[FUNDING_INDICATOR] = grid[FUNDING_INDICATOR].fillna(0.0).astype(float)
    for c in counts:
        grid[c] = grid[c].astype("Float64")
    return grid


def cumulative(grid: pd.DataFrame, indicators: list[dict]) -> pd.DataFrame:
    """Programme-wide cumulative figure of every indicator at the end of every quarter:
    indicator, label, unit, aggregation, quarter, value (the quarter's own total), cumulative,
    missing_cells (neighbourhood-quarters up to then whose count was not recorded),
    neighbourhoods_in_programme.  A neighbourhood before its start has no row in ``grid``: it
    adds nothing and is not missing."""
    quarters = sorted(grid.quarter.unique(), key=quarter_index)
    inside = grid.assign(_in=1).pivot(index="quarter", columns="neighbourhood", values="_in").reindex(quarters).notna()
    rows = []
    for ind in indicators:
        x = grid.pivot(index="quarter", columns="neighbourhood", values=ind["id"]).reindex(quarters).astype(float)
        miss = (x.isna() & inside).sum(axis=1)
        per_q = x.sum(axis=1, min_count=1)
        cum = per_q.fillna(0).cumsum() if ind["aggregation"] == "sum" else per_q
        cum_miss = miss.cumsum() if ind["aggregation"] == "sum" else miss
        for qq in quarters:
            rows.append(dict(indicator=ind["id"], label=ind["label"], unit=ind.get("unit", ""),
                             aggregation=ind["aggregation"], quarter=qq, value=per_q[qq],
                             cumulative=cum[qq] if pd.notna(per_q[qq]) or ind["aggregation"] == "sum" else np.nan,
                             missing_cells=int(cum_miss[qq]), neighbourhoods_in_programme=int(inside.loc[qq].sum())))
    return pd.DataFrame(rows)


def cumulative_by_neighbourhood(grid: pd.DataFrame, indicators: list[dict]) -> pd.DataFrame:
    """:func:`cumulative` of each neighbourhood on its own (from its start), with a
    neighbourhood column: the figures neighbourhood-level targets are compared with."""
    parts = [cumulative(d, indicators).assign(neighbourhood=h) for h, d in grid.groupby("neighbourhood", sort=True)]
    return pd.concat(parts, ignore_index=True)


def by_neighbourhood(grid: pd.DataFrame, indicators: list[dict]) -> pd.DataFrame:
    """Each neighbourhood's figure at the last quarter monitored (sum indicators: the total over
    its quarters in the programme; latest: the last quarter's), with its first quarter in the
    programme (start) and its neighbourhood-quarters not recorded (none before its start)."""
    last = max(grid.quarter, key=quarter_index)
    rows = []
    for hood, d in grid.groupby("neighbourhood", sort=True):
        start = min(d.quarter, key=quarter_index)
        for ind in indicators:
            x = d[ind["id"]].astype(float)
            if ind["aggregation"] == "sum":
                value, miss = x.sum(min_count=1), int(x.isna().sum())
            else:
                value = x[d.quarter == last].iloc[0]
                miss = int(pd.isna(value))
            rows.append(dict(neighbourhood=hood, start=start, indicator=ind["id"], label=ind["label"],
                             unit=ind.get("unit", ""), aggregation=ind["aggregation"], to_quarter=last, figure=value,
                             missing_cells=miss))
    return pd.DataFrame(rows)


def rag_rating(ratio: float, green: float, amber: float) -> str:
    """'green' / 'amber' / 'red' for achieved / target.

    >>> [rag_rating(r, 1.0, 0.8) for r in (1.0, 0.99, 0.8, 0.7999)]
    ['green', 'amber', 'amber', 'red']
    """
    return "green" if ratio >= green else ("amber" if ratio >= amber else "red")


def against_targets(cum: pd.DataFrame, targets: list[dict], rag: dict,
                    hood_cum: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each target with the cumulative figure at its quarter, the share achieved and its RAG rating.

    Parameters
    ----------
    cum : pandas.DataFrame
        Cumulative figures by indicator and quarter (:func:`cumulative`).
    targets : list of dict
        ``programme.targets``: indicator, period (YYYYQn), cumulative target and, optionally,
        neighbourhood (None or absent: programme-wide).
    rag : dict
        ``programme.rag``: the lowest shares of target rated green and amber.
    hood_cum : pandas.DataFrame, optional
        Cumulative figures of each neighbourhood (:func:`cumulative_by_neighbourhood`); needed
        when a target names a neighbourhood.

    Returns
    -------
    pandas.DataFrame
        indicator, neighbourhood ('all' for a programme-wide target), label, unit, period,
        target, achieved, percent_of_target, rag, missing_cells, note.  A target after the last
        quarter monitored is 'not yet due'; one whose figure has unrecorded
        neighbourhood-quarters is 'incomplete' (never rated as if they were zero); one before
        the first quarter monitored (for a neighbourhood: before it joined) is 'not assessed'.

    References
    ----------
    None: the red/amber/green rating is a programme-monitoring convention, not a statistical
    method; its thresholds are the funder's (``programme.rag``).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.programme import against_targets, cumulative, cumulative_by_neighbourhood, quarterly_grid
    >>> mon = pd.DataFrame({"neighbourhood": ["A", "B", "A", "B"],
    ...                     "quarter": ["2024Q1", "2024Q1", "2024Q2", "2024Q2"],
    ...                     "engaged": pd.array([30, 25, None, 40], dtype="Int64")})
    >>> inds = [{"id": "engaged", "label": "Residents engaged", "unit": "residents", "aggregation": "sum"}]
    >>> grid = quarterly_grid(mon, None, inds)
    >>> t = against_targets(cumulative(grid, inds),
    ...                     [{"indicator": "engaged", "period": "2024Q1", "target": 50},
    ...                      {"indicator": "engaged", "period": "2024Q2", "target": 100},
    ...                      {"indicator": "engaged", "period": "2024Q4", "target": 150},
    ...                      {"indicator": "engaged", "period": "2024Q2", "target": 60, "neighbourhood": "B"}],
    ...                     {"green": 1.0, "amber": 0.8}, cumulative_by_neighbourhood(grid, inds))
    >>> print(t[["neighbourhood", "period", "target", "achieved", "rag", "missing_cells"]].to_string(index=False))
    neighbourhood period  target  achieved         rag  missing_cells
              all 2024Q1    50.0      55.0       green              0
              all 2024Q2   100.0      95.0  incomplete              1
              all 2024Q4   150.0       NaN not yet due              0
                B 2024Q2    60.0      65.0       green              0
    """
    last = max(cum.quarter, key=quarter_index)
    began = min(cum.quarter, key=quarter_index)  # the programme's first quarter monitored
    rows = []
    for t in sorted(targets, key=lambda t: (t["indicator"], t.get("neighbourhood") is not None,
                                            t.get("neighbourhood") or "", quarter_index(t["period"]))):
        hood = t.get("neighbourhood")
        if hood is None:
            sub = cum[cum.indicator == t["indicator"]]
        else:
            if hood_cum is None:
                raise ValueError(f"a target names neighbourhood {hood!r}: pass the neighbourhoods' cumulative figures")
            sub = hood_cum[(hood_cum.indicator == t["indicator"]) & (hood_cum.neighbourhood == hood)]
            if sub.empty:
                raise ValueError(f"a target names neighbourhood {hood!r}, which has no monitoring figures")
        rows.append(_rate_target(t, sub, last, rag, began))
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


TARGET_COLUMNS = ["indicator", "neighbourhood", "label", "unit", "period", "target", "achieved", "percent_of_target",
                  "rag", "missing_cells", "note"]


def _rate_target(t: dict, sub: pd.DataFrame, last: str, rag: dict, began: str | None = None) -> dict:
    """One target's row of :func:`against_targets`; ``sub``: the cumulative figures it is
    compared with (programme-wide or one neighbourhood's, from its first quarter); ``began``:
    the programme's first quarter monitored (a neighbourhood starting then did not join late)."""
    hood = t.get("neighbourhood")
    r = dict(indicator=t["indicator"], neighbourhood=ALL_NEIGHBOURHOODS if hood is None else hood,
             label=sub.label.iloc[0], unit=sub.unit.iloc[0], period=t["period"], target=float(t["target"]),
             achieved=np.nan, percent_of_target=np.nan, rag="", missing_cells=0, note="")
    first = min(sub.quarter, key=quarter_index)
    if quarter_index(t["period"]) > quarter_index(last):
        r.update(rag="not yet due", note=f"monitoring runs to {last}")
    elif quarter_index(t["period"]) < quarter_index(first):
        joined_late = hood is not None and began is not None and quarter_index(first) > quarter_index(began)
        r.update(rag="not assessed", note=f"before {hood} joined the programme ({first})" if joined_late
                 else "before the first quarter monitored")
    else:
        row = sub[sub.quarter == t["period"]].iloc[0]
        r.update(achieved=row.cumulative, missing_cells=int(row.missing_cells))
        if pd.isna(row.cumulative):
            r.update(rag="incomplete", note="no count recorded in that quarter")
        else:
            r["percent_of_target"] = 100.0 * row.cumulative / t["target"]
            if row.missing_cells:
                r.update(rag="incomplete", note=f"{int(row.missing_cells)} neighbourhood-quarter(s) not recorded; "
                         "the figure counts only what was recorded")
            else:
                r["rag"] = rag_rating(row.cumulative / t["target"], rag["green"], rag["amber"])
    return r


def funding_by_source(funding: pd.DataFrame | None) -> pd.DataFrame:
    """Funding secured by source: awards, total (GBP), share of all funding."""
    if funding is None or funding.empty:
        return pd.DataFrame(columns=["source", "awards", "amount_gbp", "percent"])
    t = funding.groupby("source").amount_gbp.agg(awards="size", amount_gbp="sum").reset_index()
    t["percent"] = 100.0 * t.amount_gbp / t.amount_gbp.sum()
    return t.sort_values(["amount_gbp", "source"], ascending=[False, True]).reset_index(drop=True)


TREND_MAX_TICKS = 12


def quarter_ticks(n: int, most: int = TREND_MAX_TICKS) -> list[int]:
    """Positions of the labelled quarters on a trend axis of ``n`` quarters: every quarter up to
    ``most``, otherwise every k-th quarter counted back from the last (so the latest quarter is
    always labelled) with k the smallest step giving at most ``most`` labels.

    >>> quarter_ticks(8)
    [0, 1, 2, 3, 4, 5, 6, 7]
    >>> quarter_ticks(48)
    [3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47]
    >>> quarter_ticks(13)
    [0, 2, 4, 6, 8, 10, 12]
    """
    step = max(1, -(-n // most))
    return list(range(n - 1, -1, -step))[::-1]


def _trend_axis_label(ind: dict) -> str:
    """The y-axis of an indicator's panel: a count of new things per quarter (aggregation sum)
    or a count of what is current at the quarter (aggregation latest: a stock, not a rate)."""
    unit = ind.get("unit", "")
    return f"{unit} at the quarter" if ind.get("aggregation") == "latest" else f"{unit} per quarter"


def trend_figure(grid: pd.DataFrame, indicators: list[dict], fmt: str = "png") -> bytes:
    """Small multiples: one panel per indicator, the quarterly value of each neighbourhood (a
    gap where it was not recorded; a neighbourhood that joined later than the first quarter
    starts at its start quarter, named in the legend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import not_registered_note

    quarters = sorted(grid.quarter.unique(), key=quarter_index)
    n = len(indicators)
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax, ind in zip(axes.ravel(), indicators):
        for hood, d in grid.groupby("neighbourhood", sort=True):
            y = d.set_index("quarter")[ind["id"]].reindex(quarters).astype(float)
            start = min(d.quarter, key=quarter_index)
            name = str(hood) if start == quarters[0] else f"{hood} (from {start})"
            ax.plot(range(len(quarters)), y.to_numpy(), marker="o", ms=3, lw=1.2, label=name)
        ax.set_title(ind["label"], fontsize=9)
        ax.set_ylabel(_trend_axis_label(ind), fontsize=8)
        ticks = quarter_ticks(len(quarters))
        ax.set_xticks(ticks)
        ax.set_xticklabels([quarters[i] for i in ticks], rotation=60, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Quarterly monitoring by neighbourhood", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    not_registered_note(fig)
    buf = io.BytesIO()
    meta = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    import matplotlib as mpl
    with mpl.rc_context({"svg.hashsalt": "pathways"}):
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    return buf.getvalue()


# ---- the resident survey -------------------------------------------------------------------------

def score_survey(survey: pd.DataFrame) -> pd.DataFrame:
    """ONS4 and SWEMWBS scores of each questionnaire, with the package's instrument library
    (the SWEMWBS metric score by the published Rasch conversion)."""
    from analysis import instruments

    out = survey[["respondent", "neighbourhood", "wave"]].copy()
    for inst in ("ons4", "swemwbs"):
        s = instruments.score(inst, survey)
        out = out.join(s[[c for c in s.columns if not c.endswith("_reason") and not c.endswith("_band")]])
    return out


def respondents_in_both_waves(scores: pd.DataFrame) -> int:
    """Respondents (codes) with a questionnaire in each wave."""
    return int((scores.groupby("respondent").wave.nunique() == 2).sum())


SURVEY_COLUMNS = ["outcome", "label", "design", "note", "n_before", "n_after", "mean_before", "mean_after", "change",
                  "ci_low", "ci_high", "df", "p_value", "n_unpaired_excluded", "method"]


def survey_change(scores: pd.DataFrame, outcomes: list[str], level: float = 0.95,
                  design: str = "independent") -> pd.DataFrame:
    """Mean before and after, and the change (after minus before) with its confidence interval.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per questionnaire: respondent (code), wave (before/after) and the score columns.
    outcomes : list of str
        Score columns to compare.
    level : float
        Confidence level of the intervals.
    design : {'independent', 'paired'}
        ``programme.survey.design``, declared in the config, never guessed from the data.
        independent: different residents in the two waves (a respondent in both is refused,
        here and at ingest); paired: the same residents surveyed twice, matched by respondent.

    Returns
    -------
    pandas.DataFrame
        outcome, label, design, note, n_before, n_after, mean_before, mean_after, change,
        ci_low, ci_high, df, p_value, n_unpaired_excluded, method.  independent: Welch's
        two-sample t.  paired: a paired t on the respondents with the score in both waves
        (n_before = n_after = pairs matched); questionnaires without a scored partner in the
        other wave are left out, counted in n_unpaired_excluded and stated in the note.  A
        wave with fewer than two scores gives no change and says why.

    References
    ----------
    Welch BL. The generalization of 'Student's' problem when several different population
    variances are involved. Biometrika 1947;34:28-35.  Matches R's ``t.test`` (golden file
    tests/reference/golden/programme_survey.csv).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.programme import survey_change
    >>> s = pd.DataFrame({"respondent": range(1, 9), "wave": ["before"] * 4 + ["after"] * 4,
    ...                   "ons4_life_satisfaction": [5., 6, 7, 6, 7, 8, 6, 8]})
    >>> ch = survey_change(s, ["ons4_life_satisfaction"])
    >>> print(ch[["design", "change", "ci_low", "ci_high", "method"]].round(4).to_string(index=False))
         design  change  ci_low  ci_high             method
    independent    1.25 -0.2988   2.7988 Welch two-sample t
    """
    if design not in ("independent", "paired"):
        raise ValueError(f"survey design must be 'independent' or 'paired', got {design!r}")
    if design == "independent" and respondents_in_both_waves(scores):
        raise ValueError("the survey is declared independent but a respondent answered both waves "
                         "(read_programme refuses such a file at ingest)")
    rows = []
    for y in outcomes:
        b = scores.loc[scores.wave == "before", ["respondent", y]].dropna()
        a = scores.loc[scores.wave == "after", ["respondent", y]].dropna()
        r = dict(outcome=y, label=SCORE_LABELS[y], design=design, note="")
        if design == "independent" and min(len(a), len(b)) < 2:
            r.update(n_before=len(b), n_after=len(a), mean_before=b[y].mean() if len(b) else np.nan,
                     mean_after=a[y].mean() if len(a) else np.nan, change=np.nan, ci_low=np.nan, ci_high=np.nan,
                     df=np.nan, p_value=np.nan, n_unpaired_excluded=0, method="Welch two-sample t",
                     note="fewer than 2 scored questionnaires in a wave: change not estimated")
            rows.append(r)
            continue
        if design == "paired":
            m = b.merge(a, on="respondent", suffixes=("_b", "_a"))
            d = (m[f"{y}_a"] - m[f"{y}_b"]).to_numpy(float)
            if len(d) < 2:
                r.update(n_before=len(m), n_after=len(m), mean_before=np.nan, mean_after=np.nan, change=np.nan,
                         ci_low=np.nan, ci_high=np.nan, df=np.nan, p_value=np.nan,
                         n_unpaired_excluded=len(b) + len(a) - 2 * len(m), method="paired t",
                         note="fewer than 2 respondents with both questionnaires: change not estimated")
                rows.append(r)
                continue
            res = stats.ttest_1samp(d, 0.0)
            ci = res.confidence_interval(level)
            left = len(b) + len(a) - 2 * len(m)
            r.update(n_before=len(m), n_after=len(m), mean_before=m[f"{y}_b"].mean(), mean_after=m[f"{y}_a"].mean(),
                     change=d.mean(), ci_low=ci.low, ci_high=ci.high, df=float(res.df), p_value=res.pvalue,
                     n_unpaired_excluded=left, method="paired t",
                     note=f"paired t on {len(m)} respondents matched (scored in both waves); {left} questionnaire(s) "
                          "without a scored partner in the other wave left out")
        else:
            xa, xb = a[y].to_numpy(float), b[y].to_numpy(float)
            res = stats.ttest_ind(xa, xb, equal_var=False)
            ci = res.confidence_interval(level)
            r.update(n_before=len(xb), n_after=len(xa), mean_before=xb.mean(), mean_after=xa.mean(),
                     change=xa.mean() - xb.mean(), ci_low=ci.low, ci_high=ci.high, df=float(res.df),
                     p_value=res.pvalue, n_unpaired_excluded=0, method="Welch two-sample t")
        rows.append(r)
    return pd.DataFrame(rows, columns=SURVEY_COLUMNS)


# ---- WELLBY and value for money ------------------------------------------------------------------

def final_total(cum: pd.DataFrame, indicator: str | None) -> tuple[float | None, int]:
    """The indicator's cumulative figure at the last quarter (None if not collected) and the
    number of neighbourhood-quarters in it that were not recorded."""
    if indicator is None:
        return None, 0
    sub = cum[cum.indicator == indicator].sort_values("quarter", key=lambda s: s.map(quarter_index))
    v = sub.cumulative.iloc[-1]
    return (None if pd.isna(v) else float(v)), int(sub.missing_cells.iloc[-1])


def wellby_table(change: pd.DataFrame | None, residents: float | None, w: dict) -> pd.DataFrame:
    """Social-value estimate: change in mean life satisfaction x residents x years x value per WELLBY.

    Parameters
    ----------
    change : pandas.DataFrame or None
        :func:`survey_change` (its ons4_life_satisfaction row is used); None: no survey.
    residents : float or None
        Residents the change applies to (the engaged indicator's cumulative figure).
    w : dict
        ``programme.wellby``: value, low, high, uprating_factor, duration_years, price_basis.

    Returns
    -------
    pandas.DataFrame
        One row per scenario (low, central and high value at the point estimate; the central
        value at each end of the change's confidence interval): ls_change, residents,
        duration_years, wellbys, value_per_wellby, social_value_gbp, price_basis, note.  One
        'not estimated' row with the reason when an input was not collected, or when life
        satisfaction is not among ``programme.survey.outcomes`` (not analysed).

    References
    ----------
    HM Treasury. Wellbeing guidance for appraisal: supplementary Green Book guidance. London,
    2021 (GBP 13,000 per WELLBY, range 10,000-16,000, 2019 prices).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.programme import wellby_table
    >>> ch = pd.DataFrame({"outcome": ["ons4_life_satisfaction"], "change": [0.25], "ci_low": [-0.05],
    ...                    "ci_high": [0.55]})
    >>> w = {"value": 13000, "low": 10000, "high": 16000, "uprating_factor": 1.0, "duration_years": 1.0,
    ...      "price_basis": "2019 prices"}
    >>> print(wellby_table(ch, 1000.0, w)[["scenario", "wellbys", "social_value_gbp"]].to_string(index=False))
                             scenario  wellbys  social_value_gbp
                            low value    250.0         2500000.0
                              central    250.0         3250000.0
                           high value    250.0         4000000.0
    central value, lower CI of change    -50.0         -650000.0
    central value, upper CI of change    550.0         7150000.0
    """
    from analysis.economics import wellby_value

    cols = ["scenario", "ls_change", "residents", "duration_years", "wellbys", "value_per_wellby", "social_value_gbp",
            "price_basis", "note"]
    row = None if change is None else change[change.outcome == "ons4_life_satisfaction"]
    if row is None or row.empty or residents is None:
        why = ("resident survey: " + NOT_COLLECTED if row is None else not_analysed("ons4_life_satisfaction")
               if row.empty else "residents engaged (programme.engaged_indicator): " + NOT_COLLECTED)
        return pd.DataFrame([dict(scenario="not estimated", note=why)], columns=cols)
    r = row.iloc[0]
    years = float(w["duration_years"])
    out = []
    for scen, dls, val in (("low value", r.change, w["low"]), ("central", r.change, w["value"]),
                           ("high value", r.change, w["high"]),
                           ("central value, lower CI of change", r.ci_low, w["value"]),
                           ("central value, upper CI of change", r.ci_high, w["value"])):
        wb = float(dls) * residents * years
        out.append(dict(scenario=scen, ls_change=float(dls), residents=residents, duration_years=years, wellbys=wb,
                        value_per_wellby=float(val) * float(w["uprating_factor"]),
                        social_value_gbp=wellby_value(wb, val, w["uprating_factor"]),
                        price_basis=w["price_basis"], note=""))
    return pd.DataFrame(out, columns=cols)


WELLBY_ASSUMPTIONS = (
    "The change is the before/after difference in mean ONS life satisfaction (0-10) among survey respondents; "
    "there is no comparison group, so it is not an estimate of the programme's effect (other changes over the "
    "same period are included).",
    "The survey respondents' change applies to every resident counted as engaged.",
    "The change lasts programme.wellby.duration_years (shown as Years) and is not discounted; no displacement, "
    "deadweight or drop-off is applied.",
    "Value per WELLBY from HM Treasury (2021) Wellbeing guidance for appraisal: GBP 13,000 (range 10,000-16,000) "
    "in 2019 prices; the price basis is stated on every row.",
)


def cost_buildup(costs: list[dict], price_year: str, index: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every cost item with its source, in its own prices and in ``price_year`` prices (NHS cost
    inflation index, :func:`analysis.costs.inflation_factor`)."""
    from analysis.costs import inflation_factor, load_inflation_index

    index = load_inflation_index() if index is None else index
    rows = []
    for c in costs:
        f = inflation_factor(c["price_year"], price_year, index)
        rows.append(dict(item=c["item"], category=c.get("category", "other"), amount_gbp=float(c["amount_gbp"]),
                         price_year=c["price_year"], inflation_factor=f, amount_gbp_analysis_year=float(c["amount_gbp"]) * f,
                         analysis_price_year=price_year, source=c["source"]))
    return pd.DataFrame(rows, columns=["item", "category", "amount_gbp", "price_year", "inflation_factor",
                                       "amount_gbp_analysis_year", "analysis_price_year", "source"])


def value_for_money(buildup: pd.DataFrame, engaged: float | None, volunteer_hours: float | None,
                    change: pd.DataFrame | None, missing: dict[str, int] | None = None) -> pd.DataFrame:
    """Cost per unit of outcome: per resident engaged, per volunteer hour, per point of life
    satisfaction gained (per resident; = per WELLBY for a change lasting one year) and per
    SWEMWBS metric point gained.  A unit not collected (``change`` None: no survey), a score
    not among ``programme.survey.outcomes`` (no row in ``change``: not analysed), or a
    wellbeing change that is not a gain, gives no figure and says why; ``missing`` (engaged,
    volunteer_hours: neighbourhood-quarters not recorded) adds a note that the units count only
    what was recorded."""
    missing = missing or {}

    def partial(key):
        n = missing.get(key, 0)
        return (f"{n} neighbourhood-quarter(s) not recorded: the units count only what was recorded, so the cost "
                "per unit is overstated") if n else ""
    total = float(buildup.amount_gbp_analysis_year.sum()) if len(buildup) else None
    year = buildup.analysis_price_year.iloc[0] if len(buildup) else ""
    rows = []

    def add(measure, units, unit_label, note=""):
        if total is None:
            rows.append(dict(measure=measure, total_cost_gbp=np.nan, units=units, cost_per_unit_gbp=np.nan,
                             unit=unit_label, price_year=year, note="programme costs: " + NOT_COLLECTED))
        elif units is None or pd.isna(units):
            rows.append(dict(measure=measure, total_cost_gbp=total, units=np.nan, cost_per_unit_gbp=np.nan,
                             unit=unit_label, price_year=year, note=note or NOT_COLLECTED))
        elif units <= 0:
            rows.append(dict(measure=measure, total_cost_gbp=total, units=units, cost_per_unit_gbp=np.nan,
                             unit=unit_label, price_year=year, note=note or "no units gained: not defined"))
        else:
            rows.append(dict(measure=measure, total_cost_gbp=total, units=units, cost_per_unit_gbp=total / units,
                             unit=unit_label, price_year=year, note=note))

    add("Cost per resident engaged", engaged, "resident engaged", partial("engaged"))
    add("Cost per volunteer hour", volunteer_hours, "volunteer hour", partial("volunteer_hours"))
    for y, label in (("ons4_life_satisfaction", "point of life satisfaction (0-10) gained per resident"),
                     ("swemwbs_metric", "SWEMWBS metric point gained per resident")):
        row = None if change is None else change[change.outcome == y]
        if row is None:
            add(f"Cost per {label}", None, label, "resident survey: " + NOT_COLLECTED)
        elif row.empty:
            add(f"Cost per {label}", None, label, not_analysed(y))
        elif engaged is None:
            add(f"Cost per {label}", None, label, "residents engaged: " + NOT_COLLECTED)
        else:
            ch = float(row.iloc[0].change)
            if not np.isfinite(ch):
                add(f"Cost per {label}", None, label, "survey change not estimated (see survey_change.csv)")
                continue
            note = "; ".join(x for x in ("before/after change among respondents, applied to every resident "
                                         "engaged; not a controlled effect", partial("engaged")) if x)
            add(f"Cost per {label}", ch * engaged, label,
                note if ch > 0 else "mean change is not a gain: cost per point not defined")
    return pd.DataFrame(rows, columns=["measure", "total_cost_gbp", "units", "cost_per_unit_gbp", "unit",
                                       "price_year", "note"])
