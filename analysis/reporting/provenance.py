"""Report section: provenance (from manifest.json) and how to verify the numbers."""

from __future__ import annotations

import json

TEMPLATE = "sections/provenance.html.j2"
KEY_PACKAGES = ("snakemake", "pandas", "numpy", "scipy", "statsmodels", "pingouin", "matplotlib",
                "pyarrow", "jinja2")


def context(cfg: dict, inputs: dict[str, str]) -> dict | None:
    if "manifest" not in inputs:
        return None
    m = json.loads(open(inputs["manifest"], encoding="utf-8").read())
    pk = m["packages"]
    return dict(
        m=m, trial_id=cfg["trial_id"],
        packages=[(p, pk[p]) for p in KEY_PACKAGES if p in pk], n_packages=len(pk),
        raw=sorted(m["raw_inputs"].items()), tables=sorted(m["result_tables"].items()))
