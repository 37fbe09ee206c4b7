"""Cached, bounded work and charts for the Multi-label page (core.multilabel does the maths)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

N_TRAIN_CHOICES = (200, 400, 600, 800, 1200, 1600)
EPOCH_RANGE = (1, 12)


N_TEST = 300


@st.cache_resource(max_entries=2, show_spinner=False)
def dataset(n_train: int, n_test: int, seed: int, _progress=None, _deadline=None):
    """Drawing scenes is the slow part (about 20 ms each): shared by every run with these sizes
    (read-only tensors; ~20 MB for 600 + 300 scenes)."""
    from core import multilabel

    return multilabel.dataset(n_train, n_test, seed, _progress, _deadline)


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(n_train: int, epochs: int, seed: int, _progress=None) -> dict:
    """Sigmoid vs softmax head (:func:`core.multilabel.compare`) in a shared training slot."""
    from core import multilabel
    from core.jobs import TRAINING
    from models.shapes_cnn import pretrained_backbone

    report = _progress or (lambda *a, **k: None)
    with TRAINING.slot(session_id()) as deadline:
        data = dataset(n_train, N_TEST, seed, lambda f, text, **k: report(0.3 * f, text), deadline)
        return multilabel.compare(backbone=pretrained_backbone(), n_train=n_train, n_test=N_TEST, epochs=epochs,
                                  seed=seed, data=data,
                                  progress=lambda f, text, **k: report(0.3 + 0.7 * f, text, **k), deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def trained(head: str, settings: tuple, _state: dict):
    """One finished run's model (rebuilt from its state dict), shared read-only."""
    from core import multilabel

    return multilabel.load_model(_state)


@st.cache_data(max_entries=32, show_spinner=False)
def predict(head: str, settings: tuple, digest: str, _model, _rgb96: np.ndarray) -> np.ndarray:
    from core import multilabel
    from core.hooks import lock_for

    with lock_for(_model):
        return multilabel.predict(_model, _rgb96, head)


@st.cache_data(max_entries=16, show_spinner=False)
def scene(seed: int):
    from core import multilabel

    s = multilabel.scene(seed)
    return s.image, s.multi_hot


@st.cache_data(max_entries=16, show_spinner=False)
def photo96(digest: str, _rgb: np.ndarray) -> np.ndarray:
    from core import multilabel

    return multilabel.to_input(_rgb)


def probability_bars(probs: np.ndarray, thresholds, classes, truth=None) -> None:
    """One bar per class with its threshold as a tick; bars over the threshold are coloured."""
    rows = []
    for i, c in enumerate(classes):
        row = {"class": c, "probability": float(probs[i]), "threshold": float(thresholds[i]),
               "decision": "yes" if probs[i] >= thresholds[i] else "no"}
        if truth is not None:
            row["in the scene"] = "yes" if truth[i] else "no"
        rows.append(row)
    st.vega_lite_chart({
        "data": {"values": rows},
        "layer": [
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {"y": {"field": "class", "type": "nominal", "sort": None, "title": None},
                          "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]}},
                          "color": {"field": "decision", "type": "nominal", "title": "predicted",
                                    "scale": {"domain": ["yes", "no"], "range": ["#2e7d32", "#b0bec5"]}}}},
            {"mark": {"type": "tick", "color": "#d32f2f", "thickness": 3, "size": 22},
             "encoding": {"y": {"field": "class", "type": "nominal", "sort": None},
                          "x": {"field": "threshold", "type": "quantitative"}}},
        ],
        "height": {"step": 26},
    }, width="stretch")
