"""Measuring speed honestly: warm-up, repeats, percentiles, FLOPs and the device's own peak.

Used by the project's benchmark (``python -m benchmark``) and by any page that shows a
latency. Every timing is a :class:`Timing` over several repeats after warm-up calls, with
the device synchronised around each call, so a GPU's asynchronous launch is not mistaken
for its run time.

* :func:`time_call` - p50/p95 of a callable.
* :func:`count_flops` - floating-point operations of one forward pass, counted by torch's
  own ``FlopCounterMode`` (convolutions and matrix products; a multiply-add is 2 FLOPs).
* :func:`matmul_peak_gflops` - the best GFLOP/s a large matrix product reaches on the
  device: the practical compute limit that ``FLOPs / peak`` turns into a lower bound on
  latency.

torch is imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation (numpy's default method)."""
    if len(values) == 0:  # len, not truthiness: numpy arrays are welcome too
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Timing:
    """Repeated measurements of one thing, in milliseconds."""

    samples_ms: tuple[float, ...]

    def __post_init__(self):
        if not self.samples_ms:
            raise ValueError("a Timing needs at least one sample")
        if any(not math.isfinite(s) or s < 0 for s in self.samples_ms):
            raise ValueError(f"timings must be finite and non-negative: {self.samples_ms}")

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def best(self) -> float:
        return min(self.samples_ms)

    def as_dict(self) -> dict[str, Any]:
        return {"p50_ms": round(self.p50, 2), "p95_ms": round(self.p95, 2), "n": self.n,
                "samples_ms": [round(s, 2) for s in self.samples_ms]}


def synchronize(device: str) -> None:
    """Wait for queued work on ``device`` (no-op on the CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)
    elif device == "mps":
        import torch

        torch.mps.synchronize()


def time_call(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 10, device: str = "cpu") -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then time ``repeats`` calls (device synchronised)."""
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1000)
    return Timing(tuple(samples))


def count_flops(model, *inputs) -> int:
    """FLOPs of ``model(*inputs)`` under inference mode, by ``torch.utils.flop_counter``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(*inputs)
    return int(counter.get_total_flops())


def matmul_peak_gflops(device: str = "cpu", *, n: int | None = None, dtype=None, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n``x``n`` matrix product on ``device`` (2 n^3 FLOPs per product).

    The default size keeps one product around a tenth of a second: 2048 on a CPU, 8192 on a
    GPU. ``dtype`` defaults to float32, the precision the lab's models run in."""
    import torch

    dtype = dtype or torch.float32
    n = n or (2048 if device == "cpu" else 8192)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    with torch.inference_mode():
        timing = time_call(lambda: torch.mm(a, b), warmup=2, repeats=repeats, device=device)
    return 2 * n**3 / (timing.best / 1000) / 1e9
