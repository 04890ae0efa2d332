"""Figures (matplotlib, Agg backend, PNG without timestamps so reruns give identical files)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import pandas as pd  # noqa: E402

from analysis.blinding import UNBLINDED_TERM  # noqa: E402

ARM_COLOURS = ["#1b6ca8", "#d1495b", "#66a182", "#edae49"]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def trajectory_png(desc: pd.DataFrame, arm_labels: dict[str, str], ylabel: str) -> bytes:
    """Mean outcome by arm over time with 95% CIs of the mean."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    arms = sorted(desc.arm.unique())
    for i, arm in enumerate(arms):
        d = desc[desc.arm == arm].sort_values("month")
        shift = (i - (len(arms) - 1) / 2) * 0.12
        ax.errorbar(d.month + shift, d["mean"], yerr=[d["mean"] - d.ci_low, d.ci_high - d["mean"]],
                    marker="o", capsize=4, color=ARM_COLOURS[i % 4], label=arm_labels.get(arm, arm))
    ax.set_xlabel("Months from baseline")
    ax.set_ylabel(ylabel)
    ax.set_xticks(sorted(desc.month.unique()))
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title("Mean (95% CI) by arm and time point")
    return _png(fig)


def recruitment_png(participants: pd.DataFrame, target: int | None) -> bytes:
    """Cumulative recruitment over calendar time, with the target as a dashed line."""
    d = participants.sort_values("consent_date")
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.step(d.consent_date, range(1, len(d) + 1), where="post", color=ARM_COLOURS[0], label="Recruited")
    if target:
        ax.axhline(target, ls="--", color="grey", label=f"Target ({target})")
    ax.set_ylabel("Participants consented (cumulative)")
    ax.set_xlabel("Date of consent")
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def trajectories_png(desc: pd.DataFrame, arm_labels: dict[str, str],
                     labels: dict[str, str] | None = None) -> bytes:
    """One panel per outcome: mean by arm over time with 95% CIs of the mean (observed data)."""
    labels = labels or {}
    outs = list(dict.fromkeys(desc.outcome))
    ncol = min(2, len(outs))
    nrow = -(-len(outs) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.4 * ncol / 1.25, 3.6 * nrow), squeeze=False)
    arms = sorted(desc.arm.unique())
    for ax, y in zip(axes.ravel(), outs):
        dy = desc[desc.outcome == y]
        for i, arm in enumerate(arms):
            d = dy[dy.arm == arm].sort_values("month")
            shift = (i - (len(arms) - 1) / 2) * 0.12
            ax.errorbar(d.month + shift, d["mean"], yerr=[d["mean"] - d.ci_low, d.ci_high - d["mean"]],
                        marker="o", capsize=4, color=ARM_COLOURS[i % 4], label=arm_labels.get(arm, arm))
        ax.set_title(labels.get(y, y), fontsize=10)
        ax.set_xlabel("Months from baseline")
        ax.set_ylabel("Mean (95% CI)")
        ax.set_xticks(sorted(dy.month.unique()))
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(outs):]:
        ax.axis("off")
    axes.ravel()[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return _png(fig)


FOREST_ANALYSES = [("primary", "Primary model", "o", "#1b6ca8"),
                   ("multiple_imputation", "Multiple imputation", "s", "#d1495b"),
                   ("complete_case", "Complete cases", "^", "#66a182")]


def forest_png(effects: pd.DataFrame, labels: dict[str, str] | None = None) -> bytes:
    """Standardised adjusted differences (estimate / baseline SD, with the 95% CI of
    effects.csv, which allows for the SD's sampling error) for every outcome and follow-up;
    the primary analysis beside MI and complete cases."""
    labels = labels or {}
    e = effects[effects.term == UNBLINDED_TERM]
    keys = list(dict.fromkeys(zip(e.outcome, e.timepoint)))
    present = [a for a in FOREST_ANALYSES if (e.analysis == a[0]).any()]
    fig, ax = plt.subplots(figsize=(6.8, 0.55 * len(keys) * max(1, len(present)) / 2 + 1.4))
    yt, ylab = [], []
    for i, (y, tp) in enumerate(keys):
        base = len(keys) - 1 - i
        yt.append(base)
        ylab.append(f"{labels.get(y, y)}, {tp}")
        for j, (code, name, marker, colour) in enumerate(present):
            r = e[(e.outcome == y) & (e.timepoint == tp) & (e.analysis == code)]
            if r.empty:
                continue
            r = r.iloc[0]
            pos = base + 0.22 * ((len(present) - 1) / 2 - j)
            d = r.standardised_effect
            ax.errorbar(d, pos, xerr=[[d - r.standardised_ci_low], [r.standardised_ci_high - d]],
                        fmt=marker, color=colour, capsize=3, ms=5, label=name if i == 0 else None)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(yt)
    ax.set_yticklabels(ylab, fontsize=8)
    ax.set_xlabel("Standardised difference, intervention minus control (baseline SDs, 95% CI)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(present))
    return _png(fig)
