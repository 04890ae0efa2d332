"""Feasibility figures a funder reads at a glance (matplotlib, deterministic PNG).

* cumulative recruitment over calendar time against the target (overall) and per site;
* retention and completion (per measure) by arm and time point, with the feasibility table's
  confidence intervals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.figures import ARM_COLOURS, _png, plt


def _not_collected_png(text: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    return _png(fig)


def recruitment_png(participants: pd.DataFrame, sites: pd.DataFrame, target: int | None,
                    arms: list[str], arm_labels: dict[str, str], cluster: bool = True) -> bytes:
    """Two panels: cumulative recruitment overall (with the target line) and per site (the
    site's recruitment window when the sites file has one).  Without consent dates the figure
    says that recruitment dates were not collected."""
    d = participants[participants.consent_date.notna()].sort_values(["consent_date", "participant_id"])
    if not len(d):
        return _not_collected_png("Recruitment over time: consent dates not collected")
    per_site = len(sites) > 1 and participants.site_id.notna().any()
    fig, axes = plt.subplots(1, 2 if per_site else 1, figsize=(10.5 if per_site else 5.6, 3.8),
                             sharex=True, squeeze=False)
    ax1 = axes[0, 0]
    ax1.step(d.consent_date, np.arange(1, len(d) + 1), where="post", color=ARM_COLOURS[0],
             label=f"Recruited ({len(d)})")
    if target:
        ax1.axhline(target, ls="--", color="grey", label=f"Target ({target})")
        ax1.set_ylim(0, max(target, len(d)) * 1.08)
    ax1.set_title("Overall")
    ax1.set_ylabel("Participants consented (cumulative)")
    ax1.legend(frameon=False, loc="lower right")
    if per_site:
        ax2 = axes[0, 1]
        styles = {a: (ARM_COLOURS[i % 4], "-" if i == len(arms) - 1 else "--") for i, a in enumerate(arms)}
        windows = sites.recruitment_start.notna().all() and sites.recruitment_end.notna().all()
        for s in sites.sort_values("site_id").itertuples():
            p = d[d.site_id == s.site_id]
            colour, ls = styles.get(s.arm, (ARM_COLOURS[0], "-")) if cluster else (ARM_COLOURS[0], "-")
            if windows:
                x = [s.recruitment_start] + list(p.consent_date) + [max(s.recruitment_end, *p.consent_date)
                                                                   if len(p) else s.recruitment_end]
                y = [0] + list(range(1, len(p) + 1)) + [len(p)]
            elif len(p):
                x, y = list(p.consent_date), list(range(1, len(p) + 1))
            else:
                continue
            ax2.step(x, y, where="post", color=colour, ls=ls, lw=1.1)
            ax2.annotate(s.site_id, (x[-1], y[-1]), fontsize=7, xytext=(2, 0), textcoords="offset points",
                         va="center")
        if cluster:
            for a in arms:
                ax2.plot([], [], color=styles[a][0], ls=styles[a][1], label=arm_labels.get(a, a))
            ax2.legend(frameon=False, loc="upper left")
        ax2.set_title("Per site (each site's recruitment window)" if windows else "Per site")
        ax2.set_ylabel("Participants consented (cumulative)")
    for ax in axes.flat:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.set_xlabel("Date of consent")
    fig.autofmt_xdate()
    return _png(fig)


def retention_completion_png(table: pd.DataFrame, timepoints: list[str], arms: list[str],
                             arm_labels: dict[str, str], measures: list[str], level: float = 0.95,
                             labels: dict[str, str] | None = None, single_arm: bool = False) -> bytes:
    """Retention and completion of each measure by arm and time point (estimate and CI); panels
    are titled with the measures' labels."""
    labels = labels or {}
    panels = [("retention", "Retention (questionnaire returned)")] + \
        [(f"completion_{m}", f"Completion: {labels.get(m, m)}") for m in measures]
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), sharey=True, squeeze=False)
    xpos = {tp: i for i, tp in enumerate(timepoints)}
    for ax, (ind, title) in zip(axes.flat, panels):
        for i, arm in enumerate(arms):
            # a single-arm study's rows are all "all" (one group), labelled with its arm's label
            rows_arm = "all" if single_arm else arm
            d = table[(table.indicator == ind) & (table.arm == rows_arm)].copy()
            d = d[d.timepoint.isin(timepoints)]
            x = d.timepoint.map(xpos).to_numpy(float) + (i - (len(arms) - 1) / 2) * 0.12
            est = 100 * d.estimate.to_numpy(float)
            # clip: at 0% or 100% a CI limit can differ from the estimate by rounding only
            err = np.clip([est - 100 * d.ci_low.to_numpy(float), 100 * d.ci_high.to_numpy(float) - est], 0, None)
            ax.errorbar(x, est, yerr=err, marker="o", ms=4, capsize=3, color=ARM_COLOURS[i % 4],
                        label=arm_labels.get(arm, arm))
        ax.set_xticks(range(len(timepoints)), timepoints)
        ax.set_xlim(-0.5, len(timepoints) - 0.5)
        ax.set_ylim(0, 105)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"% of {'enrolled' if single_arm else 'allocated'} ({level * 100:g}% CI)")
    axes.flat[0].legend(frameon=False, fontsize=8, loc="lower left")
    fig.tight_layout()
    return _png(fig)
