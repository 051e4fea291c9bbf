# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The history of the desired state (playbooks/record.yml) read back: the collection's own objects of an
entry, the plan that takes the cluster back to them, and the entries kept on the cluster.

``history_manifest_sets`` picks, from the files of an entry, the manifest sets that kube_apply applied
(not Helm releases); ``history_object_kinds`` names the kinds to read from the cluster;
``objects_rollback_plan`` compares the entry's objects with the live ones and says, per object, what a
rollback would do (create, change which fields, nothing, skip and why, remove); ``history_cluster_entries``
turns the ConfigMaps of juno-system into entries with the whole recorded state of each, so that a second
control machine can show and compare them (``history_entry_find``, ``history_tree_diff``).
All pure functions on data, so that tests/unit reaches every decision.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import json
import re

from ansible.errors import AnsibleFilterError

HASH_PREFIX = "hmac-sha256:"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "juno.hub"
HISTORY_LABEL = "juno.hub/history"
HISTORY_NAMESPACE = "juno-system"
# Phases whose manifest sets a rollback never applies: restore/kubeadm-config is kubeadm's own
# ConfigMap, which the etcd restore edits to point at the restored data directory.
SKIPPED_PHASES = ("restore",)
# Kinds a rollback never applies nor removes: Nodes (kata labels them with a patch, the worker role
# too) and the objects a removal would take their contents with.
NEVER_APPLIED = ("Node",)
NEVER_REMOVED = ("Namespace", "Secret", "Node", "CustomResourceDefinition", "PersistentVolume")
# The manifest sets whose objects belong to a chart's component (kube_apply_component in the roles):
# a component in juno_render_only is written for review, never applied, and a rollback leaves it so.
# tests/unit/test_history.py checks this table against the roles.
SET_COMPONENTS = {
    "cluster/metallb-pool": "metallb",
    "monitoring/beats-elastic-stack": "eck",
    "monitoring/beats": "eck",
}
ENTRY_REF = re.compile(r"^[A-Za-z0-9~^._/-]+$")
SET_PATH = re.compile(r"^[a-z0-9_-]+/[A-Za-z0-9._-]+\.yaml$")


def _ref(obj):
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return "%s %s%s" % (obj.get("kind"), ns + "/" if ns else "", meta.get("name"))


def _group(api_version):
    api_version = str(api_version or "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _key(obj):
    meta = obj.get("metadata") or {}
    return (_group(obj.get("apiVersion")), obj.get("kind"), meta.get("namespace") or "", meta.get("name"))


def _hashed(value):
    if isinstance(value, dict):
        return any(_hashed(v) for v in value.values())
    if isinstance(value, list):
        return any(_hashed(v) for v in value)
    return isinstance(value, str) and value.startswith(HASH_PREFIX)


def is_manifest_set(path):
    """A file of the history that holds a manifest set (not a Helm release's record or values)."""
    path = str(path)
    return bool(SET_PATH.match(path)) and not path.endswith((".release.yaml", ".values.yaml"))


def history_manifest_sets(files):
    """The manifest sets of an entry: ``files`` maps a history path (``storage/nfs-storageclasses.yaml``)
    to its data (a list of objects). Returns them sorted by path, each with phase, name, component and
    objects; Helm releases and the skipped phases are left out."""
    if not isinstance(files, dict):
        raise AnsibleFilterError("juno.hub.history_manifest_sets expects a dict of path to data, got %s" % type(files).__name__)
    out = []
    for path in sorted(files):
        if not is_manifest_set(path):
            continue
        phase, base = path.split("/", 1)
        name = base[:-len(".yaml")]
        if phase in SKIPPED_PHASES:
            continue
        objects = files[path]
        if objects is None:
            objects = []
        if not isinstance(objects, list) or not all(isinstance(o, dict) and o.get("kind") for o in objects):
            raise AnsibleFilterError("juno.hub.history_manifest_sets: %s is not a list of Kubernetes objects" % path)
        out.append({"path": path, "phase": phase, "name": name,
                    "component": SET_COMPONENTS.get("%s/%s" % (phase, name), name), "objects": objects})
    return out


def history_object_kinds(sets, *more):
    """The (apiVersion, kind) pairs of the objects of ``sets`` and of further lists of sets (the latest
    entry's): what to read from the cluster to compare and to find objects the entry does not have."""
    seen, out = set(), []
    for group in (sets,) + more:
        for s in group or []:
            for obj in s.get("objects") or []:
                pair = (obj.get("apiVersion"), obj.get("kind"))
                # Secrets are never read: their recorded data are hashes, so they are never rolled back.
                if pair not in seen and obj.get("kind") not in NEVER_APPLIED + ("Secret",):
                    seen.add(pair)
                    out.append({"api_version": pair[0], "kind": pair[1]})
    return sorted(out, key=lambda k: (k["kind"], k["api_version"]))


class _Missing(object):
    pass


def _diff(rec, live, path):
    """Dotted paths where the recorded ``rec`` is not what ``live`` has (only the fields ``rec`` sets:
    the server adds defaults of its own)."""
    if isinstance(rec, dict):
        if not isinstance(live, dict):
            return [path]
        out = []
        for k in sorted(rec, key=str):
            out.extend(_diff(rec[k], live.get(k, _Missing), "%s.%s" % (path, k) if path else str(k)))
        return out
    if isinstance(rec, list):
        if not isinstance(live, list) or len(rec) != len(live):
            return [path]
        for a, b in zip(rec, live):
            if _diff(a, b, path):
                return [path]
        return []
    if live is _Missing:
        return [path]
    if rec == live or (not isinstance(rec, (dict, list)) and not isinstance(live, (dict, list))
                       and rec is not None and live is not None and str(rec) == str(live)):
        return []
    return [path]


def _fields_v1_paths(fields, path=()):
    """Leaf paths (tuples of keys) of a managedFields fieldsV1 tree (``f:`` keys; a list or map keyed by
    ``k:``/``v:``/``i:`` counts as one field)."""
    out = []
    if not isinstance(fields, dict):
        return out
    keys = [k for k in fields if k != "."]
    if not keys or any(not k.startswith("f:") for k in keys):
        return [path] if path else []
    for k in keys:
        sub = path + (k[2:],)
        out.extend(_fields_v1_paths(fields[k], sub) or [sub])
    return out


def _has_path(obj, path):
    cur = obj
    for part in path:
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def _managed_removed(rec, live):
    """Fields the collection set on the live object (field manager juno.hub, server-side apply) that the
    entry does not have: applying the entry removes them."""
    out = []
    for mf in (live.get("metadata") or {}).get("managedFields") or []:
        if mf.get("manager") != MANAGER or mf.get("operation") != "Apply":
            continue
        for p in _fields_v1_paths(mf.get("fieldsV1") or {}):
            if p[0] == "metadata" and (len(p) < 3 or p[1] not in ("labels", "annotations")):
                continue
            if not _has_path(rec, p):
                out.append(".".join(p) + " (removed)")
    return sorted(set(out))


def _index_live(live):
    """The live objects by key, and the kinds the cluster serves (k8s_info results, one per kind)."""
    objects, served, namespaced = {}, set(), {}
    for result in live or []:
        if not isinstance(result, dict):
            continue
        # A loop's result names its loop variable (the kind it read) in ansible_loop_var.
        asked = result.get(result.get("ansible_loop_var") or "item") or {}
        kind = result.get("kind") or asked.get("kind")
        api_version = result.get("api_version") or asked.get("api_version")
        if result.get("api_found", True) is False or result.get("failed"):
            continue
        served.add((_group(api_version), kind))
        for obj in result.get("resources") or []:
            objects[_key(dict(obj, kind=obj.get("kind") or kind, apiVersion=obj.get("apiVersion") or api_version))] = obj
            namespaced[(_group(api_version), kind)] = bool((obj.get("metadata") or {}).get("namespace"))
    return objects, served, namespaced


def objects_rollback_plan(sets, live, prune=False, render_only=None, current_sets=None):
    """What taking the collection's own objects back to an entry does.

    ``sets``: the entry's manifest sets (history_manifest_sets); ``live``: k8s_info results, one per kind
    (history_object_kinds), each with ``api_version``, ``kind``, ``api_found`` and ``resources``;
    ``prune``: remove the objects that carry the collection's managed-by label and are not in the entry;
    ``render_only``: juno_render_only (those components are never applied); ``current_sets``: the latest
    entry's sets, to name the set an object to remove came from.

    Returns ``objects`` (one line of data per object: ref, set, action create/change/unchanged/skip/extra/
    remove, fields, reason), ``apply`` (the sets with something to create or change, in the entry's order,
    each with its applicable ``objects`` and the whole set as ``recorded``), ``remove`` (the objects to delete),
    ``lines`` (what to show), ``changes`` (anything to do)
    and ``removed_sets`` (history files whose objects all go)."""
    if not isinstance(sets, list):
        raise AnsibleFilterError("juno.hub.objects_rollback_plan expects the list of an entry's manifest sets")
    render_only = set(render_only or [])
    objects, served, namespaced = _index_live(live)
    plan, apply_sets, seen = [], [], set()
    for s in sets:
        keep, changed = [], False
        for obj in s.get("objects") or []:
            ref = _ref(obj)
            row = {"ref": ref, "set": s["path"], "fields": [], "reason": ""}
            group, kind = _group(obj.get("apiVersion")), obj.get("kind")
            key = _key(obj)
            if not key[2] and namespaced.get((group, kind)):
                key = (group, kind, "default", key[3])
            seen.add(key)
            if s.get("component") in render_only or s.get("name") in render_only:
                row.update(action="skip", reason="rendered only (juno_render_only: %s)" % s.get("component"))
            elif kind in NEVER_APPLIED:
                row.update(action="skip", reason="a %s is labelled by its role, not applied" % kind)
            elif _hashed(obj) or kind == "Secret":
                row.update(action="skip", reason="its recorded data are keyed hashes, not values; the inventory "
                                                 "(vault) holds them, and the next run of site.yml applies them")
            elif (group, kind) not in served:
                row.update(action="skip", reason="the cluster does not serve %s %s" % (obj.get("apiVersion"), kind))
            elif key not in objects:
                row.update(action="create")
                changed = True
                keep.append(obj)
            else:
                cur = objects[key]
                rec = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
                meta = rec.get("metadata") or {}
                rec["metadata"] = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
                fields = _diff(rec, cur, "") + _managed_removed(obj, cur)
                row.update(action="change" if fields else "unchanged", fields=fields)
                changed = changed or bool(fields)
                keep.append(obj)
            plan.append(row)
        if changed:
            # The whole set as the entry recorded it goes into the new entry; its applicable objects are applied
            # (the unchanged ones too: server-side apply leaves them as they are).
            apply_sets.append({"path": s["path"], "phase": s["phase"], "name": s["name"], "objects": keep,
                               "recorded": s.get("objects") or []})
    # Objects of the collection on the cluster that the entry does not have.
    origin = {}
    for s in current_sets or []:
        for obj in s.get("objects") or []:
            origin.setdefault(_key(obj), s["path"])
    remove = []
    for key in sorted(objects, key=lambda k: tuple(str(x) for x in k)):
        cur = objects[key]
        labels = (cur.get("metadata") or {}).get("labels") or {}
        if key in seen or labels.get(MANAGED_BY) != MANAGER or HISTORY_LABEL in labels:
            continue
        if key[1] == "Namespace" and key[3] == HISTORY_NAMESPACE:
            continue
        ref = "%s %s%s" % (key[1], key[2] + "/" if key[2] else "", key[3])
        row = {"ref": ref, "set": origin.get(key, ""), "fields": []}
        if key[1] in NEVER_REMOVED:
            row.update(action="extra", reason="not in the entry; a %s is never removed by a rollback (delete it by hand "
                                              "if it should go)" % key[1])
        elif prune:
            row.update(action="remove", reason="not in the entry")
            meta = cur.get("metadata") or {}
            remove.append({"api_version": cur.get("apiVersion"), "kind": cur.get("kind") or key[1],
                           "namespace": meta.get("namespace") or "", "name": meta.get("name")})
        else:
            row.update(action="extra", reason="not in the entry; kept (-e prune=true removes it)")
        plan.append(row)
    removed_sets = []
    if remove:
        gone = set((r["kind"], r["namespace"], r["name"]) for r in remove)
        entry_paths = set(s["path"] for s in sets)
        for s in current_sets or []:
            objs = s.get("objects") or []
            if s["path"] not in entry_paths and objs and all(
                    (o.get("kind"), (o.get("metadata") or {}).get("namespace") or "", (o.get("metadata") or {}).get("name")) in gone
                    for o in objs):
                removed_sets.append(s["path"])
    lines = []
    for row in plan:
        text = "%s (%s): %s" % (row["ref"], row["set"] or "not recorded", row["action"])
        if row["fields"]:
            text += " " + ", ".join(row["fields"])
        if row.get("reason"):
            text += ": " + row["reason"]
        lines.append(text)
    counts = {}
    for row in plan:
        counts[row["action"]] = counts.get(row["action"], 0) + 1
    return {"objects": plan, "apply": apply_sets, "remove": remove, "removed_sets": sorted(removed_sets),
            "lines": lines, "counts": counts, "changes": bool(apply_sets or remove)}


def history_entry_inventory(message):
    """The inventory and its git commit that an entry's message records (``inventory: <dir> (<commit>)``)."""
    for line in str(message or "").splitlines():
        m = re.match(r"^inventory: (.*) \((.*)\)\s*$", line)
        if m:
            return {"dir": m.group(1), "commit": m.group(2)}
    return {"dir": "", "commit": "not recorded"}


def history_cluster_entries(configmaps):
    """The entries kept on the cluster (ConfigMaps juno-history-<id> in juno-system), oldest first, each with
    its id, commit, creation time, message, the files its run recorded, ``before`` (the state before it) and
    ``tree``: the whole recorded state after it (each run records what it applied; the files of the runs before it stand, less the ones it
    removed), which is what the local repository holds at that commit."""
    if not isinstance(configmaps, list):
        raise AnsibleFilterError("juno.hub.history_cluster_entries expects the list of ConfigMaps, got %s" % type(configmaps).__name__)
    import yaml

    def order(cm):
        meta = cm.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    out, tree = [], {}
    for cm in sorted(_plain(configmaps), key=order):
        meta = cm.get("metadata") or {}
        data = cm.get("data") or {}
        try:
            files = yaml.safe_load(data.get("state.yaml") or "{}") or {}
        except yaml.YAMLError as e:
            raise AnsibleFilterError("juno.hub.history_cluster_entries: ConfigMap %s/%s holds no readable state.yaml: %s"
                                     % (HISTORY_NAMESPACE, meta.get("name"), e))
        removed = [p for p in str(data.get("removed") or "").splitlines() if p.strip()]
        before, tree = tree, dict(tree)
        for p in removed:
            tree.pop(p, None)
        tree.update(files)
        name = str(meta.get("name") or "")
        message = str(data.get("message") or "")
        out.append({
            "id": name[len("juno-history-"):] if name.startswith("juno-history-") else name,
            "commit": str((meta.get("annotations") or {}).get("juno.hub/entry") or ""),
            "configmap": name,
            "created": str(meta.get("creationTimestamp") or ""),
            "subject": message.splitlines()[0] if message else "",
            "message": message,
            "files": files,
            "removed": removed,
            "tree": tree,
            "before": before,
        })
    return out


def history_entry_find(entries, ref, what="entry"):
    """The entry whose commit (or id) starts with ``ref``, or a clear error naming the variable and value."""
    ref = str(ref or "")
    if not ENTRY_REF.match(ref):
        raise AnsibleFilterError("%s=%r is not a history entry (a commit such as 3f2a91c)" % (what, ref))
    if ref == "HEAD" and entries:
        return entries[-1]
    found = [e for e in entries or [] if e.get("commit", "").startswith(ref) or e.get("id", "") == ref]
    if len(found) == 1:
        return found[0]
    if not found:
        raise AnsibleFilterError("%s=%s: no such entry among the %d kept on the cluster (namespace %s); "
                                 "ansible-playbook juno.hub.history -e source=cluster lists them"
                                 % (what, ref, len(entries or []), HISTORY_NAMESPACE))
    raise AnsibleFilterError("%s=%s names %d entries (%s); give more of the commit"
                             % (what, ref, len(found), ", ".join(e["id"] for e in found)))


def _plain(data):
    """Plain dicts, lists and strings: templating hands filters its own (tagged) types, which yaml.safe_dump
    cannot represent."""
    return json.loads(json.dumps(data, default=str))


def _yaml_text(data):
    import yaml
    return yaml.safe_dump(_plain(data), default_flow_style=False, sort_keys=False, indent=2)


def history_tree_diff(old, new, old_name="a", new_name="b"):
    """A unified diff, as ``git diff`` prints it, between two recorded states (path -> data)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise AnsibleFilterError("juno.hub.history_tree_diff expects two dicts of path to data")
    lines = []
    for path in sorted(set(old) | set(new)):
        a = _yaml_text(old[path]).splitlines() if path in old else []
        b = _yaml_text(new[path]).splitlines() if path in new else []
        if a == b:
            continue
        lines.extend(difflib.unified_diff(a, b, "%s/%s" % (old_name, path) if path in old else "/dev/null",
                                          "%s/%s" % (new_name, path) if path in new else "/dev/null", lineterm=""))
    return lines


def history_cat_file(output, names):
    """The files of history entries from the output of ``git cat-file --batch`` given ``names``
    (``<commit>:<path>``) on its standard input, in that order: {commit: {path: text}}. One git
    process reads every file of the entries, where a ``git show`` per file was one command each.
    The sizes git prints are in bytes, so the output is read as UTF-8 bytes (the history's files
    are YAML that ``to_nice_yaml`` wrote)."""
    if not isinstance(output, str) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError("juno.hub.history_cat_file expects the output of git cat-file --batch (a string) "
                                 "and the list of names given to it")
    data = output.encode("utf-8")
    out, pos = {}, 0
    for name in names:
        end = data.find(b"\n", pos)
        if end < 0:
            raise AnsibleFilterError("juno.hub.history_cat_file: the output ends before the header of %s" % (name,))
        header = data[pos:end].decode("utf-8")
        fields = header.split(" ")
        if header.endswith(" missing") or len(fields) != 3 or fields[1] != "blob" or not fields[2].isdigit():
            raise AnsibleFilterError("juno.hub.history_cat_file: git cat-file gave %r for %s, not the blob of a file"
                                     % (header, name))
        start = end + 1
        size = int(fields[2])
        if start + size > len(data):
            raise AnsibleFilterError("juno.hub.history_cat_file: the output ends inside %s (%d of %d bytes)"
                                     % (name, len(data) - start, size))
        rev, sep, path = name.partition(":")
        if not sep or not rev or not path:
            raise AnsibleFilterError("juno.hub.history_cat_file: %r is not <commit>:<path>" % (name,))
        out.setdefault(rev, {})[path] = data[start:start + size].decode("utf-8")
        pos = start + size + 1  # the newline git prints after each object
    if data[pos:].strip():
        raise AnsibleFilterError("juno.hub.history_cat_file: git cat-file printed more objects than the %d names asked"
                                 % len(names))
    return out


def history_load(texts):
    """A dict of path -> YAML text (git show of an entry's files) parsed into path -> data."""
    import yaml
    if not isinstance(texts, dict):
        raise AnsibleFilterError("juno.hub.history_load expects a dict of path to YAML text")
    out = {}
    for path, text in texts.items():
        try:
            out[path] = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise AnsibleFilterError("juno.hub.history_load: %s is not YAML: %s" % (path, e))
    return json.loads(json.dumps(out, default=str))


class FilterModule(object):
    def filters(self):
        return {
            "history_manifest_sets": history_manifest_sets,
            "history_object_kinds": history_object_kinds,
            "objects_rollback_plan": objects_rollback_plan,
            "history_entry_inventory": history_entry_inventory,
            "history_cluster_entries": history_cluster_entries,
            "history_entry_find": history_entry_find,
            "history_tree_diff": history_tree_diff,
            "history_load": history_load,
            "history_cat_file": history_cat_file,
        }
