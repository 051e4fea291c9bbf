"""Unit tests of plugins/filter/kube.py: every decision of the cluster phase that does not need
a cluster (kubeadm API version, package pins, node names and addresses, SANs, reservations,
taints and labels, parsing of kubeadm output, MetalLB addresses)."""

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import kube
from ansible_collections.juno.hub.plugins.filter.kube import FilterModule


def test_every_filter_is_registered_and_documented():
    import os
    here = os.path.dirname(kube.__file__)
    for name in FilterModule().filters():
        assert os.path.exists(os.path.join(here, name + ".yml")), name


@pytest.mark.parametrize("version,api", [
    ("1.29.9", "kubeadm.k8s.io/v1beta3"),
    ("1.30.14", "kubeadm.k8s.io/v1beta3"),
    ("1.31.0", "kubeadm.k8s.io/v1beta4"),
    ("v1.32.4", "kubeadm.k8s.io/v1beta4"),
    ("1.35.1", "kubeadm.k8s.io/v1beta4"),
    ("2.0.0", "kubeadm.k8s.io/v1beta4"),
])
def test_kubeadm_api_version(version, api):
    assert kube.kubeadm_api_version(version) == api


@pytest.mark.parametrize("bad", ["1.32", "latest", "1.32.4-rc.1", "", None])
def test_versions_must_be_full(bad):
    with pytest.raises(AnsibleFilterError, match="juno_kubernetes_version"):
        kube.kubeadm_api_version(bad)


def test_minor_and_version():
    assert kube.kube_minor("1.32.4") == "v1.32"
    assert kube.kube_minor("v1.33.0") == "v1.33"
    assert kube.kube_version("1.32.4") == "v1.32.4"


def test_package_specs():
    names = ["kubelet", "kubeadm", "kubectl"]
    assert kube.kube_package_specs(names, "1.32.4", "apt") == ["kubelet=1.32.4-*", "kubeadm=1.32.4-*", "kubectl=1.32.4-*"]
    assert kube.kube_package_specs(names, "v1.32.4", "dnf") == ["kubelet-1.32.4", "kubeadm-1.32.4", "kubectl-1.32.4"]
    assert kube.kube_package_specs(["kubeadm"], "1.32.4", "yum") == ["kubeadm-1.32.4"]
    with pytest.raises(AnsibleFilterError, match="zypper"):
        kube.kube_package_specs(names, "1.32.4", "zypper")


PACKAGES = {
    "kubeadm": [{"name": "kubeadm", "version": "1.32.4-1.1"}],
    "kubelet": [{"name": "kubelet", "version": "1.32.3-1.1"}],
    "containerd": [{"name": "containerd", "version": "1.6.20~ds1-1"}],
}


def test_package_drift_names_package_versions_and_the_way_out():
    problems = kube.kube_package_drift(PACKAGES, ["kubelet", "kubeadm", "kubectl"], "1.32.4")
    assert len(problems) == 1
    assert "kubelet 1.32.3-1.1 is installed" in problems[0] and "1.32.4" in problems[0]
    assert "upgrade.yml" in problems[0] and "kubernetes_packages_allow_version_change" in problems[0]
    assert kube.kube_package_drift({}, ["kubeadm"], "1.32.4") == []
    # rpm versions: 1.32.4-150500.1.1
    assert kube.kube_package_drift({"kubeadm": [{"version": "1.32.4-150500.1.1"}]}, ["kubeadm"], "1.32.4") == []


def test_missing_packages():
    assert kube.kube_missing_packages(PACKAGES, ["kubelet", "kubeadm", "kubectl"], "1.32.4") == ["kubelet", "kubectl"]
    assert kube.kube_missing_packages(None, ["kubeadm"], "1.32.4") == ["kubeadm"]


def test_package_filters_read_host_state_info_too():
    # host_state_info's packages: name -> installed version, or None when not installed.
    state = {"kubeadm": "1.32.4-1.1", "kubelet": "1.32.3-1.1", "kubectl": None}
    assert kube.kube_missing_packages(state, ["kubelet", "kubeadm", "kubectl"], "1.32.4") == ["kubelet", "kubectl"]
    [problem] = kube.kube_package_drift(state, ["kubelet", "kubeadm", "kubectl"], "1.32.4")
    assert problem.startswith("kubelet 1.32.3-1.1 is installed")


DEBS = [
    "/srv/k8s/kubeadm_1.32.4-1.1_amd64.deb", "/srv/k8s/kubelet_1.32.4-1.1_amd64.deb", "/srv/k8s/kubectl_1.32.4-1.1_amd64.deb",
    "/srv/k8s/cri-tools_1.32.0-1.1_amd64.deb", "/srv/k8s/kubernetes-cni_1.6.0-1.1_amd64.deb", "/srv/k8s/kubeadm_1.31.9-1.1_amd64.deb",
    "/srv/k8s/README.txt",
]


def test_offline_packages_dependencies_first():
    files = kube.kube_offline_packages(DEBS, ["kubelet", "kubeadm", "kubectl"], "1.32.4", "apt")
    assert [f.rsplit("/", 1)[1].split("_")[0] for f in files] == ["cri-tools", "kubernetes-cni", "kubectl", "kubelet", "kubeadm"]
    assert "/srv/k8s/kubeadm_1.31.9-1.1_amd64.deb" not in files


def test_offline_packages_rpm():
    rpms = ["/x/kubeadm-1.32.4-150500.1.1.x86_64.rpm", "/x/kubelet-1.32.4-150500.1.1.x86_64.rpm", "/x/kubectl-1.32.4-150500.1.1.x86_64.rpm"]
    assert sorted(kube.kube_offline_packages(rpms, ["kubelet", "kubeadm", "kubectl"], "1.32.4", "dnf")) == sorted(rpms)


def test_offline_packages_missing_version_is_named():
    with pytest.raises(AnsibleFilterError) as err:
        kube.kube_offline_packages(DEBS, ["kubelet", "kubeadm", "kubectl"], "1.33.1", "apt")
    assert "kubelet 1.33.1" in str(err.value) and "kubernetes_packages_offline_dir" in str(err.value)


def test_arch():
    assert kube.kube_arch("x86_64") == "amd64"
    assert kube.kube_arch("aarch64") == "arm64"
    with pytest.raises(AnsibleFilterError, match="riscv64"):
        kube.kube_arch("riscv64")


def test_extra_args_shapes():
    args = {"profiling": False, "--audit-log-maxage": 30, "tls-cipher-suites": ["A", "B"], "skipped": None, "authorization-mode": "Node,RBAC"}
    assert kube.kube_extra_args(args, "kubeadm.k8s.io/v1beta3") == {
        "audit-log-maxage": "30", "authorization-mode": "Node,RBAC", "profiling": "false", "tls-cipher-suites": "A,B"}
    assert kube.kube_extra_args(args, "kubeadm.k8s.io/v1beta4") == [
        {"name": "audit-log-maxage", "value": "30"}, {"name": "authorization-mode", "value": "Node,RBAC"},
        {"name": "profiling", "value": "false"}, {"name": "tls-cipher-suites", "value": "A,B"}]
    assert kube.kube_extra_args({}, "kubeadm.k8s.io/v1beta4") == []
    with pytest.raises(AnsibleFilterError):
        kube.kube_extra_args(args, "kubeadm.k8s.io/v1beta2")


def test_node_name():
    assert kube.kube_node_name("CP1.juno.example.edu") == "cp1"
    assert kube.kube_node_name("w-1") == "w-1"
    with pytest.raises(AnsibleFilterError, match="DNS label"):
        kube.kube_node_name("node_1.example.edu")


def test_node_address_precedence():
    facts = {"default_ipv4": {"address": "192.0.2.5", "interface": "eth0"}}
    assert kube.kube_node_address({"juno_node_ip": "10.0.0.9", "ansible_host": "10.0.0.1", "ansible_facts": facts}) == "10.0.0.9"
    assert kube.kube_node_address({"ansible_host": "10.0.0.1", "ansible_facts": facts}) == "10.0.0.1"
    assert kube.kube_node_address({"ansible_host": "cp1.example.edu", "ansible_facts": facts}) == "192.0.2.5"
    assert kube.kube_node_address({"ansible_host": "cp1.example.edu", "ansible_default_ipv4": {"address": "192.0.2.6"}}) == "192.0.2.6"
    with pytest.raises(AnsibleFilterError, match="juno_node_ip"):
        kube.kube_node_address({"inventory_hostname": "cp1", "ansible_host": "cp1.example.edu"})


def test_nodes_and_hosts_without_address():
    hostvars = {"cp1": {"ansible_host": "10.0.0.1"}, "cp2": {"ansible_host": "cp2.example.edu", "inventory_hostname": "cp2"},
                "cp3": {"juno_node_ip": "10.0.0.3"}}
    assert kube.kube_hosts_without_address(hostvars, ["cp1", "cp2", "cp3"]) == ["cp2"]
    assert kube.kube_nodes(hostvars, ["cp1", "cp3"]) == [{"name": "cp1", "address": "10.0.0.1"}, {"name": "cp3", "address": "10.0.0.3"}]


def test_cert_sans():
    nodes = [{"name": "cp1.juno.example.edu", "address": "10.20.0.11"}, {"name": "cp2", "address": "10.20.0.12"}]
    assert kube.kube_cert_sans("10.20.0.10", nodes, ["api.juno.example.edu", "10.20.0.11"]) == [
        "10.20.0.10", "cp1", "cp1.juno.example.edu", "10.20.0.11", "cp2", "10.20.0.12", "api.juno.example.edu"]


def test_node_regex_matches_the_inventory_name_families():
    regex = re.compile(kube.kube_node_regex(["cp1.juno.example.edu", "w1", "w2", "gpu-a01"]))
    for name in ("cp1", "cp1.juno.example.edu", "w1", "w2", "cp10", "w7", "gpu-a02", "cp3.juno.example.edu"):
        assert regex.match(name), name
    for name in ("cp1xjuno.example.edu", "w1.evil", "xw1", "w", "wx1", "gpu-b01", "kubernetes", "cp1.other.edu", ""):
        assert not regex.match(name), name
    # one more node of the same family leaves the expression as it was (no cluster-wide change)
    assert kube.kube_node_regex(["w1", "w2"]) == kube.kube_node_regex(["w1", "w2", "w3"]) == "^(w[0-9]+)$"
    with pytest.raises(AnsibleFilterError):
        kube.kube_node_regex([])


DEFAULTS = {"system_reserved": {"cpu": "100m", "memory": "256Mi"}, "kube_reserved": {"cpu": "100m", "memory": "256Mi"}}


def test_reserved_defaults_when_the_fact_is_absent():
    assert kube.kubelet_reserved(None, DEFAULTS) == {"systemReserved": {"cpu": "100m", "memory": "256Mi"},
                                                     "kubeReserved": {"cpu": "100m", "memory": "256Mi"}}


def test_reserved_fact_overrides_defaults_per_resource():
    fact = {"system_reserved": {"memory": "1Gi"}, "kube_reserved": {"cpu": "0.5", "memory": None}}
    assert kube.kubelet_reserved(fact, DEFAULTS) == {"systemReserved": {"cpu": "100m", "memory": "1Gi"},
                                                     "kubeReserved": {"cpu": "0.5", "memory": "256Mi"}}


def test_reserved_accepts_kubelet_field_names_and_eviction():
    fact = {"kubeReserved": {"cpu": "230m", "memory": "1843Mi"}, "systemReserved": {}, "evictionHard": {"memory.available": "100Mi"}}
    out = kube.kubelet_reserved(fact, DEFAULTS)
    assert out["kubeReserved"] == {"cpu": "230m", "memory": "1843Mi"}
    assert out["systemReserved"] == {"cpu": "100m", "memory": "256Mi"}
    assert out["evictionHard"] == {"memory.available": "100Mi"}


@pytest.mark.parametrize("fact,message", [
    ({"system_reserved": {"cpu": "lots"}}, "cpu"),
    ({"kube_reserved": {"memory": "2 GB"}}, "memory"),
    ({"kube_reserved": {"gpu": "1"}}, "unknown resources gpu"),
    ({"kube_reserved": "100m"}, "must be a dict"),
    ("100m", "must be a dict"),
])
def test_reserved_rejects_bad_values(fact, message):
    with pytest.raises(AnsibleFilterError, match=message):
        kube.kubelet_reserved(fact, DEFAULTS)


def test_taints():
    assert kube.kube_taints(["gpu=true:NoSchedule", "dedicated:NoExecute", {"key": "a.example.edu/x", "value": "", "effect": "PreferNoSchedule"}]) == [
        {"key": "gpu", "value": "true", "effect": "NoSchedule"},
        {"key": "dedicated", "effect": "NoExecute"},
        {"key": "a.example.edu/x", "effect": "PreferNoSchedule"},
    ]
    assert kube.kube_taints(None) == []
    for bad, message in (("gpu=true", "key\\[=value\\]:Effect"), ("gpu:Sometimes", "effect"), ({"effect": "NoSchedule"}, "needs a key"),
                         ({"key": "bad key", "effect": "NoSchedule"}, "taint key")):
        with pytest.raises(AnsibleFilterError, match=message):
            kube.kube_taints([bad], "w1: worker_node_taints")


def test_labels():
    assert kube.kube_labels({"juno.example.edu/gpu": True, "tier": 1}) == {"juno.example.edu/gpu": "true", "tier": "1"}
    with pytest.raises(AnsibleFilterError, match="label key"):
        kube.kube_labels({"bad key": "x"})
    with pytest.raises(AnsibleFilterError, match="label value"):
        kube.kube_labels({"ok": "not a value"})


JOIN = ("kubeadm join 10.20.0.10:6443 --token abcdef.0123456789abcdef \\\n"
        "\t--discovery-token-ca-cert-hash sha256:" + "a" * 64 + " \n")


def test_join_info():
    assert kube.kube_join_info(JOIN) == {"endpoint": "10.20.0.10:6443", "token": "abcdef.0123456789abcdef",
                                         "ca_cert_hashes": ["sha256:" + "a" * 64]}


@pytest.mark.parametrize("stdout", ["", "error: timed out", JOIN.replace("abcdef.", "ABCDEF."), JOIN.replace("sha256:a", "sha1:a")])
def test_join_info_rejects_other_output(stdout):
    with pytest.raises(AnsibleFilterError):
        kube.kube_join_info(stdout)


def test_certificate_key():
    out = "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\"\n[upload-certs] Using certificate key:\n" + "0f" * 32 + "\n"
    assert kube.kube_certificate_key(out) == "0f" * 32
    with pytest.raises(AnsibleFilterError, match="no certificate key"):
        kube.kube_certificate_key("[upload-certs] Skipping phase")


def test_metallb_addresses():
    assert kube.metallb_addresses(["10.20.0.240 - 10.20.0.250", "10.20.1.0/28", "10.20.0.9", "fd00::1"]) == [
        "10.20.0.240-10.20.0.250", "10.20.1.0/28", "10.20.0.9/32", "fd00::1/128"]
    with pytest.raises(AnsibleFilterError, match=r"juno_lb_address_pool\[0\]"):
        kube.metallb_addresses(["10.20.0.300-10.20.0.310"])


def test_api_endpoint():
    assert kube.kube_api_endpoint({"address": "10.20.0.10", "port": 6443}) == "10.20.0.10:6443"
    assert kube.kube_api_endpoint({"address": "api.example.edu"}) == "api.example.edu:6443"
    assert kube.kube_api_endpoint({"address": "fd00::10", "port": 443}) == "[fd00::10]:443"
    with pytest.raises(AnsibleFilterError):
        kube.kube_api_endpoint({})


def test_k8s_changed_objects_single_and_list():
    ns = {"kind": "Namespace", "metadata": {"name": "hub-a"}}
    sec = {"kind": "Secret", "metadata": {"name": "ad", "namespace": "hub-a"}}
    # One definition: the module returns the object itself.
    assert kube.k8s_changed_objects({"changed": True, "result": ns}) == ["Namespace/hub-a"]
    assert kube.k8s_changed_objects({"changed": False, "result": ns}) == []
    # A list: one entry per object; only the changed ones are named, in order.
    listed = {"changed": True, "result": {"results": [{"changed": False, "result": ns}, {"changed": True, "result": sec}]}}
    assert kube.k8s_changed_objects(listed) == ["Secret/hub-a/ad"]
    # A skipped task (render mode) has no result.
    assert kube.k8s_changed_objects({"skipped": True, "changed": False}) == []
    with pytest.raises(AnsibleFilterError):
        kube.k8s_changed_objects("not a result")


def test_kube_apply_sets_marks_render_by_mode_and_component():
    ns = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}]
    sets = [{"name": "ns", "manifests": ns}, {"name": "stack", "manifests": ns, "component": "eck", "secret": True}]
    out = kube.kube_apply_sets(sets, True, ["eck"])
    assert [(s["name"], s["render"], s["secret"]) for s in out] == [("ns", False, False), ("stack", True, True)]
    assert all(s["render"] for s in kube.kube_apply_sets(sets, False, []))
    # the name is the component when none is given
    assert kube.kube_apply_sets([{"name": "ns", "manifests": ns}], True, ["ns"])[0]["render"] is True
    # an empty set stays (it is recorded)
    assert kube.kube_apply_sets([{"name": "e", "manifests": []}])[0]["manifests"] == []


@pytest.mark.parametrize("sets, message", [
    ({"name": "x"}, "must be a list"),
    ([{"manifests": []}], r"kube_apply_sets\[0\]: a set needs a non-empty string name"),
    ([{"name": "a"}, {"name": "a"}], r"kube_apply_sets\[1\]: the name 'a' is given twice"),
    ([{"name": "a", "manifests": "kind: x"}], r"kube_apply_sets\[0\] \(a\): manifests must be a list of objects"),
])
def test_kube_apply_sets_refuses_bad_sets(sets, message):
    with pytest.raises(AnsibleFilterError, match=message):
        kube.kube_apply_sets(sets)
