# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.host_state_info: paths and dpkg run for real on this machine; the parsing of
dpkg-query, rpm and systemctl output with AnsibleModule.run_command replaced; argument checks,
check mode, and the documentation against what the module takes and returns."""

import grp
import json
import os
import pwd
import shutil
import subprocess

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.juno.hub.plugins.modules import host_state_info

PROPERTIES = "--property=Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload"
UNKNOWN_UNIT = dict(id=None, load_state=None, active_state=None, sub_state=None, unit_file_state=None,
                    need_daemon_reload=False)
HAS_DPKG = shutil.which("dpkg-query") is not None


# Every test runs a module in this process as on a target (module_context, in conftest.py).
pytestmark = pytest.mark.usefixtures("module_context")


@pytest.fixture
def run(capsys):
    def _run(check_mode=False, **args):
        args.update(_ansible_check_mode=check_mode)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as e:
                host_state_info.main()
        out = json.loads(capsys.readouterr().out)
        assert (e.value.code == 0) is not bool(out.get("failed")), out
        return out
    return _run


@pytest.fixture
def commands(monkeypatch):
    """Replace AnsibleModule.run_command: ``commands.answer[basename] = (rc, out, err)`` or a
    function of the argument list; every call is recorded in ``commands.calls``."""
    class Commands(object):
        def __init__(self):
            self.answer = {}
            self.calls = []

    fake = Commands()

    def run_command(module, args, **kwargs):
        fake.calls.append(list(args))
        answer = fake.answer[os.path.basename(args[0])]
        return answer(args) if callable(answer) else answer

    monkeypatch.setattr(AnsibleModule, "run_command", run_command)
    return fake


@pytest.fixture
def binaries(monkeypatch):
    """Replace AnsibleModule.get_bin_path: only the names given to ``binaries(...)`` exist, in /usr/bin."""
    def install(*present):
        def get_bin_path(module, arg, required=False, opt_dirs=None):
            if arg in present:
                return "/usr/bin/" + arg
            if required:
                module.fail_json(msg="Failed to find required executable %s" % arg)
            return None
        monkeypatch.setattr(AnsibleModule, "get_bin_path", get_bin_path)
    return install


def dpkg_lines(*rows):
    """dpkg-query -W lines: (binary:Package, Package, Architecture, db:Status-Abbrev, Version)."""
    return "".join("\t".join(row) + "\n" for row in rows)


@pytest.fixture
def dpkg(commands, binaries):
    """dpkg-query and dpkg present on an amd64 host; set ``commands.answer["dpkg-query"]``."""
    binaries("dpkg-query", "dpkg", "systemctl")
    commands.answer["dpkg"] = (0, "amd64\n", "")
    return commands


# Documentation

@pytest.fixture(scope="module")
def docs(ansible_doc):
    return ansible_doc("juno.hub.host_state_info")


@pytest.fixture
def argument_spec(monkeypatch, run):
    """The argument_spec main() gives AnsibleModule (the module has no argument_spec() function)."""
    seen = {}

    class Recording(AnsibleModule):
        def __init__(self, argument_spec, **kwargs):
            seen.update(argument_spec)
            super(Recording, self).__init__(argument_spec, **kwargs)

    monkeypatch.setattr(host_state_info, "AnsibleModule", Recording)
    run()
    return seen


def test_documentation_matches_argument_spec(docs, argument_spec):
    options = docs["doc"]["options"]
    assert sorted(options) == sorted(argument_spec)
    assert {"packages", "units", "paths"} <= set(argument_spec)
    for name, s in argument_spec.items():
        d = options[name]
        for key, default in (("type", "str"), ("default", None), ("elements", None), ("choices", None)):
            assert d.get(key, default) == s.get(key, default), (name, key)
        assert bool(d.get("required")) == bool(s.get("required")), name
    attributes = docs["doc"]["attributes"]
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["diff_mode"]["support"] == "none"
    assert attributes["platform"]["platforms"] == "posix"
    assert docs["doc"]["module"] == "host_state_info"
    assert docs["examples"].strip()


def test_every_attribute_has_a_description(docs):
    assert {name: bool(a.get("description")) for name, a in docs["doc"]["attributes"].items()} == \
        dict.fromkeys(docs["doc"]["attributes"], True)


def test_documented_return_values_are_what_main_returns(docs, run, tmp_path, dpkg):
    commands = dpkg
    commands.answer["dpkg-query"] = (0, dpkg_lines(("chrony", "chrony", "amd64", "ii ", "4.3-2")), "")
    commands.answer["systemctl"] = (0, "Id=chrony.service\nLoadState=loaded\nActiveState=active\nSubState=running\n"
                                       "UnitFileState=enabled\nNeedDaemonReload=no\n", "")
    out = run(packages=["chrony"], units=["chrony"], paths=[str(tmp_path)], sysctl=["kernel.panic"],
              contents=["/proc/filesystems"])
    returned = docs["return"]
    assert sorted(returned) == sorted(k for k in out if k not in ("changed", "invocation", "warnings", "deprecations"))
    assert sorted(returned["units"]["contains"]) == sorted(out["units"]["chrony"])
    assert sorted(returned["paths"]["contains"]) == sorted(out["paths"][str(tmp_path)])
    for key, value in out.items():
        if key in returned and value is not None:
            assert isinstance(value, {"str": str, "dict": dict, "list": list, "bool": bool}[returned[key]["type"]]), key


# Paths, for real

def test_paths(run, tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link-to-dir").symlink_to(tmp_path / "dir")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    names = ["file", "dir", "missing", "missing/below", "link-to-dir", "dangling"]
    out = run(paths=[str(tmp_path / n) for n in names])
    assert out["changed"] is False
    assert list(out["paths"]) == [str(tmp_path / n) for n in names]
    got = {n: out["paths"][str(tmp_path / n)] for n in names}
    owner = dict(owner=pwd.getpwuid(os.geteuid()).pw_name, group=grp.getgrgid(os.getegid()).gr_name)
    os.chmod(str(tmp_path / "dir"), 0o2750)
    dir_mode = run(paths=[str(tmp_path / "dir")])["paths"][str(tmp_path / "dir")]["mode"]
    assert got["file"] == dict(exists=True, isdir=False, writeable=True, mode="%04o" % (0o666 & ~current_umask()), **owner)
    assert got["dir"] == dict(got["dir"], exists=True, isdir=True, writeable=True, **owner)
    assert dir_mode == "2750"  # setgid included, file type left out
    missing = dict(exists=False, isdir=False, writeable=False, owner=None, group=None, mode=None)
    assert got["missing"] == got["missing/below"] == missing
    assert got["link-to-dir"] == got["dir"]  # links are followed
    assert got["dangling"] == missing
    assert out["packages"] == {} and out["packages_missing"] == [] and out["units"] == {}
    assert out["package_manager"] is None and out["systemd"] is True
    assert out.get("sysctl", {}) == {}


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_owner_without_a_name_is_the_number(run, tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_text("x")

    def unknown(ident):
        raise KeyError(ident)

    monkeypatch.setattr(host_state_info.pwd, "getpwuid", unknown)
    monkeypatch.setattr(host_state_info.grp, "getgrgid", unknown)
    got = run(paths=[str(path)])["paths"][str(path)]
    assert (got["owner"], got["group"]) == (str(os.stat(str(path)).st_uid), str(os.stat(str(path)).st_gid))


# Contents, for real

def test_contents(run, tmp_path):
    (tmp_path / "text").write_text(u"# swap\n/dev/sda2 none swap sw 0 0\nvalue = \u00e9\n", encoding="utf-8")
    (tmp_path / "empty").write_text("")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "text")
    (tmp_path / "unreadable").write_text("secret")
    os.chmod(str(tmp_path / "unreadable"), 0)
    names = ["text", "empty", "binary", "dir", "missing", "link", "unreadable"]
    out = run(contents=[str(tmp_path / n) for n in names])
    assert out["changed"] is False
    assert list(out["contents"]) == [str(tmp_path / n) for n in names]
    got = {n: out["contents"][str(tmp_path / n)] for n in names}
    assert got["text"] == u"# swap\n/dev/sda2 none swap sw 0 0\nvalue = \u00e9\n"
    assert got["empty"] == ""
    assert got["binary"] is None and got["dir"] is None and got["missing"] is None
    assert got["link"] == got["text"]
    # root reads a mode 0 file; anyone else gets null.
    assert got["unreadable"] == ("secret" if os.geteuid() == 0 else None)


def test_contents_of_proc_files_are_read(run):
    """/proc files report size 0 but have text: the kernel's filesystems list is read in full."""
    with open("/proc/filesystems") as handle:
        expected = handle.read()
    assert run(contents=["/proc/filesystems"])["contents"]["/proc/filesystems"] == expected


def test_contents_larger_than_the_limit_are_null(run, tmp_path, monkeypatch):
    monkeypatch.setattr(host_state_info, "_CONTENT_LIMIT", 10)
    (tmp_path / "at").write_text("0123456789")
    (tmp_path / "over").write_text("0123456789a")
    out = run(contents=[str(tmp_path / "at"), str(tmp_path / "over")])["contents"]
    assert out == {str(tmp_path / "at"): "0123456789", str(tmp_path / "over"): None}


@pytest.mark.parametrize("bad", ["relative", "~/x", ""])
def test_relative_contents_path_is_refused(run, tmp_path, bad):
    out = run(contents=[str(tmp_path), bad])
    assert out["failed"] is True
    assert out["msg"].startswith("contents[1] is %r; it must be an absolute path" % bad), out["msg"]


def test_read_only_file(run, tmp_path):
    path = tmp_path / "ro"
    path.write_text("x")
    os.chmod(path, 0o444)
    got = run(paths=[str(path)])["paths"][str(path)]
    assert got["exists"] is True and got["isdir"] is False
    # access(2) lets root write a 0444 file; for anyone else it is not writeable.
    if os.geteuid() != 0:
        assert got["writeable"] is False
    assert got["writeable"] is os.access(str(path), os.W_OK)


@pytest.mark.parametrize("bad", ["~/x", "$HOME"])
def test_path_is_not_expanded(run, tmp_path, monkeypatch, bad):
    """`paths` are used as given: a result keyed by an expansion could not be looked up by the task."""
    monkeypatch.setenv("HOME", str(tmp_path))
    out = run(paths=[bad])
    assert out["failed"] is True and out["msg"].startswith("paths[0] is %r; it must be an absolute path" % bad)


@pytest.mark.parametrize("bad", ["relative/path", "", "./x"])
def test_relative_path_is_refused(run, tmp_path, bad):
    out = run(paths=[str(tmp_path), bad])
    assert out["failed"] is True
    assert out["msg"].startswith("paths[1] is %r; it must be an absolute path" % bad), out["msg"]


# Argument checks

@pytest.mark.parametrize("what", ["packages", "units", "sysctl"])
@pytest.mark.parametrize("bad", ["two words", "-h", "--version", "tab\there", ""])
def test_bad_name_is_refused_before_any_command(run, commands, what, bad):
    out = run(**{what: ["fine", "also-fine", bad]})
    assert out["failed"] is True
    assert out["msg"].startswith("%s[2] is %r; it must be a name without spaces, not starting with '-'" % (what, bad)), out["msg"]
    assert commands.calls == []


@pytest.mark.parametrize("bad", ["chrony*", "nfs-?.service", "getty@[12].service"])
def test_unit_pattern_is_refused(run, commands, bad):
    """systemctl show expands patterns, and states are matched to names by position."""
    out = run(units=["chrony", bad])
    assert out["failed"] is True
    assert out["msg"] == "units[1] is %r; it must name one unit, not a pattern" % bad
    assert commands.calls == []


# Packages: dpkg, for real

@pytest.mark.skipif(not HAS_DPKG, reason="dpkg-query is not on this machine")
def test_dpkg_for_real(run):
    out = run(packages=["dpkg", "coreutils", "juno-no-such-package"])
    assert out["package_manager"] == "dpkg"
    assert out["packages_missing"] == ["juno-no-such-package"]
    assert out["packages"]["juno-no-such-package"] is None
    for name in ("dpkg", "coreutils"):
        version = out["packages"][name]
        expected = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, check=True).stdout
        assert version == expected and version, name


@pytest.mark.skipif(not HAS_DPKG, reason="dpkg-query is not on this machine")
def test_dpkg_for_real_arch_qualifier(run):
    """dpkg prints `libc6:<arch>` (Multi-Arch: same) but `coreutils` without a qualifier; both
    count asked with or without the native architecture, and not for another one."""
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    other = "s390x" if arch != "s390x" else "amd64"
    out = run(packages=["libc6", "libc6:" + arch, "coreutils:" + arch, "coreutils", "coreutils:" + other])
    assert out["packages"]["libc6"] and out["packages"]["libc6"] == out["packages"]["libc6:" + arch]
    assert out["packages"]["coreutils"] and out["packages"]["coreutils"] == out["packages"]["coreutils:" + arch]
    assert out["packages_missing"] == ["coreutils:" + other]


@pytest.mark.skipif(not HAS_DPKG, reason="dpkg-query is not on this machine")
def test_dpkg_for_real_only_exact_names_are_asked(run, monkeypatch):
    calls = []
    real = AnsibleModule.run_command

    def spy(module, args, **kwargs):
        calls.append(list(args))
        return real(module, args, **kwargs)

    monkeypatch.setattr(AnsibleModule, "run_command", spy)
    out = run(packages=["coreutils=1.0", "core*", "coreutils", "juno-no-such-package", "CoreUtils"])
    assert out["packages_missing"] == ["coreutils=1.0", "core*", "juno-no-such-package", "CoreUtils"]
    assert out["packages"]["coreutils"] and out["packages"]["core*"] is None
    assert [os.path.basename(c[0]) for c in calls] == ["dpkg-query", "dpkg"]
    assert calls[0][calls[0].index("--") + 1:] == ["coreutils", "juno-no-such-package"]

    calls[:] = []
    out = run(packages=["coreutils=1.0", "core*"])
    assert out["package_manager"] == "dpkg" and out["packages_missing"] == ["coreutils=1.0", "core*"]
    assert calls == []  # nothing exact to ask


# Packages: dpkg-query output parsed

def test_dpkg_status_and_arch_qualifier(run, dpkg):
    commands = dpkg
    commands.answer["dpkg-query"] = (1, dpkg_lines(
        ("installed", "installed", "amd64", "ii ", "1.0-1"),
        ("held", "held", "amd64", "hi ", "2.0-1"),
        ("removed", "removed", "amd64", "rc ", "3.0-1"),
        ("unpacked", "unpacked", "amd64", "iU ", "4.0-1"),
        ("purged", "purged", "amd64", "un ", ""),
        ("foo:amd64", "foo", "amd64", "ii ", "5.0-1"),
        ("bar:amd64", "bar", "amd64", "ii ", "6.0-1"),
        ("data", "data", "all", "ii ", "7.0-1"),
        ("baz", "baz", "amd64", "ii ", "8.0-1"),
    ), "dpkg-query: no packages found matching absent\n")
    names = ["installed", "held", "removed", "unpacked", "purged", "absent", "foo:amd64", "bar", "data", "baz:amd64"]
    out = run(packages=names)
    assert out["package_manager"] == "dpkg"
    assert out["packages"] == {"installed": "1.0-1", "held": "2.0-1", "removed": None, "unpacked": None,
                               "purged": None, "absent": None, "foo:amd64": "5.0-1", "bar": "6.0-1",
                               "data": "7.0-1", "baz:amd64": "8.0-1"}
    assert out["packages_missing"] == ["removed", "unpacked", "purged", "absent"]
    # dpkg_selections' "hold": 'h' first; a held package that is not installed is not listed
    assert out["packages_held"] == ["held"]
    args = commands.calls[0]
    assert args[:2] == ["/usr/bin/dpkg-query", "-W"]
    assert args[args.index("--") + 1:] == names


def test_dpkg_held_by_name_and_qualifier(run, dpkg):
    dpkg.answer["dpkg-query"] = (0, dpkg_lines(
        ("kubeadm", "kubeadm", "amd64", "hi ", "1.32.4-1.1"),
        ("kubelet", "kubelet", "amd64", "ii ", "1.32.4-1.1"),
        ("libx:amd64", "libx", "amd64", "hi ", "1"),
        ("gone", "gone", "amd64", "hc ", "1"),
    ), "")
    out = run(packages=["kubelet", "kubeadm", "libx:amd64", "libx", "gone"])
    assert out["packages_held"] == ["kubeadm", "libx:amd64", "libx"]
    assert out["packages_missing"] == ["gone"]


@pytest.mark.skipif(not HAS_DPKG, reason="dpkg-query is not on this machine")
def test_dpkg_held_for_real_matches_get_selections(run):
    out = run(packages=["dpkg", "coreutils"])
    selections = subprocess.run(["dpkg", "--get-selections", "dpkg", "coreutils"], capture_output=True, text=True, check=True).stdout
    expected = [line.split()[0] for line in selections.splitlines() if line.split()[1] == "hold"]
    assert out["packages_held"] == expected


def test_dpkg_line_with_unexpected_fields_is_ignored(run, dpkg):
    dpkg.answer["dpkg-query"] = (0, "garbage\nfoo\tfoo\tamd64\tii \n\nbar\tbar\tamd64\tii \t1\textra\n", "")
    out = run(packages=["foo", "bar"])
    assert out["packages_missing"] == ["foo", "bar"]


def test_dpkg_query_error_fails_the_module(run, dpkg):
    dpkg.answer["dpkg-query"] = (2, "", "dpkg-query: error: database is locked\n")
    out = run(packages=["foo"])
    assert out["failed"] is True
    assert out["msg"] == "dpkg-query failed (rc 2): dpkg-query: error: database is locked"


def test_dpkg_foreign_architecture_does_not_count_for_the_bare_name(run, dpkg):
    # What dpkg-query -W prints for `libfoo` on amd64 when only libfoo:i386 is installed.
    dpkg.answer["dpkg-query"] = (0, dpkg_lines(("libfoo:i386", "libfoo", "i386", "ii ", "1.0-1")), "")
    out = run(packages=["libfoo", "libfoo:i386"])
    assert out["packages_missing"] == ["libfoo"]
    assert out["packages"]["libfoo:i386"] == "1.0-1"


def test_dpkg_without_its_architecture_counts_no_bare_name(run, commands, binaries):
    """No `dpkg --print-architecture`: a bare name cannot be matched to the native package, so it counts as missing."""
    binaries("dpkg-query")
    commands.answer["dpkg-query"] = (0, dpkg_lines(("foo", "foo", "amd64", "ii ", "1.0")), "")
    out = run(packages=["foo", "foo:amd64"])
    assert out["packages_missing"] == ["foo"]


# Packages: rpm, parsed

def rpm_answer(installed):
    def answer(args):
        name = args[-1]
        if name in installed:
            return 0, installed[name] + "\n", ""
        return 1, "package %s is not installed\n" % name, ""
    return answer


def test_rpm(run, commands, binaries):
    binaries("rpm")
    commands.answer["rpm"] = rpm_answer({"chrony": "4.5-3.el9", "nfs-utils": "2.5.4-27.el9", "bash": "5.1.8-9.el9"})
    names = ["nfs-utils", "absent", "chrony", "@core", "bash", "/usr/bin/true"]
    out = run(packages=names)
    assert out["package_manager"] == "rpm"
    assert out["packages"] == {"nfs-utils": "2.5.4-27.el9", "absent": None, "chrony": "4.5-3.el9",
                               "@core": None, "bash": "5.1.8-9.el9", "/usr/bin/true": None}
    assert out["packages_missing"] == ["absent", "@core", "/usr/bin/true"]
    # One query per name that looks like a package name; groups and files are not asked.
    assert [c[-1] for c in commands.calls] == ["nfs-utils", "absent", "chrony", "bash"]
    # By exact name: a virtual provide is reported missing, and dnf decides.
    assert commands.calls[0] == ["/usr/bin/rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\\n", "nfs-utils"]


def test_rpm_error_or_empty_answer_counts_as_missing(run, commands, binaries):
    binaries("rpm")
    commands.answer["rpm"] = lambda args: {"locked": (2, "", "error: rpmdb open failed\n"), "empty": (0, "", "")}[args[-1]]
    out = run(packages=["locked", "empty"])
    assert out["packages_missing"] == ["locked", "empty"]


def test_dpkg_is_preferred_over_rpm(run, commands, binaries):
    binaries("dpkg-query", "dpkg", "rpm")
    commands.answer["dpkg"] = (0, "amd64\n", "")
    commands.answer["dpkg-query"] = (0, dpkg_lines(("foo", "foo", "amd64", "ii ", "1")), "")
    out = run(packages=["foo"])
    assert out["package_manager"] == "dpkg" and out["packages"] == {"foo": "1"}
    assert [os.path.basename(c[0]) for c in commands.calls] == ["dpkg-query", "dpkg"]


def test_no_package_manager(run, commands, binaries):
    binaries()
    out = run(packages=["chrony", "nfs-common"])
    assert out["package_manager"] is None
    assert out["packages"] == {"chrony": None, "nfs-common": None}
    assert out["packages_missing"] == ["chrony", "nfs-common"]
    assert commands.calls == []


# Units

SHOW = """Id=chrony.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
NeedDaemonReload=no

Id=swap.target
LoadState=masked
ActiveState=inactive
SubState=dead
UnitFileState=masked
NeedDaemonReload=no

Id=nfs-server.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=
NeedDaemonReload=yes
"""


def test_parse_show():
    blocks = host_state_info.parse_show(SHOW, 3)
    assert [b["Id"] for b in blocks] == ["chrony.service", "swap.target", "nfs-server.service"]
    assert blocks[2]["UnitFileState"] == "" and blocks[2]["NeedDaemonReload"] == "yes"
    assert host_state_info.parse_show("\n\nA=1\n\n\n\nA=2\nnoise\nB=x=y\n\n", 2) == [{"A": "1"}, {"A": "2", "B": "x=y"}]
    assert host_state_info.parse_show("", 0) == []
    assert host_state_info.parse_show(SHOW, 2) is None
    assert host_state_info.parse_show(SHOW, 4) is None
    assert host_state_info.parse_show("", 1) is None


def test_units_map_each_name_to_its_block_in_order(run, commands, binaries):
    binaries("systemctl")
    commands.answer["systemctl"] = (0, SHOW, "")
    names = ["chrony", "swap.target", "nfs-server.service"]
    out = run(units=names)
    assert out["systemd"] is True
    assert list(out["units"]) == names
    assert out["units"]["chrony"] == dict(id="chrony.service", load_state="loaded", active_state="active",
                                          sub_state="running", unit_file_state="enabled", need_daemon_reload=False)
    assert out["units"]["swap.target"]["load_state"] == "masked"
    assert out["units"]["nfs-server.service"] == dict(id="nfs-server.service", load_state="not-found", active_state="inactive",
                                                      sub_state="dead", unit_file_state="", need_daemon_reload=True)
    assert commands.calls == [["/usr/bin/systemctl", "show", PROPERTIES, "--"] + names]


def test_read_units_directly(commands, binaries):
    binaries("systemctl")
    commands.answer["systemctl"] = (0, SHOW, "")

    class Module(object):
        get_bin_path = AnsibleModule.get_bin_path
        run_command = AnsibleModule.run_command

    systemd, units = host_state_info.read_units(Module(), ["a", "b", "c"])
    assert systemd is True and [u["id"] for u in units.values()] == ["chrony.service", "swap.target", "nfs-server.service"]
    assert host_state_info.read_units(Module(), []) == (True, {})
    assert host_state_info.read_units(Module(), ["a", "b"]) == (False, {"a": UNKNOWN_UNIT, "b": UNKNOWN_UNIT})


def test_systemctl_failing_gives_unknown_states(run, commands, binaries):
    binaries("systemctl")
    err = "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n"
    commands.answer["systemctl"] = (1, "", err)
    out = run(units=["chrony", "swap.target"])
    assert out["systemd"] is False
    assert out["units"] == {"chrony": UNKNOWN_UNIT, "swap.target": UNKNOWN_UNIT}
    assert "failed" not in out


def test_no_systemctl_gives_unknown_states(run, commands, binaries):
    binaries()
    out = run(units=["chrony"])
    assert out["systemd"] is False and out["units"] == {"chrony": UNKNOWN_UNIT}
    assert commands.calls == []


def test_units_for_real(run):
    """Whatever this machine answers (in a container, often no systemd), the shape is the same."""
    out = run(units=["juno-no-such-unit", "swap.target"])
    assert list(out["units"]) == ["juno-no-such-unit", "swap.target"]
    if out["systemd"]:
        assert out["units"]["juno-no-such-unit"]["load_state"] == "not-found"
        assert out["units"]["juno-no-such-unit"]["id"] == "juno-no-such-unit.service"
    else:
        assert all(state == UNKNOWN_UNIT for state in out["units"].values())


# Kernel parameters, for real

def test_sysctl_for_real(run, tmp_path):
    names = ["kernel.ostype", "kernel/ostype", "/kernel/ostype", "net.ipv4.ip_local_port_range",
             "juno.no.such.parameter", "net.ipv4", "../../etc/hostname", "kernel/../../../etc/hostname"]
    out = run(sysctl=names)
    assert list(out["sysctl"]) == names
    got = out["sysctl"]
    assert got["kernel.ostype"] == got["kernel/ostype"] == got["/kernel/ostype"] == "Linux"
    with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
        assert got["net.ipv4.ip_local_port_range"] == handle.read().rstrip("\n")  # tab-separated, as printed
    assert len(got["net.ipv4.ip_local_port_range"].split()) == 2
    # Unknown, a directory, and anything outside /proc/sys: null.
    for name in names[4:]:
        assert got[name] is None, name


def test_sysctl_dotted_name_with_slash_means_a_dot(run, monkeypatch):
    opened = []

    def fake_open(path, *args, **kwargs):
        opened.append(path)
        raise IOError(2, "No such file or directory", path)

    monkeypatch.setattr(host_state_info, "open", fake_open, raising=False)
    run(sysctl=["net.ipv4.conf.eth0/1.rp_filter"])
    assert opened == ["/proc/sys/net/ipv4/conf/eth0.1/rp_filter"]


# Check mode

def test_check_mode_gives_the_same_result(run, tmp_path):
    (tmp_path / "f").write_text("x")
    args = dict(packages=["coreutils", "juno-no-such-package", "core*"], units=["chrony", "swap.target"],
                paths=[str(tmp_path / "f"), str(tmp_path / "missing")], sysctl=["kernel.ostype"])
    normal, check = run(**args), run(check_mode=True, **args)
    for out in (normal, check):
        out.pop("invocation", None)
    assert normal == check
    assert check["changed"] is False
