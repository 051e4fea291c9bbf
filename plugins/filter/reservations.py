# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resources a node keeps back from pods, computed from its size.

The formulas are the ones the large managed Kubernetes services publish, so that a node of a
given size offers the same allocatable capacity here as it would there:

* ``gke`` (Google Kubernetes Engine): CPU 6% of the first core, 1% of the second, 0.5% of the
  third and fourth, 0.25% of every further core; memory 255 MiB below 1 GiB, else 25% of the
  first 4 GiB, 20% of the next 4 GiB, 10% of the next 8 GiB, 6% of the next 112 GiB and 2% of
  everything above 128 GiB.
* ``aks`` (Azure Kubernetes Service, 1.29 and later): CPU 60m for the first core, 40m for the
  second, 20m each for the third and fourth, 10m each above four (the published table: 1 core
  60m, 2 100m, 4 140m, 8 180m, 16 260m, 32 420m, 64 740m); memory the smaller of
  ``20 MiB * max_pods + 50 MiB`` and 25% of the node's memory.

Docs of the filters are in the ``.yml`` files beside this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible.errors import AnsibleFilterError

FORMULAS = ("gke", "aks")

# (size of the band in cores, millicores reserved per core in the band); the last band is open.
_CPU_BANDS = {
    "gke": ((1, 60.0), (1, 10.0), (2, 5.0), (None, 2.5)),
    "aks": ((1, 60.0), (1, 40.0), (2, 20.0), (None, 10.0)),
}

# GKE memory: (size of the band in MiB, fraction reserved); the last band is open.
_GKE_MEMORY_BANDS = ((4096, 0.25), (4096, 0.20), (8192, 0.10), (114688, 0.06), (None, 0.02))
_GKE_SMALL_NODE_MIB = 1024
_GKE_SMALL_NODE_RESERVED_MIB = 255


def _number(value, name, minimum):
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("juno.hub.kube_reserved: %s must be a number, got %r" % (name, value)) from exc
    if math.isnan(number) or number < minimum:
        raise AnsibleFilterError("juno.hub.kube_reserved: %s must be at least %s, got %r" % (name, minimum, value))
    return number


def _banded(total, bands):
    reserved = 0.0
    remaining = total
    for size, rate in bands:
        part = remaining if size is None else min(remaining, size)
        if part <= 0:
            break
        reserved += part * rate
        remaining -= part
    return reserved


def reserved_cpu_millicores(cpus, formula="gke"):
    """Millicores kept back for Kubernetes daemons on a node with ``cpus`` CPUs (may be fractional)."""
    if formula not in FORMULAS:
        raise AnsibleFilterError("juno.hub.kube_reserved: formula %r is not one of %s" % (formula, ", ".join(FORMULAS)))
    cpus = _number(cpus, "cpus", 0)
    return int(math.ceil(_banded(cpus, _CPU_BANDS[formula]) - 1e-9))


def reserved_memory_mib(memory_mib, formula="gke", max_pods=110):
    """MiB kept back for Kubernetes daemons on a node with ``memory_mib`` MiB of memory."""
    if formula not in FORMULAS:
        raise AnsibleFilterError("juno.hub.kube_reserved: formula %r is not one of %s" % (formula, ", ".join(FORMULAS)))
    memory_mib = _number(memory_mib, "memory_mb", 0)
    if formula == "aks":
        max_pods = _number(max_pods, "max_pods", 1)
        reserved = min(20.0 * max_pods + 50.0, 0.25 * memory_mib)
    elif memory_mib < _GKE_SMALL_NODE_MIB:
        reserved = float(_GKE_SMALL_NODE_RESERVED_MIB)
    else:
        reserved = _banded(memory_mib, _GKE_MEMORY_BANDS)
    return int(math.ceil(reserved - 1e-9))


def kube_reserved(cpus, memory_mb, formula="gke", max_pods=110):
    """The kubelet's ``kubeReserved`` for a node: ``{'cpu': '<n>m', 'memory': '<n>Mi'}``.

    ``cpus`` is the number of logical CPUs (``ansible_facts.processor_vcpus``), ``memory_mb`` the
    node's memory in MiB (``ansible_facts.memtotal_mb``), ``max_pods`` the kubelet's maxPods (used
    by the ``aks`` memory formula only).
    """
    return {
        "cpu": "%dm" % reserved_cpu_millicores(cpus, formula),
        "memory": "%dMi" % reserved_memory_mib(memory_mb, formula, max_pods),
    }


class FilterModule(object):
    def filters(self):
        return {
            "kube_reserved": kube_reserved,
        }
