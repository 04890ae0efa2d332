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

from dataclasses import dataclass, field

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


# ---------------------------------------------------------------------------------------------
# Disclosure control across everything an audience receives
# ---------------------------------------------------------------------------------------------
#
# The funder and ethics reports show the same people in many tables: flow counts, feasibility
# numerators over their denominators, effect-estimate sample sizes, adverse events.  Protecting
# each table on its own is not enough: "81 / 85" reveals that 4 people did not complete, and a
# total in one report minus a part in the other recovers a suppressed cell.  A :class:`Ledger`
# holds every count either report shows (and the counts they imply), keyed once, with the
# accounting identities between them; :func:`protect_ledger` suppresses cells until an attacker
# who holds *both* reports, knows every identity and reads "<5" as 1-4 and "*" as at least the
# threshold cannot pin down any small count exactly (checked by integer programming).

SHOWN, PRIMARY, SECONDARY_STATUS = "shown", "primary", "secondary"


@dataclass
class Ledger:
    """Counts of people released to one or more audiences, and the identities between them.

    * ``values``: true value of every cell (released or not);
    * ``published``: cells some audience is shown;
    * ``known``: unpublished cells an attacker is assumed to know (the conservative choice for
      quantities such as withdrawals after the last scheduled assessment, which an attacker
      might simply assume to be zero);
    * ``exempt``: released cells that do not count people (sites): shown as they are;
    * ``identities``: (total, parts) with total = sum(parts), all keys of ``values``.

    Every other unpublished cell (a complement such as "allocated minus completed") is unknown
    to the attacker and is protected like a suppressed cell when it is small.
    """

    values: dict = field(default_factory=dict)
    published: set = field(default_factory=set)
    known: set = field(default_factory=set)
    exempt: set = field(default_factory=set)
    identities: list = field(default_factory=list)
    mismatches: list = field(default_factory=list)
    limits: dict = field(default_factory=dict)

    def limit(self, key: str, lo: float, hi: float) -> None:
        """What else the release says about a cell (e.g. a progression band shown beside a
        withheld proportion bounds its numerator): the attacker knows lo <= value <= hi."""
        a, b = self.limits.get(key, (0, np.inf))
        self.limits[key] = (max(a, lo), min(b, hi))

    def add(self, key: str, value, *, published: bool = False, known: bool = False,
            exempt: bool = False) -> str:
        """Register a cell (again: the value must agree); returns the key."""
        v = int(round(float(value)))
        if key in self.values and self.values[key] != v:
            raise ValueError(f"disclosure ledger: cell {key!r} has two values ({self.values[key]} and {v})")
        self.values[key] = v
        if published:
            self.published.add(key)
        if known:
            self.known.add(key)
        if exempt:
            self.exempt.add(key)
        return key

    def alias(self, key: str, value, fallback: str, **flags) -> str:
        """The cell ``key`` if it exists with this value (the same count shown elsewhere), else
        a cell of its own under ``fallback`` (recorded in ``mismatches``)."""
        v = int(round(float(value)))
        if key in self.values and self.values[key] != v:
            self.mismatches.append((key, self.values[key], fallback, v))
            return self.add(fallback, v, **flags)
        return self.add(key, v, **flags)

    def identity(self, total: str, parts: list[str], *, only_if_holds: bool = False) -> bool:
        """Declare total = sum(parts).  A declared identity that does not hold in the data is an
        error, unless ``only_if_holds`` (a coincidence an attacker might assume, e.g. consented
        = allocated) in which case it is simply not added."""
        parts = list(dict.fromkeys(parts))
        missing = [k for k in [total, *parts] if k not in self.values]
        if missing or not parts:
            if only_if_holds:
                return False
            raise KeyError(f"disclosure ledger: identity over unknown cell(s) {missing}")
        holds = self.values[total] == sum(self.values[p] for p in parts)
        if not holds:
            if only_if_holds:
                return False
            raise ValueError(f"disclosure ledger: {total} = {self.values[total]} is not the sum of "
                             f"{[(p, self.values[p]) for p in parts]}")
        if (total, tuple(parts)) not in {(t, tuple(p)) for t, p in self.identities}:
            self.identities.append((total, parts))
        return True


@dataclass
class Release:
    """The outcome of :func:`protect_ledger`: how each released cell is shown."""

    ledger: Ledger
    status: dict
    policy: Policy
    unprotected: list = field(default_factory=list)

    def show(self, key: str) -> str:
        if key not in self.ledger.published:
            raise KeyError(f"cell {key!r} is not in the release ledger as a released count")
        st = self.status.get(key, SHOWN)
        if st == PRIMARY:
            return self.policy.label
        if st == SECONDARY_STATUS:
            return SECONDARY
        return str(self.ledger.values[key])

    def withheld(self, *keys) -> bool:
        """True if any of ``keys`` (None ignored) is suppressed: a value derived from them is
        withheld too."""
        return any(k is not None and self.status.get(k, SHOWN) != SHOWN for k in keys)


def _bounds(ledger: Ledger, status: dict, policy: Policy, big: int) -> tuple[np.ndarray, np.ndarray, list]:
    keys = list(ledger.values)
    lo, hi = np.zeros(len(keys)), np.full(len(keys), float(big))
    small_lo = 0 if policy.suppress_zero else 1
    for i, k in enumerate(keys):
        v = ledger.values[k]
        st = status.get(k)
        if k in ledger.known or (k in ledger.published and st == SHOWN):
            lo[i] = hi[i] = v
        elif k in ledger.published and st == PRIMARY:
            lo[i], hi[i] = small_lo, policy.threshold - 1
        elif k in ledger.published and st == SECONDARY_STATUS:
            lo[i] = policy.threshold
        if lo[i] != hi[i] and k in ledger.limits:
            a, b = ledger.limits[k]
            lo[i], hi[i] = max(lo[i], a), min(hi[i], b)
    return lo, hi, keys


def attack(ledger: Ledger, status: dict, policy: Policy, cells: list[str] | None = None) -> dict:
    """What an attacker holding every released cell can infer: for each unknown cell (or each of
    ``cells``), the (minimum, maximum) integer value consistent with the released values, the
    identities, "<threshold" meaning 1..threshold-1 (0.. with ``suppress_zero``) and "*" meaning
    at least the threshold.  Integer linear programming (HiGHS through scipy.optimize.milp)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    big = 10 * max([1, *ledger.values.values()]) + 10 * policy.threshold
    lo, hi, keys = _bounds(ledger, status, policy, big)
    index = {k: i for i, k in enumerate(keys)}
    if cells is None:
        cells = [k for k in keys if lo[index[k]] != hi[index[k]]]
    if not ledger.identities:
        return {k: (lo[index[k]], hi[index[k]]) for k in cells}
    A = np.zeros((len(ledger.identities), len(keys)))
    for r, (total, parts) in enumerate(ledger.identities):
        A[r, index[total]] += 1
        for p in parts:
            A[r, index[p]] -= 1
    cons = LinearConstraint(A, 0, 0)
    integrality = np.ones(len(keys))
    out = {}
    for k in cells:
        c = np.zeros(len(keys))
        c[index[k]] = 1
        ends = []
        for sign in (1, -1):
            res = milp(sign * c, constraints=cons, integrality=integrality, bounds=Bounds(lo, hi))
            if not res.success:  # cannot happen for a consistent release: the truth is feasible
                raise RuntimeError(f"disclosure audit: no solution for {k} ({res.message})")
            ends.append(int(round(res.x[index[k]])))
        out[k] = (ends[0], ends[1])
    return out


def _neighbours(ledger: Ledger, key: str) -> list[list[str]]:
    """Cells in identities with ``key`` (distance 1), then in identities with those (distance 2),
    and so on: where a protecting suppression is looked for, nearest first."""
    seen, frontier, rings = {key}, {key}, []
    while frontier:
        ring = set()
        for total, parts in ledger.identities:
            cells = {total, *parts}
            if cells & frontier:
                ring |= cells - seen
        if not ring:
            break
        rings.append(sorted(ring))
        seen |= ring
        frontier = ring
    return rings


def protect_ledger(ledger: Ledger, policy: Policy = Policy(), max_rounds: int = 500) -> Release:
    """Primary suppression of every small released count, then complementary suppression until
    no small cell (released or implied) can be pinned down by :func:`attack`.

    For a small cell the attacker can pin down, the protecting cell is looked for among the
    released counts of people that are shown and at least the threshold (never a zero: once "*"
    is read as large, suppressing a zero protects nothing), nearest the exposed cell in the
    identity graph first; within a ring, cells in fewer identities (not a denominator used
    everywhere) and then smaller cells are tried first, and the first whose suppression leaves
    the exposed cell undetermined is taken.  If no single cell does, the first candidate is
    suppressed and the search goes on."""
    status = {k: SHOWN for k in ledger.published}
    for k in ledger.published:
        if k not in ledger.exempt and policy.is_small(ledger.values[k]):
            status[k] = PRIMARY
    sensitive = [k for k in ledger.values if k not in ledger.known and k not in ledger.exempt
                 and policy.is_small(ledger.values[k])]
    degree: dict = {}
    for total, parts in ledger.identities:
        for c in (total, *parts):
            degree[c] = degree.get(c, 0) + 1
    unprotected: list = []

    def pinned(cells):
        return [c for c, (a, b) in attack(ledger, status, policy, cells).items() if a == b]

    for _ in range(max_rounds):
        todo = [k for k in sensitive if status.get(k) != SHOWN and k not in unprotected]
        exposed = pinned(todo)
        if not exposed:
            break
        k = exposed[0]
        first = None
        for ring in _neighbours(ledger, k):
            cands = sorted((c for c in ring if status.get(c) == SHOWN and c not in ledger.exempt
                            and ledger.values[c] >= policy.threshold),
                           key=lambda c: (degree.get(c, 0), ledger.values[c], c))
            for c in cands:
                first = first or c
                status[c] = SECONDARY_STATUS
                if not pinned([k]):
                    break
                status[c] = SHOWN
            else:
                continue
            break
        else:
            if first is None:
                unprotected.append(k)  # nothing left that could protect it
            else:
                status[first] = SECONDARY_STATUS
    else:
        raise RuntimeError("disclosure control did not settle")
    return Release(ledger, status, policy, unprotected)
