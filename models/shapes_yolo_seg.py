"""A YOLO11-seg instance segmenter trained here on synthetic shapes: the offline stand-in for
COCO YOLO11n-seg, and the one-stage side of the Mask R-CNN page's comparison.

The same recipe as :mod:`models.shapes_yolo` (whose helpers it reuses, offline pitfalls
included): a SegmentationModel built from ultralytics' own ``yolo11n-seg.yaml`` layers at
that module's :data:`~models.shapes_yolo.MODEL_SCALE` width, trained from scratch by
ultralytics' own trainer on :func:`~models.shapes_yolo.detection_scene` scenes, loaded back
with ``ultralytics.YOLO(path)``. The labels are YOLO segment rows: per instance, the largest
outer contour of its exact mask (``cv2.findContours``), normalised. Inference and the
held-out evaluation go through :func:`core.yoloseg.yolo_instances`, the page's own path.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import cv2
import numpy as np

from core.shapes import SHAPE_CLASSES, Scene
from models.registry import atomic_torch_save, get_spec
from models.shapes_yolo import (EVAL_SEEDS, IMGSZ, MODEL_SCALE, Progress, _load, _offline_training,
                                detection_scene, fit_on_shapes, stored_metrics, write_dataset,
                                write_model_yaml)
from models.ultra import ultralytics as _ultralytics

if TYPE_CHECKING:
    from ultralytics import YOLO

__all__ = ["load_or_train_shapes_yolo_seg", "train_shapes_yolo_seg", "evaluate_shapes_yolo_seg",
           "segment_label_lines", "weights_path", "stored_metrics", "IMGSZ", "EVAL_SEEDS"]

FORMAT_VERSION = 1
NAME = "shapes-yolo-seg"
BASE_YAML = "yolo11n-seg.yaml"
# Training recipe: a third of the detector's scene-epochs, since a segmenter step costs about
# twice a detector step (~55 ms per image on one idle core) and training must stay near 8
# minutes on 2 idle cores. Measured: mask IoU 0.62 / mask mAP50 0.70 (see stored_metrics);
# boxes and masks are good (0.87 IoU when found), the class is what more epochs would improve.
N_TRAIN, N_VAL, EPOCHS = 400, 40, 20

_LOCK = threading.Lock()


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


def weights_path() -> Path:
    """Where the trained segmenter is cached: the registry's file for "shapes-yolo-seg"."""
    path = get_spec(NAME).path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def train_shapes_yolo_seg(*, seed: int = 0, progress: Progress | None = None, dest: Path | None = None,
                          quiet: bool = True, n_train: int = N_TRAIN, n_val: int = N_VAL, epochs: int = EPOCHS,
                          imgsz: int = IMGSZ, batch: int = 16, model_scale: Sequence[float] = MODEL_SCALE,
                          evaluate: bool = True, **train_overrides) -> tuple[Path, dict]:
    """Train YOLO11-seg (from its yaml, no pretrained weights) on shapes; write it atomically.

    Returns ``(dest, metrics)``; ``dest`` defaults to :func:`weights_path`. The checkpoint is
    ultralytics' own ``last.pt`` with a ``"cvlab"`` entry (format version, class names,
    metrics), like :func:`models.shapes_yolo.train_shapes_yolo`'s."""
    import torch

    _ultralytics()
    from ultralytics import YOLO

    dest = Path(dest) if dest is not None else weights_path()
    report = progress or (lambda frac, msg: None)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shapes_yolo_seg_") as tmp, _offline_training(quiet=quiet):
        tmp = Path(tmp)
        report(0.0, f"drawing {n_train + n_val} training scenes")
        data = write_dataset(tmp / "data", n_train=n_train, n_val=n_val, label_lines=segment_label_lines)
        model_yaml = write_model_yaml(tmp, scale=model_scale, base=BASE_YAML)
        trainer = fit_on_shapes(model_yaml, data, tmp / "runs", task="segment", report=report, seed=seed,
                                epochs=epochs, imgsz=imgsz, batch=batch, **train_overrides)
        metrics = {
            "train_seconds": round(time.perf_counter() - t0, 1),
            "epochs": epochs, "n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed,
            "model_scale": list(model_scale),
            # ultralytics' own validation on the val scenes after the last epoch
            **{k.split("/")[-1].replace("(B)", "_box").replace("(M)", "_mask"): round(float(v), 4)
               for k, v in (trainer.metrics or {}).items() if k.startswith("metrics/")},
        }
        ckpt = torch.load(Path(trainer.last), map_location="cpu", weights_only=False)  # our own file
        ckpt["cvlab"] = {"format_version": FORMAT_VERSION, "class_names": list(SHAPE_CLASSES),
                         "metrics": metrics}
        if evaluate:  # held-out quality, measured on the exact file we are about to publish
            torch.save(ckpt, tmp / "final.pt")
            metrics.update(evaluate_shapes_yolo_seg(YOLO(str(tmp / "final.pt"), task="segment"), EVAL_SEEDS,
                                                    imgsz=imgsz))
        metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_torch_save(ckpt, dest)
    return dest, metrics


def load_or_train_shapes_yolo_seg(progress: Progress | None = None) -> "YOLO":
    """The cached shapes segmenter, trained once (even with concurrent callers) if missing or stale."""
    with _LOCK:
        path = weights_path()
        yolo = _load(path, task="segment", format_version=FORMAT_VERSION)
        if yolo is None:
            train_shapes_yolo_seg(progress=progress, dest=path)
            yolo = _load(path, task="segment", format_version=FORMAT_VERSION)
            if yolo is None:
                raise RuntimeError(f"trained shapes segmenter at {path} could not be loaded back")
        return yolo


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
