"""Report section for the statistician: planning the definitive trial (planning inputs with
their uncertainty, the recommended sample size and its assumptions, the grid over assumptions,
the figure against the ICC, simulation-based power when it was run, methods and references).

The funder's one-page summary is :mod:`analysis.reporting.planning_summary`; both read the
same tables (``planning_inputs.csv``, ``sample_size.csv``, ``power_simulation.csv``)."""

from __future__ import annotations

import os

import pandas as pd

from analysis.planning import SD_BASIS_LABEL, SINGLE_ARM_NEEDS, cfg_unit
from analysis.power_sim import MC_LEVEL
from analysis.reporting.common import fmt, level_label, png_data_uri, read_table

TEMPLATE = "sections/planning.html.j2"

REFS = {
    "browne": "Browne RH. On the use of a pilot sample for sample size determination. Stat Med 1995;14:1933-40.",
    "sim_lewis": "Sim J, Lewis M. The size of a pilot study for a clinical trial should be calculated in relation "
                 "to considerations of precision and efficiency. J Clin Epidemiol 2012;65:301-8.",
    "borm": "Borm GF, Fransen J, Lemmens WA. A simple sample size formula for analysis of covariance in "
            "randomized clinical trials. J Clin Epidemiol 2007;60:1234-8.",
    "eldridge": "Eldridge SM, Ashby D, Kerry S. Sample size for cluster randomized trials: effect of coefficient "
                "of variation of cluster size and analysis method. Int J Epidemiol 2006;35:1292-300.",
    "teare": "Teare MD, Dimairo M, Shephard N, Hayman A, Whitehead A, Walters SJ. Sample size requirements to "
             "estimate key design parameters from external pilot randomised controlled trials: a simulation "
             "study. Trials 2014;15:264.",
    "kraemer": "Kraemer HC, Mintz J, Noda A, Tinklenberg J, Yesavage JA. Caution regarding the use of pilot "
               "studies to guide power calculations for study proposals. Arch Gen Psychiatry 2006;63:484-9.",
    "korn": "Korn EL, Graubard BI. Confidence intervals for proportions with small expected number of positive "
            "counts estimated from survey data. Survey Methodology 1998;24:193-201.",
    "vangel": "Vangel MG. Confidence intervals for a normal coefficient of variation. Am Stat 1996;50:21-6.",
    "landau": "Landau S, Stahl D. Sample size and power calculations for medical studies by simulation when "
              "closed form expressions are not available. Stat Methods Med Res 2013;22:324-45.",
}


SD_WORDS = {"ucl": "the pilot's value raised to its {level} upper confidence limit to allow for its imprecision",
            "point": "the pilot's estimate as it is (no allowance for its imprecision)",
            "sim_lewis": "the pilot's estimate, with the sample size inflated by Sim & Lewis's factor (at {level} "
                         "confidence) to allow for its imprecision"}


def _exists(inputs, key) -> bool:
    return key in inputs and os.path.exists(inputs[key])


def _ci(lo, hi, dp) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return "–"
    return f"{fmt(lo, dp)} to {fmt(hi, dp)}"


def _dp(unit: str, dp: int) -> int:
    return 3 if unit in ("ICC", "CV", "proportion", "QALY", "") else (0 if unit == "£" else dp)


def input_rows(inputs_table: pd.DataFrame, dp: int) -> list[dict]:
    rows = []
    for r in inputs_table.itertuples():
        d = _dp(r.unit, dp)
        rows.append(dict(parameter=r.parameter, label=r.label, estimate=fmt(r.estimate, d),
                         ci=_ci(r.ci_low, r.ci_high, d),
                         level="" if pd.isna(r.ci_level) else f"{r.ci_level:.0%}",
                         ucl="" if pd.isna(r.ucl) else f"{fmt(r.ucl, d)} ({r.ucl_level:.0%} one-sided)",
                         n="" if pd.isna(r.n) else fmt(r.n, 0) + ("" if pd.isna(r.sites) else f" in {int(r.sites)} sites"),
                         method=r.method, note=r.note))
    return rows


def recommendation(cfg: dict, sizes: pd.DataFrame, dp: int) -> dict | None:
    """The recommended scenario in words, shared with the funder summary."""
    if not len(sizes) or not sizes.recommended.astype(bool).any():
        return None
    pl = cfg["planning"]
    r = sizes[sizes.recommended.astype(bool)].iloc[0]
    cluster = cfg["design"]["type"] == "cluster"
    at_target = sizes[sizes.target_difference == r.target_difference]
    out = dict(
        difference=fmt(abs(r.target_difference), dp), unit=cfg_unit(cfg),
        source=pl["target_difference_source"] or "no source given (planning.target_difference_source)",
        smd=fmt(r.standardised_difference, 2), power=f"{pl['power']:.0%}", alpha=f"{pl['alpha']:g}",
        n_total=int(r.n_recruited_total), n_arm=int(r.n_recruited_per_arm),
        n_analysed=fmt(r.n_analysed_per_arm, 0), achieved=fmt(r.power, 3),
        sd=fmt(r.sd, dp), sd_basis=SD_BASIS_LABEL[r.sd_basis], sd_level=f"{pl['sd_ucl_level']:.0%}",
        sd_words=SD_WORDS[r.sd_basis].format(level=f"{pl['sd_ucl_level']:.0%}"),
        ancova=bool(pl["ancova"]), r=fmt(r.correlation, 2), sd_effective=fmt(r.sd_effective, dp),
        retention=f"{r.retention:.0%}", retention_basis=r.retention_basis,
        cluster=cluster,
        months=fmt(r.recruitment_months, 1), months_range=_ci(r.recruitment_months_low, r.recruitment_months_high, 1),
        centres="" if pd.isna(r.centres) else int(r.centres),
        range_total=(int(at_target.n_recruited_total.min()), int(at_target.n_recruited_total.max())),
    )
    if cluster:
        out.update(sites_total=int(r.sites_total), sites_arm=int(r.sites_per_arm),
                   m=fmt(r.cluster_size_recruited, 1), m_an=fmt(r.cluster_size_analysed, 1),
                   icc=fmt(r.icc, 3), icc_source=r.icc_source, cv=fmt(r.cv, 2), de=fmt(r.design_effect, 2),
                   icc_zero=bool(r.icc == 0),
                   range_sites=(int(at_target.sites_total.min()), int(at_target.sites_total.max())))
        worst = at_target[(at_target.sd_basis == r.sd_basis) & (at_target.retention_basis == r.retention_basis)]
        worst = worst.sort_values("icc").iloc[-1]
        out["worst_icc"] = dict(icc=fmt(worst.icc, 3), source=worst.icc_source, n=int(worst.n_recruited_total),
                                sites=int(worst.sites_total))
    return out


def no_recommendation(cfg: dict, inputs_table: pd.DataFrame, sizes: pd.DataFrame) -> str | None:
    """Why there is no recommended sample size although a target difference is set."""
    design = cfg["design"]["type"]
    if design == "single_arm" or cfg["planning"]["target_difference"] is None:
        return None
    if len(sizes) and sizes.recommended.astype(bool).any():
        return None
    p = inputs_table.set_index("parameter")
    if "sd_followup" not in p.index or pd.isna(p.at["sd_followup", "estimate"]):
        return "the pilot could not estimate the SD of the primary outcome at the primary follow-up"
    if design == "cluster":
        return ("the pilot could not estimate the ICC (too few sites with data) and planning.icc is not set; "
                "set it from published ICCs for the outcome")
    return "the planning inputs are incomplete (see the table)"


def grid_rows(sizes: pd.DataFrame, cluster: bool, dp: int) -> list[dict]:
    rows = []
    for r in sizes.itertuples():
        rows.append(dict(rec=bool(r.recommended), difference=fmt(r.target_difference, dp), smd=fmt(r.standardised_difference, 2),
                         sd=f"{fmt(r.sd, dp)} ({r.sd_basis})", retention=f"{r.retention:.0%} ({r.retention_basis})",
                         icc="" if not cluster else f"{fmt(r.icc, 3)} ({r.icc_source})",
                         de=fmt(r.design_effect, 2), sites="" if not cluster else f"{int(r.sites_per_arm)} × 2",
                         n_arm=int(r.n_recruited_per_arm), n_total=int(r.n_recruited_total), power=fmt(r.power, 3),
                         months=fmt(r.recruitment_months, 1)))
    return rows


def simulation_context(inputs: dict, dp: int, alpha: float = 0.05) -> dict | None:
    if not _exists(inputs, "power_simulation"):
        return None
    sim = read_table(inputs["power_simulation"], ("kind", "analysis"))
    if not len(sim):
        return None
    rows = [dict(size=int(r.size), n=int(r.n_recruited_total), sites=("" if pd.isna(r.sites_total) else int(r.sites_total)),
                 power=fmt(r.power, 3), ci=_ci(r.ci_low, r.ci_high, 3), analytic=fmt(r.analytic_power, 3),
                 reps=int(r.replicates), failed=int(r.failed)) for r in sim.itertuples()]
    first = sim.iloc[0]
    return dict(rows=rows, unit=first["size_unit"], model=first["model"], dropout=first["dropout"],
                level=level_label(1 - alpha), alpha=f"{alpha:g}", mc_level=level_label(MC_LEVEL),
                figure=png_data_uri(inputs["power_curve"]) if _exists(inputs, "power_curve") else None)


def context(cfg: dict, inputs: dict[str, str]) -> dict | None:
    if not cfg.get("planning", {}).get("enabled") or not _exists(inputs, "planning_inputs"):
        return None
    dp = cfg["report"]["decimals"]
    design = cfg["design"]["type"]
    pl = cfg["planning"]
    table = read_table(inputs["planning_inputs"], ("parameter", "label", "unit", "method", "note"))
    sizes = read_table(inputs["sample_size"], ("sd_basis", "icc_source", "retention_basis"))
    refs = ["browne", "kraemer", "teare"]
    if design != "single_arm":
        refs += ["borm"] if pl["ancova"] else []
        refs += ["sim_lewis"] if pl["sd_method"] == "sim_lewis" else []
    if design == "cluster":
        refs += ["eldridge", "korn", "vangel"]
    sim = simulation_context(inputs, dp, pl["alpha"])
    if sim:
        refs.append("landau")
    return dict(
        design=design, single_arm=design == "single_arm", needs=SINGLE_ARM_NEEDS,
        inputs=input_rows(table, dp), rec=recommendation(cfg, sizes, dp),
        no_rec=no_recommendation(cfg, table, sizes),
        target_missing=design != "single_arm" and pl["target_difference"] is None,
        grid=grid_rows(sizes, design == "cluster", dp), cluster=design == "cluster",
        figure=png_data_uri(inputs["sample_size_figure"]) if _exists(inputs, "sample_size_figure") and len(sizes) else None,
        simulation=sim, references=[REFS[k] for k in refs], sd_level=level_label(pl['sd_ucl_level']))
