"""Every role's meta/argument_specs.yml matches its defaults/main.yml.

Each public default is documented in an entry point of the role's argument spec, with the same
default value (templated defaults are only checked for presence), and each documented option with
a default exists in the defaults. Roles without defaults need no spec entry for them.
"""

import glob
import os

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(TOP, "roles", "*", "tasks")))


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return yaml.safe_load(f) or {}


def spec_options(role):
    spec = load(os.path.join(TOP, "roles", role, "meta", "argument_specs.yml"))
    assert spec is not None, "roles/%s has no meta/argument_specs.yml" % role
    options = {}
    for name, entry in (spec.get("argument_specs") or {}).items():
        if role == "preflight" and name == "site":
            continue  # the site-wide juno_* settings, not role defaults
        options.update(entry.get("options") or {})
    return options


@pytest.mark.parametrize("role", ROLES)
def test_role_has_meta(role):
    meta = load(os.path.join(TOP, "roles", role, "meta", "main.yml"))
    assert meta and meta.get("galaxy_info", {}).get("description"), "roles/%s/meta/main.yml needs galaxy_info.description" % role


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_documented_with_the_same_value(role):
    defaults = load(os.path.join(TOP, "roles", role, "defaults", "main.yml")) or {}
    options = spec_options(role)
    for name, value in defaults.items():
        assert name in options, "roles/%s: default %s is not in meta/argument_specs.yml" % (role, name)
        assert name.startswith(role + "_") or name.startswith(role.split("_")[0] + "_"), \
            "roles/%s: public variable %s should start with %s_" % (role, name, role)
        if isinstance(value, str) and "{{" in value:
            continue
        if "default" in options[name]:
            assert options[name]["default"] == value, \
                "roles/%s: %s defaults to %r but argument_specs says %r" % (role, name, value, options[name]["default"])


@pytest.mark.parametrize("role", ROLES)
def test_documented_defaults_exist(role):
    defaults = load(os.path.join(TOP, "roles", role, "defaults", "main.yml")) or {}
    for name, option in spec_options(role).items():
        if "default" in option and not option.get("required"):
            assert name in defaults, "roles/%s: argument_specs gives %s a default that defaults/main.yml lacks" % (role, name)
