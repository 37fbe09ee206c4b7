"""Object detection, the part after the network: thresholds, NMS and matching.

A detector (see ``models/detectors.py``) turns an image into *candidates*: every box it
scored above a low floor, before non-maximum suppression. Everything a user moves on the
Object detection page happens here, on those cached candidates, so a slider change costs
milliseconds instead of a forward pass:

    candidates --(confidence, class filter)--> pre-NMS boxes --(batched NMS, IoU)--> kept

NMS and IoU are torchvision's (``torchvision.ops.nms``, per class / ``box_iou``), the same
ops Ultralytics and torchvision's own detectors call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CANDIDATE_FLOOR = 0.05  # detectors keep every box scoring above this


@dataclass(frozen=True)
class Detections:
    """Boxes in image pixels (xyxy), with score and class id, sorted by score."""

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64
    categories: tuple[str, ...] = field(repr=False)

    def __post_init__(self):
        n = len(self.scores)
        if self.boxes.shape != (n, 4) or self.labels.shape != (n,):
            raise ValueError(f"inconsistent detections: {self.boxes.shape}, {self.labels.shape}, {n}")

    def __len__(self) -> int:
        return len(self.scores)

    def names(self) -> list[str]:
        return [self.categories[i] for i in self.labels]

    def subset(self, index) -> "Detections":
        return Detections(self.boxes[index], self.scores[index], self.labels[index], self.categories)

    def table(self) -> list[dict]:
        """Rows for a results table / CSV download."""
        return [
            {
                "class": self.categories[int(label)],
                "score": round(float(score), 3),
                "x1": round(float(b[0]), 1),
                "y1": round(float(b[1]), 1),
                "x2": round(float(b[2]), 1),
                "y2": round(float(b[3]), 1),
            }
            for b, score, label in zip(self.boxes, self.scores, self.labels)
        ]


@dataclass(frozen=True)
class Candidates:
    """One forward pass of one detector on one image: every box above the floor, pre-NMS."""

    model: str
    detections: Detections
    image_size: tuple[int, int]  # (width, height) of the image the boxes refer to
    latency_ms: float  # forward pass incl. pre/post-processing, measured on ``device``
    device: str


@dataclass(frozen=True)
class Selection:
    before_nms: Detections
    kept: Detections


def empty(categories: tuple[str, ...]) -> Detections:
    return Detections(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), categories
    )


def select(
    candidates: Detections,
    *,
    conf: float,
    iou: float,
    classes: set[int] | None = None,
    class_agnostic: bool = False,
    max_det: int = 300,
) -> Selection:
    """Apply the confidence threshold, the class filter and NMS to cached candidates.

    ``iou`` is the NMS threshold: a box is dropped when it overlaps a higher-scoring box
    of the same class (any class if ``class_agnostic``) by more than ``iou``.
    """
    import torch
    from torchvision.ops import nms

    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise ValueError(f"conf and iou must lie in [0, 1], got conf={conf}, iou={iou}")
    keep = candidates.scores > conf
    if classes is not None:
        keep &= np.isin(candidates.labels, list(classes))
    before = candidates.subset(np.flatnonzero(keep))
    order = np.argsort(-before.scores, kind="stable")
    before = before.subset(order)
    if len(before) == 0:
        return Selection(before, before)
    groups = np.zeros_like(before.labels) if class_agnostic else before.labels
    # NMS class by class (torchvision's own batched_nms does this for large inputs). Its
    # shortcut for small ones shifts each class by label * (max coordinate + 1) in float32,
    # which rounds coordinates (to ~0.008 px for label 79 in a 1280 px image) and so keeps
    # pairs whose true IoU is just above ``iou``.
    boxes, scores = torch.from_numpy(before.boxes).float(), torch.from_numpy(before.scores).float()
    survives = np.zeros(len(before), bool)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        index = torch.from_numpy(members)
        survives[members[nms(boxes[index], scores[index], iou).numpy()]] = True
    return Selection(before, before.subset(np.flatnonzero(survives)[:max_det]))  # still by score


@dataclass(frozen=True)
class MatchReport:
    true_positives: int
    false_positives: int
    missed: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        total = self.true_positives + self.missed
        return self.true_positives / total if total else 1.0


def match_to_truth(
    dets: Detections, true_boxes: np.ndarray, true_labels: np.ndarray, *, iou: float = 0.5
) -> MatchReport:
    """Greedy matching by score: a detection is correct if it overlaps an unmatched true box
    of the same class by at least ``iou`` (the rule behind VOC-style AP@0.5)."""
    import torch
    from torchvision.ops import box_iou

    if len(true_boxes) == 0 or len(dets) == 0:
        return MatchReport(0, len(dets), len(true_boxes))
    overlaps = box_iou(torch.as_tensor(dets.boxes).float(), torch.as_tensor(true_boxes).float()).numpy()
    used = np.zeros(len(true_boxes), bool)
    tp = 0
    for i in np.argsort(-dets.scores, kind="stable"):
        ok = (~used) & (true_labels == dets.labels[i]) & (overlaps[i] >= iou)
        if ok.any():
            used[np.flatnonzero(ok)[np.argmax(overlaps[i][ok])]] = True
            tp += 1
    return MatchReport(tp, len(dets) - tp, int((~used).sum()))


def count_by_class(dets: Detections) -> dict[str, int]:
    names, counts = np.unique(np.asarray(dets.names(), dtype=object), return_counts=True)
    return {str(n): int(c) for n, c in sorted(zip(names, counts), key=lambda t: -t[1])}


def select_by_names(candidates: Detections, *, conf: float, iou: float, names=()) -> Selection:
    """``select`` with the class filter given as class names (empty = all classes)."""
    wanted = {i for i, c in enumerate(candidates.categories) if c in set(names)} if names else None
    return select(candidates, conf=conf, iou=iou, classes=wanted)


def nms_counts(sel: Selection) -> dict[str, list]:
    """Per class: how many boxes went into NMS and how many came out (for a bar chart)."""
    before = count_by_class(sel.before_nms)
    kept = count_by_class(sel.kept)
    classes = list(before)
    return {
        "class": classes,
        "before NMS": [before[c] for c in classes],
        "kept": [kept.get(c, 0) for c in classes],
    }


def to_csv(dets: Detections) -> str:
    """The kept boxes as CSV (the csv module quotes a class name that holds a comma)."""
    import csv
    import io

    columns = ["class", "score", "x1", "y1", "x2", "y2"]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(dets.table())
    return out.getvalue()
