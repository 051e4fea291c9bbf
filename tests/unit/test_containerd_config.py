# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render roles/containerd's templates for each containerd major version and parse them as TOML.

The templates are rendered with Jinja2 directly, with Ansible's own filters and the
template module's settings (trim_blocks), from the role's defaults plus the facts the role sets.
"""

import copy
import pathlib
import tomllib

import jinja2
import pytest
import yaml
from ansible.plugins.filter.core import FilterModule as CoreFilters

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "containerd"

KATA = {
    "name": "kata",
    "runtime_type": "io.containerd.kata.v2",
    "privileged_without_host_devices": True,
    "pod_annotations": ["io.katacontainers.*"],
    "options": {"ConfigPath": "/opt/kata/share/defaults/kata-containers/configuration-qemu.toml"},
}
CRUN = {"name": "crun", "runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": "/usr/bin/crun", "SystemdCgroup": True}}


def _env():
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True, undefined=jinja2.StrictUndefined)
    # Only the Ansible filters the templates use: Ansible 2.19 replaces Jinja's own default/map/select
    # with versions made for its templar, which plain Jinja cannot drive.
    ansible_filters = CoreFilters().filters()
    env.filters.update({name: ansible_filters[name] for name in ("to_json", "bool")})
    return env


def _defaults():
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def render(template, config_version=2, **overrides):
    variables = _defaults()
    variables.update(
        ansible_managed="Ansible managed",
        __containerd_config_version=config_version,
        __containerd_version={2: "1.6.20", 3: "2.0.5"}[config_version],
        __containerd_runtimes=[],
        # what the defaults' expressions evaluate to on a host without SELinux
        containerd_enable_selinux=False,
        containerd_sandbox_image="registry.k8s.io/pause:3.10",
        _containerd_default_server={"docker.io": "https://registry-1.docker.io"},
    )
    variables.update(overrides)
    return _env().get_template(template).render(**variables)


def parse(template, config_version=2, **overrides):
    text = render(template, config_version, **overrides)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # show the rendered text on failure
        pytest.fail("%s does not parse as TOML (%s):\n%s" % (template, exc, text))


def test_v2_for_containerd_1x():
    cfg = parse("config.toml.j2", 2)
    assert cfg["version"] == 2
    assert set(cfg["plugins"]) == {"io.containerd.grpc.v1.cri"}
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "registry.k8s.io/pause:3.10"
    assert cri["enable_selinux"] is False
    assert cri["registry"] == {"config_path": "/etc/containerd/certs.d"}
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    assert cfg["grpc"]["address"] == "/run/containerd/containerd.sock"
    assert cfg["root"] == "/var/lib/containerd"


def test_v3_for_containerd_2x():
    cfg = parse("config.toml.j2", 3)
    assert cfg["version"] == 3
    assert set(cfg["plugins"]) == {"io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"}
    images = cfg["plugins"]["io.containerd.cri.v1.images"]
    runtime = cfg["plugins"]["io.containerd.cri.v1.runtime"]
    assert images["pinned_images"]["sandbox"] == "registry.k8s.io/pause:3.10"
    assert images["snapshotter"] == "overlayfs"
    assert images["registry"]["config_path"] == "/etc/containerd/certs.d"
    assert "sandbox_image" not in runtime and "sandbox_image" not in images
    assert runtime["enable_selinux"] is False
    assert runtime["containerd"]["default_runtime_name"] == "runc"
    assert runtime["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True


@pytest.mark.parametrize("version, path", [(2, ("io.containerd.grpc.v1.cri",)), (3, ("io.containerd.cri.v1.runtime",))])
def test_selinux_and_cgroup_driver_follow_the_variables(version, path):
    cfg = parse("config.toml.j2", version, containerd_enable_selinux=True, containerd_systemd_cgroup=False)
    section = cfg["plugins"][path[0]]
    assert section["enable_selinux"] is True
    assert section["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False


@pytest.mark.parametrize("version, plugin", [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.runtime")])
def test_extra_runtimes_and_kata_interface(version, plugin):
    cfg = parse("config.toml.j2", version, __containerd_runtimes=[CRUN, KATA], containerd_default_runtime="runc")
    runtimes = cfg["plugins"][plugin]["containerd"]["runtimes"]
    assert list(runtimes) == ["runc", "crun", "kata"]
    kata = runtimes["kata"]
    assert kata["runtime_type"] == "io.containerd.kata.v2"
    assert kata["privileged_without_host_devices"] is True
    assert kata["pod_annotations"] == ["io.katacontainers.*"]
    assert kata["options"] == {"ConfigPath": "/opt/kata/share/defaults/kata-containers/configuration-qemu.toml"}
    assert runtimes["crun"]["options"] == {"BinaryName": "/usr/bin/crun", "SystemdCgroup": True}
    assert runtimes["crun"]["privileged_without_host_devices"] is False
    assert runtimes["crun"]["pod_annotations"] == []


@pytest.mark.parametrize("version, plugin", [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.images")])
def test_registry_credentials(version, plugin):
    auths = [
        {"registry": "registry.example.edu", "username": "juno", "password": 'p"a\\ss'},
        {"registry": "ghcr.io:443", "identitytoken": "tok"},
    ]
    cfg = parse("config.toml.j2", version, containerd_registry_auths=auths)
    configs = cfg["plugins"][plugin]["registry"]["configs"]
    assert configs["registry.example.edu"]["auth"] == {"username": "juno", "password": 'p"a\\ss'}
    assert configs["ghcr.io:443"]["auth"] == {"identitytoken": "tok"}
    assert cfg["plugins"][plugin]["registry"]["config_path"] == "/etc/containerd/certs.d"


@pytest.mark.parametrize("version, plugin", [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.runtime")])
def test_restrict_oom_score_adj_only_when_asked(version, plugin):
    """Lab only (containers without CAP_SYS_RESOURCE): the CRI runtime section of each format."""
    cfg = parse("config.toml.j2", version, containerd_restrict_oom_score_adj=True)
    assert cfg["plugins"][plugin]["restrict_oom_score_adj"] is True
    assert [p for p in cfg["plugins"] if "restrict_oom_score_adj" in cfg["plugins"][p]] == [plugin]
    default = parse("config.toml.j2", version)
    assert all("restrict_oom_score_adj" not in section for section in default["plugins"].values())
    assert "restrict_oom_score_adj" not in render("config.toml.j2", version)


def test_restrict_oom_score_adj_is_off_by_default():
    assert _defaults()["containerd_restrict_oom_score_adj"] is False


def test_odd_option_values_stay_valid_toml():
    odd = copy.deepcopy(KATA)
    odd["name"] = "kata-qemu.snp"
    odd["options"] = {"ConfigPath": "/a b/\u00e9\"q\".toml", "Debug": False, "Count": 3, "Ratio": 0.5, "List": ["a", "b"]}
    cfg = parse("config.toml.j2", 3, __containerd_runtimes=[odd])
    rt = cfg["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["kata-qemu.snp"]
    assert rt["options"] == odd["options"]


def test_hosts_toml_for_a_mirror():
    item = {
        "registry": "docker.io",
        "mirrors": [
            {"url": "https://mirror.example.edu", "ca_file": "/etc/pki/mirror-ca.pem"},
            {"url": "http://10.20.0.5:5000", "capabilities": ["pull"], "skip_verify": True, "override_path": True},
        ],
    }
    hosts = parse("hosts.toml.j2", 2, item=item)
    assert hosts["server"] == "https://registry-1.docker.io"
    assert list(hosts["host"]) == ["https://mirror.example.edu", "http://10.20.0.5:5000"]
    assert hosts["host"]["https://mirror.example.edu"] == {
        "capabilities": ["pull", "resolve"],
        "skip_verify": False,
        "ca": "/etc/pki/mirror-ca.pem",
    }
    assert hosts["host"]["http://10.20.0.5:5000"] == {"capabilities": ["pull"], "skip_verify": True, "override_path": True}


def test_hosts_toml_default_server_of_other_registries():
    hosts = parse("hosts.toml.j2", 2, item={"registry": "registry.k8s.io", "mirrors": [{"url": "https://m.example.edu"}]})
    assert hosts["server"] == "https://registry.k8s.io"


def test_crictl_points_at_the_socket():
    crictl = yaml.safe_load(render("crictl.yaml.j2"))
    assert crictl["runtime-endpoint"] == "unix:///run/containerd/containerd.sock"
    assert crictl["image-endpoint"] == "unix:///run/containerd/containerd.sock"


def test_pause_image_table_covers_the_supported_versions():
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    pause = role_vars["_containerd_pause_versions"]
    assert {"1.32", "1.33"} <= set(pause)
    assert role_vars["_containerd_pause_latest"] == pause[max(pause, key=lambda v: tuple(map(int, v.split("."))))]
