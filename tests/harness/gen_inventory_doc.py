#!/usr/bin/env python
"""Regenerate the variable tables of docs/inventory.md from the preflight role's `site` spec.

The text between the markers `<!-- BEGIN GENERATED -->` and `<!-- END GENERATED -->` is replaced;
tests/unit/test_inventory_doc.py fails when the page and the spec disagree.
"""

import os
import re
import sys

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(TOP, "roles", "preflight", "meta", "argument_specs.yml")
DOC = os.path.join(TOP, "docs", "inventory.md")
BEGIN, END = "<!-- BEGIN GENERATED -->", "<!-- END GENERATED -->"


def example_site():
    out = {}
    for name in sorted(os.listdir(os.path.join(TOP, "inventories", "example", "group_vars", "all"))):
        if name.endswith(".yml") and name != "vault.yml":
            with open(os.path.join(TOP, "inventories", "example", "group_vars", "all", name)) as f:
                out.update(yaml.safe_load(f) or {})
    return out


def fmt(value):
    if value is None:
        return ""
    text = yaml.safe_dump(value, default_flow_style=True, width=10000).strip()
    if text.endswith("..."):
        text = text[:-3].strip()
    return "`%s`" % text.replace("|", "\\|")


def kind(opt):
    t = opt.get("type", "str")
    if t == "list" and opt.get("elements"):
        t = "list of %s" % opt["elements"]
    if opt.get("choices"):
        t += " (%s)" % ", ".join(str(c) for c in opt["choices"])
    return t


def rows(options, prefix, example, depth=0):
    lines = []
    for name, opt in options.items():
        full = prefix + name
        req = "required" if opt.get("required") else fmt(opt.get("default")) or "unset"
        desc = " ".join(opt.get("description") if isinstance(opt.get("description"), list) else [opt.get("description", "")])
        scalar = opt.get("type") != "dict" and opt.get("elements") != "dict"
        ex = fmt(example) if depth == 0 and example is not None and scalar else ""
        desc = re.sub(r"[CIV]\(([^)]*)\)", r"`\1`", desc)
        if opt.get("no_log"):
            desc += " Secret: keep it in Ansible Vault; never logged."
            ex = ""
        lines.append("| `%s` | %s | %s | %s | %s |" % (full, kind(opt), req, desc.replace("|", "\\|"), ex))
        if opt.get("options"):
            sub = full + ("[]." if opt.get("type") == "list" else ".")
            lines += rows(opt["options"], sub, None, depth + 1)
    return lines


def generate():
    with open(SPEC) as f:
        options = yaml.safe_load(f)["argument_specs"]["site"]["options"]
    example = example_site()
    out = ["| variable | type | default | description | example |", "| --- | --- | --- | --- | --- |"]
    for name, opt in options.items():
        out += rows({name: opt}, "", example.get(name))
    return "\n".join(out) + "\n"


def main():
    with open(DOC) as f:
        text = f.read()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = head + BEGIN + "\n" + generate() + END + tail
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    with open(DOC, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
