# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.role_options reads the roles' real meta/argument_specs.yml."""

import os

import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible.parsing.dataloader import DataLoader
from ansible.constants import config

from ansible_collections.juno.hub.plugins.lookup import role_options

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def spec(role):
    with open(os.path.join(TOP, "roles", role, "meta", "argument_specs.yml")) as handle:
        return yaml.safe_load(handle)["argument_specs"]


@pytest.fixture
def lookup():
    """The plugin with its documented options registered, as the plugin loader does."""
    name = "juno.hub.role_options"
    config.initialize_plugin_configuration_definitions("lookup", name, yaml.safe_load(role_options.DOCUMENTATION)["options"])
    plugin = role_options.LookupModule(loader=DataLoader())
    plugin._load_name = name
    return plugin


def test_options_of_main_in_the_order_given(lookup):
    node, containerd = lookup.run(["node", "containerd"])
    assert node == spec("node")["main"]["options"]
    assert containerd == spec("containerd")["main"]["options"]


def test_without_defaults_only_the_defaults_are_gone(lookup):
    (options,) = lookup.run(["containerd"], defaults=False)
    full = spec("containerd")["main"]["options"]
    assert sorted(options) == sorted(full)
    assert "{{" in full["containerd_packages"]["default"]  # a templated default, only the role can resolve
    for name, option in options.items():
        assert "default" not in option
        assert option == dict((k, v) for k, v in full[name].items() if k != "default")


def test_other_entry_point(lookup):
    (options,) = lookup.run(["kube_apply"], entry_point="helm")
    assert options == spec("kube_apply")["helm"]["options"]


def test_every_role_with_preflight_checks_has_main_options(lookup):
    """The preflight playbook validates these roles' main options."""
    roles = sorted(r for r in os.listdir(os.path.join(TOP, "roles"))
                   if os.path.exists(os.path.join(TOP, "roles", r, "tasks", "preflight.yml")))
    assert "node" in roles and "jupyterhub" in roles
    for role, options in zip(roles, lookup.run(roles, defaults=False)):
        assert options, role


@pytest.mark.parametrize("bad, message", [
    ("no_such_role", "cannot read"),
    ("../node", "is not a role name"),
    ("Node", "is not a role name"),
])
def test_bad_role_name(lookup, bad, message):
    with pytest.raises(AnsibleLookupError, match=message):
        lookup.run([bad])


def test_missing_entry_point(lookup):
    with pytest.raises(AnsibleLookupError, match="has no entry point 'nope'"):
        lookup.run(["node"], entry_point="nope")
