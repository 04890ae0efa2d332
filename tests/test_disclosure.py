import pandas as pd
import pytest

from analysis.disclosure import Policy, primary_mask, secondary_mask, suppress_table
from output_scan import check_no_small_counts


def test_primary_rule_default_and_zero():
    s = pd.Series([0, 1, 4, 5, 12])
    assert primary_mask(s, Policy()).tolist() == [False, True, True, False, False]
    assert primary_mask(s, Policy(suppress_zero=True)).tolist() == [True, True, True, False, False]
    assert primary_mask(s, Policy(threshold=10)).tolist() == [False, True, True, True, False]


def test_threshold_boundary():
    p = Policy(threshold=5)
    assert p.is_small(4) and not p.is_small(5)


def test_secondary_protects_against_differencing():
    parts = pd.Series([3, 40, 9], index=["a", "b", "c"])
    m = secondary_mask(parts, primary_mask(parts, Policy()))
    # 'a' is small; with the total shown, a + ... could be recovered, so the next-smallest goes too
    assert m.tolist() == [True, False, True]
    # two suppressed parts cannot be separated: nothing more to do
    parts2 = pd.Series([3, 2, 50])
    assert secondary_mask(parts2, primary_mask(parts2, Policy())).tolist() == [True, True, False]
    # total not shown: no secondary suppression needed
    assert secondary_mask(parts, primary_mask(parts, Policy()), total_shown=False).tolist() == [True, False, False]


def test_suppress_table_arms_and_total():
    df = pd.DataFrame({"indicator": ["withdrawal"] * 3, "arm": ["all", "control", "intervention"],
                       "numerator": [7, 3, 4], "denominator": [160, 85, 75],
                       "estimate": [7 / 160, 3 / 85, 4 / 75]})
    out, mask = suppress_table(df, "numerator", ["estimate"], ["indicator"], part_col="arm")
    assert mask.tolist() == [False, True, True]
    assert out.numerator.tolist() == [7, "<5", "<5"]
    assert out.estimate.tolist()[1:] == ["suppressed", "suppressed"]
    # one small arm, the other large: the large arm is suppressed too, else 7 - 40 reveals it
    df2 = df.assign(numerator=[44, 4, 40])
    out2, mask2 = suppress_table(df2, "numerator", ["estimate"], ["indicator"], part_col="arm")
    assert mask2.tolist() == [False, True, True]
    assert out2.numerator.tolist() == [44, "<5", "*"]
    # a single part equal to the total: the total goes as well
    df3 = pd.DataFrame({"g": ["x", "x"], "arm": ["all", "intervention"], "numerator": [3, 3], "estimate": [0.1, 0.1]})
    _, mask3 = suppress_table(df3, "numerator", ["estimate"], ["g"], part_col="arm")
    assert mask3.tolist() == [True, True]


@pytest.mark.parametrize("values, bad", [(["12", "<5", "0", "5"], []), (["3", "160", "2.5"], ["3"]),
                                         (["1,234", "4"], ["4"])])
def test_output_scanner(values, bad):
    assert check_no_small_counts(values) == bad


def test_suppressed_total_needs_no_secondary_protection():
    # withdrawn (total 2) by reason: total is itself suppressed, zeros stay visible
    df = pd.DataFrame({"stage": ["w"] * 4, "reason": ["", "consent", "moved", "unwell"], "n": [2, 2, 0, 0]})
    out, mask = suppress_table(df, "n", [], ["stage"], part_col="reason", total_label="")
    assert mask.tolist() == [True, True, False, False]


def test_identity_across_stages_is_protected():
    # allocated 85 = assessed 73 + lost 10 + withdrawn 2: hiding 2 alone is undone by subtraction
    df = pd.DataFrame({"stage": ["allocated", "assessed", "lost", "withdrawn"], "n": [85, 73, 10, 2]})
    out, mask = suppress_table(df, "n", [], ["stage"], extra_groups=[(0, [1, 2, 3])])
    assert mask.tolist() == [False, False, True, True]
    assert out.n.tolist() == [85, 73, "*", "<5"]  # 10 is withheld to protect the 2, not small itself
