"""Strict loading of untrusted YAML (trial configs, instrument definitions shipped with a trial).

A trial config is data, never code.  Snakemake reads ``--configfile`` with YTE, a YAML
templating engine that evaluates Python expressions when the document sets ``__use_yte__:
true``; PyYAML's full loader also builds Python objects from explicit tags.  So every YAML
document Pathways is given is first checked here, before anything else reads it, and refused
with a message naming the file, line and the rule broken if it uses:

* any explicit tag (``!!python/...``, ``!!str``, ``!custom``, ``!``): plain YAML needs none;
* YTE or any other templating key (a mapping key written ``__name__``, e.g. ``__use_yte__``,
  ``__definitions__``, ``__variables__``);
* anchors and aliases that expand to more than :data:`MAX_NODES` values (the "billion laughs"
  anchor bomb: a few lines that expand to billions of values), or a recursive alias;
* the same key twice in one mapping (YAML keeps the last silently);
* nesting deeper than :data:`MAX_DEPTH`, or more than :data:`MAX_BYTES` bytes.

The check walks PyYAML's event stream and node graph (aliases are shared references there,
so counting the expanded size costs time proportional to the *written* document, not the
expansion), then builds plain Python values with ``yaml.SafeLoader``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_BYTES = 5_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64
_RESERVED_KEY = re.compile(r"^__\w+__$")


class UnsafeYAMLError(ValueError):
    """A YAML document uses a feature refused for untrusted input (or is not valid YAML)."""


def _where(source: str, mark) -> str:
    return f"{source}, line {mark.line + 1}" if mark is not None else source


def _check_events(text: str, source: str) -> None:
    depth = 0
    try:
        for ev in yaml.parse(text, Loader=yaml.SafeLoader):
            tag = getattr(ev, "tag", None)
            if tag is not None and not isinstance(ev, (yaml.DocumentStartEvent, yaml.DocumentEndEvent)):
                raise UnsafeYAMLError(
                    f"{_where(source, ev.start_mark)}: YAML tag {tag!r} is not allowed (tags can build "
                    "objects or run code; write plain values)")
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise UnsafeYAMLError(f"{_where(source, ev.start_mark)}: nested more than {MAX_DEPTH} levels deep")
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(ev, yaml.DocumentStartEvent) and ev.tags:
                raise UnsafeYAMLError(f"{_where(source, ev.start_mark)}: %TAG directives are not allowed")
    except yaml.YAMLError as exc:
        if isinstance(exc, UnsafeYAMLError):  # pragma: no cover - UnsafeYAMLError is not a YAMLError
            raise
        raise UnsafeYAMLError(f"{source}: not valid YAML: {exc}") from None


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Expanded size (aliases counted as often as they are used), duplicate and reserved keys."""
    size: dict[int, int] = {}
    visiting: set[int] = set()

    def count(node: yaml.Node) -> int:
        k = id(node)
        if k in size:
            return size[k]
        if k in visiting:
            raise UnsafeYAMLError(f"{_where(source, node.start_mark)}: recursive YAML alias")
        visiting.add(k)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                n += count(child)
                if n > MAX_NODES:
                    break
        elif isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if _RESERVED_KEY.match(key.value):
                        raise UnsafeYAMLError(
                            f"{_where(source, key.start_mark)}: key {key.value!r} is not allowed (templating "
                            "such as Snakemake's YTE (__use_yte__) would run code from the file; a trial "
                            "config holds plain values only)")
                    if key.value != "<<":
                        if key.value in seen:
                            raise UnsafeYAMLError(
                                f"{_where(source, key.start_mark)}: key {key.value!r} appears twice in the same "
                                f"mapping (first at line {seen[key.value] + 1})")
                        seen[key.value] = key.start_mark.line
                n += count(key) + count(value)
                if n > MAX_NODES:
                    break
        visiting.discard(k)
        if n > MAX_NODES:
            raise UnsafeYAMLError(
                f"{_where(source, root.start_mark)}: the document expands to more than {MAX_NODES:,} values "
                "through anchors and aliases (&name / *name): refused (a YAML anchor bomb?)")
        size[k] = n
        return n

    count(root)


def loads(text: str | bytes, source: str = "(YAML text)"):
    """Parse untrusted YAML text into plain Python values, refusing everything listed above."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise UnsafeYAMLError(f"{source}: larger than {MAX_BYTES:,} bytes")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnsafeYAMLError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    if len(text) > MAX_BYTES:
        raise UnsafeYAMLError(f"{source}: larger than {MAX_BYTES:,} characters")
    _check_events(text, source)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(node, source)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise UnsafeYAMLError(f"{source}: not valid YAML: {exc}") from None


def load_file(path: str | Path):
    """Read and parse one untrusted YAML file (see :func:`loads`)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise UnsafeYAMLError(f"{p}: larger than {MAX_BYTES:,} bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise UnsafeYAMLError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    return loads(data, str(p))
