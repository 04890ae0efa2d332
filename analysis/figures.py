"""Figures (matplotlib, Agg backend, PNG without timestamps so reruns give identical files)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

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
