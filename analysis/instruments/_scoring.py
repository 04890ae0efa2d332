"""Scorers for summed scales (`sum`) and separately reported items (`separate`)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ._definitions import DATA_DIR, Spec
from ._items import ItemResponses, build_reasons, read_items, require_columns

COMMON_OPTIONS = frozenset({"missing_codes", "max_missing", "subscale_max_missing", "source", "strict"})


# --------------------------------------------------------------------------- item scores

def item_scores(spec: Spec, values: np.ndarray) -> np.ndarray:
    """Response codes -> item scores: the definition's ``item_scores`` map, then reverse keying.

    A reverse-keyed item scores ``lowest + highest - score`` over the possible item scores.
    """
    scores = values.copy()
    if spec.item_scores:
        codes = np.array(sorted(spec.item_scores), dtype=float)
        mapped = np.array([spec.item_scores[c] for c in sorted(spec.item_scores)], dtype=float)
        present = ~np.isnan(values)
        scores[present] = mapped[np.searchsorted(codes, values[present])]
    if spec.reverse:
        possible = (np.array(list(spec.item_scores.values()), dtype=float)
                    if spec.item_scores else spec.codes)
        rev = list(spec.reverse)
        scores[:, rev] = possible.min() + possible.max() - scores[:, rev]
    return scores


def missing_allowance(spec: Spec, options: dict) -> tuple[int, int]:
    """(max_missing, subscale_max_missing) from options or the definition, within its limit."""
    limit = spec.missing["max_missing_limit"]
    allowed = []
    for key in ("max_missing", "subscale_max_missing"):
        value = options.get(key, spec.missing[key])
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{spec.id}: {key} must be a non-negative integer, got {value!r}")
        if value > limit:
            raise ValueError(
                f"{spec.id}: {key}={value} exceeds the documented limit of {limit} missing items "
                f"for this instrument (definition missing.max_missing_limit)")
        allowed.append(int(value))
    return allowed[0], allowed[1]


def scale_score(scores: np.ndarray, unusable: np.ndarray, invalid: np.ndarray,
                positions: tuple[int, ...], max_missing: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the items at ``positions``; prorated (mean x n items) when up to ``max_missing``
    answers are missing. An invalid answer always leaves the score missing.

    Returns (score, number of unusable items).
    """
    idx = list(positions)
    k = len(idx)
    n_bad = unusable[:, idx].sum(axis=1)
    answered = k - n_bad
    total = np.nansum(scores[:, idx], axis=1)
    ok = (n_bad <= max_missing) & ~invalid[:, idx].any(axis=1) & (answered > 0)
    prorated = np.divide(total * k, answered, out=np.full(len(total), np.nan), where=answered > 0)
    result = np.where(n_bad == 0, total, prorated)
    return np.where(ok, result, np.nan), n_bad


def assign_bands(values: np.ndarray, bands: list[dict]) -> pd.Categorical:
    """Ordered band labels; a value takes the last band whose ``min`` it reaches, up to the
    top band's ``max``. NaN or out-of-range values get no band."""
    labels = [b["label"] for b in bands]
    mins = np.array([b["min"] for b in bands], dtype=float)
    safe = np.where(np.isnan(values), -np.inf, values)
    pos = np.searchsorted(mins, safe, side="right") - 1
    in_range = (pos >= 0) & (safe <= bands[-1]["max"]) & ~np.isnan(values)
    codes = np.where(in_range, pos, -1)
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)


@lru_cache(maxsize=None)
def _conversion_table(filename: str) -> pd.Series:
    table = pd.read_csv(DATA_DIR / filename)
    if list(table.columns[:2]) != ["raw", "metric"] or table["raw"].duplicated().any():
        raise ValueError(f"conversion table {filename} needs unique 'raw' and a 'metric' column")
    return pd.Series(table["metric"].to_numpy(float), index=table["raw"].to_numpy(float))


def _read(spec: Spec, responses: pd.DataFrame, options: dict) -> ItemResponses:
    columns = spec.item_columns(options.get("source"))
    require_columns(responses, columns, spec.id)
    return read_items(responses, columns, spec.codes, options.get("missing_codes"))


# --------------------------------------------------------------------------- scorers

def score_sum(spec: Spec, responses: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Total (optionally converted and banded) and subscales of a summed scale."""
    items = _read(spec, responses, options)
    max_missing, sub_max_missing = missing_allowance(spec, options)
    scores = item_scores(spec, items.values)
    out: dict[str, object] = {}
    unscored = np.zeros(len(responses), dtype=bool)
    summary = np.full(len(responses), None, dtype=object)
    if spec.scoring.get("total", True):
        total, n_bad = scale_score(scores, items.unusable, items.invalid,
                                   tuple(range(spec.n_items)), max_missing)
        out[f"{spec.id}_total"] = total
        unscored |= np.isnan(total)
        if max_missing:
            out[f"{spec.id}_n_missing"] = n_bad
            too_many = n_bad > max_missing
            summary[too_many] = [f"{m} items missing, more than max_missing={max_missing}"
                                 for m in n_bad[too_many]]
        conversion = spec.scoring.get("conversion")
        if conversion:
            table = _conversion_table(conversion["table"])
            out[f"{spec.id}_{conversion['output']}"] = table.reindex(total).to_numpy(float)
        if spec.scoring.get("bands"):
            out[f"{spec.id}_total_band"] = assign_bands(total, spec.scoring["bands"])
    for name, positions in spec.subscales.items():
        sub, _ = scale_score(scores, items.unusable, items.invalid, positions, sub_max_missing)
        out[f"{spec.id}_{name}"] = sub
        unscored |= np.isnan(sub)
    out[f"{spec.id}_reason"] = build_reasons(unscored, items.messages, summary)
    return pd.DataFrame(out, index=responses.index)


def score_separate(spec: Spec, responses: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Each configured item reported on its own (with optional bands); no total."""
    items = _read(spec, responses, options)
    missing_allowance(spec, options)
    scores = item_scores(spec, items.values)
    out: dict[str, object] = {}
    unscored = np.zeros(len(responses), dtype=bool)
    for output in spec.scoring["outputs"]:
        value = scores[:, output["item"] - 1]
        out[f"{spec.id}_{output['name']}"] = value
        if output.get("bands"):
            out[f"{spec.id}_{output['name']}_band"] = assign_bands(value, output["bands"])
        unscored |= np.isnan(value)
    out[f"{spec.id}_reason"] = build_reasons(unscored, items.messages)
    return pd.DataFrame(out, index=responses.index)


def item_score_frame(spec: Spec, responses: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Scored items (after recoding and reverse keying) as a frame, NaN where unusable."""
    items = _read(spec, responses, options)
    return pd.DataFrame(item_scores(spec, items.values), index=responses.index,
                        columns=[f"{spec.id}_{k}" for k in range(1, spec.n_items + 1)])
