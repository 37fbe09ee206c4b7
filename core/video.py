"""The one video decoder used for uploads: the video twin of ``core.imageio``.

``decode_video(data, space=...)`` turns uploaded bytes into a tuple of (H, W, 3) uint8 RGB
frames, or raises ``VideoDecodeError`` whose message is a short sentence a user can act on.
The pipeline:

1. size check  - empty input and inputs over ``max_bytes`` are refused before parsing;
2. sniff       - magic bytes (``core.imageio.sniff_kind``) name the file type, so an image,
                 a PDF or a ZIP gets a message that says so; unknown binary data is still
                 offered to OpenCV (text is refused: FFmpeg would follow playlists in it);
3. open        - OpenCV needs a path, so the bytes live in a ``SessionSpace`` file only for
                 the duration of the ``with`` block; the capture is always released;
4. header check - width × height from the container are checked before any frame is
                 decoded (0×0 means unknown: the first decoded frame is checked instead);
5. frames      - at most ``max_frames`` frames, stopping early at ``deadline_s`` seconds;
                 BGR becomes RGB, frames are downscaled (INTER_AREA, never upscaled) to
                 ``work_long_side``, and a frame whose size differs is resized to the first's;
6. final checks - no decodable frame is an error; a missing or absurd frame rate becomes
                 25 fps. Every change is reported in ``notes``.

The module has no Streamlit or torch dependency, and imports OpenCV only when called.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from core.imageio import _KIND_NAMES, _SUPPORTED_KINDS, _UNSUPPORTED_IMAGE_KINDS, _human, sniff_kind
from core.tempspace import SessionSpace

MAX_BYTES = 50 * 1024 * 1024
MAX_FRAMES = 120  # 120 frames at 640×360 hold 83 MB: thirty students must fit in one server
WORK_LONG_SIDE = 640
MAX_PIXELS = 40_000_000
DEFAULT_FPS = 25.0
MAX_FPS = 1000.0

_VIDEO_KINDS = frozenset({"mp4", "mov", "webm", "avi"})
_TRY_KINDS = _VIDEO_KINDS | {"ogg"}  # Ogg may hold Theora video: try it, but don't advertise it
_IMAGE_KINDS = _SUPPORTED_KINDS | _UNSUPPORTED_IMAGE_KINDS
_ASK = "Please upload an MP4, MOV, WebM or AVI video."


class VideoDecodeError(ValueError):
    """str(err) is a short, user-facing sentence saying what is wrong and what to do."""


@dataclass(frozen=True)
class DecodedVideo:
    """A decoded upload: RGB frames plus what the user should know about the conversion."""

    frames: tuple[np.ndarray, ...]  # each (H, W, 3) uint8 RGB, C-contiguous, all the same size
    fps: float  # from the container, or DEFAULT_FPS (with a note) when missing or absurd
    original_size: tuple[int, int]  # (width, height) of the first frame as decoded, before downscaling
    total_frames: int | None  # the frame count the container claims (None if unknown)
    notes: tuple[str, ...]  # user-facing notes about what was changed

    @property
    def duration_s(self) -> float:
        """Seconds covered by the kept frames."""
        return len(self.frames) / self.fps


def _an(name: str) -> str:
    return f"an {name}" if name[0] in "AEIOUaeiou" or name.startswith("MP3") else f"a {name}"


def _looks_like_text(data: bytes) -> bool:
    """True for text (playlists, concat scripts, HTML...): no video starts with 512 text bytes."""
    head = bytes(data[:512])
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def _refuse_kind(kind: str | None, data: bytes) -> None:
    """Raise a clear error for recognised files that are not videos."""
    if kind in _TRY_KINDS:
        return
    if kind in _IMAGE_KINDS:
        name = _KIND_NAMES.get(kind, kind.upper())
        raise VideoDecodeError(f"This is {_an(name)} image, not a video. To analyse it, choose it as "
                               f"the image in the sidebar instead. {_ASK}")
    if kind is not None:
        name = _KIND_NAMES.get(kind, kind.upper())
        raise VideoDecodeError(f"This looks like {_an(name)}, not a video. {_ASK}")
    if _looks_like_text(data):
        raise VideoDecodeError(f"This looks like a text file, not a video. {_ASK}")


def _unreadable(kind: str | None) -> VideoDecodeError:
    """The error for data OpenCV cannot open, or that makes it fail while reading."""
    if kind not in _VIDEO_KINDS:
        return VideoDecodeError(f"This file is not a video we can read. {_ASK}")
    return VideoDecodeError(f"This {_KIND_NAMES[kind]} could not be read: it may be empty, truncated, "
                            "corrupt or use an unsupported codec. Please re-export it (MP4 with "
                            "H.264 works best) and try again.")


def _check_pixels(w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise VideoDecodeError(f"This video's resolution is too high to decode safely ({w}×{h} pixels, "
                               f"{w * h / 1e6:.1f} megapixels per frame); the limit is "
                               f"{max_pixels / 1e6:g} megapixels. Please downscale it first.")


def _prop(cap, prop: int) -> int:
    """An integer capture property; NaN, infinite or negative values (unknown) become 0."""
    value = float(cap.get(prop))
    return int(value) if math.isfinite(value) and 0 <= value < 2**53 else 0


def _valid_fps(fps: float) -> bool:
    return math.isfinite(fps) and 0.0 < fps <= MAX_FPS


def _to_rgb(frame: np.ndarray, cv2) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if frame.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(frame, code)


def _read_frames(cap, cv2, *, max_frames: int, work_long_side: int, max_pixels: int,
                 stop_at: float, notes: list[str]) -> tuple[list[np.ndarray], tuple[int, int], str | None]:
    """Read, convert and resize frames: (frames, original (w, h), why frames were left out or None)."""
    frames: list[np.ndarray] = []
    original = target = (0, 0)
    resized_odd = False
    stop = None
    while stop is None:
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            break
        h, w = frame.shape[:2]
        if not frames:
            _check_pixels(w, h, max_pixels)  # catches headers that claimed 0×0
            original = (w, h)
            scale = min(1.0, work_long_side / max(w, h))
            target = (max(1, round(w * scale)), max(1, round(h * scale)))
        elif (w, h) != original:
            resized_odd = True
        if (w, h) != target:
            frame = cv2.resize(frame, target, interpolation=cv2.INTER_AREA)
        frames.append(np.ascontiguousarray(_to_rgb(frame, cv2)))
        if len(frames) >= max_frames:
            stop = "max"
        elif time.monotonic() >= stop_at:
            stop = "deadline"
    if resized_odd:
        notes.append(f"Some frames had a different size and were resized to {original[0]}×{original[1]}.")
    return frames, original, stop if stop and cap.grab() else None  # grab: is there really more?


def _time_notes(n: int, total: int | None, fps: float, deadline: float | None) -> list[str]:
    """Notes for videos whose frames were not all used."""
    claim = f" of {total}" if total and total > n else ""
    span = f" of {total / fps:.1f} s" if claim else ""
    if deadline is not None:
        return [(f"Decoding took longer than {deadline:g} s, so only the first {n}{claim} frames "
                 f"are used ({n / fps:.1f} s{span}).")]
    return [f"Only the first {n}{claim} frames are used ({n / fps:.1f} s{span})."]


def decode_video(data: bytes, *, space: SessionSpace, max_bytes: int = MAX_BYTES,
                 max_frames: int = MAX_FRAMES, work_long_side: int = WORK_LONG_SIDE,
                 max_pixels: int = MAX_PIXELS, deadline_s: float = 60.0) -> DecodedVideo:
    """Decode uploaded bytes to RGB frames, or raise VideoDecodeError with a user-facing message."""
    if max_frames < 1 or work_long_side < 1:
        raise ValueError(f"max_frames and work_long_side must be >= 1, got {max_frames}, {work_long_side}")
    stop_at = time.monotonic() + deadline_s
    if not data:
        raise VideoDecodeError(f"The file is empty (0 bytes). {_ASK}")
    if len(data) > max_bytes:
        raise VideoDecodeError(f"The file is too big ({_human(len(data))}); the limit is "
                               f"{_human(max_bytes)}. Please upload a shorter or smaller video.")
    kind = sniff_kind(data)
    _refuse_kind(kind, data)
    import cv2  # here, not at the top: importing this module must stay cheap

    notes: list[str] = []
    with space.file(f".{kind}" if kind else ".bin", data) as path:
        try:
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        except cv2.error as exc:
            raise _unreadable(kind) from exc
        try:
            if not cap.isOpened():
                raise _unreadable(kind)
            w, h = _prop(cap, cv2.CAP_PROP_FRAME_WIDTH), _prop(cap, cv2.CAP_PROP_FRAME_HEIGHT)
            _check_pixels(w, h, max_pixels)  # 0×0 (unknown) passes: the first frame is checked
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))  # -1 or -2**63 when unknown
            frames, original, stop = _read_frames(cap, cv2, max_frames=max_frames, work_long_side=work_long_side,
                                                  max_pixels=max_pixels, stop_at=stop_at, notes=notes)
        except cv2.error as exc:
            raise _unreadable(kind) from exc
        finally:
            cap.release()
    total = int(count) if math.isfinite(count) and 0 <= count < 2**53 else None
    if not frames:
        raise VideoDecodeError("This video contains no frames (it may be corrupt or empty). "
                               "Please re-export it and try again.")
    n = len(frames)
    if not _valid_fps(fps):
        notes.append(f"The video does not state a usable frame rate, so {DEFAULT_FPS:g} fps is assumed.")
        fps = DEFAULT_FPS
    if stop:
        notes[:0] = _time_notes(n, total, fps, deadline_s if stop == "deadline" else None)
    elif total is not None and n < total - max(1, total // 20):
        notes.append(f"Only {n} of the {total} frames could be decoded; the file may be truncated or damaged.")
    th, tw = frames[0].shape[:2]
    if (tw, th) != original:
        notes.append(f"Frames were downscaled from {original[0]}×{original[1]} to {tw}×{th}.")
    return DecodedVideo(frames=tuple(frames), fps=fps, original_size=original, total_frames=total,
                        notes=tuple(notes))
