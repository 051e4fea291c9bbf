"""The hub's own manifests (namespace with Pod Security labels, AD CA, Secrets) as the role renders them."""

import base64

import pytest

from test_hub_lib import BIND_PASSWORD, edge_hubs, example_site, rendered_manifests

kubernetes_validate = pytest.importorskip("kubernetes_validate")

CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----"


@pytest.fixture
def site(tmp_path):
    ca = tmp_path / "ad-ca.pem"
    ca.write_text(CA + "\n")
    site = example_site()
    site["juno_ad"] = dict(site["juno_ad"], ca_file=str(ca))
    return site


@pytest.fixture
def tls_hub(tmp_path):
    (tmp_path / "hub.pem").write_text("-----BEGIN CERTIFICATE-----\nCHAIN\n-----END CERTIFICATE-----\n")
    (tmp_path / "hub.key").write_text("-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n")
    hub = dict(edge_hubs()[1])
    hub["tls"] = {"certificate_file": str(tmp_path / "hub.pem"), "key_file": str(tmp_path / "hub.key")}
    return hub


def validate(docs):
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32", strict=True)


def test_namespace_is_labelled_for_pod_security(site):
    docs = rendered_manifests("namespace.yaml.j2", site["juno_hubs"][0], site=site)
    validate(docs)
    ns = docs[0]
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == "hub-chemeng"
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.32"
    assert labels["juno.hub/hub"] == "chemeng"


def test_site_ca_goes_into_a_configmap(site):
    docs = rendered_manifests("namespace.yaml.j2", site["juno_hubs"][1], site=site)
    cm = docs[1]
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("ConfigMap", "juno-ad-ca", "hub-physics")
    assert cm["data"] == {"ca.pem": CA + "\n"}


def test_no_ca_file_no_configmap():
    site = example_site()
    site["juno_ad"] = dict(site["juno_ad"])
    site["juno_ad"].pop("ca_file")
    docs = rendered_manifests("namespace.yaml.j2", site["juno_hubs"][0], site=site)
    assert [d["kind"] for d in docs] == ["Namespace"]


def test_bind_password_secret(site):
    docs = rendered_manifests("secrets.yaml.j2", site["juno_hubs"][0], site=site)
    validate(docs)
    assert len(docs) == 1
    secret = docs[0]
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"], secret["type"]) == ("juno-ad-bind", "hub-chemeng", "Opaque")
    assert base64.b64decode(secret["data"]["password"]).decode() == BIND_PASSWORD


def test_tls_secret(site, tls_hub):
    docs = rendered_manifests("secrets.yaml.j2", tls_hub, site=site)
    validate(docs)
    tls = docs[1]
    assert (tls["metadata"]["name"], tls["metadata"]["namespace"], tls["type"]) == ("juno-proxy-tls", "courses-everything", "kubernetes.io/tls")
    assert base64.b64decode(tls["data"]["tls.key"]).decode().startswith("-----BEGIN PRIVATE KEY-----")
    assert base64.b64decode(tls["data"]["tls.crt"]).decode().endswith("-----END CERTIFICATE-----\n")
