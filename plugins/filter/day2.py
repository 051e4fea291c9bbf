# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the day-2 playbooks, kept out of YAML so that unit tests reach them.

* Kubernetes upgrade rules (``k8s_upgrade_check``): no downgrade, no skipped minor version,
  kubelets within the supported skew.
* Certificate expiry (``kubeadm_cert_expiry`` parses ``kubeadm certs check-expiration``,
  ``cert_expiry_report`` grades any list of certificates against a threshold).
* etcd restore helpers (``etcd_manifest_info``, ``etcd_manifest_set_data_dir``, ``etcd_env_info``,
  ``etcd_initial_cluster``, ``etcd_member_id``, ``kubeadm_config_set_etcd_data_dir``).
* Helm release history read from the release Secrets (``helm_release_decode``, ``helm_history``),
  which is what ``rollback.yml`` re-applies.

Docs of the filters are in the ``.yml`` files beside this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import gzip
import json
import re

from ansible.errors import AnsibleFilterError

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False

K8S_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
# Kubelets may be up to three minor versions older than the API server (version skew policy, 1.28+).
KUBELET_MAX_SKEW = 3

_UTC = datetime.timezone.utc


# ---------------------------------------------------------------------------------------------
# Kubernetes upgrade rules


def _parse_version(value):
    m = K8S_VERSION.match(str(value or "").strip())
    if not m:
        return None
    return tuple(int(x) for x in m.groups())


def _fmt(v):
    return "%d.%d.%d" % v


def k8s_upgrade_check(target, current, node_versions=None):
    """Compare the wanted version with the cluster's and the kubelets'.

    Returns ``{"from", "to", "kind", "problems", "nodes_to_upgrade"}``; ``kind`` is ``none`` (same
    version), ``patch`` or ``minor``. Any problem means the upgrade must not start.
    """
    problems = []
    t = _parse_version(target)
    c = _parse_version(current)
    if t is None:
        problems.append("juno_kubernetes_version %r is not a full version such as 1.33.2" % (target,))
    if c is None:
        problems.append("the cluster's current version %r (kubeadm-config ClusterConfiguration.kubernetesVersion) cannot be read" % (current,))
    result = {
        "from": _fmt(c) if c else None,
        "to": _fmt(t) if t else None,
        "kind": None,
        "problems": problems,
        "nodes_to_upgrade": [],
    }
    if problems:
        return result
    if t < c:
        problems.append(
            "juno_kubernetes_version %s is older than the cluster's %s; kubeadm cannot downgrade a cluster (restore an etcd snapshot taken "
            "before the upgrade instead, docs/operations.md)" % (_fmt(t), _fmt(c))
        )
    elif t[0] != c[0]:
        problems.append("juno_kubernetes_version %s changes the major version of %s; only minor and patch upgrades are supported" % (_fmt(t), _fmt(c)))
    elif t[1] > c[1] + 1:
        problems.append(
            "juno_kubernetes_version %s skips minor versions (the cluster runs %s); upgrade one minor version at a time: %s"
            % (_fmt(t), _fmt(c), ", ".join("%d.%d.x" % (c[0], m) for m in range(c[1] + 1, t[1] + 1)))
        )
    if t == c:
        result["kind"] = "none"
    elif t[:2] == c[:2]:
        result["kind"] = "patch"
    else:
        result["kind"] = "minor"

    for name, version in sorted((node_versions or {}).items()):
        n = _parse_version(version)
        if n is None:
            problems.append("node %s reports kubelet version %r, which is not a version such as v1.32.4" % (name, version))
            continue
        if n > t:
            problems.append("node %s runs kubelet %s, newer than juno_kubernetes_version %s; the kubelet must not be newer than the API server"
                            % (name, _fmt(n), _fmt(t)))
        elif n[0] != t[0] or t[1] - n[1] > KUBELET_MAX_SKEW:
            problems.append(
                "node %s runs kubelet %s, more than %d minor versions older than %s; upgrade it first (version skew policy)"
                % (name, _fmt(n), KUBELET_MAX_SKEW, _fmt(t))
            )
        elif n != t:
            result["nodes_to_upgrade"].append(name)
    return result


# ---------------------------------------------------------------------------------------------
# Certificate expiry

_TEXT_ROW = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s+"
    r"(?P<expires>[A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2} [A-Z]+)\s+"
    r"(?P<residual>\S+)\s+"
    r"(?:(?P<ca>[A-Za-z0-9][A-Za-z0-9._-]*)\s+)?"
    r"(?P<external>yes|no|true|false)\s*$"
)
_MISSING_ROW = re.compile(r"^!MISSING!\s+(?P<name>\S+)")


def _iso(dt):
    return dt.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value):
    """Parse RFC 3339 (kubeadm JSON), ASN.1 TIME (x509_certificate_info) or kubeadm's table format."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_UTC)
    s = str(value or "").strip()
    if not s:
        return None
    for fmt in ("%Y%m%d%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.datetime.strptime(s, fmt).replace(tzinfo=_UTC)
        except ValueError:
            pass
    m = re.match(r"^([A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2}) UTC$", s)
    if m:
        return datetime.datetime.strptime(m.group(1), "%b %d, %Y %H:%M").replace(tzinfo=_UTC)
    try:
        dt = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=_UTC)


def kubeadm_cert_expiry(output):
    """Parse ``kubeadm certs check-expiration`` (text table, or ``-o json``) into a list of certificates."""
    if isinstance(output, dict):
        data = output
    else:
        text = str(output or "")
        stripped = text.strip()
        data = None
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
            except ValueError as exc:
                raise AnsibleFilterError("kubeadm_cert_expiry: output looks like JSON but does not parse: %s" % exc)
    if data is not None:
        certs = []
        for section, is_ca in (("certificates", False), ("certificateAuthorities", True)):
            for c in data.get(section) or []:
                when = _parse_time(c.get("expirationDate"))
                missing = bool(c.get("missing"))
                certs.append({
                    "name": c.get("name"),
                    "not_after": _iso(when) if when and not missing else None,
                    "authority": is_ca,
                    "ca_name": c.get("caName") or "",
                    "externally_managed": bool(c.get("externallyManaged")),
                    "missing": missing,
                })
        return certs

    certs = []
    is_ca = False
    seen_header = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("CERTIFICATE AUTHORITY"):
            is_ca, seen_header = True, True
            continue
        if line.startswith("CERTIFICATE"):
            is_ca, seen_header = False, True
            continue
        if not seen_header or not line.strip():
            continue
        m = _MISSING_ROW.match(line.strip())
        if m:
            certs.append({"name": m.group("name"), "not_after": None, "authority": is_ca, "ca_name": "", "externally_managed": False, "missing": True})
            continue
        m = _TEXT_ROW.match(line.strip())
        if not m:
            continue
        when = _parse_time(m.group("expires"))
        certs.append({
            "name": m.group("name"),
            "not_after": _iso(when) if when else None,
            "authority": is_ca,
            "ca_name": m.group("ca") or "",
            "externally_managed": m.group("external") in ("yes", "true"),
            "missing": False,
        })
    if not certs and seen_header is False and text.strip():
        raise AnsibleFilterError("kubeadm_cert_expiry: no certificate table found in the output of kubeadm certs check-expiration")
    return certs


def cert_expiry_report(certs, warn_days=30, now=None):
    """Grade certificates: each gets ``days_left`` and ``state`` ok, warn, expired or missing."""
    try:
        warn_days = int(warn_days)
    except (TypeError, ValueError):
        raise AnsibleFilterError("cert_expiry_report: warn_days %r is not a whole number of days" % (warn_days,))
    ref = _parse_time(now) if now else datetime.datetime.now(_UTC)
    if ref is None:
        raise AnsibleFilterError("cert_expiry_report: now %r is not a time such as 2025-01-01T00:00:00Z" % (now,))
    report = []
    for c in certs or []:
        entry = dict(c)
        when = _parse_time(c.get("not_after"))
        if c.get("missing") or when is None:
            entry.update(days_left=None, state="missing", message="%s: certificate is missing or unreadable" % c.get("name"))
        else:
            seconds = (when - ref).total_seconds()
            days = int(seconds // 86400)
            entry["not_after"] = _iso(when)
            entry["days_left"] = days
            if seconds <= 0:
                entry["state"] = "expired"
                entry["message"] = "%s expired on %s" % (c.get("name"), _iso(when))
            elif days < warn_days:
                entry["state"] = "warn"
                entry["message"] = "%s expires on %s, in %d days (fewer than juno_cert_warn_days %d)" % (c.get("name"), _iso(when), days, warn_days)
            else:
                entry["state"] = "ok"
                entry["message"] = "%s valid until %s (%d days)" % (c.get("name"), _iso(when), days)
        report.append(entry)
    return report


# ---------------------------------------------------------------------------------------------
# etcd restore helpers


def _flag_values(command):
    """``--key=value`` arguments of a container command, as a dict (last one wins)."""
    flags = {}
    for arg in command or []:
        arg = str(arg)
        if arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            flags[key] = value
    return flags


def _etcd_container(manifest):
    if not isinstance(manifest, dict) or manifest.get("kind") != "Pod":
        raise AnsibleFilterError("etcd manifest: expected the Pod of /etc/kubernetes/manifests/etcd.yaml, got %s" % type(manifest).__name__)
    containers = (manifest.get("spec") or {}).get("containers") or []
    for c in containers:
        if c.get("name") == "etcd":
            return c
    raise AnsibleFilterError("etcd manifest: the Pod has no container named etcd")


def _data_volume(manifest, container, data_dir):
    """The hostPath volume mounted at the container's --data-dir."""
    mount = None
    for m in container.get("volumeMounts") or []:
        if m.get("mountPath", "").rstrip("/") == data_dir.rstrip("/"):
            mount = m
    if mount is None:
        raise AnsibleFilterError("etcd manifest: no volume is mounted at --data-dir %s" % data_dir)
    for v in (manifest.get("spec") or {}).get("volumes") or []:
        if v.get("name") == mount.get("name"):
            if "hostPath" not in v:
                raise AnsibleFilterError("etcd manifest: volume %s at %s is not a hostPath" % (v.get("name"), data_dir))
            return v
    raise AnsibleFilterError("etcd manifest: volume %s mounted at %s is not defined" % (mount.get("name"), data_dir))


def etcd_manifest_info(manifest):
    """Member name, peer/client URLs, data directory (on the host) and image of a kubeadm etcd static Pod."""
    container = _etcd_container(manifest)
    flags = _flag_values(container.get("command"))
    data_dir = flags.get("data-dir", "/var/lib/etcd")
    volume = _data_volume(manifest, container, data_dir)
    image = container.get("image", "")
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    m = re.match(r"^v?(\d+\.\d+\.\d+)", tag)
    return {
        "name": flags.get("name", ""),
        "peer_urls": flags.get("initial-advertise-peer-urls", ""),
        "client_urls": flags.get("advertise-client-urls", ""),
        "data_dir": volume["hostPath"]["path"],
        "container_data_dir": data_dir,
        "image": image,
        "version": m.group(1) if m else "",
    }


def etcd_manifest_set_data_dir(manifest, host_path):
    """The same manifest with the data directory's hostPath replaced (the container path stays)."""
    if not str(host_path or "").startswith("/"):
        raise AnsibleFilterError("etcd_manifest_set_data_dir: %r is not an absolute path" % (host_path,))
    new = json.loads(json.dumps(manifest))
    container = _etcd_container(new)
    data_dir = _flag_values(container.get("command")).get("data-dir", "/var/lib/etcd")
    volume = _data_volume(new, container, data_dir)
    volume["hostPath"]["path"] = host_path
    volume["hostPath"]["type"] = "DirectoryOrCreate"
    return new


def etcd_env_info(text):
    """``KEY=VALUE`` lines of an environment file (/etc/default/etcd, /etc/etcd/etcd.conf) as a dict."""
    env = {}
    for line in str(text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):]
        key, value = line.split("=", 1)
        key = key.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            env[key] = value
    return env


def etcd_initial_cluster(members):
    """``name=peer-url,...`` for ``--initial-cluster`` from ``[{name, peer_urls}]``; names must be unique."""
    entries = []
    seen = set()
    for m in members or []:
        name = str(m.get("name") or "")
        urls = [u.strip() for u in str(m.get("peer_urls") or "").split(",") if u.strip()]
        if not name or not urls:
            raise AnsibleFilterError("etcd_initial_cluster: member %r needs a name and at least one peer URL" % (m,))
        if name in seen:
            raise AnsibleFilterError("etcd_initial_cluster: member name %r is used twice; each member restores with its own name" % name)
        seen.add(name)
        entries.extend("%s=%s" % (name, u) for u in urls)
    if not entries:
        raise AnsibleFilterError("etcd_initial_cluster: no members")
    return ",".join(entries)


def etcd_member_id(member_list, name):
    """Hex ID (as ``etcdctl member remove`` takes it) of the member called ``name``; empty when absent."""
    if isinstance(member_list, str):
        try:
            member_list = json.loads(member_list)
        except ValueError as exc:
            raise AnsibleFilterError("etcd_member_id: etcdctl member list -w json output does not parse: %s" % exc)
    for m in (member_list or {}).get("members") or []:
        if m.get("name") == name:
            return "%x" % int(m["ID"])
    return ""


def kubeadm_config_set_etcd_data_dir(cluster_configuration, data_dir):
    """ClusterConfiguration (YAML text of the kubeadm-config ConfigMap) with etcd.local.dataDir set."""
    if not HAS_YAML:  # pragma: no cover
        raise AnsibleFilterError("kubeadm_config_set_etcd_data_dir needs PyYAML")
    cfg = yaml.safe_load(cluster_configuration) if isinstance(cluster_configuration, str) else dict(cluster_configuration or {})
    if not isinstance(cfg, dict) or cfg.get("kind") != "ClusterConfiguration":
        raise AnsibleFilterError("kubeadm_config_set_etcd_data_dir: input is not a kubeadm ClusterConfiguration")
    etcd = cfg.setdefault("etcd", {})
    if "external" in etcd:
        raise AnsibleFilterError("kubeadm_config_set_etcd_data_dir: the cluster uses external etcd; there is no local data directory to set")
    # str(): Ansible hands templated values over as str subclasses (data tags) that safe_dump refuses.
    etcd.setdefault("local", {})["dataDir"] = str(data_dir)
    return yaml.safe_dump(cfg, default_flow_style=False, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Helm release history (from the release Secrets sh.helm.release.v1.<release>.v<N>)


def _b64(data):
    if isinstance(data, str):
        data = data.encode("ascii")
    return base64.b64decode(data)


def helm_release_decode(data, encoded_twice=True):
    """Decode the ``release`` field of a Helm release Secret (as the Kubernetes API returns it).

    Kubernetes base64-encodes Secret data; Helm's own value is base64 of gzip of JSON.
    Returns the parts rollback needs: name, namespace, revision, status, chart name and version,
    app version, the user-supplied values (``config``), and when it was deployed.
    """
    try:
        raw = _b64(data)
        if encoded_twice:
            raw = _b64(raw)
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        release = json.loads(raw.decode("utf-8"))
    except (ValueError, TypeError, OSError) as exc:
        raise AnsibleFilterError("helm_release_decode: not a Helm release record (%s)" % exc)
    chart = (release.get("chart") or {}).get("metadata") or {}
    info = release.get("info") or {}
    return {
        "name": release.get("name"),
        "namespace": release.get("namespace"),
        "revision": int(release.get("version") or 0),
        "status": info.get("status"),
        "description": info.get("description", ""),
        "updated": info.get("last_deployed", ""),
        "chart": chart.get("name"),
        "chart_version": chart.get("version"),
        "app_version": chart.get("appVersion", ""),
        "values": release.get("config") or {},
    }


def helm_history(secrets):
    """``helm history`` from the release Secrets (k8s_info resources), oldest first, without values."""
    history = []
    for s in secrets or []:
        labels = (s.get("metadata") or {}).get("labels") or {}
        data = (s.get("data") or {}).get("release")
        if labels.get("owner") != "helm" or not data:
            continue
        rel = helm_release_decode(data)
        rel.pop("values", None)
        rel["chart"] = "%s-%s" % (rel["chart"], rel["chart_version"])
        history.append(rel)
    return sorted(history, key=lambda r: r["revision"])


def helm_history_line(entry):
    """One line of ``helm history`` (revision, updated, status, chart, app version, description)."""
    return "%-4s %-32s %-12s %-24s %-10s %s" % (
        entry.get("revision"),
        entry.get("updated") or "",
        entry.get("status") or "",
        entry.get("chart") or "",
        entry.get("app_version") or "",
        entry.get("description") or "",
    )


class FilterModule(object):
    def filters(self):
        return {
            "k8s_upgrade_check": k8s_upgrade_check,
            "kubeadm_cert_expiry": kubeadm_cert_expiry,
            "cert_expiry_report": cert_expiry_report,
            "etcd_manifest_info": etcd_manifest_info,
            "etcd_manifest_set_data_dir": etcd_manifest_set_data_dir,
            "etcd_env_info": etcd_env_info,
            "etcd_initial_cluster": etcd_initial_cluster,
            "etcd_member_id": etcd_member_id,
            "kubeadm_config_set_etcd_data_dir": kubeadm_config_set_etcd_data_dir,
            "helm_release_decode": helm_release_decode,
            "helm_history": helm_history,
            "helm_history_line": helm_history_line,
        }
