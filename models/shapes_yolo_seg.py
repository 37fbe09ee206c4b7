"""A YOLO11-seg instance segmenter trained here on synthetic shapes: the offline stand-in for
COCO YOLO11n-seg, and the one-stage side of the Mask R-CNN page's comparison.

The same recipe as :mod:`models.shapes_yolo` (whose helpers it reuses, offline pitfalls
included): a SegmentationModel built from ultralytics' own ``yolo11n-seg.yaml`` layers at
that module's :data:`~models.shapes_yolo.MODEL_SCALE` width, trained from scratch by
ultralytics' own trainer on :func:`~models.shapes_yolo.detection_scene` scenes, shipped as
a weights-only file (:class:`~models.shapes_yolo.ShippedYolo`). The labels are YOLO segment rows: per instance, the largest
outer contour of its exact mask (``cv2.findContours``), normalised. Inference and the
held-out evaluation go through :func:`core.yoloseg.yolo_instances`, the page's own path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import cv2
import numpy as np

from core.shapes import SHAPE_CLASSES, Scene
from models.shapes_yolo import (EVAL_SEEDS, IMGSZ, MODEL_SCALE, TRAIN_SEEDS_START, Progress, ShippedYolo,
                                _train_yolo, detection_scene, stored_metrics)

if TYPE_CHECKING:
    from ultralytics import YOLO

__all__ = ["load_shapes_yolo_seg", "train_shapes_yolo_seg", "evaluate_shapes_yolo_seg",
           "segment_label_lines", "stored_metrics", "IMGSZ", "EVAL_SEEDS", "SHIPPED"]

FORMAT_VERSION = 2  # 2: weights-only file (layer config + state dict), shipped in models/trained
NAME = "shapes-yolo-seg"
BASE_YAML = "yolo11n-seg.yaml"
# Training recipe (the shipped file's): 1200 scenes x 60 epochs, about 18 minutes on one core.
# With 400 x 20 (when the model was trained at a visitor's first click) its held-out mask
# precision was 0.59: boxes and masks were good, the class was what more epochs improved.
N_TRAIN, N_VAL, EPOCHS = 1200, 40, 60



# --- dataset ------------------------------------------------------------------------------


def instance_polygon(mask: np.ndarray) -> np.ndarray:
    """(K, 2) float pixel coordinates of the largest outer contour of a boolean mask.

    OpenCV traces the centres of the boundary pixels; +0.5 puts them at the centre of those
    pixels in continuous coordinates (pixel i spans [i, i + 1]). Returns (0, 2) for an empty
    mask; a contour of fewer than 3 points (a sliver) becomes its bounding rectangle."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 2), np.float64)
    best = max(contours, key=lambda c: (cv2.contourArea(c), len(c))).reshape(-1, 2).astype(np.float64)
    if len(best) < 3:
        (x0, y0), (x1, y1) = best.min(0), best.max(0)
        best = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float64)
    return best + 0.5


def segment_label_lines(scene: Scene) -> list[str]:
    """YOLO segment rows ``cls x1 y1 x2 y2 ...`` (normalised to [0, 1]), one per instance."""
    h, w = scene.image.shape[:2]
    rows = []
    for mask, cls in zip(scene.masks, scene.labels, strict=True):
        poly = instance_polygon(mask)
        if len(poly) == 0:
            continue
        norm = np.clip(poly / (w, h), 0.0, 1.0)
        rows.append(f"{int(cls)} " + " ".join(f"{v:.6f}" for v in norm.reshape(-1)))
    return rows


# --- training -----------------------------------------------------------------------------


def train_shapes_yolo_seg(*, seed: int = 0, progress: Progress | None = None, quiet: bool = True,
                          n_train: int = 1200, n_val: int = 40, epochs: int = 60, imgsz: int = IMGSZ,
                          batch: int = 16, model_scale: Sequence[float] = MODEL_SCALE, evaluate: bool = True,
                          **train_overrides) -> tuple["YOLO", dict]:
    """Train YOLO11-seg (from its yaml, no pretrained weights) on shapes; ``(YOLO, metrics)``,
    the model already as :data:`SHIPPED` stores it (see :func:`models.shapes_yolo.train_shapes_yolo`)."""
    return _train_yolo(SHIPPED, seed=seed, progress=progress, quiet=quiet, n_train=n_train, n_val=n_val,
                       epochs=epochs, imgsz=imgsz, batch=batch, model_scale=model_scale,
                       evaluate=(lambda yolo: evaluate_shapes_yolo_seg(yolo, EVAL_SEEDS, imgsz=imgsz)) if evaluate else None,
                       label_lines=segment_label_lines, **train_overrides)


def polygon_fingerprint(n: int = 8) -> str:
    """Digest of the first ``n`` training scenes and their YOLO segment rows."""
    from models.checkpoints import fingerprint

    parts = []
    for seed in range(TRAIN_SEEDS_START, TRAIN_SEEDS_START + n):
        scene = detection_scene(seed)
        parts += [scene.image, segment_label_lines(scene)]
    return fingerprint(*parts)


RECIPE = dict(seed=0, n_train=N_TRAIN, n_val=N_VAL, epochs=EPOCHS)

SHIPPED = ShippedYolo(
    name=NAME, recipe=RECIPE, train=train_shapes_yolo_seg, task="segment", base_yaml=BASE_YAML,
    evaluate=lambda yolo: evaluate_shapes_yolo_seg(yolo, EVAL_SEEDS), fingerprint=polygon_fingerprint,
    score="mask_precision", shown=("mask_precision", "mask_recall", "mask_iou"),
    header={"format_version": FORMAT_VERSION, "class_names": list(SHAPE_CLASSES), "task": "segment"},
    quick=dict(n_train=32, n_val=8, epochs=3, evaluate=False),
)


def load_shapes_yolo_seg() -> "YOLO":
    """The shipped shapes segmenter; raises registry.WeightsUnavailable if it is missing."""
    return SHIPPED.load()


# --- evaluation ---------------------------------------------------------------------------


def evaluate_shapes_yolo_seg(yolo: "YOLO", seeds: Iterable[int] = EVAL_SEEDS, *, score: float = 0.25,
                             mask: float = 0.5, iou_thr: float = 0.5, imgsz: int = IMGSZ) -> dict:
    """Mask quality on ``detection_scene(seed)`` through :func:`core.yoloseg.yolo_instances`.

    For every true instance, the best mask IoU with a predicted instance of the same class
    (score > ``score``, mask > ``mask``; 0 when there is none): ``mask_iou`` is their mean,
    ``mask_recall`` the share at IoU >= ``iou_thr``; ``mask_precision`` is the share of
    predicted instances whose best same-class IoU with a true mask is >= ``iou_thr``."""
    from core.instances import mask_iou
    from core.yoloseg import yolo_instances

    best_gt: list[float] = []
    n_pred = tp_pred = 0
    for seed in seeds:
        scene = detection_scene(seed)
        found, _ = yolo_instances(yolo, scene.image, imgsz=imgsz)
        kept = found.select(score=score, mask=mask)
        ious = np.zeros((len(scene.labels), len(kept)))
        if len(scene.labels) and len(kept):
            ious = mask_iou(scene.masks, kept.binary) * (scene.labels[:, None] == kept.labels[None, :])
            tp_pred += int((ious.max(axis=0) >= iou_thr).sum())
        best_gt.extend(ious.max(axis=1) if len(kept) else np.zeros(len(scene.labels)))
        n_pred += len(kept)
    best = np.asarray(best_gt, dtype=np.float64)
    return {"mask_iou": round(float(best.mean()), 4) if best.size else 0.0,
            "mask_recall": round(float((best >= iou_thr).mean()), 4) if best.size else 0.0,
            "mask_precision": round(tp_pred / n_pred, 4) if n_pred else 0.0,
            "n_gt": int(best.size), "n_pred": n_pred}
