"""Figures (matplotlib, Agg backend, PNG without timestamps so reruns give identical files)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import pandas as pd  # noqa: E402

from analysis import BY_BASELINE_SD, CHANGE_TERM  # noqa: E402
from analysis.blinding import UNBLINDED_TERM  # noqa: E402

ARM_COLOURS = ["#1b6ca8", "#d1495b", "#66a182", "#edae49"]


def not_registered_note(fig, inside: bool = False) -> None:
    """In an exploratory run (analysis.sap) every figure says it is not the registered analysis:
    a line below the plot (``inside``: in the top right corner, for figures saved without a
    tight box, such as the CONSORT diagram)."""
    from analysis.sap import NOT_REGISTERED, label_applies
    if not label_applies():
        return
    style = dict(va="top", fontsize=9, color="#b00020", fontweight="bold")
    if inside:
        fig.text(0.99, 0.995, f"Exploratory run: {NOT_REGISTERED}", ha="right", **style)
        return
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches: below everything drawn so far
    fig.text((box.x0 + box.x1) / 2 / fig.get_figwidth(), box.y0 / fig.get_figheight() - 0.01,
             f"Exploratory run: {NOT_REGISTERED}", ha="center", **style)


def _png(fig) -> bytes:
    not_registered_note(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _time_axis(d: pd.DataFrame, order: list[str]) -> tuple[pd.Series, list, list[str], str]:
    """x positions of the time points: their months when every month is known, else their
    order (a follow-up whose timing is unknown has month NaN)."""
    months = d.groupby("timepoint", sort=False).month.first()
    if months.notna().all():
        ticks = sorted(months.unique())
        return d.month, ticks, [f"{m:g}" for m in ticks], "Months from baseline"
    pos = {tp: i for i, tp in enumerate(order)}
    return d.timepoint.map(pos).astype(float), list(range(len(order))), list(order), "Time point"


def trajectories_png(desc: pd.DataFrame, arm_labels: dict[str, str],
                     labels: dict[str, str] | None = None, level: float = 0.95,
                     timepoints: list[str] | None = None) -> bytes:
    """One panel per outcome: mean by arm over time with CIs of the mean (observed data)."""
    labels = labels or {}
    pct = f"{level * 100:g}%"
    outs = list(dict.fromkeys(desc.outcome))
    order = timepoints or list(dict.fromkeys(desc.timepoint))
    ncol = max(1, min(2, len(outs)))
    nrow = max(1, -(-len(outs) // ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol / 1.25, 3.6 * nrow), squeeze=False)
    arms = sorted(desc.arm.unique())
    for ax, y in zip(axes.ravel(), outs):
        dy = desc[desc.outcome == y]
        x_all, ticks, ticklabels, xlabel = _time_axis(dy, order)
        for i, arm in enumerate(arms):
            d = dy[dy.arm == arm]
            x = x_all[d.index]
            shift = (i - (len(arms) - 1) / 2) * 0.12
            ax.errorbar(x + shift, d["mean"], yerr=[d["mean"] - d.ci_low, d.ci_high - d["mean"]],
                        marker="o", capsize=4, color=ARM_COLOURS[i % 4], label=arm_labels.get(arm, arm))
        ax.set_title(labels.get(y, y), fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"Mean ({pct} CI)")
        ax.set_xticks(ticks)
        ax.set_xticklabels(ticklabels)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(outs):]:
        ax.axis("off")
    if outs:
        axes.ravel()[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _png(fig)


FOREST_ANALYSES = [("primary", "Primary model", "o", "#1b6ca8"),
                   ("multiple_imputation", "Multiple imputation", "s", "#d1495b"),
                   ("complete_case", "Complete cases", "^", "#66a182"),
                   ("paired_change", "Paired change", "D", "#edae49")]


def forest_rows(effects: pd.DataFrame, directions: dict[str, str] | None = None,
                single_arm: bool = False) -> pd.DataFrame:
    """The plotted values of the forest plot: every outcome x follow-up x analysis (all
    participants), the estimate and CI divided by the baseline SD and, for an outcome where
    lower is better, multiplied by -1 (``reversed``), so that right always means better."""
    directions = directions or {}
    term = CHANGE_TERM if single_arm else UNBLINDED_TERM
    e = effects[(effects.term == term) & effects.estimate.notna()]
    if "population" in e:
        e = e[e.population.fillna("all") == "all"]
    if "standardised_by" in e:  # one scale per plot: differences over the baseline SD (no SRMs)
        e = e[e.standardised_by.fillna(BY_BASELINE_SD) == BY_BASELINE_SD]
    rows = []
    for r in e.itertuples():
        flip = directions.get(r.outcome, "higher") == "lower"
        sign = -1.0 if flip else 1.0
        if hasattr(r, "standardised_ci_low") and pd.notna(r.standardised_ci_low):
            # the CI that allows for the baseline SD's own sampling error (effects.csv)
            x, lo, hi = sign * r.standardised_effect, sign * r.standardised_ci_low, sign * r.standardised_ci_high
        else:
            x, lo, hi = sign * r.estimate / r.baseline_sd, sign * r.ci_low / r.baseline_sd, sign * r.ci_high / r.baseline_sd
        lo, hi = sorted([lo, hi])
        rows.append(dict(outcome=r.outcome, timepoint=r.timepoint, analysis=r.analysis,
                         x=x, lo=lo, hi=hi, reversed=flip))
    return pd.DataFrame(rows, columns=["outcome", "timepoint", "analysis", "x", "lo", "hi", "reversed"])


def forest_png(effects: pd.DataFrame, labels: dict[str, str] | None = None,
               directions: dict[str, str] | None = None, level: float = 0.95,
               arm_labels: dict[str, str] | None = None, single_arm: bool = False) -> bytes:
    """Standardised estimates (estimate and CI divided by the baseline SD) for every outcome
    and follow-up, the primary analysis beside MI and complete cases; all participants.

    Each row is oriented so that right means better for the intervention (or, in a single-arm
    study, improvement): an outcome where lower is better is plotted with its sign reversed and
    says so (:func:`forest_rows`), so "favours" labels hold for every row."""
    labels = labels or {}
    pct = f"{level * 100:g}%"
    e = forest_rows(effects, directions, single_arm)
    keys = list(dict.fromkeys(zip(e.outcome, e.timepoint)))
    present = [a for a in FOREST_ANALYSES if (e.analysis == a[0]).any()]
    fig, ax = plt.subplots(figsize=(6.8, 0.55 * max(1, len(keys)) * max(1, len(present)) / 2 + 1.6))
    yt, ylab = [], []
    for i, (y, tp) in enumerate(keys):
        base = len(keys) - 1 - i
        yt.append(base)
        sub = e[(e.outcome == y) & (e.timepoint == tp)]
        flip = bool(sub.reversed.iloc[0])
        ylab.append(f"{labels.get(y, y)}, {tp}" + (" (lower is better: sign reversed)" if flip else ""))
        for j, (code, name, marker, colour) in enumerate(present):
            r = sub[sub.analysis == code]
            if r.empty:
                continue
            r = r.iloc[0]
            pos = base + 0.22 * ((len(present) - 1) / 2 - j)
            ax.errorbar(r.x, pos, xerr=[[r.x - r.lo], [r.hi - r.x]],
                        fmt=marker, color=colour, capsize=3, ms=5, label=name if i == 0 else None)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(yt)
    ax.set_yticklabels(ylab, fontsize=8)
    arm_labels = arm_labels or {}
    if single_arm:
        ax.set_xlabel(f"Standardised change from baseline (baseline SDs, {pct} CI)")
        left, right = "Worse than baseline", "Better than baseline"
    else:
        ctrl, intv = arm_labels.get("control", "control"), arm_labels.get("intervention", "intervention")
        ax.set_xlabel(f"Standardised difference, {intv} minus {ctrl} (baseline SDs, {pct} CI)")
        left, right = f"Favours {ctrl}", f"Favours {intv}"
    ax.annotate(f"\u2190 {left}", xy=(0.0, -0.16), xycoords="axes fraction", ha="left", fontsize=8)
    ax.annotate(f"{right} \u2192", xy=(1.0, -0.16), xycoords="axes fraction", ha="right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    if present:
        ax.legend(frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(present))
    return _png(fig)
