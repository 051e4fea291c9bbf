"""Unit tests of plugins/filter/preflight.py: the parsers of structured strings (DNs, URLs,
Kubernetes quantities, Go durations), one naming form for hubs and profiles, and the report that
groups every problem of a run by place. Classes of mistakes, not single strings."""

import os
from decimal import Decimal

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import preflight as p
from ansible_collections.juno.hub.plugins.filter import site, hub as hubf, beats


# ---------------------------------------------------------------------------------------------
# distinguished names

@pytest.mark.parametrize("dn", [
    "CN=svc,DC=example,DC=edu", "CN=Smith\\, J,OU=Users,DC=x", "CN=a+OU=b,DC=c", "cn=lower,dc=case", "OU=Groups, DC=x, DC=y",
    "1.2.3.4=oid,DC=x",
])
def test_good_dns(dn):
    assert p.dn_problem(dn) == ""


@pytest.mark.parametrize("dn,why", [
    ("CN=a,,DC=b", "empty RDN"),            # doubled comma
    (",CN=a,DC=b", "empty RDN"),            # leading comma
    ("CN=a,DC=b,", "empty RDN"),            # trailing comma
    ("CN=a, ,DC=b", "empty RDN"),           # comma, blank, comma
    ("CN=,DC=b", "CN= has no value"),       # empty value
    ("CN=a,DC", "not attribute=value"),     # type without value
    ("chem-students", "not attribute=value"),
    ("", "empty"),
    ("CN=a\\", "dangling backslash"),
    ('CN="a",DC=b', "quote"),
])
def test_bad_dns(dn, why):
    assert why in p.dn_problem(dn)


# ---------------------------------------------------------------------------------------------
# URLs

@pytest.mark.parametrize("url", ["https://es1.example.edu:9200", "http://10.0.0.1:9200/", "https://[2001:db8::1]:9200", "https://es"])
def test_good_urls(url):
    assert p.url_problem(url) == ""


@pytest.mark.parametrize("url,why", [
    ("es1.example.edu:9200", "no scheme"),
    ("es1.example.edu", "no scheme"),
    ("https//es1.example.edu", "no scheme"),
    ("ftp://es1.example.edu", "scheme is ftp"),
    ("https://:9200", "no host"),
    ("https://es1:99999", "does not parse"),
    ("https://es1:port", "does not parse"),
    ("https://es1 .example.edu", "blanks"),
    ("", "empty"),
])
def test_bad_urls(url, why):
    assert why in p.url_problem(url)


def test_https_only():
    assert "scheme is http" in p.url_problem("http://es1", ("https",))


# ---------------------------------------------------------------------------------------------
# quantities and durations

@pytest.mark.parametrize("text,value", [
    ("10Gi", Decimal(10 * 2 ** 30)), ("500m", Decimal("0.5")), ("1.5", Decimal("1.5")), ("2k", Decimal(2000)), ("1e3", Decimal(1000)),
    ("128974848", Decimal(128974848)), ("129M", Decimal(129000000)), ("+1Ki", Decimal(1024)), (".5", Decimal("0.5")),
])
def test_quantities(text, value):
    assert p.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["10GB", "10 Gi", "Gi", "", "1.2.3", "10gi", " 1", "1Mib", ".", "1e", "--1"])
def test_not_quantities(text):
    with pytest.raises(ValueError):
        p.parse_quantity(text)


@pytest.mark.parametrize("text,seconds", [("50s", 50), ("1m30s", 90), ("1.5h", 5400), ("300ms", Decimal("0.3")), ("0", 0), ("-2s", -2)])
def test_durations(text, seconds):
    assert p.parse_duration(text) == Decimal(seconds)


@pytest.mark.parametrize("text", ["50", "", "s", "5 s", "1d", "1m30", "1.5.2s", "fast"])
def test_not_durations(text):
    with pytest.raises(ValueError):
        p.parse_duration(text)


def test_value_problems_name_value_kind_and_reason():
    msgs = p.value_problems([
        ["hub chem: storage.capacity", "memory", "10GB"],
        ["kata_runtime_class_overhead_cpu", "cpu", "-1"],
        ["x", "memory", "1.5"],
        ["control_plane_node_monitor_grace_period", "duration", "50"],
        ["juno_ad.base_dn", "dn", "DC=x,,DC=y"],
        ["ok", "quantity", "1Gi"],
    ])
    assert len(msgs) == 5
    assert msgs[0].startswith("hub chem: storage.capacity '10GB' is not a memory quantity")
    assert "negative" in msgs[1] and "fraction of a byte" in msgs[2]
    assert "Go duration" in msgs[3] and "empty RDN" in msgs[4]
    with pytest.raises(AnsibleFilterError):
        p.value_problems([["x", "colour", "red"]])
    with pytest.raises(AnsibleFilterError):
        p.value_problems(["x"])


# ---------------------------------------------------------------------------------------------
# one naming form

def test_hub_and_profile_names():
    assert p.hub_place({"name": "chemeng"}, 3) == "hub chemeng"
    assert p.hub_place({"name": "has space"}, 1) == "hub juno_hubs[1]"
    assert p.hub_place({}, 0) == "hub juno_hubs[0]"
    assert p.hub_place("not a dict", 2) == "hub juno_hubs[2]"
    assert p.profile_name({"display_name": "GPU notebook"}, "gpu-notebook") == "profile 'GPU notebook' (gpu-notebook)"


def site_problems(hubs, ad=None):
    s = {"juno_hubs": hubs}
    if ad:
        s["juno_ad"] = ad
    return site.hub_problems(s) + site.ad_problems(s)


def test_every_hub_message_names_the_hub_by_name():
    hubs = [
        {"name": "chem", "hostname": "c.example.edu", "lb_address": "x", "ad": {"allowed_groups": []}},
        {"name": "chem", "hostname": "c.example.edu", "namespace": "kube-x", "ad": {"allowed_groups": ["G"]}},
    ]
    msgs = site_problems(hubs)
    assert msgs and all(m.startswith("hub chem: ") for m in msgs), msgs
    assert not any("juno_hubs[" in m.split(": ", 1)[1] and "entries" not in m for m in msgs), msgs


@pytest.mark.parametrize("group", ["CN=students,,OU=Groups,DC=x", "CN=students,OU=Groups,DC=x,", "CN=,OU=Groups,DC=x", "students,DC=x"])
def test_group_dns_are_parsed(group):
    msgs = site_problems([{"name": "chem", "hostname": "c.example.edu", "ad": {"allowed_groups": [group], "admin_groups": []}}])
    assert any(m.startswith("hub chem: ad.allowed_groups entry") and "distinguished name" in m for m in msgs), msgs
    ok = site_problems([{"name": "chem", "hostname": "c.example.edu", "ad": {"allowed_groups": ["students", "CN=s,OU=G,DC=x"]}}])
    assert ok == []


@pytest.mark.parametrize("key", ["base_dn", "bind_dn", "user_base_dn"])
def test_site_dns_are_parsed(key):
    ad = {"servers": ["dc1"], "base_dn": "DC=x", "bind_dn": "CN=svc,DC=x", key: "CN=a,,DC=x"}
    msgs = site_problems([], ad)
    assert [m for m in msgs if m.startswith("juno_ad.%s " % key) and "empty RDN" in m], msgs


def test_profiles_are_named_by_display_name_and_slug():
    hub = {"name": "chem", "hostname": "c.example.edu", "ad": {"allowed_groups": ["CN=G,DC=x"]},
           "profiles": [{"display_name": "Big memory", "mem_guarantee": "8G", "mem_limit": "4G"},
                        {"display_name": "Big memory", "cpu_guarantee": 4, "cpu_limit": 2},
                        {"display_name": "Odd", "cpu_limit": "lots"}]}
    msgs = hubf.hub_problems(hub, {"juno_ad": {"servers": ["dc1"]}})
    assert "hub chem: profile 'Big memory' (big-memory): mem_guarantee 8G is more than mem_limit 4G; the limit must be at least the guarantee" in msgs
    assert any(m.startswith("hub chem: profile 'Big memory' (big-memory-2): cpu_guarantee 4 is more than cpu_limit 2") for m in msgs)
    assert any(m.startswith("hub chem: profile 'Odd' (odd): cpu_limit 'lots' is not a number of CPUs") for m in msgs)


@pytest.mark.parametrize("capacity", ["10GB", "10 Gi", "ten", "1.5"])
def test_capacity_is_a_quantity_of_bytes(capacity):
    hub = {"name": "chem", "hostname": "c.example.edu", "ad": {"allowed_groups": ["CN=G,DC=x"]}, "storage": {"capacity": capacity}}
    msgs = hubf.hub_problems(hub, {"juno_ad": {"servers": ["dc1"]}})
    assert any(m.startswith("hub chem: storage.capacity ") for m in msgs), msgs


@pytest.mark.parametrize("url", ["es1.example.edu:9200", "https//es1", "https://:9200", "ftp://es1"])
def test_elasticsearch_hosts_are_parsed(url):
    assert p.url_problem(url)
    problems = [m for m in beats.beats_problems(_beats_settings(url)) if m.startswith("juno_elasticsearch_hosts[0]")]
    assert problems and "is not a URL" in problems[0], problems


def _beats_settings(url):
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    with open(os.path.join(top, "roles", "beats", "defaults", "main.yml")) as f:
        settings = yaml.safe_load(f)
    settings.update({"juno_elasticsearch_hosts": [url], "juno_elasticsearch_auth": "api_key", "beats_elasticsearch_managed": False})
    return settings


# ---------------------------------------------------------------------------------------------
# the report

def test_report_groups_by_place_and_lists_each_problem_once():
    lines = p.preflight_report({
        "nfs1": ["juno_pod_cidr overlaps", "hub chem: storage.capacity bad", "node nfs1: 1 CPU"],
        "cp1": ["juno_pod_cidr overlaps", "hub chem: storage.capacity bad", "node cp1: swap", "node cp1: 1 CPU", "hub bio: no groups"],
        "w1": ["node w1: 1 CPU", {"where": "hub bio", "message": "no tag"}],
    })
    assert lines[0] == "preflight found 6 problems; nothing was changed"
    assert lines[1:] == [
        "site:", "  - juno_pod_cidr overlaps",
        "hub chem:", "  - storage.capacity bad",
        "hub bio:", "  - no groups", "  - no tag",
        "nodes nfs1, cp1, w1:", "  - 1 CPU",
        "node cp1:", "  - swap",
    ]


def test_report_of_nothing_is_empty():
    assert p.preflight_report({"a": [], "b": []}) == []
    assert p.preflight_report([]) == []
    with pytest.raises(AnsibleFilterError):
        p.preflight_report("problems")


def test_argument_problems_name_the_hub():
    result = {"item": {"name": "physics"}, "argument_errors": ["missing required arguments: allowed_groups found in ad"],
              "msg": "Validation of arguments failed:\n..."}
    assert p.argument_problems(result) == ["hub physics: missing required arguments: allowed_groups found in ad"]
    assert p.argument_problems(["Validation of arguments failed: x", "argument ''port'' is of type str"]) == ["argument 'port' is of type str"]
    assert p.argument_problems(["a"], "hub x") == ["hub x: a"]
    assert p.argument_problems({"item": {"name": "x"}}) == []


@pytest.mark.parametrize("server,why", [
    ("ldap//dc1.example.edu", "not a host name or address"),
    ("https://dc1.example.edu", "scheme must be ldap:// or ldaps://"),
    ("dc1.example.edu:ldaps", "the port must be a number"),
    ("ldaps://dc1.example.edu/DC=example,DC=edu", "may not carry a DN"),
    ("dc1.example.edu:99999", "out of range"),
])
def test_ad_servers_are_parsed_as_the_module_parses_them(server, why):
    msgs = site.ad_problems({"juno_ad": {"servers": ["dc2.example.edu", server], "tls": "ldaps", "base_dn": "DC=x"}})
    assert len(msgs) == 1 and msgs[0].startswith("juno_ad.servers[1] %r is not a host name" % server) and why in msgs[0], msgs


@pytest.mark.parametrize("server", ["dc1.example.edu", "10.0.0.5:636", "[2001:db8::5]:636", "ldaps://dc1.example.edu:636"])
def test_good_ad_servers(server):
    assert site.ad_problems({"juno_ad": {"servers": [server], "tls": "ldaps", "base_dn": "DC=x"}}) == []


def test_argument_problems_name_the_hub_and_the_profile():
    result = {"item": [{"name": "chem"}, {"display_name": "GPU notebook", "gpu": "two"}],
              "argument_errors": ["argument 'gpu' is of type str and we were unable to convert to int"]}
    assert p.argument_problems(result) == [
        "hub chem: profile 'GPU notebook' (gpu-notebook): argument 'gpu' is of type str and we were unable to convert to int"]
