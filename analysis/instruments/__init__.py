"""Questionnaire scoring for Pathways: definitions as data, vectorised scoring, reliability.

Public API::

    score(instrument_id, responses, *, overrides=None, **options) -> DataFrame
    reliability(instrument_id, responses, *, overrides=None, **options) -> DataFrame
    list_instruments() -> list[str]
    get_definition(instrument_id, overrides=None) -> dict
    register_definition(definition_or_yaml_path, replace=False) -> str
    score_columns(instrument_id, *, overrides=None, **options) -> dict[str, str]

Item columns are ``<id>_<k>`` (k = 1..n in published item order). Each instrument is a YAML
file in ``definitions/``; lookup tables are in ``data/`` (see ``data/PROVENANCE.md``).
Full documentation: ``docs/instruments.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import pandas as pd

from ._definitions import (
    DefinitionError,
    ProvisionalDefinitionWarning,
    Spec,
    apply_switches,
    get_definition,
    list_instruments,
    merge_overrides,
    provisional_facts,
    register_definition,
    unregister_definition,
    validate_definition,
)
from ._eq5d import EQ5D_OPTIONS, score_eq5d
from ._reliability import reliability_frame
from ._scoring import COMMON_OPTIONS, score_separate, score_sum

__all__ = [
    "score", "reliability", "list_instruments", "get_definition", "register_definition",
    "unregister_definition", "merge_overrides", "validate_definition", "provisional_facts",
    "ProvisionalDefinitionWarning", "DefinitionError", "score_columns",
]

_SCORERS = {"sum": score_sum, "separate": score_separate, "eq5d": score_eq5d}
_METHOD_OPTIONS = {"sum": frozenset(), "separate": frozenset(), "eq5d": EQ5D_OPTIONS}


def _prepare(instrument_id: str, overrides: Mapping | None, options: dict) -> tuple[Spec, dict]:
    """Definition with overrides and switches applied, options checked, provisional facts flagged."""
    defn = get_definition(instrument_id, overrides)
    defn, options = apply_switches(defn, options)
    spec = Spec.from_definition(defn)
    allowed = COMMON_OPTIONS | _METHOD_OPTIONS[spec.method]
    unknown = sorted(set(options) - allowed)
    if unknown:
        choices = sorted(allowed | set(defn.get("switches") or {}))
        raise ValueError(f"{instrument_id}: unknown options {unknown}; allowed: {choices}")
    pending = provisional_facts(defn)
    if pending:
        message = (f"{instrument_id}: scoring uses provisional/unverified definition facts "
                   f"{pending}; check them against the primary source and confirm or override "
                   f"them from the trial config (see docs/instruments.md)")
        if options.get("strict"):
            raise ValueError(message)
        warnings.warn(message, ProvisionalDefinitionWarning, stacklevel=3)
    return spec, options


def score(instrument_id: str, responses: pd.DataFrame, *, overrides: Mapping | None = None,
          **options) -> pd.DataFrame:
    """Score one instrument for every row of ``responses``; the result has the same index.

    Outputs ``<id>_total`` / ``<id>_index`` / ``<id>_<subscale or item name>`` as the
    instrument defines, plus ``<id>_reason`` (<NA> when every output was scored, else why
    not). A bad row never raises: its scores are NaN and the reason says why.

    Options (all instruments): ``overrides`` (dict deep-merged into the definition),
    ``missing_codes`` (values treated as missing, e.g. [-99, "UNK"]), ``max_missing`` and
    ``subscale_max_missing`` (items that may be missing before a score is prorated; capped by
    the definition's ``max_missing_limit``), ``source`` (a named alternative column set, e.g.
    ``source="wemwbs"`` for SWEMWBS), ``strict`` (raise instead of warning when provisional
    facts are used). EQ-5D: ``method``, ``age``, ``sex``, ``sex_codes``. Definition switches,
    e.g. ``count_self=True`` for RG-UK.

    Raises ValueError for an unknown instrument, unknown options or absent item columns.
    """
    spec, options = _prepare(instrument_id, overrides, options)
    return _SCORERS[spec.method](spec, responses, options)


def reliability(instrument_id: str, responses: pd.DataFrame, *,
                overrides: Mapping | None = None, level: float = 0.95, **options) -> pd.DataFrame:
    """Cronbach's alpha (CI at ``level``, pingouin.cronbach_alpha) for the total and each subscale.

    Uses scored items (after recoding and reverse keying) and complete cases per scale.
    Columns: instrument, scale, n, n_items, alpha, ci_low, ci_high. Group by time point
    before calling. Accepts the same options as :func:`score`.
    """
    spec, options = _prepare(instrument_id, overrides, options)
    return reliability_frame(spec, responses, options, level)


def score_columns(instrument_id: str, *, overrides: Mapping | None = None, **options) -> dict[str, str]:
    """The numeric score columns :func:`score` produces with these options, each with its
    direction: ``'higher'`` or ``'lower'`` (which way is better, from the definition).

    Scores nothing: the scorer runs on an empty frame, so the names are exactly those of a real
    run (totals, subscales, conversions, EQ-5D index; bands, methods and reasons excluded)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProvisionalDefinitionWarning)
        spec, opts = _prepare(instrument_id, overrides, dict(options))
    empty = pd.DataFrame({c: pd.Series([], dtype="Float64") for c in spec.item_columns(opts.get("source"))})
    if spec.method == "eq5d":
        opts = {**opts, "age": pd.Series([], dtype="Float64"), "sex": pd.Series([], dtype=object)}
    out = _SCORERS[spec.method](spec, empty, opts)
    per_output = {f"{spec.id}_{o['name']}": o["direction"] for o in spec.scoring.get("outputs") or []}
    return {c: per_output.get(c, spec.scoring["direction"]) for c in out.columns
            if pd.api.types.is_float_dtype(out[c]) or pd.api.types.is_integer_dtype(out[c])}
