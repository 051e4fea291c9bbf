#!/usr/bin/env bash
# make bench: the site benchmark (bench/bench.py), then the AD lookup benchmark (bench/ad.sh).
# BENCH_NODES (default 8), BENCH_REPEAT (default 3), BENCH_KEEP=1 keeps the containers.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/.venv/bin/python" bench/bench.py
if [ -x bench/ad.sh ]; then
  bench/ad.sh
fi
