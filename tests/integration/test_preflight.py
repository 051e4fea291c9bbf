"""preflight.yml against a deliberately broken inventory: it fails, lists every planted problem
once, and changes nothing (changed=0 everywhere, the render directory is never created)."""

import os
import re
import subprocess

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(TOP, "tests", "integration", "inventories", "broken")

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
    r"w3\.broken\.test: node address 10\.244\.3\.3 lies inside juno_pod_cidr",
    r"juno_api_endpoint\.address 10\.30\.0\.205 lies in juno_lb_address_pool",
    r"juno_hubs\[0\]\.name 'Chem_Eng' is not a valid hub name",
    r"juno_hubs\[1\]\.hostname 'chem\.broken\.test' is the hostname of juno_hubs\[0\]",
    r"juno_hubs\[1\]\.ad\.allowed_groups is empty",
    r"juno_hubs\[2\]\.namespace 'hub-physics' is the namespace of juno_hubs\[1\]",
    r"juno_hubs\[2\]\.lb_address 10\.30\.0\.99 is outside juno_lb_address_pool",
    r"juno_ad\.tls is 'none'",
    r"juno_ad\.servers\[0\] 'ldap://dc1\.broken\.test' uses plain LDAP",
    # host checks
    r"w1\.broken\.test: \d+ MB of memory, less than the 100000000 MB",
]


def run_preflight(*extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FACT_CACHING="memory")
    return subprocess.run(
        [os.path.join(TOP, ".venv", "bin", "ansible-playbook"), "-i", INVENTORY,
         os.path.join(TOP, "playbooks", "preflight.yml"), *extra],
        cwd=TOP, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_broken_inventory_fails_with_every_problem_and_changes_nothing():
    r = run_preflight()
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    for pattern in PLANTED:
        assert re.search(pattern, out), "preflight did not report %r:\n%s" % (pattern, out)
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", out, re.M)
    assert recap, out
    assert all(changed == "0" for host, changed in recap), recap
    assert not os.path.exists("/nonexistent/juno-preflight-must-not-write-here")
    # the bind password never appears in the output
    assert "not-a-secret-test-value" not in out


def test_inventory_problems_are_reported_once_and_host_problems_per_host():
    out = run_preflight().stdout
    failures = {}  # host -> its indented failure block
    for m in re.finditer(r"^fatal: \[([^\]]+)\]: FAILED! => *\n((?:[ \t]+.*\n)+)", out, re.M):
        failures[m.group(1)] = m.group(2)
    with_inventory = [h for h, block in failures.items() if "group kube_control_plane has 2 hosts" in block]
    assert len(with_inventory) == 1, out
    with_memory = sorted(h for h, block in failures.items() if "MB of memory, less than" in block)
    assert with_memory == ["w1.broken.test", "w1.other.test", "w3.broken.test"], out


def test_bad_types_of_role_settings_stop_preflight_together():
    """The second play checks the types of every role the phases will use (their
    meta/argument_specs.yml, through juno.hub.role_options) in one task per host, before any
    role's own checks: two roles' bad settings are reported together, and nothing changes."""
    r = run_preflight("--start-at-task", "Check the types of the settings of the roles this run will use",
                      "-e", '{"juno_preflight_phases": ["nodes"], "node_sysctl": 5, "containerd_source": "bogus"}')
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    failed = re.findall(r"^fatal: \[([^\]]+)\]: FAILED! => *\n((?:[ \t]+.*\n)+)", r.stdout, re.M)
    nodes = ["cp1.broken.test", "cp2.broken.test", "w1.broken.test", "w1.other.test", "w3.broken.test"]
    assert sorted(host for host, block in failed) == nodes, out
    for host, block in failed:
        assert "argument 'node_sysctl' is of type int" in block.replace("''", "'"), block
        assert "value of containerd_source must be one of: distribution, upstream, got: bogus" in block, block
    # The NFS server runs neither role; no role's own checks ran anywhere.
    assert "nfs1.broken.test" not in dict(failed)
    assert "Run the read-only checks of each role" not in out
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", out, re.M)
    assert recap and all(changed == "0" for host, changed in recap), recap


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
