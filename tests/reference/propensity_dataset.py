"""Write datasets/propensity_pilot.csv: one example-sized non-randomised comparison from the
cpi_quasi generator's confounding structure (analysis.simulate_designs.cpi_quasi_people;
14 agencies, allocation by client group, younger clients in intervention agencies), with the
continuous latent wellbeing at baseline (``y_bl``) and 12 months (``y``), rounded to 6 decimals.

    .venv/bin/python tests/reference/propensity_dataset.py tests/reference/datasets
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from analysis.simulate_designs import CpiQuasiParameters, cpi_quasi_people, cpi_quasi_sites


def main(out_dir: str) -> None:
    p = CpiQuasiParameters()
    rng = np.random.default_rng([20250113, 1])
    d = cpi_quasi_people(rng, p, cpi_quasi_sites(rng, p))
    out = d[["site_id", "client_group", "treated", "age", "sex"]].copy()
    out["y_bl"] = d.eta_baseline.round(6)
    out["y"] = d.eta_m12.round(6)
    out.to_csv(Path(out_dir) / "propensity_pilot.csv", index=False, lineterminator="\n")


if __name__ == "__main__":
    main(sys.argv[1])
