"""SAP stage: the run's status against the registered analysis plan, and every deviation.

The comparison itself happens when the workflow is parsed (``analysis.sap.check_run`` in
workflow/rules/common.smk), so that an undeclared difference stops the run before anything is
written; this stage only writes its result: ``tables/deviations.csv`` (a result table, hashed in
the manifest and compared by verify) and ``sap.json`` (read by the reports and the manifest).
"""

from __future__ import annotations

import json

import pandas as pd

from analysis.io import write_table, write_text

COLUMNS = ["key", "planned", "actual", "reason", "date", "declared"]


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str], *, status: dict) -> None:
    """Write ``status`` (from ``analysis.sap.check_run``) as ``outputs["status"]`` and its deviations
    as ``outputs["deviations"]``; ``cfg`` and ``inputs`` (the SAP lock, tracked by the rule) are not
    read."""
    write_table(pd.DataFrame(status["deviations"], columns=COLUMNS), outputs["deviations"])
    write_text(json.dumps(status, indent=2, sort_keys=True, ensure_ascii=False) + "\n", outputs["status"])
