"""Streamlit side of the Backpropagation page: session training state and charts."""

from __future__ import annotations

import streamlit as st

from components.session import session_id

_STATE = "_bp.trainer"


def trainer(seed: int, activation: str, optimizer: str):
    """This session's Trainer; a new one when the seed, activation or optimiser changed (or on Reset)."""
    from core import backprop as bp

    t = st.session_state.get(_STATE)
    if t is None or t.seed != seed or t.activation != activation or t.optimizer != optimizer:
        t = st.session_state[_STATE] = bp.Trainer.new(seed, activation, data=data(seed), optimizer=optimizer)
    return t


def reset() -> None:
    st.session_state.pop(_STATE, None)


@st.cache_resource(max_entries=4, show_spinner=False)
def data(seed: int):
    """The training crops (tensors, read-only, shared between sessions)."""
    from core import backprop as bp

    return bp.training_data(seed)


def run_steps(t, n: int, lr: float, _progress=None):
    """``n`` steps inside the shared live-training gate (one run per session)."""
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return t.run(n, lr, progress=_progress, deadline=deadline)


@st.cache_data(max_entries=8, show_spinner=False)
def init_norms(seed: int) -> list[dict]:
    from core import backprop as bp

    return bp.init_grad_norms(seed)


def loss_chart(history: list[dict]) -> None:
    rows = [{"step": r["step"], "loss": r["loss"]} for r in history]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "line", "point": len(rows) < 40, "tooltip": True},
        "encoding": {"x": {"field": "step", "type": "quantitative", "axis": {"tickMinStep": 1, "format": "d"}},
                     "y": {"field": "loss", "type": "quantitative", "title": "batch cross-entropy",
                           "scale": {"zero": False}}},
        "height": 240,
    }, width="stretch")


def norm_bars(rows: list[dict], *, colour: str | None = None) -> None:
    """Per-layer weight-gradient norms on a log axis (input side at the top)."""
    enc = {"y": {"field": "layer", "type": "nominal", "sort": None, "title": None},
           "x": {"field": "grad_norm", "type": "quantitative", "scale": {"type": "log"},
                 "title": "‖∂L/∂W‖ (log scale)"}}
    if colour:
        enc["yOffset"] = {"field": colour}
        enc["color"] = {"field": colour, "type": "nominal", "title": None}
    # Points, not bars: a bar on a log axis has no zero to start from, and Vega-Lite drops it.
    st.vega_lite_chart({"data": {"values": rows},
                        "mark": {"type": "point", "filled": True, "size": 90, "tooltip": True}, "encoding": enc,
                        "height": {"step": 14 if colour else 22}}, width="stretch")


def filter_heatmap(rows: list[dict]) -> None:
    st.vega_lite_chart({
        "data": {"values": rows},
        "facet": {"row": {"field": "what", "type": "nominal", "title": None, "sort": None},
                  "column": {"field": "channel", "type": "nominal", "title": "input channel"}},
        "spec": {"mark": {"type": "rect", "tooltip": True}, "width": 70, "height": 70,
                 "encoding": {"x": {"field": "col", "type": "ordinal", "axis": None},
                              "y": {"field": "row", "type": "ordinal", "axis": None},
                              "color": {"field": "value", "type": "quantitative",
                                        "scale": {"scheme": "redblue", "domainMid": 0, "reverse": True}}}},
        "resolve": {"scale": {"color": "independent"}},
    })


def input_gradient(t, digest: str, rgb, label):
    """bp.input_gradient for this session's network at its current step, remembered until the
    network, its step or the image changes (a slider elsewhere on the page does not recompute it)."""
    from core import backprop as bp

    key = (id(t), t.step_no, t.activation, digest, label)
    memo = st.session_state.get("_bp.inputgrad")
    if memo is None or memo[0] != key:
        memo = st.session_state["_bp.inputgrad"] = (key, bp.input_gradient(t.params, rgb, t.activation, label))
    return memo[1]
