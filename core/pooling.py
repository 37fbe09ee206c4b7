"""Spatial pooling (Q16): max, average, global and adaptive pooling, the translation test, and
RoI pooling vs RoIAlign.

All pooling is torch.nn.functional / torchvision.ops; this module adds the arithmetic a page
shows next to it (output-size formula, RoI quantisation) and two hand-written references the
tests compare the library against (:func:`roi_pool_by_hand`, :func:`roi_align_by_hand`).
Torch is imported inside functions only.
"""

from __future__ import annotations

import math

import numpy as np

KINDS = ("max", "avg")
CURVE_KINDS = ("no pooling", "max pool", "avg pool", "global max", "global avg")


def output_size(h: int, k: int, s: int, p: int = 0) -> int:
    """floor((H + 2p - k) / s) + 1: the length of a pooled axis (ceil_mode off, dilation 1)."""
    if k < 1 or s < 1 or p < 0:
        raise ValueError("kernel and stride must be >= 1 and padding >= 0")
    if 2 * p > k:
        raise ValueError("padding must be at most half the kernel")
    if h + 2 * p < k:
        raise ValueError("the kernel is larger than the padded input")
    return (h + 2 * p - k) // s + 1


def to_tensor(rgb: np.ndarray, gray: bool = False):
    """uint8 (H, W, 3) -> float32 (1, C, H, W) in [0, 1] (C = 1 for grey: mean of channels)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] / 255.0
    return x.mean(1, keepdim=True) if gray else x


def pool(x, kind: str, k: int, s: int, p: int = 0):
    """max_pool2d / avg_pool2d (padding counted as -inf for max, as zeros for avg)."""
    import torch.nn.functional as F

    if kind == "max":
        return F.max_pool2d(x, k, s, p)
    if kind == "avg":
        return F.avg_pool2d(x, k, s, p)
    raise ValueError(f"unknown pooling {kind!r}")


def global_pool(x, kind: str):
    """(N, C, H, W) -> (N, C): one number per channel."""
    import torch.nn.functional as F

    return (F.adaptive_max_pool2d(x, 1) if kind == "max" else F.adaptive_avg_pool2d(x, 1)).flatten(1)


def adaptive_pool(x, kind: str, out: int):
    import torch.nn.functional as F

    return F.adaptive_max_pool2d(x, out) if kind == "max" else F.adaptive_avg_pool2d(x, out)


def adaptive_bins(h: int, out: int) -> list[tuple[int, int]]:
    """The (start, end) rows adaptive pooling uses: floor(i H / out) .. ceil((i + 1) H / out)."""
    return [(math.floor(i * h / out), math.ceil((i + 1) * h / out)) for i in range(out)]


def shift(x, k: int, axis: str = "x"):
    """Circular shift by ``k`` pixels (what leaves across the edge comes back on the other side)."""
    import torch

    return torch.roll(x, shifts=int(k), dims=3 if axis == "x" else 2)


def features(x, kind: str, k: int = 2, s: int = 2):
    """The flattened features each curve compares."""
    if kind == "no pooling":
        return x.flatten()
    if kind == "max pool":
        return pool(x, "max", k, s).flatten()
    if kind == "avg pool":
        return pool(x, "avg", k, s).flatten()
    if kind == "global max":
        return global_pool(x, "max").flatten()
    if kind == "global avg":
        return global_pool(x, "avg").flatten()
    raise ValueError(kind)


def cosine(a, b) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a.double()[None], b.double()[None]))


def translation_curve(x, max_shift: int, k: int = 2, s: int = 2) -> list[dict]:
    """Cosine similarity of each representation of the map shifted by 0..max_shift px (along x)
    to the unshifted one. 1.0 = unchanged. Features are mean-centred first so a constant
    offset cannot make two different maps look alike."""
    rows = []
    base = {kind: features(x, kind, k, s) for kind in CURVE_KINDS}
    for d in range(max_shift + 1):
        xs = shift(x, d)
        for kind in CURVE_KINDS:
            f0, f1 = base[kind], features(xs, kind, k, s)
            rows.append({"shift_px": d, "representation": kind,
                         "cosine": cosine(f0 - f0.mean(), f1 - f1.mean()) if f0.numel() > 1 else cosine(f0, f1),
                         "relative_change": float((f1 - f0).norm() / f0.norm().clamp_min(1e-12))})
    return rows


# --- RoI pooling vs RoIAlign ------------------------------------------------------------------


def roi_pool(x, box, out: int, scale: float):
    """torchvision.ops.roi_pool of one box (x1, y1, x2, y2) in image pixels -> (C, out, out)."""
    import torch
    from torchvision.ops import roi_pool as tv_roi_pool

    rois = torch.tensor([[0.0, *map(float, box)]], dtype=x.dtype)
    return tv_roi_pool(x, rois, out, spatial_scale=scale)[0]


def roi_align(x, box, out: int, scale: float, sampling_ratio: int = 2, aligned: bool = True):
    import torch
    from torchvision.ops import roi_align as tv_roi_align

    rois = torch.tensor([[0.0, *map(float, box)]], dtype=x.dtype)
    return tv_roi_align(x, rois, out, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned)[0]


def _round_half_away(v: float) -> int:
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def roi_pool_quantised(box, scale: float, out: int, h: int, w: int) -> dict:
    """RoI pooling's snapping: the box rounded to feature cells, and each bin's integer rows/cols.

    As torchvision (and Fast R-CNN) do it: start/end = round(coord * scale); the RoI spans
    end - start + 1 cells; bin i covers floor(i * size / out) .. ceil((i + 1) * size / out)."""
    x1, y1, x2, y2 = (_round_half_away(v * scale) for v in box)
    rw, rh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)

    def bins(start, size, limit):
        out_bins = []
        for i in range(out):
            a = min(max(math.floor(i * size / out) + start, 0), limit)
            b = min(max(math.ceil((i + 1) * size / out) + start, 0), limit)
            out_bins.append((a, b))
        return out_bins

    return {"cells": (x1, y1, x2, y2), "rows": bins(y1, rh, h), "cols": bins(x1, rw, w),
            "image_box": (x1 / scale, y1 / scale, (x2 + 1) / scale, (y2 + 1) / scale)}


def roi_pool_by_hand(fmap: np.ndarray, box, out: int, scale: float) -> np.ndarray:
    """(C, H, W) -> (C, out, out): max over each quantised bin (0 for an empty bin)."""
    c, h, w = fmap.shape
    q = roi_pool_quantised(box, scale, out, h, w)
    res = np.zeros((c, out, out), dtype=fmap.dtype)
    for i, (r0, r1) in enumerate(q["rows"]):
        for j, (c0, c1) in enumerate(q["cols"]):
            if r1 > r0 and c1 > c0:
                res[:, i, j] = fmap[:, r0:r1, c0:c1].max(axis=(1, 2))
    return res


def _bilinear(fmap: np.ndarray, y: float, x: float) -> np.ndarray:
    c, h, w = fmap.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(c)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * fmap[:, y0, x0] + (1 - ly) * lx * fmap[:, y0, x1]
            + ly * (1 - lx) * fmap[:, y1, x0] + ly * lx * fmap[:, y1, x1])


def roi_align_by_hand(fmap: np.ndarray, box, out: int, scale: float, sampling_ratio: int = 2,
                      aligned: bool = True) -> np.ndarray:
    """RoIAlign from its definition: no rounding; each bin is the mean of sampling_ratio^2
    bilinear samples at evenly spaced points inside it (aligned: pixel centres at +0.5)."""
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - off for v in box)
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bw, bh = rw / out, rh / out
    res = np.zeros((fmap.shape[0], out, out))
    n = sampling_ratio
    for i in range(out):
        for j in range(out):
            acc = np.zeros(fmap.shape[0])
            for iy in range(n):
                for ix in range(n):
                    acc += _bilinear(fmap, y1 + i * bh + (iy + 0.5) * bh / n, x1 + j * bw + (ix + 0.5) * bw / n)
            res[:, i, j] = acc / (n * n)
    return res
