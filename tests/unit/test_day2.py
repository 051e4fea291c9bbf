"""Unit tests of plugins/filter/day2.py: upgrade version rules, certificate expiry parsing and
grading, etcd restore helpers and the Helm release history rollback.yml reads."""

import base64
import gzip
import json

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.juno.hub.plugins.filter import day2

# ---------------------------------------------------------------------------------------------
# upgrade rules


@pytest.mark.parametrize("target,current,kind", [
    ("1.32.5", "1.32.4", "patch"),
    ("1.33.0", "1.32.4", "minor"),
    ("v1.33.2", "v1.32.9", "minor"),
    ("1.32.4", "1.32.4", "none"),
])
def test_allowed_upgrades(target, current, kind):
    r = day2.k8s_upgrade_check(target, current)
    assert r["problems"] == []
    assert r["kind"] == kind


@pytest.mark.parametrize("target,current,message", [
    ("1.34.0", "1.32.4", "skips minor versions (the cluster runs 1.32.4); upgrade one minor version at a time: 1.33.x, 1.34.x"),
    ("1.35.1", "1.32.4", "1.33.x, 1.34.x, 1.35.x"),
    ("1.32.3", "1.32.4", "is older than the cluster's 1.32.4; kubeadm cannot downgrade"),
    ("1.31.9", "1.32.0", "kubeadm cannot downgrade"),
    ("2.0.0", "1.32.4", "changes the major version"),
    ("1.33", "1.32.4", "is not a full version such as"),
    ("1.33.0-rc.1", "1.32.4", "is not a full version such as"),
    ("1.33.0", "", "cannot be read"),
])
def test_refused_upgrades(target, current, message):
    r = day2.k8s_upgrade_check(target, current)
    assert len(r["problems"]) == 1, r
    assert message in r["problems"][0]


def test_kubelet_skew_and_nodes_to_upgrade():
    nodes = {"cp1": "v1.32.4", "w1": "v1.33.0", "w2": "v1.29.1", "w3": "v1.34.0", "w4": "garbage"}
    r = day2.k8s_upgrade_check("1.33.0", "1.32.4", nodes)
    assert r["nodes_to_upgrade"] == ["cp1"]
    text = "\n".join(r["problems"])
    assert "node w2 runs kubelet 1.29.1, more than 3 minor versions older than 1.33.0" in text
    assert "node w3 runs kubelet 1.34.0, newer than juno_kubernetes_version 1.33.0" in text
    assert "node w4 reports kubelet version 'garbage'" in text
    assert "w1" not in text


def test_kubelet_three_minors_behind_is_within_skew():
    r = day2.k8s_upgrade_check("1.33.1", "1.33.0", {"w1": "v1.30.9", "cp1": "v1.33.0"})
    assert r["problems"] == []
    assert r["nodes_to_upgrade"] == ["cp1", "w1"]


# ---------------------------------------------------------------------------------------------
# certificate expiry

CHECK_EXPIRATION_TEXT = """\
[check-expiration] Reading configuration from the "kubeadm-config" ConfigMap in namespace "kube-system"...
[check-expiration] Use 'kubeadm init phase upload-config --config your-config-file' to re-upload it.

CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED
admin.conf                 Aug 19, 2026 09:03 UTC   360d            ca                      no
apiserver                  Aug 19, 2026 09:03 UTC   360d            ca                      no
apiserver-etcd-client      Jan 10, 2026 09:03 UTC   9d              etcd-ca                 no
front-proxy-client         Dec 30, 2025 08:00 UTC   <invalid>       front-proxy-ca          yes
!MISSING! super-admin.conf

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Aug 17, 2035 09:03 UTC   9y              no
etcd-ca                 Aug 17, 2035 09:03 UTC   9y              no
"""

# The older table (before kubeadm 1.17) had no CERTIFICATE AUTHORITY column.
OLD_TEXT = """\
CERTIFICATE                EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
admin.conf                 May 15, 2020 13:03 UTC   364d            false
"""

CHECK_EXPIRATION_JSON = {
    "kind": "CertificateExpirationInfo",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "certificates": [
        {"name": "admin.conf", "expirationDate": "2026-08-19T09:03:11Z", "residualTime": 31103999, "caName": "ca",
         "externallyManaged": False, "missing": False},
        {"name": "super-admin.conf", "expirationDate": "0001-01-01T00:00:00Z", "residualTime": 0, "externallyManaged": False,
         "missing": True},
    ],
    "certificateAuthorities": [
        {"name": "ca", "expirationDate": "2035-08-17T09:03:11Z", "residualTime": 315359999, "externallyManaged": False, "missing": False},
    ],
}


def test_kubeadm_text_table_is_parsed():
    certs = {c["name"]: c for c in day2.kubeadm_cert_expiry(CHECK_EXPIRATION_TEXT)}
    assert list(certs) == ["admin.conf", "apiserver", "apiserver-etcd-client", "front-proxy-client", "super-admin.conf", "ca", "etcd-ca"]
    assert certs["admin.conf"] == {"name": "admin.conf", "not_after": "2026-08-19T09:03:00Z", "authority": False, "ca_name": "ca",
                                   "externally_managed": False, "missing": False}
    assert certs["front-proxy-client"]["externally_managed"] is True
    assert certs["super-admin.conf"]["missing"] is True and certs["super-admin.conf"]["not_after"] is None
    assert certs["ca"]["authority"] is True and certs["ca"]["ca_name"] == ""
    assert certs["etcd-ca"]["not_after"] == "2035-08-17T09:03:00Z"


def test_kubeadm_old_table_without_ca_column():
    assert day2.kubeadm_cert_expiry(OLD_TEXT) == [{
        "name": "admin.conf", "not_after": "2020-05-15T13:03:00Z", "authority": False, "ca_name": "",
        "externally_managed": False, "missing": False}]


@pytest.mark.parametrize("given", [CHECK_EXPIRATION_JSON, json.dumps(CHECK_EXPIRATION_JSON, indent=2)])
def test_kubeadm_json_output_is_parsed(given):
    certs = {c["name"]: c for c in day2.kubeadm_cert_expiry(given)}
    assert certs["admin.conf"]["not_after"] == "2026-08-19T09:03:11Z"
    assert certs["super-admin.conf"]["missing"] is True
    assert certs["ca"]["authority"] is True


def test_kubeadm_output_without_a_table_is_an_error():
    with pytest.raises(AnsibleFilterError, match="no certificate table"):
        day2.kubeadm_cert_expiry("error execution phase: failed to load admin kubeconfig")
    with pytest.raises(AnsibleFilterError, match="does not parse"):
        day2.kubeadm_cert_expiry("{not json")


def test_expiry_report_grades_against_the_threshold():
    certs = day2.kubeadm_cert_expiry(CHECK_EXPIRATION_TEXT) + [
        {"name": "kubelet kubelet-client-current.pem", "not_after": "20260115090300Z"},  # ASN.1 TIME (x509_certificate_info)
    ]
    report = {c["name"]: c for c in day2.cert_expiry_report(certs, 30, now="2026-01-01T09:03:00Z")}
    assert report["admin.conf"]["state"] == "ok" and report["admin.conf"]["days_left"] == 230
    assert report["apiserver-etcd-client"]["state"] == "warn" and report["apiserver-etcd-client"]["days_left"] == 9
    assert "fewer than juno_cert_warn_days 30" in report["apiserver-etcd-client"]["message"]
    assert report["front-proxy-client"]["state"] == "expired"
    assert report["front-proxy-client"]["message"] == "front-proxy-client expired on 2025-12-30T08:00:00Z"
    assert report["super-admin.conf"]["state"] == "missing"
    assert report["kubelet kubelet-client-current.pem"]["state"] == "warn"
    assert report["kubelet kubelet-client-current.pem"]["days_left"] == 14
    assert report["ca"]["state"] == "ok"


def test_expiry_report_boundary_and_bad_input():
    certs = [{"name": "a", "not_after": "2026-01-31T00:00:00Z"}, {"name": "b", "not_after": "2026-01-30T23:59:59Z"}]
    report = day2.cert_expiry_report(certs, "30", now="2026-01-01T00:00:00Z")
    assert [(c["days_left"], c["state"]) for c in report] == [(30, "ok"), (29, "warn")]
    with pytest.raises(AnsibleFilterError, match="warn_days"):
        day2.cert_expiry_report(certs, "thirty")
    with pytest.raises(AnsibleFilterError, match="now"):
        day2.cert_expiry_report(certs, 30, now="yesterday")


# ---------------------------------------------------------------------------------------------
# etcd restore helpers

ETCD_MANIFEST = yaml.safe_load("""
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - name: etcd
    image: registry.k8s.io/etcd:3.5.16-0
    command:
    - etcd
    - --advertise-client-urls=https://10.20.0.11:2379
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.20.0.11:2380
    - --initial-cluster=cp1=https://10.20.0.11:2380
    - --name=cp1
    volumeMounts:
    - mountPath: /var/lib/etcd
      name: etcd-data
    - mountPath: /etc/kubernetes/pki/etcd
      name: etcd-certs
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki/etcd
      type: DirectoryOrCreate
    name: etcd-certs
  - hostPath:
      path: /var/lib/etcd
      type: DirectoryOrCreate
    name: etcd-data
""")


def test_etcd_manifest_info():
    assert day2.etcd_manifest_info(ETCD_MANIFEST) == {
        "name": "cp1",
        "peer_urls": "https://10.20.0.11:2380",
        "client_urls": "https://10.20.0.11:2379",
        "data_dir": "/var/lib/etcd",
        "container_data_dir": "/var/lib/etcd",
        "image": "registry.k8s.io/etcd:3.5.16-0",
        "version": "3.5.16",
    }


def test_etcd_manifest_set_data_dir_changes_only_the_host_path():
    new = day2.etcd_manifest_set_data_dir(ETCD_MANIFEST, "/var/lib/etcd-restored-20260101T000000Z")
    assert day2.etcd_manifest_info(new)["data_dir"] == "/var/lib/etcd-restored-20260101T000000Z"
    assert day2.etcd_manifest_info(new)["container_data_dir"] == "/var/lib/etcd"
    assert new["spec"]["volumes"][0] == ETCD_MANIFEST["spec"]["volumes"][0]
    assert ETCD_MANIFEST["spec"]["volumes"][1]["hostPath"]["path"] == "/var/lib/etcd"  # input untouched
    with pytest.raises(AnsibleFilterError, match="absolute"):
        day2.etcd_manifest_set_data_dir(ETCD_MANIFEST, "relative/dir")


def test_etcd_manifest_errors():
    with pytest.raises(AnsibleFilterError, match="expected the Pod"):
        day2.etcd_manifest_info({"kind": "Deployment"})
    broken = json.loads(json.dumps(ETCD_MANIFEST))
    broken["spec"]["containers"][0]["volumeMounts"] = []
    with pytest.raises(AnsibleFilterError, match="no volume is mounted at --data-dir"):
        day2.etcd_manifest_info(broken)


def test_etcd_env_info():
    env = day2.etcd_env_info('# comment\nETCD_NAME=m1\nexport ETCD_DATA_DIR="/var/lib/etcd/m1"\n'
                             "ETCD_INITIAL_ADVERTISE_PEER_URLS='http://10.0.0.1:2380'\nnot a line\n")
    assert env == {"ETCD_NAME": "m1", "ETCD_DATA_DIR": "/var/lib/etcd/m1", "ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://10.0.0.1:2380"}


def test_etcd_initial_cluster():
    members = [{"name": "m1", "peer_urls": "http://a:2380"}, {"name": "m2", "peer_urls": "http://b:2380,http://b2:2380"}]
    assert day2.etcd_initial_cluster(members) == "m1=http://a:2380,m2=http://b:2380,m2=http://b2:2380"
    with pytest.raises(AnsibleFilterError, match="used twice"):
        day2.etcd_initial_cluster(members + [{"name": "m1", "peer_urls": "http://c:2380"}])
    with pytest.raises(AnsibleFilterError, match="needs a name and at least one peer URL"):
        day2.etcd_initial_cluster([{"name": "m1", "peer_urls": ""}])


def test_etcd_member_id():
    listing = json.dumps({"header": {}, "members": [
        {"ID": 10276657743932975437, "name": "cp1", "peerURLs": ["https://10.20.0.11:2380"]},
        {"ID": 1234, "name": "cp2"}]})
    assert day2.etcd_member_id(listing, "cp1") == "8e9e05c52164694d"
    assert day2.etcd_member_id(json.loads(listing), "cp2") == "4d2"
    assert day2.etcd_member_id(listing, "cp9") == ""


def test_kubeadm_config_set_etcd_data_dir_takes_a_templated_value():
    # What a playbook passes: a str subclass (Ansible's data tags), which yaml.safe_dump refuses as such.
    class Tagged(str):
        pass

    out = day2.kubeadm_config_set_etcd_data_dir("kind: ClusterConfiguration\n", Tagged("/var/lib/etcd-restored-X"))
    assert yaml.safe_load(out)["etcd"]["local"]["dataDir"] == "/var/lib/etcd-restored-X"


def test_kubeadm_config_set_etcd_data_dir():
    text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.32.4\netcd:\n  local:\n    dataDir: /var/lib/etcd\n"
    new = yaml.safe_load(day2.kubeadm_config_set_etcd_data_dir(text, "/var/lib/etcd-restored-X"))
    assert new["etcd"]["local"]["dataDir"] == "/var/lib/etcd-restored-X"
    assert new["kubernetesVersion"] == "v1.32.4"
    with pytest.raises(AnsibleFilterError, match="external etcd"):
        day2.kubeadm_config_set_etcd_data_dir({"kind": "ClusterConfiguration", "etcd": {"external": {}}}, "/x")


# ---------------------------------------------------------------------------------------------
# Helm release history


def release_secret(revision, status, values, chart_version="4.4.0"):
    release = {
        "name": "juno-chem", "namespace": "hub-chem", "version": revision,
        "info": {"status": status, "last_deployed": "2026-01-0%dT10:00:00Z" % revision, "description": "Upgrade complete"},
        "chart": {"metadata": {"name": "jupyterhub", "version": chart_version, "appVersion": "5.5.0"}},
        "config": values,
    }
    helm_value = base64.b64encode(gzip.compress(json.dumps(release).encode()))  # what Helm stores
    return {
        "metadata": {"name": "sh.helm.release.v1.juno-chem.v%d" % revision,
                     "labels": {"owner": "helm", "name": "juno-chem", "status": status, "version": str(revision)}},
        "data": {"release": base64.b64encode(helm_value).decode()},  # what the API returns
    }


def test_helm_release_decode():
    s = release_secret(2, "superseded", {"hub": {"config": {"secret": "x"}}}, "4.3.0")
    r = day2.helm_release_decode(s["data"]["release"])
    assert r == {"name": "juno-chem", "namespace": "hub-chem", "revision": 2, "status": "superseded", "description": "Upgrade complete",
                 "updated": "2026-01-02T10:00:00Z", "chart": "jupyterhub", "chart_version": "4.3.0", "app_version": "5.5.0",
                 "values": {"hub": {"config": {"secret": "x"}}}}
    with pytest.raises(AnsibleFilterError, match="not a Helm release record"):
        day2.helm_release_decode("bm90IGEgcmVsZWFzZQ==")


def test_helm_history_is_sorted_and_without_values():
    secrets = [release_secret(3, "deployed", {"a": 3}), release_secret(1, "superseded", {"a": 1}, "4.2.0"),
               release_secret(2, "superseded", {"a": 2}), {"metadata": {"labels": {"owner": "someone-else"}}, "data": {}}]
    history = day2.helm_history(secrets)
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[0]["chart"] == "jupyterhub-4.2.0"
    assert all("values" not in h for h in history)
    line = day2.helm_history_line(history[2])
    assert line.split()[:4] == ["3", "2026-01-03T10:00:00Z", "deployed", "jupyterhub-4.4.0"]


def test_filters_are_registered():
    names = day2.FilterModule().filters()
    for name in ("k8s_upgrade_check", "kubeadm_cert_expiry", "cert_expiry_report", "etcd_manifest_info", "etcd_manifest_set_data_dir",
                 "etcd_env_info", "etcd_initial_cluster", "etcd_member_id", "kubeadm_config_set_etcd_data_dir", "helm_release_decode",
                 "helm_history", "helm_history_line"):
        assert name in names
