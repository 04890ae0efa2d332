"""Trial configuration: JSON-Schema validation with defaults filled in.

One trial is one YAML file validated against ``workflow/schemas/config.schema.yaml``.  An
invalid file fails with a message naming the offending key (``data.waves[1].month``), the value
and the rule it breaks.

A config is untrusted data: it is read with :mod:`analysis.safe_yaml` (no YAML tags, no
templating such as Snakemake's YTE, no anchor bombs, no duplicate keys), and every file it
names must lie inside ``data.raw_dir`` (no absolute paths, no ``..``, no links leading out of
it), so a config can neither run code nor make Pathways read (and echo) files elsewhere.

    python -m analysis.config                 # print the config reference (docs/config.md)
    python -m analysis.config --check FILE    # refuse FILE unless it is safe and valid
"""

from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import jsonschema
import yaml

from analysis import safe_yaml

# Inside the package, so `pip install .` has it too; workflow/schemas/config.schema.yaml (Snakemake's
# usual place) is a link to it.
SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"


class ConfigError(ValueError):
    """The trial configuration breaks the schema."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _fill_defaults(instance: Any, schema: dict) -> Any:
    """Recursively insert schema defaults for absent keys (objects and array items)."""
    if isinstance(instance, dict) and schema.get("type") in ("object", None):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                instance[key] = _fill_defaults(instance[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra.get("properties"):  # a map of objects: fill each value
            for key in instance:
                if key not in schema.get("properties", {}):
                    instance[key] = _fill_defaults(instance[key], extra)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_fill_defaults(x, schema["items"]) for x in instance]
    return instance


def _key_path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _nonfinite_keys(node: Any, key: str = "") -> list[str]:
    if isinstance(node, float) and not math.isfinite(node):
        return [key or "(top level)"]
    if isinstance(node, dict):
        return [k for name, v in node.items() for k in _nonfinite_keys(v, f"{key}.{name}" if key else str(name))]
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in _nonfinite_keys(v, f"{key}[{i}]")]
    return []


def validate_config(config: dict, schema: dict | None = None, *, check_plan: bool = True) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises :class:`ConfigError` listing every violation as ``key: message``.  With
    ``check_plan`` (the default) the analysis plan is also checked for consistency across keys
    (:func:`plan_problems`: the design's required inputs, outcomes and covariates that exist,
    progression criteria whose data are collected, ...), so that a mistake a config alone
    reveals stops the run before anything is read or written.
    """
    config = dict(config)
    design = config.get("design")
    if isinstance(design, dict) and "clustered" in design:
        raise ConfigError("Invalid trial configuration:\n  config key design.clustered: replaced by "
                          "design.type (cluster, individual, single_arm or programme; docs/designs.md)")
    schema = schema or load_schema()
    nonfinite = _nonfinite_keys(config)
    if nonfinite:
        raise ConfigError("Invalid trial configuration:\n  " + "\n  ".join(
            f"config key {k}: must be a finite number (.inf and .nan are not allowed)" for k in nonfinite))
    cfg = _fill_defaults(copy.deepcopy(config), schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for e in errors:
            key = _key_path(e)
            if e.validator == "additionalProperties":
                lines.append(f"config key {key}: {e.message} (unknown key: check its spelling)")
            else:
                lines.append(f"config key {key}: {e.message}")
        raise ConfigError("Invalid trial configuration:\n  " + "\n  ".join(lines))
    if cfg["design"]["type"] == "programme":  # aggregate monitoring: no waves, outcomes or models
        from analysis.programme import programme_plan_problems
        check_paths(cfg)
        problems = programme_plan_problems(config, cfg) if check_plan else []
        if problems:
            raise ConfigError("Invalid trial configuration:\n  " + "\n  ".join(problems))
        return cfg
    timepoints = [w["timepoint"] for w in cfg["data"]["waves"]]
    if len(set(timepoints)) != len(timepoints):
        raise ConfigError(f"config key data.waves: time points must be unique, got {timepoints}")
    months = [w["month"] for w in cfg["data"]["waves"]]
    known = [m for m in months if m is not None]
    if months[0] != 0 or known != sorted(known) or len(set(known)) != len(known):
        raise ConfigError(f"config key data.waves: months must start at 0 (baseline) and increase strictly "
                          f"(null for an unknown follow-up time), got {months}")
    tp = cfg["primary"]["timepoint"]
    if tp is not None and tp not in timepoints[1:]:
        raise ConfigError(f"config key primary.timepoint: {tp!r} is not a follow-up time point ({timepoints[1:]})")
    if cfg["design"]["type"] == "single_arm":  # no comparison group: nothing may name one
        d = cfg["design"]
        if "control_arm" not in (config.get("design") or {}):
            del d["control_arm"]
            d["arm_labels"] = {k: v for k, v in d["arm_labels"].items() if k != "control"}
    check_paths(cfg)
    if check_plan:
        problems = plan_problems(cfg)
        if problems:
            raise ConfigError("Invalid trial configuration:\n  " + "\n  ".join(problems))
    return cfg


# ---- the analysis plan, checked across keys ------------------------------------------------------

#: participant columns that are not declared covariates but may be adjusted for or tabulated
BUILTIN_PARTICIPANT = {"age": "numeric", "sex": "categorical"}
#: site-level columns carried onto every participant
BUILTIN_SITE = {"client_group": "categorical"}


def register_trial_instruments(cfg: dict) -> list[str]:
    """Register the trial's own instrument definitions (``instrument_definitions``); returns
    their ids.  Registering the same definition again is harmless."""
    from analysis import instruments

    ids = []
    for path in cfg.get("instrument_definitions") or []:
        try:
            ids.append(instruments.register_definition(path, replace=True))
        except FileNotFoundError:
            raise ConfigError(f"config key instrument_definitions: file {path!r} not found") from None
        except ValueError as e:
            raise ConfigError(f"config key instrument_definitions: {path}: {e}") from None
    return ids


def score_directions(cfg: dict) -> dict[str, str]:
    """Every outcome column the plan can analyse -> which way is better (higher/lower):
    instrument scores (from their definitions), then pre-scored columns, then the
    ``outcomes.direction`` overrides."""
    from analysis import instruments

    register_trial_instruments(cfg)
    out: dict[str, str] = {}
    for inst, opts in (cfg.get("instruments") or {}).items():
        opts = dict(opts or {})
        opts.pop("missing_codes", None)
        out.update(instruments.score_columns(inst, **opts))
    for name, spec in (cfg.get("prescored") or {}).items():
        out[name] = spec.get("direction", "higher")
    for name, d in ((cfg.get("outcomes") or {}).get("direction") or {}).items():
        if name in out:
            out[name] = d
    return out


def _instrument_short_name(name: str, instrument_id: str) -> str:
    """'Warwick-Edinburgh Mental Wellbeing Scale (WEMWBS)' -> 'WEMWBS'; 'EQ-5D-5L (UK / England
    utilities)' -> 'EQ-5D-5L'; a name without a parenthesis stays as it is."""
    m = re.fullmatch(r"\s*(.*?)\s*\(([^()]*)\)\s*", name or "")
    if not m:
        return name or instrument_id
    inner = m.group(2).strip()
    return inner if inner and " " not in inner else m.group(1)


def score_labels(cfg: dict) -> dict[str, str]:
    """Every outcome column the plan can analyse -> its display name in reports and figures:
    ``outcomes.labels`` if given, else the pre-scored column's ``label``, else the instrument's
    short name and the score's name ('EQ-5D-5L index', 'ONS4 life satisfaction'); a raw column
    name is shown only for a column nothing names."""
    from analysis import instruments

    register_trial_instruments(cfg)
    out: dict[str, str] = {}
    for inst, opts in (cfg.get("instruments") or {}).items():
        opts = dict(opts or {})
        opts.pop("missing_codes", None)
        try:
            short = _instrument_short_name(instruments.get_definition(inst).get("name", ""), inst)
        except Exception:  # noqa: BLE001 - an unknown instrument is refused elsewhere
            short = inst
        for col in instruments.score_columns(inst, **opts):
            rest = col[len(inst) + 1:] if col.startswith(inst + "_") else col
            out[col] = f"{short} {rest.replace('_', ' ')}".strip()
    for name, spec in (cfg.get("prescored") or {}).items():
        out[name] = spec.get("label") or name
    for name, label in ((cfg.get("outcomes") or {}).get("labels") or {}).items():
        out[name] = label
    return out


def allocated_to(cfg: dict) -> str:
    """The flow diagram's words for the arm boxes: 'Allocated to' in a randomised trial,
    'Assigned (not randomised) to' in a non-randomised comparison (``design.allocation``)."""
    if (cfg.get("design") or {}).get("allocation", "randomised") == "non_randomised":
        return "Assigned (not randomised) to"
    return "Allocated to"


def covariate_kinds(cfg: dict) -> dict[str, str]:
    """Participant-level columns usable as covariates -> categorical/numeric."""
    kinds = dict(BUILTIN_PARTICIPANT)
    kinds.update({k: v["type"] for k, v in (cfg.get("covariates") or {}).items()})
    if cfg["data"].get("sites"):
        kinds.update(BUILTIN_SITE)
    return kinds


def _propensity_problems(cfg: dict, kinds: dict, scores, usable: str) -> list[str]:
    """A non-randomised comparison needs a cluster or individual design and propensity
    covariates (and, in an individual design, no economic evaluation: the weighted bootstrap is
    checked for cluster designs only); propensity keys without it would be silently ignored, so
    they are refused."""
    d, ps = cfg["design"], cfg.get("propensity") or {}
    probs = []
    if d.get("allocation", "randomised") != "non_randomised":
        if ps.get("covariates"):
            probs.append("config key propensity.covariates: propensity weighting applies to a non-randomised "
                         "comparison only; set design.allocation: non_randomised (or remove the key)")
        return probs
    if d["type"] not in ("cluster", "individual"):
        probs.append(f"config key design.allocation: a non-randomised comparison is supported for cluster designs "
                     f"(intervention and comparison sites) and individual designs (participants in either group) "
                     f"only, not design.type {d['type']}")
    econ = cfg.get("economics") or {}
    if d["type"] == "individual" and econ.get("enabled"):
        probs.append("config key economics.enabled: the propensity-weighted economic evaluation is supported for "
                     "non-randomised cluster designs only, not yet for design.type individual; set "
                     "economics.enabled: false")
    if cfg.get("blinded"):
        probs.append("config key blinded: a non-randomised comparison has no allocation to blind")
    if not ps.get("covariates"):
        probs.append("config key propensity.covariates: a non-randomised comparison needs the baseline covariates "
                     "of the propensity score (e.g. [client_group, age, sex]); without them the groups are "
                     "compared as if allocation had been random")
    for c in ps.get("covariates", []):
        if c not in kinds and c not in scores:
            probs.append(f"config key propensity.covariates: {c!r} is not a covariate or score (usable: {usable}, "
                         "or an outcome score for its baseline value)")
    if econ.get("enabled") and econ.get("missing_data", "complete_case") != "complete_case":
        probs.append("config key economics.missing_data: the propensity-weighted economic evaluation of a "
                     "non-randomised comparison supports complete_case only (weighting is not combined with "
                     "multiple imputation)")
    if econ.get("enabled") and (econ.get("bootstrap") or {}).get("cluster_correction", "none") != "none":
        probs.append("config key economics.bootstrap.cluster_correction: the shrinkage correction is not combined "
                     "with the propensity weighting of a non-randomised comparison; use 'none'")
    return probs


# columns Pathways reads itself: no covariate or pre-scored column may take their names
_RESERVED_COLUMNS = frozenset({"participant_id", "site_id", "arm", "consent_date", "sessions_attended",
                               "withdrawal_date", "withdrawal_reason", "client_group", "timepoint", "visit_date"})
_FEASIBILITY_INDICATORS = frozenset({"eligibility", "consent", "recruitment_rate", "recruitment_vs_target",
                                     "retention", "intervention_receipt", "adherence", "fidelity", "withdrawal"})


def plan_problems(cfg: dict) -> list[str]:
    """Inconsistencies across keys of a schema-valid config (empty when the plan is coherent)."""
    probs = _design_problems(cfg) + _covariate_problems(cfg)
    probs += _instrument_problems(cfg)
    if any(p.startswith("config key instruments.") or p.startswith("config key instrument_definitions")
           for p in probs):
        return probs
    try:
        dirs = score_directions(cfg)
    except ValueError as e:
        return probs + [f"config key instruments: {e}"]
    hint = f" (outcome columns of this plan: {', '.join(sorted(dirs)) or 'none'})"
    probs += _outcome_problems(cfg, dirs, hint)
    probs += _model_covariate_problems(cfg, dirs)
    probs += _feasibility_problems(cfg, dirs, hint)
    probs += _wave_timing_problems(cfg)
    probs += _economics_problems(cfg, dirs, hint)
    probs += _value_problems(cfg, dirs)
    probs += _planning_problems(cfg)
    return probs


def _design_problems(cfg: dict) -> list[str]:
    """Design type against the sites file, blinding, the tipping-point arm and the arm codes."""
    probs: list[str] = []
    d, data = cfg["design"], cfg["data"]
    typ = d["type"]
    if typ == "cluster" and not data.get("sites"):
        probs.append("config key data.sites: a cluster design (design.type: cluster, the default) needs "
                     "the sites file, which holds each site's arm; for an individually randomised trial "
                     "set design.type: individual, for a study without a comparison group single_arm")
    if typ == "single_arm":
        if cfg.get("blinded"):
            probs.append("config key blinded: a single-arm study has no allocation to blind")
        if cfg["outcomes"]["tipping_point"]["arm"] != "intervention":
            probs.append("config key outcomes.tipping_point.arm: a single-arm study has only one arm")
    if typ == "single_arm" and "control_arm" in d:
        probs.append("config key design.control_arm: a single-arm study has no control arm (leave the key out)")
    if typ != "single_arm" and d["control_arm"] == d["intervention_arm"]:
        probs.append("config key design.intervention_arm: must differ from design.control_arm")
    return probs


def _covariate_problems(cfg: dict) -> list[str]:
    """Declared covariates: their type's keys, distinct levels, reserved names, strata and population."""
    probs: list[str] = []
    d = cfg["design"]
    covs = cfg.get("covariates") or {}
    for name, spec in covs.items():
        if spec["type"] == "numeric" and spec.get("levels") is not None:
            probs.append(f"config key covariates.{name}.levels: only a categorical covariate has levels")
        if spec["type"] == "categorical" and any(spec.get(k) is not None for k in ("min", "max")):
            probs.append(f"config key covariates.{name}: min/max apply to numeric covariates only")
        if spec.get("levels") and len({str(v) for v in spec["levels"]}) != len(spec["levels"]):
            probs.append(f"config key covariates.{name}.levels: levels must be distinct")
    for name in covs:
        if name in _RESERVED_COLUMNS:
            probs.append(f"config key covariates.{name}: {name!r} is a column Pathways reads itself; "
                         "choose another name (map the file's column with data.columns.participants)")
    for name in d["stratification"]:
        if name not in covs:
            probs.append(f"config key design.stratification: {name!r} is not declared under covariates")
    if d["population"] is not None:
        if d["population"] not in covs:
            probs.append(f"config key design.population: {d['population']!r} is not declared under covariates")
        elif covs[d["population"]]["type"] != "categorical":
            probs.append(f"config key design.population: {d['population']!r} must be a categorical covariate")
    return probs


def _instrument_problems(cfg: dict) -> list[str]:
    """Trial-specific instrument definitions that do not register and instruments with no definition."""
    from analysis import instruments

    probs: list[str] = []
    try:
        register_trial_instruments(cfg)
    except ConfigError as e:
        probs.append(str(e))
    known_inst = set(instruments.list_instruments())
    for inst in cfg.get("instruments") or {}:
        if inst not in known_inst:
            probs.append(f"config key instruments.{inst}: no instrument definition {inst!r} (known: "
                         f"{', '.join(sorted(known_inst))}; add a trial-specific one with "
                         "instrument_definitions)")
    return probs


def _outcome_problems(cfg: dict, dirs: dict, hint: str) -> list[str]:
    """Pre-scored columns and every outcome the plan names must be scores of this trial."""
    probs: list[str] = []
    covs = cfg.get("covariates") or {}
    for name, spec in (cfg.get("prescored") or {}).items():
        if any(name == c for c in dirs if c not in cfg["prescored"]):
            probs.append(f"config key prescored.{name}: an instrument already produces a score named {name!r}")
        if spec.get("min") is not None and spec.get("max") is not None and spec["min"] > spec["max"]:
            probs.append(f"config key prescored.{name}: min must not exceed max")
        tps = [w["timepoint"] for w in cfg["data"]["waves"]]
        for tp in spec.get("timepoints") or []:
            if tp not in tps:
                probs.append(f"config key prescored.{name}.timepoints: {tp!r} is not a time point ({tps})")
        if name in covs or name in _RESERVED_COLUMNS:
            probs.append(f"config key prescored.{name}: the name is also a covariate or reserved column")
    if cfg["primary"]["outcome"] not in dirs:
        probs.append(f"config key primary.outcome: {cfg['primary']['outcome']!r} is not a score of the "
                     f"configured instruments or a pre-scored column{hint}")
    for y in cfg["outcomes"]["secondary"]:
        if y not in dirs:
            probs.append(f"config key outcomes.secondary: {y!r} is not an outcome column{hint}")
    for y in (cfg["outcomes"].get("direction") or {}):
        if y not in dirs:
            probs.append(f"config key outcomes.direction: {y!r} is not an outcome column{hint}")
    for y in (cfg["feasibility"].get("measures") or []):
        if y not in dirs:
            probs.append(f"config key feasibility.measures: {y!r} is not an outcome column{hint}")
    return probs


def _model_covariate_problems(cfg: dict, dirs: dict) -> list[str]:
    """Covariates of the primary model, propensity score, imputation and effect modification."""
    probs: list[str] = []
    data, typ = cfg["data"], cfg["design"]["type"]
    kinds = covariate_kinds(cfg)
    usable = ", ".join(sorted(kinds))
    for c in cfg["primary"]["covariates"]:
        if c not in kinds:
            probs.append(f"config key primary.covariates: {c!r} is not a declared covariate, age, sex or "
                         f"client_group (usable: {usable})")
    probs += _propensity_problems(cfg, kinds, dirs, usable)
    for key in ("outcomes", "economics"):
        for c in cfg[key]["multiple_imputation"].get("auxiliary", []):
            if c not in kinds and c not in dirs:
                probs.append(f"config key {key}.multiple_imputation.auxiliary: {c!r} is not a covariate or "
                             f"score (usable: {usable})")
    for i, mod in enumerate(cfg["outcomes"]["effect_modifiers"]):
        if mod.get("source", "linked") == "linked" and mod["variable"] not in kinds and mod["variable"] not in dirs:
            probs.append(f"config key outcomes.effect_modifiers[{i}].variable: {mod['variable']!r} is not a "
                         f"covariate (usable: {usable})")
        if mod.get("source") == "fidelity" and not data.get("fidelity"):
            probs.append(f"config key outcomes.effect_modifiers[{i}]: source fidelity needs data.fidelity")
        if mod.get("source") in ("fidelity", "sites") and not data.get("sites"):
            probs.append(f"config key outcomes.effect_modifiers[{i}]: a site-level modifier needs data.sites")
    if typ == "single_arm" and cfg["outcomes"]["effect_modifiers"]:
        probs.append("config key outcomes.effect_modifiers: effect modification compares arms; a single-arm "
                     "study has none")
    return probs


def _feasibility_problems(cfg: dict, dirs: dict, hint: str) -> list[str]:
    """Feasibility settings and progression criteria whose data are not collected or that name nothing."""
    probs: list[str] = []
    d, data, f = cfg["design"], cfg["data"], cfg["feasibility"]
    if f["fidelity_threshold"] is not None and not data.get("fidelity"):
        probs.append("config key feasibility.fidelity_threshold: set, but data.fidelity is null (no fidelity "
                     "assessments to evaluate)")
    needs = {"eligibility": ("data.screening", data.get("screening")),
             "consent": ("data.screening", data.get("screening")),
             "fidelity": ("data.fidelity", data.get("fidelity")),
             "recruitment_rate": ("data.sites (with recruitment windows) or feasibility.recruitment_period",
                                  data.get("sites") or f.get("recruitment_period")),
             "recruitment_vs_target": ("feasibility.recruitment_target", f.get("recruitment_target"))}
    for i, crit in enumerate(f["progression_criteria"]):
        ind = crit["indicator"]
        if ind in needs and not needs[ind][1]:
            probs.append(f"config key feasibility.progression_criteria[{i}] ({crit.get('name', ind)}): "
                         f"indicator {ind} needs {needs[ind][0]}, which this trial does not collect")
        if ind.startswith("completion_") and ind[len("completion_"):] not in dirs:
            probs.append(f"config key feasibility.progression_criteria[{i}]: {ind!r} names no outcome column{hint}")
        probs += _criterion_arm_problems(i, crit, d)
        if ind not in _FEASIBILITY_INDICATORS and not ind.startswith("completion_"):
            probs.append(f"config key feasibility.progression_criteria[{i}].indicator: {ind!r} is not a "
                         f"feasibility indicator ({', '.join(sorted(_FEASIBILITY_INDICATORS))} or "
                         "completion_<outcome>)")
        probs += _criterion_timepoint_problems(i, ind, crit.get("timepoint"), [w["timepoint"] for w in data["waves"]])
    rp = f.get("recruitment_period")
    if rp and rp["end"] < rp["start"]:
        probs.append("config key feasibility.recruitment_period: end is before start")
    return probs


def _criterion_arm_problems(i: int, crit: dict, d: dict) -> list[str]:
    """A progression criterion's arm must be 'all' or one of the design's arm codes."""
    if d["type"] == "single_arm" and crit.get("arm") not in (None, "all", d["intervention_arm"]):
        return [(f"config key feasibility.progression_criteria[{i}].arm: a single-arm study has no "
                 f"arm {crit.get('arm')!r}")]
    if d["type"] != "single_arm" and crit.get("arm") not in (None, "all", d["intervention_arm"], d["control_arm"]):
        return [(f"config key feasibility.progression_criteria[{i}].arm: {crit.get('arm')!r} is not "
                 f"'all' or an arm code ({d['control_arm']!r}, {d['intervention_arm']!r})")]
    return []


def _criterion_timepoint_problems(i: int, ind: str, tp: str | None, wave_tps: list[str]) -> list[str]:
    """A progression criterion's time point must be a wave (a follow-up for retention; set for completion)."""
    probs: list[str] = []
    if tp is not None and tp not in wave_tps:
        probs.append(f"config key feasibility.progression_criteria[{i}].timepoint: {tp!r} is not a time "
                     f"point ({', '.join(wave_tps)})")
    if ind in ("retention",) and (tp is None or tp == wave_tps[0]):
        probs.append(f"config key feasibility.progression_criteria[{i}].timepoint: retention is defined "
                     f"at a follow-up ({', '.join(wave_tps[1:]) or 'none'})")
    if ind.startswith("completion_") and tp is None:
        probs.append(f"config key feasibility.progression_criteria[{i}].timepoint: a completion criterion "
                     "needs its time point")
    return probs


def _wave_timing_problems(cfg: dict) -> list[str]:
    """Follow-ups whose timing is unknown (month: null) against what needs the month."""
    probs: list[str] = []
    waves = cfg["data"]["waves"]
    unknown_month = [w["timepoint"] for w in waves if w["month"] is None]
    if unknown_month:
        if cfg["primary"]["time"] == "linear":
            probs.append(f"config key primary.time: linear time needs every wave's month ({unknown_month} "
                         "have month: null)")
        for w in waves:
            if w["month"] is None and w.get("window_days"):
                probs.append(f"config key data.waves ({w['timepoint']}): a visit window needs the month")
        if cfg["economics"]["enabled"]:
            probs.append(f"config key economics.enabled: QALYs and costs over time need every wave's month "
                         f"({unknown_month} have month: null)")
    return probs


def _economics_problems(cfg: dict, dirs: dict, hint: str) -> list[str]:
    """An enabled economic evaluation needs service use, arms and outcome columns that exist."""
    probs: list[str] = []
    e = cfg["economics"]
    if not e["enabled"]:
        return probs
    if not cfg["data"].get("service_use"):
        probs.append("config key economics.enabled: the economic evaluation needs service-use data "
                     "(data.service_use is null)")
    if e["utility"] not in dirs:
        probs.append(f"config key economics.utility: {e['utility']!r} is not an outcome column{hint}")
    for y in e["other_outcomes"]:
        if y not in dirs:
            probs.append(f"config key economics.other_outcomes: {y!r} is not an outcome column{hint}")
    w = e["wellby"]["outcome"]
    if w is not None and w not in dirs:
        probs.append(f"config key economics.wellby.outcome: {w!r} is not an outcome column (set it to "
                     f"null to skip the WELLBY valuation){hint}")
    if cfg["design"]["type"] == "single_arm":
        probs.append("config key economics.enabled: the trial-based economic evaluation compares arms; a "
                     "single-arm study has none")
    return probs


def _value_problems(cfg: dict, dirs: dict) -> list[str]:
    """Value for money (single-arm): the design, the cost items, and outcomes that are analysed."""
    v = cfg["value_for_money"]
    if not v["enabled"]:
        return []
    probs: list[str] = []
    if cfg["design"]["type"] != "single_arm":
        probs.append("config key value_for_money.enabled: value for money is for a single-arm study; a "
                     "randomised or non-randomised comparison uses economics, a programme programme.costs")
    if not v["costs"]:
        probs.append("config key value_for_money.costs: no cost item (each with amount_gbp, price_year and "
                     "source) - there is nothing to divide")
    analysed = [cfg["primary"]["outcome"], *cfg["outcomes"]["secondary"]]
    for y in v["outcomes"]:
        if y not in analysed:
            probs.append(f"config key value_for_money.outcomes: {y!r} is not an analysed outcome "
                         f"(primary.outcome or outcomes.secondary: {', '.join(analysed)})")
    w = v["wellby"]["outcome"]
    if w is not None and w in dirs and w not in analysed:
        probs.append(f"config key value_for_money.wellby.outcome: {w!r} is collected but not analysed (add it "
                     "to outcomes.secondary, or set it to null)")
    tps = [x["timepoint"] for x in cfg["data"]["waves"]][1:]
    if v["timepoint"] is not None and v["timepoint"] not in tps:
        probs.append(f"config key value_for_money.timepoint: {v['timepoint']!r} is not a follow-up time point "
                     f"({', '.join(tps)})")
    return probs


def _planning_problems(cfg: dict) -> list[str]:
    """Planning keys that do not fit the design (target difference, ICC and site sizes, centres)."""
    probs: list[str] = []
    typ = cfg["design"]["type"]
    pl = cfg.get("planning") or {}
    if typ == "single_arm" and pl.get("target_difference") is not None:
        probs.append("config key planning.target_difference: a single-arm study has no comparison group, so it "
                     "cannot size a definitive two-arm trial (leave it null; the report says what such a trial needs)")
    if typ != "cluster":
        for key in ("icc", "cluster_size", "cv_cluster_size"):
            if pl.get(key) is not None:
                probs.append(f"config key planning.{key}: only a cluster design (sites randomised) has an ICC and "
                             "site sizes")
        if pl.get("icc_values"):
            probs.append("config key planning.icc_values: only a cluster design (sites randomised) has an ICC")
    elif pl.get("centres") is not None:
        probs.append("config key planning.centres: in a cluster design the number of sites follows from the sample "
                     "size (set planning.cluster_size for participants per site)")
    return probs


# ---- files named by the config ----------------------------------------------------------------

# data keys whose value is a file in data.raw_dir (any other data key named `file` or `*_file`
# is treated the same way); economics files are relative to the working directory but must also
# lie inside data.raw_dir, so that the raw-file SHA-256 manifest covers them.
RAW_FILE_KEYS = ("sites", "participants", "screening", "service_use", "fidelity", "adverse_events",
                 "monitoring", "funding", "survey")
WORKDIR_FILE_KEYS = (("economics", "unit_costs_file"), ("economics", "inflation_index_file"))
_NOT_PATHS = {"columns", "values", "ignore_columns", "forms", "date_formats", "missing_codes", "files"}


def raw_file_keys(cfg: dict) -> list[tuple[str, str]]:
    """(config key, file name relative to data.raw_dir) of every raw file the config names."""
    d = cfg.get("data") or {}
    if (cfg.get("design") or {}).get("type") == "programme":  # aggregate data: no participant files
        d = {k: v for k, v in d.items() if k not in ("participants", "waves")}
    out = [(f"data.{k}", d[k]) for k in RAW_FILE_KEYS if isinstance(d.get(k), str)]

    def walk(node, key):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _NOT_PATHS or k == "raw_dir":
                    continue
                if isinstance(v, str) and (k == "file" or str(k).endswith("_file") or
                                           (key == "data.redcap" and k in ("export", "dictionary"))):
                    out.append((f"{key}.{k}", v))
                elif isinstance(v, (dict, list)):
                    walk(v, f"{key}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")

    walk({k: v for k, v in d.items() if k not in RAW_FILE_KEYS}, "data")
    out += [(f"data.files.{name}", name) for name in (d.get("files") or {})]
    return out


def _raw_root(cfg: dict, base: Path) -> Path:
    return (base / os.path.expanduser(str(cfg["data"]["raw_dir"]))).resolve()


def _path_rule(value: str, relative_only: bool = True) -> str | None:
    """Why ``value`` is not an acceptable file name (None if it is), judged on its text."""
    if not value.strip():
        return "is empty"
    if "\0" in value or any(ord(ch) < 32 for ch in value):
        return "contains a control character"
    if relative_only and (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()
                          or PureWindowsPath(value).drive or value.startswith("~")):
        return "is an absolute path (name a file inside data.raw_dir, relative to it)"
    if ".." in re.split(r"[\\/]", value):
        return "contains '..' (files must stay inside data.raw_dir)"
    return None


def check_paths(cfg: dict, base: str | Path | None = None) -> None:
    """Refuse any file named by the config that is not inside ``data.raw_dir``.

    Raises :class:`ConfigError` naming each offending config key and the rule; the file is
    never opened.  Symbolic links are followed: a link inside raw_dir that points outside it is
    refused too.  ``base``: the working directory (default: the current one)."""
    base = Path(base) if base is not None else Path.cwd()
    root = _raw_root(cfg, base)
    problems = []
    for key, name in raw_file_keys(cfg):
        rule = _path_rule(name)
        if rule is None and not _inside(root / name, root):
            rule = "leads outside data.raw_dir (through a symbolic link)"
        if rule:
            problems.append(f"config key {key}: the file name {rule}")
    for section, k in WORKDIR_FILE_KEYS:
        name = (cfg.get(section) or {}).get(k)
        if not isinstance(name, str):
            continue
        rule = _path_rule(name, relative_only=False)
        if rule is None and not _inside(base / os.path.expanduser(name), root):
            rule = "is not inside data.raw_dir (put the file in the trial's raw folder)"
        if rule:
            problems.append(f"config key {section}.{k}: the path {rule}")
    if problems:
        raise ConfigError("Invalid trial configuration (files must be inside data.raw_dir; nothing was read):\n  "
                          + "\n  ".join(problems))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def check_input_files(cfg: dict, base: str | Path | None = None) -> None:
    """Refuse a config whose raw files do not all exist (naming each config key and file), so
    that a misspelt or moved file can never leave outputs of earlier inputs in place."""
    base = Path(base) if base is not None else Path.cwd()
    root = _raw_root(cfg, base)
    missing = [f"config key {key}: file not found in data.raw_dir: {name}"
               for key, name in raw_file_keys(cfg) if not key.startswith("data.files.")
               and not (root / name).is_file()]
    for section, k in WORKDIR_FILE_KEYS:
        name = (cfg.get(section) or {}).get(k)
        if isinstance(name, str) and not (base / os.path.expanduser(name)).is_file():
            missing.append(f"config key {section}.{k}: file not found: {name}")
    if not root.is_dir():
        missing.insert(0, f"config key data.raw_dir: folder not found: {cfg['data']['raw_dir']}")
        missing = missing[:1]
    if missing:
        raise ConfigError("Raw input file(s) missing (nothing was run):\n  " + "\n  ".join(missing))


def read_config_file(path: str | Path) -> dict:
    """The raw mapping in a trial config file, read as untrusted YAML (:mod:`analysis.safe_yaml`)."""
    try:
        raw = safe_yaml.load_file(path)
    except safe_yaml.UnsafeYAMLError as exc:
        raise ConfigError(f"Refused trial configuration: {exc}") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a trial config must be a YAML mapping, got {type(raw).__name__}")
    return raw


def load_config(path: str | Path) -> dict:
    """Read and validate a trial config file."""
    return validate_config(read_config_file(path))


def followups(cfg: dict) -> list[str]:
    return [w["timepoint"] for w in cfg["data"]["waves"][1:]]


def primary_timepoint(cfg: dict) -> str:
    fu = followups(cfg)
    return cfg["primary"]["timepoint"] or (fu[-1] if fu else None)


def schema_markdown(schema: dict | None = None) -> str:
    """Render the config schema as the reference table in docs/config.md."""
    schema = schema or load_schema()
    lines = ["# Trial configuration reference", "",
             "Generated from `workflow/schemas/config.schema.yaml` by "
             "`python -m analysis.config > docs/config.md` (a test keeps the two in step).", "",
             schema["description"].strip(), "",
             "| key | type | default | description |", "|---|---|---|---|"]

    def typ(s):
        t = s.get("type", "")
        t = " or ".join(t) if isinstance(t, list) else t
        if "enum" in s:
            t += " (" + ", ".join(map(str, s["enum"])) + ")"
        return t

    def walk(s, path):
        for key, sub in s.get("properties", {}).items():
            p = f"{path}.{key}" if path else key
            default = yaml.safe_dump(sub["default"], default_flow_style=True, width=10_000).strip() \
                if "default" in sub else "(required)"
            default = default.replace("...", "").strip().replace("|", "\\|")
            desc = " ".join(sub.get("description", "").split()).replace("|", "\\|")
            lines.append(f"| `{p}` | {typ(sub)} | `{default}` | {desc} |")
            walk(sub, p)
            if isinstance(sub.get("items"), dict):
                walk(sub["items"], p + "[]")

    walk(schema, "")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(schema_markdown(), end="")
        return 0
    if len(argv) != 2 or argv[0] != "--check":
        print("usage: python -m analysis.config [--check FILE]", file=sys.stderr)
        return 2
    try:
        load_config(argv[1])
    except (ConfigError, OSError) as exc:
        print(f"pathways: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
