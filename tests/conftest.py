"""Shared fixtures: the repository root, the demo config, the demo's analysis tables (ingest,
score and link once per session) and small simulated trials."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from analysis.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the long statistical-validity simulations")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long version: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def demo_cfg_session() -> dict:
    return load_config(ROOT / "config" / "config.yaml")


@pytest.fixture
def demo_cfg(demo_cfg_session) -> dict:
    cfg = copy.deepcopy(demo_cfg_session)
    cfg["data"]["raw_dir"] = str(ROOT / "data" / "raw" / "demo")
    return cfg


@pytest.fixture(scope="session")
def demo_prepared(demo_cfg_session) -> dict:
    """The demo trial's tables after ingest, score and link (:func:`analysis.pipeline.prepare`:
    every configured instrument scored, IDs not pseudonymised), made once per session and
    shared by every test that needs them: copy a table before changing it."""
    from analysis.pipeline import prepare
    cfg = copy.deepcopy(demo_cfg_session)
    cfg["data"]["raw_dir"] = str(ROOT / "data" / "raw" / "demo")
    return prepare(cfg)


STAGE_KEY = b"tests-stage-runner-key-0123456789"


@pytest.fixture(scope="session")
def demo_stages(tmp_path_factory, demo_cfg_session) -> dict:
    """The demo trial (fast analysis settings) through every stage's ``run`` in this process,
    without Snakemake, as the rules call them (tests/stage_runner.py): ``work`` holds the
    workflow's files, ``reads`` the config keys each stage read, ``stderr`` what the stages
    printed (their progress lines)."""
    import contextlib
    import io

    from stage_runner import run_all, stage_files
    cfg = fast_analysis(copy.deepcopy(demo_cfg_session))
    cfg["data"]["raw_dir"] = str(ROOT / "data" / "raw" / "demo")
    work = tmp_path_factory.mktemp("stages")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        reads = run_all(cfg, work, STAGE_KEY)
    return dict(cfg=cfg, work=work, files=stage_files(cfg, work), reads=reads, stderr=err.getvalue(),
                key=STAGE_KEY)


def fast_analysis(cfg: dict) -> dict:
    """The demo analysis plan with fewer imputations, replicates and sensitivity deltas, and
    HTML only (PDF and Word output are tested in test_report_outputs.py): the same code paths
    in a fraction of the time (power: one batch of 5 simulated trials per size)."""
    cfg["outcomes"]["multiple_imputation"].update(m=5, iterations=5)
    cfg["outcomes"]["tipping_point"]["shifts_sd"] = [0.2, 0.5]
    cfg["economics"].setdefault("bootstrap", {})["replicates"] = 500
    if cfg["economics"].get("missing_data") == "multiple_imputation":
        cfg["economics"].setdefault("multiple_imputation", {}).update(m=5, iterations=5)
    cfg.setdefault("report", {})["formats"] = []
    if "planning" in cfg:
        cfg["planning"].setdefault("simulation", {}).update(replicates=10, batch_size=5)
    return cfg


# ---- simulation studies ---------------------------------------------------------------------------

def _one_blas_thread() -> None:
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=1)


def _call(args):
    fn, seq = args
    import numpy as np
    return fn(np.random.default_rng(seq))


def simulate(fn, n: int, seed: int, workers: int | None = None) -> list:
    """``fn(rng)`` for ``n`` simulated trials, each with its own random stream
    (``SeedSequence(seed).spawn(n)``), on every core (at most 4; BLAS at one thread per
    process, since small matrices on shared cores only lose by threading).  The results are in
    trial order and do not depend on the number of processes.  ``fn`` must be a module-level
    function (or a functools.partial of one)."""
    import multiprocessing
    import os

    import numpy as np
    seqs = np.random.SeedSequence(seed).spawn(n)
    workers = workers or min(4, len(os.sched_getaffinity(0)))
    if workers == 1 or n < 8:
        _one_blas_thread()
        return [_call((fn, q)) for q in seqs]
    with multiprocessing.get_context("fork").Pool(workers, initializer=_one_blas_thread) as pool:
        return pool.map(_call, [(fn, q) for q in seqs], chunksize=max(1, n // (workers * 16)))


def coverage_bounds(nominal: float = 0.95) -> tuple[float, float]:
    """The acceptance range for the simulated coverage of nominal-``nominal`` intervals: halfway
    between the nominal coverage and the coverage of intervals 10% narrower and 10% wider
    (normal theory: for 95%, 92.2% and 96.9%, so 93.6% to 95.9%).  A right interval and one
    10% off are then equally far from the edge, whatever the simulation size; the size sets how
    often either is misjudged (the Monte Carlo SE, stated by each test)."""
    from statistics import NormalDist
    z = NormalDist().inv_cdf(0.5 + nominal / 2)

    def cover(scale):
        return 2 * NormalDist().cdf(scale * z) - 1
    return (nominal + cover(0.9)) / 2, (nominal + cover(1.1)) / 2


def check_coverage(estimate, ci_low, ci_high, truth, label: str = "", nominal: float = 0.95) -> dict:
    """Two-sided check of the simulated coverage of intervals for ``truth``.

    Passes when the coverage lies within :func:`coverage_bounds` (93.6% to 95.9% for 95%
    intervals), and checks on the same trials that these bounds fail for the intervals made
    10% too narrow and 10% too wide (each interval's arms scaled by 0.9 and 1.1 about its
    estimate), so the simulation is large enough to tell.  With n trials the Monte Carlo SE of a
    95% coverage is sqrt(0.95 x 0.05 / n): 0.49 points at 2,000 trials, 0.56 at 1,500, so a right
    interval passes, and one 10% too narrow or too wide fails, with probability about 0.95 or
    more at those sizes.  Returns the coverage at each scale, the bounds and the MCSE."""
    import numpy as np
    est, lo, hi = (np.asarray(x, float) for x in (estimate, ci_low, ci_high))
    truth = np.broadcast_to(np.asarray(truth, float), est.shape)

    def cover(scale):
        return float(np.mean((est - scale * (est - lo) <= truth) & (truth <= est + scale * (hi - est))))
    n = len(est)
    mcse = float(np.sqrt(nominal * (1 - nominal) / n))
    low, high = coverage_bounds(nominal)
    c = {s: cover(s) for s in (0.9, 1.0, 1.1)}
    where = f"{label}: " if label else ""
    assert low <= c[1.0] <= high, (
        f"{where}coverage {c[1.0]:.4f} of {n} simulated trials is outside {low:.4f} to {high:.4f} "
        f"(nominal {nominal}; Monte Carlo SE {mcse:.4f})")
    assert c[0.9] < low and c[1.1] > high, (
        f"{where}{n} trials cannot tell intervals 10% too narrow ({c[0.9]:.4f}) or too wide "
        f"({c[1.1]:.4f}) from right ones (bounds {low:.4f} to {high:.4f}): simulate more trials")
    return dict(coverage=c, low=low, high=high, mcse=mcse, n=n)


def visible_text(html: str) -> str:
    """HTML without its embedded base64 images, in which any short string (an ID, a name) can
    turn up by chance: what identifier and free-text scans should look at."""
    import re
    return re.sub(r"data:[a-z/+.-]+;base64,[A-Za-z0-9+/=]+", "", html)


def make_pathways_venv(path: Path) -> Path:
    """A throwaway virtual environment for testing ``pathways.sh`` (``PATHWAYS_VENV``): no
    packages of its own (it sees the running environment's site-packages through a path file and
    the repository through PYTHONPATH), a ``snakemake`` launcher, and the stamp that tells
    ``pathways.sh setup`` the pinned packages are installed.  ``setup`` itself still runs in it,
    so it installs the Pathways config guard there as it would in a real .venv."""
    import hashlib
    import subprocess
    import sys
    import sysconfig
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = Path(subprocess.run([str(path / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_pathways_test_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    launcher = path / "bin/snakemake"
    launcher.write_text(f"#!{path / 'bin/python'}\nimport sys\nfrom snakemake.cli import main\nsys.exit(main())\n")
    launcher.chmod(0o755)
    digest = hashlib.sha256((ROOT / "requirements.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    (path / f".pathways-{digest.hexdigest()[:16]}").touch()
    return path


def pathways_env(venv: Path, **extra) -> dict:
    """Environment for running ``bash pathways.sh`` with the throwaway venv and this checkout."""
    import os
    return dict(os.environ, PATHWAYS_VENV=str(venv), PYTHONPATH=str(ROOT), **extra)


def reversed_keys(x):
    """``x`` with every mapping's keys in reverse order (lists keep theirs): the same config to
    YAML, which has no key order (tests of the per-rule config parameters)."""
    if isinstance(x, dict):
        return {k: reversed_keys(x[k]) for k in reversed(list(x))}
    if isinstance(x, list):
        return [reversed_keys(v) for v in x]
    return x
