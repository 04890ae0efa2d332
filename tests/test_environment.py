"""Dependencies are declared once, alike in pyproject.toml, environment.yml and requirements.lock,
and every package the code imports (or runs without importing) is among them."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from importlib import metadata

import yaml

# Needed at run time without an import by name anywhere in the code.
RUNTIME_ONLY = {
    "snakemake": "the workflow engine, run as a program",
    "ipykernel": "the kernel papermill executes the report notebook in (kernel_name python3)",
    "pyarrow": "pandas' Parquet engine (read_parquet / to_parquet)",
}
# Where the pipeline's own code lives: what it imports must be a runtime dependency (`pip install
# .` runs the pipeline); tests, examples and benchmarks may also use the test extra.
RUNTIME_CODE = ("analysis", "workflow")
ALL_CODE = RUNTIME_CODE + ("tests", "examples", "benchmarks")


def _pins(specs):
    out = {}
    for s in specs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", s)
        assert m, f"not an exact pin: {s!r}"
        out[_norm(m.group(1))] = m.group(2)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_modules(tree) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.add(n.module.split(".")[0])
        elif (isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None))
              in ("importorskip", "import_module") and n.args and isinstance(n.args[0], ast.Constant)
              and isinstance(n.args[0].value, str)):
            out.add(n.args[0].value.split(".")[0])
    return out


def imported_distributions(root, folders) -> dict[str, set[str]]:
    """{distribution: files importing it} for the third-party imports of the code (and of the
    report notebook's code cells) under ``folders``."""
    local = {p.stem for p in root.rglob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
    found: dict[str, set[str]] = {}
    sources = [(p, p.read_text(encoding="utf-8")) for f in folders for p in (root / f).rglob("*.py")]
    for nb in (root / f for f in folders):
        for p in nb.rglob("*.ipynb"):
            cells = json.loads(p.read_text(encoding="utf-8"))["cells"]
            sources.append((p, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")))
    dists = metadata.packages_distributions()
    for path, text in sources:
        for mod in _imported_modules(ast.parse(text)):
            if mod in sys.stdlib_module_names or mod in local or mod == "__future__":
                continue
            assert mod in dists, f"{path.relative_to(root)} imports {mod!r}, which no installed package provides"
            for dist in dists[mod]:
                found.setdefault(_norm(dist), set()).add(str(path.relative_to(root)))
    return found


def _declared(root):
    py = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return _pins(py["dependencies"]), _pins(py["optional-dependencies"]["test"])


def test_pyproject_environment_and_lock_agree(root):
    runtime, test = _declared(root)
    pyproject = {**runtime, **test}
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and "==" in d]
    assert _pins(conda) == pyproject
    assert any(isinstance(d, str) and d.startswith("python=3.11") for d in env["dependencies"])
    lock = _pins([line for line in (root / "requirements.lock").read_text().splitlines()
                  if line.strip() and not line.startswith("#")])
    for name, version in pyproject.items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_every_package_the_code_uses_is_declared(root):
    """What the pipeline imports (analysis/, workflow/ with the report notebook) or runs is a
    runtime dependency, so `pip install .` and the conda environment can run every stage; what
    only tests, examples and benchmarks import is declared too (runtime or test extra).  Both
    lists are pinned alike in all three files (test above)."""
    runtime, test = _declared(root)
    used = imported_distributions(root, RUNTIME_CODE)
    missing = {d: sorted(f)[:3] for d, f in used.items() if d not in runtime}
    missing.update({d: [why] for d, why in RUNTIME_ONLY.items() if _norm(d) not in runtime})
    assert not missing, f"used by the pipeline but not in pyproject.toml [project.dependencies]: {missing}"
    used_anywhere = imported_distributions(root, ALL_CODE)
    missing = {d: sorted(f)[:3] for d, f in used_anywhere.items() if d not in runtime and d not in test}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert {"papermill", "ipykernel", "nbformat", "jupyter-client"} <= set(runtime)


def test_the_declared_versions_are_the_installed_ones(root):
    """The environment the tests run in is the pinned one (so the checks above mean something)."""
    runtime, test = _declared(root)
    for name, version in {**runtime, **test}.items():
        assert metadata.version(name) == version, name


def test_quickstart_commands_exist(root):
    readme = (root / "README.md").read_text()
    assert "bash pathways.sh demo" in readme and "bash pathways.sh test" in readme
    ci = (root / ".ci/run").read_text()
    assert "bash pathways.sh test" in ci
    addopts = next(line for line in ci.splitlines() if line.startswith("export PYTEST_ADDOPTS="))
    assert "--runslow" in addopts  # CI runs the long statistical checks
