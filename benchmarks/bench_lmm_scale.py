"""Benchmark: nested mixed-model fits against lme4 at 200 to 200,000 participants (issue [speed]).

y ~ arm * visit + (1 | site / participant), REML, 3 visits (baseline always observed, 20%
dropout at each later visit), participants spread at random over sites (12 sites at 200
participants, 40 at 2,000, 100 at 20,000, 200 at 200,000), arm randomised by site.

Each size's data are written once to CSV; then, alternating, a fresh Python process fits them
with ``analysis.lmm.fit_lmm`` (Satterthwaite df for every coefficient included; optionally
Kenward-Roger), a fresh Python process with the previous engine (``analysis/lmm.py`` of commit
cc61ce4, the dense-Schur engine this branch replaced, read with ``git show``; same df; skipped
above ``--previous-max`` participants, where one fit takes minutes) and a fresh R process with
``lme4::lmer`` (estimates only, as lme4 gives no df).
Each process times the fit alone (data already in memory, the model formula and the grouping
as above) and reports its peak resident memory (the whole process: interpreter, data and
fit). The figure kept is the minimum over the repeats, and the ratio compares the two
minimums measured in the same run, so it is comparable across machines and loads; absolute
seconds are not. Not a test: nothing asserts a time.

    .venv/bin/python benchmarks/bench_lmm_scale.py [--sizes 200 2000 20000 200000] [--repeat 3]
        [--kr] [--pilot-fits 1000]

``--pilot-fits N`` also times N warm-started refits of pilot-size data (12 sites, 150
participants, 3 visits; ``start`` = the previous fit's theta, as the MI refits and the power
simulation do) in one process, against the same number of lme4 refits with ``update()``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
#: the commit whose analysis/lmm.py is "the previous engine"
PREVIOUS = "cc61ce4"
SITES = {200: 12, 2000: 40, 20000: 100, 200000: 200}


def simulate(n_part: int, n_sites: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng([seed, n_part])
    site = rng.integers(0, n_sites, n_part)
    arm = site % 2
    u_s = rng.normal(0, 0.3, n_sites)[site]
    u_p = rng.normal(0, 1.0, n_part)
    pid = np.repeat(np.arange(n_part), 3)
    visit = np.tile(np.arange(3), n_part)
    keep = (visit == 0) | (rng.random(len(pid)) > 0.2)
    pid, visit = pid[keep], visit[keep]
    y = 10 + 0.2 * visit + 0.5 * arm[pid] * visit + u_s[pid] + u_p[pid] + rng.normal(0, 1, len(pid))
    return pd.DataFrame({"site": "s" + pd.Series(site[pid]).astype(str),
                         "participant": "p" + pd.Series(pid).astype(str),
                         "arm": np.where(arm[pid] == 1, "intervention", "control"),
                         "visit": "v" + pd.Series(visit).astype(str), "y": np.round(y, 4)})


PY_FIT = r"""
import importlib.util, json, resource, sys, time
import pandas as pd
if sys.argv[3]:  # the previous engine, from a file
    spec = importlib.util.spec_from_file_location("lmm_previous", sys.argv[3])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lmm_previous"] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    fit_lmm = mod.fit_lmm
else:
    from analysis.lmm import fit_lmm
d = pd.read_csv(sys.argv[1], dtype={"site": str, "participant": str, "arm": str, "visit": str})
method = sys.argv[2]
t0 = time.perf_counter()
r = fit_lmm(d, "y ~ arm * visit", ["site", "participant"], df_method=method)
t = time.perf_counter() - t0
print(json.dumps({"seconds": t, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "reml": r.reml_criterion, "theta": list(r.theta.values()),
                  "beta": r.fixed.estimate.tolist()}))
"""

R_FIT = r"""
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = c("character", "character", "character", "character", "numeric"))
t0 <- proc.time()[["elapsed"]]
m <- lmer(y ~ arm * visit + (1 | site) + (1 | participant), data = d, REML = TRUE)
t <- proc.time()[["elapsed"]] - t0
hwm <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)
rss <- as.numeric(sub("VmHWM:\\s*([0-9]+) kB", "\\1", hwm)) / 1024
th <- getME(m, "theta")
th <- th[c(grep("^site", names(th)), grep("^participant", names(th)))]  # Pathways' order
cat(sprintf('{"seconds": %.6f, "rss_mb": %.1f, "reml": %.10f, "theta": [%s]}\n', t, rss, REMLcrit(m),
            paste(sprintf("%.10f", th), collapse = ", ")))
"""

PY_PILOT = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from bench_lmm_scale import simulate
from analysis.lmm import fit_lmm
n = int(sys.argv[1]); method = sys.argv[2]
data = [simulate(150, 12, seed=1000 + i) for i in range(n)]
start = None
t0 = time.perf_counter()
for d in data:
    r = fit_lmm(d, "y ~ arm * visit", ["site", "participant"], start=start, df_method=method)
    start = list(r.theta.values())
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

R_PILOT = r"""
suppressMessages(library(lme4))
args <- commandArgs(TRUE)
files <- readLines(args[1])
cls <- c("character", "character", "character", "character", "numeric")
data <- lapply(files, function(f) read.csv(f, colClasses = cls))
t0 <- proc.time()[["elapsed"]]
m <- NULL
for (d in data) m <- lmer(y ~ arm * visit + (1 | site) + (1 | participant), data = d, REML = TRUE,
                          start = if (is.null(m)) NULL else getME(m, "theta"))
cat(sprintf('{"seconds": %.6f}\n', proc.time()[["elapsed"]] - t0))
"""


def _run(cmd: list[str], env=None) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _py_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def previous_engine(tmp: Path) -> Path:
    """analysis/lmm.py of commit PREVIOUS, written to ``tmp`` (it imports nothing from analysis)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{PREVIOUS}:analysis/lmm.py"], capture_output=True,
                         text=True, check=True).stdout
    path = tmp / "lmm_previous.py"
    path.write_text(src)
    return path


def bench_sizes(sizes, repeat: int, method: str, tmp: Path, previous_max: int = 20000) -> list[dict]:
    rows = []
    prev_path = previous_engine(tmp)
    for n in sizes:
        d = simulate(n, SITES.get(n, max(12, n // 1000)))
        path = tmp / f"lmm_{n}.csv"
        d.to_csv(path, index=False)
        py, old, r = [], [], []
        for _ in range(repeat):  # alternate, so all see the same machine load
            py.append(_run([sys.executable, "-c", PY_FIT, str(path), method, ""], env=_py_env()))
            if n <= previous_max:
                old.append(_run([sys.executable, "-c", PY_FIT, str(path), method, str(prev_path)], env=_py_env()))
            r.append(_run(["Rscript", "-e", R_FIT, str(path)]))
        bp = min(py, key=lambda x: x["seconds"])
        br = min(r, key=lambda x: x["seconds"])
        bo = min(old, key=lambda x: x["seconds"]) if old else None
        row = dict(participants=n, rows=len(d), sites=d.site.nunique(), pathways_s=bp["seconds"],
                   lme4_s=br["seconds"], ratio=bp["seconds"] / br["seconds"],
                   previous_s=bo["seconds"] if bo else None,
                   ratio_previous=bp["seconds"] / bo["seconds"] if bo else None,
                   pathways_rss_mb=max(x["rss_mb"] for x in py), lme4_rss_mb=max(x["rss_mb"] for x in r),
                   previous_rss_mb=max(x["rss_mb"] for x in old) if old else None,
                   reml_diff=bp["reml"] - br["reml"],
                   theta_max_abs_diff=float(np.max(np.abs(np.subtract(bp["theta"], br["theta"])))),
                   beta_max_abs_diff_previous=(float(np.max(np.abs(np.subtract(bp["beta"], bo["beta"]))))
                                               if bo else None),
                   load=load())
        rows.append(row)
        prev = (f"previous engine {row['previous_s']:7.3f} s (new/previous {row['ratio_previous']:6.3f}, "
                f"peak RSS {row['previous_rss_mb']:5.0f} MB, beta diff {row['beta_max_abs_diff_previous']:.0e}) | "
                if bo else "previous engine not run | ")
        print(f"  {n:7,d} participants ({len(d):7,d} rows, {row['sites']:3d} sites): new engine "
              f"{row['pathways_s']:7.3f} s | lme4 {row['lme4_s']:7.3f} s | new/lme4 {row['ratio']:5.2f} | " + prev +
              f"peak RSS new {row['pathways_rss_mb']:5.0f} MB, lme4 {row['lme4_rss_mb']:5.0f} MB | "
              f"REML criterion new-lme4 {row['reml_diff']:+.1e}, theta diff {row['theta_max_abs_diff']:.1e} "
              f"| load {row['load']}", flush=True)
    return rows


def bench_pilot(n: int, repeat: int, method: str, tmp: Path) -> dict:
    files = []
    for i in range(n):
        p = tmp / f"pilot_{i}.csv"
        simulate(150, 12, seed=1000 + i).to_csv(p, index=False)
        files.append(str(p))
    lst = tmp / "pilot_files.txt"
    lst.write_text("\n".join(files) + "\n")
    py, r = [], []
    for _ in range(repeat):
        py.append(_run([sys.executable, "-c", PY_PILOT, str(n), method, str(Path(__file__).parent)],
                       env=_py_env())["seconds"])
        r.append(_run(["Rscript", "-e", R_PILOT, str(lst)])["seconds"])
    row = dict(fits=n, pathways_s=min(py), lme4_s=min(r), ratio=min(py) / min(r), load=load())
    print(f"  {n:,d} warm-started pilot-size fits (12 sites, 150 participants, 3 visits) in one process: "
          f"Pathways {row['pathways_s']:6.2f} s | lme4 {row['lme4_s']:6.2f} s | ratio {row['ratio']:5.2f} "
          f"| load {row['load']}", flush=True)
    return row


def header(method: str, repeat: int) -> None:
    print(f"Nested LMM y ~ arm * visit + (1|site/participant), REML: analysis.lmm ({method} df) vs the previous "
          f"engine ({PREVIOUS}) vs lme4 lmer (fit only); minimum of {repeat} alternating runs; "
          f"load average at start {load()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[200, 2000, 20000, 200000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--kr", action="store_true", help="Kenward-Roger df instead of Satterthwaite")
    ap.add_argument("--pilot-fits", type=int, default=0)
    ap.add_argument("--previous-max", type=int, default=20000,
                    help="largest size fitted with the previous engine too")
    ap.add_argument("--json", help="write the rows to this file")
    a = ap.parse_args()
    method = "kenward_roger" if a.kr else "satterthwaite"
    header(method, a.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_sizes(a.sizes, a.repeat, method, Path(tmp), a.previous_max)
        pilot = bench_pilot(a.pilot_fits, a.repeat, method, Path(tmp)) if a.pilot_fits else None
    if a.json:
        Path(a.json).write_text(json.dumps(dict(sizes=rows, pilot=pilot), indent=1))


if __name__ == "__main__":
    main()
