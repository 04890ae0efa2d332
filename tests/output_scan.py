"""Scanning rendered outputs for disclosure: a test helper (the reports themselves are built from
disclosure-controlled tables, analysis.reporting.audience; this checks what came out)."""

from __future__ import annotations

from analysis.disclosure import Policy


def check_no_small_counts(values, policy: Policy = Policy()) -> list:
    """Return every numeric value in ``values`` that breaks the policy (for output scanning)."""
    bad = []
    for v in values:
        try:
            x = float(str(v).replace(",", ""))
        except ValueError:
            continue
        if x.is_integer() and policy.is_small(x):
            bad.append(v)
    return bad
