"""A tiny CNN that classifies 64x64 shape crops, trained here in seconds (no download).

It is the offline fallback classifier: pages that explain CNN internals (feature maps,
Grad-CAM, calibration, class imbalance) can always run on it. Layout::

    model.features      nn.Sequential of 4 conv blocks (Conv2d -> BatchNorm2d -> ReLU [-> MaxPool2d])
                        with 8, 16, 32, 64 channels; 64x64 -> 32 -> 16 -> 8 (the last block does not pool)
    model.features[-1]  the last conv block, output (N, 64, 8, 8): the usual Grad-CAM target layer
    model.features[-1][0] == model.last_conv   the last nn.Conv2d
    model.classifier    global max pool -> flatten -> Linear(64, 6)

The head pools with a global *max* ("is this corner/edge detector firing anywhere?"):
on these crops it learns several times faster than average pooling, whose mean over the
8x8 grid is diluted by background cells. Grad-CAM works unchanged on ``features[-1]``.
ReLUs are not in-place, so forward/backward hooks on any layer are safe.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

import cv2
import numpy as np
import torch
from torch import nn

from core.shapes import SHAPE_CLASSES, make_classification_set
from models.checkpoints import Shipped

Progress = Callable[[float, str], None]

FORMAT_VERSION = 1
FILE_NAME = "shapes_cnn.pt"
INPUT_SIZE = 64
MEAN = (0.5, 0.5, 0.5)  # pixel / 255, then (x - MEAN) / STD
STD = (0.25, 0.25, 0.25)
TRAIN_SEED_OFFSET, TEST_SEED_OFFSET = 0, 1_000_003  # held-out images come from another seed



def _block(c_in: int, c_out: int, *, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                               nn.BatchNorm2d(c_out), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ShapesNet(nn.Module):
    """Four conv blocks and a linear head; ~25 k parameters."""

    def __init__(self, num_classes: int = len(SHAPE_CLASSES), width: int = 8):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(3, w, pool=True),  # 64 -> 32
            _block(w, 2 * w, pool=True),  # 32 -> 16
            _block(2 * w, 4 * w, pool=True),  # 16 -> 8
            _block(4 * w, 8 * w, pool=False),  # 8x8 feature maps (Grad-CAM target)
        )
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes))

    @property
    def last_conv(self) -> nn.Conv2d:
        """The last convolution (``features[-1][0]``)."""
        return self.features[-1][0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for normalised images (N, 3, 64, 64)."""
        return self.classifier(self.features(x))


# --- pre-processing and inference ------------------------------------------------------


def preprocess(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 image (H, W, 3), grey (H, W) or batch (N, H, W, 3) -> float tensor (N, 3, 64, 64)."""
    batch = rgb if rgb.ndim == 4 else rgb[None]  # one image: (H, W, 3) or grey (H, W)
    out = []
    for img in batch:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = img[..., :3]  # drop alpha if any
        if img.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            shrink = min(img.shape[:2]) > INPUT_SIZE
            img = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out.append(img)
    x = torch.from_numpy(np.ascontiguousarray(np.stack(out))).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def predict_proba(model: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Class probabilities: (C,) for one image, (N, C) for a batch (N, H, W, 3)."""
    was_training = model.training
    model.eval()
    probs = torch.softmax(model(preprocess(rgb)), dim=1).numpy()
    model.train(was_training)
    return probs if rgb.ndim == 4 else probs[0]


# --- training ----------------------------------------------------------------------------


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 512]).argmax(1) for i in range(0, len(x), 512)])
    return float((pred == y).float().mean())


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the previous count.

    Training uses one thread on purpose: on a 2-core machine where anything else is busy
    (the Streamlit server, another page), two OpenMP threads spin-wait on each other and a
    10-second job took 150 s; one thread is slower only when the machine is idle.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_shapes_cnn(*, seed: int = 0, n_train: int = 2000, n_test: int = 600, epochs: int = 5,
                     batch_size: int = 32, lr: float = 1e-2, classes: tuple[int, ...] | None = None,
                     progress: Progress | None = None) -> tuple[ShapesNet, dict]:
    """Train ShapesNet on synthetic crops; returns (model in eval mode, metrics).

    Deterministic for a given seed: initialisation uses a forked global RNG (restored
    afterwards, so other threads' random streams are not disturbed) and shuffling its own
    generator. Held-out accuracy is measured on images drawn from a different seed.
    ``classes`` (indices into SHAPE_CLASSES) trains on those shapes only, as outputs
    0..len(classes)-1 in that order (the Transfer learning page's "other task" backbone).
    """
    t0 = time.perf_counter()
    report = progress or (lambda frac, msg: None)
    report(0.0, "drawing training images")
    x_img, y_np = make_classification_set(n_train, seed=seed + TRAIN_SEED_OFFSET, size=INPUT_SIZE, classes=classes)
    xt_img, yt_np = make_classification_set(n_test, seed=seed + TEST_SEED_OFFSET, size=INPUT_SIZE, classes=classes)
    if classes is not None:  # original class index -> output index
        lookup = np.full(len(SHAPE_CLASSES), -1, dtype=np.int64)
        lookup[list(classes)] = np.arange(len(classes))
        y_np, yt_np = lookup[y_np], lookup[yt_np]
    x, y = preprocess(x_img), torch.from_numpy(y_np)
    xt, yt = preprocess(xt_img), torch.from_numpy(yt_np)

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        model = ShapesNet(num_classes=len(classes) if classes is not None else len(SHAPE_CLASSES))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        steps = epochs * ((n_train + batch_size - 1) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        loss_fn = nn.CrossEntropyLoss()
        epoch_losses = []
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n_train, generator=gen)
            total = 0.0
            for i in range(0, n_train, batch_size):
                idx = order[i:i + batch_size]
                loss = loss_fn(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            epoch_losses.append(round(total / n_train, 4))
            report((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}: loss {total / n_train:.3f}")
        train_acc, test_acc = _accuracy(model, x, y), _accuracy(model, xt, yt)
    metrics = {
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "n_train": n_train,
        "n_test": n_test,
        "epochs": epochs,
        "seed": seed,
        "classes": [SHAPE_CLASSES[c] for c in (classes if classes is not None else range(len(SHAPE_CLASSES)))],
        "train_seconds": round(time.perf_counter() - t0, 2),
        "epoch_losses": epoch_losses,
    }
    return model.eval(), metrics


# --- the shipped file ------------------------------------------------------------------------


def evaluate_shapes_cnn(model: ShapesNet, *, seed: int = 0, n_test: int = 600,
                        classes: tuple[int, ...] | None = None) -> dict:
    """Held-out accuracy on ``n_test`` crops drawn from ``seed``'s test stream (as in training)."""
    xt_img, yt_np = make_classification_set(n_test, seed=seed + TEST_SEED_OFFSET, size=INPUT_SIZE, classes=classes)
    if classes is not None:
        lookup = np.full(len(SHAPE_CLASSES), -1, dtype=np.int64)
        lookup[list(classes)] = np.arange(len(classes))
        yt_np = lookup[yt_np]
    with torch_threads(1):
        return {"test_accuracy": _accuracy(model, preprocess(xt_img), torch.from_numpy(yt_np))}


def crops_fingerprint(*, seed: int, classes: tuple[int, ...] | None = None) -> str:
    """Digest of the first 16 training crops the generator draws for ``seed``."""
    from models.checkpoints import fingerprint

    return fingerprint(*make_classification_set(16, seed=seed + TRAIN_SEED_OFFSET, size=INPUT_SIZE, classes=classes))


RECIPE = dict(seed=0, n_train=2000, n_test=600, epochs=5)

SHIPPED = Shipped(
    name="shapes-cnn", recipe=RECIPE, train=train_shapes_cnn, build=lambda: ShapesNet(),
    evaluate=lambda model: evaluate_shapes_cnn(model, seed=RECIPE["seed"], n_test=RECIPE["n_test"]),
    fingerprint=lambda: crops_fingerprint(seed=RECIPE["seed"]), score="test_accuracy", shown=("test_accuracy",),
    header={"format_version": FORMAT_VERSION, "class_names": list(SHAPE_CLASSES), "input_size": INPUT_SIZE},
    extra={"mean": list(MEAN), "std": list(STD)},
    quick=dict(n_train=256, n_test=64, epochs=2),
)


def load_shapes_cnn() -> ShapesNet:
    """The shipped classifier (eval mode); raises registry.WeightsUnavailable if it is missing."""
    return SHIPPED.load()


def load_metrics() -> dict:
    """The held-out metrics recorded for the shipped classifier."""
    return SHIPPED.metrics()
