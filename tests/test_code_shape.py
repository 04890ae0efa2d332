"""Code shape: no function in the analysis package is longer than MAX_LINES lines of code, so
each does one job a newcomer can read in one go (a long function is split into well-named
helpers).  Lines are counted from ``def`` to the function's last line, leaving out its
docstring: the public statistical functions carry full numpydoc docstrings with doctests
(tests/test_doctests.py), and documentation is not what makes a function hard to follow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 90
# Functions still longer than MAX_LINES, each being split.  This list must only ever shrink,
# never grow: split a long function instead of adding it here.  (Empty: every function is split.)
ALLOWED: set[str] = set()


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the end of the function, without its docstring."""
    n = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        n -= first.end_lineno - first.lineno + 1
    return n


def _functions(node: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function and method under ``node``, nested ones included."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def _function_lengths() -> dict[str, int]:
    """{"path::qualified name": code lines} of every function and method under analysis/."""
    out = {}
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for name, node in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            out[f"{rel}::{name}"] = _code_lines(node)
    return out


def test_no_function_is_longer_than_the_limit():
    lengths = _function_lengths()
    too_long = sorted(f"{name}: {n} lines" for name, n in lengths.items() if n > MAX_LINES and name not in ALLOWED)
    assert not too_long, (f"functions over {MAX_LINES} lines (docstring not counted); split them into "
                          "helpers with one job each:\n" + "\n".join(too_long))


def test_the_allow_list_names_only_long_functions():
    """An allowed function that was split (or renamed) leaves the list: it must only shrink."""
    lengths = _function_lengths()
    stale = sorted(name for name in ALLOWED if lengths.get(name, 0) <= MAX_LINES)
    assert not stale, f"remove from ALLOWED (no longer over {MAX_LINES} lines or gone): {stale}"
