"""The workflow's own code style: Snakefile and workflow/rules/*.smk are as snakefmt formats them
(settings in pyproject.toml [tool.snakefmt]) and `snakemake --lint` finds nothing, for a
cluster, an individually randomised and a single-arm trial (rules differ by design)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ENV = {**os.environ, "PATHWAYS_PSEUDONYM_KEY": "lint-only-key-0123456789abcdef"}  # never make a key file


def test_snakefile_declares_the_pinned_snakemake_as_its_minimum(root):
    from importlib import metadata
    major_minor = ".".join(metadata.version("snakemake").split(".")[:2])
    assert re.search(rf'^min_version\("{re.escape(major_minor)}"\)', (root / "Snakefile").read_text(), re.M)


def test_snakefmt_finds_nothing_to_change(root):
    files = ["Snakefile", *sorted(str(p.relative_to(root)) for p in (root / "workflow/rules").glob("*.smk"))]
    res = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", *files], cwd=root,
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("config", ["config/config.yaml", "config/individual.yaml", "config/single_arm.yaml",
                                    "config/c2_programme.yaml"])
def test_snakemake_lint_finds_nothing(root, config):
    res = subprocess.run([sys.executable, "-m", "snakemake", "--lint", f"--configfile={config}"], cwd=root,
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert res.returncode == 0 and "Lints for" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_snakemake_lint_finds_nothing_with_a_registered_plan(root, tmp_path):
    """With a SAP lock beside the config the workflow has its sap rule too."""
    cfg = tmp_path / "trial.yaml"
    cfg.write_text((root / "config/config.yaml").read_text().replace(
        "raw_dir: data/raw/demo", f"raw_dir: {root / 'data/raw/demo'}"))
    subprocess.run([sys.executable, "-m", "analysis.sap", "lock", str(cfg), "--by", "lint test"], cwd=root,
                   capture_output=True, text=True, env=ENV, timeout=300, check=True)
    assert str(root / "data/raw/demo") in cfg.read_text() and (tmp_path / "trial.sap.lock.json").is_file()
    res = subprocess.run([sys.executable, "-m", "snakemake", "--lint", f"--configfile={cfg}"], cwd=root,
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert res.returncode == 0 and "Lints for" not in res.stdout + res.stderr, res.stdout + res.stderr
