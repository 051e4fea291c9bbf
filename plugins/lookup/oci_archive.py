# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: oci_archive
short_description: The images an OCI image archive on the control node holds, by name and digest
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Reads the C(index.json) of each OCI image-layout archive given (a tar file with C(oci-layout),
    C(index.json) and C(blobs/sha256/...), as C(ctr images export) and C(docker save) of Docker 25 and
    newer write it) and returns one item per image it names.
  - Only C(index.json) is read out of the tar; nothing is extracted. A plain tar is scanned by its headers
    (the blobs are skipped, not read); a compressed one (gzip, bzip2, xz) is decompressed as it is scanned.
  - An image's name is the annotation C(io.containerd.image.name) of its descriptor in C(index.json) (the
    name C(ctr images import) gives it), its digest the descriptor's C(digest) (what C(ctr images ls)
    shows in its C(DIGEST) column after the import).
  - Fails, naming the file and what is missing, for a file that is not a tar, a tar without C(index.json)
    (archives of C(docker save) before Docker 25, with only C(manifest.json), are not supported), an index
    without images, a descriptor without a digest or without the name annotation, or a name given twice.
  - The containerd role of this collection uses it to import the images of C(containerd_image_archives)
    that a node lacks.
options:
  _terms:
    description:
      - Paths of the archives on the control node. C(~) is expanded; a relative path is looked up as
        M(ansible.builtin.copy) looks up C(src) (the C(files) directories of the role and the playbook).
    required: true
    type: list
    elements: path
notes:
  - Use C(query) (or C(lookup) with C(wantlist=true)) to always get a list.
seealso:
  - name: OCI image layout specification
    description: The files of an image layout, index.json and its annotations.
    link: https://github.com/opencontainers/image-spec/blob/main/image-layout.md
"""

EXAMPLES = r"""
- name: Show the images of two archives
  ansible.builtin.debug:
    msg: "{{ query('juno.hub.oci_archive', '/srv/images/kube-apiserver.tar', '/srv/images/pause.tar') }}"
  # [{"path": "/srv/images/kube-apiserver.tar", "name": "registry.k8s.io/kube-apiserver:v1.32.4",
  #   "digest": "sha256:6c1f..."}, {"path": "/srv/images/pause.tar", ...}]

- name: Names of the images that the inventory's archives hold
  ansible.builtin.set_fact:
    archive_image_names: "{{ query('juno.hub.oci_archive', *containerd_image_archives) | map(attribute='name') | list }}"
"""

RETURN = r"""
_list:
  description: One item per image, archives in the order given, images in the order of their index.json.
  type: list
  elements: dict
  contains:
    path:
      description: Absolute path of the archive on the control node.
      type: str
      sample: /srv/images/kube-apiserver.tar
    name:
      description: The image's full name (annotation C(io.containerd.image.name)).
      type: str
      sample: registry.k8s.io/kube-apiserver:v1.32.4
    digest:
      description: Digest of the image's manifest (or index) descriptor.
      type: str
      sample: sha256:6c1f2dc5ec4ae7ffb4b2d2eb04b5b8b8a6a2e1e4e3d36f7ff4f4c5f3c9d1a2b0
"""

import json
import os
import re
import tarfile

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
# index.json lists descriptors only; anything bigger than this is not one.
MAX_INDEX_SIZE = 16 * 1024 * 1024
HOW_TO_EXPORT = ("write it with `ctr images export <file> <name>...` (or `docker save` of Docker 25 or newer), "
                 "which names each image with the annotation %s" % NAME_ANNOTATION)


def _member_name(name):
    """A tar member's name without a leading ./ or /."""
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _read_index(path):
    """The parsed index.json of the archive at path, or an AnsibleError saying why it cannot be had."""
    try:
        tar = tarfile.open(path, "r:*")
    except FileNotFoundError:
        raise AnsibleError("%s does not exist on the control node" % path)
    except IsADirectoryError:
        raise AnsibleError("%s is a directory, not an OCI image archive (a tar file with oci-layout, index.json and blobs/)" % path)
    except (tarfile.TarError, EOFError):
        raise AnsibleError("%s is not a tar file (nor a gzip, bzip2 or xz compressed one); an OCI image archive (a tar file "
                           "with oci-layout, index.json and blobs/) is expected" % path)
    except OSError as e:
        raise AnsibleError("%s cannot be read on the control node: %s" % (path, to_native(e)))
    seen_manifest_json = False
    with tar:
        try:
            for member in tar:
                name = _member_name(member.name)
                if name == "manifest.json":
                    seen_manifest_json = True
                if name != "index.json":
                    continue
                if not member.isfile():
                    raise AnsibleError("%s: index.json is not a regular file in the archive" % path)
                if member.size > MAX_INDEX_SIZE:
                    raise AnsibleError("%s: index.json is %d bytes, more than an image index can be" % (path, member.size))
                raw = tar.extractfile(member).read()
                break
            else:
                raw = None
        except (tarfile.TarError, EOFError, OSError) as e:
            raise AnsibleError("%s is not a readable tar file (%s)" % (path, to_native(e)))
    if raw is None:
        if seen_manifest_json:
            raise AnsibleError("%s has no index.json: it is a docker save archive (manifest.json only), which is not supported; "
                               "%s" % (path, HOW_TO_EXPORT))
        raise AnsibleError("%s has no index.json: it is not an OCI image layout (oci-layout, index.json, blobs/sha256/...); "
                           "%s" % (path, HOW_TO_EXPORT))
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise AnsibleError("%s: index.json is not valid JSON (%s)" % (path, to_native(e)))


def oci_archive_images(path):
    """[{path, name, digest}] of the images named in the index.json of the OCI archive at `path`.

    Raises AnsibleError naming the file and what is missing when it is not such an archive."""
    index = _read_index(path)
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise AnsibleError("%s: index.json has no list 'manifests'; it is not an OCI image index" % path)
    if not manifests:
        raise AnsibleError("%s: index.json lists no image ('manifests' is empty)" % path)
    images = []
    names = {}
    for position, desc in enumerate(manifests):
        where = "%s: index.json manifests[%d]" % (path, position)
        if not isinstance(desc, dict):
            raise AnsibleError("%s is not a descriptor (a mapping with mediaType, digest, size)" % where)
        digest = desc.get("digest")
        if not isinstance(digest, str) or not DIGEST.match(digest):
            raise AnsibleError("%s has no valid digest (sha256:<64 hex digits>), got %r" % (where, digest))
        annotations = desc.get("annotations")
        if not isinstance(annotations, dict):
            annotations = {}
        name = annotations.get(NAME_ANNOTATION)
        if not isinstance(name, str) or not name.strip():
            ref = annotations.get(REF_ANNOTATION)
            also = " (it has only %s=%r, which ctr images import does not use as the name)" % (REF_ANNOTATION, ref) if ref else ""
            raise AnsibleError("%s (%s) has no annotation %s, the image's full name such as registry.k8s.io/pause:3.10%s; %s"
                               % (where, digest, NAME_ANNOTATION, also, HOW_TO_EXPORT))
        if name in names:
            raise AnsibleError("%s names %s again (also manifests[%d]); an archive must name each image once" % (where, name, names[name]))
        names[name] = position
        images.append({"path": path, "name": name, "digest": digest})
    return images


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        result = []
        for term in terms:
            if not isinstance(term, str) or not term:
                raise AnsibleLookupError("juno.hub.oci_archive: %r is not a path of an OCI image archive" % (term,))
            path = os.path.expanduser(term)
            if not os.path.isabs(path):
                found = self.find_file_in_search_path(variables, "files", path, ignore_missing=True)
                if not found:
                    raise AnsibleLookupError("juno.hub.oci_archive: %s is not an absolute path and is not found in the files "
                                             "directories of the role or the playbook" % term)
                path = found
            try:
                result.extend(oci_archive_images(os.path.abspath(path)))
            except AnsibleError as e:
                raise AnsibleLookupError("juno.hub.oci_archive: %s" % e.message)
        return result
