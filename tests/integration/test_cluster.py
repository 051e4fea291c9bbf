"""The collection on a real kubeadm cluster: site.yml in apply mode on systemd containers.

The Kubernetes components come from tests/components/build.py (make k8s-components): built from
their Go modules here, installed from .deb files named as pkgs.k8s.io names them, their images
imported from OCI archives by the containerd role. The site has one control plane (kube-vip
announcing the API address), two workers, an NFS server and a Samba AD DC, and uses kube-router
as its CNI. Upstream charts cannot be had here: the site lists them in juno_render_only.

What is checked, each against the live cluster:
- the first run converges; every node is Ready at the inventory's version, and the run's summary
  says so, read from the API server;
- a second run changes nothing, and --check on the converged site changes nothing;
- CoreDNS answers, and pods on two different workers reach each other;
- the hubs are kept apart: the NetworkPolicy the JupyterHub chart would create from the
  collection's values (tests/unit/test_hub_netpol.py's port of the chart's template) is enforced:
  a user pod reaches DNS but not another hub's pods nor the API server;
- Secrets are encrypted at rest: read raw from etcd they carry the provider's prefix, not the text;
- the Helm path runs: kubernetes.core.helm installs and upgrades a test chart of the project's
  own, the history has both revisions, and rollback.yml restores the first one.

The site is removed at the end unless JUNO_KEEP_CLUSTER=1.
"""

import base64
import json
import os
import re
import sys
import time

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
sys.path.insert(0, os.path.join(TOP, "tests", "unit"))
sys.path.insert(0, os.path.join(TOP, ".collections"))  # the unit tests' helpers import the collection's plugins
import sitekit  # noqa: E402  (tests/harness: importable only after the sys.path lines above)
from test_hub_netpol import merged, singleuser_netpol  # noqa: E402  (tests/unit, likewise)

KUBE = "1.32.4"
NODES = {"cp1": "kube_control_plane", "w1": "kube_workers", "w2": "kube_workers", "nfs1": "nfs_server"}
COMPONENTS = os.path.join(TOP, ".cache", "components", "images", KUBE, "images.json")

pytestmark = pytest.mark.skipif(
    not os.path.exists(COMPONENTS),
    reason="the Kubernetes components are not built: make k8s-components (make integration builds them)",
)


def recap(stdout):
    """host -> {ok, changed, failed, ...} from the PLAY RECAP."""
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", stdout, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


class Cluster:
    def __init__(self, site):
        self.site = site

    def kubectl(self, *args, check=True, stdin=None):
        cp = self.site.container("cp1")
        cmd = ["exec", "-i", cp, "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args]
        r = sitekit.subprocess.run(["docker", *cmd], input=stdin, capture_output=True, text=True, check=False)
        if check and r.returncode != 0:
            raise AssertionError("kubectl %s failed: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def apply(self, objects):
        return self.kubectl("apply", "-f", "-", stdin="\n---\n".join(yaml.safe_dump(o) for o in objects))

    def json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def wait_ready(self, namespace, *pods, timeout=180):
        self.kubectl("-n", namespace, "wait", "--for=condition=Ready", "--timeout=%ds" % timeout,
                     *["pod/" + p for p in pods])

    def pod_ip(self, namespace, pod):
        return self.json("-n", namespace, "get", "pod", pod)["status"]["podIP"]

    def netcheck(self, namespace, pod, *args):
        r = self.kubectl("-n", namespace, "exec", pod, "--", "/usr/local/bin/netcheck", *args, check=False)
        return r.returncode, r.stdout + r.stderr

    def playbook(self, playbook, *extra):
        return self.site.playbook(playbook, list(extra), capture=True)


def netcheck_pod(name, namespace, node=None, labels=None):
    """A netcheck server pod that passes Pod Security 'restricted'."""
    spec = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "netcheck", "image": "juno.test/netcheck:1.0.0", "imagePullPolicy": "IfNotPresent",
            "args": ["serve", "-addr", ":8888"], "ports": [{"name": "notebook-port", "containerPort": 8888}],
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
        }],
    }
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}}, "spec": spec}


@pytest.fixture(scope="module")
def cluster():
    inventory = os.path.join(TOP, "tests", "output", "cluster-site")
    site = sitekit.Site("itc", "172.29.16.0/24", inventory, NODES, apply=True,
                        say=lambda m: print("itc: " + m, flush=True))
    site.up()
    first = site.playbook("site.yml", [], capture=True)
    c = Cluster(site)
    c.first = first
    if first.returncode == 0:
        site.approve_serving_csrs()
    yield c
    if os.environ.get("JUNO_KEEP_CLUSTER") != "1":
        site.down()


def test_first_run_converges_with_every_node_ready(cluster):
    r = cluster.first
    assert r.returncode == 0, r.stdout[-15000:] + r.stderr[-3000:]
    nodes = cluster.json("get", "nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["cp1", "w1", "w2"]
    for n in nodes:
        ready = [c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], (n["metadata"]["name"], n["status"]["conditions"])
        assert n["status"]["nodeInfo"]["kubeletVersion"] == "v" + KUBE
    # The summary reads the nodes from the API server and names what was only rendered.
    for name in ("cp1", "w1", "w2"):
        assert "%s: Ready, kubelet v%s" % (name, KUBE) in r.stdout
    assert "rendered only (juno_render_only" in r.stdout


def test_images_came_from_the_archives_by_digest(cluster):
    """The containerd role imported the archives' images under their own names and digests."""
    with open(COMPONENTS) as f:
        expected = {i["name"]: i["digest"] for i in json.load(f)}
    out = sitekit.docker("exec", cluster.site.container("w1"), "ctr", "-n", "k8s.io", "images", "ls").stdout
    have = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        have[cols[0]] = cols[2]
    for name, digest in expected.items():
        assert have.get(name) == digest, name


def test_second_run_and_check_mode_change_nothing(cluster):
    assert cluster.first.returncode == 0
    again = cluster.playbook("site.yml")
    assert again.returncode == 0, again.stdout[-15000:]
    changed = {h: v["changed"] for h, v in recap(again.stdout).items()}
    assert changed and all(v == 0 for v in changed.values()), changed
    check = cluster.playbook("site.yml", "--check")
    assert check.returncode == 0, check.stdout[-15000:]
    changed = {h: v["changed"] for h, v in recap(check.stdout).items()}
    assert changed and all(v == 0 for v in changed.values()), changed


def test_dns_answers_and_pods_on_two_workers_reach_each_other(cluster):
    ns = "juno-it-net"
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                   netcheck_pod("a", ns, node="w1"), netcheck_pod("b", ns, node="w2")])
    cluster.wait_ready(ns, "a", "b")
    rc, out = cluster.netcheck(ns, "a", "dns", "kubernetes.default.svc.cluster.local")
    assert rc == 0 and "10.96.0.1" in out, out
    rc, out = cluster.netcheck(ns, "a", "probe", "%s:8888" % cluster.pod_ip(ns, "b"))
    assert rc == 0, out
    rc, out = cluster.netcheck(ns, "b", "probe", "%s:8888" % cluster.pod_ip(ns, "a"))
    assert rc == 0, out


def test_hubs_are_kept_apart_by_the_policy_their_chart_gets(cluster):
    """User pods of one hub reach DNS, but neither another hub's pods nor the API server."""
    rendered = os.path.join(cluster.site.inventory, "rendered", "hubs")
    user = {"component": "singleuser-server", "app": "jupyterhub", "release": "r"}
    pods = {}
    for hub in ("chemeng", "physics"):
        ns = "hub-" + hub
        with open(os.path.join(rendered, "juno-%s.values.yaml" % hub)) as f:
            values = merged(yaml.safe_load(f))
        cluster.apply([singleuser_netpol(values, ns), netcheck_pod("user-" + hub, ns, labels=user)])
        pods[hub] = ("user-" + hub, ns)
    cluster.wait_ready("hub-chemeng", "user-chemeng")
    cluster.wait_ready("hub-physics", "user-physics")
    time.sleep(3)  # kube-router syncs its rules on pod events
    chem, phys = pods["chemeng"], pods["physics"]
    rc, out = cluster.netcheck(chem[1], chem[0], "dns", "kubernetes.default.svc.cluster.local")
    assert rc == 0, out
    api = cluster.site.address("cp1")
    for pod, other in ((chem, phys), (phys, chem)):
        target = "%s:8888" % cluster.pod_ip(other[1], other[0])
        rc, out = cluster.netcheck(pod[1], pod[0], "probe", "-timeout", "3s", target, "10.96.0.1:443", api + ":6443")
        assert rc == 1, out
        assert out.count("blocked") == 3, out
    # Without the policy the same probe goes through: the policy, not the network, blocks it.
    cluster.kubectl("-n", phys[1], "delete", "networkpolicy", "singleuser")
    time.sleep(3)
    rc, out = cluster.netcheck(phys[1], phys[0], "probe", "%s:8888" % cluster.pod_ip(chem[1], chem[0]))
    assert rc == 1, out  # chemeng's ingress rule still refuses pods of another namespace
    rc, out = cluster.netcheck(phys[1], phys[0], "probe", "10.96.0.1:443")
    assert rc == 0, out


def test_secrets_are_encrypted_at_rest(cluster):
    marker = "juno-plaintext-marker-5c1e"
    cluster.kubectl("-n", "default", "create", "secret", "generic", "juno-it-enc", "--from-literal=k=" + marker)
    raw = sitekit.subprocess.run(
        ["docker", "exec", cluster.site.container("cp1"), "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
         "-n", "kube-system", "exec", "etcd-cp1", "--", "etcdctl", "--endpoints=https://127.0.0.1:2379",
         "--cacert=/etc/kubernetes/pki/etcd/ca.crt", "--cert=/etc/kubernetes/pki/etcd/server.crt",
         "--key=/etc/kubernetes/pki/etcd/server.key", "get", "/registry/secrets/default/juno-it-enc", "--print-value-only"],
        capture_output=True, check=True).stdout
    assert raw.startswith(b"k8s:enc:secretbox:v1:"), raw[:60]
    assert marker.encode() not in raw
    # and the API server still reads it
    data = cluster.json("-n", "default", "get", "secret", "juno-it-enc")["data"]["k"]
    assert base64.b64decode(data).decode() == marker


def test_helm_install_upgrade_history_and_rollback(cluster):
    play = os.path.join(TOP, "tests", "integration", "playbooks", "test_chart.yml")
    for message in ("first", "second"):
        r = cluster.site.playbook(os.path.relpath(play, os.path.join(TOP, "playbooks")), ["-e", "test_chart_message=" + message], capture=True)
        assert r.returncode == 0, r.stdout[-8000:]
    again = cluster.site.playbook(os.path.relpath(play, os.path.join(TOP, "playbooks")), ["-e", "test_chart_message=second"], capture=True)
    assert recap(again.stdout)["cp1"]["changed"] == 0, again.stdout[-5000:]

    def state():
        secrets = cluster.json("-n", "juno-test", "get", "secrets", "-l", "owner=helm,name=juno-test-app")["items"]
        deploy = cluster.json("-n", "juno-test", "get", "deployment", "juno-test-app")
        return (sorted(int(s["metadata"]["labels"]["version"]) for s in secrets),
                deploy["spec"]["template"]["metadata"]["annotations"]["juno.hub/message"])

    assert state() == ([1, 2], "second")
    r = cluster.playbook("rollback.yml", "-e", "release=juno-test-app", "-e", "namespace=juno-test", "-e", "revision=1",
                         "-e", "rollback_chart_ref=/root/juno-test-app")
    assert r.returncode == 0, r.stdout[-8000:]
    assert state() == ([1, 2, 3], "first")
    cluster.kubectl("-n", "juno-test", "rollout", "status", "deployment/juno-test-app", "--timeout=120s")


def explained_fails():
    """First column of the 'kube-bench FAIL' table of docs/security.md."""
    with open(os.path.join(TOP, "docs", "security.md")) as f:
        text = f.read()
    table = text.split("| kube-bench FAIL |", 1)[1].split("\n\n", 1)[0]
    return {row.split("|")[1].strip() for row in table.splitlines()[2:] if row.startswith("|")}


@pytest.mark.parametrize("host,targets", [("cp1", None), ("w1", ["node"])])
def test_kube_bench_fails_are_fixed_or_explained(cluster, host, targets):
    result = cluster.site.kube_bench(host, targets)
    t = result["totals"]
    print("kube-bench cis-1.9 on %s: %d PASS, %d FAIL, %d WARN, %d INFO" % (host, t["pass"], t["fail"], t["warn"], t["info"]))
    assert t["pass"] > 0
    unexplained = [(i, text) for i, text in result["fail"] if i not in explained_fails()]
    assert not unexplained, "kube-bench FAILs neither fixed nor explained in docs/security.md: %s" % unexplained
    # The items the roles fix stay fixed.
    assert not {"1.1.12", "4.1.1", "4.1.9"} & {item for item, _text in result["fail"]}


def node_names(cluster):
    return sorted(n["metadata"]["name"] for n in cluster.json("get", "nodes")["items"])


def test_a_new_worker_joins_and_the_other_hosts_change_nothing(cluster):
    site = cluster.site
    site.nodes["w3"] = "kube_workers"
    site.ensure_nodes(["w3"])
    site.write_inventory(site.secret("svc-juno"))
    r = cluster.playbook("site.yml")
    assert r.returncode == 0, r.stdout[-15000:]
    changed = {h: v["changed"] for h, v in recap(r.stdout).items()}
    assert changed["w3"] > 0
    assert all(changed[h] == 0 for h in ("cp1", "w1", "w2", "nfs1")), changed
    assert node_names(cluster) == ["cp1", "w1", "w2", "w3"]
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=120s", "node/w3")


def test_remove_node_drains_and_deletes_the_worker(cluster):
    if "w3" not in node_names(cluster):
        pytest.skip("needs the worker added by the test before")
    # A Deployment's pod that prefers w3: the drain moves it to another worker. (A bare Pod would
    # stop the drain, as kubectl drain without --force does: remove_node.yml deletes nothing unmanaged.)
    ns = "juno-it-drain"
    pod = netcheck_pod("moved", ns)
    pod["spec"]["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["w3"]}]}}]}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "moved", "namespace": ns},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "moved"}},
                           "template": {"metadata": {"labels": {"app": "moved"}}, "spec": pod["spec"]}}}
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, deployment])
    cluster.kubectl("-n", ns, "rollout", "status", "deployment/moved", "--timeout=120s")

    def where():
        return [p["spec"].get("nodeName") for p in cluster.json("-n", ns, "get", "pods", "-l", "app=moved")["items"]
                if not p["metadata"].get("deletionTimestamp")]

    assert where() == ["w3"]
    r = cluster.playbook("remove_node.yml", "-e", "node=w3")
    assert r.returncode == 0, r.stdout[-15000:]
    assert node_names(cluster) == ["cp1", "w1", "w2"]
    cluster.kubectl("-n", ns, "rollout", "status", "deployment/moved", "--timeout=120s")
    assert where()[0] in ("w1", "w2")
    # kubeadm reset ran on the node: its kubelet configuration is gone.
    assert sitekit.docker("exec", cluster.site.container("w3"), "test", "-e", "/etc/kubernetes/kubelet.conf", check=False).returncode != 0
    del cluster.site.nodes["w3"]
    cluster.site.write_inventory(cluster.site.secret("svc-juno"))
    cluster.site.remove_container("w3")
