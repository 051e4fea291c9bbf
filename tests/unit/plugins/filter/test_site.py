"""Each preflight relation rule, with a good and a bad case."""

import copy

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import site as f

GOOD = {
    "juno_kubernetes_version": "1.32.4",
    "juno_pod_cidr": "10.244.0.0/16",
    "juno_service_cidr": "10.96.0.0/12",
    "juno_node_networks": ["10.20.0.0/24"],
    "juno_api_endpoint": {"address": "10.20.0.10", "port": 6443, "provider": "kube_vip"},
    "juno_lb_address_pool": ["10.20.0.240-10.20.0.250"],
    "juno_ad": {"servers": ["dc1.example.edu"], "tls": "ldaps", "base_dn": "DC=x", "bind_dn": "CN=y", "bind_password": "z"},
    "juno_hubs": [
        {"name": "chemeng", "hostname": "chemeng.hub.example.edu", "lb_address": "10.20.0.241", "ad": {"allowed_groups": ["A"]}},
        {"name": "physics", "hostname": "physics.hub.example.edu", "ad": {"allowed_groups": ["B"]}},
    ],
}
NODES = [
    {"name": "cp1.example.edu", "address": "10.20.0.11", "groups": ["kube_control_plane", "k8s_cluster"]},
    {"name": "cp2.example.edu", "address": "10.20.0.12", "groups": ["kube_control_plane", "k8s_cluster"]},
    {"name": "cp3.example.edu", "address": "10.20.0.13", "groups": ["kube_control_plane", "k8s_cluster"]},
    {"name": "w1.example.edu", "address": "10.20.0.21", "groups": ["kube_workers", "k8s_cluster"]},
    {"name": "nfs1.example.edu", "address": "10.20.1.10", "groups": ["nfs_server"]},
]


def problems(site_changes=None, nodes=None):
    site = copy.deepcopy(GOOD)
    for key, value in (site_changes or {}).items():
        site[key] = value
    return f.site_problems(site, copy.deepcopy(nodes if nodes is not None else NODES))


def only(msgs, needle):
    hits = [m for m in msgs if needle in m]
    assert hits, "expected a message containing %r in %r" % (needle, msgs)
    return hits


def test_good_site_has_no_problems():
    assert problems() == []


def test_pod_and_service_cidr_overlap():
    msgs = problems({"juno_service_cidr": "10.240.0.0/12"})
    (msg,) = only(msgs, "overlap")
    assert "juno_pod_cidr 10.244.0.0/16" in msg and "juno_service_cidr 10.240.0.0/12" in msg


def test_invalid_cidr_is_named():
    (msg,) = only(problems({"juno_pod_cidr": "10.244.0.0/33"}), "juno_pod_cidr")
    assert "not a valid" in msg


def test_pod_cidr_overlapping_node_network():
    only(problems({"juno_pod_cidr": "10.20.0.0/16"}), "overlaps the node network 10.20.0.0/24")


def test_node_inside_service_cidr():
    nodes = copy.deepcopy(NODES)
    nodes[3]["address"] = "10.96.0.7"
    msgs = problems(nodes=nodes)
    only(msgs, "node w1.example.edu: its address 10.96.0.7 lies inside juno_service_cidr")
    only(msgs, "is in none of juno_node_networks")


def test_lb_pool_contains_node_address():
    only(problems({"juno_lb_address_pool": ["10.20.0.20-10.20.0.30"]}), "contains the address 10.20.0.21 of node w1.example.edu")


def test_lb_pool_outside_node_networks():
    msgs = problems({"juno_lb_address_pool": ["192.0.2.0/28"], "juno_hubs": GOOD["juno_hubs"][1:]})
    only(msgs, "not inside one of juno_node_networks")


def test_lb_pool_overlapping_itself_and_pod_cidr():
    msgs = problems({"juno_lb_address_pool": ["10.20.0.240/29", "10.20.0.244-10.20.0.250", "10.244.1.0/28"]})
    only(msgs, "overlaps an earlier entry")
    only(msgs, "overlaps juno_pod_cidr")


def test_vip_in_pool_or_on_a_node():
    only(problems({"juno_api_endpoint": {"address": "10.20.0.245"}}), "lies in juno_lb_address_pool")
    only(problems({"juno_api_endpoint": {"address": "10.20.0.11", "provider": "kube_vip"}}), "is the address of node cp1.example.edu")
    # An external load balancer may sit anywhere outside the pool.
    assert problems({"juno_api_endpoint": {"address": "10.20.0.11", "provider": "external"}}) == []


@pytest.mark.parametrize("count,bad", [(1, False), (2, True), (3, False), (4, True)])
def test_control_plane_count_must_be_odd(count, bad):
    nodes = [{"name": "cp%d" % i, "address": "10.20.0.%d" % (10 + i), "groups": ["kube_control_plane", "k8s_cluster"]} for i in range(1, count + 1)]
    msgs = problems(nodes=nodes)
    assert any("odd number" in m for m in msgs) == bad


def test_no_control_plane():
    only(problems(nodes=NODES[3:]), "kube_control_plane is empty")


def test_duplicate_node_names_and_addresses():
    nodes = copy.deepcopy(NODES)
    nodes.append({"name": "w1.other.edu", "address": "10.20.0.22", "groups": ["kube_workers", "k8s_cluster"]})
    nodes.append({"name": "w9.example.edu", "address": "10.20.0.21", "groups": ["kube_workers", "k8s_cluster"]})
    msgs = problems(nodes=nodes)
    only(msgs, "same node name 'w1'")
    only(msgs, "same address 10.20.0.21")


@pytest.mark.parametrize("name", ["Chem", "1chem", "chem_eng", "-x", "a" * 41, None])
def test_invalid_hub_names(name):
    hubs = copy.deepcopy(GOOD["juno_hubs"])
    hubs[0]["name"] = name
    msgs = problems({"juno_hubs": hubs})
    only(msgs, "name %r is not a valid hub name" % (name,))
    # named by its name when it has one a message can carry, else by its place in juno_hubs
    assert any(m.startswith("hub %s: " % name if name else "hub juno_hubs[0]: ") for m in msgs), msgs


def test_duplicate_hub_names_namespaces_hostnames_addresses():
    hubs = copy.deepcopy(GOOD["juno_hubs"])
    hubs.append({"name": "chemeng", "hostname": "chemeng.hub.example.edu", "lb_address": "10.20.0.241", "ad": {"allowed_groups": ["C"]}})
    hubs.append({"name": "bio", "namespace": "hub-physics", "hostname": "bio.hub.example.edu", "ad": {"allowed_groups": ["C"]}})
    msgs = problems({"juno_hubs": hubs})
    only(msgs, "hub chemeng: the name 'chemeng' is used by another hub too (entries 0 and 2 of juno_hubs)")
    only(msgs, "hub chemeng: hostname 'chemeng.hub.example.edu' is the hostname of hub chemeng too")
    only(msgs, "hub chemeng: lb_address 10.20.0.241")
    only(msgs, "hub bio: namespace 'hub-physics' is the namespace of hub physics too")


def test_reserved_namespace_and_lb_address_outside_pool():
    hubs = copy.deepcopy(GOOD["juno_hubs"])
    hubs[1]["namespace"] = "kube-system"
    hubs[1]["lb_address"] = "10.20.0.100"
    msgs = problems({"juno_hubs": hubs})
    only(msgs, "reserved by Kubernetes")
    only(msgs, "outside juno_lb_address_pool")


def test_hub_without_groups_and_two_default_profiles():
    hubs = copy.deepcopy(GOOD["juno_hubs"])
    hubs[0]["ad"] = {"allowed_groups": []}
    hubs[0]["profiles"] = [{"display_name": "a", "default": True}, {"display_name": "b", "default": True}]
    msgs = problems({"juno_hubs": hubs})
    only(msgs, "allowed_groups is empty")
    only(msgs, "2 profiles are marked default")


def test_ad_plain_ldap_needs_insecure():
    ad = dict(GOOD["juno_ad"], tls="none")
    only(problems({"juno_ad": ad}), "plain LDAP sends the bind password")
    assert problems({"juno_ad": dict(ad, insecure=True)}) == []


def test_ad_validate_certs_off_needs_insecure():
    ad = dict(GOOD["juno_ad"], validate_certs=False)
    only(problems({"juno_ad": ad}), "validate_certs is false")
    assert problems({"juno_ad": dict(ad, insecure=True)}) == []


def test_ad_ldap_url_with_ldaps():
    ad = dict(GOOD["juno_ad"], servers=["ldap://dc1.example.edu"])
    only(problems({"juno_ad": ad}), "plain ldap:// URL")


@pytest.mark.parametrize("version,needle", [("1.31.9", "older than"), ("1.32", "not a full version"), ("latest", "not a full version")])
def test_kubernetes_version(version, needle):
    only(problems({"juno_kubernetes_version": version}), needle)


def test_node_entry_prefers_juno_node_ip():
    entry = f.node_entry({"inventory_hostname": "a", "ansible_host": "x", "juno_node_ip": "10.0.0.1", "group_names": ["g"]})
    assert entry == {"name": "a", "address": "10.0.0.1", "groups": ["g"]}
    assert f.node_entry({"inventory_hostname": "b"})["address"] == "b"


def test_hub_namespace_default():
    assert f.hub_namespace({"name": "chemeng"}) == "hub-chemeng"
    assert f.hub_namespace({"name": "chemeng", "namespace": "chem"}) == "chem"


def test_unreachable_report_names_the_hosts_and_the_limit():
    groups = {"kube_control_plane": ["cp1"], "kube_workers": ["w1", "w2"]}
    assert f.unreachable_report({"w1": {"ping": "pong"}, "w2": {"ping": "pong", "changed": False}}, groups) == []
    lines = f.unreachable_report(
        {"w1": {"ping": "pong"}, "w2": {"unreachable": True, "msg": "Error response from daemon: Container abc is not running\n"}}, groups, "")
    assert lines[0] == "node w2 cannot be reached (Error response from daemon: Container abc is not running)"
    assert "nothing has been changed on any host" in lines
    assert "--limit 'all:!w2'" in lines[2]
    assert not any("first control plane" in line for line in lines)


def test_unreachable_report_keeps_the_run_s_limit_and_warns_about_the_first_control_plane():
    groups = {"kube_control_plane": ["cp1", "cp2"]}
    # A stopped container over the Docker connection: the module fails, nothing is "unreachable".
    stopped = {"failed": True, "msg": "Module result deserialization failed: No start of json char found",
               "module_stderr": "Error response from daemon: Container 4a2 is not running"}
    lines = f.unreachable_report({"w3": stopped, "cp1": {"unreachable": True, "msg": "ssh: connect to host 10.0.0.11 port 22: No route to host"}},
                                 groups, "k8s_cluster")
    assert lines[0].startswith("node cp1 cannot be reached (ssh: connect")
    assert lines[1] == "node w3 cannot be reached (Error response from daemon: Container 4a2 is not running)"
    assert "--limit 'k8s_cluster:!cp1:!w3'" in lines[3] and "go on without them" in lines[3]
    assert any(line.startswith("cp1 is the first control plane") for line in lines)
    with pytest.raises(AnsibleFilterError):
        f.unreachable_report(["w2"])
