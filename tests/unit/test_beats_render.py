# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the beats role renders, validated against the upstream schemas.

The role itself renders: one ansible-playbook run on localhost with juno_apply false and one play
per scenario, each into its own render directory. The tests then read those files (the artifact the
role writes) and check them:

* every Beat, Elasticsearch and Kibana validates against the openAPIV3Schema of the ECK 3.5.0 CRDs
  (``<repo>/../shared/fixtures/eck-3.5.0`` or ``$JUNO_SHARED_DIR/fixtures``), strictly: a field the
  schema does not know would be pruned by the API server, so it is an error here;
* every plain Kubernetes object, and every pod template inside a Beat, Elasticsearch or Kibana,
  validates with kubernetes-validate for Kubernetes 1.32 (strict);
* the Beats' configuration has the modules, processors, output and username fields
  docs/monitoring.md relies on, and the pods mount what the configuration points to;
* credentials appear in no rendered file but the Secret (mode 0600) and not in Ansible's output.
"""

import base64
import copy
import importlib.util
import json
import os
import pathlib
import re
import stat
import subprocess
import sys
import textwrap

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")
jsonschema = pytest.importorskip("jsonschema")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("JUNO_SHARED_DIR") or ROOT.parent / "shared")
ECK_CRDS = SHARED / "fixtures" / "eck-3.5.0" / "crds.yaml"
K8S_VERSION = "1.32"

# Fake credentials: the tests look for each of them, raw and base64 encoded, in every rendered file.
API_KEY = "beatsUnitId01:beatsUnitSecret-Key_0001"
API_KEY_ENCODED = base64.b64encode(API_KEY.encode()).decode()
USERNAME = "svc-beats-unit"
PASSWORD = "Unit-Test-Password-0002"
SECRETS = [API_KEY, API_KEY_ENCODED, API_KEY.split(":")[1], PASSWORD, base64.b64encode(PASSWORD.encode()).decode()]

# Top-level values of the eck-operator 3.5.0 chart (its values.yaml); anything else would be ignored.
ECK_CHART_VALUES = {
    "nameOverride", "fullnameOverride", "managedNamespaces", "installCRDs", "replicaCount", "image", "imagePullSecrets",
    "priorityClassName", "resources", "statefulsetAnnotations", "statefulsetLabels", "podAnnotations", "podLabels",
    "podSecurityContext", "securityContext", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
    "podDisruptionBudget", "additionalLabels", "env", "volumeMounts", "volumes", "createClusterScopedResources",
    "automountServiceAccountToken", "serviceAccount", "tracing", "refs", "webhook", "hostNetwork", "softMultiTenancy",
    "kubeAPIServerIP", "telemetry", "config", "podMonitor", "serviceMonitor", "extraObjects", "global",
}
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}

SCENARIOS = {
    # The site's Elasticsearch with an API key given base64 encoded, a CA, kube-state-metrics,
    # the site's Kibana for dashboards and own index names.
    "apikey": {
        "juno_elasticsearch_hosts": ["https://es1.example.edu:9200", "https://es2.example.edu:9200"],
        "juno_elasticsearch_api_key": API_KEY_ENCODED,
        "beats_kube_state_metrics_host": "kube-state-metrics.kube-system.svc:8080",
        "beats_kube_state_metrics_metricsets": ["state_node", "state_pod", "state_container", "state_persistentvolumeclaim", "state_deployment"],
        "beats_setup_dashboards_enabled": True,
        "beats_kibana_url": "https://kibana.example.edu:5601",
        "beats_metricbeat_index": "juno-metricbeat-%{[agent.version]}",
        "beats_filebeat_index": "juno-filebeat-%{[agent.version]}",
    },
    # User and password, no CA file (a publicly trusted certificate), no cluster-wide metrics,
    # no file system metrics (so no host root mount), the filestream input, no ILM, no PriorityClass.
    "basic": {
        "beats_metricbeat_system_metricsets": ["cpu", "load", "memory", "network", "process", "diskio"],
        "juno_elasticsearch_hosts": ["https://es.example.edu"],
        "juno_elasticsearch_username": USERNAME,
        "juno_elasticsearch_password": PASSWORD,
        "juno_elasticsearch_ca_file": "",
        "beats_kubernetes_events_enabled": False,
        "beats_filebeat_input": "filestream",
        "beats_ilm_enabled": False,
        "beats_priority_class_enabled": False,
        "beats_include_labels": ["app", "component"],
    },
    # A small Elasticsearch and Kibana run by ECK; no site credentials at all.
    "managed": {
        "juno_elasticsearch_hosts": [],
        "beats_elasticsearch_managed": True,
        "beats_setup_dashboards_enabled": True,
        "beats_managed_elasticsearch_storage_class": "local-path",
        "beats_ilm_delete_after": "",
    },
    # Everything at its default, the API key as id:api_key.
    "defaults": {
        "juno_elasticsearch_hosts": ["https://es1.example.edu:9200"],
        "juno_elasticsearch_api_key": API_KEY,
    },
}


def _crd_schemas():
    if not ECK_CRDS.is_file():
        pytest.skip("ECK 3.5.0 CRDs not found at %s (set JUNO_SHARED_DIR to the folder holding fixtures/)" % ECK_CRDS)
    schemas = {}
    with open(ECK_CRDS) as fh:
        for crd in yaml.safe_load_all(fh):
            if not crd:
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[("%s/%s" % (group, version["name"]), kind)] = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    return schemas


def _strict(schema):
    """The API server prunes fields a structural schema does not name; make them validation errors instead."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
                and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """Run the role once per scenario in render mode; return {scenario: {file name: [objects]}}, the dirs and the output."""
    top = tmp_path_factory.mktemp("beats-render")
    # A CA bundle for the site's Elasticsearch, made with the repository's test CA script.
    spec = importlib.util.spec_from_file_location("juno_make_ca", ROOT / "tests" / "harness" / "make_ca.py")
    make_ca = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_ca)
    ca = pathlib.Path(make_ca.make_ca(str(top / "pki"), ["es1.example.edu", "es2.example.edu"])["ca"])
    plays = []
    for name, overrides in SCENARIOS.items():
        play_vars = {
            "juno_apply": False,
            "juno_render_dir": str(top / name),
            "juno_cluster_name": "juno-unit",
            "juno_elasticsearch_ca_file": str(ca),
        }
        play_vars.update(overrides)
        plays.append({"name": "render %s" % name, "hosts": "localhost", "gather_facts": False, "vars": play_vars, "roles": ["juno.hub.beats"]})
    playbook = top / "render.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    inventory = top / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    # Verbose, so that the check of Ansible's output for credentials sees task arguments and results too.
    result = _ansible_playbook(inventory, playbook, "-vvv")
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr
    out = {}
    for name in SCENARIOS:
        files = {}
        for path in sorted((top / name / "monitoring").glob("*.yaml")):
            with open(path) as fh:
                files[path.name] = [d for d in yaml.safe_load_all(fh) if d is not None]
        out[name] = files
    return {"objects": out, "top": top, "output": result.stdout + result.stderr, "ca": ca}


def _ansible_playbook(inventory, playbook, *extra):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    })
    ansible_playbook = pathlib.Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(ansible_playbook), "-i", str(inventory), str(playbook), *extra], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def _objects(rendered, scenario, kind=None):
    """The Kubernetes objects of a scenario (not the Helm values and release files)."""
    objs = [o for name, docs in rendered["objects"][scenario].items() if not name.startswith(("elastic-operator.",)) for o in docs]
    return [o for o in objs if kind is None or o["kind"] == kind]


def _one(rendered, scenario, kind, name):
    found = [o for o in _objects(rendered, scenario, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, "%s: expected one %s/%s, found %d" % (scenario, kind, name, len(found))
    return found[0]


def _beat(rendered, scenario, name):
    return _one(rendered, scenario, "Beat", name)


def _container(beat):
    containers = beat["spec"]["daemonSet"]["podTemplate"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == beat["spec"]["type"])


ECK_KINDS = {"Beat", "Elasticsearch", "Kibana"}


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_eck_resources_validate_against_the_crds(rendered, scenario):
    schemas = _crd_schemas()
    checked = 0
    for obj in _objects(rendered, scenario):
        if obj["kind"] not in ECK_KINDS:
            continue
        key = (obj["apiVersion"], obj["kind"])
        assert key in schemas, "%s: %s %s is not a served version of the ECK 3.5.0 CRDs" % (scenario, obj["apiVersion"], obj["kind"])
        errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(obj), key=lambda e: list(e.path))
        assert not errors, "%s: %s/%s: %s" % (scenario, obj["kind"], obj["metadata"]["name"],
                                              "; ".join("%s: %s" % ("/".join(map(str, e.path)), e.message) for e in errors))
        checked += 1
    assert checked >= 2


def test_the_crd_check_catches_unknown_fields(rendered):
    """The strict CRD schema refuses a misplaced field (which the API server would silently drop)."""
    schemas = _crd_schemas()
    beat = copy.deepcopy(_beat(rendered, "defaults", "metricbeat"))
    beat["spec"]["daemonset"] = beat["spec"].pop("daemonSet")
    assert list(jsonschema.Draft7Validator(schemas[(beat["apiVersion"], "Beat")]).iter_errors(beat))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kubernetes_objects_validate(rendered, scenario):
    for obj in _objects(rendered, scenario):
        if obj["kind"] in ECK_KINDS:
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _pod_templates(obj):
    spec = obj["spec"]
    if obj["kind"] == "Beat":
        yield spec["daemonSet"]["podTemplate"]
    elif obj["kind"] == "Kibana":
        yield spec["podTemplate"]
    elif obj["kind"] == "Elasticsearch":
        for node_set in spec["nodeSets"]:
            yield node_set["podTemplate"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_pod_templates_validate(rendered, scenario):
    """The CRDs keep pod templates as free-form objects; check them as core/v1 PodTemplates."""
    for obj in _objects(rendered, scenario):
        if obj["kind"] not in ECK_KINDS:
            continue
        for template in _pod_templates(obj):
            wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": obj["metadata"]["name"]}, "template": template}
            kubernetes_validate.validate(wrapper, K8S_VERSION, strict=True)


# ---------------------------------------------------------------------------------------------
# The operator release
# ---------------------------------------------------------------------------------------------

def test_operator_release_is_pinned(rendered):
    release = rendered["objects"]["defaults"]["elastic-operator.release.yaml"][0]
    assert release["chart"] == "eck-operator"
    assert release["version"] == "3.5.0"
    assert release["repository"] == "https://helm.elastic.co"
    assert release["namespace"] == "elastic-system"
    assert release["values"] == "elastic-operator.values.yaml"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_operator_values(rendered, scenario):
    values = rendered["objects"][scenario]["elastic-operator.values.yaml"][0]
    unknown = set(values) - ECK_CHART_VALUES
    assert not unknown, "values the eck-operator chart does not have: %s" % unknown
    assert values["installCRDs"] is True
    assert values["managedNamespaces"] == ["juno-monitoring"]
    assert values["telemetry"]["disabled"] is True
    assert values["webhook"]["enabled"] is True
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert values["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert values["config"]["containerRegistry"] == "docker.elastic.co"
    assert values["image"] == {"repository": "docker.elastic.co/eck/eck-operator"}, "the tag stays the chart's appVersion"
    for part in ("requests", "limits"):
        for what in ("cpu", "memory"):
            assert re.match(r"^\d+(\.\d+)?(m|Mi|Gi)?$", str(values["resources"][part][what]))
    # The chart's config values are strings (they go into a ConfigMap as they are).
    assert all(isinstance(v, str) for v in values["config"].values())


def test_namespace_exists_before_the_operator_watches_it(rendered):
    ns = rendered["objects"]["defaults"]["beats-namespace.yaml"][0]
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "juno-monitoring"
    # hostPath, hostNetwork and SYS_PTRACE are refused by the baseline level.
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


# ---------------------------------------------------------------------------------------------
# Metricbeat and Filebeat configuration
# ---------------------------------------------------------------------------------------------

def _modules(config, module):
    return [m for m in config["metricbeat"]["modules"] if m["module"] == module]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_metricbeat_system_module(rendered, scenario):
    config = _beat(rendered, scenario, "metricbeat")["spec"]["config"]
    system = _modules(config, "system")
    metricsets = {m for module in system for m in module["metricsets"]}
    assert {"cpu", "load", "memory", "network", "process", "diskio"} <= metricsets
    assert all(module["hostfs"] == "/hostfs" for module in system)
    if scenario == "basic":
        assert "filesystem" not in metricsets
        return
    filesystem = next(m for m in system if "filesystem" in m["metricsets"])
    assert filesystem["period"] == "1m"
    regex = filesystem["processors"][0]["drop_event"]["when"]["regexp"]["system.filesystem.mount_point"]
    assert re.search(regex, "/proc/sys") and re.search(regex, "/var/lib/kubelet/pods/x/volumes") and not re.search(regex, "/")
    assert not re.search(regex, "/srv/juno")


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_metricbeat_reads_the_local_kubelet_with_verified_tls(rendered, scenario):
    config = _beat(rendered, scenario, "metricbeat")["spec"]["config"]
    kubelet = [m for m in _modules(config, "kubernetes") if "node" in m["metricsets"]]
    assert len(kubelet) == 1
    module = kubelet[0]
    assert set(module["metricsets"]) == {"node", "system", "pod", "container", "volume"}
    assert module["hosts"] == ["https://${NODE_NAME}:10250"]
    assert module["node"] == "${NODE_NAME}"
    assert module["bearer_token_file"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert module["ssl"]["certificate_authorities"] == ["/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"]
    assert module["ssl"]["verification_mode"] == "full"
    # The container metricsets' events carry the pod's labels and the username annotation.
    assert module["add_metadata"] is True
    assert module["include_annotations"] == ["hub.jupyter.org/username"]


def test_state_metrics_only_with_kube_state_metrics(rendered):
    with_ksm = _beat(rendered, "apikey", "metricbeat")["spec"]["config"]["metricbeat"]
    provider = with_ksm["autodiscover"]["providers"][0]
    assert provider["unique"] is True and provider["scope"] == "cluster"
    configs = provider["templates"][0]["config"]
    state = next(c for c in configs if c.get("hosts"))
    assert state["hosts"] == ["kube-state-metrics.kube-system.svc:8080"]
    assert all(m.startswith("state_") for m in state["metricsets"])
    assert any(c["metricsets"] == ["event"] for c in configs)
    defaults = _beat(rendered, "defaults", "metricbeat")["spec"]["config"]["metricbeat"]
    configs = defaults["autodiscover"]["providers"][0]["templates"][0]["config"]
    assert [c["metricsets"] for c in configs] == [["event"]]
    # Neither kube-state-metrics nor events: no leader election at all.
    assert "autodiscover" not in _beat(rendered, "basic", "metricbeat")["spec"]["config"]["metricbeat"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_filebeat_reads_every_container_log(rendered, scenario):
    config = _beat(rendered, scenario, "filebeat")["spec"]["config"]
    (inp,) = config["filebeat"]["inputs"]
    assert inp["paths"] == ["/var/log/containers/*.log"]
    if scenario == "basic":
        assert inp["type"] == "filestream" and inp["id"]
        assert inp["parsers"] == [{"container": {"stream": "all", "format": "auto"}}]
        assert inp["prospector"]["scanner"]["symlinks"] is True
    else:
        assert inp["type"] == "container"
    kube = config["processors"][0]["add_kubernetes_metadata"]
    assert kube["matchers"] == [{"logs_path": {"logs_path": "/var/log/containers/"}}]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("beat", ["metricbeat", "filebeat"])
def test_every_event_carries_pod_user_and_node(rendered, scenario, beat):
    config = _beat(rendered, scenario, beat)["spec"]["config"]
    processors = config["processors"]
    names = [next(iter(p)) for p in processors]
    assert names[0] == "add_kubernetes_metadata", "metadata must be added before the username is copied"
    kube = processors[0]["add_kubernetes_metadata"]
    assert kube["node"] == "${NODE_NAME}"
    assert kube["labels"]["dedot"] is True
    assert kube["include_annotations"] == ["hub.jupyter.org/username"]
    if "include_labels" in kube:
        assert "hub.jupyter.org/username" in kube["include_labels"]
    copies = [p["copy_fields"] for p in processors if "copy_fields" in p]
    assert [c["fields"] for c in copies] == [
        [{"from": "kubernetes.annotations.hub_jupyter_org/username", "to": "user.name"}],
        [{"from": "kubernetes.labels.hub_jupyter_org/username", "to": "user.name"}],
    ]
    assert all(c["ignore_missing"] is True and c["fail_on_error"] is False for c in copies)
    clusters = [p["add_fields"] for p in processors if "add_fields" in p and p["add_fields"]["target"] == "orchestrator.cluster"]
    assert clusters == [{"target": "orchestrator.cluster", "fields": {"name": "juno-unit"}}]
    if beat == "metricbeat":
        node = [p["add_fields"] for p in processors if "add_fields" in p and p["add_fields"]["target"] == "kubernetes.node"]
        assert node == [{"when": {"equals": {"event.module": "system"}}, "target": "kubernetes.node", "fields": {"name": "${NODE_NAME}"}}]


def test_include_labels_keeps_the_username_label(rendered):
    kube = _beat(rendered, "basic", "filebeat")["spec"]["config"]["processors"][0]["add_kubernetes_metadata"]
    assert kube["include_labels"] == ["app", "component", "hub.jupyter.org/username"]


# ---------------------------------------------------------------------------------------------
# Output, credentials, CA, ILM
# ---------------------------------------------------------------------------------------------

def _env(beat):
    return {e["name"]: e for e in _container(beat).get("env", [])}


def _mounts(beat):
    return {m["mountPath"]: m for m in _container(beat).get("volumeMounts", [])}


def _volumes(beat):
    return {v["name"]: v for v in beat["spec"]["daemonSet"]["podTemplate"]["spec"]["volumes"]}


@pytest.mark.parametrize("beat", ["metricbeat", "filebeat"])
def test_output_with_api_key_from_the_secret(rendered, beat):
    obj = _beat(rendered, "apikey", beat)
    es = obj["spec"]["config"]["output"]["elasticsearch"]
    assert es["hosts"] == ["https://es1.example.edu:9200", "https://es2.example.edu:9200"]
    assert es["api_key"] == "${ES_API_KEY}"
    assert "username" not in es and "password" not in es
    assert es["ssl"]["verification_mode"] == "full"
    ref = _env(obj)["ES_API_KEY"]["valueFrom"]["secretKeyRef"]
    secret = _one(rendered, "apikey", "Secret", ref["name"])
    assert ref["key"] in secret["data"]
    assert base64.b64decode(secret["data"][ref["key"]]).decode() == API_KEY, "the encoded key is stored as id:api_key"
    # The CA file the output names is the ConfigMap the pod mounts there.
    (ca_path,) = es["ssl"]["certificate_authorities"]
    directory, filename = ca_path.rsplit("/", 1)
    mount = _mounts(obj)[directory]
    assert mount["readOnly"] is True
    configmap = _one(rendered, "apikey", "ConfigMap", _volumes(obj)[mount["name"]]["configMap"]["name"])
    assert configmap["data"][filename] == rendered["ca"].read_text()
    # Dashboards into the site's Kibana, with the same credentials and CA.
    setup = obj["spec"]["config"]["setup"]
    assert setup["kibana"] == {"host": "https://kibana.example.edu:5601", "api_key": "${ES_API_KEY}",
                               "ssl": {"certificate_authorities": [ca_path], "verification_mode": "full"}}
    assert setup["dashboards"] == {"enabled": True}
    index = "juno-%s-%%{[agent.version]}" % beat
    assert es["index"] == index
    assert setup["template"] == {"name": index, "pattern": index}


@pytest.mark.parametrize("beat", ["metricbeat", "filebeat"])
def test_output_with_user_and_password(rendered, beat):
    obj = _beat(rendered, "basic", beat)
    es = obj["spec"]["config"]["output"]["elasticsearch"]
    assert es == {"hosts": ["https://es.example.edu"], "username": "${ES_USERNAME}", "password": "${ES_PASSWORD}"}
    env = _env(obj)
    secret = _one(rendered, "basic", "Secret", "beats-elasticsearch-credentials")
    for name, value in (("ES_USERNAME", USERNAME), ("ES_PASSWORD", PASSWORD)):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert base64.b64decode(secret["data"][ref["key"]]).decode() == value
    assert "ES_API_KEY" not in env
    assert obj["spec"]["config"]["setup"]["ilm"] == {"enabled": False}
    assert not [n for n in rendered["objects"]["basic"] if n == "beats-config.yaml"], "no CA and no ILM: no ConfigMaps"


@pytest.mark.parametrize("beat", ["metricbeat", "filebeat"])
def test_managed_elasticsearch_is_referenced_not_configured(rendered, beat):
    obj = _beat(rendered, "managed", beat)
    assert obj["spec"]["elasticsearchRef"] == {"name": "juno-monitoring"}
    assert obj["spec"]["kibanaRef"] == {"name": "juno-monitoring"}
    assert "output" not in obj["spec"]["config"], "the operator writes the output of an elasticsearchRef"
    assert "kibana" not in obj["spec"]["config"]["setup"]
    assert not [n for n in _env(obj) if n.startswith("ES_")]
    assert "beats-elasticsearch-credentials.yaml" not in rendered["objects"]["managed"]
    es = _one(rendered, "managed", "Elasticsearch", "juno-monitoring")
    assert es["spec"]["version"] == obj["spec"]["version"]
    claim = es["spec"]["nodeSets"][0]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "elasticsearch-data" and claim["spec"]["storageClassName"] == "local-path"
    kibana = _one(rendered, "managed", "Kibana", "juno-monitoring")
    assert kibana["spec"]["elasticsearchRef"] == {"name": "juno-monitoring"}
    # No retention beyond rollover when beats_ilm_delete_after is empty.
    policy = json.loads(_one(rendered, "managed", "ConfigMap", "beats-ilm-policy")["data"]["policy.json"])
    assert list(policy["policy"]["phases"]) == ["hot"]


@pytest.mark.parametrize("beat", ["metricbeat", "filebeat"])
def test_ilm_policy_file_is_mounted(rendered, beat):
    obj = _beat(rendered, "defaults", beat)
    ilm = obj["spec"]["config"]["setup"]["ilm"]
    assert ilm["enabled"] is True and ilm["policy_name"] == "juno-beats" and ilm["overwrite"] is True
    directory, filename = ilm["policy_file"].rsplit("/", 1)
    configmap = _one(rendered, "defaults", "ConfigMap", _volumes(obj)[_mounts(obj)[directory]["name"]]["configMap"]["name"])
    policy = json.loads(configmap["data"][filename])
    assert policy == {"policy": {"phases": {
        "hot": {"min_age": "0ms", "actions": {"rollover": {"max_age": "30d", "max_primary_shard_size": "50gb"}}},
        "delete": {"min_age": "365d", "actions": {"delete": {}}},
    }}}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_credentials_only_in_the_secret(rendered, scenario):
    directory = rendered["top"] / scenario / "monitoring"
    for path in sorted(directory.iterdir()):
        text = path.read_text()
        if path.name == "beats-elasticsearch-credentials.yaml":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            continue
        for secret in SECRETS:
            assert secret not in text, "%s: a credential is in %s" % (scenario, path.name)
        assert "${ES_" not in text or path.name == "beats.yaml"


def test_credentials_not_in_ansible_output(rendered):
    assert "beats-elasticsearch-credentials" in rendered["output"]
    for secret in SECRETS:
        assert secret not in rendered["output"]


def test_secret_is_only_written_with_no_log():
    tasks = yaml.safe_load((ROOT / "roles" / "beats" / "tasks" / "configure.yml").read_text())
    task = next(t for t in tasks if "credentials" in t["name"].lower())
    assert task["no_log"] is True
    assert task["vars"]["kube_apply_secret"] is True
    # the credentials set is marked secret too (its rendered file 0600, its Secret hashed in the history)
    assert re.search(r"'name': 'beats-elasticsearch-credentials', 'secret': true", task["vars"]["kube_apply_sets"])


# ---------------------------------------------------------------------------------------------
# Pods: scheduling, resources, privileges, mounts
# ---------------------------------------------------------------------------------------------

def _tolerates(tolerations, taint):
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator") == "Exists" and not t.get("key"):
            return True
        if t.get("key") == taint["key"] and (t.get("operator") == "Exists" or t.get("value") == taint.get("value")):
            return True
    return False


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("beat", ["metricbeat", "filebeat"])
def test_runs_on_control_planes_with_reserved_resources(rendered, scenario, beat):
    obj = _beat(rendered, scenario, beat)
    spec = obj["spec"]["daemonSet"]["podTemplate"]["spec"]
    assert _tolerates(spec["tolerations"], CONTROL_PLANE_TAINT)
    resources = obj["spec"]["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"], "memory request = limit: never OOM-killed before users"
    if scenario == "basic":
        assert "priorityClassName" not in spec
        assert not _objects(rendered, scenario, "PriorityClass")
    else:
        pc = _one(rendered, scenario, "PriorityClass", spec["priorityClassName"])
        assert 0 < pc["value"] <= 1000000000 and pc["globalDefault"] is False


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_least_privileges(rendered, scenario):
    metricbeat = _beat(rendered, scenario, "metricbeat")
    filebeat = _beat(rendered, scenario, "filebeat")
    for obj in (metricbeat, filebeat):
        sc = _container(obj)["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert obj["spec"]["daemonSet"]["podTemplate"]["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert all(m.get("readOnly") for m in _container(obj)["volumeMounts"]
                   if "hostPath" in _volumes(obj)[m["name"]]), "host paths are mounted read-only"
    assert "add" not in _container(filebeat)["securityContext"]["capabilities"]
    assert sorted(_container(metricbeat)["securityContext"]["capabilities"]["add"]) == ["DAC_READ_SEARCH", "SYS_PTRACE"]
    mb_spec = metricbeat["spec"]["daemonSet"]["podTemplate"]["spec"]
    assert mb_spec["hostNetwork"] is True and mb_spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert mb_spec["hostPID"] is False
    assert "hostNetwork" not in filebeat["spec"]["daemonSet"]["podTemplate"]["spec"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_mounts_match_what_the_modules_read(rendered, scenario):
    metricbeat = _beat(rendered, scenario, "metricbeat")
    mounts = _mounts(metricbeat)
    volumes = _volumes(metricbeat)
    for path, host in (("/hostfs/proc", "/proc"), ("/hostfs/sys/fs/cgroup", "/sys/fs/cgroup")):
        assert volumes[mounts[path]["name"]]["hostPath"]["path"] == host
    # The host's root only where the filesystem metricset needs it (statfs of every mount).
    if scenario == "basic":
        assert "/hostfs" not in mounts and not [v for v in volumes.values() if v.get("hostPath", {}).get("path") == "/"]
    else:
        assert volumes[mounts["/hostfs"]["name"]]["hostPath"]["path"] == "/"
        assert mounts["/hostfs"]["mountPropagation"] == "HostToContainer"
    filebeat = _beat(rendered, scenario, "filebeat")
    mounts = _mounts(filebeat)
    volumes = _volumes(filebeat)
    # /var/log/containers holds symbolic links into /var/log/pods: both at the same paths.
    for path in ("/var/log/containers", "/var/log/pods"):
        assert volumes[mounts[path]["name"]]["hostPath"]["path"] == path
    for obj in (metricbeat, filebeat):
        names = [v["name"] for v in obj["spec"]["daemonSet"]["podTemplate"]["spec"]["volumes"]]
        assert len(names) == len(set(names))
        assert {m["name"] for m in _container(obj)["volumeMounts"]} == set(names)
        # Writable: only the logs emptyDir (the operator adds the data directory).
        writable = [m["mountPath"] for m in _container(obj)["volumeMounts"] if not m.get("readOnly")]
        assert writable == ["/usr/share/%s/logs" % obj["spec"]["type"]]


# ---------------------------------------------------------------------------------------------
# RBAC
# ---------------------------------------------------------------------------------------------

def _rules(rendered, scenario, beat):
    role = _one(rendered, scenario, "ClusterRole", "juno-monitoring-%s" % beat)
    binding = _one(rendered, scenario, "ClusterRoleBinding", "juno-monitoring-%s" % beat)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": beat, "namespace": "juno-monitoring"}]
    assert _beat(rendered, scenario, beat)["spec"]["daemonSet"]["podTemplate"]["spec"]["serviceAccountName"] == beat
    return role["rules"]


def _grants(rules):
    out = set()
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rbac_is_read_only_and_minimal(rendered, scenario):
    for beat in ("metricbeat", "filebeat"):
        rules = _rules(rendered, scenario, beat)
        grants = _grants(rules)
        assert all("*" not in r.get("verbs", []) + r.get("resources", []) + r.get("apiGroups", []) for r in rules)
        assert {grant[2] for grant in grants} <= {"get", "list", "watch"}
        assert not [g for g in grants if g[1] in ("secrets", "configmaps", "nodes/proxy")]
        assert not [r for r in rules if "nonResourceURLs" in r]
    filebeat = _grants(_rules(rendered, scenario, "filebeat"))
    assert {grant[1] for grant in filebeat} == {"pods", "nodes", "namespaces"}
    metricbeat = _grants(_rules(rendered, scenario, "metricbeat"))
    assert ("", "nodes/stats", "get") in metricbeat
    assert ("", "nodes/stats", "list") not in metricbeat


def test_rbac_follows_the_configured_metricsets(rendered):
    apikey = _grants(_rules(rendered, "apikey", "metricbeat"))
    assert ("", "persistentvolumeclaims", "watch") in apikey and ("apps", "deployments", "watch") in apikey
    assert ("", "events", "list") in apikey
    basic = _grants(_rules(rendered, "basic", "metricbeat"))
    assert {grant[1] for grant in basic} == {"pods", "nodes", "namespaces", "nodes/stats"}
    # The lease is needed (and granted, on its name) only where one pod collects cluster-wide metrics.
    role = _one(rendered, "apikey", "Role", "metricbeat")
    assert {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["metricbeat-cluster-leader"],
            "verbs": ["get", "update"]} in role["rules"]
    binding = _one(rendered, "apikey", "RoleBinding", "metricbeat")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "metricbeat"}
    assert not _objects(rendered, "basic", "Role")
    assert not [r for r in _objects(rendered, "apikey", "Role") if r["metadata"]["name"] == "filebeat"]


# ---------------------------------------------------------------------------------------------
# The role stops on bad settings
# ---------------------------------------------------------------------------------------------

def test_preflight_refuses_bad_settings(tmp_path):
    plays = [{
        "hosts": "localhost", "gather_facts": False, "roles": ["juno.hub.beats"],
        "vars": {
            "juno_apply": False,
            "juno_render_dir": str(tmp_path / "render"),
            "juno_elasticsearch_hosts": ["http://es1.example.edu:9200"],
            "juno_elasticsearch_username": USERNAME,
            "beats_metricbeat_resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "50m", "memory": "1Gi"}},
        },
    }]
    playbook = tmp_path / "bad.yml"
    playbook.write_text(yaml.safe_dump(plays))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    result = _ansible_playbook(inventory, playbook)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "beats: 3 problem(s)" in out, textwrap.shorten(out, 3000)
    assert "juno_elasticsearch_hosts[0] 'http://es1.example.edu:9200' is plain HTTP" in out
    assert "juno_elasticsearch_username and juno_elasticsearch_password must be given together" in out
    assert "beats_metricbeat_resources.limits.cpu 50m is below beats_metricbeat_resources.requests.cpu 100m" in out
    assert not (tmp_path / "render").exists(), "nothing is rendered when preflight fails"
