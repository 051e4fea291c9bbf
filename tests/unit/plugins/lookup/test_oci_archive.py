# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.oci_archive reads the index.json of real OCI image archives (written by tests/components/oci.py)."""

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest
import yaml
from ansible.constants import config
from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.parsing.dataloader import DataLoader

from ansible_collections.juno.hub.plugins.lookup import oci_archive

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(TOP, "tests", "components"))
import oci  # noqa: E402  (tests/components/oci.py: importable only after the sys.path line above)

EPOCH = 1744761600


def archive(path, name="registry.k8s.io/pause:3.10", content=b"hi\n"):
    """A real one-image OCI archive; returns its manifest digest."""
    return oci.write_archive(str(path), name, [oci.layer_from_files({"/hello": (content, 0o755)}, EPOCH)],
                             {"Entrypoint": ["/hello"]}, EPOCH)


def tar_with(path, files, mode="w"):
    """A tar holding {name: bytes}."""
    with tarfile.open(str(path), mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def index(*manifests):
    return json.dumps({"schemaVersion": 2, "manifests": list(manifests)}).encode()


DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def lookup():
    name = "juno.hub.oci_archive"
    config.initialize_plugin_configuration_definitions("lookup", name, yaml.safe_load(oci_archive.DOCUMENTATION)["options"])
    plugin = oci_archive.LookupModule(loader=DataLoader())
    plugin._load_name = name
    return plugin


def test_name_and_digest_of_a_real_archive(tmp_path):
    path = tmp_path / "pause.tar"
    digest = archive(path)
    assert digest.startswith("sha256:")
    assert oci_archive.oci_archive_images(str(path)) == [{"path": str(path), "name": "registry.k8s.io/pause:3.10", "digest": digest}]


def test_digest_is_the_index_descriptor_digest(tmp_path):
    """The digest is that of the manifest blob (what ctr images ls shows), not of the index."""
    path = tmp_path / "pause.tar"
    digest = archive(path)
    with tarfile.open(str(path)) as tar:
        blob = tar.extractfile("blobs/sha256/" + digest.split(":")[1]).read()
    import hashlib
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == digest


def test_other_content_other_digest(tmp_path):
    a = archive(tmp_path / "a.tar", content=b"one\n")
    b = archive(tmp_path / "b.tar", content=b"two\n")
    assert a != b


def test_several_images_in_one_archive_keep_their_order(tmp_path):
    d2 = "sha256:" + "cd" * 32
    path = tar_with(tmp_path / "two.tar", {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "./index.json": index(
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST, "size": 1,
             "annotations": {"io.containerd.image.name": "registry.k8s.io/kube-apiserver:v1.32.4"}},
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d2, "size": 1,
             "annotations": {"io.containerd.image.name": "registry.k8s.io/etcd:3.5.16-0",
                             "org.opencontainers.image.ref.name": "3.5.16-0"}}),
    })
    assert oci_archive.oci_archive_images(path) == [
        {"path": path, "name": "registry.k8s.io/kube-apiserver:v1.32.4", "digest": DIGEST},
        {"path": path, "name": "registry.k8s.io/etcd:3.5.16-0", "digest": d2},
    ]


def test_gzip_compressed_archive_is_read(tmp_path):
    path = tar_with(tmp_path / "one.tar.gz", {"index.json": index(
        {"digest": DIGEST, "annotations": {"io.containerd.image.name": "docker.io/library/busybox:1.36"}})}, mode="w:gz")
    assert oci_archive.oci_archive_images(path)[0]["name"] == "docker.io/library/busybox:1.36"


def test_only_index_json_is_read(tmp_path, monkeypatch):
    """index.json is extracted, no other member (the blobs can be gigabytes)."""
    path = tmp_path / "pause.tar"
    archive(path)
    read = []
    original = tarfile.TarFile.extractfile

    def spy(self, member):
        read.append(getattr(member, "name", member))
        return original(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", spy)
    monkeypatch.setattr(tarfile.TarFile, "extractall", lambda *a, **k: pytest.fail("extractall called"))
    monkeypatch.setattr(tarfile.TarFile, "extract", lambda *a, **k: pytest.fail("extract called"))
    oci_archive.oci_archive_images(str(path))
    assert read == ["index.json"]


# --- bad archives ----------------------------------------------------------------------------------

def test_not_a_tar(tmp_path):
    path = tmp_path / "image.tar"
    path.write_bytes(b"this is not a tar file, it is a text file\n" * 20)
    with pytest.raises(AnsibleError, match=r"image\.tar is not a tar file"):
        oci_archive.oci_archive_images(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(AnsibleError, match=r"nope\.tar does not exist on the control node"):
        oci_archive.oci_archive_images(str(tmp_path / "nope.tar"))


def test_directory(tmp_path):
    with pytest.raises(AnsibleError, match="is a directory"):
        oci_archive.oci_archive_images(str(tmp_path))


def test_no_index_json(tmp_path):
    path = tar_with(tmp_path / "layout.tar", {"oci-layout": b"{}", "blobs/sha256/" + "ab" * 32: b"x"})
    with pytest.raises(AnsibleError, match=r"layout\.tar has no index\.json: it is not an OCI image layout") as err:
        oci_archive.oci_archive_images(path)
    assert "ctr images export" in str(err.value)


def test_docker_save_archive_is_not_supported(tmp_path):
    path = tar_with(tmp_path / "saved.tar", {"manifest.json": b'[{"Config":"x.json","RepoTags":["busybox:1.36"]}]',
                                             "repositories": b"{}"})
    with pytest.raises(AnsibleError, match=r"saved\.tar has no index\.json: it is a docker save archive .*not supported"):
        oci_archive.oci_archive_images(path)


def test_no_name_annotation(tmp_path):
    path = tar_with(tmp_path / "skopeo.tar", {"index.json": index(
        {"digest": DIGEST, "annotations": {"org.opencontainers.image.ref.name": "3.10"}})})
    with pytest.raises(AnsibleError) as err:
        oci_archive.oci_archive_images(path)
    msg = str(err.value)
    assert "skopeo.tar: index.json manifests[0] (%s) has no annotation io.containerd.image.name" % DIGEST in msg
    assert "org.opencontainers.image.ref.name='3.10'" in msg


def test_no_annotations_at_all(tmp_path):
    path = tar_with(tmp_path / "bare.tar", {"index.json": index({"digest": DIGEST})})
    with pytest.raises(AnsibleError, match="has no annotation io.containerd.image.name"):
        oci_archive.oci_archive_images(path)


@pytest.mark.parametrize("body, message", [
    (b"{not json", "index.json is not valid JSON"),
    (b"[]", "no list 'manifests'"),
    (json.dumps({"manifests": []}).encode(), "lists no image"),
    (index("x"), r"manifests\[0\] is not a descriptor"),
    (index({"annotations": {"io.containerd.image.name": "a:b"}}), "has no valid digest"),
    (index({"digest": "sha256:short", "annotations": {"io.containerd.image.name": "a:b"}}), "has no valid digest"),
    (index({"digest": DIGEST, "annotations": {"io.containerd.image.name": "a:b"}},
           {"digest": "sha256:" + "cd" * 32, "annotations": {"io.containerd.image.name": "a:b"}}), "names a:b again"),
])
def test_bad_index(tmp_path, body, message):
    path = tar_with(tmp_path / "bad.tar", {"index.json": body})
    with pytest.raises(AnsibleError, match=message):
        oci_archive.oci_archive_images(path)


# --- the lookup ------------------------------------------------------------------------------------

def test_lookup_flattens_archives_in_order(lookup, tmp_path):
    a = archive(tmp_path / "a.tar", "registry.k8s.io/pause:3.10", b"a\n")
    b = archive(tmp_path / "b.tar", "registry.k8s.io/coredns/coredns:v1.11.3", b"b\n")
    assert lookup.run([str(tmp_path / "b.tar"), str(tmp_path / "a.tar")]) == [
        {"path": str(tmp_path / "b.tar"), "name": "registry.k8s.io/coredns/coredns:v1.11.3", "digest": b},
        {"path": str(tmp_path / "a.tar"), "name": "registry.k8s.io/pause:3.10", "digest": a},
    ]


def test_lookup_expands_home(lookup, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    digest = archive(tmp_path / "pause.tar")
    assert lookup.run(["~/pause.tar"]) == [{"path": str(tmp_path / "pause.tar"), "name": "registry.k8s.io/pause:3.10", "digest": digest}]


def test_lookup_error_names_the_plugin_and_the_file(lookup, tmp_path):
    path = tmp_path / "junk.tar"
    path.write_bytes(b"junk")
    with pytest.raises(AnsibleLookupError, match=r"juno\.hub\.oci_archive: .*junk\.tar is not a tar file"):
        lookup.run([str(path)])


def test_lookup_relative_path_not_found(lookup, tmp_path):
    with pytest.raises(AnsibleLookupError, match="not an absolute path"):
        lookup.run(["images/nowhere.tar"], variables={})


def test_ansible_doc_renders_the_documentation():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"), ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"))
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    proc = subprocess.run([exe, "--json", "-t", "lookup", "juno.hub.oci_archive"], env=env, capture_output=True, text=True,
                          check=True, timeout=300)
    doc = json.loads(proc.stdout)["juno.hub.oci_archive"]
    assert doc["doc"]["options"]["_terms"]["required"] is True
    assert set(doc["return"]["_list"]["contains"]) == {"path", "name", "digest"}
    assert "juno.hub.oci_archive" in doc["examples"]
