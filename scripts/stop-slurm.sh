#!/usr/bin/env bash
# Stop the single-node Slurm started by scripts/setup-slurm.sh: cancel nothing, just stop
# slurmd and slurmctld (and munged with --all) through their pid files, so only the daemons
# that script started are touched. Jobs still running die with slurmd's step daemons.
#
#   scripts/stop-slurm.sh          # stop slurmd + slurmctld
#   scripts/stop-slurm.sh --all    # also stop munged
set -euo pipefail

RUN_DIR=/run/slurm
say() { echo "stop-slurm: $*"; }

stop_pidfile() { # pidfile name
  local pidfile=$1 name=$2 pid
  if [[ ! -s "$pidfile" ]]; then say "$name: no pid file, not running"; return 0; fi
  pid="$(cat "$pidfile")"
  if ! kill -0 "$pid" 2>/dev/null; then say "$name: not running (stale pid $pid)"; rm -f "$pidfile"; return 0; fi
  kill "$pid"
  for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then say "$name (pid $pid) stopped"; return 0; fi
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  say "$name (pid $pid) did not stop within 10 s; killed"
}

stop_pidfile "$RUN_DIR/slurmd.pid" slurmd
stop_pidfile "$RUN_DIR/slurmctld.pid" slurmctld
if [[ "${1:-}" == --all ]]; then
  stop_pidfile /run/munge/munged.pid munged
fi
