"""Cached model calls for the Occlusion and illumination page.

Everything is keyed by (model, image digest, settings), with bounded caches, so moving a
slider back to a value already seen, or toggling a remedy off, costs no forward pass. The
images themselves are made by ``core.perturb`` (pure); the shared models are used only
through ``Classifier.probs`` / ``Detector.candidates``, which hold each model's lock.
"""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import streamlit as st

from components import models as cm
from core import perturb as P
from core.jobs import MODEL_TURNS, JobGate

# Sweeps and occlusion maps run tens of forward passes: two at a time per server, one per session.
HEAVY = JobGate("robustness computation", max_running=2, per_session=1, time_limit_s=180)


def settings_key(occ: P.Occluder, light: P.Lighting, remedies: tuple[str, ...] = ()) -> str:
    """A short text key for one combination of settings (cache key, never shown)."""
    return repr((astuple(occ), astuple(light), tuple(remedies)))


@st.cache_data(max_entries=16, show_spinner=False)
def perturbed(digest: str, key: str, _rgb: np.ndarray, _occ: P.Occluder, _light: P.Lighting) -> np.ndarray:
    """The image after the occluder and the lighting change (``key`` = settings_key)."""
    out = P.perturb(_rgb, _occ, _light)
    out.flags.writeable = False
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def remedied(digest: str, key: str, _rgb: np.ndarray, steps: tuple[str, ...]) -> np.ndarray:
    """``_rgb`` (the perturbed image for ``key``) after the image-side remedies in order."""
    out = _rgb
    for name in steps:
        out = P.remedy(out, name)
    out = np.array(out, copy=True)
    out.flags.writeable = False
    return out


@st.cache_data(max_entries=128, show_spinner=False)
@MODEL_TURNS.take
def class_probs(model: str, digest: str, key: str, _clf, _rgb: np.ndarray, tta: bool = False) -> np.ndarray:
    """Softmax probabilities of the classifier on one image (averaged over TTA views if asked)."""
    return P.tta_probs(_clf, _rgb) if tta else np.asarray(_clf.probs(_rgb))


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def occlusion(model: str, digest: str, target: int, window_frac: float, stride_frac: float, _clf,
              _rgb: np.ndarray) -> P.OcclusionMap:
    """captum Occlusion map of the original image for ``target`` (seconds: cached)."""
    return P.occlusion_map(_clf, _rgb, target, window_frac=window_frac, stride_frac=stride_frac)


@st.cache_data(max_entries=64, show_spinner=False)
def detect_rgb(name: str, device: str, digest: str, key: str, _rgb: np.ndarray):
    """Pre-NMS candidates of detector ``name`` on a perturbed image (``key`` = its settings)."""
    return cm.detector(name, device).candidates(_rgb)


def classifier_score(clf, target: int):
    """A batch scorer for :func:`core.perturb.run_sweep`: probability of ``target``."""
    def score(batch: np.ndarray) -> np.ndarray:
        return np.asarray(clf.probs(batch))[:, target]
    return score


def detector_score(name: str, device: str, boxes: np.ndarray, labels: np.ndarray):
    """A batch scorer: mean over the reference objects of their best matching score."""
    found = cm.detector(name, device)

    def score(batch: np.ndarray) -> np.ndarray:
        return np.array([P.best_scores(found.candidates(img).detections, boxes, labels).mean() if len(boxes) else 0.0
                         for img in batch])
    return score
