"""Unit tests of plugins/filter/releases.py (juno_releases: checks, plan, keyed hashes of secrets),
plugins/lookup/history_key.py and plugins/callback/changes.py, and a render-mode run of
playbooks/releases.yml for inventories/example: what it writes, that a rerun changes and records
nothing, that a changed secret is a changed hash, and that a removed release leaves no file behind."""

import json
import os
import stat
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import releases as rel
from ansible_collections.juno.hub.plugins.lookup import history_key

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
INVENTORY = os.path.join(TOP, "inventories", "example")
CHART = os.path.join(TOP, "tests", "charts", "juno-test-config")


def entry(**kw):
    e = {"name": "spark-operator", "namespace": "spark", "chart": "spark-operator",
         "repo": "https://kubeflow.github.io/spark-operator", "version": "2.1.1"}
    e.update(kw)
    return {k: v for k, v in e.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# release_problems


def test_a_good_entry_has_no_problem():
    assert rel.release_problems([entry(), entry(name="local", chart=CHART, repo=None, namespace="local"),
                                 entry(name="oci", chart="oci://registry.example.edu/charts/x", repo=None, namespace="o")]) == []


@pytest.mark.parametrize("change,message", [
    ({"version": None}, "release spark-operator: version is missing; pin the chart version"),
    ({"version": ""}, "release spark-operator: version is missing; pin the chart version"),
    ({"version": "^2.1"}, "release spark-operator: version '^2.1' is a range; pin one chart version"),
    ({"name": "Spark_Operator"}, "release Spark_Operator: name 'Spark_Operator' is not a valid Helm release name"),
    ({"name": "a" * 54}, "is not a valid Helm release name; use a lower-case DNS label of at most 53 characters"),
    ({"name": None}, "juno_releases[0]: name is missing"),
    ({"namespace": None}, "release spark-operator: namespace is missing"),
    ({"namespace": "Bad_NS"}, "release spark-operator: namespace 'Bad_NS' is not a valid Kubernetes namespace"),
    ({"namespace": "hub-chemeng"}, "release spark-operator: namespace 'hub-chemeng' is the namespace of hub chemeng"),
    ({"chart": None}, "release spark-operator: chart is missing"),
    ({"chart": "repo/spark-operator"}, "release spark-operator: chart 'repo/spark-operator' must be the chart's name in repo"),
    ({"repo": "ftp://x"}, "release spark-operator: repo 'ftp://x' is not an http(s):// repository URL"),
    ({"repo": None, "chart": "charts/missing"}, "release spark-operator: chart /base/charts/missing does not exist on the control node"),
    ({"values_files": ["nope.yaml"]}, "release spark-operator: values_files entry /base/nope.yaml does not exist on the control node"),
    ({"timeout": "ten minutes"}, "release spark-operator: timeout 'ten minutes' is not a duration"),
    ({"order": "first"}, "release spark-operator: order 'first' is not an integer"),
    ({"state": "gone"}, "release spark-operator: state 'gone' is not one of present, absent"),
    ({"values": ["a"]}, "release spark-operator: values must be a dict of chart values"),
    ({"delete_pvcs": True}, "release spark-operator: delete_pvcs is only read when state is absent"),
    ({"vesion": "1"}, "release spark-operator: unknown field vesion"),
])
def test_each_problem_names_the_release_and_the_field(change, message):
    problems = rel.release_problems([entry(**change)], [{"name": "chemeng"}], "/base")
    assert len(problems) == 1, problems
    assert problems[0].startswith(message) or message in problems[0], problems


def test_duplicate_names_are_refused():
    problems = rel.release_problems([entry(), entry(namespace="other")])
    assert problems == ["release spark-operator: name is used by juno_releases[0] too; release names must be unique"]


def test_an_absent_entry_needs_only_name_and_namespace():
    assert rel.release_problems([{"name": "old", "namespace": "old", "state": "absent", "delete_pvcs": True}]) == []


def test_values_files_are_found_from_the_base_dir(tmp_path):
    (tmp_path / "v.yaml").write_text("a: 1\n")
    assert rel.release_problems([entry(values_files=["v.yaml"])], [], str(tmp_path)) == []


def test_release_problems_wants_a_list():
    with pytest.raises(AnsibleFilterError):
        rel.release_problems({"name": "x"})


# ---------------------------------------------------------------------------------------------
# release_plan


def test_plan_orders_by_order_then_list_and_removes_last_in_reverse():
    plan = rel.release_plan([
        entry(name="c"), entry(name="a", order=10), {"name": "gone1", "namespace": "g", "state": "absent", "order": 1},
        entry(name="b", order=10), {"name": "gone2", "namespace": "g", "state": "absent", "order": 2},
    ])
    assert [p["name"] for p in plan] == ["a", "b", "c", "gone2", "gone1"]


def test_plan_resolves_the_chart_and_the_defaults(tmp_path):
    plan = rel.release_plan([
        entry(), entry(name="oci", chart="oci://r.example.edu/c/x", repo=None),
        entry(name="local", chart="charts/x", repo=None, values_files=["v.yaml"]),
    ], str(tmp_path))
    repo, oci, local = plan
    assert (repo["source"], repo["chart_ref"], repo["repo"], repo["chart_path"]) == \
        ("repo", "spark-operator", "https://kubeflow.github.io/spark-operator", "")
    assert (oci["source"], oci["chart_ref"], oci["repo"]) == ("oci", "oci://r.example.edu/c/x", "")
    assert (local["source"], local["chart_ref"], local["chart_path"]) == ("path", "", str(tmp_path / "charts" / "x"))
    assert local["values_files"] == [str(tmp_path / "v.yaml")]
    assert (repo["wait"], repo["timeout"], repo["state"], repo["create_namespace"], repo["history_max"], repo["delete_pvcs"]) == \
        (True, "10m", "present", True, 10, False)


# ---------------------------------------------------------------------------------------------
# keyed hashes


def test_secret_hash_is_keyed_stable_and_changes_with_the_secret():
    a = rel.secret_hash({"grafana": {"adminPassword": "s3cret"}, "list": ["x"]}, "key1")
    assert a["grafana"]["adminPassword"].startswith("hmac-sha256:") and len(a["grafana"]["adminPassword"]) == 12 + 64
    assert "s3cret" not in json.dumps(a)
    assert a == rel.secret_hash({"grafana": {"adminPassword": "s3cret"}, "list": ["x"]}, "key1")
    assert a != rel.secret_hash({"grafana": {"adminPassword": "s3cret2"}, "list": ["x"]}, "key1")
    assert a != rel.secret_hash({"grafana": {"adminPassword": "s3cret"}, "list": ["x"]}, "key2")
    with pytest.raises(AnsibleFilterError):
        rel.secret_hash("x", "")


def test_k8s_redact_hashes_only_secrets():
    objs = [{"kind": "Secret", "metadata": {"name": "s"}, "data": {"p": "cGFzcw=="}, "stringData": {"q": "clear"}},
            {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"p": "keep"}}]
    out = rel.k8s_redact(objs, "k")
    assert out[0]["data"]["p"].startswith("hmac-sha256:") and out[0]["stringData"]["q"].startswith("hmac-sha256:")
    assert out[1] == objs[1]
    assert objs[0]["stringData"]["q"] == "clear"  # the input is not changed


def test_secret_split_uses_the_paths_of_secret_values():
    values = {"grafana": {"enabled": True, "adminPassword": "p"}, "token": "t", "plain": 1}
    out = rel.secret_split(values, {"grafana": {"adminPassword": "x"}, "token": "x"})
    assert out == {"values": {"grafana": {"enabled": True}, "plain": 1},
                   "secret_values": {"grafana": {"adminPassword": "p"}, "token": "t"}}


def test_values_changes_names_paths_never_values():
    old = {"a": {"b": 1, "c": "secret-old"}, "d": 1}
    new = {"a": {"b": 1, "c": "secret-new"}, "e": 2}
    assert rel.values_changes(old, new) == ["a.c", "d (removed)", "e (added)"]


def test_record_files_writes_sorted_yaml():
    files = rel.record_files({"releases/b.yaml": {"x": 1}, "hubs/a.yaml": [{"kind": "Namespace"}]})
    assert [f["name"] for f in files] == ["hubs/a.yaml", "releases/b.yaml"]
    assert yaml.safe_load(files[1]["content"]) == {"x": 1} and files[1]["mode"] == "0644"


def test_history_key_is_made_once_with_mode_0600(tmp_path):
    path = str(tmp_path / "site" / "history.key")
    key = history_key.read_or_create(path)
    assert len(key) == 64 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert history_key.read_or_create(path) == key


# ---------------------------------------------------------------------------------------------
# render mode of playbooks/releases.yml for inventories/example


def run_releases(tmp, *extra):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": os.path.join(TOP, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(TOP, ".collections"),
        "ANSIBLE_CACHE_PLUGIN": "memory",
        "ANSIBLE_GATHER_SUBSET": "!all,!min,distribution,platform,pkg_mgr,network",
        "ANSIBLE_NOCOLOR": "1",
    })
    base = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False,
            "juno_apply": False, "juno_render_dir": str(tmp / "rendered"), "juno_history_dir": str(tmp / "history"),
            "juno_preflight_passed": True}
    (tmp / "base.json").write_text(json.dumps(base))
    args = []
    for i, e in enumerate(extra):
        (tmp / ("extra%d.json" % i)).write_text(json.dumps(e))
        args += ["-e", "@%s" % (tmp / ("extra%d.json" % i))]
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", INVENTORY, "--vault-password-file", os.path.join(INVENTORY, "vault-password.example"),
         os.path.join(TOP, "playbooks", "releases.yml"), "-e", "@%s" % (tmp / "base.json"), *args],
        cwd=TOP, env=env, capture_output=True, text=True, timeout=900, check=False)
    return proc


def changed(stdout):
    import re
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", stdout, re.M)}


def git(tmp, *args):
    return subprocess.run(["git", "-C", str(tmp / "history"), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("releases")
    first = run_releases(tmp)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    return tmp, first


def test_render_writes_each_release_and_its_values(rendered):
    tmp = rendered[0]
    out = tmp / "rendered" / "releases"
    assert sorted(os.listdir(out)) == ["kube-prometheus-stack.release.yaml", "kube-prometheus-stack.values.yaml",
                                       "spark-operator.release.yaml", "spark-operator.values.yaml"]
    release = yaml.safe_load((out / "spark-operator.release.yaml").read_text())
    assert release["chart"] == "spark-operator" and release["version"] == "2.1.1"
    values = yaml.safe_load((out / "kube-prometheus-stack.values.yaml").read_text())
    # values files first, then inline values, then the secret values as their keyed hash
    assert values["prometheus"]["prometheusSpec"]["retention"] == "15d"
    assert values["grafana"]["enabled"] is True
    assert values["grafana"]["adminPassword"].startswith("hmac-sha256:")
    for path in [out / f for f in os.listdir(out)] + [tmp / "history" / "releases" / f for f in os.listdir(out)]:
        assert "example-grafana-password" not in path.read_text()
    assert len(git(tmp, "log", "--format=%H").split()) == 1


def test_rerun_changes_and_records_nothing_and_a_new_secret_is_a_new_hash(rendered):
    tmp, first = rendered
    again = run_releases(tmp)
    assert again.returncode == 0
    assert set(changed(again.stdout).values()) == {0}, again.stdout[-4000:]
    assert len(git(tmp, "log", "--format=%H").split()) == 1
    with open(os.path.join(INVENTORY, "group_vars", "all", "releases.yml")) as f:
        releases = yaml.safe_load(f)["juno_releases"]
    releases[1]["secret_values"]["grafana"]["adminPassword"] = "a-new-grafana-password"
    new = run_releases(tmp, {"juno_releases": releases})
    assert new.returncode == 0, new.stdout[-4000:]
    diff = git(tmp, "show", "HEAD")
    assert "-  adminPassword: hmac-sha256:" in diff and "+  adminPassword: hmac-sha256:" in diff, diff
    assert "a-new-grafana-password" not in diff + new.stdout + new.stderr
    assert "example-grafana-password" not in diff + first.stdout + first.stderr


def test_a_removed_release_leaves_no_file_behind(rendered):
    tmp = rendered[0]
    with open(os.path.join(INVENTORY, "group_vars", "all", "releases.yml")) as f:
        releases = yaml.safe_load(f)["juno_releases"]
    r = run_releases(tmp, {"juno_releases": releases[:1]})
    assert r.returncode == 0, r.stdout[-4000:]
    assert sorted(os.listdir(tmp / "rendered" / "releases")) == ["spark-operator.release.yaml", "spark-operator.values.yaml"]
    assert sorted(os.listdir(tmp / "history" / "releases")) == ["spark-operator.release.yaml", "spark-operator.values.yaml"]
    assert "deleted file mode" in git(tmp, "show", "HEAD")


def test_a_bad_entry_is_refused_before_anything_changes(tmp_path):
    r = run_releases(tmp_path, {"juno_releases": [{"name": "spark-operator", "namespace": "spark", "chart": "spark-operator",
                                                   "repo": "https://kubeflow.github.io/spark-operator"}]})
    assert r.returncode != 0
    assert "release spark-operator: version is missing" in r.stdout
    assert not (tmp_path / "rendered").exists() and not (tmp_path / "history").exists()


# ---------------------------------------------------------------------------------------------
# pvc_keep: the claims an uninstall deletes, made again


def test_pvc_keep_makes_again_only_the_claims_the_chart_made():
    helm = {"meta.helm.sh/release-name": "spark", "meta.helm.sh/release-namespace": "spark",
            "pv.kubernetes.io/bind-completed": "yes", "volume.kubernetes.io/storage-provisioner": "nfs.csi.k8s.io"}
    made = {"metadata": {"name": "spark-data", "namespace": "spark", "uid": "u1", "resourceVersion": "9",
                         "labels": {"app.kubernetes.io/instance": "spark", "app.kubernetes.io/managed-by": "Helm"}, "annotations": helm},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "",
                     "volumeMode": "Filesystem", "volumeName": "pv-1"},
            "status": {"phase": "Bound"}}
    sts = {"metadata": {"name": "data-spark-0", "namespace": "spark", "labels": {"app.kubernetes.io/instance": "spark"}},
           "spec": {"accessModes": ["ReadWriteOnce"]}}
    pending = {"metadata": {"name": "spark-cache", "namespace": "spark", "annotations": {"meta.helm.sh/release-name": "spark"}},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}
    keep = rel.pvc_keep([made, sts, pending], "spark")
    assert [(k["name"], k["volume"]) for k in keep] == [("spark-data", "pv-1"), ("spark-cache", "")]
    claim = keep[0]["claim"]
    assert claim["metadata"] == {"name": "spark-data", "namespace": "spark",
                                 "labels": {"app.kubernetes.io/instance": "spark", "app.kubernetes.io/managed-by": "Helm"},
                                 "annotations": {"meta.helm.sh/release-name": "spark", "meta.helm.sh/release-namespace": "spark"}}
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                             "volumeMode": "Filesystem", "volumeName": "pv-1", "storageClassName": ""}
    assert "storageClassName" not in keep[1]["claim"]["spec"] and "volumeName" not in keep[1]["claim"]["spec"]
    assert rel.pvc_keep([], "spark") == []
