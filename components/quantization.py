"""Cached, bounded work for the Quantization page.

* :func:`eval_set` - the images the bit-width curve is measured on: the shapes CNN's held-out
  crops, or for an ImageNet classifier the sample photos and variants of the active image.
* :func:`photo_set` - the images the INT8 measurement is judged on: for an ImageNet classifier
  the 130 real photos of :func:`core.quantization.photo_eval` (the same for every session).
* :func:`weight_grid_agreement` - agreement with only the weights rounded (activations FP32).
* :func:`curve` - agreement/accuracy with the weights fake-quantised to 8..2 bits, cached per
  (model, evaluation set, scale mode): moving the bit-width slider only looks a point up.
* :func:`subject_answer` - the page image's top class with the weights at one bit width.
* :func:`histogram` / :func:`errors` - one layer's weights on its grid (numpy, cached).
* :func:`measure` - :func:`core.quantization.compare` in a :data:`core.jobs.TIMING` slot (one
  timing run per server at a time), cached per (model, device, threads, settings) and shared
  between sessions (``cache_resource``: the result, with its INT8 file, is not copied per session).
* :func:`resnet_sized` - ResNet-18's architecture with untrained weights, timed beside the
  page's model (latency and size do not depend on the weight values).
* :func:`margin_chart` - each evaluation image at FP32's top-1 margin, kept or changed by INT8.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from core.jobs import MODEL_TURNS
from core.quantization import PHOTO_CALIBRATION  # numpy only at import

N_SHAPES_EVAL = 400  # held-out crops the shapes CNN is evaluated on
N_SHAPES_CALIB = 32
N_IMAGENET_CALIB = PHOTO_CALIBRATION  # random crops of the sample photos


@st.cache_data(max_entries=4, show_spinner=False)  # about 14 MB each (23 images at 224 px)
@MODEL_TURNS.take
def eval_set(model: str, key: str, _clf, _image: np.ndarray | None, title: str = ""):
    """For the bit-width curve. Shapes: held-out labelled crops; ImageNet: the 13 sample photos
    + the 10 variants of ``_image`` (small: the curve runs the network 8 times on it)."""
    from core import quantization as qz

    if _clf.kind == "shapes":
        return qz.shapes_eval(_clf, N_SHAPES_EVAL)
    return qz.imagenet_eval(_clf, _image, title)


@st.cache_data(max_entries=4, show_spinner=False)
@MODEL_TURNS.take
def photo_set(model: str, _clf):
    """For the INT8 measurement. Shapes: the curve's held-out crops; ImageNet: the 130 real photos
    (13 sample photos x 10 variants), the same for every session and active image."""
    from core import quantization as qz

    if _clf.kind == "shapes":
        return qz.shapes_eval(_clf, N_SHAPES_EVAL)
    return qz.photo_eval(_clf)


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def weight_grid_agreement(model: str, eval_key: str, bits: int, per_channel: bool, _clf, _evals, _ref) -> float:
    """Agreement with FP32's answers ``_ref`` on ``_evals`` with only the weights on the ``bits``
    grid (activations FP32, on the CPU): how much of INT8's disagreement the weights' rounding
    alone explains."""
    from core import quantization as qz

    net = qz.fake_quantize(_clf.model, bits, per_channel=per_channel).to("cpu")
    return float((qz.predict(net, _evals.x)[0] == np.asarray(_ref)).mean())


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def calibration(model: str, _clf) -> np.ndarray:
    from core import quantization as qz

    if _clf.kind == "shapes":
        return qz.shapes_calibration(_clf, N_SHAPES_CALIB)
    return qz.imagenet_calibration(_clf, N_IMAGENET_CALIB)


@st.cache_data(max_entries=16, show_spinner=False)
@MODEL_TURNS.take
def curve(model: str, device: str, eval_key: str, per_channel: bool, _clf, _evals, _progress=None) -> list:
    from core import quantization as qz

    return qz.degradation_curve(_clf.model, _evals, per_channel=per_channel, progress=_progress)


@st.cache_data(max_entries=64, show_spinner=False)
@MODEL_TURNS.take
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
                               title="ResNet-18 architecture (untrained weights)")


@st.cache_data(max_entries=4, show_spinner=False)
def weight_sizes(model: str, _clf) -> dict:
    from core import quantization as qz

    return qz.weight_bytes(_clf.model)


@st.cache_resource(max_entries=4, show_spinner=False)
def measure(model: str, weights: str, device: str, threads: int, cpu_bf16: bool, gpu_batch: int, eval_key: str,
            dynamic: bool, _model, _calib, _evals, _progress=None):
    """:func:`core.quantization.compare` in a TIMING slot (``dynamic``: also the dynamic INT8
    row); JobRefused/JobTimeout propagate (and nothing is cached then)."""
    from core import quantization as qz
    from core.jobs import TIMING

    with TIMING.slot(session_id()) as deadline:
        return qz.compare(_model, calib=_calib, evals=_evals, threads=threads, device=device,
                          cpu_bf16=True if cpu_bf16 else None, int8_dynamic=dynamic, gpu_batch=gpu_batch,
                          name=model, weights=weights, skip_failed_export=True, progress=_progress,
                          deadline=deadline)


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


def margin_chart(points: list[dict], edges) -> None:
    """One dot per evaluation image at FP32's top-1 margin (p1 - p2), on a row for "kept" or
    "changed" by INT8; dashed rules at the band edges of the table beside it."""
    rng = np.random.default_rng(0)  # vertical jitter only, so overlapping dots stay visible
    values = [{**p, "jitter": float(rng.uniform(-0.3, 0.3))} for p in points]
    st.vega_lite_chart({
        "layer": [
            {"data": {"values": values},
             "mark": {"type": "point", "filled": True, "size": 45, "opacity": 0.75},
             "encoding": {
                 "x": {"field": "margin", "type": "quantitative", "scale": {"domain": [0, 1]},
                       "title": "FP32's top-1 margin over its runner-up (probability)"},
                 "y": {"field": "INT8 static", "type": "nominal", "title": None, "sort": ["changed", "kept"]},
                 "yOffset": {"field": "jitter", "type": "quantitative", "scale": {"domain": [-0.5, 0.5]}},
                 "color": {"field": "INT8 static", "type": "nominal", "title": None,
                           "scale": {"domain": ["kept", "changed"], "range": ["#90a4ae", "#c62828"]}},
                 "tooltip": [{"field": "image"}, {"field": "FP32"}, {"field": "INT8"},
                             {"field": "margin", "format": ".3f"}]}},
            {"data": {"values": [{"edge": float(e)} for e in edges]},
             "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#555"},
             "encoding": {"x": {"field": "edge", "type": "quantitative"}}},
        ],
        "height": 130,
    }, width="stretch")
