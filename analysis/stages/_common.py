"""Shared helpers for stage modules."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from analysis import progress

log = logging.getLogger("pathways")


def _is_user_error(exc: Exception) -> bool:
    from analysis.config import ConfigError
    from analysis.pseudonym import PseudonymKeyError
    from analysis.validation import DataValidationError
    return isinstance(exc, (ConfigError, DataValidationError, PseudonymKeyError))


@contextmanager
def logged(log_path: str | Path):
    """Send log records and warnings to the rule's log file; log any exception, then re-raise.

    Errors in the input (invalid data or config, an unusable pseudonymisation key) are logged
    and printed as their message only, and end the job with exit code 1; anything else is a
    bug and keeps its traceback.  Progress of long steps (:mod:`analysis.progress`) is shown
    on the console too, as ``[<log name>] ...`` lines, and kept in the log."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    os.chmod(log_path, 0o600)  # an ingest log lists data queries with the trial's own IDs
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        with progress.shown(Path(log_path).stem):
            yield log
    except Exception as exc:
        if _is_user_error(exc):
            # bad input or an unusable key: the message says what to fix; a traceback would not
            log.error("stage failed: %s", exc)
            print(f"pathways: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        log.error("stage failed:\n%s", traceback.format_exc())
        print(traceback.format_exc(), file=sys.stderr)
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def read_linked(path: str) -> pd.DataFrame:
    """Read the linked analysis table, checking its time points are still ordered."""
    df = pd.read_parquet(path)
    if not isinstance(df.timepoint.dtype, pd.CategoricalDtype):  # pragma: no cover
        raise TypeError("linked table lost its ordered time points")
    return df
