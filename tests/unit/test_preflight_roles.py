"""Every role's checks (roles/<role>/tasks/preflight.yml) can be collected by playbooks/preflight.yml:
they keep their problems in ``__<role>_preflight_problems`` and stop on them themselves only when
nothing collects them (``__juno_preflight_collect``), so that one preflight run lists every
problem of every role, and a role used on its own still stops."""

import glob
import os

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE_CHECKS = sorted(glob.glob(os.path.join(TOP, "roles", "*", "tasks", "preflight.yml")))
GATE = "not (__juno_preflight_collect | default(false))"


def tasks_of(path):
    with open(path) as f:
        return yaml.safe_load(f) or []


def role_of(path):
    return path.split(os.sep)[-3]


@pytest.mark.parametrize("path", ROLE_CHECKS, ids=role_of)
def test_role_checks_keep_their_problems_and_stop_only_when_not_collected(path):
    role = role_of(path)
    fact = "__%s_preflight_problems" % role
    tasks = tasks_of(path)
    sets = [t for t in tasks if fact in (t.get("ansible.builtin.set_fact") or {})]
    assert sets, "%s: no set_fact of %s" % (path, fact)
    stops = [t for t in tasks if "ansible.builtin.fail" in t and GATE in (t.get("when") or []) and any(fact in w for w in t["when"])]
    assert stops, "%s: no fail task on %s gated on %r" % (path, fact, GATE)
    # the problems are set before the stop that reads them
    assert tasks.index(sets[0]) < tasks.index(stops[0]), path


def test_every_role_with_checks_is_in_the_phase_table():
    with open(os.path.join(TOP, "playbooks", "preflight.yml")) as f:
        plays = yaml.safe_load(f)
    [table] = [p["vars"]["__juno_preflight_phase_roles"] for p in plays if "__juno_preflight_phase_roles" in p.get("vars", {})]
    listed = set(r for groups in table.values() for roles in groups.values() for r in roles)
    assert set(role_of(p) for p in ROLE_CHECKS) <= listed


def test_preflight_alone_checks_every_phase():
    """Without juno_preflight_phases (preflight.yml run alone), every phase's roles are checked."""
    with open(os.path.join(TOP, "playbooks", "preflight.yml")) as f:
        text = f.read()
    assert "juno_preflight_phases | default(__juno_preflight_phase_roles.keys() | list)" in text
