"""The cluster phase rendered for inventories/example (juno_apply: false).

playbooks/cluster.yml runs once per test session in render mode against the example inventory,
every host on a local connection (nothing leaves the machine, nothing is installed). The tests
then check what it wrote to the render directory:

- every CIS Kubernetes Benchmark row of docs/security.md, by evaluating its Check column;
- every Kubernetes manifest with kubernetes-validate for the inventory's Kubernetes version;
- the kubeadm, kubelet and kube-proxy configuration and the MetalLB objects structurally
  (kubernetes-validate has no schema for them);
- the Helm values and releases, the package plan, and that no secret was rendered.
"""

import json
import os
import re
import subprocess
import sys

import kubernetes_validate
import netaddr
import pytest
import yaml

from ansible_collections.juno.hub.plugins.filter import kube

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(TOP, "inventories", "example")
SECURITY_MD = os.path.join(TOP, "docs", "security.md")
BIN = os.path.dirname(sys.executable)

# CIS v1.10, 1.2.29 and 4.2.12: the suites the benchmark accepts (TLS 1.2 names).
CIS_STRONG_CIPHERS = {
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

# Fields of the kubeadm v1beta4 / kubelet v1beta1 types the templates may use; a typo in a
# template would otherwise be silently ignored (kubeadm warns, it does not fail).
KUBEADM_FIELDS = {
    "InitConfiguration": {"apiVersion", "kind", "bootstrapTokens", "dryRun", "nodeRegistration", "localAPIEndpoint",
                          "certificateKey", "skipPhases", "patches", "timeouts"},
    "ClusterConfiguration": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint", "apiServer",
                             "controllerManager", "scheduler", "dns", "proxy", "certificatesDir", "imageRepository", "featureGates",
                             "clusterName", "encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod"},
    "JoinConfiguration": {"apiVersion", "kind", "dryRun", "nodeRegistration", "caCertPath", "discovery", "controlPlane", "skipPhases",
                          "patches", "timeouts"},
}
NODE_REGISTRATION_FIELDS = {"name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors", "imagePullPolicy", "imagePullSerial"}
CONTROL_PLANE_COMPONENT_FIELDS = {"extraArgs", "extraVolumes", "extraEnvs", "certSANs"}
HOST_PATH_MOUNT_FIELDS = {"name", "hostPath", "mountPath", "readOnly", "pathType"}
KUBELET_FIELDS = {
    "apiVersion", "kind", "cgroupDriver", "containerRuntimeEndpoint", "authentication", "authorization", "readOnlyPort",
    "rotateCertificates", "serverTLSBootstrap", "protectKernelDefaults", "makeIPTablesUtilChains", "streamingConnectionIdleTimeout",
    "podPidsLimit", "tlsMinVersion", "tlsCipherSuites", "systemReserved", "kubeReserved", "evictionHard",
}
KUBE_PROXY_FIELDS = {"apiVersion", "kind", "mode", "clusterCIDR", "metricsBindAddress"}


def load_yaml_all(path):
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def load_yaml(path):
    docs = load_yaml_all(path)
    assert len(docs) == 1, path
    return docs[0]


@pytest.fixture(scope="module")
def site():
    """The example inventory's site settings (group_vars/all/site.yml) and hosts."""
    with open(os.path.join(INVENTORY, "group_vars", "all", "site.yml")) as fh:
        settings = yaml.safe_load(fh)
    with open(os.path.join(INVENTORY, "hosts.yml")) as fh:
        hosts = yaml.safe_load(fh)
    cluster = hosts["all"]["children"]["k8s_cluster"]["children"]
    settings["control_planes"] = cluster["kube_control_plane"]["hosts"]
    settings["workers"] = cluster["kube_workers"]["hosts"]
    settings["minor"] = ".".join(settings["juno_kubernetes_version"].split(".")[:2])
    return settings


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Run playbooks/cluster.yml in render mode for inventories/example; return the cluster dir."""
    out = tmp_path_factory.mktemp("render")
    extra = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
        "juno_apply": False,
        "juno_render_dir": str(out),
        # The hosts' checks need the real nodes; the inventory is checked by test_inventory_doc.
        "juno_preflight_passed": True,
    }
    extra_file = out / "extra-vars.json"
    extra_file.write_text(json.dumps(extra))
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".collections"),
        "ANSIBLE_CACHE_PLUGIN": "memory",  # keep this machine's facts out of the fact cache
        "ANSIBLE_GATHER_SUBSET": "!all,!min,distribution,platform,pkg_mgr,network",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    })
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY,
         "--vault-password-file", os.path.join(INVENTORY, "vault-password.example"),
         os.path.join(TOP, "playbooks", "cluster.yml"), "-e", "@%s" % extra_file],
        cwd=TOP, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "Render mode (juno_apply: false)" in proc.stdout
    # No package, kubeadm or kubelet action in render mode.
    for forbidden in ("Init | kubeadm init]", "Join | kubeadm join", "Join | create a bootstrap token", "Join | upload the control-plane",
                      ": Install |", ": Repo |", ": Offline |", ": Helm |", ": Python |", ": Encryption |", ": Configure |"):
        assert "TASK [" not in forbidden and forbidden not in proc.stdout, forbidden
    return out / "cluster"


def first_cp(site):
    return next(iter(site["control_planes"]))


def kubeadm_docs(rendered, host):
    docs = load_yaml_all(rendered / host / "kubeadm.yaml")
    return {d["kind"]: d for d in docs}


# --- the CIS table of docs/security.md ------------------------------------------------------------

def security_rows():
    """Rows of every table in docs/security.md whose header has ID and Check columns."""
    rows = []
    with open(SECURITY_MD) as fh:
        lines = fh.read().splitlines()
    header = None
    for line in lines:
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(cells[0]) <= {"-", " "}:
            continue
        if "ID" in header and "Check" in header:
            row = dict(zip(header, cells))
            row["Check"] = row["Check"].strip("`")
            rows.append(row)
    return rows


ROWS = security_rows()


def test_security_table_covers_the_benchmark_sections():
    ids = [r["ID"] for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate IDs in docs/security.md"
    for prefix in ("1.2.", "1.3.", "1.4.", "2.", "3.2.", "4.2.", "4.3.", "5.2.", "5.3."):
        assert any(i.startswith(prefix) for i in ids), prefix
    for row in ROWS:
        assert row["Status"] in ("set", "kubeadm default", "waived", "warned"), row
        assert len(row["How it is set, or why it is waived"]) > 10, row["ID"]
        if row["Status"] != "waived":
            assert row["Check"] != "-", "%s is not waived but has no check" % row["ID"]


def args_of(component):
    """extraArgs of a kubeadm component (either API shape) as a dict."""
    args = (component or {}).get("extraArgs") or {}
    if isinstance(args, list):
        return {a["name"]: a["value"] for a in args}
    return dict(args)


def dig(doc, path):
    """Value at a dotted path (list items by index); a KeyError when absent."""
    value = doc
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


class Sources(object):
    def __init__(self, rendered, host):
        docs = kubeadm_docs(rendered, host)
        cluster = docs["ClusterConfiguration"]
        self.flags = {
            "apiserver": args_of(cluster.get("apiServer")),
            "controller-manager": args_of(cluster.get("controllerManager")),
            "scheduler": args_of(cluster.get("scheduler")),
            "etcd": args_of((cluster.get("etcd") or {}).get("local")),
        }
        self.docs = {
            "kubelet": docs["KubeletConfiguration"],
            "kube-proxy": docs["KubeProxyConfiguration"],
            "audit": load_yaml(rendered / host / "audit-policy.yaml"),
            "admission": load_yaml(rendered / host / "admission-config.yaml"),
            "encryption": load_yaml(rendered / host / "encryption-config.yaml"),
        }
        self.cni = [n for n in ("calico", "cilium") if (rendered / ("%s.release.yaml" % n)).exists()]

    MISSING = object()

    def value(self, component, key):
        if component in self.flags:
            return self.flags[component].get(key, self.MISSING)
        if component == "addons" and key == "cni":
            return self.cni[0] if len(self.cni) == 1 else self.MISSING
        if component == "audit" and key == "secrets":
            for rule in self.docs["audit"]["rules"]:
                for res in rule.get("resources") or []:
                    if res.get("group", "") == "" and "secrets" in (res.get("resources") or []):
                        return rule["level"]
                if not rule.get("resources") and not rule.get("nonResourceURLs") and not rule.get("verbs") \
                        and not rule.get("users") and not rule.get("userGroups"):
                    return rule["level"]  # a catch-all rule
            return self.MISSING
        try:
            return dig(self.docs[component], key)
        except (KeyError, IndexError):
            return self.MISSING


def text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(text(v) for v in value)
    return str(value)


def evaluate(sources, clause):
    parts = clause.split(None, 3)
    component, key, op = parts[0], parts[1], parts[2]
    arg = parts[3] if len(parts) > 3 else None
    value = sources.value(component, key)
    missing = value is Sources.MISSING
    if op == "unset" or op == "kubeadm":
        return missing
    if op == "lacks":
        return missing or arg not in text(value).split(",")
    if missing:
        return False
    if op == "set":
        return value not in (None, "", [], {})
    if op == "=":
        return text(value) == arg
    if op == "!=":
        return text(value) != arg
    if op == ">=":
        return int(text(value)) >= int(arg)
    if op == "has":
        return arg in text(value).split(",")
    if op == "strong":
        suites = value if isinstance(value, list) else text(value).split(",")
        return bool(suites) and set(suites) <= CIS_STRONG_CIPHERS
    if op == "key-in":
        first = next(iter(value)) if isinstance(value, dict) else text(value)
        return first in arg.split(",")
    raise AssertionError("unknown operator %r in %r" % (op, clause))


@pytest.mark.parametrize("row", [r for r in ROWS if r["Check"] != "-"], ids=lambda r: r["ID"])
def test_cis_item(rendered, site, row):
    """Each control plane's rendered configuration meets the row's check."""
    for host in site["control_planes"]:
        if not (rendered / host / "kubeadm.yaml").exists():
            continue
        docs = kubeadm_docs(rendered, host)
        if "ClusterConfiguration" not in docs:
            continue  # joining control planes take the cluster's configuration
        sources = Sources(rendered, host)
        for clause in row["Check"].split(";"):
            assert evaluate(sources, clause.strip()), "%s %s: %r does not hold for %s" % (row["ID"], row["Recommendation"], clause.strip(), host)


def test_check_evaluator_can_fail(rendered, site):
    """The evaluator is not vacuous: wrong expectations are reported as failures."""
    sources = Sources(rendered, first_cp(site))
    for clause in ("apiserver profiling = true", "apiserver authorization-mode has AlwaysAllow", "kubelet readOnlyPort = 10255",
                   "apiserver audit-log-maxage >= 31", "kubelet tlsCipherSuites unset", "apiserver profiling kubeadm",
                   "audit secrets = RequestResponse", "addons cni key-in flannel"):
        assert not evaluate(sources, clause), clause


# --- kubeadm, kubelet, kube-proxy ------------------------------------------------------------------

def test_first_control_plane_init_configuration(rendered, site):
    host = first_cp(site)
    docs = load_yaml_all(rendered / host / "kubeadm.yaml")
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("kubeadm.k8s.io/v1beta4", "InitConfiguration"),
        ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"),
        ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
        ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
    ]
    assert kube.kubeadm_api_version(site["juno_kubernetes_version"]) == docs[0]["apiVersion"]
    init, cluster, kubelet, proxy = docs
    for doc in (init, cluster):
        assert set(doc) <= KUBEADM_FIELDS[doc["kind"]], set(doc) - KUBEADM_FIELDS[doc["kind"]]
    assert set(kubelet) <= KUBELET_FIELDS and set(proxy) <= KUBE_PROXY_FIELDS

    address = site["control_planes"][host]["ansible_host"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": address, "bindPort": 6443}
    reg = init["nodeRegistration"]
    assert set(reg) <= NODE_REGISTRATION_FIELDS
    assert reg["name"] == host.split(".")[0]
    assert reg["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert reg["kubeletExtraArgs"] == [{"name": "node-ip", "value": address}]
    assert reg["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert all("token" not in t for t in init["bootstrapTokens"]), "kubeadm generates the init token"

    endpoint = site["juno_api_endpoint"]
    assert cluster["controlPlaneEndpoint"] == "%s:%d" % (endpoint["address"], endpoint["port"])
    assert cluster["kubernetesVersion"] == "v" + site["juno_kubernetes_version"]
    assert cluster["clusterName"] == site["juno_cluster_name"]
    assert cluster["networking"]["podSubnet"] == site["juno_pod_cidr"]
    assert cluster["networking"]["serviceSubnet"] == site["juno_service_cidr"]
    sans = cluster["apiServer"]["certSANs"]
    assert sans[0] == endpoint["address"]
    for name, hv in site["control_planes"].items():
        assert {name, name.split(".")[0], hv["ansible_host"]} <= set(sans)
    for component in ("apiServer", "controllerManager", "scheduler"):
        assert set(cluster[component]) <= CONTROL_PLANE_COMPONENT_FIELDS
        args = cluster[component]["extraArgs"]
        assert all(set(a) == {"name", "value"} and isinstance(a["value"], str) for a in args)
        names = [a["name"] for a in args]
        assert names == sorted(set(names)) and not any(n.startswith("-") for n in names)

    # Every file a flag names is mounted into the API server pod, read-only except the log.
    flags = args_of(cluster["apiServer"])
    volumes = cluster["apiServer"]["extraVolumes"]
    assert all(set(v) <= HOST_PATH_MOUNT_FIELDS and v["hostPath"] == v["mountPath"] for v in volumes)
    for flag in ("audit-policy-file", "admission-control-config-file", "encryption-provider-config"):
        path = flags[flag]
        assert any(path == v["mountPath"] or path.startswith(v["mountPath"] + "/") for v in volumes if v["readOnly"]), flag
    log_dir = os.path.dirname(flags["audit-log-path"])
    assert any(v["mountPath"] == log_dir and not v["readOnly"] for v in volumes)

    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["systemReserved"] and kubelet["kubeReserved"]
    assert proxy["clusterCIDR"] == site["juno_pod_cidr"]

    # How soon a lost node's pods start elsewhere: the collection's defaults for notebook services.
    assert args_of(cluster["controllerManager"])["node-monitor-grace-period"] == "50s"
    assert flags["default-not-ready-toleration-seconds"] == "60"
    assert flags["default-unreachable-toleration-seconds"] == "60"


def test_other_control_planes_join_as_control_planes(rendered, site):
    endpoint = site["juno_api_endpoint"]
    for host, hv in list(site["control_planes"].items())[1:]:
        docs = load_yaml_all(rendered / host / "kubeadm.yaml")
        assert [(d["apiVersion"], d["kind"]) for d in docs] == [("kubeadm.k8s.io/v1beta4", "JoinConfiguration")]
        join = docs[0]
        assert set(join) <= KUBEADM_FIELDS["JoinConfiguration"]
        assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "%s:%d" % (endpoint["address"], endpoint["port"])
        assert join["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == hv["ansible_host"]
        assert join["nodeRegistration"]["name"] == host.split(".")[0]
        assert set(join["nodeRegistration"]) <= NODE_REGISTRATION_FIELDS
        assert join["patches"]["directory"] == "/etc/kubernetes/juno/patches"


def test_workers_join_with_their_taints(rendered, site):
    for host, hv in site["workers"].items():
        docs = load_yaml_all(rendered / host / "kubeadm.yaml")
        assert [(d["apiVersion"], d["kind"]) for d in docs] == [("kubeadm.k8s.io/v1beta4", "JoinConfiguration")]
        join = docs[0]
        assert set(join) <= KUBEADM_FIELDS["JoinConfiguration"] and "controlPlane" not in join
        reg = join["nodeRegistration"]
        assert reg["name"] == host.split(".")[0]
        assert reg["kubeletExtraArgs"] == [{"name": "node-ip", "value": hv["ansible_host"]}]
        assert reg["taints"] == kube.kube_taints(hv.get("worker_node_taints", []))
        assert not (rendered / host / "kube-vip.yaml").exists()


def test_every_node_has_a_kubelet_patch_with_its_reservations(rendered, site):
    for host in list(site["control_planes"]) + list(site["workers"]):
        patch = load_yaml(rendered / host / "patches" / "kubeletconfiguration+merge.yaml")
        assert patch["apiVersion"] == "kubelet.config.k8s.io/v1beta1" and patch["kind"] == "KubeletConfiguration"
        assert set(patch) <= KUBELET_FIELDS
        for field in ("systemReserved", "kubeReserved"):
            assert set(patch[field]) == {"cpu", "memory"}


def test_control_plane_files_are_well_formed(rendered, site):
    for host in site["control_planes"]:
        audit = load_yaml(rendered / host / "audit-policy.yaml")
        assert (audit["apiVersion"], audit["kind"]) == ("audit.k8s.io/v1", "Policy")
        assert audit["rules"][-1] == {"level": "Request"}, "the last rule catches everything else"
        for rule in audit["rules"]:
            assert rule["level"] in ("None", "Metadata", "Request", "RequestResponse")
        admission = load_yaml(rendered / host / "admission-config.yaml")
        assert (admission["apiVersion"], admission["kind"]) == ("apiserver.config.k8s.io/v1", "AdmissionConfiguration")
        psa = admission["plugins"][0]["configuration"]
        assert (psa["apiVersion"], psa["kind"]) == ("pod-security.admission.config.k8s.io/v1", "PodSecurityConfiguration")
        assert psa["defaults"] == {"enforce": "baseline", "enforce-version": "latest", "audit": "restricted",
                                   "audit-version": "latest", "warn": "restricted", "warn-version": "latest"}
        enc = load_yaml(rendered / host / "encryption-config.yaml")
        assert (enc["apiVersion"], enc["kind"]) == ("apiserver.config.k8s.io/v1", "EncryptionConfiguration")
        providers = enc["resources"][0]["providers"]
        assert list(providers[0]) == ["secretbox"] and providers[-1] == {"identity": {}}


def test_render_mode_writes_no_secret(rendered):
    """Placeholders stand where tokens, certificate keys and the encryption key would be."""
    token = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
    hexkey = re.compile(r"\b[a-f0-9]{64}\b")
    b64key = re.compile(r"secret:\s*['\"]?[A-Za-z0-9+/]{43}=")
    for root, _dirs, files in os.walk(str(rendered)):
        for name in files:
            with open(os.path.join(root, name)) as fh:
                content = fh.read()
            if name == "packages.yaml":
                content = re.sub(r"sha256:[a-f0-9]{64}", "", content)  # the helm archive checksum is public
            assert not token.search(content) and not hexkey.search(content) and not b64key.search(content), name


# --- manifests -------------------------------------------------------------------------------------

def test_kube_vip_static_pod_validates(rendered, site):
    endpoint = site["juno_api_endpoint"]
    for host in site["control_planes"]:
        pod = load_yaml(rendered / host / "kube-vip.yaml")
        kubernetes_validate.validate(pod, site["minor"], strict=True)
        assert (pod["metadata"]["name"], pod["metadata"]["namespace"]) == ("kube-vip", "kube-system")
        assert pod["spec"]["hostNetwork"] is True
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["address"] == endpoint["address"] and env["port"] == str(endpoint["port"])
        assert env["vip_arp"] == "true" and env["vip_leaderelection"] == "true" and env["cp_enable"] == "true"
        assert env["vip_interface"] == endpoint["interface"]
        assert pod["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"
        image = pod["spec"]["containers"][0]["image"]
        assert re.search(r":v\d+\.\d+\.\d+$", image), "kube-vip image must be pinned: %s" % image


@pytest.mark.parametrize("name", ["addon-namespaces.yaml", "w1/node-labels.yaml"])
def test_manifests_validate(rendered, site, name):
    if name.startswith("w1/"):
        name = "%s/node-labels.yaml" % next(h for h in site["workers"] if h.startswith("w1"))
    docs = load_yaml_all(rendered / name)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, site["minor"], strict=True)


def test_addon_namespaces_are_privileged_only_where_needed(rendered):
    docs = load_yaml_all(rendered / "addon-namespaces.yaml")
    assert sorted(d["metadata"]["name"] for d in docs) == ["metallb-system", "tigera-operator"]
    for doc in docs:
        assert doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_node_labels_and_taints_from_the_inventory(rendered, site):
    """Each worker's labels and taints are in its own directory: adding a worker touches no other file."""
    assert not (rendered / "node-labels.yaml").exists() and not (rendered / "node-taints.yaml").exists()
    for host, hv in site["workers"].items():
        doc = load_yaml(rendered / host / "node-labels.yaml")
        assert doc["metadata"]["name"] == host.split(".")[0]
        assert doc["metadata"]["labels"] == {k: str(v) for k, v in (hv.get("worker_node_labels") or {}).items()}
        assert set(doc) == {"apiVersion", "kind", "metadata"}, "labels only: taints are not applied server-side"
        assert load_yaml(rendered / host / "node-taints.yaml") == kube.kube_taints(hv.get("worker_node_taints", []))


def test_metallb_pool_structure(rendered, site):
    """MetalLB objects are custom resources: kubernetes-validate has no schema, check them here."""
    docs = load_yaml_all(rendered / "metallb-pool.yaml")
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [("metallb.io/v1beta1", "IPAddressPool"), ("metallb.io/v1beta1", "L2Advertisement")]
    pool, l2 = docs
    release = load_yaml(rendered / "metallb.release.yaml")
    for doc in docs:
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
        assert set(doc["metadata"]) == {"name", "namespace"} and doc["metadata"]["namespace"] == release["namespace"]
        assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", doc["metadata"]["name"])
    assert set(pool["spec"]) <= {"addresses", "autoAssign", "avoidBuggyIPs", "serviceAllocation"}
    assert pool["spec"]["addresses"] == kube.metallb_addresses(site["juno_lb_address_pool"])
    networks = [netaddr.IPNetwork(n) for n in site["juno_node_networks"]]
    for entry in pool["spec"]["addresses"]:
        first, _sep, last = entry.partition("-")
        ips = netaddr.IPRange(first, last) if last else netaddr.IPNetwork(first)
        assert any(ips[0] in n and ips[-1] in n for n in networks), entry
        assert netaddr.IPAddress(site["juno_api_endpoint"]["address"]) not in ips
    assert isinstance(pool["spec"]["autoAssign"], bool)
    assert set(l2["spec"]) <= {"ipAddressPools", "ipAddressPoolSelectors", "nodeSelectors", "interfaces"}
    assert l2["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]


# --- Helm releases and values --------------------------------------------------------------------

RELEASES = {"calico": "tigera-operator", "metallb": "metallb-system", "metrics-server": "kube-system", "kubelet-csr-approver": "kube-system"}


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_releases_are_pinned(rendered, release):
    meta = load_yaml(rendered / ("%s.release.yaml" % release))
    assert meta["release"] == release and meta["namespace"] == RELEASES[release]
    assert re.match(r"^v?\d+\.\d+\.\d+$", str(meta["version"])), meta["version"]
    assert meta["repository"].startswith("https://")
    assert isinstance(load_yaml(rendered / meta["values"]), dict)


def test_calico_values(rendered, site):
    values = load_yaml(rendered / "calico.values.yaml")
    network = values["installation"]["calicoNetwork"]
    assert [p["cidr"] for p in network["ipPools"]] == [site["juno_pod_cidr"]]
    assert network["ipPools"][0]["encapsulation"] in ("VXLANCrossSubnet", "VXLAN", "IPIPCrossSubnet", "IPIP", "None")
    assert values["installation"]["cni"]["type"] == "Calico"
    assert not (rendered / "cilium.release.yaml").exists()


def test_csr_approver_values_admit_only_inventory_name_families(rendered, site):
    values = load_yaml(rendered / "kubelet-csr-approver.values.yaml")
    regex = re.compile(values["providerRegex"])
    for host in list(site["control_planes"]) + list(site["workers"]):
        assert regex.match(host.split(".")[0]) and regex.match(host)
    for name in ("nfs1", "evil", "w1x", "xw1", "w1.juno.example.edu.evil", "kubernetes"):
        assert not regex.match(name), name
    assert values["providerIpPrefixes"] == site["juno_node_networks"]


def test_metrics_server_verifies_kubelets(rendered):
    values = load_yaml(rendered / "metrics-server.values.yaml")
    assert "--kubelet-insecure-tls" not in values["args"]
    assert any(a.startswith("--kubelet-preferred-address-types=InternalIP") for a in values["args"])


# --- packages ----------------------------------------------------------------------------------------

def test_package_plan(rendered, site):
    version = site["juno_kubernetes_version"]
    first = first_cp(site)
    for host in list(site["control_planes"]) + list(site["workers"]):
        plan = load_yaml(rendered / host / "packages.yaml")
        assert plan["source"] == "repo" and plan["held"] is True
        assert plan["repository"].startswith("https://pkgs.k8s.io/core:/stable:/v%s/" % site["minor"])
        spec = "=%s-*" % version if plan["package_manager"] == "apt" else "-%s" % version
        assert sorted(plan["packages"]) == sorted(n + spec for n in ("kubelet", "kubeadm", "kubectl"))
        assert ("helm" in plan) == (host == first) and ("python" in plan) == (host == first)
    helm = load_yaml(rendered / first / "packages.yaml")["helm"]
    assert re.match(r"^sha256:[a-f0-9]{64}$", helm["checksum"]) and helm["version"] in helm["archive"]
