# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check what playbooks/hubs.yml rendered for the hubs-render scenario.

    check_rendered.py <render dir>/hubs

- every <release>.values.yaml, merged over the chart's defaults as Helm merges them, validates
  against the Zero to JupyterHub 4.4.0 values schema (../shared/fixtures/z2jh-4.4.0, or
  $JUNO_SHARED_DIR/fixtures/z2jh-4.4.0);
- every object of <hub>-namespace.yaml and <hub>-secrets.yaml validates with kubernetes-validate
  for Kubernetes 1.32 (strict);
- namespaces carry the Pod Security labels; releases, namespaces and the chart's cluster-scoped
  names differ between hubs; user pods are isolated (NetworkPolicies on, no iptables init container,
  the site's node network and API address excepted from their egress, no token).
Exits non-zero with one line per problem.
"""

import glob
import importlib
import ipaddress
import os
import sys

import kubernetes_validate
import yaml

CLUSTER_SCOPED = ("default-priority", "user-placeholder-priority", "image-puller-priority", "user-scheduler")


PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The unit tests' helpers know where the chart's schema and defaults are and how Helm merges values.
sys.path[:0] = [os.path.join(PROJECT, ".collections"), os.path.join(PROJECT, "tests", "unit")]
hub_lib = importlib.import_module("test_hub_lib")


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def main(render):
    problems = []
    chart = hub_lib.CHART
    values_files = sorted(glob.glob(os.path.join(render, "*.values.yaml")))
    if len(values_files) != 2:
        problems.append("expected the values of 2 hubs in %s, found %d" % (render, len(values_files)))
    if os.path.exists(os.path.join(chart, "values.schema.yaml")):
        for path in values_files:
            problems += ["%s: %s" % (os.path.basename(path), e) for e in hub_lib.schema_errors(load(path))]
    else:
        print("SKIP schema validation: %s not found (set JUNO_SHARED_DIR)" % chart)

    for path in sorted(glob.glob(os.path.join(render, "*-namespace.yaml")) + glob.glob(os.path.join(render, "*-secrets.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                try:
                    kubernetes_validate.validate(doc, "1.32", strict=True)
                except kubernetes_validate.ValidationError as exc:
                    problems.append("%s: %s %s: %s" % (os.path.basename(path), doc.get("kind"), doc["metadata"].get("name"), exc))
                if doc["kind"] == "Namespace":
                    labels = doc["metadata"].get("labels") or {}
                    expected = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
                                "pod-security.kubernetes.io/audit": "restricted"}
                    for key, value in expected.items():
                        if labels.get(key) != value:
                            problems.append("%s: namespace label %s is %r, not %r" % (os.path.basename(path), key, labels.get(key), value))

    releases, namespaces, cluster_scoped = [], [], []
    for path in sorted(glob.glob(os.path.join(render, "*.release.yaml"))):
        release = load(path)
        releases.append(release["release"])
        namespaces.append(release["namespace"])
        cluster_scoped += ["%s-%s" % (release["release"], s) for s in CLUSTER_SCOPED]
    for what, names in (("release", releases), ("namespace", namespaces), ("cluster-scoped name", cluster_scoped)):
        if len(names) != len(set(names)):
            problems.append("hubs share a %s: %s" % (what, names))

    for path in values_files:
        values = load(path)
        name = os.path.basename(path)
        su = values["singleuser"]
        if su["cloudMetadata"]["blockWithIptables"] is not False:
            problems.append("%s: the privileged iptables init container is on" % name)
        for section in (values["hub"], values["proxy"]["chp"], su):
            if section["networkPolicy"]["enabled"] is not True:
                problems.append("%s: a NetworkPolicy is off" % name)
        if values["hub"]["config"]["KubeSpawner"]["automount_service_account_token"] is not False:
            problems.append("%s: user pods get a service-account token" % name)
        blocked = [ipaddress.ip_network(e) for rule in su["networkPolicy"]["egress"] for peer in rule["to"]
                   for e in peer.get("ipBlock", {}).get("except", [])]
        for address in ("172.28.40.11", "172.28.40.10", "172.28.40.241", "169.254.169.254", "10.96.0.1", "10.244.1.2"):
            if not any(ipaddress.ip_address(address) in net for net in blocked):
                problems.append("%s: user pods may reach %s" % (name, address))
        if values["hub"]["config"]["LDAPAuthenticator"]["tls_kwargs"].get("validate") != 2:
            problems.append("%s: LDAP certificate validation is off" % name)
    for problem in problems:
        print(problem)
    print("checked %d values files; %d problem(s)" % (len(values_files), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
