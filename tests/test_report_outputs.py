"""Provenance manifest and reviewer verification (rerun from raw, compare hashes)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import fast_analysis, visible_text

from analysis.manifest import config_hash
from analysis.simulate import SimulationParameters, write_trial
from analysis.verify import compare

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
FREE_TEXT = "said her husband Dave objects"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("verify")
    write_trial(base / "raw", SimulationParameters(seed=5, trial_id="v", n_sites=8, truth_mc_draws=2000))
    # a free-text withdrawal reason that must never reach funder or ethics outputs
    parts = (base / "raw/participants.csv").read_text().splitlines()
    i = next(k for k, line in enumerate(parts) if line.endswith("withdrew consent"))
    parts[i] = parts[i][: -len("withdrew consent")] + FREE_TEXT
    (base / "raw/participants.csv").write_text("\n".join(parts) + "\n")
    # an adverse-event log: ten events among the first seven participants, one serious, and a
    # free-text description that must never leave ingest
    import pandas as pd
    p = pd.read_csv(base / "raw/participants.csv")
    who = list(p.participant_id[:7]) + list(p.participant_id[:3])
    when = list(pd.to_datetime(p.consent_date[:7]) + pd.Timedelta(days=30)) + \
        list(pd.to_datetime(p.consent_date[:3]) + pd.Timedelta(days=60))
    pd.DataFrame({"participant_id": who, "event_date": [d.strftime("%Y-%m-%d") for d in when],
                  "serious": ["yes"] + ["no"] * 9, "related": ["no"] * 10,
                  "description": [FREE_TEXT] + ["minor"] * 9}).to_csv(base / "raw/adverse_events.csv", index=False)
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(trial_id="v")
    cfg["data"]["adverse_events"] = "adverse_events.csv"
    fast_analysis(cfg)
    cfg["report"]["formats"] = ["pdf", "docx"]
    cfg["data"]["raw_dir"] = str(base / "raw")
    cfgfile = base / "v.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(base),
                          "--configfile", str(cfgfile), "--cores", "2", "--quiet"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return base, cfgfile


def _verify(base, cfgfile, manifest):
    return subprocess.run([sys.executable, "-m", "analysis.verify", "--configfile", str(cfgfile),
                           "--manifest", str(manifest)], capture_output=True, text=True, cwd=base)


def test_manifest_contents(run):
    base, _ = run
    m = json.loads((base / "reports/v/manifest.json").read_text())
    assert set(m["raw_inputs"]) >= {"participants.csv", "wave_baseline.csv", "sites.csv"}
    assert {"tables/effects.csv", "tables/feasibility.csv", "data_queries.csv"} <= set(m["result_tables"])
    assert m["packages"]["pandas"] and m["python"]["version"].startswith("3.11")
    assert len(m["config_sha256"]) == 64 and m["seed"] == 20261122
    html = (base / "reports/v/report.html").read_text()
    assert m["result_tables"]["tables/effects.csv"] in html  # provenance appendix shows the hashes


def test_verify_matches_then_detects_a_changed_table(run, tmp_path):
    base, cfgfile = run
    manifest = base / "reports/v/manifest.json"
    ok = _verify(base, cfgfile, manifest)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "MATCH: all" in ok.stdout
    m = json.loads(manifest.read_text())
    m["result_tables"]["tables/effects.csv"] = "0" * 64
    del m["result_tables"]["tables/descriptives.csv"]
    tampered = tmp_path / "manifest.json"
    tampered.write_text(json.dumps(m))
    bad = _verify(base, cfgfile, tampered)
    assert bad.returncode == 1
    assert "DIFFERS  tables/effects.csv" in bad.stdout and "NEW      tables/descriptives.csv" in bad.stdout


def test_compare_and_config_hash_ignore_raw_location():
    assert compare({"a": "1", "b": "2"}, {"a": "1", "b": "2"}) == []
    assert compare({"a": "1"}, {"b": "1"}) == ["MISSING  a (in the manifest, not produced by the rerun)",
                                               "NEW      b (produced by the rerun, not in the manifest)"]
    c1 = {"trial_id": "t", "data": {"raw_dir": "/x", "sites": "s.csv"}}
    c2 = {"trial_id": "t", "data": {"raw_dir": "data/raw", "sites": "s.csv"}}
    assert config_hash(c1) == config_hash(c2)
    assert config_hash(c1) != config_hash({"trial_id": "t", "data": {"raw_dir": "/x", "sites": "t.csv"}})


# ---- browser check --------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def test_report_renders_in_headless_chromium(run, tmp_path):
    """Open the HTML in Debian's Chromium: no console errors, no request leaves the file,
    every figure decodes; keep a screenshot as a test artefact (reports/<trial>/screenshot.png)."""
    import os
    if not CHROMIUM.exists():
        if os.environ.get("PATHWAYS_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required (PATHWAYS_REQUIRE_BROWSER is set) but /usr/bin/chromium is missing")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api")
    base, _ = run
    html = base / "reports/v/report.html"
    console, requests, failed = [], [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: console.append((m.type, m.text)))
        page.on("pageerror", lambda e: console.append(("pageerror", str(e))))
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        title = page.title()
        shot = base / "reports/v/screenshot.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert [c for c in console if c[0] in ("error", "pageerror")] == []
    external = [u for u in requests if not (u.startswith("file://") or u.startswith("data:"))]
    assert external == [] and failed == []
    assert len(images) >= 2 and all(ok and w > 100 for ok, w in images)
    assert "Pathways report" in title
    assert shot.stat().st_size > 50_000
    artefacts = ROOT / "reports" / "test-artefacts"
    artefacts.mkdir(parents=True, exist_ok=True)
    (artefacts / "report-screenshot.png").write_bytes(shot.read_bytes())


# ---- funder and ethics outputs: disclosure control and no identifiers ------------------------
def _cells(html: str, cls: str) -> list[str]:
    import re
    return [re.sub(r"<[^>]+>", "", c).strip() for c in
            re.findall(rf'<td class="[^"]*\b{cls}\b[^"]*">(.*?)</td>', html, re.S)]


def _docx_text(path: Path) -> str:
    import re
    import zipfile
    return re.sub(r"<[^>]+>", " ", zipfile.ZipFile(path).read("word/document.xml").decode("utf-8"))


@pytest.mark.parametrize("audience", ["funder", "ethics"])
def test_audience_outputs_are_disclosure_safe(run, audience):
    import pandas as pd

    from output_scan import check_no_small_counts
    base, _ = run
    folder = base / "reports/v" / audience
    html = (folder / "report.html").read_text()
    docx = _docx_text(folder / "report.docx")
    assert (folder / "report.pdf").read_bytes().startswith(b"%PDF-")
    counts = _cells(html, "count")
    assert len(counts) >= 10
    flat = [x.strip() for c in counts for x in c.replace("/", " ").split()]
    assert check_no_small_counts(flat) == [], f"small counts shown: {check_no_small_counts(flat)}"
    assert "<5" in html.replace("&lt;", "<")  # the small cells are there, suppressed
    if audience == "ethics":  # the adverse-event counts are there, disclosure-controlled
        assert "serious adverse events" in html and "Allocated" in html
    if audience == "funder":  # site-level counts (fidelity) are about organisations: shown, marked as sites
        assert any(c.endswith("sites") for c in _cells(html, "sites"))
    raw_ids = pd.read_csv(base / "raw/participants.csv").participant_id
    pseudonyms = pd.read_parquet(base / "data/processed/v/participants.parquet").participant_id
    for text in (visible_text(html), docx):  # base64 images once held "Dave" by chance
        assert FREE_TEXT not in text and "Dave" not in text
        leaked = [x for x in list(raw_ids) + list(pseudonyms) if str(x) in text]
        assert leaked == [], leaked[:5]
        assert "data_queries.csv" not in text  # the query log (raw IDs, lines) is not referenced
        # the funder report says no p-values are shown, and shows none
        assert "p-value" not in text.lower().replace("no p-values are shown", "") or audience == "ethics"
