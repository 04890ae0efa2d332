"""Formatting helpers shared by report sections."""

from __future__ import annotations

import base64
import math
from pathlib import Path

import pandas as pd

from analysis.io import read_table as io_read_table


def fmt(x, dp: int) -> str:
    """Number for display: '–' for missing, integers as such, else fixed decimals."""
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    xf = float(x)
    return str(int(xf)) if dp == 0 else f"{xf:.{dp}f}"


def count(x) -> str:
    """A count or denominator: whole numbers without decimals, others to one decimal."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    xf = float(x)
    return str(int(xf)) if xf.is_integer() else f"{xf:.1f}"


def png_data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def read_table(path: str | Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a result table; the named text columns get '' instead of NaN."""
    df = io_read_table(path)
    for c in text_columns:
        if c in df:
            df[c] = df[c].fillna("").astype(str)
    return df


def money(x, dp: int = 0) -> str:
    """Pounds with a thousands separator and a true minus sign: £40,249, −£1,234."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    x = float(x)
    return f"−£{abs(x):,.{dp}f}" if x < 0 else f"£{x:,.{dp}f}"


def level_label(level: float) -> str:
    """A confidence level as a percentage: 0.95 -> '95%', 0.975 -> '97.5%'."""
    return f"{float(level) * 100:g}%"


def plain_text(text) -> str:
    """A note for a report: numbers written plainly (``np.float64(0.0)`` -> ``0.0``) and
    missing values as ''."""
    import re
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return re.sub(r"\bnp\.(?:float|int)\d*\(([^()]*)\)", r"\1", str(text))


def split_notes(text, labels: dict | None = None) -> list[str]:
    """The separate notes of a warnings cell ('a | b'), with outcome columns named by their
    labels and the grouping columns in words ('site', 'participant')."""
    import re
    words = {"site_id": "site", "participant_id": "participant", **(labels or {})}
    out = []
    for w in plain_text(text).split(" | "):
        w = w.strip()
        if not w:
            continue
        for col in sorted(words, key=len, reverse=True):
            w = re.sub(rf"(?<![\w.]){re.escape(col)}(?![\w])", words[col], w)
        out.append(w)
    return out
