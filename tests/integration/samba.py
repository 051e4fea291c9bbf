# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seeding helpers for the Samba AD DC test container (tests/images/samba).

Used by the ``samba_ad`` fixture (tests/integration/conftest.py), the lab seed
(tests/harness/seed_ad.py) and the AD benchmark (bench/ad_bench.py). Everything works on a bound
ldap3 connection, normally the one ``connect()`` (or ``samba_ad.connect()``) returns: LDAPS with
the certificate validated, bound as the domain administrator.

Interface (stable, other tests depend on it)::

    conn = connect(host, port, bind_dn, password, ca_file)       # LDAPS, ldap3 Connection
    ou = ensure_ou(conn, "OU=People,DC=juno,DC=test")            # creates missing parent OUs too
    dn = create_user(conn, ou, "alice", uid_number=10001, gid_number=10000,
                     mail="alice@juno.test", upn="alice@juno.test",
                     password="...", disabled=False, cn="Alice Example")
    dns = add_users(conn, [dict(ou_dn=ou, sam="u1", ...), ...])  # bulk, no per-user existence check
    g = create_group(conn, "OU=Groups,DC=juno,DC=test", "ChemEng-Year1", gid_number=20001)
    add_members(conn, g, [dn, other_group_dn])                   # idempotent, in batches
    disable_user(conn, dn); enable_user(conn, dn)
    set_password(conn, dn, "...")
    find_dn(conn, base_dn, "alice")                              # by sAMAccountName, or None
    direct_members(conn, g)                                      # member DNs (ranged retrieval)
    delete_tree(conn, ou)                                        # removes an OU and all below it

Every ``create_*``/``ensure_*`` function is idempotent: an object that exists (same DN, or the
same sAMAccountName) is left as it is and its DN returned. Errors raise ``SeedError`` with the
server's message.
"""

import ssl

from ldap3 import BASE, LEVEL, MODIFY_ADD, MODIFY_REPLACE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

# userAccountControl bits (MS-ADTS 2.2.16)
UF_ACCOUNTDISABLE = 0x0002
UF_PASSWD_NOTREQD = 0x0020
UF_NORMAL_ACCOUNT = 0x0200
UF_DONT_EXPIRE_PASSWD = 0x10000

# groupType: security group with the scope
GROUP_TYPES = {
    "global": -2147483646,
    "domainlocal": -2147483644,
    "universal": -2147483640,
}

USER_CLASSES = ["top", "person", "organizationalPerson", "user"]


class SeedError(RuntimeError):
    """An LDAP operation the seeding asked for failed."""


def connect(host, port, bind_dn, password, ca_file=None, tls="ldaps", timeout=10):
    """Return an ldap3 Connection bound to the DC.

    ``tls``: ``ldaps`` (default; ``port`` is the LDAPS port) or ``starttls`` (``port`` is the
    plain LDAP port). The server certificate is validated against ``ca_file`` (or the system CAs).
    """
    tls_conf = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)
    server = Server(host, port=int(port), use_ssl=(tls == "ldaps"), tls=tls_conf, get_info=NONE,
                    connect_timeout=timeout)
    conn = Connection(server, user=bind_dn, password=password, auto_referrals=False, auto_range=False,
                      return_empty_attributes=False, receive_timeout=timeout, raise_exceptions=False)
    conn.open()
    if tls == "starttls" and not conn.start_tls():
        raise SeedError("StartTLS with %s:%s failed: %s" % (host, port, conn.result))
    if not conn.bind():
        raise SeedError("cannot bind to %s:%s as %r: %s" % (host, port, bind_dn, conn.result.get("message")))
    return conn


def _check(conn, what, ok=(0,)):
    result = conn.result or {}
    if result.get("result") not in ok:
        raise SeedError("%s failed: %s (%s)" % (what, result.get("description"), result.get("message")))
    return result.get("result")


def _exists(conn, dn):
    conn.search(dn, "(objectClass=*)", BASE, attributes=["1.1"])
    if conn.result["result"] == 32:  # noSuchObject
        return False
    _check(conn, "reading %s" % dn)
    return True


def parent_dn(dn):
    """The DN of the parent of ``dn`` (escaping kept)."""
    parts = parse_dn(dn, escape=True)
    return ",".join("%s=%s" % (part[0], part[1]) for part in parts[1:])


def ensure_ou(conn, dn):
    """Create the organizational unit ``dn`` (and missing parent OUs); return ``dn``."""
    if _exists(conn, dn):
        return dn
    parent = parent_dn(dn)
    if parent.upper().startswith("OU="):
        ensure_ou(conn, parent)
    conn.add(dn, "organizationalUnit")
    _check(conn, "creating OU %s" % dn, ok=(0, 68))  # 68: entryAlreadyExists (a concurrent run)
    return dn


def find_dn(conn, base_dn, sam):
    """DN of the object whose sAMAccountName is ``sam`` under ``base_dn``, or None."""
    conn.search(base_dn, "(sAMAccountName=%s)" % escape_filter_chars(sam), SUBTREE, attributes=["1.1"])
    _check(conn, "looking up %s" % sam)
    for entry in conn.response:
        if entry.get("type") == "searchResEntry":
            return entry["dn"]
    return None


def user_entry(sam, cn=None, uid_number=None, gid_number=None, mail=None, upn=None, password=None,
               disabled=False, given_name=None, surname=None, display_name=None, extra=None):
    """(rdn, attributes) of a user object as ``create_user``/``add_users`` add it."""
    cn = cn or sam
    uac = UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD
    if password is None:
        uac |= UF_PASSWD_NOTREQD
    if disabled:
        uac |= UF_ACCOUNTDISABLE
    attrs = {"sAMAccountName": sam, "cn": cn, "userAccountControl": uac, "displayName": display_name or cn}
    for key, value in (("uidNumber", uid_number), ("gidNumber", gid_number), ("mail", mail),
                       ("userPrincipalName", upn), ("givenName", given_name), ("sn", surname)):
        if value is not None:
            attrs[key] = value
    if uid_number is not None:
        attrs.setdefault("unixHomeDirectory", "/home/%s" % sam)
        attrs.setdefault("loginShell", "/bin/bash")
    if password is not None:
        attrs["unicodePwd"] = ('"%s"' % password).encode("utf-16-le")
    attrs.update(extra or {})
    return "CN=%s" % escape_rdn(cn), attrs


def create_user(conn, ou_dn, sam, **kwargs):
    """Create the user ``sam`` in ``ou_dn`` unless an account with that sAMAccountName exists.

    Keyword arguments: cn (default ``sam``; may contain commas and parentheses), uid_number,
    gid_number, mail, upn (userPrincipalName), password (None: an enabled account that needs no
    password, PASSWD_NOTREQD), disabled, given_name, surname, display_name, extra (dict of more
    attributes). A password needs the LDAPS/StartTLS connection ``connect()`` makes.
    Returns the user's DN (the existing one when it was there).
    """
    existing = find_dn(conn, ou_dn, sam)
    if existing:
        return existing
    rdn, attrs = user_entry(sam, **kwargs)
    dn = "%s,%s" % (rdn, ou_dn)
    conn.add(dn, USER_CLASSES, attrs)
    _check(conn, "creating user %s" % dn)
    return dn


def add_users(conn, users):
    """Add many users fast (one LDAP add each, no existence check); return their DNs.

    ``users``: iterable of dicts with ``ou_dn``, ``sam`` and the keyword arguments of
    ``create_user``. An entry that exists already is skipped (its DN is still returned).
    About 4 ms of the DC's CPU per user, so 10,000 users take under a minute on an idle core
    (ldbadd inside the container costs four times as much; ldap3's ASYNC pipelining over TLS
    proved unreliable, reading and writing one TLS socket from two threads).
    """
    dns = []
    for spec in users:
        spec = dict(spec)
        ou_dn = spec.pop("ou_dn")
        rdn, attrs = user_entry(spec.pop("sam"), **spec)
        dn = "%s,%s" % (rdn, ou_dn)
        conn.add(dn, USER_CLASSES, attrs)
        _check(conn, "creating user %s" % dn, ok=(0, 68))
        dns.append(dn)
    return dns


def create_group(conn, ou_dn, name, gid_number=None, description=None, scope="global", cn=None):
    """Create the security group ``name`` (sAMAccountName; CN = ``cn`` or ``name``) in ``ou_dn``.

    ``scope``: global (default), domainlocal or universal. Returns the group's DN (the existing
    one when a group with that sAMAccountName exists).
    """
    existing = find_dn(conn, ou_dn, name)
    if existing:
        return existing
    dn = "CN=%s,%s" % (escape_rdn(cn or name), ou_dn)
    attrs = {"sAMAccountName": name, "groupType": GROUP_TYPES[scope]}
    if gid_number is not None:
        attrs["gidNumber"] = gid_number
    if description:
        attrs["description"] = description
    conn.add(dn, ["top", "group"], attrs)
    _check(conn, "creating group %s" % dn)
    return dn


def direct_members(conn, group_dn):
    """The DNs in the group's ``member`` attribute, read with ranged retrieval."""
    members, low = [], 0
    while True:
        conn.search(group_dn, "(objectClass=*)", BASE, attributes=["member;range=%d-*" % low])
        _check(conn, "reading members of %s" % group_dn)
        attrs = conn.response[0]["raw_attributes"] if conn.response else {}
        more = None
        for name, values in attrs.items():
            base, rng = (name.split(";", 1) + [""])[:2]
            if base.lower() != "member":
                continue
            members.extend(v.decode("utf-8") for v in values or [])
            if rng.lower().startswith("range="):
                high = rng.split("-", 1)[1]
                if high != "*":
                    more = int(high) + 1
        if more is None:
            return members
        low = more


def add_members(conn, group_dn, member_dns, batch=1000):
    """Add ``member_dns`` (users or groups) to ``group_dn``; DNs already members are skipped.

    Returns the number of members added.
    """
    have = {m.lower() for m in direct_members(conn, group_dn)}
    todo, seen = [], set()
    for dn in member_dns:
        if dn.lower() not in have and dn.lower() not in seen:
            todo.append(dn)
            seen.add(dn.lower())
    for start in range(0, len(todo), batch):
        conn.modify(group_dn, {"member": [(MODIFY_ADD, todo[start:start + batch])]})
        _check(conn, "adding %d members to %s" % (len(todo[start:start + batch]), group_dn))
    return len(todo)


def _uac(conn, dn):
    conn.search(dn, "(objectClass=*)", BASE, attributes=["userAccountControl"])
    _check(conn, "reading %s" % dn)
    return int(conn.response[0]["raw_attributes"]["userAccountControl"][0])


def disable_user(conn, dn):
    """Set ACCOUNTDISABLE on the account ``dn`` (no change when it is disabled)."""
    uac = _uac(conn, dn)
    if not uac & UF_ACCOUNTDISABLE:
        conn.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, [uac | UF_ACCOUNTDISABLE])]})
        _check(conn, "disabling %s" % dn)


def enable_user(conn, dn):
    """Clear ACCOUNTDISABLE on the account ``dn``."""
    uac = _uac(conn, dn)
    if uac & UF_ACCOUNTDISABLE:
        conn.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, [uac & ~UF_ACCOUNTDISABLE])]})
        _check(conn, "enabling %s" % dn)


def set_password(conn, dn, password):
    """Set the account's password (needs an encrypted connection) and clear PASSWD_NOTREQD."""
    conn.modify(dn, {"unicodePwd": [(MODIFY_REPLACE, [('"%s"' % password).encode("utf-16-le")])]})
    _check(conn, "setting the password of %s" % dn)
    uac = _uac(conn, dn)
    if uac & UF_PASSWD_NOTREQD:
        conn.modify(dn, {"userAccountControl": [(MODIFY_REPLACE, [uac & ~UF_PASSWD_NOTREQD])]})
        _check(conn, "requiring a password for %s" % dn)


def delete_tree(conn, dn):
    """Delete ``dn`` and everything below it (children first). No error when it is absent."""
    if not _exists(conn, dn):
        return
    conn.search(dn, "(objectClass=*)", LEVEL, attributes=["1.1"])
    _check(conn, "listing %s" % dn)
    children = [e["dn"] for e in conn.response if e.get("type") == "searchResEntry"]
    for child in children:
        delete_tree(conn, child)
    conn.delete(dn)
    _check(conn, "deleting %s" % dn, ok=(0, 32))
