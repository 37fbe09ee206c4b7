"""Data augmentation with torchvision.transforms.v2: image, boxes and masks in ONE call.

    sample = photo_sample(rgb, box=(0.5, 0.5, 0.5, 0.5))     # your photo + a box you place
    sample = scene_sample(seed)                              # synthetic shapes: exact boxes + masks
    settings = (("hflip", 0.5), ("rotate", 30.0), ...)       # which transforms, with their strengths
    draws = augment(sample, settings, seed=0, n=12)          # seeded: same seed -> same draws
    picture = render(draws[0])                               # boxes + mask outlines drawn on

* The image, its boxes (``tv_tensors.BoundingBoxes``) and its masks (``tv_tensors.Mask``)
  go through the same ``v2.Compose`` call, so a flip, a rotation or a crop moves all three
  with the same random parameters. ``ClampBoundingBoxes`` + ``SanitizeBoundingBoxes`` end
  every pipeline: boxes stay inside the image and instances cropped away are dropped
  (with their masks and labels).
* v2 draws its random parameters from torch's global RNG; :func:`augment` forks it and
  seeds it, so a grid is reproducible and does not disturb anybody else's randomness.
* :func:`mix_pair` runs ``v2.MixUp`` / ``v2.CutMix`` on a batch of two images and returns the
  mixed image with the mixed label vector; :func:`stability` summarises a classifier's
  predictions on the draws; :func:`compare` trains the shapes CNN with and without
  augmentation (``core.livetrain.train`` with a ``batch_hook``).

Torch and torchvision are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

# name -> (label, default strength, lo, hi, step, what the strength means)
TRANSFORMS: dict[str, tuple] = {
    "hflip": ("Horizontal flip", 0.5, 0.0, 1.0, 0.05, "probability of flipping"),
    "rotate": ("Rotation", 30.0, 0.0, 180.0, 5.0, "largest angle in degrees (uniform in ±angle)"),
    "crop": ("Random resized crop", 0.5, 0.1, 1.0, 0.05, "smallest crop area as a fraction of the image"),
    "jitter": ("Colour jitter", 0.4, 0.0, 1.0, 0.05, "brightness / contrast / saturation ±strength, hue ±strength/4"),
    "blur": ("Gaussian blur", 2.0, 0.1, 8.0, 0.1, "largest blur sigma in pixels"),
    "noise": ("Gaussian noise", 0.08, 0.0, 0.5, 0.01, "noise std as a fraction of the pixel range"),
    "erase": ("Random erasing", 0.15, 0.02, 0.5, 0.01, "largest erased area (random values) as a fraction"),
    "cutout": ("Cutout", 0.1, 0.02, 0.5, 0.01, "area of the black square as a fraction"),
}
DEFAULT_ON = ("hflip", "rotate", "crop", "jitter")
GRID = (3, 4)  # rows x columns of random draws
WORK_SIDE = 320  # long side of the photo the grid works on

# Training comparison: the recipe applied to each 64-px crop (fixed strengths; see compare()).
TRAIN_AUGS: dict[str, str] = {
    "flips": "horizontal flip and a random multiple of 90 degrees (lossless)",
    "crop": "random resized crop, 60-100 % of the area",
    "jitter": "colour jitter ±0.3 (hue ±0.05)",
    "rotate": "free rotation ±180 degrees (black corners)",
    "erase": "random erasing, up to 15 % of the crop",
}
TRAIN_DEFAULT = ("flips",)
N_TRAIN_CHOICES = (150, 200, 300, 500)
TRAIN_N_DEFAULT = 200
TRAIN_EPOCHS_DEFAULT = 25


@dataclass(frozen=True, eq=False)
class Sample:
    """An image with instances: boxes in pixel edges (x1, y1, x2, y2), labels, per-instance masks."""

    image: np.ndarray  # (H, W, 3) uint8
    boxes: np.ndarray  # (N, 4) float32
    labels: np.ndarray  # (N,) int64
    masks: np.ndarray  # (N, H, W) bool
    categories: tuple[str, ...]


# --- sources ---------------------------------------------------------------------------------


def _fit(rgb: np.ndarray, long_side: int) -> np.ndarray:
    from core.imageio import fit_long_side

    rgb = np.ascontiguousarray(rgb[..., :3])
    return fit_long_side(rgb, long_side) if max(rgb.shape[:2]) > long_side else rgb


def photo_sample(rgb: np.ndarray, box: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.5), *,
                 long_side: int = WORK_SIDE, name: str = "your box") -> Sample:
    """The photo at ``long_side`` with one box given as (centre x, centre y, width, height)
    fractions of the image; its mask is the ellipse inscribed in the box (so a rotation shows
    how a transformed box loosens around the object, which the mask does not)."""
    img = _fit(rgb, long_side)
    h, w = img.shape[:2]
    cx, cy, bw, bh = (float(v) for v in box)
    x1, x2 = np.clip([(cx - bw / 2) * w, (cx + bw / 2) * w], 0, w)
    y1, y2 = np.clip([(cy - bh / 2) * h, (cy + bh / 2) * h], 0, h)
    x1, y1, x2, y2 = (int(round(v)) for v in (x1, y1, x2, y2))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError("the box is too small: give it at least 2 pixels each way")
    yy, xx = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
    rx, ry = (x2 - x1) / 2, (y2 - y1) / 2
    mask = ((xx - (x1 + rx)) / rx) ** 2 + ((yy - (y1 + ry)) / ry) ** 2 <= 1.0
    tight = tight_box(mask)  # the box is the ellipse's tight box (the ellipse fills it edge to edge)
    return Sample(img, np.array([tight], np.float32), np.zeros(1, np.int64), mask[None], (name,))


def scene_sample(seed: int, *, size: int = 256) -> Sample:
    """A synthetic shapes scene with exact boxes and masks (core.shapes.make_scene)."""
    from core.shapes import SHAPE_CLASSES, make_scene

    scene = make_scene(int(seed), size=size, n_shapes=(2, 5))
    return Sample(scene.image, scene.boxes.astype(np.float32), scene.labels.astype(np.int64),
                  scene.masks.astype(bool), tuple(SHAPE_CLASSES))


def plain_sample(rgb: np.ndarray, *, long_side: int = WORK_SIDE) -> Sample:
    """An image without instances (what a classifier sees)."""
    img = _fit(rgb, long_side)
    h, w = img.shape[:2]
    return Sample(img, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros((0, h, w), bool), ())


def tight_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel-edge box (x1, y1, x2 + 1, y2 + 1) around a boolean mask's pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


# --- the pipeline ------------------------------------------------------------------------------


def normalise_settings(settings) -> tuple[tuple[str, float], ...]:
    """A hashable, ordered ((name, strength), ...) with unknown names refused."""
    items = dict(settings)
    unknown = set(items) - set(TRANSFORMS)
    if unknown:
        raise ValueError(f"unknown transforms {sorted(unknown)}; choose from {list(TRANSFORMS)}")
    return tuple((n, float(items[n])) for n in TRANSFORMS if n in items)


def build(settings, size: tuple[int, int]):
    """The v2.Compose for ``settings`` on a (H, W) float image in [0, 1]: geometric transforms
    first (they move boxes and masks), then photometric ones (image only), then erasing, then
    box clamping and sanitising."""
    from torchvision.transforms import v2

    h, w = size
    steps = []
    for name, s in normalise_settings(settings):
        if name == "hflip":
            steps.append(v2.RandomHorizontalFlip(p=s))
        elif name == "rotate":
            steps.append(v2.RandomRotation(degrees=s, interpolation=v2.InterpolationMode.BILINEAR))
        elif name == "crop":
            steps.append(v2.RandomResizedCrop((h, w), scale=(min(s, 1.0), 1.0), antialias=True))
        elif name == "jitter":
            steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(s / 4, 0.5)))
        elif name == "blur":
            k = min(2 * int(np.ceil(3 * s)) + 1, 2 * ((min(h, w) - 1) // 2) + 1)
            steps.append(v2.GaussianBlur(kernel_size=k, sigma=(0.1, s)))
        elif name == "noise":
            steps.append(v2.GaussianNoise(sigma=s, clip=True))
        elif name == "erase":
            steps.append(v2.RandomErasing(p=1.0, scale=(0.02, max(s, 0.02)), value="random"))
        elif name == "cutout":
            steps.append(v2.RandomErasing(p=1.0, scale=(s, s), ratio=(1.0, 1.0), value=0))
    steps += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1.0)]
    return v2.Compose(steps)


def _to_inputs(sample: Sample) -> dict:
    import torch
    from torchvision import tv_tensors

    h, w = sample.image.shape[:2]
    img = torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1).float().div(255.0)
    return {
        "image": tv_tensors.Image(img),
        "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(sample.boxes.astype(np.float32)).reshape(-1, 4),
                                          format="XYXY", canvas_size=(h, w)),
        "masks": tv_tensors.Mask(torch.from_numpy(sample.masks.astype(np.uint8))),
        "labels": torch.from_numpy(sample.labels.astype(np.int64)),
    }


def _from_outputs(out: dict, categories) -> Sample:
    img = (out["image"].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Sample(img, out["boxes"].numpy().astype(np.float32).reshape(-1, 4), out["labels"].numpy().astype(np.int64),
                  out["masks"].numpy().astype(bool), tuple(categories))


def apply(sample: Sample, pipeline) -> Sample:
    """One call of ``pipeline`` on the image, boxes, masks and labels together."""
    with warnings.catch_warnings():  # RandomErasing leaves boxes and masks as they are, and says so
        warnings.simplefilter("ignore", UserWarning)
        out = pipeline(_to_inputs(sample))
    return _from_outputs(out, sample.categories)


def augment(sample: Sample, settings, *, seed: int = 0, n: int = GRID[0] * GRID[1]) -> list[Sample]:
    """``n`` random draws of the pipeline; the same seed gives the same draws."""
    import torch

    from core.runtime import torch_threads

    pipeline = build(settings, sample.image.shape[:2])
    # One thread: on a busy server, torch's thread pool made each small draw 20x slower.
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(int(seed))
        return [apply(sample, pipeline) for _ in range(n)]


# --- drawing ------------------------------------------------------------------------------------


def render(sample: Sample, *, tight: bool = True) -> np.ndarray:
    """Boxes (solid, as v2 transformed them), mask outlines (thin) and, with ``tight``, the
    tight box of each transformed mask (dashed) where it differs from the box by over 1 px."""
    import cv2

    from core.annotate import BoxAnnotator, _dashed_rect, class_colour
    from core.detection import Detections

    out = np.ascontiguousarray(sample.image).copy()
    for label, mask in zip(sample.labels, sample.masks):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 3, cv2.LINE_AA)
        cv2.drawContours(out, contours, -1, class_colour(label), 1, cv2.LINE_AA)
    dets = Detections(sample.boxes.astype(np.float32), np.ones(len(sample.labels), np.float32),
                      sample.labels.astype(np.int64), sample.categories or ("object",))
    out = BoxAnnotator(thickness=2, show_scores=False, show_labels=max(out.shape[:2]) >= 200).annotate(out, dets)
    if tight:
        for box, label, mask in zip(sample.boxes, sample.labels, sample.masks):
            t = np.array(tight_box(mask))
            if mask.any() and np.abs(t - box).max() > 1.0:
                x1, y1, x2, y2 = (int(round(v)) for v in t)
                _dashed_rect(out, (x1, y1), (x2 - 1, y2 - 1), class_colour(label), 1, dash=4)
    return out


def box_looseness(sample: Sample) -> float:
    """Mean IoU between each transformed box and the tight box of its transformed mask
    (1.0: the boxes still fit; lower: rotations made them loose)."""
    import torch
    from torchvision.ops import box_iou

    ious = []
    for box, mask in zip(sample.boxes, sample.masks):
        if mask.any():
            t = torch.tensor([tight_box(mask)], dtype=torch.float32)
            ious.append(float(box_iou(torch.from_numpy(box[None]), t)[0, 0]))
    return float(np.mean(ious)) if ious else float("nan")


# --- MixUp / CutMix --------------------------------------------------------------------------


def shape_crop(seed: int, size: int = 128) -> tuple[np.ndarray, str]:
    """One labelled synthetic shape crop (the partner of a MixUp / CutMix pair) and its class."""
    from core.shapes import SHAPE_CLASSES, make_classification_set

    x, y = make_classification_set(1, seed=int(seed), size=size)
    return x[0], SHAPE_CLASSES[int(y[0])]


def mix_pair(a: np.ndarray, b: np.ndarray, kind: str = "mixup", *, alpha: float = 1.0, seed: int = 0,
             side: int = 224) -> dict:
    """``v2.MixUp`` or ``v2.CutMix`` on the batch [a, b] (both resized to ``side``, labels 0 and 1
    of a 2-class problem). Returns the first mixed image, its label vector (the weight of a and
    of b) and, for CutMix, the share of pixels that came from a."""
    import cv2
    import torch
    from torchvision.transforms import v2

    if kind not in ("mixup", "cutmix"):
        raise ValueError("kind must be 'mixup' or 'cutmix'")
    pair = np.stack([cv2.resize(np.ascontiguousarray(im[..., :3]), (side, side), interpolation=cv2.INTER_AREA)
                     for im in (a, b)])
    x = torch.from_numpy(pair).permute(0, 3, 1, 2).float().div(255.0)
    mix = (v2.MixUp if kind == "mixup" else v2.CutMix)(alpha=float(alpha), num_classes=2)
    from core.runtime import torch_threads

    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(int(seed))
        xm, ym = mix(x.clone(), torch.tensor([0, 1]))
    image = (xm[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    from_a = (xm[0] == x[0]).all(dim=0).float().mean().item() if kind == "cutmix" else None
    return {"image": image, "label": ym[0].numpy().astype(float).tolist(), "from_a": from_a,
            "inputs": (pair[0], pair[1])}


# --- prediction stability -------------------------------------------------------------------


def stability(base: np.ndarray, draws: np.ndarray, categories) -> dict:
    """How a classifier's prediction holds up across augmented draws.

    ``base`` (C,): probabilities on the un-augmented image; ``draws`` (N, C) on each draw.
    Returns the base prediction, each draw's top-1 (name, probability, agrees, probability
    of the base class), the agreement rate, and the mean confidences."""
    base, draws = np.asarray(base, float), np.atleast_2d(np.asarray(draws, float))
    b = int(np.argmax(base))
    tops = draws.argmax(axis=1)
    rows = [{"draw": i + 1, "top1": categories[int(t)], "confidence": float(p[t]), "agrees": bool(t == b),
             "p_base_class": float(p[b])} for i, (t, p) in enumerate(zip(tops, draws))]
    return {"base": categories[b], "base_confidence": float(base[b]), "rows": rows,
            "agreement": float(np.mean(tops == b)) if len(tops) else float("nan"),
            "mean_confidence": float(np.mean(draws.max(axis=1))) if len(tops) else float("nan"),
            "mean_p_base_class": float(np.mean(draws[:, b])) if len(tops) else float("nan"),
            "distinct": len(set(tops.tolist()))}


# --- training with and without augmentation ------------------------------------------------------


def train_pipeline(augs):
    """The per-crop v2 pipeline for the training comparison (names from TRAIN_AUGS)."""
    from torchvision.transforms import v2

    augs = tuple(augs)
    unknown = set(augs) - set(TRAIN_AUGS)
    if unknown:
        raise ValueError(f"unknown training augmentations {sorted(unknown)}")
    steps = []
    if "flips" in augs:
        steps += [v2.RandomHorizontalFlip(), v2.RandomChoice([v2.RandomRotation((a, a)) for a in (0, 90, 180, 270)])]
    if "rotate" in augs:
        steps.append(v2.RandomRotation(180, interpolation=v2.InterpolationMode.BILINEAR))
    if "crop" in augs:
        steps.append(v2.RandomResizedCrop(64, scale=(0.6, 1.0), ratio=(0.8, 1.25), antialias=True))
    if "jitter" in augs:
        steps.append(v2.ColorJitter(0.3, 0.3, 0.3, 0.05))
    if "erase" in augs:
        steps.append(v2.RandomErasing(p=0.5, scale=(0.02, 0.15), value="random"))
    return v2.Compose(steps)


def batch_hook(augs) -> Callable:
    """``(model, x, y) -> x'``: every crop of the batch gets its own random draw of the pipeline
    (v2 on a batch tensor would give the whole batch the same parameters). The randomness is
    torch's global RNG, which core.livetrain.train forks and seeds: the run is reproducible."""
    import torch

    pipeline = train_pipeline(augs)

    def hook(model, x, y):
        return torch.stack([pipeline(xi) for xi in x])

    return hook


def compare(*, n_train: int = 200, epochs: int = 15, seed: int = 0, augs=TRAIN_DEFAULT, n_test: int = 400,
            progress: Callable | None = None, deadline=None) -> dict:
    """The shapes CNN trained twice on the same ``n_train`` crops, same initialisation and order:
    without augmentation and with ``augs``. Plain data for a chart and a cache."""
    from core.livetrain import shapes_data, train

    if not augs:
        raise ValueError("choose at least one augmentation to compare with")
    report = progress or (lambda *a, **k: None)
    t0 = time.perf_counter()
    data = shapes_data(n_train=int(n_train), n_test=int(n_test), seed=int(seed))
    runs, curve = {}, []
    names = (("without augmentation", None), ("with augmentation", batch_hook(augs)))
    for k, (name, hook) in enumerate(names):
        def sub(frac, text, partial=None, k=k, name=name):
            report((k + float(frac)) / len(names), f"{name}: {text}", partial=curve)

        run = train(data, epochs=int(epochs), seed=int(seed), batch_hook=hook, progress=sub, deadline=deadline)
        runs[name] = run
        curve += [{"model": name, "epoch": r["epoch"], "test_accuracy": r["test_accuracy"], "loss": r["loss"]}
                  for r in run.history]
    return {"curve": curve, "final": {n: r.final["test_accuracy"] for n, r in runs.items()},
            "seconds": {n: r.seconds for n, r in runs.items()}, "total_seconds": time.perf_counter() - t0,
            "settings": {"n_train": int(n_train), "epochs": int(epochs), "seed": int(seed), "augs": list(augs),
                         "n_test": int(n_test)}}
