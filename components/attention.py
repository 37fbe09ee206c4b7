"""Cached, bounded work and charts for the Attention page (core.attention does the maths)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

N_TRAIN_CHOICES = (200, 400, 600, 800, 1000, 1500)
EPOCH_RANGE = (1, 10)


@st.cache_data(max_entries=4, show_spinner=False)
def architecture(width: int = 8) -> list[dict]:
    from core import attention

    return attention.architecture(width)


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(kind: str, n_train: int, epochs: int, seed: int, _progress=None) -> dict:
    """Plain vs attention net (:func:`core.attention.compare`) in a shared training slot."""
    from core import attention
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return attention.compare(kind=kind, n_train=n_train, epochs=epochs, seed=seed,
                                 progress=_progress, deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def trained_net(kind: str, settings: tuple, _state: dict):
    """The trained net of one finished run (rebuilt from its state dict), shared read-only."""
    from core import attention

    return attention.load_net(kind, _state)


@st.cache_data(max_entries=32, show_spinner=False)
def explain(kind: str, settings: tuple, digest: str, _net, _crop: np.ndarray) -> dict:
    from core import attention

    return attention.explain(_net, _crop)


@st.cache_data(max_entries=32, show_spinner=False)
def crop(digest: str, _rgb: np.ndarray, box) -> np.ndarray:
    from core import attention

    return attention.crop64(_rgb, box)


def channel_bars(weights: np.ndarray, title: str) -> None:
    rows = [{"channel": i, "weight": float(w)} for i, w in enumerate(weights)]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "channel", "type": "ordinal", "title": title,
                  "axis": {"labelAngle": 0, "values": list(range(0, len(rows), 8))}},
            "y": {"field": "weight", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "title": "channel weight sigmoid(…)"},
            "color": {"field": "weight", "type": "quantitative", "scale": {"scheme": "viridis", "domain": [0, 1]},
                      "legend": None},
        },
        "height": 220,
    }, width="stretch")


@st.cache_data(max_entries=32, show_spinner=False)
def shape_mask(seed: int, box) -> np.ndarray:
    """The exact 64-px mask of the offline sample's shape, cropped like :func:`crop`
    (``core.classifier.shape_sample`` draws ``make_scene(seed, size=160, n_shapes=(1, 1), ...)``)."""
    from core import attention
    from core.classifier import SHAPE_CANVAS
    from core.shapes import make_scene

    scene = make_scene(seed, size=SHAPE_CANVAS, n_shapes=(1, 1), min_size=0.22, max_size=0.34)
    m = np.repeat(scene.masks[0][..., None].astype(np.uint8) * 255, 3, axis=2)
    return attention.crop64(m, box)[..., 0] > 127
