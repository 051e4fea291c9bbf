# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: preload
type: aggregate
short_description: Import the collection's filter and lookup plugins once, in the controller, before any task runs
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - ansible-core runs each task on each host in a worker process forked from the controller's main process, and a worker
    imports the filter and lookup plugins its task uses, unless the main process had already imported them. The main process
    rarely uses the collection's filters itself, so every worker whose task uses one imported all of the collection's filter
    files again, about 25 ms of CPU each time; several hundred times in a rerun of a site.
  - At the start of the playbook, this callback imports the collection's filter and lookup plugin files in the main process,
    under the module names ansible-core's plugin loader gives them, so that every forked worker inherits them. It changes no
    setting, output or result; a file that fails to import is left to the worker that needs it, which reports the error as
    it would without this callback.
  - Enable it in C(ansible.cfg) with C(callbacks_enabled = juno.hub.changes, juno.hub.preload). The figures are in the
    collection's docs/performance.md.
requirements:
  - enabled in callbacks_enabled
"""

import importlib
import pkgutil

from ansible.plugins.callback import CallbackBase

# The plugin types whose files a task's templates import: filters (Jinja2 filters) and lookups.
PRELOADED = ("filter", "lookup")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "juno.hub.preload"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.preloaded = []

    def v2_playbook_on_start(self, playbook):
        # This file is plugins/callback/preload.py of the collection: its siblings are the packages
        # ansible_collections.<namespace>.<name>.plugins.<type>, the names the plugin loader uses.
        package = __name__.rsplit(".", 2)[0]
        for kind in PRELOADED:
            try:
                pkg = importlib.import_module("%s.%s" % (package, kind))
            except ImportError:
                continue
            for dummy, name, ispkg in pkgutil.iter_modules(pkg.__path__, prefix=pkg.__name__ + "."):
                if ispkg:
                    continue
                try:
                    importlib.import_module(name)
                except Exception:  # pylint: disable=broad-except
                    # The worker whose task uses the plugin imports it again and reports the error.
                    continue
                self.preloaded.append(name)
        self._display.vvv("juno.hub.preload: imported %d plugin files in the controller: %s"
                          % (len(self.preloaded), ", ".join(self.preloaded)))
