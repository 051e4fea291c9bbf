"""Shared helpers of the jupyterhub role's unit tests (test_hub_*.py); no tests of its own.

- the Zero to JupyterHub 4.4.0 values schema and defaults from ``<repo>/../shared/fixtures``
  (or ``$JUNO_SHARED_DIR/fixtures``), merged the way Helm merges values before it validates;
- the role's templates rendered with Jinja2, Ansible's own filters and the collection's filters,
  with the variables the role gives them (defaults/main.yml and vars/main.yml);
- the example inventory's site settings and a set of edge-case hubs.
"""

import base64
import copy
import functools
import json
import os

import jinja2
import pytest
import yaml

from ansible.plugins.filter.core import FilterModule as CoreFilters

from ansible_collections.juno.hub.plugins.filter import hub as hubf

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(TOP, "roles", "jupyterhub")
EXAMPLE = os.path.join(TOP, "inventories", "example")
SHARED = os.environ.get("JUNO_SHARED_DIR") or os.path.join(os.path.dirname(TOP), "shared")
CHART = os.path.join(SHARED, "fixtures", "z2jh-4.4.0")
BIND_PASSWORD = "Unit-Test-Bind-Pa55word!"


@functools.lru_cache(maxsize=None)
def _load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def load_yaml(path):
    return copy.deepcopy(_load_yaml(path))


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft7Validator(load_yaml(os.path.join(CHART, "values.schema.yaml")))


def chart():
    """(defaults, schema) of the chart, or skip when the fixtures are not there."""
    schema = os.path.join(CHART, "values.schema.yaml")
    defaults = os.path.join(CHART, "values.yaml")
    if not (os.path.exists(schema) and os.path.exists(defaults)):
        pytest.skip("Zero to JupyterHub 4.4.0 values/schema not found in %s (set JUNO_SHARED_DIR)" % CHART)
    return load_yaml(defaults), load_yaml(schema)


def helm_coalesce(defaults, values):
    """Helm's merge of user values over chart defaults: maps merge, other values replace, null deletes."""
    result = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = helm_coalesce(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def schema_errors(values):
    """Messages of every schema violation of the values merged over the chart's defaults."""
    defaults, _schema = chart()
    merged = helm_coalesce(defaults, values)
    validator = _validator()
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path), e.message) for e in validator.iter_errors(merged)]


def example_site():
    """The example inventory's juno_* settings (group_vars/all without the vault)."""
    site = {}
    for name in ("site.yml", "ad.yml", "hubs.yml"):
        site.update(load_yaml(os.path.join(EXAMPLE, "group_vars", "all", name)))
    return site


def edge_hubs():
    """Hubs that exercise the corners of the values: minimal, everything set, TLS, posix ids, no culling."""
    return [
        {"name": "minimal", "hostname": "minimal.hub.example.edu", "ad": {"allowed_groups": ["Minimal-Users"]}},
        {
            "name": "everything",
            "hostname": "everything.hub.example.edu",
            "namespace": "courses-everything",
            "lb_address": "10.20.0.250",
            "ad": {
                "allowed_groups": ["CN=Course A,OU=Groups,DC=ad,DC=example,DC=edu", "Course-B"],
                "admin_groups": ["Course-TAs", "Course-Profs"],
            },
            "image": {"name": "quay.io/jupyter/pytorch-notebook", "tag": "cuda12-2025-10-20"},
            "resources": {"cpu_guarantee": 1.0, "cpu_limit": 4.0, "mem_guarantee": "2G", "mem_limit": "8G"},
            "storage": {"capacity": "50Gi"},
            "idle_timeout": 300,
            "posix_ids_from_ad": True,
            "user_scheduler": False,
            "user_placeholders": 3,
            "prepull": False,
            "profiles": [
                {"display_name": "CPU", "default": True},
                {"display_name": "GPU", "gpu": 2, "cpu_limit": 8.0, "mem_limit": "64G", "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20"},
                {"display_name": "GPU", "description": "same name, other slug", "gpu": 1},
                {"display_name": "Kata + GPU", "kata": True, "gpu": 1, "mem_guarantee": "4G", "mem_limit": "4G"},
            ],
            "tls": {"certificate_file": "/etc/ssl/everything.pem", "key_file": "/etc/ssl/everything.key"},
            "extra_values": {
                "hub": {"config": {"JupyterHub": {"shutdown_on_logout": True}}},
                "singleuser": {"defaultUrl": "/lab", "extraEnv": {"JUPYTER_ENABLE_LAB": "yes"}},
                "proxy": {"service": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}},
            },
        },
        {"name": "noculling", "hostname": "noculling.hub.example.edu", "idle_timeout": 0, "ad": {"allowed_groups": ["G"]}, "profiles": []},
        {
            "name": "startls",
            "hostname": "starttls.hub.example.edu",
            "ad": {"allowed_groups": ["G"], "admin_groups": []},
            "image": {"name": "registry.example.edu/course/image", "tag": "1.0"},
        },
    ]


def site_with(**changes):
    site = example_site()
    for key, value in changes.items():
        site[key] = value
    return site


# --- the role's variables and templates ----------------------------------------------------------

def _filters():
    """Ansible's core filters (Jinja's own, such as default, stay Jinja's) and the collection's."""
    filters = {}
    builtin = jinja2.Environment().filters
    for name, func in CoreFilters().filters().items():
        if name not in builtin:
            filters[name] = func
        filters["ansible.builtin." + name] = func
    for name, func in hubf.FilterModule().filters().items():
        filters["juno.hub." + name] = func
    return filters


def _lookup(kind, path, **kwargs):
    assert kind in ("ansible.builtin.file", "file"), "the role's templates only look up files, not %r" % kind
    with open(path) as f:
        return f.read().rstrip("\n")


def environment():
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True)
    env.filters.update(_filters())
    env.globals["lookup"] = _lookup
    return env


def render_string(text, variables):
    return environment().from_string(text).render(**variables)


def render_value(value, variables):
    """Template a variable the way Ansible does for simple expressions (one {{ }} gives a native value)."""
    if isinstance(value, str) and value.startswith("{{") and value.endswith("}}") and value.count("{{") == 1:
        return environment().compile_expression(value[2:-2].strip())(**variables)
    if isinstance(value, str) and "{{" in value:
        return render_string(value, variables)
    if isinstance(value, dict):
        return dict((k, render_value(v, variables)) for k, v in value.items())
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    return value


def role_variables(site=None, **overrides):
    """defaults/main.yml, the site's juno_* settings and vars/main.yml, templated in that order."""
    variables = dict(load_yaml(os.path.join(ROLE, "defaults", "main.yml")))
    variables.update(site if site is not None else example_site())
    variables.setdefault("juno_ad", {}).setdefault("bind_password", BIND_PASSWORD)
    variables["juno_ad"]["bind_password"] = BIND_PASSWORD
    variables.update(overrides)
    internal = load_yaml(os.path.join(ROLE, "vars", "main.yml"))
    # _jupyterhub_settings refers to _jupyterhub_ca_mount_dir: template the plain ones first.
    for name in sorted(internal, key=lambda n: n != "_jupyterhub_ca_mount_dir"):
        variables[name] = render_value(internal[name], variables)
    return variables


def render_template(name, variables):
    with open(os.path.join(ROLE, "templates", name)) as f:
        return render_string(f.read(), variables)


def hub_variables(hub, site=None, lookup=None, note="", **overrides):
    """The variables the role's per-hub tasks (tasks/hub.yml) give the templates."""
    variables = role_variables(site, **overrides)
    variables["__jupyterhub_hub"] = hub
    variables["__jupyterhub_names"] = hubf.hub_names(hub, variables["jupyterhub_release_prefix"])
    variables["__jupyterhub_directory"] = hubf.hub_directory(hub, lookup or {}, note)
    return variables


def rendered_values(hub, site=None, lookup=None, note="", **overrides):
    """The Helm values of a hub as tasks/hub.yml builds them: values.yaml.j2 | from_yaml."""
    return yaml.safe_load(render_template("values.yaml.j2", hub_variables(hub, site, lookup, note, **overrides)))


def rendered_manifests(template, hub, site=None, **overrides):
    return [doc for doc in yaml.safe_load_all(render_template(template, hub_variables(hub, site, **overrides))) if doc]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def dumps(values):
    return json.dumps(values, sort_keys=True)
