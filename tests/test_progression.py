"""Progression criteria: RAG bands at the boundaries, the overall decision, the one-sided test
against the RED threshold (against binomial / Poisson tails summed by hand), and clear errors."""

import copy
import math

import numpy as np
import pandas as pd
import pytest

from analysis import feasibility as feas
from analysis import progression as prog
from analysis.config import ConfigError, validate_config


def _row(indicator, k, n, timepoint="", arm="all", unit="proportion"):
    est, lo, hi = feas.proportion_ci(k, n) if unit == "proportion" else feas.poisson_rate_ci(k, n)
    return dict(indicator=indicator, timepoint=timepoint, arm=arm, numerator=k, denominator=n,
                estimate=est, ci_low=lo, ci_high=hi, ci_method="x", unit=unit, definition="")


@pytest.fixture
def table():
    return pd.DataFrame([
        _row("consent", 14, 20),                 # exactly 0.7
        _row("retention", 12, 20, "m9"),          # exactly 0.6
        _row("retention", 11, 20, "m3"),          # 0.55
        _row("withdrawal", 2, 20),                # exactly 0.1
        _row("adherence", 0, 0, arm="intervention"),
        _row("recruitment_rate", 30, 15.0, unit="participants per site-month"),  # exactly 2
    ])


@pytest.mark.parametrize("est,band", [(0.7, "GREEN"), (0.71, "GREEN"), (0.69999, "AMBER"), (0.6, "AMBER"),
                                      (0.59999, "RED"), (0.0, "RED")])
def test_band_higher_is_better_boundaries(est, band):
    assert prog.band(est, green=0.7, red=0.6, direction="higher") == band


@pytest.mark.parametrize("est,band", [(0.1, "GREEN"), (0.05, "GREEN"), (0.10001, "AMBER"), (0.2, "AMBER"),
                                      (0.20001, "RED"), (1.0, "RED")])
def test_band_lower_is_better_boundaries(est, band):
    assert prog.band(est, green=0.1, red=0.2, direction="lower") == band


def test_band_equal_thresholds_has_no_amber():
    assert prog.band(0.5, 0.5, 0.5) == "GREEN" and prog.band(0.49, 0.5, 0.5) == "RED"
    assert prog.band(0.5, 0.5, 0.5, "lower") == "GREEN" and prog.band(0.51, 0.5, 0.5, "lower") == "RED"


def test_band_rejects_inconsistent_thresholds_and_marks_nan():
    with pytest.raises(ValueError, match="need red <= green"):
        prog.band(0.5, green=0.6, red=0.7, direction="higher")
    with pytest.raises(ValueError, match="need red >= green"):
        prog.band(0.5, green=0.3, red=0.2, direction="lower")
    assert prog.band(float("nan"), 0.7, 0.6) == "NOT ESTIMABLE"


@pytest.mark.parametrize("bands,decision", [
    (["GREEN", "GREEN"], "go: proceed to the definitive trial"),
    (["GREEN", "AMBER"], "proceed with amendments"),
    (["AMBER", "RED", "GREEN"], "stop or reconsider"),
    (["RED", "NOT ESTIMABLE"], "stop or reconsider"),
    (["AMBER", "NOT ESTIMABLE"], "undetermined: at least one criterion could not be estimated"),
    ([], None),
])
def test_overall_decision(bands, decision):
    assert prog.decision(bands) == decision


def test_evaluate_rows_exactly_on_thresholds(table):
    criteria = [
        dict(indicator="consent", green=0.7, red=0.5),                                 # on green -> GREEN
        dict(indicator="retention", timepoint="m9", green=0.8, red=0.6),               # on red -> AMBER
        dict(indicator="retention", timepoint="m3", green=0.8, red=0.6, denominator="allocated"),  # below red
        dict(indicator="withdrawal", direction="lower", green=0.1, red=0.2),           # on green (lower)
        dict(indicator="recruitment_rate", green=3.0, red=2.0),                        # on red -> AMBER
        dict(indicator="adherence", arm="intervention", green=0.8, red=0.5),           # 0/0
    ]
    out = prog.evaluate(table, [dict(c, direction=c.get("direction", "higher")) for c in criteria])
    assert list(out.band) == ["GREEN", "AMBER", "RED", "GREEN", "AMBER", "NOT ESTIMABLE"]
    assert list(out.denominator_of) == ["eligible", "allocated", "allocated", "allocated", "site-months open",
                                        "allocated to intervention with attendance recorded"]
    banded = prog.add_bands(table, out)
    assert list(banded.band) == ["GREEN", "AMBER", "RED", "GREEN", "NOT ESTIMABLE", "AMBER"]
    assert prog.decision(list(out.band)) == "stop or reconsider"


def _binom_upper_tail(k, n, p):
    return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))


def test_one_sided_test_against_red_matches_hand_summed_tails(table):
    criteria = [dict(indicator="consent", green=0.8, red=0.5, direction="higher"),
                dict(indicator="withdrawal", green=0.05, red=0.25, direction="lower"),
                dict(indicator="recruitment_rate", green=3.0, red=1.5, direction="higher")]
    out = prog.evaluate(table, criteria, test=True).set_index("indicator")
    # H0: p <= 0.5 vs H1: p > 0.5 with 14/20: P(X >= 14 | n=20, p=0.5)
    assert out.loc["consent", "p_value_vs_red"] == pytest.approx(_binom_upper_tail(14, 20, 0.5), rel=1e-12)
    assert out.loc["consent", "p_value_vs_red"] == pytest.approx(0.057659149169921875, rel=1e-12)
    # H0: p >= 0.25 vs H1: p < 0.25 with 2/20: P(X <= 2 | n=20, p=0.25)
    lower = 1 - _binom_upper_tail(3, 20, 0.25)
    assert out.loc["withdrawal", "p_value_vs_red"] == pytest.approx(lower, rel=1e-10)
    # H0: rate <= 1.5 vs H1: rate > 1.5 with 30 events in 15 site-months: P(X >= 30 | mean 22.5)
    mu = 22.5
    tail = 1 - sum(math.exp(-mu) * mu ** j / math.factorial(j) for j in range(30))
    assert out.loc["recruitment_rate", "p_value_vs_red"] == pytest.approx(tail, rel=1e-9)
    assert "H0: p <= 0.5" in out.loc["consent", "test"]
    assert np.isnan(prog.evaluate(table, criteria[:1]).p_value_vs_red.iloc[0])  # test off by default


@pytest.mark.parametrize("criterion,message", [
    (dict(indicator="retention", green=0.8, red=0.6), r"progression_criteria\[0\]: no feasibility row .*'m3'"),
    (dict(indicator="consent", green=0.8, red=0.6, denominator="screened"), "differs from .*'eligible'"),
    (dict(indicator="consent", green=80, red=60), r"must lie in \[0, 1\]"),
    (dict(indicator="consent", green=0.5, red=0.6), "need red <= green"),
    (dict(indicator="nonsense", green=0.8, red=0.6), "no feasibility row"),
])
def test_evaluate_errors_name_the_criterion(table, criterion, message):
    with pytest.raises(ValueError, match=message):
        prog.evaluate(table, [dict(criterion, direction="higher")])


def test_duplicate_criterion_is_an_error(table):
    c = dict(indicator="consent", green=0.7, red=0.5, direction="higher")
    with pytest.raises(ValueError, match=r"\[1\]: repeats criterion 0"):
        prog.evaluate(table, [c, c])


def test_config_schema_for_criteria(demo_cfg_session):
    cfg = copy.deepcopy(demo_cfg_session)
    assert all(c["direction"] in ("higher", "lower") for c in cfg["feasibility"]["progression_criteria"])
    bad = copy.deepcopy(cfg)
    bad["feasibility"]["progression_criteria"] = [dict(indicator="consent", green=0.6, red=0.4, direction="up")]
    with pytest.raises(ConfigError, match=r"feasibility.progression_criteria\[0\].direction"):
        validate_config(bad)
    bad["feasibility"]["progression_criteria"] = [dict(indicator="consent", green=0.6)]
    with pytest.raises(ConfigError, match="'red' is a required property"):
        validate_config(bad)
    ok = copy.deepcopy(cfg)
    ok["feasibility"]["progression_criteria"] = [dict(indicator="consent", green=0.6, red=0.4)]
    assert validate_config(ok)["feasibility"]["progression_criteria"][0]["direction"] == "higher"
