#!/usr/bin/env bash
# Build the local test images when they are missing. No image registry is reachable, so the
# base image comes from Debian's archive with mmdebstrap (DESIGN.md) and the others build on it.
#   juno-test-base:bookworm   Debian 12 minbase with systemd, python3, sudo (node containers)
#   juno-test-samba:bookworm  base + Samba AD DC, provisioned at container start
# FORCE=1 rebuilds them.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
base=juno-test-base:bookworm
samba=juno-test-samba:bookworm

have() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

if ! have "$base"; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "harness: installing mmdebstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  fi
  echo "harness: building $base with mmdebstrap (about 30 s)" >&2
  mmdebstrap --quiet --variant=minbase \
    --include=systemd,systemd-sysv,python3,sudo,iproute2,procps,ca-certificates \
    --customize-hook='rm -f "$1"/etc/machine-id; touch "$1"/etc/machine-id' \
    bookworm - \
    | docker import --change 'CMD ["/lib/systemd/systemd"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$base" >/dev/null
fi

if [ -d "$top/tests/images/samba" ] && [ -f "$top/tests/images/samba/Dockerfile" ] && ! have "$samba"; then
  echo "harness: building $samba" >&2
  docker build -q -t "$samba" "$top/tests/images/samba" >/dev/null
fi
echo "harness: images ready: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^juno-test-' | tr '\n' ' ')" >&2
