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
        return self.binary.reshape(len(self), -1).sum(axis=1)


def empty(size: tuple[int, int], categories: tuple[str, ...]) -> InstanceMasks:
    w, h = size
    return InstanceMasks(np.zeros((0, h, w), np.float32), np.zeros((0, 4), np.float32),
                         np.zeros(0, np.float32), np.zeros(0, np.int64), categories)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU between two stacks of boolean masks of the same size."""
    a2 = a.reshape(len(a), -1).astype(np.float32)
    b2 = b.reshape(len(b), -1).astype(np.float32)
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
