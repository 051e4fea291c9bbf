"""Unit tests import the collection's plugins as ansible_collections.juno.hub.* (make setup links it)."""

import json
import os
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(TOP, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


@pytest.fixture(scope="session")
def ansible_doc():
    """``ansible_doc(name)``: the ``ansible-doc --json`` entry of a juno.hub module, as the user sees it."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"))
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-doc")

    def get(name):
        proc = subprocess.run([exe, "--json", name], env=env, capture_output=True, text=True, check=True, timeout=300)
        return json.loads(proc.stdout)[name]

    return get


@pytest.fixture
def module_context(monkeypatch):
    """Run a module in this process as on a target. Once controller code (ansible.errors, the
    filter plugins' tests) is imported in the process, module_utils sends warnings to the
    controller's display instead of the module result; this puts them back in the result.
    The tests that run modules (or community.general's ini_file) use it for every test:
    ``pytestmark = pytest.mark.usefixtures("module_context")``."""
    from ansible.module_utils import _internal

    monkeypatch.setattr(_internal, "is_controller", False)
