# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the containerd role decides about the images of an air-gapped site.

``ctr_images`` parses the output of ``ctr images ls`` (one read-only command per node);
``oci_archives_missing`` takes the images of the inventory's archives (the lookup
``juno.hub.oci_archive``) and what the node has, and returns the archives to copy and import:
an image is missing when no REF of the node equals its name with the same digest, and each
missing image is imported from one archive only. The documentation of each filter is in
``plugins/filter/<name>.yml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
HEADER = ("REF", "TYPE", "DIGEST")


def ctr_images(output):
    """[{ref, type, digest}] of the rows of `ctr images ls` (header REF TYPE DIGEST SIZE PLATFORMS LABELS).

    Columns are separated by blanks (ctr aligns them with a tabwriter); REF, TYPE and DIGEST never
    contain blanks, SIZE does ("1.2 MiB"), so the first three fields of each row are taken by their
    position in the header. Empty output (ctr not there yet, in check mode) is no image."""
    if output is None:
        return []
    if isinstance(output, (list, tuple)):
        lines = [str(line) for line in output]
    elif isinstance(output, str):
        lines = output.splitlines()
    else:
        raise AnsibleFilterError("juno.hub.ctr_images: expected the text of `ctr images ls`, got %s" % type(output).__name__)
    lines = [line for line in lines if line.strip()]
    if not lines:
        return []
    header = lines[0].split()
    if tuple(header[:3]) != HEADER:
        raise AnsibleFilterError("juno.hub.ctr_images: the output of `ctr images ls` should start with the header "
                                 "'REF TYPE DIGEST SIZE PLATFORMS LABELS', got %r (was it run with -q?)" % lines[0])
    images = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 3 or not DIGEST.match(fields[2]):
            raise AnsibleFilterError("juno.hub.ctr_images: cannot read REF, TYPE and DIGEST from the line %r of `ctr images ls`" % line)
        images.append({"ref": fields[0], "type": fields[1], "digest": fields[2]})
    return images


def _image(index, item):
    where = "images[%d] %r" % (index, item)
    if not isinstance(item, Mapping):
        raise AnsibleFilterError("juno.hub.oci_archives_missing: %s is not a dict with path, name and digest" % where)
    for key in ("path", "name", "digest"):
        if not isinstance(item.get(key), str) or not item.get(key):
            raise AnsibleFilterError("juno.hub.oci_archives_missing: %s has no %s" % (where, key))
    if not DIGEST.match(item["digest"]):
        raise AnsibleFilterError("juno.hub.oci_archives_missing: %s: %r is not a digest (sha256:<64 hex digits>)" % (where, item["digest"]))
    return item["path"], item["name"], item["digest"]


def _present(present):
    """{(ref, digest)} of what the node has: ctr_images' items, or the text of `ctr images ls`."""
    if present is None or isinstance(present, str):
        present = ctr_images(present)
    if not isinstance(present, (list, tuple)):
        raise AnsibleFilterError("juno.hub.oci_archives_missing: present must be the list from juno.hub.ctr_images, got %s"
                                 % type(present).__name__)
    have = set()
    for index, item in enumerate(present):
        if not isinstance(item, Mapping) or not isinstance(item.get("ref"), str) or not isinstance(item.get("digest"), str):
            raise AnsibleFilterError("juno.hub.oci_archives_missing: present[%d] %r is not a dict with ref and digest" % (index, item))
        have.add((item["ref"], item["digest"]))
    return have


def oci_archives_missing(images, present):
    """The archives that hold images the node lacks: [{path, file, images: [{name, digest}]}].

    `images` is the list of {path, name, digest} of the lookup juno.hub.oci_archive (archives in the
    inventory's order), `present` the list of ctr_images (or the text of `ctr images ls`). An image is
    missing when no (ref, digest) of the node equals its (name, digest). Each missing image is taken
    from the first archive that holds it; an archive is returned when it is the first holder of at
    least one missing image, with those images. `file` is the name the archive gets on the node: its
    base name, prefixed with its position (1-based) among the archives when two archives share a
    base name. The same name with two digests in two archives is refused: the node could never hold
    both, and every run would import one over the other."""
    if images is None:
        images = []
    if not isinstance(images, (list, tuple)):
        raise AnsibleFilterError("juno.hub.oci_archives_missing: expected the list of the lookup juno.hub.oci_archive, got %s"
                                 % type(images).__name__)
    have = _present(present)
    paths = []          # archives in order of first appearance
    holder = {}         # name -> (digest, first path)
    wanted = []         # (name, digest, path) in order, each name once
    for index, item in enumerate(images):
        path, name, digest = _image(index, item)
        if path not in paths:
            paths.append(path)
        if name in holder:
            if holder[name][0] != digest:
                raise AnsibleFilterError(
                    "juno.hub.oci_archives_missing: the image %s is %s in %s but %s in %s; containerd_image_archives must "
                    "give each image name one digest" % (name, holder[name][0], holder[name][1], digest, path))
            continue
        holder[name] = (digest, path)
        wanted.append((name, digest, path))

    basenames = [posixpath.basename(p) for p in paths]
    files = dict((p, b if basenames.count(b) == 1 else "%d-%s" % (i + 1, b)) for i, (p, b) in enumerate(zip(paths, basenames)))
    missing = {}
    for name, digest, path in wanted:
        if (name, digest) not in have:
            missing.setdefault(path, []).append({"name": name, "digest": digest})
    return [{"path": p, "file": files[p], "images": missing[p]} for p in paths if p in missing]


class FilterModule(object):
    def filters(self):
        return {
            "ctr_images": ctr_images,
            "oci_archives_missing": oci_archives_missing,
        }
