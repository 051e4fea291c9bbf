"""User pods' NetworkPolicy: what the chart renders from the generated values keeps the hubs apart.

Helm cannot run here, so the singleuser NetworkPolicy is built from the values by a port of the
chart's templates (4.4.0 ``templates/singleuser/netpol.yaml`` and the
``jupyterhub.networkPolicy.renderEgressRules`` helper of ``_helpers-netpol.tpl``), validated with
kubernetes-validate, and then probed: user pods reach the internet, their own hub and the
cluster DNS, but not the cloud-metadata address, the API server, nodes, other hubs' pods,
Services or load-balancer addresses, also when the site's nodes have public addresses.
"""

import ipaddress

import pytest

from test_hub_lib import edge_hubs, example_site, rendered_values, site_with

PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def render_egress_rules(netpol, metadata_ip):
    """Port of the chart's jupyterhub.networkPolicy.renderEgressRules."""
    allow = netpol["egressAllowRules"]
    rules = []
    dns_to = []
    if allow["dnsPortsCloudMetadataServer"]:
        dns_to.append({"ipBlock": {"cidr": "%s/32" % metadata_ip}})
    if allow["dnsPortsKubeSystemNamespace"]:
        dns_to.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}})
    if allow["dnsPortsPrivateIPs"]:
        dns_to += [{"ipBlock": {"cidr": c}} for c in PRIVATE]
    if dns_to:
        rules.append({"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}], "to": dns_to})
    if allow["nonPrivateIPs"]:
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE) + ["%s/32" % metadata_ip]}}]})
    if allow["privateIPs"]:
        rules.append({"to": [{"ipBlock": {"cidr": c}} for c in PRIVATE]})
    if allow["cloudMetadataServer"]:
        rules.append({"to": [{"ipBlock": {"cidr": "%s/32" % metadata_ip}}]})
    rules += netpol.get("egress") or []
    return rules


def singleuser_netpol(values, namespace):
    """Port of the chart's templates/singleuser/netpol.yaml for release values (merged over the defaults)."""
    su = values["singleuser"]
    netpol = su["networkPolicy"]
    match = {"component": "singleuser-server", "app": "jupyterhub", "release": "r"}

    def pods(component):
        return {"podSelector": {"matchLabels": {"component": component, "app": "jupyterhub", "release": "r"}}}

    ingress_from = [{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-singleuser": "true"}}}]
    if netpol.get("interNamespaceAccessLabels", "ignore") == "accept":
        ingress_from[0]["namespaceSelector"] = {"matchLabels": {}}
        ingress_from.append({"namespaceSelector": {"matchLabels": {"hub.jupyter.org/network-access-singleuser": "true"}}})
    egress = [
        {"to": [pods("hub")], "ports": [{"port": 8081}]},
        {"to": [pods("proxy")], "ports": [{"port": 8000}]},
        {"to": [pods("autohttps")], "ports": [{"port": 8080}, {"port": 8443}]},
    ] + render_egress_rules(netpol, su["cloudMetadata"]["ip"])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "singleuser", "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": match},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"port": "notebook-port"}], "from": ingress_from}] + (netpol.get("ingress") or []),
            "egress": egress,
        },
    }


def merged(values):
    """The singleuser values after Helm's merge with the chart defaults that matter here."""
    su = values["singleuser"]
    netpol = dict({"ingress": [], "egress": [], "interNamespaceAccessLabels": "ignore"}, **su["networkPolicy"])
    return {"singleuser": dict(su, networkPolicy=netpol)}


def ip_allowed(policy, address, port=443):
    """Whether an egress rule with an ipBlock admits the address (selectors never match an ipBlock address)."""
    addr = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        ports = [p["port"] for p in rule.get("ports") or []]
        if ports and port not in ports:
            continue
        for peer in rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}]:
            block = peer.get("ipBlock")
            if not block:
                continue
            if addr in ipaddress.ip_network(block["cidr"]) and not any(addr in ipaddress.ip_network(e) for e in block.get("except") or []):
                return True
    return False


def selector_peers(policy):
    return [peer for rule in policy["spec"]["egress"] for peer in rule.get("to") or [] if "ipBlock" not in peer]


SITES = {
    "example": example_site(),
    # A university with public node addresses: the chart's nonPrivateIPs rule would admit these.
    "public-nodes": site_with(
        juno_node_networks=["155.101.20.0/24", "155.101.21.0/24"],
        juno_api_endpoint={"address": "155.101.20.10", "port": 6443},
        juno_lb_address_pool=["155.101.21.240-155.101.21.250"],
        juno_pod_cidr="100.96.0.0/12",
        juno_service_cidr="198.18.0.0/16",
    ),
}


def probes(site):
    """Addresses user pods must not reach, with a reason each."""
    result = [("169.254.169.254", "cloud metadata"), ("127.0.0.1", "loopback")]
    result.append((site["juno_api_endpoint"]["address"], "API endpoint"))
    for net in site["juno_node_networks"]:
        n = ipaddress.ip_network(net)
        result += [(str(n[1]), "node network %s" % net), (str(n[-2]), "node network %s" % net)]
    pod = ipaddress.ip_network(site.get("juno_pod_cidr", "10.244.0.0/16"))
    result += [(str(pod[5]), "a pod (any hub)"), (str(pod[-5]), "a pod (any hub)")]
    svc = ipaddress.ip_network(site.get("juno_service_cidr", "10.96.0.0/12"))
    result += [(str(svc[1]), "the kubernetes Service (API server)"), (str(svc[200]), "a Service")]
    for entry in site["juno_lb_address_pool"]:
        first, last = entry.split("-")
        result += [(first, "load-balancer pool"), (last, "load-balancer pool")]
    return result


HUBS = example_site()["juno_hubs"] + edge_hubs()


@pytest.mark.parametrize("site_name", sorted(SITES))
@pytest.mark.parametrize("hub", HUBS, ids=[h["name"] for h in HUBS])
def test_user_pods_reach_nothing_of_the_cluster(site_name, hub):
    site = SITES[site_name]
    policy = singleuser_netpol(merged(rendered_values(hub, site=site)), "hub-%s" % hub["name"])
    for address, what in probes(site):
        for port in (443, 6443, 80, 53, 10250):
            assert not ip_allowed(policy, address, port), "user pods of %s reach %s (%s) on port %d" % (hub["name"], address, what, port)


@pytest.mark.parametrize("site_name", sorted(SITES))
def test_user_pods_reach_the_internet(site_name):
    policy = singleuser_netpol(merged(rendered_values(HUBS[0], site=SITES[site_name])), "hub-chemeng")
    for address in ("8.8.8.8", "151.101.0.223", "140.82.112.3"):
        assert ip_allowed(policy, address, 443)


def test_selectors_stay_in_the_namespace_except_cluster_dns():
    policy = singleuser_netpol(merged(rendered_values(HUBS[0])), "hub-chemeng")
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to") or []:
            if "namespaceSelector" in peer:
                assert peer == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
                assert sorted((p["port"], p["protocol"]) for p in rule["ports"]) == [(53, "TCP"), (53, "UDP")]
    assert all("namespaceSelector" not in p or p["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
               for p in selector_peers(policy))
    ingress = policy["spec"]["ingress"]
    assert ingress == [{"ports": [{"port": "notebook-port"}],
                        "from": [{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-singleuser": "true"}}}]}]


def test_the_chart_defaults_would_not_isolate_public_nodes():
    """Why the role replaces the chart's rules: nonPrivateIPs admits public node and API addresses."""
    site = SITES["public-nodes"]
    values = merged(rendered_values(HUBS[0], site=site))
    values["singleuser"]["networkPolicy"]["egressAllowRules"] = dict(values["singleuser"]["networkPolicy"]["egressAllowRules"], nonPrivateIPs=True)
    values["singleuser"]["networkPolicy"]["egress"] = []
    policy = singleuser_netpol(values, "hub-chemeng")
    assert ip_allowed(policy, "155.101.20.10", 6443)


@pytest.mark.parametrize("site_name", sorted(SITES))
def test_rendered_policy_is_valid_kubernetes(site_name):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for hub in HUBS:
        policy = singleuser_netpol(merged(rendered_values(hub, site=SITES[site_name])), "hub-%s" % hub["name"])
        kubernetes_validate.validate(policy, "1.32", strict=True)


def test_except_list_is_minimal_and_inside_the_rule():
    rule = rendered_values(HUBS[0], site=SITES["public-nodes"])["singleuser"]["networkPolicy"]["egress"][0]
    block = rule["to"][0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0"
    nets = [ipaddress.ip_network(e) for e in block["except"]]
    assert all(a == b or not a.overlaps(b) for a in nets for b in nets)
    # The two node networks collapse into one /23; the Service range stays.
    assert ipaddress.ip_network("155.101.20.0/23") in nets and ipaddress.ip_network("198.18.0.0/16") in nets
