#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: render_files
short_description: Write rendered files below a directory of the control node, only those that differ
version_added: 0.2.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Writes each of O(files) below O(dest) on the B(control node), creating directories as needed,
    and reports C(changed) only for files whose content or mode differs. Each file is written to a
    temporary file and renamed into place.
  - This is an action plugin that runs in the controller process; no module is sent to a host, so
    it costs the same whatever host the task runs for. The collection's render mode
    (C(juno_apply=false)) writes every manifest, Helm values file and node configuration through it,
    one task per set of files instead of one C(template) or C(copy) per file.
  - Files are never deleted.
options:
  dest:
    description:
      - Directory on the control node the file names are relative to.
    type: path
    required: true
  files:
    description:
      - The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Path of the file relative to O(dest). Subdirectories are created; absolute paths and C(..) are refused.
        type: str
        required: true
      content:
        description:
          - The whole content of the file, for example from C(lookup('ansible.builtin.template', ...)).
        type: str
        required: true
      mode:
        description:
          - Octal file mode, as a string.
        type: str
        default: "0644"
attributes:
  check_mode:
    support: full
    description: In check mode nothing is written; C(changed) and the diff say what would be.
  diff_mode:
    support: full
    description: Shows the content differences. Use C(no_log) for files that hold secrets.
  platform:
    support: full
    platforms: posix
    description: Writes on the control node only.
notes:
  - Set C(no_log) on tasks whose files carry secrets, and give those files mode C(0600).
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Render | write the manifests of the phase
  juno.hub.render_files:
    dest: "{{ juno_render_dir }}/cluster"
    files:
      - name: addon-namespaces.yaml
        content: "{{ manifests | map('to_nice_yaml') | join('---\n') }}"
      - name: "{{ inventory_hostname }}/kubeadm.yaml"
        content: "{{ lookup('ansible.builtin.template', 'kubeadm-init.yaml.j2') }}"
        mode: "0600"
"""

RETURN = r"""
dest:
  description: The directory the files were written below.
  returned: always
  type: str
  sample: /srv/juno/rendered/cluster
written:
  description: Paths of the files written (or, in check mode, that would be written).
  returned: always
  type: list
  elements: str
  sample: [/srv/juno/rendered/cluster/addon-namespaces.yaml]
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    """The work is done by the action plugin of the same name on the control node."""
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            files=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                content=dict(type="str", required=True),
                mode=dict(type="str", default="0644"),
            )),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="juno.hub.render_files runs as an action plugin on the control node; "
                         "it cannot be run as a module on a host")


if __name__ == "__main__":
    main()
