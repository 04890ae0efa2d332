"""Pins agree across pyproject.toml, environment.yml and requirements.lock."""

import re
import tomllib

import yaml


def _pins(specs):
    out = {}
    for s in specs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", s)
        assert m, f"not an exact pin: {s!r}"
        out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_pyproject_environment_and_lock_agree(root):
    py = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pyproject = _pins(py["dependencies"] + py["optional-dependencies"]["test"])
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and "==" in d]
    assert _pins(conda) == pyproject
    assert any(isinstance(d, str) and d.startswith("python=3.11") for d in env["dependencies"])
    lock = _pins([line for line in (root / "requirements.lock").read_text().splitlines()
                  if line.strip() and not line.startswith("#")])
    for name, version in pyproject.items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_quickstart_commands_exist(root):
    readme = (root / "README.md").read_text()
    assert "bash pathways.sh demo" in readme and "bash pathways.sh test" in readme
    ci = (root / ".ci/run").read_text()
    assert "bash pathways.sh test" in ci
