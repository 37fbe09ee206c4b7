"""Pixel noise, denoisers and PSNR: what the Noise & outliers page does to an image.

    noisy = corrupt(rgb, "gaussian", 25, seed=0)            # seeded: the same call, the same pixels
    psnr(rgb, noisy)                                        # dB; inf for identical images
    clean_again = denoise(noisy, "median")                  # OpenCV median / bilateral / NL-means
    report = compare(rgb, "gaussian", 25, probs=clf.probs, class_index=k, seed=0)

Every corruption takes an RGB uint8 image and returns a new one (the input is never
changed). Strengths are in the units a user reads on the slider: pixel standard deviation
for Gaussian noise (0-255 scale), the fraction of pixels for salt-and-pepper, the relative
standard deviation for speckle (multiplicative), the JPEG quality (lower = stronger) and
the Gaussian blur sigma in pixels. No Streamlit here; OpenCV is imported inside functions.

The second half is the label-noise experiment: ``run_experiment(data, 20, "sce", epochs=18)``
flips 20 % of the training labels (core.livetrain.flip_labels), trains a fresh shapes CNN with
the chosen loss and records its clean-test curve and what it predicts for the flipped crops
(memorised = the wrong label it was taught).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.metrics import mse, psnr  # noqa: F401  (re-exported: this page's PSNR is the lab's one)


@dataclass(frozen=True)
class NoiseKind:
    key: str
    title: str
    unit: str  # what the strength means
    lo: float
    hi: float
    step: float
    default: float
    stronger_is_lower: bool = False  # JPEG: quality 100 is the mildest
    sweep: tuple[float, ...] = ()  # strengths for the "confidence vs strength" curve


NOISE_KINDS: dict[str, NoiseKind] = {
    "gaussian": NoiseKind("gaussian", "Gaussian noise", "standard deviation σ (0-255 pixel scale)",
                          0.0, 100.0, 5.0, 30.0, sweep=(0, 10, 20, 30, 45, 60, 80, 100)),
    "salt_pepper": NoiseKind("salt_pepper", "Salt-and-pepper", "fraction of pixels set to black or white",
                             0.0, 0.5, 0.01, 0.1, sweep=(0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)),
    "speckle": NoiseKind("speckle", "Speckle (multiplicative)", "relative standard deviation",
                         0.0, 1.0, 0.05, 0.3, sweep=(0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)),
    "jpeg": NoiseKind("jpeg", "JPEG compression", "JPEG quality (lower = stronger)",
                      1.0, 100.0, 1.0, 10.0, stronger_is_lower=True, sweep=(100, 70, 40, 20, 10, 5, 3, 1)),
    "blur": NoiseKind("blur", "Gaussian blur", "blur σ in pixels of the working image",
                      0.0, 8.0, 0.5, 2.0, sweep=(0, 0.5, 1, 1.5, 2, 3, 5, 8)),
}

DENOISERS = {
    "median": "Median filter 3×3 (5×5 above 20 % salt-and-pepper)",
    "bilateral": "Bilateral filter (edge-preserving)",
    "nlmeans": "Non-local means (OpenCV fastNlMeansDenoisingColored)",
}


def _check(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# --- measures -----------------------------------------------------------------------


# mse(a, b) and psnr(clean, test): dB, 10 log10(255² / MSE) over all pixels and channels, ``inf``
# when the images are identical: the lab's one implementation (core.metrics), re-exported.


# --- corruptions --------------------------------------------------------------------


def gaussian_noise(rgb: np.ndarray, sigma: float, *, seed: int = 0) -> np.ndarray:
    """Add i.i.d. N(0, sigma²) to every channel of every pixel, clip to [0, 255]."""
    rng = np.random.default_rng(seed)
    return _to_uint8(_check(rgb).astype(np.float32) + rng.normal(0.0, sigma, rgb.shape).astype(np.float32))


def salt_and_pepper(rgb: np.ndarray, fraction: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Set exactly ``round(fraction * H * W)`` pixels (all three channels) to white or black,
    half and half at random. Returns (image, boolean mask of the pixels hit)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be in [0, 1]")
    h, w = _check(rgb).shape[:2]
    rng = np.random.default_rng(seed)
    n = int(round(fraction * h * w))
    hit = rng.choice(h * w, size=n, replace=False)
    value = np.where(rng.random(n) < 0.5, 0, 255).astype(np.uint8)
    out = rgb.reshape(-1, 3).copy()
    out[hit] = value[:, None]
    mask = np.zeros(h * w, dtype=bool)
    mask[hit] = True
    return out.reshape(rgb.shape), mask.reshape(h, w)


def speckle(rgb: np.ndarray, sigma: float, *, seed: int = 0) -> np.ndarray:
    """Multiplicative noise: pixel * (1 + n), n ~ N(0, sigma²) (radar, ultrasound, low light)."""
    rng = np.random.default_rng(seed)
    x = _check(rgb).astype(np.float32)
    return _to_uint8(x * (1.0 + rng.normal(0.0, sigma, rgb.shape).astype(np.float32)))


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` (1-100) and decode again (OpenCV's libjpeg)."""
    import cv2

    quality = int(np.clip(round(quality), 1, 100))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(_check(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def gaussian_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (kernel 6 sigma + 1, odd)."""
    import cv2

    if sigma <= 0:
        return _check(rgb).copy()
    k = 2 * int(math.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(_check(rgb), (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT101)


def corrupt(rgb: np.ndarray, kind: str, strength: float, *, seed: int = 0) -> np.ndarray:
    """One corruption from NOISE_KINDS at ``strength`` (seeded where random)."""
    if kind == "gaussian":
        return gaussian_noise(rgb, strength, seed=seed)
    if kind == "salt_pepper":
        return salt_and_pepper(rgb, strength, seed=seed)[0]
    if kind == "speckle":
        return speckle(rgb, strength, seed=seed)
    if kind == "jpeg":
        return jpeg(rgb, int(strength))
    if kind == "blur":
        return gaussian_blur(rgb, strength)
    raise ValueError(f"unknown noise {kind!r}; one of {sorted(NOISE_KINDS)}")


# --- denoisers ----------------------------------------------------------------------


def noise_sigma(rgb: np.ndarray) -> float:
    """A robust estimate of additive noise σ (0-255 scale) from the finest Laplacian
    residual: the mean absolute response of a zero-sum 3x3 kernel, per channel (Immerkær 1996).
    The bilateral and non-local means filters scale their strength with it."""
    import cv2

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    resp = cv2.filter2D(_check(rgb).astype(np.float32), -1, kernel)[1:-1, 1:-1]  # each channel
    return float(np.sqrt(math.pi / 2.0) * np.mean(np.abs(resp)) / 6.0)


def denoise(rgb: np.ndarray, method: str, *, sigma: float | None = None, salt_fraction: float = 0.0) -> np.ndarray:
    """One of DENOISERS. ``sigma`` (noise level, 0-255) sets the bilateral range and the NL-means
    strength; by default it is estimated from the image (:func:`noise_sigma`)."""
    import cv2

    _check(rgb)
    if method == "median":
        return cv2.medianBlur(rgb, 5 if salt_fraction > 0.2 else 3)
    s = noise_sigma(rgb) if sigma is None else float(sigma)
    s = float(np.clip(s, 3.0, 100.0))
    if method == "bilateral":
        return cv2.bilateralFilter(rgb, d=7, sigmaColor=2.7 * s, sigmaSpace=3.0)
    if method == "nlmeans":
        h = float(np.clip(0.9 * s, 3.0, 60.0))
        return cv2.fastNlMeansDenoisingColored(rgb, None, h=h, hColor=h, templateWindowSize=5, searchWindowSize=13)
    raise ValueError(f"unknown denoiser {method!r}; one of {sorted(DENOISERS)}")


# --- the page's comparison ----------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str  # "clean", "noisy", "median", ...
    title: str
    image: np.ndarray
    psnr: float  # vs the clean image
    confidence: float  # probability of the reference class
    top_index: int
    top_probability: float


@dataclass(frozen=True)
class Comparison:
    kind: str
    strength: float
    class_index: int  # the class whose confidence is tracked
    variants: dict[str, Variant] = field(default_factory=dict)

    def table(self) -> dict[str, list]:
        """Columns for a chart/CSV: variant, PSNR (dB, inf shown as None), confidence."""
        vs = list(self.variants.values())
        return {"variant": [v.title for v in vs],
                "psnr_db": [None if math.isinf(v.psnr) else round(v.psnr, 2) for v in vs],
                "confidence": [round(v.confidence, 4) for v in vs]}


def compare(clean: np.ndarray, kind: str, strength: float, *, probs: Callable[[np.ndarray], np.ndarray],
            class_index: int | None = None, seed: int = 0,
            denoisers: tuple[str, ...] = tuple(DENOISERS)) -> Comparison:
    """Corrupt ``clean``, denoise it with each of ``denoisers``, and score every version:
    PSNR against ``clean`` and the classifier's probability (``probs``: a batch (N, H, W, 3)
    -> (N, C)) of ``class_index`` (default: the clean image's top class)."""
    _check(clean)
    noisy = corrupt(clean, kind, strength, seed=seed)
    images = {"clean": ("Clean", clean), "noisy": (f"{NOISE_KINDS[kind].title}", noisy)}
    fraction = strength if kind == "salt_pepper" else 0.0
    for d in denoisers:
        images[d] = (f"{d_title(d)}", denoise(noisy, d, salt_fraction=fraction))
    p = np.asarray(probs(np.stack([img for _, img in images.values()])))
    k = int(np.argmax(p[0])) if class_index is None else int(class_index)
    variants = {name: Variant(name, title, img, psnr(clean, img), float(p[i, k]), int(np.argmax(p[i])),
                              float(np.max(p[i])))
                for i, (name, (title, img)) in enumerate(images.items())}
    return Comparison(kind, float(strength), k, variants)


def d_title(method: str) -> str:
    return {"median": "Median", "bilateral": "Bilateral", "nlmeans": "Non-local means"}[method]


def sweep(clean: np.ndarray, kind: str, *, probs: Callable[[np.ndarray], np.ndarray], class_index: int,
          seed: int = 0, strengths: tuple[float, ...] | None = None,
          with_median: bool = True) -> dict[str, list]:
    """Confidence in ``class_index`` and PSNR as the corruption grows: {"strength": [...],
    "noisy": [...], "median": [...], "psnr_noisy": [...], "psnr_median": [...]} (one batch)."""
    levels = tuple(strengths or NOISE_KINDS[kind].sweep)
    noisy = [corrupt(clean, kind, s, seed=seed) for s in levels]
    images = list(noisy)
    if with_median:
        images += [denoise(n, "median", salt_fraction=s if kind == "salt_pepper" else 0.0)
                   for n, s in zip(noisy, levels)]
    p = np.asarray(probs(np.stack(images)))[:, class_index]
    out: dict[str, list] = {"strength": [float(s) for s in levels], "noisy": [float(v) for v in p[:len(levels)]],
                            "psnr_noisy": [psnr(clean, n) for n in noisy]}
    if with_median:
        out["median"] = [float(v) for v in p[len(levels):]]
        out["psnr_median"] = [psnr(clean, m) for m in images[len(levels):]]
    return out


# --- label noise: the same shapes CNN trained on flipped labels -------------------------

NUM_SHAPE_CLASSES = 6
# The page's experiment: a small training set trained for many epochs, the regime in which a
# network memorises its wrong labels (about 15 s per model on one core). With 1500 crops x 6
# epochs it has no time to memorise, and every loss that bounds the pull of a wrong label
# (smoothing, SCE, GCE, small-loss trimming) only learned more slowly than plain CE there.
LABEL_TRAIN, LABEL_TEST, LABEL_EPOCHS = 600, 400, 18
LABEL_NOISE_DEFAULT = 20  # % of training labels flipped
LABEL_LOSSES = {
    "ce": "plain cross-entropy",
    "smooth": "label smoothing 0.2",
    "sce": "symmetric cross-entropy (α = 1, β = 1)",
}
# alpha * CE + beta * reverse CE. beta = 1 (reverse CE = 9.2 x MAE here) memorised fewest flips for
# the least lost learning speed on this model; alpha = 0.1 (the paper's CIFAR-10 setting) and
# beta = 2 learned too slowly in 18 epochs.
SCE_ALPHA, SCE_BETA = 1.0, 1.0


def label_loss(kind: str) -> Callable:
    """The loss callable for one of LABEL_LOSSES (core.livetrain.loss_function, tuned here)."""
    from core.livetrain import loss_function

    if kind == "sce":
        return loss_function("sce", NUM_SHAPE_CLASSES, alpha=SCE_ALPHA, beta=SCE_BETA)
    if kind in ("ce", "smooth"):
        return loss_function(kind, NUM_SHAPE_CLASSES)
    raise ValueError(f"unknown loss {kind!r}; one of {sorted(LABEL_LOSSES)}")


@dataclass(frozen=True)
class LabelNoiseRun:
    """One trained model's record (small: no weights, a few thousand numbers)."""

    noise_pct: int
    loss: str
    seed: int
    history: tuple[dict, ...]  # per epoch: epoch, loss, test_accuracy
    seconds: float
    flipped: np.ndarray  # indices of training crops whose label was changed
    given: np.ndarray  # the (wrong) label each flipped crop was trained with
    true: np.ndarray  # its real class
    predicted: np.ndarray  # the trained model's prediction for each flipped crop
    train_accuracy_noisy: float  # agreement with the labels it was trained on (all crops)

    @property
    def test_accuracy(self) -> float:
        return float(self.history[-1]["test_accuracy"]) if self.history else float("nan")

    @property
    def memorised(self) -> float:
        """Fraction of flipped crops the model predicts with their WRONG training label."""
        return float(np.mean(self.predicted == self.given)) if len(self.flipped) else float("nan")

    @property
    def corrected(self) -> float:
        """Fraction of flipped crops the model predicts with their TRUE class."""
        return float(np.mean(self.predicted == self.true)) if len(self.flipped) else float("nan")


def run_experiment(data, noise_pct: int, loss: str, *, epochs: int, seed: int = 0, lr: float = 1e-2,
                   progress=None, deadline=None) -> LabelNoiseRun:
    """Flip ``noise_pct`` % of ``data``'s training labels (core.livetrain.flip_labels, seeded),
    train a fresh shapes CNN on them with ``loss`` and record its clean-test curve and what it
    does with the flipped crops."""
    import torch

    from core import livetrain

    noisy, flipped = livetrain.flip_labels(data.y_train, noise_pct / 100.0, num_classes=NUM_SHAPE_CLASSES,
                                           seed=seed)
    run = livetrain.train(data, epochs=epochs, seed=seed, labels=noisy, loss=label_loss(loss), lr=lr,
                          progress=progress, deadline=deadline)
    run.model.eval()
    with torch.inference_mode():
        pred = torch.cat([run.model(data.x_train[i:i + 512]).argmax(1) for i in range(0, len(data.x_train), 512)])
    idx = torch.nonzero(flipped).flatten()
    return LabelNoiseRun(int(noise_pct), loss, int(seed), tuple(run.history), run.seconds,
                         idx.numpy(), noisy[idx].numpy(), data.y_train[idx].numpy(), pred[idx].numpy(),
                         float((pred == noisy).float().mean()))


def curves(runs: dict[str, LabelNoiseRun]) -> list[dict]:
    """Long-form rows {epoch, run, accuracy} for a line chart of clean test accuracy."""
    return [{"epoch": int(row["epoch"]), "run": name, "accuracy": float(row["test_accuracy"])}
            for name, r in runs.items() for row in r.history]
