"""Trial configuration: JSON-Schema validation with defaults filled in.

One trial is one YAML file validated against ``workflow/schemas/config.schema.yaml``.  An
invalid file fails with a message naming the offending key (``data.waves[1].month``), the value
and the rule it breaks.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


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
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_fill_defaults(x, schema["items"]) for x in instance]
    return instance


def _key_path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises :class:`ConfigError` listing every violation as ``key: message``.
    """
    schema = schema or load_schema()
    cfg = _fill_defaults(copy.deepcopy(dict(config)), schema)
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
    timepoints = [w["timepoint"] for w in cfg["data"]["waves"]]
    if len(set(timepoints)) != len(timepoints):
        raise ConfigError(f"config key data.waves: time points must be unique, got {timepoints}")
    months = [w["month"] for w in cfg["data"]["waves"]]
    if months[0] != 0 or months != sorted(months) or len(set(months)) != len(months):
        raise ConfigError(f"config key data.waves: months must start at 0 (baseline) and increase strictly, got {months}")
    tp = cfg["primary"]["timepoint"]
    if tp is not None and tp not in timepoints[1:]:
        raise ConfigError(f"config key primary.timepoint: {tp!r} is not a follow-up time point ({timepoints[1:]})")
    return cfg


def load_config(path: str | Path) -> dict:
    """Read and validate a trial config file."""
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a trial config must be a YAML mapping, got {type(raw).__name__}")
    return validate_config(raw)


def followups(cfg: dict) -> list[str]:
    return [w["timepoint"] for w in cfg["data"]["waves"][1:]]


def primary_timepoint(cfg: dict) -> str:
    return cfg["primary"]["timepoint"] or followups(cfg)[-1]


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


if __name__ == "__main__":
    print(schema_markdown(), end="")
