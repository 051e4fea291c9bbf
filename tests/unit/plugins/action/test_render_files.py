"""juno.hub.render_files: the controller-side writer of render mode."""

import os
import stat

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.juno.hub.plugins.action import render_files as rf


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_new_files_and_directories(tmp_path):
    dest = str(tmp_path / "cluster")
    changed = rf.render(dest, [
        {"name": "a.yaml", "content": "a: 1\n"},
        {"name": "cp1/patches/kubelet.yaml", "content": "b: 2\n", "mode": "0600"},
    ])[0]
    assert changed == [os.path.join(dest, "a.yaml"), os.path.join(dest, "cp1/patches/kubelet.yaml")]
    assert (tmp_path / "cluster" / "a.yaml").read_text() == "a: 1\n"
    assert mode_of(os.path.join(dest, "a.yaml")) == 0o644
    assert mode_of(os.path.join(dest, "cp1/patches/kubelet.yaml")) == 0o600


def test_second_run_changes_nothing(tmp_path):
    files = [{"name": "a.yaml", "content": "a: 1\n"}]
    rf.render(str(tmp_path), files)
    before = os.stat(tmp_path / "a.yaml").st_mtime_ns
    assert rf.render(str(tmp_path), files) == ([], [])
    assert os.stat(tmp_path / "a.yaml").st_mtime_ns == before


def test_only_the_differing_file_is_written(tmp_path):
    rf.render(str(tmp_path), [{"name": "a", "content": "1"}, {"name": "b", "content": "2"}])
    changed = rf.render(str(tmp_path), [{"name": "a", "content": "1"}, {"name": "b", "content": "3"}])[0]
    assert changed == [str(tmp_path / "b")]
    assert (tmp_path / "b").read_text() == "3"


def test_mode_change_alone_is_a_change_and_keeps_content(tmp_path):
    rf.render(str(tmp_path), [{"name": "s", "content": "secret", "mode": "0644"}])
    changed, diffs = rf.render(str(tmp_path), [{"name": "s", "content": "secret", "mode": "0600"}], want_diff=True)
    assert changed == [str(tmp_path / "s")]
    assert diffs == []
    assert mode_of(tmp_path / "s") == 0o600


def test_check_mode_reports_and_writes_nothing(tmp_path):
    rf.render(str(tmp_path), [{"name": "a", "content": "old\n"}])
    changed, diffs = rf.render(str(tmp_path), [{"name": "a", "content": "new\n"}, {"name": "b/c", "content": "x"}],
                               check_mode=True, want_diff=True)
    assert changed == [str(tmp_path / "a"), str(tmp_path / "b/c")]
    assert (tmp_path / "a").read_text() == "old\n"
    assert not (tmp_path / "b").exists()
    assert diffs[0]["before"] == "old\n" and diffs[0]["after"] == "new\n"
    assert diffs[1]["before_header"] == "/dev/null"


def test_no_temporary_file_is_left_behind(tmp_path):
    rf.render(str(tmp_path), [{"name": "a", "content": "1"}])
    rf.render(str(tmp_path), [{"name": "a", "content": "2"}])
    assert sorted(os.listdir(tmp_path)) == ["a"]


@pytest.mark.parametrize("files, message", [
    ("a.yaml", "files must be a list"),
    ([["a"]], "files[0] must be a dict"),
    ([{"name": "/etc/passwd", "content": ""}], "must be a relative path"),
    ([{"name": "../escape", "content": ""}], "without '..'"),
    ([{"name": "a/../../b", "content": ""}], "without '..'"),
    ([{"name": "a", "content": 3}], "content must be a string"),
    ([{"name": "a", "content": "", "mode": "rw-r--r--"}], "not an octal file mode"),
    ([{"name": "a", "content": "", "mode": "0999"}], "not an octal file mode"),
    ([{"name": "a", "content": "", "owner": "root"}], "unknown keys owner"),
    ([{"name": "a", "content": ""}, {"name": "a", "content": ""}], "given twice"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, files, message):
    with pytest.raises(AnsibleActionFail, match=message.replace("[", r"\[").replace("]", r"\]")):
        rf.render(str(tmp_path / "out"), files)
    assert not (tmp_path / "out").exists()


def test_bad_file_after_good_ones_writes_nothing(tmp_path):
    with pytest.raises(AnsibleActionFail):
        rf.render(str(tmp_path), [{"name": "good", "content": "1"}, {"name": "/bad", "content": "2"}])
    assert os.listdir(tmp_path) == []


def test_dest_must_be_given():
    with pytest.raises(AnsibleActionFail, match="dest must be a directory path"):
        rf.render("", [])
