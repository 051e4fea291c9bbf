#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: write_files
short_description: Write a set of files and directories on a node in one module run, only those that differ
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Ensures each of O(directories) exists (parents too), then writes each of O(files) with the
    given content, and applies mode, owner and group to all of them, in B(one) module run.
  - A file is rewritten only when its bytes differ from O(files[].content); it is written to a
    temporary file in its own directory and renamed into place. Owner, group and mode are applied
    when they differ, whether or not the content did. Nothing is ever deleted.
  - The point is speed. Each C(ansible.builtin.template) or C(copy) is two module runs (a C(stat),
    then C(copy) or C(file)) and each C(ansible.builtin.file) one, at about 0.35 CPU seconds per module
    run even when nothing changes; a role writes all its files with one task of this module and
    learns from RV(changed_files) which of them changed.
  - All arguments are checked before anything is written; a bad entry fails the task, naming it
    (for example C(files[2].path)).
options:
  directories:
    description:
      - Directories to create (with their missing parents, mode C(0755)) before the files are written.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - Absolute, normalised path (no C(.) or C(..) components, no trailing or double C(/)).
        type: str
        required: true
      mode:
        description:
          - Octal mode as a quoted string such as V("0755"); a YAML integer is refused.
        type: raw
        default: "0755"
      owner:
        description:
          - User name or uid. Left as it is when not given.
        type: str
      group:
        description:
          - Group name or gid. Left as it is when not given.
        type: str
  files:
    description:
      - Files to write, in this order. May be empty.
      - A missing parent directory is created with mode C(0755); list it in O(directories) to choose
        its mode and owner.
      - A symbolic link at O(files[].path) is replaced by a regular file, as C(copy) does by default.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - Absolute, normalised path, given once. It must not be an existing directory.
        type: str
        required: true
      content:
        description:
          - The whole content of the file, written exactly as given, encoded as UTF-8.
          - Not hidden from the log by the module; see the notes.
        type: str
        required: true
      mode:
        description:
          - Octal mode as a quoted string such as V("0644"); a YAML integer is refused.
        type: raw
        default: "0644"
      owner:
        description:
          - User name or uid. Left as it is (or the connecting user's, for a new file) when not given.
        type: str
      group:
        description:
          - Group name or gid. Left as it is (or the user's primary group, for a new file) when not given.
        type: str
  unsafe_writes:
    description:
      - Passed to C(atomic_move). When renaming over a file fails because it is busy (a file
        bind-mounted into a container, such as C(/etc/hosts) or C(/etc/resolv.conf)), write it in
        place instead, keeping its inode.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Nothing is written; C(changed) and RV(changed_files) say what would be.
  diff_mode:
    support: full
    description: Returns a list of content differences, one per changed file. Use C(no_log) for secrets.
  platform:
    support: full
    platforms: posix
    description: Uses POSIX modes, owners and groups, and rename for atomic replacement.
notes:
  - O(files[].content) is not marked C(no_log) (the module cannot know which files are secret). A task
    whose files carry secrets B(must) set C(no_log=true), and give those files mode C(0600).
  - For an existing file the new mode, owner and group are set B(before) the new content is renamed in;
    a new file is created readable by its owner only and then given its mode. A secret is thus never
    readable under a wider mode, if only for a moment.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Containerd | configuration and registry mirrors
  juno.hub.write_files:
    directories:
      - path: /etc/containerd/certs.d
        owner: root
        group: root
    files:
      - path: /etc/containerd/config.toml
        content: "{{ lookup('ansible.builtin.template', 'config.toml.j2') }}"
        mode: "0600"
        owner: root
        group: root
      - path: /etc/containerd/certs.d/docker.io/hosts.toml
        content: "{{ lookup('ansible.builtin.template', 'hosts.toml.j2') }}"
  no_log: true  # config.toml carries registry credentials
  register: containerd_files

# containerd reads hosts.toml at each pull; only config.toml needs a restart. The debug task
# runs no module on the node.
- name: Containerd | restart for the new config.toml
  ansible.builtin.debug:
    msg: /etc/containerd/config.toml changed; containerd restarts at the end of the play
  changed_when: true
  when: "'/etc/containerd/config.toml' in containerd_files.changed_files"
  notify: Restart containerd

- name: /etc/hosts is bind-mounted in a container, so rename cannot replace it
  juno.hub.write_files:
    files:
      - path: /etc/hosts
        content: "{{ lookup('ansible.builtin.template', 'hosts.j2') }}"
    unsafe_writes: true
"""

RETURN = r"""
changed_files:
  description: Paths of the files whose content or attributes changed (or would, in check mode), in input order.
  returned: always
  type: list
  elements: str
  sample: [/etc/containerd/config.toml]
changed_directories:
  description: Directories created or whose attributes changed (or would), missing parents of files included.
  returned: always
  type: list
  elements: str
  sample: [/etc/containerd/certs.d]
files:
  description: Each file, in input order, and whether it changed.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file's path.
      type: str
    changed:
      description: Whether its content or attributes changed.
      type: bool
  sample: [{path: /etc/containerd/config.toml, changed: true}]
diff:
  description:
    - In diff mode, one entry per changed file with C(before_header), C(after_header), C(before) and C(after).
    - "C(before) and C(after) are the contents (C(before) is empty for a new file), or for a file whose
      content is the same, its changed attributes as C(name: value) lines."
  returned: in diff mode, when a file changed
  type: list
  elements: dict
"""

import errno
import grp
import os
import pwd
import re
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

MODE_RE = re.compile(r"^0?[0-7]{3,4}$")


def argument_spec():
    attrs = dict(path=dict(type="str", required=True), owner=dict(type="str"), group=dict(type="str"))
    return dict(
        directories=dict(type="list", elements="dict", default=[], options=dict(attrs, mode=dict(type="raw", default="0755"))),
        files=dict(type="list", elements="dict", required=True,
                   options=dict(attrs, content=dict(type="str", required=True), mode=dict(type="raw", default="0644"))),
        unsafe_writes=dict(type="bool", default=False),
    )


def check_entry(module, entry, what):
    """Fail unless the entry's path is absolute and normalised, its mode an octal string and its owner and group exist."""
    path, mode = entry["path"], entry["mode"]
    parts = path.split("/")[1:]
    if not path.startswith("/") or "\0" in path or (path != "/" and any(p in ("", ".", "..") for p in parts)):
        module.fail_json(msg="%s.path: %r must be an absolute, normalised path (no '.', '..', '//' or trailing '/')" % (what, path))
    if not isinstance(mode, str) or not MODE_RE.match(mode):
        module.fail_json(msg="%s.mode: %r (%s) must be an octal string such as '0644' (quote it in YAML)" % (what, mode, type(mode).__name__))
    for key, lookup in (("owner", pwd.getpwnam), ("group", grp.getgrnam)):
        name = entry[key]
        if name is not None and not name.isdigit():
            try:
                lookup(name)
            except KeyError:
                module.fail_json(msg="%s.%s: there is no %s %r on this node" % (what, key, "user" if key == "owner" else "group", name))
    ancestor = os.path.dirname(path)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        module.fail_json(msg="%s.path: %s cannot be created, %s is not a directory" % (what, path, ancestor))


def fs_args(entry):
    return dict(path=entry["path"], mode=entry["mode"], owner=entry["owner"], group=entry["group"], attributes=None,
                seuser=None, serole=None, setype=None, selevel=None, secontext=[None, None, None])


def make_dirs(module, path):
    """Create path and its missing parents with mode 0755 (not in check mode); return them, top first."""
    missing = []
    while not os.path.lexists(path):
        missing.insert(0, path)
        path = os.path.dirname(path)
    if not module.check_mode:
        for directory in missing:
            os.mkdir(directory, 0o755)
            os.chmod(directory, 0o755)
    return missing


def read(path):
    """Current bytes of the regular file at path, or None when there is none (absent or a symbolic link)."""
    if not os.path.isfile(path) or os.path.islink(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def write(module, path, data, unsafe_writes):
    """Write data to a temporary file beside path and move it into place."""
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % name, suffix=".tmp")
    old_umask = os.umask(0o077)  # a new file is created owner-only until its mode is applied
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        module.atomic_move(tmp, path, unsafe_writes=unsafe_writes)
    finally:
        os.umask(old_umask)
        module.cleanup(tmp)


def attr_lines(diff, side):
    values = diff.get(side, {})
    return "".join("%s: %s\n" % (key, values[key]) for key in sorted(values) if key != "path")


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    directories, files = module.params["directories"] or [], module.params["files"]
    unsafe_writes = module.params["unsafe_writes"]

    dir_paths = set()
    for index, entry in enumerate(directories):
        what = "directories[%d]" % index
        check_entry(module, entry, what)
        if os.path.lexists(entry["path"]) and not os.path.isdir(entry["path"]):
            module.fail_json(msg="%s.path: %s exists and is not a directory" % (what, entry["path"]))
        dir_paths.add(entry["path"])
    seen = set()
    for index, entry in enumerate(files):
        what, path = "files[%d]" % index, entry["path"]
        check_entry(module, entry, what)
        if path in seen:
            module.fail_json(msg="%s.path: %s is given more than once" % (what, path))
        if path in dir_paths or os.path.isdir(path):
            module.fail_json(msg="%s.path: %s is a directory" % (what, path))
        if os.path.lexists(path) and not os.path.islink(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            module.fail_json(msg="%s.path: %s exists and is not a regular file" % (what, path))
        seen.add(path)

    changed_dirs, changed_files, results, diffs = [], [], [], []

    def note_dirs(paths):
        changed_dirs.extend(p for p in paths if p not in changed_dirs)

    what = "directories"
    try:
        for index, entry in enumerate(directories):
            what = "directories[%d]" % index
            created = make_dirs(module, entry["path"])
            if os.path.exists(entry["path"]) and module.set_fs_attributes_if_different(fs_args(entry), False, expand=False):
                created.append(entry["path"])
            note_dirs(created)
        for index, entry in enumerate(files):
            what, path = "files[%d]" % index, entry["path"]
            data = to_bytes(entry["content"], errors="surrogate_or_strict")
            note_dirs(make_dirs(module, os.path.dirname(path)))
            before = read(path)
            attr_diff = dict(before=dict(path=path), after=dict(path=path))
            # An existing file gets its new attributes before its new content (see notes).
            changed = before is not None and module.set_fs_attributes_if_different(fs_args(entry), False, attr_diff, expand=False)
            if before != data:
                changed = True
                if not module.check_mode:
                    write(module, path, data, unsafe_writes)
                    if before is None:
                        module.set_fs_attributes_if_different(fs_args(entry), False, expand=False)
                if module._diff:
                    diffs.append(dict(before_header=path, after_header=path,
                                      before=to_text(before or b"", errors="surrogate_or_replace"), after=entry["content"]))
            elif changed and module._diff:
                diffs.append(dict(before_header="%s (attributes)" % path, after_header="%s (attributes)" % path,
                                  before=attr_lines(attr_diff, "before"), after=attr_lines(attr_diff, "after")))
            if changed:
                changed_files.append(path)
            results.append(dict(path=path, changed=changed))
    except Exception as exc:
        msg, cause = "%s.path: %s" % (what, to_native(exc)), getattr(exc, "__cause__", None)
        if cause is not None:
            msg += ": %s" % to_native(cause)
        if getattr(cause, "errno", None) == errno.EBUSY and not unsafe_writes:
            msg += " (a file bind-mounted into a container? see unsafe_writes)"
        module.fail_json(msg=msg, changed=bool(changed_files or changed_dirs),
                         changed_files=changed_files, changed_directories=changed_dirs)

    result = dict(changed=bool(changed_files or changed_dirs), changed_files=changed_files,
                  changed_directories=changed_dirs, files=results)
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
