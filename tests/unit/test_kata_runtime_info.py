"""Unit tests of the Kata probe (plugins/module_utils/_kata.py) on fixture node trees.

The trees under fixtures/kata/<case>/ are a node's / (see fixtures/kata/README.md). Device nodes
cannot live in git, so fixtures/kata/<case>/dev/kvm is a text file ("char rw", "char ro") that the
fake device check below reads; the real device check is tested against /dev/null.
"""

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.juno.hub.plugins.module_utils import _kata

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures", "kata")
KATA_CHECK = os.path.join(FIXTURES, "kata-check")

real_check_device = _kata.check_device


def fake_check_device(path):
    """Read a fixture's dev/kvm description instead of opening a device."""
    try:
        with open(path) as handle:
            text = handle.read().split()
    except (IOError, OSError):
        return real_check_device(path)
    if text[:1] != ["char"]:
        return real_check_device(path)
    usable = text[1:2] == ["rw"]
    return {"path": path, "present": True, "char_device": True, "usable": usable, "error": None if usable else "Permission denied"}


@pytest.fixture
def fixture_devices(monkeypatch):
    monkeypatch.setattr(_kata, "check_device", fake_check_device)


def probe(case, **kwargs):
    kwargs.setdefault("euid", 0)
    return _kata.KataProbe(root=os.path.join(FIXTURES, case), **kwargs).run()


def read(name):
    with open(os.path.join(KATA_CHECK, name)) as handle:
        return handle.read()


# --- whole probe on each fixture node ------------------------------------------------------------

def test_intel_host_is_capable_and_ready(fixture_devices):
    result = probe("intel-host")
    assert result["capable"] is True, result["reasons"]
    assert result["reasons"] == []
    f = result["findings"]
    assert f["kernel_release"] == "6.1.0-28-amd64"
    assert f["cpu"]["vendor_id"] == "GenuineIntel"
    assert f["cpu"]["processors"] == 4
    assert f["cpu"]["virtualization_flags"] == ["vmx"]
    assert f["virtualization"]["is_vm"] is False
    assert f["virtualization"]["nested_available"] is None
    assert f["virtualization"]["nested_parameter"] == {
        "module": "kvm_intel", "parameter": "/sys/module/kvm_intel/parameters/nested", "value": "Y", "enabled": True}
    assert f["kvm"]["usable"] is True
    assert {n: m["state"] for n, m in f["modules"].items()} == {"vhost": "loaded", "vhost_net": "loaded", "vhost_vsock": "loaded"}
    # Installed (the binary exists below root) but not run, because root is not /.
    assert f["kata"]["installed"] is True
    assert f["kata"]["check"]["ran"] is False
    assert "root" in f["kata"]["check"]["skipped"]
    assert f["containerd"]["kata_handlers"] == ["kata"]
    assert result["ready"] is True


def test_amd_host_modules_loadable_from_modules_dep(fixture_devices):
    result = probe("amd-host")
    assert result["capable"] is True, result["reasons"]
    f = result["findings"]
    assert f["virtualization"]["flag"] == "svm"
    assert f["virtualization"]["technology"] == "AMD-V"
    assert f["virtualization"]["nested_parameter"]["module"] == "kvm_amd"
    assert f["virtualization"]["nested_parameter"]["enabled"] is True
    for name in ("vhost", "vhost_net", "vhost_vsock"):
        assert f["modules"][name] == {"state": "available", "source": "/lib/modules/6.8.0-49-generic/modules.dep"}
    assert f["kata"]["installed"] is False
    # containerd 2.x layout
    kata = [r for r in f["containerd"]["runtimes"] if r["kata"]]
    assert len(kata) == 1 and kata[0]["plugin"] == "io.containerd.cri.v1.runtime"
    assert result["ready"] is False


def test_nested_vm_is_capable_with_notes(fixture_devices):
    result = probe("intel-nested-vm")
    assert result["capable"] is True, result["reasons"]
    v = result["findings"]["virtualization"]
    assert v["is_vm"] is True
    assert v["nested_available"] is True
    assert v["nested_parameter"]["value"] == "N"
    assert v["nested_parameter"]["enabled"] is False
    modules = result["findings"]["modules"]
    assert modules["vhost"]["state"] == "builtin"  # in /sys/module without initstate
    assert modules["vhost_net"]["state"] == "loaded"
    assert any("virtual machine with nested virtualisation (vmx" in n for n in result["notes"])
    assert any("kvm_intel nested=N" in n for n in result["notes"])
    # runc only: capable, but not ready for Kata pods
    assert result["findings"]["containerd"]["kata_configured"] is False
    assert result["ready"] is False


def test_vm_without_nested_virtualisation(fixture_devices):
    result = probe("vm-no-nested")
    assert result["capable"] is False
    v = result["findings"]["virtualization"]
    assert v["is_vm"] is True and v["nested_available"] is False and v["flag"] is None
    reasons = result["reasons"]
    assert len(reasons) == 2, reasons
    assert "virtual machine" in reasons[0] and "nested virtualisation" in reasons[0]
    assert reasons[1].startswith("/dev/kvm does not exist")
    # modules are loadable: no reason about them
    assert not any("vhost" in r for r in reasons)
    assert result["findings"]["containerd"]["present"] is False


def test_host_without_kvm(fixture_devices):
    result = probe("host-no-kvm")
    assert result["capable"] is False
    reasons = result["reasons"]
    assert any(r.startswith("/dev/kvm does not exist: the KVM modules (kvm, kvm_intel) are not loaded") for r in reasons), reasons
    missing = [r for r in reasons if r.startswith("kernel module")]
    assert missing == [
        "kernel module vhost_vsock is neither loaded nor available for kernel 5.14.0-503.11.1.el9_5.x86_64 "
        "(looked in /sys/module, /lib/modules/5.14.0-503.11.1.el9_5.x86_64/modules.dep)"]
    assert not any("hardware virtualisation" in r for r in reasons)  # vmx is there
    # a broken containerd config is a note, not a reason
    assert result["findings"]["containerd"]["parsed"] is False
    assert "not valid TOML" in result["findings"]["containerd"]["error"]
    assert any(n.startswith("containerd config:") for n in result["notes"])


def test_kvm_that_does_not_open(fixture_devices):
    result = probe("kvm-readonly", euid=1000)
    assert result["capable"] is False
    assert result["reasons"] == ["/dev/kvm cannot be opened read-write (Permission denied); run the probe as root (become: true)"]
    assert result["findings"]["virtualization"]["nested_parameter"]["enabled"] is False


def test_arm64_is_judged_by_dev_kvm(fixture_devices):
    result = probe("arm64-host")
    assert result["capable"] is True, result["reasons"]
    assert result["findings"]["cpu"]["family"] == "other"
    assert any("not an x86 CPU" in n for n in result["notes"])


def test_dev_kvm_regular_file_is_not_a_device(tmp_path):
    root = tmp_path / "node"
    shutil.copytree(os.path.join(FIXTURES, "intel-host"), str(root))
    (root / "dev" / "kvm").write_text("not a device\n")
    result = _kata.KataProbe(root=str(root), euid=0).run()
    assert "/dev/kvm is not a character device" in result["reasons"]


def test_cpu_without_vmx_on_bare_metal(tmp_path, fixture_devices):
    root = tmp_path / "node"
    shutil.copytree(os.path.join(FIXTURES, "intel-host"), str(root))
    cpuinfo = root / "proc" / "cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text().replace(" vmx ", " "))
    result = _kata.KataProbe(root=str(root), euid=0).run()
    assert result["capable"] is False
    assert result["reasons"][0].startswith("the CPU does not offer hardware virtualisation (no vmx or svm flag")


def test_flag_missing_on_one_cpu_counts_as_missing():
    text = "processor : 0\nflags : fpu vmx lm\n\nprocessor : 1\nflags : fpu lm\n"
    assert _kata.parse_cpuinfo(text)["virtualization_flags"] == []


def test_modprobe_is_asked_last(tmp_path, fixture_devices):
    root = tmp_path / "node"
    shutil.copytree(os.path.join(FIXTURES, "host-no-kvm"), str(root))
    calls = []

    def run(argv):
        calls.append(argv)
        return (0 if argv[-1] == "vhost_vsock" else 1, "", "")

    result = _kata.KataProbe(root=str(root), euid=0, run_command=run, get_bin_path=lambda n: "/sbin/modprobe").run()
    assert calls == [["/sbin/modprobe", "-n", "-q", "-d", str(root), "-S", "5.14.0-503.11.1.el9_5.x86_64", "vhost_vsock"]]
    assert result["findings"]["modules"]["vhost_vsock"] == {"state": "available", "source": "modprobe -n -q"}
    assert not any(r.startswith("kernel module") for r in result["reasons"])


# --- pieces ------------------------------------------------------------------------------------

def test_real_device_check():
    assert real_check_device("/dev/null") == {"path": "/dev/null", "present": True, "char_device": True, "usable": True, "error": None}
    assert real_check_device("/nonexistent/kvm")["present"] is False
    assert real_check_device(__file__)["char_device"] is False


@pytest.mark.parametrize("entry, name", [
    ("kernel/drivers/vhost/vhost_net.ko.xz", "vhost_net"),
    ("kernel/arch/x86/kvm/kvm-intel.ko.zst", "kvm_intel"),
    ("kernel/drivers/vhost/vhost.ko", "vhost"),
    ("kernel/net/vmw_vsock/vsock.ko.gz", "vsock"),
])
def test_module_name(entry, name):
    assert _kata.module_name(entry) == name


@pytest.mark.parametrize("value, expected", [("Y", True), ("1\n", True), ("N", False), ("0", False), ("maybe", None), (None, None)])
def test_bool_param(value, expected):
    assert _kata.parse_bool_param(value) is expected


def test_kata_check_logfmt_failure():
    result = _kata.parse_kata_check(1, read("logfmt-not-capable.txt"), "")
    assert result["passed"] is False and result["rc"] == 1
    assert result["reasons"] == [
        "CPU property not found: Virtualization support (vmx)",
        "kernel property not found: Host Support for Linux VM Sockets (vhost_vsock)",
    ]
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith("modprobe insert module failed [module vhost_vsock, error exit status 1]")
    assert result["summary"] == ["ERROR: System is not capable of running Kata Containers"]


def test_kata_check_terminal_format_with_continuation_line():
    result = _kata.parse_kata_check(1, "", read("text-not-capable.txt"))
    assert result["reasons"] == [
        "kernel property not found: Host Support for Linux VM Sockets (vhost_vsock)",
        "kernel property not found: Intel KVM (kvm_intel)",
    ]
    assert result["warnings"] == [
        "modprobe insert module failed: modprobe: ERROR: could not insert 'kvm_intel': Operation not supported "
        "[module kvm_intel, error exit status 1]"]


def test_kata_check_terminal_format_with_colours():
    line = "\x1b[31mERRO\x1b[0m[0000] CPU property not found                        \x1b[31march\x1b[0m=amd64 " \
           "\x1b[31mdescription\x1b[0m=\"Virtualization support\" \x1b[31mname\x1b[0m=vmx \x1b[31mtype\x1b[0m=flag\n"
    assert _kata.parse_kata_check(1, line, "")["reasons"] == ["CPU property not found: Virtualization support (vmx)"]


def test_kata_check_pass():
    result = _kata.parse_kata_check(0, read("pass.txt"), "")
    assert result == {"ran": True, "rc": 0, "passed": True, "reasons": [], "warnings": [],
                      "summary": ["System is capable of running Kata Containers", "System can currently create Kata Containers"]}


def test_kata_check_pass_with_warning():
    result = _kata.parse_kata_check(0, read("pass-with-warning.txt"), "")
    assert result["passed"] is True
    assert result["warnings"] == ["kernel module parameter has unexpected value: Intel KVM (kvm_intel.nested) [expected Y]"]


def test_kata_check_failure_without_log_lines():
    result = _kata.parse_kata_check(2, "", "kata-runtime: cannot read configuration\n")
    assert result["reasons"] == ["kata-runtime check exited with status 2"]


def test_kata_check_runs_only_on_the_node_itself(tmp_path, fixture_devices):
    """With root / the probe runs the installed kata-runtime; its errors become reasons."""
    fake = tmp_path / "kata-runtime"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    calls = []

    def run(argv):
        calls.append(argv[1:])
        if argv[1] == "--version":
            return 0, "kata-runtime  : 3.7.0\n   commit   : 1a2b3c\n   OCI specs: 1.1.0+dev\n", ""
        return 1, read("logfmt-not-capable.txt"), ""

    result = _kata.KataProbe(root="/", kata_runtime=str(fake), run_command=run, get_bin_path=lambda n: None, euid=0).run()
    assert calls == [["--version"], ["check", "--no-network-checks"]]
    kata = result["findings"]["kata"]
    assert kata["installed"] is True and kata["version"] == "3.7.0"
    assert kata["check"]["ran"] is True and kata["check"]["rc"] == 1
    assert "kata-runtime check (exit status 1): CPU property not found: Virtualization support (vmx)" in result["reasons"]
    assert result["capable"] is False


# --- containerd configuration ------------------------------------------------------------------

def test_containerd_v2_layout():
    info = _kata.inspect_containerd("/etc/containerd/config.toml", os.path.join(FIXTURES, "intel-host"))
    assert info["parsed"] and info["version"] == 2
    kata = [r for r in info["runtimes"] if r["name"] == "kata"][0]
    assert kata["runtime_type"] == "io.containerd.kata.v2"
    assert kata["privileged_without_host_devices"] is True
    assert kata["pod_annotations"] == ["io.katacontainers.*"]
    assert kata["config_path"] == "/opt/kata/share/defaults/kata-containers/configuration.toml"
    assert kata["plugin"] == "io.containerd.grpc.v1.cri"
    assert [r["name"] for r in info["runtimes"]] == ["kata", "runc"]


def test_containerd_imports_and_kata_deploy_style_handlers(tmp_path):
    etc = tmp_path / "etc" / "containerd"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "config.toml").write_text('version = 3\nimports = ["conf.d/*.toml"]\n')
    (etc / "conf.d" / "kata.toml").write_text(
        '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.kata-qemu]\nruntime_type = "io.containerd.kata-qemu.v2"\n')
    info = _kata.inspect_containerd("/etc/containerd/config.toml", str(tmp_path))
    assert info["imports"] == ["/etc/containerd/conf.d/kata.toml"]
    assert info["kata_handlers"] == ["kata-qemu"]
    assert info["runtimes"][0]["file"] == "/etc/containerd/conf.d/kata.toml"


def test_containerd_runc_is_not_kata():
    info = _kata.inspect_containerd("/etc/containerd/config.toml", os.path.join(FIXTURES, "intel-nested-vm"))
    assert info["parsed"] and [r["name"] for r in info["runtimes"]] == ["runc"]
    assert info["kata_configured"] is False


def test_containerd_without_toml_parser(monkeypatch):
    monkeypatch.setattr(_kata, "_toml", None)
    info = _kata.inspect_containerd("/etc/containerd/config.toml", os.path.join(FIXTURES, "intel-host"))
    assert info["present"] is True and info["parsed"] is False
    assert "no TOML parser" in info["error"]


# --- the module itself, through ansible --------------------------------------------------------

def test_module_runs_through_ansible_on_a_fixture_root():
    """The module plumbing: options, JSON result. The fixture's dev/kvm is a plain file there."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    root = os.path.join(FIXTURES, "amd-host")
    proc = subprocess.run(
        [shutil.which("ansible") or "ansible", "localhost", "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=" + os.path.realpath(os.sys.executable),
         "-m", "juno.hub.kata_runtime_info", "-a", "root=%s kata_check=false" % root],
        env=env, capture_output=True, text=True, timeout=300, cwd=TOP, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    assert result["findings"]["root"] == root
    assert result["findings"]["cpu"]["virtualization_flags"] == ["svm"]
    assert result["capable"] is False
    assert result["reasons"] == ["/dev/kvm is not a character device"]
