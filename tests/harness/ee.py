#!/usr/bin/env python
"""Build juno.hub's execution environment here (`make ee`): execution-environment.yml with local sources.

execution-environment.yml is what a site builds: collections by their Galaxy names and versions,
a public base image. Neither Galaxy nor an image registry can be reached here, so this script
builds the same definition with three things put in their place:

- the collections, as local tarballs: juno.hub built from this checkout, every other one built
  with `ansible-galaxy collection build` from the copy the `ansible` package installed in .venv,
  which must have the version the definition pins (else this stops and says which);
- the base image: juno-ee-base:bookworm, built on the harness's juno-test-base:bookworm
  (tests/images/ee-base: Debian's python3 and pip, the machine's CA certificates, apt-get spoken
  to as dnf), with the python_interpreter, package manager and pip settings that base needs;
- `--offline` for ansible-galaxy, so that nothing is looked up on a Galaxy server.

Everything else is as a site gets it: ansible-core and ansible-runner, the Python requirements
of the definition and those the collections declare (ansible-builder's introspection), the
system packages bindep finds for Debian, from the package index and Debian's archive.

The image carries the label juno.hub.source, a hash of what builds it (the definition, the
contents of the tarballs, the base image's ID, this script); an image whose label matches is
reused. FORCE=1, and every CI run (CI=true), build it again without Docker's cache.

Usage: ee.py [--tag TAG] [--force] [--print-tag]
"""

import argparse
import copy
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(TOP, ".venv", "bin")
DEFINITION = os.path.join(TOP, "execution-environment.yml")
OUT = os.path.join(TOP, ".cache", "ee")
BASE_DIR = os.path.join(TOP, "tests", "images", "ee-base")
PARENT = "juno-test-base:bookworm"
BASE = "juno-ee-base:bookworm"
LABEL = "juno.hub.source"
# collection_info keys of MANIFEST.json that galaxy.yml takes as they are
GALAXY_KEYS = ("namespace", "name", "version", "readme", "authors", "description", "license", "license_file",
               "tags", "dependencies", "repository", "documentation", "homepage", "issues")


def say(msg):
    print("ee: " + msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def docker_label(image):
    r = subprocess.run(["docker", "image", "inspect", "-f", '{{ index .Config.Labels "%s" }}' % LABEL, image],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def docker_id(image):
    return run(["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True).stdout.strip()


def definition():
    with open(DEFINITION) as f:
        return yaml.safe_load(f)


def default_tag(d=None):
    d = d or definition()
    hub = next(c for c in d["dependencies"]["galaxy"]["collections"] if c["name"] == "juno.hub")
    return "juno-hub-ee:%s" % hub["version"]


def installed_collections():
    """Roots that hold ansible_collections/<ns>/<name> in .venv (the `ansible` package's)."""
    py = os.path.join(BIN, "python")
    paths = run([py, "-c", "import ansible_collections, json; print(json.dumps(list(ansible_collections.__path__)))"],
                capture_output=True).stdout
    return [p for p in json.loads(paths) if os.path.realpath(p) != os.path.realpath(os.path.join(TOP, ".collections", "ansible_collections"))]


def build_installed(fqcn, version, roots, dest, work):
    """ansible-galaxy collection build of an installed collection: its MANIFEST.json's
    collection_info becomes galaxy.yml (an installed collection has none)."""
    ns, name = fqcn.split(".")
    for root in roots:
        src = os.path.join(root, ns, name)
        if os.path.isfile(os.path.join(src, "MANIFEST.json")):
            break
    else:
        sys.exit("ee.py: %s is not installed in .venv (the `ansible` package of requirements.txt has it): run make setup" % fqcn)
    with open(os.path.join(src, "MANIFEST.json")) as f:
        info = json.load(f)["collection_info"]
    if info["version"] != version:
        sys.exit("ee.py: execution-environment.yml pins %s %s, .venv has %s; the pins follow the `ansible` package of "
                 "requirements.txt: update one or the other" % (fqcn, version, info["version"]))
    copy_dir = os.path.join(work, ns, name)
    shutil.copytree(src, copy_dir, ignore=shutil.ignore_patterns("MANIFEST.json", "FILES.json", "__pycache__", "*.pyc"))
    galaxy = {k: info[k] for k in GALAXY_KEYS if info.get(k) not in (None, [], {}, "")}
    if galaxy.get("license") and galaxy.get("license_file"):
        del galaxy["license_file"]
    with open(os.path.join(copy_dir, "galaxy.yml"), "w") as f:
        yaml.safe_dump(galaxy, f, sort_keys=False)
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", dest, copy_dir],
        capture_output=True)
    return os.path.join(dest, "%s-%s-%s.tar.gz" % (ns, name, version))


def build_checkout(version, dest):
    with open(os.path.join(TOP, "galaxy.yml")) as f:
        have = yaml.safe_load(f)["version"]
    if have != version:
        sys.exit("ee.py: execution-environment.yml pins juno.hub %s, galaxy.yml says %s" % (version, have))
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", dest, TOP],
        capture_output=True)
    return os.path.join(dest, "juno-hub-%s.tar.gz" % version)


def tarball_digest(path):
    """Hash of a collection tarball's members (names, modes, contents), not of its bytes: the
    gzip header and the file times change with every build."""
    h = hashlib.sha256()
    with tarfile.open(path) as t:
        for m in sorted(t.getmembers(), key=lambda m: m.name):
            h.update(("%s %o %s\n" % (m.name, m.mode, m.type.decode() if isinstance(m.type, bytes) else m.type)).encode())
            if m.isfile():
                h.update(t.extractfile(m).read())
    return h.hexdigest()


def ca_certificates():
    return sorted(glob.glob("/usr/local/share/ca-certificates/**/*.crt", recursive=True))


def ensure_base(force):
    """juno-ee-base:bookworm on the harness's base image (make images builds that one)."""
    if subprocess.run(["docker", "image", "inspect", PARENT], capture_output=True, check=False).returncode != 0:
        sys.exit("ee.py: %s is missing: run `make images`" % PARENT)
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(BASE_DIR, "*"))) + ca_certificates():
        h.update(path.encode() + b"\n")
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(docker_id(PARENT).encode())
    digest = h.hexdigest()[:16]
    if not force and docker_label(BASE) == digest:
        say("reusing %s" % BASE)
        return docker_id(BASE)
    say("building %s on %s (Debian's python3 and pip)" % (BASE, PARENT))
    with tempfile.TemporaryDirectory() as ctx:
        for path in glob.glob(os.path.join(BASE_DIR, "*")):
            shutil.copy2(path, ctx)
        os.makedirs(os.path.join(ctx, "ca"))
        for i, crt in enumerate(ca_certificates()):
            shutil.copy(crt, os.path.join(ctx, "ca", "%02d-%s" % (i, os.path.basename(crt))))
        log = os.path.join(OUT, "build-base.log")
        with open(log, "w") as f:
            r = subprocess.run(["docker", "build", "--no-cache", "--cpu-shares", "256", "--label", "%s=%s" % (LABEL, digest),
                                "-t", BASE, ctx],
                               stdout=f, stderr=subprocess.STDOUT, check=False)
        if r.returncode != 0:
            with open(log) as f:
                sys.stderr.write(f.read()[-6000:])
            sys.exit("ee.py: building %s failed (%s)" % (BASE, log))
    return docker_id(BASE)


def local_definition(d, tarballs):
    """The definition with local sources (see the module's docstring); everything else unchanged."""
    d = copy.deepcopy(d)
    d["images"] = {"base_image": {"name": BASE}}
    deps = d["dependencies"]
    deps["python_interpreter"] = {"python_path": "/usr/bin/python3"}  # Debian's; no package to install
    deps["galaxy"] = {"collections": [{"name": "collections/" + os.path.basename(t), "type": "file"} for t in tarballs]}
    d["additional_build_files"] = [{"src": "collections/*.tar.gz", "dest": "collections"}] + list(d.get("additional_build_files") or [])
    options = d.setdefault("options", {})
    options["package_manager_path"] = "/usr/local/sbin/juno-apt"
    options["skip_pip_install"] = True  # Debian's python3-pip is in the base image
    args = d.setdefault("build_arg_defaults", {})
    args["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"] = ("--offline " + args.get("ANSIBLE_GALAXY_CLI_COLLECTION_OPTS", "")).strip()
    return d


def build(tag=None, force=False):
    start = time.monotonic()
    d = definition()
    tag = tag or default_tag(d)
    os.makedirs(OUT, exist_ok=True)
    dist = os.path.join(OUT, "collections")
    shutil.rmtree(dist, ignore_errors=True)
    os.makedirs(dist)
    roots = installed_collections()
    tarballs = []
    with tempfile.TemporaryDirectory() as work:
        for c in d["dependencies"]["galaxy"]["collections"]:
            if c["name"] == "juno.hub":
                tarballs.append(build_checkout(str(c["version"]), dist))
            else:
                tarballs.append(build_installed(c["name"], str(c["version"]), roots, dist, work))
    say("collection tarballs: %s" % ", ".join(os.path.basename(t) for t in tarballs))
    base_id = ensure_base(force)
    local = local_definition(d, tarballs)
    with open(os.path.join(OUT, "execution-environment.yml"), "w") as f:
        f.write("# Written by tests/harness/ee.py from execution-environment.yml: local sources, local base image.\n")
        yaml.safe_dump(local, f, sort_keys=False)
    h = hashlib.sha256()
    h.update(yaml.safe_dump(local, sort_keys=True).encode())
    for t in tarballs:
        h.update(tarball_digest(t).encode())
    h.update(base_id.encode())
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    digest = h.hexdigest()[:16]
    if not force and docker_label(tag) == digest:
        say("reusing %s: nothing that builds it changed (%.0f s)" % (tag, time.monotonic() - start))
        return tag
    say("building %s with ansible-builder (a few minutes: pip installs from the package index)" % tag)
    context = os.path.join(OUT, "context")
    shutil.rmtree(context, ignore_errors=True)
    log = os.path.join(OUT, "build.log")
    cmd = [os.path.join(BIN, "ansible-builder"), "build", "--container-runtime", "docker", "-v", "3",
           "-f", os.path.join(OUT, "execution-environment.yml"), "-c", context, "-t", tag,
           # --cpu-shares: the build's containers yield the CPU to running ones (a lab, the tests).
           "--extra-build-cli-args", "--label %s=%s --cpu-shares 256" % (LABEL, digest)]
    if force:
        cmd.append("--no-cache")
    with open(log, "w") as f:
        r = subprocess.run(cmd, cwd=OUT, stdout=f, stderr=subprocess.STDOUT, check=False)
    if r.returncode != 0:
        with open(log) as f:
            sys.stderr.write(f.read()[-8000:])
        sys.exit("ee.py: ansible-builder failed; the whole log is %s" % os.path.relpath(log, TOP))
    size = run(["docker", "image", "inspect", "-f", "{{.Size}}", tag], capture_output=True).stdout.strip()
    # Layers of a replaced image are dangling now; drop them so repeated builds do not fill the disk.
    subprocess.run(["docker", "image", "prune", "-f", "--filter", "label=%s" % LABEL], capture_output=True, check=False)
    say("built %s (%d MB) in %.0f s; log: %s" % (tag, int(size) // 10**6, time.monotonic() - start, os.path.relpath(log, TOP)))
    return tag


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tag", help="image name (default: juno-hub-ee:<juno.hub version>)")
    p.add_argument("--force", action="store_true", help="build again without Docker's cache (also FORCE=1, CI=true)")
    p.add_argument("--print-tag", action="store_true", help="print the default image name and stop")
    args = p.parse_args()
    if args.print_tag:
        print(default_tag())
        return
    force = args.force or os.environ.get("FORCE") == "1" or os.environ.get("CI") == "true"
    build(args.tag, force)


if __name__ == "__main__":
    main()
