"""upgrade.yml on a real cluster: from Kubernetes 1.32.2 to 1.32.4, node by node, while a test
Deployment keeps serving.

A site of one control plane and two workers comes up at 1.32.2 (site.yml, apply mode, components
from make k8s-components, whose packages and images exist for both versions). Every node receives
the images of both versions (containerd_image_archives), as an air-gapped site stages an upgrade.
A Deployment of two netcheck replicas, spread over the workers and kept available by a
PodDisruptionBudget, is probed through a NodePort from this process every half second for the
whole upgrade. Then:
- upgrade.yml -e juno_kubernetes_version=1.32.4 succeeds;
- every kubelet reports v1.32.4, the cluster's kubeadm-config says v1.32.4, the API server runs the
  1.32.4 image;
- at least 95 % of the probes were answered (the figures are printed: the drains move the
  replicas, the NodePort's kube-proxy is replaced by the upgrade).

The site is removed at the end unless JUNO_KEEP_CLUSTER=1.
"""

import json
import os
import sys
import threading
import time
import urllib.request

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
import sitekit  # noqa: E402  (tests/harness: importable only after the sys.path lines above)

FROM, TO = "1.32.2", "1.32.4"
NODES = {"cp1": "kube_control_plane", "w1": "kube_workers", "w2": "kube_workers", "nfs1": "nfs_server"}
NODE_PORT = 30080

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(os.path.join(TOP, ".cache", "components", "images", v, "images.json")) for v in (FROM, TO)),
    reason="the components of %s and %s are not built: make k8s-components (make integration builds them)" % (FROM, TO),
)

WORKLOAD = """
apiVersion: v1
kind: Namespace
metadata: {name: juno-it-upgrade}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: juno-it-upgrade}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: netcheck
          image: juno.test/netcheck:1.0.0
          imagePullPolicy: IfNotPresent
          args: [serve, -addr, ":8080"]
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: juno-it-upgrade}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: juno-it-upgrade}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: %d}]
""" % NODE_PORT


class Prober(threading.Thread):
    """GET the NodePort every half second until stopped (bounded to 40 minutes)."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.stop = url, 0, 0, threading.Event()

    def run(self):
        deadline = time.monotonic() + 2400
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    r.read()
                self.ok += 1
            except OSError:
                self.failed += 1
            self.stop.wait(0.5)


@pytest.fixture(scope="module")
def site():
    s = sitekit.Site("itu", "172.29.20.0/24", os.path.join(TOP, "tests", "output", "upgrade-site"), NODES,
                     apply=True, kube=FROM, image_versions=[FROM, TO], say=lambda m: print("itu: " + m, flush=True))
    s.up()
    yield s
    if os.environ.get("JUNO_KEEP_CLUSTER") != "1":
        s.down()


def kubectl(site, *args, stdin=None):
    r = sitekit.subprocess.run(["docker", "exec", "-i", site.container("cp1"), "kubectl", "--kubeconfig",
                                "/etc/kubernetes/admin.conf", *args], input=stdin, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_upgrade_node_by_node_while_a_deployment_serves(site):
    first = site.playbook("site.yml", [], capture=True)
    assert first.returncode == 0, first.stdout[-15000:]
    nodes = json.loads(kubectl(site, "get", "nodes", "-o", "json"))["items"]
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {"v" + FROM}

    kubectl(site, "apply", "-f", "-", stdin=WORKLOAD)
    kubectl(site, "-n", "juno-it-upgrade", "rollout", "status", "deployment/web", "--timeout=180s")
    prober = Prober("http://%s:%d/" % (site.address("cp1"), NODE_PORT))
    prober.start()
    time.sleep(5)
    start = time.monotonic()
    r = site.playbook("upgrade.yml", ["-e", "juno_kubernetes_version=" + TO], capture=True)
    took = time.monotonic() - start
    time.sleep(5)
    prober.stop.set()
    prober.join()
    assert r.returncode == 0, r.stdout[-15000:] + r.stderr[-3000:]

    nodes = json.loads(kubectl(site, "get", "nodes", "-o", "json"))["items"]
    assert {n["metadata"]["name"]: n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {
        "cp1": "v" + TO, "w1": "v" + TO, "w2": "v" + TO}
    for n in nodes:
        assert not n["spec"].get("unschedulable"), n["metadata"]["name"]
    config = yaml.safe_load(json.loads(kubectl(site, "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "json"))
                            ["data"]["ClusterConfiguration"])
    assert config["kubernetesVersion"] == "v" + TO
    apiserver = json.loads(kubectl(site, "-n", "kube-system", "get", "pod", "kube-apiserver-cp1", "-o", "json"))
    assert apiserver["spec"]["containers"][0]["image"].endswith(":v" + TO)

    total = prober.ok + prober.failed
    print("upgrade %s -> %s took %.0f s; NodePort probes: %d answered, %d failed (%.1f %%)"
          % (FROM, TO, took, prober.ok, prober.failed, 100.0 * prober.ok / max(total, 1)))
    assert total > 20
    assert prober.ok / total >= 0.95, (prober.ok, prober.failed)
