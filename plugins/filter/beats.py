# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metricbeat and Filebeat on every node: the decisions of the ``beats`` role.

The role's templates hold the Kubernetes objects; everything that is a decision lives here so that
unit tests reach it: the Beats' configuration (modules, inputs, processors, output, index and ILM
settings), the least RBAC rules the configured modules need, the ILM policy, the form of the
Elasticsearch API key, and the problems of a set of settings.

The filters take ``settings``: a dictionary of the role's ``beats_*`` variables plus a few site
values (``juno_cluster_name``, ``juno_elasticsearch_hosts``, ``juno_elasticsearch_ca_file``,
``juno_elasticsearch_auth`` which is ``api_key``, ``basic``, ``incomplete`` or ``none`` and never
the secret itself) and ``_mounts`` (where the pods mount the CA and the ILM policy). Docs of each
filter are in ``plugins/filter/<name>.yml``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.juno.hub.plugins.filter.preflight import url_problem

# Paths inside the Beat pods. The service-account token and CA are mounted by Kubernetes; /hostfs is
# where the Metricbeat pod template mounts the host's root, /proc and /sys/fs/cgroup.
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SA_TOKEN = SA_DIR + "/token"
SA_CA = SA_DIR + "/ca.crt"
HOSTFS = "/hostfs"
CONTAINER_LOGS = "/var/log/containers/"
CA_FILE = "ca.crt"
ILM_FILE = "policy.json"
# The lease the Metricbeat pods elect the one that collects cluster-wide metrics with (in beats_namespace).
LEADER_LEASE = "metricbeat-cluster-leader"

# Pseudo and container-runtime mounts the filesystem metricset reports nothing useful about (the
# kubelet's pod volumes, user NFS homes among them, are covered by the kubernetes volume metricset).
IGNORED_MOUNTS = r"^/(sys|cgroup|proc|dev|etc|host|lib|snap|run)($|/)|^/var/lib/(kubelet|containerd|docker)/"

SYSTEM_METRICSETS = (
    "core", "cpu", "diskio", "filesystem", "fsstat", "load", "memory", "network",
    "network_summary", "process", "process_summary", "socket_summary", "uptime",
)
KUBELET_METRICSETS = ("node", "system", "pod", "container", "volume")
# kube-state-metrics metricsets and the API resources their metadata enrichers watch
# (metricbeat/module/kubernetes/util: state_<resource> watches <resource>; pods for state_container).
STATE_METRICSETS = {
    "state_node": ("", "nodes"),
    "state_pod": ("", "pods"),
    "state_container": ("", "pods"),
    "state_namespace": ("", "namespaces"),
    "state_persistentvolume": ("", "persistentvolumes"),
    "state_persistentvolumeclaim": ("", "persistentvolumeclaims"),
    "state_resourcequota": None,
    "state_service": ("", "services"),
    "state_deployment": ("apps", "deployments"),
    "state_replicaset": ("apps", "replicasets"),
    "state_statefulset": ("apps", "statefulsets"),
    "state_daemonset": ("apps", "daemonsets"),
    "state_job": ("batch", "jobs"),
    "state_cronjob": ("batch", "cronjobs"),
    "state_storageclass": ("storage.k8s.io", "storageclasses"),
}
FILEBEAT_INPUTS = ("container", "filestream")

READ = ["get", "list", "watch"]
VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
HOST_PORT = re.compile(r"^(https?://)?[A-Za-z0-9.-]+:(\d{1,5})$")
DURATION = re.compile(r"^\d+(d|h|m|s)$")
BYTE_SIZE = re.compile(r"^\d+(b|kb|mb|gb|tb|pb)$")
PERIOD = re.compile(r"^\d+(ms|s|m|h)$")
# Index or data stream names: lower case, no characters Elasticsearch refuses; %{[agent.version]} style
# format strings are allowed.
INDEX = re.compile(r"^(?![-_+])([a-z0-9._-]|%\{\[[a-z_.]+\]\})+$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
MEMORY = re.compile(r"^(\d+(\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
MEMORY_UNITS = {None: 1, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12}
# User-defined PriorityClasses may not go above one billion (higher values are the system's).
MAX_PRIORITY = 1000000000


def _need(settings, key):
    if not isinstance(settings, dict):
        raise AnsibleFilterError("juno.hub beats filters expect the settings dictionary of the beats role, got %s" % type(settings).__name__)
    if key not in settings:
        raise AnsibleFilterError("juno.hub beats filters: the settings lack %s (is it in roles/beats/defaults/main.yml?)" % key)
    return settings[key]


def dedot(key):
    """The field name add_kubernetes_metadata gives a label or annotation key with labels.dedot: true."""
    return str(key).replace(".", "_")


def username_sources(settings):
    """Event fields the username is copied from, best first: the annotation (the raw name), then the label."""
    sources = []
    annotation = _need(settings, "beats_username_annotation")
    if annotation:
        sources.append("kubernetes.annotations." + dedot(annotation))
    sources.append("kubernetes.labels." + dedot(_need(settings, "beats_username_label")))
    return sources


def _metadata_options(settings):
    """Options of the Kubernetes metadata generator shared by the kubernetes module and add_kubernetes_metadata."""
    options = {
        "use_kubeadm": False,  # the cluster name comes from add_fields; no read access to kube-system's kubeadm-config
        "labels": {"dedot": True},
        "annotations": {"dedot": True},
        "add_resource_metadata": {"deployment": False, "cronjob": False},
    }
    include_labels = list(_need(settings, "beats_include_labels"))
    if include_labels:
        label = _need(settings, "beats_username_label")
        options["include_labels"] = include_labels + ([label] if label not in include_labels else [])
    annotation = _need(settings, "beats_username_annotation")
    if annotation:
        options["include_annotations"] = [annotation]
    return options


def _processors(settings, beat):
    """Global processors: Kubernetes metadata, the username as a top-level field, the cluster name."""
    kube = {"node": "${NODE_NAME}"}
    if beat == "filebeat":
        # Container log files are matched to pods by the container id in their name.
        kube.update({
            "default_matchers": {"enabled": False},
            "matchers": [{"logs_path": {"logs_path": CONTAINER_LOGS}}],
        })
    else:
        # Events of processes in containers carry container.id; index the node's pods by it.
        kube.update({
            "default_indexers": {"enabled": False},
            "default_matchers": {"enabled": False},
            "indexers": [{"container": {}}],
            "matchers": [{"fields": {"lookup_fields": ["container.id"]}}],
        })
    kube.update(_metadata_options(settings))
    processors = [{"add_kubernetes_metadata": kube}]
    target = _need(settings, "beats_username_field")
    for source in username_sources(settings):
        # The first source present wins; a later copy onto an existing field fails quietly.
        processors.append({"copy_fields": {"fields": [{"from": source, "to": target}], "fail_on_error": False, "ignore_missing": True}})
    processors.append({"add_fields": {"target": "orchestrator.cluster", "fields": {"name": _need(settings, "juno_cluster_name")}}})
    if beat == "metricbeat":
        # Host metrics describe the node the pod runs on; cluster-wide events keep the node they are about.
        processors.append({"add_fields": {"when": {"equals": {"event.module": "system"}}, "target": "kubernetes.node", "fields": {"name": "${NODE_NAME}"}}})
    return processors


def _index(settings, beat):
    return _need(settings, "beats_%s_index" % beat) or ""


def _site_credentials(settings, mounts):
    """Credentials (as ${ENV} references to the Secret) and CA of the site's Elasticsearch and Kibana."""
    client = {}
    auth = _need(settings, "juno_elasticsearch_auth")
    if auth == "api_key":
        client["api_key"] = "${ES_API_KEY}"
    elif auth == "basic":
        client["username"] = "${ES_USERNAME}"
        client["password"] = "${ES_PASSWORD}"
    if _need(settings, "juno_elasticsearch_ca_file"):
        client["ssl"] = {"certificate_authorities": [mounts["elasticsearch_ca"] + "/" + CA_FILE], "verification_mode": "full"}
    return client


def _output(settings, beat):
    """output.elasticsearch and setup.* of one Beat; credentials only as ${ENV} references."""
    managed = bool(_need(settings, "beats_elasticsearch_managed"))
    mounts = _need(settings, "_mounts")
    config = {}
    es = {}
    if not managed:
        # With elasticsearchRef the operator writes hosts, credentials and CA itself.
        es["hosts"] = list(_need(settings, "juno_elasticsearch_hosts"))
        es.update(_site_credentials(settings, mounts))
    index = _index(settings, beat)
    if index:
        es["index"] = index
    if es:
        config["output"] = {"elasticsearch": es}

    setup = {}
    if index:
        setup["template"] = {"name": index, "pattern": index}
    if _need(settings, "beats_ilm_enabled"):
        setup["ilm"] = {
            "enabled": True,
            "policy_name": _need(settings, "beats_ilm_policy_name"),
            "policy_file": mounts["ilm"] + "/" + ILM_FILE,
            # The file is the policy the inventory describes: write it, so that a changed retention applies.
            "overwrite": True,
        }
    else:
        setup["ilm"] = {"enabled": False}
    if _need(settings, "beats_setup_dashboards_enabled") and not managed:
        kibana = {"host": _need(settings, "beats_kibana_url")}
        kibana.update(_site_credentials(settings, mounts))
        setup["kibana"] = kibana
        setup["dashboards"] = {"enabled": True}
    # With beats_elasticsearch_managed the kibanaRef makes the operator set setup.kibana and setup.dashboards.
    config["setup"] = setup
    return config


def _cluster_wide(settings):
    """Module configurations only one Metricbeat pod (the lease holder) runs."""
    configs = []
    ksm = _need(settings, "beats_kube_state_metrics_host")
    if ksm:
        module = {
            "module": "kubernetes",
            "period": _need(settings, "beats_metricbeat_period"),
            "hosts": [ksm],
            "metricsets": list(_need(settings, "beats_kube_state_metrics_metricsets")),
            "add_metadata": True,
        }
        module.update(_metadata_options(settings))
        configs.append(module)
    if _need(settings, "beats_kubernetes_events_enabled"):
        configs.append({"module": "kubernetes", "metricsets": ["event"], "period": _need(settings, "beats_metricbeat_period"), "use_kubeadm": False})
    return configs


def leader_election(settings):
    return bool(_cluster_wide(settings))


def beats_metricbeat_config(settings):
    """The ``config`` of the Metricbeat Beat resource."""
    period = _need(settings, "beats_metricbeat_period")
    system = list(_need(settings, "beats_metricbeat_system_metricsets"))
    modules = []
    frequent = [m for m in system if m not in ("filesystem", "fsstat")]
    if frequent:
        module = {"module": "system", "period": period, "hostfs": HOSTFS, "metricsets": frequent}
        if "cpu" in frequent or "core" in frequent:
            module["cpu"] = {"metrics": ["percentages", "normalized_percentages"]}
        if "process" in frequent:
            top = int(_need(settings, "beats_metricbeat_process_top_n"))
            module["processes"] = [".*"]
            module["process"] = {"include_top_n": {"by_cpu": top, "by_memory": top}, "cgroups": {"enabled": True}}
        modules.append(module)
    mounts = [m for m in system if m in ("filesystem", "fsstat")]
    if mounts:
        modules.append({
            "module": "system",
            "period": _need(settings, "beats_metricbeat_filesystem_period"),
            "hostfs": HOSTFS,
            "metricsets": mounts,
            "processors": [{"drop_event": {"when": {"regexp": {"system.filesystem.mount_point": IGNORED_MOUNTS}}}}],
        })
    kubelet = list(_need(settings, "beats_metricbeat_kubernetes_metricsets"))
    if kubelet:
        module = {
            "module": "kubernetes",
            "period": period,
            "metricsets": kubelet,
            "node": "${NODE_NAME}",
            "hosts": [_need(settings, "beats_kubelet_url")],
            "bearer_token_file": SA_TOKEN,
            # The kubelet serves a certificate the cluster CA signed (serverTLSBootstrap), which is the
            # service account's ca.crt: verify it in full, host name included.
            "ssl": {"certificate_authorities": [_need(settings, "beats_kubelet_ca_file")], "verification_mode": "full"},
            "add_metadata": True,
        }
        module.update(_metadata_options(settings))
        modules.append(module)
    metricbeat = {"modules": modules}
    cluster_wide = _cluster_wide(settings)
    if cluster_wide:
        metricbeat["autodiscover"] = {"providers": [{
            "type": "kubernetes",
            "scope": "cluster",
            "node": "${NODE_NAME}",
            "unique": True,
            "leader_lease": LEADER_LEASE,
            "use_kubeadm": False,
            "templates": [{"config": cluster_wide}],
        }]}
    config = {"metricbeat": metricbeat, "processors": _processors(settings, "metricbeat")}
    config.update(_output(settings, "metricbeat"))
    return config


def beats_filebeat_config(settings):
    """The ``config`` of the Filebeat Beat resource."""
    kind = _need(settings, "beats_filebeat_input")
    paths = list(_need(settings, "beats_filebeat_paths"))
    if kind == "filestream":
        inputs = [{
            "type": "filestream",
            "id": "kubernetes-container-logs",
            "paths": paths,
            "parsers": [{"container": {"stream": "all", "format": "auto"}}],
            "prospector": {"scanner": {"symlinks": True, "fingerprint": {"enabled": True}}},
            "file_identity": {"fingerprint": {}},
        }]
    elif kind == "container":
        inputs = [{"type": "container", "paths": paths, "stream": "all"}]
    else:
        raise AnsibleFilterError("beats_filebeat_input %r is not one of %s" % (kind, ", ".join(FILEBEAT_INPUTS)))
    config = {"filebeat": {"inputs": inputs}, "processors": _processors(settings, "filebeat")}
    config.update(_output(settings, "filebeat"))
    return config


def beats_rbac_rules(settings, beat):
    """The least RBAC one Beat's configuration needs: ``cluster`` (ClusterRole) and ``namespaced`` (Role in beats_namespace) rules."""
    if beat not in ("metricbeat", "filebeat"):
        raise AnsibleFilterError("juno.hub.beats_rbac_rules: beat must be metricbeat or filebeat, got %r" % (beat,))
    core = {"nodes", "namespaces", "pods"}  # add_kubernetes_metadata: pods of the node, their node and namespace
    groups = {}
    namespaced = []
    subresources = []
    if beat == "metricbeat":
        if _need(settings, "beats_metricbeat_kubernetes_metricsets"):
            # The kubelet authorises /stats/summary against nodes/stats (and /metrics against nodes/metrics).
            subresources.append({"apiGroups": [""], "resources": ["nodes/stats"], "verbs": ["get"]})
        if _need(settings, "beats_kube_state_metrics_host"):
            for metricset in _need(settings, "beats_kube_state_metrics_metricsets"):
                watched = STATE_METRICSETS.get(metricset)
                if watched is None:
                    continue
                group, resource = watched
                if group == "":
                    core.add(resource)
                else:
                    groups.setdefault(group, set()).add(resource)
        if _need(settings, "beats_kubernetes_events_enabled"):
            core.add("events")
        if leader_election(settings):
            # client-go's lease lock: create the lease once, then get and renew only this one.
            namespaced = [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [LEADER_LEASE], "verbs": ["get", "update"]},
            ]
    cluster = [{"apiGroups": [""], "resources": sorted(core), "verbs": list(READ)}]
    for group in sorted(groups):
        cluster.append({"apiGroups": [group], "resources": sorted(groups[group]), "verbs": list(READ)})
    cluster += subresources
    return {"cluster": cluster, "namespaced": namespaced}


def beats_ilm_policy(settings):
    """The ILM policy both Beats install (setup.ilm.policy_file): roll over, then delete after the retention."""
    rollover = {"max_age": _need(settings, "beats_ilm_rollover_max_age")}
    size = _need(settings, "beats_ilm_rollover_max_primary_shard_size")
    if size:
        rollover["max_primary_shard_size"] = size
    phases = {"hot": {"min_age": "0ms", "actions": {"rollover": rollover}}}
    delete_after = _need(settings, "beats_ilm_delete_after")
    if delete_after:
        phases["delete"] = {"min_age": delete_after, "actions": {"delete": {}}}
    return {"policy": {"phases": phases}}


def beats_api_key(value):
    """The API key in the ``id:api_key`` form the Beats take, from that form or its base64 encoding; '' when it is neither."""
    if value is None:
        return ""
    key = str(value).strip()
    if not key:
        return ""
    if re.match(r"^[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$", key):
        return key
    try:
        decoded = base64.b64decode(key + "=" * (-len(key) % 4), validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ""
    if re.match(r"^[A-Za-z0-9_-]+:[A-Za-z0-9_-]+$", decoded):
        return decoded
    return ""


def cpu_millicores(value):
    """Millicores of a CPU quantity (``100m``, ``0.5``, ``2``); None when it is not one."""
    m = CPU.match(str(value).strip())
    if not m:
        return None
    number = float(m.group(1))
    return int(round(number if m.group(3) else number * 1000))


def memory_bytes(value):
    """Bytes of a memory quantity (``300Mi``, ``1Gi``, ``500M``); None when it is not one."""
    m = MEMORY.match(str(value).strip())
    if not m:
        return None
    return int(float(m.group(1)) * MEMORY_UNITS[m.group(3)])


def node_overhead(settings):
    """CPU (millicores) and memory (bytes) the two Beats request on every node."""
    cpu = 0
    memory = 0
    for beat in ("metricbeat", "filebeat"):
        requests = (_need(settings, "beats_%s_resources" % beat) or {}).get("requests") or {}
        cpu += cpu_millicores(requests.get("cpu", 0)) or 0
        memory += memory_bytes(requests.get("memory", 0)) or 0
    return {"cpu_millicores": cpu, "memory_bytes": memory}


def _resource_problems(settings, name):
    problems = []
    resources = _need(settings, name)
    if not isinstance(resources, dict):
        return ["%s must be a dictionary with requests and limits, got %r" % (name, resources)]
    parsed = {}
    for part in ("requests", "limits"):
        values = resources.get(part)
        if not isinstance(values, dict):
            problems.append("%s.%s is missing; give cpu and memory %s so the Beat neither starves nor competes with user pods" % (name, part, part))
            continue
        for what, parse, example in (("cpu", cpu_millicores, "100m"), ("memory", memory_bytes, "300Mi")):
            if what not in values:
                problems.append("%s.%s.%s is missing (e.g. %s)" % (name, part, what, example))
                continue
            number = parse(values[what])
            if number is None or number <= 0:
                problems.append("%s.%s.%s %r is not a positive Kubernetes quantity such as %s" % (name, part, what, values[what], example))
            else:
                parsed[(part, what)] = number
    for what in ("cpu", "memory"):
        if ("requests", what) in parsed and ("limits", what) in parsed and parsed[("limits", what)] < parsed[("requests", what)]:
            problems.append("%s.limits.%s %s is below %s.requests.%s %s; a limit must be at least the request"
                            % (name, what, resources["limits"][what], name, what, resources["requests"][what]))
    return problems


def _facts(node):
    facts = node.get("ansible_facts") or {}
    cpus = facts.get("processor_vcpus", node.get("ansible_processor_vcpus"))
    memory = facts.get("memtotal_mb", node.get("ansible_memtotal_mb"))
    return cpus, memory


def beats_problems(settings, nodes=None):
    """One message per problem of the monitoring settings (and of the nodes' sizes); empty when they are consistent."""
    problems = []
    version = str(_need(settings, "beats_version"))
    m = VERSION.match(version)
    if not m:
        problems.append("beats_version %r is not a full Elastic Stack version such as 8.19.25" % version)
    elif int(m.group(1)) < 8:
        problems.append("beats_version %s is older than 8.0; the configuration uses 8.x settings (use_kubeadm, data streams)" % version)
    if not VERSION.match(str(_need(settings, "beats_eck_chart_version"))):
        problems.append("beats_eck_chart_version %r is not a pinned chart version such as 3.5.0" % _need(settings, "beats_eck_chart_version"))
    for name in ("beats_namespace", "beats_eck_namespace"):
        ns = str(_need(settings, name))
        if not DNS_LABEL.match(ns):
            problems.append("%s %r is not a valid namespace (a DNS label)" % (name, ns))
        elif ns == "default" or ns.startswith("kube-"):
            problems.append("%s %r is reserved by Kubernetes; give the monitoring its own namespace, e.g. juno-monitoring" % (name, ns))

    managed = bool(_need(settings, "beats_elasticsearch_managed"))
    hosts = _need(settings, "juno_elasticsearch_hosts") or []
    auth = _need(settings, "juno_elasticsearch_auth")
    if managed:
        if hosts:
            problems.append("juno_elasticsearch_hosts is set (%s) but beats_elasticsearch_managed is true; ship to the site's Elasticsearch "
                            "(beats_elasticsearch_managed: false) or to the one ECK runs (empty juno_elasticsearch_hosts), not both"
                            % ", ".join(str(h) for h in hosts))
        if not DNS_LABEL.match(str(_need(settings, "beats_managed_name"))):
            problems.append("beats_managed_name %r is not a DNS label" % _need(settings, "beats_managed_name"))
        if int(_need(settings, "beats_managed_elasticsearch_count")) < 1:
            problems.append("beats_managed_elasticsearch_count %r must be at least 1" % _need(settings, "beats_managed_elasticsearch_count"))
        problems += _resource_problems(settings, "beats_managed_elasticsearch_resources")
        problems += _resource_problems(settings, "beats_managed_kibana_resources")
    else:
        if not hosts:
            problems.append("juno_elasticsearch_hosts is empty; list the site's Elasticsearch URLs (https://es1.example.edu:9200), "
                            "or set beats_elasticsearch_managed: true for a small Elasticsearch run by ECK in the cluster")
        for i, host in enumerate(hosts):
            reason = url_problem(str(host))
            if reason:
                problems.append("juno_elasticsearch_hosts[%d] %r is not a URL such as https://es1.example.edu:9200: %s" % (i, host, reason))
            elif not str(host).lower().startswith("https://"):
                problems.append("juno_elasticsearch_hosts[%d] %r is plain HTTP; the Beats send credentials, use https:// with "
                                "juno_elasticsearch_ca_file" % (i, host))
        if auth == "incomplete":
            problems.append("juno_elasticsearch_username and juno_elasticsearch_password must be given together (or give juno_elasticsearch_api_key)")
        elif auth not in ("api_key", "basic"):
            problems.append("the Beats have no Elasticsearch credentials; set juno_elasticsearch_api_key (preferred, in Ansible Vault) "
                            "or juno_elasticsearch_username and juno_elasticsearch_password")
        if _need(settings, "beats_setup_dashboards_enabled"):
            url = _need(settings, "beats_kibana_url")
            if not url:
                problems.append("beats_setup_dashboards_enabled is true but beats_kibana_url is empty; "
                                "give the site's Kibana URL or load the dashboards by hand")
            elif url_problem(str(url), ("https",)):
                problems.append("beats_kibana_url %r is not an https:// URL such as https://kibana.example.edu:5601: %s"
                                % (url, url_problem(str(url), ("https",))))

    for beat in ("metricbeat", "filebeat"):
        problems += _resource_problems(settings, "beats_%s_resources" % beat)
        index = _index(settings, beat)
        if index and not INDEX.match(index):
            problems.append("beats_%s_index %r is not a valid index or data stream name (lower case letters, digits, '-', '_', '.', "
                            "%%{[agent.version]} format strings; not starting with -, _ or +)" % (beat, index))
    if _index(settings, "metricbeat") and _index(settings, "metricbeat") == _index(settings, "filebeat"):
        problems.append("beats_metricbeat_index and beats_filebeat_index are both %r; the Beats need their own index templates"
                        % _index(settings, "metricbeat"))

    for name in ("beats_metricbeat_period", "beats_metricbeat_filesystem_period"):
        if not PERIOD.match(str(_need(settings, name))):
            problems.append("%s %r is not a period such as 10s or 1m" % (name, _need(settings, name)))
    unknown = [m for m in _need(settings, "beats_metricbeat_system_metricsets") if m not in SYSTEM_METRICSETS]
    if unknown:
        problems.append("beats_metricbeat_system_metricsets has unknown metricsets %s; known: %s" % (", ".join(unknown), ", ".join(SYSTEM_METRICSETS)))
    unknown = [m for m in _need(settings, "beats_metricbeat_kubernetes_metricsets") if m not in KUBELET_METRICSETS]
    if unknown:
        problems.append("beats_metricbeat_kubernetes_metricsets has metricsets the kubelet does not serve: %s; use %s (state_* ones go in "
                        "beats_kube_state_metrics_metricsets)" % (", ".join(unknown), ", ".join(KUBELET_METRICSETS)))
    unknown = [m for m in _need(settings, "beats_kube_state_metrics_metricsets") if m not in STATE_METRICSETS]
    if unknown:
        problems.append("beats_kube_state_metrics_metricsets has unknown metricsets %s; known: %s" % (", ".join(unknown), ", ".join(sorted(STATE_METRICSETS))))
    ksm = _need(settings, "beats_kube_state_metrics_host")
    if ksm and not HOST_PORT.match(str(ksm)):
        problems.append("beats_kube_state_metrics_host %r is not host:port such as kube-state-metrics.kube-system.svc:8080 "
                        "(empty turns state metrics off)" % ksm)
    kubelet = str(_need(settings, "beats_kubelet_url"))
    if not kubelet.startswith("https://") or not kubelet.endswith(":10250"):
        problems.append("beats_kubelet_url %r is not the kubelet's HTTPS port, e.g. https://${NODE_NAME}:10250" % kubelet)
    if int(_need(settings, "beats_metricbeat_process_top_n")) < 1:
        problems.append("beats_metricbeat_process_top_n must be at least 1")
    if _need(settings, "beats_filebeat_input") not in FILEBEAT_INPUTS:
        problems.append("beats_filebeat_input %r is not one of %s" % (_need(settings, "beats_filebeat_input"), ", ".join(FILEBEAT_INPUTS)))
    if not _need(settings, "beats_filebeat_paths"):
        problems.append("beats_filebeat_paths is empty; the container logs are in /var/log/containers/*.log")

    if _need(settings, "beats_ilm_enabled"):
        if not DNS_LABEL.match(str(_need(settings, "beats_ilm_policy_name")).replace("_", "-")):
            problems.append("beats_ilm_policy_name %r is not a simple policy name such as juno-beats" % _need(settings, "beats_ilm_policy_name"))
        if not DURATION.match(str(_need(settings, "beats_ilm_rollover_max_age"))):
            problems.append("beats_ilm_rollover_max_age %r is not a duration such as 30d" % _need(settings, "beats_ilm_rollover_max_age"))
        size = _need(settings, "beats_ilm_rollover_max_primary_shard_size")
        if size and not BYTE_SIZE.match(str(size)):
            problems.append("beats_ilm_rollover_max_primary_shard_size %r is not a size such as 50gb" % size)
        delete_after = _need(settings, "beats_ilm_delete_after")
        if delete_after and not DURATION.match(str(delete_after)):
            problems.append("beats_ilm_delete_after %r is not a duration such as 365d (empty keeps the data forever)" % delete_after)

    for name in ("beats_username_label", "beats_username_annotation"):
        key = _need(settings, name)
        if name == "beats_username_label" and not key:
            problems.append("beats_username_label is empty; user pods carry hub.jupyter.org/username")
        elif key and not LABEL_KEY.match(str(key)):
            problems.append("%s %r is not a valid label or annotation key" % (name, key))
    tolerations = _need(settings, "beats_tolerations")
    if not isinstance(tolerations, list) or not all(isinstance(t, dict) for t in tolerations):
        problems.append("beats_tolerations must be a list of Kubernetes tolerations (dictionaries)")
    if _need(settings, "beats_priority_class_enabled"):
        value = _need(settings, "beats_priority_class_value")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_PRIORITY:
            problems.append("beats_priority_class_value %r must be an integer between 1 and %d (higher values are reserved for system-*-critical)"
                            % (value, MAX_PRIORITY))
        if not DNS_LABEL.match(str(_need(settings, "beats_priority_class_name"))):
            problems.append("beats_priority_class_name %r is not a DNS label" % _need(settings, "beats_priority_class_name"))

    # What the Beats take from every node, against the smallest node.
    share = _need(settings, "beats_node_share_max_percent")
    overhead = node_overhead(settings)
    for node in nodes or []:
        cpus, memory_mb = _facts(node)
        name = node.get("inventory_hostname", "?")
        if cpus and overhead["cpu_millicores"] > int(cpus) * 1000 * share / 100.0:
            problems.append("%s: the Beats request %dm CPU, more than beats_node_share_max_percent (%s%%) of its %s CPUs; "
                            "lower beats_metricbeat_resources/beats_filebeat_resources requests" % (name, overhead["cpu_millicores"], share, cpus))
        if memory_mb and overhead["memory_bytes"] > int(memory_mb) * 2 ** 20 * share / 100.0:
            problems.append("%s: the Beats request %d MiB of memory, more than beats_node_share_max_percent (%s%%) of its %s MB; "
                            "lower beats_metricbeat_resources/beats_filebeat_resources requests"
                            % (name, overhead["memory_bytes"] // 2 ** 20, share, memory_mb))
    return problems


class FilterModule(object):
    def filters(self):
        return {
            "beats_metricbeat_config": beats_metricbeat_config,
            "beats_filebeat_config": beats_filebeat_config,
            "beats_rbac_rules": beats_rbac_rules,
            "beats_ilm_policy": beats_ilm_policy,
            "beats_api_key": beats_api_key,
            "beats_problems": beats_problems,
        }
