"""Device choice: auto picks the best present device; a missing one falls back, saying so."""

import subprocess
import sys
from pathlib import Path

import pytest

from core.devices import DeviceInfo, available, resolve, torch_agrees, torch_build_cuda

ROOT = Path(__file__).resolve().parent.parent

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


def test_this_machine_always_has_a_cpu_and_torch_agrees_on_the_rest():
    import torch

    found = available()
    assert "cpu" in found
    assert torch_agrees(found)
    assert torch_build_cuda() == torch.version.cuda  # read from the file, without importing torch
    if "cuda" in found:
        assert found["cuda"].name == torch.cuda.get_device_name(0)


def test_finding_devices_does_not_import_torch():
    """The sidebar asks on every page, Home included: torch's import (seconds) must not ride on it."""
    code = "import sys; from core.devices import available; available(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
