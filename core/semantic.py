"""Semantic segmentation: one class per pixel, and everything a page does with that map.

    seg = Segmenter(name, title, model, preprocess, categories, device)
    result = seg.run(rgb)                       # SemanticMap: class ids + confidence, image size
    shares = class_shares(result.classes, len(result.categories))
    picture = overlay(rgb, result.classes, palette(21), opacity=0.5)
    focus = isolate(rgb, result.classes, cls=15, palette=palette(21))
    png = encode_label_png(result.classes, palette(21))   # pixel value = class id
    miou = mean_iou(pred, truth, n_classes)

The network runs once per image (the page caches ``SemanticMap`` per image digest); the
overlay, class isolation, shares and downloads are cheap numpy on the cached map, so moving
a slider never reruns the network. torch is imported only inside :meth:`Segmenter.run`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

BACKGROUND_NAMES = ("__background__", "background")


@dataclass(frozen=True, eq=False)
class SemanticMap:
    """What a semantic segmenter says about one image, at that image's size."""

    classes: np.ndarray  # (H, W) uint8 class id per pixel (argmax of the upsampled logits)
    confidence: np.ndarray  # (H, W) float16 softmax probability of that class
    categories: tuple[str, ...]  # index 0 is the background
    model: str
    latency_ms: float  # pre-processing + forward pass + upsampling + argmax
    device: str
    input_size: tuple[int, int]  # (width, height) the network actually saw

    @property
    def size(self) -> tuple[int, int]:
        return self.classes.shape[1], self.classes.shape[0]


def display_names(categories) -> tuple[str, ...]:
    """torchvision's ``__background__`` shown as ``background``."""
    return tuple("background" if c in BACKGROUND_NAMES else c for c in categories)


@dataclass(eq=False)
class Segmenter:
    """A network that maps a normalised (1, 3, h, w) tensor to class logits (1, C, h', w')
    (or torchvision's ``{"out": logits}``), with the pre-processing it was trained with."""

    name: str
    title: str
    model: Any  # torch.nn.Module in eval mode
    preprocess: Callable[[np.ndarray], Any]  # RGB uint8 (H, W, 3) -> float tensor (1, 3, h, w)
    categories: tuple[str, ...]
    device: str = "cpu"

    def logits(self, rgb: np.ndarray):
        """(C, H, W) float logits at the image's own size (bilinear upsampling), and the
        shape of the tensor the network saw."""
        import torch
        from torch.nn import functional as F

        from core.hooks import lock_for

        x = self.preprocess(rgb).to(self.device)
        with lock_for(self.model), torch.inference_mode():
            out = self.model(x.contiguous(memory_format=torch.channels_last))
        out = out["out"] if isinstance(out, dict) else out
        return F.interpolate(out.float(), size=rgb.shape[:2], mode="bilinear", align_corners=False)[0], x.shape

    def run(self, rgb: np.ndarray) -> SemanticMap:
        import torch

        start = time.perf_counter()
        with torch.inference_mode():
            logits, shape = self.logits(rgb)
            conf, classes = torch.softmax(logits, dim=0).max(dim=0)
            classes = classes.to(torch.uint8).cpu().numpy()
            conf = conf.to(torch.float16).cpu().numpy()
        latency = (time.perf_counter() - start) * 1000
        return SemanticMap(classes, conf, display_names(self.categories), self.name, latency,
                           str(self.device), (int(shape[3]), int(shape[2])))


def torchvision_preprocess(transforms, device: str = "cpu") -> Callable[[np.ndarray], Any]:
    """Pre-processing as the weights' own ``transforms()`` say (for DeepLab/LR-ASPP: resize
    the shorter side to 520, scale to [0, 1], ImageNet mean/std), on an RGB uint8 array."""

    def run(rgb: np.ndarray):
        import torch

        x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)  # a writable copy
        return transforms(x)[None]

    return run


# --- statistics ---------------------------------------------------------------------------


def class_shares(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes,) float64: the fraction of the image's pixels given to each class (sums to 1)."""
    counts = np.bincount(classes.ravel(), minlength=n_classes)[:n_classes]
    return counts / max(classes.size, 1)


def legend(result: SemanticMap) -> list[dict]:
    """One row per class present, largest share first: id, class, pixels, share, mean confidence."""
    n = len(result.categories)
    flat = result.classes.ravel()
    counts = np.bincount(flat, minlength=n)[:n]
    conf_sum = np.bincount(flat, weights=result.confidence.ravel().astype(np.float64), minlength=n)[:n]
    rows = [
        {"id": int(i), "class": result.categories[i], "pixels": int(counts[i]),
         "share": float(counts[i] / flat.size), "mean confidence": float(conf_sum[i] / counts[i])}
        for i in np.flatnonzero(counts)
    ]
    return sorted(rows, key=lambda r: (-r["pixels"], r["id"]))


def confusion(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n) int64 pixel counts: row = true class, column = predicted class."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in size")
    idx = truth.astype(np.int64).ravel() * n_classes + pred.astype(np.int64).ravel()
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix; NaN for a class in neither map."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> float:
    """Mean over classes present in either map (background included) of |P ∩ T| / |P ∪ T|."""
    return float(np.nanmean(iou_per_class(confusion(pred, truth, n_classes))))


# --- pictures ------------------------------------------------------------------------------


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8: the PASCAL VOC colour map (class 0 black, 15 'person' pinkish...).

    Each class id's bits are spread over the three channels from the high bit down, the
    scheme VOC's label PNGs use, so downloaded masks look like VOC's own."""
    out = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out[i] = (r, g, b)
    return out


def colourise(classes: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: each pixel painted its class colour."""
    return colours[classes]


def overlay(rgb: np.ndarray, classes: np.ndarray, colours: np.ndarray, *, opacity: float,
            background: bool = False) -> np.ndarray:
    """The image with class colours blended in at ``opacity`` (background pixels untouched
    unless ``background``). Returns a new array."""
    out = rgb.astype(np.float32)
    paint = colours[classes].astype(np.float32)
    where = np.ones(classes.shape, bool) if background else classes != 0
    out[where] = (1 - opacity) * out[where] + opacity * paint[where]
    return out.round().clip(0, 255).astype(np.uint8)


def isolate(rgb: np.ndarray, classes: np.ndarray, cls: int, colours: np.ndarray, *,
            opacity: float = 0.5, dim: float = 0.35) -> np.ndarray:
    """Class ``cls`` in colour (blended at ``opacity``), every other pixel grey and dimmed."""
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    out = np.repeat((grey * dim)[..., None], 3, axis=2)
    keep = classes == cls
    out[keep] = (1 - opacity) * rgb[keep].astype(np.float32) + opacity * colours[cls].astype(np.float32)
    return out.round().clip(0, 255).astype(np.uint8)


def encode_label_png(classes: np.ndarray, colours: np.ndarray | None = None) -> bytes:
    """A palette PNG whose pixel values are the class ids (VOC's label format); with
    ``colours`` each id also shows in its class colour in any image viewer."""
    from PIL import Image

    if classes.ndim != 2 or classes.dtype != np.uint8:
        raise ValueError(f"expected an (H, W) uint8 class map, got {classes.shape} {classes.dtype}")
    height, width = classes.shape
    im = Image.frombytes("P" if colours is not None else "L", (width, height), np.ascontiguousarray(classes).tobytes())
    if colours is not None:
        table = np.zeros((256, 3), np.uint8)
        table[: len(colours)] = colours
        im.putpalette(table.ravel().tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def decode_label_png(data: bytes) -> np.ndarray:
    """The class map (H, W) uint8 stored by :func:`encode_label_png` (palette indices, not colours)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if im.mode not in ("P", "L"):
            raise ValueError(f"not a label image (mode {im.mode})")
        return np.asarray(im).astype(np.uint8)


def count_regions(mask: np.ndarray) -> int:
    """Number of 8-connected blobs in a boolean mask (what a semantic map can tell apart:
    two touching people are one blob)."""
    import cv2

    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return int(n - 1)
