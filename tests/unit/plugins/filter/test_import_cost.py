"""Ansible imports the collection's filter plugins again in the worker process of every task that
uses one, so what they import is paid for on every such task. They must not pull in ldap3 (the
AD module's library; ``module_utils/_ad.py`` imports it on first use only) nor netaddr (imported by
the few filters that parse addresses, when they run)."""

import glob
import os
import subprocess
import sys

from conftest import COLLECTIONS

FILTERS = os.path.join(COLLECTIONS, "ansible_collections", "juno", "hub", "plugins", "filter")


def _run(code):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_filter_plugins_do_not_import_ldap3_or_netaddr():
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(FILTERS, "*.py")) if not p.endswith("__init__.py"))
    assert "preflight" in names and "site" in names  # the two that use the AD module's parsers
    out = _run("import importlib, sys\n"
               "for n in %r: importlib.import_module('ansible_collections.juno.hub.plugins.filter.' + n)\n"
               "print('ldap3' in sys.modules, 'netaddr' in sys.modules)" % names)
    assert out.split() == ["False", "False"]


def test_the_ad_module_utils_load_ldap3_when_asked():
    out = _run("import sys\n"
               "from ansible_collections.juno.hub.plugins.module_utils import _ad\n"
               "before = 'ldap3' in sys.modules\n"
               "print(before, _ad.load_ldap3(), _ad.ldap3 is sys.modules.get('ldap3'), _ad.LDAP3_IMPORT_ERROR)")
    assert out.split() == ["False", "True", "True", "None"]


def test_every_plugin_has_current_bytecode():
    # `make setup` compiles the plugins (python -m compileall), whatever PYTHONDONTWRITEBYTECODE
    # says. Without a .pyc, every forked worker that imports a plugin compiles it from source
    # again: 3 to 4 s of a 35 s rerun of the lab (docs/performance.md).
    import importlib.util

    plugins = os.path.join(COLLECTIONS, "ansible_collections", "juno", "hub", "plugins")
    sources = sorted(glob.glob(os.path.join(plugins, "*", "*.py")))
    assert len(sources) >= 20
    stale = []
    for source in sources:
        cached = importlib.util.cache_from_source(source)
        if not os.path.isfile(cached):
            stale.append(os.path.relpath(source, plugins) + " (no .pyc)")
            continue
        with open(cached, "rb") as f:
            header = f.read(16)
        st = os.stat(source)
        # PEP 552 header: magic, flags (0: timestamp-based), source mtime, source size
        if (header[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(header[4:8], "little") != 0
                or int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF):
            stale.append(os.path.relpath(source, plugins) + " (.pyc older than the source)")
    assert stale == [], "run `make setup` to compile the plugins: %s" % ", ".join(stale)
