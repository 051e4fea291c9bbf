# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NFS exports and mounts of the hubs' home directories.

Every decision about what the NFS server exports is made here, so that unit tests reach it:
one export per hub under the export root, one line per export and node network, root_squash
unless a hub asks for no_root_squash *and* the site allows it, never ``*`` or a network that
admits every address. Exports of hubs that left ``juno_hubs`` are read back from the file the
collection wrote before and kept (re-rendered for the current node networks) unless the site
prunes them. The documentation of each filter is in ``plugins/filter/<name>.yml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import posixpath
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.juno.hub.plugins.filter.preflight import hub_place
from ansible.module_utils.parsing.convert_bool import boolean

# Defaults of juno_hubs[].storage (the `site` spec of roles/preflight/meta/argument_specs.yml).
STORAGE_DEFAULTS = {
    "export_owner": "65534",
    "export_group": "65534",
    "export_mode": "0755",
    "sec": "sys",
    "no_root_squash": False,
    "mount_options": ["nfsvers=4.1", "hard"],
}
DEFAULT_EXPORT_OPTIONS = ["rw", "sync", "no_subtree_check"]
SEC_FLAVOURS = ("sys", "krb5", "krb5i", "krb5p")
# Options the filters set themselves; given in `options` they would contradict the per-hub settings.
MANAGED_OPTIONS = ("root_squash", "no_root_squash", "sec")
# Names of uid/gid 65534 on Debian/Ubuntu and EL (nfsnobody on EL 7 and older).
ANONYMOUS_USERS = ("65534", "nobody", "nfsnobody")
ANONYMOUS_GROUPS = ("65534", "nogroup", "nobody", "nfsnobody")
HUB_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
EXPORT_OPTION = re.compile(r"^[a-z0-9_]+(=[A-Za-z0-9_.:/@-]+)?$")
MODE = re.compile(r"^0?[0-7]{3}$|^[0-7]{4}$")
UNSAFE_PATH = re.compile(r"[\s()#\"'\\*?]")
CLIENT = re.compile(r"^([^()\s]+)\(([^()\s]*)\)$")


def _hubs(hubs):
    if hubs is None:
        return []
    if not isinstance(hubs, (list, tuple)):
        raise AnsibleFilterError("juno_hubs must be a list of hubs, got %s" % type(hubs).__name__)
    return hubs


def _bool(value):
    try:
        return boolean(value, strict=True)
    except TypeError:
        return None


def _root(root, problems):
    """Normalised export root, or None (with a problem) when it cannot hold exports."""
    if not isinstance(root, str) or not root:
        problems.append("nfs_server_export_root %r is not a path; give an absolute directory such as /srv/juno" % (root,))
        return None
    norm = posixpath.normpath(root)
    if not norm.startswith("/") or norm == "/":
        problems.append("nfs_server_export_root %r must be an absolute directory below / (for example /srv/juno)" % (root,))
        return None
    if UNSAFE_PATH.search(norm):
        problems.append("nfs_server_export_root %r contains blanks, quotes, parentheses, '#' or wildcards, which /etc/exports cannot carry" % (root,))
        return None
    return norm


def _networks(networks, problems):
    """Client networks in exports(5) form; '*', wildcards and networks admitting everyone are refused."""
    if isinstance(networks, str) or not isinstance(networks, (list, tuple)):
        problems.append("juno_node_networks must be a list of CIDRs, got %r" % (networks,))
        return []
    if not networks:
        problems.append("juno_node_networks is empty; NFS exports admit only the node networks, so give at least one CIDR such as 10.20.0.0/24")
        return []
    result = []
    for i, net in enumerate(networks):
        text = str(net).strip()
        if "*" in text or "?" in text:
            problems.append(
                "juno_node_networks[%d] %r would export the home directories to every host that asks; give the CIDR of a node network such as 10.20.0.0/24"
                % (i, text)
            )
            continue
        try:
            parsed = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            problems.append("juno_node_networks[%d] %r is not a CIDR such as 10.20.0.0/24 (%s)" % (i, text, exc))
            continue
        if parsed.prefixlen == 0:
            problems.append(
                "juno_node_networks[%d] %s admits every address, like '*'; give the CIDR of the node network instead" % (i, parsed)
            )
            continue
        if str(parsed) not in result:
            result.append(str(parsed))
    return result


def _options(options, problems):
    if options is None:
        return list(DEFAULT_EXPORT_OPTIONS)
    if isinstance(options, str) or not isinstance(options, (list, tuple)):
        problems.append("nfs_server_export_options must be a list such as [rw, sync, no_subtree_check], got %r" % (options,))
        return []
    result = []
    for opt in options:
        text = str(opt).strip()
        if text.split("=", 1)[0] in MANAGED_OPTIONS:
            problems.append(
                "nfs_server_export_options contains %r; squashing and the security flavour are set per hub "
                "(juno_hubs[].storage.no_root_squash and .sec), remove it from the list" % text
            )
        elif not EXPORT_OPTION.match(text):
            problems.append("nfs_server_export_options entry %r is not an export option such as rw or anonuid=65534" % text)
        elif text not in result:
            result.append(text)
    return result


def _storage(hub):
    storage = dict(STORAGE_DEFAULTS)
    given = hub.get("storage") if isinstance(hub, dict) else None
    if isinstance(given, dict):
        storage.update(dict((k, v) for k, v in given.items() if v is not None))
    return storage


def _with_sec(options, sec):
    """Kerberos flavours must be asked for at mount time; sec=sys is the default."""
    if sec != "sys" and not any(o.split("=", 1)[0] == "sec" for o in options):
        return options + ["sec=%s" % sec]
    return options


def _anonymous_can_write(owner, group, mode):
    """Whether the anonymous user (65534, what root_squash makes of root) may create entries in the directory."""
    if not MODE.match(mode):
        return False
    bits = int(mode, 8)
    if str(owner) in ANONYMOUS_USERS and bits & 0o300 == 0o300:
        return True
    if str(group) in ANONYMOUS_GROUPS and bits & 0o030 == 0o030:
        return True
    return bits & 0o003 == 0o003


def _entries(hubs, root, problems):
    entries = []
    seen = {}
    for i, hub in enumerate(_hubs(hubs)):
        where = hub_place(hub, i)
        if not isinstance(hub, dict):
            problems.append("%s: is not a dictionary" % where)
            continue
        name = hub.get("name")
        if not isinstance(name, str) or not HUB_NAME.match(name):
            problems.append("%s: name %r cannot name an export directory; use a lower-case DNS label" % (where, name))
            continue
        if name in seen:
            problems.append("%s: the name %r is used by another hub too (entries %d and %d of juno_hubs); each hub needs its own export"
                            % (where, name, seen[name], i))
            continue
        seen[name] = i
        storage = _storage(hub)
        sec = storage.get("sec")
        if sec not in SEC_FLAVOURS:
            problems.append("%s: storage.sec %r is not one of %s" % (where, sec, ", ".join(SEC_FLAVOURS)))
        no_root_squash = _bool(storage.get("no_root_squash"))
        if no_root_squash is None:
            problems.append("%s: storage.no_root_squash %r is not a boolean" % (where, storage.get("no_root_squash")))
            no_root_squash = False
        mode = str(storage.get("export_mode"))
        if not MODE.match(mode):
            problems.append("%s: storage.export_mode %r is not an octal mode such as \"0755\" (quote it in YAML)" % (where, storage.get("export_mode")))
        for key in ("export_owner", "export_group"):
            value = storage.get(key)
            if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip() or re.search(r"[\s:]", str(value)):
                problems.append("%s: storage.%s %r is not a user or group name or numeric id" % (where, key, value))
        mount_options = storage.get("mount_options")
        if isinstance(mount_options, str) or not isinstance(mount_options, (list, tuple)):
            problems.append("%s: storage.mount_options must be a list such as [nfsvers=4.1, hard], got %r" % (where, mount_options))
            mount_options = []
        entry_mode = mode if len(mode) == 4 else "0" + mode
        entries.append({
            "name": name,
            "index": i,
            "path": posixpath.join(root, name) if root else None,
            "owner": str(storage.get("export_owner")),
            "group": str(storage.get("export_group")),
            "mode": entry_mode,
            "sec": sec,
            "no_root_squash": no_root_squash,
            "squashed_root_can_write": no_root_squash or _anonymous_can_write(storage.get("export_owner"), storage.get("export_group"), entry_mode),
            "mount_options": _with_sec([str(o) for o in mount_options], sec),
        })
    return entries


def nfs_exports_parse(text):
    """Parse an exports file in the form the collection writes: ``<path> <client>(<options>) ...``.

    Returns the entries (path, client, options) and the lines that are not in that form.
    """
    entries = []
    bad = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        path = tokens[0]
        clients = tokens[1:]
        if not path.startswith("/") or not clients or not all(CLIENT.match(c) for c in clients):
            bad.append({"line": number, "text": line})
            continue
        for client in clients:
            host, opts = CLIENT.match(client).groups()
            entries.append({"path": path, "client": host, "options": [o for o in opts.split(",") if o]})
    return {"entries": entries, "invalid": bad}


def _inventory_paths(hubs, root):
    problems = []
    norm = _root(root, problems)
    if norm is None:
        return set()
    return set(posixpath.join(norm, hub.get("name")) for hub in _hubs(hubs) if isinstance(hub, dict) and isinstance(hub.get("name"), str))


def nfs_exports_retained(current, hubs, root):
    """Export paths in the current file that juno_hubs no longer lists (kept, or removed by prune)."""
    listed = _inventory_paths(hubs, root)
    paths = []
    for entry in nfs_exports_parse(current)["entries"]:
        if entry["path"] not in listed and entry["path"] not in paths:
            paths.append(entry["path"])
    return sorted(paths)


def _retained_options(current, listed):
    """First option list of each path of the current file that the inventory no longer lists."""
    result = {}
    for entry in nfs_exports_parse(current)["entries"]:
        if entry["path"] not in listed and entry["path"] not in result:
            result[entry["path"]] = entry["options"]
    return result


def nfs_exports(hubs, root):
    """One entry per hub: name, path, owner, group, mode, sec, no_root_squash, mount_options."""
    problems = []
    norm = _root(root, problems)
    entries = _entries(hubs, norm, problems)
    if problems:
        raise AnsibleFilterError("juno.hub.nfs_exports: " + "; ".join(problems))
    return entries


def nfs_export_problems(hubs, networks, root, options=None, allow_no_root_squash=False, current="", prune=False):
    """Every reason the exports cannot be written, one message each (empty when all is well)."""
    problems = []
    norm = _root(root, problems)
    _networks(networks, problems)
    _options(options, problems)
    entries = _entries(hubs, norm, problems)
    allow = bool(_bool(allow_no_root_squash))
    if not allow:
        for entry in entries:
            if entry["no_root_squash"]:
                problems.append(
                    "hub %s: storage.no_root_squash is true: root on every node would be root on the NFS server; "
                    "it is refused unless nfs_server_allow_no_root_squash: true" % entry["name"]
                )
    parsed = nfs_exports_parse(current)
    if not _bool(prune):
        for bad in parsed["invalid"]:
            problems.append(
                "line %d of the current exports file is not in the form juno.hub writes (%r); remove it, or set nfs_server_prune: true to rewrite the file"
                % (bad["line"], bad["text"])
            )
        if norm is not None and not allow:
            listed = set(e["path"] for e in entries)
            for path, opts in sorted(_retained_options(current, listed).items()):
                if "no_root_squash" in opts:
                    problems.append(
                        "the kept export %s (its hub left juno_hubs) has no_root_squash; set nfs_server_prune: true to remove it "
                        "or nfs_server_allow_no_root_squash: true to keep it" % path
                    )
    return problems


def nfs_export_lines(hubs, networks, root, options=None, allow_no_root_squash=False, current="", prune=False):
    """The lines of /etc/exports.d/juno.exports: one per export and node network, sorted by path."""
    problems = nfs_export_problems(hubs, networks, root, options, allow_no_root_squash, current, prune)
    if problems:
        raise AnsibleFilterError("juno.hub.nfs_export_lines: " + "; ".join(problems))
    norm = _root(root, [])
    nets = _networks(networks, [])
    base = _options(options, [])
    by_path = {}
    for entry in _entries(hubs, norm, []):
        squash = "no_root_squash" if entry["no_root_squash"] else "root_squash"
        by_path[entry["path"]] = base + [squash, "sec=%s" % entry["sec"]]
    if not _bool(prune):
        for path, opts in _retained_options(current, set(by_path)).items():
            by_path[path] = opts
    lines = []
    for path in sorted(by_path):
        for net in nets:
            lines.append("%s %s(%s)" % (path, net, ",".join(by_path[path])))
    return lines


def _covers(client, network):
    """Whether an exports(5) client admits the whole node network (hostnames and netgroups are not evaluated)."""
    if client == "*":
        return True
    try:
        exported = ipaddress.ip_network(client, strict=False)
    except ValueError:
        return False
    return exported.version == network.version and network.subnet_of(exported)


def nfs_export_check(exported, hubs, networks, root, allow_no_root_squash=False):
    """Compare what an existing NFS server exports (``exportfs -s`` output) with what the hubs need.

    Returns one message per missing export, node network the export does not admit, read-only
    export, export to every host, or export without root squashing (unless allowed).
    """
    problems = []
    norm = _root(root, problems)
    nets = [ipaddress.ip_network(n) for n in _networks(networks, problems)]
    entries = _entries(hubs, norm, problems)
    if problems:
        return problems
    exports = nfs_exports_parse(exported)["entries"]
    allow = bool(_bool(allow_no_root_squash))
    for entry in entries:
        mine = [e for e in exports if posixpath.normpath(e["path"]) == entry["path"]]
        hub = "hub %s" % entry["name"]
        if not mine:
            problems.append("%s is not exported; %s needs an export for the node networks %s" % (entry["path"], hub, ", ".join(str(n) for n in nets)))
            continue
        for net in nets:
            if not any(_covers(e["client"], net) for e in mine):
                problems.append(
                    "%s is exported to %s only; the node network %s is not among them (host names and netgroups are not evaluated), so %s cannot mount it"
                    % (entry["path"], ", ".join(e["client"] for e in mine), net, hub)
                )
        for e in mine:
            if e["client"] == "*":
                problems.append("%s is exported to every host ('*'); limit it to the node networks" % entry["path"])
            if "ro" in e["options"]:
                problems.append("%s is exported read-only to %s; home directories need rw" % (entry["path"], e["client"]))
            if "no_root_squash" in e["options"] and not (allow or entry["no_root_squash"]):
                problems.append(
                    "%s is exported with no_root_squash to %s; root on a node would be root on the server (set root_squash, "
                    "or storage.no_root_squash of hub %s and nfs_server_allow_no_root_squash to accept it)" % (entry["path"], e["client"], entry["name"])
                )
            sec = [o.split("=", 1)[1] for o in e["options"] if o.startswith("sec=")]
            if sec and entry["sec"] not in ":".join(sec).split(":"):
                problems.append("%s is exported with sec=%s to %s but %s uses sec=%s" % (entry["path"], ":".join(sec), e["client"], hub, entry["sec"]))
    return problems


def nfs_mount_options(hub):
    """Mount options of a hub's StorageClass: juno_hubs[].storage.mount_options, plus sec= for Kerberos."""
    problems = []
    entries = _entries([hub], "/", problems)
    if problems:
        raise AnsibleFilterError("juno.hub.nfs_mount_options: " + "; ".join(problems))
    return entries[0]["mount_options"]


class FilterModule(object):
    def filters(self):
        return {
            "nfs_exports": nfs_exports,
            "nfs_export_problems": nfs_export_problems,
            "nfs_export_lines": nfs_export_lines,
            "nfs_exports_parse": nfs_exports_parse,
            "nfs_exports_retained": nfs_exports_retained,
            "nfs_export_check": nfs_export_check,
            "nfs_mount_options": nfs_mount_options,
        }
