"""Helm values of the hubs: schema-valid for chart 4.4.0, no secrets, segregated, AD login as specified.

Values are produced the way the role produces them (templates/values.yaml.j2 with the role's
variables, through juno.hub.hub_values) and validated against the chart's values schema after
Helm's merge with the chart's defaults.
"""

import copy

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import hub as hubf

from test_hub_lib import (
    BIND_PASSWORD, dumps, edge_hubs, example_site, rendered_values, role_variables, schema_errors, site_with,
)

EXAMPLE_HUBS = example_site()["juno_hubs"]
ALL_HUBS = EXAMPLE_HUBS + edge_hubs()


def ids(hubs):
    return [h["name"] for h in hubs]


def ad_lookup(groups):
    """A juno.hub.ad_group_info result (its RETURN shape) for {requested name: (dn, [member sAMAccountNames])}."""
    entries = []
    for name, (dn, members) in groups.items():
        users = [{"dn": "CN=%s,OU=People,DC=ad,DC=example,DC=edu" % m, "sAMAccountName": m, "disabled": False} for m in sorted(members)]
        entries.append({"name": name, "dn": dn, "sAMAccountName": dn.split(",")[0][3:], "members": users,
                        "member_count": len(users), "disabled_count": 0, "nested_groups": [], "round_trips": 2})
    return {"changed": False, "server": "ldaps://dc1.ad.example.edu:636", "round_trips": 4, "groups": entries,
            "members": sorted((u for e in entries for u in e["members"]), key=lambda u: u["dn"])}


def lookup_for(hub):
    ad = hub.get("ad") or {}
    groups = {}
    for g in ad.get("allowed_groups") or []:
        groups[g] = (g if "=" in g else "CN=%s,OU=Groups,DC=ad,DC=example,DC=edu" % g, [])
    for g in ad.get("admin_groups") or []:
        groups[g] = ("CN=%s,OU=Groups,DC=ad,DC=example,DC=edu" % g, ["Admin.%s" % g.replace("-", ""), "Second.Admin"])
    return ad_lookup(groups)


# --- schema ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("hub", ALL_HUBS, ids=ids(ALL_HUBS))
@pytest.mark.parametrize("resolved", [True, False], ids=["resolved", "unresolved"])
def test_values_validate_against_the_chart_schema(hub, resolved):
    values = rendered_values(hub, lookup=lookup_for(hub) if resolved else None, note="" if resolved else "NOT RESOLVED: test")
    assert schema_errors(values) == []


@pytest.mark.parametrize("tls", ["ldaps", "starttls"])
def test_values_validate_for_each_ad_transport(tls):
    site = example_site()
    site["juno_ad"] = dict(site["juno_ad"], tls=tls, port=None)
    for hub in EXAMPLE_HUBS:
        assert schema_errors(rendered_values(hub, site=site, lookup=lookup_for(hub))) == []


def test_schema_check_catches_a_bad_value():
    """The validation itself works: a value the chart refuses is reported."""
    hub = dict(EXAMPLE_HUBS[0], extra_values={"proxy": {"service": {"type": "Ingress"}}})
    assert any("proxy/service/type" in e for e in schema_errors(rendered_values(hub)))


def test_template_and_filter_give_the_same_values():
    hub = EXAMPLE_HUBS[1]
    variables = role_variables()
    direct = hubf.hub_values(hub, variables["_jupyterhub_site"], hubf.hub_directory(hub, lookup_for(hub)), variables["_jupyterhub_settings"])
    assert dumps(direct) == dumps(rendered_values(hub, lookup=lookup_for(hub)))


# --- secrets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("hub", ALL_HUBS, ids=ids(ALL_HUBS))
def test_bind_password_is_in_no_values(hub):
    values = rendered_values(hub, lookup=lookup_for(hub))
    text = yaml.safe_dump(values)
    assert BIND_PASSWORD not in text
    assert "lookup_dn_search_password" not in values["hub"]["config"]["LDAPAuthenticator"]
    env = values["hub"]["extraEnv"][hubf.BIND_PASSWORD_ENV]
    assert env == {"valueFrom": {"secretKeyRef": {"name": "juno-ad-bind", "key": "password"}}}
    assert 'os.environ["%s"]' % hubf.BIND_PASSWORD_ENV in values["hub"]["extraConfig"]["juno-00-ad-bind-password"]


def test_tls_key_is_not_in_values():
    hub = edge_hubs()[1]
    values = rendered_values(hub, lookup=lookup_for(hub))
    https = values["proxy"]["https"]
    assert https == {"enabled": True, "type": "secret", "secret": {"name": "juno-proxy-tls", "key": "tls.key", "crt": "tls.crt"},
                     "hosts": ["everything.hub.example.edu"]}
    assert "manual" not in https


# --- AD login -----------------------------------------------------------------------------------

def test_ldap_config_for_ldaps_with_site_ca():
    hub = EXAMPLE_HUBS[0]
    ldap = rendered_values(hub, lookup=lookup_for(hub))["hub"]["config"]["LDAPAuthenticator"]
    assert ldap["server_address"] == "dc1.ad.example.edu"
    assert ldap["server_port"] == 636
    assert ldap["tls_strategy"] == "on_connect"
    assert ldap["tls_kwargs"] == {"validate": 2, "ca_certs_file": "/usr/local/etc/jupyterhub/juno-ad-ca/ca.pem"}
    assert ldap["lookup_dn"] is True
    assert ldap["lookup_dn_search_user"] == "CN=svc-juno,OU=Service Accounts,DC=ad,DC=example,DC=edu"
    assert ldap["user_search_base"] == "OU=People,DC=ad,DC=example,DC=edu"
    assert ldap["user_attribute"] == ldap["lookup_dn_user_dn_attribute"] == "sAMAccountName"
    assert "{login_attr}={login}" in ldap["lookup_dn_search_filter"]
    assert ldap["group_search_filter"] == "(member:1.2.840.113556.1.4.1941:={userdn})"
    assert ldap["allowed_groups"] == ["CN=ChemEng-Students,OU=Groups,DC=ad,DC=example,DC=edu",
                                      "CN=ChemEng-Staff,OU=Groups,DC=ad,DC=example,DC=edu"]
    assert "auth_state_attributes" not in ldap


def test_starttls_and_server_urls():
    site = example_site()
    site["juno_ad"] = dict(site["juno_ad"], tls="starttls", servers=["ldap://dc9.ad.example.edu:3389", "dc2"])
    site["juno_ad"].pop("port")
    ldap = rendered_values(EXAMPLE_HUBS[0], site=site)["hub"]["config"]["LDAPAuthenticator"]
    assert (ldap["server_address"], ldap["server_port"], ldap["tls_strategy"]) == ("dc9.ad.example.edu", 3389, "before_bind")
    site["juno_ad"]["servers"] = ["dc2.ad.example.edu"]
    ldap = rendered_values(EXAMPLE_HUBS[0], site=site)["hub"]["config"]["LDAPAuthenticator"]
    assert (ldap["server_address"], ldap["server_port"]) == ("dc2.ad.example.edu", 389)
    ldap = rendered_values(EXAMPLE_HUBS[0], site=site, jupyterhub_ad_server="ldaps://dc7.ad.example.edu")["hub"]["config"]["LDAPAuthenticator"]
    assert ldap["server_address"] == "dc7.ad.example.edu"


def test_certificate_validation_is_off_only_when_insecure():
    site = example_site()
    site["juno_ad"] = dict(site["juno_ad"], validate_certs=False, insecure=False)
    assert rendered_values(EXAMPLE_HUBS[0], site=site)["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"]["validate"] == 2
    site["juno_ad"]["insecure"] = True
    assert rendered_values(EXAMPLE_HUBS[0], site=site)["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"]["validate"] == 0


def test_no_site_ca_means_no_configmap_mount():
    site = example_site()
    site["juno_ad"] = dict(site["juno_ad"])
    site["juno_ad"].pop("ca_file")
    values = rendered_values(EXAMPLE_HUBS[0], site=site)
    assert "extraVolumes" not in values["hub"] and "extraVolumeMounts" not in values["hub"]
    assert values["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"] == {"validate": 2}


def test_allow_all_is_false_and_admins_come_from_the_admin_groups():
    hub = EXAMPLE_HUBS[0]
    values = rendered_values(hub, lookup=lookup_for(hub))
    auth = values["hub"]["config"]["Authenticator"]
    assert auth["allow_all"] is False
    assert auth["allowed_users"] == ["admin.chemenghubadmins", "second.admin"]
    assert values["hub"]["loadRoles"] == {"admin": {"users": ["admin.chemenghubadmins", "second.admin"]}}
    assert "admin_users" not in auth
    assert values["custom"]["juno"]["adGroupsResolved"] is True


def test_unresolved_groups_are_noted_and_give_no_admins():
    hub = EXAMPLE_HUBS[1]
    values = rendered_values(hub, note="NOT RESOLVED: jupyterhub_resolve_admins is false")
    assert values["hub"]["loadRoles"]["admin"]["users"] == []
    assert values["hub"]["config"]["LDAPAuthenticator"]["allowed_groups"] == ["CN=PHYS-2210,OU=Courses,OU=Groups,DC=ad,DC=example,DC=edu"]
    assert values["custom"]["juno"] == {
        "hub": "physics", "adGroupsResolved": False, "unresolvedGroups": ["Physics-TAs"],
        "note": "NOT RESOLVED: jupyterhub_resolve_admins is false",
    }


def test_directory_dedupes_dns_and_admins_across_groups():
    hub = {"name": "h", "ad": {"allowed_groups": ["A", "CN=A,OU=G,DC=x"], "admin_groups": ["T1", "T2"]}}
    lookup = ad_lookup({"A": ("CN=A,OU=G,DC=x", []), "CN=A,OU=G,DC=x": ("cn=a, ou=g, dc=x", []),
                        "T1": ("CN=T1,DC=x", ["Zed", "amy"]), "T2": ("CN=T2,DC=x", ["AMY", "bob"])})
    d = hubf.hub_directory(hub, lookup)
    assert d["allowed_group_dns"] == ["CN=A,OU=G,DC=x"]
    assert d["admin_users"] == ["amy", "bob", "zed"]
    assert d["resolved"] is True and d["unresolved_groups"] == []


def test_directory_refuses_a_lookup_that_misses_a_group():
    hub = {"name": "h", "ad": {"allowed_groups": ["A", "B"]}}
    with pytest.raises(AnsibleFilterError, match="'B'"):
        hubf.hub_directory(hub, ad_lookup({"A": ("CN=A,DC=x", [])}))


def test_posix_ids_from_ad_reads_attributes_and_sets_the_hook():
    hub = edge_hubs()[1]
    values = rendered_values(hub, lookup=lookup_for(hub))
    assert values["hub"]["config"]["LDAPAuthenticator"]["auth_state_attributes"] == ["uidNumber", "gidNumber"]
    assert values["hub"]["config"]["Authenticator"]["enable_auth_state"] is True
    code = values["hub"]["extraConfig"]["juno-10-posix-ids"]
    compile(code, "juno-10-posix-ids", "exec")
    assert "c.Spawner.pre_spawn_hook = juno_posix_ids_from_ad" in code
    assert "spawner.uid = uid" in code and "spawner.gid = gid" in code and "spawner.fs_gid = gid" in code
    assert "< 1000" in code


def test_extra_config_snippets_compile():
    for hub in ALL_HUBS:
        for key, code in rendered_values(hub)["hub"]["extraConfig"].items():
            compile(code, key, "exec")


# --- storage, profiles, settings --------------------------------------------------------------------

def test_storage_is_a_dynamic_claim_on_the_hubs_nfs_class():
    for hub, capacity in ((EXAMPLE_HUBS[0], "10Gi"), (EXAMPLE_HUBS[1], "5Gi"), (edge_hubs()[0], "10Gi")):
        storage = rendered_values(hub)["singleuser"]["storage"]
        assert storage == {"type": "dynamic", "capacity": capacity, "homeMountPath": "/home/jovyan",
                           "dynamic": {"storageClass": "juno-home-%s" % hub["name"], "storageAccessModes": ["ReadWriteOnce"]}}


def test_hub_database_on_a_volume():
    db = rendered_values(EXAMPLE_HUBS[0])["hub"]["db"]
    assert db == {"type": "sqlite-pvc", "pvc": {"storage": "1Gi", "storageClassName": "juno-home-chemeng"}}
    db = rendered_values(EXAMPLE_HUBS[0], jupyterhub_db_storage_class="local-ssd", jupyterhub_db_capacity="2Gi")["hub"]["db"]
    assert db["pvc"] == {"storage": "2Gi", "storageClassName": "local-ssd"}


def test_profiles_images_resources_gpus_and_kata():
    profiles = rendered_values(edge_hubs()[1])["singleuser"]["profileList"]
    assert [p["slug"] for p in profiles] == ["cpu", "gpu", "gpu-2", "kata-gpu"]
    assert profiles[0] == {"display_name": "CPU", "slug": "cpu", "description": "", "default": True}
    assert profiles[1]["kubespawner_override"] == {
        "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20", "cpu_limit": 8, "mem_limit": "64G",
        "extra_resource_limits": {"nvidia.com/gpu": "2"}, "extra_resource_guarantees": {"nvidia.com/gpu": "2"},
    }
    kata = profiles[3]["kubespawner_override"]
    assert kata["extra_pod_config"] == {"runtimeClassName": "kata"}
    assert "node_selector" not in kata and "tolerations" not in kata
    assert all("default" not in p for p in profiles[1:])


def test_culling_scheduling_prepulling():
    chem = rendered_values(EXAMPLE_HUBS[0])
    assert chem["cull"] == {"enabled": True, "users": False, "timeout": 3600, "every": 600}
    assert chem["scheduling"] == {"userScheduler": {"enabled": True}, "podPriority": {"enabled": False},
                                  "userPlaceholder": {"enabled": False, "replicas": 0}}
    assert chem["prePuller"] == {"hook": {"enabled": True}, "continuous": {"enabled": True}, "pullProfileListImages": True}
    every = rendered_values(edge_hubs()[1])
    assert every["cull"]["every"] == 60 and every["cull"]["timeout"] == 300
    assert every["scheduling"] == {"userScheduler": {"enabled": False}, "podPriority": {"enabled": True},
                                   "userPlaceholder": {"enabled": True, "replicas": 3}}
    assert every["prePuller"]["hook"]["enabled"] is False
    assert rendered_values(edge_hubs()[2])["cull"] == {"enabled": False}
    assert hubf.cull_every(1800) == 300


def test_load_balancer_address_and_http_without_tls():
    chem, phys = (rendered_values(h) for h in EXAMPLE_HUBS)
    assert chem["proxy"]["service"] == {"type": "LoadBalancer", "annotations": {"metallb.universe.tf/loadBalancerIPs": "10.20.0.241"}}
    assert phys["proxy"]["service"] == {"type": "LoadBalancer"}
    assert chem["proxy"]["https"] == {"enabled": False}


def test_extra_values_merge_over_the_generated_ones():
    values = rendered_values(edge_hubs()[1])
    assert values["hub"]["config"]["JupyterHub"] == {
        "authenticator_class": "ldapauthenticator.LDAPAuthenticator", "admin_access": False, "shutdown_on_logout": True}
    assert values["singleuser"]["defaultUrl"] == "/lab"
    assert values["proxy"]["service"]["annotations"] == {"metallb.universe.tf/loadBalancerIPs": "10.20.0.250"}
    assert values["proxy"]["service"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]


# --- security of user pods -------------------------------------------------------------------------

@pytest.mark.parametrize("hub", ALL_HUBS, ids=ids(ALL_HUBS))
def test_user_pods_are_locked_down(hub):
    values = rendered_values(hub)
    su = values["singleuser"]
    assert su["cloudMetadata"] == {"blockWithIptables": False, "ip": "169.254.169.254"}
    assert su["serviceAccountName"] is None
    assert su["allowPrivilegeEscalation"] is False
    ks = values["hub"]["config"]["KubeSpawner"]
    assert ks["automount_service_account_token"] is False
    assert ks["container_security_context"] == {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    for section in (values["hub"], values["proxy"]["chp"], su):
        assert section["networkPolicy"]["enabled"] is True
    for profile in su["profileList"]:
        override = profile.get("kubespawner_override", {})
        assert set(override.get("extra_pod_config", {})) <= {"runtimeClassName"}
        assert "container_security_context" not in override and "uid" not in override


# --- two hubs, one cluster ----------------------------------------------------------------------------

def test_example_hubs_differ_and_share_no_names():
    variables = role_variables()
    names = [hubf.hub_names(h, variables["jupyterhub_release_prefix"]) for h in EXAMPLE_HUBS]
    assert len({n["release"] for n in names}) == 2
    assert len({n["namespace"] for n in names}) == 2
    cluster_scoped = [name for n in names for name in n["cluster_scoped"]]
    assert len(cluster_scoped) == len(set(cluster_scoped)) == 8
    assert names[0]["cluster_scoped"] == ["juno-chemeng-default-priority", "juno-chemeng-user-placeholder-priority",
                                          "juno-chemeng-image-puller-priority", "juno-chemeng-user-scheduler"]
    chem, phys = (rendered_values(h, lookup=lookup_for(h)) for h in EXAMPLE_HUBS)
    assert chem["singleuser"]["image"] != phys["singleuser"]["image"]
    assert chem["singleuser"]["storage"]["dynamic"]["storageClass"] != phys["singleuser"]["storage"]["dynamic"]["storageClass"]
    assert chem["cull"]["timeout"] != phys["cull"]["timeout"]
    assert set(chem["hub"]["config"]["LDAPAuthenticator"]["allowed_groups"]).isdisjoint(
        phys["hub"]["config"]["LDAPAuthenticator"]["allowed_groups"])
    assert "enable_auth_state" in phys["hub"]["config"]["Authenticator"]
    assert "enable_auth_state" not in chem["hub"]["config"]["Authenticator"]


def test_release_prefix_names_the_release():
    assert hubf.hub_names({"name": "x"}, "site2")["release"] == "site2-x"
    assert hubf.hub_names({"name": "x", "namespace": "ns"}, "")["release"] == "x"
    assert hubf.hub_names({"name": "x", "namespace": "ns"})["namespace"] == "ns"


def test_ad_groups_to_resolve():
    groups = hubf.hub_ad_groups(EXAMPLE_HUBS)
    assert groups["allowed"] == ["ChemEng-Students", "ChemEng-Staff", "CN=PHYS-2210,OU=Courses,OU=Groups,DC=ad,DC=example,DC=edu"]
    assert groups["admin"] == ["ChemEng-Hub-Admins", "Physics-TAs"]
    assert groups["all"] == groups["allowed"] + groups["admin"]


# --- problems ----------------------------------------------------------------------------------------

def test_example_and_edge_hubs_have_no_problems():
    site = example_site()
    for hub in ALL_HUBS:
        assert hubf.hub_problems(hub, site) == []


def problems_of(changes, lookup=True, settings=None):
    hub = copy.deepcopy(EXAMPLE_HUBS[0])
    hub.update(changes)
    return hubf.hub_problems(hub, example_site(), settings, lookup)


@pytest.mark.parametrize("changes,needle", [
    ({"extra_values": {"hub": {"config": {"LDAPAuthenticator": {"lookup_dn_search_password": "x"}}}}}, "never goes into Helm values"),
    ({"extra_values": {"hub": {"config": {"Authenticator": {"allow_all": True}}}}}, "allow_all to True"),
    ({"extra_values": {"singleuser": {"networkPolicy": {"enabled": False}}}}, "singleuser.networkPolicy.enabled"),
    ({"extra_values": {"singleuser": {"cloudMetadata": {"blockWithIptables": True}}}}, "privileged init container"),
    ({"resources": {"mem_limit": "4Gi"}}, "not 4Gi"),
    ({"resources": {"cpu_guarantee": 4, "cpu_limit": 2}}, "cpu_guarantee 4 is more than cpu_limit 2"),
    ({"resources": {"mem_guarantee": "8G", "mem_limit": "4G"}}, "mem_guarantee 8G is more than mem_limit 4G"),
    ({"profiles": [{"display_name": "a", "image": "quay.io/jupyter/base-notebook"}]}, "has no tag"),
    ({"profiles": [{"display_name": "a", "default": True}, {"display_name": "b", "default": True}]}, "2 profiles are marked default"),
    ({"profiles": [{"display_name": "a", "gpu": -1}]}, "whole number of GPUs"),
    ({"storage": {"capacity": "10GB"}}, "storage.capacity '10GB' is not a memory quantity"),
    ({"idle_timeout": -5}, "idle_timeout -5"),
    ({"ad": {"allowed_groups": []}}, "allowed_groups is empty"),
    ({"image": {"name": "x"}}, "needs both name and tag"),
    ({"tls": {"certificate_file": "/x.pem"}}, "needs certificate_file and key_file"),
    ({"name": "a-very-long-hub-name-that-makes-the-release-too-long-x"}, "at most 53 characters"),
])
def test_problems_name_the_variable_and_the_fix(changes, needle):
    found = problems_of(changes)
    assert any(needle in p for p in found), found


def test_group_names_need_the_lookup_in_apply_mode():
    found = problems_of({}, lookup=False)
    assert len(found) == 2 and all("jupyterhub_resolve_admins is false" in p for p in found)
    assert problems_of({"ad": {"allowed_groups": ["CN=G,DC=x"]}}, lookup=False) == []


def test_required_files():
    hub = edge_hubs()[1]
    files = hubf.hub_files([hub, EXAMPLE_HUBS[0]], example_site()["juno_ad"])
    assert sorted(files[0]) == ["message", "path"]
    assert [f["message"].split()[0] for f in files] == [
        "juno_ad.ca_file", "hub", "hub"]
    assert [f["message"].split(": ")[0] for f in files[1:]] == ["hub everything", "hub everything"]
    assert all(f["path"] in f["message"] for f in files)
    assert hubf.hub_files([EXAMPLE_HUBS[0]], {"tls": "none", "ca_file": "/x"}) == []


def test_site_settings_feed_the_role():
    site = site_with(juno_pod_cidr="100.96.0.0/16")
    assert role_variables(site)["_jupyterhub_site"]["juno_pod_cidr"] == "100.96.0.0/16"
    assert role_variables(site, jupyterhub_only=["physics"])["_jupyterhub_hubs"] == [EXAMPLE_HUBS[1]]
