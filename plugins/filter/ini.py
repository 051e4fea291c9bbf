# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which settings community.general.ini_file would still change in a file whose text was read before.

The roles set INI options with ``community.general.ini_file`` (state=present, exclusive=true,
modify_inactive_option=true, one module run per setting). On a rerun the run is skipped for the
settings that the file read at the start already has. ``ini_pending`` decides that by replaying
ini_file's own algorithm (community.general 11, ``do_ini``) on the text: its line splitting
(universal newlines, a leading BOM dropped), its section search (first header only, a section ends
at the next line that starts with ``[``), its option regular expression (commented ``#``/``;``
lines count as the option) and its exclusive handling of duplicates. A setting is left out only
when that replay reports no change and no other setting that does run could disturb its line;
everything else, including text it cannot be sure about, is returned as pending.
The documentation is in ``plugins/filter/ini_pending.yml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import re

from ansible.errors import AnsibleFilterError
from collections.abc import Mapping

from ansible.module_utils.parsing.convert_bool import boolean

# ini_file puts this header above the first line so that options before any section form one.
FAKE_SECTION = u"ad01e11446efb704fcdbdb21f2c43757423d91c5"
BLANK_OR_COMMENT = re.compile(r"^[ \t]*([#;].*)?$")
# Options of ini_file that change what it does; the filter models their defaults only.
MODELLED_DEFAULTS = {
    "state": "present",
    "exclusive": True,
    "modify_inactive_option": True,
    "allow_no_value": False,
    "ignore_spaces": False,
}
UNSUPPORTED = ("values", "section_has_values")


def _match_opt(option, line):
    """ini_file's match_opt: the option, active or after one '#'/';', followed by '=' or the end."""
    return re.match("( |\t)*([#;]?)( |\t)*(%s)( |\t)*(=|$)( |\t)*(.*)" % re.escape(option), line)


def _read_lines(text):
    """The lines as ini_file reads them: io.open(encoding='utf-8-sig') with universal newlines."""
    if text.startswith(u"\ufeff"):
        text = text[1:]
    return io.StringIO(text, newline=None).readlines()


def _one_line(text):
    """True when text, written by ini_file, is read back as a single line."""
    return len(_read_lines(text)) == 1


def _bool(value, what):
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise AnsibleFilterError("juno.hub.ini_pending: %s must be a boolean, got %r" % (what, value))


def _setting(index, item, no_extra_spaces):
    """(section, option, value, no_extra_spaces) of one item, as ini_file would receive them."""
    where = "settings[%d] %r" % (index, item)
    if not isinstance(item, Mapping):
        raise AnsibleFilterError("juno.hub.ini_pending: %s is not a dict with section, option and value" % where)
    for key in ("section", "option", "value"):
        if key not in item:
            raise AnsibleFilterError("juno.hub.ini_pending: %s has no '%s'" % (where, key))
    section, option, value = item["section"], item["option"], item["value"]
    if section is not None and not isinstance(section, str):
        raise AnsibleFilterError("juno.hub.ini_pending: %s: section must be a string or null, got %s" % (where, type(section).__name__))
    if not isinstance(option, str) or not option:
        raise AnsibleFilterError("juno.hub.ini_pending: %s: option must be a non-empty string, got %r" % (where, option))
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise AnsibleFilterError(
            "juno.hub.ini_pending: %s: value must be a string or a number (quote booleans as ini_file should write them), got %s"
            % (where, type(value).__name__)
        )
    for key, default in MODELLED_DEFAULTS.items():
        if key in item and item[key] is not None:
            given = item[key] if key == "state" else _bool(item[key], "%s: %s" % (where, key))
            if given != default:
                raise AnsibleFilterError("juno.hub.ini_pending: %s: only %s=%s is modelled" % (where, key, default))
    for key in UNSUPPORTED:
        if item.get(key) is not None:
            raise AnsibleFilterError("juno.hub.ini_pending: %s: '%s' is not modelled; use one item per value" % (where, key))
    if item.get("no_extra_spaces") is not None:
        no_extra_spaces = _bool(item["no_extra_spaces"], "%s: no_extra_spaces" % where)
    return section, option, u"%s" % (value,), no_extra_spaces


def _replay(lines, section, option, value, no_extra_spaces):
    """ini_file's do_ini for state=present, exclusive, modify_inactive_option and one value.

    ``lines`` are the file's lines as ini_file holds them, its fake first header and final '[' included.
    Returns (changed, start): start is the index of the section's header in ``lines`` (None when
    ini_file would append the section at the end).
    """
    if not section:
        section = FAKE_SECTION
    pattern = re.compile(r"^\[\s*%s\s*]" % re.escape(section.strip()))
    within = False
    start = end = 0
    for index, line in enumerate(lines):
        if within and line.startswith(u"["):
            end = index
            break
        if pattern.match(line):
            within = True
            start = index
    if not within:
        return True, None

    section_lines = lines[start:end]
    done = [False] * len(section_lines)
    assignment = u"%s=%s\n" if no_extra_spaces else u"%s = %s\n"
    values = [value]
    changed = False
    # 1. the first line (active or commented) that already carries the value is rewritten in place
    for index, line in enumerate(section_lines):
        match = _match_opt(option, line)
        if match and values and match.group(8) in values:
            newline = assignment % (option, match.group(8))
            changed = changed or section_lines[index] != newline
            section_lines[index] = newline
            done[index] = True
            values.remove(match.group(8))
    # 2. exclusive: otherwise the first line of the option (active or commented) gets the value
    if values:
        for index, line in enumerate(section_lines):
            if not done[index] and _match_opt(option, line):
                newline = assignment % (option, values.pop(0))
                changed = changed or section_lines[index] != newline
                section_lines[index] = newline
                done[index] = True
                break
    # 3. exclusive: every other line of the option in the section is deleted (not the header line)
    for index in range(len(section_lines) - 1, 0, -1):
        if not done[index] and _match_opt(option, section_lines[index]):
            del section_lines[index]
            del done[index]
            changed = True
    # 4. a value still unplaced is inserted after the last line that is not blank or a comment
    if values:
        for index in range(len(section_lines), 0, -1):
            if not BLANK_OR_COMMENT.match(section_lines[index - 1]):
                changed = True
                break
    return changed, start


def _disturbs(runner, kept, lines):
    """Whether ini_file's run for the pending ``runner`` may undo the satisfied ``kept``.

    A run rewrites or deletes only lines of its own section that match its option, and adds its
    own line there (or its section at the end of the file). ``kept`` is safe when it lives in
    another section, or when no line of its option matches the runner's option and the runner's
    line is not one of kept's option; a line that would break into several lines or open a
    section is assumed to disturb everything.
    """
    if not runner["plain"]:
        return True
    if runner["start"] is None or runner["start"] != kept["start"]:
        return False
    if _match_opt(kept["option"], runner["line"]):
        return True
    end = kept["start"] + 1
    while end < len(lines) and not lines[end].startswith(u"["):
        end += 1
    for line in lines[kept["start"]:end]:
        if _match_opt(kept["option"], line) and _match_opt(runner["option"], line):
            return True
    return False


def ini_pending(content, settings, no_extra_spaces=False):
    """The items of ``settings`` for which community.general.ini_file would report a change."""
    if isinstance(settings, (str, Mapping)) or not isinstance(settings, (list, tuple)):
        raise AnsibleFilterError("juno.hub.ini_pending: settings must be a list of {section, option, value}, got %s" % type(settings).__name__)
    no_extra_spaces = _bool(no_extra_spaces, "no_extra_spaces")
    parsed = [_setting(index, item, no_extra_spaces) for index, item in enumerate(settings)]
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            content = None
    if content is None:
        return list(settings)
    if not isinstance(content, str):
        raise AnsibleFilterError("juno.hub.ini_pending: the file's text must be a string or null, got %s" % type(content).__name__)
    # Text that was not valid UTF-8 (replaced or escaped bytes) makes ini_file fail: let it run.
    if re.search(u"[\ufffd\ud800-\udfff]", content):
        return list(settings)

    lines = _read_lines(content)
    if not lines:
        lines = [u"\n"]
    if not lines[-1].endswith(u"\n"):
        # ini_file adds the missing final newline and reports a change whatever the setting.
        return list(settings)
    lines = [u"[%s]" % FAKE_SECTION] + lines + [u"["]

    states = []
    for section, option, value, spaces in parsed:
        changed, start = _replay(lines, section, option, value, spaces)
        line = (u"%s=%s\n" if spaces else u"%s = %s\n") % (option, value)
        header = u"[%s]\n" % (section or FAKE_SECTION)
        states.append({
            "pending": changed,
            "start": start,
            "option": option,
            "line": line,
            # its line (and the header it may append) neither splits into several lines nor opens a section
            "plain": _one_line(line) and not line.startswith(u"[") and (start is not None or _one_line(header)),
        })
    # A satisfied setting stays satisfied only if no run of a pending one can touch its line.
    growing = True
    while growing:
        growing = False
        for kept in states:
            if not kept["pending"] and any(runner["pending"] and _disturbs(runner, kept, lines) for runner in states):
                kept["pending"] = True
                growing = True
    return [item for item, state in zip(settings, states) if state["pending"]]


class FilterModule(object):
    def filters(self):
        return {
            "ini_pending": ini_pending,
        }
