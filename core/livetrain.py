"""Short, seeded training runs of the shapes CNN that pages start in front of the user.

Noise & outliers (label noise vs a robust loss), Adversarial attacks (normal vs adversarial
training) and Missing data (with vs without random erasing) each compare two models trained
the same way except for one thing. They share this loop, so that the one thing is the only
difference::

    data = shapes_data(n_train=1500, n_test=400, seed=0)          # 64-px crops (4 s), cached by the page
    run = train(data, epochs=6, seed=0,
                labels=noisy_labels,                              # optional: replace y_train
                loss="ce" | "smooth" | "sce",                     # plain, label smoothing, symmetric CE
                batch_hook=lambda model, x, y: x_adv,             # optional: change each batch
                evaluate=lambda model: {"robust": ...},           # optional: extra figures per epoch
                progress=lambda frac, text: ..., deadline=deadline)
    run.model, run.history                                        # [{"epoch", "loss", "test_accuracy", ...}]

* Deterministic: the same arguments give the same model and curve (its own generator for
  shuffling, a forked global RNG for initialisation, one torch thread).
* Inputs are [0, 1] tensors (N, 3, 64, 64); the model normalises inside (``ShapesNet`` with
  the classifier's mean/std as a first layer), so attacks and erasing act on pixels.
* ``deadline`` (core.jobs.Deadline) is checked once per batch; ``progress`` is called after
  every epoch and every ``core.jobs.REPORT_EVERY_S`` (a ``Pacer``) within one, so a page's Stop button acts quickly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from core.classifier import SHAPES_MEAN, SHAPES_STD
from core.jobs import Pacer


LOSSES = {"ce": "cross-entropy", "smooth": "cross-entropy with label smoothing 0.2",
          "sce": "symmetric cross-entropy (CE + reverse CE)"}


@dataclass(frozen=True)
class ShapesData:
    x_train: object  # (N, 3, 64, 64) float tensor in [0, 1]
    y_train: object  # (N,) int64 tensor
    x_test: object
    y_test: object
    seed: int


def shapes_data(*, n_train: int = 800, n_test: int = 400, seed: int = 0, size: int = 64) -> ShapesData:
    """Labelled shape crops: training set from ``seed``, test set from a disjoint seed."""
    import torch

    from core.shapes import make_classification_set

    def tensors(n, s):
        x, y = make_classification_set(n, seed=s, size=size)
        return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0), torch.from_numpy(y)

    x_tr, y_tr = tensors(n_train, 7_000_000 + seed)
    x_te, y_te = tensors(n_test, 8_000_000 + seed)
    return ShapesData(x_tr, y_tr, x_te, y_te, seed)


def flip_labels(y, fraction: float, *, num_classes: int, seed: int = 0):
    """A copy of ``y`` in which exactly ``round(fraction * N)`` labels are changed to another
    class (uniformly among the others). Returns (noisy labels, boolean mask of flipped ones)."""
    import torch

    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be in [0, 1]")
    gen = torch.Generator().manual_seed(seed)
    n = len(y)
    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[torch.randperm(n, generator=gen)[: int(round(fraction * n))]] = True
    shift = torch.randint(1, num_classes, (n,), generator=gen)
    noisy = torch.where(flipped, (y + shift) % num_classes, y)
    return noisy, flipped


@lru_cache(maxsize=1)
def _normalise_class():
    import torch
    from torch import nn

    class Normalise(nn.Module):
        """(x - mean) / std with the shapes classifier's constants (buffers, so they move with .to())."""

        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(SHAPES_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(SHAPES_STD).view(1, 3, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    return Normalise


def normalise_layer():
    """The first layer of every live-trained shapes network: [0, 1] pixels -> the classifier's
    normalisation, so attacks, erasing and augmentations act on pixels."""
    return _normalise_class()()


def make_model(seed: int = 0, width: int = 8):
    """A fresh shapes CNN that takes [0, 1] pixels: Normalise -> ShapesNet(width)."""
    import torch
    from torch import nn

    from core.shapes_net import ShapesNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(normalise_layer(), ShapesNet(width=width))


def loss_function(kind: str, num_classes: int, *, alpha: float = 1.0, beta: float = 1.0) -> Callable:
    """``ce``: plain cross-entropy; ``smooth``: label smoothing 0.2; ``sce``: symmetric CE
    (Wang et al. 2019): alpha * CE + beta * reverse CE, whose reverse term, -sum p log q with
    q clipped to 1e-4 (log 0 -> -9.21, so it is 9.21 x the MAE), is bounded: a wrong label
    cannot pull with unbounded force."""
    import torch
    import torch.nn.functional as F

    if kind == "ce":
        return F.cross_entropy
    if kind == "smooth":
        return lambda logits, y: F.cross_entropy(logits, y, label_smoothing=0.2)
    if kind == "sce":
        def sce(logits, y):
            ce = F.cross_entropy(logits, y)
            p = torch.softmax(logits, dim=1).clamp(min=1e-7, max=1.0)
            q = F.one_hot(y, num_classes).float().clamp(min=1e-4, max=1.0)
            rce = (-(p * torch.log(q)).sum(dim=1)).mean()
            return alpha * ce + beta * rce
        return sce
    raise ValueError(f"unknown loss {kind!r}; one of {sorted(LOSSES)}")


def accuracy(model, x, y, batch: int = 512) -> float:
    import torch

    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean())


@dataclass
class Run:
    model: object
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def train(data: ShapesData, *, epochs: int = 6, seed: int = 0, labels=None, loss: str | Callable = "ce",
          batch_size: int = 32, lr: float = 1e-2, width: int = 8,
          batch_hook: Callable | None = None, evaluate: Callable | None = None,
          progress: Callable[[float, str], None] | None = None, deadline=None, model=None,
          partial: bool = False) -> Run:
    """Train a fresh shapes CNN on ``data`` (``labels`` replaces ``data.y_train``; ``loss`` is a
    name from LOSSES or a callable ``(logits, y) -> loss``); see the module doc.
    1500 crops x 6 epochs: about 14 s on one core, 96 % clean test accuracy.
    ``model``: a fresh network taking [0, 1] pixels to train instead of ``make_model(seed, width)``
    (e.g. the Attention page's nets). ``partial``: also pass the history so far to ``progress``
    as ``partial=`` (components.ui.Progress keeps it for a stopped run)."""
    import torch

    from core.runtime import torch_threads

    t0 = time.perf_counter()
    report = progress or (lambda frac, text: None)
    y_train = data.y_train if labels is None else labels
    num_classes = int(max(int(data.y_train.max()), int(data.y_test.max())) + 1)
    num_classes = max(num_classes, 6)
    loss_fn = loss if callable(loss) else loss_function(loss, num_classes)
    model = make_model(seed, width=width) if model is None else model
    extra = (lambda: {"partial": list(run.history)}) if partial else dict
    n = len(data.x_train)
    gen = torch.Generator().manual_seed(seed)
    run = Run(model)
    pace = Pacer(deadline)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        steps = epochs * ((n + batch_size - 1) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for i in range(0, n, batch_size):
                if pace.due():
                    report((epoch + i / n) / epochs, f"epoch {epoch + 1}/{epochs}: {i}/{n} crops", **extra())
                idx = order[i:i + batch_size]
                x, y = data.x_train[idx], y_train[idx]
                if batch_hook is not None:
                    x = batch_hook(model, x, y)
                model.train()
                out = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                out.backward()
                opt.step()
                sched.step()
                total += out.item() * len(idx)
            row = {"epoch": epoch + 1, "loss": total / n,
                   "test_accuracy": accuracy(model, data.x_test, data.y_test)}
            if evaluate is not None:
                model.eval()
                row.update(evaluate(model))
            run.history.append(row)
            report((epoch + 1) / epochs,
                   f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f}, test accuracy {row['test_accuracy']:.1%}",
                   **extra())
    model.eval()
    run.seconds = time.perf_counter() - t0
    return run


def clean_accuracy_curve(runs: dict[str, Run], key: str = "test_accuracy") -> dict[str, list]:
    """{"epoch": [...], name: [...], ...} for a chart of several runs' curves."""
    epochs = max((len(r.history) for r in runs.values()), default=0)
    table: dict[str, list] = {"epoch": list(range(1, epochs + 1))}
    for name, r in runs.items():
        table[name] = [row[key] for row in r.history] + [np.nan] * (epochs - len(r.history))
    return table
