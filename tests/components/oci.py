"""OCI image archives for the lab, written without a container engine or registry.

An archive is an OCI image layout in a tar (oci-layout, index.json, blobs/sha256/...) whose index
names the image with `io.containerd.image.name` (what `ctr images import` and the containerd role
read) and `org.opencontainers.image.ref.name`. Every tar and gzip header is fixed (owner 0, mtime
SOURCE_DATE_EPOCH, no gzip time), so the same files give the same digests on every machine.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MEDIA = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}


def _sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _info(name, size, mode, epoch, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.type = size, mode, epoch, kind
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def layer_from_files(files, epoch):
    """A gzip layer from {path in image: (source file or bytes, mode)}. Returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for path in sorted(files):
            parts = path.strip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    tar.addfile(_info(d, 0, 0o755, epoch, tarfile.DIRTYPE))
            src, mode = files[path]
            data = src if isinstance(src, bytes) else open(src, "rb").read()
            tar.addfile(_info(path.strip("/"), len(data), mode, epoch), io.BytesIO(data))
    return _gzip(raw.getvalue())


def file_sha(path):
    """sha256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def layer_from_tar(path):
    """A gzip layer from an uncompressed root file system tar (mmdebstrap's output)."""
    with open(path, "rb") as f:
        return _gzip(f.read())


def _gzip(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return out.getvalue(), _sha(data)


def write_archive(path, name, layers, config, epoch):
    """Write an OCI archive of one linux/amd64 image called `name` (registry/repo:tag) with the
    given gzip layers [(blob, diff_id)] and image config {Entrypoint, Cmd, Env, User, WorkingDir}.
    Rewrites the file only when its manifest digest changes. Returns the manifest digest."""
    cfg = {
        "architecture": "amd64", "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": dict({"Env": [PATH_ENV]}, **config),
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _blob, diff_id in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "juno.hub tests/components/oci.py"} for _layer in layers],
    }
    cfg_blob = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": MEDIA["manifest"],
        "config": {"mediaType": MEDIA["config"], "digest": _sha(cfg_blob), "size": len(cfg_blob)},
        "layers": [{"mediaType": MEDIA["layer"], "digest": _sha(b), "size": len(b)} for b, _diff_id in layers],
    }
    man_blob = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = _sha(man_blob)
    index = {
        "schemaVersion": 2, "mediaType": MEDIA["index"],
        "manifests": [{
            "mediaType": MEDIA["manifest"], "digest": digest, "size": len(man_blob),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }],
    }
    if read_archive(path).get("digest") == digest:
        return digest
    blobs = {_sha(b): b for b, _diff_id in layers}
    blobs[_sha(cfg_blob)] = cfg_blob
    blobs[digest] = man_blob
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("blobs", 0, 0o755, epoch, tarfile.DIRTYPE))
        tar.addfile(_info("blobs/sha256", 0, 0o755, epoch, tarfile.DIRTYPE))
        for d in sorted(blobs):
            tar.addfile(_info("blobs/sha256/" + d.split(":")[1], len(blobs[d]), 0o644, epoch), io.BytesIO(blobs[d]))
        for fname, obj in (("oci-layout", {"imageLayoutVersion": "1.0.0"}), ("index.json", index)):
            data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
            tar.addfile(_info(fname, len(data), 0o644, epoch), io.BytesIO(data))
    os.replace(tmp, path)
    return digest


def read_archive(path):
    """{name, digest} of the image an OCI archive holds (its index.json), or {} for no file."""
    if not os.path.exists(path):
        return {}
    with tarfile.open(path) as tar:
        index = json.load(tar.extractfile("index.json"))
    m = index["manifests"][0]
    return {"name": m.get("annotations", {}).get("io.containerd.image.name"), "digest": m["digest"]}


def debian_layer(cache, packages, epoch, say, force=False):
    """A Debian 12 root file system with `packages` (for images that need iptables and friends:
    kube-proxy), made with mmdebstrap from Debian's archive and cached by its package list."""
    key = hashlib.sha256(("essential " + ",".join(sorted(packages))).encode()).hexdigest()[:16]
    out = os.path.join(cache, "debian-%s.tar" % key)
    if force or not os.path.exists(out):
        say("building a Debian 12 layer with %s (mmdebstrap, about a minute)" % ", ".join(packages))
        os.makedirs(cache, exist_ok=True)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
        with tempfile.TemporaryDirectory() as tmp:
            tmp_tar = os.path.join(tmp, "rootfs.tar")
            subprocess.run(["mmdebstrap", "--quiet", "--variant=essential", "--include=" + ",".join(packages),
                            "--customize-hook=rm -rf \"$1\"/var/cache/apt \"$1\"/var/lib/apt/lists \"$1\"/usr/share/doc \"$1\"/usr/share/man",
                            "bookworm", tmp_tar], check=True, env=env)
            os.replace(tmp_tar, out)
    return out


def lab_images(kube, comps, bins, out, epoch, say):
    """The images kubeadm `kube` and the lab's manifests ask for, as OCI archives in `out`, and
    out/images.json listing {file, name, digest}."""
    force = os.environ.get("CI") == "true" or os.environ.get("FORCE") == "1"
    debian = debian_layer(os.path.join(os.path.dirname(os.path.dirname(out)), "layers"),
                          ["iptables", "conntrack", "ipset", "kmod", "iproute2"], epoch, say, force)
    v = "v" + kube
    images = []
    k = bins["kubernetes"]

    def image(name, files, config, base=None):
        """Write the archive unless a stamp of its inputs (file contents, config, base layer) says
        the one there is already made of them."""
        fname = name.split("/", 1)[1].replace("/", "_").replace(":", "_") + ".tar"
        path = os.path.join(out, fname)
        h = hashlib.sha256(json.dumps([name, config, epoch, base and file_sha(base)], sort_keys=True).encode())
        for p in sorted(files):
            h.update(("%s %o %s" % (p, files[p][1], file_sha(files[p][0]))).encode())
        stamp = path + ".inputs"
        have = read_archive(path)
        if have and os.path.exists(stamp) and open(stamp).read() == h.hexdigest():
            digest = have["digest"]
        else:
            layers = ([layer_from_tar(base)] if base else []) + [layer_from_files(files, epoch)]
            digest = write_archive(path, name, layers, config, epoch)
            with open(stamp, "w") as f:
                f.write(h.hexdigest())
        images.append({"file": fname, "name": name, "digest": digest})

    for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        image("registry.k8s.io/%s:%s" % (b, v), {"/usr/local/bin/" + b: (os.path.join(k, b), 0o755)},
              {"Entrypoint": ["/usr/local/bin/" + b]})
    image("registry.k8s.io/kube-proxy:" + v, {"/usr/local/bin/kube-proxy": (os.path.join(k, "kube-proxy"), 0o755)},
          {"Entrypoint": ["/usr/local/bin/kube-proxy"]}, base=debian)
    e = bins["etcd"]
    image("registry.k8s.io/etcd:%s-0" % comps["etcd"]["version"],
          {"/usr/local/bin/etcd": (os.path.join(e, "etcd"), 0o755), "/usr/local/bin/etcdctl": (os.path.join(e, "etcdctl"), 0o755),
           "/usr/local/bin/etcdutl": (os.path.join(e, "etcdutl"), 0o755)},
          {"Entrypoint": ["/usr/local/bin/etcd"]})
    image("registry.k8s.io/coredns/coredns:v" + comps["coredns"]["version"],
          {"/coredns": (os.path.join(bins["coredns"], "coredns"), 0o755)},
          {"Entrypoint": ["/coredns"], "ExposedPorts": {"53/tcp": {}, "53/udp": {}}})
    image("registry.k8s.io/pause:" + comps["pause"]["version"],
          {"/pause": (os.path.join(bins["pause"], "pause"), 0o755)},
          {"Entrypoint": ["/pause"], "User": "65535:65535"})
    image("docker.io/cloudnativelabs/kube-router:v" + comps["kube-router"]["version"],
          {"/usr/local/bin/kube-router": (os.path.join(bins["kube-router"], "kube-router"), 0o755)},
          {"Entrypoint": ["/usr/local/bin/kube-router"]}, base=debian)
    image("ghcr.io/kube-vip/kube-vip:v" + comps["kube-vip"]["version"],
          {"/kube-vip": (os.path.join(bins["kube-vip"], "kube-vip"), 0o755)},
          {"Entrypoint": ["/kube-vip"]})
    image("juno.test/netcheck:" + comps["netcheck"]["version"],
          {"/usr/local/bin/netcheck": (os.path.join(bins["netcheck"], "netcheck"), 0o755)},
          {"Entrypoint": ["/usr/local/bin/netcheck"], "Cmd": ["serve"], "User": "65534:65534"})
    with open(os.path.join(out, "images.json"), "w") as f:
        json.dump(images, f, indent=2)
        f.write("\n")
    say("images for Kubernetes %s: %s" % (kube, ", ".join(i["name"] for i in images)))
