"""Unit tests of plugins/filter/history.py: the collection's own objects of a history entry, the plan that
takes the cluster back to them (what differs, what is removed, what is skipped and why), and the entries
kept on the cluster (ConfigMaps in juno-system) read back, found and compared."""

import glob
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import history as h

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANAGED = {"app.kubernetes.io/managed-by": "juno.hub"}


def sc(name="juno-home-chemeng", mount=("nfsvers=4.1", "hard"), labels=None):
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "labels": dict(MANAGED, **(labels or {}))},
            "provisioner": "nfs.csi.k8s.io", "parameters": {"share": "/srv/juno/chemeng"},
            "reclaimPolicy": "Retain", "mountOptions": list(mount)}


def ns(name, labels=None):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(MANAGED, **(labels or {}))}}


def live(obj, managed=None, **extra):
    """The object as the API server returns it: its server-side fields, and managedFields of juno.hub."""
    out = yaml.safe_load(yaml.safe_dump(obj))
    out["metadata"].update({"uid": "u-" + obj["metadata"]["name"], "resourceVersion": "7", "creationTimestamp": "2026-12-07T10:00:00Z"})
    if obj["kind"] == "Namespace":
        out["metadata"]["labels"]["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        out["spec"] = {"finalizers": ["kubernetes"]}
        out["status"] = {"phase": "Active"}
    if managed is not None:
        out["metadata"]["managedFields"] = [{"manager": "juno.hub", "operation": "Apply", "fieldsType": "FieldsV1",
                                             "fieldsV1": managed}]
    out.update(extra)
    return out


def result(kind, api_version, *objects, found=True):
    return {"kind": kind, "api_version": api_version, "api_found": found, "resources": list(objects)}


SETS_FILES = {
    "storage/nfs-storageclasses.yaml": [sc()],
    "storage/csi-driver-nfs.release.yaml": {"release": "csi-driver-nfs"},
    "storage/csi-driver-nfs.values.yaml": {"a": 1},
    "hubs/chemeng-namespace.yaml": [ns("hub-chemeng", {"pod-security.kubernetes.io/warn": "restricted"})],
    "hubs/chemeng-secrets.yaml": [{"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "juno-ad-bind", "namespace": "hub-chemeng", "labels": MANAGED},
                                   "data": {"password": "hmac-sha256:" + "ab" * 32}}],
    "cluster/metallb-pool.yaml": [{"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
                                   "metadata": {"name": "juno", "namespace": "metallb-system"}}],
    "restore/kubeadm-config.yaml": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"}}],
}


def test_manifest_sets_are_the_applied_object_sets_only():
    sets = h.history_manifest_sets(SETS_FILES)
    assert [s["path"] for s in sets] == ["cluster/metallb-pool.yaml", "hubs/chemeng-namespace.yaml", "hubs/chemeng-secrets.yaml",
                                         "storage/nfs-storageclasses.yaml"]
    assert {s["path"]: s["component"] for s in sets}["cluster/metallb-pool.yaml"] == "metallb"
    assert {s["path"]: s["component"] for s in sets}["storage/nfs-storageclasses.yaml"] == "nfs-storageclasses"
    with pytest.raises(AnsibleFilterError, match="hubs/x.yaml is not a list of Kubernetes objects"):
        h.history_manifest_sets({"hubs/x.yaml": {"release": "x"}})


def test_kinds_to_read_cover_the_entry_and_the_latest_state():
    entry = h.history_manifest_sets({"storage/nfs-storageclasses.yaml": [sc()]})
    latest = h.history_manifest_sets({"storage/nfs-storageclasses.yaml": [sc()], "hubs/a-namespace.yaml": [ns("hub-a")],
                                      "cluster/kata-node-labels.yaml": [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "w1"}}],
                                      "hubs/a-secrets.yaml": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}]})
    assert h.history_object_kinds(entry, latest) == [{"api_version": "v1", "kind": "Namespace"},
                                                     {"api_version": "storage.k8s.io/v1", "kind": "StorageClass"}]


def plan(files, results, **kw):
    return h.objects_rollback_plan(h.history_manifest_sets(files), results, **kw)


def test_a_changed_field_is_named_and_its_set_applied():
    p = plan({"storage/nfs-storageclasses.yaml": [sc()]},
             [result("StorageClass", "storage.k8s.io/v1", live(sc(mount=("nfsvers=4.2", "hard"))))])
    row, = p["objects"]
    assert (row["ref"], row["action"], row["fields"]) == ("StorageClass juno-home-chemeng", "change", ["mountOptions"])
    assert p["apply"] == [{"path": "storage/nfs-storageclasses.yaml", "phase": "storage", "name": "nfs-storageclasses",
                           "objects": [sc()], "recorded": [sc()]}]
    assert p["changes"] and p["lines"] == ["StorageClass juno-home-chemeng (storage/nfs-storageclasses.yaml): change mountOptions"]


def test_server_defaults_and_other_labels_are_not_changes():
    p = plan({"hubs/chemeng-namespace.yaml": [ns("hub-chemeng")]}, [result("Namespace", "v1", live(ns("hub-chemeng")))])
    assert [r["action"] for r in p["objects"]] == ["unchanged"]
    assert p["apply"] == [] and not p["changes"]


def test_a_field_the_collection_added_later_is_removed_by_the_rollback():
    managed = {"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}, "f:pod-security.kubernetes.io/warn": {}}}}
    now = live(ns("hub-chemeng", {"pod-security.kubernetes.io/warn": "restricted"}), managed)
    p = plan({"hubs/chemeng-namespace.yaml": [ns("hub-chemeng")]}, [result("Namespace", "v1", now)])
    assert p["objects"][0]["action"] == "change"
    assert p["objects"][0]["fields"] == ["metadata.labels.pod-security.kubernetes.io/warn (removed)"]


def test_a_missing_object_is_created():
    p = plan({"storage/nfs-storageclasses.yaml": [sc(), sc("juno-home-physics")]},
             [result("StorageClass", "storage.k8s.io/v1", live(sc()))])
    assert [(r["ref"], r["action"]) for r in p["objects"]] == [
        ("StorageClass juno-home-chemeng", "unchanged"), ("StorageClass juno-home-physics", "create")]
    assert p["apply"][0]["objects"] == [sc(), sc("juno-home-physics")]  # the unchanged one too: a no-op


def test_hashed_secrets_render_only_components_and_unserved_kinds_are_skipped_with_the_reason():
    p = plan(SETS_FILES, [result("Namespace", "v1", live(ns("hub-chemeng", {"pod-security.kubernetes.io/warn": "restricted"}))),
                          result("StorageClass", "storage.k8s.io/v1", live(sc())),
                          result("IPAddressPool", "metallb.io/v1beta1", found=False)],
             render_only=[])
    rows = {r["ref"]: r for r in p["objects"]}
    assert rows["Secret hub-chemeng/juno-ad-bind"]["action"] == "skip"
    assert "keyed hashes" in rows["Secret hub-chemeng/juno-ad-bind"]["reason"]
    assert rows["IPAddressPool metallb-system/juno"]["reason"] == "the cluster does not serve metallb.io/v1beta1 IPAddressPool"
    assert "ConfigMap kube-system/kubeadm-config" not in rows  # the restore phase is never rolled back
    assert not p["changes"]
    p = plan(SETS_FILES, [result("IPAddressPool", "metallb.io/v1beta1")], render_only=["metallb"])
    assert {r["ref"]: r for r in p["objects"]}["IPAddressPool metallb-system/juno"]["reason"] == "rendered only (juno_render_only: metallb)"


def test_objects_not_in_the_entry_are_listed_and_removed_only_with_prune():
    extra_sc = live(sc("juno-home-bio"))
    later = live(ns("hub-bio"))
    history_cm = live({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "juno-history-abc", "namespace": "juno-system",
                                    "labels": dict(MANAGED, **{"juno.hub/history": "entry"})}})
    unmanaged = live({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-path"}})
    results = [result("StorageClass", "storage.k8s.io/v1", live(sc()), extra_sc, unmanaged),
               result("Namespace", "v1", later, live(ns("juno-system"))), result("ConfigMap", "v1", history_cm)]
    current = h.history_manifest_sets({"storage/nfs-storageclasses.yaml": [sc(), sc("juno-home-bio")], "hubs/bio-namespace.yaml": [ns("hub-bio")]})
    files = {"storage/nfs-storageclasses.yaml": [sc()]}
    p = plan(files, results, current_sets=current)
    rows = {r["ref"]: r for r in p["objects"]}
    assert set(rows) == {"StorageClass juno-home-chemeng", "StorageClass juno-home-bio", "Namespace hub-bio"}
    assert rows["StorageClass juno-home-bio"]["action"] == "extra" and "prune=true" in rows["StorageClass juno-home-bio"]["reason"]
    assert rows["StorageClass juno-home-bio"]["set"] == "storage/nfs-storageclasses.yaml"
    assert p["remove"] == [] and not p["changes"]
    p = plan(files, results, current_sets=current, prune=True)
    rows = {r["ref"]: r for r in p["objects"]}
    assert rows["StorageClass juno-home-bio"]["action"] == "remove"
    assert rows["Namespace hub-bio"]["action"] == "extra" and "never removed" in rows["Namespace hub-bio"]["reason"]
    assert p["remove"] == [{"api_version": "storage.k8s.io/v1", "kind": "StorageClass", "namespace": "", "name": "juno-home-bio"}]
    assert p["changes"] and p["removed_sets"] == []


def test_a_later_set_whose_objects_all_go_leaves_the_history():
    extra = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "deny", "namespace": "hub-a", "labels": MANAGED}, "spec": {"podSelector": {}}}
    current = h.history_manifest_sets({"hubs/a-policies.yaml": [extra]})
    p = h.objects_rollback_plan(h.history_manifest_sets({"storage/nfs-storageclasses.yaml": [sc()]}),
                                [result("StorageClass", "storage.k8s.io/v1", live(sc())),
                                 result("NetworkPolicy", "networking.k8s.io/v1", live(extra))],
                                prune=True, current_sets=current)
    assert p["remove"][0]["name"] == "deny" and p["removed_sets"] == ["hubs/a-policies.yaml"]


def test_the_entry_s_inventory_commit_is_read_from_its_message():
    msg = "juno: run of 3 recorded files\n\nby: root@ctl\ninventory: /srv/site (4e1c2d9, with uncommitted changes)\n"
    assert h.history_entry_inventory(msg) == {"dir": "/srv/site", "commit": "4e1c2d9, with uncommitted changes"}
    assert h.history_entry_inventory("no such line")["commit"] == "not recorded"


def cm(commit, when, files, removed=""):
    data = {"message": "juno: run %s\n\nby: root@ctl\ninventory: /srv/site (%s)\n" % (commit[:7], commit[:5]),
            "state.yaml": yaml.safe_dump(files)}
    if removed:
        data["removed"] = removed
    return {"metadata": {"name": "juno-history-" + commit[:7], "creationTimestamp": when, "annotations": {"juno.hub/entry": commit}},
            "data": data}


def test_cluster_entries_are_ordered_and_carry_the_whole_state_after_each():
    a = cm("aaaaaaa111", "2026-12-07T10:00:00Z", {"storage/nfs-storageclasses.yaml": [sc()], "hubs/a-namespace.yaml": [ns("hub-a")]})
    b = cm("bbbbbbb222", "2026-12-07T11:00:00Z", {"storage/nfs-storageclasses.yaml": [sc(mount=("nfsvers=4.2",))]})
    c = cm("ccccccc333", "2026-12-07T12:00:00Z", {}, removed="hubs/a-namespace.yaml\n")
    entries = h.history_cluster_entries([c, a, b])
    assert [e["id"] for e in entries] == ["aaaaaaa", "bbbbbbb", "ccccccc"]
    assert set(entries[1]["tree"]) == {"storage/nfs-storageclasses.yaml", "hubs/a-namespace.yaml"}
    assert entries[1]["tree"]["storage/nfs-storageclasses.yaml"][0]["mountOptions"] == ["nfsvers=4.2"]
    assert set(entries[2]["tree"]) == {"storage/nfs-storageclasses.yaml"}
    assert entries[2]["before"] == entries[1]["tree"] and entries[0]["before"] == {}
    assert entries[0]["subject"] == "juno: run aaaaaaa" and h.history_entry_inventory(entries[0]["message"])["commit"] == "aaaaa"
    assert h.history_entry_find(entries, "bbbbbbb2")["id"] == "bbbbbbb"
    assert h.history_entry_find(entries, "HEAD")["id"] == "ccccccc"
    with pytest.raises(AnsibleFilterError, match="entry=0123abc: no such entry among the 3 kept on the cluster"):
        h.history_entry_find(entries, "0123abc")
    with pytest.raises(AnsibleFilterError, match="is not a history entry"):
        h.history_entry_find(entries, "a;rm -rf", "entry")
    diff = h.history_tree_diff(entries[0]["tree"], entries[1]["tree"], "aaaaaaa", "bbbbbbb")
    assert "--- aaaaaaa/storage/nfs-storageclasses.yaml" in diff
    assert "-  - nfsvers=4.1" in diff and "+  - nfsvers=4.2" in diff and "-  - hard" in diff
    assert h.history_tree_diff(entries[1]["tree"], entries[2]["tree"])[:2] == ["--- a/hubs/a-namespace.yaml", "+++ /dev/null"]


def test_git_show_texts_are_parsed():
    assert h.history_load({"storage/x.yaml": "- kind: StorageClass\n  metadata: {name: x}\n"}) == {
        "storage/x.yaml": [{"kind": "StorageClass", "metadata": {"name": "x"}}]}
    with pytest.raises(AnsibleFilterError, match="storage/x.yaml is not YAML"):
        h.history_load({"storage/x.yaml": "a: [b"})


def test_git_cat_file_batch_output_is_split_into_files(tmp_path):
    """The output of a real ``git cat-file --batch``: sizes in bytes (a non-ASCII character), a file
    without a final newline, an empty file, and the same path in two commits."""
    import subprocess

    def git(*args, **kw):
        return subprocess.run(["git", "-C", str(tmp_path)] + list(args), check=True, capture_output=True, **kw).stdout

    git("init", "-q")
    (tmp_path / "hubs").mkdir()
    (tmp_path / "hubs" / "a.yaml").write_text("- kind: Namespace\n  metadata: {name: \u00e9cole}\n", encoding="utf-8")
    (tmp_path / "hubs" / "b.yaml").write_text("- kind: Namespace", encoding="utf-8")
    (tmp_path / "hubs" / "c.yaml").write_text("", encoding="utf-8")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    first = git("rev-parse", "HEAD").decode().strip()
    (tmp_path / "hubs" / "a.yaml").write_text("- kind: Namespace\n  metadata: {name: b}\n", encoding="utf-8")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    names = [first + ":hubs/a.yaml", first + ":hubs/b.yaml", first + ":hubs/c.yaml", "HEAD:hubs/a.yaml"]
    out = git("cat-file", "--batch", input="\n".join(names).encode()).decode("utf-8")
    files = h.history_cat_file(out, names)
    assert files == {first: {"hubs/a.yaml": "- kind: Namespace\n  metadata: {name: \u00e9cole}\n",
                             "hubs/b.yaml": "- kind: Namespace",
                             "hubs/c.yaml": ""},
                     "HEAD": {"hubs/a.yaml": "- kind: Namespace\n  metadata: {name: b}\n"}}
    assert h.history_load(files["HEAD"]) == {"hubs/a.yaml": [{"kind": "Namespace", "metadata": {"name": "b"}}]}
    assert h.history_cat_file("", []) == {}

    missing = git("cat-file", "--batch", input=b"HEAD:hubs/nope.yaml").decode()
    with pytest.raises(AnsibleFilterError, match="gave 'HEAD:hubs/nope.yaml missing' for HEAD:hubs/nope.yaml"):
        h.history_cat_file(missing, ["HEAD:hubs/nope.yaml"])
    with pytest.raises(AnsibleFilterError, match="ends inside"):
        h.history_cat_file(out[:out.index("\n") + 10], names[:1])
    with pytest.raises(AnsibleFilterError, match="more objects than the 1 names"):
        h.history_cat_file(out, names[:1])
    with pytest.raises(AnsibleFilterError, match="ends before the header"):
        h.history_cat_file(out.split("\n", 1)[0], names[:1])
    with pytest.raises(AnsibleFilterError, match="expects the output"):
        h.history_cat_file(None, names)
    with pytest.raises(AnsibleFilterError, match="is not <commit>:<path>"):
        h.history_cat_file(out, ["hubs/a.yaml"] + names[1:])


def test_set_components_match_the_roles():
    """SET_COMPONENTS names every manifest set a role gives a kube_apply_component of its own."""
    import re
    found = {}
    for path in glob.glob(os.path.join(TOP, "roles", "*", "tasks", "*.yml")):
        with open(path) as f:
            tasks = yaml.safe_load(f) or []
        for task in tasks:
            v = task.get("vars") or {}
            if "ansible.builtin.include_role" in task and (task["ansible.builtin.include_role"] or {}).get("tasks_from") == "manifests":
                if v.get("kube_apply_component"):
                    found["%s/%s" % (v["kube_apply_phase"], v["kube_apply_name"])] = v["kube_apply_component"]
                # several sets in one call (kube_apply_sets, a template of a list of {name, component, ...})
                for name, component in re.findall(r"'name':\s*'([^']+)'[^{}]*?'component':\s*'([^']+)'", str(v.get("kube_apply_sets") or "")):
                    found["%s/%s" % (v["kube_apply_phase"], name)] = component
    assert found == h.SET_COMPONENTS


def test_a_set_with_a_hashed_secret_applies_the_rest_and_records_the_whole_set():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "beats", "labels": MANAGED},
              "data": {"key": "hmac-sha256:" + "cd" * 32}}
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "beats", "labels": MANAGED}, "data": {"a": "1"}}
    p = plan({"monitoring/beats-config.yaml": [secret, cfg]}, [result("ConfigMap", "v1", live(dict(cfg, data={"a": "2"})))])
    assert [r["action"] for r in p["objects"]] == ["skip", "change"]
    assert p["apply"][0]["objects"] == [cfg] and p["apply"][0]["recorded"] == [secret, cfg]


def test_results_of_a_loop_name_their_kind_by_the_loop_variable():
    looped = {"ansible_loop_var": "__juno_rollback_kind", "__juno_rollback_kind": {"api_version": "storage.k8s.io/v1", "kind": "StorageClass"},
              "api_found": True, "resources": [live(sc(mount=("nfsvers=4.2",)))]}
    p = plan({"storage/nfs-storageclasses.yaml": [sc()]}, [looped])
    assert p["objects"][0]["action"] == "change"
    p = plan({"storage/nfs-storageclasses.yaml": [sc()]}, [dict(looped, resources=[])])
    assert p["objects"][0]["action"] == "create"


# ---------------------------------------------------------------------------------------------
# rollback.yml -e objects=true in render mode (inventories/example): it reads the entry, and bad input
# fails before anything changes, naming the variable and its value


def _git(repo, *args):
    import subprocess
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def _rollback(tmp, history, *extra):
    import json
    import subprocess
    import sys
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
               ANSIBLE_CACHE_PLUGIN="memory", ANSIBLE_NOCOLOR="1")
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False,
            "juno_apply": False, "juno_render_dir": str(tmp / "rendered"), "juno_history_dir": str(history),
            "juno_preflight_passed": True}
    (tmp / "base.json").write_text(json.dumps(base))
    inv = os.path.join(TOP, "inventories", "example")
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inv,
                        "--vault-password-file", os.path.join(inv, "vault-password.example"),
                        os.path.join(TOP, "playbooks", "rollback.yml"), "-e", "@%s" % (tmp / "base.json"), "-e", "objects=true", *extra],
                       cwd=TOP, env=env, capture_output=True, text=True, timeout=600, check=False)
    r.flat = " ".join(r.stdout.split())
    return r


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollback-objects")
    objects, releases = tmp / "objects", tmp / "releases"
    for repo in (objects, releases):
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
    (objects / "storage").mkdir()
    (objects / "storage" / "nfs-storageclasses.yaml").write_text(yaml.safe_dump([sc()]))
    _git(objects, "add", "-A")
    _git(objects, "commit", "-qm", "juno: run\n\nby: t@ctl\ninventory: /srv/site (4e1c2d9)")
    (releases / "releases").mkdir()
    (releases / "releases" / "spark.release.yaml").write_text("release: spark\n")
    _git(releases, "add", "-A")
    _git(releases, "commit", "-qm", "juno: run")
    return tmp, objects, releases


def test_rollback_objects_reads_the_entry_and_in_render_mode_only_says_what_it_would_do(histories):
    tmp, objects = histories[:2]
    r = _rollback(tmp, objects, "-e", "entry=" + _git(objects, "rev-parse", "--short", "HEAD"))
    assert r.returncode == 0, r.stdout[-5000:]
    assert "juno_apply is false: NOT rolling back" in r.flat and "storage/nfs-storageclasses.yaml" in r.flat


@pytest.mark.parametrize("args,message", [
    (["-e", "entry=0123abc"], "entry=0123abc: no such entry in the history repository"),
    (["-e", "entry=HEAD", "-e", "hub=chemeng"], "not -e hub, -e release or -e revision"),
    (["-e", "entry=HEAD", "-e", "source=elsewhere"], "source=elsewhere"),
    (["-e", "prune=true"], "give -e entry=<commit>"),
])
def test_rollback_objects_refuses_bad_input_before_anything_changes(histories, args, message):
    tmp, objects = histories[:2]
    r = _rollback(tmp, objects, *args)
    assert r.returncode != 0 and message in r.flat, r.stdout[-5000:]


def test_rollback_objects_refuses_an_entry_without_objects(histories):
    tmp, releases = histories[0], histories[2]
    r = _rollback(tmp, releases, "-e", "entry=HEAD")
    assert r.returncode != 0 and "entry=HEAD" in r.flat and "records none of the collection's own objects" in r.flat.replace("''", "'"), r.stdout[-5000:]


def test_tree_diff_takes_the_types_templating_hands_it():
    class Tagged(dict):
        """Like ansible-core's tagged dicts: a dict subclass yaml.safe_dump cannot represent."""

    old = {"hubs/a-namespace.yaml": [Tagged(ns("hub-a"))]}
    new = {"hubs/a-namespace.yaml": [Tagged(ns("hub-a", {"x": "y"}))]}
    assert "+      x: y" in h.history_tree_diff(Tagged(old), Tagged(new))
