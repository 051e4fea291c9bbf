#!/usr/bin/env python
"""Build the Kubernetes components for the lab from their Go modules, and package them the way an
air-gapped site receives them (`make k8s-components`).

No binary, chart or image can be downloaded here, but the Go module proxy serves Go source. Each
component is built with `go install` from a small module of the project's own under
tests/components/modules/<name>-<version>/ (go.mod and go.sum committed, so every build is pinned
and checked against go.sum). Nothing but Go code comes from the proxy.

Outputs, cached under .cache/components/ by version:
  bin/<name>-<version>/           the binaries (go install: relinked only when their inputs change)
  debs/<kubernetes version>/      kubeadm, kubelet, kubectl, cri-tools, kubernetes-cni .deb files,
                                  named and versioned as pkgs.k8s.io names them
  images/<kubernetes version>/    OCI image archives with the names kubeadm and the manifests ask for
                                  (registry.k8s.io/kube-apiserver:v1.32.4, ...), plus images.json

Every run runs every build command (issue: the cold path must not hide behind leftovers); Go's own
module and build caches make a warm run take seconds. Packages and images are rewritten only when
their content changes, and are reproducible: the same inputs give the same digests.

  build.py [--kubernetes 1.32.4] [--only NAME ...] [--list] [--write-go-mod]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import oci  # noqa: E402  (tests/components/oci.py: importable only after the sys.path line above)
import debs  # noqa: E402  (tests/components/debs.py: importable only after the sys.path line above)

CACHE = os.path.join(TOP, ".cache", "components")
MODULES = os.path.join(HERE, "modules")
# The Kubernetes version the lab runs by default (juno_kubernetes_version in the lab inventory),
# and the older patch release the upgrade drill starts from (tests/integration/test_upgrade.py).
KUBERNETES_DEFAULT = "1.32.4"
KUBERNETES_UPGRADE_FROM = "1.32.2"
KUBE_BINARIES = ["kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager",
                 "kube-scheduler", "kube-proxy"]
# A source date for reproducible packages and images (the commit date of Kubernetes v1.32.4 would do
# as well; any fixed value keeps digests stable).
SOURCE_DATE_EPOCH = 1744761600  # 2025-04-16T00:00:00Z


def kube_ldflags(version):
    """The version stamp that hack/lib/version.sh gives release builds (kubeadm and the kubelet
    read it: without it they report v0.0.0-master and kubeadm refuses to run)."""
    major, minor = version.split(".")[:2]
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(SOURCE_DATE_EPOCH))
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for key, value in (("gitVersion", "v" + version), ("gitMajor", major), ("gitMinor", minor),
                           ("gitTreeState", "clean"), ("gitCommit", "juno-hub-go-module-build"),
                           ("buildDate", date)):
            flags.append("-X '%s.%s=%s'" % (pkg, key, value))
    return " ".join(flags)


def components(kube):
    """Every component for Kubernetes `kube`: name, module, version, main packages, ldflags.
    Versions are the ones kubeadm `kube` asks for (cmd/kubeadm/app/constants) or, for tools, the
    ones pkgs.k8s.io ships beside it."""
    return [
        dict(name="kubernetes", module="k8s.io/kubernetes", version=kube,
             packages=["k8s.io/kubernetes/cmd/" + b for b in KUBE_BINARIES], ldflags=kube_ldflags(kube)),
        dict(name="etcd", module="go.etcd.io/etcd/server/v3", version="3.5.16",
             packages=["go.etcd.io/etcd/server/v3"], rename={"server": "etcd"},
             # The image carries etcdctl and etcdutl beside etcd, as registry.k8s.io/etcd does
             # (the etcd_backup role runs them from it: etcd_backup_tools_source container).
             extra=[dict(module="go.etcd.io/etcd/etcdctl/v3", packages=["go.etcd.io/etcd/etcdctl/v3"]),
                    dict(module="go.etcd.io/etcd/etcdutl/v3", packages=["go.etcd.io/etcd/etcdutl/v3"])],
             ldflags="-s -w"),
        dict(name="coredns", module="github.com/coredns/coredns", version="1.11.3",
             packages=["github.com/coredns/coredns"], ldflags="-s -w"),
        dict(name="cni-plugins", module="github.com/containernetworking/plugins", version="1.6.0",
             packages=["github.com/containernetworking/plugins/plugins/main/" + p for p in ("bridge", "loopback")]
             + ["github.com/containernetworking/plugins/plugins/ipam/host-local"]
             + ["github.com/containernetworking/plugins/plugins/meta/portmap"],
             ldflags="-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v1.6.0"),
        dict(name="cri-tools", module="sigs.k8s.io/cri-tools", version="1.34.0",
             packages=["sigs.k8s.io/cri-tools/cmd/crictl"],
             ldflags="-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v1.34.0"),
        dict(name="helm", module="helm.sh/helm/v3", version="3.18.4",
             packages=["helm.sh/helm/v3/cmd/helm"],
             ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=v3.18.4 "
                     "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"),
        dict(name="pause", module=None, version="3.10", packages=["juno.hub/components/pause"], ldflags="-s -w"),
        # The CNI of the lab: it enforces NetworkPolicy and builds here. v2.1.0 is the one release
        # the module proxy serves; the collection's default image is a newer one.
        dict(name="kube-router", module="github.com/cloudnativelabs/kube-router/v2", version="2.1.0",
             packages=["github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"],
             ldflags="-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v2.1.0"),
        dict(name="kube-vip", module="github.com/kube-vip/kube-vip", version="0.9.2",
             packages=["github.com/kube-vip/kube-vip"],
             ldflags="-s -w -X main.Version=v0.9.2"),
        # CIS Kubernetes Benchmark checks. Its checks are YAML files of the module (cfg/), which
        # the binary reads at run time; they are copied beside it.
        dict(name="kube-bench", module="github.com/aquasecurity/kube-bench", version="0.9.4",
             packages=["github.com/aquasecurity/kube-bench"], data={"cfg": "cfg"},
             ldflags="-s -w -X github.com/aquasecurity/kube-bench/cmd.KubeBenchVersion=v0.9.4"),
        # The lab's test workload (tests/components/netcheck): HTTP server and TCP/DNS probes.
        dict(name="netcheck", module=None, version="1.0.0", packages=["juno.hub/components/netcheck"],
             ldflags="-s -w -X main.version=1.0.0"),
    ]


def say(msg):
    print("components: " + msg, flush=True)


def run(cmd, cwd=None, env=None, quiet=False):
    r = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True, check=False)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise SystemExit("components: failed: %s (in %s)" % (" ".join(cmd), cwd or os.getcwd()))
    return r.stdout


def go_env(extra=None):
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-trimpath -buildvcs=false", GOOS="linux")
    env.update(extra or {})
    return env


def module_dir(c):
    if c["module"] is None:
        return os.path.join(HERE, c["name"])
    return os.path.join(MODULES, "%s-%s" % (c["name"], c["version"]))


def dependency_go_mod(module, version):
    out = run(["go", "mod", "download", "-json", "%s@v%s" % (module, version)], env=go_env())
    return json.loads(run(["go", "mod", "edit", "-json", json.loads(out)["GoMod"]], env=go_env()))


def write_go_mod(c):
    """A module of our own that requires the component. Its replace directives are ignored when it
    is a dependency, so carry them over: a local path (k8s.io/kubernetes' staging modules) becomes
    the published release of the same version (v0.<minor>.<patch> for Kubernetes, or the module's
    own version), any other replacement is copied as it is."""
    mods = [c] + [dict(e, version=c["version"]) for e in c.get("extra", [])]
    lines = ["// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.",
             "module juno.hub/components/%s" % c["name"], "", "go 1.23.0", "", "require ("]
    lines += ["\t%s v%s" % (m["module"], m["version"]) for m in mods]
    lines += [")", ""]
    replaces = {}
    for m in mods:
        gomod = dependency_go_mod(m["module"], m["version"])
        required = {r["Path"]: r["Version"] for r in gomod["Require"] or []}
        for r in gomod["Replace"] or []:
            old, new = r["Old"], r["New"]
            left = old["Path"] + (" " + old["Version"] if old.get("Version") else "")
            if new["Path"].startswith("."):
                # A module of the same repository: its published release. Kubernetes requires its
                # staging modules as v0.0.0; their releases are v0.<minor>.<patch>.
                version = required.get(old["Path"])
                if version is None:
                    continue
                if version == "v0.0.0" and m["module"] == "k8s.io/kubernetes":
                    version = "v0." + m["version"].split(".", 1)[1]
                right = "%s %s" % (old["Path"], version)
            else:
                right = "%s %s" % (new["Path"], new["Version"])
            replaces[left] = right
    if replaces:
        lines.append("replace (")
        lines += ["\t%s => %s" % (k, v) for k, v in sorted(replaces.items())]
        lines += [")", ""]
    d = module_dir(c)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "go.mod"), "w") as f:
        f.write("\n".join(lines))
    # go.sum from the proxy's checksums: go mod download checks each module against sum.golang.org.
    open(os.path.join(d, "go.sum"), "a").close()
    run(["go", "mod", "download"] + [m["module"] for m in mods], cwd=d, env=go_env())
    for m in mods:
        run(["go", "list", "-mod=mod", "-deps"] + m["packages"], cwd=d, env=go_env())
    say("wrote %s" % os.path.relpath(os.path.join(d, "go.mod"), TOP))


def build(c, step, total):
    d = module_dir(c)
    if not os.path.exists(os.path.join(d, "go.mod")):
        raise SystemExit("components: %s has no go.mod; run tests/components/build.py --write-go-mod" % os.path.relpath(d, TOP))
    out = os.path.join(CACHE, "bin", "%s-%s" % (c["name"], c["version"]))
    os.makedirs(out, exist_ok=True)
    start = time.time()
    say("building %s %s, %d of %d" % (c["name"], c["version"], step, total))
    groups = [c] + [dict(e, ldflags=c["ldflags"]) for e in c.get("extra", [])]
    for g in groups:
        # go install relinks only what changed (it compares build IDs), so a warm run is quick
        # and still runs the build.
        run(["go", "install", "-ldflags", g["ldflags"]] + g["packages"], cwd=d, env=go_env({"GOBIN": out}))
        for src, dst in g.get("rename", {}).items():
            s, t = os.path.join(out, src), os.path.join(out, dst)
            if not os.path.exists(t) or not same(s, t):
                shutil.copy2(s, t)
    for src, dst in c.get("data", {}).items():
        # Run-time data of the module (kube-bench's check definitions), from the module cache.
        mod = json.loads(run(["go", "list", "-m", "-json", c["module"]], cwd=d, env=go_env()))["Dir"]
        target = os.path.join(out, dst)
        if os.path.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(os.path.join(mod, src), target)
        for root, dirs, files in os.walk(target):  # the module cache is read-only
            for x in dirs + files:
                os.chmod(os.path.join(root, x), 0o755 if x in dirs else 0o644)
    say("built %s %s in %.0f s" % (c["name"], c["version"], time.time() - start))
    return out


def same(a, b):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubernetes", action="append",
                   help="Kubernetes version(s) to build (default: %s and %s)" % (KUBERNETES_DEFAULT, KUBERNETES_UPGRADE_FROM))
    p.add_argument("--only", action="append", help="build only these components")
    p.add_argument("--list", action="store_true", help="list the components and versions, build nothing")
    p.add_argument("--write-go-mod", action="store_true", help="(re)write the modules' go.mod and go.sum from the proxy")
    p.add_argument("--missing-only", action="store_true", help="with --write-go-mod: only modules without a go.mod")
    p.add_argument("--no-package", action="store_true", help="build the binaries only")
    args = p.parse_args()
    kubes = args.kubernetes or [KUBERNETES_DEFAULT, KUBERNETES_UPGRADE_FROM]
    todo, seen = [], set()
    for kube in kubes:
        for c in components(kube):
            key = (c["name"], c["version"])
            if key in seen or (args.only and c["name"] not in args.only):
                continue
            seen.add(key)
            todo.append((kube, c))
    if args.list:
        for kube, c in todo:
            print("%-12s %-10s %s" % (c["name"], c["version"], c["module"] or "(tests/components/%s)" % c["name"]))
        return
    if shutil.which("go") is None:
        raise SystemExit("components: the go command is missing; Go 1.23 or newer is needed (https://go.dev/doc/install)")
    if args.write_go_mod:
        for _kube, c in todo:
            if c["module"] and not (args.missing_only and os.path.exists(os.path.join(module_dir(c), "go.mod"))):
                write_go_mod(c)
    start = time.time()
    built = {}
    for i, (kube, c) in enumerate(todo, 1):
        built[(c["name"], c["version"])] = build(c, i, len(todo))
    say("all %d builds ran in %.0f s" % (len(todo), time.time() - start))
    if args.no_package or args.only:
        return
    for kube in kubes:
        comps = {c["name"]: c for c in components(kube)}
        bins = {n: built[(c["name"], c["version"])] for n, c in comps.items()}
        debs.package(kube, comps, bins, os.path.join(CACHE, "debs", kube), SOURCE_DATE_EPOCH, say)
        debs.helm_archive(comps["helm"]["version"], os.path.join(bins["helm"], "helm"), os.path.join(CACHE, "dist"),
                          SOURCE_DATE_EPOCH, say)
        oci.lab_images(kube, comps, bins, os.path.join(CACHE, "images", kube), SOURCE_DATE_EPOCH, say)
    say("done in %.0f s; packages and images under %s" % (time.time() - start, os.path.relpath(CACHE, TOP)))


if __name__ == "__main__":
    main()
