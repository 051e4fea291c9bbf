"""preflight.yml against deliberately broken inventories: it fails, lists every planted problem
once, in one report grouped by place (the site, each hub, each node), and changes nothing
(changed=0 everywhere, the render directory is never created). `broken` plants inventory-level
problems; `broken_roles` plants problems only the roles' own checks find, which preflight.yml
run alone (every phase) must find too."""

import os
import re
import subprocess
import textwrap

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(TOP, "tests", "integration", "inventories", "broken")
ROLES_INVENTORY = os.path.join(TOP, "tests", "integration", "inventories", "broken_roles")
REPORT_TASK = "Preflight | every problem of the site, the hubs and the nodes"

PLANTED = [
    # types and unknown keys (validate_argument_spec)
    r"juno_ad\.bogus_option",
    r"port.*not-a-port|not-a-port.*port",
    # relations (juno.hub.site_problems)
    r"juno_kubernetes_version 1\.31\.2 is older than the oldest supported",
    r"group kube_control_plane has 2 hosts",
    r"same node name 'w1'",
    r"same address 10\.30\.0\.21",
    r"juno_pod_cidr 10\.244\.0\.0/16 and juno_service_cidr 10\.240\.0\.0/12 overlap",
    r"node w3\.broken\.test:\n(\s+- .*\n)*?\s+- its address 10\.244\.3\.3 lies inside juno_pod_cidr",
    r"juno_api_endpoint\.address 10\.30\.0\.205 lies in juno_lb_address_pool",
    r"hub Chem_Eng:\n\s+- name 'Chem_Eng' is not a valid hub name",
    r"hub physics:\n(\s+- .*\n)*?\s+- hostname 'chem\.broken\.test' is the hostname of hub Chem_Eng too",
    r"hub physics:\n(\s+- .*\n)*?\s+- ad\.allowed_groups is empty",
    r"hub bio:\n(\s+- .*\n)*?\s+- namespace 'hub-physics' is the namespace of hub physics too",
    r"hub bio:\n(\s+- .*\n)*?\s+- lb_address 10\.30\.0\.99 is outside juno_lb_address_pool",
    r"juno_ad\.tls is 'none'",
    r"juno_ad\.servers\[0\] 'ldap://dc1\.broken\.test' uses plain LDAP",
    # host checks
    r"nodes w1\.broken\.test, w1\.other\.test, w3\.broken\.test:\n\s+- \d+ MB of memory, less than the 100000000 MB",
]

# Problems only the roles' own checks (roles/*/tasks/preflight.yml) find, one or more of each
# class: a DN with an empty RDN (site and hub), a file missing on the control node, a URL without
# a scheme, a quantity with a wrong unit, a limit below its guarantee, no_root_squash without its
# allow flag, a duration without a unit, a required hub key missing (named by its hub).
ROLE_PLANTED = [
    r"site:\n(\s+- .*\n)*?\s+- juno_ad\.base_dn 'DC=roles,,DC=test' is not a distinguished name .*empty RDN",
    r"juno_ad\.ca_file /nonexistent/juno-ad-ca\.pem does not exist on the control node",
    r"juno_elasticsearch_hosts\[0\] 'es1\.roles\.test:9200' is not a URL .*no scheme",
    r"control_plane_node_monitor_grace_period '50' is not a Go duration",
    r"hub chemeng:\n(\s+- .*\n)*?\s+- ad\.allowed_groups entry 'CN=chem-students,,OU=Groups,DC=roles,DC=test' is\s+not a distinguished name",
    r"hub chemeng:\n(\s+- .*\n)*?\s+- storage\.capacity '10GB' is not a memory quantity",
    r"hub chemeng:\n(\s+- .*\n)*?\s+- storage\.no_root_squash is true: .*\s+.*nfs_server_allow_no_root_squash",
    r"hub chemeng:\n(\s+- .*\n)*?\s+- profile 'Big memory' \(big-memory\): mem_guarantee 8G is more than\s+mem_limit 4G",
    r"hub physics:\n(\s+- .*\n)*?\s+- missing required arguments: allowed_groups found in ad",
    r"hub chemeng:\n(\s+- .*\n)*?\s+- profile 'GPU notebook' \(gpu-notebook\): argument 'gpu' is of type str",
]


def run_preflight(*extra, inventory=INVENTORY, playbook="preflight.yml"):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FACT_CACHING="memory")
    return subprocess.run(
        [os.path.join(TOP, ".venv", "bin", "ansible-playbook"), "-i", inventory,
         playbook if os.path.isabs(playbook) else os.path.join(TOP, "playbooks", playbook), *extra],
        cwd=TOP, env=env, capture_output=True, text=True, timeout=600, check=False)


def report(out):
    """The one report: the failed task's message, which the YAML result format prints as a block."""
    m = re.search(r"^fatal: \[[^\]]+\]: FAILED! => *\n(?:[ \t]+.*\n)*?([ \t]+)msg: \|-\n((?:\1[ \t]+.*\n)+)", out, re.M)
    assert m, out
    return textwrap.dedent(m.group(2))


def failed_hosts(out):
    return re.findall(r"^fatal: \[([^\]]+)\]: FAILED!", out, re.M)


def unchanged(out):
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", out, re.M)
    return bool(recap) and all(changed == "0" for host, changed in recap)


def test_broken_inventory_fails_with_every_problem_and_changes_nothing():
    r = run_preflight()
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    text = report(r.stdout)
    for pattern in PLANTED:
        assert re.search(pattern, text), "preflight did not report %r:\n%s" % (pattern, text)
    assert unchanged(out), out
    assert not os.path.exists("/nonexistent/juno-preflight-must-not-write-here")
    # the bind password never appears in the output
    assert "not-a-secret-test-value" not in out


def test_one_report_grouped_by_place_not_under_a_host():
    """One failed task for the whole run, whose message is grouped under site:, hub <name>: and
    node(s) <names>: headings; each problem once, however many hosts found it."""
    r = run_preflight()
    out = r.stdout
    assert len(failed_hosts(out)) == 1, out
    assert "TASK [%s]" % REPORT_TASK in out
    text = report(out)
    assert text.startswith("preflight found ") and "nothing was changed" in text.splitlines()[0], text
    headings = [line for line in text.splitlines()[1:] if not line.startswith("  - ")]
    assert headings[0] == "site:", headings
    assert all(re.match(r"^(site|hub \S+|nodes? \S+(, \S+)*):$", h) for h in headings), headings
    assert len(headings) == len(set(headings)), headings
    assert text.count("group kube_control_plane has 2 hosts") == 1, text
    assert text.count("MB of memory, less than") == 1, text
    # no message names a hub by its place in the list, or names the host that ran the report
    assert not re.search(r"juno_hubs\[\d+\]\.", text), text
    assert "nfs1" not in text, text


def test_role_problems_are_found_by_preflight_alone_in_one_run():
    """preflight.yml alone checks every phase: problems only the roles' checks find are listed
    in the same run, with each other; nothing changes and nothing is written."""
    r = run_preflight(inventory=ROLES_INVENTORY)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert len(failed_hosts(r.stdout)) == 1, out
    text = report(r.stdout)
    for pattern in ROLE_PLANTED:
        assert re.search(pattern, text), "preflight did not report %r:\n%s" % (pattern, text)
    assert "could not run" not in text, text
    assert unchanged(out), out
    assert not os.path.exists("/nonexistent/juno-preflight-roles-must-not-write-here")
    assert "not-a-secret-test-value" not in out


def test_phases_narrow_the_role_checks():
    """juno_preflight_phases, as a phase playbook gives it, narrows the checks to its roles:
    with the nodes phase only, the hubs' and the monitoring's problems are not looked for."""
    r = run_preflight("-e", '{"juno_preflight_phases": ["nodes"]}', inventory=ROLES_INVENTORY)
    text = report(r.stdout)
    assert "juno_elasticsearch_hosts" not in text and "profile 'Big memory'" not in text, text
    # the inventory's own checks always run
    assert "juno_ad.base_dn 'DC=roles,,DC=test'" in text, text


def test_a_role_run_alone_still_stops_on_its_problems():
    """Outside preflight.yml (nothing collects), a role's checks fail the run themselves."""
    r = run_preflight("-e", '{"juno_test_host": "cp1.roles.test", "juno_test_role": "jupyterhub"}', inventory=ROLES_INVENTORY,
                      playbook=os.path.join(TOP, "tests", "integration", "playbooks", "role_preflight_alone.yml"))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "jupyterhub: " in out and "problem(s); nothing was changed" in out, out
    assert "profile 'Big memory' (big-memory)" in out, out


def test_bad_types_of_role_settings_are_reported_together():
    """The types of every role the phases will use (their meta/argument_specs.yml, through
    juno.hub.role_options) are checked in one task per host, and listed in the one report with
    every other problem: two roles' bad settings together, once, however many hosts use them."""
    r = run_preflight("--start-at-task", "Check the types of the settings of the roles this run will use",
                      "-e", '{"juno_preflight_phases": ["nodes"], "node_sysctl": 5, "containerd_source": "bogus"}')
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert len(failed_hosts(r.stdout)) == 1, out
    text = report(r.stdout)
    assert text.count("argument 'node_sysctl' is of type int") == 1, text
    assert text.count("value of containerd_source must be one of: distribution, upstream, got: bogus") == 1, text
    assert unchanged(out), out


def test_role_defaults_are_not_checked_outside_the_roles():
    """Valid role settings pass: the defaults (templates such as containerd_enable_selinux, which
    only the role's context resolves) are left out of the preflight type check."""
    r = run_preflight("--start-at-task", "Check the types of the settings of the roles this run will use",
                      "-e", '{"juno_preflight_phases": ["nodes", "storage", "cluster", "hubs", "monitoring", "backup"]}',
                      "--limit", "nfs1.broken.test,cp1.broken.test")
    out = r.stdout
    m = re.search(r"TASK \[Check the types of the settings of the roles this run will use\].*?\n\n", out, re.S)
    assert m, out
    assert "fatal" not in m.group(0) and "ok: [cp1.broken.test]" in m.group(0), m.group(0)
    assert not re.search(r"is of type|Supported parameters include|must be one of", report(out)), report(out)
