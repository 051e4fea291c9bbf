#!/usr/bin/env bash
# Closing line of `make test`: the tests counted from the JUnit files pytest and molecule wrote.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
rc=${1:-0}
python3 - "$top/tests/output" "$rc" <<'PY'
import glob, os, sys
import xml.etree.ElementTree as ET
out, rc = sys.argv[1], int(sys.argv[2])
passed = failed = skipped = 0
for f in sorted(glob.glob(os.path.join(out, "*.xml"))):
    root = ET.parse(f).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        t, fl, er, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        passed += t - fl - er - sk
        failed += fl + er
        skipped += sk
if rc and not failed:
    failed = 1  # a target failed outside the counted tests (lint, sanity, a molecule step)
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
