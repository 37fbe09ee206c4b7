"""Detectors behind one small interface: ``candidates(rgb) -> Candidates``.

Each wrapper runs its library's own pre- and post-processing but switches NMS off
(IoU threshold 1.0 suppresses nothing), so what comes back are the boxes the network
proposed *before* NMS. ``core.detection.select`` then applies the user's thresholds with
torchvision's NMS, which reproduces what the library would have returned (tested).
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from core.detection import CANDIDATE_FLOOR, Candidates, Detections
from core.hooks import lock_for


class Detector(Protocol):
    name: str
    title: str
    stages: str
    categories: tuple[str, ...]

    def candidates(self, rgb: np.ndarray) -> Candidates: ...


class UltralyticsDetector:
    """A YOLO model (ultralytics.YOLO) with NMS disabled; boxes in original image pixels."""

    def __init__(self, yolo, *, name: str, title: str, device: str = "cpu", imgsz: int = 640):
        from models.registry import for_inference

        # Fuse Conv+BatchNorm now (predict would, making new weights), then lay the fused
        # weights out channels-last; predict's own fuse() is then a no-op that keeps them.
        for_inference(yolo.model.fuse(), device)
        self.yolo = yolo
        self.name, self.title, self.stages = name, title, "one-stage"
        self.device, self.imgsz = device, imgsz
        names = yolo.names
        # Ultralytics predictors keep per-call state: one call at a time, sharing the lock of
        # the network itself so that a page hooking it (core.hooks) is serialised with it too.
        self._lock = lock_for(yolo.model)
        self.categories = tuple(names[i] for i in range(len(names)))

    def candidates(self, rgb: np.ndarray) -> Candidates:
        import torch

        threads = torch.get_num_threads()  # ultralytics' select_device lowers it process-wide
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            result = self.yolo.predict(
                np.ascontiguousarray(rgb[..., ::-1]),  # ultralytics expects BGR arrays
                conf=CANDIDATE_FLOOR,
                iou=1.0,  # NMS off: nothing overlaps by more than 100%
                max_det=5000,
                imgsz=self.imgsz,
                device=self.device,
                verbose=False,
            )[0]
            latency = (time.perf_counter() - start) * 1000
            torch.set_num_threads(threads)
        boxes = result.boxes
        dets = Detections(
            boxes.xyxy.cpu().numpy().astype(np.float32),
            boxes.conf.cpu().numpy().astype(np.float32),
            boxes.cls.cpu().numpy().astype(np.int64),
            self.categories,
        )
        return Candidates(self.name, dets, (rgb.shape[1], rgb.shape[0]), latency, self.device)


class TorchvisionDetector:
    """A torchvision R-CNN style detector whose final NMS is switched off."""

    def __init__(self, model, *, name: str, title: str, categories: tuple[str, ...], device: str = "cpu"):
        model.roi_heads.nms_thresh = 1.0
        model.roi_heads.score_thresh = CANDIDATE_FLOOR
        model.roi_heads.detections_per_img = 1000
        from models.registry import for_inference

        self.model = for_inference(model, device)
        self.name, self.title, self.stages = name, title, "two-stage"
        self.categories, self.device = categories, device
        self._lock = lock_for(self.model)

    def candidates(self, rgb: np.ndarray) -> Candidates:
        import torch

        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255)
            out = self.model([x.to(self.device)])[0]
            latency = (time.perf_counter() - start) * 1000
        dets = Detections(
            out["boxes"].cpu().numpy().astype(np.float32),
            out["scores"].cpu().numpy().astype(np.float32),
            out["labels"].cpu().numpy().astype(np.int64),
            self.categories,
        )
        return Candidates(self.name, dets, (rgb.shape[1], rgb.shape[0]), latency, self.device)


def load_detector(name: str, *, device: str = "cpu", progress=None, warmup: bool = True) -> Detector:
    """Build the detector registered as ``name`` (raises registry.WeightsUnavailable offline).

    ``warmup`` runs one small image through it, so the first latency a user sees is the
    model's, not the library's one-off setup."""
    from models import registry

    spec = registry.get_spec(name)
    if spec.source in ("ultralytics", "trained") and spec.task == "detect":
        yolo = registry.load_ultralytics(name, progress=progress)
        found = UltralyticsDetector(yolo, name=name, title=spec.title, device=device, imgsz=spec.input_size)
    elif spec.source == "torchvision" and spec.task == "detect":
        model = registry.build_torchvision(name, progress=progress)
        found = TorchvisionDetector(
            model, name=name, title=spec.title, categories=registry.categories(name), device=device
        )
    else:
        raise ValueError(f"{name} is not a detector (task={spec.task}, source={spec.source})")
    if warmup:
        found.candidates(np.full((64, 64, 3), 114, np.uint8))
    return found
