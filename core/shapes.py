"""Synthetic "shapes" data: the project's offline stand-in for real photos.

Every page that needs data it cannot download draws it here. A scene is a background
(plain colour, linear gradient, or smooth texture / stripes) with a few flat-coloured
shapes painted on top, one after another. Because we paint the pixels ourselves, the
ground truth is exact:

* ``masks[i]`` are the pixels where shape ``i`` is *visible* (later shapes hide earlier
  ones), so masks never overlap;
* ``boxes[i]`` is the tight box around ``masks[i]`` in pixel-edge coordinates
  ``(x0, y0, x1, y1)``: a mask whose pixels span columns 10..19 has ``x0=10, x1=20``;
* a new shape is only accepted if every earlier shape keeps at least ``min_visible``
  (30 %) of its area, and a shape that cannot be placed is skipped, so no label ever
  points at a sliver and no unlabelled fragment is left in the image.

Everything is deterministic: the same seed and arguments give the same bytes. Only
numpy and OpenCV are used, so this module is cheap to import anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "hexagon", "cross")
BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "textured")

MIN_COLOUR_DISTANCE = 90.0  # RGB distance between a shape and the mean colour around it
_MIN_AREA = 30  # a shape smaller than this many pixels is not worth a label


@dataclass(frozen=True, eq=False)
class Scene:
    """One synthetic image with exact instance annotations."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: np.ndarray  # (N, 4) float32 xyxy, pixel edges, tight around each mask
    labels: np.ndarray  # (N,) int64 indices into SHAPE_CLASSES
    masks: np.ndarray  # (N, H, W) bool, visible pixels of each instance

    @property
    def multi_hot(self) -> np.ndarray:
        """(len(SHAPE_CLASSES),) float32: 1 where the class appears in the scene."""
        out = np.zeros(len(SHAPE_CLASSES), dtype=np.float32)
        out[self.labels] = 1.0
        return out

    @property
    def class_names(self) -> list[str]:
        """The class name of every instance, in drawing order."""
        return [SHAPE_CLASSES[i] for i in self.labels]


# --- geometry -------------------------------------------------------------------------


def _regular_polygon(n: int, start_deg: float = -90.0) -> np.ndarray:
    """``n`` corners on the unit circle, the first at ``start_deg`` (-90: pointing up)."""
    t = np.deg2rad(start_deg) + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    """A star outline alternating between radius 1 and ``inner``."""
    outer = _regular_polygon(2 * points)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return outer * radii[:, None]


def _cross(arm: float = 0.33) -> np.ndarray:
    """A plus sign whose arms are ``2 * arm`` wide, reaching radius ~1."""
    a, b = arm, 0.94  # b chosen so the outer corners lie on the unit circle
    return np.array(
        [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a),
         (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    )


# Unit outlines (circumradius 1, centred at the origin), indexed like SHAPE_CLASSES.
_OUTLINES: tuple[np.ndarray, ...] = (
    _regular_polygon(64),  # circle
    _regular_polygon(4, 45.0),  # square (axis-aligned before rotation)
    _regular_polygon(3),  # triangle
    _star(),  # star
    _regular_polygon(6),  # hexagon
    _cross(),  # cross
)


def shape_polygon(cls: int, *, center: tuple[float, float], diameter: float, angle: float) -> np.ndarray:
    """Corner points (K, 2) int32 of shape ``cls`` with the given outer diameter and rotation."""
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    pts = _OUTLINES[cls] @ rot.T * (diameter / 2.0) + np.asarray(center)
    return np.round(pts).astype(np.int32)


def _fill(height: int, width: int, polygon: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels inside ``polygon`` (no anti-aliasing, so it is exact)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [polygon], 1, lineType=cv2.LINE_8)
    return mask.astype(bool)


# --- colours and backgrounds -----------------------------------------------------------


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One colour from HSV in [0, 1] to float RGB in [0, 255]."""
    hsv = np.array([[[h * 180.0, s * 255.0, v * 255.0]]], dtype=np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _background_colour(rng: np.random.Generator) -> np.ndarray:
    """A muted colour (low saturation) so saturated shapes stand out on it."""
    return _hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.15, 0.95))


def _shape_colour(rng: np.random.Generator, around: np.ndarray) -> np.ndarray:
    """A vivid colour at least MIN_COLOUR_DISTANCE from ``around`` (best of 24 tries)."""
    best, best_dist = None, -1.0
    for _ in range(24):
        colour = _hsv_to_rgb(rng.uniform(), rng.uniform(0.45, 1.0), rng.uniform(0.35, 1.0))
        dist = float(np.linalg.norm(colour - around))
        if dist >= MIN_COLOUR_DISTANCE:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


def make_background(rng: np.random.Generator, height: int, width: int, kind: str) -> np.ndarray:
    """(H, W, 3) float32 background: "plain", "gradient" or "textured" (noise or stripes)."""
    if kind not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {kind!r}")
    base = _background_colour(rng)
    if kind == "plain":
        return np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "gradient":
        other = _background_colour(rng)
        t = np.deg2rad(rng.uniform(0, 360))
        proj = xx * np.cos(t) + yy * np.sin(t)
        proj = (proj - proj.min()) / max(float(np.ptp(proj)), 1.0)
        return base + proj[..., None] * (other - base)
    if rng.uniform() < 0.5:  # smooth colour noise: a coarse random grid, upsampled
        cells = int(rng.integers(3, 9))
        coarse = rng.normal(0.0, 22.0, size=(cells, cells, 3)).astype(np.float32)
        texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    else:  # stripes at a random angle and period
        t = np.deg2rad(rng.uniform(0, 180))
        period = rng.uniform(8, 40)
        wave = np.sin(2 * np.pi * (xx * np.cos(t) + yy * np.sin(t)) / period)
        texture = (wave * rng.uniform(10, 25))[..., None] * np.ones(3, np.float32)
    return np.clip(base + texture, 0, 255).astype(np.float32)


# --- composing a scene -----------------------------------------------------------------


class _SceneBuilder:
    """Paints shapes one by one and keeps track of which instance owns each pixel."""

    def __init__(self, rng: np.random.Generator, height: int, width: int, background: str,
                 *, allow_overlap: bool = True, min_visible: float = 0.3):
        self.rng, self.height, self.width = rng, height, width
        self.allow_overlap, self.min_visible = allow_overlap, min_visible
        self.canvas = make_background(rng, height, width, background)
        self.owner = np.full((height, width), -1, dtype=np.int32)  # -1: background
        self.labels: list[int] = []
        self.areas: list[int] = []  # full (unoccluded) area of each instance

    def fits(self, mask: np.ndarray) -> bool:
        """Whether a new shape with this mask may be painted over the current scene."""
        area = int(mask.sum())
        if area < _MIN_AREA:
            return False
        covered = self.owner[mask]
        covered = covered[covered >= 0]
        if covered.size == 0:
            return True
        if not self.allow_overlap:
            return False
        lost = np.bincount(covered, minlength=len(self.labels))
        visible = np.bincount(self.owner[self.owner >= 0], minlength=len(self.labels)) - lost
        # and never less than one pixel, so min_visible=0 cannot leave an empty, unboxable mask
        return bool(np.all((visible >= self.min_visible * np.asarray(self.areas)) & (visible > 0)))

    def add(self, cls: int, mask: np.ndarray) -> None:
        """Paint shape ``cls`` over ``mask`` in a colour that contrasts with what is around it."""
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        around = self.canvas[ring].mean(axis=0)
        self.canvas[mask] = _shape_colour(self.rng, around)
        self.owner[mask] = len(self.labels)
        self.labels.append(cls)
        self.areas.append(int(mask.sum()))

    def finish(self, noise: float = 0.0) -> Scene:
        """Freeze the scene: image, visible masks and their tight boxes."""
        image = self.canvas
        if noise > 0:
            image = image + self.rng.normal(0.0, noise * 255.0, size=image.shape)
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        n = len(self.labels)
        masks = self.owner[None] == np.arange(n)[:, None, None]
        boxes = np.zeros((n, 4), dtype=np.float32)
        for i, m in enumerate(masks):
            ys, xs = np.nonzero(m)
            boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return Scene(image=image, boxes=boxes, labels=np.asarray(self.labels, dtype=np.int64).reshape(n),
                     masks=masks)


def _class_sampler(rng: np.random.Generator, classes: Sequence[int] | None,
                   class_weights: Sequence[float] | None):
    """A function drawing one class id, from ``classes`` (default all) with ``class_weights``."""
    ids = np.arange(len(SHAPE_CLASSES)) if classes is None else np.asarray(classes, dtype=np.int64)
    if ids.size == 0 or ids.min() < 0 or ids.max() >= len(SHAPE_CLASSES):
        raise ValueError(f"classes must be ids in [0, {len(SHAPE_CLASSES)}), got {classes!r}")
    p = None
    if class_weights is not None:
        p = np.asarray(class_weights, dtype=np.float64)
        if p.shape != ids.shape or p.min() < 0 or p.sum() <= 0:
            raise ValueError("class_weights needs one non-negative weight per class, not all zero")
        p = p / p.sum()
    return lambda: int(rng.choice(ids, p=p))


def _as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))


def _scene(rng: np.random.Generator, *, size: int | tuple[int, int], n_shapes: tuple[int, int],
           classes, class_weights, background: str, min_size: float, max_size: float,
           allow_overlap: bool, noise: float, min_visible: float, tries: int = 30) -> Scene:
    """Scene body shared by :func:`make_scene` and :func:`make_multilabel_set`."""
    height, width = _as_hw(size)
    if not 0 < min_size <= max_size <= 1:
        raise ValueError("need 0 < min_size <= max_size <= 1 (fractions of the shorter side)")
    draw_class = _class_sampler(rng, classes, class_weights)
    builder = _SceneBuilder(rng, height, width, background,
                            allow_overlap=allow_overlap, min_visible=min_visible)
    short = min(height, width)
    for _ in range(int(rng.integers(n_shapes[0], n_shapes[1] + 1))):
        cls = draw_class()
        for _ in range(tries):
            d = rng.uniform(min_size, max_size) * short
            center = (rng.uniform(d / 2, width - d / 2), rng.uniform(d / 2, height - d / 2))
            mask = _fill(height, width, shape_polygon(cls, center=center, diameter=d,
                                                      angle=rng.uniform(0, 360)))
            if builder.fits(mask):
                builder.add(cls, mask)
                break
    return builder.finish(noise)


def make_scene(seed: int, *, size: int | tuple[int, int] = 320, n_shapes: tuple[int, int] = (1, 6),
               classes: Sequence[int] | None = None, class_weights: Sequence[float] | None = None,
               background: str = "textured", min_size: float = 0.12, max_size: float = 0.32,
               allow_overlap: bool = True, noise: float = 0.0, min_visible: float = 0.3) -> Scene:
    """A random scene of ``n_shapes`` (inclusive range) shapes on a ``background``.

    ``size`` is an int or (height, width). ``min_size`` / ``max_size`` are the outer
    diameter of a shape as a fraction of the shorter image side. ``classes`` restricts the
    class ids drawn and ``class_weights`` (one per entry of ``classes``) biases them.
    A shape that cannot be placed in 30 tries (it would hide more than ``1 - min_visible``
    of an earlier shape, or touch one when ``allow_overlap`` is False) is skipped, so a
    scene may hold fewer shapes than asked. ``noise`` is the std of added Gaussian pixel
    noise as a fraction of 255.
    """
    return _scene(np.random.default_rng(seed), size=size, n_shapes=n_shapes, classes=classes,
                  class_weights=class_weights, background=background, min_size=min_size,
                  max_size=max_size, allow_overlap=allow_overlap, noise=noise, min_visible=min_visible)


def make_classification_set(n: int, *, seed: int, size: int = 64, classes: Sequence[int] | None = None,
                            class_weights: Sequence[float] | None = None,
                            background: str = "textured") -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, size, size, 3) uint8 with one roughly centred shape, and labels (n,) int64.

    Image ``i`` depends only on ``(seed, i)``, so a larger set extends a smaller one.
    """
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    labels = np.zeros(n, dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        cls = _class_sampler(rng, classes, class_weights)()
        builder = _SceneBuilder(rng, size, size, background)
        d = rng.uniform(0.45, 0.8) * size
        jitter = rng.uniform(-0.1, 0.1, size=2) * size
        center = np.clip(size / 2 + jitter, d / 2, size - d / 2)
        builder.add(cls, _fill(size, size, shape_polygon(cls, center=tuple(center), diameter=d,
                                                         angle=rng.uniform(0, 360))))
        images[i], labels[i] = builder.finish().image, cls
    return images, labels


def make_multilabel_set(n: int, *, seed: int, size: int = 96, n_shapes: tuple[int, int] = (1, 4),
                        classes: Sequence[int] | None = None, class_weights: Sequence[float] | None = None,
                        background: str = "textured", min_size: float = 0.22,
                        max_size: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scenes with several shapes each, and their multi-hot targets (n, C) float32."""
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    targets = np.zeros((n, len(SHAPE_CLASSES)), dtype=np.float32)
    for i in range(n):
        scene = _scene(np.random.default_rng([seed, i]), size=size, n_shapes=n_shapes,
                       classes=classes, class_weights=class_weights, background=background,
                       min_size=min_size, max_size=max_size, allow_overlap=True, noise=0.0,
                       min_visible=0.5)
        images[i], targets[i] = scene.image, scene.multi_hot
    return images, targets
