"""The CONSORT flow diagram: counts reconcile box by box (with each other and with the raw files
and linked data of the demo), boxes never overlap, text stays inside its box, output is
deterministic, and single-arm designs work."""

import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from analysis import consort
from analysis import feasibility as feas

ARMS = ["control", "intervention"]
TPS, MONTHS = ["baseline", "m3", "m9"], [0, 3, 9]
MEASURES = ["wemwbs_total", "ucla3_total"]
REASONS = {"exclusion": ["under 18 years", "lacks capacity to consent",
                         "not in contact with the service for 3 months", "taking part in another study",
                         "already receiving the intervention"],
           "withdrawal": ["withdrew consent", "moved out of area", "too unwell", "died"]}


@pytest.fixture(scope="module")
def demo(demo_prepared):
    return demo_prepared, demo_prepared["linked"]


def _boxes(t, linked, arms=ARMS, sites=None, parts=None, reasons=REASONS):
    sites = t["sites"] if sites is None else sites
    parts = t["participants"] if parts is None else parts
    flow = feas.disposition(sites, parts, t["screening"], linked, arms=arms, intervention_arm="intervention",
                            measures=MEASURES, reasons=reasons)
    return consort.build_boxes(flow, arms=arms, intervention_arm="intervention",
                               arm_labels={"control": "Usual care", "intervention": "Intervention"},
                               timepoints=TPS, months=MONTHS, measures=MEASURES)


def shown(box):
    """(label, n) pairs as printed in the box text (parsed from the drawn string)."""
    out = []
    for line in box.text.split("\n"):
        m = re.fullmatch(r"\s*(.*?) \(n = (\d+)\)", line)
        out.append((m.group(1), int(m.group(2))) if m else (line.strip(), None))
    return out


def test_counts_reconcile_box_by_box_with_raw_files(demo, root):
    t, linked = demo
    raw = root / "data/raw/demo"
    screen = pd.read_csv(raw / "screening_log.csv", keep_default_na=False)
    parts = pd.read_csv(raw / "participants.csv", keep_default_na=False)
    sites = pd.read_csv(raw / "sites.csv")
    boxes = {b.key: dict(shown(b)) for b in _boxes(t, linked)}

    # enrolment
    assert boxes["screened"]["Assessed for eligibility (screened)"] == len(screen)
    inel = screen[screen.eligible == "no"]
    ne = boxes["not_eligible"]
    assert ne["Not eligible"] == len(inel) == sum(v for k, v in ne.items() if k != "Not eligible")
    for reason in REASONS["exclusion"]:
        assert ne[reason] == (inel.exclusion_reason == reason).sum()
    assert ne["already receiving the intervention"] == 0          # declared, never seen: shown with n = 0
    elig = screen[screen.eligible == "yes"]
    assert boxes["eligible"]["Eligible"] == len(elig) == len(screen) - len(inel)
    dec = boxes["declined"]
    assert dec["Declined to take part"] == (elig.consented == "no").sum() == sum(
        v for k, v in dec.items() if k != "Declined to take part")
    for reason, n in elig[elig.consented == "no"].decline_reason.value_counts().items():
        assert dec[reason] == n
    assert boxes["consented"]["Consented"] == (elig.consented == "yes").sum() == boxes["eligible"]["Eligible"] - dec[
        "Declined to take part"]

    # allocation
    arm_of = parts.site_id.map(sites.set_index("site_id").arm)
    total = 0
    for arm, label in (("control", "Usual care"), ("intervention", "Intervention")):
        a = boxes[f"allocated:{arm}"]
        total += a[f"Allocated to {label}"]
        assert a[f"Allocated to {label}"] == (arm_of == arm).sum()
        assert a["Sites"] == (sites.arm == arm).sum()
    assert total == boxes["consented"]["Consented"]
    trt = parts[arm_of == "intervention"]
    a = boxes["allocated:intervention"]
    assert a["Received the intervention (>= 1 session)"] == (pd.to_numeric(trt.sessions_attended) >= 1).sum()
    assert a["Received the intervention (>= 1 session)"] + a["Did not receive the intervention"] == len(trt)

    # follow-up: assessed from the wave files; withdrawn computed from the raw dates; lost = the rest
    base = pd.read_csv(raw / "wave_baseline.csv").set_index("participant_id").visit_date
    anchor = pd.to_datetime(parts.set_index("participant_id").consent_date)
    anchor.update(pd.to_datetime(base))
    wd = pd.to_datetime(parts.set_index("participant_id").withdrawal_date.replace("", None))
    why = parts.set_index("participant_id").withdrawal_reason
    for tp, month in zip(TPS, MONTHS):
        wave = pd.read_csv(raw / f"wave_{tp}.csv")
        for arm in ARMS:
            ids = parts.participant_id[arm_of == arm]
            s = boxes[f"status:{arm}:{tp}"]
            when = "baseline" if month == 0 else f"{tp} (month {month})"
            assessed = set(wave.participant_id) & set(ids)
            assert s[f"Assessed at {when}"] == len(assessed)
            due = anchor[ids] + pd.to_timedelta(month * 365.25 / 12, unit="D")
            w = [i for i in ids if i not in assessed and pd.notna(wd[i]) and wd[i] <= due[i]]
            assert s["Withdrawn by this time point"] == len(w)
            for reason in REASONS["withdrawal"]:
                assert s[reason] == sum(why[i] == reason for i in w)
            assert s["Withdrawn by this time point"] == sum(s[r] for r in REASONS["withdrawal"])
            assert s["Lost to follow-up (not withdrawn, not assessed)"] == len(ids) - len(assessed) - len(w)
            o = boxes[f"objectives:{arm}:{tp}"]
            sub = linked[(linked.timepoint == tp) & (linked.arm == arm)]
            for m in MEASURES:
                assert o[m] == sub[m].notna().sum() <= s[f"Assessed at {when}"]


def _overlaps(boxes: list[consort.Box]) -> list[tuple[str, str]]:
    """Pairs of boxes whose rectangles intersect (should be empty)."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h:
                out.append((a.key, b.key))
    return out


def _check_geometry(boxes, arms):
    fig, texts = consort.draw(boxes, arms)  # lays the boxes out
    try:
        assert all(b.w > 0 and b.h > 0 for b in boxes)
        assert _overlaps(boxes) == []
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        inv = ax.transData.inverted()
        for b in boxes:
            bb = texts[b.key].get_window_extent(renderer)
            (x0, y1), (x1, y0) = inv.transform([[bb.x0, bb.y0], [bb.x1, bb.y1]])  # y axis points down
            tol = 1e-6
            assert b.x - tol <= x0 and x1 <= b.x + b.w + tol, b.key
            assert b.y - tol <= y0 and y1 <= b.y + b.h + tol, b.key
        w, h = fig.get_size_inches()
        assert all(b.x >= 0 and b.y >= 0 and b.x + b.w <= w + 1e-9 and b.y + b.h <= h + 1e-9 for b in boxes)
    finally:
        plt.close(fig)


def test_boxes_never_overlap_and_text_fits(demo):
    t, linked = demo
    _check_geometry(_boxes(t, linked), ARMS)


def test_overlap_check_can_fail():
    a = consort.Box("a", "main", 0, [("x", 1, 0)], x=0, y=0, w=2, h=1)
    b = consort.Box("b", "side", 1, [("y", 1, 0)], x=1.5, y=0.5, w=1, h=1)
    assert _overlaps([a, b]) == [("a", "b")]


def test_long_reasons_and_labels_still_do_not_overlap(demo):
    t, linked = demo
    long = {"exclusion": ["a very long exclusion reason " * 4, "short"], "withdrawal": ["w" * 120]}
    _check_geometry(_boxes(t, linked, reasons=long), ARMS)


def test_single_arm_design(demo):
    t, linked = demo
    sites = t["sites"][t["sites"].arm == "intervention"]
    parts = t["participants"][t["participants"].arm == "intervention"]
    lk = linked[linked.arm == "intervention"]
    arms = feas.study_arms(parts, "control", "intervention")
    boxes = _boxes(t, lk, arms=arms, sites=sites, parts=parts)
    text = "\n".join(b.text for b in boxes)
    assert "Allocated to" not in text and "Enrolled (Intervention) (n = %d)" % len(parts) in text
    assert {b.column for b in boxes} == {"main", "side", "intervention"}
    _check_geometry(boxes, arms)


def test_diagram_bytes_are_deterministic(demo):
    t, linked = demo
    flow = feas.disposition(t["sites"], t["participants"], t["screening"], linked, arms=ARMS,
                            intervention_arm="intervention", measures=MEASURES)
    kw = dict(arms=ARMS, intervention_arm="intervention", arm_labels={}, timepoints=TPS, months=MONTHS,
              measures=MEASURES)
    svg1, png1 = consort.diagram(flow, **kw)
    svg2, png2 = consort.diagram(flow, **kw)
    assert svg1 == svg2 and png1 == png2
    assert b"<svg" in svg1[:500] and png1[:8] == b"\x89PNG\r\n\x1a\n"
