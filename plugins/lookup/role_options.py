# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: role_options
short_description: The options of an entry point of this collection's roles, from their meta/argument_specs.yml
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Returns, for each role name given, the C(options) of one entry point of the role's
    C(meta/argument_specs.yml), read from this collection wherever it is installed.
  - The preflight playbook merges them and checks every setting of every role the run will use
    with one C(ansible.builtin.validate_argument_spec) task per host, before any role runs.
options:
  _terms:
    description: Role names of this collection (C(node), C(containerd)...).
    required: true
    type: list
    elements: str
  entry_point:
    description: The entry point whose options to return.
    type: str
    default: main
  defaults:
    description:
      - Keep each option's C(default). With V(false) they are left out, so that
        C(validate_argument_spec) outside the role checks only the values that are set; many
        defaults are templates that only the role's own context can resolve.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Check the types of the settings of the node and containerd roles
  ansible.builtin.validate_argument_spec:
    argument_spec: "{{ query('juno.hub.role_options', 'node', 'containerd', defaults=false) | combine }}"
"""

RETURN = r"""
_list:
  description: One dict of options per role name, in the order given (empty when the entry point has none).
  type: list
  elements: dict
"""

import os
import re

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

ROLES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles"))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        entry_point = self.get_option("entry_point")
        keep_defaults = self.get_option("defaults")
        result = []
        for name in terms:
            if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]*$", name):
                raise AnsibleLookupError("role_options: %r is not a role name of juno.hub" % (name,))
            path = os.path.join(ROLES, name, "meta", "argument_specs.yml")
            try:
                specs = self._loader.load_from_file(path) or {}
            except Exception as e:
                raise AnsibleLookupError("role_options: cannot read %s: %s" % (path, to_native(e)))
            entry = (specs.get("argument_specs") or {}).get(entry_point)
            if entry is None:
                raise AnsibleLookupError("role_options: role %s has no entry point %r in %s" % (name, entry_point, path))
            options = dict(entry.get("options") or {})
            if not keep_defaults:
                options = dict((k, dict((a, v) for a, v in spec.items() if a != "default")) for k, spec in options.items())
            result.append(options)
        return result
