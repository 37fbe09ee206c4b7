"""Cached, bounded work and charts for the Ensembles page.

* :func:`run_ensemble` - :func:`core.ensembles.train_ensemble` in a shared
  :data:`core.jobs.TRAINING` slot, cached per settings (plain data: probabilities, numpy state
  dicts), so a classroom's default run trains once.
* :func:`members` - the trained members rebuilt as torch models (bounded cache_resource).
* :func:`sample_probs` - every member's softmax on one synthetic shape image, per settings.
* :func:`crop_samples` - a few of the training crops (shown before anything is trained).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

N_TRAIN_CHOICES = (200, 400, 800, 1200, 1600)
WIDTH_MODES = ("mixed", "same")  # 4/6/8 cycling, or all width 6


def recipe(members: int, n_train: int, epochs: int, seed: int, widths: str):
    from core.ensembles import Recipe

    return Recipe(members=members, n_train=n_train, epochs=epochs, seed=seed, mixed_widths=widths == "mixed")


@st.cache_data(max_entries=8, show_spinner=False)
def run_ensemble(members: int, n_train: int, epochs: int, seed: int, widths: str, _progress=None) -> dict:
    """Train the ensemble (JobRefused / JobTimeout propagate; nothing is cached then)."""
    from core import ensembles
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return ensembles.train_ensemble(recipe(members, n_train, epochs, seed, widths),
                                        progress=_progress, deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def members(settings: tuple, _result: dict) -> list:
    from core.ensembles import rebuild_members

    return rebuild_members(_result)


@st.cache_data(max_entries=32, show_spinner=False)
def sample_probs(settings: tuple, shape_seed: int, tta: bool, _result: dict, _image: np.ndarray) -> np.ndarray:
    """(M, C) softmax of every member on the synthetic image ``shape_seed``."""
    from core.ensembles import image_probs

    return image_probs(members(settings, _result), _image, tta=tta)


@st.cache_data(max_entries=8, show_spinner=False)
def crop_samples(seed: int, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training crops of ``seed`` (the same ones the members train on)."""
    from core.shapes import make_classification_set

    return make_classification_set(n, seed=7_000_000 + seed, size=64)  # core.livetrain.shapes_data's seed


@st.cache_data(max_entries=8, show_spinner=False)
def member_sizes(widths: tuple[int, ...]) -> dict[int, int]:
    """Parameters of a shapes CNN per width."""
    from models.shapes_cnn import ShapesNet

    return {w: sum(p.numel() for p in ShapesNet(width=w).parameters()) for w in widths}


# --- charts (plain Vega-Lite dicts) -----------------------------------------------------------


def size_lines(rows: list[dict]) -> None:
    """Ensemble accuracy vs number of members, one line per combiner, with the subset spread."""
    st.vega_lite_chart({
        "data": {"values": rows},
        "encoding": {
            "x": {"field": "members", "type": "quantitative", "title": "members in the ensemble",
                  "axis": {"tickMinStep": 1, "format": "d"}},
            "color": {"field": "combiner", "type": "nominal", "title": None,
                      "scale": {"range": ["#1f77b4", "#e4572e"]}, "legend": {"symbolOpacity": 1}},
        },
        "layer": [
            {"mark": {"type": "area", "opacity": 0.15},
             "encoding": {"y": {"field": "min", "type": "quantitative"}, "y2": {"field": "max"}}},
            {"mark": {"type": "line", "point": True, "tooltip": True, "strokeWidth": 2.5},
             "encoding": {"y": {"field": "accuracy", "type": "quantitative", "title": "held-out accuracy",
                                "axis": {"format": "%"}, "scale": {"zero": False}},
                          "strokeDash": {"field": "combiner", "type": "nominal", "title": None}}},
        ],
        "height": 260,
    }, width="stretch")


def disagreement_bars(rows: list[dict]) -> None:
    """Error rate of the ensemble per agreement level (bar labels: number of examples)."""
    order = [r["label"] for r in rows]
    st.vega_lite_chart({
        "data": {"values": rows},
        "encoding": {
            "x": {"field": "label", "type": "nominal", "sort": order, "title": "members agreeing with the ensemble",
                  "axis": {"labelAngle": 0}},
            "y": {"field": "error_rate", "type": "quantitative", "title": "ensemble error rate",
                  "axis": {"format": "%"}, "scale": {"domain": [0, 1]}},
        },
        "layer": [
            {"mark": {"type": "bar", "tooltip": True, "color": "#e4572e"}},
            {"mark": {"type": "text", "dy": -6},
             "encoding": {"text": {"field": "examples", "type": "quantitative", "format": "d"}}},
        ],
        "height": 260,
    }, width="stretch")


def probability_bars(rows: list[dict], order: list[str]) -> None:
    """One small bar chart per model (members then the average): probability per class."""
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "class", "type": "nominal", "title": None, "sort": None},
            "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}, "title": None},
            "facet": {"field": "model", "type": "nominal", "sort": order, "columns": 3, "title": None},
        },
        "width": 150, "height": {"step": 18},
    })


def tta_bars(rows: list[dict]) -> None:
    """Accuracy without and with TTA, per member and for the soft average."""
    data = [{"model": r["model"], "evaluation": k, "accuracy": r[k]} for r in rows for k in ("without TTA", "with TTA")]
    st.vega_lite_chart({
        "data": {"values": data},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "model", "type": "nominal", "title": None, "sort": None},
            "yOffset": {"field": "evaluation", "sort": ["without TTA", "with TTA"]},
            "x": {"field": "accuracy", "type": "quantitative", "axis": {"format": "%"}, "title": "held-out accuracy",
                  "scale": {"domain": [0, 1]}},
            "color": {"field": "evaluation", "type": "nominal", "sort": ["without TTA", "with TTA"], "title": None},
        },
        "height": {"step": 11},
    }, width="stretch")
