"""Cached, bounded work for the Quantization page.

* :func:`eval_set` - the images agreement is measured on (per model; per active image for
  ResNet-18, whose set holds variants of it).
* :func:`curve` - agreement/accuracy with the weights fake-quantised to 8..2 bits, cached per
  (model, evaluation set, scale mode): moving the bit-width slider only looks a point up.
* :func:`subject_answer` - the page image's top class with the weights at one bit width.
* :func:`histogram` / :func:`errors` - one layer's weights on its grid (numpy, cached).
* :func:`measure` - :func:`core.quantization.compare` in a :data:`core.jobs.TIMING` slot (one
  timing run per server at a time), cached per (model, device, threads, settings) and shared
  between sessions (``cache_resource``: the result, with its INT8 file, is not copied per session).
* :func:`resnet_sized` - ResNet-18's architecture with untrained weights, for the offline
  speed/size measurement (latency and size do not depend on the weight values).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

N_SHAPES_EVAL = 400  # held-out crops the shapes CNN is evaluated on
N_SHAPES_CALIB = 32
N_IMAGENET_CALIB = 8


@st.cache_data(max_entries=8, show_spinner=False)
def eval_set(model: str, key: str, _clf, _image: np.ndarray | None):
    """Shapes: held-out labelled crops; ImageNet: gallery photos + variants of ``_image``."""
    from core import quantization as qz

    if _clf.kind == "shapes":
        return qz.shapes_eval(_clf, N_SHAPES_EVAL)
    return qz.imagenet_eval(_clf, _image)


@st.cache_data(max_entries=8, show_spinner=False)
def calibration(model: str, _clf) -> np.ndarray:
    from core import quantization as qz

    if _clf.kind == "shapes":
        return qz.shapes_calibration(_clf, N_SHAPES_CALIB)
    return qz.imagenet_calibration(_clf, N_IMAGENET_CALIB)


@st.cache_data(max_entries=16, show_spinner=False)
def curve(model: str, device: str, eval_key: str, per_channel: bool, _clf, _evals, _progress=None) -> list:
    from core import quantization as qz

    return qz.degradation_curve(_clf.model, _evals, per_channel=per_channel, progress=_progress)


@st.cache_data(max_entries=64, show_spinner=False)
def subject_answer(model: str, device: str, digest: str, bits: int, per_channel: bool, _clf,
                   _image: np.ndarray) -> tuple[int, float]:
    """(top class, probability) on the page's image; bits 32 = the FP32 model."""
    from core import quantization as qz

    if bits >= 32:
        probs = _clf.probs(_image)  # the shared model, under its lock
        return int(np.argmax(probs)), float(np.max(probs))
    net = qz.fake_quantize(_clf.model, bits, per_channel=per_channel)  # a private copy
    cls, prob = qz.predict(net, _clf.tensor(_image).numpy(), device=device)
    return int(cls[0]), float(prob[0])


def layer_weight(clf, layer: str) -> np.ndarray:
    from core import quantization as qz

    return qz.quantizable_layers(clf.model)[layer].weight.detach().float().cpu().numpy()


@st.cache_data(max_entries=64, show_spinner=False)
def histogram(model: str, layer: str, bits: int, per_channel: bool, channel: int | None, _clf):
    from core import quantization as qz

    w = layer_weight(_clf, layer)
    n = w.size if channel is None else w[channel].size
    return qz.layer_histogram(w, bits, per_channel=per_channel, channel=channel, layer=layer,
                              bins=int(min(80, max(20, n // 4))))


@st.cache_data(max_entries=32, show_spinner=False)
def errors(model: str, layer: str, bits: int, _clf) -> list[dict]:
    from core import quantization as qz

    return qz.error_table(layer_weight(_clf, layer), bits)


@st.cache_data(max_entries=16, show_spinner=False)
def narrowest(model: str, layer: str, _clf) -> int:
    from core import quantization as qz

    return qz.narrowest_channel(layer_weight(_clf, layer))


@st.cache_resource(max_entries=1, show_spinner=False)
def resnet_sized():
    """A Classifier around ResNet-18's architecture with untrained weights (CPU)."""
    from core.classifier import Classifier
    from models import registry

    model = registry.for_inference(registry.build_architecture("resnet18"), "cpu")
    return Classifier.imagenet(model, registry.categories("resnet18"), name="resnet18-untrained",
                               title="ResNet-18-sized CNN (untrained, same architecture)")


@st.cache_data(max_entries=4, show_spinner=False)
def weight_sizes(model: str, _clf) -> dict:
    from core import quantization as qz

    return qz.weight_bytes(_clf.model)


@st.cache_resource(max_entries=4, show_spinner=False)
def measure(model: str, weights: str, device: str, threads: int, cpu_bf16: bool, gpu_batch: int, eval_key: str,
            _model, _calib, _evals, _progress=None):
    """:func:`core.quantization.compare` in a TIMING slot; JobRefused/JobTimeout propagate
    (and nothing is cached then)."""
    from core import quantization as qz
    from core.jobs import TIMING

    with TIMING.slot(session_id()) as deadline:
        return qz.compare(_model, calib=_calib, evals=_evals, threads=threads, device=device,
                          cpu_bf16=True if cpu_bf16 else None, gpu_batch=gpu_batch, name=model, weights=weights,
                          skip_failed_export=True,
                          progress=_progress, deadline=deadline)


# --- charts (plain Vega-Lite dicts) -----------------------------------------------------------


def histogram_chart(h) -> None:
    """Bars of the weights' histogram, the grid's levels as thin red rules (zoom with the mouse wheel)."""
    bars = [{"from": float(a), "to": float(b), "weights": int(n)}
            for a, b, n in zip(h.edges[:-1], h.edges[1:], h.counts)]
    layers = [{
        "data": {"values": bars},
        "mark": {"type": "bar", "tooltip": True, "color": "#90a4ae"},
        "encoding": {"x": {"field": "from", "type": "quantitative", "title": "weight value"},
                     "x2": {"field": "to"},
                     "y": {"field": "weights", "type": "quantitative", "title": "weights"},
                     "y2": {"datum": 0}},
        "params": [{"name": "zoom", "select": "interval", "bind": "scales"}],
    }]
    if len(h.grid):
        layers.append({
            "data": {"values": [{"level": float(g)} for g in h.grid]},
            "mark": {"type": "rule", "color": "#c62828", "strokeWidth": 1, "opacity": 0.5},
            "encoding": {"x": {"field": "level", "type": "quantitative"}},
        })
    st.vega_lite_chart({"layer": layers, "height": 240}, width="stretch")


def curve_chart(rows: list[dict], bits: int) -> None:
    """Agreement/accuracy against bit width, with the slider's bit width marked."""
    st.vega_lite_chart({
        "layer": [
            {"data": {"values": rows},
             "mark": {"type": "line", "point": True, "tooltip": True},
             "encoding": {
                 "x": {"field": "bits", "type": "quantitative", "title": "weight bits (fake-quantised)",
                       "scale": {"domain": [2, 8], "reverse": True}, "axis": {"tickMinStep": 1, "format": "d"}},
                 "y": {"field": "value", "type": "quantitative", "title": None, "scale": {"domain": [0, 1]},
                       "axis": {"format": "%"}},
                 "color": {"field": "series", "type": "nominal", "title": None}}},
            {"data": {"values": [{"bits": bits}]},
             "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#555"},
             "encoding": {"x": {"field": "bits", "type": "quantitative"}}},
        ],
        "height": 240,
    }, width="stretch")


def comparison_chart(rows: list[dict]) -> None:
    """Latency (p50 bar, p95 tick) and size per variant, side by side."""
    lat = {"data": {"values": rows},
           "layer": [
               {"mark": {"type": "bar", "tooltip": True},
                "encoding": {"y": {"field": "variant", "type": "nominal", "title": None, "sort": None,
                                   "axis": {"labelLimit": 260}},
                             "x": {"field": "p50_ms", "type": "quantitative", "title": "latency p50 (ms), tick = p95"},
                             "color": {"field": "precision", "type": "nominal", "title": None}}},
               {"mark": {"type": "tick", "color": "black", "thickness": 2},
                "encoding": {"y": {"field": "variant", "type": "nominal", "sort": None},
                             "x": {"field": "p95_ms", "type": "quantitative"}}}],
           "width": 300}
    size = {"data": {"values": rows},
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {"y": {"field": "variant", "type": "nominal", "title": None, "sort": None,
                               "axis": None},
                         "x": {"field": "size_mb", "type": "quantitative", "title": "size on disk (MB)"},
                         "color": {"field": "precision", "type": "nominal", "title": None}},
            "width": 220}
    st.vega_lite_chart({"hconcat": [lat, size]}, width="content")
