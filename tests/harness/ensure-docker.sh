#!/usr/bin/env bash
# Make a Docker engine available for the tests and the lab.
# Installs Debian's docker.io when dockerd is missing and starts dockerd in the background when
# no engine answers. When it starts dockerd it records the PID in .cache/dockerd.pid, so that
# `tests/harness/stop-docker.sh` stops only what the harness started.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$top/.cache"

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
  echo "harness: installing Debian's docker.io (dockerd is missing)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
echo "harness: starting $dockerd_bin in the background (log: .cache/dockerd.log)" >&2
nohup "$dockerd_bin" >"$top/.cache/dockerd.log" 2>&1 &
echo $! >"$top/.cache/dockerd.pid"
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "harness: dockerd did not answer within 60 s; see .cache/dockerd.log" >&2
tail -20 "$top/.cache/dockerd.log" >&2 || true
exit 1
