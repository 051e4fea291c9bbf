#!/usr/bin/env python
"""Write the intersphinx inventory of docs.ansible.com that the docs site links through.

The pages antsibull-docs generates link to ansible-core's documentation (`common_return_values`,
`ansible_configuration_settings`, ...) and to other collections' plugins
(`ansible_collections.kubernetes.core.helm_module`); its `sphinx-init` resolves those through
docs.ansible.com's `objects.inv`, fetched at build time. No site but the package registries can be
reached here (and a CI run should not depend on one), so this script writes that inventory from
what the pages reference:

- every `:ref:` target that no page of the site defines is looked up: a plugin or role label
  must name a plugin that is installed (ansible-core's own, or a collection on the Python path or
  ANSIBLE_COLLECTIONS_PATH), and is written with the address docs.ansible.com gives it; any other
  label must be in CORE_LABELS below;
- a target that is neither stops the build with its name, so a new link is checked, not guessed.

Usage: intersphinx.py <rst source dir> <output .inv file>
"""

import glob
import os
import re
import sys
import zlib

# ansible-core's pages that the generated pages link to: label -> (page, title).
CORE_LABELS = {
    "ansible_configuration_settings": ("reference_appendices/config.html", "Ansible Configuration Settings"),
    "common_return_values": ("reference_appendices/common_return_values.html", "Return Values"),
    "action_plugins": ("plugins/action.html", "Action plugins"),
    "callback_plugins": ("plugins/callback.html", "Callback plugins"),
}
PLUGIN_LABEL = re.compile(r"^ansible_collections\.([a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)_([a-z]+)$")
REF = re.compile(r":ref:`(?:[^`<]*<([^`>]+)>|([^`<]+))`")
LABEL = re.compile(r"^\.\. _([^:]+):\s*$", re.M)


def collection_roots():
    roots = [os.path.join(p, "ansible_collections") for p in sys.path if p]
    for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if p:
            roots.append(os.path.join(p, "ansible_collections"))
    return [r for r in roots if os.path.isdir(r)]


def plugin_installed(ns, coll, name, ptype):
    """Is NS.COLL.NAME a plugin (or role) of type PTYPE that is installed here?"""
    if (ns, coll) == ("ansible", "builtin"):
        import ansible

        core = os.path.dirname(ansible.__file__)
        dirs = [os.path.join(core, "modules")] if ptype == "module" else [os.path.join(core, "plugins", ptype)]
        return any(os.path.exists(os.path.join(d, name + ".py")) or _in_sources(d, name, ptype) for d in dirs)
    for root in collection_roots():
        top = os.path.join(root, ns, coll)
        if not os.path.isdir(top):
            continue
        if ptype == "role":
            return os.path.isdir(os.path.join(top, "roles", name))
        d = os.path.join(top, "plugins", "modules" if ptype == "module" else ptype)
        if os.path.exists(os.path.join(d, name + ".py")) or _in_sources(d, name, ptype):
            return True
    return False


def _in_sources(d, name, ptype):
    """Filters and tests share files: NAME is one if a .yml doc of that name or a source names it."""
    if ptype not in ("filter", "test") or not os.path.isdir(d):
        return False
    if os.path.exists(os.path.join(d, name + ".yml")):
        return True
    pat = re.compile(r"['\"]%s['\"]\s*:" % re.escape(name))
    for path in glob.glob(os.path.join(d, "*.py")):
        with open(path, encoding="utf-8") as f:
            if pat.search(f.read()):
                return True
    return False


def anchor(label):
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def main(src, out):
    defined, wanted = set(), set()
    for path in glob.glob(os.path.join(src, "**", "*.rst"), recursive=True):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        defined.update(LABEL.findall(text))
        for explicit, bare in REF.findall(text):
            wanted.add((explicit or bare).strip())
    entries, unknown = [], []
    for label in sorted(wanted - defined):
        m = PLUGIN_LABEL.match(label)
        if m and plugin_installed(*m.groups()):
            ns, coll, name, ptype = m.groups()
            page = "collections/%s/%s/%s_%s.html" % (ns, coll, name, ptype)
            entries.append((label, page + "#" + anchor(label), "%s.%s.%s %s" % (ns, coll, name, ptype)))
        elif label in CORE_LABELS:
            page, title = CORE_LABELS[label]
            entries.append((label, page + "#" + anchor(label), title))
        else:
            unknown.append(label)
    if unknown:
        sys.exit("intersphinx.py: these references are neither pages of the site, nor installed plugins, "
                 "nor ansible-core pages listed in CORE_LABELS: %s" % ", ".join(unknown))
    body = "".join("%s std:label -1 %s %s\n" % e for e in entries)
    with open(out, "wb") as f:
        f.write(b"# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
                b"# The remainder of this file is compressed using zlib.\n")
        f.write(zlib.compress(body.encode("utf-8")))
    print("intersphinx.py: %d links to docs.ansible.com (%s)" % (
        len(entries), ", ".join(e[0].replace("ansible_collections.", "") for e in entries)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
