"""Cached, bounded work and charts for the Class imbalance page.

* :func:`train_counts` - the training histogram for the current settings (labels only, cheap).
* :func:`sample_crops` - the first few training crops, shown before any training.
* :func:`run_compare` - :func:`core.imbalance.compare` in a ``core.jobs.TRAINING`` slot, cached
  per settings (plain data: held-out probabilities, histories), shared between sessions.
* charts: :func:`histogram`, :func:`confusion_heatmap`, :func:`pr_lines` (plain Vega-Lite dicts).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from core import imbalance as im

N_TRAIN_CHOICES = (200, 400, 600, 800, 1000, 1500)


@st.cache_data(max_entries=32, show_spinner=False)
def train_counts(n_train: int, ratio: int, minority: int, seed: int) -> list[int]:
    return np.bincount(im.train_labels(n_train, ratio, minority, seed), minlength=im.NUM_CLASSES).tolist()


@st.cache_data(max_entries=8, show_spinner=False)
def sample_crops(ratio: int, minority: int, seed: int, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training crops (image i depends only on (seed, i): they are the training set's)."""
    from core.shapes import make_classification_set

    return make_classification_set(n, seed=im.TRAIN_SEED + seed, size=64, classes=range(im.NUM_CLASSES),
                                   class_weights=im.class_mix(ratio, minority))


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(n_train: int, ratio: int, minority: int, methods: tuple[str, ...], gamma: float, epochs: int,
                seed: int = 0, _progress=None) -> dict:
    """Every chosen method trained on the same imbalanced set (JobRefused / JobTimeout propagate,
    and nothing is cached then)."""
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        data = im.imbalanced_data(n_train=n_train, ratio=ratio, minority=minority, seed=seed)
        return im.compare(data, methods=methods, epochs=epochs, gamma=gamma, seed=seed,
                          progress=_progress, deadline=deadline)


# --- charts ------------------------------------------------------------------------------------


def histogram(counts: list[int], classes: list[str], minority: int) -> None:
    rows = [{"class": c, "training crops": int(n), "role": "minority" if i == minority else "majority"}
            for i, (c, n) in enumerate(zip(classes, counts))]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "class", "type": "nominal", "sort": None, "title": None, "axis": {"labelAngle": 0}},
            "y": {"field": "training crops", "type": "quantitative"},
            "color": {"field": "role", "type": "nominal", "title": None,
                      "scale": {"domain": ["majority", "minority"], "range": ["#90a4ae", "#e53935"]}},
        },
        "height": 220,
    }, width="stretch")


def confusion_heatmap(matrix: np.ndarray, classes: list[str], title: str) -> None:
    """Rows = true class, columns = predicted class; colour = share of the true class's crops."""
    totals = matrix.sum(1, keepdims=True).clip(min=1)
    rows = [{"true": classes[i], "predicted": classes[j], "crops": int(matrix[i, j]),
             "share": float(matrix[i, j] / totals[i, 0])}
            for i in range(len(classes)) for j in range(len(classes))]
    enc = {"x": {"field": "predicted", "type": "nominal", "sort": classes, "axis": {"labelAngle": -45}},
           "y": {"field": "true", "type": "nominal", "sort": classes}}
    st.vega_lite_chart({
        "title": title,
        "data": {"values": rows},
        "encoding": enc,
        "layer": [
            {"mark": {"type": "rect", "tooltip": True},
             "encoding": {"color": {"field": "share", "type": "quantitative", "scale": {"domain": [0, 1],
                                    "scheme": "blues"}, "legend": None}}},
            {"mark": {"type": "text", "fontSize": 11},
             "encoding": {"text": {"field": "crops", "type": "quantitative"},
                          "color": {"condition": {"test": "datum.share > 0.5", "value": "white"},
                                    "value": "black"}}},
        ],
        "height": {"step": 34},
    }, width="stretch")


def pr_lines(curves: list[dict], points: list[dict]) -> None:
    """Precision-recall curves of the minority class (one line per method) and, as dots, each
    method's operating point at the chosen threshold."""
    st.vega_lite_chart({
        "layer": [
            {"data": {"values": curves},
             "mark": {"type": "line", "interpolate": "step-after", "tooltip": True},
             "encoding": {
                 "x": {"field": "recall", "type": "quantitative", "scale": {"domain": [0, 1]},
                       "axis": {"format": "%"}},
                 "y": {"field": "precision", "type": "quantitative", "scale": {"domain": [0, 1]},
                       "axis": {"format": "%"}},
                 "color": {"field": "method", "type": "nominal", "title": None, "sort": list(im.METHODS)},
                 "order": {"field": "step", "type": "quantitative"},
             }},
            {"data": {"values": points},
             "mark": {"type": "point", "filled": True, "size": 90, "tooltip": True},
             "encoding": {
                 "x": {"field": "recall", "type": "quantitative"},
                 "y": {"field": "precision", "type": "quantitative"},
                 "color": {"field": "method", "type": "nominal", "sort": list(im.METHODS)},
                 "shape": {"value": "diamond"},
             }},
        ],
        "height": 300,
    }, width="stretch")
