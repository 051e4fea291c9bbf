#!/usr/bin/env python3
"""The local container lab (`make lab`, `make lab-destroy`).

up:   systemd containers for 1 control plane, 2 workers and 1 NFS server, a Samba AD DC with its
      own CA and a few users in nested groups, an inventory in inventories/lab/, and
      playbooks/site.yml run against it with juno_apply: false. Rerunning reuses what exists.
down: removes the containers, the network and inventories/lab/.

Containers talk over the user-defined bridge network juno-lab (172.29.0.0/24); the AD DC's LDAPS
port is also published on 127.0.0.1 only.
"""

import argparse
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INV = os.path.join(TOP, "inventories", "lab")
NET, SUBNET = "juno-lab", "172.29.0.0/24"
BASE, SAMBA = "juno-test-base:bookworm", "juno-test-samba:bookworm"
REALM, DOMAIN = "JUNO.TEST", "JUNO"
BASE_DN = "DC=juno,DC=test"
NODES = {
    # name: (address, groups)
    "cp1": ("172.29.0.11", ["kube_control_plane"]),
    "w1": ("172.29.0.21", ["kube_workers"]),
    "w2": ("172.29.0.22", ["kube_workers"]),
    "nfs1": ("172.29.0.31", ["nfs_server"]),
}
DC_NAME, DC_ADDR = "dc1", "172.29.0.5"
NODE_ARGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
]


def say(msg):
    print("lab: " + msg, flush=True)


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def exists(kind, name):
    return docker(kind, "inspect", name, check=False).returncode == 0


def running(name):
    r = docker("inspect", "-f", "{{.State.Running}}", name, check=False)
    return r.returncode == 0 and r.stdout.strip() == "true"


def container(name):
    return "juno-lab-" + name


def ensure_container(name, addr, image, extra=()):
    cname = container(name)
    if exists("container", cname):
        if not running(cname):
            docker("start", cname)
        return
    say("starting %s (%s) at %s" % (cname, image, addr))
    docker("run", "-d", "--name", cname, "--hostname", name, "--network", NET, "--ip", addr, *extra, image)


def read_secret(path, length=24):
    """A generated secret kept in the (git-ignored) lab inventory, so reruns reuse it."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        value = "Lab-" + secrets.token_urlsafe(length)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
    with open(path) as f:
        return f.read().strip()


def wait_ldaps(host, port, ca, timeout=180):
    ctx = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), 2) as s, ctx.wrap_socket(s, server_hostname=host):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("lab: the AD DC did not answer LDAPS on %s:%s within %ss; see `docker logs %s`"
                                 % (host, port, timeout, container(DC_NAME)))
            time.sleep(1)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def write_inventory(svc_password):
    hosts = {"all": {"children": {
        "k8s_cluster": {"children": {"kube_control_plane": {"hosts": {}}, "kube_workers": {"hosts": {}}}},
        "nfs_server": {"hosts": {}},
    }}}
    for name, (addr, groups) in NODES.items():
        entry = {"ansible_host": container(name), "juno_node_ip": addr}
        for g in groups:
            if g == "nfs_server":
                hosts["all"]["children"]["nfs_server"]["hosts"][name] = entry
            else:
                hosts["all"]["children"]["k8s_cluster"]["children"][g]["hosts"][name] = entry
    header = "---\n# Written by tests/harness/lab.py for the local lab; `make lab-destroy` removes it.\n"
    write(os.path.join(INV, "hosts.yml"), header + json_to_yaml(hosts))
    write(os.path.join(INV, "group_vars", "all", "lab.yml"), header + """\
# The lab's nodes are containers on the local Docker engine.
ansible_connection: community.docker.docker
ansible_python_interpreter: /usr/bin/python3
ansible_become: true
# Test containers run on a cgroup v1 host; a real cluster needs cgroup v2 (preflight says so).
preflight_require_cgroup_v2: false
# No kernel NFS server, no sysctl writes, no kernel modules inside containers.
nfs_server_service_enabled: false
node_sysctl_apply: false
node_manage_hostname: false

juno_apply: false
juno_render_dir: "{{ inventory_dir }}/rendered"
juno_cluster_name: juno-lab
juno_kubernetes_version: "1.32.4"
juno_pod_cidr: 10.244.0.0/16
juno_service_cidr: 10.96.0.0/12
juno_node_networks:
  - %(subnet)s
juno_api_endpoint:
  address: 172.29.0.10
  port: 6443
  provider: kube_vip
  interface: eth0
juno_lb_address_pool:
  - 172.29.0.200-172.29.0.220
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
  bind_dn: CN=svc-juno,OU=People,%(base)s
  bind_password: "{{ vault_juno_ad_bind_password }}"

juno_elasticsearch_hosts:
  - https://elasticsearch.lab.invalid:9200
juno_elasticsearch_api_key: "{{ vault_juno_elasticsearch_api_key }}"

juno_hubs:
  - name: chemeng
    hostname: chemeng.lab.juno.test
    lb_address: 172.29.0.201
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
    hostname: physics.lab.juno.test
    ad:
      allowed_groups: [PHYS-2210]
      admin_groups: [Physics-TAs]
    image: {name: quay.io/jupyter/datascience-notebook, tag: "2025-10-20"}
    storage: {capacity: 2Gi}
    idle_timeout: 1800
""" % {"subnet": SUBNET, "dc": DC_ADDR, "base": BASE_DN})
    vault_pass = read_secret(os.path.join(INV, ".vault-pass"))
    plain = "---\nvault_juno_ad_bind_password: %s\nvault_juno_elasticsearch_api_key: %s\n" % (
        json.dumps(svc_password), json.dumps("lab-not-a-real-key"))
    vault_file = os.path.join(INV, "group_vars", "all", "vault.yml")
    if not os.path.exists(vault_file):
        subprocess.run(
            [os.path.join(TOP, ".venv", "bin", "ansible-vault"), "encrypt", "--vault-password-file",
             os.path.join(INV, ".vault-pass"), "--output", vault_file, "-"],
            input=plain, text=True, check=True, capture_output=True)


def json_to_yaml(data):
    import yaml  # from the virtualenv (make setup)

    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def up(args):
    if not exists("network", NET):
        say("creating network %s (%s)" % (NET, SUBNET))
        docker("network", "create", "--subnet", SUBNET, NET)
    pki = os.path.join(INV, "files", "pki")
    subprocess.run([sys.executable, os.path.join(TOP, "tests", "harness", "make_ca.py"), "--out", pki,
                    "--names", ",".join([DC_NAME, container(DC_NAME), DC_ADDR, "localhost", "127.0.0.1"])],
                   check=True)
    admin_pw = read_secret(os.path.join(INV, ".secrets", "samba-admin"))
    svc_pw = read_secret(os.path.join(INV, ".secrets", "svc-juno"))
    ensure_container(DC_NAME, DC_ADDR, SAMBA, [
        "--cap-add", "SYS_ADMIN", "-p", "127.0.0.1::636",
        "-e", "SAMBA_REALM=" + REALM, "-e", "SAMBA_DOMAIN=" + DOMAIN, "-e", "SAMBA_ADMIN_PASSWORD=" + admin_pw,
        "-v", "%s:/etc/samba/tls:ro" % pki,
    ])
    for name, (addr, _) in NODES.items():
        ensure_container(name, addr, BASE, NODE_ARGS)
    say("waiting for LDAPS on %s:636" % DC_ADDR)
    wait_ldaps(DC_ADDR, 636, os.path.join(pki, "ca.pem"))
    say("seeding the AD with the lab's users and nested groups")
    subprocess.run([sys.executable, os.path.join(TOP, "tests", "harness", "seed_ad.py"),
                    "--host", DC_ADDR, "--port", "636", "--ca", os.path.join(pki, "ca.pem"),
                    "--bind-dn", "CN=Administrator,CN=Users," + BASE_DN, "--password", admin_pw,
                    "--base-dn", BASE_DN, "--svc-password", svc_pw], check=True)
    write_inventory(svc_pw)
    say("inventory written to %s" % os.path.relpath(INV, TOP))
    if args.no_run:
        return
    cmd = [os.path.join(TOP, ".venv", "bin", "ansible-playbook"), "-i", INV,
           "--vault-password-file", os.path.join(INV, ".vault-pass"),
           os.path.join(TOP, "playbooks", "site.yml")] + args.ansible_args
    say("running: " + " ".join(os.path.relpath(c, TOP) if c.startswith(TOP) else c for c in cmd))
    rc = subprocess.run(cmd, cwd=TOP).returncode
    if rc == 0:
        say("done. Rendered artifacts: %s; rerun with `make lab` (changes nothing), remove with `make lab-destroy`."
            % os.path.relpath(os.path.join(INV, "rendered"), TOP))
    sys.exit(rc)


def down(_args):
    for name in list(NODES) + [DC_NAME]:
        if exists("container", container(name)):
            say("removing %s" % container(name))
            docker("rm", "-f", "-v", container(name))
    if exists("network", NET):
        docker("network", "rm", NET)
    if os.path.isdir(INV):
        say("removing %s" % os.path.relpath(INV, TOP))
        subprocess.run(["rm", "-rf", INV], check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--no-run", action="store_true", help="bring up the lab and write the inventory, do not run site.yml")
    u.add_argument("ansible_args", nargs="*", help="extra ansible-playbook arguments (after --)")
    sub.add_parser("down")
    args = p.parse_args()
    {"up": up, "down": down}[args.cmd](args)


if __name__ == "__main__":
    main()
