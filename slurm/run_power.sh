#!/bin/bash
# Run the power workflow (Snakemake target `power`) on the embedded demo twice: once on local
# cores and once through real sbatch jobs on a single-node SLURM cluster started on localhost,
# and check that every result table is byte-identical.
#
#   sudo bash slurm/run_power.sh            # Debian 12, root (installs slurm-wlm and munge)
#
# Environment: PATHWAYS_VENV (default .venv; must have the pinned packages of requirements.lock,
# which include snakemake-executor-plugin-slurm: `bash pathways.sh setup`), REPLICATES (40),
# BATCH_SIZE (10), WORK (a new folder under /tmp), KEEP_WORK (1: keep it).
# Takes about 4-6 minutes on 2 cores (docs/performance.md).  Stops every daemon it started, by PID.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PATHWAYS_VENV:-$ROOT/.venv}
PY="$VENV/bin/python"
REPLICATES=${REPLICATES:-40}
BATCH_SIZE=${BATCH_SIZE:-10}
WORK=${WORK:-$(mktemp -d /tmp/pathways-slurm.XXXXXX)}
SECONDS=0
say() { echo "== slurm/run_power.sh [$SECONDS s] $*"; }

[ "$(id -u)" -eq 0 ] || { echo "run as root: it installs packages and starts the SLURM daemons" >&2; exit 2; }
[ -x "$PY" ] || { echo "no Python environment at $VENV: run 'bash pathways.sh setup' (or set PATHWAYS_VENV)" >&2; exit 2; }
"$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null || {
  echo "snakemake-executor-plugin-slurm is not installed in $VENV: run 'bash pathways.sh setup'" >&2; exit 2; }

# ---- 1. Debian's SLURM and munge ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge from apt"
  for attempt in $(seq 30); do   # another process may hold the dpkg lock for a while
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         slurm-wlm munge >/dev/null; then break; fi
    [ "$attempt" -eq 30 ] && { echo "apt-get install slurm-wlm munge failed" >&2; exit 1; }
    sleep 10
  done
fi
dpkg-query -W -f='${Package} ${Version}\n' slurmctld slurmd munge 2>/dev/null

# ---- 2. the trial config: the demo, a short simulation, no economic evaluation ------------------
mkdir -p "$WORK"
say "working in $WORK"
"$PY" - "$ROOT/config/config.yaml" "$WORK/power.yaml" "$REPLICATES" "$BATCH_SIZE" <<'PYEOF'
import sys
import yaml
src, dst, reps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cfg = yaml.safe_load(open(src, encoding="utf-8"))
cfg["economics"] = {"enabled": False}
cfg["planning"]["simulation"] = {"replicates": reps, "batch_size": batch}
yaml.safe_dump(cfg, open(dst, "w", encoding="utf-8"), sort_keys=False)
PYEOF
for run in local slurm; do
  mkdir -p "$WORK/$run/data/raw"
  cp -r "$ROOT/data/raw/demo" "$WORK/$run/data/raw/demo"
done
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATHWAYS_PSEUDONYM_KEY=${PATHWAYS_PSEUDONYM_KEY:-pathways-slurm-check}  # results do not depend on it
export PATH="$VENV/bin:$PATH"  # SLURM jobs run this environment's python -m snakemake (sbatch --export=ALL)
SNAKE=("$PY" -m snakemake power --snakefile "$ROOT/Snakefile" --configfile "$WORK/power.yaml")

# ---- 3. local run --------------------------------------------------------------------------------
say "local run (2 cores)"
t0=$SECONDS
timeout -k 15 3600 "${SNAKE[@]}" --directory "$WORK/local" --cores 2 > "$WORK/local.log" 2>&1
rc=$?
t_local=$((SECONDS - t0))
[ $rc -eq 0 ] || { echo "local run failed (exit $rc); see $WORK/local.log" >&2; tail -20 "$WORK/local.log"; exit 1; }

# ---- 4. single-node cluster, then the same workflow through sbatch ------------------------------
say "starting the cluster"
"$ROOT/slurm/setup_cluster.sh" "$WORK/state" > "$WORK/cluster.log" 2>&1 || {
  cat "$WORK/cluster.log"; "$ROOT/slurm/stop_cluster.sh" "$WORK/state"; exit 1; }
trap '"$ROOT/slurm/stop_cluster.sh" "$WORK/state"' EXIT
first_job=$(sbatch --parsable --wrap true -o /dev/null)  # job IDs continue across restarts
say "cluster up: $(sinfo -h -N -o '%N %T %c CPUs %m MB')"
t0=$SECONDS
timeout -k 15 3600 "${SNAKE[@]}" --directory "$WORK/slurm" --profile "$ROOT/profiles/slurm" --jobs 4 \
  --default-resources slurm_partition=main mem_mb=1000 runtime=60 \
  --slurm-status-command squeue --slurm-no-account --slurm-init-seconds-before-status-checks 2 \
  > "$WORK/slurm.log" 2>&1
rc=$?
t_slurm=$((SECONDS - t0))
[ $rc -eq 0 ] || { echo "SLURM run failed (exit $rc); see $WORK/slurm.log" >&2; tail -30 "$WORK/slurm.log"; exit 1; }
jobs=$(squeue --states=all -h -o '%i %T' | awk -v f="$first_job" '$1 > f && $2 == "COMPLETED"' | wc -l)
in_jobs=$(grep -ho "slurm job [0-9]*" "$WORK"/slurm/logs/demo/power/*.log | sort -u | wc -l)
say "SLURM run: $jobs jobs COMPLETED in squeue; $in_jobs power jobs logged their SLURM_JOB_ID"

# ---- 5. the same results -------------------------------------------------------------------------
status=0
n=0
while IFS= read -r f; do
  n=$((n + 1))
  cmp -s "$WORK/local/$f" "$WORK/slurm/$f" || { echo "DIFFERS: $f"; status=1; }
done < <(cd "$WORK/local" && find reports/demo/tables data/processed/demo/power -name '*.csv' | sort)
[ "$in_jobs" -gt 0 ] || { echo "no power job ran inside SLURM" >&2; status=1; }
say "$n result tables compared: $([ $status -eq 0 ] && echo 'all byte-identical' || echo 'DIFFERENCES')"
say "times: local ${t_local} s, SLURM ${t_slurm} s"
cat "$WORK/slurm/reports/demo/tables/power_simulation.csv" | cut -d, -f1-11
[ "${KEEP_WORK:-1}" = 1 ] || rm -rf "$WORK"
exit $status
