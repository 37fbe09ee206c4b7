"""Anchor boxes, how detectors match them to objects, and the anchor-free contrast (YOLO11).

Everything here calls the libraries that real detectors call, so the page cannot drift
from them:

* :func:`generate` — the anchors of torchvision's ``AnchorGenerator`` (the module inside
  Faster R-CNN's RPN and RetinaNet), obtained by *calling* it on an ``ImageList`` of the
  working image's size padded as the detectors pad it (``GeneralizedRCNNTransform``,
  ``size_divisible=32``) and empty feature maps of the grid shapes their backbones give.
* :func:`match` — torchvision's ``box_iou`` and its ``Matcher`` (the RPN / RetinaNet rule:
  IoU >= high is positive, < low negative, in between ignored; optional low-quality matches
  give every object its best anchor(s)).
* :func:`yolo_forward` / :func:`attribute` — YOLO11 has no anchor boxes, only one grid
  point per cell at strides 8/16/32. Its raw head output (``(1, 4 + nc, A)``, A = the grid
  cells of all strides, stride 8 first) is filtered and NMS'd here with the anchor indices
  kept, so every final box says which stride and which grid point produced it.

Pure computation: no Streamlit. torch, torchvision and ultralytics are imported lazily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MATCH_LONG_SIDE = 640  # anchors and matching work at this long side (at most)
# torchvision's detectors (Faster R-CNN, RetinaNet, Mask R-CNN, FCOS, ...) pad every image to a
# multiple of 32 (GeneralizedRCNNTransform's size_divisible), whatever their largest stride.
SIZE_DIVISIBLE = 32

# Presets a user picks from: (label, value). Sizes per level are base * 2**level * scale,
# truncated to int exactly as torchvision's RetinaNet builds its octave sizes.
LEVEL_PRESETS: dict[str, tuple[str, tuple[int, ...]]] = {
    "fpn": ("P2–P6 · strides 4, 8, 16, 32, 64 (Faster R-CNN FPN)", (4, 8, 16, 32, 64)),
    "retina": ("P3–P7 · strides 8 … 128 (RetinaNet)", (8, 16, 32, 64, 128)),
    "p3p5": ("P3–P5 · strides 8, 16, 32 (the levels YOLO uses)", (8, 16, 32)),
    "c4": ("C4 · stride 16 only (original Faster R-CNN)", (16,)),
}
SCALE_PRESETS: dict[str, tuple[str, tuple[float, ...]]] = {
    "one": ("×1 per level (FPN: one size per level)", (1.0,)),
    "octave": ("×2⁰, 2^⅓, 2^⅔ per level (RetinaNet)", (1.0, 2 ** (1 / 3), 2 ** (2 / 3))),
    "x124": ("×1, 2, 4 per level (original Faster R-CNN with base 128)", (1.0, 2.0, 4.0)),
}
RATIO_PRESETS: dict[str, tuple[str, tuple[float, ...]]] = {
    "frcnn": ("h:w = 1:2, 1:1, 2:1 (Faster R-CNN, RetinaNet)", (0.5, 1.0, 2.0)),
    "square": ("1:1 only", (1.0,)),
    "ssd": ("1:3, 1:2, 1:1, 2:1, 3:1 (SSD)", (1 / 3, 0.5, 1.0, 2.0, 3.0)),
}


@dataclass(frozen=True)
class AnchorConfig:
    """Which anchors to lay out: one feature level per stride, sizes and aspect ratios.

    ``aspect_ratios`` are height / width, as in torchvision."""

    strides: tuple[int, ...] = (4, 8, 16, 32, 64)
    base_size: int = 32  # anchor size at the first level, scale 1
    scales: tuple[float, ...] = (1.0,)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)

    def __post_init__(self):
        if not self.strides or any(s < 1 for s in self.strides) or list(self.strides) != sorted(set(self.strides)):
            raise ValueError(f"strides must be increasing positive integers, got {self.strides}")
        if self.base_size < 1 or not self.scales or not self.aspect_ratios:
            raise ValueError("base_size >= 1, and at least one scale and one aspect ratio")
        if any(r <= 0 for r in self.aspect_ratios) or any(s <= 0 for s in self.scales):
            raise ValueError("scales and aspect ratios must be positive")

    def sizes(self) -> tuple[tuple[int, ...], ...]:
        """torchvision's ``sizes`` argument: one tuple of anchor sizes per level."""
        return tuple(tuple(int(self.base_size * 2 ** i * s) for s in self.scales) for i in range(len(self.strides)))

    @property
    def per_cell(self) -> int:
        return len(self.scales) * len(self.aspect_ratios)


def preset_config(levels: str = "fpn", scales: str = "one", ratios: str = "frcnn", base_size: int = 32) -> AnchorConfig:
    return AnchorConfig(LEVEL_PRESETS[levels][1], int(base_size), SCALE_PRESETS[scales][1], RATIO_PRESETS[ratios][1])


@dataclass(frozen=True)
class Level:
    stride: int  # the level's nominal stride (the backbone's total downsampling)
    grid: tuple[int, int]  # (rows, cols) of the feature map: ceil(padded size / stride)
    sizes: tuple[int, ...]
    start: int  # index of this level's first anchor in AnchorSet.boxes
    count: int  # rows * cols * per_cell
    # (y, x) spacing of the anchor centres: torchvision's AnchorGenerator uses padded size // grid,
    # equal to ``stride`` unless the stride does not divide the padded size (a 480-px side has
    # 8 rows at stride 64, 60 px apart)
    step: tuple[int, int]

    @property
    def step_y(self) -> int:
        return self.step[0]

    @property
    def step_x(self) -> int:
        return self.step[1]


@dataclass(frozen=True)
class AnchorSet:
    """Every anchor of one image, in torchvision's order: level, then row, column, then
    (aspect ratio, size) — ratio-major, exactly as AnchorGenerator lays them out."""

    boxes: np.ndarray  # (N, 4) float32 xyxy, in working-image pixels
    levels: tuple[Level, ...]
    config: AnchorConfig
    image_size: tuple[int, int]  # (height, width) of the working image
    padded_size: tuple[int, int]  # (height, width) after padding to a multiple of SIZE_DIVISIBLE (32)

    def __len__(self) -> int:
        return len(self.boxes)

    def cell(self, level: int, col: int, row: int) -> np.ndarray:
        """Indices of the anchors centred on one feature-map cell."""
        lv = self.levels[level]
        k = self.config.per_cell
        first = lv.start + (row * lv.grid[1] + col) * k
        return np.arange(first, first + k)

    def describe(self, index: np.ndarray) -> list[dict]:
        """Level, stride, cell and shape of each anchor index."""
        k, n_scales = self.config.per_cell, len(self.config.scales)
        starts = np.array([lv.start for lv in self.levels])
        rows = []
        for i in np.asarray(index, dtype=np.int64):
            li = int(np.searchsorted(starts, i, side="right") - 1)
            lv = self.levels[li]
            loc, a = divmod(int(i - lv.start), k)
            row, col = divmod(loc, lv.grid[1])
            r, s = divmod(a, n_scales)
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            rows.append({"anchor": int(i), "level": li, "stride": lv.stride, "col": col, "row": row,
                         "size": lv.sizes[s], "aspect h:w": round(self.config.aspect_ratios[r], 3),
                         "x1": x1, "y1": y1, "x2": x2, "y2": y2})
        return rows

    def centres(self, level: int) -> np.ndarray:
        """(rows*cols, 2) anchor centres (x, y) of one level (one per cell)."""
        lv = self.levels[level]
        b = self.boxes[lv.start:lv.start + lv.count:self.config.per_cell]
        return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)

    def counts(self) -> dict[str, list]:
        return {"stride": [lv.stride for lv in self.levels], "anchors": [lv.count for lv in self.levels]}


def padded_size(height: int, width: int, size_divisible: int = SIZE_DIVISIBLE) -> tuple[int, int]:
    """The batch size a torchvision detector pads the (resized) image to: up to a multiple of
    ``size_divisible`` (32 in ``GeneralizedRCNNTransform``), not of the largest stride."""
    m = int(size_divisible)
    return math.ceil(height / m) * m, math.ceil(width / m) * m


def grid_size(padded_height: int, padded_width: int, stride: int) -> tuple[int, int]:
    """(rows, cols) of a level's feature map: ceil(padded size / stride).

    Each stride-2 step of the backbone (ResNet's padded convolutions and max pool, FPN's P6
    max pool with kernel 1, RetinaNet's P6/P7 3x3 convolutions with padding 1) maps n cells to
    ceil(n / 2), and ceil(ceil(n / 2) / 2) = ceil(n / 4): a 480-px side gives 15 cells at
    stride 32 and 8 at stride 64."""
    return math.ceil(padded_height / stride), math.ceil(padded_width / stride)


def generate(height: int, width: int, config: AnchorConfig = AnchorConfig(), *,
             size_divisible: int = SIZE_DIVISIBLE) -> AnchorSet:
    """Call torchvision's AnchorGenerator as a detector does on an image of this size: the
    batch padded to ``size_divisible`` (:func:`padded_size`), feature maps of the backbone's
    grid shapes (:func:`grid_size`). At 480 x 640 with the FPN levels that is Faster R-CNN's
    76 740 anchors (padding to 64 instead would give 81 840)."""
    import torch
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.image_list import ImageList

    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    hp, wp = padded_size(height, width, size_divisible)
    sizes = config.sizes()
    grids = [grid_size(hp, wp, s) for s in config.strides]
    generator = AnchorGenerator(sizes, (tuple(config.aspect_ratios),) * len(sizes))
    # Only shapes matter to the generator: zero-channel tensors carry them without memory.
    images = ImageList(torch.empty((1, 0, hp, wp)), [(height, width)])
    feats = [torch.empty((1, 0, *g)) for g in grids]
    with torch.no_grad():
        boxes = generator(images, feats)[0].numpy()
    levels, start = [], 0
    for s, sz, grid in zip(config.strides, sizes, grids):
        count = grid[0] * grid[1] * config.per_cell
        levels.append(Level(s, grid, sz, start, count, (hp // grid[0], wp // grid[1])))
        start += count
    assert start == len(boxes), (start, len(boxes))
    boxes.flags.writeable = False
    return AnchorSet(boxes, tuple(levels), config, (height, width), (hp, wp))


def locate(anchors: AnchorSet, level: int, x_frac: float, y_frac: float) -> tuple[int, int]:
    """(col, row) of the cell of ``level`` under a position given as fractions of the image."""
    lv = anchors.levels[level]
    h, w = anchors.image_size
    col = min(int(x_frac * w) // lv.step_x, lv.grid[1] - 1)
    row = min(int(y_frac * h) // lv.step_y, lv.grid[0] - 1)
    return max(col, 0), max(row, 0)


# --- matching -----------------------------------------------------------------------------

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class Overlaps:
    """IoU of every anchor with every object, computed once per (image, anchors, objects)."""

    iou: np.ndarray  # (M objects, K anchors) float32 torchvision.ops.box_iou, touching anchors only
    touching: np.ndarray  # (K,) indices of the anchors that overlap some object (every other IoU is 0)
    n_anchors: int  # N
    best_iou: np.ndarray  # (N,) each anchor's highest IoU with any object
    best_object: np.ndarray  # (N,) the object giving it (-1 where the anchor touches none)
    best_anchor: np.ndarray  # (M,) each object's best anchor (first of ties)
    best_anchor_iou: np.ndarray  # (M,)


@dataclass(frozen=True)
class Matching:
    """Anchor labels for one pair of thresholds (holds the per-anchor vectors, not the matrix)."""

    labels: np.ndarray  # (N,) int8: 1 positive, 0 negative, -1 ignored
    matched: np.ndarray  # (N,) int32: the object a positive anchor regresses to, else -1
    best_iou: np.ndarray
    best_object: np.ndarray
    best_anchor: np.ndarray
    best_anchor_iou: np.ndarray
    high: float
    low: float
    low_quality: bool

    @property
    def positives(self) -> int:
        return int((self.labels == POSITIVE).sum())

    @property
    def negatives(self) -> int:
        return int((self.labels == NEGATIVE).sum())

    @property
    def ignored(self) -> int:
        return int((self.labels == IGNORED).sum())

    def positives_per_object(self) -> np.ndarray:
        return np.bincount(self.matched[self.matched >= 0], minlength=len(self.best_anchor))


def overlaps(boxes: np.ndarray, anchors: np.ndarray) -> Overlaps:
    """IoU (M objects, N anchors) by torchvision.ops.box_iou: the Matcher's quality matrix."""
    import torch
    from torchvision.ops import box_iou

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(anchors)
    if len(boxes) == 0:
        return _frozen(Overlaps(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), n, np.zeros(n, np.float32),
                                np.full(n, -1, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32)))
    # np.require copies read-only (cached) arrays: torch does not wrap them silently
    quality = box_iou(*(torch.from_numpy(np.require(a, np.float32, ["C", "W"])) for a in (boxes, anchors)))
    best_iou, best_object = quality.max(dim=0)
    best_val, best_idx = quality.max(dim=1)
    best_iou = best_iou.numpy()
    touching = np.flatnonzero(best_iou > 0)
    best_object = np.where(best_iou > 0, best_object.numpy(), -1).astype(np.int32)
    return _frozen(Overlaps(np.ascontiguousarray(quality.numpy()[:, touching]), touching, n, best_iou, best_object,
                            best_idx.numpy().astype(np.int64), best_val.numpy()))


def full_iou(ov: Overlaps) -> np.ndarray:
    """The whole (M, N) IoU matrix (zeros where an anchor touches no object)."""
    full = np.zeros((ov.iou.shape[0], ov.n_anchors), np.float32)
    full[:, ov.touching] = ov.iou
    return full


def _frozen(obj):
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return obj


def match(ov: Overlaps, *, high: float, low: float, low_quality: bool) -> Matching:
    """Label anchors with torchvision's Matcher, as the RPN and RetinaNet do in training:
    best IoU >= high positive, < low negative, in between ignored; ``low_quality`` also makes
    each object's best anchor(s) positive (ties included) whatever their IoU."""
    import torch
    from torchvision.models.detection._utils import Matcher

    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
    m, n = ov.iou.shape[0], ov.n_anchors
    vectors = (ov.best_iou, ov.best_object, ov.best_anchor, ov.best_anchor_iou)
    if m == 0:  # no objects: every anchor is background (Matcher itself refuses an empty matrix)
        return _frozen(Matching(np.zeros(n, np.int8), np.full(n, -1, np.int32), *vectors, high, low, low_quality))
    matcher = Matcher(high, low, allow_low_quality_matches=low_quality)
    if low > 0 and (ov.best_anchor_iou > 0).all():
        # Same result, far less work: an anchor touching no object has IoU 0 < low, so the
        # Matcher calls it BELOW_LOW_THRESHOLD, and it cannot be a low-quality match (each
        # object's best IoU is > 0). So only the touching anchors' columns go through it.
        matches = np.full(n, Matcher.BELOW_LOW_THRESHOLD, np.int64)
        matches[ov.touching] = matcher(torch.from_numpy(np.array(ov.iou))).numpy()
    else:
        matches = matcher(torch.from_numpy(full_iou(ov))).numpy()
    labels = np.where(matches >= 0, POSITIVE, np.where(matches == Matcher.BETWEEN_THRESHOLDS, IGNORED, NEGATIVE))
    return _frozen(Matching(labels.astype(np.int8), np.where(matches >= 0, matches, -1).astype(np.int32),
                            *vectors, high, low, low_quality))


def level_table(anchors: AnchorSet, matching: Matching) -> list[dict]:
    """Per level: grid, anchors, and how many of them are positive / ignored / negative."""
    rows = []
    for lv in anchors.levels:
        lab = matching.labels[lv.start:lv.start + lv.count]
        rows.append({"stride": lv.stride, "grid (cols×rows)": f"{lv.grid[1]}×{lv.grid[0]}",
                     "sizes": ", ".join(map(str, lv.sizes)), "anchors per cell": anchors.config.per_cell,
                     "anchors": lv.count, "positive": int((lab == POSITIVE).sum()),
                     "ignored": int((lab == IGNORED).sum()), "negative": int((lab == NEGATIVE).sum())})
    return rows


LABEL_NAMES = {POSITIVE: "positive", NEGATIVE: "negative", IGNORED: "ignored"}


def cell_table(anchors: AnchorSet, matching: Matching, index: np.ndarray) -> list[dict]:
    """The anchors of one cell with their best IoU, the object they match and their label."""
    rows = anchors.describe(index)
    for row, i in zip(rows, index):
        row["best IoU"] = round(float(matching.best_iou[i]), 3)
        row["best object"] = int(matching.best_object[i])
        row["label"] = LABEL_NAMES[int(matching.labels[i])]
    return rows


def object_table(anchors: AnchorSet, matching: Matching, boxes: np.ndarray, names: list[str]) -> list[dict]:
    """Per object: its box, its best anchor (where and which shape) and how many positives it got."""
    per = matching.positives_per_object()
    rows = []
    for j, (box, best) in enumerate(zip(boxes, matching.best_anchor)):
        a = anchors.describe([best])[0]
        rows.append({"object": j, "class": names[j], "x1": round(float(box[0]), 1), "y1": round(float(box[1]), 1),
                     "x2": round(float(box[2]), 1), "y2": round(float(box[3]), 1),
                     "best anchor stride": a["stride"], "best anchor cell (col,row)": f"({a['col']},{a['row']})",
                     "best anchor size": a["size"], "best anchor h:w": a["aspect h:w"],
                     "best IoU": round(float(matching.best_anchor_iou[j]), 3), "positive anchors": int(per[j])})
    return rows


def iou_histogram(matching: Matching, bins: int = 20) -> list[dict]:
    """Counts of anchors by their best IoU (anchors touching no object left out)."""
    values = matching.best_iou[matching.best_iou > 0]
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return [{"from": round(float(a), 3), "to": round(float(b), 3), "anchors": int(c)}
            for a, b, c in zip(edges[:-1], edges[1:], counts)]



# --- anchor-free: YOLO11's grid points ----------------------------------------------------


@dataclass(frozen=True)
class YoloRaw:
    """One raw forward of a YOLO detection network on a letterboxed image."""

    pred: np.ndarray  # (4 + nc, A): xywh in letterbox pixels, then class probabilities
    points: np.ndarray  # (A, 2) the head's own anchor points, in grid units (cell centre = +0.5)
    point_strides: np.ndarray  # (A,) stride of each anchor point
    strides: tuple[int, ...]  # e.g. (8, 16, 32)
    grids: tuple[tuple[int, int], ...]  # (rows, cols) per stride
    input_hw: tuple[int, int]  # letterboxed input (height, width)
    image_hw: tuple[int, int]  # the image the boxes are mapped back to
    categories: tuple[str, ...]


def yolo_forward(yolo, rgb: np.ndarray, *, imgsz: int, device: str = "cpu") -> YoloRaw:
    """Letterbox ``rgb`` exactly as ultralytics' predict does and run the network itself."""
    import torch
    from ultralytics.data.augment import LetterBox

    from core.hooks import lock_for

    net = yolo.model
    stride = int(net.stride.max())
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    boxed = LetterBox((imgsz, imgsz), auto=True, stride=stride)(image=bgr)
    x = torch.from_numpy(np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1))).unsqueeze(0)
    x = x.to(device).float().div(255)
    head = net.model[-1]
    with lock_for(net), torch.inference_mode():
        out = net(x)
        y = out[0] if isinstance(out, (tuple, list)) else out
        points = head.anchors.transpose(0, 1).cpu().numpy().copy()  # what the head decoded with
        pstrides = head.strides.reshape(-1).cpu().numpy().copy()
    strides = tuple(int(s) for s in head.stride.tolist())
    hin, win = x.shape[-2:]
    grids = tuple((hin // s, win // s) for s in strides)
    names = yolo.names
    return YoloRaw(y[0].float().cpu().numpy(), points, pstrides, strides, grids, (hin, win),
                   (rgb.shape[0], rgb.shape[1]), tuple(names[i] for i in range(len(names))))


@dataclass(frozen=True)
class PointDetection:
    box: tuple[float, float, float, float]  # xyxy in image pixels
    score: float
    label: int
    name: str
    anchor: int  # index into the head's A outputs
    stride: int
    col: int
    row: int
    point: tuple[float, float]  # the grid point, in image pixels
    cell: tuple[float, float, float, float]  # the grid cell, in image pixels


def _to_image(raw: YoloRaw, xyxy: np.ndarray) -> np.ndarray:
    """Letterbox pixels -> image pixels (ultralytics' own scale_boxes, which also clips)."""
    import torch
    from ultralytics.utils.ops import scale_boxes

    return scale_boxes(raw.input_hw, torch.as_tensor(xyxy, dtype=torch.float32).reshape(-1, 4).clone(),
                       raw.image_hw).numpy()


def attribute(raw: YoloRaw, *, conf: float = 0.25, iou: float = 0.7, max_det: int = 300) -> list[PointDetection]:
    """Confidence filter + class-wise NMS (torchvision batched_nms) keeping anchor indices,
    as ultralytics' non_max_suppression does; each box keeps the grid point that made it."""
    import torch
    from torchvision.ops import batched_nms

    nc = len(raw.categories)
    scores_all = raw.pred[4:4 + nc]
    score, label = scores_all.max(0), scores_all.argmax(0)
    keep = np.flatnonzero(score > conf)
    if len(keep) == 0:
        return []
    xywh = raw.pred[:4, keep].T
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    kept = batched_nms(torch.from_numpy(xyxy), torch.from_numpy(score[keep]), torch.from_numpy(label[keep]), iou)
    kept = kept.numpy()[:max_det]
    idx = keep[kept]
    boxes = _to_image(raw, xyxy[kept])
    starts = np.cumsum([0] + [g[0] * g[1] for g in raw.grids])
    s = raw.point_strides[idx]
    px, py = raw.points[idx, 0] * s, raw.points[idx, 1] * s
    pts = _to_image(raw, np.stack([px, py, px, py], axis=1))
    half = s[:, None] / 2
    cells = _to_image(raw, np.concatenate([np.stack([px, py], 1) - half, np.stack([px, py], 1) + half], axis=1))
    found = []
    for n, a in enumerate(idx):
        lvl = int(np.searchsorted(starts, a, side="right") - 1)
        row, col = divmod(int(a - starts[lvl]), raw.grids[lvl][1])
        found.append(PointDetection(tuple(float(v) for v in boxes[n]), float(score[a]), int(label[a]),
                                    raw.categories[int(label[a])], int(a), raw.strides[lvl], col, row,
                                    (float(pts[n, 0]), float(pts[n, 1])), tuple(float(v) for v in cells[n])))
    return found


def rescale(found: list[PointDetection], factor: float) -> list[PointDetection]:
    """The same detections in an image resized by ``factor`` (for drawing at a smaller size)."""
    from dataclasses import replace

    if factor == 1.0:
        return found
    return [replace(d, box=tuple(v * factor for v in d.box), point=(d.point[0] * factor, d.point[1] * factor),
                    cell=tuple(v * factor for v in d.cell)) for d in found]


def point_table(found: list[PointDetection]) -> list[dict]:
    return [{"class": d.name, "score": round(d.score, 3), "stride": d.stride, "grid (col,row)": f"({d.col},{d.row})",
             "point x": round(d.point[0], 1), "point y": round(d.point[1], 1),
             "x1": round(d.box[0], 1), "y1": round(d.box[1], 1), "x2": round(d.box[2], 1), "y2": round(d.box[3], 1)}
            for d in found]


def stride_table(raw: YoloRaw, found: list[PointDetection]) -> list[dict]:
    """Per stride: the grid, its points, and how many final detections came from it."""
    return [{"stride": s, "grid (cols×rows)": f"{g[1]}×{g[0]}", "anchor points": g[0] * g[1],
             "detections": sum(d.stride == s for d in found)} for s, g in zip(raw.strides, raw.grids)]


# --- pictures -----------------------------------------------------------------------------

LABEL_COLOURS = {POSITIVE: (255, 127, 14), IGNORED: (23, 190, 207), NEGATIVE: (200, 200, 200)}  # RGB
TRUTH_COLOUR = (0, 200, 0)
MAX_DRAWN = 300  # the whole-image view draws at most this many positive anchors (highest IoU first)


def _dim(rgb: np.ndarray, amount: float = 0.45) -> np.ndarray:
    return (rgb.astype(np.float32) * (1 - amount) + 255 * amount * 0.25).astype(np.uint8)


def _objects(boxes: np.ndarray, names: list[str]):
    from core.detection import Detections

    cats = tuple(dict.fromkeys(names)) or ("object",)
    labels = np.array([cats.index(n) for n in names], np.int64)
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.ones(len(names), np.float32), labels, cats)


def draw_cell(rgb: np.ndarray, anchors: AnchorSet, matching: Matching, level: int, col: int, row: int,
              boxes: np.ndarray, names: list[str]) -> np.ndarray:
    """The anchors of one cell, coloured by their label, over the objects (green, dashed)."""
    import cv2

    from core.annotate import BoxAnnotator

    out = BoxAnnotator(colour=TRUTH_COLOUR, dashed=True, show_scores=False).annotate(_dim(rgb), _objects(boxes, names))
    lv = anchors.levels[level]
    sx, sy = lv.step_x, lv.step_y
    thick = max(2, max(out.shape[:2]) // 250)
    # the feature-map cell (outline) and the anchors' common centre: torchvision puts it at the
    # cell's top-left corner (col * stride, row * stride), not at the cell's middle
    cv2.rectangle(out, (col * sx, row * sy), (col * sx + sx - 1, row * sy + sy - 1), (255, 255, 255), 1)
    cv2.circle(out, (col * sx, row * sy), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    index = anchors.cell(level, col, row)
    order = sorted(index, key=lambda i: int(matching.labels[i]) != NEGATIVE)  # positives drawn last, on top
    for i in order:
        x1, y1, x2, y2 = (int(round(v)) for v in anchors.boxes[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), LABEL_COLOURS[int(matching.labels[i])], thick, cv2.LINE_AA)
    return out


def draw_matching(rgb: np.ndarray, anchors: AnchorSet, matching: Matching, boxes: np.ndarray, names: list[str],
                  dots_level: int) -> np.ndarray:
    """Whole image: one dot per cell of ``dots_level`` (the anchor centres), positive anchors
    coloured by level (at most MAX_DRAWN), each object's best anchor with its IoU, the objects."""
    from core.annotate import BoxAnnotator
    from core.detection import Detections

    out = _dim(rgb)
    h, w = out.shape[:2]
    c = anchors.centres(dots_level).astype(np.int64)
    c = c[(c[:, 0] < w) & (c[:, 1] < h)]
    out[c[:, 1], c[:, 0]] = 255
    if anchors.levels[dots_level].stride >= 8:  # sparse grids: 2x2 dots, easier to see
        out[np.minimum(c[:, 1] + 1, h - 1), c[:, 0]] = 255
        out[c[:, 1], np.minimum(c[:, 0] + 1, w - 1)] = 255
    pos = np.flatnonzero(matching.labels == POSITIVE)
    pos = pos[np.argsort(-matching.best_iou[pos], kind="stable")][:MAX_DRAWN]
    starts = np.array([lv.start for lv in anchors.levels])
    lv_of = np.searchsorted(starts, pos, side="right") - 1
    cats = tuple(f"stride {lv.stride}" for lv in anchors.levels)
    out = BoxAnnotator(thickness=1, show_labels=False, show_scores=False).annotate(
        out, Detections(anchors.boxes[pos], np.ones(len(pos), np.float32), lv_of.astype(np.int64), cats))
    out = BoxAnnotator(colour=TRUTH_COLOUR, dashed=True, show_scores=False).annotate(out, _objects(boxes, names))
    best = matching.best_anchor
    tags = Detections(anchors.boxes[best].reshape(-1, 4), matching.best_anchor_iou.astype(np.float32),
                      np.zeros(len(best), np.int64), ("best IoU",))
    return BoxAnnotator(colour=(255, 255, 255), show_labels=False).annotate(out, tags)


def draw_points(rgb: np.ndarray, found: list[PointDetection], strides: tuple[int, ...]) -> np.ndarray:
    """YOLO's final boxes, each with the grid cell (filled) and point that produced it."""
    import cv2

    from core.annotate import BoxAnnotator
    from core.detection import Detections

    out = _dim(rgb, 0.3)
    overlay = out.copy()
    r = max(3, max(out.shape[:2]) // 160)
    for d in found:
        colour = stride_colour(strides.index(d.stride))
        x1, y1, x2, y2 = (int(round(v)) for v in d.cell)
        cv2.rectangle(overlay, (x1, y1), (x2, y2), colour, -1)
    out = cv2.addWeighted(overlay, 0.6, out, 0.4, 0)
    for d in found:
        cv2.circle(out, (int(round(d.point[0])), int(round(d.point[1]))), r, (255, 255, 255), -1, cv2.LINE_AA)
    cats = tuple(dict.fromkeys(d.name for d in found))
    dets = Detections(np.array([d.box for d in found], np.float32).reshape(-1, 4),
                      np.array([d.score for d in found], np.float32),
                      np.array([cats.index(d.name) for d in found], np.int64), cats)
    out = BoxAnnotator().annotate(out, dets)
    for i, s in enumerate(strides):
        mine = [d for d in found if d.stride == s]
        cells = Detections(np.array([d.cell for d in mine], np.float32).reshape(-1, 4), np.ones(len(mine), np.float32),
                           np.zeros(len(mine), np.int64), (f"stride {s}",))
        out = BoxAnnotator(thickness=1, show_scores=False, colour=stride_colour(i)).annotate(out, cells)
    return out


def stride_colour(i: int) -> tuple[int, int, int]:
    from core.annotate import PALETTE

    return PALETTE[(i + 9) % len(PALETTE)]
