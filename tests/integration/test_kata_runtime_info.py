# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""juno.hub.kata_runtime_info on real machines: the test machine itself and node containers.

The module is run through ansible (ad hoc, JSON callback). What it should say is worked out
here, independently, from the same machine: the CPU flags in /proc/cpuinfo, /dev/kvm (is it a
character device, does it open read-write), /sys/module, the kernel's modules.* files and
`modprobe -n`. On the test machines /dev/kvm exists but the CPU has no vmx/svm flag, so the
machine itself is a real negative case; the containers have no /dev/kvm unless they are given it.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ("vhost", "vhost_net", "vhost_vsock")
KATA_RUNTIME = "/opt/kata/bin/kata-runtime"
CONTAINERD_KATA = """version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata]
  runtime_type = "io.containerd.kata.v2"
  privileged_without_host_devices = true
  pod_annotations = ["io.katacontainers.*"]
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata.options]
  ConfigPath = "/opt/kata/share/defaults/kata-containers/configuration.toml"
"""


def ansible_module(pattern, inventory, *extra, args=""):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(TOP, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(TOP, ".collections"),
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_HOST_KEY_CHECKING="false")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    cmd = [ansible if os.path.exists(ansible) else shutil.which("ansible"), pattern, "-i", inventory, *extra,
           "-m", "juno.hub.kata_runtime_info"] + (["-a", args] if args else [])
    proc = subprocess.run(cmd, env=env, cwd=TOP, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][pattern]
    assert result.get("failed") is not True, result
    return result


class Local:
    """The test machine, asked through plain commands."""

    def sh(self, script):
        proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, check=False)
        return proc.returncode, proc.stdout

    def python(self, code):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
        return proc.returncode, proc.stdout


def docker_exec(name, *cmd):
    return subprocess.run(["docker", "exec", name, *cmd], capture_output=True, text=True, timeout=120, check=False)


class Container:
    """A container (from the docker_container fixture of conftest.py), asked through docker exec."""

    def __init__(self, name):
        self.name = name

    def sh(self, script):
        proc = docker_exec(self.name, "sh", "-c", script)
        return proc.returncode, proc.stdout

    def python(self, code):
        proc = docker_exec(self.name, "python3", "-c", code)
        return proc.returncode, proc.stdout


def expectation(machine):
    """What the machine offers Kata, found with commands the module does not use."""
    cpuinfo = machine.sh("cat /proc/cpuinfo")[1]
    flag_lines = [set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines() if re.match(r"^flags\s*:", line)]
    flags = set.intersection(*flag_lines) if flag_lines else set()
    x86 = bool(flag_lines)
    virt = sorted(flags & {"vmx", "svm"})
    kvm_present = machine.sh("test -e /dev/kvm")[0] == 0
    kvm_char = machine.sh("test -c /dev/kvm")[0] == 0
    kvm_usable = kvm_char and machine.python("import os; os.close(os.open('/dev/kvm', os.O_RDWR))")[0] == 0
    release = machine.sh("uname -r")[1].strip()
    available = {}
    for name in MODULES:
        script = (
            "test -d /sys/module/{m} && exit 0; "
            "for f in /lib/modules/{r}/modules.builtin /lib/modules/{r}/modules.dep; do "
            "  [ -r \"$f\" ] && cut -d: -f1 \"$f\" | sed 's#.*/##; s#\\.ko.*##; s#-#_#g' | grep -qx {m} && exit 0; "
            "done; "
            "m=$(command -v modprobe || ls /sbin/modprobe /usr/sbin/modprobe 2>/dev/null | head -n1); "
            "[ -n \"$m\" ] && \"$m\" -n -q {m} && exit 0; exit 1"
        ).format(m=name, r=release)
        available[name] = machine.sh(script)[0] == 0
    kata_installed = machine.sh("test -x %s" % KATA_RUNTIME)[0] == 0
    kata_check_ok = None
    if kata_installed:
        kata_check_ok = machine.sh("%s check --no-network-checks" % KATA_RUNTIME)[0] == 0
    capable = (bool(virt) or not x86) and kvm_usable and all(available.values()) and kata_check_ok is not False
    return {
        "flags": virt, "hypervisor": "hypervisor" in flags, "x86": x86, "release": release,
        "kvm": {"present": kvm_present, "char_device": kvm_char, "usable": kvm_usable},
        "available": available, "kata_installed": kata_installed, "capable": capable,
    }


def assert_matches(result, expected):
    f = result["findings"]
    assert result["changed"] is False
    assert f["kernel_release"] == expected["release"]
    assert f["cpu"]["virtualization_flags"] == expected["flags"]
    assert f["cpu"]["hypervisor"] is expected["hypervisor"]
    assert f["virtualization"]["is_vm"] is expected["hypervisor"]
    for key, value in expected["kvm"].items():
        assert f["kvm"][key] is value, (key, f["kvm"])
    for name, available in expected["available"].items():
        assert (f["modules"][name]["state"] != "missing") is available, (name, f["modules"][name])
    assert f["kata"]["installed"] is expected["kata_installed"]
    assert result["capable"] is expected["capable"], result["reasons"]
    # every missing piece is named in the reasons, and there are reasons exactly when not capable
    reasons = " | ".join(result["reasons"])
    assert bool(result["reasons"]) is (not expected["capable"])
    if expected["x86"] and not expected["flags"]:
        assert "no vmx or svm flag" in reasons
        if expected["hypervisor"]:
            assert "nested virtualisation" in reasons
    if not expected["kvm"]["present"]:
        assert "/dev/kvm does not exist" in reasons
    elif not expected["kvm"]["usable"]:
        assert "/dev/kvm" in reasons
    for name, available in expected["available"].items():
        assert ("kernel module %s " % name in reasons) is (not available), name
    if not result["capable"]:
        assert result["ready"] is False


def test_on_the_test_machine():
    result = ansible_module("localhost", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable)
    expected = expectation(Local())
    assert_matches(result, expected)


def test_test_machine_is_a_real_negative_case():
    """The machines this suite runs on have /dev/kvm but no vmx/svm: the module must not be fooled by /dev/kvm."""
    expected = expectation(Local())
    if expected["flags"] or not expected["kvm"]["present"]:
        pytest.skip("this machine is not the documented test machine (vmx/svm %s, /dev/kvm %s)" % (expected["flags"], expected["kvm"]["present"]))
    result = ansible_module("localhost", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable)
    assert result["findings"]["kvm"]["present"] is True
    assert result["capable"] is False
    assert any("no vmx or svm flag" in r for r in result["reasons"])


def _in_container(name, args=""):
    return ansible_module(name, name + ",", "-c", "community.docker.docker", "-e", "ansible_python_interpreter=/usr/bin/python3", args=args)


def test_in_a_node_container(docker_container):
    name = docker_container("kata-node")
    result = _in_container(name)
    expected = expectation(Container(name))
    assert expected["kvm"]["present"] is False  # an unprivileged node container gets no /dev/kvm
    assert_matches(result, expected)
    assert result["findings"]["containerd"]["present"] is False


def test_in_a_node_container_given_dev_kvm(docker_container):
    """With --device /dev/kvm the container sees a usable KVM device; the containerd config written into it is read back."""
    if not os.path.exists("/dev/kvm"):
        pytest.skip("the test machine has no /dev/kvm to pass into a container")
    name = docker_container("kata-kvm", extra=("--device", "/dev/kvm"))
    wrote = docker_exec(name, "sh", "-c", "mkdir -p /etc/containerd && cat > /etc/containerd/config.toml <<'EOF'\n%sEOF\n" % CONTAINERD_KATA)
    assert wrote.returncode == 0, wrote.stderr
    result = _in_container(name)
    expected = expectation(Container(name))
    assert expected["kvm"]["present"] is True
    assert_matches(result, expected)
    containerd = result["findings"]["containerd"]
    assert containerd["parsed"] is True and containerd["version"] == 2
    assert containerd["kata_handlers"] == ["kata"]
    kata = [r for r in containerd["runtimes"] if r["name"] == "kata"][0]
    assert kata["runtime_type"] == "io.containerd.kata.v2" and kata["privileged_without_host_devices"] is True
    # same machine, read below root=/ explicitly and with another config path: same answer
    again = _in_container(name, args="root=/ containerd_config=/nonexistent.toml kata_check=false")
    assert again["capable"] is result["capable"] and again["reasons"] == result["reasons"]
    assert again["findings"]["containerd"]["present"] is False
