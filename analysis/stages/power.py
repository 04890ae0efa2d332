"""Simulation-based power stage (analysis.power_sim): set-up, one batch, gather."""

from __future__ import annotations

import os
import time

import pandas as pd

from analysis import power_sim
from analysis.io import read_table, write_bytes, write_table
from analysis.stages._common import log, read_linked


def run(cfg: dict, inputs: dict, outputs: dict[str, str], *, rule: str,
        wildcards: dict[str, str] | None = None) -> None:
    """One job of the simulation: ``rule`` is power_setup, power_batch (``wildcards``: step and
    batch) or power_gather."""
    wildcards = wildcards or {}
    sim = cfg["planning"]["simulation"]
    if os.environ.get("SLURM_JOB_ID"):  # evidence that the job ran inside a SLURM allocation
        log.info("slurm job %s on %s", os.environ["SLURM_JOB_ID"], os.uname().nodename)
    if rule == "power_setup":
        params, pool = power_sim.setup(read_linked(inputs["linked"]), cfg, read_table(inputs["sample_size"]),
                                       read_table(inputs["inputs"]))
        log.info("power: sizes %s (%s), %d replicates each in batches of %d; model %s; variances %s",
                 params["sizes"], "sites per arm" if params["design"] == "cluster" else "participants per arm",
                 sim["replicates"], sim["batch_size"], params["model"], params["variances"])
        power_sim.write_setup(params, pool, outputs["params"], outputs["pool"])
    elif rule == "power_batch":
        params, pool = power_sim.read_setup(inputs["params"], inputs["pool"])
        step, b = int(wildcards["step"]), int(wildcards["batch"])
        t0 = time.perf_counter()
        res = power_sim.batch(params, pool, step, b, sim["batch_size"], sim["replicates"])
        log.info("power: size %d, replicates %d-%d: %d rejections, %d failed fits, %.1f s",
                 params["sizes"][step], res.replicate.min(), res.replicate.max(), int(res.reject.sum()),
                 int(res.failed.sum()), time.perf_counter() - t0)
        write_table(res, outputs["batch"])
    elif rule == "power_gather":
        params = power_sim.read_params(inputs["params"])
        files = inputs["batches"] if isinstance(inputs["batches"], list) else [inputs["batches"]]
        res = pd.concat([read_table(f) for f in files], ignore_index=True)
        res = res.sort_values(["size", "replicate"]).drop_duplicates(["size", "replicate"])
        summary = power_sim.summarise(params, res)
        for r in summary.itertuples():
            log.info("power: size %d: %.3f (%.3f to %.3f), analytic %.3f, %d failed", r.size, r.power, r.ci_low,
                     r.ci_high, r.analytic_power, r.failed)
        write_table(summary, outputs["table"])
        write_bytes(power_sim.power_curve_png(summary, cfg["planning"]["power"]), outputs["figure"])
    else:  # pragma: no cover
        raise ValueError(f"unknown rule {rule}")
