"""Write datasets/cpi_quasi_economics.csv: the economic evaluation's participant table of the
non-randomised example (config/cpi_quasi.yaml on data/raw/cpi_quasi, through
analysis.economics.participant_table: total cost, QALYs, baseline cost and utility, SWEMWBS at
12 months and baseline, the propensity covariates), one row per participant in the table's order,
without identifiers, plus the counts of three bootstrap replicates (``count_1`` .. ``count_3``:
the first three of 200 seeded two-stage replicates of analysis.bootstrap.count_blocks, as
analysis.economics draws them), for tests/reference/econ_propensity_golden.R.

    .venv/bin/python tests/reference/econ_propensity_dataset.py tests/reference/datasets
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import analysis
from analysis import bootstrap as boot
from analysis.config import load_config
from analysis.economics import participant_table
from analysis.pipeline import prepare

ROOT = Path(analysis.__file__).parent.parent
REPLICATES = 200  # the draw of the first block depends on its size: tests use the same B
COUNTS = 3


def table():
    """The participant table of the example (as the economics stage builds it) and its config."""
    cfg = load_config(ROOT / "config" / "cpi_quasi.yaml")
    t = prepare(cfg, ROOT / cfg["data"]["raw_dir"])
    pdata = participant_table(t["linked"], t["service_use"], t["participants"], cfg["economics"],
                              intervention_arm=cfg["design"]["intervention_arm"],
                              ps_covariates=cfg["propensity"]["covariates"])
    return pdata, cfg


def example(weighted_interval: str):
    """The example's participant table, config and economics settings (the dataset's replicates)
    with the weighted evaluation's interval method (the tests' fixture)."""
    pdata, cfg = table()
    econ = dict(cfg["economics"], bootstrap=dict(cfg["economics"]["bootstrap"], replicates=REPLICATES),
                weighted_interval=weighted_interval)
    return pdata, cfg, econ


def first_counts(t, seed: int) -> np.ndarray:
    block = next(boot.count_blocks(len(t), t.arm.to_numpy(), t.site_id.to_numpy(), replicates=REPLICATES,
                                   seed=[seed, 6], two_stage=True))
    return block[:COUNTS]


def main(out_dir: str) -> None:
    pdata, cfg = table()
    t = pdata.table
    out = t[["site_id", "treat", "ps_client_group", "ps_age", "ps_sex", "cost", "cost_bl", "qaly", "utility_bl",
             "swemwbs_total", "swemwbs_total_bl"]].copy()
    out.columns = ["site_id", "treated", "client_group", "age", "sex", "cost", "cost_bl", "qaly", "utility_bl",
                   "swemwbs", "swemwbs_bl"]
    out["treated"] = out.treated.astype(int)
    for k, c in enumerate(first_counts(t, cfg["seed"]), start=1):
        out[f"count_{k}"] = c
    out.to_csv(Path(out_dir) / "cpi_quasi_economics.csv", index=False, lineterminator="\n", float_format="%.17g")


if __name__ == "__main__":
    main(sys.argv[1])
