# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure logic of plugins/module_utils/_ad.py: escaping, DN parsing, ranges, servers, options,
value conversion and error wording. No directory is contacted here (tests/integration does that)."""

import socket
import ssl
import struct

import pytest

from ansible_collections.juno.hub.plugins.module_utils import _ad


# --- filter escaping (RFC 4515) -------------------------------------------------------------

@pytest.mark.parametrize("value, escaped", [
    ("ChemEng-Students", "ChemEng-Students"),
    ("Doe\\, Jane (Chem)", "Doe\\5c, Jane \\28Chem\\29"),
    ("a*b", "a\\2ab"),
    ("nul\x00byte", "nul\\00byte"),
    ("Łukasz Żółć", "Łukasz Żółć"),
    ("tab\there", "tab\\09here"),
])
def test_escape_filter_value(value, escaped):
    assert _ad.escape_filter_value(value) == escaped


def test_escape_filter_value_bytes():
    assert _ad.escape_filter_value(b"\x01\xff(") == "\\01\\ff\\28"


def test_filters_for_a_dn_with_comma_and_parentheses():
    dn = "CN=Doe\\, Jane (Chem),OU=People,DC=ad,DC=example,DC=edu"
    assert _ad.members_filter([dn]) == (
        "(&(sAMAccountType=805306368)(memberOf=CN=Doe\\5c, Jane \\28Chem\\29,OU=People,DC=ad,DC=example,DC=edu))")
    assert _ad.nested_groups_filter(dn) == (
        "(&(objectClass=group)(memberOf:1.2.840.113556.1.4.1941:=CN=Doe\\5c, Jane \\28Chem\\29,OU=People,DC=ad,DC=example,DC=edu))")
    assert "1.2.840.113556.1.4.1941:=" in _ad.chain_members_filter(dn)
    assert _ad.group_filter("Doe (Chem)*") == "(&(objectClass=group)(sAMAccountName=Doe \\28Chem\\29\\2a))"


def test_members_filter_or_for_several_groups():
    f = _ad.members_filter(["CN=A,DC=x", "CN=B,DC=x"])
    assert f == "(&(sAMAccountType=805306368)(|(memberOf=CN=A,DC=x)(memberOf=CN=B,DC=x)))"
    with pytest.raises(ValueError):
        _ad.members_filter([])


def test_filters_parse_with_ldap3():
    ldap3 = pytest.importorskip("ldap3")
    from ldap3.operation.search import parse_filter

    dn = "CN=Doe\\, Jane (Chem),OU=People,DC=ad,DC=example,DC=edu"
    for flt in (_ad.members_filter([dn, "CN=x,DC=y"]), _ad.nested_groups_filter(dn), _ad.group_filter("a(b)")):
        assert parse_filter(flt, None, auto_escape=False, auto_encode=True, validator=None, check_names=False)
    assert ldap3


# --- DN escaping and parsing (RFC 4514) ----------------------------------------------------

@pytest.mark.parametrize("value, escaped", [
    ("Doe, Jane (Chem)", "Doe\\, Jane (Chem)"),
    (" lead", "\\ lead"),
    ("trail ", "trail\\ "),
    ("#hash", "\\#hash"),
    ('a+b"c<d>e;f=g\\h', 'a\\+b\\"c\\<d\\>e\\;f\\=g\\\\h'),
])
def test_escape_dn_value(value, escaped):
    assert _ad.escape_dn_value(value) == escaped
    assert _ad.parse_dn("CN=%s,DC=x" % escaped)[0] == [("CN", value)]


def test_parse_dn():
    assert _ad.parse_dn("CN=Doe\\, Jane (Chem),OU=People,DC=ad,DC=example,DC=edu") == [
        [("CN", "Doe, Jane (Chem)")], [("OU", "People")], [("DC", "ad")], [("DC", "example")], [("DC", "edu")]]
    assert _ad.parse_dn("CN=Doe\\2C Jane,DC=x") == [[("CN", "Doe, Jane")], [("DC", "x")]]
    assert _ad.parse_dn("cn = spaced , dc=x") == [[("cn", "spaced")], [("dc", "x")]]
    assert _ad.parse_dn("CN=J\\C3\\BCrgen,DC=x")[0] == [("CN", "Jürgen")]
    assert _ad.parse_dn("CN=a+UID=b,DC=x")[0] == [("CN", "a"), ("UID", "b")]
    assert _ad.parse_dn("2.5.4.3=oid,DC=x")[0] == [("2.5.4.3", "oid")]
    assert _ad.parse_dn("CN=#04024869,DC=x")[0] == [("CN", "#04024869")]
    assert _ad.parse_dn("") == []


@pytest.mark.parametrize("bad", ["CN", "CN=a,", "=a", "CN=a,DC", "CN=a\\", "CN=a\"b", "C N=x", "CN=\\ff\\fe"])
def test_parse_dn_rejects(bad):
    with pytest.raises(ValueError):
        _ad.parse_dn(bad)


def test_is_dn():
    assert _ad.is_dn("CN=ChemEng-Students,OU=Groups,DC=ad,DC=example,DC=edu")
    assert _ad.is_dn("CN=Doe\\, Jane (Chem),DC=x")
    assert not _ad.is_dn("ChemEng-Students")
    assert not _ad.is_dn("Doe, Jane (Chem)")
    assert not _ad.is_dn("a=b=c,")
    assert not _ad.is_dn(None)


def test_normalize_and_compare_dns():
    a = "CN=Doe\\, Jane (Chem),OU=People,DC=AD,DC=example,DC=edu"
    b = "cn=doe\\2c jane (chem), ou=people,dc=ad,dc=EXAMPLE,dc=edu"
    assert _ad.normalize_dn(a) == _ad.normalize_dn(b)
    assert _ad.dn_equal(a, b)
    assert not _ad.dn_equal(a, "CN=Doe,OU=People,DC=ad,DC=example,DC=edu")
    assert _ad.rdn_value(a) == "Doe, Jane (Chem)"
    assert _ad.is_under(a, "dc=example,DC=EDU")
    assert not _ad.is_under("DC=edu", a)
    assert not _ad.is_under(a, "DC=other,DC=edu")


# --- ranged retrieval ----------------------------------------------------------------------

def test_range_attribute():
    assert _ad.range_attribute("member", 0) == "member;range=0-*"
    assert _ad.range_attribute("member", 1500) == "member;range=1500-*"
    assert _ad.range_attribute("member", 1000, window=1000) == "member;range=1000-1999"


@pytest.mark.parametrize("name, parsed", [
    ("member;range=0-1499", ("member", 0, 1499)),
    ("member;range=1500-*", ("member", 1500, None)),
    ("Member;Range=3000-4499", ("Member", 3000, 4499)),
    ("member", ("member", None, None)),
    ("userCertificate;binary", ("userCertificate;binary", None, None)),
])
def test_parse_range_option(name, parsed):
    assert _ad.parse_range_option(name) == parsed


@pytest.mark.parametrize("bad", ["member;range=", "member;range=a-b", "member;range=5", "member;range=1-x"])
def test_parse_range_option_rejects(bad):
    with pytest.raises(ValueError):
        _ad.parse_range_option(bad)


def test_take_range_walks_a_windows_style_answer():
    """Windows returns at most MaxValRange (1500) values and the next range's start."""
    total = ["CN=u%04d,DC=x" % i for i in range(3200)]
    answers = {
        0: {"member;range=0-1499": total[0:1500]},
        1500: {"member;range=1500-2999": total[1500:3000]},
        3000: {"member;range=3000-*": total[3000:]},
    }
    got, low, asked = [], 0, []
    while low is not None:
        asked.append(low)
        values, low = _ad.take_range(answers[low], "member")
        got.extend(values)
    assert got == total and asked == [0, 1500, 3000]


def test_take_range_edge_cases():
    assert _ad.take_range({"member": ["a", "b"]}, "member") == (["a", "b"], None)  # no range option: all
    assert _ad.take_range({}, "member") == ([], None)  # empty group
    assert _ad.take_range({"member;range=5000-*": None}, "member") == ([], None)  # past the end (Samba)
    assert _ad.take_range({"member;range=10-19": []}, "member") == ([], None)  # nothing more: stop
    assert _ad.take_range({"memberOf": ["x"]}, "member") == ([], None)  # another attribute
    with pytest.raises(ValueError):
        _ad.take_range({"member;range=10-5": ["x"]}, "member")


# --- servers and options -------------------------------------------------------------------

@pytest.mark.parametrize("spec, tls, port, expected", [
    ("dc1.ad.example.edu", "ldaps", None, ("dc1.ad.example.edu", 636, True, False, "ldaps://dc1.ad.example.edu:636")),
    ("dc1.ad.example.edu", "starttls", None, ("dc1.ad.example.edu", 389, False, True, "ldap://dc1.ad.example.edu:389")),
    ("dc1.ad.example.edu", "none", 3268, ("dc1.ad.example.edu", 3268, False, False, "ldap://dc1.ad.example.edu:3268")),
    ("10.0.0.5:1636", "ldaps", 636, ("10.0.0.5", 1636, True, False, "ldaps://10.0.0.5:1636")),
    ("ldaps://dc2.example.edu", "ldaps", None, ("dc2.example.edu", 636, True, False, "ldaps://dc2.example.edu:636")),
    ("ldaps://dc2.example.edu:3269/", "ldaps", None, ("dc2.example.edu", 3269, True, False, "ldaps://dc2.example.edu:3269")),
    ("ldap://dc3", "starttls", None, ("dc3", 389, False, True, "ldap://dc3:389")),
    ("[2001:db8::5]:636", "ldaps", None, ("2001:db8::5", 636, True, False, "ldaps://[2001:db8::5]:636")),
    ("[2001:db8::5]", "ldaps", None, ("2001:db8::5", 636, True, False, "ldaps://[2001:db8::5]:636")),
])
def test_parse_server(spec, tls, port, expected):
    s = _ad.parse_server(spec, tls, port)
    assert (s["host"], s["port"], s["use_ssl"], s["starttls"], s["url"]) == expected


@pytest.mark.parametrize("spec, tls, words", [
    ("ldaps://dc1", "starttls", "uses ldaps:// but tls is 'starttls'"),
    ("ldap://dc1", "ldaps", "uses ldap:// but tls is 'ldaps'"),
    ("http://dc1", "ldaps", "scheme must be"),
    ("ldaps://dc1/DC=x", "ldaps", "may not carry a DN"),
    ("dc1:abc", "ldaps", "must be a number"),
    ("", "ldaps", "empty"),
    ("[2001:db8::5", "ldaps", "unbalanced"),
    ("dc1:70000", "ldaps", "out of range"),
    ("user@dc1", "ldaps", "not a host name"),
])
def test_parse_server_rejects(spec, tls, words):
    with pytest.raises(_ad.ADError) as e:
        _ad.parse_server(spec, tls)
    assert e.value.kind == "config" and words in str(e.value)


GOOD = {"servers": ["dc1"], "tls": "ldaps", "insecure": False, "validate_certs": True, "page_size": 500, "timeout": 10,
        "groups": ["A"], "attributes": ["sAMAccountName"], "base_dn": "DC=ad,DC=example,DC=edu", "user_base_dn": None}


def test_check_options_good():
    assert _ad.check_options(GOOD) == []
    assert _ad.check_options(dict(GOOD, tls="none", insecure=True)) == []
    assert _ad.check_options(dict(GOOD, validate_certs=False, insecure=True)) == []


@pytest.mark.parametrize("change, words", [
    ({"tls": "none"}, "tls is 'none'"),
    ({"validate_certs": False}, "validate_certs is false"),
    ({"page_size": 0}, "page_size is 0"),
    ({"page_size": 1001}, "between 1 and 1000"),
    ({"timeout": 0}, "timeout is 0"),
    ({"servers": []}, "servers is empty"),
    ({"groups": []}, "groups is empty"),
    ({"groups": ["a=b=c,"]}, "is not a valid DN"),
    ({"attributes": ["member;range=0-*"]}, "not an attribute name"),
    ({"base_dn": "example.edu"}, "base_dn 'example.edu' is not a DN"),
    ({"user_base_dn": "People"}, "user_base_dn 'People' is not a DN"),
    ({"ca_file": "/nonexistent/ca.pem"}, "ca_file /nonexistent/ca.pem does not exist"),
])
def test_check_options_bad(change, words):
    problems = _ad.check_options(dict(GOOD, **change))
    assert len(problems) == 1 and words in problems[0], problems


def test_argument_spec_matches_inventory_defaults():
    spec = _ad.connection_argument_spec()
    assert spec["tls"]["default"] == "ldaps" and spec["tls"]["choices"] == ["ldaps", "starttls", "none"]
    assert spec["bind_password"]["no_log"] is True
    assert spec["validate_certs"]["default"] is True and spec["insecure"]["default"] is False
    assert spec["timeout"]["default"] == 10


# --- values ------------------------------------------------------------------------------

SID = bytes([1, 5, 0, 0, 0, 0, 0, 5]) + struct.pack("<5I", 21, 1, 2, 3, 1104)


def test_convert_values():
    assert _ad.sid_to_string(SID) == "S-1-5-21-1-2-3-1104"
    guid = bytes(range(16))
    assert _ad.convert_value("objectGUID", guid) == "03020100-0504-0706-0809-0a0b0c0d0e0f"
    assert _ad.convert_value("uidNumber", b"10001") == 10001
    assert _ad.convert_value("gidnumber", b"x") == "x"
    assert _ad.convert_value("displayName", "Doe, Jane (Chem)".encode()) == "Doe, Jane (Chem)"
    assert _ad.convert_value("jpegPhoto", b"\xff\xd8\xff") == "/9j/"
    with pytest.raises(ValueError):
        _ad.sid_to_string(SID[:-1])


def test_convert_attributes():
    raw = {"SAMACCOUNTNAME": [b"alice"], "uidNumber": [b"10001"], "objectSid": [SID], "memberOf": [b"CN=g,DC=x"],
           "proxyAddresses": [b"smtp:a@x", b"SMTP:b@x"], "description": [b"one", b"two"]}
    out = _ad.convert_attributes(raw, ["sAMAccountName", "uidNumber", "objectSid", "memberOf", "proxyAddresses",
                                       "description", "mail"])
    assert out == {"sAMAccountName": "alice", "uidNumber": 10001, "objectSid": "S-1-5-21-1-2-3-1104",
                   "memberOf": ["CN=g,DC=x"], "proxyAddresses": ["smtp:a@x", "SMTP:b@x"],
                   "description": ["one", "two"], "mail": None}


def test_is_disabled():
    assert _ad.is_disabled({"userAccountControl": [b"514"]})
    assert not _ad.is_disabled({"useraccountcontrol": [b"512"]})
    assert not _ad.is_disabled({"userAccountControl": [b"66048"]})
    assert _ad.is_disabled({"userAccountControl": [b"66050"]})
    assert not _ad.is_disabled({})


# --- error wording -----------------------------------------------------------------------

@pytest.mark.parametrize("result, words", [
    ({"result": 49, "message": "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1"},
     "invalid credentials"),
    ({"result": 49, "message": "80090308: LdapErr: DSID-0C09030B, comment: AcceptSecurityContext error, data 775, v4563"},
     "account locked out"),
    ({"result": 49, "message": "... data 532, v893"}, "password expired"),
    ({"result": 49, "message": "... data 533, v893"}, "account disabled"),
    ({"result": 49, "message": ""}, "invalid credentials"),
    ({"result": 8, "description": "strongerAuthRequired"}, "strongerAuthRequired"),
    ({"result": 53, "message": "x"}, "unwilling"),
    ({"result": 1, "description": "operationsError", "message": "oops"}, "operationsError: oops"),
])
def test_bind_failure(result, words):
    assert words in _ad.bind_failure(result)


def test_describe_connect_error():
    refused = ConnectionRefusedError(111, "Connection refused")
    assert _ad.describe_connect_error(refused) == ("connection refused", "connect")
    assert _ad.describe_connect_error(socket.timeout("timed out"), timeout=7) == ("no answer within 7s", "connect")
    assert _ad.describe_connect_error(socket.gaierror(-2, "Name or service not known")) == ("host name does not resolve", "connect")
    assert _ad.describe_connect_error(Exception("invalid server address")) == ("host name does not resolve", "connect")
    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                             "unable to get local issuer certificate (_ssl.c:1006)")
    verify.verify_message = "unable to get local issuer certificate"
    msg, kind = _ad.describe_connect_error(Exception("wrapped"), ca_file="/x/ca.pem", tls_error=verify)
    assert kind == "tls"
    assert msg == "TLS certificate verification failed: unable to get local issuer certificate (checked against CA file /x/ca.pem)"
    msg, kind = _ad.describe_connect_error(Exception("socket ssl wrapping error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                                                     "verify failed: self-signed certificate (_ssl.c:1006)"))
    assert (msg, kind) == ("TLS certificate verification failed: self-signed certificate (checked against the system CA store)", "tls")
    handshake = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    handshake.reason = "WRONG_VERSION_NUMBER"
    assert _ad.describe_connect_error(handshake) == ("TLS handshake failed: WRONG_VERSION_NUMBER", "tls")


def test_redact():
    assert _ad.redact("bind as x with s3cret failed", "s3cret") == "bind as x with ******** failed"
    assert _ad.redact("nothing", "") == "nothing"
    details = {"attempts": [("ldaps://a:636", "said s3cret")], "missing_groups": ["s3cret", 1], "server": "s3cret"}
    assert _ad.redact_details(details, "s3cret") == {
        "attempts": [{"server": "ldaps://a:636", "error": "said ********"}], "missing_groups": ["********", 1],
        "server": "********"}
