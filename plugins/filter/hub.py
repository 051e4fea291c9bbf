# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helm values and names of the hubs (Zero to JupyterHub chart 4.4.0).

Every decision about what a hub's release looks like is made here, so that unit tests reach it:
the names of its objects, the LDAPAuthenticator configuration for Active Directory, the
user-pod security settings, the NetworkPolicy egress rules, profiles, storage, scheduling,
culling, and which AD groups the role has to resolve. The role's templates only lay the
results out. The documentation of each filter is in ``plugins/filter/<name>.yml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import ipaddress
import os
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.juno.hub.plugins.filter.preflight import hub_place, profile_name, value_problems

# The chart's cluster-scoped objects are named after the Helm release (fullnameOverride ""),
# so a unique release name per hub keeps the hubs' PriorityClasses, ClusterRoles and
# ClusterRoleBindings apart (chart templates/_helpers-names.tpl).
CLUSTER_SCOPED_SUFFIXES = ("default-priority", "user-placeholder-priority", "image-puller-priority", "user-scheduler")
HELM_RELEASE_MAX = 53

# Namespaced names: each hub has its own namespace, so these are the same in every hub.
AD_SECRET = "juno-ad-bind"
AD_SECRET_KEY = "password"
CA_CONFIGMAP = "juno-ad-ca"
CA_KEY = "ca.pem"
TLS_SECRET = "juno-proxy-tls"
BIND_PASSWORD_ENV = "JUNO_AD_BIND_PASSWORD"

# Active Directory: the in-chain matching rule (LDAP_MATCHING_RULE_IN_CHAIN) makes a base search
# on a group DN match when the user is a member of that group at any depth of nesting.
IN_CHAIN = "1.2.840.113556.1.4.1941"
GROUP_SEARCH_FILTER = "(member:%s:={userdn})" % IN_CHAIN
USER_SEARCH_FILTER = "(&(objectCategory=person)(objectClass=user)({login_attr}={login}))"
POSIX_ATTRIBUTES = ["uidNumber", "gidNumber"]
# ssl.CERT_REQUIRED / ssl.CERT_NONE, as ldap3.Tls(validate=...) takes them.
CERT_REQUIRED = 2
CERT_NONE = 0
TLS_STRATEGY = {"ldaps": "on_connect", "starttls": "before_bind", "none": "insecure"}
DEFAULT_PORT = {"ldaps": 636, "starttls": 389, "none": 389}

# Egress of user pods: nothing in these ranges is reachable (besides the hub and the cluster DNS,
# which the chart's rules allow by pod and namespace selectors).
BLOCKED_RANGES = (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918: nodes, pods, Services, other hubs
    "100.64.0.0/10",  # shared address space (carrier-grade NAT, some pod networks)
    "169.254.0.0/16",  # link-local, including the cloud metadata address 169.254.169.254
    "127.0.0.0/8",
)
CLOUD_METADATA_IP = "169.254.169.254"

DEFAULT_SETTINGS = {
    "release_prefix": "juno",
    "home_mount_path": "/home/jovyan",
    "db_storage_class": "",
    "db_capacity": "1Gi",
    "admin_access": False,
    "singleuser_uid": 1000,
    "singleuser_fs_gid": 100,
    "start_timeout": 300,
    "user_scheduler": True,
    "user_placeholders": 0,
    "prepull": True,
    "ad_server": "",
    "ca_mount_dir": "/usr/local/etc/jupyterhub/juno-ad-ca",
    "posix_min_id": 1000,
}

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?[KMGT]?$")
MEMORY_UNITS = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}

# The extraConfig snippets; they read nothing but the environment and the spawner, so the same
# code runs in the hub pod and in the end-to-end test's JupyterHub.
BIND_PASSWORD_CONFIG = '''\
# juno.hub: the AD service account's password comes from the Secret %(secret)s (hub.extraEnv),
# never from the Helm values.
import os

c.LDAPAuthenticator.lookup_dn_search_password = os.environ["%(env)s"]
'''

POSIX_IDS_CONFIG = '''\
# juno.hub: run each user's server with the uidNumber/gidNumber of the AD account, so that the
# files on the NFS home directory belong to the real user (juno_hubs[].posix_ids_from_ad).


async def juno_posix_ids_from_ad(spawner):
    auth_state = await spawner.user.get_auth_state() or {}
    attributes = auth_state.get("user_attributes") or {}

    def number(name):
        value = attributes.get(name)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    uid, gid = number("uidNumber"), number("gidNumber")
    if uid is None or gid is None:
        raise RuntimeError(
            "AD account %%s has no uidNumber/gidNumber (or logged in before they were read); "
            "ask the directory team to set them, then log out and in again" %% spawner.user.name
        )
    if uid < %(min_id)d or gid < %(min_id)d:
        raise RuntimeError(
            "AD account %%s has uidNumber %%d / gidNumber %%d, below %(min_id)d; refusing to run it as a system account"
            %% (spawner.user.name, uid, gid)
        )
    spawner.uid = uid
    spawner.gid = gid
    spawner.fs_gid = gid


c.Spawner.pre_spawn_hook = juno_posix_ids_from_ad
'''


def _settings(settings):
    result = dict(DEFAULT_SETTINGS)
    if settings:
        if not isinstance(settings, dict):
            raise AnsibleFilterError("juno.hub hub filters: settings must be a dictionary, got %s" % type(settings).__name__)
        result.update(dict((k, v) for k, v in settings.items() if v is not None))
    return result


def _hub(hub, what):
    if not isinstance(hub, dict) or not isinstance(hub.get("name"), str):
        raise AnsibleFilterError("juno.hub.%s expects one entry of juno_hubs (a dictionary with a name), got %r" % (what, hub))
    return hub


def _is_dn(group):
    """A group given as a DN (CN=...,OU=...) rather than a sAMAccountName, which cannot contain '=' or ','."""
    return "=" in str(group)


def _dn_key(dn):
    """Compare DNs the way AD does: case-insensitive, without blanks around separators."""
    return re.sub(r"\s*([,=])\s*", r"\1", str(dn)).lower()


def _ad_groups(hub):
    ad = hub.get("ad") or {}
    return list(ad.get("allowed_groups") or []), list(ad.get("admin_groups") or [])


def hub_names(hub, prefix="juno"):
    """Names of a hub's release, namespace and objects, and the cluster-scoped names the chart derives."""
    hub = _hub(hub, "hub_names")
    name = hub["name"]
    release = "%s-%s" % (prefix, name) if prefix else name
    return {
        "hub": name,
        "release": release,
        "namespace": hub.get("namespace") or "hub-%s" % name,
        "storage_class": "juno-home-%s" % name,
        "ad_secret": AD_SECRET,
        "ca_configmap": CA_CONFIGMAP,
        "tls_secret": TLS_SECRET,
        "cluster_scoped": ["%s-%s" % (release, suffix) for suffix in CLUSTER_SCOPED_SUFFIXES],
    }


def hub_ad_groups(hubs):
    """The AD groups to resolve for all hubs: allowed groups (DNs needed) and admin groups (members needed)."""
    allowed, admin = [], []
    for hub in hubs or []:
        hub_allowed, hub_admin = _ad_groups(_hub(hub, "hub_ad_groups"))
        for group in hub_allowed:
            if group not in allowed:
                allowed.append(group)
        for group in hub_admin:
            if group not in admin:
                admin.append(group)
    return {"allowed": allowed, "admin": admin, "all": allowed + [g for g in admin if g not in allowed]}


def _lookup_groups(result):
    """The entries of a juno.hub.ad_group_info result (``groups``: name, dn, members) keyed by the name asked for."""
    if not isinstance(result, dict) or not isinstance(result.get("groups"), list):
        return {}
    return dict((entry["name"], entry) for entry in result["groups"] if isinstance(entry, dict) and entry.get("name"))


def _member_name(member):
    """sAMAccountName of a member of a juno.hub.ad_group_info result."""
    value = member.get("sAMAccountName") if isinstance(member, dict) else None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value or None


def hub_directory(hub, lookup=None, note=""):
    """What the role learnt from AD about one hub: allowed group DNs and admin usernames.

    ``lookup`` is the registered result of juno.hub.ad_group_info for the hub's groups, or
    empty when the lookup was skipped or failed (render mode only); ``note`` then says why.
    """
    hub = _hub(hub, "hub_directory")
    allowed, admin = _ad_groups(hub)
    groups = _lookup_groups(lookup)
    resolved = bool(groups)
    dns, unresolved = [], []
    for group in allowed:
        entry = groups.get(group)
        if entry and entry.get("dn"):
            dns.append(entry["dn"])
        else:
            if resolved:
                raise AnsibleFilterError(
                    "juno.hub.hub_directory: AD group %r of hub %s (ad.allowed_groups) is not in the lookup result" % (group, hub["name"])
                )
            # Not resolved: a DN can be used as written; a sAMAccountName cannot.
            dns.append(group)
            if not _is_dn(group):
                unresolved.append(group)
    admins = []
    for group in admin:
        entry = groups.get(group)
        if not entry:
            if resolved:
                raise AnsibleFilterError(
                    "juno.hub.hub_directory: AD group %r of hub %s (ad.admin_groups) is not in the lookup result" % (group, hub["name"])
                )
            unresolved.append(group)
            continue
        for member in entry.get("members") or []:
            name = _member_name(member)
            if name and name.lower() not in admins:
                admins.append(name.lower())
    seen = set()
    unique_dns = []
    for dn in dns:
        if _dn_key(dn) not in seen:
            seen.add(_dn_key(dn))
            unique_dns.append(dn)
    return {
        "resolved": resolved,
        "allowed_group_dns": unique_dns,
        "admin_users": sorted(admins),
        "unresolved_groups": unresolved,
        "note": note or ("" if resolved else "AD groups were not resolved"),
    }


def _ad_server(ad, settings):
    """Host and port of the domain controller the hub talks to (LDAPAuthenticator takes one)."""
    tls = ad.get("tls") or "ldaps"
    server = settings.get("ad_server") or (ad.get("servers") or [""])[0]
    server = str(server)
    port = None
    match = re.match(r"^(ldaps?)://([^/:]+|\[[^\]]+\])(?::(\d+))?/?$", server)
    if match:
        server = match.group(2).strip("[]")
        if match.group(3):
            port = int(match.group(3))
    if ad.get("port"):
        port = int(ad["port"])
    if port is None:
        port = DEFAULT_PORT.get(tls, 636)
    return server, port


def _ldap_config(hub, ad, directory, settings):
    tls = ad.get("tls") or "ldaps"
    server, port = _ad_server(ad, settings)
    validate = CERT_REQUIRED
    if ad.get("insecure") and ad.get("validate_certs") is False:
        validate = CERT_NONE
    tls_kwargs = {"validate": validate}
    if ad.get("ca_file") and tls != "none":
        tls_kwargs["ca_certs_file"] = "%s/%s" % (settings["ca_mount_dir"].rstrip("/"), CA_KEY)
    config = {
        "server_address": server,
        "server_port": port,
        "tls_strategy": TLS_STRATEGY.get(tls, "on_connect"),
        "tls_kwargs": tls_kwargs,
        "lookup_dn": True,
        "lookup_dn_search_user": ad.get("bind_dn"),
        "lookup_dn_search_filter": USER_SEARCH_FILTER,
        "user_search_base": ad.get("user_base_dn") or ad.get("base_dn"),
        "user_attribute": "sAMAccountName",
        "lookup_dn_user_dn_attribute": "sAMAccountName",
        "use_lookup_dn_username": True,
        "allowed_groups": list(directory["allowed_group_dns"]),
        "group_search_filter": GROUP_SEARCH_FILTER,
        # The membership test only needs a hit; do not fetch the member lists of large groups.
        "group_attributes": ["cn"],
    }
    if hub.get("posix_ids_from_ad"):
        config["auth_state_attributes"] = list(POSIX_ATTRIBUTES)
    return config


def _kubespawner_config():
    """Security of user pods that the chart has no value for (it maps hub.config.KubeSpawner onto KubeSpawner)."""
    return {
        # No service-account token in user pods (KubeSpawner's default without a service
        # account, set explicitly so that an extra_values serviceAccountName does not change it).
        "automount_service_account_token": False,
        "container_security_context": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def _hub_section(hub, site, directory, settings, names):
    ad = site.get("juno_ad") or {}
    admins = list(directory["admin_users"])
    authenticator = {
        "allow_all": False,
        # Admins may log in even when they are not in an allowed group.
        "allowed_users": list(admins),
    }
    if hub.get("posix_ids_from_ad"):
        # The chart generates hub.config.CryptKeeper.keys when auth state is enabled.
        authenticator["enable_auth_state"] = True
    extra_config = {
        "juno-00-ad-bind-password": BIND_PASSWORD_CONFIG % {"secret": names["ad_secret"], "env": BIND_PASSWORD_ENV},
    }
    if hub.get("posix_ids_from_ad"):
        extra_config["juno-10-posix-ids"] = POSIX_IDS_CONFIG % {"min_id": int(settings["posix_min_id"])}
    section = {
        "config": {
            "JupyterHub": {
                "authenticator_class": "ldapauthenticator.LDAPAuthenticator",
                "admin_access": bool(settings["admin_access"]),
            },
            "Authenticator": authenticator,
            "LDAPAuthenticator": _ldap_config(hub, ad, directory, settings),
            "KubeSpawner": _kubespawner_config(),
        },
        # The admin role with an explicit user list is authoritative: JupyterHub revokes admin
        # rights of users no longer listed (Authenticator.admin_users only ever grants them).
        "loadRoles": {"admin": {"users": list(admins)}},
        "extraEnv": {
            BIND_PASSWORD_ENV: {"valueFrom": {"secretKeyRef": {"name": names["ad_secret"], "key": AD_SECRET_KEY}}},
        },
        "extraConfig": extra_config,
        "db": {
            "type": "sqlite-pvc",
            "pvc": {
                "storage": str(settings["db_capacity"]),
                "storageClassName": settings["db_storage_class"] or names["storage_class"],
            },
        },
        "networkPolicy": {"enabled": True},
    }
    if ad.get("ca_file") and (ad.get("tls") or "ldaps") != "none":
        section["extraVolumes"] = [{"name": "juno-ad-ca", "configMap": {"name": names["ca_configmap"]}}]
        section["extraVolumeMounts"] = [{"name": "juno-ad-ca", "mountPath": settings["ca_mount_dir"], "readOnly": True}]
    return section


def _proxy_section(hub, names):
    service = {"type": "LoadBalancer"}
    if hub.get("lb_address"):
        service["annotations"] = {"metallb.universe.tf/loadBalancerIPs": str(hub["lb_address"])}
    proxy = {"service": service, "chp": {"networkPolicy": {"enabled": True}}}
    if hub.get("tls"):
        # The certificate and key are in a TLS Secret the role creates; the chart mounts it into the proxy.
        proxy["https"] = {
            "enabled": True,
            "type": "secret",
            "secret": {"name": names["tls_secret"], "key": "tls.key", "crt": "tls.crt"},
            "hosts": [hub["hostname"]],
        }
    else:
        proxy["https"] = {"enabled": False}
    return proxy


def _ipv4_networks(value):
    """IPv4 networks of a CIDR, an address or an address range (a-b); others (names, IPv6) give none."""
    text = str(value).strip()
    try:
        if "-" in text:
            first, last = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            if first.version != 4 or last.version != 4:
                return []
            return list(ipaddress.summarize_address_range(first, last))
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return []
    return [network] if network.version == 4 else []


def hub_egress_except(site):
    """The IPv4 ranges user pods may not reach (the except list of their internet egress rule)."""
    site = site or {}
    blocked = []
    sources = list(BLOCKED_RANGES)
    sources += [site.get("juno_pod_cidr") or "10.244.0.0/16", site.get("juno_service_cidr") or "10.96.0.0/12"]
    sources += list(site.get("juno_node_networks") or [])
    sources += list(site.get("juno_lb_address_pool") or [])
    endpoint = site.get("juno_api_endpoint") or {}
    if endpoint.get("address"):
        sources.append(endpoint["address"])
    for source in sources:
        blocked += _ipv4_networks(source)
    return [str(n) for n in ipaddress.collapse_addresses(n for n in blocked if n.prefixlen > 0)]


def _singleuser_network_policy(site):
    return {
        "enabled": True,
        # Replace the chart's coalesced rules with one rule whose except list also holds the
        # node networks, the API endpoint, the pod and Service ranges and the load-balancer
        # pool: they may be public addresses at a university, where nonPrivateIPs would allow them.
        "egressAllowRules": {
            "cloudMetadataServer": False,
            "dnsPortsCloudMetadataServer": False,
            "dnsPortsKubeSystemNamespace": True,
            "dnsPortsPrivateIPs": False,
            "nonPrivateIPs": False,
            "privateIPs": False,
        },
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": hub_egress_except(site)}}]}],
        "interNamespaceAccessLabels": "ignore",
    }


def _slug(text):
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return slug or "profile"


def _number(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _profiles(hub):
    profiles = []
    slugs = {}
    for profile in hub.get("profiles") or []:
        override = {}
        if profile.get("image"):
            override["image"] = str(profile["image"])
        for key in ("cpu_guarantee", "cpu_limit"):
            if profile.get(key) is not None:
                override[key] = _number(profile[key])
        for key in ("mem_guarantee", "mem_limit"):
            if profile.get(key) is not None:
                override[key] = str(profile[key])
        gpus = int(profile.get("gpu") or 0)
        if gpus > 0:
            # Extended resources: the request equals the limit.
            override["extra_resource_limits"] = {"nvidia.com/gpu": str(gpus)}
            override["extra_resource_guarantees"] = {"nvidia.com/gpu": str(gpus)}
        if profile.get("kata"):
            # The RuntimeClass "kata" carries a node selector for nodes with the Kata runtime.
            override["extra_pod_config"] = {"runtimeClassName": "kata"}
        slug = _slug(profile["display_name"])
        if slug in slugs:
            slugs[slug] += 1
            slug = "%s-%d" % (slug, slugs[slug])
        else:
            slugs[slug] = 1
        entry = {"display_name": profile["display_name"], "slug": slug, "description": profile.get("description") or ""}
        if profile.get("default"):
            entry["default"] = True
        if override:
            entry["kubespawner_override"] = override
        profiles.append(entry)
    return profiles


def _singleuser_section(hub, site, settings, names):
    storage = hub.get("storage") or {}
    resources = hub.get("resources") or {}
    section = {
        "uid": int(settings["singleuser_uid"]),
        "fsGid": int(settings["singleuser_fs_gid"]),
        "serviceAccountName": None,
        "allowPrivilegeEscalation": False,
        "startTimeout": int(settings["start_timeout"]),
        "storage": {
            "type": "dynamic",
            "capacity": str(storage.get("capacity") or "10Gi"),
            "homeMountPath": settings["home_mount_path"],
            "dynamic": {"storageClass": names["storage_class"], "storageAccessModes": ["ReadWriteOnce"]},
        },
        # No privileged iptables init container: the NetworkPolicy blocks the metadata address.
        "cloudMetadata": {"blockWithIptables": False, "ip": CLOUD_METADATA_IP},
        "networkPolicy": _singleuser_network_policy(site),
        "profileList": _profiles(hub),
        "extraLabels": {"hub.jupyter.org/network-access-hub": "true", "juno.hub/hub": hub["name"]},
    }
    if hub.get("image"):
        section["image"] = {"name": str(hub["image"]["name"]), "tag": str(hub["image"]["tag"])}
    cpu = dict((k, _number(resources["cpu_%s" % k])) for k in ("guarantee", "limit") if resources.get("cpu_%s" % k) is not None)
    if cpu:
        section["cpu"] = cpu
    memory = dict((k, str(resources["mem_%s" % k])) for k in ("guarantee", "limit") if resources.get("mem_%s" % k) is not None)
    if memory:
        section["memory"] = memory
    return section


def _hub_setting(hub, key, settings):
    value = hub.get(key)
    return settings[key] if value is None else value


def _scheduling_section(hub, settings):
    placeholders = int(_hub_setting(hub, "user_placeholders", settings) or 0)
    return {
        "userScheduler": {"enabled": bool(_hub_setting(hub, "user_scheduler", settings))},
        # Placeholders only make room when they can be preempted, which needs pod priorities.
        "podPriority": {"enabled": placeholders > 0},
        "userPlaceholder": {"enabled": placeholders > 0, "replicas": placeholders},
    }


def _prepuller_section(hub, settings):
    enabled = bool(_hub_setting(hub, "prepull", settings))
    return {"hook": {"enabled": enabled}, "continuous": {"enabled": enabled}, "pullProfileListImages": enabled}


def cull_every(timeout):
    """How often the idle culler looks: a sixth of the timeout, between one and ten minutes."""
    return max(60, min(600, int(timeout) // 6))


def _cull_section(hub):
    timeout = hub.get("idle_timeout")
    timeout = 3600 if timeout is None else int(timeout)
    if timeout <= 0:
        return {"enabled": False}
    return {"enabled": True, "users": False, "timeout": timeout, "every": cull_every(timeout)}


def merge_values(base, override):
    """Merge chart values the way Helm merges a values file over defaults: maps key by key, the rest replaced."""
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_values(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def hub_values(hub, site, directory=None, settings=None):
    """The Helm values of one hub, with its extra_values merged over them."""
    hub = _hub(hub, "hub_values")
    site = site or {}
    settings = _settings(settings)
    names = hub_names(hub, settings["release_prefix"])
    if directory is None:
        directory = hub_directory(hub, None, "")
    values = {
        "fullnameOverride": "",
        "hub": _hub_section(hub, site, directory, settings, names),
        "proxy": _proxy_section(hub, names),
        "singleuser": _singleuser_section(hub, site, settings, names),
        "scheduling": _scheduling_section(hub, settings),
        "prePuller": _prepuller_section(hub, settings),
        "cull": _cull_section(hub),
        "custom": {
            "juno": {
                "hub": hub["name"],
                "adGroupsResolved": bool(directory["resolved"]),
                "unresolvedGroups": list(directory["unresolved_groups"]),
                "note": directory["note"],
            }
        },
    }
    return merge_values(values, hub.get("extra_values") or {})


def hub_files(hubs, ad=None):
    """Files on the control node that the hubs need: the AD CA and each hub's certificate and key.

    `path` has `~` expanded, so that the `exists` test reads the same file as `stat` would.
    """
    files = []
    ad = ad or {}
    if ad.get("ca_file") and (ad.get("tls") or "ldaps") != "none":
        files.append({
            "path": os.path.expanduser(ad["ca_file"]),
            "message": "juno_ad.ca_file %s does not exist on the control node; the hubs validate the domain controllers' certificates "
                       "against it (the PEM of the CA that signed them)" % ad["ca_file"],
        })
    for hub in hubs or []:
        tls = _hub(hub, "hub_files").get("tls") or {}
        for key, what in (("certificate_file", "certificate chain"), ("key_file", "private key")):
            if tls.get(key):
                files.append({
                    "path": os.path.expanduser(tls[key]),
                    "message": "hub %s: tls.%s %s does not exist on the control node; give the PEM %s of %s"
                               % (hub["name"], key, tls[key], what, hub.get("hostname")),
                })
    return files


def _memory_bytes(value):
    text = str(value)
    if not MEMORY.match(text):
        return None
    if text[-1] in MEMORY_UNITS:
        return float(text[:-1]) * MEMORY_UNITS[text[-1]]
    return float(text)


def _dig(values, path):
    node = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


# (path in extra_values, value that is refused or None for "any value", why)
FORBIDDEN_EXTRA_VALUES = (
    (("hub", "config", "LDAPAuthenticator", "lookup_dn_search_password"), None,
     "the bind password never goes into Helm values; the role puts it into the Secret %s" % AD_SECRET),
    (("hub", "config", "Authenticator", "allow_all"), True, "a hub admits only members of its AD groups"),
    (("hub", "networkPolicy", "enabled"), False, "the hub's NetworkPolicy keeps the hubs apart"),
    (("proxy", "chp", "networkPolicy", "enabled"), False, "the proxy's NetworkPolicy keeps the hubs apart"),
    (("singleuser", "networkPolicy", "enabled"), False, "the user pods' NetworkPolicy keeps the hubs apart"),
    (("singleuser", "cloudMetadata", "blockWithIptables"), True,
     "it adds a privileged init container that the namespace's Pod Security level (baseline) refuses; the NetworkPolicy blocks the address"),
    (("singleuser", "allowPrivilegeEscalation"), True, "user pods run without privilege escalation"),
)


def hub_problems(hub, site=None, settings=None, lookup_enabled=True):
    """What is wrong with one hub entry for the jupyterhub role; one message per problem."""
    problems = []
    if not isinstance(hub, dict) or not isinstance(hub.get("name"), str):
        return ["%s: has no name" % hub_place(hub)]
    settings = _settings(settings)
    where = hub_place(hub)
    names = hub_names(hub, settings["release_prefix"])
    if len(names["release"]) > HELM_RELEASE_MAX or not DNS_LABEL.match(names["release"]):
        problems.append(
            "%s: the Helm release name %r (jupyterhub_release_prefix + name) must be a DNS label of at most %d characters"
            % (where, names["release"], HELM_RELEASE_MAX)
        )
    allowed, admin = _ad_groups(hub)
    if not allowed:
        problems.append("%s: ad.allowed_groups is empty; a hub admits members of at least one AD group (allow_all is never set)" % where)
    if not lookup_enabled:
        for group in allowed:
            if not _is_dn(group):
                problems.append(
                    "%s: ad.allowed_groups has %r, a group name, but jupyterhub_resolve_admins is false so it cannot be resolved to a DN; "
                    "give its DN (CN=...,OU=...,DC=...) or turn the lookup on" % (where, group)
                )
    image = hub.get("image") or {}
    if image and (not image.get("name") or not image.get("tag")):
        problems.append("%s: image needs both name and tag, got %r" % (where, image))
    resources = hub.get("resources") or {}
    problems += _resource_problems("%s: resources." % where, resources)
    storage = hub.get("storage") or {}
    if storage.get("capacity") is not None:
        problems += value_problems([["%s: storage.capacity" % where, "memory", storage["capacity"]]])
    timeout = hub.get("idle_timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0):
        problems.append("%s: idle_timeout %r must be a number of seconds, 0 or more (0 turns culling off)" % (where, timeout))
    placeholders = hub.get("user_placeholders")
    if placeholders is not None and (not isinstance(placeholders, int) or isinstance(placeholders, bool) or placeholders < 0):
        problems.append("%s: user_placeholders %r must be 0 or more" % (where, placeholders))
    defaults = 0
    slugs = {}
    for i, profile in enumerate(hub.get("profiles") or []):
        if not isinstance(profile, dict):
            problems.append("%s: profiles entry %d is %r, not a profile (display_name, cpu_limit, ...)" % (where, i + 1, profile))
            continue
        slug = _slug(profile.get("display_name") or "profile-%d" % (i + 1))
        slugs[slug] = slugs.get(slug, 0) + 1
        slug = slug if slugs[slug] == 1 else "%s-%d" % (slug, slugs[slug])
        pwhere = "%s: %s" % (where, profile_name(profile, slug))
        if not profile.get("display_name"):
            problems.append("%s has no display_name (entry %d of profiles)" % (pwhere, i + 1))
        if profile.get("default"):
            defaults += 1
        if profile.get("image"):
            ref = str(profile["image"])
            if ":" not in ref.rsplit("/", 1)[-1] and "@" not in ref:
                problems.append("%s: image %r has no tag; pin one (name:tag), as for the hub's image" % (pwhere, ref))
        gpu = profile.get("gpu") or 0
        if not isinstance(gpu, int) or isinstance(gpu, bool) or gpu < 0:
            problems.append("%s: gpu %r must be a whole number of GPUs, 0 or more" % (pwhere, gpu))
        problems += _resource_problems(pwhere + ": ", profile)
    if defaults > 1:
        problems.append("%s: %d profiles are marked default; mark at most one" % (where, defaults))
    tls = hub.get("tls")
    if tls and not (tls.get("certificate_file") and tls.get("key_file")):
        problems.append("%s: tls needs certificate_file and key_file" % where)
    extra = hub.get("extra_values") or {}
    if not isinstance(extra, dict):
        problems.append("%s: extra_values must be a dictionary of chart values, got %r" % (where, extra))
        extra = {}
    for path, refused, why in FORBIDDEN_EXTRA_VALUES:
        value, present = _dig(extra, path)
        if present and (refused is None or value == refused):
            problems.append("%s: extra_values sets %s%s: %s" % (where, ".".join(path), "" if refused is None else " to %r" % (refused,), why))
    ad = (site or {}).get("juno_ad") or {}
    if not ad:
        problems.append("juno_ad is not set; the hubs log users in against Active Directory")
    return problems


def _cpu(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _resource_problems(where, resources):
    """``where`` ends with the separator (``hub h: resources.``, ``hub h: profile 'GPU' (gpu): ``)."""
    problems = []
    for key in ("mem_guarantee", "mem_limit"):
        value = resources.get(key)
        if value is not None and _memory_bytes(value) is None:
            problems.append("%s%s %r is not a JupyterHub memory size (a number with K, M, G or T, such as 4G; not 4Gi)" % (where, key, value))
    for key in ("cpu_guarantee", "cpu_limit"):
        value = resources.get(key)
        if value is not None and (isinstance(value, bool) or _cpu(value) is None or _cpu(value) < 0):
            problems.append("%s%s %r is not a number of CPUs (such as 0.5 or 2)" % (where, key, value))
    cpu_g, cpu_l = _cpu(resources.get("cpu_guarantee")), _cpu(resources.get("cpu_limit"))
    if cpu_g is not None and cpu_l is not None and cpu_g > cpu_l:
        problems.append("%scpu_guarantee %s is more than cpu_limit %s; the limit must be at least the guarantee"
                        % (where, resources.get("cpu_guarantee"), resources.get("cpu_limit")))
    mem_g, mem_l = _memory_bytes(resources.get("mem_guarantee") or ""), _memory_bytes(resources.get("mem_limit") or "")
    if mem_g is not None and mem_l is not None and mem_g > mem_l:
        problems.append("%smem_guarantee %s is more than mem_limit %s; the limit must be at least the guarantee"
                        % (where, resources.get("mem_guarantee"), resources.get("mem_limit")))
    return problems


class FilterModule(object):
    def filters(self):
        return {
            "hub_names": hub_names,
            "hub_ad_groups": hub_ad_groups,
            "hub_directory": hub_directory,
            "hub_values": hub_values,
            "hub_problems": hub_problems,
            "hub_egress_except": hub_egress_except,
            "hub_files": hub_files,
        }
