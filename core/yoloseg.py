"""YOLO-seg instance masks as probabilities: ultralytics' own pipeline, minus the 0.5 threshold.

    instances, ms = yolo_instances(yolo, rgb, imgsz=640)      # every candidate above conf
    kept = instances.select(score=0.25, mask=0.5)              # the user's thresholds, no rerun

A YOLO-seg head predicts, per detection, 32 mask *coefficients*; the mask is
``sigmoid(coefficients @ prototypes)``, cropped to the box. Ultralytics' ``Results.masks``
are that mixture already thresholded (logit > 0, i.e. probability > 0.5). To let a page move
the mask threshold after one cached forward pass, this module runs ultralytics' own
predictor (its letterbox, forward pass and NMS, unchanged) and, in the same call, keeps the
sigmoid of the prototype mixture instead of the threshold. The mixture is scaled to the
original image exactly as ``ultralytics.utils.ops.process_mask_native`` (``retina_masks=True``)
does it, so ``probabilities > 0.5`` equals ultralytics' own retina masks pixel for pixel and
agrees with its default (letterbox-resolution) masks up to resampling (tested).
Heavy imports (torch, ultralytics) happen inside the functions.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Any

import numpy as np

from core.hooks import lock_for
from core.instances import InstanceMasks

# One predictor per model object (ultralytics predictors keep per-call state; they are used
# under the model's lock only) and the argument set it was built with.
_predictors: "weakref.WeakKeyDictionary[Any, tuple[tuple, Any]]" = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def mask_logits(protos, coefficients, shape: tuple[int, int]):
    """(N, H, W) float mask logits ``coefficients @ protos`` at the original image size.

    ``protos``: (C, mh, mw) prototypes of the letterboxed input (a quarter of its size);
    ``coefficients``: (N, C); ``shape``: (H, W) of the original image. The same resampling
    as ``ops.process_mask_native`` (ultralytics 8.4): upsample by the smallest factor that
    lets the letterbox padding be cropped on whole pixels, then ``ops.scale_masks``."""
    import torch
    import torch.nn.functional as F
    from ultralytics.utils import ops

    c, mh, mw = protos.shape
    h, w = shape
    if coefficients.shape[0] == 0:
        return protos.new_zeros((0, h, w), dtype=torch.float32)
    mix = (coefficients.float() @ protos.float().view(c, -1)).view(1, -1, mh, mw)
    gain = min(4 * mh / h, 4 * mw / w)
    pad = (4 * mh - max(round(h * gain), 1)) | (4 * mw - max(round(w * gain), 1))
    f = 4 // math.gcd(4, pad | pad // 2)
    if f > 1:
        mix = F.interpolate(mix, scale_factor=f, mode="bilinear")
    return ops.scale_masks(mix, (h, w))[0]


def probability_masks(protos, coefficients, boxes, shape: tuple[int, int]):
    """``(probabilities, keep)`` for N detections: (N, H, W) sigmoid of the mask logits, zero
    outside each box (``boxes``: (N, 4) xyxy in original-image pixels), and the (N,) bool of
    detections ultralytics keeps (at least one pixel with logit > 0 inside the box)."""
    from ultralytics.utils import ops

    logits = mask_logits(protos, coefficients, shape)
    keep = ops.crop_mask(logits.gt(0).byte(), boxes).flatten(1).amax(1) > 0
    probs = ops.crop_mask(logits.sigmoid_(), boxes)  # in place: sigmoid, then zero outside the box
    return probs, keep


def _predictor_class():
    from ultralytics.models.yolo.segment import SegmentationPredictor

    class ProbabilityPredictor(SegmentationPredictor):
        """Ultralytics' SegmentationPredictor, which also keeps the mask probabilities."""

        probabilities = None

        def construct_result(self, pred, img, orig_img, img_path, proto):
            result = super().construct_result(pred, img, orig_img, img_path, proto)
            # retina_masks=True: super() has scaled pred's boxes to original-image pixels in place.
            self.probabilities = probability_masks(proto, pred[:, 6:], pred[:, :4], orig_img.shape[:2])
            return result

    return ProbabilityPredictor


def _predictor(yolo, args: dict):
    """The cached probability predictor of ``yolo`` for these arguments (call under the model's lock)."""
    key = tuple(sorted((k, str(v)) for k, v in args.items()))
    with _guard:
        cached = _predictors.get(yolo.model)
    if cached is not None and cached[0] == key:
        return cached[1]
    predictor = _predictor_class()(overrides=args)
    predictor.setup_model(model=yolo.model, verbose=False)
    with _guard:
        _predictors[yolo.model] = (key, predictor)
    return predictor


def categories_of(yolo) -> tuple[str, ...]:
    names = yolo.names
    return tuple(names[i] for i in range(len(names)))


def yolo_instances(yolo, rgb: np.ndarray, *, imgsz: int, device: str = "cpu", conf: float = 0.05,
                   iou: float = 0.7, max_det: int = 100) -> tuple[InstanceMasks, float]:
    """Run a YOLO-seg model (``ultralytics.YOLO``, task "segment") on an RGB uint8 image.

    Returns every detection above ``conf`` after ultralytics' NMS (``iou``, at most
    ``max_det``) as :class:`InstanceMasks` whose masks are probabilities in [0, 1] at the
    image's size, and the latency in milliseconds (preprocess, forward, NMS and masks)."""
    import torch

    from core.runtime import for_inference

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
    if getattr(yolo, "task", None) != "segment":
        raise ValueError(f"not a segmentation model (task={getattr(yolo, 'task', None)!r})")
    args = {**yolo.overrides, "conf": conf, "iou": iou, "max_det": max_det, "imgsz": imgsz,
            "device": device, "batch": 1, "save": False, "mode": "predict", "rect": True,
            "embed": None, "retina_masks": True, "verbose": False}
    categories = categories_of(yolo)
    threads = torch.get_num_threads()  # ultralytics' select_device lowers it process-wide
    try:
        with lock_for(yolo.model), torch.inference_mode():
            if getattr(yolo.model, "_cvlab_inference_device", None) != device:
                # Fuse Conv+BN once and lay the weights out channels-last (as models.detectors
                # does); the predictor's own fuse() is then a no-op that keeps them.
                for_inference(yolo.model.fuse(verbose=False), device)
                yolo.model._cvlab_inference_device = device
            predictor = _predictor(yolo, args)
            start = time.perf_counter()
            result = predictor(source=np.ascontiguousarray(rgb[..., ::-1]))[0]  # BGR, like cv2 images
            probs, keep = predictor.probabilities
            latency = (time.perf_counter() - start) * 1000
            predictor.probabilities = None
    finally:
        torch.set_num_threads(threads)
    boxes = result.boxes
    if int(keep.sum()) != len(boxes):
        raise RuntimeError("probability masks out of step with ultralytics' detections")
    masks = probs[keep].cpu().numpy().astype(np.float32, copy=False)
    return InstanceMasks(
        masks,
        boxes.xyxy.cpu().numpy().astype(np.float32),
        boxes.conf.cpu().numpy().astype(np.float32),
        boxes.cls.cpu().numpy().astype(np.int64),
        categories,
    ), latency
