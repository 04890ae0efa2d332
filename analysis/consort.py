"""The CONSORT 2010 pilot-extension flow diagram (Eldridge SM et al. BMJ 2016;355:i5239, item 13).

The diagram is built in three steps, each testable on its own:

1. ``build_boxes`` turns the disposition table (``analysis.feasibility.disposition``) into boxes:
   enrolment (screened, not eligible with reasons, eligible, declined with reasons, consented),
   allocation per arm (participants, sites, received the intervention), and per arm and time
   point a status box (assessed, withdrawn with reasons, lost to follow-up) followed by a box of
   the numbers assessed for each objective (measure).  A single-arm study has one column and
   no allocation split.  Every number shown is one of the box's ``items``.
2. ``layout`` measures every box's text with matplotlib's renderer and places the boxes on a
   grid of rows (one box height each) and columns (one box width each), so that no two boxes
   can overlap.
3. ``draw`` renders the boxes and connecting arrows; ``to_svg`` / ``to_png`` give
   deterministic bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from analysis.feasibility import flow_n  # noqa: E402

FONT_SIZE = 8.0
PAD = 0.08          # inches between a box edge and its text
ROW_GAP = 0.28      # inches between rows
COL_GAP = 0.45      # inches between arm columns
SIDE_GAP = 0.45     # inches between the enrolment column and its side boxes
MARGIN = 0.15
DPI = 110
INDENT = "    "


@dataclass
class Box:
    """One box of the flow: its text lines, the counts they show, and its place on the grid."""

    key: str
    column: str                     # "main", "side" or an arm code
    row: int
    items: list[tuple[str, int | None, int]] = field(default_factory=list)  # (label, n, indent level)
    x: float = 0.0                  # inches from the left edge
    y: float = 0.0                  # inches from the top edge (top of the box)
    w: float = 0.0
    h: float = 0.0

    @property
    def n(self) -> int:
        return self.items[0][1]

    def count(self, label: str) -> int:
        for lab, n, _ in self.items:
            if lab == label:
                return n
        raise KeyError(f"box {self.key} has no line {label!r}")

    @property
    def text(self) -> str:
        return "\n".join(INDENT * lvl + (lab if n is None else f"{lab} (n = {n})") for lab, n, lvl in self.items)


def _reasons(flow: pd.DataFrame, stage: str, arm: str = "all", timepoint: str = "") -> list[tuple[str, int, int]]:
    f = flow[(flow.stage == stage) & (flow.arm == arm) & (flow.site_id == "all")
             & (flow.timepoint == timepoint) & (flow.reason != "")]
    return [(r.reason, int(r.n), 1) for r in f.itertuples()]


def _has(flow: pd.DataFrame, stage: str) -> bool:
    return bool((flow.stage == stage).any())


def build_boxes(flow: pd.DataFrame, *, arms: list[str], intervention_arm: str | None, arm_labels: dict[str, str],
                timepoints: list[str], months: list[float | None], measures: list[str],
                receipt_min_sessions: int = 1, measure_labels: dict[str, str] | None = None,
                allocated_to: str = "Allocated to") -> list[Box]:
    """The boxes of the flow diagram (see the module docstring).  Stages the trial did not
    collect are absent from the disposition table and so from the diagram: without a screening
    log the flow starts at enrolment, without withdrawal data the participants not assessed are
    one count, without attendance there is no received/not received split."""
    single = len(arms) == 1
    if _has(flow, "screened"):
        boxes = [
            Box("screened", "main", 0, [("Assessed for eligibility (screened)", flow_n(flow, "screened"), 0)]),
            Box("not_eligible", "side", 1, [("Not eligible", flow_n(flow, "not_eligible"), 0)]
                + _reasons(flow, "not_eligible")),
            Box("eligible", "main", 2, [("Eligible", flow_n(flow, "eligible"), 0)]),
            Box("declined", "side", 3, [("Declined to take part", flow_n(flow, "declined"), 0)]
                + _reasons(flow, "declined")),
            Box("consented", "main", 4, [("Consented" + (" and enrolled" if single else ""),
                                          flow_n(flow, "consented"), 0)]),
        ]
        row = 5
    else:
        boxes = [Box("enrolled", "main", 0, [("Enrolled (no screening log: eligibility and consent not "
                                              "collected)", flow_n(flow, "enrolled"), 0)])]
        row = 1
    for arm in arms:
        label = arm_labels.get(arm, arm)
        items = [(f"Enrolled ({label})" if single else f"{allocated_to} {label}", flow_n(flow, "allocated", arm), 0)]
        if _has(flow, "allocated_sites"):
            items.append(("Sites", flow_n(flow, "allocated_sites", arm), 1))
        if arm == intervention_arm and _has(flow, "received"):
            s = "session" if receipt_min_sessions == 1 else "sessions"
            items += [(f"Received the intervention (>= {receipt_min_sessions} {s})", flow_n(flow, "received", arm), 1),
                      ("Did not receive the intervention", flow_n(flow, "not_received", arm), 1)]
            if _has(flow, "receipt_unknown"):
                items.append(("Attendance not recorded", flow_n(flow, "receipt_unknown", arm), 1))
        boxes.append(Box(f"allocated:{arm}", arm, row, items))
    row += 1
    withdrawal = _has(flow, "withdrawn")
    for k, (tp, month) in enumerate(zip(timepoints, months)):
        when = "baseline" if k == 0 else (f"{tp} (month {month:g})" if month is not None else tp)
        for arm in arms:
            items = [(f"Assessed at {when}", flow_n(flow, "assessed", arm, timepoint=tp), 0)]
            if _has(flow, "assessed_sites"):
                items.append(("Sites with a participant assessed",
                              flow_n(flow, "assessed_sites", arm, timepoint=tp), 1))
            if withdrawal:
                items.append(("Withdrawn by this time point", flow_n(flow, "withdrawn", arm, timepoint=tp), 0))
                items += _reasons(flow, "withdrawn", arm, tp)
                items.append(("Lost to follow-up (not withdrawn, not assessed)",
                              flow_n(flow, "lost", arm, timepoint=tp), 0))
            else:
                items.append(("Not assessed (withdrawal not recorded)", flow_n(flow, "lost", arm, timepoint=tp), 0))
            boxes.append(Box(f"status:{arm}:{tp}", arm, row, items))
            obj = [(f"Assessed for each objective at {tp}", None, 0)]
            obj += [((measure_labels or {}).get(m, m), flow_n(flow, "assessed_measure", arm, timepoint=tp, measure=m), 1)
                    for m in measures]
            boxes.append(Box(f"objectives:{arm}:{tp}", arm, row + 1, obj))
        row += 2
    return boxes


def _measure(texts: list[str]) -> list[tuple[float, float]]:
    """Width and height in inches of each text at FONT_SIZE, measured by the Agg renderer."""
    fig = plt.figure(figsize=(2, 2), dpi=DPI)
    renderer = fig.canvas.get_renderer()
    out = []
    for t in texts:
        art = fig.text(0, 0, t, fontsize=FONT_SIZE, ha="left", va="top")
        bb = art.get_window_extent(renderer)
        out.append((bb.width / DPI, bb.height / DPI))
        art.remove()
    plt.close(fig)
    return out


def layout(boxes: list[Box], arms: list[str]) -> tuple[float, float]:
    """Size every box from its measured text and place it; returns the figure (width, height).

    Rows are stacked top to bottom, each as tall as its tallest box plus ROW_GAP; the arm
    columns sit side by side, each as wide as its widest box plus COL_GAP; side boxes start
    SIDE_GAP to the right of the widest enrolment box.  Boxes in different rows are separated
    vertically and boxes in one row horizontally, so no two boxes overlap.
    """
    for b, (tw, th) in zip(boxes, _measure([b.text for b in boxes])):
        b.w, b.h = tw + 2 * PAD, th + 2 * PAD
    col_w = {a: max(b.w for b in boxes if b.column == a) for a in arms}
    x, col_x = MARGIN, {}
    for a in arms:
        col_x[a] = x
        x += col_w[a] + COL_GAP
    arms_right = x - COL_GAP
    main_w = max(b.w for b in boxes if b.column == "main")
    cx = max((MARGIN + arms_right) / 2, MARGIN + main_w / 2)
    side_x = cx + main_w / 2 + SIDE_GAP
    y = MARGIN
    for r in sorted({b.row for b in boxes}):
        in_row = [b for b in boxes if b.row == r]
        for b in in_row:
            b.y = y
            if b.column == "main":
                b.x = cx - b.w / 2
            elif b.column == "side":
                b.x = side_x
            else:
                b.x = col_x[b.column] + (col_w[b.column] - b.w) / 2
        y += max(b.h for b in in_row) + ROW_GAP
    width = max(b.x + b.w for b in boxes) + MARGIN
    height = y - ROW_GAP + MARGIN
    return width, height


def _arrow(ax, p, q, head=True):
    ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>" if head else "-", mutation_scale=9,
                                 lw=0.9, color="#333333", shrinkA=0, shrinkB=0))


def draw(boxes: list[Box], arms: list[str]):
    """Lay out and draw the diagram; returns (figure, {box key: text artist})."""
    width, height = layout(boxes, arms)
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    texts = {}
    for b in boxes:
        ax.add_patch(Rectangle((b.x, b.y), b.w, b.h, fill=True, facecolor="white",
                               edgecolor="#1b6ca8" if b.column != "side" else "#777777", lw=1.0))
        texts[b.key] = ax.text(b.x + PAD, b.y + PAD, b.text, fontsize=FONT_SIZE, ha="left", va="top")
    main = [b for b in boxes if b.column == "main"]
    cx = main[0].x + main[0].w / 2
    for a, b in zip(main, main[1:]):
        _arrow(ax, (cx, a.y + a.h), (cx, b.y))
    for s in (b for b in boxes if b.column == "side"):
        _arrow(ax, (cx, s.y + s.h / 2), (s.x, s.y + s.h / 2))
    last = main[-1]
    firsts = [min((b for b in boxes if b.column == a), key=lambda b: b.row) for a in arms]
    if len(arms) == 1:
        f = firsts[0]
        _arrow(ax, (cx, last.y + last.h), (f.x + f.w / 2, f.y))
    else:
        ymid = last.y + last.h + (firsts[0].y - last.y - last.h) / 2
        _arrow(ax, (cx, last.y + last.h), (cx, ymid), head=False)
        xs = [f.x + f.w / 2 for f in firsts]
        _arrow(ax, (min(xs), ymid), (max(xs), ymid), head=False)
        for f, x in zip(firsts, xs):
            _arrow(ax, (x, ymid), (x, f.y))
    for a in arms:
        col = sorted((b for b in boxes if b.column == a), key=lambda b: b.row)
        for p, q in zip(col, col[1:]):
            x = q.x + q.w / 2
            _arrow(ax, (x, p.y + p.h), (x, q.y))
    return fig, texts


def to_svg(fig) -> bytes:
    buf = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": "pathways-consort", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def diagram(flow: pd.DataFrame, **kwargs) -> tuple[bytes, bytes]:
    """SVG and PNG bytes of the flow diagram (keyword arguments as ``build_boxes``)."""
    boxes = build_boxes(flow, **kwargs)
    fig, _ = draw(boxes, kwargs["arms"])
    from analysis.figures import not_registered_note
    not_registered_note(fig, inside=True)  # an exploratory run (analysis.sap) says so on the diagram
    try:
        return to_svg(fig), to_png(fig)
    finally:
        plt.close(fig)
