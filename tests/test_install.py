"""The conda-free install path: `pip install .` into a fresh virtual environment (no lock file,
no editable install, no repository on the path) runs the demo trial up to its report.

Slow (installing the packages takes a minute or two): CI runs it (.ci/run passes --runslow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

# What a user of the pip path has besides the installed package: the workflow and a trial.
WORKFLOW_FILES = ["Snakefile", "workflow", "environment.yml", "config/config.yaml", "data/raw/demo"]


def _copy(root, names, dest):
    for name in names:
        src, dst = root / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)


def test_pip_install_runs_the_demo_report_stage(root, tmp_path):
    src, run, venv = tmp_path / "src", tmp_path / "run", tmp_path / "venv"
    _copy(root, ["pyproject.toml", "README.md", "analysis"], src)  # built from a copy: no build/ in the checkout
    _copy(root, WORKFLOW_FILES, run)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PATHWAYS_VENV", "VIRTUAL_ENV")}
    env["PATHWAYS_PSEUDONYM_KEY"] = "pip-install-test-key-0123456789ab"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, env=env)
    py = venv / "bin/python"
    res = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    where = subprocess.run([str(py), "-c", "import analysis; print(analysis.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, env=env, check=True).stdout
    assert str(venv) in where  # the installed package, not this checkout
    res = subprocess.run([str(venv / "bin/snakemake"), "--cores", "2", "--configfile=config/config.yaml",
                          "reports/demo/report.html"], cwd=run, capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, (res.stdout + res.stderr)[-5000:]
    html = (run / "reports/demo/report.html").read_text(encoding="utf-8")
    assert "<html" in html.lower() and "Table 1" in html
    assert (run / "reports/demo/manifest.json").is_file() and (run / "reports/demo/tables/effects.csv").is_file()
