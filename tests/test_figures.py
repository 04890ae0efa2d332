"""The outcome figures (analysis/figures.py): the data behind each plot, its labels, and
byte-identical PNGs on a rerun.

The figure functions return PNG bytes; here ``figures._png`` is wrapped to keep the matplotlib
figure it is given, so the plotted points, error bars, titles, ticks and legends can be read
back and compared with the tables they were drawn from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import figures, outcomes

PNG = b"\x89PNG\r\n\x1a\n"
LABELS = {"wemwbs_total": "WEMWBS (wellbeing)", "ucla3_total": "UCLA-3 (loneliness)"}
ARMS = {"control": "Usual care", "intervention": "Connecting People"}


@pytest.fixture
def drawn(monkeypatch):
    """Figures drawn by the functions under test, kept open for inspection."""
    kept = []
    real = figures._png

    def keep(fig):
        kept.append(fig)
        return real(fig)
    monkeypatch.setattr(figures, "_png", keep)
    yield kept
    import matplotlib.pyplot as plt
    for f in kept:
        plt.close(f)


@pytest.fixture(scope="module")
def desc(demo_prepared):
    lk = demo_prepared["linked"]
    return pd.concat([outcomes.describe(lk, y) for y in LABELS], ignore_index=True)


def _errorbars(ax):
    """(label, x, y, lower, upper) of every errorbar series of an axes, in drawing order."""
    out = []
    for c in ax.containers:
        line, _, (bars, *_) = c.lines[0], c.lines[1], c.lines[2]
        x, y = line.get_data()
        segs = bars.get_segments()
        out.append((c.get_label(), np.asarray(x, float), np.asarray(y, float),
                    np.array([s[0] for s in segs]), np.array([s[1] for s in segs])))
    return out


def test_trajectories_plot_each_arms_means_and_cis_at_its_months(desc, drawn):
    png = figures.trajectories_png(desc, ARMS, LABELS, timepoints=["baseline", "m3", "m9"])
    assert png.startswith(PNG)
    fig = drawn[0]
    axes = [ax for ax in fig.axes if ax.has_data()]
    assert [ax.get_title() for ax in axes] == ["WEMWBS (wellbeing)", "UCLA-3 (loneliness)"]
    for ax, y in zip(axes, LABELS):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "3", "9"]
        assert ax.get_xlabel() == "Months from baseline" and ax.get_ylabel() == "Mean (95% CI)"
        series = _errorbars(ax)
        assert [s[0] for s in series] == ["Usual care", "Connecting People"]
        for (label, x, yy, lo, hi), arm in zip(series, ["control", "intervention"]):
            d = desc[(desc.outcome == y) & (desc.arm == arm)].set_index("timepoint").loc[["baseline", "m3", "m9"]]
            np.testing.assert_allclose(yy, d["mean"], rtol=1e-12)
            np.testing.assert_allclose(np.round(x), [0, 3, 9])  # months, arms dodged a little
            np.testing.assert_allclose(lo[:, 1], d.ci_low, rtol=1e-12)
            np.testing.assert_allclose(hi[:, 1], d.ci_high, rtol=1e-12)
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["Usual care", "Connecting People"]


def test_trajectories_use_time_point_names_when_a_month_is_unknown(desc, drawn):
    d = desc.copy()
    d.loc[d.timepoint == "m3", "month"] = np.nan
    figures.trajectories_png(d, ARMS, LABELS, level=0.9, timepoints=["baseline", "m3", "m9"])
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "m3", "m9"]
    assert ax.get_xlabel() == "Time point" and ax.get_ylabel() == "Mean (90% CI)"


def _effects():
    rows = []
    for y, bsd in (("wemwbs_total", 8.0), ("ucla3_total", 2.0)):
        for tp in ("m3", "m9"):
            for an, est in (("primary", 2.0), ("multiple_imputation", 1.5), ("complete_case", 2.5),
                            ("ancova", 9.0)):
                rows.append(dict(outcome=y, timepoint=tp, analysis=an, term="intervention vs control",
                                 estimate=est, ci_low=est - 1, ci_high=est + 1, baseline_sd=bsd,
                                 population="all"))
    rows.append(dict(rows[0], population="staff", estimate=50.0))  # other populations: not drawn
    return pd.DataFrame(rows)


def test_forest_plots_standardised_rows_right_means_better(drawn):
    eff = _effects()
    directions = {"ucla3_total": "lower"}
    png = figures.forest_png(eff, LABELS, directions, arm_labels=ARMS)
    assert png.startswith(PNG)
    ax = drawn[0].axes[0]
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()]), reverse=True)
    assert [t for _, t in ticks] == ["WEMWBS (wellbeing), m3", "WEMWBS (wellbeing), m9",  # top to bottom
                                     "UCLA-3 (loneliness), m3 (lower is better: sign reversed)",
                                     "UCLA-3 (loneliness), m9 (lower is better: sign reversed)"]
    assert ax.get_xlabel() == "Standardised difference, Connecting People minus Usual care (baseline SDs, 95% CI)"
    texts = [t.get_text() for t in ax.texts]
    assert "\u2190 Favours Usual care" in texts and "Favours Connecting People \u2192" in texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Primary model", "Multiple imputation",
                                                                   "Complete cases"]
    rows = figures.forest_rows(eff, directions)
    assert len(rows) == 16 and set(rows.analysis) == {"primary", "multiple_imputation", "complete_case", "ancova"}
    plotted = sorted((round(float(x[0]), 9), round(float(lo[0, 0]), 9), round(float(hi[0, 0]), 9))
                     for _, x, _, lo, hi in _errorbars(ax))
    expected = sorted((round(r.x, 9), round(r.lo, 9), round(r.hi, 9))
                      for r in rows[rows.analysis != "ancova"].itertuples())
    assert plotted == expected
    # WEMWBS primary: 2 / 8 SD; UCLA-3 (lower is better) primary: -(2 / 2) SD, CI reversed too
    w = rows[(rows.outcome == "wemwbs_total") & (rows.analysis == "primary")].iloc[0]
    u = rows[(rows.outcome == "ucla3_total") & (rows.analysis == "primary")].iloc[0]
    assert (w.x, w.lo, w.hi, u.x, u.lo, u.hi) == (0.25, 0.125, 0.375, -1.0, -1.5, -0.5)


def test_single_arm_forest_speaks_of_change_from_baseline(drawn):
    eff = _effects().assign(term="change from baseline")
    figures.forest_png(eff, LABELS, single_arm=True)
    ax = drawn[0].axes[0]
    assert ax.get_xlabel() == "Standardised change from baseline (baseline SDs, 95% CI)"
    assert "\u2190 Worse than baseline" in [t.get_text() for t in ax.texts]
    assert figures.forest_rows(_effects(), single_arm=True).empty  # between-arm rows are not drawn


def test_figures_are_byte_identical_on_a_rerun_and_carry_no_timestamp(desc):
    a = figures.trajectories_png(desc, ARMS, LABELS)
    assert a == figures.trajectories_png(desc, ARMS, LABELS)
    b = figures.forest_png(_effects(), LABELS, {"ucla3_total": "lower"}, arm_labels=ARMS)
    assert b == figures.forest_png(_effects(), LABELS, {"ucla3_total": "lower"}, arm_labels=ARMS)
    for png in (a, b):
        assert b"tIME" not in png and b"Software" not in png and b"Creation Time" not in png


def test_a_changed_number_changes_the_picture(desc):
    """The PNG really depends on the data (so byte-identity above means something)."""
    other = desc.copy()
    other.loc[0, "mean"] += 1.0
    assert figures.trajectories_png(desc, ARMS, LABELS) != figures.trajectories_png(other, ARMS, LABELS)
