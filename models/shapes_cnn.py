"""The shapes CNN's training, shipped checkpoint and loading (the offline fallback classifier).

It is trained here in seconds (no download): pages that explain CNN internals (feature maps,
Grad-CAM, calibration, class imbalance) can always run on it. The architecture and its
pre-processing live in ``core.shapes_net`` (core builds fresh copies without importing
models/); they are re-exported here, so ``from models.shapes_cnn import ShapesNet`` works.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.runtime import torch_threads
from core.shapes import SHAPE_CLASSES, make_classification_set
from core.shapes_net import (  # noqa: F401  (re-exported)
    INPUT_SIZE,
    MEAN,
    STD,
    TEST_SEED_OFFSET,
    TRAIN_SEED_OFFSET,
    ShapesNet,
    _block,
    predict_proba,
    preprocess,
)
from models.checkpoints import Shipped

Progress = Callable[[float, str], None]

FORMAT_VERSION = 1
FILE_NAME = "shapes_cnn.pt"


# --- training ----------------------------------------------------------------------------


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 512]).argmax(1) for i in range(0, len(x), 512)])
    return float((pred == y).float().mean())


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


def pretrained_backbone() -> dict:
    """The conv blocks of the shipped shapes CNN (one centred shape per 64-px crop), as a state
    dict for ``ShapesNet.features``: it already has detectors for the six shapes; the max-pool
    head asks "does it fire anywhere" (``core.multilabel.compare(backbone=...)``)."""
    net = load_shapes_cnn()
    return {k: v.detach().clone() for k, v in net.features.state_dict().items()}
