"""Instrument definitions: load the YAML data files, merge trial overrides, validate.

A definition is plain data (a nested dict read from ``definitions/<id>.yaml``). Scoring code
never hard-codes an instrument's items, codes or keys; it reads them from the definition.
A trial config changes a definition by passing ``overrides`` (a nested dict deep-merged into
it; see :func:`merge_overrides`). Facts carry a verification status in ``verification``;
scoring an instrument that still relies on provisional facts raises a
:class:`ProvisionalDefinitionWarning` (or a ``ValueError`` with ``strict=True``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
DEFINITIONS_DIR = PACKAGE_DIR / "definitions"
DATA_DIR = PACKAGE_DIR / "data"

TOP_LEVEL_KEYS = frozenset({
    "id", "name", "description", "source", "response", "items", "reverse", "subscales",
    "scoring", "missing", "verification", "switches", "sources", "notes",
})
REQUIRED_KEYS = ("id", "name", "source", "response", "items", "scoring", "missing", "verification")
SCORING_METHODS = frozenset({"sum", "separate", "eq5d"})
#: which way is better for a score (drives tipping-point shifts, "favours" labels, wording)
DIRECTIONS = ("higher", "lower")
STATUSES = frozenset({"verified", "third-party", "policy", "provisional", "unverified", "trial-config"})
PROVISIONAL_STATUSES = frozenset({"provisional", "unverified"})
# output suffixes the scorers use themselves: a subscale or output may not take these names
RESERVED_NAMES = frozenset({"total", "reason", "index", "method", "n_missing", "total_band"})
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

_registered: dict[str, dict] = {}


class ProvisionalDefinitionWarning(UserWarning):
    """Scoring relies on definition facts marked provisional or unverified."""


class DefinitionError(ValueError):
    """An instrument definition (or a trial override of it) is malformed."""


# --------------------------------------------------------------------------- loading

@lru_cache(maxsize=1)
def _builtin_definitions() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in sorted(DEFINITIONS_DIR.glob("*.yaml")):
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        defn = validate_definition(raw, where=str(path.name))
        if defn["id"] != path.stem:
            raise DefinitionError(f"{path.name}: id {defn['id']!r} must match the file name")
        found[defn["id"]] = defn
    return found


def _all_definitions() -> dict[str, dict]:
    return {**_builtin_definitions(), **_registered}


def list_instruments() -> list[str]:
    """Ids of every instrument that :func:`score` knows (built-in and registered)."""
    return sorted(_all_definitions())


def get_definition(instrument_id: str, overrides: Mapping | None = None) -> dict:
    """A validated copy of an instrument's definition, with ``overrides`` merged in."""
    defs = _all_definitions()
    if instrument_id not in defs:
        raise ValueError(
            f"unknown instrument id {instrument_id!r}; known instruments: {', '.join(sorted(defs))}")
    defn = copy.deepcopy(defs[instrument_id])
    if overrides:
        defn = apply_overrides(defn, overrides)
    return defn


def register_definition(definition: Mapping | str | Path, *, replace: bool = False) -> str:
    """Add an instrument from a dict or a YAML file (e.g. one shipped with a trial config).

    Returns its id. A built-in or already-registered id is refused unless ``replace=True``.
    """
    if isinstance(definition, (str, Path)):
        from analysis.safe_yaml import load_file  # a file shipped with a trial is untrusted input
        definition = load_file(definition)
    defn = validate_definition(copy.deepcopy(dict(definition)), where="registered definition")
    if defn["id"] in _all_definitions() and not replace:
        raise ValueError(f"instrument {defn['id']!r} already exists; pass replace=True to replace it")
    _registered[defn["id"]] = defn
    return defn["id"]


def unregister_definition(instrument_id: str) -> None:
    """Remove an instrument added with :func:`register_definition` (built-ins stay)."""
    _registered.pop(instrument_id, None)


# --------------------------------------------------------------------------- overrides

def merge_overrides(base: Mapping, overrides: Mapping) -> dict:
    """Deep-merge ``overrides`` into ``base`` without mutating either.

    Mappings merge key by key; any other value (list, scalar) replaces the old one; a value
    of ``None`` deletes the key.
    """
    merged = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _leaf_paths(tree: Mapping, prefix: tuple = ()) -> list[tuple]:
    paths: list[tuple] = []
    for key, value in tree.items():
        path = prefix + (str(key),)
        if isinstance(value, Mapping) and value:
            paths.extend(_leaf_paths(value, path))
        else:
            paths.append(path)
    return paths


def _covers(fact: tuple, path: tuple) -> bool:
    n = min(len(fact), len(path))
    return fact[:n] == path[:n]


def apply_overrides(defn: Mapping, overrides: Mapping) -> dict:
    """Merge a trial's overrides and re-validate.

    Every verification fact the overrides touch gets status ``trial-config`` unless the
    overrides set that fact's verification entry themselves (which is how a trial records
    that it has checked a provisional fact against the primary source).
    """
    unknown = set(overrides) - TOP_LEVEL_KEYS
    if unknown:
        raise DefinitionError(f"unknown override keys {sorted(unknown)}; allowed: {sorted(TOP_LEVEL_KEYS)}")
    if "id" in overrides and overrides["id"] != defn["id"]:
        raise DefinitionError("overrides may not change an instrument's id")
    merged = merge_overrides(defn, overrides)
    explicit = set((overrides.get("verification") or {}))
    touched = [p for p in _leaf_paths(overrides) if p[0] != "verification"]
    for fact, entry in merged.get("verification", {}).items():
        if fact in explicit:
            continue
        if any(_covers(tuple(fact.split(".")), p) for p in touched):
            merged["verification"][fact] = {
                "status": "trial-config",
                "source": "overridden by the trial config",
                "was": dict(entry),
            }
    return validate_definition(merged, where=f"{defn['id']} (with overrides)")


def apply_switches(defn: dict, options: dict) -> tuple[dict, dict]:
    """Consume the definition's named switches from ``options`` (e.g. ``count_self=True``).

    A switch's ``when_true`` block is merged into the definition; verification statuses are
    left alone because the switch is one of the definition's own documented alternatives.
    """
    switches = defn.get("switches") or {}
    remaining = dict(options)
    for name, switch in switches.items():
        if name in remaining and remaining.pop(name):
            defn = validate_definition(merge_overrides(defn, switch["when_true"]),
                                       where=f"{defn['id']} switch {name}")
    return defn, remaining


def provisional_facts(defn: Mapping) -> list[str]:
    """Names of the facts still marked provisional or unverified."""
    return [fact for fact, entry in defn.get("verification", {}).items()
            if entry.get("status") in PROVISIONAL_STATUSES]


# --------------------------------------------------------------------------- validation

def _number(value: Any, what: str) -> float | int:
    if isinstance(value, bool):
        raise DefinitionError(f"{what}: {value!r} is not a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value.item() if hasattr(value, "item") else value
    if isinstance(value, str):
        try:
            as_float = float(value)
        except ValueError:
            raise DefinitionError(f"{what}: {value!r} is not a number") from None
        return int(as_float) if as_float.is_integer() else as_float
    raise DefinitionError(f"{what}: {value!r} is not a number")


def _item_numbers(values: Any, n_items: int, what: str) -> list[int]:
    if not isinstance(values, (list, tuple)):
        raise DefinitionError(f"{what} must be a list of item numbers")
    numbers = [int(_number(v, what)) for v in values]
    bad = [v for v in numbers if not 1 <= v <= n_items]
    if bad:
        raise DefinitionError(f"{what}: item numbers {bad} outside 1..{n_items}")
    if len(set(numbers)) != len(numbers):
        raise DefinitionError(f"{what}: repeated item numbers")
    return numbers


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in RESERVED_NAMES:
        raise DefinitionError(
            f"{what} {name!r} must be lower_snake_case and not one of {sorted(RESERVED_NAMES)}")


def _validate_bands(bands: Any, what: str) -> list[dict]:
    if not isinstance(bands, list) or not bands:
        raise DefinitionError(f"{what}: bands must be a non-empty list of {{label, min, max}}")
    out = [{"label": str(b["label"]), "min": _number(b["min"], what), "max": _number(b["max"], what)}
           for b in bands]
    for lo, hi in zip(out, out[1:]):
        if not lo["min"] <= lo["max"] < hi["min"] <= hi["max"]:
            raise DefinitionError(f"{what}: bands must be ordered and non-overlapping")
    return out


def validate_definition(defn: Any, where: str = "definition") -> dict:
    """Check a definition's structure and normalise it (numeric codes, sorted items).

    Raises :class:`DefinitionError` naming the problem. Returns the normalised dict.
    """
    if not isinstance(defn, Mapping):
        raise DefinitionError(f"{where}: a definition must be a mapping")
    defn = dict(defn)
    missing = [k for k in REQUIRED_KEYS if k not in defn]
    if missing:
        raise DefinitionError(f"{where}: missing keys {missing}")
    unknown = set(defn) - TOP_LEVEL_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {sorted(unknown)}")
    _check_name(defn["id"], f"{where}: id")
    where = f"{where} [{defn['id']}]"

    response = dict(defn["response"])
    codes = [_number(c, f"{where} response.codes") for c in response.get("codes", [])]
    if not codes or len(set(codes)) != len(codes):
        raise DefinitionError(f"{where}: response.codes must be a non-empty list of distinct numbers")
    response["codes"] = sorted(codes)
    response["labels"] = {_number(k, f"{where} response.labels"): v
                          for k, v in (response.get("labels") or {}).items()}
    defn["response"] = response

    if not isinstance(defn["items"], list) or not all(isinstance(i, Mapping) for i in defn["items"]):
        raise DefinitionError(f"{where}: items must be a list of mappings with a 'number'")
    items = [dict(i) for i in defn["items"]]
    numbers = sorted(int(_number(i.get("number"), f"{where} items")) for i in items)
    if numbers != list(range(1, len(items) + 1)):
        raise DefinitionError(f"{where}: items must be numbered 1..n without gaps")
    defn["items"] = sorted(items, key=lambda i: int(i["number"]))
    n_items = len(items)

    defn["reverse"] = _item_numbers(defn.get("reverse") or [], n_items, f"{where} reverse")
    subscales = {}
    for name, members in (defn.get("subscales") or {}).items():
        _check_name(name, f"{where} subscale")
        subscales[name] = _item_numbers(members, n_items, f"{where} subscale {name}")
        if not subscales[name]:
            raise DefinitionError(f"{where}: subscale {name} has no items")
    defn["subscales"] = subscales

    sources = {}
    for name, columns in (defn.get("sources") or {}).items():
        if not isinstance(columns, list) or len(columns) != n_items:
            raise DefinitionError(f"{where}: source {name!r} must list {n_items} column names")
        sources[name] = [str(c) for c in columns]
    defn["sources"] = sources

    defn["scoring"] = _validate_scoring(dict(defn["scoring"]), response["codes"], n_items, where)
    defn["missing"] = _validate_missing(dict(defn["missing"]), n_items, where)
    defn["switches"] = _validate_switches(defn.get("switches") or {}, where)
    for fact, entry in (defn["verification"] or {}).items():
        if not isinstance(entry, Mapping) or entry.get("status") not in STATUSES:
            raise DefinitionError(
                f"{where}: verification.{fact} needs a status, one of {sorted(STATUSES)}")
    return defn


def _validate_scoring(scoring: dict, codes: list, n_items: int, where: str) -> dict:
    method = scoring.get("method")
    if method not in SCORING_METHODS:
        raise DefinitionError(f"{where}: scoring.method must be one of {sorted(SCORING_METHODS)}")
    if scoring.get("direction") not in DIRECTIONS:
        raise DefinitionError(f"{where}: scoring.direction must say which way is better: "
                              f"'higher' or 'lower' (got {scoring.get('direction')!r})")
    if "item_scores" in scoring:
        mapping = {_number(k, f"{where} item_scores"): _number(v, f"{where} item_scores")
                   for k, v in scoring["item_scores"].items()}
        if sorted(mapping) != codes:
            raise DefinitionError(f"{where}: scoring.item_scores must map exactly the codes {codes}")
        scoring["item_scores"] = mapping
    if "bands" in scoring:
        scoring["bands"] = _validate_bands(scoring["bands"], f"{where} scoring.bands")
    if method == "sum":
        scoring.setdefault("total", True)
        if "conversion" in scoring:
            conv = dict(scoring["conversion"])
            _check_name(conv.get("output"), f"{where} conversion output")
            if not (DATA_DIR / str(conv.get("table"))).is_file():
                raise DefinitionError(f"{where}: conversion table {conv.get('table')!r} not in {DATA_DIR}")
            scoring["conversion"] = conv
    elif method == "separate":
        outputs = []
        for out in scoring.get("outputs") or []:
            out = dict(out)
            _check_name(out.get("name"), f"{where} output")
            out["item"] = _item_numbers([out.get("item")], n_items, f"{where} output {out['name']}")[0]
            if "bands" in out:
                out["bands"] = _validate_bands(out["bands"], f"{where} output {out['name']}")
            if out.setdefault("direction", scoring["direction"]) not in DIRECTIONS:
                raise DefinitionError(f"{where}: output {out['name']}: direction must be 'higher' or 'lower'")
            outputs.append(out)
        if not outputs:
            raise DefinitionError(f"{where}: a 'separate' instrument needs scoring.outputs")
        scoring["outputs"] = outputs
    elif method == "eq5d":
        if n_items != 5 or codes != list(range(1, int(scoring.get("levels", 0)) + 1)):
            raise DefinitionError(f"{where}: eq5d needs 5 items coded 1..levels")
        methods = scoring.get("methods") or {}
        if scoring.get("default_method") not in methods:
            raise DefinitionError(f"{where}: scoring.default_method must name one of scoring.methods")
        for name, spec in methods.items():
            if spec.get("kind") not in {"valueset", "lookup", "age_sex_lookup"}:
                raise DefinitionError(f"{where}: method {name}: kind must be valueset, lookup or age_sex_lookup")
            if not (DATA_DIR / str(spec.get("table"))).is_file():
                raise DefinitionError(f"{where}: method {name}: table {spec.get('table')!r} not in {DATA_DIR}")
    return scoring


def _validate_missing(missing: dict, n_items: int, where: str) -> dict:
    out = {}
    for key in ("max_missing", "max_missing_limit", "subscale_max_missing"):
        value = missing.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise DefinitionError(f"{where}: missing.{key} must be a non-negative integer")
        out[key] = int(value)
    if out["max_missing_limit"] >= n_items and n_items > 0:
        raise DefinitionError(f"{where}: missing.max_missing_limit must be below the number of items")
    for key in ("max_missing", "subscale_max_missing"):
        if out[key] > out["max_missing_limit"]:
            raise DefinitionError(f"{where}: missing.{key} exceeds missing.max_missing_limit")
    return {**missing, **out}


def _validate_switches(switches: Mapping, where: str) -> dict:
    out = {}
    for name, switch in switches.items():
        _check_name(name, f"{where} switch")
        if not isinstance(switch, Mapping) or not isinstance(switch.get("when_true"), Mapping):
            raise DefinitionError(f"{where}: switch {name} needs a when_true mapping")
        out[name] = dict(switch)
    return out


# --------------------------------------------------------------------------- compiled view

@dataclass(frozen=True)
class Spec:
    """The parts of a validated definition that the scorers use, as arrays and indices."""

    id: str
    n_items: int
    codes: np.ndarray
    method: str
    scoring: dict
    missing: dict
    reverse: tuple[int, ...]            # 0-based item positions
    subscales: dict[str, tuple[int, ...]]  # name -> 0-based item positions
    sources: dict[str, list[str]]
    item_scores: dict | None = None
    definition: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_definition(cls, defn: dict) -> "Spec":
        scoring = defn["scoring"]
        return cls(
            id=defn["id"],
            n_items=len(defn["items"]),
            codes=np.asarray(defn["response"]["codes"], dtype=float),
            method=scoring["method"],
            scoring=scoring,
            missing=defn["missing"],
            reverse=tuple(n - 1 for n in defn["reverse"]),
            subscales={k: tuple(n - 1 for n in v) for k, v in defn["subscales"].items()},
            sources=defn["sources"],
            item_scores=scoring.get("item_scores"),
            definition=defn,
        )

    def item_columns(self, source: str | None = None) -> list[str]:
        """Column names holding items 1..n: ``<id>_<k>``, or a named alternative source."""
        if source is None or source == self.id:
            return [f"{self.id}_{k}" for k in range(1, self.n_items + 1)]
        if source not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise ValueError(f"{self.id}: unknown source {source!r} (alternatives: {known})")
        return list(self.sources[source])
