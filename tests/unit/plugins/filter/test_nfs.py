"""The NFS export decisions: options, networks, refusal of '*' and no_root_squash, kept and pruned exports."""

import copy

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import nfs as f

ROOT = "/srv/juno"
NETS = ["10.20.0.0/24"]
HUBS = [
    {"name": "physics", "storage": {"capacity": "5Gi"}},
    {"name": "chemeng"},
]


def hubs(*changes):
    """HUBS with juno_hubs[i].storage updated by (i, {key: value}) pairs."""
    result = copy.deepcopy(HUBS)
    for index, storage in changes:
        result[index].setdefault("storage", {}).update(storage)
    return result


def only(msgs, needle):
    hits = [m for m in msgs if needle in m]
    assert hits, "expected a message containing %r in %r" % (needle, msgs)
    return hits


# --- lines ---------------------------------------------------------------------------------------

def test_default_lines_root_squash_sec_sys_sorted_by_path():
    assert f.nfs_export_lines(HUBS, NETS, ROOT) == [
        "/srv/juno/chemeng 10.20.0.0/24(rw,sync,no_subtree_check,root_squash,sec=sys)",
        "/srv/juno/physics 10.20.0.0/24(rw,sync,no_subtree_check,root_squash,sec=sys)",
    ]


def test_one_line_per_export_and_network_in_network_order():
    lines = f.nfs_export_lines(HUBS[:1], ["10.20.0.0/24", "192.168.7.0/24", "fd00:20::/64"], ROOT)
    assert [line.split()[1].split("(")[0] for line in lines] == ["10.20.0.0/24", "192.168.7.0/24", "fd00:20::/64"]
    assert all(line.startswith("/srv/juno/physics ") for line in lines)
    assert all(len(line.split()) == 2 for line in lines)


def test_networks_are_normalised_and_deduplicated():
    lines = f.nfs_export_lines(HUBS[:1], ["10.20.0.7/24", "10.20.0.0/24", "10.30.0.5"], ROOT)
    assert [line.split()[1].split("(")[0] for line in lines] == ["10.20.0.0/24", "10.30.0.5/32"]


@pytest.mark.parametrize("sec", ["krb5", "krb5i", "krb5p"])
def test_kerberos_flavour(sec):
    line = f.nfs_export_lines(hubs((0, {"sec": sec}))[:1], NETS, ROOT)[0]
    assert line.endswith("(rw,sync,no_subtree_check,root_squash,sec=%s)" % sec)


def test_site_export_options_replace_the_base_options():
    line = f.nfs_export_lines(HUBS[:1], NETS, ROOT, options=["rw", "async", "anonuid=65534", "anongid=65534"])[0]
    assert line == "/srv/juno/physics 10.20.0.0/24(rw,async,anonuid=65534,anongid=65534,root_squash,sec=sys)"


def test_root_is_normalised():
    assert f.nfs_export_lines(HUBS[:1], NETS, "/srv//juno/")[0].startswith("/srv/juno/physics ")


def test_no_hubs_no_lines():
    assert f.nfs_export_lines([], NETS, ROOT) == []
    assert f.nfs_export_lines(None, NETS, ROOT) == []


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("net", ["*", "*.example.edu", "10.20.0.?", "0.0.0.0/0", "::/0"])
def test_everyone_is_refused(net):
    msgs = f.nfs_export_problems(HUBS, ["10.20.0.0/24", net], ROOT)
    only(msgs, "juno_node_networks[1]")
    with pytest.raises(AnsibleFilterError, match=r"juno_node_networks\[1\]"):
        f.nfs_export_lines(HUBS, ["10.20.0.0/24", net], ROOT)


@pytest.mark.parametrize("nets", [[], "10.20.0.0/24", None])
def test_networks_must_be_a_non_empty_list(nets):
    only(f.nfs_export_problems(HUBS, nets, ROOT), "juno_node_networks")


def test_bad_cidr():
    only(f.nfs_export_problems(HUBS, ["10.20.0.0/33"], ROOT), "is not a CIDR")
    only(f.nfs_export_problems(HUBS, ["nodes.example.edu"], ROOT), "is not a CIDR")


def test_no_root_squash_refused_by_default():
    msgs = f.nfs_export_problems(hubs((1, {"no_root_squash": True})), NETS, ROOT)
    assert only(msgs, "hub chemeng: storage.no_root_squash is true") == msgs
    assert "nfs_server_allow_no_root_squash" in msgs[0]
    with pytest.raises(AnsibleFilterError, match="no_root_squash"):
        f.nfs_export_lines(hubs((1, {"no_root_squash": True})), NETS, ROOT)


def test_no_root_squash_when_allowed_only_for_that_hub():
    lines = f.nfs_export_lines(hubs((1, {"no_root_squash": True})), NETS, ROOT, allow_no_root_squash=True)
    assert lines == [
        "/srv/juno/chemeng 10.20.0.0/24(rw,sync,no_subtree_check,no_root_squash,sec=sys)",
        "/srv/juno/physics 10.20.0.0/24(rw,sync,no_subtree_check,root_squash,sec=sys)",
    ]


def test_default_lines_never_contain_no_root_squash_or_a_wildcard():
    for line in f.nfs_export_lines(HUBS, ["10.20.0.0/24", "10.21.0.0/16"], ROOT):
        assert "no_root_squash" not in line
        assert "*" not in line


@pytest.mark.parametrize("opt", ["no_root_squash", "root_squash", "sec=krb5", "insecure(x)", "rw rw", ""])
def test_bad_or_managed_export_options(opt):
    only(f.nfs_export_problems(HUBS, NETS, ROOT, options=["rw", opt]), "nfs_server_export_options")


@pytest.mark.parametrize("root", ["", None, "/", "srv/juno", "/srv/ju no", "/srv/juno(x)", "/srv/*"])
def test_bad_root(root):
    only(f.nfs_export_problems(HUBS, NETS, root), "nfs_server_export_root")


@pytest.mark.parametrize("change,needle", [
    ({"sec": "none"}, ": storage.sec"),
    ({"export_mode": "755x"}, ": storage.export_mode"),
    ({"export_mode": 493}, ": storage.export_mode"),
    ({"export_owner": ""}, ": storage.export_owner"),
    ({"export_group": "a b"}, ": storage.export_group"),
    ({"no_root_squash": "maybe"}, ": storage.no_root_squash"),
    ({"mount_options": "hard"}, ": storage.mount_options"),
])
def test_bad_storage_settings(change, needle):
    only(f.nfs_export_problems(hubs((0, change)), NETS, ROOT), "hub physics" + needle)


def test_bad_and_duplicate_hub_names():
    only(f.nfs_export_problems([{"name": "../etc"}], NETS, ROOT), "hub ../etc: name '../etc' cannot name")
    only(f.nfs_export_problems([{"name": "a"}, {"name": "a"}], NETS, ROOT), "hub a: the name 'a' is used by another hub too (entries 0 and 1 of juno_hubs)")


def test_good_inventory_has_no_problems():
    assert f.nfs_export_problems(HUBS, NETS, ROOT) == []


# --- entries -------------------------------------------------------------------------------------

def test_entries_apply_storage_defaults_and_inventory_values():
    entries = f.nfs_exports(hubs((1, {"export_owner": "65534", "export_group": "nogroup", "export_mode": "770"})), ROOT)
    assert [(e["name"], e["path"], e["owner"], e["group"], e["mode"]) for e in entries] == [
        ("physics", "/srv/juno/physics", "65534", "65534", "0755"),
        ("chemeng", "/srv/juno/chemeng", "65534", "nogroup", "0770"),
    ]
    assert entries[0]["sec"] == "sys" and entries[0]["no_root_squash"] is False


@pytest.mark.parametrize("owner,group,mode,writable", [
    ("root", "root", "0755", False),
    ("root", "root", "0777", True),
    ("root", "root", "1733", True),
    ("65534", "65534", "0755", True),
    ("nobody", "nogroup", "0711", True),
    ("nobody", "root", "0555", False),
    ("root", "nogroup", "0770", True),
    ("root", "nobody", "0750", False),
    ("alice", "users", "0775", False),
])
def test_squashed_root_can_write(owner, group, mode, writable):
    """The CSI driver creates home directories as root, i.e. as the anonymous user on a squashed export."""
    entry = f.nfs_exports(hubs((0, {"export_owner": owner, "export_group": group, "export_mode": mode}))[:1], ROOT)[0]
    assert entry["squashed_root_can_write"] is writable
    allowed = f.nfs_exports(hubs((0, {"export_owner": owner, "export_group": group, "export_mode": mode, "no_root_squash": True}))[:1], ROOT)[0]
    assert allowed["squashed_root_can_write"] is True


def test_entries_raise_on_problems():
    with pytest.raises(AnsibleFilterError, match="nfs_server_export_root"):
        f.nfs_exports(HUBS, "relative")


# --- kept and pruned exports --------------------------------------------------------------------

def current(hub_list, nets=None, **kwargs):
    return "# header\n\n" + "\n".join(f.nfs_export_lines(hub_list, nets or NETS, ROOT, **kwargs)) + "\n"


def test_removed_hub_is_kept_without_prune():
    before = current(HUBS)
    after = f.nfs_export_lines(HUBS[:1], NETS, ROOT, current=before)
    assert after == f.nfs_export_lines(HUBS, NETS, ROOT)
    assert f.nfs_exports_retained(before, HUBS[:1], ROOT) == ["/srv/juno/chemeng"]


def test_removed_hub_is_dropped_with_prune():
    before = current(HUBS)
    assert f.nfs_export_lines(HUBS[:1], NETS, ROOT, current=before, prune=True) == f.nfs_export_lines(HUBS[:1], NETS, ROOT)


def test_kept_export_keeps_its_options_and_follows_the_node_networks():
    before = current(hubs((1, {"sec": "krb5p"})))
    after = f.nfs_export_lines(HUBS[:1], ["10.30.0.0/24"], ROOT, current=before)
    assert "/srv/juno/chemeng 10.30.0.0/24(rw,sync,no_subtree_check,root_squash,sec=krb5p)" in after
    assert not any("10.20.0.0/24" in line for line in after)


def test_adding_a_hub_adds_one_line_per_network():
    before = current(HUBS)
    after = f.nfs_export_lines(HUBS + [{"name": "biology"}], NETS, ROOT, current=before)
    assert sorted(set(after) - set(before.splitlines())) == ["/srv/juno/biology 10.20.0.0/24(rw,sync,no_subtree_check,root_squash,sec=sys)"]
    assert len(after) == 3


def test_inventory_settings_win_over_the_current_file():
    before = current(HUBS)
    after = f.nfs_export_lines(hubs((0, {"sec": "krb5"})), NETS, ROOT, current=before)
    assert "/srv/juno/physics 10.20.0.0/24(rw,sync,no_subtree_check,root_squash,sec=krb5)" in after
    assert len(after) == 2


def test_kept_no_root_squash_export_needs_allow_or_prune():
    before = current(hubs((1, {"no_root_squash": True})), allow_no_root_squash=True)
    only(f.nfs_export_problems(HUBS[:1], NETS, ROOT, current=before), "the kept export /srv/juno/chemeng")
    assert f.nfs_export_problems(HUBS[:1], NETS, ROOT, current=before, prune=True) == []
    assert f.nfs_export_problems(HUBS[:1], NETS, ROOT, current=before, allow_no_root_squash=True) == []


def test_hand_edited_line_is_reported_unless_prune():
    before = current(HUBS) + "/srv/other\n"
    only(f.nfs_export_problems(HUBS, NETS, ROOT, current=before), "line 5 of the current exports file")
    assert f.nfs_export_problems(HUBS, NETS, ROOT, current=before, prune=True) == []


def test_parse():
    parsed = f.nfs_exports_parse("# c\n/srv/a 10.0.0.0/8(rw,sec=sys) 10.1.0.0/16(ro)\nbad line\n")
    assert parsed["entries"] == [
        {"path": "/srv/a", "client": "10.0.0.0/8", "options": ["rw", "sec=sys"]},
        {"path": "/srv/a", "client": "10.1.0.0/16", "options": ["ro"]},
    ]
    assert parsed["invalid"] == [{"line": 3, "text": "bad line"}]
    assert f.nfs_exports_parse(None) == {"entries": [], "invalid": []}


# --- mount options -------------------------------------------------------------------------------

def test_mount_options():
    assert f.nfs_mount_options({"name": "a"}) == ["nfsvers=4.1", "hard"]
    assert f.nfs_mount_options({"name": "a", "storage": {"sec": "krb5i"}}) == ["nfsvers=4.1", "hard", "sec=krb5i"]
    assert f.nfs_mount_options({"name": "a", "storage": {"sec": "krb5", "mount_options": ["nfsvers=4.2", "sec=krb5p"]}}) == ["nfsvers=4.2", "sec=krb5p"]


# --- checking an existing server ----------------------------------------------------------------

def test_check_good_existing_server():
    exported = "/srv/juno/physics\t10.0.0.0/8(sync,wdelay,hide,no_subtree_check,sec=sys,rw,secure,root_squash,no_all_squash)\n" \
               "/srv/juno/chemeng\t10.20.0.0/24(rw,root_squash,sec=sys:krb5)\n"
    assert f.nfs_export_check(exported, HUBS, NETS, ROOT) == []


def test_check_reports_what_is_missing():
    exported = "/srv/juno/physics\t10.99.0.0/24(rw,root_squash)\n/srv/other 10.20.0.0/24(rw)\n"
    msgs = f.nfs_export_check(exported, HUBS, NETS, ROOT)
    only(msgs, "/srv/juno/chemeng is not exported; hub chemeng needs")
    only(msgs, "/srv/juno/physics is exported to 10.99.0.0/24 only; the node network 10.20.0.0/24 is not among them")
    assert len(msgs) == 2


def test_check_reports_unsafe_exports():
    exported = "/srv/juno/physics *(rw,no_root_squash)\n/srv/juno/chemeng 10.20.0.0/16(ro,root_squash,sec=krb5p)\n"
    msgs = f.nfs_export_check(exported, HUBS, NETS, ROOT)
    only(msgs, "/srv/juno/physics is exported to every host")
    only(msgs, "/srv/juno/physics is exported with no_root_squash")
    only(msgs, "/srv/juno/chemeng is exported read-only")
    only(msgs, "/srv/juno/chemeng is exported with sec=krb5p")
    allowed = f.nfs_export_check(exported, HUBS, NETS, ROOT, allow_no_root_squash=True)
    assert not [m for m in allowed if "no_root_squash" in m]
    assert len(allowed) == len(msgs) - 1


def test_check_hostname_clients_do_not_count():
    msgs = f.nfs_export_check("/srv/juno/physics node*.example.edu(rw)\n/srv/juno/chemeng @nodes(rw)\n", HUBS, NETS, ROOT)
    assert len(msgs) == 2 and all("is not among them" in m for m in msgs)
