"""Statistical disclosure control for funder and ethics outputs.

Rules (configurable through ``report.disclosure`` in the trial config):

* **Primary suppression**: a count of people between 1 and ``threshold - 1`` (default 1-4) is
  shown as ``<threshold``.  Zero is shown unless ``suppress_zero`` is set (a zero reveals
  nothing about an individual, and CONSORT asks for reasons with n = 0).
* **Secondary suppression**: where parts and their total are shown together (e.g. the two arms
  and "all", or the reasons for exclusion and the number excluded), a single suppressed part
  could be recovered by subtraction; the smallest other shown part is then suppressed too (or,
  with only one other part, the total), repeated until no suppressed cell can be recovered.
* **Derived values**: a proportion, rate or CI computed from a suppressed count is suppressed
  with it, since with a known denominator it reveals the count.

These are the conventions of the ONS and NHS England small-number guidance (suppress 1-4;
protect against differencing with secondary suppression).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SUPPRESSED = "suppressed"
SECONDARY = "*"  # shown for a count withheld only to protect a small count elsewhere


@dataclass(frozen=True)
class Policy:
    threshold: int = 5
    suppress_zero: bool = False

    def is_small(self, n) -> bool:
        if n is None or (isinstance(n, float) and np.isnan(n)):
            return False
        n = float(n)
        return (0 < n < self.threshold) or (self.suppress_zero and n == 0)

    @property
    def label(self) -> str:
        return f"<{self.threshold}"


def primary_mask(counts: pd.Series, policy: Policy) -> pd.Series:
    """True where a count must be suppressed on its own."""
    return counts.map(policy.is_small).astype(bool)


def secondary_mask(parts: pd.Series, suppressed: pd.Series, total_shown: bool = True) -> pd.Series:
    """Extend ``suppressed`` (aligned with ``parts``) so no suppressed part can be recovered.

    ``parts`` are counts that add up to a total that is shown (``total_shown``).  If exactly one
    part is suppressed, the smallest unsuppressed part (ties: first) is suppressed as well.
    Returns the extended mask for the parts; call :func:`total_needs_suppression` to know if
    the total itself must go (when fewer than two parts could absorb the protection).
    """
    mask = suppressed.copy().astype(bool)
    if not total_shown:
        return mask
    while mask.sum() == 1 and (~mask).sum() >= 1:
        candidates = parts[~mask]
        if candidates.empty:
            break
        mask[candidates.astype(float).idxmin()] = True
    return mask


def total_needs_suppression(parts_mask: pd.Series) -> bool:
    """With a single part and it suppressed, the total equals the part and must go too."""
    return bool(parts_mask.sum() == 1 and len(parts_mask) == 1)


def protect(counts: pd.Series, groups: list[tuple[object, list]], policy: Policy = Policy()) -> pd.Series:
    """Primary plus secondary suppression over explicit (total, parts) groups.

    ``counts`` is indexed by cell; each group names the index of a shown total (or None if
    there is no total) and the indices of its parts, which add up to the total.  Secondary
    suppression is repeated over all groups until nothing changes, so protection added for one
    group is itself protected in every other group the cell belongs to.
    """
    mask = primary_mask(counts, policy)
    changed = True
    while changed:
        changed = False
        for total, parts in groups:
            parts = [p for p in parts if p in mask.index]
            if not parts:
                continue
            total_shown = total is not None and not mask[total]
            m = secondary_mask(counts[parts], mask[parts], total_shown=total_shown)
            if total is not None and total_shown and total_needs_suppression(m):
                mask[total] = True
                changed = True
            if (m != mask[parts]).any():
                mask[parts] = m
                changed = True
    return mask


def suppress_table(df: pd.DataFrame, count_col: str, derived_cols: list[str], group_cols: list[str],
                   part_col: str | None = None, total_label: str = "all",
                   policy: Policy = Policy(), extra_groups: list[tuple[object, list]] | None = None
                   ) -> tuple[pd.DataFrame, pd.Series]:
    """Apply primary, secondary and derived-value suppression to a tidy table.

    ``group_cols`` identify sets of rows that belong together (e.g. indicator and time point);
    within each set, rows whose ``part_col`` is not ``total_label`` are the parts of the row
    whose ``part_col`` equals ``total_label``.  ``extra_groups`` adds other (total, parts)
    identities between rows (by index).  Small cells of ``count_col`` become ``<threshold``,
    cells withheld only to protect them (secondary suppression) become ``*``, and the
    ``derived_cols`` of both become ``suppressed``.  Returns the new table
    (object dtype for the affected columns) and the boolean mask of suppressed rows.
    """
    out = df.copy()
    groups = list(extra_groups or [])
    if part_col is not None:
        for _, rows in out.groupby(group_cols, sort=False, dropna=False):
            is_total = rows[part_col] == total_label
            parts = list(rows.index[~is_total])
            totals = list(rows.index[is_total])
            if parts:
                groups.append((totals[0] if totals else None, parts))
    mask = protect(out[count_col], groups, policy)
    primary = primary_mask(out[count_col], policy)
    for c in [count_col] + derived_cols:
        out[c] = out[c].astype(object)
    out.loc[mask & primary, count_col] = policy.label
    out.loc[mask & ~primary, count_col] = SECONDARY
    for c in derived_cols:
        out.loc[mask, c] = SUPPRESSED
    return out, mask


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
