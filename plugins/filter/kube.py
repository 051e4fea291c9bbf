# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the cluster phase (roles kubernetes_packages, control_plane, worker, cluster_addons).

Each filter is a pure function of inventory data, facts or command output, so that the unit
tests reach every decision without a cluster. Documentation: one ``<filter>.yml`` per filter
beside this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.juno.hub.plugins.filter.preflight import netaddr_module

K8S_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
# kubeadm.k8s.io/v1beta4 is served by kubeadm 1.31 and newer; v1beta3 before that.
KUBEADM_V1BETA4_FROM = (1, 31)
TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CA_HASH = re.compile(r"^sha256:[a-f0-9]{64}$")
CERT_KEY = re.compile(r"^[a-f0-9]{64}$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# Qualified name: optional DNS-subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
CPU_QUANTITY = re.compile(r"^\d+(\.\d+)?m?$")
MEMORY_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}
# Order in which package files are installed from an offline directory (dependencies first).
OFFLINE_ORDER = ("cri-tools", "kubernetes-cni", "kubectl", "kubelet", "kubeadm")


def _version_tuple(version, name="juno_kubernetes_version"):
    m = K8S_VERSION.match(str(version).strip())
    if not m:
        raise AnsibleFilterError("%s %r is not a full Kubernetes version such as 1.32.4" % (name, version))
    return tuple(int(p) for p in m.groups())


def kubeadm_api_version(version):
    """The kubeadm configuration API group/version the kubeadm of ``version`` reads best."""
    major, minor, _patch = _version_tuple(version)
    if (major, minor) >= KUBEADM_V1BETA4_FROM:
        return "kubeadm.k8s.io/v1beta4"
    return "kubeadm.k8s.io/v1beta3"


def kube_minor(version):
    """``1.32.4`` -> ``v1.32`` (the pkgs.k8s.io repository of that minor version)."""
    major, minor, _patch = _version_tuple(version)
    return "v%d.%d" % (major, minor)


def kube_version(version):
    """``1.32.4`` or ``v1.32.4`` -> ``v1.32.4`` (kubeadm's kubernetesVersion)."""
    return "v%d.%d.%d" % _version_tuple(version)


def kube_package_specs(names, version, pkg_mgr):
    """Package specifications pinned to ``version`` for the package manager of the host.

    apt: ``kubeadm=1.32.4-*`` (pkgs.k8s.io debs are versioned ``1.32.4-1.1``);
    dnf/yum: ``kubeadm-1.32.4`` (rpms are ``1.32.4-150500.1.1``).
    """
    plain = "%d.%d.%d" % _version_tuple(version)
    if pkg_mgr == "apt":
        return ["%s=%s-*" % (n, plain) for n in names]
    if pkg_mgr in ("dnf", "dnf5", "yum"):
        return ["%s-%s" % (n, plain) for n in names]
    raise AnsibleFilterError("juno.hub.kube_package_specs: package manager %r is not supported (apt, dnf or yum)" % (pkg_mgr,))


def _installed_versions(installed, name):
    """Versions of ``name`` in either shape: ``ansible_facts.packages`` (package_facts: a list of
    dicts with ``version``) or juno.hub.host_state_info's ``packages`` (a version, or None)."""
    value = (installed or {}).get(name)
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(p.get("version", "")) for p in value]
    return [str(value)]


def kube_package_drift(installed, names, version):
    """Problems for packages installed at another version than ``version``.

    ``installed`` is ``ansible_facts.packages`` (package_facts) or host_state_info's ``packages``.
    Missing packages are no problem.
    """
    plain = "%d.%d.%d" % _version_tuple(version)
    problems = []
    for name in names:
        for have in _installed_versions(installed, name):
            if have.split("-", 1)[0] != plain:
                problems.append(
                    "%s %s is installed but juno_kubernetes_version is %s; upgrade a running cluster with playbooks/upgrade.yml "
                    "(kubeadm upgrade), or set kubernetes_packages_allow_version_change: true to let this role change the packages" % (name, have, plain)
                )
    return problems


def kube_missing_packages(installed, names, version):
    """Names of ``names`` not installed at ``version``."""
    plain = "%d.%d.%d" % _version_tuple(version)
    missing = []
    for name in names:
        versions = [v.split("-", 1)[0] for v in _installed_versions(installed, name)]
        if plain not in versions:
            missing.append(name)
    return missing


def kube_offline_packages(files, names, version, pkg_mgr):
    """Pick the package files of an offline directory to install, dependencies first.

    ``files`` are paths (or names); a file belongs to package ``n`` when its name starts with
    ``n_`` (deb) or ``n-<digit>`` (rpm). Every name in ``names`` must be present at ``version``;
    cri-tools and kubernetes-cni are taken when present.
    """
    plain = "%d.%d.%d" % _version_tuple(version)
    ext = ".deb" if pkg_mgr == "apt" else ".rpm"
    by_name = {}
    for path in sorted(str(f) for f in files or []):
        base = os.path.basename(path)
        if not base.endswith(ext):
            continue
        for n in set(OFFLINE_ORDER) | set(names):
            if base.startswith(n + "_") or re.match(re.escape(n) + r"-\d", base):
                by_name.setdefault(n, []).append(path)
    chosen, missing = [], []
    order = list(OFFLINE_ORDER) + [n for n in names if n not in OFFLINE_ORDER]
    for n in order:
        candidates = by_name.get(n, [])
        if n in names:
            candidates = [p for p in candidates if re.match(re.escape(n) + r"[_-]" + re.escape(plain) + r"[-_]", os.path.basename(p))]
            if not candidates:
                missing.append("%s %s" % (n, plain))
                continue
        if candidates:
            chosen.append(candidates[-1])
    if missing:
        raise AnsibleFilterError(
            "kubernetes_packages_offline_dir has no %s file for %s; put the packages of that version (and cri-tools, kubernetes-cni) there"
            % (ext, ", ".join(missing))
        )
    return chosen


def kube_arch(architecture):
    """``ansible_facts.architecture`` -> the name release artefacts use (amd64, arm64, ...)."""
    try:
        return ARCHES[str(architecture)]
    except KeyError:
        raise AnsibleFilterError("architecture %r is not supported (x86_64, aarch64, ppc64le, s390x)" % (architecture,))


def _arg_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def kube_extra_args(args, api_version):
    """Component flags in the shape of the kubeadm API version.

    v1beta3: a map of strings; v1beta4: a list of ``{name, value}`` sorted by name. Booleans
    become ``true``/``false``, lists are joined with commas, ``None`` values are left out.
    """
    clean = dict((str(k).lstrip("-"), _arg_value(v)) for k, v in (args or {}).items() if v is not None)
    if str(api_version).endswith("v1beta3"):
        return dict(sorted(clean.items()))
    if str(api_version).endswith("v1beta4"):
        return [{"name": k, "value": clean[k]} for k in sorted(clean)]
    raise AnsibleFilterError("juno.hub.kube_extra_args: unknown kubeadm API version %r" % (api_version,))


def kube_node_name(hostname):
    """The Kubernetes node name of an inventory host: its short name in lower case."""
    name = str(hostname).split(".", 1)[0].lower()
    if not re.match(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", name):
        raise AnsibleFilterError("host %r gives the node name %r, which is not a DNS label; rename the host" % (hostname, name))
    return name


def _is_ip(value):
    if not value:
        return False
    netaddr = netaddr_module("juno.hub.kube_node_address")
    try:
        netaddr.IPAddress(str(value))
        return True
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return False


def kube_node_address(hostvars_entry):
    """The cluster address of a host: ``juno_node_ip``, else ``ansible_host`` when it is an
    address, else the address of the default route (facts)."""
    hv = hostvars_entry or {}
    if hv.get("juno_node_ip"):
        return str(hv["juno_node_ip"])
    if _is_ip(hv.get("ansible_host")):
        return str(hv["ansible_host"])
    facts = hv.get("ansible_facts") or {}
    for default in (facts.get("default_ipv4"), hv.get("ansible_default_ipv4")):
        if default and default.get("address"):
            return str(default["address"])
    raise AnsibleFilterError(
        "%s: no cluster address; set juno_node_ip (or ansible_host to an address), or gather facts for it"
        % hv.get("inventory_hostname", "host")
    )


def kube_nodes(hostvars, hosts):
    """``[{name, address}]`` of ``hosts`` (inventory names), addresses as kube_node_address finds them."""
    return [{"name": str(h), "address": kube_node_address(hostvars[h])} for h in hosts or []]


def kube_hosts_without_address(hostvars, hosts):
    """The hosts of ``hosts`` whose cluster address is unknown without gathering their facts."""
    missing = []
    for h in hosts or []:
        try:
            kube_node_address(hostvars[h])
        except AnsibleFilterError:
            missing.append(str(h))
    return missing


def kube_node_regex(hosts):
    """An anchored regular expression for kubelet-csr-approver's providerRegex: the name families
    of ``hosts`` (short and full inventory names), each run of digits generalised to ``[0-9]+``.

    ``w1``..``w5`` give ``w[0-9]+``: a worker added under the same naming scheme is admitted
    without a new release of the approver (adding a node changes nothing cluster-wide), while a
    name outside the inventory's families is not. The approver also requires the addresses of a
    certificate to lie in ``juno_node_networks`` and the request to come from the node itself.
    """
    patterns = []
    for h in hosts or []:
        for name in (kube_node_name(h), str(h).lower()):
            pattern = "[0-9]+".join(re.escape(part) for part in re.split(r"[0-9]+", name))
            if pattern not in patterns:
                patterns.append(pattern)
    if not patterns:
        raise AnsibleFilterError("juno.hub.kube_node_regex: no hosts")
    return "^(%s)$" % "|".join(sorted(patterns))


def kube_cert_sans(endpoint, nodes, extra=None):
    """Subject alternative names of the API server certificate.

    ``endpoint``: the API endpoint address (VIP or load balancer); ``nodes``: the control
    planes as ``{name, address}``; ``extra``: more names or addresses. Node names are added in
    their inventory and short forms. Order is stable, duplicates removed.
    """
    sans = []

    def add(value):
        if value and str(value) not in sans:
            sans.append(str(value))

    add(endpoint)
    for node in nodes or []:
        add(kube_node_name(node["name"]))
        add(str(node["name"]).lower())
        add(node.get("address"))
    for value in extra or []:
        add(value)
    return sans


def _quantity(value, pattern, where):
    text = str(value).strip()
    if not pattern.match(text):
        raise AnsibleFilterError("%s %r is not a Kubernetes quantity" % (where, value))
    return text


def kubelet_reserved(fact, defaults):
    """``systemReserved``/``kubeReserved`` (and ``evictionHard``) of the kubelet from the node
    role's fact.

    ``fact`` (``node_kubelet_reserved``) has the shape ``{system_reserved: {cpu, memory},
    kube_reserved: {cpu, memory}}``, or the KubeletConfiguration names ``systemReserved``,
    ``kubeReserved`` (and ``evictionHard``, passed through); what it lacks, or all of it when it
    is absent, comes from ``defaults`` of the snake_case shape.
    """
    fact = fact or {}
    if not isinstance(fact, dict):
        raise AnsibleFilterError("node_kubelet_reserved must be a dict like {system_reserved: {cpu, memory}, kube_reserved: {cpu, memory}}, got %r" % (fact,))
    out = {}
    for key, field in (("system_reserved", "systemReserved"), ("kube_reserved", "kubeReserved")):
        merged = dict((defaults or {}).get(key) or {})
        given = fact.get(key) if fact.get(key) is not None else fact.get(field)
        if given is not None and not isinstance(given, dict):
            raise AnsibleFilterError("node_kubelet_reserved.%s must be a dict of resources, got %r" % (key, given))
        merged.update(dict((k, v) for k, v in (given or {}).items() if v not in (None, "")))
        unknown = sorted(set(merged) - {"cpu", "memory", "ephemeral-storage", "pid"})
        if unknown:
            raise AnsibleFilterError("node_kubelet_reserved.%s has unknown resources %s (cpu, memory, ephemeral-storage, pid)" % (key, ", ".join(unknown)))
        entry = {}
        if "cpu" in merged:
            entry["cpu"] = _quantity(merged["cpu"], CPU_QUANTITY, "node_kubelet_reserved.%s.cpu" % key)
        if "memory" in merged:
            entry["memory"] = _quantity(merged["memory"], MEMORY_QUANTITY, "node_kubelet_reserved.%s.memory" % key)
        for other in ("ephemeral-storage", "pid"):
            if other in merged:
                entry[other] = str(merged[other])
        out[field] = entry
    eviction = fact.get("evictionHard", fact.get("eviction_hard"))
    if eviction:
        if not isinstance(eviction, dict):
            raise AnsibleFilterError("node_kubelet_reserved.evictionHard must be a dict of signal to threshold, got %r" % (eviction,))
        out["evictionHard"] = dict((str(k), str(v)) for k, v in eviction.items())
    return out


def kube_taints(taints, where="worker_node_taints"):
    """Normalise taints: dicts ``{key, value?, effect}`` or strings ``key[=value]:Effect``."""
    out = []
    for i, taint in enumerate(taints or []):
        if isinstance(taint, str):
            m = re.match(r"^([^=:]+)(=([^:]*))?:(\w+)$", taint.strip())
            if not m:
                raise AnsibleFilterError("%s[%d] %r is not key[=value]:Effect" % (where, i, taint))
            taint = {"key": m.group(1), "value": m.group(3), "effect": m.group(4)}
        if not isinstance(taint, dict) or not taint.get("key"):
            raise AnsibleFilterError("%s[%d] %r needs a key" % (where, i, taint))
        if taint.get("effect") not in TAINT_EFFECTS:
            raise AnsibleFilterError("%s[%d] effect %r is not one of %s" % (where, i, taint.get("effect"), ", ".join(TAINT_EFFECTS)))
        if not LABEL_KEY.match(str(taint["key"])):
            raise AnsibleFilterError("%s[%d] key %r is not a valid taint key" % (where, i, taint["key"]))
        entry = {"key": str(taint["key"])}
        if taint.get("value") not in (None, ""):
            if not LABEL_VALUE.match(str(taint["value"])):
                raise AnsibleFilterError("%s[%d] value %r is not a valid taint value" % (where, i, taint["value"]))
            entry["value"] = str(taint["value"])
        entry["effect"] = taint["effect"]
        out.append(entry)
    return out


def kube_labels(labels, where="worker_node_labels"):
    """Check node labels and return them with string values."""
    out = {}
    for key, value in (labels or {}).items():
        if not LABEL_KEY.match(str(key)):
            raise AnsibleFilterError("%s key %r is not a valid label key" % (where, key))
        text = _arg_value(value)
        if not LABEL_VALUE.match(text):
            raise AnsibleFilterError("%s[%s] value %r is not a valid label value" % (where, key, text))
        out[str(key)] = text
    return out


def kube_join_info(stdout):
    """Parse ``kubeadm token create --print-join-command``: endpoint, token and CA hashes."""
    words = str(stdout or "").split()
    info = {"endpoint": None, "token": None, "ca_cert_hashes": []}
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word == "join" and info["endpoint"] is None and nxt and not nxt.startswith("-"):
            info["endpoint"] = nxt
        elif word == "--token":
            info["token"] = nxt
        elif word == "--discovery-token-ca-cert-hash":
            info["ca_cert_hashes"].append(nxt)
    if not info["endpoint"] or not info["token"] or not TOKEN.match(info["token"]) or not info["ca_cert_hashes"]:
        raise AnsibleFilterError("output of `kubeadm token create --print-join-command` is not a join command (no endpoint, token or CA hash)")
    for h in info["ca_cert_hashes"]:
        if not CA_HASH.match(h):
            raise AnsibleFilterError("`kubeadm token create --print-join-command` printed a CA hash that is not sha256:<64 hex>")
    return info


def kube_certificate_key(stdout):
    """The certificate key printed by ``kubeadm init phase upload-certs --upload-certs``."""
    keys = [line.strip() for line in str(stdout or "").splitlines() if CERT_KEY.match(line.strip())]
    if not keys:
        raise AnsibleFilterError("`kubeadm init phase upload-certs --upload-certs` printed no certificate key (64 hex digits)")
    return keys[-1]


def metallb_addresses(pool):
    """``juno_lb_address_pool`` entries as MetalLB IPAddressPool addresses.

    Ranges ``a-b`` stay ranges (spaces removed), CIDRs stay CIDRs, a single address becomes
    ``a/32`` (or ``/128``).
    """
    netaddr = netaddr_module("juno.hub.metallb_addresses")
    out = []
    for i, entry in enumerate(pool or []):
        text = str(entry).strip()
        try:
            if "-" in text:
                first, last = (p.strip() for p in text.split("-", 1))
                rng = netaddr.IPRange(first, last)
                out.append("%s-%s" % (rng[0], rng[-1]))
            elif "/" in text:
                out.append(str(netaddr.IPNetwork(text).cidr))
            else:
                ip = netaddr.IPAddress(text)
                out.append("%s/%d" % (ip, 32 if ip.version == 4 else 128))
        except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
            raise AnsibleFilterError("juno_lb_address_pool[%d] %r is not a range, CIDR or address (%s)" % (i, entry, exc))
    return out


def kube_api_endpoint(endpoint):
    """``host:port`` of ``juno_api_endpoint`` (IPv6 addresses in brackets)."""
    address = str((endpoint or {}).get("address") or "")
    if not address:
        raise AnsibleFilterError("juno_api_endpoint.address is empty")
    port = int((endpoint or {}).get("port") or 6443)
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "%s:%d" % (address, port)


def k8s_changed_objects(result):
    """Kind/namespace/name of each object that a kubernetes.core.k8s call changed.

    Takes the registered result of one call, with a single definition (the object is
    ``result.result``) or a list (``result.result.results``, one entry per object).
    """
    if not isinstance(result, dict):
        raise AnsibleFilterError("k8s_changed_objects expects the registered result of kubernetes.core.k8s, got %r" % type(result).__name__)
    outcome = result.get("result") or {}
    entries = outcome.get("results") if isinstance(outcome, dict) and "results" in outcome else [result]
    changed = []
    for entry in entries or []:
        if not isinstance(entry, dict) or not entry.get("changed"):
            continue
        obj = entry.get("result") or {}
        meta = obj.get("metadata") or {}
        name = "%s/%s" % (obj.get("kind", "?"), meta.get("name", "?"))
        if meta.get("namespace"):
            name = "%s/%s/%s" % (obj.get("kind", "?"), meta["namespace"], meta.get("name", "?"))
        changed.append(name)
    return changed


def kube_apply_sets(sets, apply=True, render_only=None):
    """The manifest sets of one kube_apply call, each marked rendered or applied.

    ``sets``: a list of ``{name, manifests, secret (default false), component (default: name)}``.
    A set is rendered instead of applied in render mode (``apply`` false) or when
    ``render_only`` (juno_render_only) lists its component. Names must be unique within the call
    (each is a file, ``<name>.yaml``); an empty set stays in the list (it is recorded, as before).
    """
    if not isinstance(sets, list):
        raise AnsibleFilterError("kube_apply_sets: kube_apply_sets must be a list of sets, got %s" % type(sets).__name__)
    render_only = list(render_only or [])
    out, seen = [], set()
    for index, entry in enumerate(sets):
        where = "kube_apply_sets[%d]" % index
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry.get("name"):
            raise AnsibleFilterError("%s: a set needs a non-empty string name, got %r" % (where, entry if not isinstance(entry, dict) else entry.get("name")))
        name = entry["name"]
        if name in seen:
            raise AnsibleFilterError("%s: the name %r is given twice in one call" % (where, name))
        seen.add(name)
        manifests = entry.get("manifests") or []
        if not isinstance(manifests, list) or not all(isinstance(obj, dict) for obj in manifests):
            raise AnsibleFilterError("%s (%s): manifests must be a list of objects" % (where, name))
        component = entry.get("component") or name
        out.append({
            "name": name,
            "manifests": manifests,
            "secret": bool(entry.get("secret", False)),
            "render": (not apply) or component in render_only,
        })
    return out


class FilterModule(object):
    def filters(self):
        return {
            "kubeadm_api_version": kubeadm_api_version,
            "kube_minor": kube_minor,
            "kube_version": kube_version,
            "kube_package_specs": kube_package_specs,
            "kube_package_drift": kube_package_drift,
            "kube_missing_packages": kube_missing_packages,
            "kube_offline_packages": kube_offline_packages,
            "kube_arch": kube_arch,
            "kube_extra_args": kube_extra_args,
            "kube_node_name": kube_node_name,
            "kube_node_address": kube_node_address,
            "kube_nodes": kube_nodes,
            "kube_hosts_without_address": kube_hosts_without_address,
            "kube_node_regex": kube_node_regex,
            "kube_cert_sans": kube_cert_sans,
            "kubelet_reserved": kubelet_reserved,
            "kube_taints": kube_taints,
            "kube_labels": kube_labels,
            "kube_join_info": kube_join_info,
            "kube_certificate_key": kube_certificate_key,
            "metallb_addresses": metallb_addresses,
            "kube_api_endpoint": kube_api_endpoint,
            "k8s_changed_objects": k8s_changed_objects,
            "kube_apply_sets": kube_apply_sets,
        }
