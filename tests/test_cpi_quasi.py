"""The non-randomised comparison example (config/cpi_quasi.yaml, data/raw/cpi_quasi) end to end
through Snakemake: the propensity-weighted primary estimate recovers the known truth where the
unweighted analyses are biased, balance improves, every report says plainly that allocation was
not random, the economic evaluation is propensity weighted (with the unweighted result as a
labelled sensitivity row) and says so, and no identifier reaches the new tables.
Also the config refusals of a non-randomised design."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.config import ConfigError, validate_config
from conftest import visible_text
from test_designs import _run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def quasi(tmp_path_factory):
    return _run(tmp_path_factory, "cpi_quasi", "config/cpi_quasi.yaml")


def test_weighted_primary_recovers_the_truth_the_unweighted_analyses_miss(quasi):
    rep, truth = quasi["rep"], quasi["truth"]["true_effects"]["swemwbs_total"]["m12"]["ATT"]
    ps = pd.read_csv(rep / "tables" / "propensity_effects.csv")
    prim = ps[ps.primary]
    assert len(prim) == 1
    p = prim.iloc[0]
    assert (p.outcome, p.timepoint, p.analysis, p.estimand) == ("swemwbs_total", "m12", "weighted_covariates", "ATT")
    assert p.ci_low < truth < p.ci_high
    naive = ps.query("outcome == 'swemwbs_total' and timepoint == 'm12' and analysis == 'unweighted_baseline'")
    naive = naive.iloc[0]
    mixed = pd.read_csv(rep / "tables" / "effects.csv").query(
        "outcome == 'swemwbs_total' and timepoint == 'm12' and analysis == 'primary'").iloc[0]
    for biased in (naive, mixed):  # confounded: about 3 times the truth, CI excludes it
        assert biased.ci_low > truth
        assert abs(biased.estimate - truth) > 3 * abs(p.estimate - truth)
    # every outcome x follow-up x analysis has an estimate, E-values >= 1
    assert len(ps) == 4 * 2 * 4 and ps.estimate.notna().all()
    w = ps[ps.analysis.str.startswith("weighted")]
    assert (w.e_value >= 1).all() and (w.e_value_ci >= 1).all() and (w.e_value_ci <= w.e_value).all()
    assert (ps.df == 14 - ps.analysis.map({"unweighted_baseline": 3, "weighted_baseline": 3,
                                           "unweighted_covariates": 7, "weighted_covariates": 7})).all()


def test_balance_improves_and_weights_are_summarised(quasi):
    rep = quasi["rep"]
    bal = pd.read_csv(rep / "tables" / "propensity_balance.csv", keep_default_na=False)
    assert set(bal.covariate) == {"client_group", "age", "sex", "swemwbs_total_bl"}
    age = bal[bal.covariate == "age"].iloc[0]
    assert abs(age.smd_before) > 1 and abs(age.smd_after) < 0.2
    assert bal.smd_before.abs().max() > 1.2 and bal.smd_after.abs().max() < 0.3
    s = pd.read_csv(rep / "tables" / "propensity_summary.csv").iloc[0]
    assert s.estimand == "ATT" and s.n_sites_intervention == 7 and s.n_sites_comparison == 7
    assert s.ess_intervention == pytest.approx(s.n_intervention)  # ATT: intervention weights are 1
    assert 10 < s.ess_comparison < s.n_comparison
    model = pd.read_csv(rep / "tables" / "propensity_model.csv")
    assert list(model.term) == ["(Intercept)", "client_group[mental_health]", "client_group[older_adults]", "age",
                                "sex[male]"]
    assert (rep / "figures" / "love_plot.png").read_bytes()[:4] == b"\x89PNG"


def test_reports_say_allocation_was_not_random(quasi):
    rep = quasi["rep"]
    texts = {a: visible_text((rep / p).read_text()) for a, p in
             (("statistician", "report.html"), ("funder", "funder/report.html"), ("ethics", "ethics/report.html"))}
    for audience, t in texts.items():
        assert "allocation was NOT random" in t, audience
        assert "Randomised pilot" not in t and "Sites were randomised" not in t, audience
        if audience != "ethics":  # the flow diagram's arm boxes
            assert "Assigned (not randomised) to" in t and "Allocated to" not in t, audience
    consort_svg = (rep / "figures" / "consort.svg").read_text()
    assert "Assigned (not randomised) to" in consort_svg and "Allocated to" not in consort_svg
    for audience in ("statistician", "funder"):
        t = texts[audience]
        assert "Propensity-weighted difference" in t and "E-value" in t, audience
        assert "ignore the non-random allocation" in t, audience
        assert "Propensity weighted:" in t and "economic evaluation compares the groups as they are" not in t, \
            audience  # the economic evaluation is weighted and says so
    assert "VanderWeele" in texts["statistician"] and "Li F, Zaslavsky AM, Landrum MB" in texts["statistician"]


def test_economic_evaluation_is_weighted_with_the_unweighted_result_alongside(quasi):
    cea = pd.read_csv(quasi["rep"] / "tables" / "cea.csv")
    main = cea[cea.analysis == "cea_qaly"].set_index("measure")
    un = cea[cea.analysis == "cea_qaly_unweighted"].set_index("measure")
    assert set(un.index) == {"delta_cost", "delta_qaly", "icer"}
    assert "propensity weighted (ATT)" in main.bootstrap["delta_cost"]
    # the default model-based intervals (economics.weighted_interval: model), described in full
    scheme = main.bootstrap["delta_cost"]
    assert "adjusted for the baseline values and the score covariates (client_group, age, sex)" in scheme
    assert "random agency intercept fitted by REML" in scheme and "Satterthwaite" in scheme
    assert "not a bootstrap" in scheme
    assert "propensity weighted" not in un.bootstrap["delta_cost"]
    # the plane's draws: none set aside, as many as configured, centred on the estimates
    reps = pd.read_parquet(quasi["rep"] / "tables" / "cea_bootstrap.parquet")
    assert not reps.set_aside.any() and len(reps) == quasi["cfg"]["economics"]["bootstrap"]["replicates"]
    assert abs(reps.delta_cost_cea_qaly.median() - main.estimate["delta_cost"]) < 0.2 * main.se["delta_cost"]
    # the two differ (weights change the estimate) and each has its interval
    assert abs(main.estimate["delta_cost"] - un.estimate["delta_cost"]) > 50
    for m in ("delta_cost", "delta_qaly"):
        assert main.ci_low[m] < main.estimate[m] < main.ci_high[m]
        assert un.ci_low[m] < un.estimate[m] < un.ci_high[m]


def test_no_identifier_in_the_propensity_outputs(quasi):
    rep = quasi["rep"]
    ids = pd.read_csv(quasi["cfg"]["data"]["raw_dir"] + "/participants.csv").participant_id
    for name in ("propensity_model", "propensity_balance", "propensity_effects", "propensity_summary"):
        text = (rep / "tables" / f"{name}.csv").read_text()
        assert "participant_id" not in text and not any(i in text for i in ids), name


def _cfg(**over):
    cfg = {"trial_id": "t", "design": {"type": "cluster", "allocation": "non_randomised"},
           "data": {"sites": "sites.csv"}, "propensity": {"covariates": ["client_group", "age"]}}
    for k, v in over.items():
        cfg[k] = v
    return cfg


def test_config_for_a_non_randomised_design():
    ok = validate_config(_cfg())
    assert ok["propensity"] == {"covariates": ["client_group", "age"], "estimand": "ATT", "stabilise": True,
                                "trim": 0, "outcome_adjustment": "covariates", "balance_threshold": 0.1}
    assert validate_config(_cfg(propensity={"covariates": ["wemwbs_total"]}))  # a score: its baseline value
    # an individual design is supported (participants in either group, no sites file needed) ...
    indiv = validate_config(_cfg(design={"type": "individual", "allocation": "non_randomised"},
                                 data={"sites": None}, propensity={"covariates": ["age"]}))
    assert indiv["design"]["allocation"] == "non_randomised"
    # ... but not with the weighted economic evaluation (checked for cluster designs only)
    with pytest.raises(ConfigError, match="economics.enabled: the propensity-weighted economic evaluation is "
                                          "supported for non-randomised cluster designs only"):
        validate_config(_cfg(design={"type": "individual", "allocation": "non_randomised"}, data={"sites": None},
                             propensity={"covariates": ["age"]}, economics={"enabled": True}))
    with pytest.raises(ConfigError, match="and individual designs .* only, not design.type single_arm"):
        validate_config(_cfg(design={"type": "single_arm", "allocation": "non_randomised"}))
    with pytest.raises(ConfigError, match="propensity.covariates: a non-randomised comparison needs"):
        validate_config(_cfg(propensity={}))
    with pytest.raises(ConfigError, match="propensity.covariates: 'income' is not a covariate or score"):
        validate_config(_cfg(propensity={"covariates": ["income"]}))
    with pytest.raises(ConfigError, match="applies to a non-randomised comparison only"):
        validate_config(_cfg(design={"type": "cluster"}))
    with pytest.raises(ConfigError, match="no allocation to blind"):
        validate_config(_cfg(blinded=True))
    with pytest.raises(ConfigError, match="propensity.estimand"):
        validate_config(_cfg(propensity={"covariates": ["age"], "estimand": "ATC"}))
    with pytest.raises(ConfigError, match="design.allocation"):
        validate_config(_cfg(design={"type": "cluster", "allocation": "quasi"}))


def test_registered_plan_covers_the_propensity_keys_only_when_used(root):
    """A randomised trial's SAP plan is unchanged by the new keys (a lock made before them still
    matches); a non-randomised one registers the allocation and every propensity key."""
    from analysis import sap
    from analysis.config import load_config
    demo = sap.plan_of(load_config(root / "config/config.yaml"), base=root)
    assert "allocation" not in demo["design"] and "propensity" not in demo
    quasi = sap.plan_of(load_config(root / "config/cpi_quasi.yaml"), base=root)
    assert quasi["design"]["allocation"] == "non_randomised"
    assert quasi["propensity"]["estimand"] == "ATT" and quasi["propensity"]["covariates"] == ["client_group", "age",
                                                                                              "sex"]
