"""Internal consistency (Cronbach's alpha with a CI, 95% unless another level is given) per total and subscale."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._definitions import Spec
from ._scoring import item_score_frame

COLUMNS = ["instrument", "scale", "n", "n_items", "alpha", "ci_low", "ci_high"]


def scales(spec: Spec) -> list[tuple[str, tuple[int, ...]]]:
    """(scale name, 0-based item positions): the total (if scored) then each subscale."""
    out = []
    if spec.scoring.get("total", True):
        out.append(("total", tuple(range(spec.n_items))))
    out.extend(spec.subscales.items())
    return out


def alpha_row(instrument_id: str, name: str, items: pd.DataFrame, level: float = 0.95) -> dict:
    """Alpha on complete cases (listwise). Fewer than 2 items or 2 complete rows, or no
    variance in the scale total, gives NaN."""
    complete = items.dropna(how="any")
    n, k = complete.shape
    row = {"instrument": instrument_id, "scale": name, "n": n, "n_items": k,
           "alpha": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if k < 2 or n < 2 or complete.sum(axis=1).var() == 0:
        return row
    import pingouin  # imported here: it takes seconds, and scoring does not need it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # rows are dropped here, not inside pingouin, so its CI uses the complete-case n
        alpha, ci = pingouin.cronbach_alpha(data=complete.astype(float), ci=level)
    row.update(alpha=float(alpha), ci_low=float(ci[0]), ci_high=float(ci[1]))
    return row


def reliability_frame(spec: Spec, responses: pd.DataFrame, options: dict, level: float = 0.95) -> pd.DataFrame:
    if spec.method != "sum":
        raise ValueError(f"{spec.id}: reliability needs a summed multi-item scale "
                         f"(scoring method is {spec.method!r})")
    scored = item_score_frame(spec, responses, options)
    rows = [alpha_row(spec.id, name, scored.iloc[:, list(pos)], level) for name, pos in scales(spec)]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({"n": "int64", "n_items": "int64"})
