"""Shared fixtures: the repository root, the demo config and small simulated trials."""

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


def fast_analysis(cfg: dict) -> dict:
    """The demo analysis plan with fewer imputations, replicates and sensitivity deltas, and
    HTML only (PDF and Word output are tested in test_report_outputs.py): the same code paths
    in a fraction of the time."""
    cfg["outcomes"]["multiple_imputation"].update(m=5, iterations=5)
    cfg["outcomes"]["tipping_point"]["shifts_sd"] = [0.2, 0.5]
    cfg["economics"].setdefault("bootstrap", {})["replicates"] = 500
    if cfg["economics"].get("missing_data") == "multiple_imputation":
        cfg["economics"].setdefault("multiple_imputation", {}).update(m=5, iterations=5)
    cfg.setdefault("report", {})["formats"] = []
    return cfg


def visible_text(html: str) -> str:
    """HTML without its embedded base64 images, in which any short string (an ID, a name) can
    turn up by chance: what identifier and free-text scans should look at."""
    import re
    return re.sub(r"data:[a-z/+.-]+;base64,[A-Za-z0-9+/=]+", "", html)
