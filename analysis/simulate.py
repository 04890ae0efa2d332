"""Synthetic two-arm cluster pilot trial, shaped like the Connecting People Intervention pilot.

The generator is the project's demo data and its ground truth.  It writes the raw files a
trial's data manager would hand over (one CSV per source, described in ``docs/data-format.md``)
plus ``truth.json`` holding every generating parameter and the true intervention effects.

Design of the generating model (all parameters are in :class:`SimulationParameters`):

* Sites (agencies) each serve one client group; within each client group half the sites are
  allocated to the intervention (cluster randomisation stratified by client group).
* Each site screens a Poisson number of people over its recruitment window; eligibility and
  consent are Bernoulli with recorded reasons.
* Each participant has latent traits at baseline: wellbeing ``eta`` (site and participant random
  effects), social capital ``s`` and health ``h`` correlated with ``eta``.  Follow-up latent
  values add a time trend, the intervention effect (from the first follow-up on) and
  occasion-level noise.
* Item responses come from the latent values by rounding a noisy item-specific value to the
  response scale (an ordinal-probit-like model): WEMWBS 1..5, EQ-5D-5L levels 1..5 (higher is
  worse), RG-UK access (codes 1..5), UCLA-3 1..3, ONS4 0..10.
* Loss to follow-up is missing at random: its probability depends on baseline wellbeing, age
  and client group (all observed), never on the unobserved follow-up values.
* The true intervention effect on the WEMWBS total (in scale points) is the population-average
  difference between the two potential outcomes, computed by Monte Carlo with common random
  numbers, so it accounts for rounding and floor/ceiling effects of the item scale.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SimulationParameters", "simulate_trial", "write_trial", "true_wemwbs_effect"]

CLIENT_GROUPS = ("psychosis", "common_mental_health", "learning_disability")

SCREEN_EXCLUSIONS = {
    "under 18 years": 0.20,
    "lacks capacity to consent": 0.35,
    "not in contact with the service for 3 months": 0.30,
    "taking part in another study": 0.15,
}
DECLINE_REASONS = {"not interested": 0.55, "too busy": 0.25, "no reason given": 0.20}
WITHDRAWAL_REASONS = {"withdrew consent": 0.5, "moved out of area": 0.3, "too unwell": 0.2}
SERVICE_ITEMS = ("gp_contacts", "ae_attendances", "inpatient_nights", "cmht_contacts",
                 "social_worker_contacts")


@dataclass(frozen=True)
class SimulationParameters:
    """Every number that shapes the synthetic trial; stored verbatim in ``truth.json``."""

    seed: int = 20240301
    trial_id: str = "demo"
    n_sites: int = 12
    screened_per_site: float = 30.0  # Poisson mean of people screened per site
    p_eligible: float = 0.72
    p_consent: float = 0.60
    recruitment_start: str = "2024-03-01"
    recruitment_months: int = 6
    site_start_spread_days: int = 60
    followup_months: tuple[int, ...] = (3, 9)
    # latent wellbeing on the 1..5 item scale
    wellbeing_mean: float = 3.05
    site_sd: float = 0.20
    participant_sd: float = 0.55
    occasion_sd: float = 0.30
    item_sd: float = 0.55
    time_trend_per_followup: float = 0.04
    group_effects: dict[str, float] = field(default_factory=lambda: {
        "psychosis": -0.10, "common_mental_health": 0.0, "learning_disability": 0.05})
    # intervention effect on latent wellbeing, applied at every follow-up
    effect_latent: float = 0.20
    # social capital (logit scale) and health latents
    social_capital_mean: float = 0.3
    social_capital_sd: float = 1.0
    social_capital_effect: float = 0.35
    health_wellbeing_corr: float = 0.5
    # missingness
    p_withdraw: float = 0.06
    retention_logit_intercept: tuple[float, ...] = (2.0, 1.1)  # per follow-up
    retention_logit_wellbeing: float = 0.9  # per latent-unit of baseline wellbeing above mean
    retention_logit_age: float = 0.03  # per year above 40
    retention_logit_group: dict[str, float] = field(default_factory=lambda: {
        "psychosis": -0.5, "common_mental_health": 0.0, "learning_disability": 0.3})
    p_item_missing: float = 0.004
    p_received_intervention: float = 0.85
    truth_mc_draws: int = 400_000

    def to_json_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _choice(rng: np.random.Generator, options: dict[str, float], size: int) -> np.ndarray:
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=size, p=p / p.sum())]


def _wemwbs_items(rng, eta, params: SimulationParameters, item_offsets) -> np.ndarray:
    noise = rng.normal(0.0, params.item_sd, size=(len(eta), len(item_offsets)))
    return np.clip(np.rint(eta[:, None] + item_offsets[None, :] + noise), 1, 5).astype(int)


WEMWBS_ITEM_OFFSETS = np.array([-0.1, 0.1, -0.3, 0.2, -0.45, -0.1, 0.05, -0.15, 0.1, -0.2,
                                0.3, 0.15, 0.1, 0.0])


def true_wemwbs_effect(params: SimulationParameters, followup_index: int) -> float:
    """Population-average effect of the intervention on the WEMWBS total at a follow-up.

    Monte Carlo over the generating model with common random numbers: the same latent draws
    are scored with and without the latent effect, so the difference is the causal effect on
    the observed (rounded, bounded) total scale.  Its Monte Carlo SE is below 0.005 points
    with the default number of draws.
    """
    rng = np.random.default_rng([params.seed, 7919, followup_index])
    n = params.truth_mc_draws
    groups = rng.choice(len(CLIENT_GROUPS), size=n)
    group_eff = np.array([params.group_effects[g] for g in CLIENT_GROUPS])[groups]
    eta = (params.wellbeing_mean + group_eff + rng.normal(0, params.site_sd, n)
           + rng.normal(0, params.participant_sd, n) + rng.normal(0, params.occasion_sd, n)
           + params.time_trend_per_followup * (followup_index + 1))
    noise = rng.normal(0.0, params.item_sd, size=(n, len(WEMWBS_ITEM_OFFSETS)))
    base = eta[:, None] + WEMWBS_ITEM_OFFSETS[None, :] + noise
    y0 = np.clip(np.rint(base), 1, 5).sum(axis=1)
    y1 = np.clip(np.rint(base + params.effect_latent), 1, 5).sum(axis=1)
    return float(np.mean(y1 - y0))


def _allocate_sites(rng, params: SimulationParameters) -> pd.DataFrame:
    start = pd.Timestamp(params.recruitment_start)
    groups = [CLIENT_GROUPS[i % len(CLIENT_GROUPS)] for i in range(params.n_sites)]
    arms = np.empty(params.n_sites, dtype=object)
    for g in CLIENT_GROUPS:  # stratified cluster randomisation: half of each stratum
        idx = [i for i, gg in enumerate(groups) if gg == g]
        perm = rng.permutation(idx)
        half = len(idx) // 2 + (rng.random() < 0.5 if len(idx) % 2 else 0)
        arms[perm[:half]] = "intervention"
        arms[perm[half:]] = "control"
    offsets = rng.integers(0, params.site_start_spread_days + 1, size=params.n_sites)
    opened = [start + pd.Timedelta(days=int(o)) for o in offsets]
    closed = [o + pd.DateOffset(months=params.recruitment_months) - pd.Timedelta(days=1)
              for o in opened]
    return pd.DataFrame({
        "site_id": [f"S{i + 1:02d}" for i in range(params.n_sites)],
        "client_group": groups,
        "arm": arms,
        "recruitment_start": [d.date().isoformat() for d in opened],
        "recruitment_end": [d.date().isoformat() for d in closed],
    })


def simulate_trial(params: SimulationParameters | None = None) -> dict[str, pd.DataFrame | dict]:
    """Generate the raw tables of one synthetic pilot trial.

    Returns a dict of DataFrames keyed by raw file name (without extension) plus ``truth``.
    The same parameters always give identical tables.
    """
    p = params or SimulationParameters()
    rng = np.random.default_rng(p.seed)
    sites = _allocate_sites(rng, p)
    site_effect = rng.normal(0.0, p.site_sd, size=len(sites))

    # ---- screening log -------------------------------------------------------------------
    rows = []
    for s, site in sites.iterrows():
        n_screen = rng.poisson(p.screened_per_site)
        opened = pd.Timestamp(site.recruitment_start)
        window = (pd.Timestamp(site.recruitment_end) - opened).days
        days = np.sort(rng.integers(0, window + 1, size=n_screen))
        eligible = rng.random(n_screen) < p.p_eligible
        consent = eligible & (rng.random(n_screen) < p.p_consent)
        excl = _choice(rng, SCREEN_EXCLUSIONS, n_screen)
        decl = _choice(rng, DECLINE_REASONS, n_screen)
        for k in range(n_screen):
            rows.append({
                "site_id": site.site_id,
                "screen_date": (opened + pd.Timedelta(days=int(days[k]))).date().isoformat(),
                "eligible": "yes" if eligible[k] else "no",
                "exclusion_reason": "" if eligible[k] else excl[k],
                "consented": ("yes" if consent[k] else "no") if eligible[k] else "",
                "decline_reason": decl[k] if (eligible[k] and not consent[k]) else "",
            })
    screening = pd.DataFrame(rows)
    screening.insert(0, "screening_id", [f"SCR{i + 1:04d}" for i in range(len(screening))])
    consented = screening[screening.consented == "yes"].copy()
    n = len(consented)
    pids = [f"P{i + 1:04d}" for i in range(n)]
    screening["participant_id"] = ""
    screening.loc[consented.index, "participant_id"] = pids

    # ---- participants ----------------------------------------------------------------------
    site_idx = sites.reset_index().set_index("site_id").loc[consented.site_id, "index"].to_numpy()
    group = sites.client_group.to_numpy()[site_idx]
    arm = sites.arm.to_numpy()[site_idx]
    treated = (arm == "intervention").astype(float)
    age_mean = np.where(group == "psychosis", 33.0, np.where(group == "learning_disability", 38.0, 44.0))
    age = np.clip(np.rint(rng.normal(age_mean, 11.0)), 18, 80).astype(int)
    sex = np.where(rng.random(n) < 0.48, "female", "male")
    consent_date = pd.to_datetime(consented.screen_date.to_numpy()) + pd.to_timedelta(
        rng.integers(0, 8, size=n), unit="D")
    group_eff = np.array([p.group_effects[g] for g in group])
    u_part = rng.normal(0.0, p.participant_sd, size=n)
    eta_person = p.wellbeing_mean + group_eff + site_effect[site_idx] + u_part
    s_person = rng.normal(p.social_capital_mean, p.social_capital_sd, size=n) + 0.5 * (
        eta_person - p.wellbeing_mean) / p.participant_sd
    h_person = (p.health_wellbeing_corr * (eta_person - p.wellbeing_mean) / p.participant_sd
                + np.sqrt(1 - p.health_wellbeing_corr ** 2) * rng.normal(size=n) - 0.02 * (age - 40))

    received = np.where(arm == "intervention", rng.random(n) < p.p_received_intervention, False)
    sessions = np.where(received, rng.integers(1, 13, size=n), 0)

    # ---- waves -----------------------------------------------------------------------------
    timepoints = [("baseline", 0)] + [(f"m{m}", m) for m in p.followup_months]
    eta_bl = eta_person + rng.normal(0, p.occasion_sd, size=n)
    z_bl = eta_bl - p.wellbeing_mean
    withdraw = rng.random(n) < p.p_withdraw
    withdraw_after = rng.integers(0, len(p.followup_months), size=n)  # withdraw before this follow-up
    withdraw_reason = _choice(rng, WITHDRAWAL_REASONS, n)
    present = np.ones((n, len(timepoints)), dtype=bool)
    for j, _ in enumerate(p.followup_months):
        lin = (p.retention_logit_intercept[j] + p.retention_logit_wellbeing * z_bl
               + p.retention_logit_age * (age - 40)
               + np.array([p.retention_logit_group[g] for g in group]))
        present[:, j + 1] = rng.random(n) < 1 / (1 + np.exp(-lin))
        present[withdraw & (withdraw_after <= j), j + 1] = False

    baseline_date = consent_date + pd.to_timedelta(rng.integers(0, 15, size=n), unit="D")
    wave_tables = {}
    service_rows = []
    prev_date = baseline_date
    for j, (tp, month) in enumerate(timepoints):
        if j == 0:
            eta = eta_bl
            s = s_person
            h = h_person
            visit = baseline_date
        else:
            eta = (eta_person + p.time_trend_per_followup * j + p.effect_latent * treated
                   + rng.normal(0, p.occasion_sd, size=n))
            s = s_person + p.social_capital_effect * treated + rng.normal(0, 0.4, size=n)
            h = h_person + 0.3 * (eta - eta_bl) + rng.normal(0, 0.3, size=n)
            visit = baseline_date + pd.to_timedelta(
                np.rint(month * 30.44 + rng.normal(0, 7, size=n)).astype(int), unit="D")
        wem = _wemwbs_items(rng, eta, p, WEMWBS_ITEM_OFFSETS)
        eq_offsets = np.array([1.4, 0.9, 1.6, 2.0, 2.1])  # MO SC UA PD AD: higher level = worse
        eq = np.clip(np.rint(eq_offsets[None, :] - 0.75 * h[:, None]
                             - np.array([0, 0, 0, 0, 0.5])[None, :] * (eta - p.wellbeing_mean)[:, None]
                             + rng.normal(0, 0.6, size=(n, 5))), 1, 5).astype(int)
        rg_difficulty = np.linspace(-1.8, 1.8, 27)
        access = rng.random((n, 27)) < 1 / (1 + np.exp(-(s[:, None] - rg_difficulty[None, :])))
        who = rng.choice([1, 2, 3, 4], p=[0.05, 0.40, 0.40, 0.15], size=(n, 27))
        rg = np.where(access, who, 5)
        lonely = -0.9 * (eta - p.wellbeing_mean) / 0.6 - 0.3 * s + rng.normal(0, 0.6, size=n)
        ucla = np.clip(np.rint(1.9 + 0.55 * lonely[:, None] + rng.normal(0, 0.5, size=(n, 3))),
                       1, 3).astype(int)
        ons_base = 5.4 + 1.6 * (eta - p.wellbeing_mean) / 0.6
        ons = np.column_stack([
            ons_base + rng.normal(0, 1.2, n), ons_base + 0.6 + rng.normal(0, 1.2, n),
            ons_base + 0.2 + rng.normal(0, 1.4, n), 4.5 - 0.8 * (ons_base - 5) + rng.normal(0, 1.8, n)])
        ons = np.clip(np.rint(ons), 0, 10).astype(int)
        items = {f"wemwbs_{k + 1}": wem[:, k] for k in range(14)}
        items |= {f"eq5d5l_{k + 1}": eq[:, k] for k in range(5)}
        items |= {f"rguk_{k + 1}": rg[:, k] for k in range(27)}
        items |= {f"ucla3_{k + 1}": ucla[:, k] for k in range(3)}
        items |= {f"ons4_{k + 1}": ons[:, k] for k in range(4)}
        wave = pd.DataFrame({"participant_id": pids,
                             "visit_date": [d.date().isoformat() for d in visit]})
        for col, values in items.items():
            vals = pd.array(values, dtype="Int64")
            vals[rng.random(n) < p.p_item_missing] = pd.NA
            wave[col] = vals
        keep = present[:, j]
        wave_tables[f"wave_{tp}"] = wave[keep].reset_index(drop=True)

        # service use over the recall period (3 months before baseline; since last visit after)
        months = 3.0 if j == 0 else month - (timepoints[j - 1][1])
        need = np.exp(-0.35 * h)
        counts = {
            "gp_contacts": rng.poisson(0.7 * months * need),
            "ae_attendances": rng.poisson(0.05 * months * need),
            "inpatient_nights": np.where(rng.random(n) < 0.02 * months * need,
                                         rng.integers(1, 21, size=n), 0),
            "cmht_contacts": rng.poisson(np.where(group == "learning_disability", 0.3, 1.2) * months * need),
            "social_worker_contacts": rng.poisson(0.4 * months * need),
        }
        su = pd.DataFrame({"participant_id": pids, "timepoint": tp,
                           "recall_start": [d.date().isoformat() for d in (prev_date if j else
                                            baseline_date - pd.DateOffset(months=3))],
                           "recall_end": [d.date().isoformat() for d in visit]})
        for k in SERVICE_ITEMS:
            su[k] = counts[k]
        service_rows.append(su[keep])
        prev_date = visit

    withdrawal_date = []
    for i in range(n):
        if not withdraw[i]:
            withdrawal_date.append("")
            continue
        j = withdraw_after[i]  # withdrew after the visit before follow-up j
        anchor = baseline_date[i] + pd.Timedelta(days=int(30.44 * (
            0 if j == 0 else p.followup_months[j - 1])))
        withdrawal_date.append((anchor + pd.Timedelta(days=int(rng.integers(5, 60)))).date().isoformat())

    participants = pd.DataFrame({
        "participant_id": pids,
        "site_id": consented.site_id.to_numpy(),
        "consent_date": [d.date().isoformat() for d in consent_date],
        "age": age,
        "sex": sex,
        "sessions_attended": pd.array(np.where(arm == "intervention", sessions, 0), dtype="Int64"),
        "withdrawal_date": withdrawal_date,
        "withdrawal_reason": np.where(withdraw, withdraw_reason, ""),
    })
    participants.loc[arm != "intervention", "sessions_attended"] = pd.NA

    fidelity = sites[sites.arm == "intervention"][["site_id", "recruitment_end"]].copy()
    fidelity["assessment_date"] = fidelity.pop("recruitment_end")
    fidelity["fidelity_score"] = np.clip(np.rint(rng.normal(68, 12, size=len(fidelity))), 20, 100).astype(int)

    service_use = pd.concat(service_rows, ignore_index=True)
    truth = {
        "description": "Generating parameters and true effects of the synthetic Pathways demo trial.",
        "parameters": p.to_json_dict(),
        "n_sites": int(len(sites)),
        "n_screened": int(len(screening)),
        "n_consented": int(n),
        "true_effects": {
            "wemwbs_total": {f"m{m}": round(true_wemwbs_effect(p, j), 4)
                             for j, m in enumerate(p.followup_months)},
            "latent_wellbeing": p.effect_latent,
            "rguk_access_logit": p.social_capital_effect,
        },
        "variance_components_latent": {"site_sd": p.site_sd, "participant_sd": p.participant_sd,
                                       "occasion_sd": p.occasion_sd},
        "missingness": "MAR: follow-up response depends on baseline wellbeing, age and client group",
    }
    return {
        "sites": sites,
        "screening_log": screening,
        "participants": participants,
        **wave_tables,
        "service_use": service_use,
        "fidelity": fidelity.reset_index(drop=True),
        "truth": truth,
    }


def write_trial(out_dir: str | Path, params: SimulationParameters | None = None) -> list[Path]:
    """Simulate a trial and write its raw files (CSV, UTF-8, LF) and ``truth.json``.

    Byte-identical output for identical parameters.  Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = simulate_trial(params)
    written = []
    for name, obj in tables.items():
        if name == "truth":
            path = out / "truth.json"
            path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        else:
            path = out / f"{name}.csv"
            obj.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Write a synthetic Pathways pilot trial.")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=SimulationParameters.seed)
    ap.add_argument("--n-sites", type=int, default=SimulationParameters.n_sites)
    ap.add_argument("--screened-per-site", type=float, default=SimulationParameters.screened_per_site)
    ap.add_argument("--trial-id", default=SimulationParameters.trial_id)
    a = ap.parse_args(argv)
    params = SimulationParameters(seed=a.seed, n_sites=a.n_sites,
                                  screened_per_site=a.screened_per_site, trial_id=a.trial_id)
    for path in write_trial(a.out_dir, params):
        print(path)


if __name__ == "__main__":
    main()
