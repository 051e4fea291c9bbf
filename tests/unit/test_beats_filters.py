# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the beats filters (plugins/filter/beats.py) on the role's own defaults."""

import base64
import copy
import pathlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import beats

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles" / "beats" / "defaults" / "main.yml").read_text())
VARS = yaml.safe_load((ROOT / "roles" / "beats" / "vars" / "main.yml").read_text())


def settings(**overrides):
    """The dictionary the role hands the filters: its defaults plus the site values (as roles/beats/vars/main.yml builds it)."""
    s = copy.deepcopy(DEFAULTS)
    s.update({
        "juno_cluster_name": "juno",
        "juno_elasticsearch_hosts": ["https://es1.example.edu:9200"],
        "juno_elasticsearch_ca_file": "/etc/juno/es-ca.pem",
        "juno_elasticsearch_auth": "api_key",
        "_mounts": VARS["_beats_mounts"],
    })
    s.update(overrides)
    return s


def node(name, cpus, memory_mb):
    return {"inventory_hostname": name, "ansible_facts": {"processor_vcpus": cpus, "memtotal_mb": memory_mb}}


# ---------------------------------------------------------------------------------------------
# API key
# ---------------------------------------------------------------------------------------------

ID_KEY = "VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"


@pytest.mark.parametrize("given, expected", [
    (ID_KEY, ID_KEY),
    (base64.b64encode(ID_KEY.encode()).decode(), ID_KEY),  # the "encoded" value of the create API key call
    (base64.b64encode(ID_KEY.encode()).decode().rstrip("="), ID_KEY),  # without padding
    ("  %s\n" % ID_KEY, ID_KEY),  # pasted with whitespace
    ("", ""),
    (None, ""),
    ("not a key", ""),
    ("onlyonepart", ""),
    (base64.b64encode(b"no colon here").decode(), ""),
    (base64.b64encode(b"\xff\xfe:binary").decode(), ""),
])
def test_api_key_forms(given, expected):
    assert beats.beats_api_key(given) == expected


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

def test_username_sources_follow_dedot():
    assert beats.username_sources(settings()) == [
        "kubernetes.annotations.hub_jupyter_org/username",
        "kubernetes.labels.hub_jupyter_org/username",
    ]
    assert beats.username_sources(settings(beats_username_annotation="", beats_username_label="example.edu/owner")) == [
        "kubernetes.labels.example_edu/owner",
    ]


def test_username_field_is_configurable():
    config = beats.beats_filebeat_config(settings(beats_username_field="juno.user"))
    targets = {p["copy_fields"]["fields"][0]["to"] for p in config["processors"] if "copy_fields" in p}
    assert targets == {"juno.user"}


def test_system_metricsets_split_by_period():
    config = beats.beats_metricbeat_config(settings(beats_metricbeat_system_metricsets=["cpu", "filesystem", "fsstat"]))
    system = [m for m in config["metricbeat"]["modules"] if m["module"] == "system"]
    assert [(m["metricsets"], m["period"]) for m in system] == [(["cpu"], "10s"), (["filesystem", "fsstat"], "1m")]
    assert "process" not in system[0], "process options only with the process metricset"


def test_no_filesystem_no_slow_module():
    config = beats.beats_metricbeat_config(settings(beats_metricbeat_system_metricsets=["cpu", "memory"]))
    assert [m["metricsets"] for m in config["metricbeat"]["modules"] if m["module"] == "system"] == [["cpu", "memory"]]


def test_process_top_n():
    config = beats.beats_metricbeat_config(settings(beats_metricbeat_process_top_n=3))
    system = config["metricbeat"]["modules"][0]
    assert system["process"]["include_top_n"] == {"by_cpu": 3, "by_memory": 3}
    assert system["process"]["cgroups"]["enabled"] is True


def test_kubelet_url_is_configurable():
    config = beats.beats_metricbeat_config(settings(beats_kubelet_url="https://${NODE_IP}:10250"))
    kubelet = next(m for m in config["metricbeat"]["modules"] if m["module"] == "kubernetes")
    assert kubelet["hosts"] == ["https://${NODE_IP}:10250"]


def test_no_kubelet_metricsets_no_module_no_stats_access():
    s = settings(beats_metricbeat_kubernetes_metricsets=[])
    assert not [m for m in beats.beats_metricbeat_config(s)["metricbeat"]["modules"] if m["module"] == "kubernetes"]
    assert not [r for r in beats.beats_rbac_rules(s, "metricbeat")["cluster"] if "nodes/stats" in r["resources"]]


def test_state_metrics_need_a_host():
    s = settings(beats_kube_state_metrics_host="", beats_kubernetes_events_enabled=False)
    assert "autodiscover" not in beats.beats_metricbeat_config(s)["metricbeat"]
    assert beats.beats_rbac_rules(s, "metricbeat")["namespaced"] == []


def test_state_metricsets_widen_rbac_only_as_needed():
    s = settings(beats_kube_state_metrics_host="ksm.kube-system.svc:8080",
                 beats_kube_state_metrics_metricsets=["state_cronjob", "state_storageclass", "state_resourcequota", "state_container"])
    rules = beats.beats_rbac_rules(s, "metricbeat")["cluster"]
    by_group = {tuple(r["apiGroups"]): r["resources"] for r in rules}
    assert by_group[("batch",)] == ["cronjobs"]
    assert by_group[("storage.k8s.io",)] == ["storageclasses"]
    assert "apps" not in [g for r in rules for g in r["apiGroups"]]
    assert all(r["verbs"] == ["get", "list", "watch"] for r in rules if r["resources"] != ["nodes/stats"])


def test_filebeat_rbac_does_not_depend_on_metricbeat_settings():
    s = settings(beats_kube_state_metrics_host="ksm:8080")
    assert beats.beats_rbac_rules(s, "filebeat") == {
        "cluster": [{"apiGroups": [""], "resources": ["namespaces", "nodes", "pods"], "verbs": ["get", "list", "watch"]}],
        "namespaced": [],
    }


def test_rbac_rules_refuses_other_beats():
    with pytest.raises(AnsibleFilterError):
        beats.beats_rbac_rules(settings(), "packetbeat")


def test_filestream_input():
    config = beats.beats_filebeat_config(settings(beats_filebeat_input="filestream"))
    (inp,) = config["filebeat"]["inputs"]
    assert inp["type"] == "filestream" and inp["id"] == "kubernetes-container-logs"
    with pytest.raises(AnsibleFilterError):
        beats.beats_filebeat_config(settings(beats_filebeat_input="log"))


def test_managed_output_has_no_site_settings():
    config = beats.beats_metricbeat_config(settings(beats_elasticsearch_managed=True, juno_elasticsearch_hosts=[]))
    assert "output" not in config
    config = beats.beats_metricbeat_config(settings(beats_elasticsearch_managed=True, beats_metricbeat_index="mb-%{[agent.version]}"))
    assert config["output"] == {"elasticsearch": {"index": "mb-%{[agent.version]}"}}


def test_no_ca_file_no_ssl_section():
    config = beats.beats_filebeat_config(settings(juno_elasticsearch_ca_file=""))
    assert "ssl" not in config["output"]["elasticsearch"]


def test_config_never_holds_a_secret():
    """The filters only ever see how the Beats authenticate, and write environment references."""
    for auth in ("api_key", "basic"):
        text = repr(beats.beats_metricbeat_config(settings(juno_elasticsearch_auth=auth)))
        assert "${ES_" in text


def test_ilm_policy_without_size_or_delete():
    policy = beats.beats_ilm_policy(settings(beats_ilm_rollover_max_primary_shard_size="", beats_ilm_delete_after=""))
    assert policy == {"policy": {"phases": {"hot": {"min_age": "0ms", "actions": {"rollover": {"max_age": "30d"}}}}}}


def test_missing_setting_is_named():
    s = settings()
    del s["beats_version"]
    with pytest.raises(AnsibleFilterError, match="beats_version"):
        beats.beats_problems(s)


# ---------------------------------------------------------------------------------------------
# Quantities and node overhead
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, millicores", [("100m", 100), ("0.5", 500), ("2", 2000), (1, 1000), ("1.5", 1500), ("x", None), ("100Mi", None)])
def test_cpu_millicores(value, millicores):
    assert beats.cpu_millicores(value) == millicores


@pytest.mark.parametrize("value, size", [("300Mi", 300 * 2 ** 20), ("1Gi", 2 ** 30), ("500M", 500 * 10 ** 6), ("1024", 1024), ("1GB", None), ("", None)])
def test_memory_bytes(value, size):
    assert beats.memory_bytes(value) == size


def test_node_overhead_of_the_defaults():
    assert beats.node_overhead(settings()) == {"cpu_millicores": 200, "memory_bytes": 500 * 2 ** 20}


# ---------------------------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------------------------

def test_defaults_have_no_problems():
    assert beats.beats_problems(settings(), [node("cp1", 4, 16000), node("w1", 8, 32000)]) == []


def test_managed_defaults_have_no_problems():
    assert beats.beats_problems(settings(beats_elasticsearch_managed=True, juno_elasticsearch_hosts=[], juno_elasticsearch_auth="none")) == []


@pytest.mark.parametrize("overrides, expected", [
    ({"beats_version": "8.19"}, "beats_version '8.19' is not a full Elastic Stack version"),
    ({"beats_version": "7.17.29"}, "beats_version 7.17.29 is older than 8.0"),
    ({"beats_eck_chart_version": "latest"}, "beats_eck_chart_version 'latest' is not a pinned chart version"),
    ({"beats_namespace": "kube-system"}, "beats_namespace 'kube-system' is reserved by Kubernetes"),
    ({"beats_namespace": "Monitoring"}, "beats_namespace 'Monitoring' is not a valid namespace"),
    ({"juno_elasticsearch_hosts": []}, "juno_elasticsearch_hosts is empty"),
    ({"juno_elasticsearch_hosts": ["es1:9200"]}, "juno_elasticsearch_hosts[0] 'es1:9200' is not a URL"),
    ({"juno_elasticsearch_hosts": ["http://es1:9200"]}, "juno_elasticsearch_hosts[0] 'http://es1:9200' is plain HTTP"),
    ({"juno_elasticsearch_auth": "none"}, "the Beats have no Elasticsearch credentials"),
    ({"juno_elasticsearch_auth": "incomplete"}, "must be given together"),
    ({"beats_elasticsearch_managed": True}, "juno_elasticsearch_hosts is set (https://es1.example.edu:9200) but beats_elasticsearch_managed is true"),
    ({"beats_setup_dashboards_enabled": True}, "beats_kibana_url is empty"),
    ({"beats_setup_dashboards_enabled": True, "beats_kibana_url": "http://kibana:5601"}, "beats_kibana_url 'http://kibana:5601' is not an https:// URL"),
    ({"beats_metricbeat_resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
     "beats_metricbeat_resources.requests.memory is missing"),
    ({"beats_filebeat_resources": {"requests": {"cpu": "1", "memory": "1G"}, "limits": {"cpu": "1", "memory": "500Mi"}}},
     "beats_filebeat_resources.limits.memory 500Mi is below beats_filebeat_resources.requests.memory 1G"),
    ({"beats_filebeat_resources": {"requests": {"cpu": "lots", "memory": "1G"}, "limits": {"cpu": "1", "memory": "1G"}}},
     "beats_filebeat_resources.requests.cpu 'lots' is not a positive Kubernetes quantity"),
    ({"beats_metricbeat_index": "Juno-Metrics"}, "beats_metricbeat_index 'Juno-Metrics' is not a valid index"),
    ({"beats_metricbeat_index": "juno", "beats_filebeat_index": "juno"}, "beats_metricbeat_index and beats_filebeat_index are both 'juno'"),
    ({"beats_metricbeat_period": "10"}, "beats_metricbeat_period '10' is not a period"),
    ({"beats_metricbeat_system_metricsets": ["cpu", "gpu"]}, "unknown metricsets gpu"),
    ({"beats_metricbeat_kubernetes_metricsets": ["node", "state_pod"]}, "metricsets the kubelet does not serve: state_pod"),
    ({"beats_kube_state_metrics_metricsets": ["state_pods"]}, "beats_kube_state_metrics_metricsets has unknown metricsets state_pods"),
    ({"beats_kube_state_metrics_host": "http://ksm"}, "beats_kube_state_metrics_host 'http://ksm' is not host:port"),
    ({"beats_kubelet_url": "http://${NODE_NAME}:10255"}, "is not the kubelet's HTTPS port"),
    ({"beats_filebeat_input": "log"}, "beats_filebeat_input 'log' is not one of container, filestream"),
    ({"beats_filebeat_paths": []}, "beats_filebeat_paths is empty"),
    ({"beats_ilm_rollover_max_age": "1 month"}, "beats_ilm_rollover_max_age '1 month' is not a duration"),
    ({"beats_ilm_delete_after": "1y"}, "beats_ilm_delete_after '1y' is not a duration"),
    ({"beats_ilm_rollover_max_primary_shard_size": "50GB"}, "beats_ilm_rollover_max_primary_shard_size '50GB' is not a size"),
    ({"beats_username_label": ""}, "beats_username_label is empty"),
    ({"beats_username_annotation": "hub.jupyter.org/user name"}, "beats_username_annotation 'hub.jupyter.org/user name' is not a valid"),
    ({"beats_tolerations": {"operator": "Exists"}}, "beats_tolerations must be a list"),
    ({"beats_priority_class_value": 2000000000}, "beats_priority_class_value 2000000000 must be an integer between 1 and 1000000000"),
    ({"beats_priority_class_value": True}, "beats_priority_class_value True must be an integer"),
])
def test_problem_messages(overrides, expected):
    problems = beats.beats_problems(settings(**overrides))
    assert any(expected in p for p in problems), problems


def test_priority_class_checks_only_when_enabled():
    assert beats.beats_problems(settings(beats_priority_class_enabled=False, beats_priority_class_value=-1)) == []


def test_managed_stack_problems():
    problems = beats.beats_problems(settings(
        beats_elasticsearch_managed=True, juno_elasticsearch_hosts=[], juno_elasticsearch_auth="none",
        beats_managed_name="Juno", beats_managed_elasticsearch_count=0,
        beats_managed_kibana_resources={"requests": {"cpu": "1", "memory": "1Gi"}},
    ))
    assert "beats_managed_name 'Juno' is not a DNS label" in problems
    assert "beats_managed_elasticsearch_count 0 must be at least 1" in problems
    assert any(p.startswith("beats_managed_kibana_resources.limits is missing") for p in problems)
    assert not [p for p in problems if "credentials" in p], "the managed stack needs no site credentials"


def test_node_share():
    s = settings(beats_node_share_max_percent=10)
    # 200m and 500 MiB requested: fine on 2 CPUs (10% = 200m) and 5 GiB; too much on 1 CPU or 4 GiB.
    assert beats.beats_problems(s, [node("w1", 2, 5120)]) == []
    problems = beats.beats_problems(s, [node("small", 1, 4096), {"inventory_hostname": "nofacts"}])
    assert len(problems) == 2
    assert problems[0].startswith("small: the Beats request 200m CPU, more than beats_node_share_max_percent (10%) of its 1 CPUs")
    assert problems[1].startswith("small: the Beats request 500 MiB of memory, more than beats_node_share_max_percent (10%) of its 4096 MB")


def test_node_share_reads_inventory_facts_too():
    problems = beats.beats_problems(settings(), [{"inventory_hostname": "w9", "ansible_processor_vcpus": 1, "ansible_memtotal_mb": 64000}])
    assert [p.split(":")[0] for p in problems] == ["w9"]


def test_settings_must_be_a_dict():
    with pytest.raises(AnsibleFilterError, match="settings dictionary"):
        beats.beats_metricbeat_config(["not", "a", "dict"])
