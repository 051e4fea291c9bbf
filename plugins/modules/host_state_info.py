#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_state_info
short_description: Read, in one module run, which packages are installed, systemd units' states, paths, small files and sysctl values
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Answers five questions about a host in B(one) module run, and changes nothing. Which of
    O(packages) are installed, and their versions, from the package database. The load, activation
    and unit-file state of each of O(units), from C(systemctl show). Whether each of O(paths)
    exists, is a directory and is writable, and its owner, group and mode. The text of each small
    file of O(contents). The running value of each kernel parameter of O(sysctl).
  - A role reads the state it manages at its start and runs an installing or service module
    only where that state differs, or where an earlier task of the same run changed something.
    A rerun that finds everything in place then costs this one module run instead of one
    C(package) and one C(systemd_service) run per service. See C(docs/performance.md) for the
    figures.
  - The answers only ever err towards running the real module. A package is reported installed
    only when the package database says it is installed under exactly that name (and, for dpkg, for
    the native architecture or C(all) unless the name has an architecture qualifier); anything else
    (a virtual package or provide, a version pin, a group, a file, an unknown package manager) is
    reported missing, so that the package manager decides.
  - C(ansible.builtin.package_facts) and C(ansible.builtin.service_facts) answer the same
    questions for every package and service on the host, at three to five times the cost, and
    store the lists in the host's facts.
options:
  packages:
    description:
      - Package names to look up with C(dpkg-query -W) (Debian family) or C(rpm -q) (EL family).
        Names only (C(foo), or C(foo:i386) with dpkg); anything else is reported missing unasked.
    type: list
    elements: str
    default: []
  units:
    description:
      - systemd unit names. A name without a suffix means the C(.service) unit, as in C(systemctl).
        Patterns (C(*), C(?), C([)) are refused.
    type: list
    elements: str
    default: []
  paths:
    description:
      - Absolute paths, used as given (no C(~) or variable expansion). Symbolic links are followed.
    type: list
    elements: str
    default: []
  contents:
    description:
      - Absolute paths of small text files to read, used as given. Symbolic links are followed.
      - A file that is missing, not a regular file (files under C(/proc) and C(/sys) are read),
        unreadable, not UTF-8, or larger than 1 MiB is returned as null.
    type: list
    elements: str
    default: []
  sysctl:
    description:
      - Kernel parameters whose running values to read from C(/proc/sys), as C(sysctl) names them.
        In the dotted form a C(/) stands for a C(.) inside a component (C(net.ipv4.conf.eth0/1.rp_filter)
        for the VLAN interface C(eth0.1)); a name whose first separator is C(/) is a path below C(/proc/sys).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: The module reads only; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Reads the package database, systemd and C(/proc/sys) of a Linux host.
notes:
  - The state is read when the task runs. A task that uses it after other tasks changed the host
    must also look at what those tasks changed (their C(changed) results).
seealso:
  - module: ansible.builtin.package_facts
  - module: ansible.builtin.service_facts
  - module: ansible.builtin.stat
"""

EXAMPLES = r"""
- name: Read what the role manages
  juno.hub.host_state_info:
    packages: [chrony, nfs-common]
    units: [chrony.service, swap.target]
    paths: [/etc/fstab]
  register: node_state

- name: Install what is missing
  ansible.builtin.package:
    name: [chrony, nfs-common]
    state: present
  when: node_state.packages_missing | length > 0

- name: Start chrony and enable it at boot, unless it already is
  ansible.builtin.systemd_service:
    name: chrony.service
    state: started
    enabled: true
  when: >-
    node_state.units['chrony.service'].unit_file_state != 'enabled'
    or node_state.units['chrony.service'].active_state != 'active'
"""

RETURN = r"""
package_manager:
  description: The package database that was read, C(dpkg) or C(rpm); null when neither is present or O(packages) is empty.
  returned: always
  type: str
  sample: dpkg
packages:
  description: Each name of O(packages) and its installed version, or null when it is not installed (or could not be told).
  returned: always
  type: dict
  sample: {chrony: "4.3-2+deb12u1", nfs-common: null}
packages_missing:
  description: The names of O(packages) that are not installed (or could not be told), in input order.
  returned: always
  type: list
  elements: str
  sample: [nfs-common]
packages_held:
  description:
    - The names of O(packages) that are installed and held (dpkg's selection C(hold), what M(ansible.builtin.dpkg_selections)
      sets), in input order. Always empty with rpm, which has no hold of its own.
  returned: always
  type: list
  elements: str
  sample: [kubeadm, kubelet]
systemd:
  description: Whether C(systemctl show) answered (true when O(units) is empty). When false, every unit's states are null.
  returned: always
  type: bool
units:
  description: Each name of O(units) and its state.
  returned: always
  type: dict
  contains:
    id:
      description: The unit's full name (C(chrony.service) for C(chrony)).
      type: str
    load_state:
      description: C(loaded), C(not-found), C(masked)...
      type: str
    active_state:
      description: C(active), C(inactive), C(failed)...
      type: str
    sub_state:
      description: C(running), C(dead), C(exited)...
      type: str
    unit_file_state:
      description: C(enabled), C(disabled), C(masked), C(static), empty when there is no unit file...
      type: str
    need_daemon_reload:
      description: Whether the unit file changed on disk since systemd loaded it.
      type: bool
  sample: {swap.target: {id: swap.target, load_state: masked, active_state: inactive, sub_state: dead,
           unit_file_state: masked, need_daemon_reload: false}}
paths:
  description: Each path of O(paths) and what it is.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether the path exists.
      type: bool
    isdir:
      description: Whether it is a directory.
      type: bool
    writeable:
      description: Whether the connecting user may write it (C(access(2)); false on a read-only mount).
      type: bool
    owner:
      description: The name of its owner (the uid as a string when it has no name); null when it does not exist.
      type: str
    group:
      description: The name of its group (the gid as a string when it has no name); null when it does not exist.
      type: str
    mode:
      description: Its permission bits as four octal digits, as the file modules write them (C(0644)); null when it does not exist.
      type: str
  sample: {/proc/sys/kernel/panic: {exists: true, isdir: false, writeable: false, owner: root, group: root, mode: "0644"}}
contents:
  description: Each path of O(contents) and the file's text, or null (see O(contents)).
  returned: always
  type: dict
  sample: {/etc/fstab: "# <file system> <mount point> <type> <options> <dump> <pass>\n"}
sysctl:
  description:
    - Each name of O(sysctl) and its running value as the kernel prints it (fields separated by tabs
      for some), or null when it cannot be read.
    - Compare values split on white space; C(ansible.posix.sysctl) does the same.
  returned: always
  type: dict
  sample: {net.ipv4.ip_forward: "1", net.ipv4.ip_local_port_range: "32768\t60999"}
"""

import grp
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule

# Exact package names only: anything else (version pins, globs, groups, files) is left to the
# package manager by reporting it missing.
_DPKG_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?$")
_RPM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_CONTENT_LIMIT = 1024 * 1024
_UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload")


def dpkg_versions(module, names):
    """{name: version} for the names dpkg knows as installed (status 'i').

    A bare name counts only for a package of the native architecture or 'all' (what apt would
    install for it); name:arch counts for that architecture."""
    asked = [n for n in names if _DPKG_NAME.match(n)]
    if not asked:
        return {}, []
    # dpkg-query exits 1 when a name matches no package, and still prints the others.
    rc, out, err = module.run_command(
        [module.get_bin_path("dpkg-query", required=True), "-W",
         "-f=${binary:Package}\\t${Package}\\t${Architecture}\\t${db:Status-Abbrev}\\t${Version}\\n", "--"] + asked,
        environ_update={"LC_ALL": "C"})
    if rc not in (0, 1):
        module.fail_json(msg="dpkg-query failed (rc %d): %s" % (rc, err.strip()))
    native = None
    dpkg = module.get_bin_path("dpkg")
    if dpkg:
        arc, aout, aerr = module.run_command([dpkg, "--print-architecture"], environ_update={"LC_ALL": "C"})
        native = aout.strip() if arc == 0 else None
    found, held = {}, set()
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) != 5:
            continue
        qualified, name, arch, status, version = fields
        # Status-Abbrev: desired action, package status, error flag; 'i' in second place is installed,
        # 'h' in first place is held (the selection `dpkg --get-selections` prints as "hold").
        if len(status) >= 2 and status[1] == "i":
            # binary:Package has no qualifier for most packages: the bare name counts only as below.
            keys = ["%s:%s" % (name, arch)] + ([qualified] if ":" in qualified else []) + ([name] if arch in ("all", native) else [])
            for key in keys:
                found[key] = version
                if status[0] == "h":
                    held.add(key)
    return {n: found[n] for n in asked if n in found}, [n for n in asked if n in held]


def rpm_versions(module, names):
    """{name: version-release} for the names installed as packages of exactly that name."""
    rpm = module.get_bin_path("rpm", required=True)
    found = {}
    for name in names:
        if not _RPM_NAME.match(name):
            continue
        rc, out, err = module.run_command([rpm, "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", name], environ_update={"LC_ALL": "C"})
        lines = out.split()
        if rc == 0 and lines:
            found[name] = lines[0]
    # rpm has no hold of its own (dnf's versionlock is a plugin): none is reported held.
    return found, []


def read_packages(module, names):
    """(package manager, {name: version}, [held names])."""
    if not names:
        return None, {}, []
    if module.get_bin_path("dpkg-query"):
        return ("dpkg",) + dpkg_versions(module, names)
    if module.get_bin_path("rpm"):
        return ("rpm",) + rpm_versions(module, names)
    return None, {}, []


def parse_show(out, count):
    """Split `systemctl show` output for `count` units into one dict of properties each."""
    blocks, current = [], {}
    for line in out.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks if len(blocks) == count else None


def unit_state(props):
    return {
        "id": props.get("Id"),
        "load_state": props.get("LoadState"),
        "active_state": props.get("ActiveState"),
        "sub_state": props.get("SubState"),
        "unit_file_state": props.get("UnitFileState"),
        "need_daemon_reload": props.get("NeedDaemonReload") == "yes",
    }


def read_units(module, names):
    unknown = dict.fromkeys(("id", "load_state", "active_state", "sub_state", "unit_file_state"))
    unknown["need_daemon_reload"] = False
    if not names:
        return True, {}
    systemctl = module.get_bin_path("systemctl")
    blocks = None
    if systemctl:
        rc, out, err = module.run_command(
            [systemctl, "show", "--property=" + ",".join(_UNIT_PROPERTIES), "--"] + names, environ_update={"LC_ALL": "C"})
        if rc == 0:
            blocks = parse_show(out, len(names))
    if blocks is None:
        return False, {n: dict(unknown) for n in names}
    return True, {n: unit_state(b) for n, b in zip(names, blocks)}


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def read_paths(paths):
    result = {}
    for path in paths:
        try:
            info = os.stat(path)
        except (IOError, OSError):
            info = None
        exists = info is not None
        result[path] = {
            "exists": exists,
            "isdir": exists and stat.S_ISDIR(info.st_mode),
            "writeable": exists and os.access(path, os.W_OK),
            "owner": _name(pwd.getpwuid, info.st_uid) if exists else None,
            "group": _name(grp.getgrgid, info.st_gid) if exists else None,
            "mode": "%04o" % stat.S_IMODE(info.st_mode) if exists else None,
        }
    return result


def read_contents(paths):
    """{path: text} of small files; null for anything the role should not decide from."""
    result = {}
    for path in paths:
        text = None
        try:
            if not os.path.isdir(path):
                with open(path, "rb") as handle:
                    data = handle.read(_CONTENT_LIMIT + 1)
                if len(data) <= _CONTENT_LIMIT:
                    text = data.decode("utf-8")
        except (IOError, OSError, UnicodeDecodeError):
            text = None
        result[path] = text
    return result


def sysctl_path(name):
    """/proc/sys path of a sysctl name; None when it would leave /proc/sys."""
    slash, dot = name.find("/"), name.find(".")
    if dot != -1 and (slash == -1 or dot < slash):
        # Dotted form: '.' separates components and '/' stands for a '.' inside one, as in sysctl(8).
        name = name.translate(str.maketrans("./", "/."))
    path = os.path.normpath(os.path.join("/proc/sys", name.lstrip("/")))
    return path if path.startswith("/proc/sys/") else None


def read_sysctl(names):
    result = {}
    for name in names:
        path = sysctl_path(name)
        value = None
        if path:
            try:
                with open(path) as handle:
                    value = handle.read().rstrip("\n")
            except (IOError, OSError, UnicodeDecodeError):
                value = None
        result[name] = value
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            units=dict(type="list", elements="str", default=[]),
            paths=dict(type="list", elements="str", default=[]),
            contents=dict(type="list", elements="str", default=[]),
            sysctl=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    packages = module.params["packages"]
    units = module.params["units"]
    paths = module.params["paths"]
    for what in ("paths", "contents"):
        for i, path in enumerate(module.params[what]):
            if not os.path.isabs(path):
                module.fail_json(msg="%s[%d] is %r; it must be an absolute path" % (what, i, path))
    for what, names in (("packages", packages), ("units", units), ("sysctl", module.params["sysctl"])):
        for i, name in enumerate(names):
            if not name or name.startswith("-") or any(c.isspace() for c in name):
                module.fail_json(msg="%s[%d] is %r; it must be a name without spaces, not starting with '-'" % (what, i, name))
    for i, name in enumerate(units):
        if any(c in name for c in "*?["):
            module.fail_json(msg="units[%d] is %r; it must name one unit, not a pattern" % (i, name))

    manager, versions, held = read_packages(module, packages)
    systemd, unit_states = read_units(module, units)
    module.exit_json(
        changed=False,
        package_manager=manager,
        packages={n: versions.get(n) for n in packages},
        packages_missing=[n for n in packages if n not in versions],
        packages_held=held,
        systemd=systemd,
        units=unit_states,
        paths=read_paths(paths),
        contents=read_contents(module.params["contents"]),
        sysctl=read_sysctl(module.params["sysctl"]),
    )


if __name__ == "__main__":
    main()
