#!/usr/bin/env python
"""`make bench`: how long site.yml takes on N nodes, how little a rerun costs, and what adding a
node costs, measured in one run on systemd containers (plus the NFS server and the AD DC).

Figures (each the median of BENCH_REPEAT runs, default 3):
  T_first   first run of site.yml on fresh node containers (preflight, nodes, storage, render phases)
  T_noop    the same run again; changed=0 on every host is asserted
  T_add     one more worker in the inventory, site.yml again; changed=0 asserted on the existing hosts
  T_single  a fresh single-node site (one control plane + the NFS server)
  stock     T_first and T_noop with Ansible's stock settings (no pipelining, no fact cache,
            default forks and gathering), as the baseline
  apply     T_first and T_noop of an apply-mode site (a real kubeadm cluster: 1 control plane,
            2 workers, from the components make k8s-components built), median of
            BENCH_APPLY_REPEAT (default 2) fresh sites; changed=0 asserted on the rerun.
            BENCH_APPLY=0 leaves it out; BENCH_ONLY=apply measures it alone.
plus the ten slowest tasks of a tuned T_first (ansible.posix.profile_tasks) and the control
node's peak memory during T_first. Prints a table; writes bench/results/site-<time>.json.

The benchmark reports; it asserts only correctness (changed=0), never times.
"""

import datetime
import importlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "harness"))
sitekit = importlib.import_module("sitekit")
TOP = sitekit.TOP

N = int(os.environ.get("BENCH_NODES", "8"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
RESULTS = os.path.join(HERE, "results")
INVENTORY = os.path.join(TOP, ".cache", "bench", "inventory")
FACTS = os.path.join(TOP, ".cache", "bench", "facts")
STOCK_CFG = os.path.join(HERE, "stock.cfg")

if N < 1:
    raise SystemExit("BENCH_NODES must be at least 1")
# N nodes: 3 control planes from N >= 4 (1 below), the rest workers; up to REPEAT more workers for T_add.
CPS = 3 if N >= 4 else 1
NODES = {"cp%d" % i: "kube_control_plane" for i in range(1, CPS + 1)}
NODES.update({"w%d" % i: "kube_workers" for i in range(1, N - CPS + REPEAT + 1)})
NODES["nfs1"] = "nfs_server"
BASE_HOSTS = ["cp%d" % i for i in range(1, CPS + 1)] + ["w%d" % i for i in range(1, N - CPS + 1)] + ["nfs1"]
SINGLE_HOSTS = ["cp1", "nfs1"]

SITE = sitekit.Site("bench", "172.29.8.0/24", INVENTORY, NODES, say=lambda m: print("bench: " + m, flush=True))
APPLY_REPEAT = int(os.environ.get("BENCH_APPLY_REPEAT", "2"))
APPLY_NODES = {"cp1": "kube_control_plane", "w1": "kube_workers", "w2": "kube_workers", "nfs1": "nfs_server"}
APPLY_INVENTORY = os.path.join(TOP, ".cache", "bench", "apply-inventory")
APPLY_SITE = sitekit.Site("benchapply", "172.29.12.0/24", APPLY_INVENTORY, APPLY_NODES, apply=True,
                          say=lambda m: print("bench: " + m, flush=True))


def rss_of_tree(pid):
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open("/proc/%d/statm" % p) as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return total


def run_site(stock=False, profile=False, label="", inventory=INVENTORY, facts=FACTS):
    """Run site.yml once; return (seconds, recap {host: changed}, peak bytes, output)."""
    env = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_CACHE_PLUGIN_CONNECTION": facts}
    if stock:
        env["ANSIBLE_CONFIG"] = STOCK_CFG
    else:
        env["ANSIBLE_CONFIG"] = os.path.join(TOP, "ansible.cfg")
    if profile:
        env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
        env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "all"
    cmd = [os.path.join(sitekit.BIN, "ansible-playbook"), "-i", inventory,
           "--vault-password-file", os.path.join(inventory, ".vault-pass"), os.path.join(TOP, "playbooks", "site.yml")]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=TOP, env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], rss_of_tree(proc.pid))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.communicate()[0]
    seconds = time.monotonic() - start
    sampler.join()
    print("bench:   %s: %.1f s" % (label or "run", seconds), flush=True)
    log = os.path.join(TOP, ".cache", "bench", "last-%s.log" % (label or "run"))
    with open(log, "w") as f:
        f.write(out)
    if proc.returncode != 0:
        print(out[-6000:])
        raise SystemExit("bench: site.yml failed (%s); full output in %s" % (label, os.path.relpath(log, TOP)))
    recap = {h: int(c) for h, c in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", out, re.M)}
    return seconds, recap, peak[0], out


def slowest_tasks(out, count=10):
    """The profile_tasks summary lines: 'role : task ---- 12.34s'."""
    summary = out.rsplit("=" * 20, 1)[-1]
    rows = re.findall(r"^(.+?) -{3,} (\d+\.\d+)s\s*$", summary, re.M)
    rows = sorted(((float(s), name.strip()) for name, s in rows), reverse=True)
    return [{"task": name, "seconds": round(s, 2)} for s, name in rows[:count]]


def fresh(hosts):
    """Remove the node containers and the fact cache: the next run starts from new machines."""
    for host in NODES:
        SITE.remove_container(host)
    shutil.rmtree(FACTS, ignore_errors=True)
    shutil.rmtree(os.path.join(INVENTORY, "rendered"), ignore_errors=True)
    SITE.up(hosts)


def assert_unchanged(recap, hosts, what):
    changed = {h: c for h, c in recap.items() if h in hosts and c}
    if changed:
        raise SystemExit("bench: %s changed something on hosts that should be unchanged: %s" % (what, changed))


def median(xs):
    return round(statistics.median(xs), 1)


def save_partial(t):
    """The runs measured so far, so that an interrupted benchmark still leaves its figures."""
    with open(os.path.join(RESULTS, "site-partial.json"), "w") as f:
        json.dump({"nodes": N, "repeat": REPEAT, "seconds": {k: [round(x, 1) for x in v] for k, v in t.items()}}, f, indent=2)
        f.write("\n")


def apply_mode():
    """T_first and T_noop of fresh apply-mode sites (real clusters). Returns {first: [...], noop: [...]}."""
    t = {"first": [], "noop": []}
    facts = os.path.join(TOP, ".cache", "bench", "apply-facts")
    for i in range(APPLY_REPEAT):
        APPLY_SITE.say("apply-mode T_first %d/%d: fresh cluster site" % (i + 1, APPLY_REPEAT))
        for host in APPLY_NODES:
            APPLY_SITE.remove_container(host)
        shutil.rmtree(facts, ignore_errors=True)
        shutil.rmtree(os.path.join(APPLY_INVENTORY, "rendered"), ignore_errors=True)
        APPLY_SITE.up()
        t["first"].append(run_site(label="apply-first", inventory=APPLY_INVENTORY, facts=facts)[0])
        APPLY_SITE.say("apply-mode T_noop %d/%d" % (i + 1, APPLY_REPEAT))
        secs, recap = run_site(label="apply-noop", inventory=APPLY_INVENTORY, facts=facts)[:2]
        assert_unchanged(recap, list(APPLY_NODES), "the apply-mode no-op rerun")
        t["noop"].append(secs)
    if os.environ.get("BENCH_KEEP") != "1":
        APPLY_SITE.down()
    return t


def main():
    os.makedirs(RESULTS, exist_ok=True)
    os.makedirs(os.path.dirname(INVENTORY), exist_ok=True)
    if os.environ.get("BENCH_ONLY") == "apply":
        # The apply-mode figures alone (the render-mode part takes most of an hour).
        applied = apply_mode()
        m = {k: median(v) for k, v in applied.items()}
        result = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "repeat": APPLY_REPEAT, "cpus": os.cpu_count(),
                  "seconds": {"apply_" + k: [round(x, 1) for x in v] for k, v in applied.items()},
                  "median_seconds": {"apply_" + k: v for k, v in m.items()},
                  "ratios": {"apply_noop_over_first": round(m["noop"] / m["first"], 3)}}
        with open(os.path.join(RESULTS, "site-apply-latest.json"), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print("apply mode (real cluster, 1 control plane + 2 workers), median of %d: T_first %.1f s, T_noop %.1f s, ratio %.3f"
              % (APPLY_REPEAT, m["first"], m["noop"], result["ratios"]["apply_noop_over_first"]))
        return
    t = {"single": [], "first": [], "noop": [], "add": [], "first_stock": [], "noop_stock": []}
    peak_first, slow = 0, []

    for i in range(REPEAT):
        SITE.say("T_single %d/%d: fresh single-node site" % (i + 1, REPEAT))
        fresh(SINGLE_HOSTS)
        t["single"].append(run_site(label="single")[0])
        save_partial(t)

    for stock in (False, True):
        key = "_stock" if stock else ""
        for i in range(REPEAT):
            SITE.say("T_first%s %d/%d: fresh %d-node site" % (key, i + 1, REPEAT, N))
            fresh(BASE_HOSTS)
            secs, recap, peak, out = run_site(stock=stock, profile=not stock and i == 0, label="first" + key)
            t["first" + key].append(secs)
            if not stock:
                peak_first = max(peak_first, peak)
                if i == 0:
                    slow = slowest_tasks(out)
            SITE.say("T_noop%s %d/%d" % (key, i + 1, REPEAT))
            secs, recap = run_site(stock=stock, label="noop" + key)[:2]
            assert_unchanged(recap, BASE_HOSTS, "the no-op rerun")
            t["noop" + key].append(secs)
            save_partial(t)

    # Tuned site of N nodes is up (the last stock run left it converged; one tuned no-op run refreshes the fact cache).
    run_site(label="warm")
    hosts = list(BASE_HOSTS)
    for i in range(REPEAT):
        new = "w%d" % (N - CPS + i + 1)
        SITE.say("T_add %d/%d: adding %s" % (i + 1, REPEAT, new))
        SITE.ensure_nodes([new])
        hosts.append(new)
        SITE.write_inventory(SITE.secret("svc-juno"), hosts)
        secs, recap = run_site(label="add")[:2]
        assert_unchanged(recap, [h for h in hosts if h != new], "adding %s" % new)
        if not recap.get(new):
            raise SystemExit("bench: adding %s changed nothing on it; the run did not prepare the new node" % new)
        t["add"].append(secs)
        save_partial(t)

    if os.environ.get("BENCH_APPLY", "1") != "0":
        applied = apply_mode()
        t["apply_first"], t["apply_noop"] = applied["first"], applied["noop"]
        save_partial(t)

    m = {k: median(v) for k, v in t.items()}
    ratios = {
        "noop_over_first": round(m["noop"] / m["first"], 3),
        "add_over_single": round(m["add"] / m["single"], 3),
        "tuned_over_stock_first": round(m["first"] / m["first_stock"], 3),
        "tuned_over_stock_noop": round(m["noop"] / m["noop_stock"], 3),
    }
    if "apply_first" in m:
        ratios["apply_noop_over_first"] = round(m["apply_noop"] / m["apply_first"], 3)
    result = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nodes": N, "control_planes": CPS, "repeat": REPEAT, "cpus": os.cpu_count(),
        "seconds": {k: [round(x, 1) for x in v] for k, v in t.items()},
        "median_seconds": m, "ratios": ratios,
        "peak_control_node_memory_mib_first": round(peak_first / 2**20, 1),
        "slowest_tasks_first": slow,
    }
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    for name in ("site-%s.json" % stamp, "site-latest.json"):
        with open(os.path.join(RESULTS, name), "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")

    print("\njuno.hub site benchmark: %d nodes (%d control planes) + NFS server + AD DC, median of %d, %d CPUs"
          % (N, CPS, REPEAT, os.cpu_count()))
    print("%-34s %10s %10s" % ("figure", "tuned (s)", "stock (s)"))
    print("%-34s %10.1f %10.1f" % ("T_first  first run", m["first"], m["first_stock"]))
    print("%-34s %10.1f %10.1f" % ("T_noop   rerun, changed=0", m["noop"], m["noop_stock"]))
    print("%-34s %10.1f %10s" % ("T_add    one more node", m["add"], "-"))
    print("%-34s %10.1f %10s" % ("T_single single-node site", m["single"], "-"))
    print("ratios: T_noop/T_first %.3f   T_add/T_single %.3f   tuned/stock first %.3f   tuned/stock noop %.3f"
          % (ratios["noop_over_first"], ratios["add_over_single"], ratios["tuned_over_stock_first"], ratios["tuned_over_stock_noop"]))
    if "apply_first" in m:
        print("apply mode (real cluster, 1 control plane + 2 workers), median of %d: T_first %.1f s, T_noop %.1f s, ratio %.3f"
              % (APPLY_REPEAT, m["apply_first"], m["apply_noop"], ratios["apply_noop_over_first"]))
    print("peak control-node memory during T_first: %.1f MiB" % result["peak_control_node_memory_mib_first"])
    print("ten slowest tasks of T_first:")
    for row in slow:
        print("  %7.2fs  %s" % (row["seconds"], row["task"]))
    print("written: bench/results/site-%s.json" % stamp)
    if os.environ.get("BENCH_KEEP") != "1":
        SITE.down()


if __name__ == "__main__":
    main()
