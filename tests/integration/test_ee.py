"""The execution environment (execution-environment.yml, built by tests/harness/ee.py as `make ee`
does) runs `ansible-playbook juno.hub.preflight` against a lab site, as AWX or ansible-navigator
would run it: the collection and its Python requirements come from the image, the inventory is
mounted into it.

The site is a render-mode lab (tests/harness/sitekit.py): systemd containers for a control plane,
a worker and an NFS server on a network of their own. The lab's inventory reaches its nodes with
the docker connection; inside the EE the test uses community.docker's `docker_api` connection
instead, which speaks to the Docker engine over its socket (mounted into the EE) with the Python
`requests` the EE already has (kubernetes.core needs it), so the image needs no Docker CLI. A site
reaches its nodes over SSH (the EE has the client). community.docker is the test's, not the EE's:
it is mounted from .venv on a collections path of its own, and the image stays what a site builds.
The EE container runs as the image's user (1000, as AWX runs it) with no network at all.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))
import sitekit  # noqa: E402  (tests/harness, on sys.path from the line above)

BIN = os.path.join(TOP, ".venv", "bin")
NODES = {"cp1": "kube_control_plane", "w1": "kube_workers", "nfs1": "nfs_server"}
SOCKET = "/var/run/docker.sock"
PHASES = ["nodes", "storage", "cluster", "hubs", "monitoring", "backup"]
PINNED = {"juno.hub": "0.1.0", "kubernetes.core": "6.2.0", "community.general": "11.4.2",
          "ansible.posix": "2.1.0", "community.crypto": "3.0.5", "ansible.utils": "6.0.0"}


def run(*cmd, timeout=1800):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def ee_image():
    """The EE image; built (or reused when nothing that builds it changed) by tests/harness/ee.py."""
    r = run(os.path.join(BIN, "python"), os.path.join(TOP, "tests", "harness", "ee.py"))
    assert r.returncode == 0, r.stdout + r.stderr
    sys.stderr.write(r.stderr)
    return run(os.path.join(BIN, "python"), os.path.join(TOP, "tests", "harness", "ee.py"), "--print-tag").stdout.strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A render-mode site of three node containers, without the AD DC: preflight reads the
    inventory's AD settings and looks for its CA file, but does not connect to it."""
    inventory = os.path.join(TOP, "tests", "output", "ee-site")
    s = sitekit.Site("itee", "172.29.24.0/24", inventory, NODES)
    s.down()
    s.ensure_network()
    s.ensure_nodes()
    s.write_inventory("not-used-by-preflight")
    # The CA of the AD the inventory names (juno_ad.ca_file), which the hubs' checks look for on the
    # control node; no DC is started (Site.ensure_ad makes the same CA and then starts one).
    subprocess.run([sys.executable, os.path.join(TOP, "tests", "harness", "make_ca.py"), "--out", s.pki,
                    "--names", "dc1,%s" % s.dc_addr], check=True, capture_output=True)
    for host in NODES:  # until systemd has booted (degraded is fine), as a node that was there
        run("docker", "exec", s.container(host), "systemctl", "is-system-running", "--wait", timeout=120)
    yield s
    s.down()


def community_docker():
    py = os.path.join(BIN, "python")
    out = run(py, "-c", "import ansible_collections.community.docker as c; print(list(c.__path__)[0])").stdout.strip()
    assert os.path.isfile(os.path.join(out, "plugins", "connection", "docker_api.py")), out
    return out


def ee_run(image, *cmd, volumes=(), env=()):
    args = ["docker", "run", "--rm", "--network", "none"]
    for v in volumes:
        args += ["-v", v]
    for e in env:
        args += ["-e", e]
    return run(*args, image, *cmd)


def test_image_holds_the_pinned_collections_and_python_requirements(ee_image):
    r = ee_run(ee_image, "ansible-galaxy", "collection", "list", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    found = {}
    for path, collections in json.loads(r.stdout).items():
        if path.startswith("/usr/share/ansible/collections"):
            found.update({name: info["version"] for name, info in collections.items()})
    assert found == PINNED
    r = ee_run(ee_image, "python3", "-c", "import ldap3, netaddr, kubernetes, requests; print('ok')")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    assert ee_run(ee_image, "ssh", "-V").returncode == 0


def test_image_holds_the_bytecode_of_every_plugin_of_the_collection(ee_image):
    # The EE's user cannot write __pycache__ under /usr/share/ansible: without the build step's
    # compileall, every forked worker would compile the filter plugins it imports from source.
    script = (
        "import glob, importlib.util, os\n"
        "top = '/usr/share/ansible/collections/ansible_collections/juno/hub/plugins'\n"
        "sources = sorted(glob.glob(top + '/*/*.py'))\n"
        "missing = [p for p in sources if not os.path.isfile(importlib.util.cache_from_source(p))]\n"
        "print(len(sources), missing)\n"
    )
    r = ee_run(ee_image, "python3", "-c", script)
    assert r.returncode == 0, r.stdout + r.stderr
    count, missing = r.stdout.strip().split(" ", 1)
    assert int(count) >= 20 and missing == "[]", r.stdout


def test_preflight_runs_inside_the_ee_against_the_lab(ee_image, site, tmp_path):
    # The inventory as the EE's user (uid 1000) can read it: a copy, with the test vault password.
    inventory = tmp_path / "inventory"
    shutil.copytree(site.inventory, inventory)
    for root, dirs, files in os.walk(inventory):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    os.chmod(tmp_path, 0o755)
    docker_gid = os.stat(SOCKET).st_gid
    args = ["docker", "run", "--rm", "--network", "none", "--group-add", str(docker_gid),
            "-v", "%s:%s" % (SOCKET, SOCKET),
            "-v", "%s:/runner/inventory:ro" % inventory,
            "-v", "%s:/opt/juno-test/collections/ansible_collections/community/docker:ro" % community_docker(),
            "-e", "ANSIBLE_COLLECTIONS_PATH=/usr/share/ansible/collections:/opt/juno-test/collections",
            # What the repository's ansible.cfg sets and a site's should (docs/performance.md):
            # a module is piped to the node's Python, with no temporary directory made first.
            "-e", "ANSIBLE_PIPELINING=1", "-e", "ANSIBLE_NOCOLOR=1",
            ee_image,
            "ansible-playbook", "juno.hub.preflight", "-i", "/runner/inventory/hosts.yml",
            "--vault-password-file", "/runner/inventory/.vault-pass",
            "-e", "ansible_connection=community.docker.docker_api",
            # As site.yml runs it: the settings and read-only checks of every phase's roles too,
            # read from the roles' argument specs in the image's copy of the collection.
            "-e", json.dumps({"juno_preflight_phases": PHASES})]
    r = run(*args)
    out = r.stdout + r.stderr
    log = os.path.join(TOP, "tests", "output", "ee-preflight.log")
    with open(log, "w") as f:
        f.write("$ " + " ".join(args) + "\n" + out)
    assert r.returncode == 0, out
    recap = dict(re.findall(r"^(\S+)\s+: (ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=\d+)", r.stdout, re.M))
    assert sorted(recap) == sorted(NODES), out
    for host, counts in recap.items():
        assert re.match(r"ok=[1-9]\d*\s+changed=0\s+unreachable=0\s+failed=0", counts), (host, counts)
    # The preflight checks ran on every node, through the engine's socket, from inside the image,
    # and so did the type checks and read-only checks of the roles of every phase.
    assert "TASK [juno.hub.preflight : " in r.stdout, out
    for task in ("Check the types of the settings of the roles this run will use",
                 "Run the read-only checks of each role"):
        block = re.search(r"TASK \[%s.*?\n\n" % re.escape(task), r.stdout, re.S)
        assert block, out
        assert "skipping" not in block.group(0) and "fatal" not in block.group(0), block.group(0)
