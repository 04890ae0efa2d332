#!/bin/bash
# Start a single-node SLURM cluster on localhost (munged, slurmctld, slurmd as plain background
# processes: no systemd, no cgroups, no accounting database) and wait until the node is idle.
# Usage: slurm/setup_cluster.sh STATE_DIR    (root; Debian's slurm-wlm and munge installed)
# The daemons' PIDs are written to STATE_DIR; slurm/stop_cluster.sh STATE_DIR stops them.
# What this takes on a sandboxed Debian 12 machine is recorded in docs/performance.md and
# README.md ("Scale-out on SLURM"): AccountingStorageType none (so Snakemake's SLURM executor
# needs --slurm-status-command squeue), DefMemPerCPU (else a job without --mem blocks the node),
# slurmctld -c (a clean start, no jobs recovered from an earlier run).
set -euo pipefail
STATE=${1:?usage: setup_cluster.sh STATE_DIR}
mkdir -p "$STATE"
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {printf "%d", $2 / 1024 - 4096}' /proc/meminfo)
[ "$MEM" -gt 1000 ] || MEM=1000

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=pathways
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=300
SlurmctldDebug=info
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdDebug=info
SlurmdLogFile=/var/log/slurm/slurmd.log
DefMemPerCPU=1000
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

# munge: Debian's postinst made /etc/munge/munge.key; run the daemon as the munge user
if ! munge -n >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged --foreground &
  echo $! > "$STATE/munged.pid"
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null

install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm
install -d /var/lib/slurm/slurmd
/usr/sbin/slurmctld -D -c &          # -c: start clean (-i would recover the last run's jobs)
echo $! > "$STATE/slurmctld.pid"
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
/usr/sbin/slurmd -D &
echo $! > "$STATE/slurmd.pid"
for _ in $(seq 150); do sinfo -h -N -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo -N -o '%N %T %c %m'
sinfo -h -N -o %T | grep -qx idle || { echo "slurm node is not idle; see /var/log/slurm/*.log" >&2; exit 1; }
