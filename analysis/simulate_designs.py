"""Synthetic single-arm and individually randomised pilots: two more embedded example trials.

:mod:`analysis.simulate` makes the cluster demo; this module makes the other two designs
Pathways analyses (``design.type`` in docs/designs.md), each with its ground truth:

* ``single_arm`` (``data/raw/single_arm``): a pre-post evaluation of a community programme with
  no comparison group, shaped like the Sheffield reciprocal community development evaluation.
  Staff and service users of a handful of community centres take part (participant-level
  covariate ``population``); SWEMWBS, UCLA-3 and ONS4 at baseline, 6 and 12 months; a
  screening log; sessions attended with some unknown (blank); no sites file and no ``arm``.
  ``truth.json`` holds the true mean change from baseline of every score, overall and by
  population.
* ``individual`` (``data/raw/individual``): a multi-centre trial randomising participants
  1:1 in permuted blocks of 2 and 4, stratified by centre and referral route; a sites file
  with recruitment windows and no ``arm``; WEMWBS and a pre-scored outcome with decimals
  (``weekly_activity_hours``) at baseline, 3 and 6 months; no screening log, fidelity or
  service use.  ``truth.json`` holds the true arm effects.

Both follow the demo's recipe: latent wellbeing (site, participant and occasion random
effects) is turned into item responses by rounding a noisy item-level value onto the response
scale; loss to follow-up is missing at random (it depends on observed baseline wellbeing, age
and participant-level covariates, never on unobserved follow-up values); the truths are
population averages computed by Monte Carlo with common random numbers through the *same*
measurement functions the generator uses, so they include the rounding and the floor and
ceiling of each scale.  The same parameters always give byte-identical files:

    python -m analysis.simulate --design single_arm data/raw/single_arm
    python -m analysis.simulate --design individual data/raw/individual
    python -m analysis.simulate --design cpi_quasi data/raw/cpi_quasi

A third, ``cpi_quasi`` (``data/raw/cpi_quasi``), is a non-randomised comparison of agencies
whose allocation is confounded by client group and client age (:class:`CpiQuasiParameters`);
its confounding structure alone (:func:`cpi_quasi_people`) drives the propensity-weighting
simulation test.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.simulate import SIM_DAYS_PER_MONTH, WEMWBS_ITEM_OFFSETS, _choice, write_tables

__all__ = ["SingleArmParameters", "IndividualParameters", "simulate_single_arm",
           "simulate_individual", "true_single_arm_change", "true_individual_effects",
           "write_design", "DESIGNS", "POPULATIONS", "REFERRAL_ROUTES", "CpiQuasiParameters",
           "simulate_cpi_quasi", "cpi_quasi_sites", "cpi_quasi_people", "true_cpi_quasi_effects"]

POPULATIONS = ("service_user", "staff")
REFERRAL_ROUTES = ("professional", "self")
# SWEMWBS items are WEMWBS items 1, 2, 3, 6, 7, 9, 11: the demo's item offsets for those items
SWEMWBS_ITEM_OFFSETS = WEMWBS_ITEM_OFFSETS[[0, 1, 2, 5, 6, 8, 10]]
ONS4_OUTPUTS = ("life_satisfaction", "worthwhile", "happiness", "anxiety")
_SWEMWBS_TABLE = Path(__file__).parent / "instruments" / "data" / "swemwbs_conversion.csv"


def _json_dict(params) -> dict:
    d = dataclasses.asdict(params)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _iso(days: np.ndarray) -> list[str]:
    """datetime64[D] values as ISO dates; NaT as blank."""
    return ["" if np.isnat(d) else str(d) for d in days.astype("datetime64[D]")]


def _rounded(latent: np.ndarray, noise: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Item codes: a noisy item-level value rounded onto the response scale lo..hi."""
    return np.clip(np.rint(latent + noise), lo, hi).astype(int)


def _with_item_missing(rng, values: np.ndarray, p_missing: float) -> pd.array:
    vals = pd.array(values, dtype="Int64")
    vals[rng.random(len(values)) < p_missing] = pd.NA
    return vals


def _screening_log(rng, site_ids, opened, closed, screened_per_site, p_eligible, p_consent,
                   exclusions, declines) -> pd.DataFrame:
    """Screening log over each site's window, sorted by site then date (as a site keeps it)."""
    parts = []
    for site, start, end in zip(site_ids, opened, closed):
        k = rng.poisson(screened_per_site)
        day = start + np.sort(rng.integers(0, int((end - start).astype(int)) + 1, size=k))
        eligible = rng.random(k) < p_eligible
        consent = eligible & (rng.random(k) < p_consent)
        excl = _choice(rng, exclusions, k)
        decl = _choice(rng, declines, k)
        parts.append(pd.DataFrame({
            "site_id": site, "screen_date": _iso(day),
            "eligible": np.where(eligible, "yes", "no"),
            "exclusion_reason": np.where(eligible, "", excl),
            "consented": np.where(eligible, np.where(consent, "yes", "no"), ""),
            "decline_reason": np.where(eligible & ~consent, decl, ""),
        }))
    log = pd.concat(parts, ignore_index=True)
    log.insert(0, "screening_id", [f"SCR{i + 1:04d}" for i in range(len(log))])
    return log


def _retention(rng, present, lin_by_followup, withdraw, withdraw_after):
    """Fill ``present`` (n x waves) for the follow-ups: logistic MAR response, then withdrawal."""
    for j, lin in enumerate(lin_by_followup):
        present[:, j + 1] = rng.random(len(lin)) < 1 / (1 + np.exp(-lin))
        present[withdraw & (withdraw_after <= j), j + 1] = False


def _withdrawal_dates(rng, visits, present, withdraw, withdraw_after):
    """A withdrawal 5-60 days after the last visit attended before it (NaT if none)."""
    n = len(withdraw)
    last = visits[:, 0].copy()
    for j in range(1, visits.shape[1]):
        attended = present[:, j] & (withdraw_after >= j)  # visit j happened before withdrawing
        last = np.where(attended, visits[:, j], last)
    gap = rng.integers(5, 61, size=n).astype("timedelta64[D]")
    return np.where(withdraw, last + gap, np.datetime64("NaT", "D"))


# ================================================================ single-arm pre-post study


@dataclass(frozen=True)
class SingleArmParameters:
    """Every number that shapes the single-arm example; stored verbatim in ``truth.json``.

    Latent wellbeing is on the 1..5 item scale of SWEMWBS, latent loneliness on a standard
    normal-like scale (higher = lonelier).  ``change_*`` are the latent changes from baseline
    at each follow-up (6, 12 months) by population: everything that happens over time in a
    study without a comparison group.
    """

    seed: int = 20240115
    trial_id: str = "single_arm"
    n_sites: int = 5
    screened_per_site: float = 42.0  # Poisson mean of people approached per centre
    p_eligible: float = 0.86
    p_consent: float = 0.68
    p_staff: float = 0.28  # share of staff among the consented
    recruitment_start: str = "2024-01-15"
    recruitment_end: str = "2024-09-30"  # last consent; screening stops a week earlier
    site_start_spread_days: int = 45
    followup_months: tuple[int, ...] = (6, 12)
    wellbeing_mean: dict[str, float] = field(default_factory=lambda: {
        "service_user": 2.75, "staff": 3.35})
    site_sd: float = 0.15
    participant_sd: float = 0.50
    occasion_sd: float = 0.30
    item_sd: float = 0.55
    change_wellbeing: dict[str, tuple[float, ...]] = field(default_factory=lambda: {
        "service_user": (0.22, 0.30), "staff": (0.06, 0.08)})
    loneliness_mean: dict[str, float] = field(default_factory=lambda: {
        "service_user": 0.45, "staff": -0.55})
    loneliness_wellbeing_loading: float = -0.6  # per participant-SD of latent wellbeing
    loneliness_sd: float = 0.8  # participant-level, beyond wellbeing
    loneliness_occasion_sd: float = 0.5
    change_loneliness: dict[str, tuple[float, ...]] = field(default_factory=lambda: {
        "service_user": (-0.35, -0.45), "staff": (-0.10, -0.10)})
    ucla_centre: float = 1.9
    ucla_loading: float = 0.55
    ucla_item_sd: float = 0.5
    # missingness and withdrawal
    p_withdraw: float = 0.07
    retention_logit_intercept: tuple[float, ...] = (1.5, 0.9)  # per follow-up
    retention_logit_wellbeing: float = 0.9  # per latent unit of baseline wellbeing above 3
    retention_logit_age: float = 0.02  # per year above 45
    retention_logit_population: dict[str, float] = field(default_factory=lambda: {
        "service_user": 0.0, "staff": 0.6})
    p_item_missing: float = 0.005
    # sessions attended over the 12 months (blank = register lost; one centre kept few)
    p_no_sessions: float = 0.08
    sessions_mean: dict[str, float] = field(default_factory=lambda: {
        "service_user": 9.0, "staff": 15.0})
    p_sessions_unknown: float = 0.04
    p_sessions_unknown_worst_site: float = 0.35
    truth_mc_draws: int = 400_000

    def to_json_dict(self) -> dict:
        return _json_dict(self)


SA_EXCLUSIONS = {"under 18 years": 0.25, "not a member of staff or user of the centre": 0.35,
                 "unable to give informed consent": 0.25, "leaving the area within 12 months": 0.15}
SA_DECLINES = {"not interested": 0.45, "too busy": 0.25,
               "does not want to complete questionnaires": 0.15, "no reason given": 0.15}
SA_WITHDRAWALS = {
    "service_user": {"stopped attending the centre": 0.4, "withdrew consent": 0.3,
                     "moved out of area": 0.15, "too unwell": 0.15},
    "staff": {"left the organisation": 0.7, "withdrew consent": 0.3},
}


def _single_arm_scores(p: SingleArmParameters, eta, lonely, noise) -> dict[str, np.ndarray]:
    """Item codes of one occasion from latent wellbeing ``eta`` and loneliness ``lonely``."""
    ons_base = 5.2 + 2.4 * (eta - 3.0) - 0.3 * lonely
    ons = np.column_stack([ons_base, ons_base + 0.6, ons_base + 0.2, 4.5 - 0.8 * (ons_base - 5.0)])
    return {
        "swemwbs": _rounded(eta[:, None] + SWEMWBS_ITEM_OFFSETS[None, :], noise["swemwbs"], 1, 5),
        "ucla3": _rounded(p.ucla_centre + p.ucla_loading * lonely[:, None], noise["ucla3"], 1, 3),
        "ons4": _rounded(ons, noise["ons4"], 0, 10),
    }


def _single_arm_noise(rng, p: SingleArmParameters, n: int) -> dict[str, np.ndarray]:
    return {"swemwbs": rng.normal(0.0, p.item_sd, size=(n, 7)),
            "ucla3": rng.normal(0.0, p.ucla_item_sd, size=(n, 3)),
            "ons4": rng.normal(0.0, 1.0, size=(n, 4)) * np.array([1.2, 1.2, 1.4, 1.8])}


def _swemwbs_metric(total: np.ndarray) -> np.ndarray:
    table = pd.read_csv(_SWEMWBS_TABLE)
    lookup = np.full(36, np.nan)
    lookup[table.raw.to_numpy()] = table.metric.to_numpy()
    return lookup[total.astype(int)]


def _single_arm_outcomes(items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The scores Pathways derives (complete forms): SWEMWBS raw and metric, UCLA-3, ONS4."""
    sw = items["swemwbs"].sum(axis=1)
    out = {"swemwbs_total": sw.astype(float), "swemwbs_metric": _swemwbs_metric(sw),
           "ucla3_total": items["ucla3"].sum(axis=1).astype(float)}
    for k, name in enumerate(ONS4_OUTPUTS):
        out[f"ons4_{name}"] = items["ons4"][:, k].astype(float)
    return out


def true_single_arm_change(p: SingleArmParameters, followup_index: int) -> dict[str, dict[str, float]]:
    """True mean change from baseline of every score at one follow-up, by population and all.

    Monte Carlo with common random numbers: the same participant, occasion and item draws are
    scored at baseline and with the follow-up's latent change, so the difference is the change
    on the observed (rounded, bounded) scale.  ``all`` mixes the populations in the generating
    proportions (``p_staff``).  Returns ``{score: {population: change}}``; the Monte Carlo SE
    is about 0.003 points or less for every score with the default draws.
    """
    by_pop = {}
    for k, pop in enumerate(POPULATIONS):
        rng = np.random.default_rng([p.seed, 7919, followup_index, k])
        n = p.truth_mc_draws
        dev = rng.normal(0, p.site_sd, n) + rng.normal(0, p.participant_sd, n)
        eta = p.wellbeing_mean[pop] + dev + rng.normal(0, p.occasion_sd, n)
        lonely = (p.loneliness_mean[pop] + p.loneliness_wellbeing_loading * dev / p.participant_sd
                  + rng.normal(0, p.loneliness_sd, n) + rng.normal(0, p.loneliness_occasion_sd, n))
        noise = _single_arm_noise(rng, p, n)
        y0 = _single_arm_outcomes(_single_arm_scores(p, eta, lonely, noise))
        y1 = _single_arm_outcomes(_single_arm_scores(
            p, eta + p.change_wellbeing[pop][followup_index],
            lonely + p.change_loneliness[pop][followup_index], noise))
        by_pop[pop] = {s: float(np.mean(y1[s] - y0[s])) for s in y0}
    w = {"service_user": 1.0 - p.p_staff, "staff": p.p_staff}
    return {s: {"all": sum(w[pop] * by_pop[pop][s] for pop in POPULATIONS),
                **{pop: by_pop[pop][s] for pop in POPULATIONS}} for s in by_pop[POPULATIONS[0]]}


def simulate_single_arm(params: SingleArmParameters | None = None) -> dict[str, pd.DataFrame | dict]:
    """Generate the raw tables of the single-arm example (see the module docstring)."""
    p = params or SingleArmParameters()
    rng = np.random.default_rng(p.seed)
    site_ids = [f"C{i + 1:02d}" for i in range(p.n_sites)]
    start, end = np.datetime64(p.recruitment_start, "D"), np.datetime64(p.recruitment_end, "D")
    opened = start + rng.integers(0, p.site_start_spread_days + 1, size=p.n_sites).astype("timedelta64[D]")
    site_effect = rng.normal(0.0, p.site_sd, size=p.n_sites)
    worst_site = int(rng.integers(p.n_sites))  # the centre whose attendance registers are patchy

    # ---- screening log -------------------------------------------------------------------
    last_screen = end - np.timedelta64(7, "D")  # consent follows within a week: by the end
    screening = _screening_log(rng, site_ids, opened, [last_screen] * p.n_sites, p.screened_per_site,
                               p.p_eligible, p.p_consent, SA_EXCLUSIONS, SA_DECLINES)
    consented = screening[screening.consented == "yes"]
    n = len(consented)
    pids = [f"P{i + 1:04d}" for i in range(n)]
    screening["participant_id"] = ""
    screening.loc[consented.index, "participant_id"] = pids

    # ---- participants ----------------------------------------------------------------------
    site_idx = np.array([site_ids.index(s) for s in consented.site_id])
    staff = rng.random(n) < p.p_staff
    pop = np.where(staff, "staff", "service_user")
    age = np.where(staff, np.clip(np.rint(rng.normal(42, 10, n)), 21, 67),
                   np.clip(np.rint(rng.normal(47, 15, n)), 18, 88)).astype(int)
    u = rng.random(n)
    sex = np.where(u < np.where(staff, 0.62, 0.46), "female", np.where(u < 0.99, "male", "other"))
    consent_date = (pd.to_datetime(consented.screen_date).to_numpy().astype("datetime64[D]")
                    + rng.integers(0, 8, size=n).astype("timedelta64[D]"))
    dev = site_effect[site_idx] + rng.normal(0.0, p.participant_sd, size=n)
    eta_person = np.array([p.wellbeing_mean[g] for g in pop]) + dev
    lonely_person = (np.array([p.loneliness_mean[g] for g in pop])
                     + p.loneliness_wellbeing_loading * dev / p.participant_sd
                     + rng.normal(0.0, p.loneliness_sd, size=n))
    sessions = np.where(rng.random(n) < p.p_no_sessions, 0,
                        1 + rng.poisson(np.array([p.sessions_mean[g] for g in pop]) - 1))
    unknown = rng.random(n) < np.where(site_idx == worst_site, p.p_sessions_unknown_worst_site,
                                       p.p_sessions_unknown)

    # ---- waves -----------------------------------------------------------------------------
    timepoints = [("baseline", 0)] + [(f"m{m}", m) for m in p.followup_months]
    eta_bl = eta_person + rng.normal(0, p.occasion_sd, size=n)
    withdraw = rng.random(n) < p.p_withdraw
    withdraw_after = rng.integers(0, len(p.followup_months), size=n)
    reason = np.where(staff, _choice(rng, SA_WITHDRAWALS["staff"], n),
                      _choice(rng, SA_WITHDRAWALS["service_user"], n))
    present = np.ones((n, len(timepoints)), dtype=bool)
    _retention(rng, present, [
        p.retention_logit_intercept[j] + p.retention_logit_wellbeing * (eta_bl - 3.0)
        + p.retention_logit_age * (age - 45)
        + np.array([p.retention_logit_population[g] for g in pop])
        for j in range(len(p.followup_months))], withdraw, withdraw_after)
    visits = np.empty((n, len(timepoints)), dtype="datetime64[D]")
    visits[:, 0] = consent_date + rng.integers(0, 15, size=n).astype("timedelta64[D]")
    wave_tables = {}
    for j, (tp, month) in enumerate(timepoints):
        if j == 0:
            eta = eta_bl
        else:
            eta = (eta_person + np.array([p.change_wellbeing[g][j - 1] for g in pop])
                   + rng.normal(0, p.occasion_sd, size=n))
            visits[:, j] = visits[:, 0] + np.rint(month * SIM_DAYS_PER_MONTH + rng.normal(0, 10, size=n)
                                                  ).astype(int).astype("timedelta64[D]")
        change_l = 0.0 if j == 0 else np.array([p.change_loneliness[g][j - 1] for g in pop])
        lonely = lonely_person + change_l + rng.normal(0, p.loneliness_occasion_sd, size=n)
        items = _single_arm_scores(p, eta, lonely, _single_arm_noise(rng, p, n))
        wave = pd.DataFrame({"participant_id": pids, "visit_date": _iso(visits[:, j])})
        for inst in ("swemwbs", "ucla3", "ons4"):
            for k in range(items[inst].shape[1]):
                wave[f"{inst}_{k + 1}"] = _with_item_missing(rng, items[inst][:, k], p.p_item_missing)
        wave_tables[f"wave_{tp}"] = wave[present[:, j]].reset_index(drop=True)

    withdrawal_date = _withdrawal_dates(rng, visits, present, withdraw, withdraw_after)
    participants = pd.DataFrame({
        "participant_id": pids,
        "site_id": consented.site_id.to_numpy(),
        "population": pop,
        "consent_date": _iso(consent_date),
        "age": age,
        "sex": sex,
        "sessions_attended": pd.array(np.where(unknown, 0, sessions), dtype="Int64"),
        "withdrawal_date": _iso(withdrawal_date),
        "withdrawal_reason": np.where(withdraw, reason, ""),
    })
    participants.loc[unknown, "sessions_attended"] = pd.NA

    changes = [true_single_arm_change(p, j) for j in range(len(p.followup_months))]
    share = {g: float(np.mean(pop == g)) for g in POPULATIONS}
    truth = {
        "description": ("Generating parameters and true mean changes from baseline of the "
                        "synthetic single-arm pre-post example (no comparison group)."),
        "design": "single_arm",
        "parameters": p.to_json_dict(),
        "n_sites": p.n_sites,
        "n_screened": int(len(screening)),
        "n_consented": int(n),
        "n_by_population": {g: int(np.sum(pop == g)) for g in POPULATIONS},
        "true_mean_change": {
            score: {f"m{m}": {g: round(changes[j][score][g], 4) for g in ("all", *POPULATIONS)}
                    for j, m in enumerate(p.followup_months)}
            for score in changes[0]},
        "true_mean_change_enrolled_mix": {
            score: {f"m{m}": round(sum(share[g] * changes[j][score][g] for g in POPULATIONS), 4)
                    for j, m in enumerate(p.followup_months)}
            for score in changes[0]},
        "notes": (
            "true_mean_change: population-average change from baseline (follow-up minus "
            "baseline) of each score on its observed scale, by Monte Carlo with common random "
            "numbers (MC SE <= 0.003); 'all' mixes the populations in the generating proportions "
            "(p_staff).  true_mean_change_enrolled_mix: 'all' with the enrolled participants' "
            "population shares instead.  Latent changes: change_wellbeing and change_loneliness."),
        "variance_components_latent": {"site_sd": p.site_sd, "participant_sd": p.participant_sd,
                                       "occasion_sd": p.occasion_sd},
        "missingness": ("MAR: follow-up response depends on baseline wellbeing, age and "
                        "population; withdrawals remove later visits"),
    }
    return {"screening_log": screening, "participants": participants, **wave_tables, "truth": truth}


# ================================================================ individually randomised


@dataclass(frozen=True)
class IndividualParameters:
    """Every number that shapes the individually randomised example; stored in ``truth.json``.

    Latent wellbeing is on the 1..5 WEMWBS item scale.  Weekly activity is generated on the
    log(1 + hours) scale, where it depends on the occasion's latent wellbeing, so the
    intervention changes it directly and through wellbeing.
    """

    seed: int = 20240902
    trial_id: str = "individual"
    n_sites: int = 5  # centres
    recruited_per_site: float = 30.0  # Poisson mean of participants per centre
    p_self_referral: float = 0.4
    recruitment_start: str = "2024-09-02"
    recruitment_months: int = 9
    site_start_spread_days: int = 75
    block_sizes: tuple[int, ...] = (2, 4)
    followup_months: tuple[int, ...] = (3, 6)
    wellbeing_mean: float = 2.9
    referral_effect: dict[str, float] = field(default_factory=lambda: {
        "professional": 0.0, "self": 0.12})
    age_effect_per_year: float = 0.004  # latent wellbeing per year above 40
    site_sd: float = 0.15
    participant_sd: float = 0.55
    occasion_sd: float = 0.30
    item_sd: float = 0.55
    time_trend: tuple[float, ...] = (0.05, 0.08)  # both arms, per follow-up
    effect_latent: tuple[float, ...] = (0.15, 0.25)  # intervention, per follow-up
    activity_log_mean: float = 2.2  # log(1 + hours per week) at average wellbeing
    activity_wellbeing_loading: float = 0.35  # per latent unit of wellbeing
    activity_participant_sd: float = 0.5
    activity_occasion_sd: float = 0.35
    activity_time_trend: tuple[float, ...] = (0.02, 0.03)
    activity_effect_log: tuple[float, ...] = (0.10, 0.18)  # direct intervention effect
    activity_max_hours: float = 80.0
    # missingness and withdrawal
    p_withdraw: float = 0.05
    retention_logit_intercept: tuple[float, ...] = (2.1, 1.5)
    retention_logit_wellbeing: float = 0.8  # per latent unit of baseline wellbeing above mean
    retention_logit_age: float = 0.025  # per year above 40
    retention_logit_referral: dict[str, float] = field(default_factory=lambda: {
        "professional": 0.0, "self": 0.4})
    retention_logit_intervention: float = 0.25
    p_item_missing: float = 0.004
    p_activity_missing: float = 0.05
    # intervention delivery (intervention arm; blank in the control arm)
    p_no_sessions: float = 0.10
    max_sessions: int = 10
    p_sessions_unknown: float = 0.05
    truth_mc_draws: int = 400_000

    def to_json_dict(self) -> dict:
        return _json_dict(self)


IND_WITHDRAWALS = {"withdrew consent": 0.45, "moved out of area": 0.2, "too unwell": 0.2,
                   "no longer wishes to be contacted": 0.15}


def _individual_age(rng, n: int) -> np.ndarray:
    return np.clip(np.rint(rng.normal(41, 13, n)), 18, 80).astype(int)


def _individual_outcomes(p: IndividualParameters, eta, act_log, noise) -> dict[str, np.ndarray]:
    """WEMWBS item codes and weekly activity hours (0-80, one decimal) of one occasion."""
    items = _rounded(eta[:, None] + WEMWBS_ITEM_OFFSETS[None, :], noise, 1, 5)
    a = act_log + p.activity_wellbeing_loading * (eta - p.wellbeing_mean)
    hours = np.round(np.clip(np.expm1(a), 0.0, p.activity_max_hours), 1)
    return {"wemwbs": items, "weekly_activity_hours": hours}


def true_individual_effects(p: IndividualParameters, followup_index: int) -> dict[str, float]:
    """Population-average effects (intervention minus control) at one follow-up.

    Monte Carlo with common random numbers over the generating model (centre, referral route,
    age, participant and occasion draws): the same draws are scored with and without the
    intervention, so the difference is the causal effect on the observed scale of the WEMWBS
    total and of weekly activity hours (rounded to 0.1 h, bounded at 0 and 80).  MC SE about
    0.002 points (WEMWBS) and 0.002 hours with the default draws.
    """
    rng = np.random.default_rng([p.seed, 7919, followup_index])
    n = p.truth_mc_draws
    self_ref = rng.random(n) < p.p_self_referral
    age = _individual_age(rng, n)
    eta = (p.wellbeing_mean + np.where(self_ref, p.referral_effect["self"], p.referral_effect["professional"])
           + p.age_effect_per_year * (age - 40) + rng.normal(0, p.site_sd, n)
           + rng.normal(0, p.participant_sd, n) + rng.normal(0, p.occasion_sd, n)
           + p.time_trend[followup_index])
    act = (p.activity_log_mean + rng.normal(0, p.activity_participant_sd, n)
           + rng.normal(0, p.activity_occasion_sd, n) + p.activity_time_trend[followup_index])
    noise = rng.normal(0.0, p.item_sd, size=(n, len(WEMWBS_ITEM_OFFSETS)))
    y0 = _individual_outcomes(p, eta, act, noise)
    y1 = _individual_outcomes(p, eta + p.effect_latent[followup_index],
                              act + p.activity_effect_log[followup_index], noise)
    return {"wemwbs_total": float(np.mean(y1["wemwbs"].sum(axis=1) - y0["wemwbs"].sum(axis=1))),
            "weekly_activity_hours": float(np.mean(y1["weekly_activity_hours"]
                                                   - y0["weekly_activity_hours"]))}


def _stratified_blocks(rng, strata: np.ndarray, block_sizes) -> np.ndarray:
    """1:1 allocation in random permuted blocks within each stratum, in order of entry."""
    arm = np.empty(len(strata), dtype=object)
    for s in sorted(set(strata)):
        idx = np.flatnonzero(strata == s)
        seq: list[str] = []
        while len(seq) < len(idx):
            b = int(rng.choice(block_sizes))
            seq += list(rng.permutation(["control"] * (b // 2) + ["intervention"] * (b // 2)))
        arm[idx] = seq[:len(idx)]
    return arm


def simulate_individual(params: IndividualParameters | None = None) -> dict[str, pd.DataFrame | dict]:
    """Generate the raw tables of the individually randomised example (module docstring)."""
    p = params or IndividualParameters()
    rng = np.random.default_rng(p.seed)
    site_ids = [f"C{i + 1:02d}" for i in range(p.n_sites)]
    start = pd.Timestamp(p.recruitment_start)
    offsets = rng.integers(0, p.site_start_spread_days + 1, size=p.n_sites)
    opened = [start + pd.Timedelta(days=int(o)) for o in offsets]
    closed = [o + pd.DateOffset(months=p.recruitment_months) - pd.Timedelta(days=1) for o in opened]
    sites = pd.DataFrame({"site_id": site_ids,
                          "recruitment_start": [d.date().isoformat() for d in opened],
                          "recruitment_end": [d.date().isoformat() for d in closed]})
    site_effect = rng.normal(0.0, p.site_sd, size=p.n_sites)

    # ---- participants in order of consent, randomised within centre x referral route --------
    counts = rng.poisson(p.recruited_per_site, size=p.n_sites)
    site_idx = np.repeat(np.arange(p.n_sites), counts)
    n = len(site_idx)
    win = np.array([(c - o).days for o, c in zip(opened, closed)])
    consent_date = (np.array([np.datetime64(o.date(), "D") for o in opened])[site_idx]
                    + (rng.random(n) * (win[site_idx] + 1)).astype(int).astype("timedelta64[D]"))
    order = np.lexsort((site_idx, consent_date))
    site_idx, consent_date = site_idx[order], consent_date[order]
    pids = [f"P{i + 1:04d}" for i in range(n)]
    self_ref = rng.random(n) < p.p_self_referral
    referral = np.where(self_ref, "self", "professional")
    age = _individual_age(rng, n)
    sex = np.where(rng.random(n) < 0.55, "female", "male")
    arm = _stratified_blocks(rng, np.array([f"{s}|{r}" for s, r in zip(site_idx, referral)]),
                             p.block_sizes)
    treated = arm == "intervention"
    eta_person = (p.wellbeing_mean + np.array([p.referral_effect[r] for r in referral])
                  + p.age_effect_per_year * (age - 40) + site_effect[site_idx]
                  + rng.normal(0.0, p.participant_sd, size=n))
    act_person = p.activity_log_mean + rng.normal(0.0, p.activity_participant_sd, size=n)
    sessions = np.where(rng.random(n) < p.p_no_sessions, 0, rng.integers(1, p.max_sessions + 1, size=n))
    unknown = treated & (rng.random(n) < p.p_sessions_unknown)

    # ---- waves -----------------------------------------------------------------------------
    timepoints = [("baseline", 0)] + [(f"m{m}", m) for m in p.followup_months]
    eta_bl = eta_person + rng.normal(0, p.occasion_sd, size=n)
    withdraw = rng.random(n) < p.p_withdraw
    withdraw_after = rng.integers(0, len(p.followup_months), size=n)
    reason = _choice(rng, IND_WITHDRAWALS, n)
    present = np.ones((n, len(timepoints)), dtype=bool)
    _retention(rng, present, [
        p.retention_logit_intercept[j] + p.retention_logit_wellbeing * (eta_bl - p.wellbeing_mean)
        + p.retention_logit_age * (age - 40)
        + np.array([p.retention_logit_referral[r] for r in referral])
        + p.retention_logit_intervention * treated
        for j in range(len(p.followup_months))], withdraw, withdraw_after)
    visits = np.empty((n, len(timepoints)), dtype="datetime64[D]")
    visits[:, 0] = consent_date + rng.integers(0, 15, size=n).astype("timedelta64[D]")
    wave_tables = {}
    for j, (tp, month) in enumerate(timepoints):
        if j == 0:
            eta, act = eta_bl, act_person + rng.normal(0, p.activity_occasion_sd, size=n)
        else:
            eta = (eta_person + p.time_trend[j - 1] + p.effect_latent[j - 1] * treated
                   + rng.normal(0, p.occasion_sd, size=n))
            act = (act_person + p.activity_time_trend[j - 1] + p.activity_effect_log[j - 1] * treated
                   + rng.normal(0, p.activity_occasion_sd, size=n))
            visits[:, j] = visits[:, 0] + np.rint(month * SIM_DAYS_PER_MONTH + rng.normal(0, 7, size=n)
                                                  ).astype(int).astype("timedelta64[D]")
        y = _individual_outcomes(p, eta, act, rng.normal(0.0, p.item_sd, size=(n, 14)))
        wave = pd.DataFrame({"participant_id": pids, "visit_date": _iso(visits[:, j])})
        for k in range(14):
            wave[f"wemwbs_{k + 1}"] = _with_item_missing(rng, y["wemwbs"][:, k], p.p_item_missing)
        hours = [f"{h:.1f}" for h in y["weekly_activity_hours"]]
        blank = rng.random(n) < p.p_activity_missing
        wave["weekly_activity_hours"] = np.where(blank, "", hours)
        wave_tables[f"wave_{tp}"] = wave[present[:, j]].reset_index(drop=True)

    withdrawal_date = _withdrawal_dates(rng, visits, present, withdraw, withdraw_after)
    participants = pd.DataFrame({
        "participant_id": pids,
        "site_id": np.array(site_ids)[site_idx],
        "arm": arm,
        "consent_date": _iso(consent_date),
        "age": age,
        "sex": sex,
        "referral_route": referral,
        "sessions_attended": pd.array(np.where(treated & ~unknown, sessions, 0), dtype="Int64"),
        "withdrawal_date": _iso(withdrawal_date),
        "withdrawal_reason": np.where(withdraw, reason, ""),
    })
    participants.loc[~treated | unknown, "sessions_attended"] = pd.NA

    effects = [true_individual_effects(p, j) for j in range(len(p.followup_months))]
    truth = {
        "description": ("Generating parameters and true intervention effects of the synthetic "
                        "multi-centre individually randomised example."),
        "design": "individual",
        "parameters": p.to_json_dict(),
        "n_sites": p.n_sites,
        "n_randomised": int(n),
        "n_by_arm": {a: int(np.sum(arm == a)) for a in ("control", "intervention")},
        "true_effects": {
            score: {f"m{m}": round(effects[j][score], 4) for j, m in enumerate(p.followup_months)}
            for score in ("wemwbs_total", "weekly_activity_hours")},
        "true_effects_latent": {
            "wellbeing": {f"m{m}": p.effect_latent[j] for j, m in enumerate(p.followup_months)},
            "activity_log1p_direct": {f"m{m}": p.activity_effect_log[j]
                                      for j, m in enumerate(p.followup_months)}},
        "notes": (
            "true_effects: population-average difference intervention minus control at each "
            "follow-up on the observed scale (WEMWBS total 14-70; weekly activity hours "
            "rounded to 0.1 and bounded at 0 and 80), by Monte Carlo with common random "
            "numbers.  Randomisation: 1:1, permuted blocks of 2 and 4 within centre x referral "
            "route, in order of consent."),
        "variance_components_latent": {"site_sd": p.site_sd, "participant_sd": p.participant_sd,
                                       "occasion_sd": p.occasion_sd},
        "missingness": ("MAR: follow-up response depends on baseline wellbeing, age, referral "
                        "route and arm; withdrawals remove later visits"),
    }
    return {"sites": sites, "participants": participants, **wave_tables, "truth": truth}


# ================================================================ non-randomised cluster comparison


CPI_QUASI_GROUPS = ("mental_health", "learning_disability", "older_adults")
CPI_QUASI_WITHDRAWALS = {"withdrew consent": 0.6, "moved out of area": 0.4}
CPI_QUASI_SERVICE_ITEMS = ("gp_contacts", "ae_attendances", "inpatient_nights", "community_team_contacts",
                           "social_worker_contacts")


@dataclass(frozen=True)
class CpiQuasiParameters:
    """Every number that shapes the non-randomised comparison example; stored in ``truth.json``.

    Agencies were not randomised: which agencies took up the intervention depends on the
    client group they serve (``intervention_sites``: most mental-health agencies, few
    older-adults agencies), and intervention agencies recruit younger clients
    (``intervention_age_shift``).  Wellbeing changes differently over time by client group and
    age (``trend_group``, ``trend_age_per_year``), so a comparison that ignores client group
    and age is confounded.  Given client group and age, allocation is independent of every
    unobserved quantity (site and participant effects): the propensity score on client group
    and age removes the confounding, which is what the example demonstrates.  Latent
    wellbeing is on the 1..5 item scale of SWEMWBS.
    """

    seed: int = 20250113
    trial_id: str = "cpi_quasi"
    sites_per_group: dict[str, int] = field(default_factory=lambda: {
        "mental_health": 5, "learning_disability": 4, "older_adults": 5})
    intervention_sites: dict[str, int] = field(default_factory=lambda: {
        "mental_health": 4, "learning_disability": 2, "older_adults": 1})
    recruited_per_site: float = 15.0  # Poisson mean of participants per agency
    recruitment_start: str = "2024-04-01"
    recruitment_months: int = 6
    site_start_spread_days: int = 45
    followup_months: tuple[int, ...] = (6, 12)
    age_mean: dict[str, float] = field(default_factory=lambda: {
        "mental_health": 45.0, "learning_disability": 41.0, "older_adults": 76.0})
    # the same SD in every group, so that the log odds of the intervention are linear in age
    # with one slope: the main-effects logistic propensity model is then correctly specified
    age_sd: dict[str, float] = field(default_factory=lambda: {
        "mental_health": 8.0, "learning_disability": 8.0, "older_adults": 8.0})
    intervention_age_shift: float = -6.0  # intervention agencies recruit younger clients
    wellbeing_mean: float = 3.0
    group_effects: dict[str, float] = field(default_factory=lambda: {
        "mental_health": -0.20, "learning_disability": 0.05, "older_adults": 0.0})
    age_level_per_year: float = -0.004  # baseline wellbeing per year above 50
    trend_group: dict[str, float] = field(default_factory=lambda: {  # per follow-up (index + 1)
        "mental_health": 0.12, "learning_disability": 0.0, "older_adults": -0.12})
    trend_age_per_year: float = -0.006  # change per follow-up per year above 50
    site_sd: float = 0.15
    participant_sd: float = 0.50
    occasion_sd: float = 0.30
    item_sd: float = 0.55
    effect_latent: float = 0.25  # intervention, at every follow-up
    social_effect: float = 0.30  # social capital / inclusion latent, at every follow-up
    p_withdraw: float = 0.08
    retention_logit_intercept: tuple[float, ...] = (2.2, 1.6)
    retention_logit_wellbeing: float = 0.8
    retention_logit_age: float = 0.01
    p_item_missing: float = 0.004
    p_no_sessions: float = 0.10
    max_sessions: int = 12
    fidelity_mean: float = 70.0
    fidelity_sd: float = 12.0
    truth_mc_draws: int = 400_000

    def to_json_dict(self) -> dict:
        return _json_dict(self)


def cpi_quasi_sites(rng, p: CpiQuasiParameters) -> pd.DataFrame:
    """Agencies, their client group and whether they took up the intervention (not random:
    ``intervention_sites`` of each group's agencies, which ones drawn at random)."""
    groups, arms = [], []
    for g in CPI_QUASI_GROUPS:
        k, m = p.sites_per_group[g], p.intervention_sites[g]
        groups += [g] * k
        arms += list(rng.permutation(["intervention"] * m + ["comparison"] * (k - m)))
    return pd.DataFrame({"site_id": [f"A{i + 1:02d}" for i in range(len(groups))],
                         "client_group": groups, "arm": arms})


def cpi_quasi_people(rng, p: CpiQuasiParameters, sites: pd.DataFrame) -> pd.DataFrame:
    """Participants with their latent wellbeing at baseline and every follow-up (continuous, on
    the item scale): the confounding structure of the example, used on its own by the
    simulation test (tests/test_propensity.py) with ``eta_*`` as a continuous outcome whose true
    effect is ``effect_latent`` exactly."""
    counts = rng.poisson(p.recruited_per_site, size=len(sites))
    s_idx = np.repeat(np.arange(len(sites)), counts)
    n = len(s_idx)
    group = sites.client_group.to_numpy()[s_idx]
    treated = (sites.arm.to_numpy()[s_idx] == "intervention").astype(float)
    age_mean = np.array([p.age_mean[g] for g in group]) + p.intervention_age_shift * treated
    age = np.clip(np.rint(rng.normal(age_mean, [p.age_sd[g] for g in group])), 18, 99).astype(int)
    sex = np.where(rng.random(n) < 0.52, "female", "male")
    site_effect = rng.normal(0.0, p.site_sd, size=len(sites))
    person = (p.wellbeing_mean + np.array([p.group_effects[g] for g in group])
              + p.age_level_per_year * (age - 50) + site_effect[s_idx]
              + rng.normal(0.0, p.participant_sd, size=n))
    out = pd.DataFrame({"site_id": sites.site_id.to_numpy()[s_idx], "client_group": group,
                        "treated": treated.astype(int), "age": age, "sex": sex, "eta_person": person})
    out["eta_baseline"] = person + rng.normal(0.0, p.occasion_sd, size=n)
    for j, m in enumerate(p.followup_months):
        trend = (np.array([p.trend_group[g] for g in group]) + p.trend_age_per_year * (age - 50)) * (j + 1)
        out[f"eta_m{m}"] = person + trend + p.effect_latent * treated + rng.normal(0.0, p.occasion_sd, size=n)
    return out


def _cpi_quasi_swemwbs(eta, noise) -> np.ndarray:
    return _rounded(eta[:, None] + SWEMWBS_ITEM_OFFSETS[None, :], noise, 1, 5)


def true_cpi_quasi_effects(p: CpiQuasiParameters, followup_index: int) -> dict[str, float]:
    """True effect on the SWEMWBS total (7-35) at one follow-up, among participants of
    intervention agencies (ATT) and among everyone (ATE): Monte Carlo with common random
    numbers over the generating model (allocation, client group and age mix of the example's
    agencies; every participant scored with and without the latent effect).  MC SE < 0.005."""
    rng = np.random.default_rng([p.seed, 7919, followup_index])
    n_mc = p.truth_mc_draws
    k = np.array([p.sites_per_group[g] for g in CPI_QUASI_GROUPS], dtype=float)
    m = np.array([p.intervention_sites[g] for g in CPI_QUASI_GROUPS], dtype=float)
    out = {}
    for estimand, share in (("ATT", m), ("ATE", k)):  # equal expected recruits per agency
        gi = rng.choice(3, size=n_mc, p=share / share.sum())
        group = np.array(CPI_QUASI_GROUPS)[gi]
        t = np.ones(n_mc) if estimand == "ATT" else (rng.random(n_mc) < (m / k)[gi]).astype(float)
        age = np.clip(np.rint(rng.normal(np.array([p.age_mean[g] for g in group]) + p.intervention_age_shift * t,
                                         [p.age_sd[g] for g in group])), 18, 99)
        trend = (np.array([p.trend_group[g] for g in group]) + p.trend_age_per_year * (age - 50)) * (followup_index + 1)
        eta = (p.wellbeing_mean + np.array([p.group_effects[g] for g in group]) + p.age_level_per_year * (age - 50)
               + rng.normal(0, p.site_sd, n_mc) + rng.normal(0, p.participant_sd, n_mc)
               + rng.normal(0, p.occasion_sd, n_mc) + trend)
        noise = rng.normal(0.0, p.item_sd, size=(n_mc, 7))
        y0 = _cpi_quasi_swemwbs(eta, noise).sum(axis=1)
        y1 = _cpi_quasi_swemwbs(eta + p.effect_latent, noise).sum(axis=1)
        out[estimand] = float(np.mean(y1 - y0))
    return out


def simulate_cpi_quasi(params: CpiQuasiParameters | None = None) -> dict[str, pd.DataFrame | dict]:
    """Generate the raw tables of the non-randomised comparison example (see
    :class:`CpiQuasiParameters`): agencies, participants, baseline and two follow-up waves
    (SWEMWBS, RG-UK, SIS, EQ-5D-5L), service use, fidelity of the intervention agencies."""
    p = params or CpiQuasiParameters()
    rng = np.random.default_rng(p.seed)
    sites = cpi_quasi_sites(rng, p)
    start = pd.Timestamp(p.recruitment_start)
    offsets = rng.integers(0, p.site_start_spread_days + 1, size=len(sites))
    opened = [start + pd.Timedelta(days=int(o)) for o in offsets]
    closed = [o + pd.DateOffset(months=p.recruitment_months) - pd.Timedelta(days=1) for o in opened]
    sites["recruitment_start"] = [d.date().isoformat() for d in opened]
    sites["recruitment_end"] = [d.date().isoformat() for d in closed]
    people = cpi_quasi_people(rng, p, sites)
    n = len(people)
    pids = [f"P{i + 1:04d}" for i in range(n)]
    s_idx = np.array([list(sites.site_id).index(s) for s in people.site_id])
    win = np.array([(c - o).days for o, c in zip(opened, closed)])
    consent = (np.array([np.datetime64(o.date(), "D") for o in opened])[s_idx]
               + (rng.random(n) * (win[s_idx] + 1)).astype(int).astype("timedelta64[D]"))
    treated = people.treated.to_numpy().astype(float)
    z_person = (people.eta_person.to_numpy() - p.wellbeing_mean) / p.participant_sd
    social = rng.normal(0.0, 1.0, size=n) + 0.5 * z_person
    health = 0.5 * z_person + np.sqrt(0.75) * rng.normal(size=n) - 0.02 * (people.age.to_numpy() - 50)
    sessions = np.where(rng.random(n) < p.p_no_sessions, 0, rng.integers(1, p.max_sessions + 1, size=n))

    timepoints = [("baseline", 0)] + [(f"m{m}", m) for m in p.followup_months]
    withdraw = rng.random(n) < p.p_withdraw
    withdraw_after = rng.integers(0, len(p.followup_months), size=n)
    reason = _choice(rng, CPI_QUASI_WITHDRAWALS, n)
    present = np.ones((n, len(timepoints)), dtype=bool)
    z_bl = people.eta_baseline.to_numpy() - p.wellbeing_mean
    _retention(rng, present, [p.retention_logit_intercept[j] + p.retention_logit_wellbeing * z_bl
                              + p.retention_logit_age * (people.age.to_numpy() - 50)
                              for j in range(len(p.followup_months))], withdraw, withdraw_after)
    visits = np.empty((n, len(timepoints)), dtype="datetime64[D]")
    visits[:, 0] = consent + rng.integers(0, 15, size=n).astype("timedelta64[D]")
    waves, service = {}, []
    for j, (tp, month) in enumerate(timepoints):
        eta = people[f"eta_{tp}"].to_numpy()
        s = social + (p.social_effect * treated + rng.normal(0, 0.4, size=n) if j else 0.0)
        h = health + (0.3 * (eta - people.eta_baseline.to_numpy()) + rng.normal(0, 0.3, size=n) if j else 0.0)
        if j:
            visits[:, j] = visits[:, 0] + np.rint(month * SIM_DAYS_PER_MONTH + rng.normal(0, 7, size=n)
                                                  ).astype(int).astype("timedelta64[D]")
        sw = _cpi_quasi_swemwbs(eta, rng.normal(0.0, p.item_sd, size=(n, 7)))
        access = rng.random((n, 27)) < 1 / (1 + np.exp(-(s[:, None] - np.linspace(-1.8, 1.8, 27)[None, :])))
        rg = np.where(access, rng.choice([1, 2, 3, 4], p=[0.05, 0.40, 0.40, 0.15], size=(n, 27)), 5)
        incl = 2.6 + 0.5 * s[:, None] + rng.normal(0, 0.6, size=(n, 22))
        sis = np.clip(np.rint(incl), 1, 4).astype(int)
        sis[:, :7] = 5 - sis[:, :7]  # isolation items are negatively worded (reverse-keyed)
        eq = np.clip(np.rint(np.array([1.4, 0.9, 1.6, 2.0, 2.1])[None, :] - 0.75 * h[:, None]
                             + rng.normal(0, 0.6, size=(n, 5))), 1, 5).astype(int)
        wave = pd.DataFrame({"participant_id": pids, "visit_date": _iso(visits[:, j])})
        for name, arr in (("swemwbs", sw), ("rguk", rg), ("sis", sis), ("eq5d5l", eq)):
            for k in range(arr.shape[1]):
                wave[f"{name}_{k + 1}"] = _with_item_missing(rng, arr[:, k], p.p_item_missing)
        waves[f"wave_{tp}"] = wave[present[:, j]].reset_index(drop=True)
        months = 3.0 if j == 0 else month - timepoints[j - 1][1]
        need = np.exp(-0.35 * h)
        recall_start = (visits[:, 0] - np.timedelta64(91, "D")) if j == 0 else visits[:, j - 1]
        su = pd.DataFrame({"participant_id": pids, "timepoint": tp, "recall_start": _iso(recall_start),
                           "recall_end": _iso(visits[:, j])})
        su["gp_contacts"] = rng.poisson(0.7 * months * need)
        su["ae_attendances"] = rng.poisson(0.05 * months * need)
        su["inpatient_nights"] = np.where(rng.random(n) < 0.02 * months * need, rng.integers(1, 21, size=n), 0)
        su["community_team_contacts"] = rng.poisson(0.8 * months * need)
        su["social_worker_contacts"] = rng.poisson(0.4 * months * need)
        service.append(su[present[:, j]])

    withdrawal_date = _withdrawal_dates(rng, visits, present, withdraw, withdraw_after)
    participants = pd.DataFrame({
        "participant_id": pids, "site_id": people.site_id, "consent_date": _iso(consent),
        "age": people.age, "sex": people.sex,
        "sessions_attended": pd.array(np.where(treated == 1, sessions, 0), dtype="Int64"),
        "withdrawal_date": _iso(withdrawal_date), "withdrawal_reason": np.where(withdraw, reason, "")})
    participants.loc[treated == 0, "sessions_attended"] = pd.NA
    fid = sites[sites.arm == "intervention"][["site_id", "recruitment_end"]].rename(
        columns={"recruitment_end": "assessment_date"}).reset_index(drop=True)
    fid["fidelity_score"] = np.clip(np.rint(rng.normal(p.fidelity_mean, p.fidelity_sd, size=len(fid))),
                                    20, 100).astype(int)
    effects = [true_cpi_quasi_effects(p, j) for j in range(len(p.followup_months))]
    arm = people.treated.map({1: "intervention", 0: "comparison"})
    truth = {
        "description": ("Generating parameters and true effects of the synthetic non-randomised comparison "
                        "of intervention and comparison agencies (allocation confounded by client group "
                        "and client age)."),
        "design": "cluster, non-randomised (design.allocation: non_randomised)",
        "parameters": p.to_json_dict(),
        "n_sites": int(len(sites)),
        "n_sites_by_arm": {a: int((sites.arm == a).sum()) for a in ("comparison", "intervention")},
        "n_participants": int(n),
        "n_by_arm": {a: int((arm == a).sum()) for a in ("comparison", "intervention")},
        "true_effects": {"swemwbs_total": {f"m{m}": {k: round(v, 4) for k, v in effects[j].items()}
                                           for j, m in enumerate(p.followup_months)}},
        "true_effects_latent": {"wellbeing": p.effect_latent, "social_capital": p.social_effect},
        "confounders": ["client_group", "age"],
        "notes": ("true_effects: population-average difference intervention minus comparison on the "
                  "SWEMWBS raw total (7-35) among participants of intervention agencies (ATT) and among "
                  "all participants (ATE), by Monte Carlo with common random numbers.  Allocation "
                  "depends on client group; intervention agencies recruit younger clients; wellbeing "
                  "changes with client group and age: an analysis ignoring them is biased, one "
                  "weighting on a propensity score of client group and age is not."),
        "missingness": "MAR: follow-up response depends on baseline wellbeing and age",
    }
    return {"sites": sites, "participants": participants, **waves,
            "service_use": pd.concat(service, ignore_index=True), "fidelity": fid, "truth": truth}


# ================================================================ command line

DESIGNS = {
    "single_arm": (SingleArmParameters, simulate_single_arm),
    "individual": (IndividualParameters, simulate_individual),
    "cpi_quasi": (CpiQuasiParameters, simulate_cpi_quasi),
}


def write_design(design: str, out_dir: str | Path, params=None, **options) -> list[Path]:
    """Simulate one of :data:`DESIGNS` and write its raw files and ``truth.json``.

    ``options`` (seed, n_sites, trial_id, screened_per_site) override the default parameters;
    ``None`` values are ignored.  Byte-identical output for identical parameters.
    """
    cls, simulate = DESIGNS[design]
    fields = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise ValueError(f"design {design!r} has no parameter {', '.join(unknown)}")
    params = dataclasses.replace(params or cls(), **given)
    return write_tables(out_dir, simulate(params))
