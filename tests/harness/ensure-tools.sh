#!/usr/bin/env bash
# Make sure the host tools that the tests and the lab call are there, so that no step passes
# having skipped part of its checks (ansible-test sanity, for one, only warns when shellcheck is
# missing). Installs what is missing from Debian's archive when it can (root and apt-get), and
# otherwise stops with the names of the missing tools and the packages that bring them.
#   tests/harness/ensure-tools.sh [tool ...]     default: every tool below
set -euo pipefail

# tool -> Debian package
declare -A pkg=(
  [git]=git [make]=make [python3]=python3 [mmdebstrap]=mmdebstrap [shellcheck]=shellcheck
  [npm]=npm [dpkg-deb]=dpkg [dockerd]=docker.io
)
tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=(git make python3 mmdebstrap shellcheck npm dpkg-deb dockerd)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
for t in "${tools[@]}"; do
  [ -n "${pkg[$t]:-}" ] || [ "$t" = go ] || { echo "ensure-tools: unknown tool '$t' (known: ${!pkg[*]})" >&2; exit 2; }
  have "$t" || missing+=("$t")
done
# Go builds the lab's Kubernetes components (tests/components/build.py). Debian 12's golang (1.19)
# is too old for Kubernetes 1.32, so it is not installed from there: name it instead.
for i in "${!missing[@]}"; do
  if [ "${missing[$i]}" = go ]; then
    echo "harness: the go command is missing: Go 1.23 or newer is needed to build the lab's Kubernetes components" \
         "(https://go.dev/doc/install); \`make lab RENDER=1\` runs the lab without them" >&2
    exit 1
  fi
done
# python3 -m venv needs the venv module (Debian ships it apart as python3-venv).
if have python3 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
  pkg[python3-venv]=python3-venv
fi
[ "${#missing[@]}" -gt 0 ] || exit 0

pkgs=()
for t in "${missing[@]}"; do pkgs+=("${pkg[$t]}"); done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "harness: installing ${pkgs[*]} from Debian's archive (missing: ${missing[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  exit 0
fi
{
  echo "harness: missing tools: ${missing[*]}"
  echo "  install them first (Debian/Ubuntu: apt-get install ${pkgs[*]});"
  echo "  docs/getting-started.md lists what other distributions need."
} >&2
exit 1
