"""What a GPU (or more CPU cores) does for a CNN's forward pass, measured, not claimed.

Pure functions (no Streamlit): the page calls :func:`run_all`; each piece also runs on its
own, e.g. on a machine with a GPU::

    PYTHONPATH=. python -c "from core.acceleration import quick_report; quick_report('cuda')"

* :func:`batch_sweep` - p50/p95 latency and images/s of a forward pass across batch sizes,
  on ``device`` in ``precision`` ("fp32", or "fp16"/"bf16" = ``torch.autocast`` mixed
  precision), on data already on the device; peak memory per batch.
* :func:`copy_cost` - the host->device copy of a batch, timed on its own (pageable and
  pinned memory, and the same images as uint8). On the CPU there is nothing to copy: it is
  reported as not applicable, never as a number.
* :func:`thread_scaling` - the CPU forward pass with 1..N intra-op threads
  (:func:`num_threads` restores the thread count afterwards, also on error).
* :func:`compute_limit` - FLOPs of one image (``core.perf.count_flops``) over the device's
  measured matrix-multiply peak (``core.perf.matmul_peak_gflops``): a lower bound on
  latency no implementation can beat; ``measured / bound`` says how far a run is from it.
* :func:`layer_costs` - FLOPs and values moved per conv/linear layer: arithmetic intensity
  (FLOP per byte) per layer, for a roofline view against the measured memory bandwidth.

Every timing is a ``core.perf.Timing`` after warm-up, the device synchronised around each
call. Models are never changed: each device gets a private copy (``copy.deepcopy`` under
the shared model's lock, ``core.hooks.lock_for``), in eval mode with channels-last weights.
torch is imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from core import perf
from core.runtime import torch_threads

Progress = Callable[[float, str], None]

PRECISIONS = ("fp32", "fp16", "bf16")
PRECISION_LABELS = {"fp32": "FP32", "fp16": "FP16 autocast", "bf16": "BF16 autocast"}
BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "bf16": 2}
NOT_APPLICABLE = "not applicable: on the CPU the batch is already in host memory, nothing is copied"
CPU_MEMORY_HOW = ("estimate: weights + input + every layer's output "
                  "(CPU has no allocator peak counter; inference frees many outputs early)")
CUDA_MEMORY_HOW = ("measured: weights + input + what the pass adds to torch.cuda.max_memory_allocated "
                   "(activations, workspace; a CUDA graph's pool at capture)")


# --- small helpers ----------------------------------------------------------------------
def kind_of(device: str) -> str:
    """"cuda:0" -> "cuda", "cpu" -> "cpu"."""
    return device.split(":", 1)[0]


def _dtype(precision: str):
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def device_name(device: str) -> str:
    """What the device is, in words: torch.cuda.get_device_name for CUDA, the CPU's model and threads."""
    if kind_of(device) == "cuda":
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return "Apple GPU (Metal)"
    import torch

    from core.devices import cpu_model_name, cpu_threads

    return f"{cpu_model_name()} ({torch.get_num_threads()} of {cpu_threads()} threads)"


def precisions_for(device: str) -> tuple[str, ...]:
    """Precisions worth offering on ``device``: mixed precision on CUDA (BF16 where the GPU has
    it), BF16 autocast on the CPU (correct everywhere, fast only with AVX-512 BF16/AMX)."""
    if kind_of(device) == "cuda":
        import torch

        return ("fp32", "fp16", "bf16") if torch.cuda.is_bf16_supported() else ("fp32", "fp16")
    return ("fp32", "bf16")


def thread_counts(n: int) -> list[int]:
    """1, 2, 4, ... up to ``n``, and ``n`` itself: the thread counts a scaling run tries."""
    if n < 1:
        raise ValueError("n must be >= 1")
    counts, t = [], 1
    while t < n:
        counts.append(t)
        t *= 2
    return counts + [n]


def throughput(batch: int, p50_ms: float) -> float:
    """Images per second of a batch that takes ``p50_ms``: batch * 1000 / p50."""
    return batch * 1000.0 / p50_ms


# ``torch.set_num_threads(n)`` for the block, the previous count restored afterwards (also on
# error); yields the count in force. One implementation, core.runtime's, under this page's name.
num_threads = torch_threads


def autocast(device: str, precision: str):
    """``torch.autocast`` for FP16/BF16 on ``device``; a no-op context for FP32."""
    import torch

    dtype = _dtype(precision)
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=kind_of(device), dtype=dtype)


@contextmanager
def _tf32_like_cudnn(device: str) -> Iterator[None]:
    """On CUDA, let FP32 matrix products use TF32 tensor cores exactly when cuDNN's
    convolutions may (``torch.backends.cudnn.allow_tf32``, True by default): the peak an FP32
    CNN is held to is then the one its convolutions can actually reach."""
    import torch

    if kind_of(device) != "cuda":
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if torch.backends.cudnn.allow_tf32 else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


class Budget:
    """Time left for a measurement run: the smaller of ``seconds`` from now and a
    ``core.jobs.Deadline``'s ``remaining_s``; None for no limit."""

    def __init__(self, seconds: float | None = None, deadline=None):
        self.ends_at = None if seconds is None else time.monotonic() + seconds
        self.deadline = deadline

    @property
    def remaining_s(self) -> float:
        left = math.inf if self.ends_at is None else self.ends_at - time.monotonic()
        if self.deadline is not None:
            left = min(left, self.deadline.remaining_s)
        return max(0.0, left)

    @property
    def expired(self) -> bool:
        return self.remaining_s <= 0


def _budget(budget) -> Budget:
    if budget is None:
        return Budget()
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, (int, float)):
        return Budget(float(budget))
    return Budget(deadline=budget)  # anything with remaining_s, e.g. core.jobs.Deadline


def _sub(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """A progress callable mapping 0..1 onto lo..hi of ``progress``."""
    if progress is None:
        return None
    return lambda f, text: progress(lo + (hi - lo) * min(max(f, 0.0), 1.0), text)


# --- models and inputs --------------------------------------------------------------------
def private_copy(model, device: str = "cpu", *, channels_last: bool = True):
    """A copy of ``model`` on ``device`` in eval mode (channels-last weights): the shared
    model is copied under its lock and never moved, cast or changed."""
    import torch

    from core.hooks import lock_for

    with lock_for(model):
        clone = copy.deepcopy(model)
    clone = clone.eval().to(device)
    if channels_last:
        clone = clone.to(memory_format=torch.channels_last)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def example_input(input_size: int | tuple[int, int] = 224, *, seed: int = 0):
    """A deterministic (1, 3, H, W) normal input, for callers without a real image
    (latency does not depend on pixel values)."""
    import torch

    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    return torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def make_batch(example, batch: int, *, channels_last: bool = True):
    """``batch`` copies of the (1, 3, H, W) ``example`` as one host tensor (channels-last)."""
    import torch

    if batch < 1:
        raise ValueError("batch must be >= 1")
    x = example.detach().to("cpu", torch.float32).expand(batch, *example.shape[1:])
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def forward(model, x, device: str, precision: str = "fp32"):
    """One inference forward pass of ``model`` on ``x`` (already on ``device``) in ``precision``."""
    import torch

    with torch.inference_mode(), autocast(device, precision):
        return model(x)


def _input_desc(example) -> str:
    return "×".join(str(d) for d in example.shape[1:])


def _is_oom(err: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    return isinstance(err, oom) or "out of memory" in str(err).lower()


def _free_cuda(device: str, graph=None) -> None:
    """Give a finished measurement's GPU memory back (a CUDA graph's private pool included), so
    the next one's memory figures start from the weights alone."""
    if graph is not None:
        graph.reset()
    if kind_of(device) == "cuda":
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


# --- FLOPs, per-layer costs, memory -------------------------------------------------------
@dataclass(frozen=True)
class LayerCost:
    """One conv or linear layer at batch 1: its FLOPs and the values it must read and write."""

    name: str
    kind: str  # "conv" | "linear"
    flops: int  # per image (a multiply-add = 2 FLOPs)
    activations: int  # input + output values per image
    weights: int  # weight (+ bias) values, shared by the whole batch

    def bytes(self, batch: int = 1, bytes_per_value: int = 4) -> int:
        return (batch * self.activations + self.weights) * bytes_per_value

    def intensity(self, batch: int = 1, bytes_per_value: int = 4) -> float:
        """Arithmetic intensity: FLOPs per byte moved if every value is read or written once."""
        return batch * self.flops / self.bytes(batch, bytes_per_value)


def _hook_pass(net, example, precision: str = "fp32") -> tuple[int, list[LayerCost]]:
    """One forward pass of ``net`` (a private CPU copy: hooks are attached to it) on one image:
    (bytes of every leaf layer's output, the conv/linear layers' costs)."""
    import torch
    from torch import nn

    total = 0
    found: list[LayerCost] = []

    def count_output(module, inputs, output):
        nonlocal total
        outs = output if isinstance(output, (tuple, list)) else (output,)
        ins = {t.data_ptr() for t in inputs if isinstance(t, torch.Tensor)}
        for t in outs:  # an in-place layer (ReLU(inplace=True)) writes no new memory
            if isinstance(t, torch.Tensor) and t.data_ptr() not in ins:
                total += t.numel() * t.element_size()

    def layer_cost(name):
        def record(module, inputs, output):
            x = inputs[0]
            weights = module.weight.numel() + (module.bias.numel() if module.bias is not None else 0)
            if isinstance(module, nn.Conv2d):
                per_out = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
                kind = "conv"
            else:
                per_out, kind = module.in_features, "linear"
            n = x.shape[0]
            found.append(LayerCost(name, kind, 2 * output.numel() * per_out // n,
                                   (x.numel() + output.numel()) // n, weights))
        return record

    handles = [m.register_forward_hook(count_output) for m in net.modules() if not list(m.children())]
    handles += [m.register_forward_hook(layer_cost(name)) for name, m in net.named_modules()
                if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        forward(net, make_batch(example[:1], 1), "cpu", precision)
    finally:
        for h in handles:
            h.remove()
    return total, found


def layer_costs(model, example) -> list[LayerCost]:
    """FLOPs and values moved of every Conv2d and Linear layer for one image (``example``,
    batch 1), from the shapes seen in one forward pass of a private CPU copy."""
    return _hook_pass(private_copy(model, "cpu"), example)[1]


def activation_bytes(model, example, *, precision: str = "fp32") -> int:
    """Bytes of every leaf layer's output for one image: the activations of the CPU memory
    estimate. Outputs that share memory with their input (in-place ReLU) count once; under
    autocast they count in the dtype they really have. It scales exactly with the batch."""
    return _hook_pass(private_copy(model, "cpu"), example, precision)[0]


def weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + \
        sum(b.numel() * b.element_size() for b in model.buffers())


@dataclass(frozen=True)
class ModelFacts:
    """What can be said about a model without timing it."""

    parameters: int
    weight_mb: float
    flops_per_image: int
    activation_mb_per_image: float  # fp32, sum of leaf outputs (see activation_bytes)
    input_desc: str  # "3×224×224"
    layers: tuple[LayerCost, ...]


def describe(model, example) -> ModelFacts:
    """Parameters, weight size, FLOPs per image, activation estimate and per-layer costs."""
    clone = private_copy(model, "cpu")
    x = make_batch(example, 1)
    act, layers = _hook_pass(clone, x)
    return ModelFacts(sum(p.numel() for p in clone.parameters()), weight_bytes(clone) / 2**20,
                      perf.count_flops(clone, x), act / 2**20, _input_desc(example), tuple(layers))


def peak_memory_mb(model, x, device: str, precision: str = "fp32", *,
                   activation_per_image: int | None = None) -> tuple[float, float, str]:
    """(total MB, of it the forward pass's own MB, how it was obtained) for one forward pass of
    ``model`` on ``x`` (on ``device``).

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` - measured.
    CPU: weights + input + ``activation_per_image`` x batch - an estimate, and it says so."""
    if kind_of(device) == "cuda":
        own = cuda_peak_mb(lambda: forward(model, x, device, precision), device)[1]
        return (weight_bytes(model) + x.numel() * x.element_size()) / 2**20 + own, own, CUDA_MEMORY_HOW
    if activation_per_image is None:
        activation_per_image = activation_bytes(model, x[:1], precision=precision)
    activations = activation_per_image * x.shape[0]
    total = weight_bytes(model) + x.numel() * x.element_size() + activations
    return total / 2**20, activations / 2**20, CPU_MEMORY_HOW


def cuda_peak_mb(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """(peak, peak - before) in MB over one call of ``fn``: ``torch.cuda.max_memory_allocated``
    after ``reset_peak_memory_stats``, and how much of it the call itself added (its
    activations and workspace) above what was allocated before (weights, input)."""
    import torch

    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    return peak / 2**20, (peak - before) / 2**20


def cuda_graph(net, x, device: str, precision: str = "fp32"):
    """Capture one forward pass of ``net`` on the static input ``x`` as a CUDA graph; returns
    (``torch.cuda.CUDAGraph``, its output tensor): ``.replay()`` re-runs every kernel with one
    launch and no Python, and rewrites that output in place.

    Warm-up runs on a side stream first, as capture requires; autocast's weight-cast cache is
    off inside the capture (cached casts must not outlive it)."""
    import torch

    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            forward(net, x, device, precision)
    torch.cuda.current_stream(device).wait_stream(stream)
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    cast = nullcontext() if precision == "fp32" else \
        torch.autocast(device_type="cuda", dtype=_dtype(precision), cache_enabled=False)
    with torch.inference_mode(), cast, torch.cuda.graph(graph):
        out = net(x)
    return graph, out


# --- compute limit ------------------------------------------------------------------------
def device_peak_gflops(device: str, precision: str = "fp32") -> float:
    """The best GFLOP/s of a large matrix product on ``device`` in ``precision``'s dtype
    (``core.perf.matmul_peak_gflops``; on CUDA FP32 with TF32 exactly as cuDNN's convolutions)."""
    n = None
    if kind_of(device) == "cpu" and precision != "fp32":
        n = 1024  # CPUs without native FP16/BF16 units are many times slower in them
    with _tf32_like_cudnn(device):
        return perf.matmul_peak_gflops(device, n=n, dtype=_dtype(precision))


def memory_bandwidth_gbs(device: str, *, mb: int | None = None, repeats: int = 5) -> float:
    """Best GB/s of copying one large buffer into another on ``device`` (bytes read + written)."""
    import torch

    mb = mb or (128 if kind_of(device) == "cpu" else 1024)
    n = mb * 2**20 // 4
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    timing = perf.time_call(lambda: dst.copy_(src), warmup=2, repeats=repeats, device=device)
    moved = 2 * n * 4
    src = dst = None  # noqa: F841 - free the buffers before emptying the cache
    _free_cuda(device)
    return moved / (timing.best / 1000) / 1e9


@dataclass(frozen=True)
class ComputeLimit:
    """FLOPs / peak: the fewest milliseconds a forward pass can take on a device."""

    device: str
    precision: str
    flops_per_image: int
    peak_gflops: float

    def bound_ms(self, batch: int = 1) -> float:
        return batch * self.flops_per_image / (self.peak_gflops * 1e9) * 1000

    def ratio(self, measured_ms: float, batch: int = 1) -> float:
        """How many times slower than the compute limit a measured latency is (>= 1 physically)."""
        return measured_ms / self.bound_ms(batch)


def compute_limit(model, example, *, device: str = "cpu", precision: str = "fp32",
                  peak_gflops: float | None = None, flops: int | None = None) -> ComputeLimit:
    """The compute limit of ``model`` on ``example`` (batch 1; FLOPs counted on the CPU,
    they do not depend on the device) against ``device``'s measured peak."""
    if flops is None:
        flops = perf.count_flops(private_copy(model, "cpu"), make_batch(example, 1))
    if peak_gflops is None:
        peak_gflops = device_peak_gflops(device, precision)
    return ComputeLimit(device, precision, int(flops), float(peak_gflops))


# --- the measurements -----------------------------------------------------------------------
def _timed(fn, device: str, *, warmup: int, repeats: int, budget: Budget) -> perf.Timing:
    """Warm-up (the first call timed roughly, to fit the repeats into the budget), then
    ``core.perf.time_call``. At least 3 repeats are always taken."""
    start = time.perf_counter()
    fn()
    perf.synchronize(device)
    first = time.perf_counter() - start
    left = budget.remaining_s
    if math.isfinite(left):
        repeats = max(3, min(repeats, int(left / max(first, 1e-6)) - max(warmup - 1, 0)))
    return perf.time_call(fn, warmup=max(warmup - 1, 0), repeats=repeats, device=device)


@dataclass(frozen=True)
class CopyCost:
    """The host->device copy of one batch, timed on its own; ``applicable`` False on the CPU."""

    device: str
    batch: int
    megabytes: float  # of the FP32 batch
    applicable: bool
    pageable: perf.Timing | None = None  # x.to(device) from ordinary (pageable) memory
    pinned: perf.Timing | None = None  # from page-locked memory, non_blocking
    pinned_uint8: perf.Timing | None = None  # the same images as uint8 (4x fewer bytes)
    note: str = ""

    def row(self) -> dict:
        ms = lambda t: None if t is None else t.p50  # noqa: E731
        gbs = None if self.pageable is None else self.megabytes * 2**20 / (self.pageable.p50 / 1000) / 1e9
        return {"device": self.device, "batch": self.batch, "batch_mb": round(self.megabytes, 2),
                "copy_p50_ms": ms(self.pageable), "copy_p95_ms": None if self.pageable is None else self.pageable.p95,
                "copy_gb_s": gbs, "pinned_p50_ms": ms(self.pinned), "pinned_uint8_p50_ms": ms(self.pinned_uint8),
                "note": self.note}


def copy_cost(x, device: str, *, warmup: int = 2, repeats: int = 10, budget=None) -> CopyCost:
    """Time ``x.to(device)`` (``x`` a host batch) on its own, synchronised, after warm-up.

    CUDA: from pageable memory (what a plain ``.to`` does), from pinned memory with
    ``non_blocking=True``, and as uint8 pixels (normalised on the GPU afterwards). CPU: not
    applicable - the forward pass reads the batch where it already is."""
    import torch

    budget = _budget(budget)
    mb = x.numel() * 4 / 2**20
    if kind_of(device) == "cpu":
        return CopyCost(device, int(x.shape[0]), mb, False, note=NOT_APPLICABLE)
    host = x.to("cpu", torch.float32)
    pinned = host.pin_memory() if kind_of(device) == "cuda" else host
    as_uint8 = (host.clamp(0, 1) * 255).to(torch.uint8)
    as_uint8 = as_uint8.pin_memory() if kind_of(device) == "cuda" else as_uint8
    kw = dict(warmup=warmup, repeats=repeats, budget=budget)
    pageable_t = _timed(lambda: host.to(device), device, **kw)
    pinned_t = _timed(lambda: pinned.to(device, non_blocking=True), device, **kw)
    uint8_t = _timed(lambda: as_uint8.to(device, non_blocking=True), device, **kw)
    return CopyCost(device, int(x.shape[0]), mb, True, pageable_t, pinned_t, uint8_t,
                    note="pageable: x.to(device); pinned: x.pin_memory().to(device, non_blocking=True)")


def batch_sweep(model, *, example=None, input_size: int | tuple[int, int] = 224, batches: Sequence[int] = (1, 2, 4, 8, 16),
                device: str = "cpu", precision: str = "fp32", repeats: int = 10, warmup: int = 3,
                progress: Progress | None = None, budget=None, limit: ComputeLimit | None = None,
                copies: dict[int, CopyCost] | None = None, label: str = "",
                activation_per_image: int | None = None, model_on_device=None, graph: bool = False) -> list[dict]:
    """Latency (p50, p95) and throughput of one forward pass per batch size on ``device``.

    The batch is moved to the device first and the forward pass is timed on data already
    there (the copy is :func:`copy_cost`'s business; pass its results as ``copies`` to get
    them in the same rows). ``limit`` adds the compute-limit columns. ``graph`` (CUDA only)
    times the replay of a captured CUDA graph instead of the eager forward pass: the same
    kernels without Python and per-kernel launch overhead. Batch sizes left when ``budget``
    (seconds, a Budget or a core.jobs.Deadline) runs out are skipped; a batch that runs out
    of GPU memory gets a row saying so and ends the sweep."""
    if graph and kind_of(device) != "cuda":
        raise ValueError("CUDA graphs need a CUDA device")
    budget = _budget(budget)
    example = example_input(input_size) if example is None else example
    net = model_on_device if model_on_device is not None else private_copy(model, device)
    if activation_per_image is None and kind_of(device) == "cpu":
        activation_per_image = _hook_pass(net, example, precision)[0]
    name = device_name(device)
    series = f"{'GPU' if kind_of(device) == 'cuda' else kind_of(device).upper()} {PRECISION_LABELS[precision]}" \
        + (" · CUDA graph" if graph else "")
    mode = "CUDA graph" if graph else "eager"
    rows: list[dict] = []
    for i, batch in enumerate(batches):
        if budget.expired:
            break
        if progress:
            progress(i / len(batches), f"{series}: batch {batch} ({name})")
        x = captured = fn = None
        try:
            x = make_batch(example, batch).to(device)
            if graph:  # the graph's memory pool is filled at capture: that is what it needs
                held = []
                own = cuda_peak_mb(lambda: held.append(cuda_graph(net, x, device, precision)[0]), device)[1]
                captured = held.pop()
                fn = captured.replay
            else:
                fn = lambda: forward(net, x, device, precision)  # noqa: E731
            timing = _timed(fn, device, warmup=warmup, repeats=repeats, budget=budget)
            if graph:
                memory, how = (weight_bytes(net) + x.numel() * x.element_size()) / 2**20 + own, CUDA_MEMORY_HOW
            else:
                memory, own, how = peak_memory_mb(net, x, device, precision,
                                                  activation_per_image=activation_per_image)
        except RuntimeError as err:
            if not _is_oom(err):
                raise
            x = fn = None
            _free_cuda(device, captured)
            rows.append({"model": label, "series": series, "device": device, "device_name": name,
                         "precision": precision, "mode": mode, "batch": batch, "error": "out of GPU memory"})
            break
        row = {"model": label, "series": series, "device": device, "device_name": name, "precision": precision,
               "mode": mode, "batch": batch, "input": _input_desc(example), "warmup": warmup, "repeats": timing.n,
               "p50_ms": timing.p50, "p95_ms": timing.p95, "images_per_s": throughput(batch, timing.p50),
               "ms_per_image": timing.p50 / batch, "memory_mb": memory, "forward_memory_mb": own, "memory_how": how}
        copy_row = (copies or {}).get(batch)
        if copy_row is not None:
            c = copy_row.row()
            row.update({"copy_p50_ms": c["copy_p50_ms"], "pinned_copy_p50_ms": c["pinned_p50_ms"],
                        "copy_note": "" if copy_row.applicable else copy_row.note})
            if copy_row.applicable:
                row["images_per_s_with_copy"] = throughput(batch, timing.p50 + copy_row.pageable.p50)
        if limit is not None:
            row.update({"gflop": batch * limit.flops_per_image / 1e9, "peak_gflops": limit.peak_gflops,
                        "bound_ms": limit.bound_ms(batch), "measured_over_bound": limit.ratio(timing.p50, batch)})
        rows.append(row)
        x = fn = None
        _free_cuda(device, captured)
        captured = None
    _free_cuda(device)
    if progress:
        progress(1.0, f"{series}: done")
    return rows


def thread_scaling(model, *, example=None, input_size: int | tuple[int, int] = 224, threads: Sequence[int] | None = None,
                   batch: int = 1, repeats: int = 10, warmup: int = 3, progress: Progress | None = None,
                   budget=None, label: str = "") -> list[dict]:
    """The CPU forward pass with each intra-op thread count in ``threads`` (default 1..N cores,
    :func:`thread_counts`); torch's thread count is restored afterwards.

    Each row records the thread count torch reported inside the block (``threads_seen``),
    the speed-up over the first row and the parallel efficiency (speed-up / threads)."""
    from core.devices import cpu_model_name, cpu_threads

    budget = _budget(budget)
    example = example_input(input_size) if example is None else example
    threads = list(threads) if threads is not None else thread_counts(cpu_threads())
    net = private_copy(model, "cpu")
    x = make_batch(example, batch)
    rows: list[dict] = []
    for i, n in enumerate(threads):
        if budget.expired:
            break
        if progress:
            progress(i / len(threads), f"CPU, {n} thread{'s' if n > 1 else ''}, batch {batch}")
        with num_threads(n) as seen:
            timing = _timed(lambda: forward(net, x, "cpu"), "cpu", warmup=warmup, repeats=repeats, budget=budget)
        rows.append({"model": label, "device_name": f"{cpu_model_name()}", "threads": n, "threads_seen": seen,
                     "batch": batch, "repeats": timing.n, "p50_ms": timing.p50, "p95_ms": timing.p95,
                     "images_per_s": throughput(batch, timing.p50)})
    if rows:  # speed-up over the first row (one thread by default) and efficiency per added thread
        first = rows[0]
        for r in rows:
            r["speedup"] = first["p50_ms"] / r["p50_ms"]
            r["efficiency"] = r["speedup"] / (r["threads"] / first["threads"])
    if progress:
        progress(1.0, "thread scaling done")
    return rows


# --- everything the page shows, in one call -----------------------------------------------------
@dataclass
class Report:
    rows: list[dict]  # batch_sweep rows of every device and precision
    copies: list[dict]  # CopyCost.row() per device and batch
    threads: list[dict]  # thread_scaling rows (CPU), one list per batch size concatenated
    limits: list[dict]  # per device and precision: peak, bandwidth, bound, best measured ratio
    facts: ModelFacts
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_all(model, example, *, label: str, devices: Sequence[str], precisions: dict[str, Sequence[str]],
            batches: dict[str, Sequence[int]], repeats: int = 5, warmup: int = 2,
            thread_batches: Sequence[int] = (1, 8), threads: Sequence[int] | None = None,
            budget=None, progress: Progress | None = None, facts: ModelFacts | None = None,
            cuda_graphs: bool = False) -> Report:
    """Compute limits, copy costs, batch sweeps (every device x precision, and on CUDA with
    ``cuda_graphs`` also each precision replayed as a CUDA graph) and CPU thread scaling of
    ``model`` on ``example``, within ``budget``; ``progress(fraction, text)``."""
    start = time.perf_counter()
    budget = _budget(budget)
    facts = facts or describe(model, example)
    notes: list[str] = []
    def modes(device):
        return (False, True) if cuda_graphs and kind_of(device) == "cuda" else (False,)

    plan = [(d, p, g) for d in devices for p in precisions.get(d, ("fp32",)) for g in modes(d)]
    has_cpu = any(kind_of(d) == "cpu" for d in devices)
    steps = len(plan) + len(devices) + (len(thread_batches) if has_cpu else 0)
    done = 0

    def part():
        nonlocal done
        lo = done / steps
        done += 1
        return _sub(progress, lo, done / steps)

    rows, copies, limits, thread_rows = [], [], [], []
    for device in devices:
        step = part()
        if step:
            step(0.0, f"Measuring {device_name(device)}'s peak GFLOP/s and memory bandwidth")
        bandwidth = memory_bandwidth_gbs(device)
        peaks = {p: device_peak_gflops(device, p) for p in precisions.get(device, ("fp32",))}
        copy_by_batch = {}
        for b in batches[device]:
            if budget.expired:
                break
            copy_by_batch[b] = copy_cost(make_batch(example, b), device, warmup=warmup, repeats=max(repeats, 5),
                                         budget=budget)
            copies.append(copy_by_batch[b].row())
        net = private_copy(model, device)
        for precision in precisions.get(device, ("fp32",)):
            limit = compute_limit(model, example, device=device, precision=precision,
                                  peak_gflops=peaks[precision], flops=facts.flops_per_image)
            act_p = _hook_pass(net, example, precision)[0] if kind_of(device) == "cpu" else None
            timed = []
            for graph in modes(device):
                step = part()
                what = f"{device} {PRECISION_LABELS[precision]}{' (CUDA graph)' if graph else ''}"
                if budget.expired:
                    notes.append(f"{what}: skipped, the time cap was reached.")
                    continue
                got = batch_sweep(model, example=example, batches=batches[device], device=device,
                                  precision=precision, repeats=repeats, warmup=warmup, progress=step, budget=budget,
                                  limit=limit, copies=copy_by_batch, label=label, activation_per_image=act_p,
                                  model_on_device=net, graph=graph)
                missing = [b for b in batches[device] if b not in {r["batch"] for r in got if "p50_ms" in r}]
                if missing:
                    notes.append(f"{what}: batch {', '.join(map(str, missing))} not measured "
                                 "(time cap reached or out of memory).")
                rows.extend(got)
                timed += [r for r in got if "p50_ms" in r]
            best = min(timed, key=lambda r: r["ms_per_image"]) if timed else None
            at_1 = {r["mode"]: r["p50_ms"] for r in timed if r["batch"] == 1}
            limits.append({"device": device, "device_name": device_name(device), "precision": precision,
                           "peak_gflops": peaks[precision], "bandwidth_gb_s": bandwidth,
                           "ridge_flop_per_byte": peaks[precision] * 1e9 / (bandwidth * 1e9),
                           "flops_per_image": facts.flops_per_image, "bound_ms_per_image": limit.bound_ms(1),
                           "batch1_p50_ms": at_1.get("eager"), "batch1_graph_p50_ms": at_1.get("CUDA graph"),
                           "best_ms_per_image": best["ms_per_image"] if best else None,
                           "best_batch": best["batch"] if best else None, "best_mode": best["mode"] if best else None,
                           "best_over_bound": limit.ratio(best["ms_per_image"]) if best else None})
        del net
        _free_cuda(device)
    if has_cpu:
        for tb in thread_batches:
            step = part()
            if budget.expired:
                notes.append(f"Thread scaling at batch {tb}: skipped, the time cap was reached.")
                continue
            thread_rows.extend(thread_scaling(model, example=example, threads=threads, batch=tb, repeats=repeats,
                                              warmup=warmup, progress=step, budget=budget, label=label))
    if progress:
        progress(1.0, "done")
    return Report(rows, copies, thread_rows, limits, facts, notes, time.perf_counter() - start)


def quick_report(device: str = "cuda", *, model=None, label: str = "ResNet-18 (untrained, same architecture)",
                 batches: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), repeats: int = 20,
                 input_size: int = 224) -> Report:
    """``model`` (default: torchvision's ResNet-18 with untrained weights, 1000 classes: the
    registry's ``build_architecture("resnet18")``, nothing downloaded) on ``device`` and the
    CPU, printed as tables: what the lead runs on a machine with a GPU (no Streamlit needed)."""
    if model is None:
        import torchvision

        model = torchvision.models.resnet18(weights=None, num_classes=1000)
    model = model.eval()
    example = example_input(input_size)
    devices = [device] if kind_of(device) == "cpu" else [device, "cpu"]
    report = run_all(model, example, label=label, devices=devices,
                     precisions={d: precisions_for(d) if kind_of(d) != "cpu" else ("fp32",) for d in devices},
                     batches={d: batches if kind_of(d) != "cpu" else [b for b in batches if b <= 16] for d in devices},
                     repeats=repeats, warmup=3, thread_batches=(1, 16), cuda_graphs=True,
                     progress=lambda f, t: print(f"[{f:4.0%}] {t}", flush=True))
    show = ("series", "batch", "p50_ms", "p95_ms", "images_per_s", "memory_mb", "copy_p50_ms",
            "pinned_copy_p50_ms", "bound_ms", "measured_over_bound")
    print("\n" + " | ".join(show))
    for r in report.rows:
        print(" | ".join(f"{r.get(k):.3g}" if isinstance(r.get(k), float) else str(r.get(k)) for k in show))
    print("\nlimits:")
    for r in report.limits:
        print(r)
    print("\nthreads:")
    for r in report.threads:
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    print(f"\n{report.seconds:.1f} s; notes: {report.notes}")
    return report
