"""A small Mask R-CNN trained here on synthetic shapes scenes: the offline stand-in for COCO Mask R-CNN.

It is torchvision's own ``MaskRCNN`` class — the same transform, FPN, RPN, RoIAlign, box
and mask heads and ``paste_masks_in_image`` as ``maskrcnn_resnet50_fpn`` — so the Mask R-CNN
page runs the same staged code on it. Only the sizes are cut down so that it trains from
scratch on one CPU core (measured, one torch thread, batch 4):

* backbone: a plain conv net (two 3x3 conv + BatchNorm + ReLU per stage, widths 16..128,
  strides 4, 8, 16, 32) under torchvision's ``BackboneWithFPN`` with 64 channels, so the
  feature maps are named and strided exactly like the real model's ('0'..'3' and 'pool').
  ResNet-18 + FPN was measured at 1.5 s per training step against 0.45 s for this one:
  in the same time it would see a third of the scenes;
* anchors 12..192 px (one size per level, three aspect ratios), since the shapes are
  35-70 px after the transform resizes a 320 px scene to ``INPUT_SIZE`` (192);
* box head: a 256-wide two-layer MLP; mask head: two 64-channel convs then the usual
  transposed conv to 28x28 mask logits per class; RoIAlign with ``sampling_ratio=1``
  (RoIAlign's backward pass was a third of the step time at 2);
* 7 classes: background + ``SHAPE_CLASSES`` (torchvision labels are 1-based, the class of
  label ``k`` is ``SHAPE_CLASSES[k - 1]``).

Training scenes come from ``models.shapes_yolo.detection_scene`` (the distribution the
shapes detector uses), drawn on the fly from seeds ``0..``; quality is measured on the
held-out seeds :data:`EVAL_SEEDS` and stored in the checkpoint (state dict + metrics +
format version, loaded with ``weights_only=True``).

The shipped file (``models/trained``, ``python -m models.train --only shapes-maskrcnn``) is
6000 steps of 4 scenes, about 19 CPU-minutes on one core. On the 60 held-out scenes at the
page's default score 0.5 (see ``load_metrics()``): 96 % of the detections are right (class
and mask IoU >= 0.5), 95 % of the shapes are found, and the best mask of the right class covers
its shape with a mean IoU of 0.89. (480 steps, what a first visitor once waited for, gave a
mean mask IoU of 0.72 only at score 0.2, with a third of those detections right.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from core.runtime import torch_threads
from core.shapes import SHAPE_CLASSES
from models.checkpoints import Shipped
from models.shapes_yolo import detection_scene

Progress = Callable[[float, str], None]

FORMAT_VERSION = 1
INPUT_SIZE = 192  # the transform's min_size and max_size: scenes are resized to this
NUM_CLASSES = 1 + len(SHAPE_CLASSES)
FPN_CHANNELS = 64
MASK_CHANNELS = 32
# RoIs sampled per training image for the box head, a quarter of them positive (torchvision: 512).
# 32 at one half was tried: cheaper, but its held-out mask IoU was lower (0.69 against 0.76).
BOX_SAMPLES = 64
WIDTH = 16
ANCHOR_SIZES = ((12,), (24,), (48,), (96,), (192,))
ASPECT_RATIOS = (0.5, 1.0, 2.0)
# RoIAlign picks the FPN level of a box as floor(4 + log2(sqrt(area) / ROI_CANONICAL_SCALE)),
# clamped to the levels given. torchvision's 224 sends every 35-70 px shape to stride 4.
ROI_CANONICAL_SCALE = 224  # 56 (shapes on strides 8-16) learned more slowly in a trial run
EVAL_SEEDS = tuple(range(910_000, 910_060))  # held out: training uses seeds 0 .. steps*batch
# Quality goals checked by the tests on the held-out scenes, at the page's default score 0.5:
# the mean, over the true shapes, of the best mask IoU among detections of the right class
# scoring above EVAL_SCORE; and the share of those detections that are right (class and mask
# IoU >= 0.5).
MASK_IOU_BAR = 0.8
PRECISION_BAR = 0.8
EVAL_SCORE = 0.5



def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def _body(w: int = WIDTH) -> nn.Sequential:
    """Five stages; s1..s4 have strides 4, 8, 16, 32 and feed the FPN."""
    return nn.Sequential(OrderedDict(
        stem=nn.Sequential(_conv(3, w, 2), _conv(w, w, 1)),
        s1=nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w, 1)),
        s2=nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w, 1)),
        s3=nn.Sequential(_conv(4 * w, 8 * w, 2), _conv(8 * w, 8 * w, 1)),
        s4=nn.Sequential(_conv(8 * w, 8 * w, 2), _conv(8 * w, 8 * w, 1)),
    ))


def build_shapes_maskrcnn(*, input_size: int = INPUT_SIZE, width: int = WIDTH, fpn: int = FPN_CHANNELS):
    """The untrained network (eval mode): torchvision's MaskRCNN with small parts."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.models.detection.rpn import RPNHead
    from torchvision.ops import MultiScaleRoIAlign

    backbone = BackboneWithFPN(_body(width), {"s1": "0", "s2": "1", "s3": "2", "s4": "3"},
                               [2 * width, 4 * width, 8 * width, 8 * width], fpn)
    levels = ["0", "1", "2", "3"]
    model = MaskRCNN(
        backbone, num_classes=None, min_size=input_size, max_size=input_size,
        rpn_anchor_generator=AnchorGenerator(ANCHOR_SIZES, (ASPECT_RATIOS,) * len(ANCHOR_SIZES)),
        rpn_head=RPNHead(fpn, len(ASPECT_RATIOS)),
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150,
        rpn_pre_nms_top_n_test=600, rpn_post_nms_top_n_test=300,
        box_roi_pool=MultiScaleRoIAlign(levels, 7, 1, canonical_scale=ROI_CANONICAL_SCALE),
        box_head=TwoMLPHead(fpn * 7 * 7, 256), box_predictor=FastRCNNPredictor(256, NUM_CLASSES),
        box_batch_size_per_image=BOX_SAMPLES, box_detections_per_img=100,
        mask_roi_pool=MultiScaleRoIAlign(levels, 14, 1, canonical_scale=ROI_CANONICAL_SCALE),
        mask_head=MaskRCNNHeads(fpn, [MASK_CHANNELS] * 2, 1),
        mask_predictor=MaskRCNNPredictor(MASK_CHANNELS, MASK_CHANNELS, NUM_CLASSES),
    )
    return model.eval()


# --- data ---------------------------------------------------------------------------------


def scene_sample(seed: int) -> tuple[torch.Tensor, dict]:
    """One training pair in torchvision's format: image (3, H, W) in [0, 1] and its targets."""
    scene = detection_scene(seed)
    image = torch.from_numpy(scene.image).permute(2, 0, 1).float().div(255)
    target = {"boxes": torch.from_numpy(scene.boxes), "labels": torch.from_numpy(scene.labels) + 1,
              "masks": torch.from_numpy(scene.masks.astype(np.uint8))}
    return image, target


# --- training -----------------------------------------------------------------------------


def train_shapes_maskrcnn(*, seed: int = 0, steps: int = 6000, batch: int = 4, lr: float = 2e-3,
                          progress: Progress | None = None, evaluate: bool = True,
                          time_limit_s: float | None = None) -> tuple[nn.Module, dict]:
    """Train from scratch on fresh scenes (step ``i`` uses seeds ``i*batch ..``); (eval model, metrics).

    Deterministic for a given seed (forked global RNG, one torch thread). ``time_limit_s``
    stops early (the metrics say how many steps ran)."""
    report = progress or (lambda frac, msg: None)
    t0, cpu0 = time.perf_counter(), time.process_time()
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        model = build_shapes_maskrcnn().train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
        running: dict[str, float] = {}
        done = 0
        chunk, chunk_sum, loss_curve = max(1, steps // 20), 0.0, []  # mean total loss per 1/20 of the run
        for step in range(steps):
            pairs = [scene_sample(seed * 1_000_003 + step * batch + i) for i in range(batch)]
            losses = model([p[0] for p in pairs], [p[1] for p in pairs])
            loss = sum(losses.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sched.step()
            done = step + 1
            chunk_sum += loss.item()
            if done % chunk == 0:
                loss_curve.append(round(chunk_sum / chunk, 4))
                chunk_sum = 0.0
            for k, v in losses.items():
                running[k] = 0.9 * running.get(k, v.item()) + 0.1 * v.item()
            if done % 10 == 0 or done == steps:
                text = ", ".join(f"{k.removeprefix('loss_')} {v:.2f}" for k, v in running.items())
                report(0.95 * done / steps, f"Shapes Mask R-CNN step {done}/{steps}: {text}")
            if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                break
        model.eval()
        metrics = {"steps": done, "batch": batch, "lr": lr, "seed": seed, "input_size": INPUT_SIZE,
                   "train_seconds": round(time.perf_counter() - t0, 1),
                   # CPU time of this process: the wall time on an otherwise idle machine (one thread)
                   "train_cpu_seconds": round(time.process_time() - cpu0, 1),
                   "final_losses": {k: round(v, 4) for k, v in running.items()}, "loss_curve": loss_curve}
        if evaluate:
            report(0.96, f"measuring mask IoU on {len(EVAL_SEEDS)} held-out scenes")
            metrics.update(evaluate_shapes_maskrcnn(model, EVAL_SEEDS))
    metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    return model, metrics


# --- evaluation ---------------------------------------------------------------------------


def _truth(scene):
    from core.instances import InstanceMasks

    return InstanceMasks(scene.masks.astype(np.float32), scene.boxes, np.ones(len(scene.labels), np.float32),
                         scene.labels, SHAPE_CLASSES)


def mask_scores(model: nn.Module, seeds: Iterable[int], *, score: float = EVAL_SCORE, mask: float = 0.5) -> list[float]:
    """Per true shape of ``detection_scene(seed)``: the best mask IoU among detections of its
    class scoring above ``score`` (0 when none). The model runs as the page runs it."""
    from core.instances import best_match_ious

    out: list[float] = []
    for s in seeds:
        scene = detection_scene(s)
        found = predict_instances(model, scene.image).select(score=score, mask=mask)
        out.extend(best_match_ious(found, _truth(scene)).tolist())
    return out


def evaluate_shapes_maskrcnn(model: nn.Module, seeds: Iterable[int] = EVAL_SEEDS, *, score: float = EVAL_SCORE) -> dict:
    """Mean best-match mask IoU (see :func:`mask_scores`), recall at mask IoU 0.5, and precision:
    the share of detections above ``score`` whose mask overlaps a true shape of their class by 0.5."""
    from core.instances import correct_detections

    seeds = list(seeds)
    ious = np.asarray(mask_scores(model, seeds, score=score), np.float64)
    good = total = 0
    for s in seeds:
        scene = detection_scene(s)
        found = predict_instances(model, scene.image).select(score=score)
        total += len(found)
        good += int(correct_detections(found, _truth(scene)).sum())
    return {"mean_mask_iou": round(float(ious.mean()), 4), "recall_mask_iou50": round(float((ious >= 0.5).mean()), 4),
            "precision_mask_iou50": round(good / max(total, 1), 4), "eval_score": score,
            "n_eval_shapes": int(len(ious)), "n_detections": total, "eval_seeds": [min(seeds), max(seeds)]}


def predict_instances(model: nn.Module, rgb: np.ndarray):
    """``core.instances.InstanceMasks`` of a shapes Mask R-CNN on one RGB image (all detections)."""
    from core.maskrcnn import run_instances

    return run_instances(model, rgb, categories=SHAPE_CLASSES)


# --- the shipped file ------------------------------------------------------------------------


def scenes_fingerprint(seed: int = 0, batch: int = 4) -> str:
    """Digest of the first two training batches (images, boxes, labels, masks) drawn for ``seed``."""
    from models.checkpoints import fingerprint

    parts = []
    for i in range(2 * batch):
        scene = detection_scene(seed * 1_000_003 + i)
        parts += [scene.image, scene.boxes.round().astype(np.int64), scene.labels, scene.masks.sum(axis=(1, 2))]
    return fingerprint(*parts)


RECIPE = dict(seed=0, steps=6000, batch=4, lr=2e-3)

SHIPPED = Shipped(
    name="shapes-maskrcnn", recipe=RECIPE, train=train_shapes_maskrcnn, build=lambda: build_shapes_maskrcnn(),
    evaluate=lambda model: evaluate_shapes_maskrcnn(model, EVAL_SEEDS),
    fingerprint=lambda: scenes_fingerprint(RECIPE["seed"], RECIPE["batch"]), score="mean_mask_iou",
    shown=("precision_mask_iou50", "recall_mask_iou50", "mean_mask_iou"),
    header={"format_version": FORMAT_VERSION, "class_names": list(SHAPE_CLASSES)},
    extra={"input_size": INPUT_SIZE},
    quick=dict(steps=6, batch=2, evaluate=False),
)


def load_shapes_maskrcnn() -> nn.Module:
    """The shipped shapes Mask R-CNN (eval mode); raises registry.WeightsUnavailable if it is missing."""
    return SHIPPED.load()


def load_metrics() -> dict:
    """The held-out metrics recorded for the shipped model."""
    return SHIPPED.metrics()
