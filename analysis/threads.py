"""One BLAS thread for the numerical code that works on small matrices or loops over many.

The mixed models, multiple imputation and the bootstrap multiply small matrices many times:
multithreaded BLAS only adds overhead there (4-6 times slower on a loaded machine) and
run-to-run rounding differences. ``with one_blas_thread(): ...`` limits every BLAS library
loaded in the process (numpy's and scipy's OpenBLAS) to one thread for the block.

The library scan behind the limit (threadpoolctl) takes a few milliseconds, so it is done once
per process and reused, rescanning only when a library was loaded since (detected by the
number of shared objects mapped).
"""

from __future__ import annotations

from contextlib import nullcontext

try:  # present as a dependency of scikit-learn; optional here
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover
    ThreadpoolController = None

__all__ = ["one_blas_thread"]

_state: dict = {"controller": None, "key": None}


def _libraries_key():
    import sys
    # modules that load BLAS are imported before it is used: the set of imported extension
    # modules changes whenever a new BLAS could have appeared
    return len(sys.modules)


def one_blas_thread():
    """Context manager limiting BLAS to one thread (a no-op without threadpoolctl)."""
    if ThreadpoolController is None:  # pragma: no cover
        return nullcontext()
    key = _libraries_key()
    if _state["controller"] is None or _state["key"] != key:
        _state["controller"] = ThreadpoolController()
        _state["key"] = key
    return _state["controller"].limit(limits=1, user_api="blas")
