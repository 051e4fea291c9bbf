#!/usr/bin/env python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seed the lab's Samba AD DC with the users and groups that inventories/example names.

    python tests/harness/seed_ad.py --host 127.0.0.1 --port <ldaps port> --ca <ca.pem> \\
        --bind-dn CN=Administrator,CN=Users,DC=ad,DC=example,DC=edu --password <admin password> \\
        --base-dn DC=ad,DC=example,DC=edu --svc-password <svc-juno password> [--user-password <pw>]

Idempotent: objects that exist are kept (and memberships only added), so a rerun changes
nothing and says so. What it makes (below --base-dn):

  OU=People            alice, bob, carol, dave (disabled), erin (CN "Doe, Erin (Chem)")
                       uidNumber 10001-10005, gidNumber 10000, mail/userPrincipalName @<realm>
  OU=Service Accounts  svc-juno (the bind account of inventories/example, --svc-password)
  OU=Groups            ChemEng-Students > ChemEng-Year1 > alice, erin
                       ChemEng-Staff > carol;  ChemEng-Hub-Admins > carol;  Physics-TAs > carol
  OU=Courses,OU=Groups PHYS-2210 > bob

Passwords: svc-juno gets --svc-password; with --user-password the five users get that one (so
they can log in to a hub). An existing account's password is set again only when a bind with the
given password fails, so a rerun writes nothing. Prints one line per object and a summary;
--json prints the DNs as JSON instead.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
import samba  # noqa: E402  tests/integration/samba.py

USERS = [
    # sam, cn (= displayName), givenName, sn, uidNumber, disabled
    ("alice", "Alice Example", "Alice", "Example", 10001, False),
    ("bob", "Bob Example", "Bob", "Example", 10002, False),
    ("carol", "Carol Example", "Carol", "Example", 10003, False),
    ("dave", "Dave Example", "Dave", "Example", 10004, True),
    ("erin", "Doe, Erin (Chem)", "Erin", "Doe", 10005, False),
]
GID = 10000
# name, OU below OU=Groups ("" = OU=Groups itself), gidNumber, members (users or groups by name)
GROUPS = [
    ("ChemEng-Year1", "", 20002, ["alice", "erin"]),
    ("ChemEng-Students", "", 20001, ["ChemEng-Year1"]),
    ("ChemEng-Staff", "", 20003, ["carol"]),
    ("ChemEng-Hub-Admins", "", 20004, ["carol"]),
    ("PHYS-2210", "OU=Courses", 20101, ["bob"]),
    ("Physics-TAs", "", 20102, ["carol"]),
]


def realm_of(base_dn):
    return ".".join(part[1] for part in _dn_parts(base_dn) if part[0].lower() == "dc")


def _dn_parts(dn):
    from ldap3.utils.dn import parse_dn
    return parse_dn(dn)


class Seeder:
    def __init__(self, conn, base_dn, quiet=False, can_bind=None):
        self.conn = conn
        self.base_dn = base_dn
        self.quiet = quiet
        self.can_bind = can_bind
        self.created = 0
        self.kept = 0

    def say(self, what, dn, created, verb="created"):
        if created:
            self.created += 1
        else:
            self.kept += 1
        if not self.quiet:
            print("%-8s %s %s" % (verb if created else "ok", what, dn))

    def ou(self, dn):
        existed = samba._exists(self.conn, dn)
        samba.ensure_ou(self.conn, dn)
        self.say("OU", dn, not existed)
        return dn

    def user(self, ou, sam, realm, password=None, **kw):
        dn = samba.find_dn(self.conn, self.base_dn, sam)
        if dn:
            self.say("user", dn, False)
            if password and self.can_bind and not self.can_bind(dn, password):
                samba.set_password(self.conn, dn, password)
                self.say("password", dn, True, verb="changed")
        else:
            dn = samba.create_user(self.conn, ou, sam, mail="%s@%s" % (sam, realm), upn="%s@%s" % (sam, realm),
                                   password=password, **kw)
            self.say("user", dn, True)
        return dn

    def group(self, ou, name, gid):
        dn = samba.find_dn(self.conn, self.base_dn, name)
        if dn:
            self.say("group", dn, False)
        else:
            dn = samba.create_group(self.conn, ou, name, gid_number=gid)
            self.say("group", dn, True)
        return dn

    def members(self, group_dn, member_dns):
        added = samba.add_members(self.conn, group_dn, member_dns)
        if added:
            self.created += added
        else:
            self.kept += len(member_dns)
        if not self.quiet:
            print("%-8s members of %s (%d added)" % ("changed" if added else "ok", group_dn, added))


def seed(conn, base_dn, svc_password, user_password=None, quiet=False, can_bind=None):
    """Create what the docstring lists; returns (seeder, {name: dn}).

    ``can_bind(dn, password)`` tells whether an existing account already has the password (None:
    passwords of existing accounts are left alone).
    """
    s = Seeder(conn, base_dn, quiet=quiet, can_bind=can_bind)
    realm = realm_of(base_dn)
    people = s.ou("OU=People," + base_dn)
    service = s.ou("OU=Service Accounts," + base_dn)
    groups = s.ou("OU=Groups," + base_dn)
    courses = s.ou("OU=Courses," + groups)
    dns = {}
    for sam, cn, given, sn, uid, disabled in USERS:
        dn = s.user(people, sam, realm, password=user_password if not disabled else None, cn=cn, uid_number=uid,
                    gid_number=GID, given_name=given, surname=sn, disabled=disabled)
        if disabled:
            samba.disable_user(conn, dn)
        dns[sam] = dn
    dns["svc-juno"] = s.user(service, "svc-juno", realm, password=svc_password, cn="svc-juno",
                             display_name="juno.hub service account")
    for name, sub, gid, dummy in GROUPS:
        dns[name] = s.group(courses if sub else groups, name, gid)
    for group in GROUPS:
        name, members = group[0], group[3]
        s.members(dns[name], [dns[m] for m in members])
    return s, dns


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="LDAPS port")
    p.add_argument("--ca", required=True, help="PEM of the CA that signed the DC's certificate")
    p.add_argument("--bind-dn", required=True, help="an administrator, e.g. CN=Administrator,CN=Users,<base DN>")
    p.add_argument("--password", default=os.environ.get("JUNO_AD_ADMIN_PASSWORD"),
                   help="its password (or JUNO_AD_ADMIN_PASSWORD)")
    p.add_argument("--base-dn", required=True)
    p.add_argument("--svc-password", default=os.environ.get("JUNO_AD_SVC_PASSWORD"),
                   help="password for svc-juno (or JUNO_AD_SVC_PASSWORD)")
    p.add_argument("--user-password", default=os.environ.get("JUNO_AD_USER_PASSWORD"),
                   help="password for the lab users when they are created (or JUNO_AD_USER_PASSWORD)")
    p.add_argument("--json", action="store_true", help="print {name: DN} as JSON")
    args = p.parse_args(argv)
    if not args.password or not args.svc_password:
        p.error("--password and --svc-password are required (or JUNO_AD_ADMIN_PASSWORD / JUNO_AD_SVC_PASSWORD)")

    def can_bind(dn, password):
        try:
            samba.connect(args.host, args.port, dn, password, args.ca).unbind()
            return True
        except samba.SeedError:
            return False

    try:
        conn = samba.connect(args.host, args.port, args.bind_dn, args.password, args.ca)
        seeder, dns = seed(conn, args.base_dn, args.svc_password, args.user_password, quiet=args.json,
                           can_bind=can_bind)
        conn.unbind()
    except samba.SeedError as e:
        print("seed_ad: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(dns, indent=2, sort_keys=True))
    else:
        print("seed_ad: %d created or changed, %d unchanged" % (seeder.created, seeder.kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
