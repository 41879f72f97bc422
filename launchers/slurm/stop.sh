#!/usr/bin/env bash
# Stop the single-node SLURM that launchers/slurm/start.sh started (packages, config and job history stay).
set -uo pipefail
[ "$(id -u)" = 0 ] || { echo "launchers/slurm/stop.sh: run as root" >&2; exit 1; }
scancel --state=PENDING,RUNNING --full >/dev/null 2>&1
for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
  pkill -x "$daemon" 2>/dev/null
  for _ in $(seq 1 40); do pgrep -x "$daemon" >/dev/null || break; sleep 0.25; done
  pkill -9 -x "$daemon" 2>/dev/null
done
echo "slurm: stopped"
