"""Which compute devices exist here, and which one a user's choice resolves to.

Finding the devices must not import torch: the sidebar (Home included) asks on every
page, and importing torch costs seconds on a small CPU, which would be most of the lab's
cold start. So :func:`available` asks cheaper sources that agree with torch:

* the CPU: the cores this process may run on, fewer under a container's CPU quota
  (what the app sizes torch's thread pool to, core.startup);
* CUDA: the installed torch *build* (``torch/version.py`` read as text: a CPU build has
  ``cuda = None``) and the NVIDIA *driver* itself through its C API (``libcuda``: device
  count, name, driver version), which is what ``torch.cuda.is_available()`` also asks. A
  driver older than the build's CUDA major version counts as no GPU;
* Apple's MPS: macOS on arm64 with torch installed.

:func:`torch_agrees` checks the answer against torch itself where torch is loaded anyway
(tests, the benchmark).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

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


def cpu_affinity() -> int:
    """Cores this process may run on (its CPU affinity): the size of torch's default thread pool."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cpu_threads() -> int:
    """Threads worth running here: the cores this process may run on, fewer where the
    container's CPU quota allows less time (Docker's ``--cpus``, Community Cloud's limit;
    see core.resources). The app's start-up (core.startup) sizes torch's pool to this."""
    from core.resources import cpu_limit, cpu_quota

    return cpu_limit(cpu_affinity(), cpu_quota())


def cpu_model_name() -> str:
    """The processor's model name from /proc/cpuinfo ("AMD EPYC ..."), or the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torch_build_cuda() -> str | None:
    """The CUDA version the installed torch was built for ("13.0"), None for a CPU build or no torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    try:
        text = (Path(spec.submodule_search_locations[0]) / "version.py").read_text()
    except OSError:
        return None
    found = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([\d.]+)['\"]", text, flags=re.M)
    return found.group(1) if found else None


def cuda_driver_devices() -> tuple[int, list[str]]:
    """(driver version as 13000 for 13.0, names of visible GPUs) from libcuda; (0, []) without one."""
    names = {"Windows": ("nvcuda.dll",), "Darwin": ()}.get(platform.system(), ("libcuda.so.1", "libcuda.so"))
    for lib in names:
        try:
            cuda = ctypes.CDLL(lib)
            break
        except OSError:
            continue
    else:
        return 0, []
    version, count = ctypes.c_int(0), ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return 0, []
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return version.value, []
    found = []
    for index in range(count.value):
        handle, buf = ctypes.c_int(0), ctypes.create_string_buffer(256)
        if cuda.cuDeviceGet(ctypes.byref(handle), index) == 0 and cuda.cuDeviceGetName(buf, 256, handle) == 0:
            found.append(buf.value.decode(errors="replace"))
    return version.value, found


def available() -> dict[str, DeviceInfo]:
    """Devices torch can use on this machine, CPU always included (torch is not imported)."""
    found = {"cpu": DeviceInfo("cpu", f"CPU ({platform.machine()}, {cpu_threads()} threads)", "cpu")}
    build = torch_build_cuda()
    if build:
        driver, gpus = cuda_driver_devices()
        if gpus and driver // 1000 >= int(build.split(".")[0]):
            found["cuda"] = DeviceInfo("cuda", gpus[0], "cuda:0")
    if platform.system() == "Darwin" and platform.machine() == "arm64" and importlib.util.find_spec("torch"):
        found["mps"] = DeviceInfo("mps", "Apple GPU (Metal)", "mps")
    return found


def torch_agrees(found: dict[str, DeviceInfo] | None = None) -> bool:
    """Whether torch itself sees the same accelerators as :func:`available` (imports torch)."""
    import torch

    found = available() if found is None else found
    mps = getattr(torch.backends, "mps", None)
    return ("cuda" in found) == torch.cuda.is_available() and ("mps" in found) == bool(mps and mps.is_available())


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
