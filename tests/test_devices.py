"""Device choice: auto picks the best present device; a missing one falls back, saying so."""

import pytest

from core.devices import DeviceInfo, available, resolve

CPU = DeviceInfo("cpu", "CPU (x86_64, 2 threads)", "cpu")
GPU = DeviceInfo("cuda", "NVIDIA H100", "cuda:0")


@pytest.mark.parametrize(
    "choice, found, kind, notice",
    [
        ("auto", {"cpu": CPU}, "cpu", False),
        ("auto", {"cpu": CPU, "cuda": GPU}, "cuda", False),
        ("cpu", {"cpu": CPU, "cuda": GPU}, "cpu", False),
        ("cuda", {"cpu": CPU}, "cpu", True),
        ("mps", {"cpu": CPU, "cuda": GPU}, "cuda", True),
        ("tpu", {"cpu": CPU}, "cpu", True),
    ],
)
def test_resolve(choice, found, kind, notice):
    got = resolve(choice, found)
    assert got.device.kind == kind and (got.notice is not None) == notice
    if notice:
        assert "not available" in got.notice and got.device.kind in got.notice


def test_this_machine_always_has_a_cpu():
    import torch

    found = available()
    assert "cpu" in found
    assert ("cuda" in found) == torch.cuda.is_available()
