"""Report section (statistician and funder): the registered analysis plan and every deviation.

Reads ``reports/<trial>/sap.json`` (written by the ``sap`` rule from
:func:`analysis.sap.check_run`): who locked the plan and when, its hash, and each analysis key
whose value differs from the locked one, with the planned and actual values, reason and date.
No deviation: "analysed as registered".  An exploratory run lists the undeclared differences
and says it is not the registered analysis.  Without a lock the section says that nothing was
compared with a frozen plan.
"""

from __future__ import annotations

import json
import os

import analysis
from analysis.sap import NOT_REGISTERED, STATUS_REGISTERED

TEMPLATE = "sections/deviations.html.j2"


def context(cfg: dict, inputs: dict[str, str]) -> dict:
    path = inputs.get("sap")
    if not path or not os.path.exists(path):
        return dict(status=None)
    with open(path, encoding="utf-8") as fh:
        st = json.load(fh)
    rows = st["deviations"]
    return dict(status=st["status"], lock=st["lock"], rows=rows,
                registered=st["status"] == STATUS_REGISTERED,
                exploratory=st["status"] == NOT_REGISTERED, not_registered=NOT_REGISTERED,
                undeclared=sum(not r["declared"] for r in rows),
                version_now=analysis.__version__)
