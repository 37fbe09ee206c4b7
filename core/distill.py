"""Knowledge distillation: a small student learns from a larger teacher's soft targets.

Pure functions for the Knowledge distillation page (no Streamlit)::

    softmax_t(logits, T)                      # softened probabilities, numpy
    soft_target_rows(logits, names, temps)    # long-form rows for a bars-per-class-per-T chart
    kd_loss(student, teacher, y, T, alpha)    # alpha*T^2*KL(p_t || p_s) + (1-alpha)*CE  (torch)
    teacher_logits(teacher, x)                # the teacher's logits for the whole training set, once
    compare(data, teacher_logits, ...)        # a KD student and a plain student, same seed/data/epochs
    model_size(model), latency(model, ...)    # parameters, MB and p50/p95 latency of teacher vs student

The two students are trained by :func:`core.livetrain.train` (same loop, optimiser,
schedule, shuffling and initialisation as every other live-training page). The only
difference between them is the loss. The teacher's logits are looked up per batch
through the labels: the students train on ``labels = arange(N)``, so the ``y`` a loss
receives is the batch's *row indices*, from which :func:`kd_objective` takes the true
labels and the precomputed teacher logits.

The teacher is the project's trained shapes CNN (``models.shapes_cnn.ShapesNet``, width 8,
25 038 parameters, trained on 2000 crops); the student is the same architecture at width 4
(6 474 parameters, 3.9x fewer) by default, or 3 / 2 (3 723 / 1 728), trained on a few hundred
crops: the small-data regime in which a teacher's soft targets carry the most extra
information. Measured here (seeds 0-3, default recipe): KD ahead on all four seeds, by 3 to
9 points; at width 2 KD led on 3 of 4 seeds and the students' accuracy varied a lot.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

TEACHER_WIDTH = 8  # models.shapes_cnn.ShapesNet's default: the registry's "shapes-cnn"
SOFT_TEMPS = (1.0, 2.0, 4.0, 8.0)


# --- soft targets (numpy; cheap) ------------------------------------------------------------


def softmax_t(logits, T: float = 1.0) -> np.ndarray:
    """softmax(z / T) along the last axis, computed stably in float64."""
    if not T > 0:
        raise ValueError(f"temperature must be > 0, got {T}")
    z = np.asarray(logits, dtype=np.float64) / float(T)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def entropy_bits(p) -> float | np.ndarray:
    """Shannon entropy in bits along the last axis (0 log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    out = terms.sum(axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def soft_target_rows(logits, names: Sequence[str], temps: Sequence[float], *, top_k: int | None = None) -> list[dict]:
    """Long-form rows {"class", "T", "probability"} of softmax(logits / T) for each T.

    With ``top_k`` (many classes, e.g. ImageNet) only the ``top_k`` most probable classes at
    T = 1 get a bar each, and one more row, "other N classes", holds the rest of the mass:
    at a high temperature that is where most of it goes."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    if len(z) != len(names):
        raise ValueError(f"{len(z)} logits but {len(names)} class names")
    order = np.argsort(-z, kind="stable")
    keep = order if top_k is None or top_k >= len(z) else order[:top_k]
    rest = len(z) - len(keep)
    rows = []
    for T in temps:
        p = softmax_t(z, T)
        for i in keep:
            rows.append({"class": names[int(i)], "T": float(T), "probability": float(p[int(i)])})
        if rest:
            rows.append({"class": f"other {rest} classes", "T": float(T),
                         "probability": float(max(0.0, 1.0 - p[keep].sum()))})
    return rows


def soft_target_summary(logits, temps: Sequence[float]) -> list[dict]:
    """Per T: entropy (bits), the top class's probability and the mass on all other classes."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    top = int(np.argmax(z))
    out = []
    for T in temps:
        p = softmax_t(z, T)
        out.append({"T": float(T), "entropy_bits": entropy_bits(p), "top_probability": float(p[top]),
                    "other_mass": float(1.0 - p[top]), "max_entropy_bits": math.log2(len(z))})
    return out


# --- the distillation loss (torch) ----------------------------------------------------------


def kd_loss(student_logits, teacher_logits, y, T: float, alpha: float):
    """Hinton et al. (2015): ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)``.

    KL is summed over classes and averaged over the batch ("batchmean"); the T^2 factor
    keeps the soft term's gradients on the same scale as the hard term's whatever T is."""
    import torch.nn.functional as F

    if not T > 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError("T must be > 0 and alpha within [0, 1]")
    hard = F.cross_entropy(student_logits, y)
    if alpha == 0.0:
        return hard
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits.to(student_logits.dtype) / T, dim=1)
    soft = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    return alpha * (T * T) * soft + (1.0 - alpha) * hard


def kd_objective(y_true, t_logits, T: float, alpha: float) -> Callable:
    """A ``loss(logits, rows)`` callable for :func:`core.livetrain.train` whose second argument is
    the batch's row indices into the training set (train with ``labels=arange(N)``)."""
    def loss(logits, rows):
        return kd_loss(logits, t_logits[rows], y_true[rows], T, alpha)
    return loss


# --- models ------------------------------------------------------------------------------------


def make_student(seed: int = 0, width: int = 2):
    """Normalise -> ShapesNet(width): :func:`core.livetrain.make_model` at another width."""
    from core.livetrain import make_model

    return make_model(seed, width=width)


def teacher_logits(teacher, x, *, batch: int = 512, device: str | None = None):
    """The teacher's logits (N, C) for [0, 1] crops ``x`` (N, 3, 64, 64), on the CPU.

    ``teacher`` is a ``ShapesNet`` that takes *normalised* input (the registry's shapes-cnn);
    it is run under its lock (it may be the shared cached model) in inference mode."""
    import torch

    from core.classifier import SHAPES_MEAN, SHAPES_STD
    from core.hooks import lock_for

    dev = torch.device(device) if device else next(teacher.parameters()).device
    mean = torch.tensor(SHAPES_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SHAPES_STD).view(1, 3, 1, 1)
    out = []
    with lock_for(teacher), torch.inference_mode():
        was_training = teacher.training
        teacher.eval()
        for i in range(0, len(x), batch):
            out.append(teacher(((x[i:i + batch] - mean) / std).to(dev)).float().cpu())
        teacher.train(was_training)
    return torch.cat(out)


def param_count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def model_size(model) -> dict:
    """Parameters and the bytes of its float32 state (parameters + buffers) in MB (10^6 bytes)."""
    params = param_count(model)
    nbytes = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    return {"params": params, "mb": nbytes / 1e6}


# --- the comparison ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a comparison (the page's cache key)."""

    n_train: int = 600
    n_test: int = 400
    epochs: int = 15
    width: int = 4
    T: float = 4.0
    alpha: float = 0.9
    seed: int = 0


def compare(recipe: Recipe, t_logits_fn: Callable, *, progress=None, deadline=None) -> dict:
    """Train the student twice with :func:`core.livetrain.train` - with KD and with plain CE - on
    the same crops, seed and epochs; held-out accuracy per epoch for both.

    ``t_logits_fn(x)`` gives the teacher's logits for [0, 1] crops (see :func:`teacher_logits`);
    it is called once, on the training set, and once on the test set (the teacher's own
    held-out accuracy)."""
    import torch

    from core.livetrain import shapes_data, train

    report = progress or (lambda f, t: None)
    r = recipe
    t0 = time.perf_counter()
    report(0.0, "drawing the synthetic crops…")
    data = shapes_data(n_train=r.n_train, n_test=r.n_test, seed=r.seed)
    report(0.05, "the teacher labels the training crops (soft targets, once)…")
    t_train = t_logits_fn(data.x_train)
    t_test = t_logits_fn(data.x_test)
    teacher_acc = float((t_test.argmax(1) == data.y_test).float().mean())
    rows_idx = torch.arange(len(data.y_train))
    part = lambda lo, hi, name: (lambda f, t: report(lo + (hi - lo) * f, f"{name}: {t}"))
    runs = {}
    for i, (name, alpha) in enumerate((("KD student", r.alpha), ("plain student", 0.0))):
        runs[name] = train(data, epochs=r.epochs, seed=r.seed, labels=rows_idx, width=r.width,
                           loss=kd_objective(data.y_train, t_train, r.T, alpha),
                           progress=part(0.08 + 0.46 * i, 0.54 + 0.46 * i, name), deadline=deadline)
    curve = [{"epoch": e + 1, "model": name, "test_accuracy": row["test_accuracy"], "train_loss": row["loss"]}
             for name, run in runs.items() for e, row in enumerate(run.history)]
    student = runs["KD student"].model
    return {
        "recipe": r,
        "curve": curve,
        "final": {name: run.history[-1]["test_accuracy"] for name, run in runs.items()},
        "teacher_accuracy": teacher_acc,
        "seconds": {name: run.seconds for name, run in runs.items()},
        "total_seconds": time.perf_counter() - t0,
        "student_size": model_size(student[1]),
    }


def curve_rows(result: dict) -> list[dict]:
    """The accuracy-curve rows with the recipe in every row (for a CSV download)."""
    r = result["recipe"]
    return [{**row, "width": r.width, "T": r.T, "alpha": r.alpha if row["model"] == "KD student" else 0.0,
             "n_train": r.n_train, "n_test": r.n_test, "seed": r.seed} for row in result["curve"]]


# --- speed -------------------------------------------------------------------------------------------


def latency(model, device: str, *, batch: int = 1, size: int = 64, warmup: int = 3, repeats: int = 20):
    """core.perf.Timing of ``model`` on a (batch, 3, size, size) input on ``device`` (eval,
    inference mode; CUDA synchronised by time_call). ``model`` is moved (use a copy)."""
    import torch

    from core.perf import time_call

    model = model.to(device).eval()
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        return time_call(lambda: model(x), warmup=warmup, repeats=repeats, device=device)


CPU_TIMING_THREADS = 1


def compare_latency(teacher, student, device: str, *, batches: Sequence[int] = (1, 64), repeats: int = 20,
                    progress=None) -> list[dict]:
    """Rows {"model", "batch", "p50_ms", "p95_ms", "n"} for copies of teacher and student.

    On the CPU with :data:`CPU_TIMING_THREADS` intra-op thread (restored afterwards): on a
    small shared machine two OpenMP threads spin-wait on each other whenever anything else
    runs (measured here: the width-4 student at batch 1 took 0.5 ms on one thread and 150 ms
    on two, next to other jobs), which would time the neighbours, not the networks."""
    import contextlib
    import copy

    from core.runtime import torch_threads

    report = progress or (lambda f, t: None)
    models = {"teacher": copy.deepcopy(teacher).cpu(), "student": copy.deepcopy(student).cpu()}
    rows, total = [], len(models) * len(batches)
    threads = torch_threads(CPU_TIMING_THREADS) if device == "cpu" else contextlib.nullcontext()
    with threads:
        for i, (name, model) in enumerate(models.items()):
            for j, b in enumerate(batches):
                t = latency(model, device, batch=b, repeats=repeats)
                rows.append({"model": name, "batch": b, "p50_ms": t.p50, "p95_ms": t.p95, "n": t.n})
                report((i * len(batches) + j + 1) / total, f"timed {name} at batch {b}")
    return rows
