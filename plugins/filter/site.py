# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the site inventory that relate several values to each other.

Types and required keys are checked by ``validate_argument_spec`` in the preflight role;
the rules here need more than one value at a time (overlaps, uniqueness, counts).
Every rule returns plain messages that name the variable, the value and what would be right,
so that preflight can report all problems of an inventory at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.juno.hub.plugins.filter.preflight import hub_place, netaddr_module, value_problems
from ansible_collections.juno.hub.plugins.module_utils._ad import ADError, parse_server

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
K8S_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
MIN_K8S = (1, 32)


def parse_pool(entry):
    """Return an IPSet for a pool entry: a CIDR ("10.0.0.0/28"), a range ("a-b") or one address."""
    netaddr = netaddr_module("juno.hub.site_problems")
    entry = str(entry).strip()
    if "-" in entry:
        first, last = (part.strip() for part in entry.split("-", 1))
        rng = netaddr.IPRange(first, last)
        return netaddr.IPSet(rng)
    return netaddr.IPSet([netaddr.IPNetwork(entry)])


def _ipset(value, name, problems, what):
    """Parse a CIDR, range or address; on failure add a problem and return None."""
    netaddr = netaddr_module("juno.hub.site_problems")
    try:
        return parse_pool(value)
    except (netaddr.AddrFormatError, ValueError, TypeError) as exc:
        problems.append("%s: %r is not a valid %s (%s)" % (name, value, what, exc))
        return None


def _fmt_set(ipset):
    cidrs = [str(c) for c in ipset.iter_cidrs()]
    return ", ".join(cidrs[:4]) + (" ..." if len(cidrs) > 4 else "")


def network_problems(site, nodes):
    """Pod CIDR, service CIDR, node addresses, LB pool and API VIP must not collide."""
    netaddr = netaddr_module("juno.hub.site_problems")
    problems = []
    pod = _ipset(site.get("juno_pod_cidr"), "juno_pod_cidr", problems, "CIDR such as 10.244.0.0/16") if site.get("juno_pod_cidr") else None
    svc = _ipset(site.get("juno_service_cidr"), "juno_service_cidr", problems, "CIDR such as 10.96.0.0/12") if site.get("juno_service_cidr") else None
    if pod is not None and svc is not None and pod & svc:
        problems.append(
            "juno_pod_cidr %s and juno_service_cidr %s overlap (in %s); choose disjoint ranges, e.g. 10.244.0.0/16 and 10.96.0.0/12"
            % (site["juno_pod_cidr"], site["juno_service_cidr"], _fmt_set(pod & svc))
        )

    node_nets = []
    for i, net in enumerate(site.get("juno_node_networks") or []):
        s = _ipset(net, "juno_node_networks[%d]" % i, problems, "CIDR such as 10.20.0.0/24")
        if s is not None:
            node_nets.append((net, s))

    for name, cidr in (("juno_pod_cidr", pod), ("juno_service_cidr", svc)):
        if cidr is None:
            continue
        for net, net_set in node_nets:
            if cidr & net_set:
                problems.append(
                    "%s %s overlaps the node network %s (juno_node_networks); pods and Services need addresses no node uses"
                    % (name, site[name], net)
                )

    node_addrs = {}
    for node in nodes:
        addr = node.get("address")
        if not addr:
            continue
        try:
            ip = netaddr.IPAddress(str(addr))
        except (netaddr.AddrFormatError, ValueError):
            # Host names are resolved on the hosts; only literal addresses are checked here.
            continue
        node_addrs[node["name"]] = ip
        for name, cidr in (("juno_pod_cidr", pod), ("juno_service_cidr", svc)):
            if cidr is not None and ip in cidr:
                problems.append("node %s: its address %s lies inside %s %s; move the node or the range" % (node["name"], ip, name, site[name]))
        if node_nets and "k8s_cluster" in node.get("groups", []) and not any(ip in net_set for dummy, net_set in node_nets):
            problems.append(
                "node %s: its address %s is in none of juno_node_networks (%s); add its network so NFS exports and firewall rules admit it"
                % (node["name"], ip, ", ".join(str(n) for n, dummy in node_nets))
            )

    pool = netaddr.IPSet()
    for i, entry in enumerate(site.get("juno_lb_address_pool") or []):
        s = _ipset(entry, "juno_lb_address_pool[%d]" % i, problems, "address range (a-b) or CIDR")
        if s is None:
            continue
        if pool & s:
            problems.append("juno_lb_address_pool[%d] %s overlaps an earlier entry of the pool" % (i, entry))
        pool |= s
        for name, cidr in (("juno_pod_cidr", pod), ("juno_service_cidr", svc)):
            if cidr is not None and cidr & s:
                problems.append("juno_lb_address_pool[%d] %s overlaps %s %s" % (i, entry, name, site[name]))
        for host, ip in node_addrs.items():
            if ip in s:
                problems.append("juno_lb_address_pool[%d] %s contains the address %s of node %s; leave node addresses out of the pool" % (i, entry, ip, host))
        if node_nets and not any(s.issubset(net_set) for dummy, net_set in node_nets):
            problems.append(
                "juno_lb_address_pool[%d] %s is not inside one of juno_node_networks; MetalLB in layer-2 mode can only announce addresses of a node network"
                % (i, entry)
            )

    endpoint = site.get("juno_api_endpoint") or {}
    vip = endpoint.get("address")
    if vip:
        try:
            vip_ip = netaddr.IPAddress(str(vip))
        except (netaddr.AddrFormatError, ValueError):
            vip_ip = None
        if vip_ip is not None:
            if vip_ip in pool:
                problems.append("juno_api_endpoint.address %s lies in juno_lb_address_pool; the API VIP must not be handed out to Services" % vip)
            for host, ip in node_addrs.items():
                if ip == vip_ip and endpoint.get("provider", "kube_vip") == "kube_vip":
                    problems.append(
                        "juno_api_endpoint.address %s is the address of node %s; a kube-vip VIP must be a free address of the node network" % (vip, host)
                    )
            for name, cidr in (("juno_pod_cidr", pod), ("juno_service_cidr", svc)):
                if cidr is not None and vip_ip in cidr:
                    problems.append("juno_api_endpoint.address %s lies inside %s %s" % (vip, name, site[name]))
    return problems


def node_problems(nodes):
    """Odd number of control planes, unique names and addresses."""
    problems = []
    cps = [n["name"] for n in nodes if "kube_control_plane" in n.get("groups", [])]
    if not cps:
        problems.append("group kube_control_plane is empty; a cluster needs 1, 3 or 5 control-plane nodes")
    elif len(cps) % 2 == 0:
        problems.append(
            "group kube_control_plane has %d hosts (%s); etcd needs an odd number (1, 3 or 5) to keep quorum" % (len(cps), ", ".join(sorted(cps)))
        )
    seen_names = {}
    seen_addrs = {}
    for n in nodes:
        short = n["name"].split(".")[0].lower()
        if short in seen_names and seen_names[short] != n["name"]:
            problems.append("hosts %s and %s have the same node name %r; Kubernetes node names must be unique" % (seen_names[short], n["name"], short))
        seen_names.setdefault(short, n["name"])
        addr = n.get("address")
        if addr:
            if addr in seen_addrs:
                problems.append(
                    "hosts %s and %s have the same address %s (juno_node_ip or ansible_host); each node needs its own" % (seen_addrs[addr], n["name"], addr)
                )
            seen_addrs.setdefault(addr, n["name"])
    return problems


def hub_namespace(hub):
    return hub.get("namespace") or "hub-%s" % hub.get("name", "")


def hub_problems(site):
    """Hub names are DNS labels and unique; namespaces, hostnames and LB addresses unique."""
    netaddr = netaddr_module("juno.hub.site_problems")
    problems = []
    hubs = site.get("juno_hubs") or []
    names, namespaces, hostnames, addresses = {}, {}, {}, {}
    pool = None
    if site.get("juno_lb_address_pool"):
        try:
            pool = netaddr.IPSet()
            for entry in site["juno_lb_address_pool"]:
                pool |= parse_pool(entry)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            pool = None  # reported by network_problems
    places = [hub_place(hub, i) for i, hub in enumerate(hubs)]
    for i, hub in enumerate(hubs):
        where = places[i]
        if not isinstance(hub, dict):
            problems.append("%s: is %r, not a hub (a dictionary with name, hostname, ad, ...)" % (where, hub))
            continue
        name = hub.get("name")
        if not isinstance(name, str) or not DNS_LABEL.match(name) or len(name) > 40:
            problems.append(
                "%s: name %r is not a valid hub name; use a lower-case DNS label of at most 40 characters (letters, digits, '-', starting with a letter)"
                % (where, name)
            )
        elif name in names:
            problems.append("%s: the name %r is used by another hub too (entries %d and %d of juno_hubs); hub names must be unique"
                            % (where, name, names[name], i))
        else:
            names[name] = i
        ns = hub_namespace(hub)
        if not DNS_LABEL.match(ns or ""):
            problems.append("%s: namespace %r is not a valid Kubernetes namespace (a DNS label)" % (where, ns))
        elif ns in ("default", "kube-system", "kube-public", "kube-node-lease") or ns.startswith("kube-"):
            problems.append("%s: namespace %r is reserved by Kubernetes; give the hub its own namespace" % (where, ns))
        elif ns in namespaces:
            problems.append("%s: namespace %r is the namespace of %s too; each hub needs its own namespace" % (where, ns, places[namespaces[ns]]))
        else:
            namespaces[ns] = i
        host = hub.get("hostname")
        if host is not None:
            if not isinstance(host, str) or not DNS_NAME.match(host):
                problems.append("%s: hostname %r is not a valid DNS name" % (where, host))
            elif host in hostnames:
                problems.append("%s: hostname %r is the hostname of %s too; each hub needs its own hostname" % (where, host, places[hostnames[host]]))
            else:
                hostnames[host] = i
        addr = hub.get("lb_address")
        if addr is not None:
            try:
                ip = netaddr.IPAddress(str(addr))
            except (netaddr.AddrFormatError, ValueError):
                problems.append("%s: lb_address %r is not an IP address" % (where, addr))
                ip = None
            if ip is not None:
                if str(ip) in addresses:
                    problems.append("%s: lb_address %s is the address of %s too" % (where, ip, places[addresses[str(ip)]]))
                addresses[str(ip)] = i
                if pool is not None and ip not in pool:
                    problems.append(
                        "%s: lb_address %s is outside juno_lb_address_pool (%s); MetalLB can only assign pool addresses"
                        % (where, ip, ", ".join(site["juno_lb_address_pool"]))
                    )
        ad = hub.get("ad") or {}
        if not isinstance(ad, dict):
            ad = {}
        if not ad.get("allowed_groups"):
            problems.append("%s: ad.allowed_groups is empty; a hub admits members of at least one AD group (allow_all is never set)" % where)
        for key in ("allowed_groups", "admin_groups"):
            groups = ad.get(key) or []
            for group in groups if isinstance(groups, list) else []:
                # A group is a sAMAccountName, which cannot hold '=' or ',', or a DN: anything with
                # either is read as a DN and must parse as one.
                if isinstance(group, str) and ("=" in group or "," in group):
                    problems += value_problems([["%s: ad.%s entry" % (where, key), "dn", group]])
        defaults = [p for p in hub.get("profiles") or [] if isinstance(p, dict) and p.get("default")]
        if len(defaults) > 1:
            problems.append("%s: %d profiles are marked default (%s); mark at most one"
                            % (where, len(defaults), ", ".join(repr(p.get("display_name")) for p in defaults)))
    return problems


def ad_problems(site):
    """LDAPS or StartTLS unless insecure is set; servers present; validate_certs not silently off."""
    problems = []
    ad = site.get("juno_ad")
    if not ad:
        return problems
    tls = ad.get("tls", "ldaps")
    if tls not in ("ldaps", "starttls", "none"):
        problems.append("juno_ad.tls %r is not one of ldaps, starttls, none" % tls)
    if tls == "none" and not ad.get("insecure", False):
        problems.append(
            "juno_ad.tls is 'none' (plain LDAP sends the bind password in clear); use ldaps or starttls, or set juno_ad.insecure: true to accept it"
        )
    for i, server in enumerate(ad.get("servers") or []):
        s = str(server)
        # Parsed as the module parses it; whether the scheme agrees with juno_ad.tls is checked below.
        try:
            parse_server(s, "ldaps" if s.lower().startswith("ldaps://") else "starttls", None)
        except ADError as exc:
            problems.append("juno_ad.servers[%d] %r is not a host name, address or ldap(s):// URL of a domain controller: %s"
                            % (i, s, str(exc).replace("server %r" % s, "").strip(" :")))
        if s.startswith("ldap://") and tls == "ldaps":
            problems.append("juno_ad.servers[%d] %r is a plain ldap:// URL but juno_ad.tls is ldaps; give host names or ldaps:// URLs" % (i, s))
        if s.startswith("ldap://") and tls == "none" and not ad.get("insecure", False):
            problems.append("juno_ad.servers[%d] %r uses plain LDAP; set juno_ad.tls: ldaps or starttls" % (i, s))
    dns = [["juno_ad.%s" % key, "dn", ad[key]] for key in ("base_dn", "user_base_dn", "group_base_dn", "bind_dn") if ad.get(key)]
    problems += value_problems(dns)
    if ad.get("validate_certs") is False and not ad.get("insecure", False):
        problems.append("juno_ad.validate_certs is false; certificate validation can only be turned off together with juno_ad.insecure: true")
    return problems


def version_problems(site):
    problems = []
    v = site.get("juno_kubernetes_version")
    if v is None:
        return problems
    m = K8S_VERSION.match(str(v))
    if not m:
        problems.append("juno_kubernetes_version %r is not a full version such as 1.32.4" % (v,))
    elif (int(m.group(1)), int(m.group(2))) < MIN_K8S:
        problems.append("juno_kubernetes_version %s is older than the oldest supported, 1.32" % v)
    return problems


def site_problems(site, nodes):
    """All relational problems of a site inventory, in a stable order."""
    if not isinstance(site, dict):
        raise AnsibleFilterError("juno.hub.site_problems expects a dict of juno_* settings, got %s" % type(site).__name__)
    problems = []
    problems += version_problems(site)
    problems += node_problems(nodes or [])
    problems += network_problems(site, nodes or [])
    problems += hub_problems(site)
    problems += ad_problems(site)
    return problems


def node_entry(hostvars_entry):
    """The part of a host's variables the site checks read: name, address and groups."""
    return {
        "name": hostvars_entry.get("inventory_hostname"),
        "address": hostvars_entry.get("juno_node_ip") or hostvars_entry.get("ansible_host") or hostvars_entry.get("inventory_hostname"),
        "groups": list(hostvars_entry.get("group_names") or []),
    }


def unreachable_report(results, groups=None, limit=""):
    """Plain lines for the hosts preflight could not reach, and the --limit that goes on without them.

    ``results`` maps each host to its registered ping result: a host is named when the result says
    ``unreachable``, or ``failed`` (the connection answered but no module ran: a stopped container,
    no Python). No such host: an empty list. ``groups`` is the inventory's groups, ``limit`` the
    run's own --limit (``ansible_limit``), kept in the suggestion."""
    if not isinstance(results, dict):
        raise AnsibleFilterError("unreachable_report expects a dict of host to result, got %s" % type(results).__name__)
    down = {}
    for host, result in results.items():
        if isinstance(result, dict) and (result.get("unreachable") or result.get("failed")):
            down[host] = result
    if not down:
        return []
    groups = groups or {}
    hosts = sorted(down)
    lines = []
    for host in hosts:
        result = down[host]
        why = result.get("module_stderr") or result.get("msg") or "no answer"
        why = " ".join(str(why).split())
        if len(why) > 240:
            why = why[:237] + "..."
        lines.append("node %s cannot be reached (%s)" % (host, why))
    lines.append("nothing has been changed on any host")
    base = str(limit or "").strip() or "all"
    lines.append("bring %s back and run again, or go on without %s: --limit '%s'"
                 % (", ".join(hosts), "it" if len(hosts) == 1 else "them", base + "".join(":!" + h for h in hosts)))
    first_cp = (groups.get("kube_control_plane") or [None])[0]
    if first_cp in down:
        lines.append("%s is the first control plane: the cluster, hubs, monitoring and backup phases run from it, so without it "
                     "only the nodes and storage phases can run (playbooks/nodes.yml, playbooks/storage.yml)" % first_cp)
    lines.append("a host left out is not changed; once it is back, a run without --limit brings it in line")
    return lines


class FilterModule(object):
    def filters(self):
        return {
            "node_entry": node_entry,
            "site_problems": site_problems,
            "hub_namespace": hub_namespace,
            "unreachable_report": unreachable_report,
        }
