"""Instance masks: what an instance segmenter returns, one type for every model.

    run = InstanceMasks(masks, boxes, scores, labels, categories)   # all candidates
    kept = run.select(score=0.5, mask=0.5)                          # the user's thresholds
    picture = MaskAnnotator(opacity=0.5).annotate(rgb, kept)

``masks`` are per-instance *probabilities* in [0, 1] at the image's size (Mask R-CNN's
pasted mask logits after the sigmoid, YOLO-seg's prototype mix after the sigmoid), so the
mask threshold is applied here, after the cached forward pass, and a slider move never
reruns the network. Pure numpy (OpenCV only for drawing outlines); no Streamlit, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A palette that stays readable on photos (tab10-like), RGB.
PALETTE = np.array(
    [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
     (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)],
    dtype=np.uint8,
)


@dataclass(frozen=True, eq=False)
class InstanceMasks:
    masks: np.ndarray  # (N, H, W) float32 mask probabilities in [0, 1], image size
    boxes: np.ndarray  # (N, 4) float32 xyxy, image pixels
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64 indices into categories
    categories: tuple[str, ...]
    mask_threshold: float = 0.5  # the threshold ``binary`` uses

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.masks.ndim != 3 or len(self.masks) != n or self.boxes.shape != (n, 4) or len(self.labels) != n:
            raise ValueError(
                f"inconsistent instances: masks {self.masks.shape}, boxes {self.boxes.shape}, "
                f"scores {self.scores.shape}, labels {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the masks."""
        return self.masks.shape[2], self.masks.shape[1]

    @property
    def binary(self) -> np.ndarray:
        """(N, H, W) bool: pixels whose probability exceeds ``mask_threshold``."""
        return self.masks > self.mask_threshold

    @property
    def names(self) -> list[str]:
        return [self.categories[i] for i in self.labels]

    def select(self, *, score: float, mask: float = 0.5) -> "InstanceMasks":
        """Instances scoring above ``score``, best first, with ``mask`` as mask threshold."""
        keep = np.flatnonzero(self.scores > score)
        keep = keep[np.argsort(-self.scores[keep], kind="stable")]
        return InstanceMasks(self.masks[keep], self.boxes[keep], self.scores[keep], self.labels[keep],
                             self.categories, mask)

    def areas(self) -> np.ndarray:
        """Pixels per binary mask."""
        return self.binary.reshape(len(self), int(np.prod(self.masks.shape[1:]))).sum(axis=1)


def empty(size: tuple[int, int], categories: tuple[str, ...]) -> InstanceMasks:
    w, h = size
    return InstanceMasks(np.zeros((0, h, w), np.float32), np.zeros((0, 4), np.float32),
                         np.zeros(0, np.float32), np.zeros(0, np.int64), categories)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU between two stacks of boolean masks of the same size."""
    a2 = a.reshape(len(a), int(np.prod(a.shape[1:]))).astype(np.float32)
    b2 = b.reshape(len(b), int(np.prod(b.shape[1:]))).astype(np.float32)
    inter = a2 @ b2.T
    union = a2.sum(1)[:, None] + b2.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


class MaskAnnotator:
    """Fill each instance's mask with its own colour and outline it; returns a new image."""

    def __init__(self, *, opacity: float = 0.5, outline: int = 2, palette: np.ndarray = PALETTE):
        self.opacity, self.outline, self.palette = float(opacity), int(outline), palette

    def colour(self, i: int) -> np.ndarray:
        return self.palette[i % len(self.palette)]

    def annotate(self, rgb: np.ndarray, instances: InstanceMasks) -> np.ndarray:
        import cv2

        out = rgb.astype(np.float32)  # a copy
        binary = instances.binary
        for i, mask in enumerate(binary):
            out[mask] = (1 - self.opacity) * out[mask] + self.opacity * self.colour(i)
        out = out.round().clip(0, 255).astype(np.uint8)
        if self.outline:
            for i, mask in enumerate(binary):
                contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                cv2.drawContours(out, contours, -1, tuple(int(c) for c in self.colour(i)), self.outline)
        return out


def best_match_ious(pred: InstanceMasks, truth: InstanceMasks) -> np.ndarray:
    """Per true instance: the best IoU between its mask and a predicted mask of the same class
    (0 when no prediction has that class). Both use their own ``mask_threshold``."""
    if len(truth) == 0:
        return np.zeros(0, np.float64)
    if len(pred) == 0:
        return np.zeros(len(truth), np.float64)
    iou = mask_iou(truth.binary, pred.binary)
    same = truth.labels[:, None] == pred.labels[None, :]
    return np.where(same, iou, 0.0).max(axis=1)


def label_image(instances: InstanceMasks) -> np.ndarray:
    """(H, W) uint16 instance-id image: 0 background, ``i + 1`` where instance ``i`` (in the
    given order, best first after ``select``) covers the pixel; a better instance wins overlaps."""
    w, h = instances.size
    out = np.zeros((h, w), np.uint16)
    binary = instances.binary
    for i in range(len(instances) - 1, -1, -1):  # worst first, so the best is painted last
        out[binary[i]] = i + 1
    return out


def encode_label_png(labels: np.ndarray) -> bytes:
    """A label image as a lossless PNG: 8-bit greyscale when ids fit, else 16-bit."""
    import io

    from PIL import Image

    labels = np.ascontiguousarray(labels)
    small = labels.max(initial=0) < 256
    image = Image.fromarray(labels.astype(np.uint8 if small else np.uint16))  # mode "L" or "I;16"
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def correct_detections(pred: InstanceMasks, truth: InstanceMasks, *, iou: float = 0.5) -> np.ndarray:
    """Per predicted instance: whether its mask overlaps a true instance of the same class by at
    least ``iou`` (duplicates of one object all count; this is a mask-quality check, not AP)."""
    if len(pred) == 0 or len(truth) == 0:
        return np.zeros(len(pred), bool)
    same = pred.labels[:, None] == truth.labels[None, :]
    return np.where(same, mask_iou(pred.binary, truth.binary), 0.0).max(axis=1) >= iou
