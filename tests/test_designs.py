"""The designs of docs/designs.md end to end (single-arm, multi-centre individually randomised,
baseline only) and the rules that depend on the design: nothing about a control group in a
single-arm study, indicators whose data were not collected said to be so, unknown attendance
never counted as zero, outcome direction deciding signs and wording."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from analysis import feasibility as feas
from analysis import outcomes
from analysis.config import ConfigError, load_config, primary_timepoint, validate_config
from analysis.pipeline import prepare
from conftest import fast_analysis, visible_text
from test_e2e import run_snakemake

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path_factory, name: str, config: str, edit=None) -> dict:
    base = tmp_path_factory.mktemp(name)
    cfg = yaml.safe_load((ROOT / config).read_text())
    cfg["data"]["raw_dir"] = str(ROOT / cfg["data"]["raw_dir"])
    full = validate_config(copy.deepcopy(cfg))
    fast_analysis(full)
    for k in ("outcomes", "economics", "report"):
        cfg[k] = full[k]
    if edit:
        edit(cfg)
    cfgfile = base / "trial.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    work = base / "run"
    work.mkdir()
    res = run_snakemake(work, cfgfile)
    assert res.returncode == 0, res.stderr[-4000:]
    rep = work / "reports" / cfg["trial_id"]
    truth = Path(cfg["data"]["raw_dir"]) / "truth.json"
    return dict(work=work, rep=rep, cfg=load_config(cfgfile),
                truth=json.loads(truth.read_text()) if truth.exists() else None)


# ---- single-arm study --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return _run(tmp_path_factory, "single", "config/single_arm.yaml")


def _texts(rep: Path):
    for p in sorted(rep.rglob("*")):
        if p.suffix in (".csv", ".html", ".json", ".svg", ".ipynb"):
            yield p, visible_text(p.read_text(encoding="utf-8", errors="ignore"))


def test_single_arm_outputs_never_mention_a_control_group(single):
    """No output of a single-arm run names a control arm or a between-arm difference ('disclosure
    control' and the word 'controlled' in a cited title are the only uses of the word)."""
    seen = 0
    for path, text in _texts(single["rep"]):
        seen += 1
        cleaned = re.sub(r"(?i)disclosure[- ]control|controlled", "", text)
        assert not re.search(r"(?i)control", cleaned), (path, re.search(r"(?i).{60}control.{60}", cleaned))
        assert "vs control" not in text and " minus " not in cleaned.lower(), path
        assert "suppressed to suppressed" not in text, path  # a withheld CI is one word, not a range
    assert seen > 15
    eff = pd.read_csv(single["rep"] / "tables/effects.csv")
    assert set(eff.term) == {outcomes.CHANGE_TERM}
    assert "n_control" not in eff.columns and "n_intervention" not in eff.columns
    flow = pd.read_csv(single["rep"] / "tables/flow_counts.csv", keep_default_na=False)
    assert "allocated_sites" not in set(flow.stage)  # no allocation step
    assert set(flow.arm) <= {"all", "intervention"}


def test_single_arm_changes_are_the_paired_and_mixed_model_estimates(single):
    """Paired change (t interval, SRM) equals a direct computation from the linked table; the
    primary mixed model's change is near the simulated truth, for everyone and per population."""
    cfg = single["cfg"]
    t = prepare(cfg)
    lk = t["linked"]
    eff = pd.read_csv(single["rep"] / "tables/effects.csv")
    pops = set(eff.population)
    assert pops == {"all", "service_user", "staff"}
    y = cfg["primary"]["outcome"]  # the SWEMWBS metric score; truth.json has its true changes
    base = lk[lk.timepoint == "baseline"].set_index("participant_id")[y]
    for tp in ("m6", "m12"):
        fu = lk[lk.timepoint == tp].set_index("participant_id")[y]
        ch = (fu - base).dropna().to_numpy()
        r = eff[(eff.outcome == y) & (eff.timepoint == tp) & (eff.analysis == "paired_change")
                & (eff.population == "all")].iloc[0]
        n = len(ch)
        half = stats.t.ppf(0.975, n - 1) * ch.std(ddof=1) / np.sqrt(n)
        assert r.n == n and r.estimate == pytest.approx(ch.mean(), rel=1e-10)  # tables keep 12 digits
        assert (r.ci_low, r.ci_high) == pytest.approx((ch.mean() - half, ch.mean() + half), rel=1e-10)
        assert r.standardised_effect == pytest.approx(ch.mean() / ch.std(ddof=1), rel=1e-10)
        truth = single["truth"]["true_mean_change"]
        for pop in ("all", "service_user", "staff"):
            m = eff[(eff.outcome == y) & (eff.timepoint == tp) & (eff.analysis == "primary")
                    & (eff.population == pop)].iloc[0]
            # the truth mixes populations at the generating share; the enrolled mix is close
            assert abs(m.estimate - truth[y][tp][pop]) / m.se < 3.5, (tp, pop, m.estimate, m.se)
    prim = eff[eff.primary]
    assert len(prim) == 1 and prim.iloc[0].timepoint == primary_timepoint(cfg)


def test_single_arm_flow_and_feasibility(single):
    f = pd.read_csv(single["rep"] / "tables/feasibility.csv", keep_default_na=False)
    assert set(f.arm) == {"all"}
    rate = f[f.indicator == "recruitment_rate"].iloc[0]
    assert rate.unit == "participants per month"  # from feasibility.recruitment_period
    receipt = f[f.indicator == "intervention_receipt"].iloc[0]
    parts = pd.read_csv(ROOT / "data/raw/single_arm/participants.csv", dtype=str, keep_default_na=False)
    known = parts.sessions_attended != ""
    assert int(receipt.denominator) == int(known.sum()) < len(parts)  # unknown attendance left out
    assert int(receipt.numerator) == int((parts.sessions_attended[known].astype(int) >= 1).sum())


# ---- multi-centre individually randomised trial --------------------------------------------------

@pytest.fixture(scope="module")
def individual(tmp_path_factory):
    return _run(tmp_path_factory, "individual", "config/individual.yaml")


def test_individual_trial_model_adjusts_for_centre_and_strata(individual):
    eff = pd.read_csv(individual["rep"] / "tables/effects.csv")
    prim = eff[(eff.analysis == "primary") & (eff.term == outcomes.TERM)]
    for model in prim.model:
        assert "(1 | participant_id)" in model and "(1 | site_id)" not in model
        assert "site_id" in model and "referral_route" in model
    truth = individual["truth"]["true_effects"]
    for y in ("wemwbs_total", "weekly_activity_hours"):
        for r in prim[prim.outcome == y].itertuples():
            assert abs(r.estimate - truth[y][r.timepoint]) / r.se < 3.5, (y, r.timepoint, r.estimate)
            assert r.n_sites == 5


def test_individual_trial_reports_what_was_not_collected(individual):
    f = pd.read_csv(individual["rep"] / "tables/feasibility.csv", keep_default_na=False)
    nc = f[f.unit == "not collected"]
    assert set(nc.indicator) >= {"eligibility", "consent"}
    assert all(d.startswith("not collected") for d in nc.definition)
    assert (nc.estimate == "").all() and (nc.numerator == "").all()
    flow = pd.read_csv(individual["rep"] / "tables/flow_counts.csv", keep_default_na=False)
    assert "screened" not in set(flow.stage) and "enrolled" in set(flow.stage)
    assert f[f.indicator == "recruitment_rate"].unit.iloc[0] == "participants per site-month"
    html = visible_text((individual["rep"] / "report.html").read_text())
    assert "not collected" in html
    for text in (html, visible_text((individual["rep"] / "funder/report.html").read_text())):
        assert "Not collected in this study" in text or "not collected" in text


# ---- a published trial end to end -----------------------------------------------------------------

def test_published_non_randomised_comparison_runs_end_to_end(tmp_path_factory):
    """NHEFS (causaldata::nhefs) through the whole workflow as a non-randomised individual design:
    the primary weighted estimate in the written table equals R's svyglm (golden file), the
    reports say allocation was not random, and no participant ID reaches the funder report."""
    run = _run(tmp_path_factory, "nhefs", "config/examples/nhefs.yaml")
    eff = pd.read_csv(run["rep"] / "tables/propensity_effects.csv")
    r = eff[eff.primary.astype(bool)].iloc[0]
    gold = pd.read_csv(ROOT / "tests/reference/golden/nhefs_effects.csv").set_index("analysis")
    g = gold.loc["weighted_baseline"]
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx((g.estimate, g.se, g.ci_low, g.ci_high),
                                                                    rel=1e-6)
    report = (run["rep"] / "report.html").read_text()
    assert "not random" in report
    funder = "".join(p.read_text() for p in (run["rep"] / "funder").glob("*.html"))
    assert funder
    ids = pd.read_csv(ROOT / "data/raw/nhefs/participants.csv", dtype=str).participant_id
    assert not [i for i in ids[:200] if i in funder]


def test_published_trial_with_unknown_follow_up_time_runs_end_to_end(tmp_path_factory):
    """MASS::anorexia through the whole workflow: one follow-up whose timing was never published
    (month null), no dates, screening or withdrawals; the primary ANCOVA equals R's lm."""
    run = _run(tmp_path_factory, "anorexia", "config/examples/anorexia.yaml")
    eff = pd.read_csv(run["rep"] / "tables/effects.csv")
    r = eff[eff.primary].iloc[0]
    gold = pd.read_csv(ROOT / "tests/reference/golden/examples_effects.csv")
    g = gold[(gold.example == "anorexia") & (gold.analysis == "primary")].iloc[0]
    assert (r.estimate, r.se, r.df) == pytest.approx((g.estimate, g.se, g.df), rel=1e-6)
    f = pd.read_csv(run["rep"] / "tables/feasibility.csv", keep_default_na=False)
    assert set(f[f.unit == "not collected"].indicator) >= {"eligibility", "consent", "recruitment_rate",
                                                           "withdrawal"}
    html = visible_text((run["rep"] / "report.html").read_text())
    assert "post (month" not in html  # the follow-up's month is not invented


# ---- baseline only, and a follow-up nobody answered ---------------------------------------------

def test_baseline_only_data_set_runs_feasibility_and_descriptives(tmp_path_factory):
    def baseline_only(cfg):
        cfg["trial_id"] = "baseline_only"
        cfg["data"]["waves"] = cfg["data"]["waves"][:1]
        cfg["primary"]["timepoint"] = None
        cfg["feasibility"]["progression_criteria"] = [
            c for c in cfg["feasibility"]["progression_criteria"] if not c.get("timepoint")]
    run = _run(tmp_path_factory, "baseline", "config/individual.yaml", baseline_only)
    eff = pd.read_csv(run["rep"] / "tables/effects.csv")
    assert len(eff) == 0
    desc = pd.read_csv(run["rep"] / "tables/descriptives.csv")
    assert set(desc.timepoint) == {"baseline"} and len(desc) > 0
    assert "no follow-up" in visible_text((run["rep"] / "report.html").read_text())
    log = (run["work"] / "logs/baseline_only/outcome.log").read_text()
    assert "no follow-up time point" in log


def test_outcome_not_measured_at_one_followup_is_dropped_with_a_note(demo_cfg, demo_prepared):
    """A secondary outcome with no data at one follow-up: the other follow-up is estimated and
    the empty one gets a row saying why, instead of a rank-deficient model."""
    cfg = fast_analysis(copy.deepcopy(demo_cfg))
    t = demo_prepared
    lk = t["linked"].copy()
    lk.loc[lk.timepoint == "m3", "ucla3_total"] = np.nan
    eff, _ = outcomes.analyse_outcome(lk, cfg, "ucla3_total", "m9", {"fidelity": t["fidelity"], "sites": t["sites"]})
    prim = eff[(eff.analysis == "primary")].set_index("timepoint")
    mods = eff[eff.analysis.str.startswith("effect_modification")]
    assert len(mods) and not (mods.timepoint == "m3").any()
    assert np.isfinite(prim.loc["m9", "estimate"])
    assert np.isnan(prim.loc["m3", "estimate"]) and "not estimable" in prim.loc["m3", "warnings"]
    assert "m3 not in the model" in prim.loc["m9", "warnings"]


# ---- rules that depend on the design or direction -------------------------------------------------

def test_unknown_attendance_is_not_zero():
    parts = pd.DataFrame(dict(participant_id=list("abcdef"), arm=["intervention"] * 5 + ["control"],
                              sessions_attended=pd.array([0, 3, None, 8, None, None], dtype="Int64"),
                              withdrawal_date=pd.NaT, site_id="S1"))
    lk = pd.DataFrame(dict(participant_id=list("abcdef"), timepoint=pd.Categorical(["baseline"] * 6),
                           arm=parts.arm, assessed=True, y=1.0))
    t = feas.feasibility_table(pd.DataFrame(columns=["site_id", "arm", "recruitment_start", "recruitment_end"]),
                               parts, None, lk, primary_outcome="y", arms=["control", "intervention"],
                               intervention_arm="intervention", measures=["y"])
    r = t[t.indicator == "intervention_receipt"].iloc[0]
    assert (r.numerator, r.denominator) == (2, 3)  # of the 3 with attendance recorded
    assert "2 with attendance not recorded are left out" in r.definition


def test_tipping_point_shifts_towards_worse_whatever_the_direction(demo_cfg, demo_prepared):
    """Higher is better (WEMWBS): imputed values move down; lower is better (UCLA-3): up.  The
    exact tipping value lies between the grid values where the conclusion changes."""
    cfg = fast_analysis(copy.deepcopy(demo_cfg))
    lk = demo_prepared["linked"]
    for y, sign in (("wemwbs_total", -1), ("ucla3_total", 1)):
        spec = outcomes.model_spec(cfg, y, lk)
        w, imps = outcomes.multiply_impute(lk, spec, m=3, iterations=3, seed=1)
        tip = outcomes.tipping_point(lk, spec, w, imps, "m9", [0.5, 1.0, 2.0, 3.0],
                                     direction=outcomes.outcome_direction(cfg, y))
        grid = tip[tip.kind == "grid"]
        assert (np.sign(grid.delta[grid.shift_sd > 0]) == sign).all()
        assert set(grid.towards) == {"worse"}
        base = grid[(grid.shift_sd == 0) & (grid.timepoint == "m9")].estimate.iloc[0]
        moved = grid[(grid.shift_sd == 3.0) & (grid.timepoint == "m9")].estimate.iloc[0]
        # shifting the intervention arm's missing values towards worse makes it look worse
        better = 1 if outcomes.outcome_direction(cfg, y) == "higher" else -1
        assert better * (moved - base) < 0
    exact = tip[tip.kind == "tipping value"]
    if len(exact):
        r = exact.iloc[0]
        flagged = grid[(grid.timepoint == "m9") & grid.tipping_point].shift_sd.iloc[0]
        assert 0 <= r.shift_sd <= flagged
        assert min(abs(r.ci_low), abs(r.ci_high)) < 0.05 * r.se * 10


def test_direction_comes_from_definitions_prescored_and_overrides(demo_cfg):
    from analysis.config import score_directions
    d = score_directions(demo_cfg)
    assert d["wemwbs_total"] == "higher" and d["ucla3_total"] == "lower"
    cfg = copy.deepcopy(demo_cfg)
    cfg["outcomes"]["direction"] = {"wemwbs_total": "lower"}
    assert score_directions(cfg)["wemwbs_total"] == "lower"
    btheb = load_config(ROOT / "config/examples/btheb.yaml")
    assert score_directions(btheb) == {"bdi": "lower"}


def test_forest_plot_orients_every_row_towards_better():
    from analysis.figures import forest_rows
    eff = pd.DataFrame(dict(outcome=["a", "b"], timepoint="m6", analysis="primary", term=outcomes.TERM,
                            population="all", estimate=[2.0, 2.0], ci_low=[1.0, 1.0], ci_high=[3.0, 3.0],
                            baseline_sd=[2.0, 2.0]))
    rows = forest_rows(eff, {"a": "higher", "b": "lower"})
    a, b = rows.set_index("outcome").loc["a"], rows.set_index("outcome").loc["b"]
    assert (a.x, a.lo, a.hi) == (1.0, 0.5, 1.5)
    assert (b.x, b.lo, b.hi) == (-1.0, -1.5, -0.5) and b.reversed


def test_config_refuses_what_a_design_cannot_mean():
    with pytest.raises(ConfigError, match="design.type"):
        validate_config({"trial_id": "t", "design": {"type": "crossover"}})
    with pytest.raises(ConfigError, match="design.clustered: replaced by design.type"):
        validate_config({"trial_id": "t", "design": {"clustered": False}})
    with pytest.raises(ConfigError, match="a cluster design .* needs the sites file"):
        validate_config({"trial_id": "t"})
    single = {"trial_id": "t", "design": {"type": "single_arm"}, "blinded": True,
              "outcomes": {"effect_modifiers": [{"variable": "age"}]}}
    with pytest.raises(ConfigError) as err:
        validate_config(single)
    assert "no allocation to blind" in str(err.value) and "single-arm study has none" in str(err.value)
    with pytest.raises(ConfigError, match="design.stratification: 'centre' is not declared under covariates"):
        validate_config({"trial_id": "t", "design": {"type": "individual", "stratification": ["centre"]}})
    with pytest.raises(ConfigError, match="indicator consent needs data.screening"):
        validate_config({"trial_id": "t", "design": {"type": "individual"}, "feasibility": {
            "progression_criteria": [{"indicator": "consent", "green": 0.6, "red": 0.4}]}})
    with pytest.raises(ConfigError, match="primary.outcome: 'bdi' is not a score"):
        validate_config({"trial_id": "t", "design": {"type": "individual"}, "primary": {"outcome": "bdi"}})
    ok = validate_config({"trial_id": "t", "design": {"type": "individual"}, "primary": {"outcome": "bdi"},
                          "prescored": {"bdi": {"min": 0, "max": 63, "integer": True, "direction": "lower"}}})
    assert ok["prescored"]["bdi"]["timepoints"] is None and ok["prescored"]["bdi"]["label"] is None


def test_new_instrument_definition_is_accepted_by_the_schema(tmp_path):
    """A trial's own instrument YAML (instrument_definitions) is accepted and scored like a
    built-in one, without code changes (docs/instruments.md)."""
    path = tmp_path / "gad2.yaml"
    path.write_text("""
id: gadtwo
name: Two-item anxiety screen (demo definition)
source: {citation: "demo"}
response: {codes: [0, 1, 2, 3]}
items: [{number: 1}, {number: 2}]
scoring: {method: sum, direction: lower}
missing: {max_missing: 0, max_missing_limit: 0}
verification: {items: {status: verified, source: demo}}
""", encoding="utf-8")
    cfg = validate_config({"trial_id": "t", "design": {"type": "individual"},
                           "instrument_definitions": [str(path)], "instruments": {"gadtwo": {}},
                           "primary": {"outcome": "gadtwo_total"}})
    from analysis.config import score_directions
    assert score_directions(cfg) == {"gadtwo_total": "lower"}
    with pytest.raises(ConfigError, match="instruments.nosuch: no instrument definition"):
        validate_config({"trial_id": "t", "design": {"type": "individual"}, "instruments": {"nosuch": {}},
                         "primary": {"outcome": "nosuch_total"}})
