"""docs/inventory.md documents exactly the juno_* settings the preflight spec checks."""

import os
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_inventory_doc_is_generated_from_the_spec():
    r = subprocess.run([sys.executable, os.path.join(TOP, "tests", "harness", "gen_inventory_doc.py"), "--check"], check=False)
    assert r.returncode == 0, "docs/inventory.md is out of date: run tests/harness/gen_inventory_doc.py"
