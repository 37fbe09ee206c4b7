"""Class imbalance (Q17, Q35, Q47): an imbalanced shapes set, four ways to train on it, and the
metrics that tell them apart.

    data = imbalanced_data(n_train=600, ratio=20, minority=3, seed=0)   # star 1/20 as often
    result = compare(data, methods=METHODS, epochs=5, gamma=2.0, seed=0, progress=..., deadline=...)
    result["methods"]["plain CE"]["probs"]        # (n_test, 6) softmax on the BALANCED test set
    scores(result["y_test"], predict(probs, minority, t))   # recall / precision / F1 per class ...

* Training set: ``core.shapes.make_classification_set`` with weight 1 for every class and
  ``1 / ratio`` for the minority class. Test set: exactly ``n_test_per_class`` crops of every
  class (balanced), so the minority recall is measured on as many crops as any other class's,
  and accuracy at the training mix is computed exactly from the per-class recalls
  (:func:`prior_accuracy`) instead of from a handful of minority test crops.
* Every method trains with :func:`core.livetrain.train` from the same initialisation and the
  same shuffling seed for the same number of steps; only the loss or the data order differs:
  plain CE, class-weighted CE (inverse frequency, :func:`inverse_frequency_weights`), softmax
  focal loss (:func:`focal_loss`), oversampling (:func:`oversample_indices`, drawn once).
* Metrics are numpy only: :func:`confusion`, :func:`scores`, :func:`pr_curve`, :func:`predict`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.shapes import SHAPE_CLASSES, make_classification_set

METHODS: tuple[str, ...] = ("plain CE", "class-weighted CE", "focal loss", "oversampling")
NUM_CLASSES = 4  # circle, square, triangle, star: small enough to learn in seconds
CLASSES = SHAPE_CLASSES[:NUM_CLASSES]
TRAIN_SEED, TEST_SEED = 9_100_000, 9_200_000  # data seeds (+ seed), disjoint from other pages'
SIZE, BATCH, LR = 32, 16, 5e-3  # 32-px crops, small batches: enough steps to learn 4 shapes in seconds
MINORITY = CLASSES.index("star")  # the default minority class (the page's default too)


# --- data -------------------------------------------------------------------------------------


def class_mix(ratio: float, minority: int) -> list[float]:
    """Sampling weights: 1 for every class, 1 / ratio for ``minority``."""
    if ratio < 1:
        raise ValueError("ratio must be >= 1")
    if not 0 <= minority < NUM_CLASSES:
        raise ValueError(f"minority must be a class id in [0, {NUM_CLASSES})")
    w = [1.0] * NUM_CLASSES
    w[minority] = 1.0 / ratio
    return w


def prior(ratio: float, minority: int) -> np.ndarray:
    """The training distribution's class probabilities (the mix normalised)."""
    w = np.asarray(class_mix(ratio, minority))
    return w / w.sum()


def train_labels(n_train: int, ratio: float, minority: int, seed: int = 0) -> np.ndarray:
    """The training labels alone, without drawing a pixel (milliseconds, for the live histogram):
    make_classification_set draws crop i's class first from default_rng([seed, i]), so the same
    first draw gives the same label (tests/test_imbalance.py checks they agree)."""
    ids, p = np.arange(NUM_CLASSES), prior(ratio, minority)
    return np.array([int(np.random.default_rng([TRAIN_SEED + seed, i]).choice(ids, p=p)) for i in range(n_train)],
                    dtype=np.int64)


@dataclass(frozen=True)
class ImbalancedData:
    data: object  # core.livetrain.ShapesData: [0, 1] tensors, imbalanced train, balanced test
    ratio: float
    minority: int
    counts: np.ndarray  # (C,) training crops per class


def imbalanced_data(*, n_train: int = 600, ratio: float = 20, minority: int = MINORITY, seed: int = 0,
                    n_test_per_class: int = 60, size: int = SIZE) -> ImbalancedData:
    """``n_train`` training crops of the NUM_CLASSES shapes, ``minority`` (a class id in
    ``CLASSES``) drawn ``ratio`` times less often than each other class, and a balanced test
    set of ``n_test_per_class`` crops per class."""
    import torch

    from core.livetrain import ShapesData

    def tensor(x):
        return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0)

    x_tr, y_tr = make_classification_set(n_train, seed=TRAIN_SEED + seed, size=size, classes=range(NUM_CLASSES),
                                         class_weights=class_mix(ratio, minority))
    xs, ys = [], []
    for c in range(NUM_CLASSES):  # exactly balanced: n_test_per_class crops of every class
        x, y = make_classification_set(n_test_per_class, seed=TEST_SEED + 1000 * seed + c, size=size, classes=[c])
        xs.append(x)
        ys.append(y)
    data = ShapesData(tensor(x_tr), torch.from_numpy(y_tr), tensor(np.concatenate(xs)),
                      torch.from_numpy(np.concatenate(ys)), seed)
    return ImbalancedData(data, float(ratio), int(minority), np.bincount(y_tr, minlength=NUM_CLASSES))


# --- the three remedies -----------------------------------------------------------------------


def inverse_frequency_weights(counts) -> np.ndarray:
    """w_c = N / (C * n_c): inverse frequency, normalised so that the average weight over the
    training crops is 1 (sum_c n_c w_c = N), C = classes present. A class with no crops gets 0."""
    counts = np.asarray(counts, dtype=np.float64)
    n, c = counts.sum(), max(int((counts > 0).sum()), 1)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, n / (c * np.maximum(counts, 1)), 0.0)
    return w


def focal_loss(logits, y, gamma: float = 2.0):
    """Softmax focal loss (Lin et al. 2017, multi-class form): mean of -(1 - p_t)^gamma * log p_t,
    where p_t is the softmax probability of the true class. gamma = 0 is cross-entropy; a larger
    gamma shrinks the loss of crops the model already gets right (p_t near 1), so the rare,
    hard ones carry more of the gradient."""
    import torch

    logp_t = torch.log_softmax(logits, dim=1).gather(1, y.view(-1, 1)).squeeze(1)
    p_t = logp_t.exp()
    return (-(1.0 - p_t).clamp(min=0.0).pow(gamma) * logp_t).mean()


def oversample_indices(labels, n: int | None = None, *, seed: int = 0):
    """``n`` (default len(labels)) indices drawn with replacement, each crop with probability
    proportional to 1 / (crops of its class): every present class is drawn with probability
    1 / (classes present), as torch.utils.data.WeightedRandomSampler would with these weights.
    Deterministic: its own generator seeded with ``seed``."""
    import torch

    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels, minlength=NUM_CLASSES).double()
    weights = 1.0 / counts[labels]
    gen = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights, len(labels) if n is None else n, replacement=True, generator=gen)


def sample_probabilities(labels) -> np.ndarray:
    """The oversampler's draw probability per crop (sums to 1)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.float64)
    w = 1.0 / counts[labels]
    return w / w.sum()


# --- training -----------------------------------------------------------------------------------


def method_run(method: str, imb: ImbalancedData, *, epochs: int, gamma: float, seed: int,
               progress=None, deadline=None):
    """One core.livetrain run for ``method`` (same init and shuffling seed for every method)."""
    import dataclasses

    import torch
    import torch.nn.functional as F

    from core.livetrain import train

    data, k = imb.data, NUM_CLASSES  # the shapes CNN has 6 outputs; the first k are this task's classes
    if method == "plain CE":
        loss = lambda z, y: F.cross_entropy(z[:, :k], y)
    elif method == "class-weighted CE":
        w = torch.tensor(inverse_frequency_weights(imb.counts), dtype=torch.float32)
        loss = lambda z, y: F.cross_entropy(z[:, :k], y, weight=w)
    elif method == "focal loss":
        loss = lambda z, y: focal_loss(z[:, :k], y, gamma)
    elif method == "oversampling":
        loss = lambda z, y: F.cross_entropy(z[:, :k], y)
        idx = oversample_indices(data.y_train, seed=seed)
        data = dataclasses.replace(data, x_train=data.x_train[idx], y_train=data.y_train[idx])
    else:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    return train(data, epochs=epochs, seed=seed, loss=loss, batch_size=BATCH, lr=LR, progress=progress,
                 deadline=deadline)


def held_out_probabilities(model, x, batch: int = 512) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        return torch.cat([torch.softmax(model(x[i:i + batch])[:, :NUM_CLASSES], 1) for i in range(0, len(x), batch)]).numpy()


def compare(imb: ImbalancedData, *, methods=METHODS, epochs: int = 5, gamma: float = 2.0, seed: int = 0,
            progress: Callable | None = None, deadline=None) -> dict:
    """Train every method in ``methods`` and keep its held-out softmax probabilities.

    Returns plain data: {"classes", "minority", "ratio", "counts", "weights", "y_test",
    "methods": {name: {"probs", "history", "seconds"}}, "seconds"}. ``progress(frac, text,
    partial=)`` gets the finished methods' summaries as ``partial``."""
    from core.runtime import torch_threads

    t0 = time.perf_counter()
    report = progress or (lambda *a, **k: None)
    methods = [m for m in METHODS if m in methods]
    out = {"classes": list(CLASSES), "minority": imb.minority, "ratio": imb.ratio,
           "counts": imb.counts.tolist(), "weights": inverse_frequency_weights(imb.counts).tolist(),
           "y_test": imb.data.y_test.numpy().copy(), "methods": {}}
    done: dict[str, dict] = {}
    for k, name in enumerate(methods):
        def step(frac, text, k=k, name=name):
            report((k + frac) / len(methods), f"{name} ({k + 1}/{len(methods)}): {text}", partial=dict(done))

        run = method_run(name, imb, epochs=epochs, gamma=gamma, seed=seed, progress=step, deadline=deadline)
        with torch_threads(1):
            probs = held_out_probabilities(run.model, imb.data.x_test)
        out["methods"][name] = {"probs": probs.astype(np.float32), "history": run.history,
                                "seconds": run.seconds}
        rec = scores(out["y_test"], probs.argmax(1))["recall"]
        done[name] = {"minority_recall": float(rec[imb.minority]), "balanced_accuracy": float(np.mean(rec))}
    out["seconds"] = time.perf_counter() - t0
    return out


# --- metrics (numpy) ------------------------------------------------------------------------------


def predict(probs, minority: int | None = None, threshold: float | None = None) -> np.ndarray:
    """argmax, or with a threshold: ``minority`` when p(minority) >= threshold, otherwise the
    most probable of the other classes."""
    probs = np.asarray(probs)
    if minority is None or threshold is None:
        return probs.argmax(1)
    rest = probs.copy()
    rest[:, minority] = -np.inf
    return np.where(probs[:, minority] >= threshold, minority, rest.argmax(1))


def confusion(y_true, y_pred, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(C, C) counts: row = true class, column = predicted class."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def scores(y_true, y_pred, num_classes: int = NUM_CLASSES) -> dict:
    """Per-class recall, precision, F1 (0 where undefined) and accuracy, balanced accuracy
    (mean recall) and macro-F1."""
    m = confusion(y_true, y_pred, num_classes)
    tp = np.diag(m).astype(np.float64)
    support, predicted = m.sum(1), m.sum(0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"confusion": m, "recall": recall, "precision": precision, "f1": f1,
            "accuracy": float(tp.sum() / max(m.sum(), 1)), "balanced_accuracy": float(recall.mean()),
            "macro_f1": float(f1.mean())}


def prior_accuracy(recall, class_prior) -> float:
    """Expected accuracy on a test set drawn like the training set: sum_c prior_c * recall_c."""
    return float(np.dot(np.asarray(class_prior), np.asarray(recall)))


def pr_curve(scores_, positive) -> dict:
    """Precision-recall curve of one class (one-vs-rest), one point per distinct score used as
    the threshold "predict positive when score >= t", highest threshold first.

    Returns {"threshold", "precision", "recall"} arrays and "ap", the average precision
    sum_k (R_k - R_{k-1}) P_k (the step-wise area, as scikit-learn computes it)."""
    s = np.asarray(scores_, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    tp, fp = np.cumsum(pos), np.cumsum(~pos)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each distinct score
    tp, fp, thr = tp[last].astype(np.float64), fp[last].astype(np.float64), s[last]
    n_pos = max(int(pos.sum()), 1)
    precision, recall = tp / (tp + fp), tp / n_pos
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return {"threshold": thr, "precision": precision, "recall": recall, "ap": ap}


def summary_rows(result: dict, class_prior, threshold: float | None = None) -> list[dict]:
    """One row per method: accuracy at the training mix, balanced accuracy, macro-F1 and the
    minority class's recall, precision (argmax, or with the minority threshold)."""
    y, mino = result["y_test"], result["minority"]
    rows = []
    for name, r in result["methods"].items():
        s = scores(y, predict(r["probs"], mino, threshold))
        rows.append({"method": name, "accuracy_at_training_mix": prior_accuracy(s["recall"], class_prior),
                     "accuracy_balanced_test": s["accuracy"], "balanced_accuracy": s["balanced_accuracy"],
                     "macro_f1": s["macro_f1"], "minority_recall": float(s["recall"][mino]),
                     "minority_precision": float(s["precision"][mino]),
                     "average_precision_minority": pr_curve(r["probs"][:, mino], y == mino)["ap"],
                     "train_seconds": r["seconds"]})
    return rows
