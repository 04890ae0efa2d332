"""Reading item responses: numeric coercion, allowed-code checks and per-row reasons."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype


@dataclass
class ItemResponses:
    """Item responses as a float matrix plus what was wrong with each cell.

    ``values`` holds the response code, NaN where the answer is missing or invalid.
    ``messages`` holds, per cell, why it is unusable (None when it is fine).
    """

    columns: list[str]
    values: np.ndarray
    missing: np.ndarray
    invalid: np.ndarray
    messages: np.ndarray

    @property
    def unusable(self) -> np.ndarray:
        return self.missing | self.invalid


def require_columns(responses: pd.DataFrame, columns: Iterable[str], instrument_id: str) -> None:
    """Raise a ValueError naming every required column absent from ``responses``."""
    if not isinstance(responses, pd.DataFrame):
        raise TypeError(f"responses must be a pandas DataFrame, not {type(responses).__name__}")
    absent = [c for c in columns if c not in responses.columns]
    if absent:
        raise ValueError(f"{instrument_id}: responses lack item columns {absent}")


def format_codes(codes: Sequence[float]) -> str:
    """'1-5' for a run of consecutive integers, else a comma list."""
    ints = [int(c) for c in codes if float(c).is_integer()]
    if len(ints) == len(codes) and len(ints) > 1 and ints == list(range(ints[0], ints[-1] + 1)):
        return f"{ints[0]}-{ints[-1]}"
    return ", ".join(format_value(c) for c in codes)


def format_value(value) -> str:
    if isinstance(value, str):
        return repr(value)
    as_float = float(value)
    return str(int(as_float)) if as_float.is_integer() else repr(as_float)


def _as_numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numbers, is_missing, is_non_numeric) for one column; blank strings count as missing."""
    if is_numeric_dtype(column) or is_bool_dtype(column):
        numbers = column.to_numpy(dtype=float, na_value=np.nan)
        return numbers, np.isnan(numbers), np.zeros(len(column), dtype=bool)
    text = column.astype("string").str.strip()
    is_missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    numbers = pd.to_numeric(text.mask(is_missing), errors="coerce")
    numbers = numbers.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    return numbers, is_missing, np.isnan(numbers) & ~is_missing


def read_items(responses: pd.DataFrame, columns: Sequence[str], codes: np.ndarray,
               missing_codes: Iterable | None = None) -> ItemResponses:
    """Coerce item columns to codes; flag missing answers and values outside ``codes``.

    ``missing_codes`` (e.g. ``[-99, "UNK"]`` from a REDCap project) are treated as missing.
    """
    n, k = len(responses), len(columns)
    values = np.full((n, k), np.nan)
    missing = np.zeros((n, k), dtype=bool)
    invalid = np.zeros((n, k), dtype=bool)
    messages = np.full((n, k), None, dtype=object)
    codes_text = format_codes(codes)
    missing_codes = list(missing_codes or [])
    for j, name in enumerate(columns):
        column = responses[name]
        if missing_codes:
            column = column.mask(_matches_any(column, missing_codes))
        numbers, is_missing, non_numeric = _as_numbers(column)
        bad_code = ~np.isnan(numbers) & ~np.isin(numbers, codes)
        is_invalid = non_numeric | bad_code
        values[:, j] = np.where(is_invalid, np.nan, numbers)
        missing[:, j] = is_missing
        invalid[:, j] = is_invalid
        messages[is_missing, j] = f"item {name} missing"
        raw = column.to_numpy(dtype=object)
        for row in np.flatnonzero(is_invalid):
            shown = raw[row].strip() if np.isnan(numbers[row]) else numbers[row]
            messages[row, j] = f"item {name} value {format_value(shown)} not in allowed codes {codes_text}"
    if k > 1:  # an empty form gets one message, not one per item
        blank = missing.all(axis=1)
        messages[blank, :] = None
        messages[blank, 0] = f"all {k} items missing"
    return ItemResponses(list(columns), values, missing, invalid, messages)


def _matches_any(column: pd.Series, missing_codes: list) -> pd.Series:
    """Cells equal to a missing-data code, compared as numbers and as stripped text."""
    as_text = column.astype("string").str.strip()
    hit = as_text.isin([str(c).strip() for c in missing_codes])
    numeric_codes = [float(c) for c in missing_codes
                     if not isinstance(c, bool) and _is_number(c)]
    if numeric_codes:
        numbers = pd.to_numeric(as_text, errors="coerce").astype("Float64")
        hit = hit | numbers.isin(numeric_codes)
    return hit.fillna(False).astype(bool)


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def build_reasons(needs_reason: np.ndarray, *message_blocks: np.ndarray) -> pd.array:
    """Per-row reason strings: the non-empty messages of each row that needs one, joined by '; '.

    ``message_blocks`` are object arrays of shape (n,) or (n, k) holding a message or None.
    Rows that do not need a reason get <NA>.
    """
    n = len(needs_reason)
    blocks = [b if b.ndim == 2 else b[:, None] for b in message_blocks if b is not None]
    reasons = np.full(n, None, dtype=object)
    for row in np.flatnonzero(needs_reason):
        parts = [m for block in blocks for m in block[row] if m]
        reasons[row] = "; ".join(parts) if parts else "not scored"
    return pd.array(reasons, dtype="string")
