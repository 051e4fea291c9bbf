"""juno.hub.preload imports the collection's filter and lookup plugin files in the controller at the
start of the playbook, under the names ansible-core's plugin loader gives them, so that the forked
workers inherit them (docs/performance.md)."""

import glob
import os
import subprocess
import sys

from conftest import COLLECTIONS

PLUGINS = os.path.join(COLLECTIONS, "ansible_collections", "juno", "hub", "plugins")


def _run(code):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_preload_imports_every_filter_and_lookup_file_under_the_plugin_loaders_names():
    expected = sorted("ansible_collections.juno.hub.plugins.%s.%s" % (kind, os.path.basename(p)[:-3])
                      for kind in ("filter", "lookup")
                      for p in glob.glob(os.path.join(PLUGINS, kind, "*.py")) if not p.endswith("__init__.py"))
    assert len(expected) >= 12
    out = _run(
        "import sys\n"
        "from ansible.plugins.loader import init_plugin_loader, filter_loader\n"
        "init_plugin_loader()\n"
        "from ansible_collections.juno.hub.plugins.callback.preload import CallbackModule\n"
        "before = sorted(m for m in sys.modules if m.startswith('ansible_collections.juno.hub.plugins.filter.'))\n"
        "cb = CallbackModule()\n"
        "cb.v2_playbook_on_start(None)\n"
        "loaded = sorted(m for m in sys.modules if '.plugins.filter.' in m or '.plugins.lookup.' in m)\n"
        "# the plugin loader finds the module already imported and uses it\n"
        "minor = filter_loader.get('juno.hub.kube_minor').j2_function\n"
        "print(before)\n"
        "print(sorted(cb.preloaded))\n"
        "print(loaded)\n"
        "print(minor('1.32.4'))\n")
    before, preloaded, loaded, minor = out.splitlines()
    assert before == "[]"
    assert preloaded == str(expected)
    assert loaded == str(expected)
    assert minor == "v1.32"
