#!/usr/bin/env bash
# Build the local test images when they are missing. No image registry is reachable, so the
# base image comes from Debian's archive with mmdebstrap (DESIGN.md) and the others build on it.
#   juno-test-base:bookworm   Debian 12 minbase with systemd, python3, sudo (node containers)
#   juno-test-samba:bookworm  base + Samba AD DC, provisioned at container start
#   juno-test-etcd:bookworm   base + Debian etcd-server/etcd-client 3.4, rsync, ssh
# FORCE=1 rebuilds them.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
base=juno-test-base:bookworm

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
    --customize-hook="rm -f \"\$1\"/etc/machine-id; touch \"\$1\"/etc/machine-id" \
    bookworm - \
    | docker import --change 'CMD ["/lib/systemd/systemd"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$base" >/dev/null
fi

# Images built from tests/images/<dir>/Dockerfile carry a hash of that directory as a label and
# are rebuilt when the directory changes.
build_dir() {
  local image=$1 dir="$top/tests/images/$2" sum
  [ -f "$dir/Dockerfile" ] || return 0
  sum=$(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f '{{ index .Config.Labels "juno.hub.source" }}' "$image" 2>/dev/null)" = "$sum" ]; then
    return 0
  fi
  echo "harness: building $image" >&2
  mkdir -p "$top/.cache"
  if ! docker build -q --label "juno.hub.source=$sum" -t "$image" "$dir" >"$top/.cache/build-$2.log" 2>&1; then
    cat "$top/.cache/build-$2.log" >&2
    exit 1
  fi
}
build_dir juno-test-samba:bookworm samba
build_dir juno-test-etcd:bookworm etcd
echo "harness: images ready: $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^juno-test-' | sort | tr '\n' ' ')" >&2
