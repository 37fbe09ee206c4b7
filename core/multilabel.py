"""Multi-label classification of shape scenes: a sigmoid head vs a softmax head (page Q50).

* Data: :func:`core.shapes.make_multilabel_set` - 96-px scenes with 1-4 shapes, multi-hot
  targets (n, 6). Training and held-out scenes come from disjoint seeds.
* Model: Normalise -> ``ShapesNet(num_classes=6)`` (its global max pool works at 96 px).
* ``sigmoid`` head: six independent yes/no questions, ``BCEWithLogits`` on the multi-hot target.
  ``softmax`` head: one distribution over six classes, cross-entropy against the multi-hot
  target normalised to sum 1 (two shapes -> 0.5 / 0.5). The probabilities sum to 1, so at a
  threshold of 0.5 at most one class can pass: softmax cannot say "circle AND star" with
  confidence. We also score it "top-k by count" (k = the true number of classes in the scene,
  an oracle that a real system does not have) to be fair to it.
* :func:`metrics` - precision, recall, F1 (micro and macro) and Hamming loss for any per-class
  thresholds, from stored probabilities (numpy only): the page's sliders never retrain.

Conventions match scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)`` and
``hamming_loss``: a class with no predicted (or no true) positives scores 0 for that ratio.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from core.jobs import Pacer
from core.livetrain import normalise_layer
from core.shapes import SHAPE_CLASSES

HEADS = ("sigmoid", "softmax")
HEAD_TITLES = {"sigmoid": "sigmoid + BCE (multi-label)", "softmax": "softmax + CE (one distribution)"}
SIZE = 96
N_SHAPES = (1, 4)
TRAIN_SEED, TEST_SEED = 5_000_000, 6_000_000
# The comparison's recipe (compare()'s defaults; the page's controls start here)
N_TRAIN = 800
EPOCHS = 10
THRESHOLD = 0.5  # the curve's decision threshold, and where the page's per-class thresholds start


# --- metrics (numpy) ----------------------------------------------------------------------------


def _ratio(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def decide(probs: np.ndarray, thresholds) -> np.ndarray:
    """Predicted multi-hot (n, C) bool: probability >= the class's threshold."""
    return np.asarray(probs) >= np.asarray(thresholds, dtype=float)[None, :]


def top_k_by_count(probs: np.ndarray, counts) -> np.ndarray:
    """The ``counts[i]`` most probable classes of each row (ties broken by class order)."""
    probs = np.asarray(probs)
    order = np.argsort(-probs, axis=1, kind="stable")
    pred = np.zeros(probs.shape, dtype=bool)
    for i, k in enumerate(np.asarray(counts, dtype=int)):
        pred[i, order[i, :k]] = True
    return pred


def metrics(y_true: np.ndarray, y_pred: np.ndarray, classes=SHAPE_CLASSES) -> dict:
    """Multi-label scores of a predicted multi-hot matrix against the truth (both (n, C)).

    {"micro": {"precision", "recall", "f1"}, "macro": {...}, "hamming_loss", "subset_accuracy",
    "per_class": [{"class", "support", "predicted", "tp", "fp", "fn", "precision", "recall", "f1"}]}"""
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"need two (n, C) arrays of the same shape, got {t.shape} and {p.shape}")
    tp = (t & p).sum(0)
    fp = (~t & p).sum(0)
    fn = (t & ~p).sum(0)
    prec, rec = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    micro = {"precision": float(_ratio(TP, TP + FP)), "recall": float(_ratio(TP, TP + FN)),
             "f1": float(_ratio(2 * TP, 2 * TP + FP + FN))}
    macro = {"precision": float(prec.mean()), "recall": float(rec.mean()), "f1": float(f1.mean())}
    per_class = [{"class": classes[c], "support": int(t[:, c].sum()), "predicted": int(p[:, c].sum()),
                  "tp": int(tp[c]), "fp": int(fp[c]), "fn": int(fn[c]), "precision": float(prec[c]),
                  "recall": float(rec[c]), "f1": float(f1[c])} for c in range(t.shape[1])]
    return {"micro": micro, "macro": macro, "hamming_loss": float((t != p).mean()),
            "subset_accuracy": float((t == p).all(1).mean()), "per_class": per_class}


def scoreboard(result: dict, thresholds) -> dict:
    """{"sigmoid": metrics, "softmax": metrics, "softmax top-k": metrics} for the stored held-out
    probabilities of :func:`compare` at these per-class thresholds (cheap: numpy only)."""
    y = np.asarray(result["targets"])
    out = {h: metrics(y, decide(np.asarray(result["probs"][h]), thresholds)) for h in HEADS}
    out["softmax top-k"] = metrics(y, top_k_by_count(np.asarray(result["probs"]["softmax"]), y.sum(1)))
    return out


# --- data and model -----------------------------------------------------------------------------


CHUNK = 25  # scenes per make_multilabel_set call (about 0.5 s), so progress and Stop stay responsive


def scenes(n: int, seed: int, progress: Callable | None = None, span=(0.0, 1.0), deadline=None):
    """(x float tensor (n, 3, 96, 96) in [0, 1], multi-hot float tensor (n, 6)).

    Drawn with :func:`core.shapes.make_multilabel_set` in chunks of CHUNK scenes, chunk c from
    seed ``seed * 1000 + c`` (so a larger set extends a smaller one), reporting progress."""
    import torch

    from core.shapes import make_multilabel_set

    report = progress or (lambda *a, **k: None)
    images, targets = [], []
    for c, start in enumerate(range(0, n, CHUNK)):
        if deadline is not None:
            deadline.check()
        report(span[0] + (span[1] - span[0]) * start / max(n, 1), f"drawing scenes {start}/{n}")
        im, t = make_multilabel_set(min(CHUNK, n - start), seed=seed * 1000 + c, size=SIZE, n_shapes=N_SHAPES)
        images.append(im)
        targets.append(t)
    x = torch.from_numpy(np.concatenate(images)).permute(0, 3, 1, 2).float().div(255.0)
    return x, torch.from_numpy(np.concatenate(targets))


def dataset(n_train: int, n_test: int, seed: int, progress: Callable | None = None, deadline=None):
    """(x, y, x_test, y_test): training and held-out scenes from disjoint seeds."""
    x, y = scenes(n_train, TRAIN_SEED + seed, progress, (0.0, 0.7), deadline)
    xt, yt = scenes(n_test, TEST_SEED + seed, progress, (0.7, 1.0), deadline)
    return x, y, xt, yt


def scene(seed: int):
    """One scene drawn like the training scenes (core.shapes.Scene)."""
    from core.shapes import make_scene

    return make_scene(seed, size=SIZE, n_shapes=N_SHAPES, min_size=0.22, max_size=0.45, min_visible=0.5)


def make_model(seed: int = 0, width: int = 8, backbone: dict | None = None):
    """Normalise -> ShapesNet(6 outputs). ``backbone``: a state dict for ``features`` (the
    project's trained single-shape classifier); the linear head is always fresh (seeded)."""
    import torch
    from torch import nn

    from core.shapes_net import ShapesNet


    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(normalise_layer(), ShapesNet(num_classes=len(SHAPE_CLASSES), width=width))
    if backbone is not None:
        model[1].features.load_state_dict(backbone)
    return model


def loss_for(head: str) -> Callable:
    import torch.nn.functional as F

    if head == "sigmoid":
        return F.binary_cross_entropy_with_logits
    if head == "softmax":
        def soft_ce(logits, y):
            target = y / y.sum(1, keepdim=True).clamp(min=1.0)
            return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
        return soft_ce
    raise ValueError(f"head must be one of {HEADS}")


def probabilities(model, x, head: str, batch: int = 256) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        logits = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    p = torch.sigmoid(logits) if head == "sigmoid" else torch.softmax(logits, dim=1)
    return p.numpy().astype(np.float64)


def train(head: str, x, y, *, epochs: int = 6, seed: int = 0, width: int = 8, batch_size: int = 32,
          lr: float = 1e-2, progress: Callable | None = None, deadline=None, span=(0.0, 1.0),
          label: str = "", evaluate: Callable | None = None, backbone: dict | None = None, frozen: int = 0,
          x_eval=None):
    """Train a fresh model with the ``head``'s loss. Returns (model, history). Deterministic.

    ``frozen``: the first ``frozen`` conv blocks keep their (``backbone``) weights and run once
    over the training set before the loop (eval mode); only the rest and the head are trained.
    ``evaluate(logits)`` gets the model's logits on ``x_eval`` after every epoch."""
    import torch

    from core.runtime import torch_threads

    report = progress or (lambda *a, **k: None)
    lo, hi = span
    loss_fn = loss_for(head)
    model = make_model(seed, width, backbone)
    net = model[1]
    fixed = net.features[:frozen]
    for p in fixed.parameters():
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]

    def forward(inputs):
        return net.classifier(net.features[frozen:](inputs))

    n = len(x)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    pace = Pacer(deadline)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        with torch.inference_mode():
            fixed.eval()
            feats = torch.cat([fixed(model[0](x[i:i + 128])) for i in range(0, n, 128)]).clone()
            feats_eval = (None if x_eval is None else
                          torch.cat([fixed(model[0](x_eval[i:i + 128])) for i in range(0, len(x_eval), 128)]).clone())
        opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=1e-4)
        steps = epochs * ((n + batch_size - 1) // batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for i in range(0, n, batch_size):
                if pace.due():
                    report(lo + (hi - lo) * (epoch + i / n) / epochs,
                           f"{label}epoch {epoch + 1}/{epochs}: {i}/{n} scenes", partial=history)
                idx = order[i:i + batch_size]
                model.train()
                fixed.eval()
                loss = loss_fn(forward(feats[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            row = {"epoch": epoch + 1, "loss": total / n}
            if evaluate is not None and feats_eval is not None:
                model.eval()
                with torch.inference_mode():
                    row.update(evaluate(forward(feats_eval)))
            history.append(row)
            report(lo + (hi - lo) * (epoch + 1) / epochs, f"{label}epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f}",
                   partial=history)
    return model.eval(), history


def compare(*, backbone: dict | None, n_train: int = N_TRAIN, n_test: int = 300, epochs: int = EPOCHS, seed: int = 0,
            width: int = 8, batch_size: int = 16, frozen: int = 3, lr: float = 1e-2, data=None,
            progress: Callable | None = None, deadline=None) -> dict:
    """Both heads on the same scenes, seed and order. Plain, picklable result::

        {"targets": (n_test, 6), "probs": {head: (n_test, 6)}, "curve": [{"epoch", "model", "micro_f1"}],
         "state": {head: numpy state dict}, "seconds": {head: s}, "total_seconds", "settings"}

    The curve's micro-F1 is at threshold 0.5 on the held-out scenes. ``data``: the
    :func:`dataset` for these (n_train, n_test, seed), when the caller has it cached.

    ``backbone``: a state dict for ``ShapesNet.features`` that every conv block starts from
    (the first ``frozen`` stay fixed): the page passes the shipped shapes CNN's
    (``models.shapes_cnn.pretrained_backbone()``; core loads no model file itself). ``None``:
    every layer starts random and trains (``frozen`` is then ignored). Required, so that
    no caller silently trains from scratch."""
    import torch

    report = progress or (lambda *a, **k: None)
    t0 = time.perf_counter()
    if data is None:
        data = dataset(n_train, n_test, seed, lambda f, text, **k: report(0.05 * f, text), deadline)
    x, y, xt, yt = data
    if len(x) != n_train or len(xt) != n_test:
        raise ValueError("data does not match n_train / n_test")
    targets = yt.numpy().astype(np.float64)
    pretrained = backbone is not None
    out = {"targets": targets, "probs": {}, "curve": [], "state": {}, "seconds": {},
           "settings": {"n_train": n_train, "n_test": n_test, "epochs": epochs, "seed": seed, "width": width,
                        "batch_size": batch_size, "pretrained": pretrained, "lr": lr,
                        "frozen": frozen if pretrained else 0}}
    for j, head in enumerate(HEADS):
        title = HEAD_TITLES[head]
        t = time.perf_counter()

        def evaluate(logits, _head=head):
            p = torch.sigmoid(logits) if _head == "sigmoid" else torch.softmax(logits, dim=1)
            m = metrics(targets, decide(p.numpy(), [THRESHOLD] * len(SHAPE_CLASSES)))
            return {"micro_f1": m["micro"]["f1"]}

        def relay(frac, text, partial=None, _title=title):
            rows = list(out["curve"]) + [{"epoch": r["epoch"], "model": _title, "micro_f1": r["micro_f1"]}
                                         for r in (partial or [])]
            report(frac, text, partial=rows)

        model, hist = train(head, x, y, epochs=epochs, seed=seed, width=width, batch_size=batch_size, lr=lr, progress=relay, deadline=deadline,
                            span=(0.05 + 0.475 * j, 0.05 + 0.475 * (j + 1)), label=f"{head}: ", evaluate=evaluate,
                            backbone=backbone, frozen=frozen if pretrained else 0, x_eval=xt)
        out["curve"] += [{"epoch": r["epoch"], "model": title, "micro_f1": r["micro_f1"]} for r in hist]
        out["probs"][head] = probabilities(model, xt, head)
        out["state"][head] = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
        out["seconds"][head] = time.perf_counter() - t
    out["total_seconds"] = time.perf_counter() - t0
    return out


def load_model(state: dict, width: int = 8):
    import torch

    model = make_model(0, width)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return model.eval()


def to_input(rgb: np.ndarray) -> np.ndarray:
    """Any RGB uint8 image -> its centre square at 96 x 96 (what the network sees)."""
    import cv2

    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side, :3])
    return cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA if side > SIZE else cv2.INTER_LINEAR)


def predict(model, rgb96: np.ndarray, head: str) -> np.ndarray:
    """Class probabilities (6,) of one 96-px RGB uint8 image."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(rgb96[..., :3])).permute(2, 0, 1)[None].float() / 255.0
    return probabilities(model, x, head)[0]
