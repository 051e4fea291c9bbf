#!/usr/bin/env bash
# Build the local test images. No image registry is reachable, so the base image comes from
# Debian's archive with mmdebstrap (DESIGN.md) and the others build on it.
#   juno-test-base:bookworm   Debian 12 minbase with systemd, python3, sudo (node containers)
#   juno-test-samba:bookworm  base + Samba AD DC, provisioned at container start
#   juno-test-etcd:bookworm   base + Debian etcd-server/etcd-client 3.4, rsync, ssh
#
# Each image carries the label juno.hub.source: a hash of everything that builds it (this
# script's recipe, its directory under tests/images/, the parent image's ID) and of the Docker
# engine's version. An image whose label differs is rebuilt; one that matches is reused.
# FORCE=1, and every CI run (CI=true), rebuild all of them from nothing (mmdebstrap again, docker
# build --no-cache), so that what an earlier run left on the machine cannot hide a broken cold
# path (issue: the README's commands failed on a fresh machine while CI passed).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
base=juno-test-base:bookworm
force=${FORCE:-0}
# Once per CI run: `make test` sets JUNO_IMAGES_BUILT for the targets after its first build.
[ "${CI:-}" != true ] || [ "${JUNO_IMAGES_BUILT:-}" = 1 ] || force=1
mkdir -p "$top/.cache"

engine=$(docker version -f '{{.Server.Version}}')
label() { docker image inspect -f '{{ index .Config.Labels "juno.hub.source" }}' "$1" 2>/dev/null || true; }
hash() { sha256sum | cut -c1-16; }
fresh() { [ "$force" != 1 ] && [ "$(label "$1")" = "$2" ]; }
built=() reused=()

# The base image: a Debian 12 minbase root file system imported as one layer, then a two-line
# Dockerfile on top for what `docker import --change` cannot set on Debian's engine (20.10
# rejects STOPSIGNAL there). systemd stops cleanly on SIGRTMIN+3, so `docker stop` is quick.
base_pkgs=systemd,systemd-sysv,python3,sudo,iproute2,procps,ca-certificates
base_sum=$(printf 'mmdebstrap minbase bookworm %s\nengine %s\n' "$base_pkgs" "$engine" | hash)
if fresh "$base" "$base_sum"; then
  reused+=("$base")
else
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    "$top/tests/harness/ensure-tools.sh" mmdebstrap
  fi
  echo "harness: building $base from Debian's archive with mmdebstrap (about a minute)" >&2
  start=$SECONDS
  mmdebstrap --quiet --variant=minbase --include="$base_pkgs" \
    --customize-hook="rm -f \"\$1\"/etc/machine-id; touch \"\$1\"/etc/machine-id" \
    bookworm - \
    | docker import - juno-test-rootfs:bookworm >/dev/null
  ctx=$(mktemp -d)
  printf 'FROM juno-test-rootfs:bookworm\nCMD ["/lib/systemd/systemd"]\nSTOPSIGNAL SIGRTMIN+3\n' >"$ctx/Dockerfile"
  if ! docker build -q --no-cache --label "juno.hub.source=$base_sum" -t "$base" "$ctx" >"$top/.cache/build-base.log" 2>&1; then
    cat "$top/.cache/build-base.log" >&2
    exit 1
  fi
  rm -rf "$ctx"
  docker rmi juno-test-rootfs:bookworm >/dev/null
  built+=("$base ($((SECONDS - start)) s)")
fi

# Images built from tests/images/<dir>/Dockerfile on the base.
build_dir() {
  local image=$1 dir="$top/tests/images/$2" sum start
  [ -f "$dir/Dockerfile" ] || return 0
  sum=$( { (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
           docker image inspect -f '{{.Id}}' "$base"; echo "engine $engine"; } | hash)
  if fresh "$image" "$sum"; then
    reused+=("$image")
    return 0
  fi
  echo "harness: building $image from tests/images/$2" >&2
  start=$SECONDS
  if ! docker build -q --no-cache --label "juno.hub.source=$sum" -t "$image" "$dir" >"$top/.cache/build-$2.log" 2>&1; then
    cat "$top/.cache/build-$2.log" >&2
    exit 1
  fi
  built+=("$image ($((SECONDS - start)) s)")
}
build_dir juno-test-samba:bookworm samba
build_dir juno-test-etcd:bookworm etcd
# Layers of replaced images are dangling now; drop them so repeated builds do not fill the disk.
docker image prune -f --filter label=juno.hub.source >/dev/null 2>&1 || true
echo "harness: Docker engine $engine; images built: ${built[*]:-none}; reused: ${reused[*]:-none}" >&2
