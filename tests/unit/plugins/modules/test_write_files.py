# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.write_files run for real against tmp_path: what it writes, what it leaves alone,
check and diff mode, directories, attributes, argument checks and unsafe writes."""

import errno
import grp
import json
import os
import pwd
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.juno.hub.plugins.modules import write_files

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


# Every test runs a module in this process as on a target (module_context, in conftest.py).
pytestmark = pytest.mark.usefixtures("module_context")


@pytest.fixture
def run(capsys):
    def _run(check_mode=False, diff=False, **args):
        args.setdefault("files", [])
        args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as e:
                write_files.main()
        out = json.loads(capsys.readouterr().out)
        assert (e.value.code == 0) is not bool(out.get("failed")), out
        return out
    return _run


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def ident(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def listing(top):
    return sorted(os.path.relpath(os.path.join(d, n), top) for d, dirs, files in os.walk(str(top)) for n in dirs + files)


def three(tmp_path):
    return [dict(path=str(tmp_path / "a.conf"), content="alpha\n"),
            dict(path=str(tmp_path / "sub" / "deeper" / "b.conf"), content="bêta ✓\n", mode="0600"),
            dict(path=str(tmp_path / "c.conf"), content="", mode="644")]


@pytest.fixture(scope="module")
def docs(ansible_doc):
    return ansible_doc("juno.hub.write_files")


def test_documentation_matches_argument_spec(docs):
    def compare(documented, spec, where):
        assert sorted(documented) == sorted(spec), where
        for name, s in spec.items():
            d = documented[name]
            for key, default in (("type", "str"), ("default", None), ("elements", None)):
                assert d.get(key, default) == s.get(key, default), (where, name, key)
            assert bool(d.get("required")) == bool(s.get("required")), (where, name)
            assert not s.get("no_log"), (where, name)
            if "options" in s:
                compare(d["suboptions"], s["options"], name)

    compare(docs["doc"]["options"], write_files.argument_spec(), "top")
    attributes = docs["doc"]["attributes"]
    assert attributes["check_mode"]["support"] == attributes["diff_mode"]["support"] == "full"
    assert attributes["platform"]["platforms"] == "posix"
    assert sorted(docs["return"]) == ["changed_directories", "changed_files", "diff", "files"]


def test_writes_content_mode_and_missing_parents(run, tmp_path):
    files = three(tmp_path)
    out = run(files=files)
    assert out["changed"] is True
    assert out["changed_files"] == [f["path"] for f in files]
    assert out["files"] == [dict(path=f["path"], changed=True) for f in files]
    assert out["changed_directories"] == [str(tmp_path / "sub"), str(tmp_path / "sub" / "deeper")]
    assert read(files[0]["path"]) == b"alpha\n"
    assert read(files[1]["path"]) == "bêta ✓\n".encode("utf-8")
    assert read(files[2]["path"]) == b""
    assert [mode_of(f["path"]) for f in files] == [0o644, 0o600, 0o644]
    assert mode_of(tmp_path / "sub") == mode_of(tmp_path / "sub" / "deeper") == 0o755
    assert listing(tmp_path) == ["a.conf", "c.conf", "sub", "sub/deeper", "sub/deeper/b.conf"]  # no temporary files left
    assert "diff" not in out


def test_second_run_changes_nothing_and_touches_nothing(run, tmp_path):
    files = three(tmp_path)
    run(files=files)
    before = [ident(f["path"]) for f in files]
    out = run(files=files)
    assert out["changed"] is False
    assert out["changed_files"] == [] and out["changed_directories"] == []
    assert out["files"] == [dict(path=f["path"], changed=False) for f in files]
    assert [ident(f["path"]) for f in files] == before


def test_only_the_differing_file_is_rewritten(run, tmp_path):
    files = three(tmp_path)
    run(files=files)
    before = [ident(f["path"]) for f in files]
    files[1]["content"] = "changed\n"
    out = run(files=files)
    assert out["changed"] is True and out["changed_files"] == [files[1]["path"]]
    assert [f["changed"] for f in out["files"]] == [False, True, False]
    assert read(files[1]["path"]) == b"changed\n" and mode_of(files[1]["path"]) == 0o600
    after = [ident(f["path"]) for f in files]
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1][0] != before[1][0]  # replaced by rename, not rewritten in place


def test_check_mode_writes_nothing(run, tmp_path):
    files = three(tmp_path)
    out = run(check_mode=True, files=files, directories=[dict(path=str(tmp_path / "d" / "e"), mode="0700")])
    assert out["changed"] is True
    assert out["changed_files"] == [f["path"] for f in files]
    assert out["changed_directories"] == [str(tmp_path / p) for p in ("d", "d/e", "sub", "sub/deeper")]
    assert listing(tmp_path) == []

    run(files=files)
    os.chmod(files[0]["path"], 0o640)
    files[2]["content"] = "new\n"
    before = [ident(f["path"]) for f in files]
    out = run(check_mode=True, files=files)
    assert out["changed_files"] == [files[0]["path"], files[2]["path"]]
    assert mode_of(files[0]["path"]) == 0o640 and read(files[2]["path"]) == b""
    assert [ident(f["path"]) for f in files] == before


def test_diff_mode_returns_before_and_after(run, tmp_path):
    old, new = tmp_path / "old.conf", tmp_path / "new.conf"
    old.write_text("one\n")
    same = tmp_path / "same.conf"
    same.write_text("same\n")
    os.chmod(same, 0o600)
    files = [dict(path=str(new), content="fresh\n"), dict(path=str(old), content="two\n"),
             dict(path=str(same), content="same\n", mode="0640")]
    for check_mode in (True, False):
        out = run(check_mode=check_mode, diff=True, files=files)
        assert out["diff"] == [
            dict(before_header=str(new), after_header=str(new), before="", after="fresh\n"),
            dict(before_header=str(old), after_header=str(old), before="one\n", after="two\n"),
            dict(before_header="%s (attributes)" % same, after_header="%s (attributes)" % same,
                 before="mode: 0600\n", after="mode: 0640\n"),
        ]
    assert "diff" not in run(diff=True, files=files)


def test_directories_created_with_mode_parents_too(run, tmp_path):
    leaf = tmp_path / "etc" / "certs.d"
    directories = [dict(path=str(leaf), mode="0700"), dict(path=str(tmp_path / "plain"))]
    out = run(directories=directories, files=[dict(path=str(leaf / "ca.pem"), content="pem\n")])
    assert out["changed_directories"] == [str(tmp_path / "etc"), str(leaf), str(tmp_path / "plain")]
    assert mode_of(leaf) == 0o700 and mode_of(tmp_path / "etc") == 0o755 and mode_of(tmp_path / "plain") == 0o755
    assert read(leaf / "ca.pem") == b"pem\n"
    assert run(directories=directories)["changed"] is False

    os.chmod(leaf, 0o750)
    out = run(directories=directories)
    assert out["changed"] is True and out["changed_directories"] == [str(leaf)] and out["changed_files"] == []
    assert mode_of(leaf) == 0o700


def test_mode_only_change_is_reported_without_rewriting(run, tmp_path):
    files = three(tmp_path)
    run(files=files)
    os.chmod(files[0]["path"], 0o600)
    inode = os.stat(files[0]["path"]).st_ino
    out = run(files=files)
    assert out["changed"] is True and out["changed_files"] == [files[0]["path"]]
    assert mode_of(files[0]["path"]) == 0o644 and os.stat(files[0]["path"]).st_ino == inode


def test_owner_and_group_by_name_and_id(run, tmp_path):
    user, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    files = [dict(path=str(tmp_path / "by-name"), content="x", owner=user, group=group),
             dict(path=str(tmp_path / "by-id"), content="y", owner=str(os.geteuid()), group=str(os.getegid()))]
    directories = [dict(path=str(tmp_path / "dir"), owner=user, group=group)]
    assert run(files=files, directories=directories)["changed"] is True
    for path in (files[0]["path"], files[1]["path"], tmp_path / "dir"):
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (os.geteuid(), os.getegid())
    assert run(files=files, directories=directories)["changed"] is False


@pytest.mark.skipif(os.geteuid() != 0, reason="changing the owner needs root")
def test_owner_change_is_reported(run, tmp_path):
    nobody = pwd.getpwnam("nobody")
    path = tmp_path / "owned"
    path.write_text("x")
    out = run(files=[dict(path=str(path), content="x", owner="nobody")])
    assert out["changed_files"] == [str(path)] and os.stat(path).st_uid == nobody.pw_uid


@pytest.mark.parametrize("entry, message", [
    (dict(path="relative/file", content=""), "files[1].path: 'relative/file' must be an absolute, normalised path"),
    (dict(path="{tmp}/x/../y", content=""), "files[1].path: "),
    (dict(path="{tmp}/./y", content=""), "files[1].path: "),
    (dict(path="{tmp}//y", content=""), "files[1].path: "),
    (dict(path="{tmp}/y/", content=""), "files[1].path: "),
    (dict(path="{tmp}/first", content="again"), "files[1].path: {tmp}/first is given more than once"),
    (dict(path="{tmp}/existing-dir", content=""), "files[1].path: {tmp}/existing-dir is a directory"),
    (dict(path="{tmp}/listed-dir", content=""), "files[1].path: {tmp}/listed-dir is a directory"),
    (dict(path="{tmp}/existing-file/below", content=""), "files[1].path: {tmp}/existing-file/below cannot be created"),
    (dict(path="{tmp}/m", content="", mode=644), "files[1].mode: 644 (int) must be an octal string"),
    (dict(path="{tmp}/m", content="", mode="0999"), "files[1].mode: '0999' (str) must be an octal string"),
    (dict(path="{tmp}/m", content="", mode="u=rw"), "files[1].mode: 'u=rw' (str) must be an octal string"),
    (dict(path="{tmp}/m", content="", owner="no-such-user-juno"), "files[1].owner: there is no user 'no-such-user-juno'"),
    (dict(path="{tmp}/m", content="", group="no-such-group-juno"), "files[1].group: there is no group 'no-such-group-juno'"),
])
def test_bad_input_is_rejected_before_anything_is_written(run, tmp_path, entry, message):
    (tmp_path / "existing-dir").mkdir()
    (tmp_path / "existing-file").write_text("keep")
    entry = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in entry.items()}
    files = [dict(path=str(tmp_path / "first"), content="first"), entry]
    directories = [dict(path=str(tmp_path / "new-dir")), dict(path=str(tmp_path / "listed-dir"))]
    out = run(files=files, directories=directories)
    assert out["failed"] is True and out["msg"].startswith(message.format(tmp=tmp_path)), out["msg"]
    assert listing(tmp_path) == ["existing-dir", "existing-file"]


@pytest.mark.parametrize("entry, message", [
    (dict(path="{tmp}/existing-file"), "directories[0].path: {tmp}/existing-file exists and is not a directory"),
    (dict(path="{tmp}/d/"), "directories[0].path: "),
    (dict(path="{tmp}/d", mode="755x"), "directories[0].mode: "),
])
def test_bad_directory_is_rejected(run, tmp_path, entry, message):
    (tmp_path / "existing-file").write_text("keep")
    entry = {k: v.format(tmp=tmp_path) for k, v in entry.items()}
    out = run(files=[dict(path=str(tmp_path / "f"), content="")], directories=[entry])
    assert out["failed"] is True and out["msg"].startswith(message.format(tmp=tmp_path)), out["msg"]
    assert listing(tmp_path) == ["existing-file"]


def test_unknown_key_is_rejected(run, tmp_path):
    out = run(files=[dict(path=str(tmp_path / "f"), content="", state="absent")])
    assert out["failed"] is True and "state" in out["msg"]
    assert listing(tmp_path) == []


def test_empty_set_changes_nothing(run):
    out = run(files=[])
    assert out == dict(out, changed=False, changed_files=[], changed_directories=[], files=[])


def test_symlink_is_replaced_by_a_file(run, tmp_path):
    target, link = tmp_path / "target", tmp_path / "link"
    target.write_text("x\n")
    link.symlink_to(target)
    out = run(files=[dict(path=str(link), content="x\n")])
    assert out["changed_files"] == [str(link)]
    assert not link.is_symlink() and read(link) == b"x\n" and read(target) == b"x\n"


@pytest.fixture
def busy(monkeypatch):
    """Renaming onto `target` fails with EBUSY, as onto a file bind-mounted into a container."""
    target = {}
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if os.fsdecode(dst) == target.get("path"):
            raise OSError(errno.EBUSY, "Device or resource busy", os.fsdecode(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", rename)
    return target


def test_unsafe_writes_replaces_a_busy_file_in_place(run, tmp_path, busy):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    inode = os.stat(hosts).st_ino
    busy["path"] = str(hosts)
    out = run(files=[dict(path=str(hosts), content="10.0.0.1 node\n")], unsafe_writes=True)
    assert out["changed_files"] == [str(hosts)]
    assert read(hosts) == b"10.0.0.1 node\n" and os.stat(hosts).st_ino == inode
    assert listing(tmp_path) == ["hosts"]


def test_busy_file_without_unsafe_writes_fails_and_names_the_entry(run, tmp_path, busy):
    (tmp_path / "a").write_text("a")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    busy["path"] = str(hosts)
    out = run(files=[dict(path=str(tmp_path / "a"), content="A"), dict(path=str(hosts), content="10.0.0.1 node\n")])
    assert out["failed"] is True and out["msg"].startswith("files[1].path: "), out["msg"]
    assert "Device or resource busy" in out["msg"] and "see unsafe_writes" in out["msg"]
    assert out["changed_files"] == [str(tmp_path / "a")]  # what was done before the failure
    assert read(hosts) == b"127.0.0.1 localhost\n"
    assert listing(tmp_path) == ["a", "hosts"]


def test_umask_is_restored(run, tmp_path):
    previous = os.umask(0o022)
    try:
        run(files=[dict(path=str(tmp_path / "f"), content="x")])
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(previous)
