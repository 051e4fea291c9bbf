#!/usr/bin/env bash
# make bench-ad: the AD lookup benchmark (bench/ad_bench.py). 10,000 users in a group nested
# three levels in a Samba AD DC container; juno.hub.ad_group_info's lookup against the naive one
# (a query per group level and per member), measured in the same run.
# Prints the table and writes bench/results/ad.json; exits 1 when the acceptance (<= 30 round
# trips, >= 10x faster than naive) is not met. Arguments go to ad_bench.py (--keep, --reuse, --users N).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
py="$top/.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$top/bench/ad_bench.py" "$@"
