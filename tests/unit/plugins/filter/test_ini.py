# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.ini_pending against the real community.general.ini_file: every case is also run
through the module in-process on a file in tmp_path, and the filter's answer must be the
module's changed (the filter may only ever say "pending" where the module would change nothing
for reasons of a second setting, never the other way round)."""

import inspect
import json
import random

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.community.general.plugins.modules import ini_file as ini_file_module

from ansible_collections.juno.hub.plugins.filter import ini as f

# Debian's stock /etc/idmapd.conf (nfs-common).
IDMAPD = (
    "[General]\n\nVerbosity = 0\n# set your own domain here, if it differs from FQDN minus hostname\n# Domain = localdomain\n\n"
    "[Mapping]\n\nNobody-User = nobody\nNobody-Group = nogroup\n"
)
# Debian 12's stock /etc/nfs.conf (nfs-common 2.6.2).
NFS_CONF = """#
# This is a general configuration for the
# NFS daemons and tools
#
[general]
pipefs-directory=/run/rpc_pipefs
#
[nfsrahead]
# nfs=15000
# nfs4=16000
#
[exports]
# rootdir=/export
#
[exportfs]
# debug=0
#
[gssd]
# verbosity=0
# rpc-verbosity=0
# use-memcache=0
# use-machine-creds=1
# use-gss-proxy=0
# avoid-dns=1
# limit-to-legacy-enctypes=0
# context-timeout=0
# rpc-timeout=5
# keytab-file=/etc/krb5.keytab
# cred-cache-directory=
# preferred-realm=
# set-home=1
# upcall-timeout=30
# cancel-timed-out-upcalls=0
#
[lockd]
# port=0
# udp-port=0
#
[exportd]
# debug="all|auth|call|general|parse"
# manage-gids=n
# state-directory-path=/var/lib/nfs
# threads=1
# cache-use-ipaddr=n
# ttl=1800
[mountd]
# debug="all|auth|call|general|parse"
# manage-gids=n
# descriptors=0
# port=0
# threads=1
# reverse-lookup=n
# state-directory-path=/var/lib/nfs
# ha-callout=
# cache-use-ipaddr=n
# ttl=1800
#
[nfsdcld]
# debug=0
# storagedir=/var/lib/nfs/nfsdcld
#
[nfsdcltrack]
# debug=0
# storagedir=/var/lib/nfs/nfsdcltrack
#
[nfsd]
# debug=0
# threads=8
# host=
# port=0
# grace-time=90
# lease-time=90
# udp=n
# tcp=y
# vers3=y
# vers4=y
# vers4.0=y
# vers4.1=y
# vers4.2=y
# rdma=n
# rdma-port=20049

[statd]
# debug=0
# port=0
# outgoing-port=0
# name=
# state-directory-path=/var/lib/nfs/statd
# ha-callout=
# no-notify=0
#
[sm-notify]
# debug=0
# force=0
# retry-time=900
# outgoing-port=
# outgoing-addr=
# lift-grace=y
#
[svcgssd]
# principal=
"""
# roles/nfs_server/vars/main.yml's settings (threads 16, NFSv3 off, mountd on 20048), no_extra_spaces.
NFS_SETTINGS = [
    {"section": "nfsd", "option": "threads", "value": 16},
    {"section": "nfsd", "option": "vers3", "value": "n"},
    {"section": "nfsd", "option": "vers4", "value": "y"},
    {"section": "nfsd", "option": "vers4.0", "value": "n"},
    {"section": "nfsd", "option": "vers4.1", "value": "y"},
    {"section": "nfsd", "option": "vers4.2", "value": "y"},
    {"section": "mountd", "option": "port", "value": 20048},
]
DOMAIN = {"section": "General", "option": "Domain", "value": "x"}


def s(section="General", option="Domain", value="x"):
    return {"section": section, "option": option, "value": value}


# Every test runs a module in this process as on a target (module_context, in conftest.py).
pytestmark = pytest.mark.usefixtures("module_context")


@pytest.fixture
def ini_file(capsys, tmp_path):
    """``ini_file(path, setting, no_extra_spaces)``: run community.general.ini_file for real; its changed."""
    remote_tmp = tmp_path / "remote_tmp"
    remote_tmp.mkdir()

    def run(path, setting, no_extra_spaces=False):
        args = dict(path=str(path), section=setting["section"], option=setting["option"], value=setting["value"],
                    no_extra_spaces=no_extra_spaces, _ansible_remote_tmp=str(remote_tmp), _ansible_keep_remote_files=False)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as e:
                ini_file_module.main()
        out = json.loads(capsys.readouterr().out)
        assert e.value.code == 0, out
        return out["changed"]
    return run


@pytest.fixture
def target(tmp_path):
    """``target(text)``: a file holding text (UTF-8, newlines untouched; None: no file)."""
    counter = [0]

    def write(text):
        counter[0] += 1
        path = tmp_path / ("file%d.ini" % counter[0])
        if text is not None:
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
        return path
    return write


def read(path):
    return path.read_bytes().decode("utf-8") if path.exists() else None


def pending(text, setting, no_extra_spaces=False):
    return bool(f.ini_pending(text, [setting], no_extra_spaces=no_extra_spaces))


# --- single settings: expected answer, and the module agrees ------------------------------------

CASES = [
    # (id, text, setting, no_extra_spaces, pending)
    ("missing file", None, DOMAIN, False, True),
    ("empty file", "", DOMAIN, False, True),
    ("missing section", IDMAPD, s("Nope"), False, True),
    ("option absent", "[General]\nVerbosity = 0\n", DOMAIN, False, True),
    ("value differs", "[General]\nDomain = y\n", DOMAIN, False, True),
    ("exact match", "[General]\nDomain = x\n", DOMAIN, False, False),
    ("exact match among others", "[General]\nVerbosity = 0\nDomain = x\n\n[Mapping]\nNobody-User = nobody\n", DOMAIN, False, False),
    ("no blanks, default spacing", "[General]\nDomain=x\n", DOMAIN, False, True),
    ("no blanks, no_extra_spaces", "[General]\nDomain=x\n", DOMAIN, True, False),
    ("blanks, no_extra_spaces", "[General]\nDomain = x\n", DOMAIN, True, True),
    ("double blanks", "[General]\nDomain  =  x\n", DOMAIN, False, True),
    ("indented option", "[General]\n  Domain = x\n", DOMAIN, False, True),
    ("tabs", "[General]\nDomain\t=\tx\n", DOMAIN, False, True),
    ("trailing blank after value", "[General]\nDomain = x \n", DOMAIN, False, True),
    ("stock idmapd.conf", IDMAPD, DOMAIN, False, True),
    ("commented option only, same value", "[General]\n# Domain = x\n", DOMAIN, False, True),
    ("semicolon comment only", "[General]\n;Domain=x\n", DOMAIN, True, True),
    ("commented then active", "[General]\n# Domain = x\nDomain = x\n", DOMAIN, False, True),
    ("active then commented other value", "[General]\nDomain = x\n# Domain = localdomain\n", DOMAIN, False, True),
    ("active then bare commented option", "[General]\nDomain = x\n#Domain\n", DOMAIN, False, True),
    ("prose comment naming the option", "[General]\nDomain = x\n# the Domain is the NFSv4 domain\n# Domain: see idmapd.conf(5)\n", DOMAIN, False, False),
    ("duplicate active lines, same value", "[General]\nDomain = x\nDomain = x\n", DOMAIN, False, True),
    ("duplicate active lines, other value second", "[General]\nDomain = x\nDomain = y\n", DOMAIN, False, True),
    ("option in another section only", "[Mapping]\nDomain = x\n[General]\nVerbosity = 0\n", DOMAIN, False, True),
    ("option also in another section", "[Mapping]\nDomain = y\n[General]\nDomain = x\n", DOMAIN, False, False),
    ("CRLF, satisfied", "[General]\r\nVerbosity = 0\r\nDomain = x\r\n", DOMAIN, False, False),
    ("CRLF, value differs", "[General]\r\nDomain = y\r\n", DOMAIN, False, True),
    ("CR line endings", "[General]\rDomain = x\r", DOMAIN, False, False),
    ("no final newline", "[General]\nDomain = x", DOMAIN, False, True),
    ("no final newline, other section", "[General]\nDomain = x\n[Mapping]\nNobody-User = nobody", DOMAIN, False, True),
    ("byte order mark", "\ufeff[General]\nDomain = x\n", DOMAIN, False, False),
    ("duplicate section, option in first", "[General]\nDomain = x\n[Mapping]\n[General]\nVerbosity = 0\n", DOMAIN, False, False),
    ("duplicate section, option in second only", "[General]\nVerbosity = 0\n[Mapping]\n[General]\nDomain = x\n", DOMAIN, False, True),
    ("duplicate section, second never looked at", "[General]\nDomain = x\n[Mapping]\n[General]\nDomain = y\n", DOMAIN, False, False),
    ("blanks inside the brackets", "[ General ]\nDomain = x\n", DOMAIN, False, False),
    ("tab inside the brackets", "[\tGeneral]\nDomain = x\n", DOMAIN, False, False),
    ("comment after the header", "[General] # idmapd\nDomain = x\n", DOMAIN, False, False),
    ("indented header is no header", "  [General]\nDomain = x\n", DOMAIN, False, True),
    ("indented header does not end the section before", "[Mapping]\nNobody-User = nobody\n [General]\nDomain = x\n",
     s("Mapping"), False, False),
    ("section name is case sensitive", "[general]\nDomain = x\n", DOMAIN, False, True),
    ("option name is case sensitive", "[General]\ndomain = x\n", DOMAIN, False, True),
    ("colon is no assignment", "[General]\nDomain: x\n", DOMAIN, False, True),
    ("before the first section", "Domain = x\n[General]\nVerbosity = 0\n", s(None), False, False),
    ("empty section name is before the first section", "Domain = x\n[General]\n", s(""), False, False),
    ("before the first section, option only in a section", "# top\n[General]\nDomain = x\n", s(None), False, True),
    ("no section at all", "Domain = x\nVerbosity = 0\n", s(None), False, False),
    ("int value", "[nfsd]\nthreads=16\n", s("nfsd", "threads", 16), True, False),
    ("int value differs", "[nfsd]\nthreads=8\n", s("nfsd", "threads", 16), True, True),
    ("float value", "[x]\nratio = 0.5\n", s("x", "ratio", 0.5), False, False),
    ("empty value", "[General]\nDomain = \n", s(value=""), False, False),
    ("empty value, bare option", "[General]\nDomain\n", s(value=""), False, True),
    ("option is no prefix", "[nfsd]\nvers4=y\nvers4.1=n\n", s("nfsd", "vers4", "y"), True, False),
    ("dotted option", "[nfsd]\nvers4=n\nvers4.1=y\nvers410=n\n", s("nfsd", "vers4.1", "y"), True, False),
    ("value with leading blank", "[General]\nDomain =  x\n", s(value=" x"), False, False),
    ("value with trailing blank", "[General]\nDomain = x \n", s(value="x "), False, False),
    ("value with a newline", "[General]\nDomain = a\nb\n", s(value="a\nb"), False, True),
    ("non-ASCII value", "[General]\nDomain = exämple.edu\n", s(value="exämple.edu"), False, False),
]


@pytest.mark.parametrize("text, setting, no_extra_spaces, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_single_setting(text, setting, no_extra_spaces, expected, ini_file, target):
    assert pending(text, setting, no_extra_spaces) is expected
    assert ini_file(target(text), setting, no_extra_spaces) is expected


def test_crlf_file_is_left_alone_when_satisfied_and_rewritten_with_lf_otherwise(ini_file, target):
    text = "[General]\r\nDomain = x\r\nVerbosity = 0\r\n"
    path = target(text)
    assert ini_file(path, DOMAIN) is False
    assert read(path) == text
    assert ini_file(path, s(option="Verbosity", value=1)) is True
    assert path.read_bytes() == b"[General]\nDomain = x\nVerbosity = 1\n"
    assert not pending(read(path), DOMAIN)


def test_commented_duplicate_is_deleted_and_commented_value_uncommented(ini_file, target):
    path = target("[General]\n# Domain = x\nVerbosity = 0\nDomain = x\n")
    assert ini_file(path, DOMAIN) is True
    assert read(path) == "[General]\nDomain = x\nVerbosity = 0\n"
    assert not pending(read(path), DOMAIN)


def test_bytes_and_invalid_utf8():
    assert f.ini_pending(b"[General]\nDomain = x\n", [DOMAIN]) == []
    assert f.ini_pending(b"[General]\nDomain = x\n\xff\n", [DOMAIN]) == [DOMAIN]
    assert f.ini_pending("[General]\nDomain = x\n# \udcff\n", [DOMAIN]) == [DOMAIN]
    assert f.ini_pending("[General]\nDomain = x\n# \ufffd\n", [DOMAIN]) == [DOMAIN]


def test_returns_the_same_items_in_order():
    settings = [s(value="y"), s("Mapping", "Nobody-User", "nobody"), s("Mapping", "Nobody-Group", "nobody"), DOMAIN]
    result = f.ini_pending(IDMAPD, settings)
    assert result == [settings[0], settings[2], settings[3]]
    assert all(a is b for a, b in zip(result, [settings[0], settings[2], settings[3]]))
    assert f.ini_pending(None, settings) == settings
    assert f.ini_pending(IDMAPD, []) == []


def test_filter_is_registered():
    assert f.FilterModule().filters()["ini_pending"] is f.ini_pending


def test_mirrors_the_installed_module():
    """The constants and the option expression are ini_file's (a new community.general must be re-read)."""
    source = inspect.getsource(ini_file_module)
    assert f.FAKE_SECTION in source
    assert f.BLANK_OR_COMMENT.pattern in source
    for line in ["Domain = x\n", "  # Domain=x\n", ";Domain\n", "Domain: x\n", "#Domain\t=\tx y \n", "Domains = x\n", "[General]\n"]:
        theirs, ours = ini_file_module.match_opt("Domain", line), f._match_opt("Domain", line)
        assert (theirs and theirs.groups()) == (ours and ours.groups()), line


# --- several settings: a satisfied one is returned when a pending one may undo it ----------------

def run_loop(ini_file, path, settings, no_extra_spaces):
    return [ini_file(path, setting, no_extra_spaces) for setting in settings]


def check_loop(ini_file, target, text, settings, no_extra_spaces=False):
    """Running only the pending items leaves the same file as running them all; the pending ones are
    exactly those whose run changes something when they all run in order, or a superset."""
    chosen = f.ini_pending(text, settings, no_extra_spaces=no_extra_spaces)
    every, some = target(text), target(text)
    changed = run_loop(ini_file, every, settings, no_extra_spaces)
    run_loop(ini_file, some, chosen, no_extra_spaces)
    assert read(some) == read(every), (text, settings, chosen)
    for setting, change in zip(settings, changed):
        assert not change or any(setting is item for item in chosen), (text, settings, setting)
    return chosen, read(every)


def test_nfs_conf_settings_converge(ini_file, target):
    chosen, after = check_loop(ini_file, target, NFS_CONF, NFS_SETTINGS, True)
    assert chosen == NFS_SETTINGS
    assert "\n[nfsd]\n# debug=0\nthreads=16\n" in after
    assert "\n# tcp=y\nvers3=n\nvers4=y\nvers4.0=n\nvers4.1=y\nvers4.2=y\n# rdma=n\n" in after
    assert "\n# descriptors=0\nport=20048\n" in after
    assert "\n[statd]\n# debug=0\n# port=0\n" in after
    assert f.ini_pending(after, NFS_SETTINGS, no_extra_spaces=True) == []
    # One setting changed by hand: only that one runs, and the others stay.
    edited = after.replace("vers4.0=n\n", "vers4.0=y\n")
    assert check_loop(ini_file, target, edited, NFS_SETTINGS, True)[0] == [NFS_SETTINGS[3]]


def test_idmapd_conf_converges(ini_file, target):
    chosen, after = check_loop(ini_file, target, IDMAPD, [DOMAIN])
    assert chosen == [DOMAIN]
    assert after == IDMAPD.replace("# Domain = localdomain", "Domain = x")
    assert f.ini_pending(after, [DOMAIN]) == []


@pytest.mark.parametrize("text, settings, expected", [
    # the same option twice: the satisfied item's line is rewritten by the other
    ("[General]\nDomain = x\n", [s(value="y"), DOMAIN], [0, 1]),
    ("[General]\nDomain = x\n", [DOMAIN, s(value="y")], [0, 1]),
    ("[General]\nDomain=x\n", [dict(DOMAIN, no_extra_spaces=False), DOMAIN], [0, 1]),
    # another option of the same section does not disturb it
    ("[General]\nDomain = x\n", [DOMAIN, s(option="Verbosity", value=0)], [1]),
    ("[General]\nVerbosity = 0\nDomain = x\n", [s(option="Verbosity", value=1), DOMAIN], [0]),
    # nor does the same option in another section or a section appended at the end
    ("[General]\nDomain = x\n[Mapping]\nDomain = y\n", [DOMAIN, s("Mapping")], [1]),
    ("[General]\nDomain = x\n", [DOMAIN, s("Mapping")], [1]),
    ("Domain = x\n", [s(None), s("General")], [1]),
    # (an appended header that also reads as [General] comes after the first [General])
    ("[General]\nDomain = x\n", [s("General] x", "Domain", "y"), DOMAIN], [0]),
    # a line that ini_file writes as two lines, or that opens a section, may disturb anything
    ("[Mapping]\n[General]\nDomain = x\n", [s("Mapping", "Extra", "a\nDomain = y"), DOMAIN], [0, 1]),
    ("[General]\nDomain = x\n[Mapping]\n", [s("Mapping", "Extra", "a\rDomain = y"), DOMAIN], [0, 1]),
    ("[Mapping]\n[General]\nDomain = x\n", [s("Mapping", "[General]", "y"), DOMAIN], [0, 1]),
    ("[General]\nDomain = x\n", [s("Mapping]\n[General", "Domain", "y"), DOMAIN], [0, 1]),
    # only the disturbed item joins: a third one of the same section stays skipped
    ("[General]\nDomain = x\nDomain2 = z\n", [s(option="Domain2", value="z"), s(value="y"), DOMAIN], [1, 2]),
])
def test_settings_that_may_undo_another(text, settings, expected, ini_file, target):
    chosen = check_loop(ini_file, target, text, settings)[0]
    assert [settings.index(item) for item in chosen] == expected


# --- every sample file and setting against the module --------------------------------------------

SAMPLES = {
    "idmapd": IDMAPD,
    "idmapd set": IDMAPD.replace("# Domain = localdomain", "Domain = x"),
    "idmapd set, no blanks": IDMAPD.replace("# Domain = localdomain", "Domain=x").replace("Verbosity = 0", "Verbosity=0"),
    "idmapd CRLF": IDMAPD.replace("\n", "\r\n"),
    "idmapd set, CRLF": IDMAPD.replace("# Domain = localdomain", "Domain = x").replace("\n", "\r\n"),
    "idmapd without final newline": IDMAPD.rstrip("\n"),
    "nfs.conf": NFS_CONF,
    "nfs.conf set": NFS_CONF.replace("# threads=8", "threads=16").replace("# vers3=y", "vers3=n").replace("# vers4=y", "vers4=y")
    .replace("# vers4.0=y", "vers4.0=n").replace("# vers4.1=y", "vers4.1=y").replace("# vers4.2=y", "vers4.2=y")
    .replace("# descriptors=0\n# port=0", "# descriptors=0\nport=20048"),
    "empty": "",
    "blank lines": "\n\n",
    "no section": "Domain = x\nthreads=16\n",
    "duplicate sections": "[General]\nVerbosity = 0\n[Mapping]\nNobody-User = nobody\n[General]\nDomain = x\n[nfsd]\nthreads=16\n[nfsd]\nthreads=8\n",
    "messy": "; top\nDomain=y\n [General]\n[ General ]  ; again\n\tDomain = x\n#Domain=x\nDomain = x\n\n[Mapping]\r\nNobody-User=nobody\r\n"
             "# Domain = x\n[nfsd]\nthreads = 16\nthreads=16\n# threads=16\n[mountd]\n;port=20048\nport: 20048\n",
    "bom": "\ufeff[General]\nDomain = x\n[nfsd]\nthreads=16\n",
}
SETTINGS = [
    DOMAIN,
    s(value="y"),
    s(value="localdomain"),
    s(option="Verbosity", value=0),
    s(option="Verbosity", value="1"),
    s("Mapping", "Nobody-User", "nobody"),
    s("Mapping", "Nobody-Group", "nobody"),
    s("Mapping"),
    s(None),
    s(None, value="y"),
    s("Missing"),
    s("nfsd", "threads", 16),
    s("nfsd", "threads", "8"),
    s("nfsd", "vers4", "y"),
    s("nfsd", "vers4.0", "n"),
    s("mountd", "port", 20048),
    s("general", "pipefs-directory", "/run/rpc_pipefs"),
]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_against_the_module(name, ini_file, target):
    """For each setting on its own: pending is exactly the module's changed, first on the sample,
    then (the rerun) on what the module wrote; and the loop of all of them leaves the same file."""
    text = SAMPLES[name]
    for no_extra_spaces in (False, True):
        for setting in SETTINGS:
            path = target(text)
            assert ini_file(path, setting, no_extra_spaces) is pending(text, setting, no_extra_spaces), (name, setting, no_extra_spaces)
            after = read(path)
            assert ini_file(path, setting, no_extra_spaces) is pending(after, setting, no_extra_spaces), (name, setting, no_extra_spaces)
        check_loop(ini_file, target, text, SETTINGS[:1] + SETTINGS[3:6] + SETTINGS[8:9] + SETTINGS[11:], no_extra_spaces)


# --- random files ---------------------------------------------------------------------------------

HEADERS = ["[General]\n", "[ General ]\n", " [General]\n", "[General] # x\n", "[Mapping]\n", "[nfsd]\n"]
LINES = ["Domain = x\n", "Domain=x\n", "Domain = y\n", "# Domain = x\n", "#Domain=x\n", "; Domain = y\n", "Domain\t=\tx\n",
         "Domain: x\n", "Domain\n", "Domain = \n", "  Domain = x\n", "Domain2 = x\n", "Verbosity = 0\n", "Verbosity=0\n",
         "# Verbosity = 1\n", "# comment\n", "\n", "   \n", "threads=16\n", "# threads=8\n"]
POOL = [DOMAIN, s(value="y"), s(value=""), s(None), s("Mapping"), s("nfsd", "threads", 16), s(option="Verbosity", value=0),
        s(option="Verbosity", value=1), s(option="Domain2", value="x"), s("Missing", "Domain", "x")]


def random_text(rng):
    lines = [rng.choice(HEADERS) if rng.random() < 0.2 else rng.choice(LINES) for index in range(rng.randint(0, 12))]
    text = "".join(lines)
    if rng.random() < 0.15:
        text = text.replace("\n", "\r\n")
    if rng.random() < 0.1:
        text = text.rstrip("\n")
    if rng.random() < 0.05:
        text = "\ufeff" + text
    return text


def test_random_files_against_the_module(ini_file, target):
    rng = random.Random(20240611)
    for case in range(150):
        text = random_text(rng)
        no_extra_spaces = rng.random() < 0.5
        setting = rng.choice(POOL)
        assert ini_file(target(text), setting, no_extra_spaces) is pending(text, setting, no_extra_spaces), (case, text, setting)
        settings = rng.sample(POOL, rng.randint(2, 5))
        check_loop(ini_file, target, text, settings, no_extra_spaces)


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, match", [
    ([DOMAIN, {"section": "General", "option": "Domain"}], r"settings\[1\] .* has no 'value'"),
    ([{"option": "Domain", "value": "x"}], r"settings\[0\] .* has no 'section'"),
    ([DOMAIN, DOMAIN, {"section": "General", "value": "x"}], r"settings\[2\] .* has no 'option'"),
    ([s(value=True)], r"settings\[0\] .*value must be a string or a number.*bool"),
    ([s(value=None)], r"settings\[0\] .*value must be a string or a number.*NoneType"),
    ([DOMAIN, s(value=["x"])], r"settings\[1\] .*value must be a string or a number.*list"),
    ([s(section=1)], r"settings\[0\] .*section must be a string or null.*int"),
    ([s(option="")], r"settings\[0\] .*option must be a non-empty string"),
    ([s(option=None)], r"settings\[0\] .*option must be a non-empty string"),
    (["General.Domain=x"], r"settings\[0\] 'General.Domain=x' is not a dict"),
    ([dict(DOMAIN, state="absent")], r"settings\[0\] .*only state=present"),
    ([dict(DOMAIN, exclusive=False)], r"settings\[0\] .*only exclusive=True"),
    ([dict(DOMAIN, modify_inactive_option="no")], r"settings\[0\] .*only modify_inactive_option=True"),
    ([dict(DOMAIN, allow_no_value=True)], r"settings\[0\] .*only allow_no_value=False"),
    ([dict(DOMAIN, values=["x", "y"])], r"settings\[0\] .*'values' is not modelled"),
    ([dict(DOMAIN, no_extra_spaces="sometimes")], r"settings\[0\] .*no_extra_spaces must be a boolean"),
    (DOMAIN, r"settings must be a list"),
    ("General.Domain", r"settings must be a list"),
])
def test_bad_settings_name_the_item(settings, match):
    with pytest.raises(AnsibleFilterError, match=match):
        f.ini_pending(IDMAPD, settings)
    with pytest.raises(AnsibleFilterError, match=match):
        f.ini_pending(None, settings)


def test_bad_text_and_flag():
    with pytest.raises(AnsibleFilterError, match="text must be a string or null, got int"):
        f.ini_pending(42, [DOMAIN])
    with pytest.raises(AnsibleFilterError, match="no_extra_spaces must be a boolean"):
        f.ini_pending(IDMAPD, [DOMAIN], no_extra_spaces="maybe")


def test_modelled_defaults_and_item_flag_are_accepted():
    assert f.ini_pending("[General]\nDomain=x\n", [dict(DOMAIN, state="present", exclusive=True, modify_inactive_option="yes")]) == [
        dict(DOMAIN, state="present", exclusive=True, modify_inactive_option="yes")]
    assert f.ini_pending("[General]\nDomain=x\n", [dict(DOMAIN, no_extra_spaces=True, owner="root")]) == []
    assert f.ini_pending("[General]\nDomain=x\n", [dict(DOMAIN, no_extra_spaces=False)], no_extra_spaces=True) != []
