"""The funder-ready summary page of a community programme (design.type programme;
docs/designs.md, "Community programme monitoring").

The figures are computed by :mod:`analysis.programme`; this module only formats them into a
context for the Jinja template ``programme_summary.html.j2`` (rendered through the reports'
environment, :func:`analysis.reporting._env`, which autoescapes), so every text that comes from
the config or the data (title, indicator labels, neighbourhoods, funding sources, cost items)
is escaped by the template, never pasted into HTML here.  Every cell is plain text.  The page
shows aggregate figures only and is self-contained (the trend figure is embedded)."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from analysis.programme import NOT_COLLECTED, WELLBY_ASSUMPTIONS, quarter_index

TEMPLATE = "programme_summary.html.j2"


def text(v, nd: int = 0, money: bool = False) -> str:
    """A cell as plain text: '—' for missing, strings as they are (the template escapes them),
    numbers with thousands separators and a true minus sign (none on a figure that rounds to
    zero), money with '£'."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or (not isinstance(v, str) and pd.isna(v)):
        return "—"
    if isinstance(v, str):
        return v
    s = f"{abs(float(v)):,.{nd}f}"
    sign = "−" if float(v) < 0 and float(s.replace(",", "")) != 0 else ""
    return f"{sign}£{s}" if money else f"{sign}{s}"


def figure(v) -> str:
    """A target or an achieved figure at its own precision: whole numbers without decimals,
    others to two decimals at most (a target of 2.4 is not printed as 2).

    >>> figure(1700.0), figure(2.4), figure(11.05), figure(float("nan"))
    ('1,700', '2.4', '11.05', '—')
    """
    if isinstance(v, (int, float, np.number)) and np.isfinite(v) and float(v) != round(float(v)):
        return text(v, 2).rstrip("0").rstrip(".")
    return text(v)


def percent_of_target(v) -> str:
    """% of target to one decimal, rounded DOWN, so a figure short of its target never prints as
    the 100% (or the amber threshold) it did not reach: 99.96% is '99.9', not '100'.

    >>> percent_of_target(99.96), percent_of_target(105.04), percent_of_target(80.0)
    ('99.9', '105.0', '80.0')
    """
    if v is None or not np.isfinite(v):
        return text(v)
    return text(np.floor(float(v) * 10 + 1e-9) / 10, 1)


def _fmt(nd: int = 0, money: bool = False):
    return lambda v: text(v, nd, money)


def table(df: pd.DataFrame, cols: dict[str, tuple], cls: str = "") -> dict:
    """A table for the template's ``table`` macro: ``head`` (column titles) and ``rows`` (cells
    with ``text`` and ``cls``: the RAG column's cells get ``rag-<rating>``).  ``cols``: column
    of ``df`` -> (title, formatter)."""
    rows = []
    for _, r in df.iterrows():
        rows.append([dict(text=fmt(r[c]), cls=f"rag-{str(r[c]).replace(' ', '-')}" if c == "rag" else "")
                     for c, (_, fmt) in cols.items()])
    return dict(head=[h for h, _ in cols.values()], rows=rows, cls=cls)


def _targets(cfg: dict, targets: pd.DataFrame) -> dict:
    """Progress against targets: the neighbourhood column only when a target names one."""
    cols = {"label": ("Indicator", text)}
    by_hood = bool((targets.get("neighbourhood", pd.Series(dtype=object)) != "all").any())
    if by_hood:
        cols["neighbourhood"] = ("Neighbourhood", text)
    cols.update({"period": ("By end of", text), "target": ("Target", figure), "achieved": ("Achieved", figure),
                 "percent_of_target": ("% of target", percent_of_target), "rag": ("RAG", text),
                 "note": ("Note", text)})
    rg = cfg["programme"]["rag"]
    # the extra column would push the table past an A4 page at the normal size
    return dict(green=f"{100 * rg['green']:.0f}", amber=f"{100 * rg['amber']:.0f}",
                table=table(targets, cols, "small" if by_hood else ""))


READING = {"sum": "indicators counting new things each quarter: the total over the quarters",
           "latest": "indicators counting what is current at a quarter: the last quarter's count"}


def figure_reading(aggregations: set[str]) -> str:
    """How to read the figures by neighbourhood, for the aggregations the indicators use (the
    page describes the indicators declared, not the embedded example's).

    >>> figure_reading({"latest"})
    "indicators counting what is current at a quarter: the last quarter's count"
    >>> figure_reading({"latest", "sum"}).split("; ")[0]
    'indicators counting new things each quarter: the total over the quarters'
    """
    return "; ".join(READING[a] for a in ("sum", "latest") if a in aggregations)


def _neighbourhoods(hoods: pd.DataFrame | None) -> dict | None:
    """Figures by neighbourhood (one row per indicator, one column per neighbourhood), the
    quarter each joined when they did not all start together, and the cells not recorded."""
    if hoods is None or not len(hoods):
        return None
    names = sorted(hoods.neighbourhood.unique(), key=str)
    starts = hoods.drop_duplicates("neighbourhood").set_index("neighbourhood")["start"] if "start" in hoods else None
    rows = []
    staggered = starts is not None and starts.nunique() > 1
    if staggered:
        first = min(starts, key=quarter_index)
        rows.append([dict(text="In the programme from", cls="")] +
                    [dict(text=starts[h] if starts[h] != first else f"{first} (first quarter)", cls="") for h in names])
    fig = hoods.set_index(["label", "neighbourhood"]).figure
    for label in dict.fromkeys(hoods.label):
        rows.append([dict(text=label, cls="")] + [dict(text=text(fig.get((label, h))), cls="") for h in names])
    gaps = hoods[hoods.missing_cells > 0]
    return dict(staggered=staggered, reading=figure_reading(set(hoods.aggregation)), table=dict(head=["Indicator", *map(str, names)], rows=rows, cls="small"),
                gaps=[dict(neighbourhood=str(r.neighbourhood), label=r.label, n=int(r.missing_cells))
                      for r in gaps.itertuples()])


def _survey(cfg: dict, change: pd.DataFrame | None, design: str) -> dict | None:
    """The resident survey's change before to after (None: not collected)."""
    if change is None:
        return None
    ls = change[change.outcome == "ons4_life_satisfaction"]
    level = 100 * cfg["programme"]["survey"]["confidence_level"]
    counts = ({"n_before": ("Residents matched", text), "n_unpaired_excluded": ("Left out (no partner)", text)}
              if design == "paired" else {"n_before": ("n before", text), "n_after": ("n after", text)})
    return dict(paired=design == "paired",
                includes_no_change=bool(len(ls) and ls.iloc[0].ci_low <= 0 <= ls.iloc[0].ci_high),
                table=table(change, {"label": ("Score", text), **counts, "mean_before": ("Mean before", _fmt(2)),
                                     "mean_after": ("Mean after", _fmt(2)), "change": ("Change", _fmt(2)),
                                     "ci_low": (f"{level:g}% CI low", _fmt(2)),
                                     "ci_high": (f"{level:g}% CI high", _fmt(2))}))


def _value(cfg: dict, wellby: pd.DataFrame, buildup: pd.DataFrame, vfm: pd.DataFrame) -> dict:
    """The WELLBY-based social value, the cost build-up and the value for money."""
    return dict(
        wellby=table(wellby, {"scenario": ("Scenario", text), "ls_change": ("LS change", _fmt(2)),
                              "residents": ("Residents", text), "duration_years": ("Years", _fmt(1)),
                              "wellbys": ("WELLBYs", _fmt(1)), "value_per_wellby": ("£ per WELLBY", _fmt(0, True)),
                              "social_value_gbp": ("Social value", _fmt(0, True)), "note": ("Note", text)}),
        price_basis=cfg["programme"]["wellby"]["price_basis"], assumptions=list(WELLBY_ASSUMPTIONS),
        price_year=cfg["programme"]["price_year"],
        buildup=table(buildup, {"item": ("Item", text), "category": ("Category", text),
                                "amount_gbp": ("Amount", _fmt(0, True)), "price_year": ("Price year", text),
                                "amount_gbp_analysis_year": ("In analysis prices", _fmt(0, True)),
                                "source": ("Source", text)}) if len(buildup) else None,
        vfm=table(vfm, {"measure": ("Measure", text), "total_cost_gbp": ("Total cost", _fmt(0, True)),
                        "units": ("Units", _fmt(1)), "cost_per_unit_gbp": ("Cost per unit", _fmt(2, True)),
                        "note": ("Note", text)}))


def summary_html(cfg: dict, targets: pd.DataFrame, by_source: pd.DataFrame, change: pd.DataFrame | None,
                 design: str, wellby: pd.DataFrame, buildup: pd.DataFrame, vfm: pd.DataFrame, figure_png: bytes,
                 last_quarter: str, n_neighbourhoods: int, label: str = "",
                 hoods: pd.DataFrame | None = None) -> str:
    """The funder-ready one-page summary (self-contained HTML: the figure is embedded)."""
    from analysis.reporting import _env

    funding = None
    if cfg["data"].get("funding"):
        funding = table(by_source, {"source": ("Source", text), "awards": ("Awards", text),
                                    "amount_gbp": ("Amount", _fmt(0, True)), "percent": ("% of total", _fmt(1))})
    return _env().get_template(TEMPLATE).render(
        title=cfg["title"], label=label, n_neighbourhoods=n_neighbourhoods, last_quarter=last_quarter,
        targets=_targets(cfg, targets), figure="data:image/png;base64," + base64.b64encode(figure_png).decode(),
        hoods=_neighbourhoods(hoods), funding=funding, survey=_survey(cfg, change, design),
        not_collected=NOT_COLLECTED, **_value(cfg, wellby, buildup, vfm))
