"""Where a classifier looked: attribution maps and two checks of whether to believe them.

One verb, in captum's style::

    unit = clf.unit(rgb)                                   # (1, 3, H, W) in [0, 1]
    heat = attribute(clf, unit, target=281, method="Grad-CAM", layer="layer4")
    heat.shape == (H, W); heat.max() == 1.0                # normalised, >= 0

``method`` is one of :data:`METHODS`; each dispatches to a captum class (LayerGradCam +
LayerAttribution.interpolate, GuidedGradCam, IntegratedGradients, Saliency, Occlusion).
Attributions are taken with respect to the *unnormalised* [0, 1] image (the model is
wrapped with its normalisation), so every map lines up with the pixels a user sees. The
gradient methods explain the class logit, Occlusion the class probability
(:func:`raw_attribution`). :func:`peak_in_box` and :func:`mass_in_box` score a map against
a known object box (the shapes canvas on the page, Chelsea's pasted face in the tests).

The model is shared by every session and captum registers hooks on it (on the Grad-CAM
layer; on every nn.ReLU for guided backprop, and here on every nn.ReLU6 too: captum only
knows nn.ReLU, and EfficientNet-Lite and MobileNet clip at 6 — :func:`_guided_classes`),
so every captum call holds the model's lock (:func:`core.hooks.lock_for`) and runs under
``torch.enable_grad``. Captum removes its
hooks in ``finally`` blocks; tests check that none remain. ResNet's in-place ReLUs are safe:
captum's ReLU hook feeds each ReLU a clone of its input.

Trust checks:

* :func:`randomisation_check` (Adebayo et al., 2018): a private ``copy.deepcopy`` of the
  model (made under the lock) is re-initialised layer by layer from the output down; a
  method whose map barely changes while the network becomes random is not explaining the
  network. Similarity = Spearman rank correlation and SSIM with the trained map.
* :func:`deletion_curve` (Petsiuk et al., 2018): delete the most-attributed pixels first
  (replace them by a blurred copy or the mean colour) and record the target probability;
  the area under that curve is lower for a map that found the pixels the decision needs.
  :func:`random_deletion` gives the baseline of deleting in random order.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.hooks import lock_for

Progress = Callable[[float, str], None]

METHODS = ("Grad-CAM", "Guided Grad-CAM", "Integrated Gradients", "Saliency", "Occlusion")
LAYER_METHODS = frozenset({"Grad-CAM", "Guided Grad-CAM"})  # the only ones that use ``layer``
PIXEL_METHODS = frozenset({"Guided Grad-CAM", "Integrated Gradients", "Saliency"})  # sparse, per pixel
IG_STEPS = 16  # Gauss-Legendre nodes (captum's default rule)
# Images per forward/backward pass inside Integrated Gradients and Occlusion. Backward passes keep
# every activation: on EfficientNet-Lite0 at 224 px, IG in batches of 16 raised the server's peak
# RSS by 1.3 GB (past Community Cloud's 2.7 GB with the other pages' models), in batches of 4 by
# 0.4 GB, and ran no slower (0.9 s vs 1.3 s on 2 cores). Occlusion runs without gradients. With 30
# students' pages taking turns, the whole Interpretability page's first run added 364–408 MB at
# 4 and 8, and 191–236 MB at 2 and 4, in the same time (1.2–1.4 s).
IG_BATCH = 2
OCCLUSION_BATCH = 4
FILLS = ("blur", "mean")
PEAK_SIGMA = 3.0  # px: maps are blurred this much before their peak is looked up (see peak)

# Captum warns on every GuidedBackprop call that it hooks the ReLUs (it removes them again).
warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")


# --- the verb ------------------------------------------------------------------------------


@functools.cache
def _normaliser_class():
    from torch import nn

    class Normalise(nn.Module):
        """[0, 1] image -> the model's input (a module, so GuidedGradCam can wrap it)."""

        def __init__(self, mean, std):
            super().__init__()
            import torch

            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, x):
            return (x - self.mean) / self.std

    return Normalise


def wrapped(clf):
    """``Sequential(normalise, clf.model)``: logits of a [0, 1] image. The shared model is
    referenced, not copied or changed (a parent module does not alter its child)."""
    from torch import nn

    return nn.Sequential(_normaliser_class()(clf.mean, clf.std), clf.model).eval()


def _probabilities(net):
    """The softmax of ``net``'s logits (what Occlusion attributes)."""
    import torch

    return lambda x: torch.softmax(net(x), dim=1)


@functools.cache
def _guided_classes():
    """captum's GuidedBackprop and GuidedGradCam with one function overridden: the backward
    hook that keeps only positive gradients is set on nn.ReLU6 as well as nn.ReLU (captum
    checks ``isinstance(module, nn.ReLU)``, which ReLU6 is not). Below 0 and above 6 a ReLU6
    already passes no gradient, so "keep the positive part of the incoming gradient" is
    exactly guided backprop for it."""
    from captum.attr import GuidedBackprop, GuidedGradCam
    from captum._utils.common import _register_backward_hook  # what captum itself calls
    from torch import nn

    class Guided(GuidedBackprop):
        def _register_hooks(self, module) -> None:
            if isinstance(module, (nn.ReLU, nn.ReLU6)):
                self.backward_hooks.extend(_register_backward_hook(module, self._backward_hook, self))

    class GuidedCam(GuidedGradCam):
        def __init__(self, model, layer):
            super().__init__(model, layer)
            self.guided_backprop = Guided(model)

    return Guided, GuidedCam


def occlusion_window(side: int) -> tuple[int, int]:
    """(window, stride) in pixels for Occlusion on a ``side``-pixel image: an 8 x 8 grid of
    patches that tiles the image exactly (224 px: 28-px patches, 64 forward passes)."""
    if side < 8:
        return side, side
    stride = side // 8
    return side - 7 * stride, stride


def raw_attribution(clf, unit, target: int, method: str, layer: str | None = None, *,
                    ig_steps: int = IG_STEPS, baseline=None):
    """Captum's own output (a numpy array) for one image ``unit`` (1, 3, H, W) in [0, 1].

    Grad-CAM: (1, 1, h, w) at the layer's resolution, ReLU applied (not upsampled).
    Guided Grad-CAM, Integrated Gradients, Saliency (abs), Occlusion: (1, 3, H, W).
    ``baseline``: IG's and Occlusion's reference image; default black for IG, the image's
    mean colour for Occlusion.

    The gradient methods attribute the class *logit*; Occlusion attributes the class
    *probability* (softmax), as Zeiler and Fergus's occlusion maps did: the drop in p(class)
    when a patch is covered. A softmax ignores a shift shared by all logits, so a patch that
    only lowers every logit a little (a flat square on a plain background) is not credited
    with the decision; and it is the quantity the deletion check below measures. (On
    Chelsea's face pasted into canvases three times its area, the share of the map on the
    face rose from 0.30-0.69 with the logit to 0.42-0.77 with p, on each of 10 canvases:
    tests/test_photo_saliency.py.)"""
    import torch
    from captum.attr import IntegratedGradients, LayerGradCam, Occlusion, Saliency

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if unit.ndim != 4 or unit.shape[0] != 1 or unit.shape[1] != 3:
        raise ValueError(f"expected one image (1, 3, H, W), got {tuple(unit.shape)}")
    layer = layer or clf.cam_layer
    if method in LAYER_METHODS and layer not in clf.layers:
        raise ValueError(f"unknown layer {layer!r}; choose one of {list(clf.layers)}")
    net = wrapped(clf)
    x = unit.detach().clone()
    x = (x if x.is_floating_point() else x.float()).requires_grad_(method != "Occlusion")
    target = int(target)
    with lock_for(clf.model), torch.enable_grad():
        if method == "Grad-CAM":
            out = LayerGradCam(net, clf.layers[layer]).attribute(x, target=target, relu_attributions=True)
        elif method == "Guided Grad-CAM":
            out = _guided_classes()[1](net, clf.layers[layer]).attribute(x, target=target,
                                                                         interpolate_mode="bilinear")
        elif method == "Integrated Gradients":
            base = torch.zeros_like(x) if baseline is None else baseline
            out = IntegratedGradients(net).attribute(x, baselines=base, target=target, n_steps=ig_steps,
                                                     internal_batch_size=IG_BATCH)
        elif method == "Saliency":
            out = Saliency(net).attribute(x, target=target, abs=True)
        else:  # Occlusion, on the class probability (see the docstring)
            window, stride = occlusion_window(min(x.shape[-2:]))
            base = x.mean(dim=(2, 3), keepdim=True) if baseline is None else baseline
            out = Occlusion(_probabilities(net)).attribute(x, sliding_window_shapes=(3, window, window),
                                                           strides=(3, stride, stride), baselines=base,
                                                           target=target, perturbations_per_eval=OCCLUSION_BATCH)
    return out.detach().cpu().numpy()


def to_map(raw: np.ndarray, method: str, size: tuple[int, int]) -> np.ndarray:
    """Captum's output -> a (H, W) float32 map in [0, 1] (divided by its maximum).

    Grad-CAM is upsampled bilinearly with ``LayerAttribution.interpolate``; per-pixel
    methods are reduced over colour channels by the sum of absolute values; Occlusion keeps
    its positive part (covering there lowered the class probability)."""
    import torch
    from captum.attr import LayerAttribution

    if method == "Grad-CAM":
        up = LayerAttribution.interpolate(torch.from_numpy(raw), tuple(size), interpolate_mode="bilinear")
        heat = np.maximum(up[0, 0].numpy(), 0.0)
    elif method == "Occlusion":
        heat = np.maximum(raw[0].mean(axis=0), 0.0)  # the same value on all three channels
    else:
        heat = np.abs(raw[0]).sum(axis=0)
    return normalise(heat)


def normalise(heat: np.ndarray) -> np.ndarray:
    top = float(heat.max()) if heat.size else 0.0
    if not np.isfinite(top) or top <= 0:
        return np.zeros(heat.shape, np.float32)
    return (heat / top).astype(np.float32)


def attribute(clf, unit_image, target: int, method: str, layer: str | None = None, **options) -> np.ndarray:
    """The attribution map of ``method`` for class ``target``: (H, W) float32 in [0, 1],
    the size of ``unit_image`` (1, 3, H, W). ``layer`` (a name in ``clf.layers``, default
    ``clf.cam_layer``) matters for Grad-CAM and Guided Grad-CAM only."""
    raw = raw_attribution(clf, unit_image, target, method, layer, **options)
    return to_map(raw, method, tuple(unit_image.shape[-2:]))


# --- display -------------------------------------------------------------------------------


def display_scale(heat: np.ndarray, method: str, percentile: float = 99.0) -> np.ndarray:
    """Per-pixel maps are a few bright pixels on near-zero: clip at a high percentile so the
    structure shows (captum's visualiser does the same). Region maps are shown as they are."""
    if method not in PIXEL_METHODS:
        return heat
    hi = float(np.percentile(heat, percentile))
    return np.clip(heat / hi, 0.0, 1.0) if hi > 0 else heat


def overlay(rgb: np.ndarray, heat: np.ndarray, opacity: float) -> np.ndarray:
    """``heat`` (any size, [0, 1]) as a jet-coloured layer over ``rgb`` (H, W, 3) uint8.

    The colour's weight is ``opacity x min(1, 2 heat)``: unattributed pixels keep the photo,
    the top half of the map is fully coloured (blue-green through yellow to red; jet's dark
    maroon end is left out so the hottest places stay bright)."""
    import cv2

    h, w = rgb.shape[:2]
    if heat.shape != (h, w):
        heat = cv2.resize(heat.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = np.clip(heat, 0.0, 1.0)
    index = (0.25 + 0.62 * heat) * 255
    colour = cv2.applyColorMap(index.astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    alpha = (float(np.clip(opacity, 0.0, 1.0)) * np.minimum(1.0, 2.0 * heat))[..., None]
    out = rgb.astype(np.float32) * (1.0 - alpha) + colour.astype(np.float32) * alpha
    return (out + 0.5).astype(np.uint8)


def peak(heat: np.ndarray, sigma: float = 0.0) -> tuple[int, int]:
    """(x, y) of the map's maximum; with ``sigma`` > 0, of the map blurred first by a Gaussian
    of ``sigma`` pixels. A per-pixel map's single brightest pixel can be one isolated edge
    pixel (Integrated Gradients' was outside Chelsea's face in 2 of 10 pasted-face tests);
    the blurred maximum is where the attribution is densest (10 of 10 on the face)."""
    if sigma > 0:
        import cv2

        heat = cv2.GaussianBlur(np.asarray(heat, np.float32), (0, 0), sigmaX=float(sigma),
                                borderType=cv2.BORDER_REPLICATE)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(x), int(y)


def box_mask(shape: tuple[int, int], box, image_size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the map pixels (of a ``shape`` map stretched over an image of ``image_size``
    = (h, w)) whose centres lie in ``box`` = (x1, y1, x2, y2), image pixels, edges included."""
    h, w = shape
    ih, iw = image_size
    x1, y1, x2, y2 = box
    ys = (np.arange(h) + 0.5) * (ih / h)
    xs = (np.arange(w) + 0.5) * (iw / w)
    return ((ys >= y1) & (ys <= y2))[:, None] & ((xs >= x1) & (xs <= x2))[None, :]


def peak_in_box(heat: np.ndarray, box, image_size: tuple[int, int], sigma: float = PEAK_SIGMA) -> bool:
    """Whether the (blurred, :func:`peak`) maximum of ``heat`` lies in ``box`` of the image."""
    x, y = peak(heat, sigma)
    return bool(box_mask(heat.shape, box, image_size)[y, x])


def mass_in_box(heat: np.ndarray, box, image_size: tuple[int, int]) -> float:
    """Share of the map's total (it is >= 0) that lies in ``box`` of the image; nan for an
    all-zero map. A map spread evenly would score the box's share of the image."""
    total = float(np.sum(heat, dtype=np.float64))
    if not total > 0:
        return float("nan")
    return float(np.sum(heat[box_mask(heat.shape, box, image_size)], dtype=np.float64)) / total


# --- trust check 1: model randomisation ----------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """The maps after re-initialising the network from the output down to ``name``."""

    name: str  # "trained", then the layers randomised so far, last one named
    maps: dict  # {method: (H, W) map}
    spearman: dict  # {method: rank correlation with the trained map} (nan if a map is constant)
    ssim: dict  # {method: SSIM with the trained map}


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Spearman rank correlation, SSIM) of two maps in [0, 1]. The correlation is nan when
    either map is constant (no ranking to compare)."""
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        rho = float("nan")
    else:
        rho = float(spearmanr(a.ravel(), b.ravel()).statistic)
    return rho, float(structural_similarity(a, b, data_range=1.0))


def _leaves(module):
    """Modules that own parameters or buffers themselves, in registration order."""
    return [m for m in module.modules()
            if any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False))]


def cascade_stages(clf) -> list[tuple[str, list]]:
    """[(name, modules)] from the output down: the head after the last listed layer, then
    each layer of ``clf.layers`` (a module between two layers, such as ResNet's ``bn1``,
    goes with the layer before it)."""
    members = {name: {id(m) for m in layer.modules()} for name, layer in clf.layers.items()}
    names = list(clf.layers)
    groups: dict[str, list] = {name: [] for name in names}
    head: list = []
    current = None
    for leaf in _leaves(clf.model):
        owners = [n for n in names if id(leaf) in members[n]]
        if owners:
            current = owners[-1]
            groups[current].append(leaf)
        elif current is None:
            groups[names[0]].append(leaf)
        elif current == names[-1]:
            head.append(leaf)
        else:
            groups[current].append(leaf)
    stages = [("output head", head)] if head else []
    stages += [(name, groups[name]) for name in reversed(names) if groups[name]]
    return stages


def reinitialise(modules, generator) -> None:
    """Re-draw weights as at initialisation (He-normal for conv/linear, zero biases;
    batch-norm to identity: scale 1, shift 0, running mean 0, variance 1)."""
    import torch
    from torch import nn

    with torch.no_grad():
        for m in modules:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._NormBase):
                m.reset_parameters()  # deterministic: ones, zeros, running stats reset
            else:
                for p in m.parameters(recurse=False):
                    p.normal_(0.0, 0.02, generator=generator)


def random_twin(clf):
    """A private deep copy of ``clf`` (copied under the model's lock) and a map from the
    original's module ids to their copies."""
    memo: dict = {}
    with lock_for(clf.model):
        model = copy.deepcopy(clf.model, memo)
    layers = {name: memo[id(module)] for name, module in clf.layers.items()}
    return dataclasses.replace(clf, model=model.eval(), layers=layers), memo


def randomisation_check(clf, unit, target: int, *, layer: str | None = None,
                        methods: tuple[str, ...] = ("Grad-CAM", "Saliency"), seed: int = 0,
                        progress: Progress | None = None) -> list[Stage]:
    """Cascading model-randomisation test: stage 0 is the trained network, stage i has the
    top i layer groups of :func:`cascade_stages` re-initialised (seeded)."""
    import torch

    report = progress or (lambda f, m: None)
    twin, memo = random_twin(clf)
    plan = [(name, [memo[id(m)] for m in modules]) for name, modules in cascade_stages(clf)]
    generator = torch.Generator().manual_seed(seed)
    total = (len(plan) + 1) * len(methods)
    done = 0

    def maps_now() -> dict:
        nonlocal done
        out = {}
        for method in methods:
            out[method] = attribute(twin, unit, target, method, layer)
            done += 1
            report(done / total, f"{method} on the network randomised down to {name}")
        return out

    name = "trained"
    trained = maps_now()
    stages = [Stage("trained", trained, {m: 1.0 for m in methods}, {m: 1.0 for m in methods})]
    for name, modules in plan:
        reinitialise(modules, generator)
        maps = maps_now()
        sims = {m: similarity(trained[m], maps[m]) for m in methods}
        stages.append(Stage(name, maps, {m: s[0] for m, s in sims.items()}, {m: s[1] for m, s in sims.items()}))
    return stages


# --- trust check 2: deletion ----------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    fractions: np.ndarray  # fraction of pixels deleted, 0..1
    probs: np.ndarray  # target-class probability after deleting them

    @property
    def auc(self) -> float:
        """Area under probability vs fraction deleted (trapezoid): lower = more faithful."""
        return float(np.trapezoid(self.probs, self.fractions))


def fill_image(unit, fill: str):
    """What deleted pixels become: a heavily blurred copy (sigma = side / 10) or the image's
    mean colour. (1, 3, H, W) tensor."""
    import cv2
    import torch

    if fill == "mean":
        return unit.mean(dim=(2, 3), keepdim=True).expand_as(unit).clone()
    if fill != "blur":
        raise ValueError(f"fill must be one of {FILLS}")
    img = unit[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
    sigma = max(2.0, min(img.shape[:2]) / 10.0)
    blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return torch.from_numpy(blurred).permute(2, 0, 1)[None].to(unit.dtype)


def deletion_order(heat: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices, most attributed first; ties (e.g. the zeros of a ReLU'd map) in
    a seeded random order, so a flat region is not deleted top row first."""
    tiebreak = np.random.default_rng(seed).random(heat.size)
    return np.lexsort((tiebreak, -heat.ravel().astype(np.float64)))


def deletion_curve(clf, unit, target: int, order: np.ndarray, *, step: float = 0.05, fill: str = "blur",
                   batch: int = 11) -> Curve:
    """Target probability after deleting the first 0, step, 2 step, ..., 100 % of ``order``."""
    import torch

    h, w = unit.shape[-2:]
    n = h * w
    if order.shape != (n,):
        raise ValueError(f"order must list all {n} pixels")
    steps = int(round(1.0 / step))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * n).astype(int)
    filler = fill_image(unit, fill)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    rank_t = torch.from_numpy(rank).view(1, 1, h, w)
    probs = []
    for i in range(0, len(counts), batch):
        ks = torch.from_numpy(counts[i:i + batch]).view(-1, 1, 1, 1)
        mask = (rank_t < ks).to(unit.dtype)  # (B, 1, H, W): 1 = deleted
        xs = unit * (1 - mask) + filler * mask
        probs.append(clf.probs_from_unit(xs)[:, int(target)])
    return Curve(fractions, np.concatenate(probs).astype(np.float64))


def random_deletion(clf, unit, target: int, *, repeats: int = 3, seed: int = 0, **kw) -> Curve:
    """The baseline: deletion in random pixel order, averaged over ``repeats`` orders."""
    n = unit.shape[-2] * unit.shape[-1]
    curves = [deletion_curve(clf, unit, target, np.random.default_rng(seed + r).permutation(n), **kw)
              for r in range(repeats)]
    return Curve(curves[0].fractions, np.mean([c.probs for c in curves], axis=0))
