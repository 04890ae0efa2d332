"""Benchmark: the whole workflow on simulated trials of 2,000 to 200,000 participants.

Each trial is made by ``analysis.simulate`` (the demo's generator: cluster design, three waves,
missing-at-random dropout, service use, fidelity) with more sites and more people screened per
site, and run with the demo's configuration (every analysis on: multiple imputation, tipping
point, effect modification, economics with MI then bootstrap, planning, reports) by Snakemake
on 2 cores, in a fresh working directory (cold run), then once more with nothing changed
(no-op rerun).

While the workflow runs, a sampler reads the process tree every 0.25 s: the time each stage's
process was seen (its start to end; to +/- 0.25 s), the peak resident memory of each stage's
process tree and of the whole tree (Snakemake and its jobs, summed). Not a test: nothing
asserts a time.

    .venv/bin/python benchmarks/bench_e2e.py [--participants 2000 20000 200000] [--workdir DIR]
        [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
# participants -> sites (people screened per site chosen to give about that many participants:
# 0.72 eligible x 0.60 consent)
SITES = {160: 12, 2000: 40, 20000: 100, 200000: 200}
STAGES = ("ingest", "score", "link", "feasibility", "outcome", "economics", "planning", "report",
          "document", "audience_report")


def make_trial(work: Path, participants: int, seed: int = 20240301) -> Path:
    from analysis.simulate import SimulationParameters, write_trial
    sites = SITES.get(participants, max(12, participants // 1000))
    per_site = participants / sites / (0.72 * 0.60)
    raw = work / "data" / "raw" / "sim"
    write_trial(raw, SimulationParameters(seed=seed, trial_id=f"sim{participants}", n_sites=sites,
                                          screened_per_site=per_site))
    cfg = (ROOT / "config" / "config.yaml").read_text()
    cfg = re.sub(r"(?m)^trial_id: .*$", f"trial_id: sim{participants}", cfg)
    cfg = re.sub(r"(?m)^  raw_dir: .*$", "  raw_dir: data/raw/sim", cfg)
    path = work / "trial.yaml"
    path.write_text(cfg)
    return path


class Sampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.stop = threading.Event()
        self.peak_total = 0.0
        self.stages: dict[str, dict] = {}

    def _stage(self, cmd: str) -> str | None:
        m = re.search(r"\.snakemake/scripts/tmp\w+\.(\w+)\.py", cmd)
        return m.group(1) if m else None

    def run(self):
        t0 = time.perf_counter()
        while not self.stop.is_set():
            now = time.perf_counter() - t0
            try:
                root = psutil.Process(self.pid)
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            total = 0.0
            per_stage: dict[str, float] = {}
            for p in procs:
                try:
                    rss = p.memory_info().rss / 2**20
                    cmd = " ".join(p.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                st = self._stage(cmd)
                if st:
                    per_stage[st] = per_stage.get(st, 0.0) + rss
            self.peak_total = max(self.peak_total, total)
            for st, rss in per_stage.items():
                s = self.stages.setdefault(st, dict(first=now, last=now, peak_mb=0.0))
                s["last"] = now
                s["peak_mb"] = max(s["peak_mb"], rss)
            time.sleep(self.every)


def run_workflow(work: Path, config: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [str(Path(sys.executable).parent / "snakemake"), "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(work), "--configfile", str(config), "--cores", "2", "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    sampler = Sampler(proc.pid)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-30:])
        raise RuntimeError(f"workflow failed ({proc.returncode}):\n{tail}")
    stages = {k: dict(seconds=round(v["last"] - v["first"], 2), peak_mb=round(v["peak_mb"]))
              for k, v in sorted(sampler.stages.items(), key=lambda kv: kv[1]["first"])}
    return dict(wall_s=round(wall, 2), peak_tree_mb=round(sampler.peak_total), stages=stages)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, nargs="*", default=[2000, 20000])
    ap.add_argument("--workdir", help="keep the trials here (default: a temporary directory)")
    ap.add_argument("--json", help="write the results to this file")
    a = ap.parse_args()
    base = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="pathways_e2e_"))
    results = []
    for n in a.participants:
        work = base / f"sim{n}"
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        config = make_trial(work, n)
        t_sim = time.perf_counter() - t0
        import pandas as pd
        n_part = len(pd.read_csv(work / "data/raw/sim/participants.csv"))
        load0 = os.getloadavg()[0]
        cold = run_workflow(work, config)
        noop = run_workflow(work, config)
        row = dict(participants_target=n, participants=n_part, simulate_s=round(t_sim, 1),
                   cold=cold, noop_wall_s=noop["wall_s"], load_start=load0,
                   load_end=os.getloadavg()[0])
        results.append(row)
        print(f"{n_part:,d} participants ({SITES.get(n)} sites): cold run {cold['wall_s']:.1f} s, peak "
              f"memory of the process tree {cold['peak_tree_mb']:,} MB; no-op rerun {noop['wall_s']:.1f} s "
              f"(load {load0:.1f} -> {row['load_end']:.1f})", flush=True)
        for st, v in cold["stages"].items():
            print(f"    {st:16s} {v['seconds']:8.1f} s   peak {v['peak_mb']:6,d} MB", flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
