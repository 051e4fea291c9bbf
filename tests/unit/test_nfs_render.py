"""What the NFS roles render: the exports file (template + filter) and, through ansible-playbook in
render mode (juno_apply: false), the CSI driver release and the hubs' StorageClasses, validated
with kubernetes-validate for the target Kubernetes version."""

import json
import os
import re
import subprocess

import jinja2
import kubernetes_validate
import pytest
import yaml

from ansible_collections.juno.hub.plugins.filter import nfs as f

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S_VERSIONS = ["1.32", "1.33"]
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
HUBS = [
    {"name": "chemeng", "storage": {"capacity": "10Gi"}},
    {"name": "physics", "storage": {"sec": "krb5p", "mount_options": ["nfsvers=4.2", "hard", "noatime"]}},
]


# --- exports file --------------------------------------------------------------------------------

def render_exports(lines):
    path = os.path.join(TOP, "roles", "nfs_server", "templates", "juno.exports.j2")
    with open(path) as fh:
        template = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined).from_string(fh.read())
    return template.render(__nfs_server_export_lines=lines)


def test_exports_file_reads_back_to_the_same_lines():
    """The file written in one run is the `current` of the next: it must parse back unchanged."""
    lines = f.nfs_export_lines(HUBS, ["10.20.0.0/24", "10.21.0.0/24"], "/srv/juno")
    text = render_exports(lines)
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == lines
    assert f.nfs_exports_parse(text)["invalid"] == []
    assert f.nfs_export_lines(HUBS, ["10.20.0.0/24", "10.21.0.0/24"], "/srv/juno", current=text) == lines
    assert "*" not in "".join(lines) and "no_root_squash" not in text.replace("# ", "").split("\n", 3)[-1]


def test_exports_file_without_hubs_is_only_comments():
    text = render_exports([])
    assert text.strip() and all(line.startswith("#") for line in text.splitlines() if line)


# --- CSI driver and StorageClasses, rendered by the role -----------------------------------------

def run_render(tmp_path, extra_vars):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}},
        "children": {"nfs_server": {"hosts": {"nfs1.example.edu": {"ansible_host": "10.20.1.10", "nfs_server_export_root": "/export/juno"}}}},
    }}))
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the NFS CSI driver and StorageClasses",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "Render", "ansible.builtin.include_role": {"name": "juno.hub.nfs_csi"}}],
    }]))
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps(dict({"juno_apply": False, "juno_render_dir": str(tmp_path / "render")}, **extra_vars)))
    env = dict(os.environ,
               ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
               ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(playbook), "-e", "@" + str(variables)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, tmp_path / "render" / "storage"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    proc, out = run_render(tmp_path_factory.mktemp("nfs_csi"), {"juno_hubs": HUBS})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def load_all(path):
    with open(path) as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def test_rendered_files(rendered):
    assert sorted(os.listdir(rendered)) == ["csi-driver-nfs.release.yaml", "csi-driver-nfs.values.yaml", "nfs-storageclasses.yaml"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_storageclasses_are_valid_kubernetes(rendered, version):
    docs = load_all(rendered / "nfs-storageclasses.yaml")
    assert len(docs) == len(HUBS)
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        assert DNS_SUBDOMAIN.match(doc["metadata"]["name"])


def test_one_storageclass_per_hub_on_the_hub_export(rendered):
    docs = {d["metadata"]["name"]: d for d in load_all(rendered / "nfs-storageclasses.yaml")}
    assert sorted(docs) == ["juno-home-chemeng", "juno-home-physics"]
    chem = docs["juno-home-chemeng"]
    assert chem["provisioner"] == "nfs.csi.k8s.io"
    # The server and export root come from the nfs_server host of the inventory.
    assert chem["parameters"] == {
        "server": "10.20.1.10",
        "share": "/export/juno/chemeng",
        "subDir": "${pvc.metadata.name}",
        "onDelete": "retain",
        "mountPermissions": "0777",
    }
    assert chem["metadata"]["labels"]["juno.hub/hub"] == "chemeng"
    assert chem["mountOptions"] == ["nfsvers=4.1", "hard"]
    assert docs["juno-home-physics"]["mountOptions"] == ["nfsvers=4.2", "hard", "noatime", "sec=krb5p"]


def test_deleting_a_claim_never_deletes_a_home_directory(rendered):
    for doc in load_all(rendered / "nfs-storageclasses.yaml"):
        assert doc["reclaimPolicy"] == "Retain"
        assert doc["parameters"]["onDelete"] == "retain"
    values = load_all(rendered / "csi-driver-nfs.values.yaml")[0]
    assert values["controller"]["defaultOnDeletePolicy"] == "retain"


def test_storageclass_parameters_are_the_ones_the_driver_accepts(rendered):
    # csi-driver-nfs 4.11 CreateVolume refuses any other parameter key.
    for doc in load_all(rendered / "nfs-storageclasses.yaml"):
        assert set(doc["parameters"]) <= {"server", "share", "subDir", "onDelete", "mountPermissions"}
        assert all(isinstance(v, str) for v in doc["parameters"].values())


def test_release_is_pinned(rendered):
    release = load_all(rendered / "csi-driver-nfs.release.yaml")[0]
    assert release["chart"] == "csi-driver-nfs"
    assert release["version"] == "4.11.0"
    assert release["namespace"] == "kube-system"
    assert release["repository"] == "https://raw.githubusercontent.com/kubernetes-csi/csi-driver-nfs/master/charts"
    values = load_all(rendered / "csi-driver-nfs.values.yaml")[0]
    # Top-level keys of the chart's values.yaml (4.11.0); the chart ships no values schema.
    assert set(values) <= {"customLabels", "image", "serviceAccount", "rbac", "driver", "feature", "kubeletDir", "controller",
                           "node", "externalSnapshotter", "volumeSnapshotClass", "imagePullSecrets", "storageClass", "storageClasses"}
    assert values["storageClass"] == {"create": False}
    assert "storageClasses" not in values


def test_site_values_are_merged_and_server_can_be_given(tmp_path):
    proc, out = run_render(tmp_path, {
        "juno_hubs": HUBS[:1],
        "nfs_csi_server": "nfs.example.edu",
        "nfs_csi_export_root": "/srv/homes",
        "nfs_csi_values": {"image": {"nfs": {"repository": "registry.example.edu/sig-storage/nfsplugin"}}, "controller": {"replicas": 2}},
    })
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = load_all(out / "csi-driver-nfs.values.yaml")[0]
    assert values["image"]["nfs"]["repository"] == "registry.example.edu/sig-storage/nfsplugin"
    assert values["controller"] == {"replicas": 2, "defaultOnDeletePolicy": "retain"}
    doc = load_all(out / "nfs-storageclasses.yaml")[0]
    assert doc["parameters"]["server"] == "nfs.example.edu"
    assert doc["parameters"]["share"] == "/srv/homes/chemeng"


def test_bad_settings_stop_before_rendering(tmp_path):
    proc, out = run_render(tmp_path, {"juno_hubs": HUBS, "nfs_csi_mount_permissions": "777x"})
    assert proc.returncode != 0
    assert "nfs_csi_mount_permissions" in proc.stdout
    assert not out.exists()
