# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: changes
type: aggregate
short_description: Note, per host, the names of the tasks that changed something, for the history of the desired state
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Keeps, for the run, the name of every task that reported a change, per host, in a JSON file in the system's temporary
    directory, and tells the run where it is in the environment variable C(JUNO_CHANGES_FILE).
  - The C(juno.hub.record) play reads that file and writes the list into the history entry it makes. Without this
    callback the entry says that the changed tasks were not noted.
  - Enable it in C(ansible.cfg) with C(callbacks_enabled = juno.hub.changes). Only task names are kept, never results.
requirements:
  - enabled in callbacks_enabled
"""

import json
import os
import tempfile

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "juno.hub.changes"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._changes = {}
        fd, self._path = tempfile.mkstemp(prefix="juno-changes-", suffix=".json")
        os.close(fd)
        # Worker processes fork from this one after the playbook starts: they inherit the variable,
        # so lookup('env', 'JUNO_CHANGES_FILE') finds the file of this run.
        os.environ["JUNO_CHANGES_FILE"] = self._path
        self._write()

    def _write(self):
        with open(self._path, "w") as f:
            json.dump(self._changes, f, indent=1, sort_keys=True)

    def _note(self, result):
        if not result._result.get("changed"):
            return
        host = result._host.get_name()
        name = result._task.get_name()
        names = self._changes.setdefault(host, [])
        if name not in names:
            names.append(name)
            self._write()

    def v2_runner_on_ok(self, result):
        self._note(result)

    def v2_runner_item_on_ok(self, result):
        self._note(result)

    def v2_playbook_on_stats(self, stats):
        try:
            os.unlink(self._path)
        except OSError:
            pass
