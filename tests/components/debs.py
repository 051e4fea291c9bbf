"""Debian packages of the lab's Kubernetes binaries, named and versioned as pkgs.k8s.io names them
(kubeadm_1.32.4-1.1_amd64.deb, ...), so that the kubernetes_packages role installs them with
`kubernetes_packages_source: offline` exactly as an air-gapped site would.

The unit files are those of the upstream packages (kubernetes/release, packages/deb). Packages are
built with dpkg-deb from a staging tree whose owners and times are fixed, and rebuilt only when a
stamp of their inputs changes.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from oci import file_sha

REVISION = "1.1"  # pkgs.k8s.io's Debian revision
ARCH = "amd64"

KUBELET_SERVICE = """[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

KUBEADM_DROPIN = """# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""


def specs(kube, comps, bins):
    """name -> {version, depends, description, files: {path: (source or text, mode)}}."""
    k = bins["kubernetes"]
    cni = comps["cni-plugins"]["version"]
    cri = comps["cri-tools"]["version"]
    return {
        "kubelet": dict(version=kube, description="Node agent for Kubernetes clusters",
                        depends="iptables (>= 1.4.21), iproute2, mount, ethtool, util-linux, conntrack, socat, kubernetes-cni (>= 1.1.1)",
                        files={"/usr/bin/kubelet": (os.path.join(k, "kubelet"), 0o755),
                               "/usr/lib/systemd/system/kubelet.service": (KUBELET_SERVICE, 0o644),
                               "/etc/kubernetes/manifests/": (None, 0o755)}),
        "kubeadm": dict(version=kube, description="Command-line utility for administering a Kubernetes cluster",
                        depends="cri-tools (>= 1.30.0)",
                        files={"/usr/bin/kubeadm": (os.path.join(k, "kubeadm"), 0o755),
                               "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": (KUBEADM_DROPIN, 0o644)}),
        "kubectl": dict(version=kube, description="Command-line utility for interacting with a Kubernetes cluster",
                        depends="", files={"/usr/bin/kubectl": (os.path.join(k, "kubectl"), 0o755)}),
        "cri-tools": dict(version=cri, description="Command-line utility for interacting with a container runtime",
                          depends="", files={"/usr/bin/crictl": (os.path.join(bins["cri-tools"], "crictl"), 0o755)}),
        "kubernetes-cni": dict(version=cni, description="Binaries required to provision kubernetes container networking",
                               depends="",
                               files={"/opt/cni/bin/" + p: (os.path.join(bins["cni-plugins"], p), 0o755)
                                      for p in ("bridge", "host-local", "loopback", "portmap")}),
    }


def package(kube, comps, bins, out, epoch, say):
    os.makedirs(out, exist_ok=True)
    written = []
    for name, spec in specs(kube, comps, bins).items():
        deb = os.path.join(out, "%s_%s-%s_%s.deb" % (name, spec["version"], REVISION, ARCH))
        h = hashlib.sha256(json.dumps([name, spec["version"], spec["depends"], spec["description"], epoch]).encode())
        for path, (src, mode) in sorted(spec["files"].items()):
            content = "dir" if src is None else hashlib.sha256(src.encode()).hexdigest() if "\n" in src else file_sha(src)
            h.update(("%s %o %s" % (path, mode, content)).encode())
        stamp = deb + ".inputs"
        if os.path.exists(deb) and os.path.exists(stamp) and open(stamp).read() == h.hexdigest():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "root")
            for path, (src, mode) in spec["files"].items():
                dst = root + path
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if src is None:  # a directory of the package
                    os.chmod(dst, mode)
                    continue
                if "\n" in src:
                    with open(dst, "w") as f:
                        f.write(src)
                else:
                    shutil.copyfile(src, dst)
                os.chmod(dst, mode)
            os.makedirs(os.path.join(root, "DEBIAN"))
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _dirs, fs in os.walk(root) for f in fs) // 1024
            control = ["Package: " + name, "Version: %s-%s" % (spec["version"], REVISION), "Architecture: " + ARCH,
                       "Maintainer: juno.hub lab build <juno-hub@localhost>", "Installed-Size: %d" % size,
                       "Section: admin", "Priority: optional", "Homepage: https://kubernetes.io"]
            if spec["depends"]:
                control.append("Depends: " + spec["depends"])
            control.append("Description: %s\n Built by juno.hub's tests/components/build.py from its Go module." % spec["description"])
            with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
                f.write("\n".join(control) + "\n")
            for d, dirs, fs in os.walk(root):
                for x in dirs + fs:
                    os.utime(os.path.join(d, x), (epoch, epoch), follow_symlinks=False)
            env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
            subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", root, deb + ".tmp"],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            os.replace(deb + ".tmp", deb)
        with open(stamp, "w") as f:
            f.write(h.hexdigest())
        written.append(os.path.basename(deb))
    say("packages for Kubernetes %s in %s: %s" % (kube, out, ", ".join(written) if written else "up to date"))


def helm_archive(version, binary, out, epoch, say):
    """helm-v<version>-linux-amd64.tar.gz laid out as get.helm.sh's (linux-amd64/helm), with a
    .sha256sum beside it, for kubernetes_packages_helm_offline_file. Reproducible: same binary,
    same checksum."""
    import gzip
    import io
    import tarfile

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "helm-v%s-linux-%s.tar.gz" % (version, ARCH))
    stamp = path + ".inputs"
    key = file_sha(binary)
    if os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == key:
        return path
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, src, mode in (("linux-%s" % ARCH, None, 0o755), ("linux-%s/helm" % ARCH, binary, 0o755)):
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = epoch, mode, 0, 0, "root", "root"
            if src is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            else:
                ti.size = os.path.getsize(src)
                with open(src, "rb") as f:
                    tar.addfile(ti, f)
    with open(path + ".tmp", "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
            gz.write(raw.getvalue())
    os.replace(path + ".tmp", path)
    with open(path + ".sha256sum", "w") as f:
        f.write("%s  %s\n" % (file_sha(path), os.path.basename(path)))
    with open(stamp, "w") as f:
        f.write(key)
    say("wrote %s" % os.path.basename(path))
    return path
