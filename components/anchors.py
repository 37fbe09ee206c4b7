"""Cached steps of the Anchor boxes page (this page only).

* anchors per (working size, anchor layout): shared, read-only, a few kept;
* IoU of anchors and objects per (image, layout, objects): computed once, so moving the
  matching thresholds only reruns torchvision's Matcher (and that result is cached too);
* YOLO's raw forward and stride attribution per (model, device, image digest);
* the page's two log-scale charts, as Vega-Lite specs (:func:`level_chart`, :func:`iou_chart`).
"""

from __future__ import annotations

import streamlit as st

from core import anchors as ca
from core.images import LabImage
from core.jobs import MODEL_TURNS


@st.cache_resource(max_entries=8, show_spinner=False)
def anchor_set(height: int, width: int, levels: str, scales: str, ratios: str, base: int) -> ca.AnchorSet:
    return ca.generate(height, width, ca.preset_config(levels, scales, ratios, base))


@st.cache_resource(max_entries=4, show_spinner=False)
def overlaps(key: str, levels: str, scales: str, ratios: str, base: int, _anchors: ca.AnchorSet, _boxes) -> ca.Overlaps:
    """IoU matrix of the objects named by ``key`` (image digest + box source) and the anchors."""
    return ca.overlaps(_boxes, _anchors.boxes)


@st.cache_resource(max_entries=32, show_spinner=False)
def matching(key: str, levels: str, scales: str, ratios: str, base: int, high: float, low: float, low_quality: bool,
             _overlaps: ca.Overlaps) -> ca.Matching:
    return ca.match(_overlaps, high=high, low=low, low_quality=low_quality)


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def yolo_points(name: str, device: str, digest: str, _image: LabImage, conf: float, iou: float):
    """(stride table, detections with their grid points, PNG picture, letterboxed input size)
    of YOLO's raw forward (run on ``_image.work``). Boxes and points are returned, and drawn,
    in the page's working-image pixels (long side <= 640); the PNG is encoded once, here."""
    from components import models as cm
    from core.imageio import encode_png, fit_long_side
    from models.registry import get_spec

    detector = cm.detector(name, device)
    raw = ca.yolo_forward(detector.yolo, _image.work, imgsz=get_spec(name).input_size, device=device)
    found = ca.attribute(raw, conf=conf, iou=iou)
    work = fit_long_side(_image.work, ca.MATCH_LONG_SIDE)
    found = ca.rescale(found, work.shape[1] / _image.work.shape[1])
    picture = ca.draw_points(work, found, raw.strides)
    return ca.stride_table(raw, found), found, encode_png(picture), raw.input_hw


@st.cache_data(max_entries=32, show_spinner=False)
def matching_picture(key: str, levels: str, scales: str, ratios: str, base: int, high: float, low: float,
                     low_quality: bool, stride: int, _work, _anchors: ca.AnchorSet, _matching: ca.Matching,
                     _boxes, _names) -> bytes:
    """The whole-image matching view as PNG: it does not change when only the cell moves."""
    from core.imageio import encode_png

    level = _anchors.config.strides.index(stride)
    return encode_png(ca.draw_matching(_work, _anchors, _matching, _boxes, _names, level))


def _log_scale(values, *, nice: bool = True) -> dict:
    """A log scale for bars of counts (>= 1) whose lower end sits below the smallest count.

    A log-scale bar runs from the scale's lower end: Vega-Lite's default (0 once the bars are
    stacked, as a colour field stacks them) breaks the scale and draws nothing, and the
    smallest value itself would leave the shortest bar at zero length. The domain is given
    whole, so the chart's first render (Streamlit draws it before inserting the data) needs
    no extent of the still empty data either. ``nice`` widens it to powers of ten."""
    return {"type": "log", "domain": [min(values) / 2, max(values)], "nice": nice}


def level_chart(level_rows: list[dict]) -> dict:
    """Anchors per feature level, bars on a log scale (counts span 3-4 decades)."""
    rows = [{"level": f"stride {r['stride']}", "anchors": r["anchors"]} for r in level_rows]
    return {
        "title": "Anchors per level (log scale)",
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {"y": {"field": "level", "type": "nominal", "sort": None, "title": None},
                     # no stacking (a colour field would stack the bars from 0, which a log scale cannot show)
                     "x": {"field": "anchors", "type": "quantitative", "stack": None,
                           "scale": _log_scale([r["anchors"] for r in rows])},
                     "color": {"field": "level", "type": "nominal", "sort": None, "legend": None}},
        "height": {"step": 22},
    }


def iou_chart(hist: list[dict], low: float, high: float) -> dict:
    """Anchors by best IoU (non-empty bins of ``core.anchors.iou_histogram``), counts on a log
    scale, with the matcher's two thresholds as dashed rules."""
    return {
        "title": {"text": "Anchors by best IoU", "subtitle": "anchors touching an object"},
        "layer": [
            {"data": {"values": hist}, "mark": {"type": "bar", "tooltip": True},
             "encoding": {"x": {"field": "from", "type": "quantitative", "bin": "binned", "title": "best IoU",
                                "scale": {"domain": [0, 1]}},
                          "x2": {"field": "to"},
                          "y": {"field": "anchors", "type": "quantitative", "stack": None,
                                # counts from 1: not widened down to a 0.1 tick
                                "scale": _log_scale([r["anchors"] for r in hist], nice=False)}}},
            {"data": {"values": [{"t": float(low), "rule": "low"}, {"t": float(high), "rule": "high"}]},
             "mark": {"type": "rule", "strokeWidth": 2, "strokeDash": [4, 3]},
             "encoding": {"x": {"field": "t", "type": "quantitative"},
                          "color": {"field": "rule", "type": "nominal", "title": "threshold"}}},
        ],
        "height": 240,
    }
