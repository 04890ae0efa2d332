"""The NHEFS example (config/examples/nhefs.yaml, data/raw/nhefs): a non-randomised comparison in
an individual design on published data (Hernán & Robins 2020, chapter 12; causaldata::nhefs).

Pathways' propensity analysis, run on the linked table that ingest -> score -> link builds from
the committed raw files, is compared with R (tests/reference/nhefs_golden.R, glm + weights and
balance by hand + survey::svyglm with each participant a PSU; output in golden/nhefs_*.csv) to
1e-6 relative: score-model coefficients and SEs, every participant's score and weight, the
balance table, and the four outcome regressions (estimate, SE, df, CI, n).  The book's own
analysis (score refitted on the 1,566 with a 1982 weight, weight change on quitting, GEE-type
robust SE) is reproduced with Pathways' functions too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import propensity
from analysis.config import ConfigError, load_config, primary_timepoint, validate_config

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "reference" / "golden"
RAW = ROOT / "data" / "raw" / "nhefs"
RTOL = 1e-6


def golden(name: str) -> pd.DataFrame:
    return pd.read_csv(GOLDEN / f"nhefs_{name}.csv", keep_default_na=False, na_values=["NA"])


@pytest.fixture(scope="module")
def nhefs():
    from analysis.pipeline import prepare

    cfg = load_config(ROOT / "config" / "examples" / "nhefs.yaml")
    cfg["data"] = dict(cfg["data"], raw_dir=str(RAW))
    linked = prepare(cfg)["linked"]
    res = propensity.analyse(linked, cfg, [cfg["primary"]["outcome"]], primary_timepoint(cfg))
    return dict(cfg=cfg, linked=linked, res=res)


def test_golden_files_were_made_from_the_committed_raw_files():
    inputs = golden("inputs")
    assert sorted(inputs.file) == sorted(p.name for p in RAW.glob("*.csv"))
    for r in inputs.itertuples():
        assert hashlib.md5((RAW / r.file).read_bytes()).hexdigest() == r.md5, r.file


def test_score_model_and_weights_match_r(nhefs):
    cfg, res = nhefs["cfg"], nhefs["res"]
    model, g = res["model"], golden("model")
    assert len(model) == len(g) == 19  # intercept + 18 columns (factor levels but the first)
    np.testing.assert_allclose(model.estimate, g.estimate, rtol=RTOL)
    np.testing.assert_allclose(model.se, g.se, rtol=RTOL)
    base, covs = propensity.participant_table(nhefs["linked"], cfg)
    ps = propensity.propensity_scores(base, "treated", covs)
    w = propensity.ps_weights(ps, base.treated, "ATE", stabilise=True)
    gw = golden("weights").set_index("participant_id")
    assert len(w) == len(gw) == 1629 and set(w.index) == set(gw.index)
    np.testing.assert_allclose(w.ps.reindex(gw.index), gw.ps, rtol=RTOL)
    np.testing.assert_allclose(w.weight.reindex(gw.index), gw.weight, rtol=RTOL)
    s = res["summary"].iloc[0]
    assert (s.n_participants, s.n_missing_covariates, s.n_intervention, s.n_comparison) == (1629, 0, 428, 1201)
    assert s.estimand == "ATE" and bool(s.stabilised)


def test_balance_table_matches_r(nhefs):
    bal = nhefs["res"]["balance"]
    g = golden("balance")
    g["covariate"] = g.covariate.replace({"weight_bl": "weight"})  # the score covariate: baseline weight
    assert bal[["covariate", "level"]].astype(str).values.tolist() == g[["covariate", "level"]].astype(str).values.tolist()
    for col in ("smd_before", "smd_after"):
        np.testing.assert_allclose(bal[col], g[col], rtol=RTOL, atol=1e-12, err_msg=col)
    for col in ("variance_ratio_before", "variance_ratio_after"):
        np.testing.assert_allclose(bal[col].astype(float), g[col].astype(float), rtol=RTOL, err_msg=col)
    assert bal.smd_before.abs().max() > 0.3 and not bal.imbalanced_after.any()


def test_weighted_outcome_regressions_match_r(nhefs):
    eff = nhefs["res"]["effects"].set_index("analysis")
    g = golden("effects").set_index("analysis")
    assert sorted(eff.index) == sorted(g.index)
    for an, r in g.iterrows():
        e = eff.loc[an]
        assert e.n == r.n == 1566 and e.n_clusters == 1566, an  # each participant is their own cluster
        for col in ("estimate", "se", "df", "ci_low", "ci_high"):
            assert e[col] == pytest.approx(r[col], rel=RTOL), (an, col)
    prim = eff[eff.primary.astype(bool)]
    assert list(prim.index) == ["weighted_baseline"] and prim.timepoint.iloc[0] == "y1982"


def test_the_books_analysis_with_pathways_functions():
    """Score and stabilised weights refitted on the 1,566 with a 1982 weight and the weighted
    regression of the weight change on quitting, as the book: the estimate equals R's; the SE
    is R's HC0 (GEE) SE times sqrt(n / (n - 1)), the small-sample factor of svyglm that
    Pathways uses."""
    p = pd.read_csv(RAW / "participants.csv", dtype={c: str for c in ("race", "education", "exercise", "active")})
    bl = pd.read_csv(RAW / "wave_baseline.csv").set_index("participant_id").weight
    fu = pd.read_csv(RAW / "wave_1982.csv").set_index("participant_id").weight
    d = p.set_index("participant_id").assign(treated=lambda x: (x.arm == "quit").astype(int),
                                             weight=bl, change=fu - bl).dropna(subset=["change"])
    covs = ["sex", "race", "age", "age_squared", "education", "smokeintensity", "smokeintensity_squared", "smokeyrs",
            "smokeyrs_squared", "exercise", "active", "weight", "wt71_squared"]
    w = propensity.ps_weights(propensity.propensity_scores(d, "treated", covs), d.treated, "ATE", stabilise=True)
    r = propensity.weighted_effect(d, "change", "treated", [], w.weight, None)
    book = golden("book").set_index("analysis").loc["book_stabilised"]
    n = len(d)
    assert n == book.n == 1566
    assert r["estimate"] == pytest.approx(book.estimate, rel=RTOL)
    assert r["se"] * np.sqrt((n - 1) / n) == pytest.approx(book.se, rel=RTOL)
    assert (round(book.estimate, 1), round(book.ci_low, 1), round(book.ci_high, 1)) == (3.4, 2.4, 4.5)


def test_individual_design_without_economics_only():
    cfg = {"trial_id": "t", "design": {"type": "individual", "allocation": "non_randomised"},
           "data": {"sites": None}, "propensity": {"covariates": ["age"]}, "economics": {"enabled": True}}
    with pytest.raises(ConfigError, match="config key economics.enabled"):
        validate_config(cfg)


def test_reports_describe_an_individual_design(nhefs):
    """The report's words follow the design: participants in two groups and a robust variance
    with each participant their own cluster, not sites."""
    from analysis.reporting import front, methods
    from analysis.reporting import propensity as section

    cfg = nhefs["cfg"]
    text, refs = methods._propensity_method(cfg)
    assert "each participant their own cluster" in text and "sites as clusters" not in text
    assert "intervention site" not in text and "ps_li_multilevel" not in refs
    assert "Participants in the group Quit smoking" in front.design_sentence(cfg)
    assert section.words(cfg)["group"] == "being in the intervention group"
    cluster = dict(cfg, design=dict(cfg["design"], type="cluster"))
    assert "sites as clusters" in methods._propensity_method(cluster)[0]
    assert section.words(cluster)["group"] == "being in an intervention site"


def test_from_the_books_model_to_pathways():
    """The two differences between the book's analysis and Pathways' (score fitted on the 1,566
    with a 1982 weight or on all 1,629; weight change or ANCOVA on baseline weight), each
    combination as R's svyglm with ids = ~1 (estimate and SE)."""
    p = pd.read_csv(RAW / "participants.csv", dtype={c: str for c in ("race", "education", "exercise", "active")})
    bl = pd.read_csv(RAW / "wave_baseline.csv").set_index("participant_id").weight
    fu = pd.read_csv(RAW / "wave_1982.csv").set_index("participant_id").weight
    d = p.set_index("participant_id").assign(treated=lambda x: (x.arm == "quit").astype(int), weight=bl,
                                             weight_fu=fu, change=fu - bl)
    covs = ["sex", "race", "age", "age_squared", "education", "smokeintensity", "smokeintensity_squared", "smokeyrs",
            "smokeyrs_squared", "exercise", "active", "weight", "wt71_squared"]
    cc = d.dropna(subset=["weight_fu"])
    for r in golden("steps").itertuples():
        fit_on = d if r.score == "score_1629" else cc
        w = propensity.ps_weights(propensity.propensity_scores(fit_on, "treated", covs), fit_on.treated, "ATE").weight
        y, x = ("change", []) if r.outcome_model == "change" else ("weight_fu", ["weight"])
        e = propensity.weighted_effect(cc, y, "treated", x, w, None)
        assert e["n"] == r.n and e["estimate"] == pytest.approx(r.estimate, rel=RTOL), r
        assert e["se"] == pytest.approx(r.se, rel=RTOL), r
