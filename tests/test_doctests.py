"""The public statistical functions carry numpydoc docstrings (Parameters, Returns, References and
an Examples section, as pingouin writes them) whose examples are real doctests: run here, so
every test run (and CI) runs them.  Locally: ``pytest --doctest-modules analysis/qaly.py``."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

# module: the functions a statistician would call, each with a complete numpydoc docstring
STATISTICAL = {
    "analysis.feasibility": ["proportion_ci", "poisson_rate_ci", "cluster_proportion_ci", "cluster_rate_ci",
                             "recruitment_by_site", "safety_table", "feasibility_table"],
    "analysis.mi": ["default_methods", "impute"],
    "analysis.mi_pool": ["pool"],
    "analysis.bootstrap": ["bootstrap", "weighted_ols"],
    "analysis.qaly": ["auc", "discount_weight"],
    "analysis.economics": ["participant_table", "cost_effectiveness", "icer", "quadrant", "ceac", "wellby_value"],
    "analysis.costs": ["inflation_factor", "price_unit_costs", "service_costs"],
    "analysis.planning": ["planning_inputs", "sample_size_table", "sd_ucl_factor", "sim_lewis_factor", "sd_ci",
                          "correlation_ci", "cv_ci", "design_effect",
                          "power_individual", "n_per_arm_normal", "n_per_arm", "power_cluster", "sites_per_arm"],
    "analysis.progression": ["band", "decision", "overall_band", "evaluate", "red_threshold_test", "cluster_test"],
    "analysis.outcomes": ["describe", "standardised_effect", "ancova_effects", "analyse_outcome"],
    "analysis.table1": ["table1"],
    "analysis.scoring": ["score_responses", "reliability_table"],
    "analysis.lmm": ["fit_lmm"],
    "analysis.programme": ["against_targets", "survey_change", "wellby_table"],
    "analysis.value": ["ratio_status", "per_point"],
}
SECTIONS = ("Parameters", "Returns", "References", "Examples")


@pytest.mark.parametrize("module", sorted(STATISTICAL))
def test_doctests_pass(module):
    mod = importlib.import_module(module)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert res.attempted > 0 and res.failed == 0, f"{module}: {res.failed} of {res.attempted} examples failed"


@pytest.mark.parametrize("module", sorted(STATISTICAL))
def test_statistical_functions_have_numpydoc_sections_and_an_example(module):
    mod = importlib.import_module(module)
    for name in STATISTICAL[module]:
        doc = inspect.getdoc(getattr(mod, name)) or ""
        for section in SECTIONS:
            assert f"\n{section}\n{'-' * len(section)}\n" in doc, f"{module}.{name}: no {section} section"
        examples = doc.split("\nExamples\n", 1)[1]
        assert ">>> " in examples and f"{name}(" in examples, f"{module}.{name}: the example does not call it"
