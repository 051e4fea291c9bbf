#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kata_runtime_info
short_description: Report whether a node can run Kata Containers, and why not
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Reads what Kata Containers needs from a node and says whether the node is I(capable) of running
    it, with the I(reasons) in plain words when it is not, and the raw I(findings).
  - Checked are hardware virtualisation (the C(vmx) or C(svm) CPU flag in C(/proc/cpuinfo)); whether the
    node is itself a virtual machine (the C(hypervisor) flag) and, if so, whether its hypervisor passes
    virtualisation through (nested virtualisation; the C(nested) parameter of C(kvm_intel)/C(kvm_amd)
    is reported as well); C(/dev/kvm) (present, a character device, opens read-write); and the kernel
    modules C(vhost), C(vhost_net) and C(vhost_vsock) (loaded or built in according to
    C(/sys/module), or loadable according to C(modules.builtin)/C(modules.dep) under
    C(/lib/modules/<kernel release>) or C(modprobe -n -q)).
  - When Kata is installed (O(kata_runtime) exists), runs C(kata-runtime check --no-network-checks)
    and adds the errors it logs to the reasons. Independently, reads the containerd configuration
    (and the files it imports) for runtime handlers of type C(io.containerd.kata.v2) in the
    containerd 1.x (config version 2, plugin C(io.containerd.grpc.v1.cri)) and 2.x (config version 3,
    plugin C(io.containerd.cri.v1.runtime)) layouts.
  - The module changes nothing itself. Run it as root (C(become)) so that C(/dev/kvm) can be opened.
options:
  root:
    description:
      - Directory the node's C(/proc), C(/sys), C(/dev), C(/lib/modules) and C(/etc) are read below,
        and below which O(containerd_config) and O(kata_runtime) are looked up.
      - Other than C(/) for fixture trees in tests, or a host file system mounted into a container.
        C(kata-runtime check) is only run when this is C(/).
    type: path
    default: /
  containerd_config:
    description:
      - The containerd configuration file on the node (below O(root)).
    type: path
    default: /etc/containerd/config.toml
  kata_runtime:
    description:
      - The C(kata-runtime) binary on the node (below O(root)). Kata counts as installed when it exists.
    type: path
    default: /opt/kata/bin/kata-runtime
  kata_check:
    description:
      - Run C(kata-runtime check --no-network-checks) when Kata is installed.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
requirements:
  - Python 3.11 or newer on the node (C(tomllib)), or the C(tomli) or C(toml) package, to read the containerd
    configuration. Without one the containerd findings carry an error and everything else is still reported.
notes:
  - C(kata-runtime check) itself tries to load the kernel modules it needs (C(modprobe)); that is the only
    side effect, and only when Kata is installed and O(kata_check=true).
  - Inside an unprivileged container C(/dev/kvm) is usually absent, so a container is reported as not capable
    even on a capable host; that is the truth for pods started in it.
seealso:
  - name: Kata Containers, installation and host requirements
    description: The checks C(kata-runtime check) makes.
    link: https://github.com/kata-containers/kata-containers/blob/main/docs/install/README.md
"""

EXAMPLES = r"""
- name: Can this node run Kata Containers?
  juno.hub.kata_runtime_info:
  become: true
  register: kata

- name: Say why not
  ansible.builtin.debug:
    msg: "{{ kata.reasons }}"
  when: not kata.capable

- name: Read a host file system mounted at /host from inside a container
  juno.hub.kata_runtime_info:
    root: /host
  register: kata_host

- name: Ad hoc, on every node of the cluster
  # ansible k8s_cluster -b -m juno.hub.kata_runtime_info
  juno.hub.kata_runtime_info:
    containerd_config: /etc/containerd/config.toml
    kata_runtime: /opt/kata/bin/kata-runtime
    kata_check: false
"""

RETURN = r"""
capable:
  description: Whether the node can run Kata Containers (no reasons against it).
  returned: always
  type: bool
  sample: false
ready:
  description: Capable, Kata installed and a Kata runtime handler configured in containerd.
  returned: always
  type: bool
  sample: false
reasons:
  description: Why the node cannot run Kata Containers, one plain sentence each; empty when capable.
  returned: always
  type: list
  elements: str
  sample:
    - "the CPU does not offer hardware virtualisation (no vmx or svm flag in /proc/cpuinfo): enable Intel VT-x or AMD-V in the firmware (BIOS/UEFI) settings"
    - "kernel module vhost_vsock is neither loaded nor available for kernel 6.1.0-28-amd64 (looked in /sys/module, /lib/modules/6.1.0-28-amd64/modules.dep)"
notes:
  description: Remarks that do not stop Kata (nested virtualisation in use, warnings of kata-runtime check, an unreadable containerd config).
  returned: always
  type: list
  elements: str
  sample: ["this node is a virtual machine with nested virtualisation (vmx passed through)"]
findings:
  description: The raw findings the decision is made from.
  returned: always
  type: dict
  contains:
    root:
      description: The root directory the node was read below.
      type: str
      sample: /
    kernel_release:
      description: Kernel release (C(/proc/sys/kernel/osrelease)).
      type: str
      sample: 6.1.0-28-amd64
    cpu:
      description: From C(/proc/cpuinfo); flags are those all processors have.
      type: dict
      sample: {family: x86, vendor_id: GenuineIntel, model_name: "Intel(R) Xeon(R) Gold 6230", processors: 80,
               virtualization_flags: [vmx], hypervisor: false}
    virtualization:
      description: >-
        C(flag) (vmx, svm or null), C(technology), C(is_vm) (hypervisor flag), C(nested_available) (in a VM:
        the hypervisor passes virtualisation through; null on bare metal) and C(nested_parameter)
        (C(module), C(parameter) path, raw C(value) and C(enabled) of the KVM vendor module's C(nested) parameter).
      type: dict
      sample: {flag: vmx, technology: Intel VT-x, is_vm: true, nested_available: true,
               nested_parameter: {module: kvm_intel, parameter: /sys/module/kvm_intel/parameters/nested, value: "Y", enabled: true}}
    kvm:
      description: C(/dev/kvm) as found; C(error) is the reason it could not be opened.
      type: dict
      sample: {path: /dev/kvm, present: true, char_device: true, usable: true, error: null}
    modules:
      description: >-
        Per module (vhost, vhost_net, vhost_vsock), C(state) (loaded, builtin, available or missing)
        and the C(source) that said so.
      type: dict
      sample: {vhost: {state: loaded, source: /sys/module}, vhost_net: {state: available, source: /lib/modules/6.1.0-28-amd64/modules.dep},
               vhost_vsock: {state: missing, source: null}}
    module_index:
      description: Where loadable modules were looked up (C(directory), the C(index_files) found there, the C(modprobe) binary).
      type: dict
    kata:
      description: >-
        C(runtime) path, C(installed), C(version) and C(check): C(ran), C(rc), C(passed), the C(reasons)
        (errors) and C(warnings) that C(kata-runtime check) logged, its C(summary) lines, and why it was C(skipped).
      type: dict
      sample: {runtime: /opt/kata/bin/kata-runtime, installed: false, version: null,
               check: {ran: false, rc: null, passed: null, reasons: [], warnings: [], summary: [], skipped: /opt/kata/bin/kata-runtime is not installed}}
    containerd:
      description: >-
        The containerd C(config) path, whether it is C(present) and C(parsed), its C(version), the C(imports) read,
        every CRI C(runtimes) entry (name, plugin, layout, file, runtime_type, privileged_without_host_devices,
        pod_annotations, config_path, kata), the C(kata_handlers) names, C(kata_configured) and any C(error).
      type: dict
      sample: {config: /etc/containerd/config.toml, present: true, parsed: true, version: 2, imports: [], kata_handlers: [kata],
               kata_configured: true, error: null,
               runtimes: [{name: kata, plugin: io.containerd.grpc.v1.cri, layout: "containerd 1.6/1.7 (config version 2)",
                           file: /etc/containerd/config.toml, runtime_type: io.containerd.kata.v2, privileged_without_host_devices: true,
                           pod_annotations: ["io.katacontainers.*"], config_path: /opt/kata/share/defaults/kata-containers/configuration.toml,
                           kata: true}]}
"""

import os
import platform

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.juno.hub.plugins.module_utils._kata import KataProbe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            containerd_config=dict(type="path", default="/etc/containerd/config.toml"),
            kata_runtime=dict(type="path", default="/opt/kata/bin/kata-runtime"),
            kata_check=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    root = module.params["root"]
    if not root.startswith("/") or not os.path.isdir(root):
        module.fail_json(msg="root %r is not an absolute directory on %s" % (root, platform.node()))

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    probe = KataProbe(
        root=root.rstrip("/") or "/",
        containerd_config=module.params["containerd_config"],
        kata_runtime=module.params["kata_runtime"],
        kata_check=module.params["kata_check"],
        run_command=run,
        get_bin_path=lambda name: module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"]),
    )
    result = probe.run()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
