"""Drills on a highly available site (issue #20): three control planes behind kube-vip, a worker,
an NFS server and a Samba AD DC, in apply mode from the components make k8s-components built.

- A first site.yml is killed (SIGKILL to ansible-playbook and its forks) at three points: during
  the node phase (while image archives are copied), between kubeadm init and the control-plane
  joins, and during the hubs phase. Each rerun goes on from where the site is; the last one
  completes, every node is Ready, etcd has three members, no join configuration (bootstrap token,
  certificate key) is left on any node, and one more run changes nothing.
- The control plane that holds the API address (kube-vip's lease) is killed: the API answers at
  the address again after a few seconds, served by the two others, and takes writes; the lost
  control plane, started again, is Ready without a manual step.
- Two control planes lose their etcd data (quorum lost, the API stops): restore.yml brings the
  cluster back from one snapshot copied to the three; what the snapshot holds is back, what came
  after is gone, and site.yml afterwards changes nothing.
- A worker dies in the middle of a run: the other hosts finish, the run ends non-zero, and its
  summary names the worker.

The figures go to tests/output/drills.json; docs/operations.md has the runbooks. The site is
removed at the end unless JUNO_KEEP_CLUSTER=1.
"""

import os
import sys
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
import sitekit  # noqa: E402  (tests/harness: importable only after the sys.path line above)
from drillkit import recap, record, run_acting_at, sigkill, wait_until  # noqa: E402  (likewise)

KUBE = "1.32.4"
CONTROL_PLANES = ["cp1", "cp2", "cp3"]
NODES = dict({cp: "kube_control_plane" for cp in CONTROL_PLANES}, w1="kube_workers", nfs1="nfs_server")

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(TOP, ".cache", "components", "images", KUBE, "images.json")),
    reason="the Kubernetes components are not built: make k8s-components (make integration builds them)",
)

# Where the first run is killed: each a list of patterns of its output, matched in order.
KILL_POINTS = [
    ("during the node phase", [r"^PLAY \[Nodes", r"^TASK \[juno\.hub\.containerd : Copy the archive to the node"]),
    ("between kubeadm init and the joins", [r"^TASK \[juno\.hub\.control_plane : Join \| kubeadm join --control-plane"]),
    ("during the hubs phase", [r"^PLAY \[Hubs", r"^TASK \[juno\.hub\.kube_apply : Apply \| server-side apply"]),
]
JOIN_FILES = ["/etc/kubernetes/juno/kubeadm-join.yaml"]
# A bootstrap token (kubeadm's [a-z0-9]{6}.[a-z0-9]{16}) or a certificate key in any file of the
# places a run writes to or leaves temporary files in.
SECRET_PATTERN = r"(^|[^a-z0-9])[a-z0-9]{6}\.[a-z0-9]{16}([^a-z0-9]|$)|certificateKey"
SECRET_PLACES = "/etc/kubernetes /root /tmp /var/tmp"


class Site:
    """The site, and kubectl through the API address from a control plane that runs."""

    def __init__(self, site):
        self.site = site
        self.down = set()

    def kubectl(self, *args, check=True, timeout="10s"):
        cp = next(c for c in CONTROL_PLANES if c not in self.down)
        return sitekit.docker("exec", self.site.container(cp), "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf",
                              "--request-timeout=" + timeout, *args, check=check)

    def serving(self):
        r = self.kubectl("get", "--raw", "/readyz", check=False, timeout="2s")
        return r.returncode == 0 and r.stdout.strip() == "ok"

    def ready(self, node):
        r = self.kubectl("get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
        return r.returncode == 0 and r.stdout.strip() == "True"

    def etcd_members(self, cp="cp1"):
        r = sitekit.docker("exec", self.site.container(cp), "sh", "-c",
                           "crictl exec $(crictl ps -q --name '^etcd$') etcdctl --cacert /etc/kubernetes/pki/etcd/ca.crt"
                           " --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key"
                           " endpoint health --cluster", check=False)
        return r.stdout.count("is healthy")

    def playbook(self, playbook, *extra):
        return self.site.playbook(playbook, list(extra), capture=True)

    def vip_holder(self):
        return self.kubectl("-n", "kube-system", "get", "lease", "plndr-cp-lock", "-o", "jsonpath={.spec.holderIdentity}").stdout.strip()


@pytest.fixture(scope="module")
def ha():
    site = sitekit.Site("iha", "172.29.17.0/24", os.path.join(TOP, "tests", "output", "ha-site"), NODES, apply=True,
                        say=lambda m: print("iha: " + m, flush=True))
    site.up()
    s = Site(site)
    # The first run, killed three times; each rerun starts over from what the site has.
    s.killed = []
    for where, points in KILL_POINTS:
        cmd, env = site.playbook_command("site.yml")
        start = time.monotonic()
        out, _rc, acted = run_acting_at(cmd, env, points, sigkill)
        s.killed.append((where, acted, round(time.monotonic() - start), out))
    start = time.monotonic()
    s.completed = s.playbook("site.yml")
    s.completed_s = round(time.monotonic() - start)
    if s.completed.returncode == 0:
        site.approve_serving_csrs()
    yield s
    if os.environ.get("JUNO_KEEP_CLUSTER") != "1":
        site.down()


def test_a_first_run_killed_at_three_points_completes_when_run_again(ha):
    for where, acted, _seconds, out in ha.killed:
        assert acted, "the run was not killed %s (the pattern never matched):\n%s" % (where, out[-5000:])
    assert ha.completed.returncode == 0, ha.completed.stdout[-15000:]
    for node in NODES:
        if NODES[node] != "nfs_server":
            wait_until("%s to be Ready" % node, lambda n=node: ha.ready(n), 300)
    assert ha.etcd_members() == 3
    # Nothing a join needs is left behind: no join configuration, no token or certificate key.
    for node in NODES:
        cname = ha.site.container(node)
        for path in JOIN_FILES:
            assert sitekit.docker("exec", cname, "test", "-e", path, check=False).returncode != 0, (node, path)
        found = sitekit.docker("exec", cname, "sh", "-c", "grep -rlE '%s' %s 2>/dev/null" % (SECRET_PATTERN, SECRET_PLACES),
                               check=False).stdout.split()
        assert not found, "%s keeps a join secret in %s" % (node, found)
    again = ha.playbook("site.yml")
    assert again.returncode == 0, again.stdout[-15000:]
    changed = {h: v["changed"] for h, v in recap(again.stdout).items()}
    assert all(c == 0 for c in changed.values()), changed
    record("interrupted-run", **{"killed_%s_after_s" % where.replace(" ", "_"): seconds for where, _a, seconds, _o in ha.killed},
           completing_run_s=ha.completed_s)


def test_the_api_address_moves_when_its_control_plane_is_lost(ha):
    assert ha.serving()
    holder = ha.vip_holder()
    assert holder in CONTROL_PLANES, holder
    start = time.monotonic()
    sitekit.docker("kill", ha.site.container(holder))
    ha.down.add(holder)
    seen_down = False
    while True:
        up = ha.serving()
        seen_down = seen_down or not up
        if up and (seen_down or time.monotonic() - start > 10):
            break
        assert time.monotonic() - start < 120, "the API address did not answer again within 120 s"
        time.sleep(0.5)
    downtime = time.monotonic() - start if seen_down else 0.0
    new_holder = ha.vip_holder()
    assert new_holder != holder and new_holder in CONTROL_PLANES
    # Two of three etcd members: the API takes writes.
    ha.kubectl("create", "namespace", "juno-it-ha")
    ha.kubectl("-n", "juno-it-ha", "create", "configmap", "written-while-%s-down" % holder, "--from-literal=k=v")
    assert ha.etcd_members(new_holder) == 2
    restarted = time.monotonic()
    sitekit.docker("start", ha.site.container(holder))
    ha.down.discard(holder)
    wait_until("%s to be Ready again" % holder, lambda: ha.ready(holder), 300)
    wait_until("three healthy etcd members", lambda: ha.etcd_members() == 3, 180)
    members_back = time.monotonic() - restarted
    wait_until("%s's API server to be ready" % holder, lambda: sitekit.docker(
        "exec", ha.site.container(holder), "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "--server",
        "https://%s:6443" % ha.site.address(holder), "get", "--raw", "/readyz", check=False).stdout.strip() == "ok", 300)
    record("api-address-failover", api_unanswered_for_s=round(downtime, 1), lost=holder, new_holder=new_holder,
           three_etcd_members_after_restart_s=round(members_back), own_api_server_ready_after_restart_s=round(time.monotonic() - restarted))


def test_quorum_lost_is_restored_from_one_snapshot(ha):
    ns = "juno-it-ha"
    ha.kubectl("-n", ns, "create", "configmap", "before", "--from-literal=k=v")
    backup = ha.playbook("backup.yml")
    assert backup.returncode == 0, backup.stdout[-15000:]
    snapshot = sitekit.docker("exec", ha.site.container("cp3"), "sh", "-c",
                              "ls -t /var/backups/etcd/*.db | head -n 1").stdout.strip()
    assert snapshot.endswith(".db"), snapshot
    # The runbook's step: the same snapshot on every control plane.
    local = os.path.join(TOP, "tests", "output", "ha-snapshot.db")
    sitekit.docker("cp", "%s:%s" % (ha.site.container("cp3"), snapshot), local)
    try:
        for cp in ("cp1", "cp2"):
            sitekit.docker("cp", local, "%s:%s" % (ha.site.container(cp), snapshot))
    finally:
        os.remove(local)
    ha.kubectl("-n", ns, "create", "configmap", "after", "--from-literal=k=v")

    # The disaster: two members lose their data; the kubelet starts them on empty directories.
    for cp in ("cp1", "cp2"):
        sitekit.docker("exec", ha.site.container(cp), "sh", "-c",
                       "d=$(sed -n 's/.*--data-dir=//p' /etc/kubernetes/manifests/etcd.yaml); rm -rf $d/member;"
                       " crictl stop $(crictl ps -q --name '^etcd$')")
    wait_until("the API to stop serving (quorum lost)", lambda: not ha.serving(), 120)

    start = time.monotonic()
    restore = ha.playbook("restore.yml", "-e", "snapshot=" + snapshot)
    took = time.monotonic() - start
    assert restore.returncode == 0, restore.stdout[-15000:]
    serving_after = wait_until("the API to serve", ha.serving, 300, interval=2)[1]
    assert ha.kubectl("-n", ns, "get", "configmap", "before", check=False).returncode == 0
    assert ha.kubectl("-n", ns, "get", "configmap", "after", check=False).returncode != 0
    for node in ("cp1", "cp2", "cp3", "w1"):
        wait_until("%s to be Ready" % node, lambda n=node: ha.ready(n), 300)
    assert ha.etcd_members() == 3
    # The restored data directories keep the owner the control_plane role gave them (CIS 1.1.12):
    # a run afterwards has nothing to change.
    again = ha.playbook("site.yml")
    assert again.returncode == 0, again.stdout[-15000:]
    changed = {h: v["changed"] for h, v in recap(again.stdout).items()}
    assert all(c == 0 for c in changed.values()), changed
    record("restore-quorum-lost", restore_run_s=round(took), api_serving_after_s=round(serving_after))


def test_a_worker_dying_during_a_run_is_named_and_the_others_finish(ha):
    def kill_w1(_proc):
        sitekit.docker("kill", ha.site.container("w1"))

    cmd, env = ha.site.playbook_command("site.yml")
    try:
        out, rc, acted = run_acting_at(cmd, env, [r"^PLAY \[Nodes", r"^TASK \[juno\.hub\.node : "], kill_w1)
    finally:
        sitekit.docker("start", ha.site.container("w1"))
    assert acted, out[-5000:]
    assert rc != 0, out[-5000:]
    results = recap(out)
    assert results["w1"]["unreachable"] + results["w1"]["failed"] > 0, results
    others = {h: v for h, v in results.items() if h != "w1"}
    assert all(v["failed"] == 0 and v["unreachable"] == 0 for v in others.values()), others
    assert "NOT FINISHED on w1" in out, out[-5000:]
    assert "Summary | what this run did" in out
    wait_until("w1 to be Ready again", lambda: ha.ready("w1"), 300)
    again = ha.playbook("site.yml")
    assert again.returncode == 0, again.stdout[-15000:]
    record("worker-dies-during-a-run", rc=rc, recap_w1=results["w1"],
           changed_when_back={h: v["changed"] for h, v in recap(again.stdout).items()})
