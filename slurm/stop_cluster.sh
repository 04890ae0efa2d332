#!/bin/bash
# Stop the daemons slurm/setup_cluster.sh started, by the PIDs it recorded (never by name).
# Usage: slurm/stop_cluster.sh STATE_DIR
STATE=${1:?usage: stop_cluster.sh STATE_DIR}
for d in slurmd slurmctld munged; do
  f="$STATE/$d.pid"; [ -f "$f" ] || continue
  p=$(cat "$f")
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { echo "$d ($p) ignored SIGTERM, sending SIGKILL"; kill -KILL "$p"; }
  fi
  echo "stopped $d ($p)"; rm -f "$f"
done
