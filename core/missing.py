"""Missing data: seeded masks that remove pixels, ways to fill the gaps, and how much a
classifier (plain or trained with random erasing) suffers when pixels are missing.

    mask = MaskSpec("blocks", blocks=6, block_size=0.15, seed=0).build((h, w))   # bool, True = missing
    filled = fill(rgb, mask, "telea", radius=3)          # zeros | mean | telea | ns
    psnr(filled, rgb, where=mask)                         # quality on the missing pixels only
    comparison = compare_erasing(ErasingSettings(), progress=..., deadline=...)

Masks are exact where they can be: ``pixel_mask`` removes exactly ``round(fraction * h * w)``
pixels, ``blocks_to_fraction`` adds random squares and trims the last one so the count is
exact too, ``stripe_mask`` drops whole bands of ``height`` rows (exact when ``height``
divides the image height). Every mask is a function of its arguments and seed only.

No Streamlit here; OpenCV and torch are imported inside the functions that need them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.metrics import psnr  # noqa: F401  (re-exported: psnr(a, b, where=mask) over the missing pixels)

MASK_KINDS = ("pixels", "blocks", "stripes")
MASK_TITLES = {"pixels": "Random pixels", "blocks": "Random blocks", "stripes": "Stripes (scan-line dropout)"}
STRATEGIES = ("zeros", "mean", "telea", "ns")
STRATEGY_TITLES = {"zeros": "Zeros", "mean": "Per-channel mean", "telea": "Inpainting (Telea)",
                   "ns": "Inpainting (Navier-Stokes)"}
INPAINTING = ("telea", "ns")


# --- masks --------------------------------------------------------------------------------

def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(int(seed))


def _check_fraction(fraction: float) -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return fraction


def pixel_mask(shape: tuple[int, int], fraction: float, seed: int = 0) -> np.ndarray:
    """Exactly ``round(fraction * h * w)`` pixels missing, chosen uniformly at random."""
    h, w = shape
    n = int(round(_check_fraction(fraction) * h * w))
    mask = np.zeros(h * w, dtype=bool)
    mask[_rng(seed).permutation(h * w)[:n]] = True
    return mask.reshape(h, w)


def block_mask(shape: tuple[int, int], count: int, size: int, seed: int = 0) -> np.ndarray:
    """The union of ``count`` random ``size`` x ``size`` squares, each fully inside the image
    (they may overlap, so the missing fraction is at most ``count * size**2 / (h * w)``)."""
    h, w = shape
    if count < 0 or size < 1:
        raise ValueError("count must be >= 0 and size >= 1")
    size = min(int(size), h, w)
    rng = _rng(seed)
    mask = np.zeros((h, w), dtype=bool)
    for _ in range(int(count)):
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        mask[y:y + size, x:x + size] = True
    return mask


def blocks_to_fraction(shape: tuple[int, int], fraction: float, size: int, seed: int = 0) -> np.ndarray:
    """Random ``size`` x ``size`` squares until exactly ``round(fraction * h * w)`` pixels are
    missing (the last square is trimmed, in raster order, to hit the count)."""
    h, w = shape
    target = int(round(_check_fraction(fraction) * h * w))
    size = max(1, min(int(size), h, w))
    rng = _rng(seed)
    mask = np.zeros((h, w), dtype=bool)
    covered = 0
    while covered < target:
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        new = np.zeros((h, w), dtype=bool)
        new[y:y + size, x:x + size] = True
        new &= ~mask
        fresh = np.flatnonzero(new)
        take = fresh[: target - covered]
        mask.flat[take] = True
        covered += len(take)
    return mask


def stripe_mask(shape: tuple[int, int], fraction: float, height: int = 1, seed: int = 0) -> np.ndarray:
    """Scan-line dropout: the rows are cut into bands of ``height`` rows and
    ``round(fraction * bands)`` whole bands, chosen at random, are missing."""
    h, w = shape
    if height < 1:
        raise ValueError("height must be >= 1")
    bands = math.ceil(h / height)
    n = int(round(_check_fraction(fraction) * bands))
    rows = np.zeros(h, dtype=bool)
    for b in _rng(seed).permutation(bands)[:n]:
        rows[b * height:(b + 1) * height] = True
    return np.repeat(rows[:, None], w, axis=1)


def mask_for_fraction(kind: str, shape: tuple[int, int], fraction: float, seed: int = 0, *,
                      block_side: float = 0.25, stripe_height: int = 2) -> np.ndarray:
    """A ``kind`` mask removing ``fraction`` of the pixels (what the robustness curve sweeps).
    ``block_side`` is the square's side as a fraction of the image's shorter side."""
    if kind == "pixels":
        return pixel_mask(shape, fraction, seed)
    if kind == "blocks":
        return blocks_to_fraction(shape, fraction, max(1, round(block_side * min(shape))), seed)
    if kind == "stripes":
        return stripe_mask(shape, fraction, stripe_height, seed)
    raise ValueError(f"unknown mask kind {kind!r}; one of {MASK_KINDS}")


@dataclass(frozen=True)
class MaskSpec:
    """What the page's controls describe (hashable: it keys the caches).

    ``fraction``: pixels or stripes removed; ``blocks`` / ``block_size`` (side as a fraction
    of the image's long side): the blocks mask; ``stripe_height`` in pixels."""

    kind: str = "pixels"
    fraction: float = 0.3
    blocks: int = 6
    block_size: float = 0.15
    stripe_height: int = 4
    seed: int = 0

    def build(self, shape: tuple[int, int]) -> np.ndarray:
        if self.kind == "pixels":
            return pixel_mask(shape, self.fraction, self.seed)
        if self.kind == "blocks":
            return block_mask(shape, self.blocks, max(1, round(self.block_size * max(shape))), self.seed)
        if self.kind == "stripes":
            return stripe_mask(shape, self.fraction, self.stripe_height, self.seed)
        raise ValueError(f"unknown mask kind {self.kind!r}; one of {MASK_KINDS}")

    def describe(self) -> str:
        if self.kind == "blocks":
            return f"{self.blocks} blocks of {self.block_size:.0%} of the long side"
        if self.kind == "stripes":
            return f"{self.fraction:.0%} of {self.stripe_height}-px scan-line bands"
        return f"{self.fraction:.0%} of the pixels"


# --- filling ------------------------------------------------------------------------------

def _as_mask(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError("expected an RGB uint8 image (H, W, 3)")
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match the image {rgb.shape[:2]}")
    return mask


def known_mean(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel mean (3,) of the pixels that are NOT missing."""
    mask = _as_mask(rgb, mask)
    known = rgb[~mask]
    if not len(known):
        raise ValueError("every pixel is missing: there is nothing to take a mean of")
    return known.astype(np.float64).mean(axis=0)


def fill(rgb: np.ndarray, mask: np.ndarray, strategy: str, radius: int = 3) -> np.ndarray:
    """A copy of ``rgb`` whose missing pixels (``mask`` True) are filled by ``strategy``.

    * ``zeros``: black; what a network sees when a sensor returns nothing.
    * ``mean``: each channel's mean over the known pixels (the "neutral" value).
    * ``telea`` / ``ns``: ``cv2.inpaint`` with INPAINT_TELEA (fast marching, Telea 2004) or
      INPAINT_NS (Navier-Stokes, Bertalmio et al. 2001) within ``radius`` pixels.
    Known pixels are never changed."""
    mask = _as_mask(rgb, mask)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {STRATEGIES}")
    out = rgb.copy()
    if not mask.any():
        return out
    if strategy == "zeros":
        out[mask] = 0
    elif strategy == "mean":
        out[mask] = np.clip(np.rint(known_mean(rgb, mask)), 0, 255).astype(np.uint8)
    elif strategy in INPAINTING:
        import cv2

        if mask.all():
            raise ValueError("every pixel is missing: there is nothing to inpaint from")
        if radius < 1:
            raise ValueError("radius must be >= 1")
        flag = cv2.INPAINT_TELEA if strategy == "telea" else cv2.INPAINT_NS
        painted = cv2.inpaint(np.ascontiguousarray(rgb), mask.astype(np.uint8), float(radius), flag)
        out[mask] = painted[mask]
    else:
        raise ValueError(f"unknown strategy {strategy!r}; one of {STRATEGIES}")
    return out


def show_missing(rgb: np.ndarray, mask: np.ndarray, colour=(255, 0, 255)) -> np.ndarray:
    """The image with its missing pixels painted in a loud colour (for display)."""
    mask = _as_mask(rgb, mask)
    out = rgb.copy()
    out[mask] = colour
    return out


@dataclass(frozen=True)
class Filled:
    strategy: str
    image: np.ndarray
    psnr_missing: float  # dB over the missing pixels
    psnr_whole: float  # dB over the whole image
    seconds: float

    @property
    def title(self) -> str:
        return STRATEGY_TITLES[self.strategy]


def fill_and_score(rgb: np.ndarray, mask: np.ndarray, strategy: str, radius: int = 3) -> Filled:
    t0 = time.perf_counter()
    out = fill(rgb, mask, strategy, radius)
    seconds = time.perf_counter() - t0
    return Filled(strategy, out, psnr(out, rgb, where=mask), psnr(out, rgb), seconds)


def reference_table(filled: list[Filled], probs: np.ndarray, original_probs: np.ndarray,
                    categories: tuple[str, ...], reference: int) -> dict[str, list]:
    """Columns for the page's table: one row for the intact image, one per strategy.
    ``probs`` is (len(filled), C); ``reference`` is the class whose confidence is tracked
    (the true class, or the intact image's top class). The original's PSNRs are None (no error)."""
    rows = {"fill": ["Original (nothing missing)"], "PSNR missing (dB)": [None],
            "PSNR whole (dB)": [None], "prediction": [categories[int(np.argmax(original_probs))]],
            "confidence": [float(np.max(original_probs))],
            f"p({categories[reference]})": [float(original_probs[reference])]}
    for f, p in zip(filled, probs):
        rows["fill"].append(f.title)
        rows["PSNR missing (dB)"].append(f.psnr_missing)
        rows["PSNR whole (dB)"].append(f.psnr_whole)
        rows["prediction"].append(categories[int(np.argmax(p))])
        rows["confidence"].append(float(np.max(p)))
        rows[f"p({categories[reference]})"].append(float(p[reference]))
    return rows


# --- training with random erasing vs without ----------------------------------------------

@dataclass(frozen=True)
class ErasingSettings:
    """One comparison: two shapes CNNs trained identically except for random erasing."""

    n_train: int = 1500
    n_test: int = 400
    epochs: int = 6
    seed: int = 0
    erase_p: float = 0.5  # probability that a training image gets one erased rectangle
    erase_max_area: float = 0.2  # largest erased area (fraction of the crop)
    fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    kinds: tuple[str, ...] = ("pixels", "blocks", "stripes")


def erasing_hook(p: float = 0.5, max_area: float = 0.2) -> Callable:
    """A ``core.livetrain.train`` batch hook: torchvision's RandomErasing (value 0, i.e. the
    erased rectangle looks like zero-filled missing data) drawn independently per image
    (a v2 transform called on a whole batch would erase the same rectangle in all of them).
    It draws from torch's global RNG, which ``train`` seeds, so runs are reproducible."""
    import torch
    from torchvision.transforms import v2

    erase = v2.RandomErasing(p=p, scale=(0.02, max_area), ratio=(0.3, 3.3), value=0)

    def hook(model, x, y):
        return torch.stack([erase(img) for img in x])

    return hook


def eval_masks(kind: str, fraction: float, n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size) bool: one mask per test image (image i uses seed ``seed * 100003 + i``),
    identical for every model that is evaluated."""
    return np.stack([mask_for_fraction(kind, (size, size), fraction, seed * 100_003 + i) for i in range(n)])


def filled_batch(images: np.ndarray, masks: np.ndarray, strategy: str = "zeros", radius: int = 3) -> np.ndarray:
    """(N, H, W, 3) uint8 images with their ``masks`` filled by ``strategy`` (see :func:`fill`)."""
    if strategy == "zeros":
        return np.where(masks[..., None], np.uint8(0), images)
    return np.stack([fill(img, m, strategy, radius) if not m.all() else np.zeros_like(img)
                     for img, m in zip(images, masks)])


def to_uint8(x) -> np.ndarray:
    """[0, 1] tensor (N, 3, H, W) -> (N, H, W, 3) uint8 (exact for livetrain's crops)."""
    return (x.permute(0, 2, 3, 1).mul(255.0).round().clamp(0, 255).byte().numpy())


def accuracy_on(model, images: np.ndarray, y, batch: int = 256) -> float:
    """Accuracy of a livetrain model ([0, 1] input) on (N, H, W, 3) uint8 images."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0)
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean())


def robustness_rows(models: dict, images: np.ndarray, y, kinds, fractions, seed: int = 0,
                    fill_with: str = "zeros", progress: Callable[[float, str], None] | None = None,
                    deadline=None) -> list[dict]:
    """[{"model", "mask", "fraction", "accuracy"}]: every model on the same masked test set
    (uint8 images (N, H, W, 3)), the gaps filled by ``fill_with``."""
    rows = []
    size = int(images.shape[1])
    steps = [(k, f) for k in kinds for f in fractions]
    for i, (kind, fraction) in enumerate(steps):
        if deadline is not None:
            deadline.check()
        if progress is not None:
            progress(i / len(steps), f"{MASK_TITLES[kind].lower()}, {fraction:.0%} missing")
        batch = filled_batch(images, eval_masks(kind, fraction, len(images), size, seed), fill_with)
        for name, model in models.items():
            rows.append({"model": name, "mask": kind, "fraction": float(fraction),
                         "accuracy": accuracy_on(model, batch, y)})
    return rows


PLAIN, ERASING = "plain", "random erasing"


@dataclass
class TrainedPair:
    """The two models of one comparison and the held-out crops they are tested on."""

    settings: ErasingSettings
    models: dict  # {PLAIN: model, ERASING: model}
    history: dict[str, list[dict]]  # per model: livetrain history (clean test accuracy per epoch)
    seconds: dict[str, float]
    test_images: np.ndarray  # (N, 64, 64, 3) uint8
    test_labels: object  # (N,) int64 tensor


@dataclass
class ErasingComparison:
    settings: ErasingSettings
    fill_with: str
    rows: list[dict]  # robustness_rows
    history: dict[str, list[dict]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def accuracy(self, model: str, kind: str, fraction: float) -> float:
        return next(r["accuracy"] for r in self.rows
                    if r["model"] == model and r["mask"] == kind and abs(r["fraction"] - fraction) < 1e-9)

    def curve(self, kind: str) -> dict[str, list]:
        """{"fraction": [...], PLAIN: [...], ERASING: [...]} for one mask kind."""
        fractions = list(self.settings.fractions)
        table: dict[str, list] = {"fraction": fractions}
        for name in (PLAIN, ERASING):
            table[name] = [self.accuracy(name, kind, f) for f in fractions]
        return table


def train_pair(settings: ErasingSettings, *, data=None, progress: Callable[[float, str], None] | None = None,
               deadline=None) -> TrainedPair:
    """Train the plain and the random-erasing model on the same crops, same seed, same loop."""
    from core import livetrain

    report = progress or (lambda frac, text: None)
    if data is None:
        report(0.0, "Drawing the synthetic training and test crops…")
        data = livetrain.shapes_data(n_train=settings.n_train, n_test=settings.n_test, seed=settings.seed)
    hooks = {PLAIN: None, ERASING: erasing_hook(settings.erase_p, settings.erase_max_area)}
    models, history, seconds = {}, {}, {}
    for i, (name, hook) in enumerate(hooks.items()):
        def step(frac, text, i=i, name=name):
            report(min(1.0, 0.05 + 0.475 * (i + frac)), f"Training the {name} model: {text}")

        run = livetrain.train(data, epochs=settings.epochs, seed=settings.seed, batch_hook=hook,
                              progress=step, deadline=deadline)
        models[name], history[name], seconds[name] = run.model, run.history, run.seconds
    return TrainedPair(settings, models, history, seconds, to_uint8(data.x_test), data.y_test)


def evaluate_pair(pair: TrainedPair, fill_with: str = "zeros", *,
                  progress: Callable[[float, str], None] | None = None, deadline=None) -> ErasingComparison:
    """Both models' accuracy vs the missing fraction, for every mask kind of the settings."""
    from core.runtime import torch_threads

    s = pair.settings
    with torch_threads(1):  # like training: two spin-waiting threads on a busy 2-core server are slower
        rows = robustness_rows(pair.models, pair.test_images, pair.test_labels, s.kinds, s.fractions, s.seed,
                               fill_with, progress=progress, deadline=deadline)
    return ErasingComparison(s, fill_with, rows, pair.history, pair.seconds)
