"""Container sites for the lab and the benchmark: systemd node containers, an NFS server and a
Samba AD DC on a user-defined Docker network, and an inventory that describes them.

A `Site` is named (`lab`, `bench`, ...): its containers are `juno-<name>-<host>`, its network
`juno-<name>`, its inventory a directory of its own. Everything is idempotent: `up()` reuses what
exists; `down()` removes only what carries the site's name.
"""

import ipaddress
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, ".venv", "bin")
BASE, SAMBA = "juno-test-base:bookworm", "juno-test-samba:bookworm"
REALM, DOMAIN, BASE_DN = "JUNO.TEST", "JUNO", "DC=juno,DC=test"
NODE_ARGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
]
# Nodes of an apply-mode site run containerd, the kubelet and pods. They cannot be --privileged
# here (the engine lacks CAP_SYS_RESOURCE), so they get every other capability, no seccomp or
# AppArmor profile, writable /proc/sys (sysctls of their own network namespace) and
# /var/lib/containerd on a volume (overlayfs snapshots cannot live on the overlay root).
# The host is cgroup v1: with the host's cgroup namespace the kubelet would look for kubepods.slice
# at the hierarchy's root while systemd in the container makes it under the container's own
# cgroup. So these nodes get a private cgroup namespace, and before systemd starts, each cgroup
# hierarchy is mounted again read-write (Docker mounts them read-only): the container's cgroup is
# then the root for systemd, the kubelet and runc alike. The device cgroup admits every device, so
# that runc can give privileged pods (kube-proxy, the CNI) theirs; /dev/kmsg is there for the kubelet.
APPLY_NODE_ARGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--cgroupns", "private", "--device", "/dev/kmsg", "--device-cgroup-rule", "a *:* rwm",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
    "-v", "/var/lib/containerd",
]
APPLY_NODE_CMD = ["sh", "-c", (
    'grep " cgroup " /proc/self/mounts | while read -r _ dst _ opts _; do '
    'o=$(echo "$opts" | tr , "\\n" | grep -vE "^(ro|rw|nosuid|nodev|noexec|relatime)$" | paste -sd,); '
    'umount "$dst" && mount -t cgroup -o "rw,nosuid,nodev,noexec,$o" cgroup "$dst"; done; '
    'exec /lib/systemd/systemd')]
COMPONENTS = os.path.join(TOP, ".cache", "components")
# fs.inotify.max_user_instances an apply-mode site needs on the host (kind's advice).
INOTIFY_INSTANCES = 512
# Where each apply-mode node mounts the site's shared volume.
SHARED_DIR = "/srv/juno-lab-shared"


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def exists(kind, name):
    return docker(kind, "inspect", name, check=False).returncode == 0


def running(name):
    r = docker("inspect", "-f", "{{.State.Running}}", name, check=False)
    return r.returncode == 0 and r.stdout.strip() == "true"


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def to_yaml(data):
    import yaml  # from the virtualenv (make setup)

    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


class Site:
    """One container site. `nodes` maps host name -> group (kube_control_plane, kube_workers, nfs_server)."""

    def __init__(self, name, subnet, inventory, nodes, say=None, apply=False, kube="1.32.4", image_versions=None):
        self.name = name
        self.apply = apply
        # The site's Kubernetes version, and (apply mode) the versions whose images every node
        # receives: an upgrade drill starts older and lists the target version's images too.
        self.kube = kube
        self.image_versions = image_versions or [kube]
        self.net = "juno-" + name
        self.shared_volume = "juno-%s-shared" % name
        self.subnet = ipaddress.ip_network(subnet)
        self.inventory = inventory
        self.nodes = dict(nodes)
        self.say = say or (lambda msg: print("%s: %s" % (name, msg), flush=True))
        hosts = list(self.subnet.hosts())
        self.dc_addr = str(hosts[4])          # .5
        self.vip = str(hosts[9])              # .10
        self.pool = "%s-%s" % (hosts[199], hosts[219])   # .200-.220
        self.hub_addr = str(hosts[200])       # .201

    # -- addresses and names -------------------------------------------------------------
    def container(self, host):
        return "juno-%s-%s" % (self.name, host)

    def address(self, host):
        """Stable address per host: control planes .11+, workers .21+ (then .60+), NFS .31+."""
        hosts = list(self.subnet.hosts())
        order = {"kube_control_plane": [], "kube_workers": [], "nfs_server": []}
        for h, g in self.nodes.items():
            order[g].append(h)
        group = self.nodes[host]
        i = order[group].index(host)
        if group == "kube_control_plane":
            return str(hosts[10 + i])
        if group == "nfs_server":
            return str(hosts[30 + i])
        return str(hosts[20 + i] if i < 9 else hosts[59 + i])

    # -- containers ------------------------------------------------------------------------
    def ensure_network(self):
        if not exists("network", self.net):
            self.say("creating network %s (%s)" % (self.net, self.subnet))
            docker("network", "create", "--subnet", str(self.subnet), self.net)

    def ensure_container(self, host, addr, image, extra=(), mode="render", cmd=()):
        """Start the container, or the one that exists. A node container made for the other mode
        (render or apply: they differ in capabilities and volumes) is replaced."""
        cname = self.container(host)
        if exists("container", cname):
            # Containers from before the label existed were made for render mode.
            have = docker("inspect", "-f", '{{ index .Config.Labels "juno.hub.lab-mode" }}', cname).stdout.strip() or "render"
            if have == mode or host == "dc1":
                if not running(cname):
                    docker("start", cname)
                return
            self.say("replacing %s: it was made for %s mode, this run is in %s mode" % (cname, have, mode))
            docker("rm", "-f", "-v", cname)
        docker("run", "-d", "--name", cname, "--hostname", host, "--network", self.net, "--ip", addr,
               "--label", "juno.hub.lab-mode=" + mode, *extra, image, *cmd)

    def ensure_nodes(self, hosts=None):
        for host in hosts or self.nodes:
            cluster = self.nodes[host] != "nfs_server"
            mode = "apply" if self.apply and cluster else "render"
            if mode == "apply":
                # One Docker volume mounted on every node at the same path: the lab's stand-in for
                # shared storage (the kernel here has no NFS), so that a pod started again on
                # another node finds its data (hostPath, in the resilience drills).
                shared = ["-v", "%s:%s" % (self.shared_volume, SHARED_DIR)]
                self.ensure_container(host, self.address(host), BASE, APPLY_NODE_ARGS + shared, mode, APPLY_NODE_CMD)
                docker("exec", self.container(host), "chmod", "1777", SHARED_DIR)
                # The node's resolv.conf names Docker's DNS (127.0.0.11), which pods cannot reach:
                # CoreDNS would forward to itself and stop (its loop check). The kubelet gets a
                # resolv.conf naming the node's own address instead: nothing answers there, so
                # names outside the cluster fail at once and cluster names work.
                docker("exec", self.container(host), "sh", "-c",
                       "mkdir -p /etc/juno-lab && echo 'nameserver %s' > /etc/juno-lab/resolv.conf" % self.address(host))
            else:
                self.ensure_container(host, self.address(host), BASE, NODE_ARGS, mode)

    def remove_container(self, host):
        if exists("container", self.container(host)):
            docker("rm", "-f", "-v", self.container(host))

    # -- Active Directory ----------------------------------------------------------------------
    def secret(self, name, length=24):
        """A generated secret kept in the (git-ignored) inventory, so reruns reuse it."""
        path = os.path.join(self.inventory, ".secrets", name)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("Juno-" + secrets.token_urlsafe(length) + "\n")
        with open(path) as f:
            return f.read().strip()

    @property
    def pki(self):
        return os.path.join(self.inventory, "files", "pki")

    def ensure_ad(self):
        names = ",".join(["dc1", self.container("dc1"), self.dc_addr, "localhost", "127.0.0.1"])
        subprocess.run([sys.executable, os.path.join(TOP, "tests", "harness", "make_ca.py"), "--out", self.pki, "--names", names],
                       check=True, capture_output=True)
        admin_pw, svc_pw = self.secret("samba-admin"), self.secret("svc-juno")
        fresh = not exists("container", self.container("dc1"))
        self.ensure_container("dc1", self.dc_addr, SAMBA, [
            "--cap-add", "SYS_ADMIN",
            "-e", "SAMBA_REALM=" + REALM, "-e", "SAMBA_DOMAIN=" + DOMAIN, "-e", "SAMBA_ADMIN_PASSWORD=" + admin_pw,
            "-v", "%s:/etc/samba/tls:ro" % self.pki,
        ])
        self.say("waiting for LDAPS on %s:636" % self.dc_addr)
        self.wait_ldaps()
        if fresh or not os.path.exists(os.path.join(self.inventory, ".secrets", "seeded")):
            self.say("seeding the AD with users in nested groups")
            subprocess.run([sys.executable, os.path.join(TOP, "tests", "harness", "seed_ad.py"),
                            "--host", self.dc_addr, "--port", "636", "--ca", os.path.join(self.pki, "ca.pem"),
                            "--bind-dn", "CN=Administrator,CN=Users," + BASE_DN, "--password", admin_pw,
                            "--base-dn", BASE_DN, "--svc-password", svc_pw], check=True)
            write(os.path.join(self.inventory, ".secrets", "seeded"), "yes\n", 0o600)
        return svc_pw

    def wait_ldaps(self, timeout=240):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.pem"))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.dc_addr, 636), 2) as s, ctx.wrap_socket(s, server_hostname=self.dc_addr):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the AD DC did not answer LDAPS on %s:636 within %ss; see `docker logs %s`"
                                     % (self.dc_addr, timeout, self.container("dc1")))
                time.sleep(1)

    # -- inventory --------------------------------------------------------------------------------
    def write_inventory(self, svc_password, hosts=None):
        hosts = list(hosts or self.nodes)
        tree = {"all": {"children": {
            "k8s_cluster": {"children": {"kube_control_plane": {"hosts": {}}, "kube_workers": {"hosts": {}}}},
            "nfs_server": {"hosts": {}},
        }}}
        for host in hosts:
            group = self.nodes[host]
            entry = {"ansible_host": self.container(host), "juno_node_ip": self.address(host)}
            if group == "nfs_server":
                tree["all"]["children"]["nfs_server"]["hosts"][host] = entry
            else:
                tree["all"]["children"]["k8s_cluster"]["children"][group]["hosts"][host] = entry
        header = "---\n# Written by tests/harness/sitekit.py for the %s site; it is removed with the site.\n" % self.name
        write(os.path.join(self.inventory, "hosts.yml"), header + to_yaml(tree))
        write(os.path.join(self.inventory, "group_vars", "all", "site.yml"), header + SITE_VARS % {
            "name": self.name, "subnet": self.subnet, "dc": self.dc_addr, "base": BASE_DN,
            "vip": self.vip, "pool": self.pool, "hub_addr": self.hub_addr, "apply": "true" if self.apply else "false",
            "kube": self.kube})
        lab_apply = os.path.join(self.inventory, "group_vars", "all", "lab-apply.yml")
        if self.apply:
            write(lab_apply, header + to_yaml(self.apply_vars()))
        elif os.path.exists(lab_apply):
            os.remove(lab_apply)
        vault_pass = os.path.join(self.inventory, ".vault-pass")
        if not os.path.exists(vault_pass):
            write(vault_pass, self.secret("vault") + "\n", 0o600)
        vault_file = os.path.join(self.inventory, "group_vars", "all", "vault.yml")
        if not os.path.exists(vault_file):
            plain = "---\nvault_juno_ad_bind_password: %s\nvault_juno_elasticsearch_api_key: %s\n" % (
                json.dumps(svc_password), json.dumps("juno-lab:not-a-real-api-key"))
            subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt", "--vault-password-file", vault_pass,
                            "--output", vault_file, "-"], input=plain, text=True, check=True, capture_output=True)

    def apply_vars(self):
        """Variables of an apply-mode site: the offline packages and image archives that
        tests/components/build.py made, and the settings that containers without CAP_SYS_RESOURCE
        on a cgroup v1 host need. The latter are what rootless Kubernetes uses: lab only, never a
        site's defaults (docs/development.md)."""
        # The packages of the version being installed (upgrade.yml is run with -e juno_kubernetes_version).
        debs = os.path.join(COMPONENTS, "debs", "{{ juno_kubernetes_version }}")
        archives, names = [], set()
        for kube in self.image_versions:
            images = os.path.join(COMPONENTS, "images", kube)
            with open(os.path.join(images, "images.json")) as f:
                for image in json.load(f):
                    if image["name"] not in names:  # etcd, CoreDNS, pause ... serve both versions
                        names.add(image["name"])
                        archives.append(os.path.join(images, image["file"]))
        helm = os.path.join(COMPONENTS, "dist", "helm-v3.18.4-linux-amd64.tar.gz")
        with open(helm + ".sha256sum") as f:
            helm_sum = f.read().split()[0]
        # SystemVerification: cgroup v1 and no kernel config in a container. HTTPProxyCIDR: kubeadm
        # 1.32's check writes "https://[<IPv4>]:1234", which net/url of Go 1.26 (the Go that builds
        # the lab's kubeadm) rejects; upstream's binaries are built with Go 1.23.
        ignore = ["SystemVerification", "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables", "Swap", "HTTPProxyCIDR"]
        return {
            "kubernetes_packages_source": "offline",
            "kubernetes_packages_offline_dir": debs,
            "kubernetes_packages_helm_offline_file": helm,
            "kubernetes_packages_helm_checksums": {"amd64": "sha256:" + helm_sum},
            "containerd_image_archives": archives,
            # Lab only (rootless Kubernetes' settings): the containers lack CAP_SYS_RESOURCE.
            "containerd_restrict_oom_score_adj": True,
            "control_plane_kubelet_extra_config": {"featureGates": {"KubeletInUserNamespace": True},
                                                   "resolvConf": "/etc/juno-lab/resolv.conf"},
            # etcdctl and etcdutl from the etcd image the cluster runs (no release download here).
            "etcd_backup_tools_source": "container",
            "control_plane_kubelet_protect_kernel_defaults": False,
            # kube-proxy would set the host kernel's conntrack table size.
            "control_plane_kube_proxy_extra_config": {"conntrack": {"maxPerCore": 0}},
            "control_plane_kubeadm_ignore_preflight_errors": ignore,
            "worker_kubeadm_ignore_preflight_errors": ignore,
            # Built here (tests/components/build.py); kube-router v2.1.0 is the release the module
            # proxy serves, kube-vip v0.9.2 likewise.
            "cluster_addons_cni": "kube-router",
            "cluster_addons_kube_router_image": "docker.io/cloudnativelabs/kube-router:v2.1.0",
            "control_plane_kube_vip_image": "ghcr.io/kube-vip/kube-vip:v0.9.2",
            # Upstream charts and their images cannot be had here: written for review, not applied.
            "juno_render_only": ["metallb", "metrics-server", "kubelet-csr-approver", "csi-driver-nfs", "eck", "jupyterhub"],
        }

    def kubectl(self, *args, check=True):
        """kubectl on the first control plane, as cluster admin."""
        cp = next(h for h, g in self.nodes.items() if g == "kube_control_plane")
        return docker("exec", self.container(cp), "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args, check=check)

    def approve_serving_csrs(self):
        """Approve the kubelets' pending serving-certificate requests of this site's nodes. A site
        runs kubelet-csr-approver for that (cluster_addons); its chart cannot be had here, so the
        lab does what it would: approve kubernetes.io/kubelet-serving requests from system:node:<name>
        for the site's own nodes. Returns the names approved."""
        r = self.kubectl("get", "csr", "-o", "json", check=False)
        if r.returncode != 0:
            return []
        approved = []
        for csr in json.loads(r.stdout)["items"]:
            spec, status = csr["spec"], csr.get("status", {})
            user = spec.get("username", "")
            if (spec.get("signerName") == "kubernetes.io/kubelet-serving" and not status.get("conditions")
                    and user.startswith("system:node:") and user.split(":", 2)[2] in self.nodes):
                self.kubectl("certificate", "approve", csr["metadata"]["name"])
                approved.append(user.split(":", 2)[2])
        return approved

    def kube_bench(self, host, targets=None):
        """Run kube-bench (built by tests/components/build.py, CIS benchmark cis-1.9, the newest its
        release knows) on a node. Returns {totals: {pass, fail, warn, info}, fail: [(id, text)],
        warn: [(id, text)]}."""
        kb = os.path.join(COMPONENTS, "bin", "kube-bench-0.9.4")
        cname = self.container(host)
        docker("exec", cname, "mkdir", "-p", "/opt/juno-lab/kube-bench")
        docker("cp", os.path.join(kb, "kube-bench"), cname + ":/opt/juno-lab/kube-bench/kube-bench")
        docker("cp", os.path.join(kb, "cfg"), cname + ":/opt/juno-lab/kube-bench/")
        cmd = ["exec", cname, "/opt/juno-lab/kube-bench/kube-bench", "run", "--json", "--benchmark", "cis-1.9",
               "--config-dir", "/opt/juno-lab/kube-bench/cfg", "--config", "/opt/juno-lab/kube-bench/cfg/config.yaml"]
        if targets:
            cmd += ["--targets", ",".join(targets)]
        report = json.loads(docker(*cmd).stdout)
        out = {"totals": {k.replace("total_", ""): v for k, v in report["Totals"].items()}, "fail": [], "warn": []}
        for control in report["Controls"]:
            for group in control["tests"]:
                for check in group["results"]:
                    if check["status"] in ("FAIL", "WARN"):
                        out[check["status"].lower()].append((check["test_number"], check["test_desc"]))
        return out

    def playbook_command(self, playbook="site.yml", extra=(), env=None):
        """The ansible-playbook command line and environment of a run against this site."""
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory,
               "--vault-password-file", os.path.join(self.inventory, ".vault-pass"),
               os.path.join(TOP, "playbooks", playbook), *extra]
        # Each site keeps its own fact cache: host names (cp1, w1, ...) repeat across sites.
        run_env = dict(os.environ, ANSIBLE_CACHE_PLUGIN_CONNECTION=os.path.join(TOP, ".cache", "facts", self.name), **(env or {}))
        return cmd, run_env

    def playbook(self, playbook="site.yml", extra=(), env=None, capture=False):
        cmd, run_env = self.playbook_command(playbook, extra, env)
        if capture:
            return subprocess.run(cmd, cwd=TOP, env=run_env, capture_output=True, text=True, check=False)
        return subprocess.run(cmd, cwd=TOP, env=run_env, check=False)

    # -- whole site ---------------------------------------------------------------------------------
    def raise_inotify_instances(self):
        """Every kubelet, containerd and systemd of the node containers takes inotify instances
        from the host's one per-user limit (fs.inotify.max_user_instances, 128 by default): with
        two apply-mode sites up, a kubelet fails with "inotify_init: too many open files" (kind
        documents the same). Raise it, never lower it, to kind's figure."""
        path = "/proc/sys/fs/inotify/max_user_instances"
        with open(path) as f:
            have = int(f.read())
        if have < INOTIFY_INSTANCES:
            self.say("raising fs.inotify.max_user_instances from %d to %d on this host (node containers' kubelets)"
                     % (have, INOTIFY_INSTANCES))
            with open(path, "w") as f:
                f.write("%d\n" % INOTIFY_INSTANCES)

    def up(self, hosts=None):
        if self.apply:
            self.raise_inotify_instances()
        self.ensure_network()
        svc_pw = self.ensure_ad()
        self.say("starting node containers: %s" % ", ".join(self.container(h) for h in (hosts or self.nodes)))
        self.ensure_nodes(hosts)
        self.write_inventory(svc_pw, hosts)

    def down(self):
        out = docker("ps", "-a", "--filter", "name=^juno-%s-" % self.name, "--format", "{{.Names}}").stdout.split()
        for cname in out:
            self.say("removing %s" % cname)
            docker("rm", "-f", "-v", cname)
        if exists("network", self.net):
            docker("network", "rm", self.net)
        if exists("volume", self.shared_volume):
            docker("volume", "rm", self.shared_volume)
        if os.path.isdir(self.inventory):
            self.say("removing %s" % os.path.relpath(self.inventory, TOP))
            subprocess.run(["rm", "-rf", self.inventory], check=True)


SITE_VARS = """\
# The nodes are containers on the local Docker engine.
ansible_connection: community.docker.docker
ansible_python_interpreter: /usr/bin/python3
ansible_become: true
# Test containers run on a cgroup v1 host; a real cluster needs cgroup v2 (preflight says so).
preflight_require_cgroup_v2: false
# Containers have no kernel NFS server, cannot write most sysctls and cannot load kernel modules;
# the roles leave those steps out and say so.
nfs_server_service_enabled: false
node_sysctl_apply: false
node_manage_hostname: false
# chronyd cannot set the clock of a container (no CAP_SYS_TIME): run it with -x.
node_chrony_control_clock: false

juno_apply: %(apply)s
juno_render_dir: "{{ inventory_dir }}/rendered"
juno_cluster_name: juno-%(name)s
juno_kubernetes_version: "%(kube)s"
juno_pod_cidr: 10.244.0.0/16
juno_service_cidr: 10.96.0.0/12
juno_node_networks:
  - %(subnet)s
juno_api_endpoint:
  address: %(vip)s
  port: 6443
  provider: kube_vip
  interface: eth0
juno_lb_address_pool:
  - %(pool)s
juno_time_servers: []

juno_ad:
  servers:
    - %(dc)s
  tls: ldaps
  port: 636
  validate_certs: true
  ca_file: "{{ inventory_dir }}/files/pki/ca.pem"
  base_dn: %(base)s
  user_base_dn: OU=People,%(base)s
  bind_dn: CN=svc-juno,OU=Service Accounts,%(base)s
  bind_password: "{{ vault_juno_ad_bind_password }}"

juno_elasticsearch_hosts:
  - https://elasticsearch.%(name)s.invalid:9200
juno_elasticsearch_api_key: "{{ vault_juno_elasticsearch_api_key }}"

juno_hubs:
  - name: chemeng
    hostname: chemeng.%(name)s.juno.test
    lb_address: %(hub_addr)s
    ad:
      allowed_groups: [ChemEng-Students, ChemEng-Staff]
      admin_groups: [ChemEng-Hub-Admins]
    image: {name: quay.io/jupyter/scipy-notebook, tag: "2025-10-20"}
    storage: {capacity: 5Gi}
    idle_timeout: 3600
    profiles:
      - {display_name: Standard, default: true}
      - {display_name: Isolated (Kata VM), kata: true}
  - name: physics
    hostname: physics.%(name)s.juno.test
    ad:
      allowed_groups: [PHYS-2210]
      admin_groups: [Physics-TAs]
    image: {name: quay.io/jupyter/datascience-notebook, tag: "2025-10-20"}
    storage: {capacity: 2Gi}
    idle_timeout: 1800
"""
