"""Cached model access for instance segmenters (Mask R-CNN and YOLO-seg), for any page.

* ``segmenter(name, device)`` — one loaded model per (name, device), at most ``MAX_MODELS``.
* ``maskrcnn(name, device, digest, image)`` — the staged Mask R-CNN run
  (:class:`core.maskrcnn.StagedRun`) of one image, keyed by its digest: one forward pass per
  (model, image); score, mask-threshold and top-k sliders work on the cached result.
* ``yolo_seg(name, device, digest, image)`` — a YOLO-seg model's ``(InstanceMasks, latency_ms)``.
* ``instances(name, device, image)`` — whichever of the two fits ``name``, as InstanceMasks:
  the function other pages call.

Every model works on :func:`working_rgb` (the image's working copy at long side <= 640): the
network sizes are 640 anyway, and full-size probability masks of 100 detections on a 1280 px
image would be half a gigabyte per cache entry. Masks are cached as float16 (probabilities to
three decimals) to halve the cache; the result caches hold few entries.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.models import SEGMENT_LONG_SIDE, freeze_heap, working_rgb
from core.images import LabImage
from core.jobs import MODEL_TURNS
from core.instances import InstanceMasks
from models import registry

MAX_MODELS = 4
SCORE_FLOOR = 0.05  # detections kept in the cached pass (the score slider starts above it)
MAX_DETECTIONS = 100


def is_maskrcnn(name: str) -> bool:
    return name in ("maskrcnn_resnet50_fpn", "shapes-maskrcnn")


@st.cache_resource(max_entries=MAX_MODELS, show_spinner=False)
def segmenter(name: str, device: str):
    """A Mask R-CNN (torch module, configured for the page) or an ultralytics.YOLO-seg model."""
    from core.maskrcnn import configure

    spec = registry.get_spec(name)
    if name == "maskrcnn_resnet50_fpn":
        model = configure(registry.build_torchvision(name), size=SEGMENT_LONG_SIDE, score_thresh=SCORE_FLOOR,
                          detections=MAX_DETECTIONS)
        found = registry.for_inference(model, device)
    elif name == "shapes-maskrcnn":
        model = configure(registry.load_trained(name), score_thresh=SCORE_FLOOR, detections=MAX_DETECTIONS)
        found = registry.for_inference(model, device)
    elif spec.task == "segment":
        found = registry.load_ultralytics(name)
    else:
        raise ValueError(f"{name} is not an instance segmenter")
    freeze_heap()
    return found


def categories(name: str) -> tuple[str, ...]:
    return registry.categories(name)


def _compact(inst: InstanceMasks) -> InstanceMasks:
    return InstanceMasks(inst.masks.astype(np.float16), inst.boxes, inst.scores, inst.labels, inst.categories)


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def maskrcnn(name: str, device: str, digest: str, _image: LabImage):
    """The staged Mask R-CNN run (core.maskrcnn.StagedRun) on :func:`working_rgb` of the image."""
    from dataclasses import replace

    from core.hooks import lock_for
    from core.maskrcnn import staged_run

    model = segmenter(name, device)
    # COCO weights list "__background__" as category 0; the shapes model's label k is class k-1.
    offset = 0 if name == "maskrcnn_resnet50_fpn" else 1
    with lock_for(model):
        run = staged_run(model, working_rgb(_image), categories=categories(name), label_offset=offset)
    return replace(run, instances=_compact(run.instances))


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def yolo_seg(name: str, device: str, digest: str, _image: LabImage) -> tuple[InstanceMasks, float]:
    from core.yoloseg import yolo_instances

    inst, ms = yolo_instances(segmenter(name, device), working_rgb(_image), imgsz=registry.get_spec(name).input_size,
                              device=device, conf=SCORE_FLOOR, max_det=MAX_DETECTIONS)
    return _compact(inst), ms


def instances(name: str, device: str, image: LabImage) -> InstanceMasks:
    """Every detection of instance segmenter ``name`` on the image (masks at :func:`working_rgb`'s size)."""
    if is_maskrcnn(name):
        return maskrcnn(name, device, image.digest, image).instances
    return yolo_seg(name, device, image.digest, image)[0]


@st.cache_data(max_entries=16, show_spinner=False)
def shapes_truth(seed: int) -> InstanceMasks:
    """The true instances of ``models.shapes_yolo.detection_scene(seed)`` (score 1, exact masks)."""
    from core.shapes import SHAPE_CLASSES
    from models.shapes_yolo import detection_scene

    scene = detection_scene(seed)
    return InstanceMasks(scene.masks.astype(np.float32), scene.boxes, np.ones(len(scene.labels), np.float32),
                         scene.labels, tuple(SHAPE_CLASSES))
