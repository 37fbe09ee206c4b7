"""Cached, bounded work for the Deployment page.

* :func:`mistakes` - the classifier's answer for the correct pre-processing and each common
  mistake, per (model, device, image): cheap reruns.
* :func:`mistake_accuracy` - shapes CNN only: accuracy of every pipeline on held-out
  synthetic images with known classes (one server-wide result).
* :func:`mistake_agreement` - ImageNet classifiers: how often each pipeline keeps the correct
  pipeline's answer on the 13 sample photos (one server-wide result per model).
* :func:`artifacts` - the TorchScript and ONNX exports of a model, per (model, device,
  input shape); at most two kept, shared by all sessions (an ONNX ResNet-18 is 47 MB, EfficientNet-Lite0 19 MB).
* :func:`export_and_measure` - the button's work, inside ``core.jobs.TIMING`` (one timing
  run on the server at a time).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from core.jobs import MODEL_TURNS

HELD_OUT_SEED = 50_000  # shape samples used for the accuracy table (not the page's own picks)
N_HELD_OUT = 60
MAX_REPORTS = 4  # reports kept per session (each may point at an ONNX file's bytes)


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def mistakes(model: str, device: str, digest: str, _clf, _image: np.ndarray):
    from core.deploy import preprocessing_mistakes

    return preprocessing_mistakes(_clf, _image)


@st.cache_data(max_entries=2, show_spinner=False)
@MODEL_TURNS.take
def mistake_accuracy(model: str, device: str, n: int, _clf) -> list[dict]:
    """Per pipeline: accuracy on ``n`` held-out shape samples and how often the answer differs
    from the correct pipeline's."""
    from core.classifier import shape_sample
    from core.deploy import pipeline_accuracy

    samples = [shape_sample(HELD_OUT_SEED + i) for i in range(n)]
    return pipeline_accuracy(_clf, [s.image for s in samples], [s.label for s in samples])


@st.cache_data(max_entries=4, show_spinner=False)
@MODEL_TURNS.take
def mistake_agreement(model: str, device: str, _clf) -> list[dict]:
    """ImageNet classifiers: per pipeline, how often the answer on the 13 sample photos is the
    correct pipeline's (one server-wide result per model)."""
    from core.deploy import pipeline_agreement
    from core.quantization import sample_photos

    return pipeline_agreement(_clf, [rgb for _, rgb in sample_photos()])


@st.cache_resource(max_entries=2, show_spinner=False)
def artifacts(model: str, device: str, image_shape: tuple, _model, _x, _progress=None):
    """Exports of ``model`` for inputs (N, *image_shape): the batch is dynamic in both files,
    so the Deployment (batch 1) and Frameworks (a batch) pages share one entry."""
    from core.deploy import export_artifacts

    return export_artifacts(_model, _x, device=device, progress=_progress)


def export_and_measure(clf, x, device: str, device_name: str, progress):
    """Export (or reuse the cached export), compare and time: a core.deploy.Report.

    Raises core.jobs.JobRefused / JobTimeout (the page shows them)."""
    from core.deploy import measure
    from core.jobs import TIMING

    with TIMING.slot(session_id()) as deadline:
        arts = artifacts(clf.name, device, tuple(x.shape[1:]), clf.model, x,
                         lambda f, t: progress(0.3 * f, t))
        deadline.check()
        return measure(clf.model, arts, x, device=device, device_name=device_name, model_name=clf.name,
                       progress=lambda f, t: progress(0.3 + 0.7 * f, t), deadline=deadline)


def remember(key, report) -> None:
    """Keep ``report`` in this session (the newest MAX_REPORTS)."""
    done = st.session_state.setdefault("_deploy.reports", {})
    done.pop(key, None)
    done[key] = report
    while len(done) > MAX_REPORTS:
        done.pop(next(iter(done)))


def recall(key):
    return st.session_state.get("_deploy.reports", {}).get(key)
