# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end: AD login on hubs configured by the collection, against Samba AD, with real JupyterHub.

1. Seed the Samba AD DC (``samba_ad`` fixture): a service account, users with POSIX ids, and
   groups nested two deep for two hubs.
2. Run the ``jupyterhub`` role the way ``playbooks/hubs.yml`` runs it, in render mode, with an
   inventory whose ``juno_ad`` is that DC over LDAPS with the test CA: ``juno.hub.ad_group_info``
   resolves the groups for real and the role writes namespaces, Secrets and Helm values.
3. Start JupyterHub 5.5.0 with ldapauthenticator 2.0.2 (``jupyterhub_env``) from each hub's rendered
   ``hub`` values; the AD CA comes from the rendered ConfigMap and the bind password from the
   rendered Secret, as in the hub pod. Then log in through the login form:

   - a member of a nested allowed group logs in and gets a running server (jupyter_server, reached
     through configurable-http-proxy), which runs with the uidNumber/gidNumber from AD;
   - a user of no allowed group and a wrong password are refused;
   - a member (nested) of the admin group is an admin in the REST API, other users are not;
   - a user allowed on one hub is refused by the other hub;
   - with a CA that did not sign the DC's certificate, nobody logs in.
"""

import base64
import copy
import json
import os
import subprocess
import sys

import pytest
import requests
import yaml

import jupyterhub_env

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIND_PASSWORD = "Svc-Juno-Bind-2025!"
PASSWORDS = {"alice": "Alice-Pass-2025!", "bob": "Bob-Pass-2025!", "ted": "Ted-Pass-2025!", "carol": "Carol-Pass-2025!"}
UIDS = {"alice": 10001, "bob": 10002, "ted": 10003, "carol": 10004}
GID = 10000

PLAYBOOK = """\
---
# The hubs phase as playbooks/hubs.yml runs it, without the host checks of preflight.
- name: Hubs
  hosts: kube_control_plane[0]
  gather_facts: false
  roles:
    - role: juno.hub.jupyterhub
"""


@pytest.fixture(scope="module")
def directory(samba_ad):
    """Seed the DC; return the DNs and names the hubs use."""
    import samba  # tests/integration/samba.py

    conn = samba_ad.connect()
    top = samba.ensure_ou(conn, "OU=%s,%s" % (samba_ad.unique("hublogin"), samba_ad.base_dn))
    people = samba.ensure_ou(conn, "OU=People," + top)
    groups_ou = samba.ensure_ou(conn, "OU=Groups," + top)
    service = samba.ensure_ou(conn, "OU=Service Accounts," + top)
    svc = samba.create_user(conn, service, samba_ad.unique("svc-juno").lower(), password=BIND_PASSWORD, cn="svc-juno")
    users, logins = {}, {}
    for name, password in PASSWORDS.items():
        # sAMAccountNames must match LDAPAuthenticator's valid_username_regex: lower case.
        logins[name] = samba_ad.unique(name).lower()
        users[name] = samba.create_user(conn, people, logins[name], password=password,
                                        uid_number=UIDS[name], gid_number=GID, cn=name.capitalize())
    prefix = samba_ad.unique("g")
    g = dict((n, samba.create_group(conn, groups_ou, "%s-%s" % (prefix, n))) for n in (
        "Alpha-Students", "Alpha-Year1", "Alpha-Year1-LabA", "Alpha-TAs", "Alpha-TA-Core", "Beta-Students"))
    # alice is in Alpha-Students two levels down; ted is an Alpha admin one level down; bob is in Beta only.
    samba.add_members(conn, g["Alpha-Students"], [g["Alpha-Year1"]])
    samba.add_members(conn, g["Alpha-Year1"], [g["Alpha-Year1-LabA"]])
    samba.add_members(conn, g["Alpha-Year1-LabA"], [users["alice"]])
    samba.add_members(conn, g["Alpha-TAs"], [g["Alpha-TA-Core"]])
    samba.add_members(conn, g["Alpha-TA-Core"], [users["ted"]])
    samba.add_members(conn, g["Beta-Students"], [users["bob"]])
    conn.unbind()
    return {"top": top, "people": people, "svc": svc, "users": users, "logins": logins, "groups": g, "prefix": prefix}


@pytest.fixture(scope="module")
def rendered(samba_ad, directory, tmp_path_factory):
    """Run the role in render mode against the DC; return the rendered files of both hubs."""
    work = tmp_path_factory.mktemp("hub-login-render")
    inventory = work / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    hosts = {"all": {"children": {"k8s_cluster": {"children": {"kube_control_plane": {"hosts": {
        "cp1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    prefix = directory["prefix"]
    site = {
        "juno_apply": False,
        "juno_render_dir": str(work / "rendered"),
        "juno_kubernetes_version": "1.32.4",
        "juno_node_networks": ["10.20.0.0/24"],
        "juno_api_endpoint": {"address": "10.20.0.10", "port": 6443},
        "juno_lb_address_pool": ["10.20.0.240-10.20.0.250"],
        "juno_ad": {
            "servers": [samba_ad.host],
            "port": samba_ad.ldaps_port,
            "tls": "ldaps",
            "ca_file": samba_ad.ca_file,
            "validate_certs": True,
            "base_dn": samba_ad.base_dn,
            "user_base_dn": directory["people"],
            "bind_dn": directory["svc"],
            "bind_password": BIND_PASSWORD,
            "timeout": 10,
        },
        "juno_hubs": [
            {
                "name": "alpha",
                "hostname": "alpha.hub.example.edu",
                # by sAMAccountName: the role resolves it to its DN
                "ad": {"allowed_groups": ["%s-Alpha-Students" % prefix], "admin_groups": ["%s-Alpha-TAs" % prefix]},
                "posix_ids_from_ad": True,
                "idle_timeout": 1800,
            },
            {
                "name": "beta",
                "hostname": "beta.hub.example.edu",
                # by DN
                "ad": {"allowed_groups": [directory["groups"]["Beta-Students"]]},
            },
        ],
    }
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(site))
    (work / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
               ANSIBLE_FACT_CACHING="memory", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory), str(work / "play.yml")],
                         cwd=TOP, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    out = work / "rendered" / "hubs"
    result = {"dir": out, "log": run.stdout}
    for hub in ("alpha", "beta"):
        result[hub] = {
            "values": yaml.safe_load((out / ("juno-%s.values.yaml" % hub)).read_text()),
            "namespace": [d for d in yaml.safe_load_all((out / ("%s-namespace.yaml" % hub)).read_text()) if d],
            "secrets": [d for d in yaml.safe_load_all((out / ("%s-secrets.yaml" % hub)).read_text()) if d],
        }
    return result


def secrets_by_name(manifests):
    """{secret name: {key: decoded value}} of rendered Secrets."""
    return dict((s["metadata"]["name"], dict((k, base64.b64decode(v).decode()) for k, v in s["data"].items()))
                for s in manifests if s["kind"] == "Secret")


def hub_values_for_loopback(rendered_hub, workdir, ca_file=None):
    """The hub section of the values, with the CA path of the pod's ConfigMap mount mapped to a local file."""
    hub = copy.deepcopy(rendered_hub["values"]["hub"])
    mount = hub["extraVolumeMounts"][0]
    volume = next(v for v in hub["extraVolumes"] if v["name"] == mount["name"])
    configmap = next(d for d in rendered_hub["namespace"] if d["kind"] == "ConfigMap" and d["metadata"]["name"] == volume["configMap"]["name"])
    tls_kwargs = hub["config"]["LDAPAuthenticator"]["tls_kwargs"]
    assert tls_kwargs["ca_certs_file"] == mount["mountPath"] + "/ca.pem"
    local = os.path.join(str(workdir), "ca.pem")
    with open(local, "w") as f:
        if ca_file:
            with open(ca_file) as src:
                f.write(src.read())
        else:
            f.write(configmap["data"]["ca.pem"])
    tls_kwargs["ca_certs_file"] = local
    return hub


@pytest.fixture(scope="module")
def runtime():
    return jupyterhub_env.ensure_venv(), jupyterhub_env.ensure_chp()


def start_hub(name, rendered_hub, workdir, chp, ca_file=None):
    hub_values = hub_values_for_loopback(rendered_hub, workdir, ca_file)
    return jupyterhub_env.Hub(name, hub_values, secrets_by_name(rendered_hub["secrets"]), str(workdir), chp).start()


@pytest.fixture(scope="module")
def alpha(rendered, runtime, tmp_path_factory):
    hub = start_hub("alpha", rendered["alpha"], tmp_path_factory.mktemp("hub-alpha"), runtime[1])
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def beta(rendered, runtime, tmp_path_factory):
    hub = start_hub("beta", rendered["beta"], tmp_path_factory.mktemp("hub-beta"), runtime[1])
    yield hub
    hub.stop()


def login_ok(hub, login, password):
    """Log in through the form; fail the test unless the hub accepted the user. Returns the session."""
    session, response = hub.login(login, password)
    assert response.status_code == 302 and "jupyterhub-session-id" in session.cookies, (login, response.status_code, hub.log(60))
    return session


def login_refused(hub, login, password):
    """Log in through the form; fail the test unless the hub refused. Returns the HTTP status."""
    session, response = hub.login(login, password)
    assert response.status_code != 302 and "jupyterhub-session-id" not in session.cookies, (login, response.status_code)
    return response.status_code


# --- what the role rendered ------------------------------------------------------------------------

def test_groups_were_resolved_with_the_module(rendered, directory):
    alpha_values = rendered["alpha"]["values"]
    ldap = alpha_values["hub"]["config"]["LDAPAuthenticator"]
    assert ldap["allowed_groups"] == [directory["groups"]["Alpha-Students"]]
    assert alpha_values["custom"]["juno"]["adGroupsResolved"] is True
    # ted is a member of the admin group through a nested group
    assert alpha_values["hub"]["loadRoles"]["admin"]["users"] == [directory["logins"]["ted"]]
    beta_values = rendered["beta"]["values"]
    assert beta_values["hub"]["config"]["LDAPAuthenticator"]["allowed_groups"] == [directory["groups"]["Beta-Students"]]
    assert beta_values["hub"]["loadRoles"]["admin"]["users"] == []


def test_bind_password_only_in_the_secrets(rendered):
    for path in rendered["dir"].iterdir():
        text = path.read_text()
        assert BIND_PASSWORD not in text, path.name
        if path.name.endswith("-secrets.yaml"):
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            assert base64.b64encode(BIND_PASSWORD.encode()).decode() in text
        else:
            assert base64.b64encode(BIND_PASSWORD.encode()).decode() not in text, path.name
    assert BIND_PASSWORD not in rendered["log"]


# --- real JupyterHub -------------------------------------------------------------------------------

def test_config_is_understood_by_jupyterhub_and_ldapauthenticator(alpha, beta):
    for hub in (alpha, beta):
        unknown = [line for line in hub.log_lines if "not recognized" in line or "Unrecognized" in line]
        assert unknown == [], "\n".join(unknown)
        assert any("ldapauthenticator.ldapauthenticator.LDAPAuthenticator-2.0.2" in line for line in hub.log_lines)


def test_nested_member_logs_in_and_gets_a_server(alpha, directory):
    login = directory["logins"]["alice"]
    session = login_ok(alpha, login, PASSWORDS["alice"])
    spawn = session.get(alpha.url + "/hub/spawn", allow_redirects=False, timeout=120)
    assert spawn.status_code == 302, (spawn.status_code, alpha.log(80))
    progress = alpha.wait_ready(login)
    assert progress and progress.get("ready"), (progress, alpha.log(80))
    # The server really runs: jupyter_server serves a file of the user's home through the proxy,
    # after the OAuth round trip with the hub that the user's login session allows.
    with open(os.path.join(alpha.home(login), "hello.txt"), "w") as f:
        f.write("hello from %s\n" % login)
    served = session.get(alpha.url + "/user/%s/files/hello.txt" % login, timeout=120)
    assert served.status_code == 200 and served.text == "hello from %s\n" % login, (served.status_code, alpha.log(80))
    assert any("/hub/api/oauth2/authorize" in r.headers.get("location", "") for r in served.history)
    anonymous = requests.get(alpha.url + "/user/%s/files/hello.txt" % login, timeout=120)
    assert "/hub/login" in anonymous.url and "hello from" not in anonymous.text
    # posix_ids_from_ad: the pre_spawn_hook gave the spawner the account's uidNumber and gidNumber.
    with open(os.path.join(alpha.spawn_dir, login + ".json")) as f:
        record = json.load(f)
    assert (record["uid"], record["gid"], record["fs_gid"]) == (UIDS["alice"], GID, GID)
    model = alpha.api("GET", "/users/" + login).json()
    assert model["admin"] is False and model["servers"][""]["ready"] is True


def test_non_member_is_refused(alpha, directory):
    for user in ("bob", "carol"):
        assert login_refused(alpha, directory["logins"][user], PASSWORDS[user]) == 403
    assert alpha.api("GET", "/users/" + directory["logins"]["carol"]).status_code == 404


def test_wrong_password_is_refused(alpha, directory):
    assert login_refused(alpha, directory["logins"]["alice"], "not-" + PASSWORDS["alice"]) == 403


def test_admin_group_member_is_admin(alpha, directory):
    login = directory["logins"]["ted"]
    login_ok(alpha, login, PASSWORDS["ted"])
    assert alpha.api("GET", "/users/" + login).json()["admin"] is True
    admins = sorted(u["name"] for u in alpha.api("GET", "/users").json() if u["admin"])
    assert admins == [login]


def test_user_of_one_hub_is_refused_by_the_other(alpha, beta, directory):
    alice, bob = directory["logins"]["alice"], directory["logins"]["bob"]
    assert login_refused(beta, alice, PASSWORDS["alice"]) == 403
    login_ok(beta, bob, PASSWORDS["bob"])
    assert login_refused(alpha, bob, PASSWORDS["bob"]) == 403


def test_an_untrusted_certificate_stops_every_login(rendered, runtime, directory, samba_ad, tmp_path_factory):
    hub = start_hub("alpha-wrong-ca", rendered["alpha"], tmp_path_factory.mktemp("hub-wrong-ca"), runtime[1], ca_file=samba_ad.wrong_ca_file)
    try:
        assert login_refused(hub, directory["logins"]["alice"], PASSWORDS["alice"]) >= 400
        assert hub.wait_for_log("CERTIFICATE_VERIFY_FAILED"), hub.log(40)
    finally:
        hub.stop()
