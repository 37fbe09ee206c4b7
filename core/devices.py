"""Which compute devices exist here, and which one a user's choice resolves to.

``torch`` is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cpu" | "cuda" | "mps"
    name: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3" or "CPU (x86_64, 2 threads)"
    torch_device: str  # what to pass to torch, e.g. "cuda:0"


@dataclass(frozen=True)
class Resolved:
    device: DeviceInfo
    notice: str | None  # set when the choice was not available and we fell back


def available() -> dict[str, DeviceInfo]:
    """Devices torch can use on this machine, CPU always included."""
    import torch

    found = {
        "cpu": DeviceInfo(
            "cpu", f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)", "cpu"
        )
    }
    if torch.cuda.is_available():
        found["cuda"] = DeviceInfo("cuda", torch.cuda.get_device_name(0), "cuda:0")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found["mps"] = DeviceInfo("mps", "Apple GPU (Metal)", "mps")
    return found


def resolve(choice: str, devices: dict[str, DeviceInfo] | None = None) -> Resolved:
    """Map a user's choice (auto/cpu/cuda/mps) onto a present device, with a notice on fallback."""
    devices = devices if devices is not None else available()
    best = devices.get("cuda") or devices.get("mps") or devices["cpu"]
    if choice == "auto":
        return Resolved(best, None)
    if choice in devices:
        return Resolved(devices[choice], None)
    label = choice if choice in CHOICES else repr(choice)
    return Resolved(best, f"{label} is not available on this machine; using {best.kind} ({best.name}).")
