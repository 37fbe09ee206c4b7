"""Cached, bounded work and charts for the Transfer learning page.

* :func:`backbone` - the shapes-pretext network (trained on circle/square/triangle), shared.
* :func:`samples` / :func:`pretext_view` - source and target crops, and what the source
  network answers on one target crop or on the active photo (cheap, cached);
  :func:`imagenet_top` - what the ImageNet backbone's own head says on the active photo.
* :func:`run_sweep` - the three regimes at several shot counts (:func:`core.transfer.sweep`),
  in a :data:`core.jobs.TRAINING` slot, cached per settings (plain data).
* :func:`run_uploads` - leave-one-out heads on the user's own images, frozen features
  (an ImageNet classifier: EfficientNet-Lite0 by default; shapes-pretext where none loads)
  next to raw pixels, in the same gate.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from core import transfer as tl
from core.jobs import MODEL_TURNS

KMAX_CHOICES = (2, 5, 10, 20, 50)


@st.cache_resource(max_entries=1, show_spinner=False)
def backbone():
    """The registry's trained ``shapes-pretext`` network, a private CPU copy in eval mode."""
    from components.models import freeze_heap
    from models.shapes_pretext import load_shapes_pretext

    net = load_shapes_pretext().cpu().eval()
    freeze_heap()
    return net


def pretext_metrics() -> dict:
    from models.shapes_pretext import load_metrics

    return load_metrics() or {}


@st.cache_data(max_entries=4, show_spinner=False)
def samples(n: int = 6) -> dict:
    """``n`` crops of the source task and of the target task (fixed seeds), with their class names."""
    src, ys = tl.sample_crops(tl.SOURCE_CLASSES, n, seed=41)
    tgt, yt = tl.sample_crops(tl.TARGET_CLASSES, n, seed=42)
    names = lambda y: [tl.SHAPE_CLASSES[int(c)] for c in y]
    return {"source": (src, names(ys)), "target": (tgt, names(yt))}


def _probs(images: np.ndarray) -> np.ndarray:
    import torch

    from core.hooks import lock_for
    from models.shapes_cnn import preprocess

    net = backbone()
    with lock_for(net), torch.inference_mode():
        return torch.softmax(net(preprocess(images)), dim=1).numpy()


@st.cache_data(max_entries=1, show_spinner=False)
def held_out() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 300 held-out target crops (uint8, 3.7 MB), their SHAPE_CLASSES labels and the source
    network's probabilities on each (one batched pass)."""
    x, y = tl.sample_crops(tl.TARGET_CLASSES, 300, seed=tl.TEST_SEED)
    return x, y, _probs(x)


def pretext_view(index: int) -> tuple[np.ndarray, str, list[float]]:
    """Held-out target crop ``index``, its true class, and the source network's probabilities."""
    x, y, probs = held_out()
    return x[index], tl.SHAPE_CLASSES[int(y[index])], probs[index].tolist()


@st.cache_data(max_entries=16, show_spinner=False)
@MODEL_TURNS.take
def pretext_on_photo(digest: str, _rgb: np.ndarray) -> list[float]:
    """The source network's probabilities on the active photo (squashed to 64 x 64)."""
    return _probs(np.ascontiguousarray(_rgb)[None])[0].tolist()


@st.cache_data(max_entries=8, show_spinner=False)
def run_sweep(shots: tuple[int, ...], steps: int, seed: int, _progress=None) -> dict:
    """:func:`core.transfer.sweep` in a shared TRAINING slot (refusal/timeout propagate, nothing cached)."""
    from core.jobs import TRAINING

    net = backbone()
    with TRAINING.slot(session_id()) as deadline:
        recipe = tl.Recipe(shots=tuple(shots), steps=steps, seed=seed)
        x, y, _ = held_out()  # the fixed test set is already drawn (section 1 shows it)
        data = tl.target_data(max_shots=max(shots), n_test=recipe.n_test, seed=seed, test=(x, y))
        return tl.sweep(recipe, net, progress=_progress, deadline=deadline, data=data)


@st.cache_data(max_entries=16, show_spinner=False)
def imagenet_top(name: str, device: str, digest: str, _rgb: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The ImageNet classifier ``name``'s ``k`` most probable classes on the active photo (``digest``)."""
    from components.classifier import classifier

    clf = classifier(name, device)
    return [(p.name, p.probability) for p in clf.top(clf.probs(_rgb), k)]


def _imagenet_features(name: str, images: list[np.ndarray], device: str, tick) -> np.ndarray:
    """The registered ImageNet classifier ``name``'s pooled last-stage features per image (the
    shared cached model, under its lock): :func:`core.transfer.pooled_features`."""
    from components.classifier import classifier

    return tl.pooled_features(classifier(name, device), images, tick=tick)


@st.cache_data(max_entries=8, show_spinner=False)
def run_uploads(kind: str, device: str, key: tuple, labels: tuple[int, ...], num_classes: int,
                _images: list, _progress=None) -> dict:
    """Leave-one-out predictions of a linear head on frozen features and on raw pixels.

    ``key`` (the images' digests) identifies ``_images``; ``kind`` is a registered ImageNet
    classifier ("efficientnet_lite0", "resnet18", ...) or "shapes" (the shapes-pretext backbone)."""
    import time

    from core.jobs import TRAINING

    report = _progress or (lambda *a, **k: None)
    y = np.asarray(labels)
    with TRAINING.slot(session_id()) as deadline:
        last = [0.0]

        def tick(frac, text):
            deadline.check()
            if time.perf_counter() - last[0] > 0.5:
                last[0] = time.perf_counter()
                report(frac, text)

        t0 = time.perf_counter()
        tick(0.0, "computing frozen features")
        if kind == "shapes":
            feats = tl.shapes_features(backbone(), _images)
        else:
            feats = _imagenet_features(kind, _images, device, lambda: tick(0.1, "frozen ImageNet features"))
        t_feat = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred_f = tl.loo_predictions(feats, y, num_classes, tick=lambda: tick(0.4, "leave-one-out heads on features"))
        t_head = time.perf_counter() - t0
        pred_p = tl.loo_predictions(tl.pixel_features(_images), y, num_classes,
                                    tick=lambda: tick(0.7, "leave-one-out heads on raw pixels"))
    return {"features": pred_f.tolist(), "pixels": pred_p.tolist(), "labels": y.tolist(),
            "feature_dim": int(feats.shape[1]), "feature_seconds": t_feat, "head_seconds": t_head}


# --- charts (plain Vega-Lite dicts) ------------------------------------------------------------


def accuracy_lines(rows: list[dict], chance: float) -> None:
    """Held-out accuracy vs examples per class (log x), one line per regime, chance as a rule."""
    order = [tl.REGIMES[r] for r in tl.REGIMES]
    st.vega_lite_chart({
        "layer": [
            {"data": {"values": rows},
             "mark": {"type": "line", "point": True, "tooltip": True},
             "encoding": {
                 "x": {"field": "shots", "type": "quantitative", "title": "labelled examples per class (log scale)",
                       "scale": {"type": "log"}, "axis": {"values": sorted({r["shots"] for r in rows}), "format": "d"}},
                 "y": {"field": "accuracy", "type": "quantitative", "title": "held-out accuracy (target task)",
                       "scale": {"domain": [0, 1]}, "axis": {"format": "%"}},
                 "color": {"field": "label", "type": "nominal", "title": None, "sort": order},
             }},
            {"data": {"values": [{"chance": chance}]},
             "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#616161"},
             "encoding": {"y": {"field": "chance", "type": "quantitative"}}},
        ],
        "height": 300,
    }, width="stretch")


def probability_bars(names: list[str], probs: list[float], title: str = "source network's softmax") -> None:
    st.vega_lite_chart({
        "data": {"values": [{"class": n, "probability": p} for n, p in zip(names, probs)]},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "class", "type": "nominal", "title": None, "sort": None},
            "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}, "title": title},
        },
        "height": {"step": 22},
    }, width="stretch")
