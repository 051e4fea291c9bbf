"""etcd backup and restore with real etcd (Debian's etcd-server/etcd-client 3.4) in systemd containers.

The role and the playbooks run as an operator runs them: ansible-playbook playbooks/backup.yml and
playbooks/restore.yml against the containers (community.docker.docker_api connection), the backup
itself by systemd (juno-etcd-backup.service). Two clusters:

* one member, tools from Debian's etcd-client, off-node copy by rsync over SSH to a second container;
* three members, tools from an offline release-shaped tarball, off-node copy to a shared volume
  mounted on every member (like an NFS export).

A render-mode run (juno_apply false, local connection) checks that nothing is installed and the
script, service and timer land in juno_render_dir/backup/<host>/.

Each writes 10,000 keys, backs up, proves that a failed backup is visible and leaves earlier
snapshots alone, that retention deletes exactly what its rule says, that a damaged snapshot is
refused, and that wipe + restore brings every key back with a healthy cluster.
"""

import datetime
import json
import os
import re
import subprocess
import sys
import threading

import pytest
import yaml

from conftest import SESSION, container_ip, docker, docker_exec

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "juno-test-etcd:bookworm"
IMAGE_DIR = os.path.join(TOP, "tests", "images", "etcd")
KEYS = 10000
BACKUP_DIR = "/var/backups/etcd"
OFFNODE_MOUNT = "/mnt/etcd-offnode"
KEEP_COUNT = 3
KEEP_DAYS = 7
SNAP_RE = r"^etcd-{node}-\d{{8}}T\d{{6}}Z\.db$"

# Writes KEYS keys through the v3 gRPC gateway in transactions of 100 puts (runs inside a member).
PUT_KEYS = r"""
import base64, json, sys, urllib.request
n, prefix = int(sys.argv[1]), sys.argv[2]
b = lambda s: base64.b64encode(s.encode()).decode()
for start in range(0, n, 100):
    ops = [{"requestPut": {"key": b("%s%05d" % (prefix, i)), "value": b("value-%05d" % i)}} for i in range(start, min(n, start + 100))]
    req = urllib.request.Request("http://127.0.0.1:2379/v3/kv/txn", data=json.dumps({"success": ops}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
"""

# Reads every key under a prefix and checks its value; prints {"count": n, "bad": [...]}.
CHECK_KEYS = r"""
import base64, json, sys, urllib.request
prefix = sys.argv[1]
b = lambda s: base64.b64encode(s.encode()).decode()
end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
req = urllib.request.Request("http://127.0.0.1:2379/v3/kv/range", data=json.dumps({"key": b(prefix), "range_end": b(end)}).encode(),
                             headers={"Content-Type": "application/json"})
res = json.loads(urllib.request.urlopen(req, timeout=30).read())
kvs = res.get("kvs", [])
bad = []
for kv in kvs:
    k = base64.b64decode(kv["key"]).decode()
    v = base64.b64decode(kv.get("value", "")).decode()
    if v != "value-" + k[len(prefix):]:
        bad.append(k)
print(json.dumps({"count": len(kvs), "bad": bad[:5]}))
"""


# ------------------------------------------------------------------------------------------
# helpers


def sh(name, script, check=True):
    return docker_exec(name, "bash", "-c", script, check=check)


def pipe_python(name, script, *args):
    return subprocess.run(["docker", "exec", "-i", name, "python3", "-", *args], input=script, text=True,
                          capture_output=True, check=True, timeout=300)


def put_keys(name, n=KEYS, prefix="/juno/k"):
    pipe_python(name, PUT_KEYS, str(n), prefix)


def check_keys(name, prefix="/juno/k"):
    return json.loads(pipe_python(name, CHECK_KEYS, prefix).stdout)


def snapshots(name, directory, node):
    out = sh(name, "ls -1 %s 2>/dev/null || true" % directory).stdout.split()
    return sorted(f for f in out if re.match(SNAP_RE.format(node=node), f))


def listing(name, directory):
    """name -> sha256 of every file in directory."""
    out = sh(name, "cd %s && sha256sum -- * .[!.]* 2>/dev/null || true" % directory).stdout
    return {line.split(None, 1)[1].strip(): line.split()[0] for line in out.splitlines() if line.strip()}


def in_parallel(fn, items):
    errors = []

    def run(item):
        try:
            fn(item)
        except Exception as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def ansible_playbook(inventory, playbook, *extra, check=True):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
        ANSIBLE_CACHE_PLUGIN="memory",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    )
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
           os.path.join(TOP, "playbooks", playbook), *extra]
    r = subprocess.run(cmd, cwd=TOP, env=env, capture_output=True, text=True, timeout=900, check=False)
    if check and r.returncode != 0:
        raise AssertionError("%s failed (rc %d):\n%s\n%s" % (playbook, r.returncode, r.stdout[-12000:], r.stderr[-3000:]))
    return r


def recap(result):
    """host -> {ok, changed, failed, ...} from the PLAY RECAP."""
    out = {}
    for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", result.stdout, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def ts(days_ago, seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago, seconds=seconds)
    return t.strftime("%Y%m%dT%H%M%SZ")


def plant_old_snapshots(name, directory, node, days):
    """Old snapshots (name timestamps and mtimes days ago) with their secrets bundles; returns their names."""
    names = []
    script = ["mkdir -p %s" % directory]
    for d in days:
        base = "etcd-%s-%s" % (node, ts(d))
        names.append(base + ".db")
        for f in (base + ".db", base + ".secrets.tar.gz"):
            script.append("echo old > %s/%s && touch -d '%d days ago' %s/%s" % (directory, f, d, directory, f))
    sh(name, " && ".join(script))
    return names


def write_inventory(path, hosts, extra_vars):
    group_vars = {
        # the site settings preflight requires (no addresses of these containers are checked)
        "juno_kubernetes_version": "1.32.4",
        "juno_cluster_name": "juno-it",
        "juno_node_networks": ["10.20.0.0/24"],
        "juno_api_endpoint": {"address": "10.20.0.10", "provider": "external"},
        "juno_lb_address_pool": ["10.20.0.240-10.20.0.250"],
        "preflight_require_cgroup_v2": False,
        "preflight_min_cpus_control_plane": 1,
        "preflight_min_memory_mb_control_plane": 256,
        "ansible_connection": "community.docker.docker_api",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,  # the containers' commands already run as root
        # the role against Debian's etcd 3.4 on plain HTTP
        "etcd_backup_tools_source": "system",
        "etcd_backup_endpoint": "http://127.0.0.1:2379",
        "etcd_backup_cacert": "",
        "etcd_backup_cert": "",
        "etcd_backup_key": "",
        "etcd_backup_keep_count": KEEP_COUNT,
        "etcd_backup_keep_days": KEEP_DAYS,
        "etcd_backup_secret_paths": ["/etc/kubernetes/pki", "/etc/kubernetes/enc"],
        "etcd_backup_restore_mode": "systemd",
        "etcd_backup_restore_data_dir_owner": "etcd",
        "etcd_backup_restore_data_dir_group": "etcd",
        "etcd_backup_restore_health_delay": 2,
        "etcd_backup_dial_timeout": "3s",
        "etcd_backup_snapshot_timeout": 60,
    }
    group_vars.update(extra_vars)
    inv = {"all": {"vars": group_vars, "children": {"k8s_cluster": {"children": {"kube_control_plane": {
        "hosts": {short: {"ansible_host": container} for short, container in hosts.items()}}}}}}}
    with open(path, "w") as f:
        yaml.safe_dump(inv, f)
    return str(path)


def configure_member(container, name, ip, initial_cluster):
    env = "\n".join([
        "ETCD_NAME=%s" % name,
        "ETCD_DATA_DIR=/var/lib/etcd/%s" % name,
        "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379",
        "ETCD_ADVERTISE_CLIENT_URLS=http://%s:2379" % ip,
        "ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://%s:2380" % ip,
        "ETCD_INITIAL_CLUSTER=%s" % initial_cluster,
        "ETCD_INITIAL_CLUSTER_STATE=new",
        "ETCD_INITIAL_CLUSTER_TOKEN=juno-it",
        "",
    ])
    sh(container, "cat > /etc/default/etcd <<'EOF'\n%sEOF\n"
                  "mkdir -p /etc/kubernetes/pki /etc/kubernetes/enc && echo ca > /etc/kubernetes/pki/ca.crt"
                  " && echo key > /etc/kubernetes/enc/config.yaml" % env)


def wait_for_systemd(container):
    # `systemctl is-system-running --wait` returns once boot has finished (degraded is fine).
    docker_exec(container, "systemctl", "is-system-running", "--wait", check=False, timeout=120)


def latest(name, directory, node):
    snaps = snapshots(name, directory, node)
    assert snaps, "no snapshot of %s in %s" % (node, directory)
    return "%s/%s" % (directory, snaps[-1])


def corrupt_copy(container, src, dst):
    """A copy of a good snapshot with 16 bytes in the middle overwritten (the bbolt file still opens)."""
    size = int(sh(container, "stat -c %%s %s" % src).stdout)
    sh(container, "cp %s %s && printf 'juno-corruption!' | dd of=%s bs=1 seek=%d conv=notrunc status=none" % (src, dst, dst, size // 2))


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def etcd_image():
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        docker("build", "-q", "-t", IMAGE, IMAGE_DIR, timeout=900)
    return IMAGE


@pytest.fixture(scope="module")
def single(etcd_image, docker_container, tmp_path_factory):
    """One member (etcdbk-s1) and an SSH/rsync destination (etcdbk-store)."""
    node, store = "etcdbk-s1", "etcdbk-store"
    s1 = docker_container(node, image=etcd_image)
    st = docker_container(store, image=etcd_image)
    in_parallel(wait_for_systemd, [s1, st])
    ip = container_ip(s1)
    configure_member(s1, node, ip, "%s=http://%s:2380" % (node, ip))
    docker_exec(s1, "systemctl", "start", "etcd")
    put_keys(s1)
    # rsync destination: sshd, the member's backup key authorised, its host key known to the member
    sh(st, "systemctl start ssh && mkdir -p -m 0700 /root/.ssh /srv/etcd-backups")
    sh(s1, "mkdir -p -m 0700 /root/.ssh && ssh-keygen -q -t ed25519 -N '' -C juno-etcd-backup@%s -f /root/.ssh/juno-etcd-backup" % node)
    pub = sh(s1, "cat /root/.ssh/juno-etcd-backup.pub").stdout
    sh(st, "cat >> /root/.ssh/authorized_keys <<'EOF'\n%sEOF\nchmod 0600 /root/.ssh/authorized_keys" % pub)
    known = sh(s1, "ssh-keyscan -t ed25519 %s 2>/dev/null" % st).stdout.strip()
    assert known, "no host key from %s" % st
    inventory = write_inventory(tmp_path_factory.mktemp("single") / "hosts.yml", {node: s1}, {
        "etcd_backup_offnode": "rsync",
        "etcd_backup_remote": "root@%s:/srv/etcd-backups" % st,
        "etcd_backup_remote_known_hosts": known.splitlines(),
    })
    return {"node": node, "c": s1, "store": st, "inventory": inventory}


@pytest.fixture(scope="module")
def trio(etcd_image, docker_container, tmp_path_factory):
    """Three members (etcdbk-m1..3) sharing a volume at OFFNODE_MOUNT for the off-node copies."""
    volume = "juno-it-%s-etcdbk-offnode" % SESSION
    docker("volume", "create", volume)
    nodes = ["etcdbk-m1", "etcdbk-m2", "etcdbk-m3"]
    try:
        containers = {n: docker_container(n, image=etcd_image, extra=["-v", "%s:%s" % (volume, OFFNODE_MOUNT)]) for n in nodes}
        in_parallel(wait_for_systemd, containers.values())
        ips = {n: container_ip(c) for n, c in containers.items()}
        initial = ",".join("%s=http://%s:2380" % (n, ips[n]) for n in nodes)
        for n, c in containers.items():
            configure_member(c, n, ips[n], initial)
        # Type=notify: each start returns once its member has joined the cluster, so start them together.
        in_parallel(lambda c: docker_exec(c, "systemctl", "start", "etcd"), containers.values())
        put_keys(containers["etcdbk-m1"])
        # etcd_backup_tools_source: offline, with a release-shaped tarball made from Debian's etcdctl
        # (no download site is reachable): exercises the unpack-and-link path of the role.
        work = tmp_path_factory.mktemp("trio")
        version = re.search(r"etcdctl version: (\S+)", sh(containers["etcdbk-m1"], "etcdctl version").stdout).group(1)
        top = "etcd-v%s-linux-amd64" % version
        os.makedirs(str(work / top))
        docker("cp", "%s:/usr/bin/etcdctl" % containers["etcdbk-m1"], str(work / top / "etcdctl"))
        subprocess.run(["tar", "-czf", str(work / (top + ".tar.gz")), "-C", str(work), top], check=True)
        inventory = write_inventory(work / "hosts.yml", containers, {
            "etcd_backup_offnode": "path",
            "etcd_backup_offnode_path": OFFNODE_MOUNT,
            "etcd_backup_tools_source": "offline",
            "etcd_backup_tools_archive": str(work / (top + ".tar.gz")),
        })
        yield {"nodes": nodes, "c": containers, "inventory": inventory}
    finally:
        for n in nodes:
            docker("rm", "-f", "-v", "juno-it-%s-%s" % (SESSION, n), check=False)
        docker("volume", "rm", "-f", volume, check=False)


# ------------------------------------------------------------------------------------------
# render mode: nothing installed, the files written for review


def test_render_mode_writes_script_and_units_instead_of_installing(tmp_path):
    render = tmp_path / "rendered"
    inventory = write_inventory(tmp_path / "hosts.yml", {"render-cp1": "render-cp1"}, {
        "juno_apply": False,
        "juno_render_dir": str(render),
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "etcd_backup_tools_source": "release",
        "etcd_backup_endpoint": "https://127.0.0.1:2379",
        "etcd_backup_cacert": "/etc/kubernetes/pki/etcd/ca.crt",
        "etcd_backup_cert": "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "etcd_backup_key": "/etc/kubernetes/pki/etcd/healthcheck-client.key",
        "etcd_backup_offnode": "path",
        "etcd_backup_offnode_path": "/mnt/juno-backups/etcd",
    })
    r = ansible_playbook(inventory, "backup.yml")
    assert "juno_apply is false: NOT installing the etcd backup on render-cp1" in r.stdout
    out = render / "backup" / "render-cp1"
    assert sorted(os.listdir(out)) == ["juno-etcd-backup", "juno-etcd-backup.service", "juno-etcd-backup.timer"]
    script = (out / "juno-etcd-backup").read_text()
    subprocess.run(["bash", "-n", str(out / "juno-etcd-backup")], check=True)
    assert "readonly CACERT=/etc/kubernetes/pki/etcd/ca.crt" in script
    assert "readonly OFFNODE_PATH=/mnt/juno-backups/etcd" in script
    assert "readonly PREFIX=etcd-render-cp1" in script
    assert "OnCalendar=*-*-* 00/6:00:00" in (out / "juno-etcd-backup.timer").read_text()
    assert "ExecStart=/usr/local/sbin/juno-etcd-backup" in (out / "juno-etcd-backup.service").read_text()
    assert not os.path.exists("/usr/local/sbin/juno-etcd-backup") or "render-cp1" not in open("/usr/local/sbin/juno-etcd-backup").read()
    assert recap(r)["render-cp1"]["changed"] >= 1 and recap(r)["render-cp1"]["failed"] == 0


# ------------------------------------------------------------------------------------------
# one member


def test_single_backup_by_the_role_is_verified_private_and_copied_off_node(single):
    c, node, st = single["c"], single["node"], single["store"]
    r = ansible_playbook(single["inventory"], "backup.yml")
    assert recap(r)[node]["failed"] == 0
    snaps = snapshots(c, BACKUP_DIR, node)
    assert len(snaps) == 1, snaps
    snap = "%s/%s" % (BACKUP_DIR, snaps[0])
    # root-only directory, private files, a secrets bundle with the PKI and the encryption config
    assert sh(c, "stat -c '%%a %%U' %s %s" % (BACKUP_DIR, snap)).stdout.split() == ["700", "root", "600", "root"]
    bundle = snap[:-3] + ".secrets.tar.gz"
    assert sorted(sh(c, "tar -tzf %s" % bundle).stdout.split()) == sorted([
        "etc/kubernetes/enc/", "etc/kubernetes/enc/config.yaml", "etc/kubernetes/pki/", "etc/kubernetes/pki/ca.crt"])
    # the snapshot holds the 10,000 keys (etcdctl snapshot status counts them) and passes the script's own check
    status = json.loads(sh(c, "ETCDCTL_API=3 etcdctl snapshot status -w json %s" % snap).stdout)
    assert status["totalKey"] >= KEYS
    sh(c, "/usr/local/sbin/juno-etcd-backup verify %s" % snap)
    # off-node copy over rsync: the same bytes
    remote = "/srv/etcd-backups/%s" % node
    assert listing(st, remote)[snaps[0]] == listing(c, BACKUP_DIR)[snaps[0]]
    assert snaps[0][:-3] + ".secrets.tar.gz" in listing(st, remote)
    # the schedule is installed and active
    assert sh(c, "systemctl is-enabled juno-etcd-backup.timer && systemctl is-active juno-etcd-backup.timer").stdout.split() == ["enabled", "active"]


def test_single_role_is_idempotent_and_check_mode_changes_nothing(single):
    node = single["node"]
    again = ansible_playbook(single["inventory"], "backup.yml", "-e", "etcd_backup_run_now=false")
    assert recap(again)[node]["changed"] == 0, again.stdout[-6000:]
    check = ansible_playbook(single["inventory"], "backup.yml", "--check")
    assert recap(check)[node]["changed"] == 0, check.stdout[-6000:]


def test_single_retention_deletes_only_what_the_rule_says(single):
    c, node, st = single["c"], single["node"], single["store"]
    remote = "/srv/etcd-backups/%s" % node
    first = snapshots(c, BACKUP_DIR, node)
    # Younger than KEEP_DAYS: kept even beyond the newest KEEP_COUNT. Older than KEEP_DAYS and beyond
    # the newest KEEP_COUNT: deleted, with their bundles. Files outside the name pattern: never touched.
    young = plant_old_snapshots(c, BACKUP_DIR, node, [3])
    old = plant_old_snapshots(c, BACKUP_DIR, node, [10, 20, 40])
    remote_first = snapshots(st, remote, node)
    remote_old = plant_old_snapshots(st, remote, node, [15, 30])
    strangers = ["etcd-%s-notes.db" % node, "etcd-other-node-%s.db" % ts(50), "etcd-%s-%s.db.bak" % (node, ts(60)), "manual.db"]
    for host, directory in ((c, BACKUP_DIR), (st, remote)):
        sh(host, " && ".join("echo keep > %s/%s && touch -d '90 days ago' %s/%s" % (directory, f, directory, f) for f in strangers))

    for _run in range(KEEP_COUNT):
        sh(c, "systemctl start juno-etcd-backup.service")
    snaps = snapshots(c, BACKUP_DIR, node)
    new = [f for f in snaps if f not in first + young]
    assert len(new) == KEEP_COUNT, snaps
    assert sorted(first + young + new) == snaps, snaps
    files = listing(c, BACKUP_DIR)
    assert not [f for f in files if any(f.startswith(o[:-3]) for o in old)], files
    assert young[0][:-3] + ".secrets.tar.gz" in files
    assert all(s in files for s in strangers), files
    # the same rule on the rsync destination
    remote_snaps = snapshots(st, remote, node)
    assert sorted(remote_first + new) == remote_snaps, remote_snaps
    assert all(s in listing(st, remote) for s in strangers)

    # Exactly KEEP_COUNT remain once every other snapshot is older than KEEP_DAYS: age all of them.
    for i, f in enumerate(reversed(snaps)):
        aged = "etcd-%s-%s" % (node, ts(KEEP_DAYS + 20 + i))
        sh(c, "cd %s && mv %s %s.db && mv %s.secrets.tar.gz %s.secrets.tar.gz" % (BACKUP_DIR, f, aged, f[:-3], aged))
    aged_snaps = snapshots(c, BACKUP_DIR, node)
    sh(c, "systemctl start juno-etcd-backup.service")
    kept = snapshots(c, BACKUP_DIR, node)
    assert len(kept) == KEEP_COUNT, kept
    assert kept[:-1] == aged_snaps[-(KEEP_COUNT - 1):], (kept, aged_snaps)
    assert all(s in listing(c, BACKUP_DIR) for s in strangers)


def test_single_failed_backup_is_visible_and_keeps_earlier_snapshots(single):
    c, node = single["c"], single["node"]
    before = listing(c, BACKUP_DIR)
    docker_exec(c, "systemctl", "stop", "etcd")
    try:
        r = sh(c, "systemctl start juno-etcd-backup.service", check=False)
        assert r.returncode != 0
        assert sh(c, "systemctl is-failed juno-etcd-backup.service", check=False).stdout.strip() == "failed"
        journal = sh(c, "journalctl -u juno-etcd-backup.service -p err -o cat --no-pager").stdout
        assert "the local etcd member at http://127.0.0.1:2379 does not answer; no snapshot taken, earlier snapshots are untouched" in journal
        assert listing(c, BACKUP_DIR) == before
        # by hand: backup.yml fails and says why
        run = ansible_playbook(single["inventory"], "backup.yml", check=False)
        assert run.returncode != 0
        assert "the etcd backup on %s failed; earlier snapshots are untouched" % node in run.stdout
        assert listing(c, BACKUP_DIR) == before
    finally:
        docker_exec(c, "systemctl", "start", "etcd")


def test_single_damaged_snapshot_is_refused_and_etcd_left_running(single):
    c, node = single["c"], single["node"]
    good = latest(c, BACKUP_DIR, node)
    corrupt_copy(c, good, "/root/damaged.db")
    sh(c, "head -c 100000 %s > /root/truncated.db" % good)
    data_dirs = sh(c, "ls /var/lib/etcd").stdout.split()
    r = ansible_playbook(single["inventory"], "restore.yml", "-e", "snapshot=/root/damaged.db", check=False)
    assert r.returncode != 0
    assert "refusing to restore /root/damaged.db: it failed verification" in r.stdout, r.stdout[-4000:]
    assert "does not match the one etcd recorded" in r.stdout
    # the same check the restore and every backup run: a truncated file is refused too
    verify = sh(c, "/usr/local/sbin/juno-etcd-backup verify /root/truncated.db", check=False)
    assert verify.returncode != 0 and "is not the size of an etcd snapshot" in verify.stderr
    assert sh(c, "systemctl is-active etcd").stdout.strip() == "active"
    assert sh(c, "ls /var/lib/etcd").stdout.split() == data_dirs
    assert check_keys(c)["count"] == KEYS


def test_single_wipe_and_restore_brings_every_key_back(single):
    c, node = single["c"], single["node"]
    snap = latest(c, BACKUP_DIR, node)
    put_keys(c, 10, "/after-snapshot/")
    docker_exec(c, "systemctl", "stop", "etcd")
    sh(c, "rm -rf /var/lib/etcd/%s" % node)
    r = ansible_playbook(single["inventory"], "restore.yml", "-e", "snapshot=%s" % snap)
    assert recap(r)[node]["failed"] == 0
    assert "ETCD_DATA_DIR=/var/lib/etcd/%s-restored-" % node in sh(c, "cat /etc/default/etcd").stdout
    assert sh(c, "ETCDCTL_API=3 etcdctl endpoint health").returncode == 0
    keys = check_keys(c)
    assert keys == {"count": KEYS, "bad": []}
    assert check_keys(c, "/after-snapshot/")["count"] == 0
    # the restored member backs up again
    sh(c, "systemctl start juno-etcd-backup.service")


# ------------------------------------------------------------------------------------------
# three members


def test_trio_backup_survives_a_stopped_member_and_restore_recovers_all(trio):
    c, nodes = trio["c"], trio["nodes"]
    m1, m2, m3 = (c[n] for n in nodes)
    r = ansible_playbook(trio["inventory"], "backup.yml")
    assert all(recap(r)[n]["failed"] == 0 for n in nodes)
    # the tools come from the offline tarball, unpacked into its own directory and linked
    link = sh(m1, "readlink /usr/local/lib/juno-etcd-backup/bin/etcdctl").stdout.strip()
    assert re.match(r"^/usr/local/lib/juno-etcd-backup/etcd-v[0-9.]+-linux-amd64/etcdctl$", link), link
    for n in nodes:
        assert len(snapshots(c[n], BACKUP_DIR, n)) == 1
        # every member's copy is on the shared volume, in its own directory
        assert len(snapshots(m1, "%s/%s" % (OFFNODE_MOUNT, n), n)) == 1

    # a member stops: its own backup fails visibly, a healthy member's backup still succeeds
    docker_exec(m1, "systemctl", "stop", "etcd")
    before_m1 = listing(m1, BACKUP_DIR)
    assert sh(m1, "systemctl start juno-etcd-backup.service", check=False).returncode != 0
    assert listing(m1, BACKUP_DIR) == before_m1
    sh(m2, "systemctl start juno-etcd-backup.service")
    assert len(snapshots(m2, BACKUP_DIR, "etcdbk-m2")) == 2
    snap = latest(m2, "%s/etcdbk-m2" % OFFNODE_MOUNT, "etcdbk-m2")
    assert json.loads(sh(m2, "ETCDCTL_API=3 etcdctl snapshot status -w json %s" % snap).stdout)["totalKey"] >= KEYS

    # data written after the snapshot, then two members lose their data; m3 keeps its (stale) directory
    put_keys(m2, 10, "/after-snapshot/")
    in_parallel(lambda x: docker_exec(x, "systemctl", "stop", "etcd"), [m1, m2, m3])
    sh(m1, "rm -rf /var/lib/etcd/etcdbk-m1")
    sh(m2, "rm -rf /var/lib/etcd/etcdbk-m2")

    r = ansible_playbook(trio["inventory"], "restore.yml", "-e", "snapshot=%s" % snap)
    assert all(recap(r)[n]["failed"] == 0 for n in nodes)
    health = sh(m1, "ETCDCTL_API=3 etcdctl --endpoints=%s endpoint health" % ",".join(
        "http://%s:2379" % container_ip(c[n]) for n in nodes))
    assert (health.stdout + health.stderr).count("is healthy") == 3, health.stdout + health.stderr
    members = json.loads(sh(m3, "ETCDCTL_API=3 etcdctl member list -w json").stdout)["members"]
    assert sorted(m["name"] for m in members) == nodes
    for x in (m1, m2, m3):
        assert check_keys(x) == {"count": KEYS, "bad": []}
        assert check_keys(x, "/after-snapshot/")["count"] == 0
    # the old data directory was moved aside, not deleted
    assert [d for d in sh(m3, "ls /var/lib/etcd").stdout.split() if d.startswith("etcdbk-m3.pre-restore-")]
    assert sh(m3, "ls /var/lib/etcd/etcdbk-m3.pre-restore-*/member").returncode == 0
