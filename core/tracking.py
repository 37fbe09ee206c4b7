"""Multi-object tracking by detection, and how to count its mistakes against ground truth.

The pipeline on every frame (what Ultralytics' ``model.track`` does, split open here so each
step can be timed and the detector swapped):

    frame --detector--> candidate boxes --core.detection.select (floor 0.1, class-agnostic NMS)--> detections
          --ultralytics BYTETracker / BOTSORT .update(Boxes, frame)--> boxes with track ids

The trackers are Ultralytics' own classes, configured from the ``bytetrack.yaml`` /
``botsort.yaml`` files shipped inside the package (BoT-SORT without re-ID; camera-motion
compensation by sparse optical flow only where the camera may move).

**Synthetic clips** (:func:`make_clip`) are drawn with the same helpers and the same size
range as the scenes the shapes detector was trained on (:mod:`core.shapes`, 320 px): a few
shapes move on straight or curved paths over a static background, and a grey bar (the
*occluder*) may hide part of the frame. Because we paint the pixels, ground truth is exact
per frame: the tight box around each object's *visible* pixels and its visible fraction.

**Counting mistakes** (:func:`evaluate`). Per frame, tracks are matched one-to-one to the
ground-truth objects that have any visible pixel, by the Hungarian algorithm on IoU among the
pairs with IoU >= ``MATCH_IOU`` (0.5) only (as CLEAR-MOT: weaker pairs are excluded before
assigning, not dropped afterwards). Each object then has one *state* per frame:

* a track id (>= 1): matched to that track;
* ``MISS`` (0): at least ``VISIBLE_MIN`` (50 %) of the object is visible, but no track matches it;
* ``HIDDEN`` (-1): less than 50 % visible and not matched (nobody is blamed for it).

From an object's states (:func:`count_events`):

* **ID switch**: the matched id differs from the id at the object's previous *matched* frame
  (frames in between may be MISS or HIDDEN), as in the CLEAR-MOT metrics;
* **missed frame** (lost): a ``MISS`` state;
* **dropped track**: a ``MISS`` right after a matched frame - the tracker let go of an object
  that is still in plain view.

Over all frames: **false positives** are tracks matched to no object, and
``MOTA = 1 - (missed + false positives + ID switches) / (object-frames at least 50 % visible)``.

Pure module: numpy, OpenCV, torch/torchvision and Ultralytics only (imported inside
functions where heavy); no Streamlit.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.detection import Detections, select

TRACKERS: dict[str, str] = {"bytetrack": "ByteTrack", "botsort": "BoT-SORT"}
MATCH_IOU = 0.5  # a track and an object are the same when their boxes overlap this much
VISIBLE_MIN = 0.5  # an object less visible than this may go untracked without blame
MISS, HIDDEN = 0, -1
DETECTION_FLOOR = 0.1  # = track_low_thresh in Ultralytics' yamls: ByteTrack's second stage needs these
DETECTION_NMS_IOU = 0.7  # Ultralytics' default NMS IoU

CLIP_SIZE = 320  # the size the shapes detector's training scenes are drawn at
CLIP_FRAMES = 60
CLIP_FPS = 15.0
OCCLUDER_GREY = (128, 128, 128)
_MIN_PIXELS = 30  # an object with fewer visible pixels than this has no box this frame

Progress = Callable[[float, str], None]


# --------------------------------------------------------------------------- synthetic clips


@dataclass(frozen=True)
class Occluder:
    """A full-height grey bar: centre ``x`` and ``width`` as fractions of the frame width,
    present in frames ``start`` <= t < ``end`` (``end=None``: until the last frame)."""

    x: float = 0.5
    width: float = 0.0
    start: int = 0
    end: int | None = None

    def __post_init__(self):
        if not 0.0 <= self.x <= 1.0 or not 0.0 <= self.width <= 1.0 or self.start < 0:
            raise ValueError(f"bad occluder {self}")

    @classmethod
    def centred(cls, *, x: float, width: float, duration: int, n_frames: int = CLIP_FRAMES) -> "Occluder":
        """A bar present for ``duration`` frames around the middle of the clip (all frames if
        ``duration >= n_frames``; none if 0). All shapes pass the middle of the frame then."""
        if duration <= 0:
            return cls(x=x, width=0.0)
        if duration >= n_frames:
            return cls(x=x, width=width)
        start = (n_frames - duration) // 2
        return cls(x=x, width=width, start=start, end=start + duration)

    def columns(self, width_px: int) -> tuple[int, int]:
        """Pixel columns [x0, x1) the bar covers in a frame ``width_px`` wide."""
        half = self.width * width_px / 2
        centre = self.x * width_px
        return max(0, round(centre - half)), min(width_px, round(centre + half))

    def present(self, t: int) -> bool:
        return self.width > 0 and self.start <= t and (self.end is None or t < self.end)


@dataclass(frozen=True, eq=False)
class Clip:
    """Frames with exact per-frame ground truth; object ``i`` has identity ``i``."""

    frames: tuple[np.ndarray, ...]  # (H, W, 3) uint8 RGB each
    boxes: np.ndarray  # (T, N, 4) float32 xyxy around the visible pixels; NaN where none visible
    visible: np.ndarray  # (T, N) float32: visible pixels / full area of the object in that frame
    labels: np.ndarray  # (N,) int64 indices into core.shapes.SHAPE_CLASSES
    fps: float
    occluder: Occluder

    @property
    def n_objects(self) -> int:
        return len(self.labels)

    def longest_hidden(self) -> int:
        """The longest run of frames in which some object is less than VISIBLE_MIN visible."""
        best = 0
        for column in (self.visible < VISIBLE_MIN).T:
            run = 0
            for hidden in column:
                run = run + 1 if hidden else 0
                best = max(best, run)
        return best


@dataclass(frozen=True)
class _Path:
    cls: int
    diameter: float
    p0: np.ndarray
    control: np.ndarray
    p1: np.ndarray
    angle0: float
    spin: float  # degrees over the whole clip

    def at(self, s: float) -> tuple[tuple[float, float], float]:
        """Centre and rotation at clip time ``s`` in [0, 1] (a quadratic Bezier curve)."""
        p = (1 - s) ** 2 * self.p0 + 2 * s * (1 - s) * self.control + s**2 * self.p1
        return (float(p[0]), float(p[1])), self.angle0 + self.spin * s


def _paths(rng: np.random.Generator, size: int) -> list[_Path]:
    """Three shapes: two crossing horizontally in opposite directions (straight), one on an arc.

    Vertical lanes keep the crossing shapes apart by about 0.8 of a diameter, so they overlap
    only partly (an object is never hidden by another one for long)."""
    from core.shapes import SHAPE_CLASSES

    classes = rng.choice(len(SHAPE_CLASSES), size=3, replace=False)
    d = rng.uniform(0.19, 0.25, size=3) * size  # inside detection_scene's 0.18..0.36 range
    margin = d.max() / 2 + 2
    lo, hi = margin, size - margin
    y_a, y_b = rng.uniform(0.25, 0.32) * size, rng.uniform(0.52, 0.6) * size
    arc_y = rng.uniform(0.8, 0.84) * size
    starts = rng.uniform(0.0, 0.08, size=3) * size
    paths = [
        # A: left to right, straight
        (np.array([lo + starts[0], y_a]), None, np.array([hi - starts[1], y_a + rng.uniform(-8, 8)])),
        # B: right to left, straight
        (np.array([hi - starts[2], y_b]), None, np.array([lo + starts[1], y_b + rng.uniform(-8, 8)])),
        # C: left to right on a shallow arc under the others
        (np.array([lo, arc_y]), np.array([size / 2, arc_y - rng.uniform(0.25, 0.35) * size]),
         np.array([hi, arc_y - rng.uniform(0.0, 0.05) * size])),
    ]
    out = []
    for i, (p0, control, p1) in enumerate(paths):
        if control is None:
            control = (p0 + p1) / 2
        out.append(_Path(int(classes[i]), float(d[i]), p0, control, np.clip(p1, lo, hi),
                         float(rng.uniform(0, 360)), float(rng.uniform(-120, 120))))
    return out


def _vivid(rng: np.random.Generator, hue: float) -> np.ndarray:
    import cv2

    hsv = np.array([[[hue * 180.0, rng.uniform(0.7, 1.0) * 255.0, rng.uniform(0.75, 1.0) * 255.0]]], np.float32)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def make_clip(seed: int, *, occluder: Occluder = Occluder(), n_frames: int = CLIP_FRAMES,
              size: int = CLIP_SIZE, fps: float = CLIP_FPS) -> Clip:
    """A deterministic clip of three moving shapes (two cross each other) behind ``occluder``.

    The background, shapes and paths depend only on ``seed`` (not on the occluder), so the
    same seed with different occluders differs only where the bar is."""
    import cv2

    from core.shapes import BACKGROUNDS, make_background, shape_polygon

    if n_frames < 2:
        raise ValueError("a clip needs at least 2 frames")
    rng = np.random.default_rng([seed, 2024])
    background = make_background(rng, size, size, BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    background = np.clip(np.round(background), 0, 255).astype(np.uint8)  # as core.shapes finishes a scene
    paths = _paths(rng, size)
    hue0 = rng.uniform()
    colours = [np.round(_vivid(rng, (hue0 + k / 3) % 1.0)).astype(np.uint8) for k in range(len(paths))]
    n = len(paths)
    frames, boxes = [], np.full((n_frames, n, 4), np.nan, np.float32)
    visible = np.zeros((n_frames, n), np.float32)
    bar = occluder.columns(size)
    layer = np.zeros((size, size), np.uint8)
    for t in range(n_frames):
        s = t / (n_frames - 1)
        canvas = background.copy()
        owner = np.full((size, size), -1, np.int8)
        areas = []
        for i, path in enumerate(paths):
            centre, angle = path.at(s)
            layer[:] = 0  # exact fill without anti-aliasing, like core.shapes
            cv2.fillPoly(layer, [shape_polygon(path.cls, center=centre, diameter=path.diameter, angle=angle)], 1)
            mask = layer.view(bool)
            canvas[mask] = colours[i]
            owner[mask] = i
            areas.append(int(np.count_nonzero(layer)))
        if occluder.present(t):
            canvas[:, bar[0]:bar[1]] = OCCLUDER_GREY
            owner[:, bar[0]:bar[1]] = -1
        for i in range(n):
            mine = owner == i
            count = int(np.count_nonzero(mine))
            visible[t, i] = count / max(areas[i], 1)
            if count >= _MIN_PIXELS:
                cols, rows = np.flatnonzero(mine.any(axis=0)), np.flatnonzero(mine.any(axis=1))
                boxes[t, i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        frames.append(canvas)
    labels = np.array([p.cls for p in paths], np.int64)
    return Clip(tuple(frames), boxes, visible, labels, float(fps), occluder)


# --------------------------------------------------------------------------- trackers


def tracker_config(kind: str, *, high_thresh: float | None = None, track_buffer: int | None = None,
                   gmc: str = "none"):
    """Ultralytics' own ``<kind>.yaml`` (from the installed package) as the namespace its
    trackers take, with the page's overrides; BoT-SORT never uses re-ID here."""
    from core.ultra import ultralytics

    ultralytics()
    from ultralytics.utils import ROOT, YAML, IterableSimpleNamespace

    if kind not in TRACKERS:
        raise ValueError(f"tracker must be one of {tuple(TRACKERS)}, got {kind!r}")
    cfg = YAML.load(ROOT / "cfg" / "trackers" / f"{kind}.yaml")
    if high_thresh is not None:  # the first-stage threshold; new tracks need the same score
        cfg["track_high_thresh"] = cfg["new_track_thresh"] = float(high_thresh)
    if track_buffer is not None:
        cfg["track_buffer"] = int(track_buffer)
    if kind == "botsort":
        cfg["with_reid"] = False
        cfg["gmc_method"] = gmc
    return IterableSimpleNamespace(**cfg)


def make_tracker(kind: str, **overrides):
    """A fresh ``BYTETracker`` or ``BOTSORT`` (track ids start at 1)."""
    from core.ultra import ultralytics

    ultralytics()
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    args = tracker_config(kind, **overrides)
    return (BYTETracker if kind == "bytetrack" else BOTSORT)(args)


def as_boxes(dets: Detections, shape: tuple[int, int]):
    """Detections as ``ultralytics.engine.results.Boxes`` (numpy), what ``tracker.update`` reads."""
    from ultralytics.engine.results import Boxes

    data = np.concatenate([dets.boxes, dets.scores[:, None], dets.labels[:, None].astype(np.float32)], axis=1)
    return Boxes(data.astype(np.float32).reshape(-1, 6), shape[:2])


@dataclass(frozen=True)
class FrameDetections:
    """A detector's output on every frame of a video, ready for a tracker."""

    detections: tuple[Detections, ...]  # after core.detection.select at DETECTION_FLOOR
    latency_ms: tuple[float, ...]  # the detector's forward pass per frame
    categories: tuple[str, ...]


def detect_frames(frames: Sequence[np.ndarray], detector, *, progress: Progress | None = None,
                  check: Callable[[], None] | None = None) -> FrameDetections:
    """Run ``detector.candidates`` on every frame; keep boxes above DETECTION_FLOOR after NMS.

    NMS is class-agnostic here: the trackers associate boxes whatever their class, so a
    second box on the same object (the detector's runner-up class guess, which per-class NMS
    keeps) would start a duplicate track and make identities flicker between the two."""
    out, latency = [], []
    categories: tuple[str, ...] = tuple(getattr(detector, "categories", ()))
    for t, frame in enumerate(frames):
        if check:
            check()
        cands = detector.candidates(frame)
        out.append(select(cands.detections, conf=DETECTION_FLOOR, iou=DETECTION_NMS_IOU, class_agnostic=True).kept)
        latency.append(float(cands.latency_ms))
        categories = cands.detections.categories
        if progress:
            progress((t + 1) / len(frames), f"Detecting: frame {t + 1}/{len(frames)}")
    return FrameDetections(tuple(out), tuple(latency), categories)


@dataclass(frozen=True)
class Tracks:
    """A tracker's output: per frame, rows ``x1, y1, x2, y2, track id, score, class``."""

    tracker: str
    rows: tuple[np.ndarray, ...]  # (K, 7) float32 per frame
    latency_ms: tuple[float, ...]  # tracker.update per frame

    def ids(self) -> set[int]:
        return {int(i) for r in self.rows for i in r[:, 4]}


def run_tracker(kind: str, found: FrameDetections, frames: Sequence[np.ndarray] | None = None, *,
                high_thresh: float = 0.25, track_buffer: int = 30, gmc: str = "none",
                check: Callable[[], None] | None = None) -> Tracks:
    """Feed each frame's detections to a fresh Ultralytics tracker. ``frames`` (RGB) are only
    needed for BoT-SORT's camera-motion compensation (``gmc`` other than "none")."""
    tracker = make_tracker(kind, high_thresh=high_thresh, track_buffer=track_buffer, gmc=gmc)
    rows, latency = [], []
    for t, dets in enumerate(found.detections):
        if check:
            check()
        img = np.ascontiguousarray(frames[t][..., ::-1]) if frames is not None else None  # trackers take BGR
        shape = img.shape[:2] if img is not None else (CLIP_SIZE, CLIP_SIZE)
        boxes = as_boxes(dets, shape).numpy()
        start = time.perf_counter()
        out = tracker.update(boxes, img)
        latency.append((time.perf_counter() - start) * 1000)
        out = np.asarray(out, np.float32).reshape(-1, 8)
        rows.append(np.ascontiguousarray(out[:, :7]))
    return Tracks(kind, tuple(rows), tuple(latency))


# --------------------------------------------------------------------------- counting mistakes


@dataclass(frozen=True)
class Events:
    switches: int = 0
    missed: int = 0
    dropped: int = 0

    def __add__(self, other: "Events") -> "Events":
        return Events(self.switches + other.switches, self.missed + other.missed, self.dropped + other.dropped)


def count_events(states: Iterable[int]) -> Events:
    """ID switches, missed frames and dropped tracks of ONE object from its per-frame states
    (a track id >= 1, ``MISS`` or ``HIDDEN``); see the module docstring for the rules."""
    switches = missed = dropped = 0
    last_id = None  # id at the previous matched frame
    previous = HIDDEN  # state of the previous frame
    for state in states:
        state = int(state)
        if state >= 1:
            if last_id is not None and state != last_id:
                switches += 1
            last_id = state
        elif state == MISS:
            missed += 1
            if previous >= 1:
                dropped += 1
        elif state != HIDDEN:
            raise ValueError(f"bad state {state}")
        previous = state
    return Events(switches, missed, dropped)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes (torchvision.ops.box_iou)."""
    import torch
    from torchvision.ops import box_iou as tv_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    return tv_iou(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)).numpy()


def match_frame(track_boxes: np.ndarray, truth_boxes: np.ndarray, *, iou: float = MATCH_IOU) -> list[tuple[int, int]]:
    """One-to-one (track index, object index) pairs with IoU >= ``iou``: as many as possible, and
    among those the largest total IoU (Hungarian, as CLEAR-MOT and py-motmetrics assign).

    Pairs below the threshold are forbidden *before* assigning (cost ``1 - IoU``; a forbidden
    pair costs more than every allowed pair together). Assigning on raw IoU and dropping weak
    pairs afterwards can trade one valid pair for two invalid ones whose IoUs add up to more."""
    from scipy.optimize import linear_sum_assignment

    overlaps = box_iou(track_boxes, truth_boxes).astype(np.float64)
    allowed = overlaps >= iou
    if not allowed.any():
        return []
    forbidden = float(min(overlaps.shape) + 1)  # > any sum of allowed costs (each <= 1)
    cost = np.where(allowed, 1.0 - overlaps, forbidden)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


@dataclass(frozen=True)
class Score:
    """How a tracker did on a clip (see the module docstring)."""

    states: np.ndarray  # (T, N) int: a track id, MISS or HIDDEN per frame and object
    events: Events
    per_object: tuple[Events, ...]
    false_positives: int
    gt_frames: int  # object-frames at least VISIBLE_MIN visible
    objects: tuple[str, ...] = ()  # a name per ground-truth object ("A: hexagon")
    longest_hidden: int = 0  # Clip.longest_hidden of the clip scored

    @property
    def mota(self) -> float:
        errors = self.events.missed + self.false_positives + self.events.switches
        return 1.0 - errors / self.gt_frames if self.gt_frames else float("nan")

    def ids_per_object(self) -> list[list[int]]:
        """The distinct track ids each object was matched to, in order of appearance."""
        out = []
        for column in self.states.T:
            seen: list[int] = []
            for s in column:
                if s >= 1 and int(s) not in seen:
                    seen.append(int(s))
            out.append(seen)
        return out


def states_from_matches(tracks: Tracks, clip: Clip, *, iou: float = MATCH_IOU) -> tuple[np.ndarray, int]:
    """Per-frame object states and the number of unmatched (false positive) track boxes."""
    n_frames, n = clip.visible.shape
    if len(tracks.rows) != n_frames:
        raise ValueError(f"{len(tracks.rows)} frames of tracks for a {n_frames}-frame clip")
    states = np.where(clip.visible >= VISIBLE_MIN, MISS, HIDDEN).astype(np.int64)
    false_positives = 0
    for t, rows in enumerate(tracks.rows):
        present = np.flatnonzero(~np.isnan(clip.boxes[t, :, 0]))
        pairs = match_frame(rows[:, :4], clip.boxes[t, present], iou=iou)
        for r, c in pairs:
            states[t, present[c]] = int(rows[r, 4])
        false_positives += len(rows) - len(pairs)
    return states, false_positives


def evaluate(tracks: Tracks, clip: Clip, *, iou: float = MATCH_IOU) -> Score:
    states, fp = states_from_matches(tracks, clip, iou=iou)
    per_object = tuple(count_events(column) for column in states.T)
    total = sum(per_object, Events())
    from core.shapes import SHAPE_CLASSES

    names = tuple(f"{chr(ord('A') + i)}: {SHAPE_CLASSES[int(c)]}" for i, c in enumerate(clip.labels))
    return Score(states, total, per_object, fp, int((clip.visible >= VISIBLE_MIN).sum()), names,
                 clip.longest_hidden())


# --------------------------------------------------------------------------- drawing and video


def track_colour(track_id: int) -> tuple[int, int, int]:
    from core.annotate import PALETTE

    return PALETTE[int(track_id) % len(PALETTE)]


def draw_tracks(frames: Sequence[np.ndarray], tracks: Tracks, categories: Sequence[str] = (), *,
                trail: int = 30) -> list[np.ndarray]:
    """Each frame with its tracks' boxes, ``#id class`` tags and the last ``trail`` centres
    of every track on screen (its trajectory), plus the frame number."""
    import cv2

    from core.annotate import _tag

    history: dict[int, list[tuple[int, int]]] = {}
    out = []
    for t, (frame, rows) in enumerate(zip(frames, tracks.rows)):
        img = np.ascontiguousarray(frame).copy()
        long_side = max(img.shape[:2])
        thick = max(2, long_side // 300)
        scale = max(0.4, long_side / 1400)
        for x1, y1, x2, y2, tid, _score, cls in rows:
            tid = int(tid)
            history.setdefault(tid, []).append((int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2))))
        for x1, y1, x2, y2, tid, _score, cls in rows:
            tid, colour = int(tid), track_colour(int(tid))
            points = np.array(history[tid][-trail:], np.int32)
            if len(points) > 1:
                cv2.polylines(img, [points.reshape(-1, 1, 2)], False, colour, thick, cv2.LINE_AA)
            cv2.rectangle(img, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))), colour, thick,
                          cv2.LINE_AA)
            name = categories[int(cls)] if 0 <= int(cls) < len(categories) else ""
            _tag(img, f"#{tid} {name}".strip(), (int(round(x1)), int(round(y1))), colour, scale)
        cv2.putText(img, f"{t + 1}/{len(frames)}", (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), max(1, int(scale * 2)), cv2.LINE_AA)
        out.append(img)
    return out


VIDEO_MIME = "video/webm"
VIDEO_CODEC = "VP80"  # VP8 in WebM: every current browser plays it; OpenCV's FFmpeg here can write it
# (H.264 'avc1' has no software encoder in opencv-python-headless; VP9 is ten times slower to encode.)


def encode_video(frames: Sequence[np.ndarray], fps: float) -> bytes:
    """RGB frames as a VP8 WebM file (bytes), through OpenCV's VideoWriter in a temporary folder."""
    import cv2

    if not frames:
        raise ValueError("no frames to encode")
    h, w = frames[0].shape[:2]
    h2, w2 = h + h % 2, w + w % 2  # even sizes: what every encoder accepts
    with tempfile.TemporaryDirectory(prefix="cvlab-video-") as folder:
        path = Path(folder) / "tracks.webm"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC), float(fps), (w2, h2))
        try:
            if not writer.isOpened():
                raise RuntimeError("OpenCV cannot write VP8 WebM video on this machine")
            for frame in frames:
                bgr = np.ascontiguousarray(frame[..., ::-1])
                if (h2, w2) != (h, w):
                    bgr = cv2.copyMakeBorder(bgr, 0, h2 - h, 0, w2 - w, cv2.BORDER_REPLICATE)
                writer.write(bgr)
        finally:
            writer.release()
        return path.read_bytes()


@dataclass(frozen=True)
class VideoInfo:
    codec: str  # the FOURCC OpenCV's FFmpeg reports when reading the file back
    frames: int  # frames actually decoded
    size: tuple[int, int]  # (width, height)
    container: str  # "webm" when the bytes start with the EBML magic and say "webm"


def probe_video(data: bytes) -> VideoInfo:
    """Read an encoded video back: its codec, frame count, size and container."""
    import cv2

    with tempfile.TemporaryDirectory(prefix="cvlab-probe-") as folder:
        path = Path(folder) / "probe.bin"
        path.write_bytes(data)
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
            codec = fourcc.to_bytes(4, "little").decode("ascii", "replace")
            n, size = 0, (0, 0)
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                n += 1
                size = (frame.shape[1], frame.shape[0])
        finally:
            cap.release()
    container = "webm" if data[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in data[:64] else "other"
    return VideoInfo(codec, n, size, container)


# --------------------------------------------------------------------------- one run, and the sweep


@dataclass(frozen=True)
class TrackRun:
    """Everything the page shows about one tracking run (small: no frames)."""

    tracker: str
    video: bytes  # VP8 WebM of the annotated frames
    fps: float
    n_frames: int
    tracks: Tracks
    detector_ms: tuple[float, ...]
    score: Score | None  # vs ground truth (synthetic clips only)

    @property
    def n_tracks(self) -> int:
        return len(self.tracks.ids())


def track_and_render(kind: str, frames: Sequence[np.ndarray], found: FrameDetections, *, fps: float,
                     high_thresh: float = 0.25, track_buffer: int = 30, gmc: str = "none",
                     clip: Clip | None = None, check: Callable[[], None] | None = None,
                     progress: Progress | None = None) -> TrackRun:
    """Track, score against ``clip``'s ground truth if given, draw and encode the video."""
    report = progress or (lambda f, m: None)
    report(0.0, f"Tracking {len(frames)} frames with {TRACKERS[kind]}…")
    tracks = run_tracker(kind, found, frames, high_thresh=high_thresh, track_buffer=track_buffer, gmc=gmc,
                         check=check)
    score = evaluate(tracks, clip) if clip is not None else None
    report(0.3, "Drawing tracks and trajectories…")
    drawn = draw_tracks(frames, tracks, found.categories)
    report(0.6, "Encoding the video (VP8 WebM)…")
    video = encode_video(drawn, fps)
    report(1.0, "Done")
    return TrackRun(kind, video, float(fps), len(frames), tracks, found.latency_ms, score)


@dataclass(frozen=True)
class SweepPoint:
    duration: int  # frames the occluder is present (centred on the middle of the clip)
    hidden_frames: int  # the clip's longest occlusion (Clip.longest_hidden)
    tracker: str
    events: Events
    false_positives: int
    n_ids: int


def occlusion_sweep(seed: int, durations: Sequence[int], detector, *, x: float = 0.5, width: float = 0.5,
                    high_thresh: float = 0.25, track_buffer: int = 30, n_frames: int = CLIP_FRAMES,
                    progress: Progress | None = None, check: Callable[[], None] | None = None) -> list[SweepPoint]:
    """For each occluder duration: draw the clip, detect once, run both trackers, count mistakes."""
    report = progress or (lambda f, m: None)
    points = []
    for k, duration in enumerate(durations):
        occluder = Occluder.centred(x=x, width=width, duration=int(duration), n_frames=n_frames)
        clip = make_clip(seed, occluder=occluder, n_frames=n_frames)

        def step(frac: float, msg: str, k=k, duration=duration) -> None:
            report((k + frac) / len(durations), f"Occluder present {duration} frames ({k + 1}/{len(durations)}): {msg}")

        found = detect_frames(clip.frames, detector, progress=step, check=check)
        for kind in TRACKERS:
            tracks = run_tracker(kind, found, clip.frames, high_thresh=high_thresh, track_buffer=track_buffer,
                                 check=check)
            score = evaluate(tracks, clip)
            points.append(SweepPoint(int(duration), clip.longest_hidden(), kind, score.events,
                                     score.false_positives, len(tracks.ids())))
    report(1.0, "Done")
    return points
