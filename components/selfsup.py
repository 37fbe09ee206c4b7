"""Cached, bounded work and charts for the Self-supervised learning page.

* :func:`views` - two seeded torchvision v2 views of the active image (per digest and seed).
* :func:`run_training` - contrastive training + linear probes (:func:`core.selfsup.run`) in a
  :data:`core.jobs.TRAINING` slot, cached per settings (plain data, shared between sessions).
* :func:`trained_encoder` - the encoder rebuilt from a cached run's state dict (bounded).
* :func:`view_matrices` - the "which view matches?" cosine matrices, random vs trained encoder.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

N_UNLABELLED_CHOICES = (200, 400, 800, 1200, 1600)
MATRIX_SHAPES = 5  # held-out shape crops next to the user's photo in the view matrix
VIEW_DISPLAY = 160


@st.cache_data(max_entries=16, show_spinner=False)
def views(digest: str, seed: int, _rgb: np.ndarray) -> list[np.ndarray]:
    from core.imageio import fit_long_side
    from core.selfsup import photo_views

    return photo_views(fit_long_side(_rgb, 320), seed, size=VIEW_DISPLAY)


@st.cache_data(max_entries=8, show_spinner=False)
def run_training(n_unlabelled: int, epochs: int, temperature: float, seed: int, _progress=None) -> dict:
    """:func:`core.selfsup.run` in the shared live-training slot (JobRefused / JobTimeout propagate
    and nothing is cached then)."""
    from core import selfsup
    from core.jobs import TRAINING

    recipe = selfsup.Recipe(n_unlabelled=n_unlabelled, epochs=epochs, temperature=float(temperature), seed=seed)
    with TRAINING.slot(session_id()) as deadline:
        return selfsup.run(recipe, progress=_progress, deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def trained_encoder(settings: tuple, _state: dict, width: int):
    from core.selfsup import encoder_from_state

    return encoder_from_state(_state, width)


@st.cache_resource(max_entries=2, show_spinner=False)
def random_encoder(seed: int, width: int):
    from core.selfsup import make_encoder

    return make_encoder(seed, width)[0].eval()


@st.cache_data(max_entries=1, show_spinner=False)
def matrix_crops(n: int) -> tuple[list[np.ndarray], list[str]]:
    """``n`` held-out plain-background crops of different classes (fixed, never trained on)."""
    from core.selfsup import TEST_SEED
    from core.shapes import SHAPE_CLASSES, make_classification_set

    images, labels = make_classification_set(60, seed=TEST_SEED + 999, background="plain")
    picks = [int(np.flatnonzero(labels == c)[0]) for c in range(min(n, len(SHAPE_CLASSES)))]
    return [images[i] for i in picks], [SHAPE_CLASSES[int(labels[i])] for i in picks]


@st.cache_data(max_entries=16, show_spinner=False)
def view_matrices(digest: str, settings: tuple, view_seed: int, _rgb: np.ndarray, _state: dict, width: int) -> dict:
    """{"random": view_matrix(...), "trained": view_matrix(...), "names": [...]} for the photo and
    MATRIX_SHAPES crops; the same views for both encoders."""
    from core.imageio import fit_long_side
    from core.selfsup import view_matrix

    crops, names = matrix_crops(MATRIX_SHAPES)
    images = [fit_long_side(_rgb, 256)] + crops
    out = {"names": ["your photo"] + names}
    for name, enc in (("random", random_encoder(settings[-1], width)),
                      ("trained", trained_encoder(settings, _state, width))):
        out[name] = view_matrix(enc, images, view_seed)
    return out


# --- charts (plain Vega-Lite dicts) ------------------------------------------------------------


def curves(history: list[dict], random_probe: float | None, chance: float) -> None:
    """NT-Xent loss per epoch (left) and probe / pair accuracy per epoch (right)."""
    rows = [{"epoch": h["epoch"], "metric": name, "value": h[key]} for h in history
            for key, name in (("probe_accuracy", "linear probe (trained encoder)"),
                              ("knn_accuracy", "5-NN (trained encoder)"),
                              ("pair_accuracy", "pair matched in batch (training views)")) if key in h]
    rules = [{"value": chance, "what": "chance (1/6)"}]
    if random_probe is not None:
        rules.insert(0, {"value": random_probe, "what": "linear probe, random encoder"})
    left, right = st.columns(2)
    with left:
        st.vega_lite_chart({
            "data": {"values": [{"epoch": h["epoch"], "loss": h["loss"]} for h in history]},
            "mark": {"type": "line", "point": True, "tooltip": True},
            "encoding": {"x": {"field": "epoch", "type": "quantitative", "axis": {"tickMinStep": 1, "format": "d"}},
                         "y": {"field": "loss", "type": "quantitative", "title": "NT-Xent loss (training)",
                               "scale": {"zero": False}}},
            "height": 240,
        }, width="stretch")
    with right:
        st.vega_lite_chart({
            "layer": [
                {"data": {"values": rows}, "mark": {"type": "line", "point": True, "tooltip": True},
                 "encoding": {"x": {"field": "epoch", "type": "quantitative",
                                    "axis": {"tickMinStep": 1, "format": "d"}},
                              "y": {"field": "value", "type": "quantitative", "title": "accuracy",
                                    "scale": {"domain": [0, 1]}, "axis": {"format": "%"}},
                              "color": {"field": "metric", "type": "nominal", "title": None,
                                        "legend": {"orient": "right", "labelLimit": 170}}}},
                # Reference levels: grey dashed rules with their own labels (a colour encoding here
                # would share, and overwrite, the curves' colour scale).
                {"data": {"values": rules}, "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#757575",
                                                     "tooltip": True},
                 "encoding": {"y": {"field": "value", "type": "quantitative"}}},
                {"data": {"values": rules}, "mark": {"type": "text", "align": "right", "dy": -6, "color": "#616161",
                                                     "x": "width", "fontSize": 11},
                 "encoding": {"y": {"field": "value", "type": "quantitative"}, "text": {"field": "what"}}},
            ],
            "height": 240,
        }, width="stretch")


def heatmap(sim: np.ndarray, labels: list[str], title: str) -> None:
    rows = [{"row": labels[i], "col": labels[j], "i": i, "j": j, "cosine": round(float(sim[i, j]), 3)}
            for i in range(len(labels)) for j in range(len(labels))]
    order = labels
    st.vega_lite_chart({
        "title": title,
        "data": {"values": rows},
        "mark": {"type": "rect", "tooltip": True},
        "encoding": {
            "x": {"field": "col", "type": "ordinal", "sort": order, "title": None, "axis": {"labelAngle": -45}},
            "y": {"field": "row", "type": "ordinal", "sort": order, "title": None},
            # features after ReLU + max pool are non-negative, so every cosine is >= 0 and most are
            # high: the colour scale spans the matrix's own range so the structure shows
            "color": {"field": "cosine", "type": "quantitative", "scale": {"scheme": "viridis", "zero": False}},
        },
        "height": 300,
    }, width="stretch")


def scatter(points: np.ndarray, labels: np.ndarray, title: str) -> None:
    from core.shapes import SHAPE_CLASSES

    rows = [{"PC 1": round(float(p[0]), 4), "PC 2": round(float(p[1]), 4), "class": SHAPE_CLASSES[int(c)]}
            for p, c in zip(points, labels)]
    st.vega_lite_chart({
        "title": title,
        "data": {"values": rows},
        "mark": {"type": "point", "filled": True, "size": 30, "opacity": 0.7, "tooltip": True},
        "encoding": {"x": {"field": "PC 1", "type": "quantitative"},
                     "y": {"field": "PC 2", "type": "quantitative"},
                     "color": {"field": "class", "type": "nominal", "sort": list(SHAPE_CLASSES)},
                     "shape": {"field": "class", "type": "nominal", "sort": list(SHAPE_CLASSES)}},
        "height": 300,
    }, width="stretch")
