#!/usr/bin/env bash
# Pathways quick start.  On a fresh machine with Python 3.11 and pip:
#   bash pathways.sh demo   # set up, then run the embedded demo trial -> reports/demo/report.html
#   bash pathways.sh test   # set up, then run the whole test suite
# Other commands:
#   bash pathways.sh setup                 # only create/update the virtual environment (.venv)
#   bash pathways.sh run path/to/trial.yaml [targets] [snakemake options]   # run your own trial
#   bash pathways.sh simulate OUT_DIR [--design D] [--seed N]     # write a synthetic trial
#   bash pathways.sh verify [path/to/trial.yaml]  # rerun from raw data; compare with manifest.json
#   bash pathways.sh sap-lock path/to/trial.yaml [--by NAME] [--data-lock]  # freeze the analysis plan
# A config is checked as untrusted data before anything reads it (no YAML tags or templating:
# analysis/safe_yaml.py).  run and demo recover by themselves from a run that was killed (stale
# lock removed, half-made outputs made again); a run still working in the directory is refused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=${PATHWAYS_VENV:-.venv}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1; then PY=$c; break; fi
  done
fi

setup() {
  [ -n "$PY" ] || { echo "pathways: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
    echo "pathways: Python 3.11 is required, found $("$PY" --version 2>&1)" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  # Reinstall only when the pinned requirements change.
  stamp="$VENV/.pathways-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "pathways: installing pinned packages into $VENV (about a minute the first time)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.lock
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
    rm -f "$VENV"/.pathways-*
    touch "$stamp"
  fi
  # Refuse unsafe configs inside Snakemake itself, before it evaluates them (YTE templating):
  # a .pth start-up hook in the environment (analysis/snakemake_guard.py).
  # (-c, not -m: the .pth hook has already imported the module, and runpy would warn about it)
  "$VENV/bin/python" -c 'import sys; from analysis.snakemake_guard import main; sys.exit(main(["install"]))' >/dev/null
}

# Check a trial config as untrusted data (strict YAML, schema, files inside raw_dir) before
# Snakemake or anything else evaluates it.
check_config() {
  "$VENV/bin/python" -m analysis.config --check "$1"
}

# Run the workflow with config file $1; the other arguments are Snakemake targets and options,
# in any order.  Remove a lock left by a killed run (never one held by a live run), and remake
# any outputs a killed run left incomplete.  The config is passed as --configfile=FILE: Snakemake's
# --configfile takes one or more files, so a target after "--configfile FILE" would be read as
# a second config file.
snakemake_run() {
  local cfg=$1; shift
  "$VENV/bin/python" -m analysis.runlock "$@"
  "$VENV/bin/snakemake" --cores "${CORES:-2}" --rerun-incomplete "--configfile=$cfg" "$@"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup) setup ;;
  demo)
    setup
    check_config config/config.yaml
    snakemake_run config/config.yaml "$@"
    echo "pathways: report written to reports/demo/report.html"
    ;;
  run)
    [ $# -ge 1 ] || { echo "usage: bash pathways.sh run path/to/trial.yaml [targets] [snakemake options]" >&2; exit 2; }
    case "$1" in -*) echo "pathways: the config file comes first: bash pathways.sh run path/to/trial.yaml [targets] [snakemake options]" >&2; exit 2 ;; esac
    setup
    cfg=$1; shift
    check_config "$cfg"
    snakemake_run "$cfg" "$@"
    ;;
  verify)
    setup
    check_config "${1:-config/config.yaml}"
    "$VENV/bin/python" -m analysis.verify --configfile "${1:-config/config.yaml}" "${@:2}"
    ;;
  sap-lock)
    # Freeze the config's analysis plan: <trial>.sap.lock.json and the SAP document beside it
    # (analysis/sap.py, docs/sap.md); every later run is compared with it.
    [ $# -ge 1 ] || { echo "usage: bash pathways.sh sap-lock path/to/trial.yaml [--by NAME] [--data-lock] [--replace] [--formats html,pdf,docx]" >&2; exit 2; }
    setup
    check_config "$1"
    "$VENV/bin/python" -m analysis.sap lock "$@"
    ;;
  test)
    setup
    "$VENV/bin/python" -m pytest "$@"
    ;;
  simulate)
    setup
    "$VENV/bin/python" -m analysis.simulate "$@"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
