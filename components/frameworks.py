"""Cached, bounded work for the Frameworks page.

* :func:`samples` / :func:`eager_probs` - the batch of synthetic shape images and the eager
  model's answers on it (per first seed and batch size): cheap reruns.
* :func:`keras_check` - the Keras listing run in NumPy with the converted weights.
* :func:`compiled` - one ``torch.compile``d copy of the shapes CNN per (device, input shape,
  freezing), at most two per server (each holds generated code and, frozen, its weights).
* :func:`measure` - the button's work inside ``core.jobs.TIMING``: compile (or reuse), export
  (shared with the Deployment page's cache), compare outputs and time every runtime.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id

MODEL = "shapes-cnn"
N_KERAS_CHECK = 4  # images the NumPy run of the Keras listing is checked on (it is slow-ish)


@st.cache_data(max_entries=16, show_spinner=False)
def samples(first_seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic one-shape images (N, 160, 160, 3) from ``first_seed`` on, and their classes."""
    from core.classifier import shape_sample

    made = [shape_sample(first_seed + i) for i in range(n)]
    return np.stack([s.image for s in made]), np.array([s.label for s in made])


@st.cache_data(max_entries=16, show_spinner=False)
def eager_probs(device: str, first_seed: int, n: int, _clf) -> np.ndarray:
    images, _ = samples(first_seed, n)
    return _clf.probs(images).reshape(n, -1)


@st.cache_data(max_entries=4, show_spinner=False)
def keras_check(device: str, first_seed: int, _clf) -> dict:
    """Max |Δ logit| between PyTorch and the Keras listing run in NumPy (float64, NHWC) with
    the PyTorch weights converted to Keras layouts, and whether the top-1 classes agree."""
    import torch

    from core import frameworks as fw
    from core.hooks import lock_for

    images, _ = samples(first_seed, N_KERAS_CHECK)
    x = _clf.tensor(images)
    with lock_for(_clf.model), torch.inference_mode():
        ref = _clf.model(x.to(device)).float().cpu().numpy()
        weights = fw.keras_weights(_clf.model)
    out = fw.keras_forward(fw.layers_in_code(), weights, x.permute(0, 2, 3, 1).numpy())
    return {"max_abs_diff": float(np.abs(out - ref).max()),
            "same_top1": bool((out.argmax(1) == ref.argmax(1)).all()), "n": N_KERAS_CHECK}


@st.cache_resource(max_entries=2, show_spinner=False)
def compiled(device: str, shape: tuple, freezing: bool, _model, _x):
    from core.frameworks import compile_model

    return compile_model(_model, _x.to(device), freezing=freezing)


def measure(clf, x, device: str, freezing: bool, progress) -> dict:
    """Compile, export, compare and time; ``{"rows": [...], "compile": Compiled}``.

    Raises core.jobs.JobRefused / JobTimeout (the page shows them)."""
    from components.deploy import artifacts
    from core import frameworks as fw
    from core.jobs import TIMING

    with TIMING.slot(session_id()) as deadline:
        progress(0.0, "torch.compile: capturing the graph and generating kernels (first time: seconds)…")
        comp = compiled(device, tuple(x.shape), freezing, clf.model, x)
        deadline.check()
        progress(0.35, "Tracing to TorchScript and exporting to ONNX…")
        arts = artifacts(clf.name, device, tuple(x.shape[1:]), clf.model, x)
        runtimes = fw.build_runtimes(clf.model, x, device=device, compiled=comp, arts=arts)
        deadline.check()
        rows = fw.compare(runtimes, x, progress=lambda f, t: progress(0.45 + 0.55 * f, t), deadline=deadline)
    return {"rows": rows, "compile": comp}
