"""Cached attribution maps and trust checks for the Interpretability page.

Every expensive result is ``st.cache_data`` keyed by (classifier, device, image digest,
target class, method, layer, settings), bounded, so moving the opacity slider or switching
back to an earlier class redraws from the cache without touching the network. The shared
model itself comes from ``components.classifier`` (``_clf`` is never hashed).

Progress bars use :class:`components.ui.Progress`: its updates run outside the cached
function's recording, so a cache hit shows no bar and replays nothing.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from components.session import session_id
from components.ui import Progress
from core.jobs import MODEL_TURNS, JobGate

MAPS_PER_SERVER = 160  # 5 methods x 32 (image, class, layer) choices; 224 x 224 float32 = 200 kB each
CHECKS = JobGate("trust check", max_running=2, per_session=1, time_limit_s=300)

__all__ = ["Progress", "CHECKS", "probabilities", "heat_map", "randomisation", "deletion", "display_image"]


@st.cache_data(max_entries=64, show_spinner=False)
@MODEL_TURNS.take
def probabilities(name: str, device: str, digest: str, _clf, _image) -> np.ndarray:
    """Softmax over the classes for the image (one forward pass)."""
    return _clf.probs(_image)


@st.cache_data(max_entries=MAPS_PER_SERVER, show_spinner=False)
@MODEL_TURNS.take
def heat_map(name: str, device: str, digest: str, target: int, method: str, layer: str, _clf, _image,
             _progress=None) -> tuple[np.ndarray, float]:
    """(map (H, W) in [0, 1] at the network's input size, seconds it took). ``layer`` is ""
    for the methods that do not use one, so their cache entries are shared across layers."""
    from core import saliency as sal

    if _progress is not None:
        _progress(0.0, f"{method}…")
    start = time.perf_counter()
    heat = sal.attribute(_clf, _clf.unit(_image), target, method, layer or None)
    return heat, time.perf_counter() - start


@st.cache_data(max_entries=12, show_spinner=False)
def randomisation(name: str, device: str, digest: str, target: int, layer: str, _clf, _image, _progress=None):
    """Cascading model-randomisation stages (:func:`core.saliency.randomisation_check`)."""
    from core import saliency as sal

    with CHECKS.slot(session_id()):
        return sal.randomisation_check(_clf, _clf.unit(_image), target, layer=layer, progress=_progress)


@st.cache_data(max_entries=12, show_spinner=False)
def deletion(name: str, device: str, digest: str, target: int, layer: str, fill: str, step: float,
             _clf, _image, _maps: dict, _progress=None) -> dict:
    """{method: Curve} for each map in ``_maps`` (those of ``layer``) plus "random order"."""
    from core import saliency as sal

    report = _progress or (lambda f, t: None)
    unit = _clf.unit(_image)
    curves = {}
    with CHECKS.slot(session_id()) as deadline:
        for i, (method, heat) in enumerate(_maps.items()):
            report(i / (len(_maps) + 1), f"Deleting pixels in {method} order…")
            curves[method] = sal.deletion_curve(_clf, unit, target, sal.deletion_order(heat), step=step, fill=fill)
            deadline.check()
        report(len(_maps) / (len(_maps) + 1), "Deleting pixels in random order (3 orders)…")
        curves["random order"] = sal.random_deletion(_clf, unit, target, step=step, fill=fill)
    return curves


@st.cache_data(max_entries=16, show_spinner=False)
def display_image(name: str, digest: str, _clf, _image) -> np.ndarray:
    """The photo the maps are laid over: the whole image (its own aspect ratio), long side
    <= 448 px; a small synthetic canvas is doubled (nearest neighbour) so its pixels stay
    sharp. The network saw the photo squashed to its input size; the maps are stretched back."""
    from core.imageio import fit_long_side

    rgb = fit_long_side(np.ascontiguousarray(_image[..., :3]), 448)
    if max(rgb.shape[:2]) <= 224:
        rgb = np.ascontiguousarray(rgb.repeat(2, axis=0).repeat(2, axis=1))
    return rgb
