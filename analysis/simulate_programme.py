"""Synthetic community programme monitoring data (design.type programme), shaped like
Stoke-on-Trent's C2 asset-based community programme: six neighbourhoods monitored quarterly
for two years, funding awards by source, and a resident survey (ONS4, SWEMWBS) before and after
as independent cross-sections.

    python -m analysis.simulate --design c2_programme data/raw/c2_programme

Generating model (every parameter is in :class:`ProgrammeParameters`, stored in truth.json):

* Quarterly counts per neighbourhood are Poisson with a neighbourhood size factor and a linear
  ramp-up over the quarters; volunteers (regular, occasional) are the counts active in a
  quarter; volunteer hours are Poisson around hours per regular and occasional volunteer.  One
  cell (volunteer hours) is left blank: not recorded, never zero.
* One neighbourhood joins late (``late_start``): its rows and funding awards before its start
  quarter are drawn like the others' and then left out, so the random stream (and the survey)
  is the same as with every neighbourhood from the first quarter.  The config declares the
  start (``programme.neighbourhoods``).
* Funding awards: a Poisson number per neighbourhood-quarter, each from a source with given
  probabilities and a log-normal amount rounded to GBP 10.
* Survey: residents' latent wellbeing is normal; the "after" cross-section's is shifted by
  ``wellbeing_change``.  Items are rounded noisy values (ONS4 0-10, SWEMWBS 1-5), as the other
  example generators do.  The true change in each score's population mean (on the observed,
  rounded scale) is computed by Monte Carlo with common random numbers and written to
  truth.json under ``true_mean_change``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.simulate_designs import SWEMWBS_ITEM_OFFSETS, _json_dict, _rounded, _swemwbs_metric

NEIGHBOURHOODS = ("Abbey Hulton", "Bentilee", "Blurton", "Chell Heath", "Meir North", "Stoke Central")
FUNDING_SOURCES = {"National Lottery Community Fund": 0.35, "City council small grants": 0.25,
                   "Local business sponsorship": 0.15, "Charitable trust": 0.25}


@dataclass(frozen=True)
class ProgrammeParameters:
    """Every number that shapes the synthetic programme; stored verbatim in ``truth.json``."""

    seed: int = 20261205
    trial_id: str = "c2_programme"
    first_quarter: str = "2023Q1"
    n_quarters: int = 8
    size: tuple[float, ...] = (1.0, 1.3, 0.8, 0.9, 1.2, 1.5)  # per neighbourhood
    reached_per_quarter: float = 140.0  # at full strength, size 1
    engaged_share: float = 0.25  # residents engaged in healthy behaviours per resident reached
    partnerships_per_quarter: float = 1.2
    volunteers_regular: float = 9.0
    volunteers_occasional: float = 16.0
    hours_per_regular: float = 40.0  # per quarter
    hours_per_occasional: float = 8.0
    ramp_start: float = 0.45  # share of full strength in the first quarter, rising linearly to 1
    awards_per_quarter: float = 0.7
    award_log_mean: float = 8.3  # log GBP
    award_log_sd: float = 0.8
    blank_cell: tuple[str, str, str] = ("Blurton", "2024Q2", "volunteer_hours")
    late_start: tuple[str, str] = ("Chell Heath", "2023Q3")  # neighbourhood, first quarter in the programme
    n_survey_before: int = 320
    n_survey_after: int = 300
    wellbeing_mean: float = 2.95  # latent, on the 1..5 item scale
    wellbeing_sd: float = 0.6
    wellbeing_change: float = 0.12  # latent shift of the after cross-section
    item_sd: float = 0.55
    p_item_missing: float = 0.02
    truth_mc_draws: int = 400_000
    neighbourhoods: tuple[str, ...] = field(default=NEIGHBOURHOODS)


def _quarters(first: str, n: int) -> list[str]:
    y, q = int(first[:4]), int(first[-1]) - 1
    return [f"{(y * 4 + q + i) // 4}Q{(y * 4 + q + i) % 4 + 1}" for i in range(n)]


def _items(eta: np.ndarray, noise: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Item codes from latent wellbeing: SWEMWBS 1..5, ONS4 0..10 (anxiety lower is better)."""
    ons = 5.0 + 2.6 * (eta[:, None] - 2.6) + np.array([0.0, 0.5, 0.2, 0.0])[None, :]
    ons[:, 3] = 4.6 - 2.0 * (eta - 2.6)
    return {"swemwbs": _rounded(eta[:, None] + SWEMWBS_ITEM_OFFSETS[None, :], noise["swemwbs"], 1, 5),
            "ons4": _rounded(ons, noise["ons4"], 0, 10)}


def _noise(rng, p: ProgrammeParameters, n: int) -> dict[str, np.ndarray]:
    return {"swemwbs": rng.normal(0.0, p.item_sd, size=(n, 7)),
            "ons4": rng.normal(0.0, 1.0, size=(n, 4)) * np.array([1.1, 1.1, 1.3, 1.6])}


def _scores(items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sw = items["swemwbs"].sum(axis=1)
    out = {"swemwbs_total": sw.astype(float), "swemwbs_metric": _swemwbs_metric(sw)}
    for k, name in enumerate(("life_satisfaction", "worthwhile", "happiness", "anxiety")):
        out[f"ons4_{name}"] = items["ons4"][:, k].astype(float)
    return out


def true_mean_change(p: ProgrammeParameters) -> dict[str, float]:
    """True change (after minus before) in each score's population mean on the observed scale,
    by Monte Carlo with common random numbers (Monte Carlo SE below 0.005 points)."""
    rng = np.random.default_rng([p.seed, 104729])
    n = p.truth_mc_draws
    eta = rng.normal(p.wellbeing_mean, p.wellbeing_sd, n)
    noise = _noise(rng, p, n)
    y0, y1 = _scores(_items(eta, noise)), _scores(_items(eta + p.wellbeing_change, noise))
    return {k: round(float(np.mean(y1[k] - y0[k])), 4) for k in y0}


def _survey(rng, p: ProgrammeParameters) -> pd.DataFrame:
    frames = []
    start = 1
    for wave, n, shift in (("before", p.n_survey_before, 0.0), ("after", p.n_survey_after, p.wellbeing_change)):
        eta = rng.normal(p.wellbeing_mean, p.wellbeing_sd, n) + shift
        items = _items(eta, _noise(rng, p, n))
        hood = rng.choice(len(p.neighbourhoods), size=n, p=np.array(p.size) / sum(p.size))
        d = pd.DataFrame({"respondent_id": [f"S{start + i:04d}" for i in range(n)],
                          "neighbourhood": np.array(p.neighbourhoods)[hood], "wave": wave})
        for name, cols in (("ons4", 4), ("swemwbs", 7)):
            for k in range(cols):
                v = pd.array(items[name][:, k], dtype="Int64")
                v[rng.random(n) < p.p_item_missing] = pd.NA
                d[f"{name}_{k + 1}"] = v
        frames.append(d)
        start += n
    return pd.concat(frames, ignore_index=True)


def simulate_programme(params: ProgrammeParameters | None = None) -> dict[str, pd.DataFrame | dict]:
    """The monitoring, funding and survey tables and the truth."""
    p = params or ProgrammeParameters()
    rng = np.random.default_rng(p.seed)
    quarters = _quarters(p.first_quarter, p.n_quarters)
    ramp = np.linspace(p.ramp_start, 1.0, p.n_quarters)
    rows, awards = [], []
    for h, size in zip(p.neighbourhoods, p.size):
        for q, r in zip(quarters, ramp):
            reached = rng.poisson(p.reached_per_quarter * size * r)
            reg, occ = rng.poisson(p.volunteers_regular * size * r), rng.poisson(p.volunteers_occasional * size * r)
            rows.append(dict(neighbourhood=h, quarter=q, residents_reached=reached,
                             residents_engaged=rng.binomial(reached, p.engaged_share),
                             partnerships_established=rng.poisson(p.partnerships_per_quarter * r),
                             volunteers_regular=reg, volunteers_occasional=occ,
                             volunteer_hours=rng.poisson(p.hours_per_regular * reg + p.hours_per_occasional * occ)))
            for _ in range(rng.poisson(p.awards_per_quarter * size)):
                src = rng.choice(list(FUNDING_SOURCES), p=list(FUNDING_SOURCES.values()))
                awards.append(dict(neighbourhood=h, quarter=q, source=src,
                                   amount_gbp=float(np.round(rng.lognormal(p.award_log_mean, p.award_log_sd), -1))))
    monitoring = pd.DataFrame(rows)
    counts = [c for c in monitoring.columns if c not in ("neighbourhood", "quarter")]
    monitoring[counts] = monitoring[counts].astype("Int64")
    hood, q, col = p.blank_cell
    monitoring.loc[(monitoring.neighbourhood == hood) & (monitoring.quarter == q), col] = pd.NA
    funding = pd.DataFrame(awards, columns=["neighbourhood", "quarter", "source", "amount_gbp"])
    late, start = p.late_start
    monitoring, funding = (t[~((t.neighbourhood == late) & (t.quarter < start))].reset_index(drop=True)
                           for t in (monitoring, funding))
    survey = _survey(rng, p)
    truth = {"parameters": _json_dict(p), "quarters": quarters,
             "not_recorded": {"neighbourhood": hood, "quarter": q, "indicator": col},
             "late_start": {"neighbourhood": late, "start": start},
             "true_mean_change": true_mean_change(p),
             "survey_design": "independent cross-sections (no respondent answers both waves)"}
    return {"monitoring": monitoring, "funding": funding, "survey": survey, "truth": truth}


def write_programme(out_dir: str | Path, params: ProgrammeParameters | None = None, **options) -> list[Path]:
    """Simulate and write monitoring.csv, funding.csv, survey.csv and truth.json (byte-identical
    for identical parameters).  ``options`` (seed, trial_id) override the defaults."""
    from analysis.simulate import write_tables

    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(ProgrammeParameters)})
    if unknown:
        raise ValueError(f"design 'c2_programme' has no parameter {', '.join(unknown)}")
    return write_tables(out_dir, simulate_programme(dataclasses.replace(params or ProgrammeParameters(), **given)))
