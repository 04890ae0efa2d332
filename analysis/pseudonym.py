"""Stable pseudonyms for participant and screening IDs (keyed hash).

Every table written after ingest carries pseudonyms instead of the trial's own IDs:

    pseudonym = prefix + first `length` hex digits of HMAC-SHA256(key, "<trial_id>:<kind>:<id>")

The key is secret and never lives in the repository.  It is taken from the environment variable
``PATHWAYS_PSEUDONYM_KEY`` if set, otherwise from the key file named by
``pseudonymisation.key_file`` (default ``~/.config/pathways/pseudonym.key``).  If neither exists
the key file is created once with 32 random bytes (hex) and permissions 0600, and this is
logged.  A key file inside the repository (or the git work tree of the working directory) is
refused; one that other users can read is used with a warning; ``PATHWAYS_PSEUDONYM_KEY`` set
but empty is an error.  The same key gives the same pseudonyms on every run; a different key
gives unrelated ones.  The table linking IDs to pseudonyms is written only to
``data/processed/<trial>/pseudonyms.parquet`` (mode 0600), with the key's fingerprint
(:func:`key_fingerprint`, never the key): the workflow reruns ingest when the key's fingerprint
changes, and later stages refuse processed data made with another key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

import pandas as pd

ENV_VAR = "PATHWAYS_PSEUDONYM_KEY"
DEFAULT_KEY_FILE = "~/.config/pathways/pseudonym.key"
REPO_ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("pathways")
_warned_readable: set[str] = set()


class PseudonymKeyError(RuntimeError):
    """The pseudonymisation key cannot be used."""


class MissingKeyError(PseudonymKeyError):
    """There is no key yet (and it was not to be created)."""


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _git_root(start: Path) -> Path | None:
    """The git work tree holding ``start`` (the working directory's repository), if any."""
    for d in (start.resolve(), *start.resolve().parents):
        if (d / ".git").exists():
            return d
    return None


def load_key(key_file: str | None = None, *, create: bool = True, env: dict | None = None) -> bytes:
    """The pseudonymisation key (see module docstring for where it comes from).

    Raises :class:`PseudonymKeyError` with a plain message (never a traceback's worth of
    detail) when the key cannot be used: ``PATHWAYS_PSEUDONYM_KEY`` set but empty or short, a key
    file inside a repository, a key path that is a folder or cannot be read or created, or a key
    file with too few characters.  A key file that others can read is used with a warning."""
    env = os.environ if env is None else env
    if ENV_VAR in env:
        value = env[ENV_VAR].strip()
        if not value:
            raise PseudonymKeyError(f"{ENV_VAR} is set but empty: set it to the key (at least 16 characters, "
                                    f"e.g. 32 random hex digits) or unset it to use the key file")
        if len(value) < 16:
            raise PseudonymKeyError(f"{ENV_VAR} is too short: use at least 16 characters (32 random hex digits)")
        return value.encode("utf-8")
    path = Path(os.path.expanduser(key_file or DEFAULT_KEY_FILE))
    for folder in (REPO_ROOT, _git_root(Path.cwd())):
        if folder is not None and _inside(path, folder):
            raise PseudonymKeyError(
                f"pseudonymisation.key_file {path} is inside the repository {folder}: keep the key "
                f"outside any repository (or set {ENV_VAR})")
    if path.exists() and not path.is_file():
        raise PseudonymKeyError(f"pseudonymisation.key_file {path} is not a file (a folder?): name the key "
                                f"file itself (or set {ENV_VAR})")
    if not path.exists():
        if not create:
            raise MissingKeyError(f"no pseudonymisation key: set {ENV_VAR} or create {path}")
        def cannot_create(exc):
            return PseudonymKeyError(f"cannot create the pseudonymisation key file {path} ({exc.strerror or exc}): "
                                     f"choose a writable pseudonymisation.key_file or set {ENV_VAR}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise cannot_create(exc) from None
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another job created it in the meantime
            pass
        except OSError as exc:
            raise cannot_create(exc) from None
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            log.warning("created a new pseudonymisation key file %s (mode 0600); keep it safe and "
                        "outside the repository: the same key is needed to reproduce the pseudonyms", path)
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise PseudonymKeyError(f"cannot read the pseudonymisation key file {path} ({why})") from None
    if mode & 0o077 and str(path) not in _warned_readable:
        _warned_readable.add(str(path))  # once per process, however often the key is read
        log.warning("pseudonymisation key file %s can be read by other users (mode %s): restrict it with "
                    "chmod 600 %s", path, oct(mode & 0o777), path)
    if len(key) < 16:
        raise PseudonymKeyError(f"pseudonymisation key file {path} holds fewer than 16 characters")
    return key.encode("utf-8")


def key_fingerprint(key: bytes) -> str:
    """A short public fingerprint of the key (a keyed hash of a fixed text): it tells whether
    two runs used the same key without revealing anything about the key itself."""
    return hmac.new(key, b"pathways pseudonymisation key fingerprint v1", hashlib.sha256).hexdigest()[:16]


def config_key_fingerprint(cfg: dict, create: bool = True) -> str:
    """Fingerprint of the key a run with ``cfg`` uses (the workflow passes it to ingest as a
    parameter, so a changed key reruns ingest); when there is no key yet and ``create`` is
    false (a dry run), a placeholder."""
    try:
        return key_fingerprint(load_key((cfg.get("pseudonymisation") or {}).get("key_file"), create=create))
    except MissingKeyError:
        return "(no key yet: created at ingest)"


def check_key_unchanged(mapping: pd.DataFrame, fingerprint: str, where: str = "processed data") -> None:
    """Refuse processed data pseudonymised with a key other than the one with ``fingerprint``
    (the key changed since ingest and ingest was not rerun), so outputs of two keys are never
    mixed."""
    have = set(mapping["key_fingerprint"]) if "key_fingerprint" in mapping else set()
    if have != {fingerprint}:
        raise PseudonymKeyError(
            f"the pseudonymisation key changed since the {where} were made (key fingerprint "
            f"{', '.join(sorted(have)) or 'not recorded'} there, {fingerprint} now): rerun from ingest "
            "(snakemake --forcerun ingest) so that every output uses one key")


def pseudonymise(ids: pd.Series, key: bytes, *, trial_id: str, kind: str = "participant",
                 prefix: str = "ps_", length: int = 12) -> pd.Series:
    """Map each ID to its keyed-hash pseudonym (missing stays missing)."""
    uniq = pd.unique(ids.dropna())
    table = {}
    for v in uniq:
        msg = f"{trial_id}:{kind}:{v}".encode("utf-8")
        table[v] = prefix + hmac.new(key, msg, hashlib.sha256).hexdigest()[:length]
    if len(set(table.values())) != len(table):  # pragma: no cover - 2**-48 per pair at length 12
        raise PseudonymKeyError("two IDs share a pseudonym: increase pseudonymisation.length")
    return ids.map(table).astype("str")


def pseudonymise_tables(tables: dict[str, pd.DataFrame], key: bytes, *, trial_id: str,
                        prefix: str = "ps_", length: int = 12) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Replace participant_id (and screening_id) in every table; return (tables, mapping)."""
    out = dict(tables)
    pid_cols = [(name, "participant_id") for name, df in tables.items()
                if name != "queries" and isinstance(df, pd.DataFrame) and "participant_id" in df]
    all_ids = pd.concat([tables[n]["participant_id"].astype("str") for n, _ in pid_cols], ignore_index=True)
    mapping = []
    pids = pd.Series(pd.unique(all_ids.dropna()), dtype="str")
    mapping.append(pd.DataFrame({"kind": "participant", "raw_id": pids,
                                 "pseudonym": pseudonymise(pids, key, trial_id=trial_id, kind="participant",
                                                           prefix=prefix, length=length)}))
    lookup = dict(zip(mapping[0].raw_id, mapping[0].pseudonym))
    for name, col in pid_cols:
        df = out[name].copy()
        df[col] = df[col].map(lookup).astype("str")
        out[name] = df
    if "screening" in tables and "screening_id" in tables["screening"]:
        sids = tables["screening"]["screening_id"]
        ps = pseudonymise(sids, key, trial_id=trial_id, kind="screening", prefix="sc_", length=length)
        mapping.append(pd.DataFrame({"kind": "screening", "raw_id": sids, "pseudonym": ps}))
        df = out["screening"].copy()
        df["screening_id"] = ps
        out["screening"] = df
    mapping = pd.concat(mapping, ignore_index=True)
    mapping["key_fingerprint"] = key_fingerprint(key)
    return out, mapping
