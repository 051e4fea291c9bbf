# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Active Directory group resolution for juno.hub.ad_group_info (private module_utils).

The pure helpers (filter and DN escaping, DN parsing, ranged-attribute handling, server and
option checks, value conversion, error wording) need nothing but the standard library and are
unit-tested on their own. ``lookup()`` does the LDAP work with ldap3.

How a group is resolved (LDAP round trips in brackets):
  * connect: servers in order, failing over on connection and TLS errors [StartTLS 1] + bind [1];
  * the base DN is checked to exist [1];
  * each group is found by DN (base search) or by sAMAccountName (subtree search) [1];
  * nested (default): the groups nested in it, at any depth, come from one search with the
    in-chain matching rule ``memberOf:1.2.840.113556.1.4.1941:=<group DN>`` [1 per page of
    groups], and the user accounts that are members of the group or of any of those groups from
    one paged search ``(|(memberOf=<group>)(memberOf=<nested 1>)...)`` [1 per page]; cycles are
    the directory's business (the chain rule visits each group once), so they cannot loop;
  * direct (nested=false): the member DNs come from ranged retrieval ``member;range=N-*``
    [1 per range] and the accounts' attributes from one paged search ``(memberOf=<group>)``.
Referrals are never chased. Nothing is ever written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import re
import socket
import ssl
import struct
import traceback
import uuid

# ldap3 is imported on first use (load_ldap3), not with this file: the collection's filter plugins
# import this file for its DN and server parsers, and Ansible imports the filter plugins again in
# the worker process of every task that uses one, where ldap3's own import would cost about 0.1 s
# of CPU each time (measured with py-spy on a rerun of the lab, docs/performance.md).
ldap3 = None
ldap3_exceptions = None
LDAP3_IMPORT_ERROR = None


def load_ldap3():
    """Import ldap3 the first time it is needed; True when it could be imported.

    When it cannot, ``LDAP3_IMPORT_ERROR`` keeps the traceback for ``missing_required_lib``.
    """
    global ldap3, ldap3_exceptions, LDAP3_IMPORT_ERROR
    if ldap3 is None and LDAP3_IMPORT_ERROR is None:
        try:
            import ldap3 as _ldap3
            from ldap3.core import exceptions as _ldap3_exceptions
        except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
            LDAP3_IMPORT_ERROR = traceback.format_exc()
        else:
            ldap3, ldap3_exceptions = _ldap3, _ldap3_exceptions
    return ldap3 is not None


IN_CHAIN_RULE = "1.2.840.113556.1.4.1941"
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
UF_ACCOUNTDISABLE = 0x0002
MAX_PAGE_SIZE = 1000
# Groups per memberOf OR-filter: keeps filters well under AD's request size limits.
GROUPS_PER_FILTER = 100
DEFAULT_ATTRIBUTES = ["sAMAccountName", "userPrincipalName", "mail", "uidNumber", "gidNumber", "displayName"]
# User accounts: sAMAccountType SAM_NORMAL_USER_ACCOUNT (not computers, trusts, contacts or groups);
# an indexed integer, cheaper for the DC than (objectCategory=person)(objectClass=user).
USER_FILTER = "(sAMAccountType=805306368)"
INTEGER_ATTRIBUTES = frozenset(a.lower() for a in (
    "uidNumber", "gidNumber", "userAccountControl", "primaryGroupID", "sAMAccountType", "groupType",
    "badPwdCount", "logonCount", "msDS-User-Account-Control-Computed", "uSNChanged", "uSNCreated",
    "instanceType", "adminCount", "countryCode", "pwdLastSet", "lastLogonTimestamp", "accountExpires", "lockoutTime"))
MULTI_VALUED_ATTRIBUTES = frozenset(a.lower() for a in (
    "memberOf", "member", "objectClass", "proxyAddresses", "servicePrincipalName", "otherMailbox",
    "otherTelephone", "otherMobile", "url", "altSecurityIdentities", "msSFU30PosixMemberOf"))

_ATTR_TYPE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$")
_HEX = "0123456789abcdefABCDEF"

# Sub-codes in AD's "AcceptSecurityContext error, data NNN" bind failures (MS-ADTS / KB).
AD_BIND_SUBCODES = {
    "525": "no such user",
    "52e": "invalid credentials",
    "530": "logon not permitted at this time",
    "531": "logon not permitted from this workstation",
    "532": "password expired",
    "533": "account disabled",
    "568": "too many security IDs in the token",
    "701": "account expired",
    "773": "password must be changed",
    "775": "account locked out",
}


def connection_argument_spec():
    """argument_spec of the connection options (documented in plugins/doc_fragments/ad.py)."""
    return dict(
        servers=dict(type="list", elements="str", required=True),
        port=dict(type="int"),
        tls=dict(type="str", default="ldaps", choices=["ldaps", "starttls", "none"]),
        insecure=dict(type="bool", default=False),
        ca_file=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        bind_dn=dict(type="str", required=True),
        bind_password=dict(type="str", required=True, no_log=True),
        base_dn=dict(type="str", required=True),
        user_base_dn=dict(type="str"),
        timeout=dict(type="int", default=10),
    )


class ADError(Exception):
    """A failure ad_group_info reports: ``kind`` is one of config, connect, tls, auth, base_dn,
    missing_group, not_group, ldap."""

    def __init__(self, message, kind="ldap", **details):
        super(ADError, self).__init__(message)
        self.kind = kind
        self.details = details


# ---------------------------------------------------------------------------------------------
# Escaping and parsing (RFC 4515 filters, RFC 4514 DNs)
# ---------------------------------------------------------------------------------------------

def escape_filter_value(value):
    """Escape an assertion value for an LDAP search filter (RFC 4515 section 3).

    ``Doe\\, Jane (Chem)`` becomes ``Doe\\5c, Jane \\28Chem\\29``. Non-ASCII characters are
    left as they are (ldap3 sends UTF-8).
    """
    if isinstance(value, bytes):
        return "".join("\\%02x" % b for b in bytearray(value))
    out = []
    for ch in value:
        if ch in "\\*()\x00" or ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\%02x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def escape_dn_value(value):
    """Escape an attribute value for use in a DN (RFC 4514 section 2.4)."""
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;=' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        else:
            out.append(ch)
    return "".join(out)


def parse_dn(dn):
    """Parse a DN string into a list of RDNs, each a list of ``(type, value)`` pairs.

    Values are unescaped (``\\,`` and ``\\2C`` both give ``,``; hex pairs are decoded as UTF-8).
    Raises ValueError on malformed input. ``""`` (the root DSE) parses to ``[]``.
    """
    if dn is None:
        raise ValueError("no DN")
    rdns, ava, rdn = [], [], []
    i, n = 0, len(dn)
    if not dn.strip():
        return []
    while i < n:
        # attribute type
        while i < n and dn[i] == " ":
            i += 1
        start = i
        while i < n and dn[i] not in "=,+":
            i += 1
        atype = dn[start:i].strip()
        if i >= n or dn[i] != "=" or not _ATTR_TYPE.match(atype):
            raise ValueError("malformed DN %r: expected attribute=value at position %d" % (dn, start))
        i += 1
        # attribute value
        while i < n and dn[i] == " ":
            i += 1
        raw = bytearray()
        trailing_spaces = 0
        if i < n and dn[i] == "#":
            start = i
            while i < n and dn[i] not in ",+":
                i += 1
            value = dn[start:i].rstrip()
        else:
            while i < n and dn[i] not in ",+":
                ch = dn[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise ValueError("malformed DN %r: dangling backslash" % dn)
                    nxt = dn[i + 1]
                    if nxt in _HEX and i + 2 < n and dn[i + 2] in _HEX:
                        raw.append(int(dn[i + 1:i + 3], 16))
                        i += 3
                    else:
                        raw.extend(nxt.encode("utf-8"))
                        i += 2
                    trailing_spaces = 0
                    continue
                if ch == '"':
                    raise ValueError("malformed DN %r: unescaped quote" % dn)
                raw.extend(ch.encode("utf-8"))
                trailing_spaces = trailing_spaces + 1 if ch == " " else 0
                i += 1
            if trailing_spaces:
                raw = raw[:len(raw) - trailing_spaces]
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("malformed DN %r: escaped bytes are not UTF-8" % dn)
        ava.append((atype, value))
        if i < n and dn[i] == "+":
            i += 1
            continue
        rdn, ava = ava, []
        rdns.append(rdn)
        if i < n and dn[i] == ",":
            i += 1
            if i >= n or not dn[i:].strip():
                raise ValueError("malformed DN %r: empty RDN at the end" % dn)
    if ava:
        rdns.append(ava)
    return rdns


def is_dn(text):
    """True when ``text`` names an object by DN rather than by sAMAccountName.

    sAMAccountName cannot contain ``=``, so anything with ``=`` that parses as a DN is a DN.
    """
    if not isinstance(text, str) or "=" not in text:
        return False
    try:
        return bool(parse_dn(text))
    except ValueError:
        return False


def normalize_dn(dn):
    """A case-insensitive canonical form of ``dn`` for comparisons (not for sending)."""
    rdns = parse_dn(dn)
    return ",".join(
        "+".join(sorted("%s=%s" % (t.lower(), escape_dn_value(v).lower()) for t, v in rdn))
        for rdn in rdns)


def dn_equal(a, b):
    try:
        return normalize_dn(a) == normalize_dn(b)
    except ValueError:
        return a.lower() == b.lower()


def rdn_value(dn):
    """The value of the first RDN (``CN=Doe\\, Jane,OU=x`` gives ``Doe, Jane``)."""
    rdns = parse_dn(dn)
    return rdns[0][0][1] if rdns else ""


def is_under(dn, base_dn):
    """True when ``dn`` is ``base_dn`` or below it."""
    d, b = parse_dn(dn), parse_dn(base_dn)
    if len(b) > len(d):
        return False
    norm = [sorted((t.lower(), v.lower()) for t, v in rdn) for rdn in d[len(d) - len(b):]]
    return norm == [sorted((t.lower(), v.lower()) for t, v in rdn) for rdn in b]


# ---------------------------------------------------------------------------------------------
# Ranged retrieval (member;range=N-M)
# ---------------------------------------------------------------------------------------------

def range_attribute(attr, low, window=None):
    """The attribute to ask for: ``member;range=0-*`` or, with a window, ``member;range=0-999``."""
    if window:
        return "%s;range=%d-%d" % (attr, low, low + window - 1)
    return "%s;range=%d-*" % (attr, low)


def parse_range_option(name):
    """Split a returned attribute name: ``member;range=0-1499`` gives ``("member", 0, 1499)``,
    ``member;range=1500-*`` gives ``("member", 1500, None)``, ``member`` gives ``("member", None,
    None)``. Other options (``;binary``) stay on the attribute."""
    parts = name.split(";")
    base, low, high = [parts[0]], None, None
    for opt in parts[1:]:
        if opt.lower().startswith("range="):
            lo, sep, hi = opt[6:].partition("-")
            if not sep or not lo.isdigit() or not (hi == "*" or hi.isdigit()):
                raise ValueError("malformed range option in %r" % name)
            low, high = int(lo), (None if hi == "*" else int(hi))
        else:
            base.append(opt)
    return ";".join(base), low, high


def take_range(raw_attributes, attr):
    """Find ``attr`` (with or without a range option) in one entry's returned attributes.

    Returns ``(values, next_low)``: ``next_low`` is where the next request must start, or None
    when the server has sent the last values (``range=N-*``, no range option at all, or an empty
    final range).
    """
    for name, values in (raw_attributes or {}).items():
        base, low, high = parse_range_option(name)
        if base.lower() != attr.lower():
            continue
        values = list(values or [])
        if low is None or high is None or not values:
            return values, None
        if high < low:
            raise ValueError("server returned an inverted range %r" % name)
        return values, high + 1
    return [], None


# ---------------------------------------------------------------------------------------------
# Options, servers, filters, values
# ---------------------------------------------------------------------------------------------

def parse_server(spec, tls, port=None):
    """Turn one ``servers`` entry into a dict with host, port, use_ssl, starttls and url.

    Entries are host names or addresses (``dc1.example.edu``, ``10.0.0.5``, ``[2001:db8::5]``,
    optionally with ``:port``) or URLs (``ldaps://dc1.example.edu:636``, ``ldap://dc1``). A URL
    scheme must agree with ``tls``; a port in the entry wins over ``port``.
    """
    text = (spec or "").strip()
    if not text:
        raise ADError("an entry in servers is empty", kind="config")
    scheme = None
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", text)
    if m:
        scheme, text = m.group(1).lower(), m.group(2).rstrip("/")
        if scheme not in ("ldap", "ldaps"):
            raise ADError("server %r: scheme must be ldap:// or ldaps://" % spec, kind="config")
        if "/" in text:
            raise ADError("server %r: a URL may not carry a DN or other path" % spec, kind="config")
        if scheme == "ldaps" and tls != "ldaps":
            raise ADError("server %r uses ldaps:// but tls is %r" % (spec, tls), kind="config")
        if scheme == "ldap" and tls == "ldaps":
            raise ADError("server %r uses ldap:// but tls is 'ldaps' (use ldaps:// or tls: starttls)" % spec, kind="config")
    host, entry_port = text, None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ADError("server %r: unbalanced [ in an IPv6 address" % spec, kind="config")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ADError("server %r: expected [address]:port" % spec, kind="config")
            entry_port = int(rest[1:])
    elif text.count(":") == 1:
        host, p = text.split(":")
        if not p.isdigit():
            raise ADError("server %r: the port must be a number" % spec, kind="config")
        entry_port = int(p)
    if not host or any(c in host for c in " /\\@"):
        raise ADError("server %r: not a host name or address" % spec, kind="config")
    use_ssl = tls == "ldaps"
    final_port = entry_port or port or (636 if use_ssl else 389)
    if not 0 < final_port < 65536:
        raise ADError("server %r: port %d is out of range" % (spec, final_port), kind="config")
    shown = "[%s]" % host if ":" in host else host
    url = "%s://%s:%d" % ("ldaps" if use_ssl else "ldap", shown, final_port)
    return {"host": host, "port": final_port, "use_ssl": use_ssl, "starttls": tls == "starttls", "url": url}


def check_options(params):
    """Relations between options that argument_spec cannot express; returns a list of messages."""
    problems = []
    tls = params.get("tls") or "ldaps"
    insecure = bool(params.get("insecure"))
    if tls == "none" and not insecure:
        problems.append("tls is 'none' (plain LDAP, the bind password in clear text): set insecure: true to allow it, "
                        "or use tls: ldaps / starttls")
    if params.get("validate_certs") is False and not insecure:
        problems.append("validate_certs is false: set insecure: true to accept unvalidated certificates, "
                        "or give ca_file with the CA that signed the domain controllers' certificates")
    page_size = params.get("page_size")
    if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
        problems.append("page_size is %d: it must be between 1 and %d (AD's MaxPageSize)" % (page_size, MAX_PAGE_SIZE))
    timeout = params.get("timeout")
    if timeout is not None and timeout <= 0:
        problems.append("timeout is %s: it must be a positive number of seconds" % timeout)
    if not params.get("servers"):
        problems.append("servers is empty: give at least one domain controller")
    if not params.get("groups"):
        problems.append("groups is empty: give at least one group (DN or sAMAccountName)")
    for name in params.get("attributes") or []:
        if not _ATTR_TYPE.match(name or ""):
            problems.append("attributes: %r is not an attribute name (options such as ;range= are not allowed)" % name)
    ca_file = params.get("ca_file")
    if ca_file and not os.path.isfile(ca_file):
        problems.append("ca_file %s does not exist or is not a file" % ca_file)
    for group in params.get("groups") or []:
        if not isinstance(group, str) or not group.strip():
            problems.append("groups: empty entry")
        elif "=" in group and not is_dn(group):
            problems.append("groups: %r contains '=' but is not a valid DN (a sAMAccountName cannot contain '=')" % group)
    for key in ("base_dn", "user_base_dn"):
        value = params.get(key)
        if value is not None and not is_dn(value):
            problems.append("%s %r is not a DN (for example DC=ad,DC=example,DC=edu)" % (key, value))
    return problems


def group_filter(name):
    """Filter that finds a group by sAMAccountName."""
    return "(&(objectClass=group)(sAMAccountName=%s))" % escape_filter_value(name)


def nested_groups_filter(group_dn):
    """Every group nested in ``group_dn`` at any depth (the in-chain matching rule)."""
    return "(&(objectClass=group)(memberOf:%s:=%s))" % (IN_CHAIN_RULE, escape_filter_value(group_dn))


def chain_members_filter(group_dn):
    """User accounts that are members of ``group_dn`` at any depth, by the in-chain rule alone."""
    return "(&%s(memberOf:%s:=%s))" % (USER_FILTER, IN_CHAIN_RULE, escape_filter_value(group_dn))


def members_filter(group_dns):
    """User accounts that are direct members of any of ``group_dns``."""
    if not group_dns:
        raise ValueError("no groups")
    terms = "".join("(memberOf=%s)" % escape_filter_value(dn) for dn in group_dns)
    if len(group_dns) > 1:
        terms = "(|%s)" % terms
    return "(&%s%s)" % (USER_FILTER, terms)


def sid_to_string(raw):
    """Binary objectSid to ``S-1-5-21-...``."""
    raw = bytes(raw)
    if len(raw) < 8:
        raise ValueError("SID too short")
    revision, count = raw[0], raw[1]
    if len(raw) != 8 + 4 * count:
        raise ValueError("SID length does not match its sub-authority count")
    authority = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack("<%dI" % count, raw[8:8 + 4 * count])
    return "S-%d-%d%s" % (revision, authority, "".join("-%d" % s for s in subs))


def convert_value(attr, raw):
    """One raw attribute value (bytes) to what the module returns."""
    name = attr.lower()
    raw = bytes(raw)
    if name == "objectsid" or name == "sidhistory":
        return sid_to_string(raw)
    if name == "objectguid" and len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii")
    if name in INTEGER_ATTRIBUTES:
        try:
            return int(text)
        except ValueError:
            return text
    return text


def convert_attributes(raw_attributes, requested):
    """The requested attributes of one entry: a scalar for one value, a list for several (and
    always for known multi-valued attributes), None when the entry has no value. Keys keep the
    spelling of ``requested``; matching is case-insensitive like AD."""
    by_lower = {}
    for name, values in (raw_attributes or {}).items():
        base = name.split(";", 1)[0].lower()
        by_lower.setdefault(base, []).extend(values or [])
    out = {}
    for attr in requested:
        values = [convert_value(attr, v) for v in by_lower.get(attr.lower(), [])]
        if attr.lower() in MULTI_VALUED_ATTRIBUTES:
            out[attr] = values
        elif not values:
            out[attr] = None
        elif len(values) == 1:
            out[attr] = values[0]
        else:
            out[attr] = values
    return out


def is_disabled(raw_attributes):
    for name, values in (raw_attributes or {}).items():
        if name.lower() == "useraccountcontrol" and values:
            try:
                return bool(int(bytes(values[0]).decode("ascii")) & UF_ACCOUNTDISABLE)
            except ValueError:
                return False
    return False


def bind_failure(result):
    """Words for a failed bind from the LDAP result dict (never containing the password)."""
    result = result or {}
    code = result.get("result")
    message = result.get("message") or ""
    if code == 49:
        m = re.search(r"data ([0-9a-fA-F]{3})", message)
        if m and m.group(1).lower() in AD_BIND_SUBCODES:
            return AD_BIND_SUBCODES[m.group(1).lower()]
        return "invalid credentials"
    if code == 8:
        return "the server requires an encrypted connection for simple binds (strongerAuthRequired); use tls: ldaps or starttls"
    if code == 53:
        return "the server is unwilling to perform the bind (%s)" % (message or "unwillingToPerform")
    desc = result.get("description") or "result %s" % code
    return "%s%s" % (desc, (": " + message) if message else "")


def describe_connect_error(exc, ca_file=None, timeout=None, tls_error=None):
    """Words for an exception raised while opening a connection or starting TLS."""
    err = tls_error or exc
    # ldap3 wraps several candidate addresses' errors in one exception: use the last one.
    if ldap3_exceptions is not None and isinstance(exc, ldap3_exceptions.LDAPSocketOpenError) and tls_error is None:
        history = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], list) else None
        if history:
            err = history[-1][0]
    if isinstance(err, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(err):
        detail = getattr(err, "verify_message", None) or _ssl_detail(str(err))
        where = "CA file %s" % ca_file if ca_file else "the system CA store"
        return "TLS certificate verification failed: %s (checked against %s)" % (detail, where), "tls"
    if isinstance(err, ssl.SSLError):
        return "TLS handshake failed: %s" % (getattr(err, "reason", None) or _ssl_detail(str(err))), "tls"
    if isinstance(err, ConnectionRefusedError) or "refused" in str(err).lower():
        return "connection refused", "connect"
    if isinstance(err, (socket.timeout, TimeoutError)) or "timed out" in str(err).lower():
        return "no answer within %ss" % timeout if timeout else "timed out", "connect"
    if isinstance(err, socket.gaierror) or "Name or service not known" in str(err) or "invalid server address" in str(err):
        return "host name does not resolve", "connect"
    if isinstance(err, OSError) and getattr(err, "strerror", None):
        return err.strerror.lower(), "connect"
    if ldap3_exceptions is not None and isinstance(err, ldap3_exceptions.LDAPStartTLSError):
        return "StartTLS failed: %s" % _ssl_detail(str(err)), "tls"
    return _ssl_detail(str(err)) or type(err).__name__, "connect"


def _ssl_detail(text):
    text = re.sub(r"^(socket ssl wrapping error|wrap socket error|socket connection error while opening):\s*", "", text)
    m = re.search(r"certificate verify failed: ([^(]+)", text)
    if m:
        return m.group(1).strip()
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", text).strip()


def redact(text, secret):
    """Remove ``secret`` from ``text`` (belt and braces: Ansible masks no_log values too)."""
    if secret and text:
        return text.replace(secret, "********")
    return text


def redact_details(details, secret):
    """ADError details as JSON-friendly module result keys, with ``secret`` removed."""
    out = {}
    for key, value in (details or {}).items():
        if key == "attempts":
            value = [{"server": s, "error": redact(e, secret)} for s, e in value]
        elif isinstance(value, str):
            value = redact(value, secret)
        elif isinstance(value, (list, tuple)):
            value = [redact(v, secret) if isinstance(v, str) else v for v in value]
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------------
# LDAP work
# ---------------------------------------------------------------------------------------------

def _tls_class():
    class StrictTls(ldap3.Tls):
        """ldap3 Tls with the standard library's certificate and host name checks.

        ldap3 turns SSLContext.check_hostname off and matches names itself; this puts Python's
        checks back (IP addresses in subjectAltName included), requires TLS 1.2 or newer, and
        keeps the original ssl error for the message.
        """

        def __init__(self, server_hostname, ca_file=None, validate=True):
            super(StrictTls, self).__init__(validate=ssl.CERT_REQUIRED if validate else ssl.CERT_NONE,
                                            ca_certs_file=ca_file)
            self.server_hostname = server_hostname
            self.strict_validate = validate
            self.strict_ca_file = ca_file
            self.error = None

        def context(self):
            if self.strict_validate:
                ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.strict_ca_file)
                ctx.check_hostname = True
                ctx.verify_mode = ssl.CERT_REQUIRED
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            return ctx

        def wrap_socket(self, connection, do_handshake=False):
            try:
                connection.socket = self.context().wrap_socket(
                    connection.socket, server_side=False, do_handshake_on_connect=do_handshake,
                    server_hostname=self.server_hostname)
            except Exception as e:
                self.error = e
                raise

    return StrictTls


class Directory(object):
    """A bound, read-only ldap3 connection that counts LDAP round trips."""

    def __init__(self, conn, url, bind_dn, round_trips=0):
        self.conn = conn
        self.url = url
        self.bind_dn = bind_dn
        self.round_trips = round_trips

    def _search(self, base, flt, scope, attributes, **kwargs):
        try:
            self.conn.search(base, flt, scope, attributes=attributes, **kwargs)
        except ldap3_exceptions.LDAPException as e:
            raise ADError("search under %r on %s failed: %s" % (base, self.url, e), kind="ldap")
        self.round_trips += 1
        return self.conn.result or {}

    def base(self, dn, attributes, flt="(objectClass=*)"):
        """Read one entry; None when it does not exist."""
        result = self._search(dn, flt, ldap3.BASE, attributes)
        if result.get("result") == 32:
            return None
        self._check(result, "reading %r" % dn)
        for entry in self.conn.response or []:
            if entry.get("type") == "searchResEntry":
                return entry
        return None

    def paged(self, base, flt, attributes, page_size, scope=None):
        """Yield the entries of a paged search; referrals are skipped, never chased."""
        cookie = None
        scope = ldap3.SUBTREE if scope is None else scope
        while True:
            result = self._search(base, flt, scope, attributes, paged_size=page_size, paged_cookie=cookie)
            if result.get("result") == 32:
                raise ADError("base DN %r does not exist on %s (searching as %r)" % (base, self.url, self.bind_dn),
                              kind="base_dn", missing_base_dn=base)
            self._check(result, "searching %s under %r" % (flt, base))
            for entry in self.conn.response or []:
                if entry.get("type") == "searchResEntry":
                    yield entry
            controls = result.get("controls") or {}
            cookie = ((controls.get(PAGED_RESULTS_OID) or {}).get("value") or {}).get("cookie")
            if not cookie:
                return

    def _check(self, result, what):
        code = result.get("result")
        if code in (0, 10):  # success; referral (a base outside this DC's naming contexts: not chased)
            if code == 10:
                raise ADError("%s on %s: the server sent a referral, which is not chased (%s)"
                              % (what, self.url, ", ".join(result.get("referrals") or [])), kind="ldap")
            return
        detail = (" (%s)" % result["message"]) if result.get("message") else ""
        raise ADError("%s on %s as %r failed: %s%s" % (what, self.url, self.bind_dn, result.get("description"), detail),
                      kind="ldap")

    def close(self):
        try:
            self.conn.unbind()
        except Exception:  # closing is best effort
            pass


def connect(servers, bind_dn, bind_password, tls="ldaps", port=None, ca_file=None, validate_certs=True,
            timeout=10):
    """Bind to the first server that answers; returns ``(Directory, skipped)``.

    ``skipped`` lists ``(url, cause)`` for servers that could not be reached before the one
    used. Connection and TLS errors fail over to the next server; a refused bind does not (the
    next DC would refuse it too, and each try counts towards the account's lockout).
    """
    if not load_ldap3():
        raise ADError("the ldap3 Python library is required", kind="config")
    StrictTls = _tls_class()
    targets = [parse_server(s, tls, port) for s in servers]
    skipped, kinds = [], set()
    for target in targets:
        tls_conf = StrictTls(target["host"], ca_file=ca_file, validate=validate_certs) if tls != "none" else None
        server = ldap3.Server(target["host"], port=target["port"], use_ssl=target["use_ssl"], tls=tls_conf,
                              get_info=ldap3.NONE, connect_timeout=timeout)
        conn = ldap3.Connection(server, user=bind_dn, password=bind_password, auto_bind=ldap3.AUTO_BIND_NONE,
                                read_only=True, auto_referrals=False, auto_range=False,
                                return_empty_attributes=False, receive_timeout=timeout, raise_exceptions=False,
                                client_strategy=ldap3.SYNC)
        round_trips = 0
        shown = target["url"] + (" (StartTLS)" if target["starttls"] else "")
        try:
            conn.open(read_server_info=False)
            if target["starttls"]:
                round_trips += 1
                if not conn.start_tls(read_server_info=False):
                    raise ADError("StartTLS refused: %s" % ((conn.result or {}).get("description") or conn.last_error),
                                  kind="tls")
            round_trips += 1
            bound = conn.bind(read_server_info=False)
        except ADError as e:
            skipped.append((shown, str(e)))
            kinds.add(e.kind)
            _close(conn)
            continue
        except Exception as e:  # socket, TLS and ldap3 communication errors: try the next server
            cause, kind = describe_connect_error(e, ca_file=ca_file, timeout=timeout,
                                                 tls_error=getattr(tls_conf, "error", None))
            skipped.append((shown, redact(cause, bind_password)))
            kinds.add(kind)
            _close(conn)
            continue
        if bound:
            return Directory(conn, shown, bind_dn, round_trips), skipped
        result = conn.result or {}
        _close(conn)
        if result.get("result") in (51, 52):  # busy, unavailable: another DC may do
            skipped.append((shown, bind_failure(result)))
            kinds.add("connect")
            continue
        raise ADError("cannot bind to %s as %r: %s" % (shown, bind_dn, redact(bind_failure(result), bind_password)),
                      kind="auth", server=shown)
    kind = "tls" if kinds == {"tls"} else "connect"
    if len(skipped) == 1:
        message = "cannot connect to %s as %r: %s" % (skipped[0][0], bind_dn, skipped[0][1])
    else:
        message = "cannot connect to any of the %d AD servers as %r: %s" % (
            len(targets), bind_dn, "; ".join("%s: %s" % s for s in skipped))
    raise ADError(message, kind=kind, attempts=skipped)


def _close(conn):
    try:
        conn.unbind()
    except Exception:  # the socket may never have opened
        pass


def find_group(directory, base_dn, spec):
    """Resolve one group given by DN or sAMAccountName; returns its entry, or None."""
    attrs = ["sAMAccountName", "objectClass"]
    if is_dn(spec):
        entry = directory.base(spec, attrs)
        if entry is None:
            return None
        classes = [bytes(v).decode("utf-8", "replace").lower() for v in entry["raw_attributes"].get("objectClass", [])]
        if "group" not in classes:
            raise ADError("%r on %s is not a group (objectClass %s)" % (spec, directory.url, ", ".join(classes) or "?"),
                          kind="not_group", not_a_group=spec)
        return entry
    for entry in directory.paged(base_dn, group_filter(spec), attrs, page_size=2):
        return entry
    return None


def _member(entry, attributes):
    raw = entry.get("raw_attributes") or {}
    member = {"dn": entry["dn"]}
    member.update(convert_attributes(raw, attributes))
    member["disabled"] = is_disabled(raw)
    return member


def resolve_members(directory, base_dn, group_dn, attributes, nested=True, include_disabled=False,
                    page_size=500, method="closure", range_window=None, user_base_dn=None):
    """Members of one (resolved) group. ``method``: ``closure`` (nested groups by the in-chain
    rule, then users by memberOf) or ``chain`` (users by the in-chain rule; the benchmark
    compares them). ``range_window`` asks for bounded ranges (tests exercise continuation with it).
    Users are searched under ``user_base_dn`` (default ``base_dn``), groups under ``base_dn``.
    """
    user_base = user_base_dn or base_dn
    fetch = list(attributes) + (["userAccountControl"] if "useraccountcontrol" not in [a.lower() for a in attributes] else [])
    start = directory.round_trips
    nested_groups, other_members, direct_total = [], [], None
    members = {}
    group_norm = normalize_dn(group_dn)

    def add(entry):
        # The server spells an object's DN the same way every time: a lower-cased DN is key enough
        # (normalize_dn parses, which costs more than the rest of the client's work for 10,000 members).
        key = entry["dn"].lower()
        if key not in members:
            members[key] = _member(entry, attributes)

    if nested and method == "chain":
        for entry in directory.paged(user_base, chain_members_filter(group_dn), fetch, page_size):
            add(entry)
        for entry in directory.paged(base_dn, nested_groups_filter(group_dn), ["1.1"], page_size):
            if normalize_dn(entry["dn"]) != group_norm:
                nested_groups.append(entry["dn"])
    elif nested:
        for entry in directory.paged(base_dn, nested_groups_filter(group_dn), ["1.1"], page_size):
            if normalize_dn(entry["dn"]) != group_norm:  # a group in a cycle is nested in itself
                nested_groups.append(entry["dn"])
        all_groups = [group_dn] + nested_groups
        for i in range(0, len(all_groups), GROUPS_PER_FILTER):
            for entry in directory.paged(user_base, members_filter(all_groups[i:i + GROUPS_PER_FILTER]), fetch, page_size):
                add(entry)
    else:
        member_dns, low = [], 0
        while True:
            entry = directory.base(group_dn, [range_attribute("member", low, range_window)])
            if entry is None:
                raise ADError("group %r disappeared while reading its members" % group_dn, kind="missing_group")
            values, low = take_range(entry.get("raw_attributes"), "member")
            member_dns.extend(bytes(v).decode("utf-8") for v in values)
            if low is None:
                break
        direct_total = len(member_dns)
        for entry in directory.paged(user_base, members_filter([group_dn]), fetch, page_size):
            add(entry)
        other_members = [dn for dn in member_dns if dn.lower() not in members]

    ordered = [members[k] for k in sorted(members)]
    disabled = [m for m in ordered if m["disabled"]]
    if not include_disabled:
        ordered = [m for m in ordered if not m["disabled"]]
    result = {
        "members": ordered,
        "member_count": len(ordered),
        "disabled_count": len(disabled),
        "nested_groups": sorted(nested_groups, key=normalize_dn),
        "other_members": other_members,
        "round_trips": directory.round_trips - start,
    }
    if direct_total is not None:
        result["direct_member_values"] = direct_total
    return result


def lookup(params, method="closure", range_window=None):
    """Everything ad_group_info returns (minus ``changed``), from the module's parameters."""
    problems = check_options(params)
    if problems:
        raise ADError("; ".join(problems), kind="config")
    attributes = list(params.get("attributes") or DEFAULT_ATTRIBUTES)
    page_size = params.get("page_size") or 500
    base_dn = params["base_dn"]
    directory, skipped = connect(
        params["servers"], params["bind_dn"], params["bind_password"], tls=params.get("tls") or "ldaps",
        port=params.get("port"), ca_file=params.get("ca_file"), validate_certs=params.get("validate_certs", True),
        timeout=params.get("timeout") or 10)
    try:
        for key in ("base_dn", "user_base_dn"):
            dn = params.get(key)
            if dn and (key == "base_dn" or not dn_equal(dn, base_dn)) and directory.base(dn, ["1.1"]) is None:
                raise ADError("%s %r does not exist on %s (searching as %r)" % (
                    key.replace("_", " ").replace("dn", "DN"), dn, directory.url, directory.bind_dn),
                    kind="base_dn", missing_base_dn=dn)
        resolved, missing = [], []
        for spec in params["groups"]:
            start = directory.round_trips
            entry = find_group(directory, base_dn, spec)
            if entry is None:
                missing.append(spec)
            else:
                resolved.append((spec, entry, directory.round_trips - start))
        if missing:
            where = " under %r" % base_dn if any(not is_dn(m) for m in missing) else ""
            raise ADError("AD group(s) not found%s on %s (searching as %r): %s" % (
                where, directory.url, directory.bind_dn, ", ".join(repr(m) for m in missing)),
                kind="missing_group", missing_groups=missing)
        groups, union = [], {}
        for spec, entry, resolve_trips in resolved:
            info = resolve_members(directory, base_dn, entry["dn"], attributes, nested=params.get("nested", True),
                                   include_disabled=params.get("include_disabled", False), page_size=page_size,
                                   method=method, range_window=range_window, user_base_dn=params.get("user_base_dn"))
            sam = convert_attributes(entry.get("raw_attributes"), ["sAMAccountName"])["sAMAccountName"]
            group = {"name": spec, "dn": entry["dn"], "sAMAccountName": sam}
            group.update(info)
            group["round_trips"] += resolve_trips
            groups.append(group)
            for m in info["members"]:
                union.setdefault(m["dn"].lower(), m)
        return {
            "server": directory.url,
            "skipped_servers": [{"server": s, "error": e} for s, e in skipped],
            "groups": groups,
            "members": [union[k] for k in sorted(union)],
            "round_trips": directory.round_trips,
        }
    finally:
        directory.close()
