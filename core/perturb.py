"""Occluders, lighting changes and their remedies, as pure numpy/OpenCV functions.

Every function takes an RGB uint8 image (H, W, 3) and returns a new one; nothing here
imports Streamlit or holds a model, so the page, the sweeps and the tests share one
definition of "brightness 0.5" or "a black patch over 30 % of the image"::

    occ = Occluder(x=0.5, y=0.4, size=0.3, fill="noise")
    light = Lighting(brightness=0.6, gamma=1.5, cast=0.8, shadow=0.5)
    seen = perturb(rgb, occ, light)          # what the model is shown
    fixed = remedy(seen, "clahe")            # histogram equalisation / gray-world on it

The lighting model is a camera's: the scene's light is multiplied (exposure, colour of the
light, a shadow gradient), then the response curve is applied (gamma, contrast around the
mean grey), then the sensor clips to [0, 1]. Every control at its neutral value (factor 1,
gamma 1, cast 0, shadow 0, occluder size 0) returns the input unchanged (tested).

The model-facing helpers at the end (:func:`tta_probs`, :func:`occlusion_map`,
:func:`run_sweep`, :func:`best_scores`) take a ``core.classifier.Classifier``, a scoring
callable or detections; torch and captum are imported inside them only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

FILLS = ("black", "noise", "blur")
SHADOW_SIDES = ("right", "left", "bottom", "top")  # where the shadow is darkest
REMEDIES = ("none", "histogram", "clahe", "gray-world", "tta")
CAST_GAIN = 0.5  # cast +1 multiplies red by 1.5 and blue by 0.5 (warm light); -1 the reverse


# --- occluders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occluder:
    """A square patch: centre (x, y) as fractions of the width and height, side ``size`` as a
    fraction of the image's short side (0 = no occluder)."""

    x: float = 0.5
    y: float = 0.5
    size: float = 0.0
    fill: str = "black"

    def __post_init__(self):
        if self.fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {self.fill!r}")
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0 and 0.0 <= self.size <= 1.0):
            raise ValueError(f"occluder x, y, size must lie in [0, 1], got {self.x}, {self.y}, {self.size}")


def occluder_box(shape: Sequence[int], occ: Occluder) -> tuple[int, int, int, int]:
    """The patch in pixels (x1, y1, x2, y2), clipped to the image (half-open: x2, y2 excluded)."""
    h, w = int(shape[0]), int(shape[1])
    side = int(round(occ.size * min(h, w)))
    if side <= 0:
        return 0, 0, 0, 0
    cx, cy = occ.x * w, occ.y * h
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = min(max(x1, 0), w - side) if side <= w else 0, min(max(y1, 0), h - side) if side <= h else 0
    return x1, y1, min(x1 + side, w), min(y1 + side, h)


def occlude(rgb: np.ndarray, occ: Occluder, *, seed: int = 0) -> np.ndarray:
    """``rgb`` with the patch filled: black, uniform noise (seeded), or a strong Gaussian blur
    of what is under it (the object is still there, but its edges and texture are gone).

    The patch is kept inside the image (shifted, not cut), so its area is what ``size`` says."""
    out = np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    x1, y1, x2, y2 = occluder_box(out.shape, occ)
    if x2 <= x1 or y2 <= y1:
        return out
    if occ.fill == "black":
        out[y1:y2, x1:x2] = 0
    elif occ.fill == "noise":
        rng = np.random.default_rng(seed)
        out[y1:y2, x1:x2] = rng.integers(0, 256, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    else:  # blur: sigma a quarter of the side, computed on the patch with reflected borders
        import cv2

        side = max(x2 - x1, y2 - y1)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(np.ascontiguousarray(out[y1:y2, x1:x2]), (0, 0),
                                             sigmaX=max(side / 4.0, 0.5), borderType=cv2.BORDER_REFLECT_101)
    return out


# --- lighting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lighting:
    """Photometric change. brightness: exposure factor; contrast: factor around the mean grey;
    gamma: output = input ** gamma (> 1 darkens mid-tones); cast: -1 (blue light) .. +1 (warm,
    orange light); shadow: 0 .. 1, how dark the shadow gets at ``shadow_side``."""

    brightness: float = 1.0
    contrast: float = 1.0
    gamma: float = 1.0
    cast: float = 0.0
    shadow: float = 0.0
    shadow_side: str = "right"

    def __post_init__(self):
        if self.brightness < 0 or self.contrast < 0 or self.gamma <= 0:
            raise ValueError("brightness and contrast must be >= 0 and gamma > 0")
        if not -1.0 <= self.cast <= 1.0 or not 0.0 <= self.shadow <= 1.0:
            raise ValueError("cast must lie in [-1, 1] and shadow in [0, 1]")
        if self.shadow_side not in SHADOW_SIDES:
            raise ValueError(f"shadow_side must be one of {SHADOW_SIDES}")

    @property
    def neutral(self) -> bool:
        return (self.brightness, self.contrast, self.gamma, self.cast, self.shadow) == (1.0, 1.0, 1.0, 0.0, 0.0)


def cast_gains(cast: float) -> np.ndarray:
    """Per-channel (R, G, B) gains of a coloured light: warm (> 0) or cool (< 0)."""
    return np.array([1.0 + CAST_GAIN * cast, 1.0, 1.0 - CAST_GAIN * cast], np.float32)


def shadow_ramp(h: int, w: int, strength: float, side: str = "right") -> np.ndarray:
    """(H, W) multiplier going linearly from 1 (lit edge) to 1 - strength (``side`` edge)."""
    along = np.linspace(0.0, 1.0, w if side in ("right", "left") else h, dtype=np.float32)
    if side in ("left", "top"):
        along = along[::-1]
    ramp = 1.0 - strength * along
    return np.broadcast_to(ramp[None, :] if side in ("right", "left") else ramp[:, None], (h, w))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def relight(rgb: np.ndarray, light: Lighting) -> np.ndarray:
    """Apply :class:`Lighting`: light (exposure x colour x shadow), response (gamma, contrast), clip."""
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    if light.neutral:
        return rgb.copy()
    x = rgb.astype(np.float32) / 255.0
    gains = cast_gains(light.cast) * np.float32(light.brightness)
    x = x * gains
    if light.shadow > 0:
        x = x * shadow_ramp(*x.shape[:2], light.shadow, light.shadow_side)[..., None]
    if light.gamma != 1.0:
        x = np.power(np.maximum(x, 0.0), np.float32(light.gamma))
    if light.contrast != 1.0:
        grey = np.float32(np.clip(x, 0, 1).mean())
        x = grey + (x - grey) * np.float32(light.contrast)
    return _to_uint8(x)


def brightness(rgb: np.ndarray, factor: float) -> np.ndarray:
    return relight(rgb, Lighting(brightness=factor))


def contrast(rgb: np.ndarray, factor: float) -> np.ndarray:
    return relight(rgb, Lighting(contrast=factor))


def gamma(rgb: np.ndarray, value: float) -> np.ndarray:
    return relight(rgb, Lighting(gamma=value))


def add_noise(rgb: np.ndarray, sigma: float, *, seed: int = 0) -> np.ndarray:
    """Gaussian sensor noise of standard deviation ``sigma`` grey levels (seeded)."""
    if sigma <= 0:
        return np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    noise = np.random.default_rng(seed).normal(0.0, sigma, rgb[..., :3].shape).astype(np.float32)
    return np.rint(np.clip(rgb[..., :3].astype(np.float32) + noise, 0, 255)).astype(np.uint8)


def perturb(rgb: np.ndarray, occ: Occluder = Occluder(), light: Lighting = Lighting(), *, seed: int = 0) -> np.ndarray:
    """The occluder is part of the scene, so the lighting falls on it too: occlude, then relight."""
    return relight(occlude(rgb, occ, seed=seed), light)


# --- remedies -------------------------------------------------------------------------------


def equalise(rgb: np.ndarray, *, method: str = "clahe", clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Histogram equalisation of the lightness only (L of CIE L*a*b*), so colours keep their hue.

    ``method="histogram"``: global (stretches the whole L histogram to be flat; can blow up
    noise in flat regions). ``"clahe"``: contrast-limited, per ``tiles`` x ``tiles`` tile, with
    bilinear blending: local contrast comes back in shadows without a global jump."""
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3], dtype=np.uint8), cv2.COLOR_RGB2LAB)
    if method == "histogram":
        lab[..., 0] = cv2.equalizeHist(lab[..., 0])
    elif method == "clahe":
        lab[..., 0] = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    else:
        raise ValueError(f"method must be 'histogram' or 'clahe', got {method!r}")
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def gray_world(rgb: np.ndarray) -> np.ndarray:
    """Gray-world white balance: scale each channel so that its mean equals the mean grey.

    Assumes the scene averages to grey; undoes a global colour cast (a per-channel gain)
    exactly where no channel clips."""
    x = rgb[..., :3].astype(np.float32)
    means = x.reshape(-1, 3).mean(axis=0)
    if np.any(means <= 0):
        return np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    gains = means.mean() / means
    return np.rint(np.clip(x * gains, 0, 255)).astype(np.uint8)


def tta_views(rgb: np.ndarray, *, shift: float = 0.06) -> np.ndarray:
    """Test-time augmentation views (N, H, W, 3): the image, its mirror, and four shifts of
    ``shift`` x the side (left, right, up, down; borders reflected)."""
    import cv2

    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    views = [rgb, rgb[:, ::-1]]
    for dx, dy in ((-shift, 0), (shift, 0), (0, -shift), (0, shift)):
        m = np.float32([[1, 0, dx * w], [0, 1, dy * h]])
        views.append(cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101))
    return np.stack([np.ascontiguousarray(v) for v in views])


def remedy(rgb: np.ndarray, name: str) -> np.ndarray:
    """The image-side remedies by name (``tta`` changes the prediction, not the image)."""
    if name in ("none", "tta"):
        return np.array(rgb[..., :3], dtype=np.uint8, copy=True)
    if name == "histogram":
        return equalise(rgb, method="histogram")
    if name == "clahe":
        return equalise(rgb, method="clahe")
    if name == "gray-world":
        return gray_world(rgb)
    raise ValueError(f"unknown remedy {name!r}; choose from {REMEDIES}")


# --- sweeps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """One robustness curve: ``apply(rgb, value)`` at each of ``values`` (values[0] = no change)."""

    name: str
    parameter: str
    values: tuple[float, ...]
    apply: Callable[[np.ndarray, float], np.ndarray]


def sweeps(occ: Occluder = Occluder(), *, steps: int = 7, seed: int = 0) -> list[Sweep]:
    """The curves the page draws; the occluder sweep grows a patch of the user's fill at the
    user's position (size 0 -> 0.7 of the short side)."""

    def grid(end: float, start: float = 0.0) -> tuple[float, ...]:
        return tuple(float(v) for v in np.round(np.linspace(start, end, steps), 4))

    return [
        Sweep("occluder size", "side / short side", grid(0.7),
              lambda im, v: occlude(im, replace(occ, size=v), seed=seed)),
        Sweep("brightness down", "exposure factor", grid(0.08, 1.0), lambda im, v: brightness(im, v)),
        Sweep("brightness up", "exposure factor", grid(4.0, 1.0), lambda im, v: brightness(im, v)),
        Sweep("contrast down", "contrast factor", grid(0.08, 1.0), lambda im, v: contrast(im, v)),
        Sweep("gamma (darker mid-tones)", "gamma", grid(4.0, 1.0), lambda im, v: gamma(im, v)),
        Sweep("colour cast (warm)", "cast", grid(1.0), lambda im, v: relight(im, Lighting(cast=v))),
        Sweep("shadow gradient", "shadow depth", grid(0.95), lambda im, v: relight(im, Lighting(shadow=v))),
        Sweep("Gaussian noise", "sigma (grey levels)", grid(80.0), lambda im, v: add_noise(im, v, seed=seed)),
    ]


def run_sweep(rgb: np.ndarray, curves: Sequence[Sweep], score: Callable[[np.ndarray], np.ndarray], *,
              batch: int = 16, progress: Callable[[float, str], None] | None = None) -> list[dict]:
    """Score every curve's images in batches: rows {curve, parameter, value, strength, score}.

    ``score`` maps an (N, H, W, 3) batch to N numbers (e.g. the probability of the original
    top class). The unchanged image is scored once and shared by every curve's first point;
    ``strength`` is the step's position 0..1 along its curve (one x axis for all curves)."""
    jobs: list[tuple[int, int]] = []  # (curve, step) for every image to score
    for c, curve in enumerate(curves):
        jobs.extend((c, s) for s in range(1, len(curve.values)))
    base = float(np.asarray(score(np.asarray(rgb)[None]))[0])
    scores: dict[tuple[int, int], float] = {}
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        images = np.stack([curves[c].apply(rgb, curves[c].values[s]) for c, s in chunk])
        for job, value in zip(chunk, np.asarray(score(images), dtype=float)):
            scores[job] = float(value)
        if progress:
            done = min(start + batch, len(jobs))
            progress(done / len(jobs), f"Scored {done} of {len(jobs)} images")
    rows = []
    for c, curve in enumerate(curves):
        n = len(curve.values)
        for s, value in enumerate(curve.values):
            rows.append({"curve": curve.name, "parameter": curve.parameter, "value": value,
                         "strength": s / (n - 1) if n > 1 else 0.0,
                         "score": base if s == 0 else scores[(c, s)]})
    return rows


# --- model-facing helpers -------------------------------------------------------------------


def tta_probs(clf, rgb: np.ndarray, *, shift: float = 0.06) -> np.ndarray:
    """Class probabilities averaged over :func:`tta_views` (one batched forward pass)."""
    return np.asarray(clf.probs(tta_views(rgb, shift=shift))).mean(axis=0)


@dataclass(frozen=True)
class OcclusionMap:
    """captum ``Occlusion`` of the probability of ``target``: how much the probability drops
    when a grey (dataset-mean) window covers each place. ``drop`` is at the network's input
    size; ``seen`` is the RGB image the network saw (same size)."""

    drop: np.ndarray  # (S, S) float32, positive = covering here lowers the probability
    seen: np.ndarray
    target: int
    window: int
    stride: int
    evaluations: int


def occlusion_geometry(side: int, window_frac: float, stride_frac: float) -> tuple[int, int]:
    """(window, stride) in pixels for a ``side`` x ``side`` input: at least 2 and 1 px, the
    stride never longer than the window (so every pixel is covered at least once)."""
    window = max(2, min(side, int(round(window_frac * side))))
    return window, max(1, min(window, int(round(stride_frac * side))))


def occlusion_windows(side: int, window: int, stride: int) -> int:
    """How many window positions captum evaluates on a ``side`` x ``side`` input."""
    per_axis = (side - window) // stride + 1
    return per_axis * per_axis


def occlusion_map(clf, rgb: np.ndarray, target: int, *, window_frac: float = 0.25, stride_frac: float = 0.125,
                  per_eval: int = 16) -> OcclusionMap:
    """captum ``Occlusion`` on softmax probabilities, window and stride as fractions of the side.

    The baseline is 0 in normalised space, i.e. the dataset's mean colour. Holds the
    model's lock (captum runs the shared model many times)."""
    import torch
    from captum.attr import Occlusion

    from core.hooks import lock_for

    unit = clf.unit(rgb)
    side = int(min(unit.shape[-2:]))
    window, stride = occlusion_geometry(side, window_frac, stride_frac)
    x = clf.normalise(unit)

    def forward(batch):
        return torch.softmax(clf.model(batch), dim=1)

    with lock_for(clf.model), torch.no_grad():
        attr = Occlusion(forward).attribute(x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                                            target=int(target), baselines=0.0, perturbations_per_eval=per_eval)
    drop = attr[0].sum(dim=0).div(3.0).float().cpu().numpy()  # every channel got the same value
    evaluations = occlusion_windows(side, window, stride)
    return OcclusionMap(drop.astype(np.float32), clf.to_rgb(unit), int(target), window, stride, evaluations)


def overlay_signed(rgb: np.ndarray, values: np.ndarray, *, alpha: float = 0.6) -> np.ndarray:
    """Red where ``values`` > 0, blue where < 0, opacity growing with |value| / max|value|."""
    v = np.asarray(values, np.float32)
    scale = float(np.abs(v).max()) or 1.0
    a = (np.abs(v) / scale * alpha)[..., None]
    colour = np.where(v[..., None] >= 0, np.float32([220, 30, 30]), np.float32([30, 80, 220]))
    out = rgb[..., :3].astype(np.float32) * (1 - a) + colour * a
    return np.rint(out).astype(np.uint8)


def best_scores(dets, boxes: np.ndarray, labels: np.ndarray, *, iou: float = 0.5) -> np.ndarray:
    """For each reference box: the best score among detections of its class overlapping it by
    IoU >= ``iou`` (0 where none does). ``dets`` is a ``core.detection.Detections``."""
    import torch
    from torchvision.ops import box_iou

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.zeros(len(boxes), np.float32)
    if len(dets) == 0 or len(boxes) == 0:
        return out
    overlaps = box_iou(torch.as_tensor(boxes), torch.as_tensor(dets.boxes).float()).numpy()
    for i, label in enumerate(np.asarray(labels)):
        ok = (overlaps[i] >= iou) & (dets.labels == label)
        if ok.any():
            out[i] = float(dets.scores[ok].max())
    return out


def covered_fraction(boxes: np.ndarray, patch: tuple[int, int, int, int]) -> np.ndarray:
    """For each xyxy box: the fraction of its area under the occluder ``patch`` (x1, y1, x2, y2)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    px1, py1, px2, py2 = (float(v) for v in patch)
    iw = np.clip(np.minimum(boxes[:, 2], px2) - np.maximum(boxes[:, 0], px1), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], py2) - np.maximum(boxes[:, 1], py1), 0, None)
    area = np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9, None)
    return (iw * ih / area).astype(np.float32)


def hottest_spot(drop: np.ndarray, window: int = 1) -> tuple[float, float]:
    """Centre (x, y), as fractions of the width and height rounded to 0.01, of the ``window``-px
    square whose summed drop is largest (where one occluder of that size hurts most)."""
    import cv2

    h, w = drop.shape
    k = max(1, min(int(window), h, w))
    summed = cv2.boxFilter(np.asarray(drop, np.float32), -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
    half = k // 2  # keep the whole square inside the image
    inner = np.full_like(summed, -np.inf)
    inner[half:h - (k - half) + 1, half:w - (k - half) + 1] = summed[half:h - (k - half) + 1, half:w - (k - half) + 1]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return float(round((x + 0.5) / w, 2)), float(round((y + 0.5) / h, 2))

