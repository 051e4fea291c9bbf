# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: history_key
short_description: The key that the history of the desired state hashes secrets with
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Returns the key kept in the file given (on the control node), and creates it first (32 random bytes, hex, mode
    0600, its directory 0700) when the file does not exist.
  - The history records secret values as their HMAC-SHA256 under this key (P(juno.hub.secret_hash#filter)), so a
    changed secret shows as a changed hash. Keep the key beside the history repository and out of it; a second
    control machine that should record the same hashes needs a copy of it.
options:
  _terms:
    description: Path of the key file (C(~) is expanded); one path.
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: Hash a secret with the site's key
  ansible.builtin.debug:
    msg: "{{ 'secret' | juno.hub.secret_hash(lookup('juno.hub.history_key', juno_history_dir ~ '.key')) }}"
"""

RETURN = r"""
_list:
  description: The key, as a one-element list.
  type: list
  elements: str
"""

import binascii
import errno
import os
import tempfile

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase


def read_or_create(path):
    """The key in ``path``; a new random key is written there (0600) when the file does not exist."""
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        key = binascii.hexlify(os.urandom(32)).decode("ascii")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".juno-key-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # atomic: a host's worker that made the key first wins
            except OSError as e:
                if e.errno != errno.EEXIST:
                    raise
        finally:
            os.unlink(tmp)
    with open(path) as f:
        key = f.read().strip()
    if not key:
        raise AnsibleLookupError("history_key: %s is empty; remove it to have a new key made" % path)
    return key


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        if len(terms) != 1:
            raise AnsibleLookupError("history_key takes one path, got %d" % len(terms))
        try:
            return [read_or_create(str(terms[0]))]
        except (OSError, IOError) as e:
            raise AnsibleLookupError("history_key: cannot read or create %s: %s" % (terms[0], to_native(e)))
