# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.ad_group_info against a real Samba AD DC (the ``samba_ad`` fixture).

Most cases run the module the way Ansible does (ad hoc or ansible-playbook, JSON callback), so
the real module path, argument handling and no_log masking are exercised; a few call
plugins/module_utils/_ad.py directly where they need an internal knob (bounded ranges) or a
round-trip count that Ansible's output would only repeat.

The directory built for this module (in its own OU, so other tests' data does not interfere):
  Top  > Mid > Low            three levels; Top: carol, Mid: bob, Low: alice, erin, dave (disabled)
  Big                          2,500 direct members (big00000 ... big02499)
  CycA <> CycB                 contain each other; CycA: alice, CycB: bob
  "Doe, Lab (Chem)"            a group whose CN has a comma and parentheses; member erin
erin's CN is "Doe, Erin (Chem)".
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

import pytest

import samba

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, ".collections"))

from ansible_collections.juno.hub.plugins.module_utils import _ad  # noqa: E402  (needs the path above)

BIG = 2500
TIMEOUT = 120  # seconds per LDAP response: the machine running the tests may be busy


# ------------------------------------------------------------------------------------------
# Running the module through Ansible
# ------------------------------------------------------------------------------------------

def _ansible_env(json_output=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_HOST_KEY_CHECKING="false")
    if json_output:
        env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    return env


def _tool(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    return path if os.path.exists(path) else shutil.which(name)


def _vars_file(tmp_path, password):
    path = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:8])
    path.write_text(json.dumps({"ad_password": password}))
    return str(path)


def adhoc(tmp_path, args, password, verbosity=0, json_output=True):
    """``ansible localhost -m juno.hub.ad_group_info -a <json>``; the password comes from an
    extra-vars file (as it would from Vault), never from the command line."""
    args = dict(args, bind_password="{{ ad_password }}")
    cmd = [_tool("ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "@" + _vars_file(tmp_path, password),
           "-m", "juno.hub.ad_group_info", "-a", json.dumps(args)]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    proc = subprocess.run(cmd, env=_ansible_env(json_output), cwd=TOP, capture_output=True, text=True,
                          timeout=900, check=False)
    if not json_output:
        return proc
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail("no JSON result from ansible (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return result


def playbook(tmp_path, tasks, password, check=False, verbosity=0, json_output=True):
    """Run ``tasks`` (YAML text, indented for a play's task list) on localhost; returns the
    CompletedProcess and, with the JSON callback, the list of task results."""
    play = tmp_path / ("play-%s.yml" % uuid.uuid4().hex[:8])
    play.write_text("- name: ad_group_info\n  hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks)
    cmd = [_tool("ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "@" + _vars_file(tmp_path, password), str(play)]
    if check:
        cmd.append("--check")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    proc = subprocess.run(cmd, env=_ansible_env(json_output), cwd=TOP, capture_output=True, text=True,
                          timeout=900, check=False)
    if not json_output:
        return proc, None
    data = json.loads(proc.stdout)
    return proc, [t["hosts"]["localhost"] for t in data["plays"][0]["tasks"]]


# ------------------------------------------------------------------------------------------
# The directory for these tests
# ------------------------------------------------------------------------------------------

class Data:
    pass


@pytest.fixture(scope="module")
def ad(samba_ad):
    conn = samba_ad.connect()
    d = Data()
    d.samba = samba_ad
    d.ou = samba.ensure_ou(conn, "OU=%s,%s" % (samba_ad.unique("adgi"), samba_ad.base_dn))
    people = samba.ensure_ou(conn, "OU=People," + d.ou)
    groups = samba.ensure_ou(conn, "OU=Groups," + d.ou)
    d.tag = d.ou.split(",")[0][3:]
    realm = samba_ad.realm.lower()

    def user(name, uid, **kw):
        sam = "%s-%s" % (d.tag, name)
        return samba.create_user(conn, people, sam, uid_number=uid, gid_number=10000, mail="%s@%s" % (name, realm),
                                 upn="%s@%s" % (sam, realm), **kw)

    d.sam = lambda name: "%s-%s" % (d.tag, name)
    d.alice = user("alice", 10001, display_name="Alice Example")
    d.bob = user("bob", 10002)
    d.carol = user("carol", 10003)
    d.dave = user("dave", 10004)
    samba.disable_user(conn, d.dave)
    d.erin = user("erin", 10005, cn="Doe, Erin (Chem)")
    d.svc_password = "Svc-%s-Pw1!" % uuid.uuid4().hex[:12]
    d.svc = user("svc", 10099, password=d.svc_password)

    def group(name, **kw):
        return samba.create_group(conn, groups, "%s-%s" % (d.tag, name), **kw)

    d.gname = lambda name: "%s-%s" % (d.tag, name)
    d.top, d.mid, d.low = group("Top"), group("Mid"), group("Low")
    samba.add_members(conn, d.top, [d.carol, d.mid])
    samba.add_members(conn, d.mid, [d.bob, d.low])
    samba.add_members(conn, d.low, [d.alice, d.erin, d.dave])
    d.cyc_a, d.cyc_b = group("CycA"), group("CycB")
    samba.add_members(conn, d.cyc_a, [d.alice, d.cyc_b])
    samba.add_members(conn, d.cyc_b, [d.bob, d.cyc_a])
    d.lab = group("Lab", cn="Doe, Lab (Chem) %s" % d.tag)
    samba.add_members(conn, d.lab, [d.erin])
    big_ou = samba.ensure_ou(conn, "OU=Big," + d.ou)
    d.big_users = samba.add_users(conn, (dict(ou_dn=big_ou, sam="%s-b%05d" % (d.tag, i), uid_number=200000 + i,
                                              gid_number=10000) for i in range(BIG)))
    d.big = group("Big")
    samba.add_members(conn, d.big, d.big_users)
    conn.unbind()
    return d


def base_args(ad, **kw):
    args = {
        "servers": ["127.0.0.1:%d" % ad.samba.ldaps_port],
        "ca_file": ad.samba.ca_file,
        "bind_dn": ad.samba.admin_dn,
        "base_dn": ad.samba.base_dn,
        "timeout": TIMEOUT,
    }
    args.update(kw)
    return args


def names(members):
    return sorted(m["sAMAccountName"] for m in members)


def free_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------------------
# Membership
# ------------------------------------------------------------------------------------------

def test_nested_three_levels(ad, tmp_path):
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Top")]), ad.samba.admin_password)
    assert r.get("failed") is not True, r
    assert r["changed"] is False
    (g,) = r["groups"]
    assert g["dn"].lower() == ad.top.lower()
    assert names(g["members"]) == sorted(ad.sam(n) for n in ("alice", "bob", "carol", "erin"))
    assert g["member_count"] == 4 and g["disabled_count"] == 1
    assert sorted(x.lower() for x in g["nested_groups"]) == sorted([ad.mid.lower(), ad.low.lower()])
    alice = next(m for m in g["members"] if m["sAMAccountName"] == ad.sam("alice"))
    assert alice["uidNumber"] == 10001 and alice["gidNumber"] == 10000  # integers, for POSIX ids
    assert alice["displayName"] == "Alice Example"
    assert alice["userPrincipalName"] == "%s@%s" % (ad.sam("alice"), ad.samba.realm.lower())
    assert alice["disabled"] is False
    assert [m["dn"] for m in r["members"]] == [m["dn"] for m in g["members"]]
    # bind, base DN check, group lookup, nested groups, members: a handful, not one per member
    assert r["round_trips"] <= 6, r["round_trips"]


def test_include_disabled_and_direct_only(ad, tmp_path):
    results = playbook(tmp_path, """
    - name: Everyone, disabled accounts too
      juno.hub.ad_group_info:
        servers: ["127.0.0.1:{port}"]
        ca_file: {ca}
        bind_dn: "{admin}"
        bind_password: "{{{{ ad_password }}}}"
        base_dn: "{base}"
        groups: ["{top}"]
        include_disabled: true
        timeout: {timeout}
    - name: Direct members only
      juno.hub.ad_group_info:
        servers: ["127.0.0.1:{port}"]
        ca_file: {ca}
        bind_dn: "{admin}"
        bind_password: "{{{{ ad_password }}}}"
        base_dn: "{base}"
        groups: ["{top}"]
        nested: false
        timeout: {timeout}
""".format(port=ad.samba.ldaps_port, ca=ad.samba.ca_file, admin=ad.samba.admin_dn, base=ad.samba.base_dn,
           top=ad.gname("Top"), timeout=TIMEOUT), ad.samba.admin_password)[1]
    everyone, direct = results
    assert everyone.get("failed") is not True, everyone
    members = everyone["groups"][0]["members"]
    assert names(members) == sorted(ad.sam(n) for n in ("alice", "bob", "carol", "dave", "erin"))
    assert [m["disabled"] for m in members if m["sAMAccountName"] == ad.sam("dave")] == [True]
    assert direct.get("failed") is not True, direct
    g = direct["groups"][0]
    assert names(g["members"]) == [ad.sam("carol")]
    assert [x.lower() for x in g["other_members"]] == [ad.mid.lower()]
    assert g["direct_member_values"] == 2 and g["nested_groups"] == []


def test_cycle_does_not_loop(ad, tmp_path):
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("CycA"), ad.gname("CycB")]), ad.samba.admin_password)
    assert r.get("failed") is not True, r
    a, b = r["groups"]
    assert names(a["members"]) == names(b["members"]) == sorted([ad.sam("alice"), ad.sam("bob")])
    assert [x.lower() for x in a["nested_groups"]] == [ad.cyc_b.lower()]
    assert [x.lower() for x in b["nested_groups"]] == [ad.cyc_a.lower()]
    assert names(r["members"]) == sorted([ad.sam("alice"), ad.sam("bob")])


def test_comma_and_parentheses(ad, tmp_path):
    """A user CN "Doe, Erin (Chem)" and a group "Doe, Lab (Chem) ..." named by its DN."""
    r = adhoc(tmp_path, base_args(ad, groups=[ad.lab, ad.gname("Low")]), ad.samba.admin_password)
    assert r.get("failed") is not True, r
    lab, low = r["groups"]
    assert lab["name"] == ad.lab and lab["dn"].lower() == ad.lab.lower()
    assert names(lab["members"]) == [ad.sam("erin")]
    erin = lab["members"][0]
    assert erin["dn"].startswith("CN=Doe\\, Erin (Chem),")
    assert _ad.rdn_value(erin["dn"]) == "Doe, Erin (Chem)"
    assert erin["displayName"] == "Doe, Erin (Chem)"
    assert ad.sam("erin") in names(low["members"])


def test_large_group_nested_and_ranged(ad, tmp_path):
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Big")], page_size=1000), ad.samba.admin_password)
    assert r.get("failed") is not True, r
    g = r["groups"][0]
    assert g["member_count"] == BIG
    assert names(g["members"]) == sorted("%s-b%05d" % (ad.tag, i) for i in range(BIG))
    assert sorted(m["uidNumber"] for m in g["members"]) == list(range(200000, 200000 + BIG))
    # find the group, nested groups (1 page), 3 pages of 1000 members
    assert g["round_trips"] <= 5, g["round_trips"]

    direct = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Big")], nested=False), ad.samba.admin_password)
    assert direct.get("failed") is not True, direct
    assert direct["groups"][0]["member_count"] == BIG
    assert direct["groups"][0]["direct_member_values"] == BIG


def test_ranged_retrieval_continues(ad):
    """Bounded ranges (as a Windows DC with MaxValRange 1500 answers) are followed to the end."""
    s = ad.samba
    directory = _ad.connect(["127.0.0.1:%d" % s.ldaps_port], s.admin_dn, s.admin_password, ca_file=s.ca_file,
                            timeout=TIMEOUT)[0]
    try:
        before = directory.round_trips
        info = _ad.resolve_members(directory, s.base_dn, ad.big, ["sAMAccountName"], nested=False,
                                   page_size=1000, range_window=1000)
    finally:
        directory.close()
    assert info["direct_member_values"] == BIG and info["member_count"] == BIG
    # ranges 0-999, 1000-1999, 2000-2999 (the last comes back as 2000-*), then 3 pages of accounts
    assert info["round_trips"] == directory.round_trips - before == 6


def test_attribute_conversion(ad, tmp_path):
    attributes = ["sAMAccountName", "objectSid", "objectGUID", "memberOf", "uidnumber", "telephoneNumber"]
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Low")], attributes=attributes), ad.samba.admin_password)
    assert r.get("failed") is not True, r
    alice = next(m for m in r["groups"][0]["members"] if m["sAMAccountName"] == ad.sam("alice"))
    assert alice["objectSid"].startswith("S-1-5-21-")
    assert str(uuid.UUID(alice["objectGUID"])) == alice["objectGUID"]
    assert [x.lower() for x in alice["memberOf"]] == [ad.low.lower()] or ad.low.lower() in [x.lower() for x in alice["memberOf"]]
    assert alice["uidnumber"] == 10001  # key spelled as requested
    assert alice["telephoneNumber"] is None


def test_check_mode_and_service_account(ad, tmp_path):
    """A normal account can bind (by UPN) and read; --check runs the same and changes nothing."""
    proc, results = playbook(tmp_path, """
    - name: Resolve as the service account
      juno.hub.ad_group_info:
        servers: ["localhost:{port}"]
        ca_file: {ca}
        bind_dn: "{upn}"
        bind_password: "{{{{ ad_password }}}}"
        base_dn: "{base}"
        groups: ["{top}", "{cyc}"]
        timeout: {timeout}
      register: __groups
    - name: Check what the result says
      ansible.builtin.assert:
        that:
          - __groups is not changed
          - __groups.members | length == 4
          - (__groups.groups | map(attribute='member_count') | list) == [4, 2]
""".format(port=ad.samba.ldaps_port, ca=ad.samba.ca_file, upn="%s@%s" % (ad.sam("svc"), ad.samba.realm.lower()),
           base=ad.samba.base_dn, top=ad.gname("Top"), cyc=ad.gname("CycA"), timeout=TIMEOUT),
        ad.svc_password, check=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert results[0]["changed"] is False
    data = json.loads(proc.stdout)
    assert data["stats"]["localhost"]["changed"] == 0 and data["stats"]["localhost"]["failures"] == 0


# ------------------------------------------------------------------------------------------
# TLS and failover
# ------------------------------------------------------------------------------------------

def test_ldaps_with_a_ca_that_did_not_sign(ad, tmp_path):
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Top")], ca_file=ad.samba.wrong_ca_file), ad.samba.admin_password)
    assert r.get("failed") is True
    assert r["error_kind"] == "tls"
    assert "ldaps://127.0.0.1:%d" % ad.samba.ldaps_port in r["msg"]
    assert "certificate verif" in r["msg"] and "unable to get local issuer certificate" in r["msg"], r["msg"]
    assert ad.samba.wrong_ca_file in r["msg"]
    assert r["msg"].startswith("cannot connect to ldaps://127.0.0.1:%d as %r: TLS certificate verification failed"
                               % (ad.samba.ldaps_port, ad.samba.admin_dn)), r["msg"]


def test_hostname_not_in_certificate(ad):
    """The certificate names 127.0.0.1 and localhost; 127.1 is the same address under a name it
    does not carry, so the host name check must refuse it (ldap3's own matching is not used)."""
    s = ad.samba
    with pytest.raises(_ad.ADError) as e:
        _ad.connect(["127.1:%d" % s.ldaps_port], s.admin_dn, s.admin_password, ca_file=s.ca_file, timeout=TIMEOUT)
    assert e.value.kind == "tls"
    assert "certificate is not valid for '127.1'" in str(e.value), str(e.value)


def test_starttls(ad, tmp_path):
    args = base_args(ad, servers=["127.0.0.1:%d" % ad.samba.ldap_port], tls="starttls", groups=[ad.gname("Mid")])
    r = adhoc(tmp_path, args, ad.samba.admin_password)
    assert r.get("failed") is not True, r
    assert r["server"] == "ldap://127.0.0.1:%d (StartTLS)" % ad.samba.ldap_port
    assert names(r["groups"][0]["members"]) == sorted(ad.sam(n) for n in ("alice", "bob", "erin"))
    bad = adhoc(tmp_path, dict(args, ca_file=ad.samba.wrong_ca_file), ad.samba.admin_password)
    assert bad.get("failed") is True and bad["error_kind"] == "tls", bad
    assert "unable to get local issuer certificate" in bad["msg"]


def test_plain_ldap_needs_insecure_and_is_refused_by_ad(ad, tmp_path):
    args = base_args(ad, servers=["127.0.0.1:%d" % ad.samba.ldap_port], tls="none", groups=[ad.gname("Mid")])
    r = adhoc(tmp_path, args, ad.samba.admin_password)
    assert r.get("failed") is True and r["error_kind"] == "config"
    assert "insecure: true" in r["msg"]
    # allowed with insecure: true, but the DC (like Windows with LDAP signing) refuses a clear-text bind
    r = adhoc(tmp_path, dict(args, insecure=True), ad.samba.admin_password)
    assert r.get("failed") is True and r["error_kind"] == "auth", r
    assert "strongerAuthRequired" in r["msg"]


def test_failover_from_a_dead_address(ad, tmp_path):
    dead = free_port()
    r = adhoc(tmp_path, base_args(ad, servers=["127.0.0.1:%d" % dead, "localhost:%d" % ad.samba.ldaps_port],
                                  groups=[ad.gname("Low")]), ad.samba.admin_password)
    assert r.get("failed") is not True, r
    assert r["server"] == "ldaps://localhost:%d" % ad.samba.ldaps_port
    assert r["skipped_servers"] == [{"server": "ldaps://127.0.0.1:%d" % dead, "error": "connection refused"}]
    assert "AD server ldaps://127.0.0.1:%d was passed over: connection refused" % dead in json.dumps(r.get("warnings")), r
    assert names(r["groups"][0]["members"]) == sorted(ad.sam(n) for n in ("alice", "erin"))


def test_all_servers_unreachable(ad, tmp_path):
    dead1, dead2 = free_port(), free_port()
    r = adhoc(tmp_path, base_args(ad, servers=["127.0.0.1:%d" % dead1, "127.0.0.1:%d" % dead2], groups=["x"]),
              ad.samba.admin_password)
    assert r.get("failed") is True and r["error_kind"] == "connect"
    assert "ldaps://127.0.0.1:%d: connection refused" % dead1 in r["msg"]
    assert "ldaps://127.0.0.1:%d: connection refused" % dead2 in r["msg"]
    assert ad.samba.admin_dn in r["msg"]


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------

def test_missing_groups_are_listed(ad, tmp_path):
    missing_dn = "CN=No Such Group,OU=Groups," + ad.ou
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Top"), "No-Such-Group", missing_dn]), ad.samba.admin_password)
    assert r.get("failed") is True and r["error_kind"] == "missing_group"
    assert r["missing_groups"] == ["No-Such-Group", missing_dn]
    assert "'No-Such-Group'" in r["msg"] and missing_dn in r["msg"]
    assert "ldaps://127.0.0.1:%d (searching as %r)" % (ad.samba.ldaps_port, ad.samba.admin_dn) in r["msg"]


def test_base_dn_that_does_not_exist(ad, tmp_path):
    r = adhoc(tmp_path, base_args(ad, base_dn="OU=Nowhere," + ad.samba.base_dn, groups=[ad.gname("Top")]),
              ad.samba.admin_password)
    assert r.get("failed") is True and r["error_kind"] == "base_dn"
    assert "OU=Nowhere,%s" % ad.samba.base_dn in r["msg"] and "does not exist" in r["msg"]
    assert ad.samba.admin_dn in r["msg"] and r["missing_base_dn"] == "OU=Nowhere," + ad.samba.base_dn


def test_wrong_password(ad, tmp_path):
    wrong = "Wrong-%s!" % uuid.uuid4().hex
    r = adhoc(tmp_path, base_args(ad, groups=[ad.gname("Top")]), wrong)
    assert r.get("failed") is True and r["error_kind"] == "auth"
    assert r["msg"] == "cannot bind to ldaps://127.0.0.1:%d as %r: invalid credentials" % (ad.samba.ldaps_port, ad.samba.admin_dn)
    assert wrong not in json.dumps(r)


@pytest.mark.parametrize("case", ["wrong", "right"])
def test_vvv_never_prints_the_password(ad, tmp_path, case):
    """ansible -vvv and ansible-playbook -vvv, failing and succeeding: the password is nowhere."""
    password = ad.svc_password if case == "right" else "Not-%s-Pw!" % uuid.uuid4().hex[:10]
    args = base_args(ad, bind_dn="%s@%s" % (ad.sam("svc"), ad.samba.realm.lower()), groups=[ad.gname("Mid")])
    proc = adhoc(tmp_path, args, password, verbosity=3, json_output=False)
    out = proc.stdout + proc.stderr
    assert (proc.returncode == 0) == (case == "right"), out[-3000:]
    assert "invocation" in out  # -vvv shows the module arguments...
    assert password not in out  # ...but never the password
    pproc = playbook(tmp_path, """
    - name: Resolve
      juno.hub.ad_group_info:
        servers: ["127.0.0.1:{port}"]
        ca_file: {ca}
        bind_dn: "{bind}"
        bind_password: "{{{{ ad_password }}}}"
        base_dn: "{base}"
        groups: ["{group}"]
        timeout: {timeout}
""".format(port=ad.samba.ldaps_port, ca=ad.samba.ca_file, bind=args["bind_dn"], base=ad.samba.base_dn,
           group=ad.gname("Mid"), timeout=TIMEOUT), password, verbosity=3, json_output=False)[0]
    out = pproc.stdout + pproc.stderr
    assert (pproc.returncode == 0) == (case == "right"), out[-3000:]
    assert password not in out
