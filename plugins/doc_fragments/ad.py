# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options shared by the juno.hub Active Directory modules. They have the names,
    # types and defaults of the keys of the inventory's juno_ad (roles/preflight/meta/
    # argument_specs.yml), so a role passes juno_ad through key by key. The Python side is
    # connection_argument_spec() in plugins/module_utils/_ad.py.
    DOCUMENTATION = r"""
options:
  servers:
    description:
      - Domain controllers, tried in order. When one cannot be reached (connection refused, no
        answer within O(timeout), TLS handshake or certificate failure) the next is tried; a
        refused bind is not retried elsewhere, so that a wrong password does not count towards
        the account's lockout once per domain controller.
      - Each entry is a host name or address (V(dc1.ad.example.edu), V(10.0.0.5),
        V([2001:db8::5])), optionally with V(:port), or a URL (V(ldaps://dc1.ad.example.edu:636),
        V(ldap://dc1.ad.example.edu)) whose scheme agrees with O(tls).
    type: list
    elements: str
    required: true
  port:
    description:
      - Port for entries of O(servers) that do not name one.
      - Defaults to 636 with O(tls=ldaps), 389 otherwise.
    type: int
  tls:
    description:
      - How the connection is protected.
      - V(ldaps) is TLS from the first byte (port 636); V(starttls) upgrades a plain LDAP
        connection (port 389) with the StartTLS extended operation before binding.
      - V(none) sends the bind password in clear text and needs O(insecure=true).
    type: str
    choices: [ldaps, starttls, none]
    default: ldaps
  insecure:
    description:
      - Allow O(tls=none) or O(validate_certs=false). Never for production directories.
    type: bool
    default: false
  ca_file:
    description:
      - PEM file with the CA certificate(s) that signed the domain controllers' certificates,
        on the host that runs the module. Without it the system CA store is used.
    type: path
  validate_certs:
    description:
      - Check the domain controllers' certificates (chain to O(ca_file) and host name or address
        in the certificate's subjectAltName). V(false) needs O(insecure=true).
    type: bool
    default: true
  bind_dn:
    description:
      - Account the module binds as, a DN (V(CN=svc-juno,OU=Service Accounts,DC=ad,DC=example,DC=edu)),
        or a userPrincipalName (V(svc-juno@ad.example.edu)).
      - A normal user account is enough; it needs read access to the groups and users.
    type: str
    required: true
  bind_password:
    description:
      - Password of O(bind_dn). Keep it in Ansible Vault. It never appears in results or messages.
    type: str
    required: true
  base_dn:
    description:
      - Search base of the domain (V(DC=ad,DC=example,DC=edu)). Groups given by name and nested
        groups are searched below it; it must exist.
    type: str
    required: true
  user_base_dn:
    description:
      - Where user accounts are searched; defaults to O(base_dn). Members outside it are not returned.
    type: str
  timeout:
    description:
      - Seconds to wait for a TCP connection and for each LDAP response (each page of a search).
    type: int
    default: 10
requirements:
  - ldap3 (Python library, on the host that runs the module)
notes:
  - Referrals (to other partitions or domains) are never chased.
"""
