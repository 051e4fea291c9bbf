# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extra Helm releases of a site (juno_releases) and the keyed hashes that keep secrets out of records.

``release_problems`` checks every entry before anything changes and names the release and the field;
``release_plan`` gives the entries in the order they are applied, with the chart resolved into what
kubernetes.core.helm takes; ``secret_hash``, ``k8s_redact`` and ``secret_split`` replace secret values
by an HMAC-SHA256 of them (keyed), so that a changed secret is visible in the history as a changed
hash and never as its text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import os
import re

from ansible.errors import AnsibleFilterError

# Helm release names: a DNS-1053 label of at most 53 characters (helm's own rule).
RELEASE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
RELEASE_NAME_MAX = 53
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
KNOWN_KEYS = frozenset((
    "name", "namespace", "chart", "repo", "version", "values", "values_files", "secret_values",
    "wait", "timeout", "order", "state", "delete_pvcs", "create_namespace", "history_max",
))
TIMEOUT = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
DEFAULT_ORDER = 100
HASH_PREFIX = "hmac-sha256:"


def _releases(value, what):
    if value is None:
        return []
    if not isinstance(value, list):
        raise AnsibleFilterError("juno.hub.%s expects the list juno_releases, got %s" % (what, type(value).__name__))
    return value


def _label(entry, index):
    name = entry.get("name") if isinstance(entry, dict) else None
    if isinstance(name, str) and name:
        return "release %s" % name
    return "juno_releases[%d]" % index


def chart_source(entry):
    """Where an entry's chart comes from: ``repo`` (name in a repository), ``oci`` or ``path`` (local)."""
    chart = str(entry.get("chart") or "")
    if entry.get("repo"):
        return "repo"
    if chart.startswith("oci://"):
        return "oci"
    return "path"


def _path(path, base_dir):
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    return os.path.normpath(path)


def release_problems(releases, hubs=None, base_dir=""):
    """One message per problem of juno_releases, each naming the release and the field."""
    releases = _releases(releases, "release_problems")
    hub_namespaces = {}
    for hub in hubs or []:
        if isinstance(hub, dict) and hub.get("name"):
            hub_namespaces[hub.get("namespace") or "hub-%s" % hub["name"]] = hub["name"]
    problems, names = [], {}
    for i, entry in enumerate(releases):
        who = _label(entry, i)
        if not isinstance(entry, dict):
            problems.append("%s: must be a dict with name, namespace, chart and version, got %r" % (who, entry))
            continue
        unknown = sorted(set(entry) - KNOWN_KEYS)
        if unknown:
            problems.append("%s: unknown field%s %s (known: %s)"
                            % (who, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(KNOWN_KEYS))))
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            problems.append("%s: name is missing" % who)
        elif len(name) > RELEASE_NAME_MAX or not RELEASE_NAME.match(name):
            problems.append("%s: name %r is not a valid Helm release name; use a lower-case DNS label of at most %d characters "
                            "(letters, digits, '-', starting with a letter)" % (who, name, RELEASE_NAME_MAX))
        elif name in names:
            problems.append("%s: name is used by juno_releases[%d] too; release names must be unique" % (who, names[name]))
        else:
            names[name] = i
        ns = entry.get("namespace")
        if not isinstance(ns, str) or not ns:
            problems.append("%s: namespace is missing" % who)
        elif not NAMESPACE.match(ns):
            problems.append("%s: namespace %r is not a valid Kubernetes namespace (a DNS label)" % (who, ns))
        elif ns in hub_namespaces:
            problems.append("%s: namespace %r is the namespace of hub %s; give the release a namespace of its own"
                            % (who, ns, hub_namespaces[ns]))
        state = entry.get("state", "present")
        if state not in ("present", "absent"):
            problems.append("%s: state %r is not one of present, absent" % (who, state))
        if "order" in entry and (isinstance(entry["order"], bool) or not isinstance(entry["order"], int)):
            problems.append("%s: order %r is not an integer" % (who, entry["order"]))
        if state == "absent":
            continue  # an entry that removes its release needs only its name and namespace
        if entry.get("delete_pvcs"):
            problems.append("%s: delete_pvcs is only read when state is absent" % who)
        chart = entry.get("chart")
        if not isinstance(chart, str) or not chart:
            problems.append("%s: chart is missing (a chart name with repo, an oci:// reference, or a local path)" % who)
        else:
            source = chart_source(entry)
            if source == "repo" and (chart.startswith("oci://") or "/" in chart):
                problems.append("%s: chart %r must be the chart's name in repo %s (or drop repo for an oci:// reference "
                                "or a local path)" % (who, chart, entry.get("repo")))
            if source == "repo" and not re.match(r"^(https?|oci)://", str(entry.get("repo"))):
                problems.append("%s: repo %r is not an http(s):// repository URL" % (who, entry.get("repo")))
            if source == "path" and not os.path.exists(_path(chart, base_dir)):
                problems.append("%s: chart %s does not exist on the control node (a local path; give repo for a chart "
                                "name, or an oci:// reference)" % (who, _path(chart, base_dir)))
        version = entry.get("version")
        if version is None or str(version).strip() == "":
            problems.append("%s: version is missing; pin the chart version" % who)
        elif str(version).strip() in ("latest", "*") or any(c in str(version) for c in "^~*<>| "):
            problems.append("%s: version %r is a range; pin one chart version" % (who, version))
        for field in ("values", "secret_values"):
            if field in entry and entry[field] is not None and not isinstance(entry[field], dict):
                problems.append("%s: %s must be a dict of chart values" % (who, field))
        files = entry.get("values_files") or []
        if not isinstance(files, list):
            problems.append("%s: values_files must be a list of paths" % who)
            files = []
        for f in files:
            if not os.path.isfile(_path(f, base_dir)):
                problems.append("%s: values_files entry %s does not exist on the control node" % (who, _path(f, base_dir)))
        timeout = entry.get("timeout")
        if timeout is not None and not TIMEOUT.match(str(timeout)):
            problems.append("%s: timeout %r is not a duration such as 5m or 300s" % (who, timeout))
    return problems


def release_plan(releases, base_dir=""):
    """The entries in the order they are applied, each completed with its defaults and its chart resolved.

    Present releases come first, sorted by ``order`` (default 100) and then by their place in the list;
    releases to remove follow, in the reverse of that order."""
    releases = _releases(releases, "release_plan")
    plan = []
    for i, entry in enumerate(releases):
        if not isinstance(entry, dict):
            raise AnsibleFilterError("juno.hub.release_plan: juno_releases[%d] is not a dict (run preflight)" % i)
        state = entry.get("state", "present")
        source = chart_source(entry)
        chart = str(entry.get("chart") or "")
        item = {
            "name": entry.get("name"),
            "namespace": entry.get("namespace"),
            "state": state,
            "source": source,
            "chart": chart,
            "chart_ref": chart if source != "path" else "",
            "chart_path": _path(chart, base_dir) if source == "path" and chart else "",
            "repo": str(entry.get("repo") or ""),
            "version": str(entry.get("version") or ""),
            "values": entry.get("values") or {},
            "values_files": [_path(f, base_dir) for f in entry.get("values_files") or []],
            "secret_values": entry.get("secret_values") or {},
            "wait": bool(entry.get("wait", True)),
            "timeout": str(entry.get("timeout") or "10m"),
            "order": entry.get("order", DEFAULT_ORDER),
            "index": i,
            "delete_pvcs": bool(entry.get("delete_pvcs", False)),
            "create_namespace": bool(entry.get("create_namespace", True)),
            "history_max": int(entry.get("history_max", 10)),
        }
        plan.append(item)
    present = sorted((p for p in plan if p["state"] != "absent"), key=lambda p: (p["order"], p["index"]))
    absent = sorted((p for p in plan if p["state"] == "absent"), key=lambda p: (p["order"], p["index"]), reverse=True)
    return present + absent


def _digest(value, key):
    if not isinstance(key, (str, bytes)) or not key:
        raise AnsibleFilterError("juno.hub.secret_hash needs a non-empty key (the site's history key)")
    if isinstance(key, str):
        key = key.encode("utf-8")
    text = value if isinstance(value, str) else repr(value)
    return HASH_PREFIX + hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def secret_hash(value, key):
    """Every leaf of ``value`` (a dict, list or scalar) replaced by the keyed HMAC-SHA256 of its text."""
    if isinstance(value, dict):
        return dict((k, secret_hash(v, key)) for k, v in value.items())
    if isinstance(value, list):
        return [secret_hash(v, key) for v in value]
    return _digest(value, key)


def k8s_redact(manifests, key):
    """Kubernetes objects with the values of every Secret's data and stringData replaced by their keyed hash."""
    if not isinstance(manifests, list):
        raise AnsibleFilterError("juno.hub.k8s_redact expects a list of Kubernetes objects, got %s" % type(manifests).__name__)
    out = []
    for obj in manifests:
        if isinstance(obj, dict) and obj.get("kind") == "Secret":
            obj = dict(obj)
            for field in ("data", "stringData"):
                if isinstance(obj.get(field), dict):
                    obj[field] = secret_hash(obj[field], key)
        out.append(obj)
    return out


def secret_split(values, template):
    """Split release values into ``values`` and ``secret_values``: the leaves at the paths of ``template``
    (an entry's secret_values) are secret. Used to record a rolled-back revision without its secrets."""
    if not isinstance(values, dict):
        raise AnsibleFilterError("juno.hub.secret_split expects a dict of values, got %s" % type(values).__name__)
    template = template or {}
    plain, secret = {}, {}
    for k, v in values.items():
        if k in template:
            if isinstance(template[k], dict) and isinstance(v, dict):
                sub = secret_split(v, template[k])
                if sub["values"]:
                    plain[k] = sub["values"]
                if sub["secret_values"]:
                    secret[k] = sub["secret_values"]
            else:
                secret[k] = v
        else:
            plain[k] = v
    return {"values": plain, "secret_values": secret}


def values_changes(old, new, prefix=""):
    """Dotted paths of the values that differ between ``old`` and ``new`` (names only, never values)."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    out = []
    for k in sorted(set(old) | set(new), key=str):
        path = "%s.%s" % (prefix, k) if prefix else str(k)
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(values_changes(a, b, path))
        elif k not in new:
            out.append(path + " (removed)")
        elif k not in old:
            out.append(path + " (added)")
        elif a != b:
            out.append(path)
    return out


def pvc_keep(pvcs, release):
    """The PersistentVolumeClaims that a release's chart made (annotation meta.helm.sh/release-name), each as the
    claim to make again after the uninstall and the volume it was bound to.

    Helm reads ``helm.sh/resource-policy`` from the release's stored manifest, not from the live object, so
    an uninstall deletes every claim the chart made. To keep one, its volume is kept (reclaim policy Retain),
    and the claim is made again with the same name, labels, Helm's annotations (so that an install of the
    release adopts it) and spec, bound to the same volume. Claims a StatefulSet made are not in the manifest:
    Helm never deletes them, and they are left out here."""
    if not isinstance(pvcs, list):
        raise AnsibleFilterError("juno.hub.pvc_keep expects a list of PersistentVolumeClaims, got %s" % type(pvcs).__name__)
    out = []
    for pvc in pvcs:
        meta = pvc.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        if annotations.get("meta.helm.sh/release-name") != release:
            continue
        spec = pvc.get("spec") or {}
        keep_spec = dict((k, spec[k]) for k in ("accessModes", "resources", "volumeMode", "selector", "volumeName")
                         if spec.get(k) not in (None, "", [], {}))
        if "storageClassName" in spec and spec["storageClassName"] is not None:
            keep_spec["storageClassName"] = spec["storageClassName"]
        keep_annotations = dict((k, v) for k, v in annotations.items()
                                if not k.startswith(("pv.kubernetes.io/", "volume.beta.kubernetes.io/", "volume.kubernetes.io/",
                                                     "kubectl.kubernetes.io/")))
        claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                              "labels": dict(meta.get("labels") or {}), "annotations": keep_annotations},
                 "spec": keep_spec}
        out.append({"name": meta.get("name"), "namespace": meta.get("namespace"), "volume": spec.get("volumeName") or "",
                    "claim": claim})
    return out


def record_files(state):
    """The desired state of a run (path -> data) as files for juno.hub.render_files, sorted by path."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("juno.hub.record_files expects a dict of path to data, got %s" % type(state).__name__)
    from ansible.plugins.filter.core import to_nice_yaml
    return [{"name": path, "content": to_nice_yaml(state[path], indent=2, sort_keys=False), "mode": "0644"}
            for path in sorted(state)]


class FilterModule(object):
    def filters(self):
        return {
            "release_problems": release_problems,
            "release_plan": release_plan,
            "secret_hash": secret_hash,
            "k8s_redact": k8s_redact,
            "secret_split": secret_split,
            "record_files": record_files,
            "values_changes": values_changes,
            "pvc_keep": pvc_keep,
        }
