#!/usr/bin/env python
"""The local container lab (`make lab`, `make lab-destroy`).

up:   systemd containers for 1 control plane, 2 workers and 1 NFS server, a Samba AD DC with its
      own CA and a few users in nested groups, an inventory in inventories/lab/, and
      playbooks/site.yml run against it with juno_apply: true: a real kubeadm cluster from the
      components that tests/components/build.py built (make k8s-components). With --render,
      juno_apply: false (no cluster; nothing to build). Rerunning reuses what exists and changes
      nothing.
down: removes the containers, the network and inventories/lab/.

The containers share the Docker network juno-lab (172.29.0.0/24); the host reaches them there.
"""

import argparse
import importlib
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sitekit = importlib.import_module("sitekit")
TOP = sitekit.TOP

LAB = sitekit.Site(
    "lab", "172.29.0.0/24", os.path.join(TOP, "inventories", "lab"),
    {"cp1": "kube_control_plane", "w1": "kube_workers", "w2": "kube_workers", "nfs1": "nfs_server"},
)


def up(args):
    LAB.apply = not args.render
    mode = "apply" if LAB.apply else "render"
    marker = os.path.join(LAB.inventory, ".mode")
    if os.path.exists(marker) and open(marker).read().strip() != mode:
        # What the other mode rendered does not describe this one: start the render directory anew.
        shutil.rmtree(os.path.join(LAB.inventory, "rendered"), ignore_errors=True)
    LAB.up()
    with open(marker, "w") as f:
        f.write(mode + "\n")
    LAB.say("inventory written to %s" % os.path.relpath(LAB.inventory, TOP))
    if args.no_run:
        return
    LAB.say("running playbooks/site.yml against it (juno_apply: %s)" % ("true" if LAB.apply else "false"))
    rc = LAB.playbook("site.yml", args.ansible_args).returncode
    if rc == 0:
        LAB.say("done. Rendered artifacts are in %s. `make lab` again changes nothing; `make lab-destroy` removes the lab."
                % os.path.relpath(os.path.join(LAB.inventory, "rendered"), TOP))
        if LAB.apply:
            approved = LAB.approve_serving_csrs()
            if approved:
                LAB.say("approved the kubelet serving certificates of %s (what kubelet-csr-approver does on a site)"
                        % ", ".join(sorted(set(approved))))
            for host, targets in (("cp1", None), ("w1", ["node"])):
                r = LAB.kube_bench(host, targets)
                t = r["totals"]
                LAB.say("kube-bench (CIS 1.9) on %s: %d PASS, %d FAIL, %d WARN, %d INFO%s" % (
                    host, t["pass"], t["fail"], t["warn"], t["info"],
                    "; FAIL: " + ", ".join(item for item, _text in r["fail"]) if r["fail"] else ""))
            LAB.say("every FAIL and WARN is explained in docs/security.md")
            LAB.say("kubectl on the control plane: docker exec %s kubectl get nodes" % LAB.container("cp1"))
    else:
        LAB.say("site.yml failed (exit %d); the containers are left running for a look: `docker ps --filter name=juno-lab-`" % rc)
    sys.exit(rc)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--render", action="store_true", help="render mode (juno_apply: false): no cluster, nothing to build")
    u.add_argument("--no-run", action="store_true", help="bring up the lab and write the inventory, do not run site.yml")
    u.add_argument("ansible_args", nargs="*", help="extra ansible-playbook arguments (after --)")
    sub.add_parser("down")
    args = p.parse_args()
    if args.cmd == "up":
        up(args)
    else:
        LAB.down()


if __name__ == "__main__":
    main()
