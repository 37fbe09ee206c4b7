"""Transfer learning, measured: a pretrained backbone reused on a new task with few labels.

The sweep's "pretrained" backbone is the project's own ``shapes-pretext`` network
(``models.shapes_pretext``): a ShapesNet trained only on circles, squares and triangles. The
*target* task is the three shapes it never saw (star, hexagon, cross). With K labelled crops
per target class, three regimes are trained with the same seed, data, batch order, number of
steps and the same freshly initialised 3-way head::

    frozen    backbone frozen (eval mode, no gradients), only the new linear head trains;
              its features are computed once, so this regime costs almost nothing
    finetune  all layers train, starting from the pretrained weights
              (backbone learning rate ``backbone_lr``, head ``lr``)
    scratch   the same architecture from a random initialisation, everything at ``lr``

    data = target_data(max_shots=20, n_test=300, seed=0)
    result = sweep(Recipe(shots=(1, 2, 5, 10, 20)), backbone, progress=..., deadline=...)
    result["rows"]   # [{"shots", "regime", "accuracy", "train_accuracy", "seconds"}, ...]

Accuracy is measured on a fixed held-out set of target crops drawn from a seed no training
set uses. For the user's own images (2-5 classes) :func:`loo_predictions` trains a linear head
on frozen features with leave-one-out, next to the same head on raw pixels; the features are
an ImageNet classifier's (:func:`pooled_features`: EfficientNet-Lite0 by default) or, where
none can be loaded, the shapes-pretext backbone's (:func:`shapes_features`).

No Streamlit here; torch is imported inside functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.jobs import Pacer

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "hexagon", "cross")  # core.shapes (which imports
# OpenCV at the top; this module must not), pinned by a test
SOURCE_CLASSES: tuple[int, ...] = (0, 1, 2)  # models.shapes_pretext.SOURCE_CLASSES (pinned by a test)
TARGET_CLASSES: tuple[int, ...] = (3, 4, 5)  # models.shapes_pretext.TARGET_CLASSES
REGIMES = {"frozen": "frozen backbone + new head", "finetune": "full fine-tuning",
           "scratch": "from scratch (random init)"}
SHOT_CHOICES = (1, 2, 3, 5, 10, 20, 50)
DEFAULT_SHOTS = (1, 2, 5, 10, 20)
TRAIN_SEED_BASE = 5_100_000  # training crops of target class j: seed TRAIN_SEED_BASE + 10 * seed + j
TEST_SEED = 5_900_017  # the fixed held-out target set (no training set uses this seed)
BATCH = 32
MAX_PER_CLASS = 30  # user uploads kept per class
PIXEL_SIDE = 16  # the raw-pixel baseline: a 16x16 colour thumbnail (768 numbers)

Progress = Callable[..., None]


def _quiet(*_a, **_k) -> None:
    return None


@dataclass(frozen=True)
class Recipe:
    shots: tuple[int, ...] = DEFAULT_SHOTS
    steps: int = 40  # optimiser steps per run (same for every regime and shot count)
    n_test: int = 300
    seed: int = 0
    lr: float = 1e-2  # the new head (and every layer from scratch)
    backbone_lr: float = 1e-3  # pretrained layers when fine-tuning

    def __post_init__(self):
        if not self.shots or min(self.shots) < 1:
            raise ValueError("shots must be one or more positive counts")
        if self.steps < 1 or self.n_test < 3:
            raise ValueError("steps must be >= 1 and n_test >= 3")


@dataclass(frozen=True)
class TargetData:
    x_train: object  # (3 * max_shots, 3, 64, 64) normalised tensor, class-major: class j's crops in a block
    y_train: object  # (3 * max_shots,) int64 in 0..2
    x_test: object  # (n_test, 3, 64, 64)
    y_test: object
    max_shots: int

    def subset(self, shots: int):
        """(x, y): the first ``shots`` crops of every class (a larger K extends a smaller one)."""
        import torch

        if not 1 <= shots <= self.max_shots:
            raise ValueError(f"shots must be in 1..{self.max_shots}")
        idx = torch.cat([torch.arange(j * self.max_shots, j * self.max_shots + shots)
                         for j in range(len(TARGET_CLASSES))])
        return self.x_train[idx], self.y_train[idx]


def class_names(classes: tuple[int, ...]) -> list[str]:
    return [SHAPE_CLASSES[c] for c in classes]


def sample_crops(classes: tuple[int, ...], n: int, *, seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` crops (uint8) of the given classes and their labels as indices into SHAPE_CLASSES."""
    from core.shapes import make_classification_set

    return make_classification_set(n, seed=seed, size=size, classes=classes)


def target_crop(index: int, *, n_test: int = 300) -> tuple[np.ndarray, int]:
    """Crop ``index`` of the held-out target set (uint8) and its SHAPE_CLASSES label."""
    from core.shapes import make_classification_set

    if not 0 <= index < n_test:
        raise ValueError(f"index must be in 0..{n_test - 1}")
    x, y = make_classification_set(index + 1, seed=TEST_SEED, classes=TARGET_CLASSES)
    return x[index], int(y[index])


def target_data(*, max_shots: int, n_test: int = 300, seed: int = 0, test=None) -> TargetData:
    """K = ``max_shots`` labelled crops of each target class (from ``seed``) and the fixed test set
    (``test``: that set's (uint8 crops, SHAPE_CLASSES labels) when the caller already has them)."""
    import torch

    from core.shapes import make_classification_set
    from core.shapes_net import preprocess

    xs, ys = [], []
    for j, c in enumerate(TARGET_CLASSES):
        x, _ = make_classification_set(max_shots, seed=TRAIN_SEED_BASE + 10 * seed + j, classes=(c,))
        xs.append(x)
        ys.append(np.full(max_shots, j, dtype=np.int64))
    xt, yt = test if test is not None else make_classification_set(n_test, seed=TEST_SEED, classes=TARGET_CLASSES)
    xt, yt = xt[:n_test], yt[:n_test]
    lookup = {c: j for j, c in enumerate(TARGET_CLASSES)}
    yt = np.array([lookup[int(c)] for c in yt], dtype=np.int64)
    return TargetData(preprocess(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)),
                      preprocess(xt), torch.from_numpy(yt), max_shots)


# --- the three regimes ---------------------------------------------------------------------------


def embed(backbone, x, batch: int = 256):
    """Frozen features (N, C): the backbone's conv blocks and global max pool, in eval mode."""
    import torch

    was = backbone.training
    backbone.eval()
    with torch.inference_mode():
        out = torch.cat([backbone.classifier[:2](backbone.features(x[i:i + batch])) for i in range(0, len(x), batch)])
    backbone.train(was)
    return out.clone()


def fresh_network(seed: int, num_classes: int = len(TARGET_CLASSES)):
    """A randomly initialised ShapesNet (``seed``); its head is also every regime's new head."""
    import torch

    from core.shapes_net import ShapesNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ShapesNet(num_classes=num_classes)


def _batches(n: int, steps: int, seed: int):
    """The same list of index batches for every regime: reshuffle each pass over the data."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    size = min(n, BATCH)
    out, order = [], torch.empty(0, dtype=torch.long)
    while len(out) < steps:
        if len(order) < size:
            order = torch.cat([order, torch.randperm(n, generator=gen)])
        out.append(order[:size])
        order = order[size:]
    return out


def _accuracy(fn, x, y, batch: int = 256) -> float:
    import torch

    with torch.inference_mode():
        pred = torch.cat([fn(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean())


def train_regime(regime: str, backbone, x, y, x_test, y_test, *, steps: int, seed: int, lr: float = 1e-2,
                 backbone_lr: float = 1e-3, features=None, test_features=None,
                 tick: Callable[[], None] = lambda: None) -> dict:
    """Train one regime on (x, y); returns {"accuracy", "train_accuracy", "seconds", "model"}
    (``seconds``: the training steps only, without measuring accuracy).

    ``backbone`` (the pretrained network) is never modified: ``frozen`` reads it under
    inference mode, ``finetune`` trains a copy. ``features`` / ``test_features`` are the
    frozen features of x / x_test when already computed. ``tick`` runs before every step
    (progress, deadline)."""
    import copy

    import torch
    import torch.nn.functional as F

    from core.runtime import torch_threads

    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; one of {list(REGIMES)}")
    t0 = time.perf_counter()
    net = fresh_network(seed)
    batches = _batches(len(x), steps, seed)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        if regime == "frozen":  # a new head on the pretrained features, read once
            feats = embed(backbone, x) if features is None else features
            model, inputs = copy.deepcopy(net.classifier[2]), feats
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        else:
            if regime == "finetune":
                net.features.load_state_dict(backbone.features.state_dict())
                groups = [{"params": net.features.parameters(), "lr": backbone_lr},
                          {"params": net.classifier.parameters(), "lr": lr}]
            else:
                groups = [{"params": net.parameters(), "lr": lr}]
            model, inputs = net, x
            opt = torch.optim.Adam(groups)
        model.train()
        for idx in batches:
            tick()
            loss = F.cross_entropy(model(inputs[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        model.eval()
        if regime == "frozen":
            tfeats = embed(backbone, x_test) if test_features is None else test_features
            acc, train_acc = _accuracy(model, tfeats, y_test), _accuracy(model, feats, y)
        else:
            acc, train_acc = _accuracy(model, x_test, y_test), _accuracy(model, x, y)
    return {"accuracy": acc, "train_accuracy": train_acc, "seconds": seconds, "model": model}


def _warm_up() -> None:
    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1e-3)
    p.sum().backward()
    opt.step()


def sweep(recipe: Recipe, backbone, *, progress: Progress | None = None, deadline=None,
          data: TargetData | None = None) -> dict:
    """Every regime at every shot count of ``recipe``; plain data (lists/dicts) only.

    ``progress(fraction, text, partial=rows_so_far)`` is called at least every 0.5 s;
    ``deadline.check()`` before every optimiser step."""
    report = progress or _quiet
    t0 = time.perf_counter()
    shots = sorted(set(recipe.shots))
    report(0.0, "drawing the target crops", partial=[])
    data = data or target_data(max_shots=shots[-1], n_test=recipe.n_test, seed=recipe.seed)
    report(0.02, "computing the frozen backbone's features once", partial=[])
    feats, test_feats = embed(backbone, data.x_train), embed(backbone, data.x_test)
    _warm_up()  # torch's one-off lazy set-up of the optimiser is not any regime's training time
    # cost of one run ~ steps x batch size; the frozen head is nearly free
    cost = {k: recipe.steps * min(3 * k, BATCH) for k in shots}
    total = 2 * sum(cost.values()) + 1e-9
    done, rows = 0.0, []
    pace = Pacer(deadline)
    for k in shots:
        x, y = data.subset(k)
        idx = [j * data.max_shots + i for j in range(len(TARGET_CLASSES)) for i in range(k)]
        for regime in REGIMES:
            step = [0]
            share = 0.0 if regime == "frozen" else cost[k]
            text = f"{k} per class: {REGIMES[regime]}"

            def tick():
                step[0] += 1
                if pace.due():
                    report(0.05 + 0.95 * (done + share * step[0] / recipe.steps) / total,
                           f"{text}: step {step[0]}/{recipe.steps}", partial=list(rows))

            out = train_regime(regime, backbone, x, y, data.x_test, data.y_test, steps=recipe.steps,
                               seed=recipe.seed, lr=recipe.lr, backbone_lr=recipe.backbone_lr,
                               features=feats[idx], test_features=test_feats, tick=tick)
            done += share
            rows.append({"shots": k, "regime": regime, "label": REGIMES[regime], "accuracy": out["accuracy"],
                         "train_accuracy": out["train_accuracy"], "seconds": out["seconds"]})
            report(0.05 + 0.95 * done / total, f"{text}: {out['accuracy']:.0%} held-out", partial=list(rows))
    return {"rows": rows, "shots": shots, "steps": recipe.steps, "n_test": recipe.n_test, "seed": recipe.seed,
            "chance": 1 / len(TARGET_CLASSES), "total_seconds": time.perf_counter() - t0}


def table_rows(result: dict) -> list[dict]:
    """One row per shot count: accuracy and training seconds of each regime (for a table/CSV)."""
    by = {}
    for r in result["rows"]:
        row = by.setdefault(r["shots"], {"examples per class": r["shots"]})
        row[f"{r['regime']} accuracy"] = round(r["accuracy"], 4)
        row[f"{r['regime']} seconds"] = round(r["seconds"], 3)
    return [by[k] for k in sorted(by)]


# --- the user's own images -----------------------------------------------------------------------


def pixel_features(images: list[np.ndarray], side: int = PIXEL_SIDE) -> np.ndarray:
    """The no-pretraining baseline: each image as a ``side`` x ``side`` colour thumbnail in [0, 1]."""
    import cv2

    return np.stack([cv2.resize(np.ascontiguousarray(im[..., :3]), (side, side), interpolation=cv2.INTER_AREA)
                     .astype(np.float32).ravel() / 255.0 for im in images])


def shapes_features(backbone, images: list[np.ndarray]) -> np.ndarray:
    """The shapes-pretext backbone's 64 max-pooled features of each image (resized to 64 x 64)."""
    from core.shapes_net import preprocess

    return embed(backbone, preprocess(np.stack([_square(im, 64) for im in images]))).numpy()


def pooled_features(clf, images: list[np.ndarray], *, batch: int = 8,
                    tick: Callable[[], None] = lambda: None) -> np.ndarray:
    """Frozen ImageNet features (N, C) from ``clf`` (a core.classifier.Classifier): its last stage
    (``clf.cam_layer``: EfficientNet's ``head``, 1280 channels; ResNet's ``layer4``, 512) averaged
    over all positions, which is the vector its own classifier layer reads. Each image is
    resized whole to the network's input size; the shared model runs under its lock (hooks), with
    one CPU thread (two spin-wait on each other on a busy 2-core server: see core.embeddings.embed).
    ``tick`` runs before every batch (progress, deadline)."""
    import torch

    from core.acceleration import num_threads
    from core.hooks import capture

    device = next(clf.model.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        tick()
        x = clf.tensor(np.stack([clf.resize(im) for im in images[i:i + batch]])).to(device)
        with capture(clf.model, {"last": clf.layers[clf.cam_layer]}) as seen, torch.inference_mode(), \
                num_threads(1):
            clf.model(x)
            out.append(seen.activations["last"].float().mean(dim=(2, 3)).cpu())
    return torch.cat(out).numpy()


def _square(im: np.ndarray, side: int) -> np.ndarray:
    import cv2

    im = np.ascontiguousarray(im[..., :3])
    interp = cv2.INTER_AREA if min(im.shape[:2]) > side else cv2.INTER_LINEAR
    return cv2.resize(im, (side, side), interpolation=interp)


def loo_predictions(feats: np.ndarray, labels: np.ndarray, num_classes: int, *, steps: int = 150,
                    lr: float = 0.05, weight_decay: float = 1e-3,
                    tick: Callable[[], None] = lambda: None) -> np.ndarray:
    """Leave-one-out: image i's label as predicted by a linear softmax head trained on all the others
    (class-balanced cross-entropy, so a class with more uploads does not win by numbers alone).

    All N heads (one per left-out image) train at once as one batched problem (full-batch Adam
    from zero weights, so no seed is involved). Features are standardised with the mean and
    spread of every image: no labels are used for that."""
    import torch
    import torch.nn.functional as F

    from core.runtime import torch_threads

    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n < 2:
        raise ValueError("leave-one-out needs at least two images")
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    x = torch.from_numpy(((feats - mean) / std).astype(np.float32))
    y = torch.from_numpy(labels)
    keep = 1.0 - torch.eye(n)  # fold i trains on every image but i
    onehot = F.one_hot(y, num_classes).float()
    counts = (onehot.sum(0)[None, :] - onehot).clamp(min=1)  # (fold, class): images each fold trains on
    # class-balanced: every class present in a fold weighs the same, however many images it has
    weights = keep / counts.gather(1, y[None, :].expand(n, n))
    weights = weights / (onehot.sum(0)[None, :] - onehot > 0).float().sum(1, keepdim=True)
    w = torch.zeros(n, x.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(n, num_classes, requires_grad=True)
    with torch_threads(1):
        opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            tick()
            logits = torch.einsum("nd,fdc->fnc", x, w) + b[:, None, :]
            ce = F.cross_entropy(logits.reshape(n * n, num_classes), y.repeat(n), reduction="none").view(n, n)
            loss = (ce * weights).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.inference_mode():
            own = torch.einsum("nd,ndc->nc", x, w) + b  # fold i on its left-out image i
    return own.argmax(1).numpy()


def upload_problems(counts: list[int], names: list[str]) -> list[str]:
    """Why the user's classes cannot be trained yet (empty list: they can)."""
    problems = []
    clean = [n.strip().lower() for n in names]
    if any(not n for n in clean):
        problems.append("Every class needs a name.")
    if len(set(clean)) != len(clean):
        problems.append("Two classes have the same name.")
    if any(c < 2 for c in counts):
        problems.append("Every class needs at least 2 images (one to test on, one to learn from).")
    return problems


def decode_files(files: list[tuple[str, bytes]], *, long_side: int = 512) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    """Decode uploaded (name, bytes) pairs with the app's one image decoder.

    Returns (RGB uint8 images at long side <= ``long_side``, [(file name, why it was skipped)]).
    Never raises for a bad file: it is reported and left out."""
    from core.imageio import ImageDecodeError, decode_image, fit_long_side

    images, errors = [], []
    for name, data in files:
        try:
            images.append(fit_long_side(decode_image(data).rgb, long_side))
        except ImageDecodeError as err:
            errors.append((name, str(err)))
    return images, errors
