"""The funder and ethics reports' released counts: one disclosure decision for everything both
audiences receive.

:func:`release` reads the result tables once and lays out every count the funder and ethics
reports show (flow boxes, feasibility numerators and denominators, progression criteria,
effect-estimate sample sizes, the CONSORT diagram, adverse events), each under one key, with the
accounting identities between them (screened = eligible + not eligible, allocated = assessed +
withdrawn + lost at each time point, all = the sum of the arms, a proportion's denominator =
its numerator + the people it leaves out, ...).  :func:`analysis.disclosure.protect_ledger`
then suppresses cells until no small count, shown or implied, can be recovered by an attacker
who holds both reports.  Both reports render from the same decision, so a count that appears in
both is shown the same way in both.

Every count is rendered as ``<span class="cell" data-cell="<key>">shown</span>`` (keys name
structure, never people), so the tests can parse every released count and attack them.
"""

from __future__ import annotations

import json
import math
import os

import pandas as pd
from markupsafe import Markup

from analysis import CHANGE_TERM
from analysis.disclosure import Ledger, Policy, protect_ledger
from analysis.feasibility import NOT_COLLECTED
from analysis.reporting.common import read_table

OTHER_REASON = "other (not itemised)"
KEY_INDICATORS = ("consent", "recruitment_rate", "retention", "intervention_receipt", "withdrawal")
ETHICS_RECRUITMENT = ("screened", "not_eligible", "eligible", "declined", "consented", "enrolled", "allocated")
ETHICS_FOLLOWUP = ("assessed", "lost", "withdrawn")
SITE_STAGES = ("allocated_sites", "assessed_sites")


def policy(cfg: dict) -> Policy:
    d = cfg["report"]["disclosure"]
    return Policy(threshold=int(d["threshold"]), suppress_zero=bool(d["suppress_zero"]))


def show_count(x) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return str(int(round(float(x))))


def show_value(x, dp: int, scale: float = 1.0, suffix: str = "") -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{float(x) * scale:.{dp}f}{suffix}"


def is_about_sites(t: pd.DataFrame) -> pd.Series:
    """True for feasibility rows that count sites (organisations), not people."""
    return t["indicator"].astype(str).str.contains("fidelity") | \
        t.get("denominator_of", pd.Series("", index=t.index)).astype(str).str.contains("sites")


def declared_reasons(cfg: dict) -> set[str]:
    reasons = cfg.get("feasibility", {}).get("reasons", {}) or {}
    return {r for lst in reasons.values() for r in (lst or [])}


def flow_key(stage: str, arm: str = "all", timepoint: str = "", measure: str = "", reason: str = "") -> str:
    return f"flow:{stage}:{arm}:{timepoint}:{measure}:{reason}"


def _exists(inputs, key) -> bool:
    return key in inputs and os.path.exists(inputs[key])


class Counts:
    """Every released count of the funder and ethics reports, laid out once (see the module
    docstring).  ``rows`` hold the structure each report renders (keys, labels); ``release``
    says how each key is shown."""

    def __init__(self, cfg: dict, inputs: dict[str, str], reasons: bool = True):
        self.cfg, self.inputs = cfg, inputs
        # False: the counts by reason (exclusion, decline, withdrawal) are not released at all,
        # only their totals (the last resort of build() before refusing the reports)
        self.reasons_withheld = not reasons
        d = cfg["design"]
        self.single = d["type"] == "single_arm"
        self.intervention = d["intervention_arm"] if not cfg.get("blinded") else None
        self.L = Ledger()
        self.flow = self._read_flow()
        self.arms = list(dict.fromkeys(self.flow[self.flow.stage == "allocated"].arm))
        self.timepoints = [str(w["timepoint"]) for w in cfg["data"]["waves"]]
        self._flow_cells()
        self.feas = read_table(inputs["feasibility"], ("timepoint", "arm", "ci_method", "band", "unit", "definition"))
        self.rows: dict = {}

    # ---- flow ---------------------------------------------------------------------------
    def _read_flow(self) -> pd.DataFrame:
        if not _exists(self.inputs, "flow"):
            return pd.DataFrame(columns=["stage", "arm", "timepoint", "measure", "reason", "n"])
        flow = read_table(self.inputs["flow"], ("reason", "timepoint", "measure", "arm", "site_id"))
        f = flow[flow.site_id.astype(str) == "all"].copy()
        for c in ("reason", "timepoint", "measure", "arm"):
            f[c] = f[c].fillna("").astype(str)
        if self.reasons_withheld:  # totals only (each stage's total has its own row, reason "")
            f = f[f.reason == ""].copy()
        undeclared = (f.reason != "") & ~f.reason.isin(declared_reasons(self.cfg))
        f.loc[undeclared, "reason"] = OTHER_REASON
        return f.groupby(["stage", "arm", "timepoint", "measure", "reason"], sort=False, as_index=False)["n"].sum()

    def has(self, stage: str) -> bool:
        return bool((self.flow.stage == stage).any())

    def fk(self, stage, arm="all", timepoint="", measure="", reason="") -> str | None:
        k = flow_key(stage, arm, timepoint, measure, reason)
        return k if k in self.L.values else None

    def _flow_cells(self) -> None:
        L = self.L
        for r in self.flow.itertuples():
            L.add(flow_key(r.stage, r.arm, r.timepoint, r.measure, r.reason), r.n, exempt=r.stage in SITE_STAGES)
        f = self.flow
        # screening stages: total = parts, reasons add up, all = sum of arms (cluster designs)
        for arm in f[f.stage == "screened"].arm.unique():
            self._identity("screened", arm, ["eligible", "not_eligible"])
            self._identity("eligible", arm, ["consented", "declined"])
        for stage in ("not_eligible", "declined"):
            reasons = [flow_key(stage, "all", reason=r) for r in f[(f.stage == stage) & (f.reason != "")].reason]
            if reasons:
                L.identity(flow_key(stage), reasons)
        arms = list(dict.fromkeys(f[f.stage == "allocated"].arm))
        for stage in ("screened", "not_eligible", "eligible", "declined", "consented"):
            parts = [flow_key(stage, a) for a in arms if flow_key(stage, a) in L.values]
            if flow_key(stage) in L.values and parts and len(parts) == len(arms):
                L.identity(flow_key(stage), parts)
        # allocation: all = sum of the arms; what the screening log says was consented is, when
        # the numbers agree, the same people (an attacker may assume so)
        alloc = [flow_key("allocated", a) for a in arms]
        if alloc:
            L.add(flow_key("allocated"), sum(L.values[k] for k in alloc))
            L.identity(flow_key("allocated"), alloc)
            for a in ["all", *arms]:
                for src in ("consented", "enrolled"):
                    if flow_key(src, a) in L.values:
                        L.identity(flow_key(src, a), [flow_key("allocated", a)], only_if_holds=True)
        # receipt: allocated = received + not received (+ attendance not recorded)
        for a in arms:
            got = [flow_key(s, a) for s in ("received", "not_received") if flow_key(s, a) in L.values]
            if len(got) == 2:
                known = L.add(f"attendance_known:{a}", sum(L.values[k] for k in got))
                L.identity(known, got)
                unk = [flow_key("receipt_unknown", a)] if flow_key("receipt_unknown", a) in L.values else []
                L.identity(flow_key("allocated", a), [known, *unk])
        # follow-up: allocated = assessed + withdrawn + lost; withdrawn = sum of its reasons;
        # all = sum of the arms for every count at a time point
        for tp in [t for t in f.timepoint.unique() if t]:
            for a in arms:
                parts = [flow_key(s, a, tp) for s in ("assessed", "withdrawn", "lost")
                         if flow_key(s, a, tp) in L.values]
                if parts:
                    L.identity(flow_key("allocated", a), parts)
                here = f[(f.stage == "withdrawn") & (f.arm == a) & (f.timepoint == tp) & (f.reason != "")]
                reasons = [flow_key("withdrawn", a, tp, reason=r) for r in here.reason]
                if reasons:
                    L.identity(flow_key("withdrawn", a, tp), reasons)
            for stage in ("assessed", "withdrawn", "lost"):
                self._all_of_arms(stage, arms, tp)
            for m in f[(f.stage == "assessed_measure") & (f.timepoint == tp)].measure.unique():
                self._all_of_arms("assessed_measure", arms, tp, m)

    def _identity(self, total: str, arm: str, parts: list[str]) -> None:
        keys = [flow_key(p, arm) for p in parts]
        if flow_key(total, arm) in self.L.values and all(k in self.L.values for k in keys):
            self.L.identity(flow_key(total, arm), keys)

    def _all_of_arms(self, stage, arms, tp, measure="") -> None:
        parts = [flow_key(stage, a, tp, measure) for a in arms]
        if parts and all(k in self.L.values for k in parts):
            total = flow_key(stage, "all", tp, measure)
            self.L.add(total, sum(self.L.values[k] for k in parts))
            self.L.identity(total, parts)

    def publish(self, key: str | None) -> str | None:
        if key is not None:
            self.L.published.add(key)
        return key

    def complement(self, total: str, part: str, name: str) -> None:
        """total = part + the people ``part`` leaves out (an unreleased cell)."""
        rest = self.L.values[total] - self.L.values[part]
        if rest < 0:
            return
        other = self.L.add(f"complement:{name}", rest)
        self.L.identity(total, [part, other])

    # ---- feasibility numerators and denominators ------------------------------------------
    def feasibility_keys(self, r) -> tuple[str | None, str | None]:
        """(numerator key, denominator key) of a feasibility row; None for what is not a count
        of people (exposure, a target, sites are exempt keys)."""
        L, ind, tp = self.L, str(r.indicator), str(r.timepoint or "")
        arm = str(r.arm or "all")
        base = f"feas:{ind}:{tp}:{arm}"
        if r.unit == NOT_COLLECTED or pd.isna(r.numerator):
            return None, None
        num, den = int(r.numerator), r.denominator
        if ind == "fidelity":
            return (L.add(base + ":num", num, exempt=True), L.add(base + ":den", den, exempt=True))
        if ind in ("recruitment_rate", "recruitment_vs_target"):
            return L.alias(flow_key("allocated"), num, base + ":num"), None
        if ind == "eligibility":
            n, d_ = flow_key("eligible"), flow_key("screened")
        elif ind == "consent":
            n, d_ = flow_key("consented"), flow_key("eligible")
        elif ind == "retention":
            n, d_ = flow_key("assessed", arm, tp), flow_key("allocated", arm)
        elif ind.startswith("completion_"):
            n, d_ = flow_key("assessed_measure", arm, tp, ind[len("completion_"):]), flow_key("allocated", arm)
        elif ind == "intervention_receipt" and self.intervention:
            n, d_ = flow_key("received", self.intervention), f"attendance_known:{self.intervention}"
        elif ind == "adherence" and self.intervention:
            n, d_ = base + ":num", f"attendance_known:{self.intervention}"
        elif ind == "withdrawal":
            n, d_ = base + ":num", flow_key("allocated")
        else:
            n, d_ = base + ":num", base + ":den"
        nk = L.alias(n, num, base + ":num")
        dk = L.alias(d_, den, base + ":den")
        self.complement(dk, nk, base)
        if ind == "withdrawal":
            self._withdrawn_ever(nk)
        return nk, dk

    def _withdrawn_ever(self, total: str) -> None:
        """Everyone who ever withdrew = those withdrawn by the last time point, by arm, + those
        who withdrew later or while still assessed.  The latter is assumed known to an attacker
        (who might simply take it to be zero), so the identity is as strong as it can be."""
        last = next((t for t in reversed(self.timepoints) if any(self.fk("withdrawn", a, t) for a in self.arms)), None)
        if last is None:
            return
        parts = [flow_key("withdrawn", a, last) for a in self.arms]
        late = self.L.values[total] - sum(self.L.values[p] for p in parts)
        if late >= 0:
            self.L.identity(total, [*parts, self.L.add("withdrawn_after_last_timepoint", late, known=True)])

    # ---- enumerations of what each audience is shown --------------------------------------
    def build(self) -> "Counts":
        self.rows["ethics_recruitment"] = self._flow_rows(ETHICS_RECRUITMENT)
        self.rows["ethics_followup"] = self._flow_rows(ETHICS_FOLLOWUP)
        self.rows["safety"] = self._safety()
        self.rows["funder_feasibility"] = self._funder_feasibility()
        self.rows["funder_criteria"] = self._funder_criteria()
        self.rows["effects"] = self._effects()
        self.rows["analysed"] = self._analysed()
        self.rows["consort"] = self._consort_keys()
        self.bands_withheld = False
        self.release = protect_ledger(self.L, policy(self.cfg))
        if self.release.unprotected and self.L.limits:
            # a band shown beside a withheld count narrows it too much: withhold the bands of
            # withheld criteria instead (see funder.py) and protect without them
            self.L.limits.clear()
            self.bands_withheld = True
            self.release = protect_ledger(self.L, policy(self.cfg))
        if self.release.unprotected and not self.reasons_withheld:
            # small counts by reason that no suppression pattern protects (e.g. several reasons
            # given by one person each): release the totals without the breakdown by reason
            return Counts(self.cfg, self.inputs, reasons=False).build()
        if self.release.unprotected:
            raise RuntimeError("disclosure control could not protect the small count(s) "
                               f"{self.release.unprotected}; the funder and ethics reports are not written")
        return self

    def _flow_rows(self, stages) -> list[dict]:
        out = []
        for r in self.flow[self.flow.stage.isin(stages) & (self.flow.measure == "")].itertuples():
            out.append(dict(stage=r.stage, arm=r.arm, timepoint=r.timepoint, reason=r.reason,
                            key=self.publish(flow_key(r.stage, r.arm, r.timepoint, r.measure, r.reason))))
        return out

    def _safety(self) -> list[dict]:
        if not _exists(self.inputs, "safety"):
            return []
        st = read_table(self.inputs["safety"], ("measure", "arm"))
        out = []
        for r in st.itertuples():
            n = self.publish(self.L.add(f"safety:{r.measure}:{r.arm}", r.n))
            den = self.publish(self.L.alias(flow_key("allocated", r.arm), r.denominator, f"safety:allocated:{r.arm}"))
            if r.measure.startswith("participants_with"):
                self.complement(den, n, f"safety:{r.measure}:{r.arm}")
            out.append(dict(measure=r.measure, arm=r.arm, key=n, den=den))
        for m in st.measure.unique():
            parts = [f"safety:{m}:{a}" for a in st[(st.measure == m) & (st.arm != "all")].arm]
            if f"safety:{m}:all" in self.L.values and parts:
                self.L.identity(f"safety:{m}:all", parts)
        return out

    def _funder_feasibility(self) -> list[dict]:
        primary = f"completion_{self.cfg['primary']['outcome']}"
        feas = self.feas[self.feas.indicator.isin(KEY_INDICATORS) | (self.feas.indicator == primary)]
        out = []
        for r in feas.itertuples():
            nk, dk = self.feasibility_keys(r)
            out.append(dict(row=r, num=self.publish(nk), den=self.publish(dk)))
        return out

    def _funder_criteria(self) -> list[dict]:
        if not _exists(self.inputs, "progression"):
            return []
        prog = read_table(self.inputs["progression"], ("timepoint", "band", "arm", "direction", "denominator_of"))
        unit_of = dict(zip(self.feas.indicator, self.feas.unit))
        out = []
        for r in prog.itertuples():
            unit = unit_of.get(r.indicator, "proportion")
            row = pd.Series(dict(indicator=r.indicator, timepoint=r.timepoint, arm=r.arm, numerator=r.numerator,
                                 denominator=r.denominator, unit=unit))
            nk, dk = self.feasibility_keys(row) if pd.notna(r.numerator) else (None, None)
            if unit == "proportion" and nk is not None and dk is not None:
                self._band_limits(nk, int(r.denominator), r)
            out.append(dict(row=r, unit=unit, num=self.publish(nk), den=self.publish(dk)))
        return out

    def _band_limits(self, num: str, den: int, r) -> None:
        """The band shown beside a criterion bounds its numerator even when the count is
        withheld (GREEN >= green, AMBER between, RED < red; the other way round when lower is
        better; on the RED threshold is AMBER): the attacker is given those bounds."""
        eps = 1e-9
        g, red = float(r.green) * den, float(r.red) * den
        ceil = lambda x: math.ceil(x - eps)  # noqa: E731
        floor = lambda x: math.floor(x + eps)  # noqa: E731
        if r.direction == "higher":
            lims = {"GREEN": (ceil(g), den), "AMBER": (ceil(red), ceil(g) - 1), "RED": (0, ceil(red) - 1)}
        else:
            lims = {"GREEN": (0, floor(g)), "AMBER": (floor(g) + 1, floor(red)), "RED": (floor(red) + 1, den)}
        if r.band in lims:
            self.L.limit(num, *lims[r.band])

    def _primary_rows(self) -> pd.DataFrame:
        if not _exists(self.inputs, "effects"):
            return pd.DataFrame()
        eff = read_table(self.inputs["effects"], ("warnings", "analysis", "timepoint", "population", "model", "term"))
        if not len(eff):
            return eff
        if "population" in eff:
            eff = eff[eff.population.isin(["", "all"])]
        eff = eff[eff.analysis == "primary"]
        term = CHANGE_TERM if self.single else None
        return eff[(eff.term == term) if term else ~eff.term.astype(str).str.contains(",")]

    def _arm_columns(self) -> list[tuple[str, str, str]]:
        """(arm code, effects.csv column at a follow-up, column of the whole model)."""
        if self.single:
            arm = self.arms[0] if self.arms else self.cfg["design"]["intervention_arm"]
            return [(arm, "n", "n_participants_model")]
        d = self.cfg["design"]
        ctl = d.get("control_arm")
        itv = d["intervention_arm"]
        if self.cfg.get("blinded"):
            itv, ctl = "B", "A"
        return [(itv, "n_intervention", "n_intervention_model"), (ctl, "n_control", "n_control_model")]

    def _effects(self) -> list[dict]:
        out = []
        for r in self._primary_rows().itertuples():
            cells = {}
            for arm, col, _ in self._arm_columns():
                v = getattr(r, col, float("nan"))
                if pd.isna(v):
                    cells[arm] = None
                    continue
                k = self.publish(self.L.add(f"effects:n:{r.outcome}:{r.timepoint}:{arm}", v))
                if flow_key("allocated", arm) in self.L.values:
                    self.complement(flow_key("allocated", arm), k, f"effects:{r.outcome}:{r.timepoint}:{arm}")
                cells[arm] = k
            out.append(dict(row=r, cells=cells))
        return out

    def _analysed(self) -> list[dict]:
        """Participants in each outcome's primary model, by arm (the CONSORT 'Analysed' boxes)."""
        out = []
        rows = self._primary_rows()
        if not len(rows) or "n_participants_model" not in rows:
            return out
        for y, g in rows.groupby("outcome", sort=False):
            r = g.iloc[0]
            cells = {}
            for arm, _, col in self._arm_columns():
                v = r.get(col, float("nan"))
                if pd.isna(v):
                    continue
                k = self.L.add(f"analysed:{y}:{arm}", v)
                if flow_key("allocated", arm) in self.L.values:
                    self.complement(flow_key("allocated", arm), k, f"analysed:{y}:{arm}")
                cells[arm] = k
            out.append(dict(outcome=y, cells=cells, sites=r.get("n_sites_model", float("nan")),
                            observations=r.get("n_model", float("nan"))))
        return out

    def _consort_keys(self) -> bool:
        """The funder's CONSORT diagram shows the flow cells (and the analysed counts)."""
        for r in self.flow.itertuples():
            if r.stage != "assessed_measure":
                self.publish(flow_key(r.stage, r.arm, r.timepoint, r.measure, r.reason))
        for a in self.rows.get("analysed", []):
            for k in a["cells"].values():
                self.publish(k)
        return True

    # ---- rendering helpers -----------------------------------------------------------------
    def cell(self, key: str | None) -> Markup:
        """One released count as marked-up HTML ('–' when there is no such count)."""
        if key is None:
            return Markup("–")
        return Markup('<span class="cell" data-cell="{}">{}</span>').format(key, self.release.show(key))

    def withheld(self, *keys) -> bool:
        return self.release.withheld(*keys)


_CACHE: dict = {}


def release(cfg: dict, inputs: dict[str, str]) -> Counts:
    """The released counts of this trial's funder and ethics reports (cached per config and
    inputs: both sections of one report and both reports read the same decision)."""
    stamp = json.dumps([cfg, sorted(inputs.items()),
                        [os.path.getmtime(p) if os.path.exists(p) else None for _, p in sorted(inputs.items())]],
                       sort_keys=True, default=str)
    if stamp not in _CACHE:
        _CACHE.clear()
        _CACHE[stamp] = Counts(cfg, inputs).build()
    return _CACHE[stamp]
