#!/usr/bin/env bash
# Stop the dockerd that ensure-docker.sh started, and nothing else.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
pidfile="$top/.cache/dockerd.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  echo "harness: stopping dockerd (pid $pid) that the harness started" >&2
  kill "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
fi
rm -f "$pidfile"
