# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Internal names that a caller cannot break (docs/development.md, "Layout rules").

A variable a calling play registers (or sets with set_fact) outranks a role's task, block and
play vars and its vars/main.yml, so a role that keeps a result in a generic ``__files`` or
``__info`` does something else as soon as its caller registered the same name. Every internal
name therefore carries its owner's prefix:

- in ``roles/<role>/`` (tasks, handlers, vars): ``__<role>_``; ``vars/main.yml`` keeps its
  ``_<role>_`` names (``__<role>_`` is accepted there too);
- in ``playbooks/<name>.yml``: ``__juno_<name>_``; vars given to an ``import_playbook`` belong to
  the imported playbooks, so they may carry any playbook's prefix (``__juno_preflight_by_site``).

What the scanner reads (YAML parsed with PyYAML, every task list walked through block, rescue
and always, handlers and the plays' pre_tasks, tasks, post_tasks and handlers):

- ``register``: always internal, so every one carries the prefix;
- ``set_fact`` keys (mapping or ``k=v`` form): a key starting with ``_`` carries the prefix, any
  other is a fact the role publishes and starts with ``<role>_`` or ``juno_`` (playbooks: ``juno_``);
- ``vars`` of plays, blocks and tasks (imports and includes too), ``roles:`` entries and
  ``loop_control.loop_var``: a name starting with ``_`` carries the prefix; a name without one
  is a parameter of a role or include (its interface) and is not checked;
- ``vars/main.yml`` keys, and the keys of ``template_vars={'__x': ...}`` in any file;
- every ``__name`` read anywhere under roles/ and playbooks/ (tasks, vars, comments, templates,
  playbooks/templates) must be set somewhere there: a rename that missed a reader, or a template
  that reads a generic name, fails here.

Its limits: names are only known by these keys, so a name built at run time (``vars[...]``,
``lookup('vars', ...)``) or set by a module's ``ansible_facts`` is not seen; a name without a
leading underscore in task vars is taken for an interface; defaults/ are left to
test_role_specs.py (public ``<role>_*``); files outside roles/ and playbooks/ (molecule, tests)
are callers and may name things as they like.
"""

import os
import re

import pytest
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TASK_LISTS = ("block", "rescue", "always")
PLAY_LISTS = ("pre_tasks", "tasks", "post_tasks", "handlers")
SET_FACT = ("set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact")
IMPORT_PLAYBOOK = ("import_playbook", "ansible.builtin.import_playbook")
NAME = re.compile(r"(?<![A-Za-z0-9_])(__[A-Za-z0-9_]*[A-Za-z0-9])(?![A-Za-z0-9_])")
TEMPLATE_VARS = re.compile(r"template_vars\s*=\s*(?:dict\(|\{)([^})]*)")
TEMPLATE_VAR_KEY = re.compile(r"""(?:['"](_\w+)['"]\s*:|\b(_\w+)\s*=)""")


class Mapping(dict):
    """A YAML mapping that remembers the line of each key."""

    lines = None


class Loader(yaml.SafeLoader):
    pass


def _mapping(loader, node):
    loader.flatten_mapping(node)
    mapping = Mapping()
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = key_node.start_mark.line + 1
    return mapping


def _tagged(loader, suffix, node):
    # !unsafe, !vault and the like: their text is all the scanner needs.
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    return None


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
Loader.add_multi_constructor("!", _tagged)


def _line(mapping, key):
    return (getattr(mapping, "lines", None) or {}).get(key, 0)


class Scan(object):
    """The findings of one tree: ``problems`` (path, line, name, reason) and the names set."""

    def __init__(self, top):
        self.top = top
        self.problems = []
        self.defined = set()
        self.playbook_prefixes = ()

    def problem(self, path, line, name, reason):
        self.problems.append((os.path.relpath(path, self.top), line, name, reason))

    # -- one name ------------------------------------------------------------------------------
    def internal(self, path, line, name, prefixes, what, strict=False):
        """A name that is internal when it starts with ``_`` (always, when ``strict``)."""
        if not isinstance(name, str):
            return
        self.defined.add(name)
        if not (strict or name.startswith("_")):
            return
        if not name.startswith(tuple(prefixes)):
            self.problem(path, line, name, "%s should start with %s" % (what, " or ".join(prefixes)))

    def fact(self, path, line, name, prefixes, public):
        self.defined.add(name)
        if name.startswith("_"):
            self.internal(path, line, name, prefixes, "set_fact key")
        elif not name.startswith(tuple(public)):
            self.problem(path, line, name, "a published fact should start with %s" % " or ".join(public))

    # -- tasks and plays -----------------------------------------------------------------------
    def vars_of(self, path, holder, prefixes, what):
        block = holder.get("vars")
        for mapping in block if isinstance(block, list) else [block]:
            if isinstance(mapping, dict):
                for name in mapping:
                    self.internal(path, _line(mapping, name), name, prefixes, what)

    def tasks(self, path, tasks, prefixes, public):
        for task in tasks if isinstance(tasks, list) else []:
            if not isinstance(task, dict):
                continue
            if "register" in task:
                self.internal(path, _line(task, "register"), task["register"], prefixes, "register", strict=True)
            for key in SET_FACT:
                args = task.get(key)
                if isinstance(args, dict):
                    for name in args:
                        if name != "cacheable":
                            self.fact(path, _line(args, name), name, prefixes, public)
                elif isinstance(args, str):
                    for name in re.findall(r"(?:^|\s)([A-Za-z_]\w*)=", args):
                        if name != "cacheable":
                            self.fact(path, _line(task, key), name, prefixes, public)
            self.vars_of(path, task, prefixes, "task or block var")
            loop_control = task.get("loop_control")
            if isinstance(loop_control, dict) and "loop_var" in loop_control:
                self.internal(path, _line(loop_control, "loop_var"), loop_control["loop_var"], prefixes, "loop_var")
            for key in TASK_LISTS:
                self.tasks(path, task.get(key), prefixes, public)

    def playbook(self, path, plays, prefixes):
        for play in plays if isinstance(plays, list) else []:
            if not isinstance(play, dict):
                continue
            if any(key in play for key in IMPORT_PLAYBOOK):
                # Vars handed to an imported playbook are that playbook's names.
                self.vars_of(path, play, self.playbook_prefixes, "var given to an imported playbook")
                continue
            self.vars_of(path, play, prefixes, "play var")
            for role in play.get("roles") or []:
                if isinstance(role, dict):
                    self.vars_of(path, role, prefixes, "var of a roles: entry")
            for key in PLAY_LISTS:
                self.tasks(path, play.get(key), prefixes, ("juno_",))

    def vars_file(self, path, data, role):
        for name in data if isinstance(data, dict) else []:
            self.internal(path, _line(data, name), name, ("_%s_" % role, "__%s_" % role), "vars/ name", strict=True)

    def template_vars(self, path, text, prefixes):
        for call in TEMPLATE_VARS.finditer(text):
            for key in TEMPLATE_VAR_KEY.finditer(call.group(1)):
                name = key.group(1) or key.group(2)
                line = text.count("\n", 0, call.start(1) + key.start()) + 1
                self.internal(path, line, name, prefixes, "template_vars key")


def _files(top, *parts):
    base = os.path.join(top, *parts)
    for directory, _dirs, names in sorted(os.walk(base)):
        for name in sorted(names):
            yield os.path.join(directory, name)


def _load(path):
    with open(path) as handle:
        text = handle.read()
    return text, (yaml.load(text, Loader=Loader) if path.endswith((".yml", ".yaml")) else None)


def scan(top):
    """Scan roles/ and playbooks/ under ``top``; returns the Scan (problems sorted)."""
    result = Scan(top)
    playbooks = [p for p in _files(top, "playbooks") if os.path.dirname(p) == os.path.join(top, "playbooks")
                 and p.endswith(".yml")]
    result.playbook_prefixes = tuple("__juno_%s_" % os.path.basename(p)[:-4] for p in playbooks)
    texts = {}
    for path in _files(top, "roles"):
        rel = os.path.relpath(path, os.path.join(top, "roles")).split(os.sep)
        if len(rel) < 3:
            continue
        role, kind = rel[0], rel[1]
        prefixes = ("__%s_" % role,)
        text, data = _load(path)
        texts[path] = text
        if not path.endswith((".yml", ".yaml")):
            continue
        if kind in ("tasks", "handlers"):
            result.tasks(path, data, prefixes, ("%s_" % role, "juno_"))
        elif kind == "vars":
            result.vars_file(path, data, role)
        if kind in ("tasks", "handlers", "vars", "defaults"):
            result.template_vars(path, text, prefixes)
    for path in _files(top, "playbooks"):
        text, data = _load(path)
        texts[path] = text
        if path in playbooks:
            prefixes = ("__juno_%s_" % os.path.basename(path)[:-4],)
            result.playbook(path, data, prefixes)
            result.template_vars(path, text, prefixes)
    # Every internal name that is read is set somewhere: nothing refers to a name a rename missed.
    for path, text in sorted(texts.items()):
        for match in NAME.finditer(text):
            name = match.group(1)
            if name not in result.defined:
                line = text.count("\n", 0, match.start()) + 1
                result.problem(path, line, name, "is read here but set nowhere under roles/ or playbooks/")
    result.problems.sort()
    return result


def test_internal_names_carry_their_owners_prefix():
    problems = scan(TOP).problems
    assert not problems, "internal names without their prefix (docs/development.md):\n" + "\n".join(
        "%s:%d: %s %s" % problem for problem in problems)


# --- the scanner on planted trees -------------------------------------------------------------
def plant(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return [(p[0], p[1], p[2]) for p in scan(str(tmp_path)).problems]


DEMO_OK = """\
---
- name: Read the files
  ansible.builtin.stat:
    path: /etc
  register: __demo_files
"""


def test_the_scanner_catches_a_planted_register_of_files(tmp_path):
    planted = DEMO_OK.replace("__demo_files", "__files")
    found = plant(tmp_path, {"roles/demo/tasks/main.yml": planted})
    assert found == [("roles/demo/tasks/main.yml", 5, "__files")]
    # The same tree with the role's prefix is clean.
    assert plant(tmp_path, {"roles/demo/tasks/main.yml": DEMO_OK}) == []


@pytest.mark.parametrize("rel, text, expected", [
    ("roles/demo/tasks/main.yml",
     "- name: A fact\n  ansible.builtin.set_fact:\n    __info: 1\n    demo_public: 2\n    other_public: 3\n",
     [("roles/demo/tasks/main.yml", 3, "__info"), ("roles/demo/tasks/main.yml", 5, "other_public")]),
    ("roles/demo/tasks/main.yml",
     "- name: A fact, k=v\n  set_fact: __info=1\n",
     [("roles/demo/tasks/main.yml", 2, "__info")]),
    ("roles/demo/tasks/sub/deep.yml",
     "- name: Outer\n  block:\n    - name: Inner\n      block:\n        - name: X\n          ansible.builtin.debug:\n"
     "            msg: hi\n      rescue:\n        - name: Y\n          ansible.builtin.debug:\n            msg: \"{{ __version }}\"\n"
     "          vars:\n            __version: 1\n  vars:\n    __demo_fine: 1\n",
     [("roles/demo/tasks/sub/deep.yml", 13, "__version")]),
    ("roles/demo/handlers/main.yml",
     "- name: Restart it\n  listen: demo\n  ansible.builtin.debug:\n    msg: x\n  register: __problems\n",
     [("roles/demo/handlers/main.yml", 5, "__problems")]),
    ("roles/demo/tasks/main.yml",
     "- name: Loop\n  ansible.builtin.debug:\n    msg: \"{{ __item }}\"\n  loop: [1]\n  loop_control:\n    loop_var: __item\n",
     [("roles/demo/tasks/main.yml", 6, "__item")]),
    ("roles/demo/vars/main.yml",
     "_demo_fine: 1\n__demo_fine_too: 2\nbad_name: 3\n_other_role: 4\n",
     [("roles/demo/vars/main.yml", 3, "bad_name"), ("roles/demo/vars/main.yml", 4, "_other_role")]),
    ("roles/demo/vars/main.yml",
     "_demo_x: \"{{ lookup('ansible.builtin.template', 'x.j2', template_vars={'__chrony': 1}) }}\"\n",
     [("roles/demo/vars/main.yml", 1, "__chrony")]),
    ("playbooks/demo.yml",
     "- name: A play\n  hosts: all\n  vars:\n    __problems: []\n    __juno_demo_fine: 1\n  tasks:\n"
     "    - name: T\n      ansible.builtin.debug:\n        msg: \"{{ __problems }}{{ __juno_demo_fine }}\"\n"
     "      register: __juno_other_result\n",
     [("playbooks/demo.yml", 4, "__problems"), ("playbooks/demo.yml", 10, "__juno_other_result")]),
    ("playbooks/demo.yml",
     "- name: Imported with a var of its own\n  ansible.builtin.import_playbook: demo.yml\n  vars:\n"
     "    __juno_demo_by_site: true\n    __by_site: true\n",
     [("playbooks/demo.yml", 5, "__by_site")]),
    ("roles/demo/templates/x.j2",
     "{{ __demo_never_set }}\n",
     [("roles/demo/templates/x.j2", 1, "__demo_never_set")]),
])
def test_the_scanner_catches_each_kind_of_name(tmp_path, rel, text, expected):
    assert plant(tmp_path, {rel: text}) == expected


# --- preflight's "already checked" gate -------------------------------------------------------
ROLES_WITH_PREFLIGHT = sorted(
    role for role in os.listdir(os.path.join(TOP, "roles"))
    if os.path.exists(os.path.join(TOP, "roles", role, "tasks", "preflight.yml")))
GATE = "role_name not in juno_preflight_checked_roles | default([])"


def test_preflight_runs_the_checks_of_every_role_that_has_them():
    with open(os.path.join(TOP, "playbooks", "preflight.yml")) as handle:
        plays = yaml.safe_load(handle)
    [phase_roles] = [play["vars"]["__juno_preflight_phase_roles"] for play in plays
                     if "__juno_preflight_phase_roles" in play.get("vars", {})]
    listed = {role for groups in phase_roles.values() for roles in groups.values() for role in roles}
    assert listed == set(ROLES_WITH_PREFLIGHT)


@pytest.mark.parametrize("role", ROLES_WITH_PREFLIGHT)
def test_each_role_skips_its_checks_by_one_gate_that_does_not_name_the_role(role):
    """The same condition in every role: ``role_name`` (a magic variable, which nothing a caller
    sets can override) is the short name preflight.yml records in juno_preflight_checked_roles."""
    with open(os.path.join(TOP, "roles", role, "tasks", "main.yml")) as handle:
        tasks = yaml.safe_load(handle)
    gates = [t for t in tasks if isinstance(t, dict) and t.get("ansible.builtin.include_tasks") == "preflight.yml"]
    assert len(gates) == 1 and gates[0].get("when") == GATE, (role, gates)
    assert "'%s'" % role not in str(gates[0]["when"])
