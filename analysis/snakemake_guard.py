"""Refuse unsafe trial configs in every Snakemake started from Pathways' environment.

Snakemake reads ``--configfile`` (and a Snakefile's ``configfile:``) with YTE, which runs
Python expressions from a YAML file that sets ``__use_yte__: true``, and it does so while
parsing the command line, before the Snakefile (and so any check of ours in it) runs.  Snakemake
has no option to turn YTE off.  This module closes that hole for the interpreter it is active
in: it wraps ``snakemake.common.configfile._load_configfile`` so that every config file is first
checked by :mod:`analysis.safe_yaml` (no tags, no templating keys, no anchor bombs, no
duplicate keys) and refused with a message if it fails; Snakemake then parses exactly the text
that was checked.

It is activated at interpreter start-up by a ``.pth`` file in the virtual environment's
site-packages (``pathways_config_guard.pth``), which ``bash pathways.sh setup`` writes
(``python -m analysis.snakemake_guard install``).  So ``.venv/bin/snakemake --configfile ...``,
``.venv/bin/python -m snakemake ...`` and the runs started by ``pathways.sh`` and
``analysis.verify`` are all covered.  A Snakemake from another environment (e.g. a conda
environment made from environment.yml) is covered only after running the install command with
that environment's Python; without it, the Snakefile still refuses the config, but only after
Snakemake has evaluated it.

    python -m analysis.snakemake_guard install [--site DIR]   # write the .pth file
    python -m analysis.snakemake_guard status                 # is the guard active here?
"""

from __future__ import annotations

import importlib.abc
import io
import os
import sys

TARGET = "snakemake.common.configfile"
PTH_NAME = "pathways_config_guard.pth"
# A checkout of Pathways without this module (an older branch on PYTHONPATH) must not make every
# Python start-up in the environment print an import error: such a checkout simply has no guard.
PTH_TEXT = ("# Pathways: refuse trial configs that use YAML tags or YTE templating before Snakemake "
            "evaluates them (analysis/snakemake_guard.py)\n"
            "import sys; exec('try:\\n import analysis.snakemake_guard as _g\\nexcept ImportError:\\n pass\\n"
            "else:\\n _g.activate()')\n")


def _refuse(message: str):
    try:
        from snakemake_interface_common.exceptions import WorkflowError
    except ImportError:  # pragma: no cover - snakemake is always installed with Pathways
        return ValueError(message)
    return WorkflowError(message)


def _guarded(original):
    def _load_configfile(configpath_or_obj, filetype="Config"):
        if filetype != "Config":
            return original(configpath_or_obj, filetype)
        if hasattr(configpath_or_obj, "read"):
            text, source = configpath_or_obj.read(), "config stream"
        else:
            source = os.fspath(configpath_or_obj)
            if not os.path.isfile(source):
                return original(configpath_or_obj, filetype)  # Snakemake's own "not found" message
            with open(source, "rb") as fh:
                text = fh.read()
        try:
            from analysis.safe_yaml import UnsafeYAMLError, loads
        except Exception as exc:  # fail closed: never evaluate an unchecked config
            raise _refuse(f"Pathways config guard cannot check {source} ({exc}); refusing to read it")
        try:
            loads(text, source)
        except UnsafeYAMLError as exc:
            raise _refuse(f"Pathways refused the config file: {exc}") from None
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        # Snakemake parses exactly the text that was checked (no second read of the file)
        return original(io.StringIO(text), filetype)

    _load_configfile.pathways_guard = True
    return _load_configfile


def _patch(module) -> None:
    current = module._load_configfile
    if not getattr(current, "pathways_guard", False):
        module._load_configfile = _guarded(current)


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Patches the config loader as soon as Snakemake imports it."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def activate() -> None:
    """Guard Snakemake's config loading in this interpreter (idempotent)."""
    if TARGET in sys.modules:
        _patch(sys.modules[TARGET])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def active() -> bool:
    """True if Snakemake's config loader is guarded in this interpreter."""
    import importlib
    return bool(getattr(importlib.import_module(TARGET)._load_configfile, "pathways_guard", False))


def site_dir() -> str:
    import sysconfig
    return sysconfig.get_paths()["purelib"]


def install(site: str | None = None) -> str:
    """Write the .pth file into ``site`` (default: this environment's site-packages)."""
    path = os.path.join(site or site_dir(), PTH_NAME)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == PTH_TEXT:
                return path
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(PTH_TEXT)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Install or check the Pathways Snakemake config guard.")
    ap.add_argument("command", choices=["install", "status"])
    ap.add_argument("--site", default=None, help="site-packages folder (default: this Python's)")
    a = ap.parse_args(argv)
    if a.command == "install":
        print(f"pathways: config guard installed: {install(a.site)}")
        return 0
    ok = active()
    print("pathways: config guard is " + ("active" if ok else "NOT active in this Python (run: python -m "
                                           "analysis.snakemake_guard install)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
