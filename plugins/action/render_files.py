# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for juno.hub.render_files: write rendered files on the control node.

Runs entirely in the controller process: no module is shipped or executed, so writing the
dozen files a render phase produces costs milliseconds instead of one Python start per file
(docs/performance.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

_FILE_KEYS = frozenset(("name", "content", "mode"))


def _parse_mode(value, what):
    """Octal mode from a string such as '0644' or an int; AnsibleActionFail on anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str) and value.isdigit():
        try:
            mode = int(value, 8)
        except ValueError:
            mode = -1
    else:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise AnsibleActionFail("%s: mode %r is not an octal file mode such as '0644'" % (what, value))
    return mode


def check_files(dest, files):
    """Validate the arguments; return a list of (path, content bytes, mode int)."""
    if not isinstance(dest, str) or not dest:
        raise AnsibleActionFail("dest must be a directory path, got %r" % (dest,))
    if not isinstance(files, list):
        raise AnsibleActionFail("files must be a list of {name, content, mode}, got %s" % type(files).__name__)
    out, seen = [], set()
    for index, entry in enumerate(files):
        what = "files[%d]" % index
        if not isinstance(entry, dict):
            raise AnsibleActionFail("%s must be a dict with name, content and mode, got %r" % (what, entry))
        unknown = sorted(set(entry) - _FILE_KEYS)
        if unknown:
            raise AnsibleActionFail("%s has unknown keys %s; allowed: name, content, mode" % (what, ", ".join(unknown)))
        name = entry.get("name")
        if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in name.split("/"):
            raise AnsibleActionFail("%s: name %r must be a relative path below dest without '..'" % (what, name))
        if name in seen:
            raise AnsibleActionFail("%s: name %r is given twice" % (what, name))
        seen.add(name)
        content = entry.get("content")
        if not isinstance(content, str):
            raise AnsibleActionFail("%s (%s): content must be a string, got %s" % (what, name, type(content).__name__))
        mode = _parse_mode(entry.get("mode", "0644"), "%s (%s)" % (what, name))
        out.append((os.path.join(dest, name), to_bytes(content, errors="surrogate_or_strict"), mode))
    return out


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path, data, mode):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".render-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def render(dest, files, check_mode=False, want_diff=False):
    """Write each file whose content or mode differs. Returns (changed paths, diffs)."""
    changed, diffs = [], []
    for path, data, mode in check_files(dest, files):
        before = _read(path)
        mode_now = os.stat(path).st_mode & 0o7777 if before is not None else None
        if before == data and mode_now == mode:
            continue
        changed.append(path)
        if want_diff and before != data:
            diffs.append({"before_header": path if before is not None else "/dev/null",
                          "after_header": path,
                          "before": to_text(before or b"", errors="surrogate_or_replace"),
                          "after": to_text(data, errors="surrogate_or_replace")})
        if not check_mode:
            if before == data:
                os.chmod(path, mode)
            else:
                _write(path, data, mode)
    return changed, diffs


class ActionModule(ActionBase):
    """Write files below a directory of the control node, only those that differ."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dest", "files"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = self._task.args
        dest = os.path.expanduser(args.get("dest") or "")
        try:
            changed, diffs = render(dest, args.get("files"), check_mode=self._task.check_mode,
                                    want_diff=self._task.diff)
        except OSError as exc:
            raise AnsibleActionFail("cannot write below %s: %s" % (dest, exc))
        result.update(changed=bool(changed), dest=dest, written=changed)
        if diffs:
            result["diff"] = diffs
        return result
