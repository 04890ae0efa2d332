"""Smoke test of the SLURM profile and the single-node cluster scripts (the real run,
slurm/run_power.sh, needs root, apt and several minutes: it is run by hand and its figures are in
docs/performance.md)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib

import pytest
import yaml

from conftest import ROOT


def test_profile_uses_the_pinned_slurm_executor():
    prof = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert prof["executor"] == "slurm"
    assert prof["default-resources"]["mem_mb"] > 0 and prof["default-resources"]["runtime"] > 0
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "snakemake-executor-plugin-slurm==2.8.0" in deps
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    assert "snakemake-executor-plugin-slurm-jobstep==0.6.1" in lock


def test_scripts_parse_and_carry_what_a_sandboxed_cluster_needs():
    for name in ("setup_cluster.sh", "stop_cluster.sh", "run_power.sh"):
        subprocess.run(["bash", "-n", str(ROOT / "slurm" / name)], check=True)
    setup = (ROOT / "slurm/setup_cluster.sh").read_text()
    for line in ("AccountingStorageType=accounting_storage/none", "DefMemPerCPU=", "slurmctld -D -c",
                 "ProctrackType=proctrack/linuxproc", "NodeName=$HOST"):
        assert line in setup, line
    run = (ROOT / "slurm/run_power.sh").read_text()
    assert "--slurm-status-command squeue" in run and "timeout -k" in run and "cmp -s" in run
    assert "pkill" not in run + setup and "killall" not in run + setup  # daemons are stopped by PID


@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason="snakemake-executor-plugin-slurm not installed (bash pathways.sh setup)")
def test_profile_dry_run_plans_the_power_batches(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg["planning"]["simulation"] = {"replicates": 20, "batch_size": 10}
    cfg["data"]["raw_dir"] = str(ROOT / "data/raw/demo")
    path = tmp_path / "power.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "power", "--profile", str(ROOT / "profiles/slurm"),
                          "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                          "--configfile", str(path), "--slurm-status-command", "squeue"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "power_batch" in text and "power_gather" in text
    stats = {line.split()[0]: int(line.split()[1]) for line in text.splitlines()
             if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert stats.get("power_batch") == 5 * 2  # 5 sample sizes x 2 batches of 10
