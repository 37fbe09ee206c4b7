"""Cached semantic segmentation for pages.

* ``segmenter(name, device)`` — one loaded network per (name, device), at most
  ``MAX_MODELS`` kept, shared by all sessions.
* ``segment(name, device, digest, image)`` — the class map and confidence of one image,
  computed once per (model, device, image digest): opacity, class isolation and downloads
  work on the cached map, so a slider move never reruns the network.
* ``shapes_scene(seed)`` — a synthetic scene from the distribution the offline net
  (``shapes-seg``) is trained on, with its true class map and instance masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from components.models import freeze_heap, working_rgb  # the networks resize to ~520 px anyway
from core.images import LabImage
from core.jobs import MODEL_TURNS
from core.semantic import SemanticMap, Segmenter, torchvision_preprocess
from models import registry

MAX_MODELS = 3


def load_segmenter(name: str, device: str = "cpu", *, warmup: bool = True) -> Segmenter:
    """The registered semantic model ``name`` behind :class:`core.semantic.Segmenter`
    (raises registry.WeightsUnavailable when torchvision weights are missing offline)."""
    spec = registry.get_spec(name)
    if spec.task != "semantic":
        raise ValueError(f"{name} is not a semantic segmentation model")
    if spec.source == "trained":
        from models import shapes_seg

        model = registry.load_trained(name)
        seg = Segmenter(name, spec.title, registry.for_inference(model, device), shapes_seg.preprocess,
                        shapes_seg.SEG_CLASSES, device)
    else:
        import torchvision

        model = registry.build_torchvision(name)
        transforms = torchvision.models.get_weight(spec.tv_weights).transforms()
        seg = Segmenter(name, spec.title, registry.for_inference(model, device),
                        torchvision_preprocess(transforms), registry.categories(name), device)
    if warmup:  # the first latency a user sees is the model's, not the library's set-up
        seg.run(np.zeros((spec.input_size, spec.input_size, 3), np.uint8))
    return seg


@st.cache_resource(max_entries=MAX_MODELS, show_spinner=False)
def segmenter(name: str, device: str) -> Segmenter:
    found = load_segmenter(name, device)
    freeze_heap()
    return found


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def segment(name: str, device: str, digest: str, _image: LabImage) -> SemanticMap:
    """Class map of ``name`` on the image whose digest is ``digest`` (one forward pass)."""
    return segmenter(name, device).run(working_rgb(_image))


@dataclass(frozen=True, eq=False)
class ShapesScene:
    image: LabImage
    truth: np.ndarray  # (H, W) uint8 true class map (0 background, 1 + shape class)
    masks: np.ndarray  # (N, H, W) bool true instance masks
    labels: np.ndarray  # (N,) shape class ids (0..5)


@st.cache_data(max_entries=16, show_spinner=False)
def shapes_scene(seed: int) -> ShapesScene:
    from models.shapes_seg import scene_class_map, segmentation_scene

    scene = segmentation_scene(seed)
    image = LabImage.from_rgb(scene.image, name=f"shapes scene {seed}", source="synthetic")
    return ShapesScene(image, scene_class_map(scene), scene.masks, scene.labels)


def shapes_metrics() -> dict | None:
    """The offline net's stored metrics (mean IoU on held-out scenes), read once per file."""
    spec = registry.get_spec("shapes-seg")
    if not spec.is_present():
        return None
    return _metrics(spec.path.stat().st_mtime_ns)


@st.cache_data(max_entries=4, show_spinner=False)
def _metrics(mtime_ns: int) -> dict | None:
    from models.shapes_seg import load_metrics

    return load_metrics()
