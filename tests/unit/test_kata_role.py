# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kata role's decisions, rendered without a cluster.

- the RuntimeClass and the node labels (roles/kata/templates) rendered with Jinja2 and validated
  with kubernetes-validate for Kubernetes 1.32;
- the capable path: the fact kata_containerd_runtimes (roles/kata/vars/main.yml) rendered by the
  containerd role's config.toml.j2 for containerd 1.6/1.7 (config version 2) and 2.x (version 3),
  parsed as TOML, and recognised by the probe's own containerd reader;
- the pinned release: URL and checksums.
"""

import copy
import pathlib
import re
import tomllib

import jinja2
import kubernetes_validate
import pytest
import yaml
from ansible.plugins.filter.core import FilterModule as CoreFilters

from ansible_collections.juno.hub.plugins.filter.kube import FilterModule as KubeFilters
from ansible_collections.juno.hub.plugins.module_utils import _kata

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "kata"
CONTAINERD = ROOT / "roles" / "containerd"
K8S = "1.32.0"
LABEL = "katacontainers.io/kata-runtime"


def _env(path):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(path)), trim_blocks=True, undefined=jinja2.StrictUndefined)
    # Ansible 2.19's own default/map/select are made for its templar; plain Jinja keeps its builtins.
    core = CoreFilters().filters()
    env.filters.update({name: core[name] for name in ("to_json", "bool")})
    env.filters.update({"juno.hub." + name: f for name, f in KubeFilters().filters().items()})
    return env


def _load(path):
    return yaml.safe_load(path.read_text()) or {}


def _resolve(value, env, context):
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(**context)
    if isinstance(value, list):
        return [_resolve(v, env, context) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, env, context) for k, v in value.items()}
    return value


def role_vars(architecture="x86_64", **overrides):
    """defaults + vars of the kata role with their expressions evaluated, as Ansible would."""
    env = _env(ROLE / "templates")
    context = dict(_load(ROLE / "defaults" / "main.yml"))
    context.update(_load(ROLE / "vars" / "main.yml"))
    context.update(ansible_facts={"architecture": architecture, "os_family": "Debian"})
    context.update(overrides)
    raw = dict(context)
    for _pass in range(6):  # expressions refer to each other: evaluate the raw values again until nothing changes
        resolved = {k: _resolve(v, env, context) for k, v in raw.items()}
        if resolved == context:
            break
        context = resolved
    return context


def render_objects(template, **variables):
    text = _env(ROLE / "templates").get_template(template).render(**variables)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def validate(obj):
    kubernetes_validate.validate(obj, K8S, strict=True)


# --- RuntimeClass --------------------------------------------------------------------------------

def test_runtimeclass_pins_kata_pods_to_labelled_nodes():
    v = role_vars()
    (rc,) = render_objects("runtimeclass.yaml.j2", **v)
    validate(rc)
    assert rc["apiVersion"] == "node.k8s.io/v1" and rc["kind"] == "RuntimeClass"
    assert rc["metadata"]["name"] == "kata"
    # the handler is the containerd runtime the role hands to the containerd role
    assert rc["handler"] == v["_kata_containerd_runtimes"][0]["name"] == "kata"
    assert rc["overhead"] == {"podFixed": {"cpu": "250m", "memory": "160Mi"}}
    assert rc["scheduling"] == {"nodeSelector": {LABEL: "true"}}


def test_runtimeclass_overhead_and_tolerations_from_variables():
    tolerations = [{"key": "juno.example.edu/kata", "operator": "Exists", "effect": "NoSchedule"}]
    v = role_vars(kata_runtime_class_overhead_cpu="500m", kata_runtime_class_overhead_memory="256Mi",
                  kata_runtime_class_tolerations=tolerations)
    (rc,) = render_objects("runtimeclass.yaml.j2", **v)
    validate(rc)
    assert rc["overhead"]["podFixed"] == {"cpu": "500m", "memory": "256Mi"}
    assert rc["scheduling"]["tolerations"] == tolerations
    assert rc["scheduling"]["nodeSelector"] == {LABEL: "true"}


# --- node labels ---------------------------------------------------------------------------------

HOSTS = {
    # inventory host: (kata_enabled in the inventory, cached fact kata_node_status or None)
    "w1.juno.example.edu": (True, {"enabled": True, "capable": True, "reasons": []}),
    "w2.juno.example.edu": (True, {"enabled": True, "capable": False, "reasons": ["/dev/kvm does not exist"]}),
    # Kata turned off in the inventory since the facts were cached: no Kata pods any more
    "W3.juno.example.edu": (False, {"enabled": True, "capable": True, "reasons": []}),
    "cp1.juno.example.edu": (False, None),
}


def _hostvars():
    hostvars = {}
    for host, (enabled, status) in HOSTS.items():
        hv = {"inventory_hostname": host}
        if enabled:
            hv["kata_enabled"] = True
        if status is not None:
            hv["kata_node_status"] = status
        hostvars[host] = hv
    return hostvars


def labels():
    v = role_vars()
    objs = render_objects("node_labels.yaml.j2", groups={"k8s_cluster": list(HOSTS)}, hostvars=_hostvars(), **v)
    for obj in objs:
        validate(obj)
        assert obj["apiVersion"] == "v1" and obj["kind"] == "Node"
        assert list(obj) == ["apiVersion", "kind", "metadata"] and list(obj["metadata"]) == ["name", "labels"]
    return {o["metadata"]["name"]: o["metadata"]["labels"] for o in objs}


def test_only_enabled_and_capable_nodes_are_labelled_true():
    assert labels() == {
        "w1": {LABEL: "true"},
        "w2": {LABEL: "false"},
        "w3": {LABEL: "false"},
        "cp1": {LABEL: "false"},
    }


def test_no_cluster_group_no_labels():
    v = role_vars()
    assert render_objects("node_labels.yaml.j2", groups={}, hostvars={}, **v) == []


def test_label_and_selector_agree():
    v = role_vars()
    (rc,) = render_objects("runtimeclass.yaml.j2", **v)
    assert list(rc["scheduling"]["nodeSelector"]) == [v["_kata_node_label"]] == [LABEL]


# --- the capable path: what the containerd role renders from the kata fact -------------------

def containerd_config(config_version, runtimes):
    if not (CONTAINERD / "templates" / "config.toml.j2").exists():
        pytest.fail("roles/containerd/templates/config.toml.j2 is missing: the kata handler is rendered by the containerd role")
    variables = _load(CONTAINERD / "defaults" / "main.yml")
    variables.update(
        ansible_managed="Ansible managed",
        __containerd_config_version=config_version,
        __containerd_version={2: "1.6.20", 3: "2.1.4"}[config_version],
        __containerd_runtimes=list(variables.get("containerd_runtimes") or []) + runtimes,
        containerd_enable_selinux=False,
        containerd_sandbox_image="registry.k8s.io/pause:3.10",
    )
    text = _env(CONTAINERD / "templates").get_template("config.toml.j2").render(**variables)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail("config.toml.j2 with the kata runtime does not parse as TOML (%s):\n%s" % (exc, text))


@pytest.mark.parametrize("config_version, plugin", [(2, "io.containerd.grpc.v1.cri"), (3, "io.containerd.cri.v1.runtime")])
def test_containerd_renders_the_kata_handler(config_version, plugin):
    fact = copy.deepcopy(role_vars()["_kata_containerd_runtimes"])
    assert fact == [{
        "name": "kata",
        "runtime_type": "io.containerd.kata.v2",
        "privileged_without_host_devices": True,
        "pod_annotations": ["io.katacontainers.*"],
        "options": {"ConfigPath": "/opt/kata/share/defaults/kata-containers/configuration.toml"},
    }]
    cfg = containerd_config(config_version, fact)
    assert cfg["version"] == config_version
    kata = cfg["plugins"][plugin]["containerd"]["runtimes"]["kata"]
    assert kata["runtime_type"] == "io.containerd.kata.v2"
    assert kata["privileged_without_host_devices"] is True
    assert kata["pod_annotations"] == ["io.katacontainers.*"]
    assert kata["options"]["ConfigPath"] == "/opt/kata/share/defaults/kata-containers/configuration.toml"
    # runc stays the default; Kata is only for pods that ask for the RuntimeClass
    assert cfg["plugins"][plugin]["containerd"]["default_runtime_name"] == "runc"
    # and the probe reads the same file as configured for Kata
    found = _kata.cri_runtimes(cfg, "/etc/containerd/config.toml")
    assert [r["name"] for r in found if r["kata"]] == ["kata"]
    assert [r["plugin"] for r in found if r["kata"]] == [plugin]


@pytest.mark.parametrize("config_version", [2, 3])
def test_containerd_without_kata_on_nodes_that_are_not_capable(config_version):
    cfg = containerd_config(config_version, [])
    assert not [r for r in _kata.cri_runtimes(cfg, "config.toml") if r["kata"]]


# --- the pinned release --------------------------------------------------------------------------

@pytest.mark.parametrize("architecture, arch", [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_release_url_and_checksum(architecture, arch):
    v = role_vars(architecture=architecture)
    version = v["kata_version"]
    assert v["kata_release_url"] == (
        "https://github.com/kata-containers/kata-containers/releases/download/%s/kata-static-%s-%s.tar.xz" % (version, version, arch))
    assert re.match(r"^sha256:[0-9a-f]{64}$", v["_kata_checksum"])
    assert v["_kata_release_id"] == "%s %s %s" % (version, arch, v["_kata_checksum"])


def test_every_pinned_checksum_is_a_sha256():
    for arch, versions in role_vars()["kata_release_checksums"].items():
        for version, checksum in versions.items():
            assert re.match(r"^\d+\.\d+\.\d+$", str(version)), (arch, version)
            assert re.match(r"^sha256:[0-9a-f]{64}$", checksum), (arch, version)


def test_no_checksum_for_an_unpinned_architecture():
    assert role_vars(architecture="riscv64")["_kata_checksum"] == ""
