# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the juno.hub.kube_reserved filter (plugins/filter/reservations.py)."""

import importlib.util
import math
import pathlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("juno_reservations", ROOT / "plugins" / "filter" / "reservations.py")
reservations = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reservations)

GIB = 1024


# GKE's published examples and hand-computed band sums.
@pytest.mark.parametrize(
    "cpus, millicores",
    [(0, 0), (0.5, 30), (1, 60), (2, 70), (3, 75), (4, 80), (8, 90), (16, 110), (32, 150), (64, 230)],
)
def test_gke_cpu(cpus, millicores):
    assert reservations.reserved_cpu_millicores(cpus, "gke") == millicores


# AKS's published table (1, 2, 4, 8, 16, 32, 64 cores) and points between its entries.
@pytest.mark.parametrize(
    "cpus, millicores",
    [(1, 60), (2, 100), (3, 120), (4, 140), (6, 160), (8, 180), (16, 260), (32, 420), (64, 740), (96, 1060)],
)
def test_aks_cpu(cpus, millicores):
    assert reservations.reserved_cpu_millicores(cpus, "aks") == millicores


@pytest.mark.parametrize(
    "memory_mib, reserved_mib",
    [
        (512, 255),  # below 1 GiB: a flat 255 MiB
        (1 * GIB, 256),  # 25% of 1 GiB
        (4 * GIB, 1024),  # 25% of the first 4 GiB
        (8 * GIB, 1844),  # + 20% of the next 4 GiB = 1843.2, rounded up
        (16 * GIB, 2663),  # + 10% of the next 8 GiB = 2662.4, rounded up
        (128 * GIB, 9544),  # + 6% of the next 112 GiB = 9543.68
        (256 * GIB, 12166),  # + 2% of the 128 GiB above 128 GiB = 12165.12
    ],
)
def test_gke_memory(memory_mib, reserved_mib):
    got = reservations.reserved_memory_mib(memory_mib, "gke")
    assert got == reserved_mib
    assert got == math.ceil(_gke_reference(memory_mib) - 1e-9)


def _gke_reference(memory_mib):
    """Straightforward re-statement of GKE's table, to cross-check the band code."""
    if memory_mib < 1024:
        return 255
    steps = [(0, 4096, 0.25), (4096, 8192, 0.20), (8192, 16384, 0.10), (16384, 131072, 0.06), (131072, float("inf"), 0.02)]
    return sum(max(0, min(memory_mib, hi) - lo) * rate for lo, hi, rate in steps)


@pytest.mark.parametrize(
    "memory_mib, max_pods, reserved_mib",
    [
        (8 * 1000, 30, 650),  # AKS docs: 8 GB, 30 pods -> 20*30+50 = 650
        (4 * 1000, 70, 1000),  # AKS docs: 4 GB, 70 pods -> 25% of 4 GB = 1000 < 1450
        (32 * GIB, 110, 2250),
        (2 * GIB, 110, 512),
    ],
)
def test_aks_memory(memory_mib, max_pods, reserved_mib):
    assert reservations.reserved_memory_mib(memory_mib, "aks", max_pods) == reserved_mib


def test_kube_reserved_shape_and_units():
    assert reservations.kube_reserved(4, 16 * GIB) == {"cpu": "80m", "memory": "2663Mi"}
    assert reservations.kube_reserved(8, 32 * GIB, "aks", 110) == {"cpu": "180m", "memory": "2250Mi"}
    # strings as Ansible facts may deliver them
    assert reservations.kube_reserved("2", "24105") == reservations.kube_reserved(2, 24105)


def test_reservation_grows_with_the_node():
    for formula in reservations.FORMULAS:
        cpu = [reservations.reserved_cpu_millicores(c, formula) for c in range(1, 129)]
        mem = [reservations.reserved_memory_mib(m * 512, formula) for m in range(2, 1024)]
        assert cpu == sorted(cpu)
        assert mem == sorted(mem)


@pytest.mark.parametrize(
    "args, message",
    [
        ((4, 8192, "eks"), "formula 'eks'"),
        (("four", 8192), "cpus must be a number"),
        ((4, -1), "memory_mb must be at least 0"),
        ((4, 8192, "aks", 0), "max_pods must be at least 1"),
        ((None, 8192), "cpus must be a number"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        reservations.kube_reserved(*args)


def test_filter_is_registered_and_documented():
    assert reservations.FilterModule().filters()["kube_reserved"] is reservations.kube_reserved
    doc = yaml.safe_load((ROOT / "plugins" / "filter" / "kube_reserved.yml").read_text())
    assert doc["DOCUMENTATION"]["name"] == "kube_reserved"
    assert set(doc["DOCUMENTATION"]["options"]) == {"_input", "memory_mb", "formula", "max_pods"}
    assert doc["DOCUMENTATION"]["options"]["formula"]["choices"] == list(reservations.FORMULAS)
