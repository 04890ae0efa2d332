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
from conftest import fast_analysis, reversed_keys, visible_text

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


def run_config(base: Path, cfg: dict, name: str = "trial.yaml") -> tuple[Path, Path]:
    """Write ``cfg`` to ``base/name``, run the whole workflow on it in ``base/run`` and require
    success; returns (working directory, config file)."""
    cfgfile = base / name
    cfgfile.write_text(yaml.safe_dump(cfg))
    work = base / "run"
    work.mkdir()
    res = run_snakemake(work, cfgfile)
    assert res.returncode == 0, res.stderr[-4000:]
    return work, cfgfile


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
    return dict(base=base, raw=raw, cfgfile=cfgfile, work=work, console=res.stdout + res.stderr,
                truth=json.loads((raw / "truth.json").read_text()))


def test_report_and_tables_exist(small_trial):
    rep = small_trial["work"] / "reports/e2e"
    assert (rep / "report.html").stat().st_size > 10_000
    for t in TABLES:
        assert len(pd.read_csv(rep / "tables" / t)) > 0, t
    for rule in ("ingest", "score", "link", "feasibility", "outcome", "report"):
        assert (small_trial["work"] / f"logs/e2e/{rule}.log").exists(), rule
    assert (small_trial["work"] / "data/processed/e2e/analysis.parquet").exists()


def test_console_shows_progress_and_no_spurious_errors(small_trial):
    """Issue 15 item 2: the long stages say where they are on the console (not only in their
    logs); a successful run prints no ERROR (the report kernel's shutdown used to print
    'ERROR | KeyboardInterrupt caught in kernel') and no kernel warnings."""
    out = small_trial["console"]
    for k, y in enumerate(["wemwbs_total", "ucla3_total", "eq5d5l_index", "rguk_total"], 1):
        assert re.search(rf"^\[outcome\] {y} \({k}/4\) done in [0-9.]+ s$", out, re.M), out[-3000:]
    assert re.search(r"^\[economics\] cost-effectiveness \(multiple imputation, 500 bootstrap replicates\) done in",
                     out, re.M)
    assert "ERROR" not in out and "KeyboardInterrupt" not in out and "IPKernelApp" not in out, out[-3000:]
    log = (small_trial["work"] / "logs/e2e/outcome.log").read_text()
    assert "wemwbs_total (1/4) done in" in log  # and in the rule's log


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


def planned_jobs(res: subprocess.CompletedProcess) -> dict[str, int]:
    """{rule: jobs} from a dry run's job stats; {} when there is nothing to be done."""
    out = res.stdout + res.stderr
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:"):].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}


RERUNS = [  # (config edit, the jobs a dry run then plans)
    ("nothing", lambda c: c, {}),
    ("every mapping's keys in reverse order", reversed_keys, {}),
    ("report.formats: pdf added", lambda c: c["report"].update(formats=["pdf"]) or c, {"document": 3, "all": 1}),
    ("report.formats: docx, funder report only", lambda c: c["report"].update(formats=["docx"], audiences=["funder"])
     or c, {"document": 2, "all": 1}),
    ("report.decimals", lambda c: c["report"].update(decimals=3) or c,
     {"report": 1, "audience_report": 2, "all": 1}),
    ("title", lambda c: c.update(title="Another title") or c, {"report": 1, "audience_report": 2, "all": 1}),
    # planning reads the economics stage's per-participant table (its cost and QALY inputs)
    ("economics.bootstrap.replicates", lambda c: c["economics"]["bootstrap"].update(replicates=600) or c,
     {"economics": 1, "planning": 1, "report": 1, "audience_report": 2, "all": 1}),
    ("outcomes.tipping_point.shifts_sd", lambda c: c["outcomes"]["tipping_point"].update(shifts_sd=[0.3]) or c,
     {"outcome": 1, "report": 1, "audience_report": 2, "all": 1}),
    ("feasibility.recruitment_target", lambda c: c["feasibility"].update(recruitment_target=140) or c,
     {"feasibility": 1, "report": 1, "audience_report": 2, "all": 1}),
]


@pytest.mark.parametrize("what,edit,jobs", RERUNS, ids=[r[0] for r in RERUNS])
def test_a_config_edit_reruns_only_the_stages_that_read_it(small_trial, tmp_path, what, edit, jobs):
    """Issue 15 item 1, on a finished run: each rule is passed only the config keys its stage
    reads (analysis/stages/config_keys.py), so an edit plans only the jobs that read the edited
    key and those downstream of them; when a job reruns because a parameter changed,
    Snakemake's message shows only the changed part of the config."""
    cfg = edit(yaml.safe_load(small_trial["cfgfile"].read_text()))
    cfgfile = tmp_path / "edited.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg, sort_keys=False))
    res = run_snakemake(small_trial["work"], cfgfile, "-n", quiet=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert planned_jobs(res) == jobs, res.stdout[-3000:]
    for reason in re.findall(r"reason: Params have changed.*", res.stdout):
        assert len(reason) < 1000 and "service_items" not in reason, reason[:1000]


def test_pathways_run_passes_targets_and_options_to_snakemake(small_trial, tmp_path):
    """Issue 15 item 3: `bash pathways.sh run CONFIG [targets] [snakemake options]`, in any
    order: a target is a target, not a second config file; setup prints no warnings."""
    from conftest import make_pathways_venv, pathways_env
    venv = make_pathways_venv(tmp_path / "venv")
    env = pathways_env(venv, PATHWAYS_PSEUDONYM_KEY=KEYS["run1"])
    work = tmp_path / "work"
    target = "reports/e2e/tables/feasibility.csv"
    upto_feasibility = {"ingest": 1, "score": 1, "link": 1, "feasibility": 1}
    forms = [([target, "-n", "-d", str(work)], upto_feasibility),
             (["-n", "-d", str(work), target], upto_feasibility),
             (["-d", str(work), "--dry-run", "--quiet", "rules", "--", target], upto_feasibility),
             (["-n", "-d", str(work)], {"ingest": 1, "score": 1, "link": 1, "feasibility": 1, "outcome": 1,
                                        "economics": 1, "planning": 1, "report": 1, "audience_report": 2,
                                        "all": 1})]
    for extra, jobs in forms:
        res = subprocess.run(["bash", str(ROOT / "pathways.sh"), "run", str(small_trial["cfgfile"]), *extra],
                             env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (extra, res.stdout[-2000:], res.stderr[-2000:])
        assert planned_jobs(res) == jobs, (extra, res.stdout[-2000:])
        assert "Warning" not in res.stderr, (extra, res.stderr[-2000:])
    assert not work.exists() or not list(work.rglob("*.parquet"))  # dry runs made nothing
    for bad in ([], ["-n", str(small_trial["cfgfile"])]):
        res = subprocess.run(["bash", str(ROOT / "pathways.sh"), "run", *bad], env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 2 and "bash pathways.sh run path/to/trial.yaml [targets]" in res.stderr, bad


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


# ---- hardening (issue 13): recovery, stale inputs, key changes, release files ---------------------

def test_identifier_files_are_owner_only_and_manifest_records_the_key_fingerprint(small_trial):
    from analysis.pseudonym import key_fingerprint
    work = small_trial["work"]
    for f in ("reports/e2e/data_queries.csv", "data/processed/e2e/ingest_queries.csv",
              "data/processed/e2e/pseudonyms.parquet", "logs/e2e/ingest.log"):
        assert (work / f).stat().st_mode & 0o077 == 0, f
    assert (work / "reports/e2e/tables/effects.csv").stat().st_mode & 0o044  # results stay shareable
    manifest = json.loads((work / "reports/e2e/manifest.json").read_text())
    assert manifest["pseudonym_key_fingerprint"] == key_fingerprint(KEYS["run1"].encode())
    assert KEYS["run1"] not in (work / "reports/e2e/manifest.json").read_text()


def test_changed_key_reruns_ingest(small_trial):
    res = run_snakemake(small_trial["work"], small_trial["cfgfile"], "-n", quiet=False, key=KEYS["run2"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert re.search(r"^ingest\s+1$", res.stdout, re.M)
    same = run_snakemake(small_trial["work"], small_trial["cfgfile"], "-n", quiet=False)
    assert "Nothing to be done" in same.stdout + same.stderr


def test_misspelt_input_after_a_run_stops_without_rebuilding_anything(small_trial, tmp_path):
    """Issue 13 item 5: the funder and ethics reports were rebuilt from the old processed data."""
    cfg = yaml.safe_load(small_trial["cfgfile"].read_text())
    cfg["data"]["participants"] = "participant.csv"
    bad = tmp_path / "misspelt.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    rep = small_trial["work"] / "reports/e2e"
    before = {p: p.stat().st_mtime_ns for p in rep.rglob("*") if p.is_file()}
    res = run_snakemake(small_trial["work"], bad)
    assert res.returncode != 0
    assert "config key data.participants: file not found in data.raw_dir: participant.csv" in res.stdout + res.stderr
    assert {p: p.stat().st_mtime_ns for p in rep.rglob("*") if p.is_file()} == before
    # an input renamed to another existing file is a new input: ingest reruns
    cfg["data"]["participants"] = "participants.csv"
    cfg["data"]["fidelity"] = None  # and what needs it: the plan must stay coherent
    cfg["feasibility"]["fidelity_threshold"] = None
    cfg["feasibility"]["progression_criteria"] = [c for c in cfg["feasibility"]["progression_criteria"]
                                                  if c["indicator"] != "fidelity"]
    cfg["outcomes"]["effect_modifiers"] = [m for m in cfg["outcomes"]["effect_modifiers"]
                                           if m.get("source") != "fidelity"]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(cfg))
    plan = run_snakemake(small_trial["work"], other, "-n", quiet=False)
    assert plan.returncode == 0 and re.search(r"^ingest\s+1$", plan.stdout, re.M), plan.stdout[-3000:]


def test_kill_9_mid_stage_then_pathways_run_recovers_by_itself(small_trial, tmp_path):
    """Issue 13 item 7: SIGKILL to the whole process group in the middle of a stage leaves a
    stale lock and half-made outputs; a second run while the first is alive is refused; the
    next `pathways.sh run` removes the stale lock, remakes what was incomplete, and its result
    tables are byte-identical to a clean run's."""
    import signal
    import time

    from conftest import make_pathways_venv, pathways_env
    venv = make_pathways_venv(tmp_path / "venv")
    work = tmp_path / "work"
    work.mkdir()
    cmd = ["bash", str(ROOT / "pathways.sh"), "run", str(small_trial["cfgfile"]), "-d", str(work), "--quiet"]
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cmd, env=pathways_env(venv, PATHWAYS_PSEUDONYM_KEY=KEYS["run1"], CORES="1"),
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for(cond, what, timeout=600):
        t0 = time.time()
        while not cond():
            assert first.poll() is None, f"the first run ended before {what}:\n" + (tmp_path / "first.log").read_text()[-3000:]
            assert time.time() - t0 < timeout, f"timed out waiting for {what}"
            time.sleep(0.2)

    try:
        wait_for(lambda: (work / "logs/e2e/ingest.log").exists(), "ingest started")
        second = subprocess.run(cmd, env=pathways_env(venv, PATHWAYS_PSEUDONYM_KEY=KEYS["run1"]),
                                capture_output=True, text=True, timeout=600)
        assert first.poll() is None, "the first run finished before the concurrent one was tried"
        assert second.returncode != 0
        assert "another Snakemake run is working in" in second.stderr
        assert "lock" in (second.stdout + second.stderr).lower()
        incomplete = work / ".snakemake/incomplete"
        wait_for(lambda: (work / "data/processed/e2e/analysis.parquet").exists()
                 and incomplete.is_dir() and any(incomplete.iterdir()), "a stage after link running")
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
        log.close()
    assert not (work / "reports/e2e/report.html").exists()
    assert list((work / ".snakemake/locks").glob("*.lock")), "expected the killed run's stale lock"
    rerun = subprocess.run(cmd, env=pathways_env(venv, PATHWAYS_PSEUDONYM_KEY=KEYS["run1"]),
                           capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "removed a stale lock" in rerun.stderr
    clean, recovered = small_trial["work"] / "reports/e2e", work / "reports/e2e"
    names = sorted(p.relative_to(clean) for p in clean.rglob("*.csv"))
    assert len(names) >= len(TABLES) and names == sorted(p.relative_to(recovered) for p in recovered.rglob("*.csv"))
    for n in names:
        assert (clean / n).read_bytes() == (recovered / n).read_bytes(), n


def test_a_run_that_fails_half_way_leaves_no_outputs(tmp_path):
    """Issue 13 item 6: a mistake found only after ingest (here an effect modifier whose cutoff
    leaves one level, known only once the data are read) stops the run, and the run removes
    the outputs it had written; its logs stay."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(trial_id="halfway")
    fast_analysis(cfg)
    cfg["data"]["raw_dir"] = str(ROOT / "data/raw/demo")
    cfg["economics"]["enabled"] = False
    cfg["outcomes"]["effect_modifiers"] = [{"variable": "age", "cutoff": 200}]
    cfgfile = tmp_path / "halfway.yaml"
    cfgfile.write_text(yaml.safe_dump(cfg))
    work = tmp_path / "run"
    work.mkdir()
    res = run_snakemake(work, cfgfile, quiet=False)
    assert res.returncode != 0
    assert "fewer than two levels" in (work / "logs/halfway/outcome.log").read_text()
    assert "removed the" in res.stdout + res.stderr
    left = [p for d in ("data/processed/halfway", "reports/halfway") for p in (work / d).rglob("*") if p.is_file()]
    assert left == []
    assert (work / "logs/halfway/ingest.log").exists()
