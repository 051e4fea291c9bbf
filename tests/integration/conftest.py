"""Shared fixtures for integration tests: containers on the local Docker engine.

Each test module asks for the containers it needs through ``docker_container``; everything a
fixture starts it removes again. Names carry the test session's id so that parallel runs and a
developer's lab do not collide.
"""

import os
import subprocess
import sys
import uuid

import pytest

SESSION = os.environ.get("JUNO_TEST_SESSION", uuid.uuid4().hex[:6])
BASE_IMAGE = "juno-test-base:bookworm"
NODE_ARGS = [
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
]


def docker(*args, check=True, capture=True, timeout=600):
    """Run a docker CLI command and return its CompletedProcess."""
    return subprocess.run(["docker", *args], check=check, capture_output=capture, text=True, timeout=timeout)


def docker_exec(name, *cmd, check=True, timeout=600, user=None):
    args = ["exec"] + (["-u", user] if user else []) + [name, *cmd]
    return docker(*args, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def docker_network():
    """A user-defined bridge network for this test session (containers resolve each other by name)."""
    name = f"juno-it-{SESSION}"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)


@pytest.fixture(scope="session")
def docker_container(docker_network):
    """Factory: start a container, return its name; all are removed at the end of the session."""
    started = []

    def start(role, image=BASE_IMAGE, node=True, extra=(), command=()):
        name = f"juno-it-{SESSION}-{role}"
        args = ["run", "-d", "--name", name, "--hostname", role, "--network", docker_network]
        if node:
            args += NODE_ARGS
        args += list(extra) + [image, *command]
        docker(*args)
        started.append(name)
        return name

    yield start
    for name in reversed(started):
        docker("rm", "-f", "-v", name, check=False)


def container_ip(name):
    out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name).stdout
    return out.split()[0]


# ---------------------------------------------------------------------------------------------
# Samba AD DC (tests/images/samba): the `samba_ad` fixture. Seeding helpers: tests/integration/samba.py
# ---------------------------------------------------------------------------------------------

SAMBA_IMAGE = "juno-test-samba:bookworm"


class SambaAD:
    """A running Samba AD domain controller for the test session (see the ``samba_ad`` fixture).

    Attributes:
      container, hostname   container name (resolvable on ``network``) and its host name
      network               the session's Docker network
      host                  "127.0.0.1": where the published ports listen
      ldaps_port, ldap_port host ports published for 636 and 389 (127.0.0.1 only)
      realm, domain         JUNO.TEST, JUNO
      base_dn               DC=juno,DC=test
      admin_dn, admin_password   the domain administrator (CN=Administrator,CN=Users,<base_dn>)
      admin_upn             Administrator@juno.test
      ca_file               PEM of the CA that signed the DC's certificate (CN/SAN: 127.0.0.1,
                            localhost, the container name and host name)
      wrong_ca_file         PEM of another CA, that did not sign it
      tls_dir               directory with ca.pem, server.pem, server.key (mounted at /etc/samba/tls)
    Methods:
      url(tls="ldaps")      ldaps://127.0.0.1:<port> or ldap://127.0.0.1:<port>
      connect(tls="ldaps")  a bound ldap3 Connection as the administrator (samba.connect)
      exec(*cmd)            run a command in the container (CompletedProcess)
      unique(prefix)        a name unique in this session, for OUs/users/groups of one test
    """

    realm = "JUNO.TEST"
    domain = "JUNO"
    base_dn = "DC=juno,DC=test"
    admin_password = "Juno-Samba-Admin-2025!"
    host = "127.0.0.1"

    def __init__(self, container, hostname, network, tls_dir, wrong_ca_file):
        self.container = container
        self.hostname = hostname
        self.network = network
        self.tls_dir = tls_dir
        self.ca_file = os.path.join(tls_dir, "ca.pem")
        self.wrong_ca_file = wrong_ca_file
        self.admin_dn = "CN=Administrator,CN=Users," + self.base_dn
        self.admin_upn = "Administrator@" + self.realm.lower()
        self.ldaps_port = self._port(636)
        self.ldap_port = self._port(389)
        self._counter = 0

    def _port(self, port):
        out = docker("port", self.container, "%d/tcp" % port).stdout.split()
        return int(next(p for p in out if p.startswith("127.0.0.1:")).rsplit(":", 1)[1])

    def url(self, tls="ldaps"):
        if tls == "ldaps":
            return "ldaps://%s:%d" % (self.host, self.ldaps_port)
        return "ldap://%s:%d" % (self.host, self.ldap_port)

    def connect(self, tls="ldaps", bind_dn=None, password=None):
        import samba  # tests/integration/samba.py

        port = self.ldaps_port if tls == "ldaps" else self.ldap_port
        return samba.connect(self.host, port, bind_dn or self.admin_dn, password or self.admin_password,
                             self.ca_file, tls=tls)

    def exec(self, *cmd, check=True):
        return docker_exec(self.container, *cmd, check=check)

    def unique(self, prefix):
        self._counter += 1
        return "%s-%s%d" % (prefix, SESSION[:4], self._counter)


def _wait_for_ldaps(samba_ad, timeout=180):
    """Until an LDAPS bind as the administrator succeeds (the DC provisions at start, ~10 s)."""
    import time

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        state = docker("inspect", "-f", "{{.State.Running}}", samba_ad.container).stdout.strip()
        if state != "true":
            logs = docker("logs", samba_ad.container, check=False).stdout
            raise RuntimeError("Samba container %s stopped:\n%s" % (samba_ad.container, logs[-4000:]))
        try:
            samba_ad.connect().unbind()
            return
        except Exception as e:  # not listening or not provisioned yet
            last = e
        time.sleep(0.5)  # readiness poll: the DC provisions itself at start
    logs = docker("logs", samba_ad.container, check=False).stdout
    raise RuntimeError("Samba AD did not answer on LDAPS within %ds (%s):\n%s" % (timeout, last, logs[-4000:]))


@pytest.fixture(scope="session")
def samba_ad(docker_container, docker_network, tmp_path_factory):
    """A Samba AD DC for the whole session, with LDAPS/StartTLS on a test CA's certificate.

    Returns a ``SambaAD`` (above). Skips when the image is missing (``make images`` builds it).
    Seed with tests/integration/samba.py, e.g.::

        conn = samba_ad.connect()
        ou = samba.ensure_ou(conn, "OU=%s,%s" % (samba_ad.unique("t"), samba_ad.base_dn))
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))
    import make_ca  # tests/harness/make_ca.py

    if docker("image", "inspect", SAMBA_IMAGE, check=False).returncode != 0:
        pytest.skip("image %s is missing: run `make images`" % SAMBA_IMAGE)
    role = "samba"
    container = "juno-it-%s-%s" % (SESSION, role)
    tls_dir = str(tmp_path_factory.mktemp("samba-tls"))
    make_ca.make_ca(tls_dir, ["127.0.0.1", "localhost", container, role, "%s.juno.test" % role])
    os.chmod(tls_dir, 0o755)
    wrong = str(tmp_path_factory.mktemp("samba-wrong-ca"))
    make_ca.make_ca(wrong, ["127.0.0.1", "localhost"], ca_name="juno.hub unrelated CA")
    docker_container(role, image=SAMBA_IMAGE, node=False, extra=[
        "--cap-add", "SYS_ADMIN",
        "-p", "127.0.0.1::636", "-p", "127.0.0.1::389",
        "-v", "%s:/etc/samba/tls:ro" % tls_dir,
        "-e", "SAMBA_REALM=%s" % SambaAD.realm, "-e", "SAMBA_DOMAIN=%s" % SambaAD.domain,
        "-e", "SAMBA_ADMIN_PASSWORD=%s" % SambaAD.admin_password,
    ])
    ad = SambaAD(container, role, docker_network, tls_dir, os.path.join(wrong, "ca.pem"))
    _wait_for_ldaps(ad)
    return ad
