# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containerd role's image decisions: parsing `ctr images ls` and choosing the archives to import."""

import os
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import containerd as f
from ansible_collections.juno.hub.plugins.lookup import oci_archive

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(TOP, "tests", "components"))
import oci  # noqa: E402  (tests/components/oci.py: importable only after the sys.path line above)

PAUSE = "sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a"
APISERVER = "sha256:" + "6c" * 32
ETCD = "sha256:" + "e7" * 32
OLD_PAUSE = "sha256:" + "0d" * 32

FIXTURES = os.path.join(TOP, "tests", "unit", "fixtures", "ctr")
# What `ctr -n k8s.io images ls` prints (tabwriter columns padded with blanks; SIZE has a blank in it):
# a digest-named image of `import --digests`, two named images, and one pulled by digest only.
with open(os.path.join(FIXTURES, "images-ls.txt")) as _f:
    CTR_LS = _f.read()
HEADER_ONLY = "REF TYPE DIGEST SIZE PLATFORMS LABELS\n"


def images(*items):
    return [{"path": p, "name": n, "digest": d} for p, n, d in items]


# --- ctr_images ------------------------------------------------------------------------------------

def test_ctr_images_reads_ref_type_and_digest():
    got = f.ctr_images(CTR_LS)
    assert [i["ref"] for i in got] == [
        "import-2025-04-16@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
        "registry.k8s.io/kube-apiserver:v1.32.4",
        "registry.k8s.io/pause:3.10",
        "sha256:873ed75102791e5b0b8a7fcd41606c92fcec98d56d05ead4ac5131650004c136",
    ]
    assert got[1] == {"ref": "registry.k8s.io/kube-apiserver:v1.32.4", "type": "application/vnd.oci.image.manifest.v1+json",
                      "digest": APISERVER}
    assert got[2]["digest"] == PAUSE
    assert got[3]["type"] == "application/vnd.docker.distribution.manifest.list.v2+json"


def test_ctr_images_tabs_and_list_of_lines():
    lines = ["REF\tTYPE\tDIGEST\tSIZE\tPLATFORMS\tLABELS", "registry.k8s.io/pause:3.10\tapplication/vnd.oci.image.manifest.v1+json\t"
             + PAUSE + "\t1.2 MiB\tlinux/amd64\t-"]
    assert f.ctr_images(lines) == [{"ref": "registry.k8s.io/pause:3.10", "type": "application/vnd.oci.image.manifest.v1+json",
                                    "digest": PAUSE}]
    assert f.ctr_images("\n".join(lines).replace("\n", "\r\n") + "\r\n") == f.ctr_images(lines)


@pytest.mark.parametrize("empty", ["", None, HEADER_ONLY, "\n\n", []])
def test_ctr_images_no_image(empty):
    assert f.ctr_images(empty) == []


@pytest.mark.parametrize("text, message", [
    ("registry.k8s.io/pause:3.10\nregistry.k8s.io/etcd:3.5.16-0\n", "should start with the header"),
    (HEADER_ONLY + "registry.k8s.io/pause:3.10 application/vnd.oci.image.manifest.v1+json\n", "cannot read REF, TYPE and DIGEST"),
    (HEADER_ONLY + "registry.k8s.io/pause:3.10 application/vnd.oci.image.manifest.v1+json 1.2 MiB linux/amd64\n", "cannot read"),
    ({"stdout": ""}, "expected the text"),
])
def test_ctr_images_refuses_what_it_cannot_read(text, message):
    with pytest.raises(AnsibleFilterError, match=message):
        f.ctr_images(text)


# --- oci_archives_missing --------------------------------------------------------------------------

ARCHIVES = images(
    ("/srv/images/kube-apiserver.tar", "registry.k8s.io/kube-apiserver:v1.32.4", APISERVER),
    ("/srv/images/pause.tar", "registry.k8s.io/pause:3.10", PAUSE),
    ("/srv/images/etcd.tar", "registry.k8s.io/etcd:3.5.16-0", ETCD),
)


def test_nothing_missing_when_every_name_has_its_digest():
    assert f.oci_archives_missing(ARCHIVES[:2], f.ctr_images(CTR_LS)) == []


def test_missing_image_gives_its_archive():
    assert f.oci_archives_missing(ARCHIVES, f.ctr_images(CTR_LS)) == [
        {"path": "/srv/images/etcd.tar", "file": "etcd.tar", "images": [{"name": "registry.k8s.io/etcd:3.5.16-0", "digest": ETCD}]},
    ]


def test_fresh_node_needs_every_archive_in_order():
    got = f.oci_archives_missing(ARCHIVES, f.ctr_images(HEADER_ONLY))
    assert [a["path"] for a in got] == ["/srv/images/kube-apiserver.tar", "/srv/images/pause.tar", "/srv/images/etcd.tar"]
    assert f.oci_archives_missing(ARCHIVES, []) == got
    assert f.oci_archives_missing(ARCHIVES, "") == got


def test_same_name_other_digest_is_missing():
    present = [{"ref": "registry.k8s.io/pause:3.10", "digest": OLD_PAUSE}]
    assert [a["path"] for a in f.oci_archives_missing(ARCHIVES[1:2], present)] == ["/srv/images/pause.tar"]


def test_same_digest_under_another_name_is_missing():
    """Only the name with the digest counts: a digest-named image (ctr import --digests) is not the name."""
    present = [{"ref": "import-2025-04-16@" + PAUSE, "digest": PAUSE}, {"ref": "registry.k8s.io/pause:3.9", "digest": PAUSE}]
    assert [a["path"] for a in f.oci_archives_missing(ARCHIVES[1:2], present)] == ["/srv/images/pause.tar"]


def test_raw_ctr_output_is_accepted_as_present():
    assert f.oci_archives_missing(ARCHIVES, CTR_LS) == f.oci_archives_missing(ARCHIVES, f.ctr_images(CTR_LS))


def test_archive_with_several_images_lists_only_the_missing_ones():
    bundle = images(("/srv/images/control-plane.tar", "registry.k8s.io/kube-apiserver:v1.32.4", APISERVER),
                    ("/srv/images/control-plane.tar", "registry.k8s.io/etcd:3.5.16-0", ETCD))
    assert f.oci_archives_missing(bundle, CTR_LS) == [
        {"path": "/srv/images/control-plane.tar", "file": "control-plane.tar",
         "images": [{"name": "registry.k8s.io/etcd:3.5.16-0", "digest": ETCD}]},
    ]


def test_image_in_two_archives_is_imported_from_the_first_only():
    both = images(("/a/bundle.tar", "registry.k8s.io/pause:3.10", PAUSE),
                  ("/a/pause.tar", "registry.k8s.io/pause:3.10", PAUSE),
                  ("/a/pause.tar", "registry.k8s.io/etcd:3.5.16-0", ETCD))
    got = f.oci_archives_missing(both, [])
    assert got == [
        {"path": "/a/bundle.tar", "file": "bundle.tar", "images": [{"name": "registry.k8s.io/pause:3.10", "digest": PAUSE}]},
        {"path": "/a/pause.tar", "file": "pause.tar", "images": [{"name": "registry.k8s.io/etcd:3.5.16-0", "digest": ETCD}]},
    ]
    # once etcd is there, the second archive is not needed even though it holds pause too
    got = f.oci_archives_missing(both, [{"ref": "registry.k8s.io/etcd:3.5.16-0", "digest": ETCD}])
    assert [a["path"] for a in got] == ["/a/bundle.tar"]


def test_same_archive_listed_twice_is_one_archive():
    twice = ARCHIVES[1:2] + ARCHIVES[1:2]
    assert len(f.oci_archives_missing(twice, [])) == 1


def test_same_name_two_digests_in_two_archives_is_refused():
    clash = images(("/a/pause.tar", "registry.k8s.io/pause:3.10", PAUSE), ("/b/pause-old.tar", "registry.k8s.io/pause:3.10", OLD_PAUSE))
    with pytest.raises(AnsibleFilterError, match=r"registry.k8s.io/pause:3.10 is sha256:ee65.* in /a/pause.tar but sha256:0d0d.* in /b/pause-old.tar"):
        f.oci_archives_missing(clash, [])


def test_files_with_the_same_base_name_get_their_position():
    same = images(("/site/a/images.tar", "registry.k8s.io/pause:3.10", PAUSE),
                  ("/site/b/other.tar", "registry.k8s.io/etcd:3.5.16-0", ETCD),
                  ("/site/c/images.tar", "registry.k8s.io/kube-apiserver:v1.32.4", APISERVER))
    assert [a["file"] for a in f.oci_archives_missing(same, [])] == ["1-images.tar", "other.tar", "3-images.tar"]
    # the names do not depend on what the node has
    assert [a["file"] for a in f.oci_archives_missing(same, [{"ref": "registry.k8s.io/pause:3.10", "digest": PAUSE}])] == \
        ["other.tar", "3-images.tar"]


@pytest.mark.parametrize("bad, present, message", [
    ("x", [], "expected the list"),
    (["x"], [], r"images\[0\] 'x' is not a dict"),
    ([{"path": "/a.tar", "name": "a:b"}], [], "has no digest"),
    ([{"path": "/a.tar", "name": "a:b", "digest": "latest"}], [], "is not a digest"),
    (ARCHIVES, {"ref": "x"}, "present must be the list"),
    (ARCHIVES, [{"ref": "x"}], r"present\[0\]"),
])
def test_bad_input(bad, present, message):
    with pytest.raises(AnsibleFilterError, match=message):
        f.oci_archives_missing(bad, present)


def test_with_real_archives_a_second_run_imports_nothing(tmp_path):
    """The archives' images as the lookup reads them, the node's as ctr would list them after the import."""
    paths = []
    for name, content in (("registry.k8s.io/pause:3.10", b"pause\n"), ("registry.k8s.io/coredns/coredns:v1.11.3", b"coredns\n")):
        path = str(tmp_path / (name.rsplit("/", 1)[1].replace(":", "_") + ".tar"))
        oci.write_archive(path, name, [oci.layer_from_files({"/bin": (content, 0o755)}, 0)], {"Entrypoint": ["/bin"]}, 0)
        paths.append(path)
    found = [i for p in paths for i in oci_archive.oci_archive_images(p)]
    first = f.oci_archives_missing(found, HEADER_ONLY)
    assert [a["path"] for a in first] == paths
    # what `ctr images import --digests` leaves: the name and a digest-named image for each
    after = HEADER_ONLY + "".join(
        "%s application/vnd.oci.image.manifest.v1+json %s 1.0 KiB linux/amd64 -\nimport-1970-01-01@%s "
        "application/vnd.oci.image.manifest.v1+json %s 1.0 KiB linux/amd64 -\n" % (i["name"], i["digest"], i["digest"], i["digest"])
        for i in found)
    assert f.oci_archives_missing(found, after) == []


# Captured from Debian's ctr 1.6.20 (`ctr -n k8s.io images ls`, trailing blanks kept) after the role's
# `ctr images import --digests` (which also lists each image by digest) of the two archives that
# test_real_ctr_output_after_the_import builds.
with open(os.path.join(FIXTURES, "images-ls-1.6.20-after-import.txt")) as _f:
    CTR_1_6_AFTER_IMPORT = _f.read()


def test_real_ctr_output_after_the_import(tmp_path):
    """Archives written by tests/components/oci.py are reproducible, so their digests are the ones ctr listed."""
    found = []
    for name, content in (("registry.k8s.io/pause:3.10", b"p2\n"), ("registry.k8s.io/coredns/coredns:v1.11.3", b"c\n")):
        path = str(tmp_path / (name.rsplit("/", 1)[1].split(":")[0] + ".tar"))
        oci.write_archive(path, name, [oci.layer_from_files({"/hello": (content, 0o755)}, 0)], {"Entrypoint": ["/hello"]}, 0)
        found += oci_archive.oci_archive_images(path)
    listed = f.ctr_images(CTR_1_6_AFTER_IMPORT)
    assert len(listed) == 4
    assert {(i["ref"], i["digest"]) for i in listed} >= {(i["name"], i["digest"]) for i in found}
    assert f.oci_archives_missing(found, listed) == []
    assert [a["path"] for a in f.oci_archives_missing(found, HEADER_ONLY)] == [i["path"] for i in found]


def test_filters_are_registered_and_documented():
    here = os.path.dirname(f.__file__)
    for name, function in f.FilterModule().filters().items():
        doc = yaml.safe_load(open(os.path.join(here, name + ".yml")))
        assert doc["DOCUMENTATION"]["name"] == name
        assert getattr(f, name) is function
