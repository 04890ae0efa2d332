"""Report section: value for money of a single-arm study (present only when
``value_for_money.enabled``).  The statistician's and the funder's reports show the same tables;
in the funder's, a count of participants below the disclosure threshold is shown as '<threshold'
and the costs per participant or per point derived from it are suppressed (with the total cost
they would reveal the count).  Only the value-for-money tables are read: cost items and sources
come from the config, counts are aggregates, and no participant identifier or free text is read."""

from __future__ import annotations

import math

from analysis.reporting.common import fmt, level_label, money, read_table
from analysis.value import UNCONTROLLED, WELLBY_ASSUMPTIONS

TEMPLATE = "sections/value.html.j2"
STATUS_WORDS = {"interval includes no change": "no ratio: the change's interval includes no change",
                "worsening": "no ratio: the change's interval lies on the side of a worsening",
                "not estimated": "no ratio: the change was not estimated"}


def _count(n, pol) -> dict:
    """A count as shown to the statistician (``text``) and to the funder (``funder``: '<5' when
    :class:`analysis.disclosure.Policy` ``pol`` finds it small)."""
    missing = n is None or (isinstance(n, float) and math.isnan(n))
    shown = "–" if missing else str(int(n))
    small = bool(not missing and pol.is_small(n))
    return dict(text=shown, small=small, funder=f"<{pol.threshold}" if small else shown)


def _per_point(pp, pol) -> list[dict]:
    """One entry per outcome: the change with its interval and the cost per point on each base."""
    out = []
    for y, g in pp.groupby("outcome", sort=False):
        r0 = g.iloc[0]
        bases = []
        for r in g.itertuples():
            ratio = r.ratio_status == "ratio"
            bases.append(dict(base=r.base, n=_count(r.participants, pol), cpp=money(r.cost_per_participant_gbp, 2),
                              cpp_point=money(r.cost_per_point_gbp, 2) if ratio else None,
                              range=(f"{money(r.cost_per_point_at_gain_ci_high_gbp, 2)} to "
                                     f"{money(r.cost_per_point_at_gain_ci_low_gbp, 2)}") if ratio else None))
        out.append(dict(label=r0.label, timepoint=r0.timepoint, change=fmt(r0.change, 2),
                        ci=f"{fmt(r0.ci_low, 2)} to {fmt(r0.ci_high, 2)}", n=_count(r0.n_change, pol),
                        better="lower" if r0.direction == "lower" else "higher", ratio=r0.ratio_status == "ratio",
                        status=STATUS_WORDS.get(r0.ratio_status, ""), bases=bases))
    return out


def _wellby(w, pol) -> dict:
    """The WELLBY rows, or the reason there are none."""
    if (w.scenario == "not estimated").all():
        return dict(rows=[], reason=w.note.iloc[0])
    rows = [dict(scenario=r.scenario, change=fmt(r.ls_change, 2), years=fmt(r.duration_years, 1),
                 wellbys=fmt(r.wellbys, 1), per=money(r.value_per_wellby), value=money(r.social_value_gbp))
            for r in w.itertuples()]
    return dict(rows=rows, reason="", note=w.note.iloc[0], participants=_count(w.participants.iloc[0], pol),
                basis=w.price_basis.iloc[0], includes_zero=w.note.iloc[0] != UNCONTROLLED)


def context(cfg: dict, inputs: dict[str, str]) -> dict | None:
    """Template variables of the value-for-money section (None when it is off)."""
    if not cfg["value_for_money"]["enabled"] or "vfm_buildup" not in inputs:
        return None
    from analysis.reporting.audience import policy
    pol = policy(cfg)
    text = ("item", "category", "price_year", "analysis_price_year", "source", "measure", "note", "outcome", "label",
            "timepoint", "direction", "ratio_status", "base", "scenario", "price_basis")
    b = read_table(inputs["vfm_buildup"], text)
    pp = read_table(inputs["vfm_per_participant"], text)
    pt = read_table(inputs["vfm_per_point"], text)
    w = read_table(inputs["vfm_wellby"], text)
    buildup = [dict(item=r.item, category=r.category, amount=money(r.amount_gbp), year=r.price_year,
                    factor=fmt(r.inflation_factor, 4), amount_now=money(r.amount_gbp_analysis_year), source=r.source)
               for r in b.itertuples()]
    per_participant = [dict(measure=r.measure, n=_count(r.participants, pol),
                            cost=money(r.cost_per_participant_gbp, 2), note=r.note) for r in pp.itertuples()]
    return dict(price_year=cfg["value_for_money"]["price_year"], total=money(b.amount_gbp_analysis_year.sum()),
                buildup=buildup, per_participant=per_participant, per_point=_per_point(pt, pol),
                level=level_label(cfg["outcomes"]["confidence_level"]), uncontrolled=UNCONTROLLED,
                wellby=_wellby(w, pol), assumptions=WELLBY_ASSUMPTIONS)
