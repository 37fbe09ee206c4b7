"""Mask R-CNN, stage by stage: the same submodules ``model(images)`` calls, in its order,
with what each stage produced and how long it took.

    run = staged_run(model, rgb, categories=...)
    run.levels          # FPN outputs: name -> (channels, h, w) and the mean activation map
    run.proposals       # RPN proposals (image pixels), best objectness first
    run.mask_logits     # (N, 28, 28) mask-head logits of each detection's predicted class
    run.instances       # core.instances.InstanceMasks: pasted mask probabilities, all detections
    run.timings_ms      # transform, backbone+FPN, RPN, RoI heads (box), RoI heads (mask), paste

The stages are torchvision's own code (``GeneralizedRCNN.forward``, ``RegionProposalNetwork
.forward`` and ``RoIHeads.forward`` in eval mode, unrolled), so the detections, scores and
masks are exactly those of ``model([image])`` (tested). Masks stay probabilities: torchvision's
``paste_masks_in_image`` returns the sigmoid of the logits pasted into the image, and the 0.5
threshold is the user's (``InstanceMasks.select``). No Streamlit here; torch is imported lazily.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from core.instances import InstanceMasks

STAGES = ("transform", "backbone + FPN", "RPN", "RoI heads: box", "RoI heads: mask", "paste masks")


@dataclass(frozen=True, eq=False)
class FpnLevel:
    name: str  # "0", "1", "2", "3", "pool"
    shape: tuple[int, int, int]  # (channels, height, width)
    stride: float  # input pixels per feature cell
    mean_map: np.ndarray  # (h, w) float32: mean over channels


@dataclass(frozen=True, eq=False)
class StagedRun:
    instances: InstanceMasks  # every detection above the model's score_thresh, best first
    levels: tuple[FpnLevel, ...]
    proposals: np.ndarray  # (P, 4) float32 xyxy in image pixels, best objectness first
    objectness: np.ndarray  # (P,) float32 sigmoid objectness
    anchors: int  # anchors scored by the RPN over all levels
    mask_logits: np.ndarray  # (N, 28, 28) float32, the predicted class's channel, same order as instances
    input_size: tuple[int, int]  # (width, height) the network saw after the transform
    timings_ms: dict[str, float] = field(default_factory=dict)  # per stage, pipeline order
    wall_ms: float = 0.0  # the whole call, stages and bookkeeping
    device: str = "cpu"

    @property
    def total_ms(self) -> float:
        return float(sum(self.timings_ms.values()))

    def top_proposals(self, k: int) -> np.ndarray:
        """The ``k`` proposals with the highest objectness (fewer if the RPN kept fewer)."""
        return self.proposals[: max(int(k), 0)]


def image_tensor(rgb: np.ndarray, device: str = "cpu"):
    """(H, W, 3) uint8 RGB -> (3, H, W) float in [0, 1], as torchvision's detectors expect."""
    import torch

    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div(255).to(device)  # a writable copy


def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def staged_run(model, rgb: np.ndarray, *, categories: tuple[str, ...], label_offset: int = 1) -> StagedRun:
    """Run a torchvision ``MaskRCNN`` (eval mode) on one RGB image, one stage at a time.

    ``categories`` names the model's labels; torchvision's label ``k`` is
    ``categories[k - label_offset]`` (1 for the shapes model, whose label 0 is background;
    0 for the COCO weights, whose category list starts with ``__background__``).
    The caller holds the model's lock (``core.hooks.lock_for``) if it is shared."""
    import torch
    from torchvision.models.detection.roi_heads import maskrcnn_inference
    from torchvision.models.detection.rpn import concat_box_prediction_layers
    from torchvision.models.detection.transform import resize_boxes

    if model.training:
        raise ValueError("staged_run needs the model in eval mode")
    device = next(model.parameters()).device
    times: dict[str, float] = {}
    start = time.perf_counter()
    with torch.inference_mode():
        x = image_tensor(rgb, device)
        original_sizes = [(int(x.shape[-2]), int(x.shape[-1]))]

        def clock(stage, fn):
            _sync(device)
            t0 = time.perf_counter()
            out = fn()
            _sync(device)
            times[stage] = (time.perf_counter() - t0) * 1000
            return out

        images, _ = clock("transform", lambda: model.transform([x]))
        features = clock("backbone + FPN", lambda: model.backbone(images.tensors))
        if isinstance(features, torch.Tensor):
            from collections import OrderedDict

            features = OrderedDict([("0", features)])
        rpn = model.rpn

        def run_rpn():  # RegionProposalNetwork.forward (eval), keeping the objectness it drops
            feats = list(features.values())
            objectness, deltas = rpn.head(feats)
            anchors = rpn.anchor_generator(images, feats)
            per_level = [o[0].numel() for o in objectness]
            objectness, deltas = concat_box_prediction_layers(objectness, deltas)
            proposals = rpn.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
            boxes, scores = rpn.filter_proposals(proposals, objectness, images.image_sizes, per_level)
            return boxes, scores, sum(per_level)

        proposals, objectness, n_anchors = clock("RPN", run_rpn)
        heads = model.roi_heads

        def run_box():  # RoIHeads.forward (eval), box branch
            feats = heads.box_roi_pool(features, proposals, images.image_sizes)
            class_logits, box_regression = heads.box_predictor(heads.box_head(feats))
            return heads.postprocess_detections(class_logits, box_regression, proposals, images.image_sizes)

        boxes, scores, labels = clock("RoI heads: box", run_box)

        def run_mask():  # RoIHeads.forward (eval), mask branch
            feats = heads.mask_roi_pool(features, boxes, images.image_sizes)
            logits = heads.mask_predictor(heads.mask_head(feats))
            return logits, maskrcnn_inference(logits, labels)

        mask_logits, mask_probs = clock("RoI heads: mask", run_mask)
        result = [{"boxes": boxes[0], "labels": labels[0], "scores": scores[0], "masks": mask_probs[0]}]
        result = clock("paste masks", lambda: model.transform.postprocess(result, images.image_sizes, original_sizes))[0]

        chosen = mask_logits[torch.arange(len(labels[0]), device=mask_logits.device), labels[0]]
        props = resize_boxes(proposals[0], images.image_sizes[0], original_sizes[0])
        in_h, in_w = images.image_sizes[0]
        levels = tuple(
            FpnLevel(name, tuple(int(s) for s in f.shape[1:]), in_w / f.shape[-1],
                     f[0].float().mean(dim=0).cpu().numpy().astype(np.float32))
            for name, f in features.items()
        )
        tv_labels = result["labels"].cpu().numpy().astype(np.int64)
        instances = InstanceMasks(
            result["masks"][:, 0].float().cpu().numpy(),
            result["boxes"].float().cpu().numpy().astype(np.float32),
            result["scores"].float().cpu().numpy().astype(np.float32),
            tv_labels - label_offset,
            tuple(categories),
        )
    return StagedRun(instances=instances, levels=levels, proposals=props.cpu().numpy().astype(np.float32),
                     objectness=objectness[0].cpu().numpy().astype(np.float32), anchors=int(n_anchors),
                     mask_logits=chosen.float().cpu().numpy(), input_size=(int(in_w), int(in_h)),
                     timings_ms=times, wall_ms=(time.perf_counter() - start) * 1000, device=str(device))


def run_instances(model, rgb: np.ndarray, *, categories: tuple[str, ...], label_offset: int = 1) -> InstanceMasks:
    """The plain forward pass ``model([image])`` as InstanceMasks (the reference the stages must equal)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model([image_tensor(rgb, device)])[0]
    return InstanceMasks(out["masks"][:, 0].float().cpu().numpy(), out["boxes"].float().cpu().numpy(),
                         out["scores"].float().cpu().numpy(),
                         out["labels"].cpu().numpy().astype(np.int64) - label_offset, tuple(categories))


def configure(model, *, size: int | None = None, score_thresh: float = 0.05, detections: int = 100):
    """Settings the page uses: a low score floor and up to ``detections`` per image, so the score
    slider works on one cached pass; ``size`` sets the transform's min_size and max_size."""
    if size is not None:
        model.transform.min_size = (int(size),)
        model.transform.max_size = int(size)
    model.roi_heads.score_thresh = float(score_thresh)
    model.roi_heads.detections_per_img = int(detections)
    return model


# --- pictures of the stages ------------------------------------------------------------------


def heatmap(values: np.ndarray, *, size: int = 160, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """(h, w) numbers -> RGB uint8 viridis picture, nearest-neighbour upscaled so its long side
    is about ``size`` (each feature cell stays a visible block)."""
    import cv2

    v = np.asarray(values, np.float32)
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    grey = np.zeros(v.shape, np.uint8) if hi <= lo else np.clip((v - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    rgb = cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS)[..., ::-1]
    k = max(1, round(size / max(v.shape)))
    return np.ascontiguousarray(np.repeat(np.repeat(rgb, k, axis=0), k, axis=1))


def mask_logit_picture(logits: np.ndarray, *, size: int = 112) -> np.ndarray:
    """One 28x28 mask-logit map as the probability it becomes (sigmoid, 0 black .. 1 yellow)."""
    return heatmap(1 / (1 + np.exp(-np.asarray(logits, np.float32))), size=size, lo=0.0, hi=1.0)


def draw_proposals(rgb: np.ndarray, boxes: np.ndarray, *, colour=(255, 215, 0)) -> np.ndarray:
    """Proposal boxes as thin outlines on a copy of the image (the best ones drawn last, on top)."""
    import cv2

    out = np.ascontiguousarray(rgb).copy()
    thick = max(1, max(out.shape[:2]) // 400)
    for x0, y0, x1, y1 in boxes[::-1]:
        cv2.rectangle(out, (int(round(x0)), int(round(y0))), (int(round(x1)) - 1, int(round(y1)) - 1),
                      colour, thick)
    return out


def timing_rows(timings_ms: dict[str, float]) -> list[dict]:
    """Rows for a bar chart, in pipeline order."""
    return [{"stage": k, "ms": round(float(v), 1)} for k, v in timings_ms.items()]
