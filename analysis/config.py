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


def _nonfinite_keys(node: Any, key: str = "") -> list[str]:
    if isinstance(node, float) and not math.isfinite(node):
        return [key or "(top level)"]
    if isinstance(node, dict):
        return [k for name, v in node.items() for k in _nonfinite_keys(v, f"{key}.{name}" if key else str(name))]
    if isinstance(node, list):
        return [k for i, v in enumerate(node) for k in _nonfinite_keys(v, f"{key}[{i}]")]
    return []


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises :class:`ConfigError` listing every violation as ``key: message``.
    """
    schema = schema or load_schema()
    nonfinite = _nonfinite_keys(config)
    if nonfinite:
        raise ConfigError("Invalid trial configuration:\n  " + "\n  ".join(
            f"config key {k}: must be a finite number (.inf and .nan are not allowed)" for k in nonfinite))
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
    check_paths(cfg)
    return cfg


# ---- files named by the config ----------------------------------------------------------------

# data keys whose value is a file in data.raw_dir (any other data key named `file` or `*_file`
# is treated the same way); economics files are relative to the working directory but must also
# lie inside data.raw_dir, so that the raw-file SHA-256 manifest covers them.
RAW_FILE_KEYS = ("sites", "participants", "screening", "service_use", "fidelity", "adverse_events")
WORKDIR_FILE_KEYS = (("economics", "unit_costs_file"), ("economics", "inflation_index_file"))
_NOT_PATHS = {"columns", "values", "ignore_columns", "forms", "date_formats", "missing_codes", "files"}


def raw_file_keys(cfg: dict) -> list[tuple[str, str]]:
    """(config key, file name relative to data.raw_dir) of every raw file the config names."""
    d = cfg.get("data") or {}
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
