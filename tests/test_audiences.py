"""Reports a funder, an ethics committee and a trial statistician accept unedited (issue 14), and
disclosure control that holds across everything the funder and ethics committee receive (issue
13, item 11).

Most checks read one DAG run of a simulated cluster pilot (PDF and Word for every audience) or
re-render its report from its result tables with a changed table or config; the disclosure
rules themselves are also checked on small hand-made ledgers."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import zipfile
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import fast_analysis, visible_text

from analysis.config import load_config, score_labels
from analysis.disclosure import Ledger, Policy, attack, protect_ledger
from analysis.reporting import render_report
from analysis.reporting.common import level_label, money
from analysis.simulate import SimulationParameters, write_trial

ROOT = Path(__file__).resolve().parent.parent
FREE_TEXT = "said her husband Dave objects"
FRONT = {"objectives": ["Estimate recruitment and retention", "Estimate the site ICC of WEMWBS"],
         "registration": "ISRCTN00000000 (fictitious)"}


# ---- one DAG run, every audience and format --------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("audiences")
    write_trial(base / "raw", SimulationParameters(seed=5, trial_id="aud", n_sites=8, truth_mc_draws=2000))
    parts = (base / "raw/participants.csv").read_text().splitlines()
    i = next(k for k, line in enumerate(parts) if line.endswith("withdrew consent"))
    parts[i] = parts[i][: -len("withdrew consent")] + FREE_TEXT  # an undeclared free-text reason
    (base / "raw/participants.csv").write_text("\n".join(parts) + "\n")
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(trial_id="aud", title="Audience test trial")
    fast_analysis(cfg)
    cfg["report"]["formats"] = ["pdf", "docx"]
    cfg["report"]["front_matter"] = FRONT
    cfg["data"]["raw_dir"] = str(base / "raw")
    cfgfile = base / "aud.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PATHWAYS_PSEUDONYM_KEY="audience-test-key-0000000000000000000")
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(base),
                          "--configfile", str(cfgfile), "--cores", "2", "--quiet"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = base / "reports/aud"
    return dict(base=base, rep=rep, cfg=load_config(cfgfile),
                html={a: (rep / ("" if a == "statistician" else a) / "report.html").read_text(encoding="utf-8")
                      for a in ("statistician", "funder", "ethics")})


def _inputs(rep: Path) -> dict[str, str]:
    """The report rule's inputs, from a finished run (to re-render with a changed table)."""
    T, F = rep / "tables", rep / "figures"
    inputs = dict(feasibility=T / "feasibility.csv", recruitment=F / "recruitment.png",
                  progression=T / "progression.csv", table1=T / "table1.csv", consort=F / "consort.png",
                  retention=F / "retention_completion.png", safety=T / "safety.csv", flow=T / "flow_counts.csv",
                  effects=T / "effects.csv", descriptives=T / "descriptives.csv",
                  tipping_point=T / "tipping_point.csv", trajectory=F / "trajectory.png", forest=F / "forest.png",
                  scoring_summary=T / "scoring_summary.csv", reliability=T / "reliability.csv",
                  queries=rep / "data_queries.csv", manifest=rep / "manifest.json", cea=T / "cea.csv",
                  cea_by_arm=T / "cea_by_arm.csv", ceac=T / "ceac.csv", unit_costs=T / "unit_costs.csv",
                  ce_plane=F / "ce_plane.png", ceac_figure=F / "ceac.png")
    return {k: str(v) for k, v in inputs.items() if v.exists()}


def _text(html: str) -> str:
    """Visible text of a report: tags and embedded images removed, whitespace collapsed."""
    t = re.sub(r"<style.*?</style>", " ", visible_text(html), flags=re.S)
    t = re.sub(r"<br\s*/?>", " ", t)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", t))).strip()


def _pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        if os.environ.get("PATHWAYS_REQUIRE_BROWSER"):
            pytest.fail("pdftotext (poppler-utils) is required in CI but missing")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _docx_text(path: Path) -> str:
    xml = zipfile.ZipFile(path).read("word/document.xml").decode("utf-8")
    paras = re.findall(r"<w:p[ >].*?</w:p>", xml, re.S)
    return "\n".join(unescape("".join(re.findall(r"<w:t[^>]*>([^<]*)</w:t>", p))) for p in paras)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _headers_and_labels(html: str) -> list[str]:
    """Every column header and every row label (first cell) of every table in a report."""
    out = []
    for table in re.findall(r"<table.*?</table>", visible_text(html), re.S):
        for cell in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S):
            out.append(cell)
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
            first = re.match(r"\s*<td[^>]*>(.*?)</td>", row, re.S)
            if first:
                out.append(first.group(1))
    texts = [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<br\s*/?>", " ", c)))).strip()
             for c in out]
    return [t for t in dict.fromkeys(texts) if t]


AUDIENCES = ["statistician", "funder", "ethics"]


def _folder(run, audience):
    return run["rep"] if audience == "statistician" else run["rep"] / audience


@pytest.mark.e2e
@pytest.mark.parametrize("audience", AUDIENCES)
def test_every_header_and_label_is_in_the_pdf_and_word_text(run, audience):
    """Nothing is cut off: every column header and row label of every table is in the PDF's text
    layer (pdftotext) and in the Word document's XML."""
    html = run["html"][audience]
    wanted = _headers_and_labels(html)
    assert len(wanted) > 20
    folder = _folder(run, audience)
    for fmt, text in (("pdf", _pdf_text(folder / "report.pdf")), ("docx", _docx_text(folder / "report.docx"))):
        flat = _squash(text)
        missing = [w for w in wanted if _squash(w) not in flat]
        assert missing == [], f"{audience} {fmt}: {missing[:10]}"


@pytest.mark.e2e
@pytest.mark.parametrize("audience", AUDIENCES)
def test_no_table_is_wider_than_the_page(run, audience):
    """Laid out as the PDF is (WeasyPrint, A4 with landscape sections), no box runs past the
    page's content area and no text runs out of its table cell."""
    from analysis.render import layout_problems
    assert layout_problems(run["html"][audience]) == []


def test_layout_check_finds_a_cut_off_column():
    from analysis.render import layout_problems
    wide = "".join(f"<th>column_header_{i}</th>" for i in range(30))
    html = (f"<html><head><style>th {{ white-space: nowrap; }}</style></head><body><table><tr>{wide}</tr>"
            "</table></body></html>")
    problems = layout_problems(html)
    assert problems and "beyond the page" in problems[0]
    assert layout_problems("<html><body><table><tr><th>a</th><th>b</th></tr></table></body></html>") == []


@pytest.mark.e2e
@pytest.mark.parametrize("audience", AUDIENCES)
def test_labels_not_raw_names_and_no_python_repr_in_any_format(run, audience):
    labels = {k: v for k, v in score_labels(run["cfg"]).items() if v != k}
    folder = _folder(run, audience)
    texts = {"html": _text(run["html"][audience]), "pdf": _pdf_text(folder / "report.pdf"),
             "docx": _docx_text(folder / "report.docx")}
    for fmt, text in texts.items():
        raw = [c for c in labels if re.search(rf"(?<![\w/]){re.escape(c)}(?![\w.])", text)]
        assert raw == [], f"{audience} {fmt} shows raw names {raw}"
        for pattern in (r"\bnp\.", r"\bnan\b", r"\bNaN\b", r"\bNone\b", r"float64", r"\bsuppressed to suppressed\b"):
            assert not re.search(pattern, text), (audience, fmt, pattern, re.search(rf".{{40}}{pattern}.{{40}}", text))
    if audience != "ethics":
        assert "95% CI" in texts["html"]


def test_score_labels_name_every_outcome_column(demo_cfg):
    labels = score_labels(demo_cfg)
    assert labels["wemwbs_total"] == "WEMWBS (wellbeing)"  # outcomes.labels
    assert labels["ons4_anxiety"] == "ONS4 anxiety"  # from the instrument definition
    btheb = load_config(ROOT / "config/examples/btheb.yaml")
    assert score_labels(btheb)["bdi"] == "BDI-II (depression)"


# ---- funder report -------------------------------------------------------------------------------
@pytest.mark.e2e
def test_funder_report_wording_money_and_consort(run):
    html, text = run["html"]["funder"], _text(run["html"]["funder"])
    assert "GREEN ≤ 10.00%, RED > 20.00%" in text  # withdrawal: lower is better, in percent
    assert "GREEN ≥ 0.1" not in text and "Red < 0.2" not in text
    cea = pd.read_csv(run["rep"] / "tables/cea.csv")
    icer = cea[(cea.analysis == "cea_qaly") & (cea.measure == "icer")].estimate.iloc[0]
    assert money(icer) in text and (abs(icer) < 1000 or "," in money(icer))
    assert 'class="consort"' in html and "Analysed (participants in the primary model)" in text
    assert "Sites with a participant assessed" in text  # cluster extension: sites at each stage
    assert text.index("Feasibility") < text.index("Effect estimates")  # feasibility leads
    assert "Mean of WEMWBS (wellbeing)" in text  # figure caption uses labels


def test_money_and_levels():
    assert money(40249.3) == "£40,249" and money(-1234) == "−£1,234"
    assert level_label(0.95) == "95%" and level_label(0.9) == "90%" and level_label(0.975) == "97.5%"


def test_no_template_hard_codes_a_confidence_level():
    for p in (ROOT / "analysis/templates").rglob("*.j2"):
        assert not re.search(r"\b95 ?%", p.read_text()), p


@pytest.mark.e2e
def test_configured_confidence_level_is_used_everywhere(run, tmp_path):
    cfg = copy.deepcopy(run["cfg"])
    cfg["outcomes"]["confidence_level"] = 0.9
    cfg["feasibility"]["confidence_level"] = 0.9
    for audience in ("statistician", "funder"):
        text = _text(render_report(cfg, _inputs(run["rep"]), audience))
        assert "90% CI" in text and "95% CI" not in text.replace("(95% CI half-width)", ""), audience


# ---- statistician report -------------------------------------------------------------------------
@pytest.mark.e2e
def test_headline_states_follow_up_and_whole_model_counts(run):
    eff = pd.read_csv(run["rep"] / "tables/effects.csv")
    prim = eff[(eff.analysis == "primary") & (eff.outcome == run["cfg"]["primary"]["outcome"])
               & (eff.population == "all")]
    p = prim[prim.primary].iloc[0]
    # the whole model's observations are the follow-up rows of every time point
    assert p.n_model == prim.n.sum() and p.n_participants_model >= p.n
    assert p.n_intervention_model + p.n_control_model == p.n_participants_model
    text = _text(run["html"]["statistician"])
    assert (f"Analysed: {int(p.n)} participants at {p.timepoint}; the model used {int(p.n_model)} observations"
            in text), text[:2000]
    assert f"from {int(p.n_participants_model)} participants" in text


@pytest.mark.e2e
def test_statistician_consort_analysed_counts_and_order(run):
    eff = pd.read_csv(run["rep"] / "tables/effects.csv")
    text = _text(run["html"]["statistician"])
    labels = score_labels(run["cfg"])
    prim = eff[(eff.analysis == "primary") & (eff.population == "all")].drop_duplicates("outcome")
    box = text[text.index("Analysed (participants in the primary model)"):]
    for r in prim.itertuples():
        assert f"{labels[r.outcome]} (n = {int(r.n_control_model)})" in box
    assert text.index("Participant flow (CONSORT") < text.index("Outcomes Adjusted difference")
    assert "Sites with a participant assessed" in text


def _with_mi_warning(run, tmp_path, warning):
    inputs = _inputs(run["rep"])
    eff = pd.read_csv(inputs["effects"], keep_default_na=False)
    mi = eff.index[(eff.analysis == "multiple_imputation") & (eff.outcome == "eq5d5l_index")][0]
    eff.loc[mi, "warnings"] = warning
    eff.to_csv(tmp_path / "effects.csv", index=False)
    return {**inputs, "effects": str(tmp_path / "effects.csv")}


@pytest.mark.e2e
def test_a_warning_under_multiple_imputation_is_shown_where_the_estimate_is(run, tmp_path):
    warning = ("in some imputations: The optimiser did not converge: the variance components (relative SDs "
               "site_id 0, participant_id 0.4321) may not be at the maximum")
    text = _text(render_report(run["cfg"], _with_mi_warning(run, tmp_path, warning), "statistician"))
    assert "The optimiser did not converge" in text and "relative SDs site 0, participant 0.4321" in text


def test_optimiser_warning_writes_numbers_plainly():
    """A non-converged fit's warning names each variance component with a plain number, never
    numpy's repr (np.float64(0.0)) or a Python dict."""
    from analysis import lmm
    warn = lmm.convergence_warning(["site_id", "participant_id"], np.array([np.float64(0.0), 0.432149]))
    assert "relative SDs site_id 0, participant_id 0.4321)" in warn
    assert "np." not in warn and "{" not in warn and "'" not in warn
    assert lmm.plain_numbers(np.array([-1.5e-09, 2.0])) == "-1.5e-09, 2"


@pytest.mark.e2e
def test_methods_mention_multiple_imputation_only_when_it_ran(run, tmp_path):
    text = _text(run["html"]["statistician"])
    assert "multiple imputation by chained equations" in text and "van Buuren" in text and "Barnard J" in text
    eff = pd.read_csv(run["rep"] / "tables/effects.csv", keep_default_na=False)
    eff[eff.analysis != "multiple_imputation"].to_csv(tmp_path / "effects.csv", index=False)
    cfg = copy.deepcopy(run["cfg"])
    cfg["economics"]["enabled"] = False
    inputs = {k: v for k, v in _inputs(run["rep"]).items() if not k.startswith("ce")}
    text = _text(render_report(cfg, {**inputs, "effects": str(tmp_path / "effects.csv")}, "funder"))
    assert "multiple imputation" not in text.lower() and "Barnard J" not in text


@pytest.mark.e2e
def test_front_matter_in_every_report(run):
    for audience in AUDIENCES:
        text = _text(run["html"][audience])
        assert "Estimate the site ICC of WEMWBS" in text and "ISRCTN00000000 (fictitious)" in text
        assert ("report.front_matter.protocol" in text) == (audience == "statistician"), audience
    assert "front_matter" in (ROOT / "docs/config.md").read_text()


# ---- disclosure control across the release ---------------------------------------------------------
def _cells(html: str) -> dict[str, str]:
    """Every released count: key -> as shown ('12', '<5', '*')."""
    return {unescape(k): unescape(v) for k, v in
            re.findall(r'<span class="cell" data-cell="([^"]+)">([^<]*)</span>', html)}


def _pairs(html: str) -> list[tuple[str, str]]:
    """Every 'n / N' of people shown: (numerator key, denominator key); counts of sites (cells
    marked 'sites': organisations, not people) are left out."""
    sites = set()
    for cell in re.findall(r'<td class="[^"]*\bsites\b[^"]*">(.*?)</td>', html, re.S):
        sites |= set(re.findall(r'data-cell="([^"]+)"', cell))
    return [(unescape(n), unescape(d)) for n, d in
            re.findall(r'data-cell="([^"]+)">[^<]*</span> / <span class="cell" data-cell="([^"]+)"', html)
            if n not in sites]


BIG = 10 ** 9  # no count is larger: an upper bound the attacker does not know


def _bounds(v: str, pol: Policy):
    if v == pol.label:
        return (0 if pol.suppress_zero else 1, pol.threshold - 1)
    if v == "*":
        return (pol.threshold, BIG)
    return (int(v), int(v))


def _propagate(bounds: dict, identities: list) -> dict:
    """Interval arithmetic over total = sum(parts) until nothing tightens: what subtracting
    released totals and parts (and the ranges '<5' and '*' say) pins down."""
    b = dict(bounds)
    changed = True
    for _ in range(10_000):
        if not changed:
            break
        changed = False
        for total, parts in identities:
            lo = sum(b[p][0] for p in parts)
            hi = sum(b[p][1] for p in parts)
            t0, t1 = max(b[total][0], lo), min(b[total][1], hi)
            if (t0, t1) != b[total]:
                b[total], changed = (t0, t1), True
            for p in parts:
                others_lo = sum(b[q][0] for q in parts if q != p)
                others_hi = sum(b[q][1] for q in parts if q != p)
                p0, p1 = max(b[p][0], b[total][0] - others_hi), min(b[p][1], b[total][1] - others_lo)
                if (p0, p1) != b[p]:
                    b[p], changed = (p0, p1), True
        assert all(lo <= hi for lo, hi in b.values()), "the released counts contradict the identities"
    else:
        raise AssertionError("interval propagation did not settle")
    return b


def differencing_attack(funder_html: str, ethics_html: str, flow: pd.DataFrame, feas: pd.DataFrame,
                        pol: Policy) -> list[str]:
    """An attacker with both reports: every count they show, the accounting identities of a
    trial's flow (written here independently of analysis.reporting.audience), each shown
    'n / N' (N = n + the people n leaves out) and the guess that everyone withdrawn had withdrawn
    by the last time point.  Returns every small count the attacker pins down exactly."""
    cells = _cells(funder_html)
    for k, v in _cells(ethics_html).items():
        assert cells.get(k, v) == v, f"{k} shown as {cells[k]} to the funder but {v} to the ethics committee"
        cells[k] = v
    b = {k: _bounds(v, pol) for k, v in cells.items()}
    ids = []

    def key(stage, arm="all", tp="", reason=""):
        return f"flow:{stage}:{arm}:{tp}::{reason}"

    def ident(total, parts):
        if parts and total in b and all(p in b for p in parts):
            ids.append((total, parts))

    f = flow[flow.site_id == "all"]
    arms = [a for a in dict.fromkeys(f.arm) if a != "all"]
    tps = [t for t in dict.fromkeys(f.timepoint) if t]
    for a in ["all", *arms]:
        ident(key("screened", a), [key("eligible", a), key("not_eligible", a)])
        ident(key("eligible", a), [key("consented", a), key("declined", a)])
    for stage in ("not_eligible", "declined"):
        ident(key(stage), [k for k in b if k.startswith(f"flow:{stage}:all:::") and not k.endswith(":")])
    b.setdefault(key("allocated"), (0, BIG))
    ident(key("allocated"), [key("allocated", a) for a in arms])
    top = f[(f.reason == "") & (f.timepoint == "")]
    if top[top.stage == "consented"].n.sum() == top[top.stage == "allocated"].n.sum():
        ident(key("consented"), [key("allocated")])  # the same people, and the attacker may know it
    for tp in tps:
        for a in arms:
            ident(key("allocated", a), [key(s, a, tp) for s in ("assessed", "withdrawn", "lost")])
            ident(key("withdrawn", a, tp), [k for k in b if k.startswith(f"flow:withdrawn:{a}:{tp}::")
                                             and not k.endswith("::")])
        for s in ("assessed", "withdrawn", "lost"):
            ident(key(s, "all", tp), [key(s, a, tp) for a in arms])
    for a in arms:
        ident(key("allocated", a), [key(s, a) for s in ("received", "not_received", "receipt_unknown")
                                    if key(s, a) in b])
    w = feas[feas.indicator == "withdrawal"]
    wkey = next((k for k in b if k.startswith("feas:withdrawal:")), None)
    last = [key("withdrawn", a, tps[-1]) for a in arms]
    truth = f[(f.stage == "withdrawn") & (f.timepoint == tps[-1]) & (f.reason == "")].n.sum()
    if wkey and len(w) and int(w.numerator.iloc[0]) == truth:  # the guess holds: the attack may use it
        ident(wkey, last)
    hidden = []
    for n, d in _pairs(funder_html) + _pairs(ethics_html):
        c = f"complement:{n}:{d}"
        b[c] = (0, BIG)
        hidden.append(c)
        ident(d, [n, c])
    after = _propagate(b, ids)
    small = range(0 if pol.suppress_zero else 1, pol.threshold)
    exposed = [k for k, v in cells.items() if v in (pol.label, "*") and after[k][0] == after[k][1]
               and after[k][0] in small]
    exposed += [c for c in hidden if after[c][0] == after[c][1] and after[c][0] in small]
    return exposed


@pytest.mark.e2e
def test_no_small_count_can_be_recovered_from_both_reports(run):
    pol = Policy()
    flow = pd.read_csv(run["rep"] / "tables/flow_counts.csv", keep_default_na=False)
    feas = pd.read_csv(run["rep"] / "tables/feasibility.csv", keep_default_na=False)
    f, e = run["html"]["funder"], run["html"]["ethics"]
    assert len(_cells(f)) > 60 and len(_cells(e)) > 40 and len(_pairs(f)) > 10
    assert pol.label in unescape(f) + unescape(e)  # there are small counts to protect
    assert differencing_attack(f, e, flow, feas, pol) == []


def test_the_attack_finds_what_per_table_suppression_leaves_open():
    """The cases of issue 13: '81 / 85' reveals 4; funder 'Withdrawn 8' minus ethics 'Usual care
    5' gives 3, and three '<5' reasons adding up to 3 are 1 each."""
    pol = Policy()
    flow = pd.DataFrame([dict(stage="allocated", arm="c", site_id="all", timepoint="", n=85),
                         dict(stage="withdrawn", arm="c", site_id="all", timepoint="m9", n=5),
                         dict(stage="withdrawn", arm="i", site_id="all", timepoint="m9", n=3)]).assign(reason="")
    feas = pd.DataFrame([dict(indicator="withdrawal", numerator=8)])
    span = '<span class="cell" data-cell="{}">{}</span>'
    funder = (span.format("flow:assessed_measure:c:baseline:y:", 81) + " / " + span.format("flow:allocated:c:::", 85)
              + span.format("feas:withdrawal::all:num", 8))
    ethics = "".join(span.format(k, v) for k, v in [
        ("flow:withdrawn:c:m9::", 5), ("flow:withdrawn:i:m9::", "&lt;5"), ("flow:withdrawn:i:m9::a", "&lt;5"),
        ("flow:withdrawn:i:m9::b", "&lt;5"), ("flow:withdrawn:i:m9::c", "&lt;5")])
    exposed = differencing_attack(funder, ethics, flow, feas, pol)
    assert "flow:withdrawn:i:m9::" in exposed and "flow:withdrawn:i:m9::a" in exposed
    assert any(k.startswith("complement:") for k in exposed)


def test_ledger_protection_defeats_those_attacks():
    L = Ledger()
    for k, v in [("W", 8), ("c", 5), ("i", 3), ("ia", 1), ("ib", 1), ("ic", 1), ("late", 0),
                 ("alloc", 85), ("done", 81)]:
        L.add(k, v, published=k not in ("late",), known=k == "late")
    L.add("not_done", 4)
    L.identity("W", ["c", "i", "late"])
    L.identity("i", ["ia", "ib", "ic"])
    L.identity("alloc", ["done", "not_done"])
    rel = protect_ledger(L, Policy())
    assert rel.unprotected == []
    inferred = attack(L, rel.status, Policy())
    assert all(lo < hi for k, (lo, hi) in inferred.items() if L.values[k] < 5)
    assert rel.show("i") == "<5" and rel.show("alloc") == "85"  # the denominator everyone uses stays
    assert "*" in {rel.show("W"), rel.show("c")} and rel.show("done") == "*"


def test_a_zero_never_protects_and_star_reads_as_large():
    """x (<5) + y = 6 with y shown as '*' (so at least 5) pins x to 1: the protection must go
    further; a zero is never chosen as protection."""
    L = Ledger()
    for k, v in [("t", 6), ("x", 1), ("y", 5), ("z", 0)]:
        L.add(k, v, published=True)
    L.identity("t", ["x", "y", "z"])
    rel = protect_ledger(L, Policy())
    assert rel.show("z") == "0" and rel.show("x") == "<5"
    assert attack(L, rel.status, Policy(), ["x"])["x"][0] < attack(L, rel.status, Policy(), ["x"])["x"][1]


def test_a_band_shown_beside_a_withheld_count_is_known_to_the_attacker():
    """Withdrawn 6 of 90 = 5 (usual care) + 1 (intervention): with 6 withheld as '*' and 5 shown,
    the intervention's 1 is within 1-4 only; but a GREEN band for 'withdrawal <= 6.67%' says
    the total is at most 6, which pins it to 1 unless more is withheld."""
    def ledger(with_band):
        L = Ledger()
        for k, v in [("W", 6), ("c", 5), ("i", 1), ("late", 0), ("alloc", 90)]:
            L.add(k, v, published=k != "late", known=k == "late")
        L.add("stayed", 84)
        L.identity("W", ["c", "i", "late"])
        L.identity("alloc", ["W", "stayed"])
        if with_band:
            L.limit("W", 0, 6)
        return L
    rel = protect_ledger(ledger(False), Policy())
    lo, hi = attack(rel.ledger, rel.status, Policy(), ["i"])["i"]
    assert lo < hi and rel.unprotected == []
    # with the band nothing withheld can protect it: the report must withhold the band
    # (analysis.reporting.audience.Counts.build), which the ledger reports as unprotected
    assert protect_ledger(ledger(True), Policy()).unprotected == ["i"]


def test_single_arm_retention_figure_has_points():
    """A single-arm study's feasibility rows are 'all' (one group): the retention and completion
    figure plots them (it was empty)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import feasibility_plots
    table = pd.DataFrame([dict(indicator=ind, timepoint=tp, arm="all", estimate=0.8, ci_low=0.7, ci_high=0.9)
                          for ind in ("retention", "completion_y") for tp in ("baseline", "m6")])
    made = []
    real = plt.subplots

    def spy(*a, **k):
        fig, axes = real(*a, **k)
        made.append(axes)
        return fig, axes
    plt.subplots = spy
    try:
        feasibility_plots.retention_completion_png(table, ["baseline", "m6"], ["intervention"],
                                                   {"intervention": "Participants"}, ["y"],
                                                   labels={"y": "Wellbeing"}, single_arm=True)
    finally:
        plt.subplots = real
    axes = made[0].flat
    assert all(any(len(line.get_xdata()) for line in ax.lines) for ax in list(axes)[:2])
    assert axes[1].get_title() == "Completion: Wellbeing"
