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

    def __init__(self, name, subnet, inventory, nodes, say=None):
        self.name = name
        self.net = "juno-" + name
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

    def ensure_container(self, host, addr, image, extra=()):
        cname = self.container(host)
        if exists("container", cname):
            if not running(cname):
                docker("start", cname)
            return
        docker("run", "-d", "--name", cname, "--hostname", host, "--network", self.net, "--ip", addr, *extra, image)

    def ensure_nodes(self, hosts=None):
        for host in hosts or self.nodes:
            self.ensure_container(host, self.address(host), BASE, NODE_ARGS)

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
            "vip": self.vip, "pool": self.pool, "hub_addr": self.hub_addr})
        vault_pass = os.path.join(self.inventory, ".vault-pass")
        if not os.path.exists(vault_pass):
            write(vault_pass, self.secret("vault") + "\n", 0o600)
        vault_file = os.path.join(self.inventory, "group_vars", "all", "vault.yml")
        if not os.path.exists(vault_file):
            plain = "---\nvault_juno_ad_bind_password: %s\nvault_juno_elasticsearch_api_key: %s\n" % (
                json.dumps(svc_password), json.dumps("juno-lab:not-a-real-api-key"))
            subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt", "--vault-password-file", vault_pass,
                            "--output", vault_file, "-"], input=plain, text=True, check=True, capture_output=True)

    def playbook(self, playbook="site.yml", extra=(), env=None, capture=False):
        cmd = [os.path.join(BIN, "ansible-playbook"), "-i", self.inventory,
               "--vault-password-file", os.path.join(self.inventory, ".vault-pass"),
               os.path.join(TOP, "playbooks", playbook), *extra]
        # Each site keeps its own fact cache: host names (cp1, w1, ...) repeat across sites.
        run_env = dict(os.environ, ANSIBLE_CACHE_PLUGIN_CONNECTION=os.path.join(TOP, ".cache", "facts", self.name), **(env or {}))
        if capture:
            return subprocess.run(cmd, cwd=TOP, env=run_env, capture_output=True, text=True, check=False)
        return subprocess.run(cmd, cwd=TOP, env=run_env, check=False)

    # -- whole site ---------------------------------------------------------------------------------
    def up(self, hosts=None):
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

juno_apply: false
juno_render_dir: "{{ inventory_dir }}/rendered"
juno_cluster_name: juno-%(name)s
juno_kubernetes_version: "1.32.4"
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
