"""The config keys each stage reads: every rule is passed only those, as its parameters.

Snakemake reruns a job when one of its parameters changes, so a rule that took the whole
config would rerun on any edit (``report.formats`` reran ingest) and print the whole config as
"Params have changed".  Each rule therefore gets :func:`stage_config`: the validated config cut
down to the keys below, with every mapping's keys sorted, so

* an edit reruns only the stages that read the edited key (and what depends on their outputs);
* the same config with its keys in another order reruns nothing (YAML mappings have no order,
  and no stage sees the order).  Mappings arrive sorted by key, except ``instruments`` and
  ``prescored``, whose order is the order of the score columns and so of the rows of the
  feasibility table, Table 1 and the scoring summary: the primary outcome's first, then the
  secondary outcomes' in the order of ``outcomes.secondary`` (a list), then the rest by name.

A key is a dotted path; it brings its whole subtree (``"design"`` is every design key, lists
such as ``data.waves`` come whole).  A key the config does not have is left out, exactly as in
the full config, so ``cfg.get(...)`` sees the same thing in both.

The report rules (the statistician's, and the funder's and ethics committee's, which carry the
methods, front matter and provenance sections) get every key except those that only choose which documents are made
(:data:`REPORT_OMITS`): it writes ``manifest.json``, whose ``config_sha256`` records the whole
analysis plan for reviewers.

A rule passes its sub-config as one parameter per second-level key (:func:`as_params`:
``{"economics": {"bootstrap": {...}}}``), so when Snakemake reruns a job because a parameter
changed, its "Params have changed" message shows only that part of the config, before and
after; the stage's script puts them together again (:func:`from_params`).

A stage that starts reading a new key must list it here: tests/test_stage_config.py runs every
stage on the example trials with a config that records each key read and fails naming any
key a stage reads but is not passed.
"""

from __future__ import annotations

import copy
from typing import Any

STAGE_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    # which columns each file must have depends on the analyses that use them
    "ingest": ("trial_id", "blinded", "data", "design.type", "design.control_arm", "design.intervention_arm",
               "design.stratification", "covariates", "instruments", "instrument_definitions", "prescored",
               "pseudonymisation", "primary.covariates", "outcomes.effect_modifiers",
               "outcomes.multiple_imputation.auxiliary", "economics.enabled",
               "economics.multiple_imputation.auxiliary", "economics.service_items", "economics.time_basis",
               "feasibility.adherence_min_sessions", "feasibility.progression_criteria",
               "feasibility.recruitment_period"),
    "score": ("data.waves", "instruments", "instrument_definitions", "prescored", "outcomes.confidence_level"),
    "link": ("data.raw_dir", "data.waves", "covariates"),
    "feasibility": ("blinded", "covariates", "data.adverse_events", "data.fidelity", "data.screening", "data.waves",
                    "design.type", "design.allocation", "design.control_arm", "design.intervention_arm",
                    "design.arm_labels", "feasibility", "instruments", "instrument_definitions", "prescored", "outcomes.labels",
                    "primary.outcome"),
    "outcome": ("seed", "blinded", "covariates", "data.waves", "design", "instruments", "instrument_definitions",
                "prescored", "primary", "outcomes", "propensity"),
    # a non-randomised comparison weights the economic evaluation by the outcome analysis's propensity score
    "economics": ("seed", "design.type", "design.allocation", "design.intervention_arm", "economics",
                  "outcomes.confidence_level", "propensity.covariates", "propensity.estimand", "propensity.stabilise",
                  "propensity.trim"),
    # labels of outcomes (analysis.config.score_labels) come from instruments, prescored and outcomes.labels
    "planning": ("covariates", "data.waves", "design",
                 "feasibility.confidence_level", "feasibility.recruitment_period", "instruments",
                 "instrument_definitions", "prescored", "outcomes.confidence_level", "outcomes.labels", "planning",
                 "primary"),
    # simulation-based power: the set-up, each batch and the gathered table (workflow/rules/planning.smk)
    "power": ("seed", "covariates", "data.waves", "design",
              "outcomes.confidence_level", "planning", "primary"),
    # value for money of a single-arm study (workflow/rules/value.smk); labels and directions of outcomes
    # (analysis.config.score_labels, score_directions) come from instruments, prescored and outcomes
    "value": ("data.waves", "instruments", "instrument_definitions", "prescored", "primary.outcome",
              "primary.timepoint", "outcomes.direction", "outcomes.labels", "value_for_money"),
    # community programme monitoring (design.type programme; workflow/rules/programme.smk)
    "programme_ingest": ("data", "programme.indicators", "programme.neighbourhoods", "programme.funding_sources",
                         "programme.survey.design"),
    "programme": ("title", "data.funding", "data.survey", "programme"),
}

# Keys that choose which report documents exist, not what any of them says: the document rules
# follow them (a new format or audience adds jobs); no stage reads them.
REPORT_OMITS = ("report.formats", "report.audiences")

# The statistician's report and the funder and ethics reports (one rule, wildcard audience): the
# latter two now carry the methods, front matter and provenance, which read most of the plan.
WHOLE_PLAN_STAGES = ("report", "audience_report")

STAGES = (*STAGE_CONFIG_KEYS, *WHOLE_PLAN_STAGES)


# Top-level mappings whose keys name outcomes (an instrument, a pre-scored outcome): ordered by
# the analysis order of the outcomes they give (see module doc), not by name.
OUTCOME_ORDERED = ("instruments", "prescored")


def outcome_order(cfg: dict) -> list[str]:
    """The outcomes in analysis order: the primary, then the secondary ones (each once)."""
    primary = (cfg.get("primary") or {}).get("outcome")
    secondary = (cfg.get("outcomes") or {}).get("secondary") or []
    return list(dict.fromkeys([y for y in [primary, *secondary] if y]))


def _outcome_rank(outcomes: list[str]):
    def rank(name: str) -> tuple[int, str]:
        # an instrument gives <name>_total, <name>_index, ...; a pre-scored outcome is its own column
        hits = [i for i, y in enumerate(outcomes) if y == name or y.startswith(f"{name}_")]
        return (min(hits) if hits else len(outcomes), str(name))
    return rank


def canonical(value: Any, outcomes: list[str] | None = None, _top: bool = True) -> Any:
    """A deep copy with every mapping's keys sorted (lists keep their order); at the top level,
    ``instruments`` and ``prescored`` in the order of ``outcomes`` (:func:`outcome_order`)."""
    if isinstance(value, dict):
        out = {}
        for k in sorted(value, key=str):
            v = value[k]
            if _top and k in OUTCOME_ORDERED and isinstance(v, dict):
                out[k] = {n: canonical(v[n], _top=False) for n in sorted(v, key=_outcome_rank(outcomes or []))}
            else:
                out[k] = canonical(v, _top=False)
        return out
    if isinstance(value, list):
        return [canonical(v, _top=False) for v in value]
    return copy.deepcopy(value)


def _lookup(cfg: dict, parts: list[str]) -> tuple[bool, Any]:
    node: Any = cfg
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            return False, None
        node = node[p]
    return True, node


def select(cfg: dict, keys: tuple[str, ...] | list[str]) -> dict:
    """The keys (dotted paths) of ``cfg`` that it has, with their subtrees, in canonical order."""
    out: dict = {}
    for key in keys:
        parts = key.split(".")
        found, value = _lookup(cfg, parts)
        if not found:
            continue
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = copy.deepcopy(value)
    return canonical(out, outcome_order(cfg))


def omit(cfg: dict, keys: tuple[str, ...] | list[str]) -> dict:
    """``cfg`` without the keys (dotted paths), in canonical order."""
    out = copy.deepcopy(cfg)
    for key in keys:
        parts = key.split(".")
        found, parent = _lookup(out, parts[:-1])
        if found and isinstance(parent, dict):
            parent.pop(parts[-1], None)
    return canonical(out, outcome_order(cfg))


def as_params(sub: dict) -> dict[str, dict]:
    """A rule's named parameters for the sub-config ``sub``: one per second-level key
    (``{"economics": {"bootstrap": {...}}}``), one per top-level key that is not a mapping."""
    params = []
    for k, v in sub.items():
        if isinstance(v, dict) and v:
            params += [{k: {k2: v2}} for k2, v2 in v.items()]
        else:
            params.append({k: v})
    return {f"config_{i}": p for i, p in enumerate(params)}


def from_params(params) -> dict:
    """The sub-config from a job's parameters (``snakemake.params``): the inverse of
    :func:`as_params` (the parameters are in canonical order)."""
    cfg: dict = {}
    for name, value in params.items():
        if name.startswith("config_"):
            for k, v in value.items():
                if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                    cfg[k].update(v)
                else:
                    cfg[k] = dict(v) if isinstance(v, dict) else v
    return cfg


def stage_config(stage: str, cfg: dict) -> dict:
    """The sub-config the rule of ``stage`` passes to the stage's ``run`` (see module doc)."""
    if stage in WHOLE_PLAN_STAGES:
        return omit(cfg, REPORT_OMITS)
    try:
        keys = STAGE_CONFIG_KEYS[stage]
    except KeyError:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}") from None
    return select(cfg, keys)
