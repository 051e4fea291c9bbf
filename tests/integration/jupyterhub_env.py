# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real JupyterHub on loopback, configured from the Helm values the collection renders.

Used by test_hub_login.py. What runs:

- JupyterHub 5.5.0 with jupyterhub-ldapauthenticator 2.0.2 (the versions of the chart's hub
  image), in a virtualenv of its own under ``.cache/`` that ``ensure_venv`` creates with pip;
- configurable-http-proxy 5.2.0 (the chart's proxy image) from npm, installed under ``.cache/``
  by ``ensure_chp``;
- a local spawner that really starts ``jupyterhub-singleuser`` (jupyter_server) and records the
  uid/gid a pre_spawn_hook gave it.

``hub_config_py`` turns the ``hub`` section of rendered values into a jupyterhub_config.py that
does with them what the chart's own jupyterhub_config.py does (hub.config applied class by class,
hub.loadRoles appended to JupyterHub.load_roles, hub.extraConfig executed in key order, environment
from hub.extraEnv), then replaces only what Kubernetes provides: spawner, proxy, addresses, paths.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(TOP, ".cache")
VENV = os.path.join(CACHE, "jupyterhub-5.5.0-venv")
CHP_DIR = os.path.join(CACHE, "chp-5.2.0")
REQUIREMENTS = [
    "jupyterhub==5.5.0",
    "jupyterhub-ldapauthenticator==2.0.2",
    "ldap3==2.9.1",
    "jupyter_server==2.17.0",
]
CHP_PACKAGE = "configurable-http-proxy@5.2.0"

SPAWNER_MODULE = '''\
"""Local spawner of the juno.hub end-to-end test: starts jupyterhub-singleuser, records its identity."""
import json
import os

from jupyterhub.spawner import SimpleLocalProcessSpawner


class RecordingSpawner(SimpleLocalProcessSpawner):
    async def start(self):
        record = {name: getattr(self, name, None) for name in ("uid", "gid", "fs_gid")}
        record["user"] = self.user.name
        path = os.path.join(os.environ["JUNO_TEST_SPAWN_DIR"], self.user.name + ".json")
        with open(path, "w") as f:
            json.dump(record, f)
        return await super().start()
'''

CONFIG_TEMPLATE = '''\
# jupyterhub_config.py of the juno.hub end-to-end test, generated from rendered Helm values.
import json
import os
import sys

c = get_config()  # noqa: F821
hub = json.loads(%(hub_json)r)

# --- what the chart's jupyterhub_config.py does with the values -------------------------------
c.JupyterHub.load_roles = []
for _app, _cfg in hub.get("config", {}).items():
    if _app == "JupyterHub":
        for _key in ("proxy_auth_token", "cookie_secret", "services"):
            _cfg.pop(_key, None)
    c[_app].update(_cfg)
for _name, _role in hub.get("loadRoles", {}).items():
    _role.setdefault("name", _name)
    c.JupyterHub.load_roles.append(_role)
for _key, _code in sorted(hub.get("extraConfig", {}).items()):
    exec(_code)

# --- what Kubernetes provides in the cluster, replaced for loopback -----------------------------
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = %(port)d
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = %(hub_port)d
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%(proxy_api_port)d"
c.ConfigurableHTTPProxy.command = [%(chp)r]
c.ConfigurableHTTPProxy.auth_token = %(proxy_token)r
c.JupyterHub.db_url = "sqlite:///" + %(db)r
c.JupyterHub.cookie_secret = bytes.fromhex(%(cookie_secret)r)
c.JupyterHub.pid_file = %(pid_file)r
c.JupyterHub.cleanup_servers = True
sys.path.insert(0, %(spawner_dir)r)
c.JupyterHub.spawner_class = "juno_test_spawner.RecordingSpawner"
c.RecordingSpawner.home_dir_template = %(homes)r + "/{username}"
c.Spawner.cmd = [%(singleuser)r]
if os.geteuid() == 0:  # CI containers run the tests as root; jupyter_server refuses that by default
    c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# The test's own API client (a service with a token), like an operator's admin token.
c.JupyterHub.services = [{"name": "juno-test", "api_token": %(api_token)r}]
c.JupyterHub.load_roles.append(
    {"name": "juno-test", "scopes": ["list:users", "read:users", "admin:servers", "read:servers"], "services": ["juno-test"]}
)
'''


def python_bin(name="python"):
    return os.path.join(VENV, "bin", name)


def ensure_venv():
    """The JupyterHub virtualenv (created with pip when missing or made for other requirements)."""
    marker = os.path.join(VENV, ".juno-requirements")
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read() == wanted:
                return VENV
    if os.path.exists(VENV):
        shutil.rmtree(VENV)
    os.makedirs(CACHE, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([python_bin(), "-m", "pip", "install", "-q"] + REQUIREMENTS, check=True, timeout=1200)
    with open(marker, "w") as f:
        f.write(wanted)
    return VENV


def ensure_chp():
    """Path of configurable-http-proxy from npm (installed under .cache when missing)."""
    binary = os.path.join(CHP_DIR, "node_modules", ".bin", "configurable-http-proxy")
    if not os.path.exists(binary):
        if not shutil.which("npm"):
            raise RuntimeError("npm is needed to install %s (apt-get install npm)" % CHP_PACKAGE)
        os.makedirs(CHP_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", CHP_DIR, "--no-audit", "--no-fund", CHP_PACKAGE],
                       check=True, timeout=1200, capture_output=True)
    return binary


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_config_py(hub_values, workdir, chp, api_token):
    """jupyterhub_config.py for the ``hub`` section of rendered values; returns (text, ports)."""
    ports = {"port": free_port(), "hub_port": free_port(), "proxy_api_port": free_port()}
    spawner_dir = os.path.join(workdir, "spawner")
    os.makedirs(spawner_dir, exist_ok=True)
    with open(os.path.join(spawner_dir, "juno_test_spawner.py"), "w") as f:
        f.write(SPAWNER_MODULE)
    text = CONFIG_TEMPLATE % dict(
        ports,
        hub_json=json.dumps(hub_values),
        chp=chp,
        proxy_token=secrets.token_hex(32),
        db=os.path.join(workdir, "jupyterhub.sqlite"),
        cookie_secret=secrets.token_hex(32),
        pid_file=os.path.join(workdir, "jupyterhub.pid"),
        spawner_dir=spawner_dir,
        homes=os.path.join(workdir, "homes"),
        singleuser=python_bin("jupyterhub-singleuser"),
        api_token=api_token,
    )
    return text, ports


def hub_environment(hub_values, secrets_by_name):
    """Environment of the hub process from hub.extraEnv (secretKeyRef values looked up in rendered Secrets)."""
    env = {}
    extra = hub_values.get("extraEnv") or {}
    items = extra.items() if isinstance(extra, dict) else ((e["name"], e) for e in extra)
    for name, spec in items:
        if isinstance(spec, dict) and "valueFrom" in spec:
            ref = spec["valueFrom"]["secretKeyRef"]
            env[name] = secrets_by_name[ref["name"]][ref["key"]]
        elif isinstance(spec, dict):
            env[name] = str(spec.get("value", ""))
        else:
            env[name] = str(spec)
    return env


class Hub:
    """A running JupyterHub; ``start`` returns when it logs that it is running."""

    READY = re.compile(r"JupyterHub is now running at")

    def __init__(self, name, hub_values, secrets_by_name, workdir, chp):
        self.name = name
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.api_token = secrets.token_hex(32)
        config, self.ports = hub_config_py(hub_values, workdir, chp, self.api_token)
        self.config_file = os.path.join(workdir, "jupyterhub_config.py")
        with open(self.config_file, "w") as f:
            f.write(config)
        self.spawn_dir = os.path.join(workdir, "spawns")
        os.makedirs(self.spawn_dir, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(hub_environment(hub_values, secrets_by_name))
        self.env["JUNO_TEST_SPAWN_DIR"] = self.spawn_dir
        self.env["JUPYTERHUB_CRYPT_KEY"] = secrets.token_hex(32)
        self.env["PATH"] = os.path.join(VENV, "bin") + os.pathsep + os.path.dirname(chp) + os.pathsep + self.env.get("PATH", "")
        self.log_lines = []
        self.proc = None
        self._ready = threading.Event()
        self._logged = threading.Condition()

    def home(self, username):
        """The home directory the local spawner gives a user."""
        return os.path.join(self.workdir, "homes", username)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.ports["port"]

    def _read(self):
        for line in self.proc.stdout:
            with self._logged:
                self.log_lines.append(line.rstrip("\n"))
                self._logged.notify_all()
            if self.READY.search(line):
                self._ready.set()
        self._ready.set()  # the process ended: stop waiting
        with self._logged:
            self._logged.notify_all()

    def wait_for_log(self, text, timeout=60):
        """Whether a log line containing ``text`` appears within ``timeout`` seconds."""
        with self._logged:
            return self._logged.wait_for(
                lambda: any(text in line for line in self.log_lines) or (self.proc is not None and self.proc.poll() is not None),
                timeout,
            ) and any(text in line for line in self.log_lines)

    def start(self, timeout=180):
        self.proc = subprocess.Popen(
            [python_bin("jupyterhub"), "-f", self.config_file, "--debug"],
            cwd=self.workdir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            raise RuntimeError("JupyterHub %s did not start:\n%s" % (self.name, self.log()))
        return self

    def log(self, last=200):
        return "\n".join(self.log_lines[-last:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    # --- HTTP ---------------------------------------------------------------------------------

    def api(self, method, path, **kwargs):
        import requests

        headers = {"Authorization": "token %s" % self.api_token}
        return requests.request(method, self.url + "/hub/api" + path, headers=headers, timeout=60, **kwargs)

    def login(self, username, password):
        """Log in through the login form; returns (requests.Session, response of the POST)."""
        import requests

        session = requests.Session()
        page = session.get(self.url + "/hub/login", timeout=60)
        page.raise_for_status()
        xsrf = session.cookies.get("_xsrf")
        response = session.post(
            self.url + "/hub/login?next=",
            data={"username": username, "password": password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=120,
        )
        return session, response

    def wait_ready(self, username, timeout=180):
        """Follow the server's spawn progress (an event stream) until it is ready or failed."""
        deadline = time.monotonic() + timeout
        response = self.api("GET", "/users/%s/server/progress" % username, stream=True)
        response.raise_for_status()
        last = None
        for line in response.iter_lines(decode_unicode=True):
            if time.monotonic() > deadline:
                break
            if line and line.startswith("data:"):
                last = json.loads(line[5:])
                if last.get("ready") or last.get("failed"):
                    break
        response.close()
        return last
