# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs of the node, selinux and containerd roles match their defaults exactly.

One exception, as in test_role_specs.py: a templated default whose option is not a string (the
docs schema that antsibull-docs checks takes only a real value of the option's type) is left out
of the spec, and the option's description says what the default is ("Defaults to ...").
"""

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ["node", "selinux", "containerd"]


def _load(role, *parts):
    return yaml.safe_load((ROOT / "roles" / role / pathlib.Path(*parts)).read_text())


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented_with_the_same_value(role):
    defaults = _load(role, "defaults", "main.yml")
    options = _load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        assert options[name].get("description"), name
        if "default" not in options[name] and isinstance(value, str) and "{{" in value and options[name].get("type", "str") != "str":
            assert "Defaults to" in str(options[name]["description"]), name
            continue
        assert options[name].get("default") == value, name


@pytest.mark.parametrize("role", ROLES)
def test_public_names_carry_the_role_prefix(role):
    defaults = _load(role, "defaults", "main.yml")
    assert all(name.startswith(role + "_") for name in defaults)
    internal = _load(role, "vars", "main.yml")
    assert all(name.startswith("_" + role + "_") for name in internal)


def test_firewall_ports_are_well_formed():
    ports = _load("node", "defaults", "main.yml")["node_firewall_ports"]
    for entry in ports:
        assert set(entry) == {"port", "protocol", "comment"}
        assert entry["protocol"] in ("tcp", "udp")
        bounds = [int(p) for p in str(entry["port"]).split("-")]
        assert 1 <= bounds[0] <= bounds[-1] <= 65535


def test_sysctl_defaults_satisfy_protect_kernel_defaults():
    """The values kubelet checks with protectKernelDefaults: true (pkg/kubelet/cm setupKernelTunables)."""
    sysctl = _load("node", "defaults", "main.yml")["node_sysctl"]
    assert {k: sysctl[k] for k in (
        "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
        "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")} == {
        "vm.overcommit_memory": 1, "vm.panic_on_oom": 0, "kernel.panic": 10, "kernel.panic_on_oops": 1,
        "kernel.keys.root_maxkeys": 1000000, "kernel.keys.root_maxbytes": 25000000}
    assert sysctl["net.ipv4.ip_forward"] == 1
    assert sysctl["net.bridge.bridge-nf-call-iptables"] == 1
