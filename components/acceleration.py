"""Cached pieces and charts of the GPU acceleration page.

* :func:`untrained_resnet18` - ResNet-18's architecture with untrained weights (offline: the
  tiny shapes CNN hides what batching, threads and GPUs do; latency does not depend on the
  weight values, exactly as the benchmark measures models whose weights are missing).
* :func:`facts` - parameters, FLOPs, activation estimate and per-layer costs, per model and
  input (no timing: shown before any button is pressed).
* :func:`measure` - one timing run (:func:`core.acceleration.run_all`) inside
  ``core.jobs.TIMING`` (one per server), with a progress bar; reports are kept per settings
  in the session (:data:`MAX_REPORTS`), so a rerun only re-renders.
* charts: :func:`lines`, :func:`intensity_chart`.
"""

from __future__ import annotations

from collections import OrderedDict

import streamlit as st

from components.session import session_id
from components.ui import Progress
from core import acceleration as acc
from core.jobs import TIMING, JobRefused, JobTimeout

UNTRAINED = "resnet18-untrained"
UNTRAINED_TITLE = "ResNet-18 (untrained, same architecture)"
BATCH_CHOICES = (1, 2, 4, 8, 16, 32, 64)
CPU_MAX_BATCH = 16  # larger CPU batches take seconds each on a small server
THREAD_BATCHES = (1, 8)  # thread scaling at batch 1 and at a larger batch (capped by the largest chosen)
WARMUP = 2
MAX_REPORTS = 4
_REPORTS = "_gpu.reports"


@st.cache_resource(max_entries=1, show_spinner=False)
def untrained_resnet18():
    """A Classifier around torchvision's ResNet-18 with untrained weights, on the CPU (copies
    go to other devices when timed)."""
    from core.classifier import Classifier
    from models import registry

    model = registry.for_inference(registry.build_architecture("resnet18"), "cpu")
    return Classifier.imagenet(model, registry.categories("resnet18"), name=UNTRAINED, title=UNTRAINED_TITLE)


@st.cache_resource(show_spinner=False)
def available_devices():
    from core.devices import available

    return available()


@st.cache_data(max_entries=16, show_spinner=False)
def facts(model_key: str, input_desc: str, _model, _example) -> acc.ModelFacts:
    return acc.describe(_model, _example)


def settings_key(*parts) -> str:
    return repr(parts)


def stored(key: str):
    return st.session_state.get(_REPORTS, {}).get(key)


def measure(key: str, model, example, *, label: str, devices, precisions, batches, repeats: int,
            cap_s: float, thread_batches, model_facts, cuda_graphs: bool = False) -> acc.Report | None:
    """Run the measurements (one timing run per server at a time) and keep the report."""
    try:
        with TIMING.slot(session_id()) as deadline:
            progress = Progress(st.empty())
            report = acc.run_all(model, example, label=label, devices=devices, precisions=precisions,
                                 batches=batches, repeats=repeats, warmup=WARMUP, thread_batches=thread_batches,
                                 budget=acc.Budget(cap_s, deadline), progress=progress, facts=model_facts,
                                 cuda_graphs=cuda_graphs)
            progress.done()
    except (JobRefused, JobTimeout) as err:
        st.warning(str(err), icon="⏳")
        return None
    reports = st.session_state.setdefault(_REPORTS, OrderedDict())
    reports[key] = report
    reports.move_to_end(key)
    while len(reports) > MAX_REPORTS:
        reports.popitem(last=False)
    return report


def lines(rows: list[dict], *, x: str, y: str, series: str, x_title: str, y_title: str, log_x: bool = True,
          log_y: bool = False, height: int = 280, extra: list[dict] | None = None, tooltip=None) -> None:
    """A line chart with points from long-form rows (``extra``: more layers, e.g. an ideal line)."""
    enc = {
        "x": {"field": x, "type": "quantitative", "title": x_title,
              "scale": {"type": "log", "base": 2} if log_x else {"zero": False}, "axis": {"format": "d"}},
        "y": {"field": y, "type": "quantitative", "title": y_title, "scale": {"type": "log"} if log_y else {}},
        "color": {"field": series, "type": "nominal", "title": None},
    }
    if tooltip:
        enc["tooltip"] = tooltip
    layer = {"mark": {"type": "line", "point": True, "tooltip": tooltip is None}, "encoding": enc}
    spec = {"data": {"values": rows}, "height": height}
    spec.update({"layer": [layer, *extra]} if extra else layer)
    st.vega_lite_chart(spec, width="stretch")


def intensity_chart(layers, batches: list[int], ridges: list[dict], *, bytes_per_value: int = 4) -> None:
    """Arithmetic intensity (FLOP per byte) of each conv/linear layer at a few batch sizes, with
    each measured device's ridge point (peak / bandwidth) as a horizontal rule: layers below a
    rule are limited by memory traffic on that device, layers above it by arithmetic."""
    order = [f"{i + 1:02d} {layer.name or layer.kind}" for i, layer in enumerate(layers)]
    rows = [{"layer": order[i], "batch": f"batch {b}", "FLOP per byte": layer.intensity(b, bytes_per_value),
             "GFLOP": b * layer.flops / 1e9}
            for b in batches for i, layer in enumerate(layers)]
    points = {"mark": {"type": "point", "filled": True, "tooltip": True},
              "encoding": {"x": {"field": "layer", "type": "ordinal", "sort": order, "title": None,
                                 "axis": {"labelAngle": -60, "labelLimit": 140}},
                           "y": {"field": "FLOP per byte", "type": "quantitative", "scale": {"type": "log"}},
                           "color": {"field": "batch", "type": "nominal", "title": None, "sort": [f"batch {b}" for b in batches]}}}
    layer_specs = [points]
    if ridges:
        layer_specs.append({"data": {"values": ridges},
                            "mark": {"type": "rule", "strokeDash": [6, 3], "tooltip": True},
                            "encoding": {"y": {"field": "ridge", "type": "quantitative"},
                                         "color": {"value": "#c62828"},
                                         "detail": {"field": "device", "type": "nominal"}}})
        layer_specs.append({"data": {"values": ridges},
                            "mark": {"type": "text", "align": "left", "dx": 4, "dy": -6, "color": "#c62828"},
                            "encoding": {"y": {"field": "ridge", "type": "quantitative"},
                                         "x": {"value": 0}, "text": {"field": "device"}}})
    st.vega_lite_chart({"data": {"values": rows}, "layer": layer_specs, "height": 300}, width="stretch")


def display(rows: list[dict], columns: dict[str, str], digits: int = 2) -> list[dict]:
    """Rows for st.dataframe: the chosen columns renamed, floats rounded (the CSV keeps them whole)."""
    out = []
    for r in rows:
        out.append({title: (round(r[k], digits) if isinstance(r.get(k), float) else r.get(k))
                    for k, title in columns.items() if k in r or any(k in x for x in rows)})
    return out
