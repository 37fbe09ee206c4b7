"""Quantization, measured: INT8 through ONNX Runtime, FP16/BF16 through PyTorch, and the
integer grid the weights are rounded to.

    cmp = compare(model, calib=calib_x, evals=EvalSet(x, labels, "400 held-out crops"),
                  threads=2, device="cpu", progress=report)
    cmp.rows                     # Row(variant, size_mb, p50, p95, speedup, agreement, accuracy, ...)
    cmp.to_rows()                # list of dicts for a CSV (core.tables.rows_csv)
    cmp.int8_onnx                # the statically quantized model file (bytes)
    cmp.answers.by_margin(INT8_STATIC)   # agreement split by how decided FP32 was (top-1 - runner-up)

    evals = photo_eval(clf)                  # 13 real photos x 10 label-preserving variants = 130 inputs
    calib = imagenet_calibration(clf, 16)    # random crops of the photos, never an evaluation image

    q = symmetric_quantize(w, bits=8, per_channel=True)   # the INT8 grid, by hand (numpy)
    fake = fake_quantize(model, bits=4)                    # a COPY whose weights lie on a 4-bit grid
    curve = degradation_curve(model, evals, bits=(8, 6, 4, 2))

Why ONNX Runtime for INT8: PyTorch's own eager/FX quantization (``torch.ao.quantization``)
is deprecated in the installed torch (2.14) in favour of the PT2E flow in the separate
``torchao`` package, whose quantizer does not run here. ONNX Runtime's quantizer is
maintained, runs on the exported graph (:func:`core.export.export_onnx`) and ships fast
INT8 CPU kernels. Those kernels are CPU kernels: on a GPU the fair low-precision
comparison is FP16/BF16, which :func:`compare` times there (device ``"cuda..."``).

* Static INT8 (``quantize_static``): weights per output channel, symmetric INT8;
  activations UINT8 with ranges calibrated (min/max) on sample images; QDQ format, so
  ONNX Runtime fuses each DequantizeLinear -> Conv -> QuantizeLinear into an integer conv.
  BatchNorm is folded into the convolutions first (``quant_pre_process``).
* Dynamic INT8 (``quantize_dynamic``): INT8 weights, activation ranges computed per call.
  It is meant for Linear/LSTM-heavy models; a CNN's convolutions become ``ConvInteger``,
  which has no fast fused kernel, so it is usually *slower* than FP32 here - measured, not assumed.
* Speed-up is against PyTorch eager FP32 on the same device (the reference); ONNX Runtime
  FP32 is shown too, so the share of the gain that comes from the runtime itself is visible.
* Agreement = top-1 equal to PyTorch FP32's on the evaluation images; accuracy needs labels.
  :class:`Answers` keeps every image's FP32 answer, its margin over the runner-up and each
  variant's top-1, so agreement can be split by how decided FP32 was: INT8 rounding moves
  every logit a little, which can only swap two classes that were almost tied.

torch, onnx and onnxruntime are imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import copy
import io
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.export import quiet

Progress = Callable[[float, str], None]

# Variant names (the rows of a comparison)
EAGER_FP32 = "PyTorch FP32 (eager)"
ORT_FP32 = "ONNX Runtime FP32"
INT8_STATIC = "ONNX Runtime INT8 static"
INT8_DYNAMIC = "ONNX Runtime INT8 dynamic"
CPU_BF16 = "PyTorch BF16 (CPU)"
GPU_FP32 = "PyTorch FP32 (GPU)"
GPU_FP16 = "PyTorch FP16 (GPU, channels-last)"
GPU_FP16_NCHW = "PyTorch FP16 (GPU, NCHW)"
GPU_BF16 = "PyTorch BF16 (GPU, channels-last)"

# Labels of where the weights came from (UNTRAINED is benchmark/models.py's wording, tested).
PRETRAINED, TRAINED_HERE, UNTRAINED = "pretrained", "trained here", "untrained (same architecture)"
DEFAULT_BITS = (8, 7, 6, 5, 4, 3, 2)
BATCH_VALUES = 1_250_000  # input values per evaluation batch: 101 crops of 64 px, 8 images of 224 px (~130 MB)


def batch_size(x: np.ndarray) -> int:
    """Images per evaluation batch for inputs shaped like ``x`` (N, C, H, W)."""
    return int(max(1, min(256, BATCH_VALUES // max(1, int(np.prod(x.shape[1:]))))))


# --- the integer grid ------------------------------------------------------------------


@dataclass(frozen=True)
class Quantized:
    """A tensor rounded onto a symmetric integer grid: ``dequantized = q * scale``."""

    q: np.ndarray  # integer codes, in [-qmax, qmax]
    scale: np.ndarray  # broadcastable to q: one value (per tensor) or one per output channel
    dequantized: np.ndarray  # float32, the values the network computes with
    bits: int

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def errors(self, original: np.ndarray) -> np.ndarray:
        """Rounding error (dequantized - original), same shape as the weights."""
        return self.dequantized - np.asarray(original, dtype=np.float32)


def qmax_for(bits: int) -> int:
    if not 2 <= int(bits) <= 16:
        raise ValueError(f"bits must be within 2..16, got {bits}")
    return 2 ** (int(bits) - 1) - 1


def _scale(absmax, qmax: int):
    """absmax / qmax, with 1.0 where a channel is all zeros (its codes are all 0 anyway)."""
    return np.where(absmax > 0, absmax / qmax, 1.0).astype(np.float32)


def symmetric_quantize(w: np.ndarray, bits: int = 8, *, per_channel: bool = True) -> Quantized:
    """Round ``w`` onto the symmetric grid ``{-qmax..qmax} * scale`` with qmax = 2^(bits-1) - 1.

    The scale is ``max|w| / qmax`` over the whole tensor, or over each output channel (axis 0)
    with ``per_channel``. No value is clipped (the largest one lands exactly on +-qmax), so
    every rounding error is at most half a step: ``|error| <= scale / 2``.
    Round-half-to-even, like ``torch.round`` and ONNX's QuantizeLinear."""
    qmax = qmax_for(bits)
    w = np.asarray(w, dtype=np.float32)
    if per_channel and w.ndim >= 1:
        absmax = np.abs(w.reshape(len(w), -1)).max(axis=1) if w.size else np.zeros(len(w), np.float32)
        scale = _scale(absmax, qmax).reshape((-1,) + (1,) * (w.ndim - 1))
    else:
        scale = _scale(np.float32(np.abs(w).max() if w.size else 0.0), qmax)
    q = np.clip(np.round(w / scale), -qmax, qmax).astype(np.int32)
    return Quantized(q, scale, (q * scale).astype(np.float32), int(bits))


def _fake_quant_tensor(w, bits: int, per_channel: bool):
    """The torch twin of :func:`symmetric_quantize` (same formula, same rounding)."""
    import torch

    qmax = qmax_for(bits)
    flat = w.detach().float().reshape(w.shape[0], -1) if per_channel else w.detach().float().reshape(1, -1)
    absmax = flat.abs().amax(dim=1)
    scale = torch.where(absmax > 0, absmax / qmax, torch.ones_like(absmax))
    shape = (-1,) + (1,) * (w.ndim - 1) if per_channel else (1,) * w.ndim
    scale = scale.reshape(shape)
    return (torch.clamp(torch.round(w.float() / scale), -qmax, qmax) * scale).to(w.dtype)


def quantizable_layers(model) -> dict:
    """``{name: module}`` of the model's Conv2d and Linear layers, input side first."""
    from torch import nn

    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def copy_model(model):
    """An independent copy of a (possibly shared) model, taken under its lock so no other
    session's hooks are copied along; the original is left untouched."""
    from core.hooks import lock_for

    with lock_for(model):
        return copy.deepcopy(model).eval()


def fake_quantize(model, bits: int, *, per_channel: bool = True, copy_first: bool = True):
    """A copy of ``model`` whose Conv2d/Linear weights are rounded onto a ``bits``-bit symmetric
    grid and stored back as floats ("fake quantisation": only the weights' precision changes;
    biases and activations stay FP32). The original model is never modified."""
    import torch

    target = copy_model(model) if copy_first else model
    with torch.no_grad():
        for layer in quantizable_layers(target).values():
            layer.weight.copy_(_fake_quant_tensor(layer.weight, bits, per_channel))
    return target


# --- histogram of one layer on its grid ---------------------------------------------------


@dataclass(frozen=True)
class LayerHistogram:
    """The weights of one layer (or one output channel of it) and the grid they are rounded to."""

    layer: str
    bits: int
    per_channel: bool
    channel: int | None  # None: the whole layer
    n_weights: int
    counts: np.ndarray  # histogram of the original weights shown
    edges: np.ndarray
    grid: np.ndarray  # grid values inside the histogram's range (None-equivalent empty: no single grid)
    scale: float | None  # step of the grid shown (None: per-channel over the whole layer)
    max_abs_error: float  # of the weights shown
    mean_abs_error: float
    levels_used: int  # distinct integer codes among the weights shown
    levels_total: int  # 2 * qmax + 1

    @property
    def half_step(self) -> float | None:
        return None if self.scale is None else self.scale / 2


def layer_histogram(weight: np.ndarray, bits: int, *, per_channel: bool, channel: int | None = None,
                    layer: str = "", bins: int = 80) -> LayerHistogram:
    """Histogram of ``weight`` (all of it, or output channel ``channel``) with the grid of the
    chosen scale: per tensor (one grid for the layer) or per channel (each channel its own;
    a whole-layer view then has no single grid to draw, so ``grid`` is empty)."""
    w = np.asarray(weight, dtype=np.float32)
    quant = symmetric_quantize(w, bits, per_channel=per_channel)
    shown = w if channel is None else w[channel]
    codes = quant.q if channel is None else quant.q[channel]
    err = np.abs(quant.errors(w) if channel is None else quant.errors(w)[channel])
    if per_channel and channel is None:
        scale = None
    else:
        scale = float(quant.scale.reshape(-1)[channel if per_channel else 0])
    span = float(np.abs(shown).max()) if shown.size else 0.0
    span = span * 1.04 if span > 0 else 1.0
    counts, edges = np.histogram(shown, bins=bins, range=(-span, span))
    grid = np.empty(0, dtype=np.float32)
    if scale is not None:
        k = min(quant.qmax, int(np.floor(span / scale)))
        grid = (np.arange(-k, k + 1) * scale).astype(np.float32)
    return LayerHistogram(layer, int(bits), per_channel, channel, int(shown.size), counts, edges, grid, scale,
                          float(err.max()) if err.size else 0.0, float(err.mean()) if err.size else 0.0,
                          int(len(np.unique(codes))), 2 * quant.qmax + 1)


def error_table(weight: np.ndarray, bits: int) -> list[dict]:
    """Rounding error of a whole layer with one scale per tensor vs one per output channel."""
    w = np.asarray(weight, dtype=np.float32)
    rows = []
    for per_channel, name in ((False, "per tensor"), (True, "per channel")):
        quant = symmetric_quantize(w, bits, per_channel=per_channel)
        err = np.abs(quant.errors(w))
        levels = [len(np.unique(quant.q[c])) for c in range(len(w))]
        rows.append({"scale": name, "max |error|": float(err.max()), "mean |error|": float(err.mean()),
                     "relative error": float(np.linalg.norm(quant.errors(w)) / max(np.linalg.norm(w), 1e-12)),
                     "levels per channel (median)": float(np.median(levels))})
    return rows


DEAD_CHANNEL = 1e-4  # a channel whose largest |w| is below this share of the layer's largest is dead


def narrowest_channel(weight: np.ndarray) -> int:
    """The output channel with the smallest range: where one grid for the whole layer hurts most.
    Dead channels (all zero, or ~1e-8 as in a few of EfficientNet-Lite0's depthwise filters)
    are skipped: they have nothing to round."""
    w = np.asarray(weight, dtype=np.float32)
    absmax = np.abs(w.reshape(len(w), -1)).max(axis=1)
    alive = absmax >= DEAD_CHANNEL * absmax.max() if absmax.size and absmax.max() > 0 else np.ones(len(w), bool)
    return int(np.flatnonzero(alive)[np.argmin(absmax[alive])])


# --- evaluation data ---------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSet:
    """Network inputs (already normalised) and, where known, their true classes."""

    x: np.ndarray  # (N, 3, H, W) float32
    labels: np.ndarray | None
    description: str
    names: tuple[str, ...] = ()  # one per input where known ("chelsea · mirrored")

    def __len__(self) -> int:
        return len(self.x)


def _as_input(clf, rgb_batch: np.ndarray) -> np.ndarray:
    return clf.tensor(rgb_batch).numpy().astype(np.float32)


def shapes_eval(clf, n: int = 400, *, seed: int | None = None) -> EvalSet:
    """Held-out 64-px shape crops with their labels (the shapes CNN's own test seed)."""
    from core.shapes import make_classification_set
    from core.shapes_net import TEST_SEED_OFFSET

    seed = TEST_SEED_OFFSET if seed is None else seed
    x, y = make_classification_set(n, seed=seed)
    return EvalSet(_as_input(clf, x), y, f"{n} held-out 64-px shape crops (seed {seed})")


def shapes_calibration(clf, n: int = 32, *, seed: int = 0) -> np.ndarray:
    """Calibration crops from the training distribution (never the evaluation seed)."""
    from core.shapes import make_classification_set

    x, _ = make_classification_set(n, seed=seed)
    return _as_input(clf, x)


def gallery_photos() -> list[np.ndarray]:
    """The sample gallery's real photos (RGB uint8), the synthetic scene left out."""
    from core.images import SAMPLES, load_sample

    return [load_sample(name).work for name, (_, file) in SAMPLES.items() if file is not None]


SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")  # bundled with scikit-learn (sklearn.datasets.load_sample_images)


def sklearn_photo(file: str) -> np.ndarray:
    """One of scikit-learn's two bundled sample photos, RGB uint8 at the lab's working size
    (read with Pillow from the package folder: importing sklearn is not needed)."""
    import importlib.util

    from PIL import Image

    from core.imageio import WORK_LONG_SIDE, fit_long_side

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed (requirements.txt installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images" / file
    with Image.open(path) as im:
        return fit_long_side(np.asarray(im.convert("RGB")), WORK_LONG_SIDE)


def sample_photos() -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) of every real sample photo: scikit-image's (the gallery, the synthetic
    scene left out) and scikit-learn's two. All bundled with the packages: nothing is downloaded."""
    from core.images import SAMPLES, load_sample

    photos = [(name, load_sample(name).work) for name, (_, file) in SAMPLES.items() if file is not None]
    return photos + [(file.rsplit(".", 1)[0], sklearn_photo(file)) for file in SKLEARN_PHOTOS]


def variants(rgb: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Simple, label-preserving changes of one photo: flip, crops, brightness, blur, rotation, grey."""
    import cv2

    rgb = np.ascontiguousarray(rgb[..., :3])
    h, w = rgb.shape[:2]

    def crop(f, cx=0.5, cy=0.5):
        ch, cw = max(8, int(h * f)), max(8, int(w * f))
        y0 = int(np.clip(cy * h - ch / 2, 0, h - ch))
        x0 = int(np.clip(cx * w - cw / 2, 0, w - cw))
        return np.ascontiguousarray(rgb[y0:y0 + ch, x0:x0 + cw])

    grey = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    rot = cv2.warpAffine(rgb, cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.1), (w, h),
                         borderMode=cv2.BORDER_REFLECT)
    return [("original", rgb), ("mirrored", np.ascontiguousarray(rgb[:, ::-1])),
            ("centre crop 80 %", crop(0.8)), ("top-left crop 70 %", crop(0.7, 0.35, 0.35)),
            ("bottom-right crop 70 %", crop(0.7, 0.65, 0.65)),
            ("brighter", np.clip(rgb.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)),
            ("darker", (rgb.astype(np.float32) * 0.7).astype(np.uint8)),
            ("blurred", cv2.GaussianBlur(rgb, (0, 0), 1.5)), ("rotated 10°", rot), ("greyscale", grey)]


def _named_variants(photos: list[tuple[str, np.ndarray]]) -> tuple[list[str], list[np.ndarray]]:
    names, images = [], []
    for name, rgb in photos:
        for what, img in variants(rgb):
            names.append(f"{name} · {what}")
            images.append(img)
    return names, images


def photo_eval(clf) -> EvalSet:
    """The real-photo evaluation set: every sample photo (:func:`sample_photos`) and its nine
    :func:`variants` (mirrored, three crops, brighter, darker, blurred, rotated, greyscale),
    13 x 10 = 130 inputs, named "photo · variant". No labels: agreement with FP32 only."""
    photos = sample_photos()
    names, images = _named_variants(photos)
    x = _as_input(clf, np.stack([clf.resize(img) for img in images]))
    what = (f"{len(x)} real photos: the {len(photos)} sample photos of scikit-image and scikit-learn, each also "
            f"mirrored, cropped 3 ways, brightened, darkened, blurred, rotated and turned grey")
    return EvalSet(x, None, what, tuple(names))


def imagenet_eval(clf, active: np.ndarray | None = None, title: str = "active image") -> EvalSet:
    """A small set for quick looks: the sample photos as they are, plus the variants of the
    active image (no labels: agreement only)."""
    photos = sample_photos()
    names = [name for name, _ in photos]
    images = [rgb for _, rgb in photos]
    if active is not None:
        more, extra = _named_variants([(title, active)])
        names, images = names + more, images + extra
    x = _as_input(clf, np.stack([clf.resize(img) for img in images]))
    what = f"{len(photos)} sample photos" + (f" + {len(images) - len(photos)} variants of the active image"
                                             if active is not None else "")
    return EvalSet(x, None, what, tuple(names))


def imagenet_calibration(clf, n: int = 16, *, seed: int = 0) -> np.ndarray:
    """``n`` random crops (half to all of each side, anywhere) of the gallery photos, seeded:
    never one of :func:`photo_eval`'s inputs (tested), though the scenes are the same. A
    calibration set from other kinds of image (textures, the Moon) is worse: it sets the
    activation ranges for pictures the model will not see."""
    rng = np.random.default_rng(seed)
    photos = gallery_photos()
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        f = rng.uniform(0.5, 1.0)
        ch, cw = int(h * f), int(w * f)
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(clf.resize(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw])))
    return _as_input(clf, np.stack(out))


# --- the degradation curve ------------------------------------------------------------------


def predict(model, x: np.ndarray, *, device: str = "cpu", dtype=None, channels_last: bool = True,
            batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 class, its softmax probability) of a torch model for every input, in batches."""
    import torch

    dtype = dtype or torch.float32
    batch = batch or batch_size(x)
    classes, probs = [], []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).to(device=device, dtype=dtype)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            p = torch.softmax(model(xb).float(), dim=1)
            top = p.max(dim=1)
            classes.append(top.indices.cpu().numpy())
            probs.append(top.values.cpu().numpy())
    return np.concatenate(classes), np.concatenate(probs)


def confidence(model, x: np.ndarray, *, batch: int | None = None) -> tuple[np.ndarray, ...]:
    """(top-1 class, its probability, runner-up class, its probability) of a torch model (CPU,
    FP32) for every input, in batches: how decided each answer is."""
    import torch

    batch = batch or batch_size(x)
    parts = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).contiguous(memory_format=torch.channels_last)
            top = torch.softmax(model(xb).float(), dim=1).topk(2, dim=1)
            parts.append((top.indices.numpy(), top.values.numpy()))
    idx, val = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return idx[:, 0], val[:, 0], idx[:, 1], val[:, 1]


MARGIN_EDGES = (0.05, 0.2)  # bands of FP32's top-1 margin (p1 - p2): near tie, close, decided
PHOTO_CALIBRATION = 16  # calibration crops for an ImageNet classifier (measured: 8, 16 or 32 agree within 4 points)


@dataclass(frozen=True)
class Answers:
    """FP32's answer on every evaluation image and each variant's top-1 there."""

    names: tuple[str, ...]  # one per image ("" where unknown)
    top1: np.ndarray  # FP32 (PyTorch eager, CPU) top-1 class
    p1: np.ndarray  # its probability
    runner_up: np.ndarray  # FP32's second class
    p2: np.ndarray  # its probability
    predictions: dict  # {variant: top-1 class per image}

    @property
    def margin(self) -> np.ndarray:
        """How far FP32's top-1 is ahead of its runner-up, in probability (0: a tie)."""
        return self.p1 - self.p2

    def kept(self, variant: str) -> np.ndarray:
        """True where ``variant`` gives FP32's top-1."""
        return np.asarray(self.predictions[variant]) == self.top1

    def flips(self, variant: str) -> list[int]:
        """Indices of the images whose top-1 ``variant`` changed, nearest tie first."""
        changed = np.flatnonzero(~self.kept(variant))
        return [int(i) for i in changed[np.argsort(self.margin[changed], kind="stable")]]

    def by_margin(self, variant: str, edges: Sequence[float] = MARGIN_EDGES) -> list[dict]:
        """Agreement of ``variant`` with FP32 in bands of FP32's margin (p1 - p2), lowest first."""
        bounds = [0.0, *edges, 1.0]
        kept, margin = self.kept(variant), self.margin
        rows = []
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            last = k == len(bounds) - 2
            inside = (margin >= lo) & ((margin <= hi) if last else (margin < hi))
            n = int(inside.sum())
            band = f"≥ {lo:g}" if last and k else f"< {hi:g}" if k == 0 and not last else f"{lo:g} – {hi:g}"
            rows.append({"band": band, "low": lo, "high": hi, "images": n, "kept": int(kept[inside].sum()),
                         "agreement": float(kept[inside].mean()) if n else None})
        return rows

    def image_rows(self, categories: Sequence[str]) -> list[dict]:
        """One row per image: FP32's answer, its margin, each variant's answer (for a CSV)."""
        out = []
        for i in range(len(self.top1)):
            row = {"image": self.names[i] if i < len(self.names) else str(i),
                   "fp32_top1": categories[int(self.top1[i])], "fp32_p1": round(float(self.p1[i]), 4),
                   "fp32_runner_up": categories[int(self.runner_up[i])], "fp32_p2": round(float(self.p2[i]), 4),
                   "fp32_margin": round(float(self.margin[i]), 4)}
            for variant, pred in self.predictions.items():
                row[variant] = categories[int(pred[i])]
            out.append(row)
        return out


@dataclass(frozen=True)
class CurvePoint:
    bits: int  # 32 = the FP32 reference
    agreement: float  # top-1 equal to FP32's
    accuracy: float | None
    subject_class: int | None = None  # top-1 on the page's own image
    subject_prob: float | None = None


def degradation_curve(model, evals: EvalSet, *, bits: Sequence[int] = DEFAULT_BITS, per_channel: bool = True,
                      subject: np.ndarray | None = None, device: str | None = None,
                      progress: Progress | None = None) -> list[CurvePoint]:
    """Agreement with FP32 (and accuracy) of the model with its weights fake-quantised to each
    bit width, on ``evals``; ``subject`` (1, 3, H, W) is one more input whose answer is kept.
    The first point is the FP32 model itself (bits = 32). Works on a copy."""
    import torch

    report = progress or (lambda f, t: None)
    work = copy_model(model)
    device = device or str(next(work.parameters()).device)
    originals = {name: layer.weight.detach().clone() for name, layer in quantizable_layers(work).items()}
    layers = quantizable_layers(work)

    def run() -> tuple[np.ndarray, int | None, float | None]:
        cls, _ = predict(work, evals.x, device=device)
        if subject is None:
            return cls, None, None
        c, p = predict(work, subject, device=device)
        return cls, int(c[0]), float(p[0])

    report(0.0, "FP32 reference")
    ref, s_cls, s_prob = run()
    points = [CurvePoint(32, 1.0, _accuracy(ref, evals.labels), s_cls, s_prob)]
    for i, b in enumerate(bits):
        report((i + 1) / (len(bits) + 1), f"weights on a {b}-bit grid")
        with torch.no_grad():
            for name, layer in layers.items():
                layer.weight.copy_(_fake_quant_tensor(originals[name], b, per_channel))
        cls, s_cls, s_prob = run()
        points.append(CurvePoint(int(b), float((cls == ref).mean()), _accuracy(cls, evals.labels), s_cls, s_prob))
    report(1.0, "done")
    return points


def _accuracy(pred: np.ndarray, labels: np.ndarray | None) -> float | None:
    return None if labels is None else float((pred == labels).mean())


# --- the comparison ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    variant: str
    runtime: str  # "PyTorch" | "ONNX Runtime"
    precision: str  # "FP32", "INT8 static", "INT8 dynamic", "FP16", "BF16"
    device: str  # the device's name
    size_mb: float  # on disk: state dict (PyTorch) or .onnx file
    p50: float  # ms, batch 1, after warm-up
    p95: float  # ms
    speedup: float  # reference p50 / this p50 (reference: PyTorch FP32 eager on the same device)
    agreement: float | None  # top-1 equal to PyTorch FP32 (CPU); None where not meaningful
    accuracy: float | None  # against true labels, where there are labels
    peak_mb: float | None = None  # GPU memory allocated at peak during the timed calls
    note: str = ""
    batch: int = 1  # images per timed call


@dataclass(frozen=True)
class Comparison:
    model: str
    weights: str  # PRETRAINED / TRAINED_HERE / UNTRAINED
    input_shape: tuple[int, ...]  # of one timed call
    rows: tuple[Row, ...]
    threads: int
    eval_description: str  # "" when agreement was not measured
    n_eval: int
    n_calib: int
    int8_onnx: bytes = field(repr=False)
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    answers: Answers | None = field(default=None, repr=False)  # per image, where agreement was measured

    def row(self, variant: str) -> Row:
        for r in self.rows:
            if r.variant == variant:
                return r
        raise KeyError(variant)

    def has(self, variant: str) -> bool:
        return any(r.variant == variant for r in self.rows)

    def to_rows(self) -> list[dict]:
        """One dict per variant, for a CSV (every figure with its unit in the column name)."""
        out = []
        for r in self.rows:
            out.append({"model": self.model, "weights": self.weights, "variant": r.variant, "runtime": r.runtime,
                        "precision": r.precision, "device": r.device, "threads": self.threads,
                        "input": "x".join(map(str, self.input_shape)), "batch": r.batch,
                        "size_mb": round(r.size_mb, 3),
                        "p50_ms": round(r.p50, 3), "p95_ms": round(r.p95, 3), "speedup_vs_fp32": round(r.speedup, 3),
                        "top1_agreement": None if r.agreement is None else round(r.agreement, 4),
                        "accuracy": None if r.accuracy is None else round(r.accuracy, 4),
                        "peak_gpu_mb": None if r.peak_mb is None else round(r.peak_mb, 1),
                        "eval_images": self.n_eval, "calibration_images": self.n_calib, "note": r.note})
        return out


def cpu_bf16_support() -> tuple[bool, str]:
    """(native, explanation): whether this CPU computes BF16 in hardware (AVX512-BF16 or AMX
    on x86; without them PyTorch converts BF16 to FP32 around each op, which is slower)."""
    import torch

    checks = {"AVX512-BF16": getattr(torch.cpu, "_is_avx512_bf16_supported", None),
              "AMX": getattr(torch.cpu, "_is_amx_tile_supported", None)}
    found = [name for name, fn in checks.items() if fn is not None and _safe(fn)]
    cap = torch.backends.cpu.get_cpu_capability()
    if found:
        return True, f"This CPU has native BF16 ({' and '.join(found)}; vector unit {cap})."
    return False, (f"This CPU (vector unit {cap}) has no native BF16 instructions (no AVX512-BF16, no AMX): "
                   "PyTorch would emulate BF16 by converting to FP32 and back around every operation.")


def _safe(fn) -> bool:
    try:
        return bool(fn())
    except Exception:
        return False


def state_dict_mb(model) -> float:
    """Size of the model's saved state dict (what ``torch.save`` writes), in MB (10^6 bytes)."""
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes / 1e6


def weight_bytes(model) -> dict[str, float]:
    """Bytes of the weights alone (parameters) at each precision, in MB: 4, 2 and 1 byte per value."""
    n = sum(p.numel() for p in model.parameters())
    return {"parameters": n, "FP32": n * 4 / 1e6, "FP16 / BF16": n * 2 / 1e6, "INT8": n / 1e6}


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over an array of inputs, in batches."""

    def __init__(self, x: np.ndarray, input_name: str, batch: int = 8):
        self.batches = [np.ascontiguousarray(x[i:i + batch], dtype=np.float32) for i in range(0, len(x), batch)]
        self.name = input_name
        self.i = 0

    def get_next(self):
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.name: self.batches[self.i - 1]}

    def rewind(self):
        self.i = 0


def quantize_onnx(fp32_path: Path, out_dir: Path, calib: np.ndarray, *, dynamic: bool = True) -> dict[str, Path]:
    """Pre-process (fold BatchNorm, infer shapes), then static (calibrated, QDQ, per-channel)
    and (unless ``dynamic`` is False) dynamic INT8 quantization with ONNX Runtime.
    Returns {"pre", "static", "dynamic"} paths ("dynamic" only where made)."""
    import onnxruntime as ort
    from onnxruntime import quantization as oq

    from core.export import ExportError

    make_dynamic = bool(dynamic)
    out_dir = Path(out_dir)
    pre = out_dir / "model_pre.onnx"
    with quiet(None):
        try:
            oq.quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception:  # pre-processing is an optimisation; quantize the plain export then
            pre = Path(fp32_path)
        input_name = ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        static, dynamic = out_dir / "model_int8_static.onnx", out_dir / "model_int8_dynamic.onnx"
        try:
            oq.quantize_static(str(pre), str(static), _Reader(calib, input_name), quant_format=oq.QuantFormat.QDQ,
                               per_channel=True, activation_type=oq.QuantType.QUInt8,
                               weight_type=oq.QuantType.QInt8, calibrate_method=oq.CalibrationMethod.MinMax)
            if make_dynamic:
                oq.quantize_dynamic(str(pre), str(dynamic), weight_type=oq.QuantType.QInt8, per_channel=True)
        except Exception as exc:
            raise ExportError(f"ONNX Runtime quantization failed: {type(exc).__name__}: {exc}") from exc
    return {"pre": pre, "static": static, **({"dynamic": dynamic} if make_dynamic else {})}


def first_lines(message: str, n: int = 3, limit: int = 600) -> str:
    """An exporter's message for a page: terminal colour codes removed, the first lines kept."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", message).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()][:n]
    short = " ".join(lines)
    return short if len(short) <= limit else short[:limit - 1] + "…"


def cuda_name(device: str) -> str:
    import torch

    return torch.cuda.get_device_name(torch.device(device))


def compare(model, *, calib: np.ndarray, evals: EvalSet | None = None, example: np.ndarray | None = None,
            threads: int | None = None, device: str = "cpu", repeats: int = 10, warmup: int = 2,
            cpu_bf16: bool | None = None, int8: bool = True, int8_dynamic: bool = True,
            skip_failed_export: bool = False, gpu_batch: int = 1,
            name: str = "model", weights: str = "", cpu_name: str | None = None, progress: Progress | None = None,
            deadline=None) -> Comparison:
    """FP32 vs INT8 (static and dynamic, ONNX Runtime, CPU) vs BF16/FP16 (PyTorch) for ``model``.

    * ``calib``: normalised inputs (N, 3, H, W) the static quantizer calibrates on.
    * ``evals``: inputs on which top-1 agreement with FP32 (and accuracy, with labels) is
      measured; None for a network whose answers mean nothing (untrained): no agreement.
    * ``example``: the (1, 3, H, W) input every variant is timed on (default: the first
      evaluation or calibration input). Batch 1, ``warmup`` untimed calls, ``repeats`` timed.
    * ``threads``: CPU threads for PyTorch and ONNX Runtime alike (default: all this process may use).
    * ``device``: "cpu", or "cuda[:i]" to add FP32/FP16/BF16 rows on that GPU (INT8 stays on the CPU),
      timed on ``gpu_batch`` copies of the example (batch 1 leaves a big GPU idle: launch-bound).
    * ``cpu_bf16``: time BF16 on the CPU: None = only where the CPU has it natively; True = also
      emulated (labelled so); False = never.
    * ``int8``: False skips the ONNX export and the ONNX Runtime rows (PyTorch rows only);
      ``int8_dynamic``: False leaves out the dynamic INT8 row alone.
      ``skip_failed_export``: where the export or the quantizer fails, go on without those rows
      (the reason becomes a note) instead of raising :class:`core.export.ExportError`.
    * ``deadline``: a core.jobs.Deadline, checked between steps.
    With ``evals``, ``.answers`` holds every image's FP32 answer, margin and each variant's top-1.
    The shared ``model`` is copied (under its lock), never changed."""
    import torch

    from core import perf
    from core.devices import cpu_threads
    from core.export import ExportError
    from core.runtime import torch_threads

    t0 = time.perf_counter()
    report = progress or (lambda f, t: None)
    check = deadline.check if deadline is not None else (lambda: None)
    threads = int(threads or cpu_threads())
    cpu_label = cpu_name or f"CPU ({platform.machine()}, {threads} thread{'s' if threads > 1 else ''})"
    calib = np.ascontiguousarray(calib, dtype=np.float32)
    if example is None:
        example = (evals.x if evals is not None else calib)[:1]
    example = np.ascontiguousarray(example, dtype=np.float32)
    cuda = device.startswith("cuda")
    steps = 8 + (4 if cuda else 0)
    done = [0]

    def step(text: str) -> None:
        check()
        report(done[0] / steps, text)
        done[0] += 1

    rows: list[Row] = []
    notes: list[str] = []
    step("copying the model to the CPU")
    cpu_model = copy_model(model).float().to("cpu", memory_format=torch.channels_last)
    x1 = torch.from_numpy(example).contiguous(memory_format=torch.channels_last)

    def timed(fn, dev="cpu"):
        return perf.time_call(fn, warmup=warmup, repeats=repeats, device=dev)

    predictions: dict[str, np.ndarray] = {}

    def agree(pred, variant: str):
        if evals is None:
            return None, None
        predictions[variant] = pred
        return float((pred == ref).mean()), _accuracy(pred, evals.labels)

    with torch_threads(threads):
        step("PyTorch FP32: timing")
        with torch.inference_mode():
            fp32_t = timed(lambda: cpu_model(x1))
        first = confidence(cpu_model, evals.x) if evals is not None else None
        ref = first[0] if first is not None else None
        a, acc = agree(ref, EAGER_FP32) if ref is not None else (None, None)
        rows.append(Row(EAGER_FP32, "PyTorch", "FP32", cpu_label, state_dict_mb(cpu_model), fp32_t.p50,
                        fp32_t.p95, 1.0, a, acc, note="reference"))

        int8_bytes = b""
        if int8:
            try:
                onnx_rows, int8_bytes = _onnx_rows(cpu_model, example, calib, evals, threads, cpu_label, fp32_t.p50,
                                                   timed, step, agree, int8_dynamic)
                rows.extend(onnx_rows)
            except ExportError as err:
                if not skip_failed_export:
                    raise
                done[0] = 7
                notes.append("No ONNX Runtime rows: " + first_lines(str(err)))
        else:
            done[0] += 5
            notes.append("ONNX Runtime rows (FP32, INT8) were not measured.")

        native, why = cpu_bf16_support()
        step("BF16 on the CPU")
        if cpu_bf16 or (cpu_bf16 is None and native):
            bf16 = copy_model(cpu_model).to(torch.bfloat16)
            xb = x1.to(torch.bfloat16)
            with torch.inference_mode():
                t = timed(lambda: bf16(xb))
            pred = predict(bf16, evals.x, dtype=torch.bfloat16)[0] if evals is not None else None
            a, acc = agree(pred, CPU_BF16) if pred is not None else (None, None)
            rows.append(Row(CPU_BF16, "PyTorch", "BF16", cpu_label, state_dict_mb(bf16), t.p50, t.p95,
                            fp32_t.p50 / t.p50, a, acc, note="native" if native else "EMULATED: no native BF16 here"))
            del bf16
        if not native:
            notes.append(why + (" Timed anyway and labelled emulated." if cpu_bf16 else " Not timed."))

    if cuda:
        rows.extend(_gpu_rows(cpu_model, example, evals, device, max(1, int(gpu_batch)), timed, step, agree))
        if _conv_tf32():
            notes.append("GPU FP32 rows: PyTorch lets cuDNN run FP32 convolutions as TF32 on the tensor cores "
                         "(on by default), so GPU 'FP32' is already partly reduced precision.")
    elif device != "cpu":
        notes.append(f"Low-precision rows are timed on CUDA GPUs only; {device} was not timed.")
    load = _load_average()
    if load is not None and load > 0.75 * max(1, cpu_threads()):
        notes.append(f"The machine was busy while measuring (load average {load:.1f} on {cpu_threads()} cores): "
                     "latencies include waiting for other work; with several threads PyTorch suffers most. "
                     "Measure again when it is quiet, or with 1 thread.")
    answers = None
    if first is not None:
        answers = Answers(tuple(evals.names), first[0], first[1], first[2], first[3], predictions)
    report(1.0, "done")
    return Comparison(name, weights, tuple(example.shape), tuple(rows), threads,
                      evals.description if evals is not None else "", len(evals) if evals is not None else 0,
                      len(calib), int8_bytes, tuple(notes), time.perf_counter() - t0, answers)


def _onnx_rows(cpu_model, example, calib, evals, threads, cpu_label, fp32_p50, timed, step, agree, dynamic=True):
    """Export, quantize (static and dynamic), and time ONNX Runtime FP32 / INT8 on the CPU.
    Returns (rows, the static INT8 file's bytes)."""
    import torch

    from core import export

    rows = []
    with tempfile.TemporaryDirectory(prefix="cvlab-quant-") as tmp:
        tmp = Path(tmp)
        step("exporting to ONNX")
        ex2 = torch.from_numpy(np.concatenate([example, example]))  # batch 2 keeps the batch dimension dynamic
        fp32_path = export.export_onnx(cpu_model, ex2, tmp / "model_fp32.onnx")
        step("quantizing to INT8 (calibrating on sample images)")
        paths = quantize_onnx(fp32_path, tmp, calib, dynamic=dynamic)
        int8_bytes = paths["static"].read_bytes()
        for variant, precision, path, note in (
                (ORT_FP32, "FP32", fp32_path, "the runtime alone"),
                (INT8_STATIC, "INT8 static", paths["static"],
                 f"QDQ, per-channel INT8 weights, UINT8 activations calibrated on {len(calib)} images"),
                (INT8_DYNAMIC, "INT8 dynamic", paths.get("dynamic"),
                 "INT8 weights; activation ranges computed per call (ConvInteger)")):
            step(f"{variant}: timing")
            if path is None:
                continue
            session = export.ort_session(path, threads=threads)
            t = timed(lambda s=session: export.ort_run(s, example))
            a = acc = None
            if evals is not None:
                n = batch_size(evals.x)
                pred = np.concatenate([export.ort_run(session, evals.x[i:i + n]).argmax(1)
                                       for i in range(0, len(evals), n)])
                a, acc = agree(pred, variant)
            rows.append(Row(variant, "ONNX Runtime", precision, cpu_label, export.file_mb(path), t.p50, t.p95,
                            fp32_p50 / t.p50, a, acc, note=note))
            del session
    return rows, int8_bytes


def _conv_tf32() -> bool:
    """Whether cuDNN may run FP32 convolutions in TF32 (newer torch: conv.fp32_precision)."""
    import torch

    conv = getattr(torch.backends.cudnn, "conv", None)
    precision = getattr(conv, "fp32_precision", None)
    return precision == "tf32" if precision not in (None, "none") else bool(torch.backends.cudnn.allow_tf32)


def _load_average() -> float | None:
    try:
        import os

        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        return None


def _gpu_rows(cpu_model, example, evals, device, batch, timed, step, agree) -> list[Row]:
    """FP32, FP16 (channels-last and NCHW) and BF16 rows on a CUDA GPU; speed-up vs GPU FP32."""
    import torch

    name = cuda_name(device)
    rows: list[Row] = []
    configs = [(GPU_FP32, "FP32", torch.float32, True), (GPU_FP16, "FP16", torch.float16, True),
               (GPU_FP16_NCHW, "FP16", torch.float16, False)]
    if torch.cuda.is_bf16_supported():
        configs.append((GPU_BF16, "BF16", torch.bfloat16, True))
    base = None
    for variant, precision, dtype, channels_last in configs:
        step(f"{variant}: timing")
        layout = torch.channels_last if channels_last else torch.contiguous_format
        net = copy_model(cpu_model).to(device=device, dtype=dtype, memory_format=layout)
        x = torch.from_numpy(np.repeat(example, batch, axis=0)).to(device=device, dtype=dtype)
        x = x.contiguous(memory_format=layout)
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            t = timed(lambda n=net, xx=x: n(xx), device)
        peak = torch.cuda.max_memory_allocated(device) / 1e6
        base = base or t.p50
        pred = predict(net, evals.x, device=device, dtype=dtype, channels_last=channels_last)[0] \
            if evals is not None else None
        a, acc = agree(pred, variant) if pred is not None else (None, None)
        rows.append(Row(variant, "PyTorch", precision, name, state_dict_mb(net), t.p50, t.p95, base / t.p50, a, acc,
                        peak_mb=peak, note="GPU reference" if variant == GPU_FP32 else "", batch=batch))
        del net, x
        torch.cuda.empty_cache()
    return rows
