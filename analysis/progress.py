"""Progress of long steps, shown on the console while a stage runs.

The statistical code marks its long phases and loops::

    with progress.task("wemwbs_total: multiple imputation"):
        for i, imp in enumerate(imps, 1):
            ...
            progress.step("fit", i, len(imps))

Both are no-ops (a flag test) unless a stage turned progress on, which
:func:`analysis.stages.logged` does for every workflow job.  Then, on the console (stderr, where
Snakemake shows a job's output) and in the rule's log, an outermost task prints a line when it
starts and one with its elapsed time when it ends; a task inside it prints its elapsed time only
when it took longer than :data:`INTERVAL`; and a loop prints where it is at most once per
:data:`INTERVAL`, so a long step is never silent for longer than that and a short one adds
nothing.  Lines carry the rule's name, since two jobs can run at once::

    [outcome] wemwbs_total (1/4) ...
    [outcome] wemwbs_total (1/4) / MI analysis: imputation 12/20 (5.0 s)
    [outcome] wemwbs_total (1/4) / MI analysis done in 8.3 s
    [outcome] wemwbs_total (1/4) / tipping point: shift 3/5 (5.1 s)
    [outcome] wemwbs_total (1/4) done in 31.2 s
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

logger = logging.getLogger("pathways.progress")

# at most one loop line per INTERVAL seconds; inner tasks shorter than this print nothing
INTERVAL = 5.0


class _State:
    def __init__(self) -> None:
        self.enabled = False
        self.tasks: list[tuple[str, float]] = []  # (label, start time)
        self.last_line = 0.0


_state = _State()


def elapsed(seconds: float) -> str:
    """``4.2 s``, ``2 min 05 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s"


def _label() -> str:
    return " / ".join(label for label, _ in _state.tasks)


@contextmanager
def task(label: str) -> Iterator[None]:
    """A long phase (when enabled): an outermost task prints a start line and an end line with
    its elapsed time; an inner one only its end line, and only when it took over INTERVAL."""
    if not _state.enabled:
        yield
        return
    _state.tasks.append((label, time.monotonic()))
    outermost = len(_state.tasks) == 1
    if outermost:
        logger.info("%s ...", _label())
        _state.last_line = time.monotonic()
    ok = False
    try:
        yield
        ok = True
    finally:
        took = time.monotonic() - _state.tasks[-1][1]
        if outermost or took >= INTERVAL or not ok:
            logger.info("%s %s in %s", _label(), "done" if ok else "stopped", elapsed(took))
            _state.last_line = time.monotonic()
        _state.tasks.pop()


def step(what: str, i: int, n: int) -> None:
    """Step ``i`` of ``n`` of a loop in the current task (shown at most once per INTERVAL)."""
    if not _state.enabled:
        return
    now = time.monotonic()
    if now - _state.last_line < INTERVAL:
        return
    _state.last_line = now
    since = now - _state.tasks[-1][1] if _state.tasks else 0.0
    where = f"{_label()}: " if _state.tasks else ""
    logger.info("%s%s %d/%d (%s)", where, what, i, n, elapsed(since))


@contextmanager
def shown(name: str, stream: TextIO | None = None, interval: float | None = None) -> Iterator[None]:
    """Turn progress on for a stage: lines ``[name] ...`` go to ``stream`` (stderr) and, through
    the ``pathways`` logger, to whatever log handlers are set up."""
    global INTERVAL
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(f"[{name}] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    previous = (_state.enabled, INTERVAL)
    _state.enabled, _state.tasks, _state.last_line = True, [], 0.0
    if interval is not None:
        INTERVAL = interval
    try:
        yield
    finally:
        _state.enabled, INTERVAL = previous
        _state.tasks = []
        logger.removeHandler(handler)
        handler.flush()
