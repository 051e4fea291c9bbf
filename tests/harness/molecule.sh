#!/usr/bin/env bash
# Run each molecule scenario named on the command line (converge, idempotence, check, verify),
# keep going after a failure, and write tests/output/molecule.xml (JUnit) with one case each.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
mkdir -p tests/output
cases=""
failed=0
for s in "$@"; do
  echo "=== molecule test -s $s"
  start=$(date +%s)
  if molecule test -s "$s"; then
    cases+="<testcase classname=\"molecule\" name=\"$s\" time=\"$(( $(date +%s) - start ))\"/>"
  else
    failed=$((failed + 1))
    cases+="<testcase classname=\"molecule\" name=\"$s\" time=\"$(( $(date +%s) - start ))\"><failure message=\"molecule test -s $s failed\"/></testcase>"
    echo "=== molecule test -s $s FAILED"
  fi
done
printf '<?xml version="1.0"?>\n<testsuite name="molecule" tests="%d" failures="%d" errors="0" skipped="0">%s</testsuite>\n' \
  "$#" "$failed" "$cases" > tests/output/molecule.xml
echo "molecule: $(( $# - failed )) passed, $failed failed"
[ "$failed" -eq 0 ]
