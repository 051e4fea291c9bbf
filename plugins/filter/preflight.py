# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight: parsers of the structured strings an inventory holds, and the one report.

Structured strings are checked by parsing them, not by a pattern: a distinguished name with the
DN parser of the ``ad_group_info`` module (``module_utils/_ad.py``), a URL with
``urllib.parse``, a Kubernetes quantity and a Go duration with the small parsers below (the
grammars of ``k8s.io/apimachinery/pkg/api/resource`` and of Go's ``time.ParseDuration``).

Every message names its place in one way: ``hub <name>: ...`` for a hub (a profile by its
display name and slug), ``node <inventory name>: ...`` for a host, anything else is the site.
``preflight_report`` groups the problems of every host by that place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import Decimal, InvalidOperation

from ansible.errors import AnsibleFilterError

try:  # the collection's own DN parser (no dependency)
    from ansible_collections.juno.hub.plugins.module_utils._ad import parse_dn as _parse_dn
except ImportError:  # pragma: no cover - the collection is always importable where filters run
    _parse_dn = None

try:
    from urllib.parse import urlsplit
except ImportError:  # pragma: no cover - Python 2
    from urlparse import urlsplit

# k8s.io/apimachinery resource.Quantity: <signedNumber><suffix>, suffix binary SI, decimal SI or
# a decimal exponent (e3, E-2).
BINARY_SI = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
DECIMAL_SI = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10) ** 3,
              "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18}
GO_UNITS = {"ns": Decimal("1e-9"), "us": Decimal("1e-6"), "\u00b5s": Decimal("1e-6"), "\u03bcs": Decimal("1e-6"), "ms": Decimal("1e-3"),
            "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_NUMBER = re.compile(r"[0-9]*\.?[0-9]*")
_PLACE = re.compile(r"^(hub|node) ([^\s:]+): (.*)$", re.S)


def netaddr_module(user):
    """netaddr, for the filter ``user`` that needs it; imported here, when a filter runs, not when
    the filter files load: Ansible imports every filter file of the collection again in the worker
    process of every task that uses one of them."""
    try:
        import netaddr
    except ImportError:  # pragma: no cover - netaddr is in the collection's requirements
        raise AnsibleFilterError("%s needs the Python library netaddr on the control node (pip install netaddr)" % user)
    return netaddr


def parse_quantity(value):
    """The value of a Kubernetes quantity as a Decimal (``1Gi`` -> 1073741824, ``250m`` -> 0.25).

    Raises ValueError with the reason when ``value`` is not one."""
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number with a unit")
    text = str(value).strip() if isinstance(value, (int, float)) else value
    if not isinstance(text, str) or not text or text != text.strip():
        raise ValueError("empty, or blanks around it")
    i = 0
    sign = 1
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        i = 1
    number = _NUMBER.match(text, i).group(0)
    if not number or number == "." or not any(ch.isdigit() for ch in number):
        raise ValueError("does not start with a number")
    suffix = text[i + len(number):]
    base = Decimal(number)
    if suffix in BINARY_SI:
        return sign * base * BINARY_SI[suffix]
    if suffix in DECIMAL_SI:
        return sign * base * DECIMAL_SI[suffix]
    if suffix[:1] in ("e", "E") and re.match(r"^[eE][+-]?[0-9]+$", suffix):
        return sign * base * (Decimal(10) ** int(suffix[1:]))
    raise ValueError("unit %r is none of Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E" % suffix)


def parse_duration(value):
    """Seconds (a Decimal) of a Go duration such as ``50s``, ``1m30s``, ``1.5h``; ValueError otherwise."""
    if not isinstance(value, str) or not value:
        raise ValueError("not a duration string")
    text = value
    if text[0] in "+-":
        text = text[1:]
    if text == "0":
        return Decimal(0)
    total = Decimal(0)
    i = 0
    if not text:
        raise ValueError("empty")
    while i < len(text):
        number = _NUMBER.match(text, i).group(0)
        if not number or not any(ch.isdigit() for ch in number):
            raise ValueError("expected a number at %r" % text[i:])
        i += len(number)
        j = i
        while j < len(text) and not (text[j].isdigit() or text[j] == "."):
            j += 1
        unit = text[i:j]
        if unit not in GO_UNITS:
            raise ValueError("unit %r is none of ns, us, ms, s, m, h" % unit if unit else "a number without a unit")
        total += Decimal(number) * GO_UNITS[unit]
        i = j
    return -total if value[0] == "-" else total


def dn_problem(value):
    """Why ``value`` is not a usable distinguished name, or ``''`` when it is one."""
    if not isinstance(value, str) or not value.strip():
        return "it is empty"
    try:
        rdns = _parse_dn(value)
    except ValueError as exc:
        reason = str(exc)
        if "expected attribute=value" in reason:
            at = reason.rsplit(" ", 1)[-1]
            rest = value[int(at):] if at.isdigit() else ""
            if rest.startswith(",") or not rest.strip() or value.rstrip().endswith(","):
                return "it has an empty RDN (two commas in a row, or a comma at the start or end)"
            return "%r is not attribute=value" % rest.split(",", 1)[0]
        return reason.split(": ", 1)[-1]
    if not rdns:
        return "it is empty"
    for rdn in rdns:
        for atype, avalue in rdn:
            if not str(avalue).strip():
                return "%s= has no value" % atype
    return ""


def url_problem(value, schemes=("https", "http")):
    """Why ``value`` is not a URL with one of ``schemes`` and a host (with a valid port), or ``''``."""
    if not isinstance(value, str) or not value.strip():
        return "it is empty"
    if value != value.strip() or any(ch.isspace() for ch in value):
        return "it contains blanks"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError as exc:
        return "it does not parse as a URL (%s)" % exc
    if not parts.scheme or "://" not in value:
        return "it has no scheme (write %s://...)" % schemes[0]
    if parts.scheme.lower() not in schemes:
        return "its scheme is %s, not %s" % (parts.scheme, " or ".join(schemes))
    if not parts.hostname:
        return "it names no host"
    if port is not None and not 0 < port < 65536:
        return "its port %s is out of range" % port
    return ""


def _check(parser, value, nonnegative=False):
    try:
        parsed = parser(value)
    except (ValueError, InvalidOperation) as exc:
        return str(exc)
    if nonnegative and parsed < 0:
        return "it is negative"
    return ""


def _memory(value):
    reason = _check(parse_quantity, value, nonnegative=True)
    if not reason and parse_quantity(value) != parse_quantity(value).to_integral_value():
        return "it is a fraction of a byte"
    return reason


KINDS = {
    "quantity": ("a Kubernetes quantity such as 10Gi or 500m", lambda v: _check(parse_quantity, v, nonnegative=True)),
    "cpu": ("a CPU quantity such as 250m or 1.5", lambda v: _check(parse_quantity, v, nonnegative=True)),
    "memory": ("a memory quantity such as 160Mi or 4Gi", _memory),
    "duration": ("a Go duration such as 50s or 1m30s", lambda v: _check(parse_duration, v, nonnegative=True)),
    "url": ("a URL such as https://es1.example.edu:9200", url_problem),
    "https_url": ("an https:// URL such as https://es1.example.edu:9200", lambda v: url_problem(v, ("https",))),
    "dn": ("a distinguished name (CN=...,OU=...,DC=...)", dn_problem),
}


def value_problems(checks):
    """Messages for the values that do not parse: ``checks`` is a list of ``[name, kind, value]``.

    ``kind`` is one of quantity, cpu, memory, duration, url, https_url, dn; ``name`` is how the
    message names the value (``kata_runtime_class_overhead_cpu``, ``hub chemeng: storage.capacity``)."""
    problems = []
    for check in checks or []:
        if not isinstance(check, (list, tuple)) or len(check) != 3:
            raise AnsibleFilterError("juno.hub.value_problems expects [name, kind, value] items, got %r" % (check,))
        name, kind, value = check
        if kind not in KINDS:
            raise AnsibleFilterError("juno.hub.value_problems: unknown kind %r (%s)" % (kind, ", ".join(sorted(KINDS))))
        what, check_fn = KINDS[kind]
        reason = check_fn(value)
        if reason:
            problems.append("%s %s is not %s: %s" % (name, _show(value), what, reason))
    return problems


def _show(value):
    return repr(value) if isinstance(value, str) else "%s" % (value,)


def hub_place(hub, index=None):
    """How messages name a hub: ``hub <name>``, or ``hub juno_hubs[<i>]`` for an entry without a usable name."""
    name = hub.get("name") if isinstance(hub, dict) else None
    if isinstance(name, str) and name.strip() and not any(ch.isspace() or ch == ":" for ch in name):
        return "hub %s" % name
    return "hub juno_hubs[%s]" % ("?" if index is None else index)


def _slug(text):
    """The slug the hub values give a profile (plugins/filter/hub.py), without the -2, -3 of repeated names."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "profile"


def profile_name(profile, slug):
    """How messages name a profile: its display name and slug (``profile 'GPU notebook' (gpu-notebook)``)."""
    display = profile.get("display_name") if isinstance(profile, dict) else None
    return "profile %r (%s)" % (display, slug) if display else "profile %s (no display_name)" % slug


def _split(message):
    """``(place, text)``: place is ``site``, ``hub <name>`` or ``node <name>``."""
    if isinstance(message, dict):
        return str(message.get("where") or "site"), str(message.get("message", ""))
    text = str(message)
    m = _PLACE.match(text)
    if m:
        return "%s %s" % (m.group(1), m.group(2)), m.group(3)
    return "site", text


def preflight_report(problems, changed_nothing=True):
    """Every problem of a run, grouped by place: the site, then each hub, then the nodes.

    ``problems`` is a list of messages (strings, or ``{where, message}``), or a dict of host name
    to such a list (the problems each host found); the same message from several hosts is listed
    once, and a node message that several nodes share is listed once under all of them
    (``nodes cp1, cp2: ...``). An empty list when there is no problem."""
    if isinstance(problems, dict):
        flat = []
        for host in problems:
            flat.extend(problems[host] or [])
        problems = flat
    if not isinstance(problems, list):
        raise AnsibleFilterError("juno.hub.preflight_report expects a list of problems or a dict of host to problems, got %s"
                                 % type(problems).__name__)
    site, hubs, nodes = [], {}, {}
    node_order = []
    for message in problems:
        where, text = _split(message)
        if where == "site":
            if text not in site:
                site.append(text)
        elif where.startswith("hub "):
            texts = hubs.setdefault(where, [])
            if text not in texts:
                texts.append(text)
        else:
            name = where[len("node "):]
            if text not in nodes:
                nodes[text] = []
                node_order.append(text)
            if name not in nodes[text]:
                nodes[text].append(name)
    count = len(site) + sum(len(t) for t in hubs.values()) + len(node_order)
    if not count:
        return []
    lines = ["preflight found %d problem%s%s" % (count, "" if count == 1 else "s", "; nothing was changed" if changed_nothing else "")]
    if site:
        lines.append("site:")
        lines.extend("  - " + t for t in site)
    for where, texts in hubs.items():
        lines.append(where + ":")
        lines.extend("  - " + t for t in texts)
    groups = {}
    for text in node_order:
        label = ("node " if len(nodes[text]) == 1 else "nodes ") + ", ".join(nodes[text])
        groups.setdefault(label, []).append(text)
    for label, texts in groups.items():
        lines.append(label + ":")
        lines.extend("  - " + t for t in texts)
    return lines


def argument_problems(errors, place=""):
    """The messages of ``validate_argument_spec`` (its ``argument_errors``) in the report's form.

    ``place`` (``hub chemeng``) prefixes each message; the summary line the action adds is left out.
    ``errors`` may also be one registered result of a loop over ``juno_hubs`` (the hub's own
    options checked with the hub as ``item``): its messages then name that hub; or of a loop over
    the hubs' profiles (``item`` is ``[hub, profile]``): they name the hub and the profile."""
    if isinstance(errors, dict):
        item = errors.get("item")
        if not place and isinstance(item, dict):
            place = hub_place(item)
        elif not place and isinstance(item, (list, tuple)) and len(item) == 2:  # [hub, profile]
            place = "%s: %s" % (hub_place(item[0]), profile_name(item[1], _slug((item[1] or {}).get("display_name") or "profile")))
        errors = errors.get("argument_errors") or []
    out = []
    for error in errors or []:
        text = " ".join(str(error).split())
        if not text or text.startswith("Validation of arguments failed"):
            continue
        text = text.replace("''", "'")
        out.append("%s: %s" % (place, text) if place else text)
    return out


class FilterModule(object):
    def filters(self):
        return {
            "value_problems": value_problems,
            "preflight_report": preflight_report,
            "argument_problems": argument_problems,
        }
