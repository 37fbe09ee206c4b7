"""Cached, bounded work and charts for the Multi-modal fusion page (core.fusion does the work)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

N_TRAIN_CHOICES = (300, 600, 900, 1200, 1500, 2000, 3000)
STARTS = ("pretrained encoder", "random weights")


@st.cache_data(max_entries=8, show_spinner=False)
def sample_pairs(seed: int, n: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` training pairs of this seed (pair i depends only on (seed, i))."""
    from core import fusion

    return fusion.make_pairs(n, fusion.TRAIN_SEED + seed)


@st.cache_data(max_entries=2, show_spinner=False)
def ceiling() -> tuple[int, list]:
    from core import fusion

    return fusion.additive_ceiling(fusion.rule_table())


@st.cache_data(max_entries=2, show_spinner=False)
def parameter_counts() -> dict[str, int]:
    from core import fusion

    return {kind: fusion.parameters(kind) for kind in fusion.MODELS}


@st.cache_data(max_entries=8, show_spinner=False)
def run_fusion(n_train: int, epochs: int, seed: int, p_train: float, start: str, _progress=None) -> dict:
    """All five models (:func:`core.fusion.train`) in the shared training slot; plain data."""
    from core import fusion
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return fusion.train(n_train=n_train, epochs=epochs, seed=seed, p_train=p_train,
                            pretrained=start == STARTS[0], progress=_progress, deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def trained_nets(settings: tuple, _state: dict) -> dict:
    """The trained nets of one finished run (rebuilt from the stored state dicts), read-only."""
    from core import fusion

    return {kind: fusion.load_net(kind, state) for kind, state in _state.items()}


@st.cache_data(max_entries=16, show_spinner=False)
def curve(settings: tuple, missing: str, _result: dict) -> list[dict]:
    from core import fusion

    return fusion.dropout_curve(_result, missing)


@st.cache_data(max_entries=32, show_spinner=False)
def predict(settings: tuple, digest: str, word: int, image_missing: bool, _nets: dict, _crop, _fill) -> dict:
    from core import fusion

    probs = fusion.predict_example(_nets, None if image_missing else _crop, word, _fill)
    return {k: v.tolist() for k, v in probs.items()}


@st.cache_data(max_entries=32, show_spinner=False)
def crop(digest: str, _rgb: np.ndarray, box) -> np.ndarray:
    from core import fusion

    return fusion.crop(_rgb, box)


# --- charts ------------------------------------------------------------------------------------


def missing_lines(rows: list[dict], p: float, order: list[str], missing: str) -> None:
    """Held-out accuracy against the test-time missing rate, one line per model; chance dashed."""
    what = "image and the word each" if missing == "each independently" else missing
    st.vega_lite_chart({
        "data": {"values": rows},
        "layer": [
            {"mark": {"type": "line", "point": True, "tooltip": True},
             "encoding": {"x": {"field": "p", "type": "quantitative",
                                "title": f"probability that the {what} is missing"},
                          "y": {"field": "accuracy", "type": "quantitative", "scale": {"domain": [0, 1]},
                                "axis": {"format": "%"}, "title": "held-out accuracy"},
                          "color": {"field": "model", "type": "nominal", "sort": order, "title": None}}},
            {"data": {"values": [{"p": p}]}, "mark": {"type": "rule", "color": "#616161"},
             "encoding": {"x": {"field": "p", "type": "quantitative"}}},
            {"data": {"values": [{"chance": 1 / 3}]},
             "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#9e9e9e"},
             "encoding": {"y": {"field": "chance", "type": "quantitative"}}},
        ],
        "height": 280,
    }, width="stretch")


def prob_bars(probs: dict[str, list], labels: list[str], order: list[str], truth: str | None) -> None:
    rows = [{"model": m, "label": lab, "probability": float(p[i]), "true": lab == truth}
            for m in order for i, lab in enumerate(labels) for p in [probs[m]]]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "model", "type": "nominal", "sort": order, "title": None},
            "yOffset": {"field": "label", "sort": labels},
            "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}},
            "color": {"field": "label", "type": "nominal", "sort": labels, "title": "label"},
            "opacity": {"condition": {"test": "datum.true", "value": 1.0}, "value": 0.55},
        },
        "height": {"step": 12},
    }, width="stretch")
