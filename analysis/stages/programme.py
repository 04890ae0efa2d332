"""Programme analysis stage (design.type programme): cumulative totals against targets with RAG
ratings, the trend figure (and the data behind it), funding by source, the resident survey's
change and its WELLBY value, the cost build-up, value for money and the funder-ready summary
page (computations: analysis/programme.py; the page: analysis/reporting/programme_summary.py and its
template analysis/templates/programme_summary.html.j2)."""

from __future__ import annotations

import pandas as pd

from analysis import programme as pg
from analysis.io import write_bytes, write_table, write_text
from analysis.reporting.programme_summary import summary_html
from analysis.stages._common import log


def run(cfg: dict, inputs: dict[str, str], outputs: dict[str, str], output_label: str = "") -> None:
    """``inputs``: monitoring, funding, survey (parquet from programme_ingest).  ``outputs``:
    cumulative, targets, by_neighbourhood, funding, trend_data, trend_png, trend_svg, survey_change,
    wellby, costs, vfm, summary."""
    p = cfg["programme"]
    mon = pd.read_parquet(inputs["monitoring"])
    fun = pd.read_parquet(inputs["funding"]) if cfg["data"].get("funding") else None
    sur = pd.read_parquet(inputs["survey"]) if cfg["data"].get("survey") else None
    grid = pg.quarterly_grid(mon, fun, p["indicators"], p["neighbourhoods"])
    cum = pg.cumulative(grid, p["indicators"])
    hood_cum = pg.cumulative_by_neighbourhood(grid, p["indicators"]) if any(
        t.get("neighbourhood") is not None for t in p["targets"]) else None
    targets = pg.against_targets(cum, p["targets"], p["rag"], hood_cum)
    by_source = pg.funding_by_source(fun)
    hoods = pg.by_neighbourhood(grid, p["indicators"])
    write_table(hoods, outputs["by_neighbourhood"])
    write_table(grid, outputs["trend_data"])
    write_table(cum, outputs["cumulative"])
    write_table(targets, outputs["targets"])
    write_table(by_source, outputs["funding"])
    png = pg.trend_figure(grid, p["indicators"], "png")
    write_bytes(png, outputs["trend_png"])
    write_bytes(pg.trend_figure(grid, p["indicators"], "svg"), outputs["trend_svg"])
    change, design = None, p["survey"]["design"]
    if sur is not None and len(sur):
        scores = pg.score_survey(sur)
        change = pg.survey_change(scores, p["survey"]["outcomes"], p["survey"]["confidence_level"], design)
        write_table(change, outputs["survey_change"])
        log.info("survey: %s design, declared (%d respondents with both questionnaires)", design,
                 pg.respondents_in_both_waves(scores))
    else:
        write_table(pd.DataFrame([{"outcome": "", "note": "resident survey: " + pg.NOT_COLLECTED}]),
                    outputs["survey_change"])
    engaged, engaged_missing = pg.final_total(cum, p["engaged_indicator"])
    hours, hours_missing = pg.final_total(cum, p["volunteer_hours_indicator"])
    wellby = pg.wellby_table(change, engaged, p["wellby"])
    if engaged_missing and len(wellby) > 1:
        wellby["note"] = (f"{engaged_missing} neighbourhood-quarter(s) of residents engaged not recorded: residents "
                          "counts only what was recorded")
    write_table(wellby, outputs["wellby"])
    buildup = pg.cost_buildup(p["costs"], p["price_year"])
    write_table(buildup, outputs["costs"])
    vfm = pg.value_for_money(buildup, engaged, hours, change,
                             {"engaged": engaged_missing, "volunteer_hours": hours_missing})
    write_table(vfm, outputs["vfm"])
    last = max(grid.quarter, key=pg.quarter_index)
    write_text(summary_html(cfg, targets, by_source, change, design, wellby, buildup, vfm, png, last,
                            grid.neighbourhood.nunique(), hoods=hoods), outputs["summary"])
    log.info("programme: %d indicators, %d targets (%s)", len(p["indicators"]), len(targets),
             targets.rag.value_counts().to_dict())
