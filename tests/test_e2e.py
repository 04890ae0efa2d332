"""End to end: the whole Snakemake DAG on a freshly simulated trial in a temporary directory."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.simulate import SimulationParameters, write_trial
from conftest import fast_analysis, visible_text

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
TABLES = ["feasibility.csv", "recruitment_by_site.csv", "flow_counts.csv", "effects.csv", "descriptives.csv",
          "scoring_summary.csv", "reliability.csv", "progression.csv", "table1.csv", "exclusions.csv",
          "tipping_point.csv", "cea.csv", "cea_by_arm.csv", "ceac.csv", "unit_costs.csv"]
KEYS = {"run1": "e2e-pseudonym-key-one-0000000000000", "run2": "e2e-pseudonym-key-two-1111111111111"}


def run_snakemake(workdir: Path, configfile: Path, *extra: str, quiet: bool = True,
                  key: str = KEYS["run1"]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(configfile), "--cores", "2", *(["--quiet"] if quiet else []), *extra]
    env = dict(os.environ, PATHWAYS_PSEUDONYM_KEY=key)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def small_trial(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    raw = base / "raw"
    params = SimulationParameters(seed=7, trial_id="e2e", n_sites=10, truth_mc_draws=100_000)
    write_trial(raw, params)
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(trial_id="e2e", title="End-to-end test trial")
    fast_analysis(cfg)
    cfg["data"]["raw_dir"] = str(raw)
    cfgfile = base / "trial.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    work = base / "run1"
    work.mkdir()
    res = run_snakemake(work, cfgfile)
    assert res.returncode == 0, res.stderr[-4000:]
    return dict(base=base, raw=raw, cfgfile=cfgfile, work=work,
                truth=json.loads((raw / "truth.json").read_text()))


def test_report_and_tables_exist(small_trial):
    rep = small_trial["work"] / "reports/e2e"
    assert (rep / "report.html").stat().st_size > 10_000
    for t in TABLES:
        assert len(pd.read_csv(rep / "tables" / t)) > 0, t
    for rule in ("ingest", "score", "link", "feasibility", "outcome", "report"):
        assert (small_trial["work"] / f"logs/e2e/{rule}.log").exists(), rule
    assert (small_trial["work"] / "data/processed/e2e/analysis.parquet").exists()


def test_primary_estimate_near_truth(small_trial):
    eff = pd.read_csv(small_trial["work"] / "reports/e2e/tables/effects.csv")
    truth = small_trial["truth"]["true_effects"]["wemwbs_total"]
    eff = eff[(eff.outcome == "wemwbs_total") & (eff.term == "intervention vs control")
              & eff.analysis.isin(["primary", "ancova", "multiple_imputation"])]
    assert len(eff) >= 3
    for r in eff.itertuples():
        z = (r.estimate - truth[r.timepoint]) / r.se
        assert abs(z) < 3.5, (r.timepoint, r.estimate, truth[r.timepoint], r.se)
        assert 2 < r.df < 500  # small-sample (Satterthwaite or Barnard-Rubin) df, not z
        assert r.ci_low < r.estimate < r.ci_high
    assert eff.primary.sum() == 1 and eff[eff.primary].timepoint.iloc[0] == "m9"


def test_report_is_self_contained_and_has_no_identifiers(small_trial):
    html = (small_trial["work"] / "reports/e2e/report.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    visible = visible_text(html)
    assert not re.search(r"\bP\d{4}\b", visible), "participant identifiers leaked into the report"
    assert not re.search(r"\bSCR\d{4}\b", visible)
    assert "95% CI" in html and "Feasibility" in html


def test_rerun_with_another_pseudonym_key_gives_byte_identical_tables(small_trial):
    """Determinism, and results that do not depend on the (secret) pseudonymisation key:
    a second run in a fresh directory with a different key gives byte-identical result
    tables, although every pseudonym differs."""
    work2 = small_trial["base"] / "run2"
    work2.mkdir()
    res = run_snakemake(work2, small_trial["cfgfile"], key=KEYS["run2"])
    assert res.returncode == 0, res.stderr[-4000:]
    p1 = pd.read_parquet(small_trial["work"] / "data/processed/e2e/participants.parquet").participant_id
    p2 = pd.read_parquet(work2 / "data/processed/e2e/participants.parquet").participant_id
    assert len(p1) == len(p2) and not set(p1) & set(p2)
    tables1 = sorted(p.name for p in (small_trial["work"] / "reports/e2e/tables").glob("*.csv"))
    assert set(TABLES) <= set(tables1)
    for t in tables1:
        a = (small_trial["work"] / "reports/e2e/tables" / t).read_bytes()
        b = (work2 / "reports/e2e/tables" / t).read_bytes()
        assert a == b, t


def test_dry_run_shows_every_stage(small_trial):
    res = run_snakemake(small_trial["base"], small_trial["cfgfile"], "-n", "--forceall", quiet=False)
    assert res.returncode == 0, res.stderr[-2000:]
    for rule in ("ingest", "score", "link", "feasibility", "outcome", "report"):
        assert re.search(rf"^{rule}\s+1$", res.stdout, re.M), rule


def test_invalid_config_fails_naming_the_key(small_trial):
    cfg = yaml.safe_load(small_trial["cfgfile"].read_text())
    cfg["feasibility"]["ci_method"] = "exact"
    bad = small_trial["base"] / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = run_snakemake(small_trial["base"], bad, "-n")
    assert res.returncode != 0
    assert "config key feasibility.ci_method" in res.stderr + res.stdout


def test_bad_raw_data_stops_the_run_and_writes_nothing(small_trial, tmp_path):
    import shutil
    raw = tmp_path / "raw"
    shutil.copytree(small_trial["raw"], raw)
    text = (raw / "wave_m3.csv").read_text().split("\n")
    text[1] = "P9999" + text[1][text[1].index(","):]
    (raw / "wave_m3.csv").write_text("\n".join(text))
    cfg = yaml.safe_load(small_trial["cfgfile"].read_text())
    cfg["data"]["raw_dir"] = str(raw)
    cfgfile = tmp_path / "t.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    res = run_snakemake(tmp_path, cfgfile)
    assert res.returncode != 0
    log = (tmp_path / "logs/e2e/ingest.log").read_text()
    assert "wave_m3.csv, line 2, participant P9999, column 'participant_id'" in log
    assert not list((tmp_path / "data").rglob("*.parquet")) if (tmp_path / "data").exists() else True


def test_raw_files_unchanged_after_the_run(small_trial):
    """The SHA-256 manifest taken at ingest still matches the raw files after the whole DAG."""
    from analysis.io import sha256_file
    man = pd.read_csv(small_trial["work"] / "data/processed/e2e/raw_manifest.csv", dtype=str)
    assert len(man) >= 8
    for r in man.itertuples():
        assert sha256_file(small_trial["raw"] / r.file) == r.sha256, r.file


def test_report_html_is_the_executed_notebooks_rendering(small_trial):
    from test_report_notebook import assert_report_is_the_notebooks
    rep = small_trial["work"] / "reports/e2e"
    assert_report_is_the_notebooks(rep / "report.ipynb", rep / "report.html")


def test_snakemake_report_has_every_output_with_its_caption(small_trial, tmp_path):
    """`snakemake --report` works on a finished run; every report() output has a caption file."""
    import zipfile
    smk = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    captions = re.findall(r'report\([^()]*?caption="([^"]+)"', smk)
    assert len(captions) >= 15 and len(captions) == smk.count("report(")
    for c in captions:
        assert (ROOT / "workflow/rules" / c).resolve().is_file(), c
    out = tmp_path / "report.zip"
    res = run_snakemake(small_trial["work"], small_trial["cfgfile"], "--report", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    names = zipfile.ZipFile(out).namelist()
    assert any(n.endswith("/report.html") for n in names)
    assert {"effects.csv", "feasibility.csv", "forest.png", "consort.svg"} <= {n.rsplit("/", 1)[-1] for n in names}
