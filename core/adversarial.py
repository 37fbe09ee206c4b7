"""Adversarial examples: FGSM and PGD (L-infinity) attacks, simple input defences, and the
pieces of adversarial training.

Everything works in [0, 1] pixel space, before the network's own normalisation::

    model_fn = lambda u: clf.model(clf.normalise(u))        # [0, 1] batch -> logits
    x = clf.unit(rgb)                                        # (1, 3, S, S) in [0, 1]
    x_adv = fgsm(model_fn, x, label, eps=8 / 255)            # one signed-gradient step
    x_adv = pgd(model_fn, x, label, eps=8 / 255, steps=10)   # projected gradient descent
    x_adv = fgsm(model_fn, x, label, eps, targeted=True, target=k)   # push towards class k

* ``eps`` is the L-infinity budget in [0, 1] units (8/255 = eight grey levels); every
  returned image satisfies ``|x_adv - x| <= eps`` per pixel and ``0 <= x_adv <= 1``.
* Untargeted attacks *raise* the loss of the true label; targeted ones *lower* the loss of
  the target label (so its probability rises).
* Gradients are taken with ``torch.autograd.grad`` with respect to the input only: the
  model's parameters get no ``.grad`` and its mode (eval) is never changed. A shared model
  must be locked by the caller: pass ``lock=lock_for(model)`` and every gradient
  computation holds it (PGD releases it between steps, so other sessions can interleave).
* Defences (:func:`jpeg`, :func:`median`, :func:`squeeze_bits`) act on RGB uint8 images.

No Streamlit here; torch and OpenCV are imported inside functions.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.metrics import psnr_from_mse

METHODS = {"fgsm": "FGSM (one step)", "pgd": "PGD (iterated, projected)"}


# --- attacks -------------------------------------------------------------------------------


def _labels(label, n: int):
    """An int, a sequence or a tensor -> an int64 tensor of ``n`` labels."""
    import torch

    t = torch.as_tensor(label, dtype=torch.int64).reshape(-1)
    if t.numel() == 1 and n > 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"{t.numel()} labels for a batch of {n}")
    return t


def input_gradient(model_fn: Callable, x, label, *, lock=None):
    """(logits, d loss / d x) for the summed cross-entropy of ``label`` at ``x``.

    Summed, not averaged, so each image's gradient is its own (the batch size does not
    scale it). Only the input gets a gradient."""
    import torch
    import torch.nn.functional as F

    x = x.detach().clone().requires_grad_(True)
    y = _labels(label, len(x)).to(x.device)
    with (lock if lock is not None else nullcontext()), torch.enable_grad():
        logits = model_fn(x)
        loss = F.cross_entropy(logits.float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return logits.detach(), grad


def _goal(label, targeted: bool, target):
    if targeted:
        if target is None:
            raise ValueError("a targeted attack needs a target class")
        return target, -1.0  # descend the target's loss
    return label, 1.0  # ascend the true label's loss


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError("eps must be a finite number >= 0")
    return eps


def fgsm(model_fn: Callable, unit, label, eps: float, targeted: bool = False, target=None, *, lock=None):
    """Fast Gradient Sign Method (Goodfellow et al. 2015): one step of size ``eps`` along the
    sign of the input gradient, clamped to [0, 1].

    ``x_adv = clamp(x + eps * sign(grad_x CE(f(x), label)))`` untargeted,
    ``x_adv = clamp(x - eps * sign(grad_x CE(f(x), target)))`` targeted."""
    eps = _check_eps(eps)
    x = unit.detach()
    goal, direction = _goal(label, targeted, target)
    if eps == 0:
        return x.clone()
    _, grad = input_gradient(model_fn, x, goal, lock=lock)
    return (x + direction * eps * grad.sign()).clamp(0.0, 1.0)


def project(x_adv, x, eps: float):
    """The nearest point to ``x_adv`` in the L-infinity ball of radius ``eps`` around ``x``
    that is also a valid image ([0, 1])."""
    import torch

    return torch.max(torch.min(x_adv, x + eps), x - eps).clamp(0.0, 1.0)


def pgd(model_fn: Callable, unit, label, eps: float, steps: int = 10, alpha: float | None = None,
        targeted: bool = False, target=None, *, random_start: bool = False, seed: int = 0,
        lock=None, on_step: Callable[[int, object], None] | None = None, check: Callable[[], None] | None = None):
    """Projected Gradient Descent (Madry et al. 2018), L-infinity: ``steps`` signed-gradient
    steps of size ``alpha`` (default ``2.5 * eps / steps``), each followed by a projection
    back into the eps-ball around ``x`` and into [0, 1].

    ``random_start`` begins at a uniform random point of the ball (seeded). ``on_step(i,
    logits)`` is called after step ``i`` (1-based) with the logits at the point where that
    step's gradient was taken; ``check()`` (a deadline) before each step. One step without a
    random start and with ``alpha >= eps`` is exactly FGSM."""
    import torch

    eps = _check_eps(eps)
    steps = int(steps)
    if steps < 1:
        raise ValueError("steps must be >= 1")
    alpha = 2.5 * eps / steps if alpha is None else float(alpha)
    x = unit.detach()
    goal, direction = _goal(label, targeted, target)
    if eps == 0:
        return x.clone()
    if random_start:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = (torch.rand(x.shape, generator=gen) * 2 - 1).to(x.device, x.dtype) * eps
        x_adv = project(x + noise, x, eps)
    else:
        x_adv = x.clone()
    for i in range(steps):
        if check is not None:
            check()
        logits, grad = input_gradient(model_fn, x_adv, goal, lock=lock)
        x_adv = project(x_adv + direction * alpha * grad.sign(), x, eps)
        if on_step is not None:
            on_step(i + 1, logits)
    return x_adv


def attack(method: str, model_fn: Callable, unit, label, eps: float, *, steps: int = 10,
           targeted: bool = False, target=None, **kwargs):
    """``fgsm`` or ``pgd`` by name (``steps`` is ignored by FGSM)."""
    if method == "fgsm":
        return fgsm(model_fn, unit, label, eps, targeted, target, lock=kwargs.get("lock"))
    if method == "pgd":
        return pgd(model_fn, unit, label, eps, steps, targeted=targeted, target=target, **kwargs)
    raise ValueError(f"unknown attack {method!r}; one of {sorted(METHODS)}")


def quantise(unit):
    """Round a [0, 1] tensor to the 256 grey levels an 8-bit image file can hold. An attack on
    an image on that grid with an integer eps (in /255) stays within eps after rounding."""
    return (unit.clamp(0.0, 1.0) * 255.0).round() / 255.0


# --- size of a perturbation --------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    linf: float  # max |difference| in grey levels (0..255)
    l2: float  # Euclidean norm of the difference in [0, 1] units, over all pixels and channels
    rms: float  # root-mean-square difference in grey levels
    psnr: float  # dB; inf for identical images
    changed: float  # fraction of values (pixels x channels) that differ


def size_of(clean: np.ndarray, adv: np.ndarray) -> Size:
    """How large the difference between two RGB uint8 images of one shape is."""
    if clean.shape != adv.shape:
        raise ValueError(f"shapes differ: {clean.shape} vs {adv.shape}")
    d = adv.astype(np.float64) - clean.astype(np.float64)
    mse = float(np.mean(d * d))
    return Size(linf=float(np.abs(d).max()) if d.size else 0.0,
                l2=float(np.sqrt(np.sum(d * d))) / 255.0,
                rms=math.sqrt(mse),
                psnr=psnr_from_mse(mse),
                changed=float(np.mean(d != 0)) if d.size else 0.0)


def amplified(clean: np.ndarray, adv: np.ndarray, eps255: float) -> np.ndarray:
    """The perturbation as a picture: grey 128 = unchanged, +eps -> white, -eps -> black
    (amplified ``127 / eps`` times, per channel)."""
    d = adv.astype(np.float32) - clean.astype(np.float32)
    gain = 127.0 / max(float(eps255), 1e-6)
    return np.clip(128.0 + d * gain, 0, 255).round().astype(np.uint8)


# --- defences (input transformations) ------------------------------------------------------


def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    """Encode as JPEG at ``quality`` (1-100) and decode again."""
    import cv2

    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError("JPEG quality must be 1..100")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def median(rgb: np.ndarray, size: int = 3) -> np.ndarray:
    """Median filter with a ``size`` x ``size`` window (odd, >= 3) per channel."""
    import cv2

    k = int(size)
    if k < 3 or k % 2 == 0:
        raise ValueError("median window must be odd and >= 3")
    return cv2.medianBlur(np.ascontiguousarray(rgb), k)


def squeeze_bits(rgb: np.ndarray, bits: int = 4) -> np.ndarray:
    """Bit-depth reduction (feature squeezing, Xu et al. 2018): ``2**bits`` levels per channel."""
    b = int(bits)
    if not 1 <= b <= 8:
        raise ValueError("bits must be 1..8")
    levels = 2 ** b - 1
    return (np.round(rgb.astype(np.float32) / 255.0 * levels) / levels * 255.0).round().astype(np.uint8)


DEFENCES = {
    "jpeg": ("JPEG compression", jpeg),
    "median": ("Median filter", median),
    "bits": ("Bit-depth reduction", squeeze_bits),
}


def defend(name: str, rgb: np.ndarray, setting: int) -> np.ndarray:
    """Apply defence ``name`` (a key of DEFENCES) with its one ``setting``."""
    if name not in DEFENCES:
        raise ValueError(f"unknown defence {name!r}; one of {sorted(DEFENCES)}")
    return DEFENCES[name][1](rgb, setting)


# --- evaluation and adversarial training (batches of [0, 1] crops) --------------------------


def robust_accuracy(model_fn: Callable, x, y, eps: float, *, method: str = "pgd", steps: int = 10,
                    batch: int = 200, lock=None, check: Callable[[], None] | None = None) -> float:
    """Accuracy on ``x`` after attacking every image (untargeted, its true label) with
    ``method`` at ``eps``. eps = 0 gives clean accuracy."""
    import torch

    correct = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch]
        xa = attack(method, model_fn, xb, yb, eps, steps=steps, lock=lock, check=check) if eps > 0 else xb
        with (lock if lock is not None else nullcontext()), torch.inference_mode():
            correct += int((model_fn(xa).argmax(1) == yb).sum())
    return correct / max(len(x), 1)


def robust_curve(model_fn: Callable, x, y, eps_list, **kwargs) -> list[float]:
    """:func:`robust_accuracy` at each eps of ``eps_list``."""
    return [robust_accuracy(model_fn, x, y, float(e), **kwargs) for e in eps_list]


TRAIN_METHODS = {"fgsm": "FGSM with a random start", "pgd": "PGD, 3 steps"}


def adversarial_hook(eps: float, *, method: str = "fgsm", mix: float = 0.5, seed: int = 0) -> Callable:
    """A ``core.livetrain.train`` batch hook for adversarial training: each batch's first
    ``round(mix * n)`` images are replaced by adversarial examples of the model being trained
    (the rest stay clean; mix=1 replaces all).

    ``fgsm``: a random start in the eps-ball, then one step of 1.25 eps, projected ("fast"
    adversarial training, Wong et al. 2020: the random start avoids the catastrophic
    overfitting of plain FGSM training). ``pgd``: 3 steps of eps/2 from a random start.
    The examples are crafted with the model in eval mode, so the crafting passes do not move
    BatchNorm's running statistics; train() puts it back in training mode for the update."""
    if method not in TRAIN_METHODS:
        raise ValueError(f"unknown training attack {method!r}; one of {sorted(TRAIN_METHODS)}")
    if not 0.0 <= mix <= 1.0:
        raise ValueError("mix must be in [0, 1]")
    eps = _check_eps(eps)
    calls = [0]

    def hook(model, x, y):
        k = int(round(mix * len(x)))
        if k == 0 or eps == 0:
            return x
        calls[0] += 1
        model.eval()
        if method == "fgsm":
            adv = pgd(model, x[:k], y[:k], eps, 1, alpha=1.25 * eps, random_start=True, seed=seed * 1_000_003 + calls[0])
        else:
            adv = pgd(model, x[:k], y[:k], eps, 3, alpha=eps / 2, random_start=True, seed=seed * 1_000_003 + calls[0])
        return adv.detach() if k == len(x) else _cat(adv.detach(), x[k:])

    return hook


def _cat(a, b):
    import torch

    return torch.cat([a, b])


def compare_training(eps255: int, method: str = "fgsm", mix: float = 0.5, seed: int = 0, *, n_train: int = 1500,
                     n_test: int = 200, epochs: int = 6, eval_eps=(0, 1, 2, 4, 8), eval_steps: int = 7,
                     progress=None, deadline=None) -> dict:
    """Train a normal and an adversarially trained shapes CNN on the same data and seed;
    their clean accuracy per epoch and their accuracy under PGD at each of ``eval_eps``.
    eps in grey levels (/255). ``deadline`` (core.jobs.Deadline) is checked once per batch."""
    from core.livetrain import shapes_data, train
    from core.runtime import torch_threads

    report = progress or (lambda f, t: None)
    check = deadline.check if deadline is not None else None
    t0 = time.perf_counter()
    report(0.0, "drawing the synthetic training crops…")
    data = shapes_data(n_train=n_train, n_test=n_test, seed=seed)
    # Shares of the bar: normal training 30 %, adversarial 45 %, evaluation 25 %.
    part = lambda lo, hi, name: (lambda f, t: report(lo + (hi - lo) * f, f"{name}: {t}"))
    hook = adversarial_hook(eps255 / 255.0, method=method, mix=mix, seed=seed)
    runs = {
        "normal": train(data, epochs=epochs, seed=seed, progress=part(0.02, 0.3, "normal training"),
                        deadline=deadline),
        "adversarial": train(data, epochs=epochs, seed=seed, batch_hook=hook,
                             progress=part(0.3, 0.75, "adversarial training"), deadline=deadline),
    }
    curves = {}
    total = len(runs) * len(eval_eps)
    with torch_threads(1):
        for r, (name, run) in enumerate(runs.items()):
            curves[name] = []
            for e, eps in enumerate(eval_eps):
                curves[name].append(robust_accuracy(run.model, data.x_test, data.y_test, eps / 255.0,
                                                method="pgd", steps=eval_steps, check=check))
                done = r * len(eval_eps) + e + 1
                report(0.75 + 0.25 * done / total, f"attacking the test crops with PGD ({done}/{total})")
    return {"eps": list(eval_eps), "curves": curves,
            "history": {name: run.history for name, run in runs.items()},
            "seconds": {name: run.seconds for name, run in runs.items()},
            "total_seconds": time.perf_counter() - t0,
            "settings": {"eps255": eps255, "method": method, "mix": mix, "seed": seed, "n_train": n_train,
                         "n_test": n_test, "epochs": epochs, "eval_steps": eval_steps}}
