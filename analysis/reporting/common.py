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
