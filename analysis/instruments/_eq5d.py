"""EQ-5D utilities: additive value sets, state lookup tables and the age/sex DSU mapping.

Every method is turned into a dense table indexed by the health state (and, for the DSU
mapping, age band and sex), so scoring a frame is one vectorised array lookup.
State index: levels (l1..l5), each 1..L, give ``sum((l_i - 1) * L**(5 - i))``, so
11111 -> 0 and, for L = 5, 55555 -> 3124 (the numeric order of the state strings).
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np
import pandas as pd

from ._definitions import DATA_DIR, Spec
from ._items import build_reasons, format_value, read_items, require_columns
from ._scoring import missing_allowance

DIMENSIONS = ("MO", "SC", "UA", "PD", "AD")
EQ5D_OPTIONS = frozenset({"method", "age", "sex", "sex_codes"})
_DIM_TERM = re.compile(r"^(MO|SC|UA|PD|AD)([1-9])$")
_ANY_TERM = re.compile(r"^AtLeastOne([1-9](?:Or[1-9])*)$")
_START_TERMS = ("StartValue", "FullHealth")


def all_states(levels: int) -> np.ndarray:
    """Every health state as an (L**5, 5) array of levels, in state-index order."""
    return np.array(list(itertools.product(range(1, levels + 1), repeat=5)), dtype=np.int64)


def state_index(states: np.ndarray, levels: int) -> np.ndarray:
    """Index of each row of an (n, 5) integer level array."""
    weights = levels ** np.arange(4, -1, -1)
    return (states - 1) @ weights


def _parse_state_strings(strings: pd.Series, levels: int, where: str) -> np.ndarray:
    text = strings.astype(str)
    if not text.str.fullmatch(f"[1-{levels}]{{5}}").all():
        raise ValueError(f"{where}: state column must hold 5-digit states with levels 1-{levels}")
    digits = np.array([[int(ch) for ch in s] for s in text], dtype=np.int64)
    return state_index(digits, levels)


@lru_cache(maxsize=None)
def valueset_table(filename: str, levels: int, decimals: int) -> np.ndarray:
    """Utilities of all states from an additive coefficient file (term, coefficient).

    Arithmetic is done in integer units of 10**-decimals, so a value set published to
    3 d.p. gives values exact at 3 d.p. (0.848, never 0.8480000001).
    """
    coef = pd.read_csv(DATA_DIR / filename)
    scale = 10 ** decimals
    units = {}
    for term, value in zip(coef["term"], coef["coefficient"]):
        scaled = round(float(value) * scale)
        if abs(scaled - float(value) * scale) > 1e-6:
            raise ValueError(f"{filename}: coefficient {term}={value} is not exact at {decimals} d.p.")
        units[str(term)] = scaled
    states = all_states(levels)
    total = np.zeros(len(states), dtype=np.int64)
    for term, value in units.items():
        if term in _START_TERMS:
            total += value
        elif m := _DIM_TERM.match(term):
            dim, level = DIMENSIONS.index(m.group(1)), int(m.group(2))
            total += value * (states[:, dim] == level)
        elif m := _ANY_TERM.match(term):
            wanted = [int(x) for x in m.group(1).split("Or")]
            total += value * np.isin(states, wanted).any(axis=1)
        else:
            raise ValueError(f"{filename}: unsupported value-set term {term!r}")
    return total / scale


@lru_cache(maxsize=None)
def lookup_table(filename: str, value_column: str, levels: int) -> np.ndarray:
    """Utilities of all states from a (state, value) table covering every state once."""
    table = pd.read_csv(DATA_DIR / filename, dtype={"state": str})
    idx = _parse_state_strings(table["state"], levels, filename)
    out = np.full(levels ** 5, np.nan)
    out[idx] = table[value_column].to_numpy(float)
    if len(table) != levels ** 5 or np.isnan(out).any():
        raise ValueError(f"{filename}: must list each of the {levels ** 5} states exactly once")
    return out


@lru_cache(maxsize=None)
def age_sex_table(filename: str, value_column: str, levels: int,
                  bands: tuple[str, ...], sexes: tuple[str, ...]) -> np.ndarray:
    """Utilities indexed by ``(state_index * n_bands + band) * n_sexes + sex``."""
    table = pd.read_csv(DATA_DIR / filename, dtype={"state": str, "age_band": str, "sex": str})
    state = _parse_state_strings(table["state"], levels, filename)
    band = table["age_band"].map({b: i for i, b in enumerate(bands)})
    sex = table["sex"].map({s: i for i, s in enumerate(sexes)})
    if band.isna().any() or sex.isna().any():
        raise ValueError(f"{filename}: age bands must be {bands} and sexes {sexes}")
    key = (state * len(bands) + band.to_numpy(np.int64)) * len(sexes) + sex.to_numpy(np.int64)
    size = levels ** 5 * len(bands) * len(sexes)
    out = np.full(size, np.nan)
    out[key] = table[value_column].to_numpy(float)
    if len(table) != size or np.isnan(out).any():
        raise ValueError(f"{filename}: must list every state x age band x sex exactly once")
    return out


# --------------------------------------------------------------------------- covariates

def _covariate(responses: pd.DataFrame, given, default_column: str, what: str,
               scalar_words: frozenset = frozenset()) -> pd.Series:
    """A per-row covariate from a column name, a Series (aligned on the index), an array
    of the frame's length, or a scalar; defaults to the column ``default_column``.
    A string is a column name, unless it is not a column and is one of ``scalar_words``
    (e.g. ``sex="female"`` for a single-sex sample)."""
    if given is None:
        given = default_column
        if given not in responses.columns:
            raise ValueError(
                f"eq5d5l method 'dsu' needs {what}: pass {what}= (a column name, Series or value) "
                f"or include a column named '{default_column}'")
    if isinstance(given, str):
        if given in responses.columns:
            return responses[given]
        if given.strip().lower() in scalar_words:
            return pd.Series([given] * len(responses), index=responses.index, dtype=object)
        raise ValueError(f"{what} column {given!r} not in responses")
    if isinstance(given, pd.Series):
        if given.index.equals(responses.index):
            return given
        if responses.index.isin(given.index).all() and given.index.is_unique:
            return given.reindex(responses.index)
        raise ValueError(f"{what} Series index does not cover the responses index")
    if np.ndim(given) == 0:
        return pd.Series([given] * len(responses), index=responses.index, dtype=object)
    arr = np.asarray(given, dtype=object)
    if len(arr) != len(responses):
        raise ValueError(f"{what} has {len(arr)} values for {len(responses)} rows")
    return pd.Series(arr, index=responses.index)


def _age_bands(age: pd.Series, spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(band index or -1, message or None) per row."""
    mins = np.array([b["min"] for b in spec["age_bands"]], dtype=float)
    max_age = float(spec.get("max_age", np.inf))
    numbers = pd.to_numeric(age, errors="coerce").astype("Float64").to_numpy(float, na_value=np.nan)
    absent = age.isna().to_numpy(bool) | (age.astype("string").str.strip() == "").fillna(True).to_numpy(bool)
    band = np.searchsorted(mins, np.nan_to_num(numbers, nan=-np.inf), side="right") - 1
    ok = ~np.isnan(numbers) & (numbers >= mins[0]) & (numbers <= max_age)
    messages = np.full(len(age), None, dtype=object)
    messages[absent] = "age missing"
    limits = f"{format_value(mins[0])}-{format_value(max_age)}"
    raw = age.to_numpy(dtype=object)
    for row in np.flatnonzero(~ok & ~absent):
        shown = format_value(numbers[row]) if not np.isnan(numbers[row]) else repr(str(raw[row]))
        messages[row] = f"age {shown} outside {limits} supported by the DSU mapping"
    return np.where(ok, band, -1), messages


def _sex_index(sex: pd.Series, sexes: list[str], sex_codes: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """(sex index or -1, message or None) per row. Accepts the labels and their initials,
    case-insensitively; other codes need ``sex_codes`` (e.g. {1: "male", 2: "female"})."""
    if sex_codes:
        recoded = sex.map(lambda v: sex_codes.get(v, v))
    else:
        recoded = sex
    text = recoded.astype("string").str.strip().str.lower()
    accepted = {s.lower(): i for i, s in enumerate(sexes)} | {s[0].lower(): i for i, s in enumerate(sexes)}
    index = text.map(accepted).astype("Float64").to_numpy(float, na_value=np.nan)
    absent = (text.isna() | (text == "")).fillna(True).to_numpy(bool)
    messages = np.full(len(sex), None, dtype=object)
    messages[absent] = "sex missing"
    raw = sex.to_numpy(dtype=object)
    for row in np.flatnonzero(np.isnan(index) & ~absent):
        messages[row] = (f"sex {raw[row]!r} not recognised (expected {'/'.join(sexes)}; "
                         f"pass sex_codes= to map other codes)")
    return np.where(np.isnan(index), -1, index).astype(np.int64), messages


# --------------------------------------------------------------------------- scorer

def score_eq5d(spec: Spec, responses: pd.DataFrame, options: dict) -> pd.DataFrame:
    """``<id>_index`` (utility), ``<id>_method`` and ``<id>_reason``."""
    missing_allowance(spec, options)  # EQ-5D needs all five dimensions: refuses max_missing > 0
    levels = int(spec.scoring["levels"])
    methods = spec.scoring["methods"]
    method = options.get("method") or spec.scoring["default_method"]
    if method not in methods:
        raise ValueError(f"{spec.id}: unknown method {method!r}; choose one of {sorted(methods)}")
    columns = spec.item_columns(options.get("source"))
    require_columns(responses, columns, spec.id)
    items = read_items(responses, columns, spec.codes, options.get("missing_codes"))
    complete = ~items.unusable.any(axis=1)
    state = np.zeros(len(responses), dtype=np.int64)
    state[complete] = state_index(items.values[complete].astype(np.int64), levels)

    chosen = methods[method]
    extra = None
    if chosen["kind"] == "valueset":
        table = valueset_table(chosen["table"], levels, int(chosen.get("decimals", 3)))
        utility = np.where(complete, table[state], np.nan)
    elif chosen["kind"] == "lookup":
        table = lookup_table(chosen["table"], chosen["value_column"], levels)
        utility = np.where(complete, table[state], np.nan)
    else:
        utility, extra = _score_age_sex(chosen, responses, options, levels, state, complete)
    out = {
        f"{spec.id}_index": utility,
        f"{spec.id}_method": pd.array([method] * len(responses), dtype="string"),
        f"{spec.id}_reason": build_reasons(np.isnan(utility), items.messages, *(extra or [])),
    }
    return pd.DataFrame(out, index=responses.index)


def _score_age_sex(chosen: dict, responses: pd.DataFrame, options: dict, levels: int,
                   state: np.ndarray, complete: np.ndarray):
    bands = tuple(b["label"] for b in chosen["age_bands"])
    sexes = tuple(chosen["sexes"])
    table = age_sex_table(chosen["table"], chosen["value_column"], levels, bands, sexes)
    age = _covariate(responses, options.get("age"), "age", "age")
    words = frozenset(s.lower() for s in sexes) | frozenset(s[0].lower() for s in sexes)
    sex = _covariate(responses, options.get("sex"), "sex", "sex", words)
    band, age_msg = _age_bands(age, chosen)
    sex_idx, sex_msg = _sex_index(sex, list(sexes), options.get("sex_codes"))
    ok = complete & (band >= 0) & (sex_idx >= 0)
    key = (state * len(bands) + np.maximum(band, 0)) * len(sexes) + np.maximum(sex_idx, 0)
    return np.where(ok, table[key], np.nan), [age_msg, sex_msg]
