# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.ad_group_info as a module: its documentation against its argument_spec, and the
paths that need no directory (missing ldap3, option relations, how failures are reported)."""

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.juno.hub.plugins.module_utils import _ad
from ansible_collections.juno.hub.plugins.modules import ad_group_info

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ARGS = {"servers": ["dc1.ad.example.edu"], "bind_dn": "svc-juno@ad.example.edu", "bind_password": "Pa55-w0rd-x",
        "base_dn": "DC=ad,DC=example,DC=edu", "groups": ["ChemEng-Students"]}


# Every test runs a module in this process as on a target (module_context, in conftest.py).
pytestmark = pytest.mark.usefixtures("module_context")


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as e:
            ad_group_info.main()
    out = json.loads(capsys.readouterr().out)
    return e.value.code, out


@pytest.fixture(scope="module")
def docs(ansible_doc):
    return ansible_doc("juno.hub.ad_group_info")


def test_documentation_matches_argument_spec(docs):
    """Every option documented (module + juno.hub.ad fragment) with the spec's type, default,
    choices, required and elements; and nothing undocumented."""
    options = docs["doc"]["options"]
    spec = ad_group_info.argument_spec()
    assert sorted(options) == sorted(spec)
    for name, s in spec.items():
        d = options[name]
        assert d.get("type", "str") == s.get("type", "str"), name
        assert d.get("default") == s.get("default"), name
        assert d.get("choices") == s.get("choices"), name
        assert bool(d.get("required")) == bool(s.get("required")), name
        assert d.get("elements") == s.get("elements"), name
    assert docs["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert sorted(docs["return"]) == ["groups", "members", "round_trips", "server", "skipped_servers"]


def test_connection_options_match_the_inventory_model():
    """The module takes juno_ad's keys (roles/preflight/meta/argument_specs.yml) with the same
    types and defaults, so roles can pass them through."""
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(TOP, "roles", "preflight", "meta", "argument_specs.yml")) as fh:
        specs = yaml.safe_load(fh)["argument_specs"]
    juno_ad = next(s["options"]["juno_ad"]["options"] for s in specs.values() if "juno_ad" in s.get("options", {}))
    conn = _ad.connection_argument_spec()
    for key, value in juno_ad.items():
        assert key in conn, key
        assert value.get("type", "str") == conn[key].get("type", "str"), key
        assert value.get("default") == conn[key].get("default"), key
        assert value.get("choices") == conn[key].get("choices"), key
        assert bool(value.get("no_log")) == bool(conn[key].get("no_log")), key


def test_missing_ldap3(monkeypatch, capsys):
    monkeypatch.setattr(_ad, "load_ldap3", lambda: False)
    monkeypatch.setattr(_ad, "LDAP3_IMPORT_ERROR", "Traceback: No module named 'ldap3'")
    code, out = run(ARGS, capsys)
    assert code == 1 and out["failed"] is True
    assert "ldap3" in out["msg"] and "Failed to import the required Python library" in out["msg"]


def test_plain_ldap_refused_before_any_connection(monkeypatch, capsys):
    monkeypatch.setattr(_ad, "connect", lambda *a, **k: pytest.fail("must not connect"))
    code, out = run(dict(ARGS, tls="none"), capsys)
    assert code == 1 and out["error_kind"] == "config"
    assert "set insecure: true" in out["msg"]


def test_failure_is_redacted_and_has_no_traceback(monkeypatch, capsys):
    def lookup(params):
        raise _ad.ADError("cannot bind to ldaps://dc1:636 as 'svc': server echoed %s" % params["bind_password"],
                          kind="auth", server="ldaps://dc1:636")
    monkeypatch.setattr(_ad, "lookup", lookup)
    code, out = run(ARGS, capsys)
    assert code == 1 and out["error_kind"] == "auth" and out["server"] == "ldaps://dc1:636"
    assert ARGS["bind_password"] not in json.dumps(out)
    assert "exception" not in out
    assert out["invocation"]["module_args"]["bind_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_success_in_check_mode_reports_skipped_servers(monkeypatch, capsys):
    def lookup(params):
        return {"server": "ldaps://dc2:636", "skipped_servers": [{"server": "ldaps://dc1:636", "error": "connection refused"}],
                "groups": [], "members": [], "round_trips": 3}
    monkeypatch.setattr(_ad, "lookup", lookup)
    code, out = run(dict(ARGS, _ansible_check_mode=True), capsys)
    assert code == 0 and out["changed"] is False and out["server"] == "ldaps://dc2:636"
    # ansible-core keeps module warnings in a process-wide list: count only this run's.
    mine = [w for w in out["warnings"] if "ldaps://dc1:636" in json.dumps(w)]
    assert len(mine) == 1
    assert "AD server ldaps://dc1:636 was passed over: connection refused" in json.dumps(mine)
