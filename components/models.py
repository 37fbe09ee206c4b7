"""Cached model access for pages: bounded model cache, per-image result cache.

* ``detector(name, device)`` — one loaded model per (name, device), at most
  ``MAX_MODELS`` kept (least recently used evicted), shared by all sessions.
* ``detect(name, device, image)`` — the detector's pre-NMS candidates for one image,
  keyed by the image digest, so slider moves never rerun the network.
* After a model is loaded the heap is frozen (:func:`freeze_heap`), so Python's full
  garbage collections stop walking the hundreds of thousands of objects torch and
  Ultralytics create (0.2 s per collection on 2 cores, at random moments in later reruns).
* Weight files that are missing and cannot be downloaded raise ``WeightsUnavailable``;
  the failure is remembered for a few minutes so an offline server does not retry a
  download on every rerun.
"""

from __future__ import annotations

import gc
import threading
import time

import streamlit as st

from core.detection import Candidates
from core.jobs import MODEL_TURNS
from core.images import LabImage
from models import registry

MAX_MODELS = 4
RETRY_AFTER_S = 300.0
_failed: dict[str, tuple[float, registry.WeightsUnavailable]] = {}


def check_available(name: str) -> registry.WeightsUnavailable | None:
    """None if the model can be used (present, downloadable, or shipped with the lab)."""
    spec = registry.get_spec(name)
    if spec.source in ("package", "trained"):  # installed or shipped with the lab: present and unaltered
        try:
            registry.ensure_weights(name)  # SHA-256 checked once per file size and mtime
        except registry.WeightsUnavailable as exc:
            return exc
        return None
    if spec.is_present():
        return None
    when, err = _failed.get(name, (0.0, None))
    if err is not None and time.monotonic() - when < RETRY_AFTER_S:
        return err
    try:
        with st.spinner(f"Downloading {spec.title} ({spec.size_mb:.0f} MB)…"):
            registry.ensure_weights(name)
    except registry.WeightsUnavailable as exc:
        _failed[name] = (time.monotonic(), exc)
        return exc
    _failed.pop(name, None)
    return None


def require_shipped(name: str) -> None:
    """Stop the page with the missing-weights card (and its fix) when the shipped file of one
    of the project's own models is missing or altered. Nothing is ever trained at run time."""
    err = check_available(name)
    if err is not None:
        from components.ui import weights_missing

        weights_missing(err)
        st.stop()


FREEZE_DELAY_S = 3.0  # after a model load: long enough for the page that loaded it to finish
_freeze_lock = threading.Lock()
_freeze_pending: list[threading.Timer] = []


def _freeze_now() -> None:
    with _freeze_lock:
        _freeze_pending.clear()
    gc.collect()
    gc.freeze()


def freeze_heap(delay: float = FREEZE_DELAY_S) -> None:
    """Soon (``delay`` seconds from now, once however many models load meanwhile): collect once,
    then move every object alive into the permanent generation.

    Libraries and models loaded once per process live until it ends; leaving them in the
    collector's generations makes every full collection re-scan them. Objects created
    later (sessions, images, results) are collected as usual. The collection itself takes
    about 0.25 s with torch loaded, so it runs after the page that loaded the model has
    rendered, not in its first visit."""
    if delay <= 0:
        _freeze_now()
        return
    with _freeze_lock:
        if _freeze_pending:
            return
        timer = threading.Timer(delay, _freeze_now)
        timer.daemon = True
        _freeze_pending.append(timer)
    timer.start()


@st.cache_resource(max_entries=MAX_MODELS, show_spinner=False)
def detector(name: str, device: str):
    from models.detectors import load_detector

    found = load_detector(name, device=device)
    freeze_heap()
    return found


@st.cache_data(max_entries=64, show_spinner=False)
@MODEL_TURNS.take
def detect(name: str, device: str, digest: str, _image: LabImage) -> Candidates:
    """Pre-NMS candidates of ``name`` on the image whose digest is ``digest``."""
    return detector(name, device).candidates(_image.work)


SEGMENT_LONG_SIDE = 640  # segmentation models work on (and their masks cover) this copy


def working_rgb(image: LabImage):
    """``image.work`` at long side <= SEGMENT_LONG_SIDE: what the Mask R-CNN, YOLO-seg and
    semantic models run on, so their masks and maps line up pixel for pixel."""
    from core.imageio import fit_long_side

    return fit_long_side(image.work, SEGMENT_LONG_SIDE)


def stages(name: str) -> str:
    return registry.get_spec(name).stages


@st.cache_data(max_entries=16, show_spinner=False)
def shapes_scene(seed: int):
    """A synthetic detection scene as a LabImage plus its true boxes (as Detections, score 1)."""
    import numpy as np

    from core.detection import Detections
    from core.shapes import SHAPE_CLASSES
    from models.shapes_yolo import detection_scene

    scene = detection_scene(seed)
    image = LabImage.from_rgb(scene.image, name=f"shapes scene {seed}", source="synthetic")
    truth = Detections(scene.boxes, np.ones(len(scene.labels), np.float32), scene.labels, tuple(SHAPE_CLASSES))
    return image, truth
