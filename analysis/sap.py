"""The registered statistical analysis plan (SAP): freeze it, run against it, list every deviation.

    bash pathways.sh sap-lock path/to/trial.yaml [--by NAME] [--data-lock] [--replace]
    python -m analysis.sap lock path/to/trial.yaml [...]        # the same, inside .venv
    python -m analysis.sap check path/to/trial.yaml              # compare a config with its lock
    python -m analysis.sap document path/to/trial.sap.lock.json  # (re)render the SAP document

**The lock.**  ``sap-lock`` writes ``<trial>.sap.lock.json`` next to ``<trial>.yaml``: the
resolved *analysis keys* of the config (defaults filled in: :func:`plan_of`), their SHA-256
(``plan_sha256``: canonical JSON, sorted keys, integral floats written as integers), when and by
whom it was locked, whether the config was blinded then, the Pathways version and git commit,
optionally the SHA-256 of every raw file (``--data-lock``), and ``lock_sha256``, the SHA-256
of everything else in the file.  It also renders the SAP document
(:mod:`analysis.reporting.sap`) next to it.

**Analysis keys and housekeeping.**  The plan is what a trial statistician signs off:
``objectives``, ``seed``, ``design`` (not ``arm_labels``), the time points
(``data.waves[].timepoint/month/window_days``), ``data.after_withdrawal``, which optional inputs
are analysed (``data.sites`` ... ``data.adverse_events``: ``given`` or null), ``instruments``
(with their options), the scoring rules of every configured instrument (``scoring.<id>``: the
definition's response codes, items, reverse items, subscales, scoring method and missing-item
rule, whether built in or from a trial's ``instrument_definitions``), ``prescored``,
``covariates``, ``feasibility`` (progression criteria included), ``primary``, ``outcomes`` (not
``labels``), ``economics`` (unit-cost and inflation files by their SHA-256), ``value_for_money``
(only when enabled: a plan without it is the same as before it existed) and ``planning`` (not
``simulation.batch_size``, which does not change any number).  Housekeeping, never compared:
``trial_id`` (it must match: a lock belongs to one trial), ``title``, ``blinded`` (the documented
workflow locks blinded and then unblinds), ``pseudonymisation``, ``report``, file names and how
the raw files are read (``data.raw_dir``, file names, ``columns``, ``values``, ``files``,
``redcap``, ``date_formats``, ``missing_codes``, ``ignore_columns``: an export's format may
change after the lock; the data lock covers the files' contents), display labels,
``deviations`` and ``exploratory``.

**Every run** with a lock next to its config compares the config's plan with the locked one key
by key (:func:`differences`; lists of objects of the same length item by item, e.g.
``data.waves[1].month``).  Each difference must be declared under ``deviations:`` (key, reason,
date; a declared key also covers the keys below it); an undeclared one stops the run before
anything is written (:class:`SAPError`, listing every changed key with its planned and actual
values).  ``exploratory: true`` (or ``--config exploratory=True``) runs anyway and labels every
output "not the registered analysis".  The lock is untrusted input: it is read as strict JSON
(:func:`read_lock`), checked against its own schema and hashes, and only ever compared, never
executed or evaluated.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis.config import ConfigError, raw_file_keys, read_config_file, validate_config
from analysis.io import LABEL_ENV

LOCK_SUFFIX = ".sap.lock.json"
FORMAT = "pathways-sap-lock/1"
NOT_REGISTERED = "not the registered analysis"
#: the column every result table of an exploratory run gets (value NOT_REGISTERED)
LABEL_COLUMN = "registration"
STATUS_REGISTERED = "analysed as registered"
STATUS_DEVIATIONS = "registered plan, with declared deviations"
MAX_LOCK_BYTES = 5_000_000

#: top-level config keys that are (or hold) analysis keys, in the SAP document's order
PLAN_SECTIONS = ("objectives", "seed", "design", "data", "instruments", "scoring", "prescored", "covariates",
                 "feasibility", "primary", "propensity", "outcomes", "economics", "value_for_money",
                 "planning")
#: keys inside those sections that are housekeeping (display, computing) and never compared
HOUSEKEEPING = ("design.arm_labels", "outcomes.labels", "planning.simulation.batch_size")
#: optional inputs: the plan records whether each is analysed, not the file's name
OPTIONAL_INPUTS = ("sites", "screening", "fidelity", "adverse_events", "service_use")
WAVE_KEYS = ("timepoint", "month", "window_days")
ECONOMICS_FILES = ("unit_costs_file", "inflation_index_file")
#: documentary parts of an instrument definition (citations, wording): not scoring rules
DEFINITION_DOCS = frozenset({"id", "name", "description", "source", "citation", "note", "notes", "label",
                             "labels", "verification"})


class SAPError(ConfigError):
    """The run does not match the registered analysis plan (or the lock is unusable)."""


class SAPLockError(SAPError):
    """The lock file is not a valid, intact Pathways SAP lock."""


# ---- canonical form and hashes ------------------------------------------------------------------

def canonical(value: Any) -> Any:
    """Plain JSON values with one spelling per value: mapping keys as text, tuples as lists,
    integral floats as integers (``2.0`` and ``2`` mean the same in a config); dates as text."""
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SAPError(f"a plan value must be a finite number, got {value}")
        return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_hash(plan: dict) -> str:
    """SHA-256 of the plan's canonical JSON (sorted keys): the same plan always gives the same hash."""
    return sha256_text(canonical_json(plan))


def lock_hash(lock: dict) -> str:
    """SHA-256 of everything in the lock except ``lock_sha256`` itself."""
    return sha256_text(canonical_json({k: v for k, v in lock.items() if k != "lock_sha256"}))


# ---- the plan: the analysis keys of a resolved config --------------------------------------------

def _file_digest(path: Path) -> str:
    from analysis.io import sha256_file
    return f"sha256:{sha256_file(path)}" if path.is_file() else "file not found"


def scoring_rule(instrument_id: str) -> dict:
    """The scoring-relevant part of an instrument's definition: response codes, items (numbers
    and codes), reverse items, subscales, scoring method, range and conversions, missing-item
    rule, switches.  Citations, wording and verification notes are left out."""
    from analysis import instruments

    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in DEFINITION_DOCS}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(instruments.get_definition(instrument_id))


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.get(p) if isinstance(tree, dict) else None
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)


def plan_of(cfg: dict, base: str | Path | None = None) -> dict:
    """The analysis keys of a validated config (defaults filled in), in canonical form.

    ``base``: the working directory that economics files and instrument definitions are
    relative to (default: the current one).  See the module docstring for what is included."""
    from analysis.config import register_trial_instruments

    base = Path(base) if base is not None else Path.cwd()
    cfg = canonical(copy.deepcopy(cfg))
    plan: dict = {}
    for section in PLAN_SECTIONS:
        if section in cfg and section not in ("data", "scoring"):
            plan[section] = cfg[section]
    # a randomised trial's plan is the same as before non-randomised comparisons existed (a lock
    # made then still matches): the allocation and the propensity keys count only when used
    if (plan.get("design") or {}).get("allocation", "randomised") == "randomised":
        plan.get("design", {}).pop("allocation", None)
        plan.pop("propensity", None)
    # likewise value for money (a single-arm study's) counts only when enabled
    if not (plan.get("value_for_money") or {}).get("enabled"):
        plan.pop("value_for_money", None)
    d = cfg.get("data") or {}
    plan["data"] = {
        "waves": [{k: w[k] for k in WAVE_KEYS if k in w} for w in d.get("waves") or []],
        "after_withdrawal": d.get("after_withdrawal"),
        **{k: ("given" if d.get(k) else None) for k in OPTIONAL_INPUTS},
    }
    if Path(base).resolve() == Path.cwd().resolve():
        register_trial_instruments(cfg)
    else:
        cwd = os.getcwd()
        try:
            os.chdir(base)  # instrument definitions are relative to the working directory
            register_trial_instruments(cfg)
        finally:
            os.chdir(cwd)
    plan["scoring"] = {inst: canonical(scoring_rule(inst)) for inst in sorted(cfg.get("instruments") or {})}
    econ = plan.get("economics")
    if isinstance(econ, dict):
        for k in ECONOMICS_FILES:
            if isinstance(econ.get(k), str):
                econ[k] = _file_digest(base / os.path.expanduser(econ[k]))
    for key in HOUSEKEEPING:
        _drop(plan, key)
    return {k: plan[k] for k in PLAN_SECTIONS if k in plan}


def raw_hashes(cfg: dict, base: str | Path | None = None) -> dict[str, str]:
    """SHA-256 of every raw file the config names that exists, keyed by its name in data.raw_dir."""
    from analysis.io import sha256_file

    base = Path(base) if base is not None else Path.cwd()
    root = (base / os.path.expanduser(str(cfg["data"]["raw_dir"]))).resolve()
    names = dict.fromkeys(name for _, name in raw_file_keys(cfg))
    return {n: sha256_file(root / n) for n in sorted(names) if (root / n).is_file()}


# ---- differences, key by key ----------------------------------------------------------------------

class _Absent:
    def __repr__(self):  # pragma: no cover - debugging aid
        return "(absent)"


ABSENT = _Absent()


def show(value: Any) -> str:
    """A planned or actual value as text: strings as they are, others as compact JSON."""
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, str) and value.isprintable():
        return value  # else JSON: control characters (terminal escapes) are never printed as they are
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def differences(planned: Any, actual: Any, key: str = "") -> list[tuple[str, Any, Any]]:
    """Every key whose value differs, as (key, planned, actual), in key order.

    Mappings are compared key by key; lists of mappings of the same length item by item
    (``data.waves[1].month``); anything else as a whole value, by its canonical JSON (so
    ``true`` never equals ``1``).  A key on one side only has the value :data:`ABSENT` on the
    other."""
    if isinstance(planned, dict) and isinstance(actual, dict):
        out = []
        for k in sorted(set(planned) | set(actual)):
            sub = f"{key}.{k}" if key else k
            out += differences(planned.get(k, ABSENT), actual.get(k, ABSENT), sub)
        return out
    if (isinstance(planned, list) and isinstance(actual, list) and len(planned) == len(actual)
            and planned and all(isinstance(x, dict) for x in planned + actual)):
        return [d for i, (p, a) in enumerate(zip(planned, actual)) for d in differences(p, a, f"{key}[{i}]")]
    if planned is ABSENT or actual is ABSENT or canonical_json(planned) != canonical_json(actual):
        return [(key, planned, actual)]
    return []


def covers(declared: str, key: str) -> bool:
    """A deviation declared for ``declared`` covers that key and every key below it."""
    return key == declared or key.startswith(declared + ".") or key.startswith(declared + "[")


def data_lock_differences(lock: dict, cfg: dict, base: str | Path | None = None) -> list[tuple[str, Any, Any]]:
    """Raw files whose SHA-256 differs from the data lock (``data_lock.<file>``)."""
    locked = lock.get("data_lock")
    if not locked:
        return []
    now = raw_hashes(cfg, base)
    return [(f"data_lock.{n}", locked.get(n, ABSENT), now.get(n, ABSENT))
            for n in sorted(set(locked) | set(now)) if locked.get(n, ABSENT) != now.get(n, ABSENT)]


def deviation_rows(lock: dict, cfg: dict, base: str | Path | None = None) -> list[dict]:
    """Every difference between the lock and the config's plan, each with the deviation that
    declares it (the most specific declared key covering it) or none.

    Raises :class:`SAPError` when a declared deviation is declared twice or covers no
    difference (its key is not an analysis key, or its value equals the plan's)."""
    diffs = differences(lock["plan"], plan_of(cfg, base)) + data_lock_differences(lock, cfg, base)
    declared = cfg.get("deviations") or []
    problems = []
    seen = set()
    for i, dev in enumerate(declared):
        if dev["key"] in seen:
            problems.append(f"config key deviations[{i}]: {dev['key']!r} is declared twice")
        seen.add(dev["key"])
        if not any(covers(dev["key"], k) for k, _, _ in diffs):
            problems.append(f"config key deviations[{i}]: {dev['key']!r} does not differ from the registered plan "
                            f"(it is not an analysis key, or its value is the planned one): remove the declaration")
    if problems:
        raise SAPError("Deviations from the registered analysis plan:\n  " + "\n  ".join(problems))
    rows = []
    for k, p, a in diffs:
        match = [dev for dev in declared if covers(dev["key"], k)]
        dev = max(match, key=lambda d: len(d["key"])) if match else None
        rows.append(dict(key=k, planned=show(p), actual=show(a), reason=dev["reason"] if dev else "",
                         date=dev["date"] if dev else "", declared=dev is not None))
    return rows


# ---- the lock file ----------------------------------------------------------------------------------

_PRINTABLE = "^[^\x00-\x1f\x7f]*$"  # no control characters in what messages print

LOCK_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["format", "trial_id", "title", "config_file", "locked_at", "locked_by", "blinded",
                 "pathways_version", "git", "plan", "plan_sha256", "instrument_sources", "data_lock",
                 "lock_sha256"],
    "properties": {
        "format": {"const": FORMAT},
        "trial_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
        "title": {"type": "string", "pattern": _PRINTABLE},
        "config_file": {"type": "string", "pattern": _PRINTABLE},
        "locked_at": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"},
        "locked_by": {"type": "string", "minLength": 1, "pattern": _PRINTABLE},
        "blinded": {"type": "boolean"},
        "pathways_version": {"type": "string", "pattern": _PRINTABLE},
        "git": {"type": "object", "additionalProperties": False, "required": ["commit", "uncommitted_changes"],
                "properties": {"commit": {"type": ["string", "null"], "pattern": "^[0-9a-f]*$"},
                               "uncommitted_changes": {"type": ["boolean", "null"]}}},
        "plan": {"type": "object", "required": ["seed", "design", "data", "primary", "outcomes"],
                 "propertyNames": {"enum": list(PLAN_SECTIONS)}},
        "plan_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "instrument_sources": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": _PRINTABLE},
                           "citation": {"type": "string", "pattern": _PRINTABLE}}}},
        "data_lock": {"type": ["object", "null"], "additionalProperties": {"type": "string",
                                                                           "pattern": "^[0-9a-f]{64}$"}},
        "lock_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}


def lock_path_for(config_path: str | Path) -> Path:
    """``path/to/trial.yaml`` -> ``path/to/trial.sap.lock.json``."""
    p = Path(config_path)
    return p.with_name(p.stem + LOCK_SUFFIX)


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice in the same object")
        out[k] = v
    return out


def _no_constants(name):
    raise ValueError(f"{name} is not a number JSON allows")


def read_lock(path: str | Path) -> dict:
    """Read a SAP lock as untrusted data: strict JSON (no duplicate keys, NaN or Infinity, at
    most :data:`MAX_LOCK_BYTES`), the lock schema, and both hashes.  Raises :class:`SAPLockError`
    naming the file and what is wrong; a lock edited after it was made is reported as TAMPERED."""
    import jsonschema

    p = Path(path)
    try:
        if p.stat().st_size > MAX_LOCK_BYTES:
            raise SAPLockError(f"{p}: larger than {MAX_LOCK_BYTES:,} bytes: not a SAP lock")
        text = p.read_bytes().decode("utf-8")
        lock = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except SAPLockError:
        raise
    except OSError as exc:
        raise SAPLockError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SAPLockError(f"{p}: not a valid SAP lock (strict JSON): {exc}") from None
    if not isinstance(lock, dict):
        raise SAPLockError(f"{p}: not a valid SAP lock: the file must hold one JSON object")
    errors = sorted(jsonschema.Draft202012Validator(LOCK_SCHEMA).iter_errors(lock), key=lambda e: list(map(str, e.path)))
    if errors:
        raise SAPLockError(f"{p}: not a valid SAP lock:\n  " + "\n  ".join(
            f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors[:10]))
    if plan_hash(lock["plan"]) != lock["plan_sha256"]:
        raise SAPLockError(f"{p}: TAMPERED: the plan no longer has the hash recorded when it was locked "
                           f"(plan_sha256 {lock['plan_sha256'][:12]}..., the plan now hashes to "
                           f"{plan_hash(lock['plan'])[:12]}...): the lock was edited after it was made")
    if lock_hash(lock) != lock["lock_sha256"]:
        raise SAPLockError(f"{p}: TAMPERED: the lock no longer has the hash recorded when it was made "
                           f"(lock_sha256 {lock['lock_sha256'][:12]}...): a field was edited after locking")
    return lock


def who_locks(by: str | None = None) -> str:
    """``by``, else git's user.name <user.email>; raises SAPError when neither is known."""
    if by and by.strip():
        if not by.strip().isprintable():
            raise SAPError("--by: the name must not contain control characters")
        return by.strip()

    def git(key):
        try:
            return subprocess.run(["git", "config", key], capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    name, email = git("user.name"), git("user.email")
    if not name:
        raise SAPError("say who locks the analysis plan: --by 'Name' (or set git config user.name)")
    return f"{name} <{email}>" if email else name


def make_lock(config_path: str | Path, by: str | None = None, data_lock: bool = False,
              now: datetime | None = None, base: str | Path | None = None) -> dict:
    """The lock of the config at ``config_path`` (not written; see :func:`write_lock`)."""
    from analysis import __version__, instruments
    from analysis.manifest import git_state

    cfg = validate_config(read_config_file(config_path))
    if cfg["design"]["type"] == "programme":
        raise SAPError("config key design.type: a statistical analysis plan cannot be locked for programme "
                       "monitoring (design.type programme has no registered analysis; its targets are in the config)")
    if cfg.get("deviations"):
        raise SAPError("config key deviations: a plan being locked has no deviations yet (remove them)")
    if cfg.get("exploratory"):
        raise SAPError("config key exploratory: an exploratory config cannot be locked as the registered plan")
    plan = plan_of(cfg, base)
    sources = {}
    for inst in plan["scoring"]:
        d = instruments.get_definition(inst)
        sources[inst] = {"name": str(d.get("name", inst)),
                         "citation": " ".join(str((d.get("source") or {}).get("citation", "")).split())}
    raws = None
    if data_lock:
        raws = raw_hashes(cfg, base)
        if not raws:
            raise SAPError(f"--data-lock: no raw file found in {cfg['data']['raw_dir']}")
    now = now or datetime.now(timezone.utc)
    lock = {
        "format": FORMAT,
        "trial_id": cfg["trial_id"],
        "title": cfg["title"],
        "config_file": Path(config_path).name,
        "locked_at": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "locked_by": who_locks(by),
        "blinded": bool(cfg.get("blinded")),
        "pathways_version": __version__,
        "git": git_state(),
        "plan": plan,
        "plan_sha256": plan_hash(plan),
        "instrument_sources": sources,
        "data_lock": raws,
    }
    lock = canonical(lock)
    lock["lock_sha256"] = lock_hash(lock)
    return lock


def write_lock(lock: dict, path: str | Path, replace: bool = False) -> None:
    from analysis.io import write_text
    p = Path(path)
    if p.exists() and not replace:
        raise SAPError(f"{p} exists: the plan is already locked.  Declare changes under deviations:, or "
                       "replace the lock deliberately with --replace (keep the old one, e.g. in git)")
    write_text(json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=True) + "\n", p)


# ---- checking a run ---------------------------------------------------------------------------------

def find_lock(configfiles) -> Path | None:
    """The lock next to the run's config file(s); SAPError when more than one has one."""
    found = [lock_path_for(f) for f in configfiles if lock_path_for(f).is_file()]
    found = list(dict.fromkeys(p.resolve() for p in found))
    if len(found) > 1:
        raise SAPError("more than one SAP lock for this run: " + ", ".join(map(str, found)))
    return found[0] if found else None


def lock_summary(lock: dict, path: str | Path) -> dict:
    return dict(file=Path(path).name, lock_sha256=lock["lock_sha256"], plan_sha256=lock["plan_sha256"],
                locked_at=lock["locked_at"], locked_by=lock["locked_by"], blinded_at_lock=lock["blinded"],
                pathways_version=lock["pathways_version"], git_commit=lock["git"]["commit"],
                data_lock=lock["data_lock"] is not None)


def _yaml_hint(rows: list[dict]) -> str:
    return "\n".join(f'    - {{key: {r["key"]}, reason: "...", date: "YYYY-MM-DD"}}' for r in rows)


def check_run(cfg: dict, configfiles, base: str | Path | None = None) -> dict | None:
    """Compare a run's validated (unblinded) config with the SAP lock next to its config file.

    Returns None when there is no lock, else the run's SAP status: ``status`` (analysed as
    registered / registered plan, with declared deviations / not the registered analysis),
    ``lock`` (:func:`lock_summary`) and ``deviations`` (:func:`deviation_rows`).  Raises
    :class:`SAPError`, before anything is run, when the lock is invalid or tampered with, belongs
    to another trial, when a difference is not declared (unless ``exploratory``), when
    ``exploratory`` is set without anything to explore, or when deviations are declared without
    a lock."""
    path = find_lock(configfiles)
    if path is None:
        if cfg.get("deviations"):
            raise SAPError("config key deviations: deviations are declared but there is no SAP lock next to the "
                           f"config (expected {', '.join(str(lock_path_for(f)) for f in configfiles) or 'one'}): "
                           "lock the plan with `pathways.sh sap-lock`, or remove the deviations")
        if cfg.get("exploratory"):
            raise SAPError("config key exploratory: there is no SAP lock next to the config, so there is no "
                           "registered analysis to depart from (remove exploratory)")
        return None
    lock = read_lock(path)
    if lock["trial_id"] != cfg["trial_id"]:
        raise SAPLockError(f"{path}: the lock is trial {lock['trial_id']!r}'s, not {cfg['trial_id']!r}'s")
    rows = deviation_rows(lock, cfg, base)
    undeclared = [r for r in rows if not r["declared"]]
    where = f"{path} (locked {lock['locked_at']} by {lock['locked_by']})"
    if undeclared and not cfg.get("exploratory"):
        lines = [f"{'UNDECLARED' if not r['declared'] else 'declared  '} {r['key']}: planned {r['planned']}  ->  "
                 f"actual {r['actual']}" for r in undeclared + [r for r in rows if r["declared"]]]
        raise SAPError(
            f"The config differs from the registered analysis plan {where} in {len(undeclared)} key(s) "
            f"not declared under deviations (nothing was run):\n  " + "\n  ".join(lines) +
            "\nDeclare each difference in the config with its reason and date, e.g.\n  deviations:\n" +
            _yaml_hint(undeclared) + "\nor run it as an exploratory analysis (exploratory: true in the config, or "
            f"--config exploratory=True): every output is then labelled \"{NOT_REGISTERED}\".")
    if cfg.get("exploratory") and not undeclared:
        raise SAPError(f"config key exploratory: the config matches the registered plan {where} (declared "
                       "deviations aside), so this is the registered analysis: remove exploratory")
    status = NOT_REGISTERED if undeclared else STATUS_DEVIATIONS if rows else STATUS_REGISTERED
    return dict(status=status, lock=lock_summary(lock, path), deviations=rows)


def set_output_label(report_dir: str | None) -> None:
    """Label (``report_dir``) or stop labelling (None) the tables and figures written in this
    process and its children as not the registered analysis (see :data:`LABEL_ENV`)."""
    if report_dir:
        os.environ[LABEL_ENV] = str(report_dir)
    else:
        os.environ.pop(LABEL_ENV, None)


def label_applies(path: str | Path | None = None) -> bool:
    """Whether an output (a file at ``path``, or a figure when None) is labelled."""
    where = os.environ.get(LABEL_ENV)
    if not where:
        return False
    if path is None:
        return True
    try:
        Path(path).resolve().relative_to(Path(where).resolve())
        return True
    except ValueError:
        return False


# ---- command line -----------------------------------------------------------------------------------

def _lock_cmd(a) -> int:
    from analysis.reporting.sap import write_document

    path = lock_path_for(a.config)
    lock = make_lock(a.config, by=a.by, data_lock=a.data_lock)
    write_lock(lock, path, replace=a.replace)
    print(f"pathways: analysis plan locked: {path}")
    print(f"  plan_sha256 {lock['plan_sha256']}\n  lock_sha256 {lock['lock_sha256']}")
    print(f"  locked {lock['locked_at']} by {lock['locked_by']}; blinded: {str(lock['blinded']).lower()}; "
          f"data lock: {'yes' if lock['data_lock'] else 'no'}")
    if not lock["blinded"]:
        print("pathways: warning: locked with blinded: false (the documented workflow locks the plan while "
              "blinded); the lock and the SAP document say so", file=sys.stderr)
    for out in write_document(lock, path, formats=a.formats):
        print(f"  SAP document: {out}")
    return 0


def _check_cmd(a) -> int:
    cfg = validate_config(read_config_file(a.config))
    status = check_run(cfg, [a.config])
    if status is None:
        print(f"pathways: no SAP lock next to {a.config} ({lock_path_for(a.config).name})")
        return 0
    print(f"pathways: {status['status']} ({status['lock']['file']}, lock_sha256 {status['lock']['lock_sha256']})")
    for r in status["deviations"]:
        tag = f"declared {r['date']}: {r['reason']}" if r["declared"] else "UNDECLARED"
        print(f"  {r['key']}: planned {r['planned']} -> actual {r['actual']} ({tag})")
    return 0


def _document_cmd(a) -> int:
    from analysis.reporting.sap import write_document
    lock = read_lock(a.lock)
    for out in write_document(lock, a.lock, formats=a.formats):
        print(f"pathways: SAP document: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.sap", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lk = sub.add_parser("lock", help="freeze the analysis plan of a config (writes <trial>.sap.lock.json)")
    lk.add_argument("config")
    lk.add_argument("--by", help="who locks the plan (default: git config user.name <user.email>)")
    lk.add_argument("--data-lock", action="store_true", help="also record the SHA-256 of every raw file")
    lk.add_argument("--replace", action="store_true", help="replace an existing lock")
    ck = sub.add_parser("check", help="compare a config with its lock (what a run would do)")
    ck.add_argument("config")
    doc = sub.add_parser("document", help="render the SAP document from a lock")
    doc.add_argument("lock")
    for p in (lk, doc):
        p.add_argument("--formats", default="html", help="comma-separated: html,pdf,docx (default html)")
    a = ap.parse_args(argv)
    if hasattr(a, "formats"):
        a.formats = [f for f in a.formats.split(",") if f]
        bad = sorted(set(a.formats) - {"html", "pdf", "docx"})
        if bad:
            ap.error(f"unknown format(s) {bad}: choose from html, pdf, docx")
    try:
        return {"lock": _lock_cmd, "check": _check_cmd, "document": _document_cmd}[a.cmd](a)
    except (ConfigError, OSError) as exc:
        print(f"pathways: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
