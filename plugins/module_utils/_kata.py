# -*- coding: utf-8 -*-
# Copyright: juno.hub developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe a node for what Kata Containers needs (private helper of juno.hub.kata_runtime_info).

Everything here reads files below a root directory (``/`` on a node, a fixture tree in the unit
tests) and runs commands only through the callables it is given, so that the logic can be tested
without Ansible and without the hardware it describes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import stat

TOML_IMPORT_ERROR = None
try:
    import tomllib as _toml  # Python 3.11 and newer
except ImportError:
    try:
        import tomli as _toml
    except ImportError:
        try:
            import toml as _toml
        except ImportError as exc:  # pragma: no cover - depends on the node's Python
            _toml = None
            TOML_IMPORT_ERROR = exc

KATA_MODULES = ("vhost", "vhost_net", "vhost_vsock")
# CPU flag -> (vendor, KVM vendor module)
VIRT_FLAGS = (("vmx", "Intel VT-x", "kvm_intel"), ("svm", "AMD-V", "kvm_amd"))
KATA_RUNTIME_TYPE = re.compile(r"^io\.containerd\.kata(-[A-Za-z0-9_-]+)?\.v2$")
# Where the CRI plugin keeps its runtimes, newest layout first.
CRI_PLUGINS = (
    ("io.containerd.cri.v1.runtime", "containerd 2.x (config version 3)"),
    ("io.containerd.grpc.v1.cri", "containerd 1.6/1.7 (config version 2)"),
    ("cri", "containerd 1.x (config version 1)"),
)
KO_SUFFIX = re.compile(r"\.ko(\.(xz|gz|zst|bz2))?$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)')
TEXT_LINE = re.compile(r"^(TRAC|DEBU|INFO|WARN|ERRO|FATA|PANI)\[[^\]]*\]\s?(.*)$")
TEXT_LEVELS = {"TRAC": "trace", "DEBU": "debug", "INFO": "info", "WARN": "warning", "ERRO": "error", "FATA": "fatal", "PANI": "panic"}
DETAIL_FIELDS = ("description", "name", "parameter", "expected", "actual", "module", "error")
VERSION = re.compile(r"(\d+\.\d+\.\d+[^\s,]*)")


def under(root, path):
    """The absolute ``path`` of the node, seen below ``root``."""
    if not root or root == "/":
        return path
    return os.path.join(root, path.lstrip("/"))


def read_text(path):
    """File content, or None when it cannot be read."""
    try:
        with open(path, "r") as handle:
            return handle.read()
    except (IOError, OSError, UnicodeDecodeError):
        return None


# --- CPU ---------------------------------------------------------------------------------------

def parse_cpuinfo(text):
    """What /proc/cpuinfo says about hardware virtualisation.

    Flags are those every processor has (a flag missing on one CPU counts as missing).
    ``family`` is ``x86`` when the file has x86 ``flags`` lines; other architectures
    (arm64, s390x, ppc64le) have no vmx/svm flags and are judged by /dev/kvm alone.
    """
    blocks = []
    current = {}
    for line in (text or "").splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current.setdefault(key.strip().lower(), value.strip())
    if current:
        blocks.append(current)
    flag_sets = [set(b["flags"].split()) for b in blocks if "flags" in b]
    common = set.intersection(*flag_sets) if flag_sets else set()
    first = blocks[0] if blocks else {}
    return {
        "family": "x86" if flag_sets else ("unknown" if not blocks else "other"),
        "processors": len([b for b in blocks if "processor" in b]) or len(blocks),
        "vendor_id": first.get("vendor_id"),
        "model_name": first.get("model name"),
        "virtualization_flags": [flag for flag, _vendor, _mod in VIRT_FLAGS if flag in common],
        "hypervisor": "hypervisor" in common,
    }


def parse_bool_param(value):
    """A kernel module parameter as a boolean (Y/N, 1/0), or None when it is something else."""
    if value is None:
        return None
    value = value.strip()
    if value in ("Y", "y", "1"):
        return True
    if value in ("N", "n", "0"):
        return False
    return None


# --- /dev/kvm ----------------------------------------------------------------------------------

def check_device(path):
    """Whether ``path`` exists, is a character device and opens read-write."""
    result = {"path": path, "present": False, "char_device": False, "usable": False, "error": None}
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno != 2:
            result["error"] = os.strerror(exc.errno)
        return result
    result["present"] = True
    result["char_device"] = stat.S_ISCHR(st.st_mode)
    if not result["char_device"]:
        return result
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        result["error"] = os.strerror(exc.errno)
        return result
    os.close(fd)
    result["usable"] = True
    return result


# --- kernel modules ----------------------------------------------------------------------------

def module_name(path):
    """Module name of a modules.dep/modules.builtin entry (``kernel/drivers/vhost/vhost_net.ko.xz``)."""
    return KO_SUFFIX.sub("", os.path.basename(path.strip())).replace("-", "_")


def read_module_index(moddir):
    """Names in modules.builtin and modules.dep of one kernel, and which files were found."""
    builtin = set()
    dep = set()
    found = []
    text = read_text(os.path.join(moddir, "modules.builtin"))
    if text is not None:
        found.append("modules.builtin")
        builtin = set(module_name(line) for line in text.splitlines() if line.strip())
    text = read_text(os.path.join(moddir, "modules.dep"))
    if text is not None:
        found.append("modules.dep")
        dep = set(module_name(line.split(":", 1)[0]) for line in text.splitlines() if ":" in line)
    return builtin, dep, found


# --- kata-runtime check ------------------------------------------------------------------------

def _unquote(value):
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), value[1:-1])
    return value


def _fields(text):
    return dict((k, _unquote(v)) for k, v in LOGFMT_PAIR.findall(text))


def parse_log_lines(output):
    """Log entries of ``kata-runtime check`` (logrus, either logfmt or the terminal format).

    Returns (entries, plain lines); an entry is ``{"level", "msg", "fields"}``.
    """
    entries = []
    plain = []
    for raw in ANSI.sub("", output or "").splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if re.match(r"^[A-Za-z_]+=", line) and re.search(r"(^|\s)level=", line):
            fields = _fields(line)
            if "level" in fields:
                msg = fields.pop("msg", "")
                level = fields.pop("level")
                fields.pop("time", None)
                entries.append({"level": level, "msg": msg, "fields": fields})
                continue
        match = TEXT_LINE.match(line)
        if match:
            rest = match.group(2)
            # logrus pads the message to 44 columns and puts a space before each field.
            split = re.search(r"\s{2,}(?=[A-Za-z_][A-Za-z0-9_.-]*=)", rest)
            msg, tail = (rest[:split.start()], rest[split.end():]) if split else (rest, "")
            if not split:
                first = LOGFMT_PAIR.search(rest)
                if first and first.start() > 0 and rest[first.start() - 1] == " " and rest[:first.start()].strip():
                    msg, tail = rest[:first.start()], rest[first.start():]
            entries.append({"level": TEXT_LEVELS[match.group(1)], "msg": msg.strip(), "fields": _fields(tail)})
            continue
        if raw[:1].isspace() and entries and LOGFMT_PAIR.match(line.strip()):
            # A message with a newline in it: the fields continue on the next line.
            entries[-1]["fields"].update(_fields(line))
            continue
        plain.append(line.strip())
    return entries, plain


def describe_entry(entry):
    """One plain sentence for a log entry: the message and the fields that say what it is about."""
    fields = entry["fields"]
    parts = []
    if fields.get("description"):
        parts.append(fields["description"])
    if fields.get("name") and fields.get("name") not in ("kata-runtime", ""):
        parts.append("(%s%s)" % (fields["name"], "." + fields["parameter"] if fields.get("parameter") else ""))
    extra = []
    for key in ("expected", "actual", "module", "error"):
        if fields.get(key):
            extra.append("%s %s" % (key, fields[key]))
    text = entry["msg"].rstrip(".")
    if parts:
        text += ": " + " ".join(parts)
    if extra:
        text += " [" + ", ".join(extra) + "]"
    return text


def parse_kata_check(rc, stdout, stderr):
    """The result of ``kata-runtime check --no-network-checks`` as data."""
    entries, plain = parse_log_lines((stdout or "") + "\n" + (stderr or ""))
    reasons = []
    warnings = []
    for entry in entries:
        if entry["msg"].startswith("ERROR: System is not capable"):
            continue
        if entry["level"] in ("error", "fatal", "panic"):
            text = describe_entry(entry)
            if text not in reasons:
                reasons.append(text)
        elif entry["level"] == "warning" and entry["msg"] != "Not running network checks as super user":
            text = describe_entry(entry)
            if text not in warnings:
                warnings.append(text)
    summary = [line for line in plain if "Kata Containers" in line or line.startswith("ERROR")]
    if rc != 0 and not reasons:
        reasons = [line for line in plain if line.startswith("ERROR")] or ["kata-runtime check exited with status %d" % rc]
    return {
        "ran": True,
        "rc": rc,
        "passed": rc == 0,
        "reasons": reasons,
        "warnings": warnings,
        "summary": summary,
    }


# --- containerd --------------------------------------------------------------------------------

def loads_toml(text):
    """Parse TOML with tomllib, tomli or toml (whichever the node's Python has)."""
    if _toml is None:
        raise ImportError("no TOML parser: Python 3.11 or newer (tomllib), or the tomli or toml package, is needed")
    return _toml.loads(text)


def cri_runtimes(data, source):
    """Runtime handlers of the CRI plugin in a parsed containerd config, in any layout."""
    found = []
    plugins = data.get("plugins") if isinstance(data, dict) else None
    if not isinstance(plugins, dict):
        return found
    for key, layout in CRI_PLUGINS:
        plugin = plugins.get(key)
        if not isinstance(plugin, dict):
            continue
        runtimes = (plugin.get("containerd") or {}).get("runtimes") or {}
        if not isinstance(runtimes, dict):
            continue
        for name, runtime in sorted(runtimes.items()):
            if not isinstance(runtime, dict):
                continue
            options = runtime.get("options") if isinstance(runtime.get("options"), dict) else {}
            found.append({
                "name": name,
                "plugin": key,
                "layout": layout,
                "file": source,
                "runtime_type": runtime.get("runtime_type"),
                "privileged_without_host_devices": runtime.get("privileged_without_host_devices"),
                "pod_annotations": runtime.get("pod_annotations") or [],
                "config_path": options.get("ConfigPath"),
                "kata": bool(KATA_RUNTIME_TYPE.match(str(runtime.get("runtime_type") or ""))),
            })
    return found


def inspect_containerd(config_path, root="/"):
    """What the containerd config (and the files it imports) says about runtime handlers."""
    result = {
        "config": config_path,
        "present": False,
        "parsed": False,
        "error": None,
        "version": None,
        "imports": [],
        "runtimes": [],
        "kata_handlers": [],
        "kata_configured": False,
    }
    path = under(root, config_path)
    text = read_text(path)
    if text is None:
        if os.path.exists(path):
            result["present"] = True
            result["error"] = "cannot read %s" % config_path
        return result
    result["present"] = True
    try:
        data = loads_toml(text)
    except ImportError as exc:
        result["error"] = str(exc)
        return result
    except ValueError as exc:
        result["error"] = "%s is not valid TOML: %s" % (config_path, exc)
        return result
    result["parsed"] = True
    result["version"] = data.get("version", 1)
    runtimes = cri_runtimes(data, config_path)
    imports = data.get("imports") or []
    for pattern in imports if isinstance(imports, list) else []:
        pattern = str(pattern)
        if not pattern.startswith("/"):
            pattern = os.path.join(os.path.dirname(config_path), pattern)
        for match in sorted(glob.glob(under(root, pattern))):
            node_path = "/" + os.path.relpath(match, root) if root not in ("", "/") else match
            result["imports"].append(node_path)
            try:
                runtimes.extend(cri_runtimes(loads_toml(read_text(match) or ""), node_path))
            except ValueError as exc:
                result["error"] = "%s is not valid TOML: %s" % (node_path, exc)
    result["runtimes"] = runtimes
    result["kata_handlers"] = sorted(set(r["name"] for r in runtimes if r["kata"]))
    result["kata_configured"] = bool(result["kata_handlers"])
    return result


# --- the whole probe ---------------------------------------------------------------------------

class KataProbe(object):
    """Collect the findings and decide whether the node can run Kata Containers.

    ``run_command(argv) -> (rc, stdout, stderr)`` and ``get_bin_path(name) -> path or None``
    are how commands are run (AnsibleModule's in the module; absent in unit tests).
    """

    def __init__(self, root="/", containerd_config="/etc/containerd/config.toml",
                 kata_runtime="/opt/kata/bin/kata-runtime", kata_check=True,
                 run_command=None, get_bin_path=None, euid=None):
        self.root = root or "/"
        self.containerd_config = containerd_config
        self.kata_runtime = kata_runtime
        self.kata_check = kata_check
        self.run_command = run_command
        self.get_bin_path = get_bin_path
        self.euid = os.geteuid() if euid is None else euid

    def path(self, node_path):
        return under(self.root, node_path)

    def kernel_release(self):
        text = read_text(self.path("/proc/sys/kernel/osrelease"))
        if text and text.strip():
            return text.strip()
        if self.root == "/":
            return os.uname()[2]
        return None

    def cpu(self):
        text = read_text(self.path("/proc/cpuinfo"))
        info = parse_cpuinfo(text)
        info["readable"] = text is not None
        return info

    def virtualization(self, cpu):
        flags = cpu["virtualization_flags"]
        vendor_module = None
        vendor = None
        for flag, name, module in VIRT_FLAGS:
            if flag in flags:
                vendor_module, vendor = module, name
                break
        if vendor_module is None and cpu["vendor_id"] == "GenuineIntel":
            vendor_module = "kvm_intel"
        elif vendor_module is None and cpu["vendor_id"] in ("AuthenticAMD", "HygonGenuine"):
            vendor_module = "kvm_amd"
        nested = {"module": vendor_module, "parameter": None, "value": None, "enabled": None}
        if vendor_module:
            param = "/sys/module/%s/parameters/nested" % vendor_module
            value = read_text(self.path(param))
            if value is not None:
                nested.update(parameter=param, value=value.strip(), enabled=parse_bool_param(value))
        is_vm = bool(cpu["hypervisor"])
        return {
            "flag": flags[0] if flags else None,
            "technology": vendor,
            "is_vm": is_vm,
            # In a VM, Kata needs the hypervisor below to pass VT-x/AMD-V through (nested virtualisation).
            "nested_available": (bool(flags) if is_vm else None),
            "nested_parameter": nested,
        }

    def kvm(self):
        result = check_device(self.path("/dev/kvm"))
        result["path"] = "/dev/kvm"
        return result

    def modules(self, release):
        moddir_node = "/lib/modules/%s" % release if release else None
        builtin, dep, index_files = (set(), set(), [])
        if moddir_node:
            builtin, dep, index_files = read_module_index(self.path(moddir_node))
        modprobe = self.get_bin_path("modprobe") if self.get_bin_path else None
        found = {}
        for name in KATA_MODULES:
            sysdir = self.path("/sys/module/%s" % name)
            if os.path.isdir(sysdir):
                state = "loaded" if os.path.exists(os.path.join(sysdir, "initstate")) else "builtin"
                found[name] = {"state": state, "source": "/sys/module"}
            elif name in builtin:
                found[name] = {"state": "builtin", "source": "%s/modules.builtin" % moddir_node}
            elif name in dep:
                found[name] = {"state": "available", "source": "%s/modules.dep" % moddir_node}
            elif modprobe and self.run_command and release:
                argv = [modprobe, "-n", "-q"]
                if self.root != "/":
                    argv += ["-d", self.root]
                argv += ["-S", release, name]
                rc = self.run_command(argv)[0]
                found[name] = {"state": "available" if rc == 0 else "missing", "source": "modprobe -n -q" if rc == 0 else None}
            else:
                found[name] = {"state": "missing", "source": None}
        return found, {"directory": moddir_node, "index_files": index_files, "modprobe": modprobe}

    def kata(self):
        path = self.path(self.kata_runtime)
        installed = os.path.isfile(path) and os.access(path, os.X_OK)
        result = {"runtime": self.kata_runtime, "installed": installed, "version": None,
                  "check": {"ran": False, "rc": None, "passed": None, "reasons": [], "warnings": [], "summary": [], "skipped": None}}
        if not installed:
            result["check"]["skipped"] = "%s is not installed" % self.kata_runtime
            return result
        if self.root != "/":
            result["check"]["skipped"] = "the node is read below root %s; kata-runtime runs only on the node itself" % self.root
            return result
        if not self.run_command:
            result["check"]["skipped"] = "no command runner"
            return result
        rc, out, err = self.run_command([path, "--version"])
        match = VERSION.search(out or "")
        if rc == 0 and match:
            result["version"] = match.group(1)
        if not self.kata_check:
            result["check"]["skipped"] = "kata_check is false"
            return result
        rc, out, err = self.run_command([path, "check", "--no-network-checks"])
        result["check"] = parse_kata_check(rc, out, err)
        result["check"]["skipped"] = None
        return result

    def run(self):
        release = self.kernel_release()
        cpu = self.cpu()
        virt = self.virtualization(cpu)
        kvm = self.kvm()
        modules, module_index = self.modules(release)
        kata = self.kata()
        containerd = inspect_containerd(self.containerd_config, self.root)
        reasons = []
        notes = []

        if not cpu["readable"]:
            reasons.append("/proc/cpuinfo cannot be read, so hardware virtualisation cannot be confirmed")
        elif cpu["family"] == "x86" and not virt["flag"]:
            if virt["is_vm"]:
                reasons.append("this node is a virtual machine (hypervisor flag in /proc/cpuinfo) and its hypervisor does not pass "
                               "hardware virtualisation through (no vmx or svm flag): enable nested virtualisation for this VM on its host")
            else:
                reasons.append("the CPU does not offer hardware virtualisation (no vmx or svm flag in /proc/cpuinfo): "
                               "enable Intel VT-x or AMD-V in the firmware (BIOS/UEFI) settings")
        elif cpu["family"] != "x86":
            notes.append("not an x86 CPU: hardware virtualisation is judged by /dev/kvm alone")
        if virt["is_vm"] and virt["flag"]:
            notes.append("this node is a virtual machine with nested virtualisation (%s passed through)" % virt["flag"])
            if virt["nested_parameter"]["enabled"] is False:
                notes.append("%s nested=%s inside this VM: Kata VMs run, but cannot start VMs of their own"
                             % (virt["nested_parameter"]["module"], virt["nested_parameter"]["value"]))

        if not kvm["present"]:
            why = "/dev/kvm does not exist"
            vendor_module = virt["nested_parameter"]["module"]
            if kvm["error"]:
                why += " (%s)" % kvm["error"]
            elif vendor_module and virt["flag"]:
                why += ": the KVM modules (kvm, %s) are not loaded, or virtualisation is turned off in the firmware" % vendor_module
            elif virt["flag"] or cpu["family"] != "x86":
                why += ": the KVM modules are not loaded"
            else:
                why += ": without hardware virtualisation KVM cannot be used"
            reasons.append(why)
        elif not kvm["char_device"]:
            reasons.append("/dev/kvm is not a character device")
        elif not kvm["usable"]:
            why = "/dev/kvm cannot be opened read-write (%s)" % (kvm["error"] or "unknown error")
            if self.euid != 0:
                why += "; run the probe as root (become: true)"
            reasons.append(why)

        for name in KATA_MODULES:
            if modules[name]["state"] == "missing":
                where = ["/sys/module"]
                if module_index["index_files"]:
                    where += ["%s/%s" % (module_index["directory"], f) for f in module_index["index_files"]]
                elif module_index["directory"]:
                    where.append("%s (missing)" % module_index["directory"])
                if module_index["modprobe"]:
                    where.append("modprobe -n")
                reasons.append("kernel module %s is neither loaded nor available for kernel %s (looked in %s)"
                               % (name, release or "unknown", ", ".join(where)))

        check = kata["check"]
        if check["ran"] and not check["passed"]:
            for reason in check["reasons"]:
                reasons.append("kata-runtime check (exit status %s): %s" % (check["rc"], reason))
        for warning in check["warnings"]:
            notes.append("kata-runtime check: %s" % warning)
        if containerd["error"]:
            notes.append("containerd config: %s" % containerd["error"])

        capable = not reasons
        return {
            "capable": capable,
            "ready": capable and kata["installed"] and containerd["kata_configured"],
            "reasons": reasons,
            "notes": notes,
            "findings": {
                "root": self.root,
                "kernel_release": release,
                "cpu": {k: cpu[k] for k in ("family", "vendor_id", "model_name", "processors", "virtualization_flags", "hypervisor")},
                "virtualization": virt,
                "kvm": kvm,
                "modules": modules,
                "module_index": module_index,
                "kata": kata,
                "containerd": containerd,
            },
        }
