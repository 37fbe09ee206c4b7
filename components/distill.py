"""Cached, bounded work for the Knowledge distillation page.

* :func:`image_logits` - the active classifier's logits on the active image, per (model,
  device, image): the soft-target bars re-render from them on every slider move.
* :func:`sizes` - parameters, MB and FLOPs of the teacher and of a student width (cheap).
* :func:`run_compare` - a KD student and a plain student (:func:`core.distill.compare`),
  one run per server at a time (:data:`TRAINING`), cached per settings.
* :func:`run_latency` - teacher vs student latency, in a :data:`core.jobs.TIMING` slot.

Progress bars inside cached functions use :class:`components.ui.Progress` (see
components/adversarial.py): a cache hit replays nothing and shows no bar.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from core.jobs import MODEL_TURNS, JobGate

TRAINING = JobGate("distillation training run", max_running=1, per_session=1, time_limit_s=300)
WIDTHS = (2, 3, 4)
N_TRAIN_CHOICES = (200, 400, 600, 1000, 1500)
LATENCY_BATCHES = (1, 64)


@st.cache_resource(max_entries=1, show_spinner=False)
def teacher():
    """The registry's trained shapes CNN (``shapes-cnn``), a private CPU copy in eval mode."""
    from models.shapes_cnn import load_shapes_cnn

    return load_shapes_cnn().cpu().eval()


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def image_logits(model: str, device: str, digest: str, _clf, _image: np.ndarray) -> np.ndarray:
    """Logits (C,) of the shared classifier on one image (under its lock, inference mode)."""
    import torch

    from core.hooks import lock_for

    clf = _clf
    dev = next(clf.model.parameters()).device
    with lock_for(clf.model), torch.inference_mode():
        return clf.model(clf.tensor(_image).to(dev)).float().cpu().numpy()[0]


@st.cache_data(max_entries=8, show_spinner=False)
def sizes(width: int) -> dict:
    """{"teacher": {...}, "student": {...}} with params, mb and flops (64-px crop, batch 1)."""
    import torch

    from core.distill import TEACHER_WIDTH, model_size
    from core.perf import count_flops
    from models.shapes_cnn import ShapesNet

    out = {}
    for name, w in (("teacher", TEACHER_WIDTH), ("student", width)):
        model = ShapesNet(width=w).eval()
        out[name] = model_size(model) | {"flops": count_flops(model, torch.zeros(1, 3, 64, 64)), "width": w}
    return out


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(n_train: int, epochs: int, width: int, T: float, alpha: float, seed: int = 0,
                _progress=None) -> dict:
    """:func:`core.distill.compare` in a :data:`TRAINING` slot (JobRefused / JobTimeout propagate,
    and nothing is cached then)."""
    from core import distill

    recipe = distill.Recipe(n_train=n_train, epochs=epochs, width=width, T=float(T), alpha=float(alpha), seed=seed)
    net = teacher()
    with TRAINING.slot(session_id()) as deadline:
        return distill.compare(recipe, lambda x: distill.teacher_logits(net, x), progress=_progress,
                               deadline=deadline)


@st.cache_data(max_entries=8, show_spinner=False)
def run_latency(device: str, width: int, _progress=None) -> list[dict]:
    """p50/p95 of the teacher and a ``width`` student at batch 1 and 64, one timing run per server."""
    from core import distill
    from core.jobs import TIMING
    from models.shapes_cnn import ShapesNet

    with TIMING.slot(session_id()):
        return distill.compare_latency(teacher(), ShapesNet(width=width), device, batches=LATENCY_BATCHES,
                                       progress=_progress)


# --- charts (plain Vega-Lite dicts) ------------------------------------------------------------


def soft_target_bars(rows: list[dict], temps: list[float], chosen: float) -> None:
    """Grouped horizontal bars: one group per class, one bar per temperature."""
    label = lambda T: f"T = {T:g}" + (" (your T)" if T == chosen else "")
    data = [{**r, "temperature": label(r["T"])} for r in rows]
    order = [label(T) for T in temps]
    st.vega_lite_chart({
        "data": {"values": data},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "class", "type": "nominal", "title": None, "sort": None},
            "yOffset": {"field": "temperature", "sort": order},
            "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}, "title": "softmax(z / T)"},
            "color": {"field": "temperature", "type": "ordinal", "sort": order, "title": None,
                      "scale": {"scheme": "viridis"}},
        },
        "height": {"step": 9},
    }, width="stretch")
