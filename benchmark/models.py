"""Every registered model on the current device: latency at its default input size, its
FLOPs, and how far that latency is from the device's measured compute limit.

The network is timed on a real photo (scikit-image's astronaut; the shapes models get a
synthetic shapes image) resized to the model's default input, after warm-up, in inference
mode. A model whose weights are not on this machine is measured with the same architecture
and untrained weights - its speed and FLOPs do not depend on the weight values - and the
table says so. Ultralytics networks are fused (Conv+BatchNorm) as ``predict`` fuses them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core import perf
from models import registry

PRETRAINED, TRAINED_HERE, UNTRAINED = "pretrained", "trained here", "untrained (same architecture)"
TARGET_S = 8.0  # time spent timing one model, at most (3 repeats minimum)


@dataclass
class Prepared:
    module: object  # torch.nn.Module
    inputs: tuple  # positional arguments of one forward pass
    input_desc: str
    weights: str


def _photo(size: tuple[int, int] | None, *, shapes: bool = False) -> np.ndarray:
    import cv2

    from core.images import load_sample

    rgb = load_sample("shapes" if shapes else "astronaut").work
    return rgb if size is None else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _tensor(rgb: np.ndarray, *, mean=None, std=None):
    import torch

    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)
    if mean is not None:
        x = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return x


def prepare(name: str, device: str) -> Prepared:
    """The network registered as ``name`` on ``device``, and one real input for it."""
    spec = registry.get_spec(name)
    size = spec.input_size
    if spec.is_ultralytics:
        from models.ultra import ultralytics

        if spec.is_present() or spec.source == "trained":
            yolo, weights = registry.load_ultralytics(name), PRETRAINED if spec.source != "trained" else TRAINED_HERE
        else:
            yolo, weights = ultralytics().YOLO(f"{name}.yaml", task=spec.task), UNTRAINED
        module = registry.for_inference(yolo.model.fuse(), device)  # as models.detectors serves it
        x = _tensor(_photo((size, size), shapes=spec.source == "trained"))[None]
        return Prepared(module, (x.to(device),), f"1×3×{size}×{size}", weights)
    if name in ("shapes-cnn", "shapes-pretext"):  # the same ShapesNet layers, trained on different classes
        from models.shapes_cnn import preprocess

        return Prepared(registry.for_inference(registry.load_trained(name), device),
                        (preprocess(_photo(None, shapes=True)).to(device),), f"1×3×{size}×{size}", TRAINED_HERE)
    if name == "shapes-seg":
        from models.shapes_seg import preprocess

        x = preprocess(_photo(None, shapes=True))
        return Prepared(registry.for_inference(registry.load_trained(name), device), (x.to(device),),
                        "×".join(str(d) for d in x.shape), TRAINED_HERE)
    if name == "shapes-maskrcnn":  # an R-CNN: a list of images, resized inside to its input size
        rgb = _photo((size, size), shapes=True)
        return Prepared(registry.for_inference(registry.load_trained(name), device), ([_tensor(rgb).to(device)],),
                        f"{size}×{size} shapes scene", TRAINED_HERE)
    if name == "ocr-crnn":  # one rendered text line, the recogniser's own input format
        from core.ocr import render_line
        from models.ocr_crnn import HEIGHT, _batch, to_line

        x = _batch([to_line(render_line("cnns read 2024 scanned pages", size=HEIGHT))])
        return Prepared(registry.for_inference(registry.load_trained(name), device), (x.to(device),),
                        "×".join(str(d) for d in x.shape) + " text line", TRAINED_HERE)
    if spec.source == "torchvision":
        if spec.is_present():
            module, weights = registry.build_torchvision(name), PRETRAINED
        else:
            module, weights = registry.build_architecture(name), UNTRAINED
        module = registry.for_inference(module, device)
        if spec.task in ("detect", "segment"):  # R-CNNs take a list of images and resize them themselves
            rgb = _photo(None)
            return Prepared(module, ([_tensor(rgb).to(device)],),
                            f"{rgb.shape[1]}×{rgb.shape[0]} photo, resized to {size} inside", weights)
        imagenet = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
        x = _tensor(_photo((size, size)), **imagenet)[None]
        return Prepared(module, (x.to(device),), f"1×3×{size}×{size}", weights)
    raise ValueError(f"don't know how to benchmark {name}")


def measure(name: str, device: str, peak_gflops: float, *, max_repeats: int = 10) -> dict:
    """One table row for ``name``: FLOPs, latency p50/p95, compute limit and the ratio."""
    import torch

    prepared = prepare(name, device)
    module, inputs = prepared.module, prepared.inputs
    flops = perf.count_flops(module, *inputs)

    def forward():
        with torch.inference_mode():
            module(*inputs)

    start = time.perf_counter()
    forward()  # first call: one-off allocations and kernel selection
    perf.synchronize(device)
    once = time.perf_counter() - start
    repeats = int(min(max_repeats, max(3, TARGET_S / max(once, 1e-3))))
    latency = perf.time_call(forward, warmup=1, repeats=repeats, device=device)
    limit_ms = flops / (peak_gflops * 1e9) * 1000
    spec = registry.get_spec(name)
    return {
        "name": name,
        "title": spec.title,
        "weights": prepared.weights,
        "input": prepared.input_desc,
        "input_size": spec.input_size,
        "params_m": sum(p.numel() for p in module.parameters()) / 1e6,
        "gflops": flops / 1e9,
        "latency": latency.as_dict(),
        "limit_ms": limit_ms,
        "ratio": latency.p50 / limit_ms if limit_ms else float("inf"),
    }


def run(names: list[str] | None, device: str, device_name: str, *,
        log: Callable[[str], None] = print, max_repeats: int = 10) -> dict:
    """Measure the device's matmul peak, then every model in ``names`` (default: all registered)."""
    import torch

    torch.manual_seed(0)
    peak = perf.matmul_peak_gflops(device)
    log(f"  matrix-multiply peak on {device_name}: {peak:.0f} GFLOP/s (float32)")
    rows, failed = [], []
    for name in names or list(registry.REGISTRY):
        try:
            row = measure(name, device, peak, max_repeats=max_repeats)
        except Exception as exc:  # one model failing must not hide the others' figures
            failed.append({"name": name, "error": f"{type(exc).__name__}: {exc}"[:200]})
            log(f"  {name}: FAILED {failed[-1]['error']}")
            continue
        rows.append(row)
        log(f"  {name:<36} {row['gflops']:7.2f} GFLOPs  p50 {row['latency']['p50_ms']:8.1f} ms  "
            f"limit {row['limit_ms']:7.1f} ms  {row['ratio']:5.1f}×  ({row['weights']})")
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return {"device": device_name, "torch_device": device, "peak_gflops": peak,
            "threads": torch.get_num_threads(), "rows": rows, "failed": failed}
