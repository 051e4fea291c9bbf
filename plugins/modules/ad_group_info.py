#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ad_group_info
short_description: Resolve Active Directory groups, nested and large, to their user accounts
version_added: 0.1.0
author:
  - juno.hub developers (@juno-hub)
description:
  - Reads, never writes. Given one or more Active Directory groups, returns the user accounts
    that are members, directly or (by default) through nested groups, with the attributes asked
    for, so that hub roles can set allowed users and admins and map users to POSIX ids.
  - Nested membership is resolved by the directory, not by walking the tree from the client. One
    search with the in-chain matching rule (C(1.2.840.113556.1.4.1941)) finds every group nested
    in the group at any depth, and one paged search returns the accounts that are members of the
    group or of any of those groups. Groups that contain each other therefore cannot loop, and a
    group of many thousand members costs a few dozen LDAP round trips, not one per member.
  - With O(nested=false) the group's direct C(member) values are read with ranged retrieval
    (C(member;range=N-*)), so groups larger than the server's MaxValRange (1500 on Windows) are
    complete.
  - Disabled accounts (C(userAccountControl) with ACCOUNTDISABLE) are left out unless
    O(include_disabled=true). Only user accounts (C(sAMAccountType=805306368), so not computers,
    contacts or groups) are members in the result; nested groups and other members are reported apart.
  - Membership through an account's primary group (C(primaryGroupID), normally Domain Users) is
    not stored in C(member) and is not returned.
extends_documentation_fragment:
  - juno.hub.ad
options:
  groups:
    description:
      - Groups to resolve, each by distinguished name (V(CN=ChemEng-Students,OU=Groups,DC=ad,DC=example,DC=edu))
        or by sAMAccountName (V(ChemEng-Students)), searched below O(base_dn).
      - All are looked up before any members are read; when some do not exist the module fails
        and lists every missing one.
    type: list
    elements: str
    required: true
  nested:
    description:
      - Include members of nested groups, at any depth.
    type: bool
    default: true
  attributes:
    description:
      - Attributes returned for each member besides its C(dn).
      - A single value is returned as a scalar, several as a list, none as V(null); C(uidNumber),
        C(gidNumber) and other integer attributes as integers, C(objectSid) as C(S-1-5-...),
        C(objectGUID) as a UUID, other binary values base64-encoded.
    type: list
    elements: str
    default: [sAMAccountName, userPrincipalName, mail, uidNumber, gidNumber, displayName]
  include_disabled:
    description:
      - Also return disabled accounts (with C(disabled=true) in RV(groups[].members)).
    type: bool
    default: false
  page_size:
    description:
      - Entries per page of the paged searches (1 to 1000; Windows domain controllers return at
        most MaxPageSize, 1000 by default, per page).
    type: int
    default: 500
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no difference to show.
notes:
  - The bind account needs nothing but read access (any domain user can read group membership by
    default).
  - Results are sorted by DN, so that templates built from them do not change between runs.
seealso:
  - name: juno.hub AD module documentation
    description: Examples, round-trip counts and how failover and errors behave.
    link: https://example.invalid/juno/hub/tree/main/docs/modules/ad_group_info.md
"""

EXAMPLES = r"""
- name: Resolve the hub's allowed and admin groups
  juno.hub.ad_group_info:
    servers: "{{ juno_ad.servers }}"
    tls: "{{ juno_ad.tls }}"
    ca_file: "{{ juno_ad.ca_file }}"
    bind_dn: "{{ juno_ad.bind_dn }}"
    bind_password: "{{ juno_ad.bind_password }}"
    base_dn: "{{ juno_ad.base_dn }}"
    groups:
      - ChemEng-Students
      - CN=PHYS-2210,OU=Courses,OU=Groups,DC=ad,DC=example,DC=edu
  delegate_to: localhost
  run_once: true
  register: __hub_ad_groups

- name: Allowed users (sAMAccountName of every effective member)
  ansible.builtin.set_fact:
    __hub_allowed_users: "{{ __hub_ad_groups.members | map(attribute='sAMAccountName') | list }}"

- name: Direct members only, with POSIX ids, over StartTLS
  juno.hub.ad_group_info:
    servers: [dc1.ad.example.edu, dc2.ad.example.edu]
    tls: starttls
    ca_file: /etc/pki/ad-ca.pem
    bind_dn: svc-juno@ad.example.edu
    bind_password: "{{ vault_juno_ad_bind_password }}"
    base_dn: DC=ad,DC=example,DC=edu
    groups: [Physics-TAs]
    nested: false
    attributes: [sAMAccountName, uidNumber, gidNumber, unixHomeDirectory]
  register: __tas
"""

RETURN = r"""
server:
  description: The domain controller that answered (URL; C((StartTLS)) when upgraded).
  returned: success
  type: str
  sample: ldaps://dc1.ad.example.edu:636
skipped_servers:
  description: Domain controllers tried before RV(server) and why they were passed over.
  returned: success
  type: list
  elements: dict
  sample: [{server: "ldaps://dc0.ad.example.edu:636", error: "connection refused"}]
round_trips:
  description: LDAP requests that waited for a response, in total (StartTLS, bind, base DN check, every page).
  returned: success
  type: int
  sample: 24
members:
  description: Every effective member of any of the groups, once, sorted by DN (same form as RV(groups[].members)).
  returned: success
  type: list
  elements: dict
  sample:
    - dn: CN=Alice Example,OU=People,DC=ad,DC=example,DC=edu
      sAMAccountName: alice
      userPrincipalName: alice@ad.example.edu
      mail: alice@example.edu
      uidNumber: 10001
      gidNumber: 10000
      displayName: Alice Example
      disabled: false
groups:
  description: One entry per entry of O(groups), in the same order.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The group as given in O(groups).
      type: str
      sample: ChemEng-Students
    dn:
      description: The group's distinguished name.
      type: str
      sample: CN=ChemEng-Students,OU=Groups,DC=ad,DC=example,DC=edu
    sAMAccountName:
      description: The group's sAMAccountName.
      type: str
      sample: ChemEng-Students
    members:
      description:
        - Effective members (user accounts), sorted by DN; each has C(dn), the O(attributes) and
          C(disabled).
      type: list
      elements: dict
    member_count:
      description: Number of RV(groups[].members).
      type: int
      sample: 2
    disabled_count:
      description: Disabled accounts among the members (left out of RV(groups[].members) unless O(include_disabled=true)).
      type: int
      sample: 1
    nested_groups:
      description: DNs of the groups nested in this one at any depth (O(nested=true)).
      type: list
      elements: str
      sample: [CN=ChemEng-Year1,OU=Groups,DC=ad,DC=example,DC=edu]
    other_members:
      description: Direct member DNs that are not user accounts below the user base, such as groups,
        computers and contacts (O(nested=false)).
      type: list
      elements: str
    direct_member_values:
      description: Number of values of the group's C(member) attribute (O(nested=false)).
      type: int
      returned: when O(nested=false)
    round_trips:
      description: LDAP round trips spent on this group (finding it and reading its members).
      type: int
      sample: 3
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.juno.hub.plugins.module_utils import _ad


def argument_spec():
    spec = _ad.connection_argument_spec()
    spec.update(
        groups=dict(type="list", elements="str", required=True),
        nested=dict(type="bool", default=True),
        attributes=dict(type="list", elements="str", default=list(_ad.DEFAULT_ATTRIBUTES)),
        include_disabled=dict(type="bool", default=False),
        page_size=dict(type="int", default=500),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)

    if not _ad.load_ldap3():
        module.fail_json(msg=missing_required_lib("ldap3"), exception=_ad.LDAP3_IMPORT_ERROR)

    password = module.params["bind_password"]
    error = None
    try:
        result = _ad.lookup(module.params)
    except _ad.ADError as e:
        error = e
    if error is not None:
        # Outside the except block: an expected failure, reported without a traceback.
        module.fail_json(msg=_ad.redact(str(error), password), error_kind=error.kind,
                         **_ad.redact_details(error.details, password))

    for skipped in result["skipped_servers"]:
        module.warn("AD server %s was passed over: %s" % (skipped["server"], skipped["error"]))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
