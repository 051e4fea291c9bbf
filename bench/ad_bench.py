#!/usr/bin/env python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AD lookup benchmark (`make bench-ad`): juno.hub.ad_group_info's way against the naive way.

A Samba AD DC container (tests/images/samba) gets a test CA's certificate and 10,000 users
(ldap3 adds over LDAPS, one connection) in a group nested three levels deep:

    Bench-L1 > 1,000 users + Bench-L2 > 3,000 users + Bench-L3 > 6,000 users

The same lookup, "every effective member of Bench-L1 with sAMAccountName, userPrincipalName,
mail, uidNumber, gidNumber, displayName, disabled accounts left out", is then measured, each run
in a fresh Python process, over LDAPS:

  module   plugins/module_utils/_ad.py as the module runs it: nested groups with the in-chain
           matching rule, then one paged search for the members (page_size 500, the default)
  chain    the same, but the members found by the in-chain rule itself (for comparison)
  naive    one query per group level (its member attribute, ranged) and one per member (base
           search of the member's entry), walking nested groups with a visited set

Reported per run: wall time, LDAP round trips, the client's peak RSS and how much the lookup
added to it, client CPU and the DC's CPU (the samba process, from /proc). The module's figure is
the median of three runs, taken between the others so that load on the machine is shared out.
All runs must find the same 10,000 members. Results: stdout and bench/results/ad.json.

Over loopback a round trip costs next to nothing, which is not where domain controllers are. The
module and naive runs are repeated through a TCP proxy in this process that delays every chunk by
--one-way-ms (default 1 ms) in each direction without limiting throughput, i.e. a DC a couple of
milliseconds of round trip away (one campus hop); the measured extra round-trip time is reported.

Acceptance (issue 3): at most 30 round trips (exit status 1 when not met) and at least 10x faster
than naive; the speed-up verdict is printed for loopback and for the emulated network, and with
--strict the loopback one sets the exit status too (wall times depend on how busy the machine is).

    python bench/ad_bench.py [--users 10000] [--keep] [--reuse] [--one-way-ms 1] [--strict]
"""

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, ".collections"))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, os.path.join(TOP, "tests", "harness"))

IMAGE = "juno-test-samba:bookworm"
CONTAINER = "juno-bench-ad"
BASE_DN = "DC=juno,DC=test"
ADMIN_DN = "CN=Administrator,CN=Users," + BASE_DN
ADMIN_PASSWORD = "Juno-Bench-Admin-2025!"
OU = "OU=Bench," + BASE_DN
ATTRIBUTES = ["sAMAccountName", "userPrincipalName", "mail", "uidNumber", "gidNumber", "displayName"]
MAX_ROUND_TRIPS = 30
MIN_SPEEDUP = 10.0
TIMEOUT = 600  # seconds per LDAP response: a busy machine must not turn into a failure


def say(msg):
    print("bench-ad: %s" % msg, flush=True)


def docker(*args, check=True):
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=900)


# ------------------------------------------------------------------------------------------
# Measuring one lookup (runs in its own process: python ad_bench.py --measure METHOD ...)
# ------------------------------------------------------------------------------------------

def _rss_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def naive_lookup(params):
    """One query per group level and per member; returns (members by DN, round trips)."""
    from ansible_collections.juno.hub.plugins.module_utils import _ad

    directory = _ad.connect(params["servers"], params["bind_dn"], params["bind_password"], ca_file=params["ca_file"],
                            timeout=params["timeout"])[0]
    try:
        group = next(iter(directory.paged(params["base_dn"], _ad.group_filter(params["groups"][0]), ["1.1"], 2)))["dn"]
        queue, visited, members = [group], {_ad.normalize_dn(group)}, {}
        fetch = ATTRIBUTES + ["objectClass", "userAccountControl"]
        while queue:
            current = queue.pop(0)
            values, low = [], 0
            while low is not None:  # the group level: its member attribute, range by range
                entry = directory.base(current, [_ad.range_attribute("member", low)])
                chunk, low = _ad.take_range(entry["raw_attributes"], "member")
                values.extend(bytes(v).decode("utf-8") for v in chunk)
            for dn in values:  # one query per member
                entry = directory.base(dn, fetch)
                if entry is None:
                    continue
                raw = entry["raw_attributes"]
                classes = {bytes(v).decode().lower() for v in raw.get("objectClass", [])}
                if "group" in classes:
                    key = _ad.normalize_dn(dn)
                    if key not in visited:
                        visited.add(key)
                        queue.append(dn)
                elif "user" in classes and "computer" not in classes and not _ad.is_disabled(raw):
                    members[_ad.normalize_dn(dn)] = dict(_ad.convert_attributes(raw, ATTRIBUTES), dn=dn)
        return members, directory.round_trips
    finally:
        directory.close()


def measure(method, params):
    from ansible_collections.juno.hub.plugins.module_utils import _ad

    rss_before = _rss_kib("VmHWM")
    cpu0, t0 = _cpu(), time.perf_counter()
    if method == "naive":
        members, round_trips = naive_lookup(params)
        dns = sorted(members)
    else:
        result = _ad.lookup(params, method="chain" if method == "chain" else "closure")
        round_trips = result["round_trips"]
        dns = sorted(_ad.normalize_dn(m["dn"]) for m in result["members"])
    wall = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    peak = _rss_kib("VmHWM")
    return {"method": method, "wall_s": round(wall, 3), "round_trips": round_trips, "members": len(dns),
            "client_cpu_s": round(cpu, 3), "peak_rss_mib": round(peak / 1024, 1),
            "lookup_rss_mib": round((peak - rss_before) / 1024, 1),
            "members_digest": hashlib.sha256("\n".join(dns).encode()).hexdigest()}


# ------------------------------------------------------------------------------------------
# The DC
# ------------------------------------------------------------------------------------------

class DC:
    def __init__(self, name, tls_dir):
        self.name = name
        self.tls_dir = tls_dir
        self.ca_file = os.path.join(tls_dir, "ca.pem")

    @property
    def port(self):
        out = docker("port", self.name, "636/tcp").stdout.split()
        return int(next(p for p in out if p.startswith("127.0.0.1:")).rsplit(":", 1)[1])

    def samba_cpu_s(self):
        pid = docker("inspect", "-f", "{{.State.Pid}}", self.name).stdout.strip()
        with open("/proc/%s/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks

    def params(self, port=None):
        return {"servers": ["127.0.0.1:%d" % (port or self.port)], "ca_file": self.ca_file, "bind_dn": ADMIN_DN,
                "bind_password": ADMIN_PASSWORD, "base_dn": BASE_DN, "groups": ["Bench-L1"], "attributes": ATTRIBUTES,
                "page_size": 500, "timeout": TIMEOUT, "tls": "ldaps", "validate_certs": True, "nested": True,
                "include_disabled": False}

    def connect(self):
        import samba
        return samba.connect("127.0.0.1", self.port, ADMIN_DN, ADMIN_PASSWORD, self.ca_file, timeout=TIMEOUT)


class LatencyProxy(threading.Thread):
    """127.0.0.1:<port> -> 127.0.0.1:<target>, every chunk delayed by ``one_way`` seconds in
    each direction. Chunks are forwarded at their due time, so throughput is not limited."""

    def __init__(self, target_port, one_way):
        super().__init__(daemon=True)
        self.target_port = target_port
        self.one_way = one_way
        self.port = None
        self.ready = threading.Event()
        self.loop = None

    async def _pump(self, reader, writer):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(1 << 16)
                await queue.put((loop.time() + self.one_way, data))
                if not data:
                    break
        except ConnectionError:
            await queue.put((loop.time(), b""))
        await sender

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True)

    def run(self):
        self.loop = asyncio.new_event_loop()
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def start_proxy(self):
        self.start()
        self.ready.wait(10)
        return self.port

    def stop(self):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)


def rtt_ms(port, ca_file, count=50):
    """Mean time of a trivial LDAP request (a base search of the domain) over ``port``."""
    from ansible_collections.juno.hub.plugins.module_utils import _ad

    directory = _ad.connect(["127.0.0.1:%d" % port], ADMIN_DN, ADMIN_PASSWORD, ca_file=ca_file, timeout=TIMEOUT)[0]
    try:
        directory.base(BASE_DN, ["1.1"])
        t0 = time.perf_counter()
        for dummy in range(count):
            directory.base(BASE_DN, ["1.1"])
        return (time.perf_counter() - t0) / count * 1000
    finally:
        directory.close()


def start_dc(reuse):
    import make_ca

    tls_dir = os.path.join(TOP, ".cache", "bench-ad-tls")
    make_ca.make_ca(tls_dir, ["127.0.0.1", "localhost", CONTAINER])
    os.chmod(tls_dir, 0o755)
    dc = DC(CONTAINER, tls_dir)
    running = docker("inspect", "-f", "{{.State.Running}}", CONTAINER, check=False).stdout.strip() == "true"
    if running and reuse:
        say("reusing the running container %s" % CONTAINER)
    else:
        docker("rm", "-f", "-v", CONTAINER, check=False)
        say("starting %s (Samba AD DC, provisioning takes ~10 s)" % CONTAINER)
        docker("run", "-d", "--name", CONTAINER, "--hostname", "benchdc", "--cap-add", "SYS_ADMIN",
               "-p", "127.0.0.1::636", "-v", "%s:/etc/samba/tls:ro" % tls_dir,
               "-e", "SAMBA_ADMIN_PASSWORD=%s" % ADMIN_PASSWORD, IMAGE)
    deadline = time.monotonic() + 300
    while True:
        try:
            dc.connect().unbind()
            return dc
        except Exception as e:  # still provisioning
            if time.monotonic() > deadline:
                raise RuntimeError("the DC did not answer on LDAPS: %s\n%s" % (e, docker("logs", CONTAINER, check=False).stdout[-3000:]))
            if docker("inspect", "-f", "{{.State.Running}}", CONTAINER, check=False).stdout.strip() != "true":
                raise RuntimeError("the DC stopped:\n%s" % docker("logs", CONTAINER, check=False).stdout[-3000:])
            time.sleep(0.5)  # readiness poll while the DC provisions itself


def seed(dc, users):
    """10,000 users (ldap3 adds over LDAPS) and the three nested groups; skipped when present."""
    import samba

    conn = dc.connect()
    l1 = samba.find_dn(conn, BASE_DN, "Bench-L1")
    if l1:
        have = len(samba.direct_members(conn, l1)) - 1
        l2 = samba.find_dn(conn, BASE_DN, "Bench-L2")
        l3 = samba.find_dn(conn, BASE_DN, "Bench-L3")
        have += len(samba.direct_members(conn, l2)) - 1 + len(samba.direct_members(conn, l3))
        if have == users:
            say("directory already seeded (%d users)" % users)
            conn.unbind()
            return None
        raise RuntimeError("the reused directory has %d users in the groups, not %d: run without --reuse" % (have, users))
    people = samba.ensure_ou(conn, "OU=People," + OU)
    groups = samba.ensure_ou(conn, "OU=Groups," + OU)
    say("seeding %d users over LDAPS (ldap3 adds on one connection)" % users)
    t0 = time.perf_counter()
    dns = samba.add_users(conn, (dict(ou_dn=people, sam="b%05d" % i, uid_number=100000 + i, gid_number=100000,
                                      mail="b%05d@juno.test" % i, upn="b%05d@juno.test" % i, display_name="Bench User %d" % i)
                                 for i in range(users)))
    t_users = time.perf_counter() - t0
    g1, g2, g3 = (samba.create_group(conn, groups, "Bench-L%d" % k) for k in (1, 2, 3))
    a, b = users // 10, users * 4 // 10
    samba.add_members(conn, g1, dns[:a] + [g2])
    samba.add_members(conn, g2, dns[a:b] + [g3])
    samba.add_members(conn, g3, dns[b:])
    total = time.perf_counter() - t0
    conn.unbind()
    say("seeded in %.1f s (%.0f users/s; groups %.1f s)" % (total, users / t_users, total - t_users))
    return {"seconds": round(total, 1), "users_seconds": round(t_users, 1), "users_per_second": round(users / t_users, 1),
            "method": "ldap3 add over LDAPS, one connection", "split": [a, b - a, users - b]}


def run_measure(dc, method, port=None, label=""):
    before = dc.samba_cpu_s()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", method],
                          input=json.dumps(dc.params(port)), capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s run failed:\n%s" % (method, proc.stderr[-3000:]))
    result = json.loads(proc.stdout)
    result["server_cpu_s"] = round(dc.samba_cpu_s() - before, 2)
    result["network"] = label or "loopback"
    say("%-6s%s %8.2f s  %6d round trips  %5d members  peak RSS %6.1f MiB (+%.1f)  client CPU %.1f s  DC CPU %.1f s" % (
        method, (" " + label) if label else "", result["wall_s"], result["round_trips"], result["members"], result["peak_rss_mib"],
        result["lookup_rss_mib"], result["client_cpu_s"], result["server_cpu_s"]))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--users", type=int, default=10000)
    p.add_argument("--keep", action="store_true", help="leave the container running (for --reuse)")
    p.add_argument("--reuse", action="store_true", help="use a running, seeded %s" % CONTAINER)
    p.add_argument("--out", default=os.path.join(TOP, "bench", "results", "ad.json"))
    p.add_argument("--one-way-ms", type=float, default=1.0, help="delay each way of the emulated network (0: skip it)")
    p.add_argument("--strict", action="store_true", help="exit 1 also when the loopback speed-up is under 10x")
    p.add_argument("--measure", choices=["module", "chain", "naive"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.measure:  # child process: parameters on stdin, result on stdout
        print(json.dumps(measure(args.measure, json.load(sys.stdin))))
        return 0

    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        say("image %s is missing: run `make images`" % IMAGE)
        return 2
    load_before = os.getloadavg()
    dc = start_dc(args.reuse)
    try:
        samba_version = docker("exec", CONTAINER, "samba", "-V", check=False).stdout.strip()
        seeding = seed(dc, args.users)
        runs = [run_measure(dc, m) for m in ("module", "naive", "module", "chain", "module")]
        wan = None
        if args.one_way_ms > 0:
            proxy = LatencyProxy(dc.port, args.one_way_ms / 1000.0)
            port = proxy.start_proxy()
            label = "rtt+%gms" % (2 * args.one_way_ms)
            try:
                extra = rtt_ms(port, dc.ca_file) - rtt_ms(dc.port, dc.ca_file)
                say("emulated network: %.2f ms added per round trip (asked for %g ms)" % (extra, 2 * args.one_way_ms))
                wan = {"one_way_ms": args.one_way_ms, "measured_extra_rtt_ms": round(extra, 2),
                       "runs": [run_measure(dc, m, port, label) for m in ("module", "naive")]}
            finally:
                proxy.stop()
    finally:
        if not args.keep:
            docker("rm", "-f", "-v", CONTAINER, check=False)
    module_runs = [r for r in runs if r["method"] == "module"]
    naive = next(r for r in runs if r["method"] == "naive")
    chain = next(r for r in runs if r["method"] == "chain")
    every = runs + (wan["runs"] if wan else [])
    digests = {r["members_digest"] for r in every}
    if len(digests) != 1 or any(r["members"] != args.users for r in every):
        say("FAIL: the methods disagree about the members: %s" % [(r["method"], r["members"]) for r in runs])
        return 1
    module = dict(module_runs[0])
    for key in ("wall_s", "client_cpu_s", "server_cpu_s", "peak_rss_mib", "lookup_rss_mib"):
        module[key] = statistics.median(r[key] for r in module_runs)
    speedup = naive["wall_s"] / module["wall_s"]
    cpu_speedup = (naive["client_cpu_s"] + naive["server_cpu_s"]) / (module["client_cpu_s"] + module["server_cpu_s"])
    acceptance = {"max_round_trips": MAX_ROUND_TRIPS, "round_trips": module["round_trips"],
                  "round_trips_ok": module["round_trips"] <= MAX_ROUND_TRIPS,
                  "min_speedup": MIN_SPEEDUP, "speedup": round(speedup, 2), "speedup_ok": speedup >= MIN_SPEEDUP}
    if wan:
        wan["speedup_wall"] = round(wan["runs"][1]["wall_s"] / wan["runs"][0]["wall_s"], 2)
        acceptance["speedup_emulated_network"] = wan["speedup_wall"]
        acceptance["speedup_emulated_network_ok"] = wan["speedup_wall"] >= MIN_SPEEDUP
    report = {
        "benchmark": "ad_group_info: %d members nested three levels, module vs naive" % args.users,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "directory": {"users": args.users, "levels": 3, "seeding": seeding, "samba": samba_version},
        "page_size": 500,
        "module": module,
        "naive": naive,
        "chain": chain,
        "runs": runs,
        "emulated_network": wan,
        "speedup_wall": round(speedup, 2),
        "speedup_cpu": round(cpu_speedup, 2),
        "acceptance": acceptance,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")
    print()
    print("%-28s %12s %12s %12s" % ("", "module", "naive", "chain rule"))
    print("%-28s %12.2f %12.2f %12.2f" % ("wall time (s)", module["wall_s"], naive["wall_s"], chain["wall_s"]))
    print("%-28s %12d %12d %12d" % ("LDAP round trips", module["round_trips"], naive["round_trips"], chain["round_trips"]))
    print("%-28s %12.1f %12.1f %12.1f" % ("client peak RSS (MiB)", module["peak_rss_mib"], naive["peak_rss_mib"],
                                          chain["peak_rss_mib"]))
    print("%-28s %12.1f %12.1f %12.1f" % ("  added by the lookup (MiB)", module["lookup_rss_mib"], naive["lookup_rss_mib"],
                                          chain["lookup_rss_mib"]))
    print("%-28s %12.2f %12.2f %12.2f" % ("client CPU (s)", module["client_cpu_s"], naive["client_cpu_s"], chain["client_cpu_s"]))
    print("%-28s %12.2f %12.2f %12.2f" % ("DC CPU (s)", module["server_cpu_s"], naive["server_cpu_s"], chain["server_cpu_s"]))
    print()
    print("speedup over naive: %.1fx wall time, %.1fx CPU (client + DC); load average %s -> %s" % (
        speedup, cpu_speedup, report["machine"]["loadavg_before"][0], report["machine"]["loadavg_after"][0]))
    if wan:
        m, n = wan["runs"]
        print("emulated network (+%.2f ms per round trip): module %.2f s, naive %.2f s: %.1fx" % (
            wan["measured_extra_rtt_ms"], m["wall_s"], n["wall_s"], wan["speedup_wall"]))
    print("acceptance: round trips %d <= %d: %s; speedup >= %.0fx: loopback %.1fx %s%s" % (
        module["round_trips"], MAX_ROUND_TRIPS, "PASS" if acceptance["round_trips_ok"] else "FAIL",
        MIN_SPEEDUP, speedup, "PASS" if acceptance["speedup_ok"] else "FAIL",
        (", emulated network %.1fx %s" % (wan["speedup_wall"], "PASS" if acceptance["speedup_emulated_network_ok"] else "FAIL"))
        if wan else ""))
    say("results written to %s" % os.path.relpath(args.out, TOP))
    if not acceptance["round_trips_ok"] or (args.strict and not acceptance["speedup_ok"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
