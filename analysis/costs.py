"""Costs for trial-based economic evaluation: unit costs, inflation, service use, intervention.

* **Unit costs** come from a table in which every row carries its source, table, price year
  and verification grade (``analysis/data/unit_costs_uk.csv``, see its PROVENANCE.md).  A
  trial may replace or add rows with its own CSV (same columns) and with config overrides;
  rows are matched on ``item_id``.
* **Inflation** to one price year uses the NHS Cost Inflation Index (pay and prices), whose
  annual rate labelled Y is the change *into* financial year Y: the factor from year A to
  year B is the product of (1 + rate_y/100) over A < y <= B (its inverse when B < A).
* **Service-use costs** are counts × (unit cost × units per contact), per recall period.
* **Intervention costs** are built up CPI-style from components: per site (training days,
  supervision hours: shared equally by the site's allocated intervention participants), per
  participant, or per session attended; each is hours × staff × an hourly unit cost.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

UNIT_COST_COLUMNS = ["item_id", "description", "unit", "unit_cost", "price_year", "source",
                     "table", "verification", "note"]
YEAR_RE = re.compile(r"^(\d{4})/(\d{2})$")


class CostError(ValueError):
    """A unit cost, price year or cost component cannot be used."""


def _data_path(name: str) -> Path:
    return Path(str(resources.files("analysis.data").joinpath(name)))


def _check_year(year: str, where: str) -> str:
    m = YEAR_RE.match(str(year))
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise CostError(f"{where}: price year {year!r} must be a financial year written YYYY/YY "
                        "(e.g. 2024/25)")
    return str(year)


def _read_unit_cost_csv(path: str | Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"price_year": str, "item_id": str}, keep_default_na=True, skip_blank_lines=False)
    df = df.dropna(how="all")  # blank lines; the index stays the data row, so line = index + 2
    missing = [c for c in ("item_id", "unit_cost", "price_year", "source") if c not in df]
    if missing:
        raise CostError(f"{path}: unit-cost table lacks column(s) {missing}; needed: {UNIT_COST_COLUMNS}")
    for c in UNIT_COST_COLUMNS:
        if c not in df:
            df[c] = np.nan if c == "unit_cost" else ""
    dup = df.item_id[df.item_id.duplicated()]
    if len(dup):
        raise CostError(f"{path}: item_id {dup.iloc[0]!r} appears more than once")
    for i, r in df.iterrows():
        if pd.notna(r.unit_cost):
            if not np.isfinite(float(r.unit_cost)):
                raise CostError(f"{path} line {i + 2}, column unit_cost: value {r.unit_cost} must be a finite number")
            if float(r.unit_cost) < 0:
                raise CostError(f"{path} line {i + 2}, column unit_cost: value {r.unit_cost} is negative")
            _check_year(r.price_year, f"{path} line {i + 2}, column price_year")
    return df[UNIT_COST_COLUMNS]


def load_unit_costs(trial_file: str | Path | None = None, overrides: list[dict] | None = None) -> pd.DataFrame:
    """The shipped unit-cost table, updated by a trial's CSV and then by config overrides."""
    table = _read_unit_cost_csv(_data_path("unit_costs_uk.csv"))
    updates = []
    if trial_file:
        t = _read_unit_cost_csv(trial_file)
        t["verification"] = t["verification"].fillna("").replace("", "trial-supplied")
        updates.append(t)
    if overrides:
        o = pd.DataFrame(overrides)
        for c in UNIT_COST_COLUMNS:
            if c not in o:
                o[c] = ""
        for i, r in o.iterrows():
            _check_year(r.price_year, f"config key economics.unit_cost_overrides[{i}].price_year")
        updates.append(o[UNIT_COST_COLUMNS])
    for u in updates:
        table = pd.concat([table[~table.item_id.isin(u.item_id)], u], ignore_index=True)
    table["unit_cost"] = table["unit_cost"].astype(float)
    return table.reset_index(drop=True)


def load_inflation_index(trial_file: str | Path | None = None) -> pd.DataFrame:
    """NHSCII pay-and-prices annual rates (``year``, ``rate_pct``), with a trial's rows on top."""
    base = pd.read_csv(_data_path("nhscii_pay_prices.csv"), dtype={"year": str})
    base = base.rename(columns={"pay_and_prices_pct": "rate_pct"})[["year", "rate_pct", "verification"]]
    if trial_file:
        t = pd.read_csv(trial_file, dtype={"year": str})
        if not {"year", "pay_and_prices_pct"} <= set(t.columns):
            raise CostError(f"{trial_file}: an inflation index needs columns year, pay_and_prices_pct")
        t = t.rename(columns={"pay_and_prices_pct": "rate_pct"})
        t["verification"] = t.get("verification", pd.Series("trial-supplied", index=t.index))
        base = pd.concat([base[~base.year.isin(t.year)], t[["year", "rate_pct", "verification"]]])
    for i, y in enumerate(base.year):
        _check_year(y, f"inflation index row {i + 1}")
    base = base.sort_values("year").reset_index(drop=True)
    starts = base.year.str[:4].astype(int).to_numpy()
    if len(starts) > 1 and np.any(np.diff(starts) != 1):
        raise CostError(f"inflation index: years must be consecutive, got {list(base.year)}")
    return base


def _year_before(year: str) -> str:
    s = int(year[:4]) - 1
    return f"{s}/{(s + 1) % 100:02d}"


def inflation_factor(from_year: str, to_year: str, index: pd.DataFrame) -> float:
    """Factor that expresses a cost in ``from_year`` prices in ``to_year`` prices.

    Parameters
    ----------
    from_year, to_year : str
        Financial years, e.g. "2021/22".
    index : pandas.DataFrame
        Annual inflation, columns year and rate_pct (the rise into that year, in percent),
        consecutive years (:func:`load_inflation_index`).

    Returns
    -------
    float
        The product of (1 + rate/100) over the years between; below 1 when deflating.  Raises
        :class:`CostError` for a year outside the index.

    References
    ----------
    Jones KC, Weatherly H, Birch S, et al. Unit Costs of Health and Social Care 2024 Manual.
    Personal Social Services Research Unit (University of Kent) and Centre for Health Economics
    (University of York), 2025 (the NHS cost inflation index).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.costs import inflation_factor
    >>> index = pd.DataFrame({"year": ["2022/23", "2023/24"], "rate_pct": [5.0, 2.0]})
    >>> round(inflation_factor("2021/22", "2023/24", index), 4)
    1.071
    >>> round(inflation_factor("2023/24", "2021/22", index), 4)
    0.9337
    """
    _check_year(from_year, "inflation from")
    _check_year(to_year, "inflation to")
    if from_year == to_year:
        return 1.0
    cum = np.concatenate([[1.0], np.cumprod(1.0 + index.rate_pct.to_numpy(float) / 100.0)])
    years = [_year_before(index.year.iloc[0])] + list(index.year)
    level = dict(zip(years, cum))
    for y in (from_year, to_year):
        if y not in level:
            raise CostError(f"price year {y} is outside the inflation index ({years[0]} to "
                            f"{years[-1]}); supply the missing years in economics.inflation_index_file")
    return float(level[to_year] / level[from_year])


def price_unit_costs(unit_costs: pd.DataFrame, item_ids, price_year: str,
                     index: pd.DataFrame) -> pd.DataFrame:
    """The unit costs named in ``item_ids``, each inflated to ``price_year``.

    Parameters
    ----------
    unit_costs : pandas.DataFrame
        The unit-cost table (:func:`load_unit_costs`): item_id, description, unit, unit_cost,
        price_year, source, table, verification, note.
    item_ids : iterable of str
        Items to price (each once, in first-seen order).
    price_year : str
        Financial year of the analysis's prices, e.g. "2023/24".
    index : pandas.DataFrame
        Inflation index (:func:`load_inflation_index`).

    Returns
    -------
    pandas.DataFrame
        One row per item: the table's fields plus inflation_factor (:func:`inflation_factor`),
        unit_cost_inflated and target_price_year.  Raises :class:`CostError` naming the item if it
        is unknown or has no value (a placeholder).

    References
    ----------
    Jones KC, Weatherly H, Birch S, et al. Unit Costs of Health and Social Care 2024 Manual.
    Personal Social Services Research Unit (University of Kent) and Centre for Health Economics
    (University of York), 2025.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.costs import price_unit_costs
    >>> unit_costs = pd.DataFrame([dict(item_id="gp_visit", description="GP consultation", unit="contact",
    ...                                 unit_cost=49.0, price_year="2022/23", source="example", table="",
    ...                                 verification="PUB", note="")])
    >>> index = pd.DataFrame({"year": ["2022/23", "2023/24"], "rate_pct": [5.0, 2.0]})
    >>> priced = price_unit_costs(unit_costs, ["gp_visit"], "2023/24", index)
    >>> priced[["item_id", "unit_cost", "inflation_factor", "unit_cost_inflated"]].round(2).values.tolist()
    [['gp_visit', 49.0, 1.02, 49.98]]
    """
    rows = []
    known = unit_costs.set_index("item_id")
    for item in dict.fromkeys(item_ids):
        if item not in known.index:
            raise CostError(f"unit cost {item!r} is not in the unit-cost table; known items: "
                            f"{sorted(known.index)} (add it with economics.unit_cost_overrides "
                            "or economics.unit_costs_file)")
        r = known.loc[item]
        if pd.isna(r.unit_cost):
            raise CostError(f"unit cost {item!r} is a {r.verification or 'missing'} entry with no value: "
                            "supply it in economics.unit_cost_overrides or economics.unit_costs_file "
                            "(with its source and price year)")
        f = inflation_factor(str(r.price_year), price_year, index)
        rows.append(dict(item_id=item, description=r.description, unit=r.unit,
                         unit_cost=float(r.unit_cost), price_year=r.price_year,
                         inflation_factor=f, unit_cost_inflated=float(r.unit_cost) * f,
                         target_price_year=price_year, source=r.source, table=r.table,
                         verification=r.verification, note=r.note))
    return pd.DataFrame(rows)


def service_costs(service_use: pd.DataFrame, items: dict[str, dict], priced: pd.DataFrame) -> pd.DataFrame:
    """Cost of each service-use item per participant and time point.

    Parameters
    ----------
    service_use : pandas.DataFrame
        One row per participant and time point: participant_id, timepoint and a count column per
        service.
    items : dict
        ``economics.service_items``: a service-use column to ``{unit_cost_item,
        units_per_contact, category}``.
    priced : pandas.DataFrame
        The priced unit costs (:func:`price_unit_costs`).

    Returns
    -------
    pandas.DataFrame
        participant_id, timepoint and one ``cost_<column>`` per item: count x units per contact x
        inflated unit cost (NaN where the count is missing).  A negative count raises
        :class:`CostError`.

    References
    ----------
    Jones KC, Weatherly H, Birch S, et al. Unit Costs of Health and Social Care 2024 Manual.
    Personal Social Services Research Unit (University of Kent) and Centre for Health Economics
    (University of York), 2025.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.costs import price_unit_costs
    >>> unit_costs = pd.DataFrame([dict(item_id="gp_visit", description="GP consultation", unit="contact",
    ...                                 unit_cost=49.0, price_year="2022/23", source="example", table="",
    ...                                 verification="PUB", note="")])
    >>> index = pd.DataFrame({"year": ["2022/23", "2023/24"], "rate_pct": [5.0, 2.0]})
    >>> priced = price_unit_costs(unit_costs, ["gp_visit"], "2023/24", index)
    >>> from analysis.costs import service_costs
    >>> use = pd.DataFrame({"participant_id": ["P1", "P2"], "timepoint": ["m9", "m9"], "gp": [3, None]})
    >>> service_costs(use, {"gp": {"unit_cost_item": "gp_visit"}}, priced).cost_gp.round(2).tolist()
    [149.94, nan]
    """
    price = priced.set_index("item_id").unit_cost_inflated
    out = service_use[["participant_id", "timepoint"]].copy()
    for col, spec in items.items():
        if col not in service_use:
            raise CostError(f"config key economics.service_items.{col}: no such column in the "
                            f"service-use data (columns: {list(service_use.columns)})")
        counts = pd.to_numeric(service_use[col], errors="coerce").astype(float)
        bad = counts < 0
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise CostError(f"service use row {i + 1}, column {col}: negative count {counts.iloc[i]}")
        out[f"cost_{col}"] = counts * float(spec.get("units_per_contact", 1.0)) * price[spec["unit_cost_item"]]
    return out


def intervention_costs(participants: pd.DataFrame, components: list[dict], priced: pd.DataFrame,
                       intervention_arm: str) -> pd.DataFrame:
    """Intervention cost per allocated participant, by component (0 in the control arm).

    Each component: ``name``, ``per`` (site | participant | session), ``hours`` (per site,
    per participant or per session), ``staff`` (number of staff whose time is costed,
    default 1) and ``unit_cost_item`` (an hourly cost).  Site costs are shared equally among
    the site's allocated intervention participants; session costs use ``sessions_attended``
    (missing counts as 0 sessions and is logged by the caller).
    """
    price = priced.set_index("item_id").unit_cost_inflated
    out = pd.DataFrame({"participant_id": participants.participant_id.to_numpy()})
    treated = (participants.arm == intervention_arm).to_numpy()
    for k, c in enumerate(components):
        per_unit = float(c["hours"]) * float(c.get("staff", 1)) * price[c["unit_cost_item"]]
        if c["per"] == "site":
            n_site = participants[treated].groupby("site_id").size()
            share = participants.site_id.map(n_site).to_numpy(float)
            cost = np.where(treated, per_unit / share, 0.0)
        elif c["per"] == "participant":
            cost = np.where(treated, per_unit, 0.0)
        elif c["per"] == "session":
            # unknown attendance is an unknown cost, never 0 sessions
            sess = pd.to_numeric(participants.sessions_attended, errors="coerce").to_numpy(float)
            cost = np.where(treated, per_unit * sess, 0.0)
        else:
            raise CostError(f"config key economics.intervention_costs[{k}].per: {c['per']!r} is not "
                            "one of site, participant, session")
        out[f"intervention_{c['name']}"] = cost
    return out
