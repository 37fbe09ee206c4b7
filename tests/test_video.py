"""Tests for core.video: every input is built here with cv2.VideoWriter (no committed files)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core import tempspace
from core.tempspace import SessionSpace
from core.video import DecodedVideo, VideoDecodeError, decode_video

ROOT = Path(__file__).resolve().parent.parent
# Distinct solid colours (RGB); frame i of a test video is COLOURS[i % len(COLOURS)].
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 50, 210), (240, 240, 240), (20, 20, 20),
           (230, 200, 20), (20, 190, 200), (180, 40, 190)]
# Per-channel tolerance on a solid frame's mean colour (mpeg4/MJPEG at default quality).
COLOUR_TOL = 12.0
TRACEBACK_HINTS = ("Traceback", "cv2.error", "error:", "Error(", "Exception", "File \"", ".cpp", "0x")
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
AVI_HEAD = b"RIFF\x00\x10\x00\x00AVI LIST"
WEBM_HEAD = b"\x1aE\xdf\xa3"
ALL_FOURCCS = ((".mp4", "mp4v"), (".avi", "MJPG"), (".webm", "VP80"), (".mov", "mp4v"))


# ----------------------------------------------------------------------------- builders
def write_video(path: Path, fourcc: str, frames: list[np.ndarray], fps: float = 12.0,
                size: tuple[int, int] | None = None) -> bytes:
    """Encode RGB frames with cv2.VideoWriter and return the file's bytes (skip if the codec can't write)."""
    size = size or (frames[0].shape[1], frames[0].shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    try:
        if not writer.isOpened():
            pytest.skip(f"this OpenCV build cannot write {fourcc!r} into {path.suffix}")
        for rgb in frames:
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    if not path.is_file():
        pytest.skip(f"this OpenCV build wrote no {path.suffix} file for {fourcc!r}")
    return path.read_bytes()


def solid(n: int, w: int = 64, h: int = 48) -> list[np.ndarray]:
    return [np.full((h, w, 3), COLOURS[i % len(COLOURS)], np.uint8) for i in range(n)]


def video(suffix: str = ".mp4", fourcc: str = "mp4v", n: int = 8, w: int = 64, h: int = 48,
          fps: float = 12.0) -> Callable[[Path], bytes]:
    return lambda d: write_video(d / f"v{n}_{w}x{h}_{fourcc}{suffix}", fourcc, solid(n, w, h), fps)


def zero_frames(suffix: str, fourcc: str) -> Callable[[Path], bytes]:
    return lambda d: write_video(d / f"empty_{fourcc}{suffix}", fourcc, [], size=(64, 48))


def garbage_middle(d: Path) -> bytes:
    data = bytearray(video(n=40)(d))
    quarter = len(data) // 4
    data[quarter:3 * quarter] = np.random.default_rng(1).integers(0, 256, 2 * quarter, np.uint8).tobytes()
    return bytes(data)


def avi_with_fps(fps_num: int) -> Callable[[Path], bytes]:
    """An MJPG AVI whose stream header is patched to claim fps_num frames per second."""
    def build(d: Path) -> bytes:
        data = bytearray(video(".avi", "MJPG", n=8)(d))
        at = data.find(b"strh") + 8 + 20  # fccType, fccHandler, flags, priority, language, initial frames
        data[at:at + 8] = struct.pack("<II", 1, fps_num)  # dwScale, dwRate
        return bytes(data)
    return build


def png_bytes(d: Path) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("clip.mp4", b"not really")
    return buf.getvalue()


def random_bytes(n: int, prefix: bytes = b"", seed: int = 0) -> Callable[[Path], bytes]:
    return lambda d: prefix + np.random.default_rng(seed).integers(0, 256, n, np.uint8).tobytes()


def mean_rgb(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(-1, 3).mean(axis=0)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def iso(tmp_path, monkeypatch):
    """A SessionSpace under tmp_path, with the temporary folder redirected into tmp_path too.

    ``iso.check()`` asserts the space holds no files and nothing new appeared in the
    temporary folder (outside the space) since the fixture was created."""
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setenv("CVLAB_TMP", str(tmp_path / "tmp"))
    monkeypatch.setenv("TMPDIR", str(systmp))
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    inputs = tmp_path / "inputs"
    inputs.mkdir()

    class Iso:
        space = SessionSpace("s", root=tempspace.process_root())
        dir = inputs

        def snapshot(self) -> None:
            self.before = sorted(os.listdir(tempfile.gettempdir()))

        def check(self) -> None:
            assert self.space.files() == []
            assert sorted(os.listdir(tempfile.gettempdir())) == self.before
            written = [p for p in (tmp_path / "tmp").rglob("*") if p.is_file()]
            assert written == [], f"files left outside the space: {written}"

    yield Iso()
    Iso.space.cleanup()


def decode(iso, data: bytes, **kw) -> DecodedVideo:
    """decode_video with the isolation checks run after it returns or raises."""
    iso.snapshot()
    try:
        return decode_video(data, space=iso.space, **kw)
    finally:
        iso.check()


# ----------------------------------------------------------------------------- good videos
@pytest.mark.parametrize("suffix,fourcc", ALL_FOURCCS, ids=[f"{s[1:]}-{c}" for s, c in ALL_FOURCCS])
def test_good_short_video(iso, suffix, fourcc):
    data = video(suffix, fourcc, n=8, fps=12.0)(iso.dir)
    out = decode(iso, data)
    assert isinstance(out, DecodedVideo)
    assert len(out.frames) == 8 and out.total_frames == 8
    assert out.fps == pytest.approx(12.0) and out.duration_s == pytest.approx(8 / 12.0)
    assert out.original_size == (64, 48) and out.notes == ()
    for i, frame in enumerate(out.frames):
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
        np.testing.assert_allclose(mean_rgb(frame), COLOURS[i], atol=COLOUR_TOL, err_msg=f"frame {i}")
    with pytest.raises(FrozenInstanceError):
        out.fps = 1.0  # type: ignore[misc]


# (id, builder, decode_video kwargs, frame count, frame shape, phrases every note together must contain)
SUCCESS_CASES = [
    ("long-cut-to-10", video(n=40, fps=10.0), {"max_frames": 10}, 10, (48, 64, 3),
     ["Only the first 10 of 40 frames", "1.0 s of 4.0 s"]),
    ("exactly-max-frames", video(n=10), {"max_frames": 10}, 10, (48, 64, 3), []),
    ("downscaled-1080p", video(n=3, w=1920, h=1080), {"work_long_side": 320}, 3, (180, 320, 3),
     ["downscaled from 1920×1080 to 320×180"]),
    ("never-upscaled", video(n=3), {"work_long_side": 4000}, 3, (48, 64, 3), []),
    ("absurd-fps", avi_with_fps(100_000), {}, 8, (48, 64, 3), ["25 fps is assumed"]),
    ("deadline", video(n=20), {"deadline_s": 0.0}, 1, (48, 64, 3),
     ["longer than 0 s", "only the first 1 of 20 frames"]),
]


@pytest.mark.parametrize("builder,kwargs,n,shape,phrases", [c[1:] for c in SUCCESS_CASES],
                         ids=[c[0] for c in SUCCESS_CASES])
def test_decodes_with_notes(iso, builder, kwargs, n, shape, phrases):
    out = decode(iso, builder(iso.dir), **kwargs)
    assert len(out.frames) == n
    assert all(f.shape == shape and f.dtype == np.uint8 and f.flags.c_contiguous for f in out.frames)
    text = " ".join(out.notes)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in notes {out.notes}"
    if not phrases:
        assert out.notes == ()
    for i, frame in enumerate(out.frames):  # the kept frames are the first ones, in order
        np.testing.assert_allclose(mean_rgb(frame), COLOURS[i % len(COLOURS)], atol=COLOUR_TOL)


def test_damaged_middle_decodes_partly_or_fails_cleanly(iso):
    """A good MP4 whose middle is garbage: FFmpeg decodes what it can; that is kept with a note."""
    try:
        out = decode(iso, garbage_middle(iso.dir))
    except VideoDecodeError as exc:
        assert_user_facing(str(exc))
        assert "corrupt" in str(exc)
    else:
        assert 0 < len(out.frames) < 40 and out.total_frames == 40
        assert any("could be decoded" in n and "damaged" in n for n in out.notes), out.notes


# ----------------------------------------------------------------------------- errors
def assert_user_facing(msg: str) -> None:
    assert msg and msg[0].isupper() and msg.endswith("."), msg
    assert "\n" not in msg and len(msg) < 300, msg
    for hint in TRACEBACK_HINTS:
        assert hint not in msg, f"{hint!r} in {msg!r}"


ASK = "MP4, MOV, WebM or AVI"
CORRUPT = ["could not be read", "corrupt", "re-export"]
# (id, builder, decode_video kwargs, phrases the message must contain)
ERROR_CASES = [
    ("empty", lambda d: b"", {}, ["empty", "0 bytes", ASK]),
    ("too-big", random_bytes(3000, MP4_HEAD), {"max_bytes": 1024}, ["too big (3 KB)", "the limit is 1 KB"]),
    ("png-image", png_bytes, {}, ["PNG image, not a video", "image in the sidebar", ASK]),
    ("pdf", random_bytes(500, b"%PDF-1.4\n"), {}, ["PDF document, not a video", ASK]),
    ("zip", zip_bytes, {}, ["ZIP archive, not a video", ASK]),
    ("text-playlist", lambda d: b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", {}, ["text file", ASK]),
    ("unknown-random", random_bytes(3000), {}, ["not a video we can read", ASK]),
    ("mp4-header-then-random", random_bytes(4000, MP4_HEAD), {}, ["MP4 video", *CORRUPT]),
    ("avi-header-then-random", random_bytes(4000, AVI_HEAD), {}, ["AVI video", *CORRUPT]),
    ("webm-header-then-random", random_bytes(4000, WEBM_HEAD), {}, ["WebM/Matroska video", *CORRUPT]),
    ("mp4-truncated-half", lambda d: (b := video(n=40)(d))[:len(b) // 2], {}, ["MP4 video", *CORRUPT]),
    ("mp4-truncated-200", lambda d: video(n=40)(d)[:200], {}, ["MP4 video", *CORRUPT]),
    ("avi-truncated-4k", lambda d: video(".avi", "MJPG", n=40)(d)[:4096], {}, ["AVI video", *CORRUPT]),
    ("mp4-zero-frames", zero_frames(".mp4", "mp4v"), {}, ["MP4 video", "empty", "corrupt"]),
    ("avi-zero-frames", zero_frames(".avi", "MJPG"), {}, ["contains no frames", "corrupt or empty"]),
    ("resolution-over-limit", video(n=3), {"max_pixels": 64 * 48 - 1}, ["resolution is too high", "64×48"]),
    ("1080p-over-limit", video(n=2, w=1920, h=1080), {"max_pixels": 2_000_000},
     ["1920×1080", "2.1 megapixels", "limit is 2 megapixels"]),
]


@pytest.mark.parametrize("builder,kwargs,phrases", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors_are_user_facing(iso, builder, kwargs, phrases):
    data = builder(iso.dir)
    with pytest.raises(VideoDecodeError) as info:
        decode(iso, data, **kwargs)
    msg = str(info.value)
    for phrase in phrases:
        assert phrase in msg, f"{phrase!r} not in {msg!r}"
    assert_user_facing(msg)
    assert isinstance(info.value, ValueError)


# ----------------------------------------------------------------------------- fake capture
class FakeCapture:
    """Stands in for cv2.VideoCapture where a real file can't produce the case."""

    instances: ClassVar[list[FakeCapture]] = []

    def __init__(self, frames, width=64, height=48, fps=10.0, count=-1.0, fail_at=None):
        self.frames, self.fail_at, self.released, self.reads = list(frames), fail_at, False, 0
        self.props = {cv2.CAP_PROP_FRAME_WIDTH: width, cv2.CAP_PROP_FRAME_HEIGHT: height,
                      cv2.CAP_PROP_FPS: fps, cv2.CAP_PROP_FRAME_COUNT: count}
        FakeCapture.instances.append(self)

    def isOpened(self):  # OpenCV's name
        return True

    def get(self, prop):
        return float(self.props.get(prop, 0.0))

    def read(self):
        if self.reads == self.fail_at:
            raise cv2.error("OpenCV(5.0.0) cap_ffmpeg_impl.hpp:1 error: (-2) boom")
        self.reads += 1
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def grab(self):
        return bool(self.frames)

    def release(self):
        self.released = True


def bgr(w, h, value=100):
    return np.full((h, w, 3), value, np.uint8)


FAKE_CASES = [  # (id, FakeCapture kwargs, decode kwargs, expected frame shape or error phrase, note phrases)
    ("header-0x0-frame-too-big", {"frames": [bgr(100, 100)], "width": 0, "height": 0}, {"max_pixels": 5000},
     "100×100", []),
    ("header-0x0-ok", {"frames": [bgr(80, 60)] * 3, "width": 0, "height": 0}, {}, (60, 80, 3), []),
    ("header-nan", {"frames": [bgr(80, 60)] * 3, "width": float("nan"), "height": -1}, {}, (60, 80, 3), []),
    ("size-changes", {"frames": [bgr(64, 48), bgr(32, 32), bgr(128, 96)]}, {}, (48, 64, 3),
     ["different size", "resized to 64×48"]),
    ("nan-fps-negative-count", {"frames": [bgr(64, 48)] * 2, "fps": float("nan"), "count": -9.2e18}, {},
     (48, 64, 3), ["25 fps is assumed"]),
    ("cut-unknown-total", {"frames": [bgr(64, 48)] * 5, "fps": 0.0}, {"max_frames": 2}, (48, 64, 3),
     ["Only the first 2 frames are used (0.1 s)", "25 fps"]),
    ("cv2-error-on-read", {"frames": [bgr(64, 48)] * 3, "fail_at": 1}, {}, "could not be read", []),
    ("no-frames", {"frames": []}, {}, "contains no frames", []),
]


@pytest.mark.parametrize("cap_kw,kwargs,expected,phrases", [c[1:] for c in FAKE_CASES], ids=[c[0] for c in FAKE_CASES])
def test_fake_capture_edge_cases(iso, monkeypatch, cap_kw, kwargs, expected, phrases):
    FakeCapture.instances.clear()
    monkeypatch.setattr(cv2, "VideoCapture", lambda path, api: FakeCapture(**cap_kw))
    data = MP4_HEAD + bytes(64)
    if isinstance(expected, str):
        with pytest.raises(VideoDecodeError, match=expected) as info:
            decode(iso, data, **kwargs)
        assert_user_facing(str(info.value))
    else:
        out = decode(iso, data, **kwargs)
        assert {f.shape for f in out.frames} == {expected}
        assert all(f.flags.c_contiguous for f in out.frames)
        text = " ".join(out.notes)
        assert all(p in text for p in phrases), out.notes
        if "count" in cap_kw:
            assert out.total_frames is None
    assert [c.released for c in FakeCapture.instances] == [True]


# ----------------------------------------------------------------------------- properties
@pytest.fixture(scope="module")
def real_heads(tmp_path_factory) -> list[bytes]:
    """The first 64 bytes of real MP4 and AVI files, as prefixes for fuzzing."""
    d = tmp_path_factory.mktemp("heads")
    return [video()(d)[:64], video(".avi", "MJPG")(d)[:64]]


@settings(max_examples=60, deadline=None)
@given(prefix_index=st.integers(0, 5), body=st.binary(max_size=4096))
def test_arbitrary_bytes_decode_or_raise_cleanly(real_heads, prefix_index, body):
    prefix = [b"", MP4_HEAD, AVI_HEAD, WEBM_HEAD, *real_heads][prefix_index]
    root = Path(tempfile.mkdtemp(prefix="cvlab-video-test-"))
    space = SessionSpace("fuzz", root=root)
    try:
        try:
            out = decode_video(prefix + body, space=space, deadline_s=5.0)
        except VideoDecodeError as exc:
            assert_user_facing(str(exc))
        else:
            assert out.frames and all(f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8 for f in out.frames)
        assert space.files() == []
    finally:
        space.cleanup()
        os.rmdir(root)


def test_import_is_cheap():
    code = ("import sys, core.video; "
            "print(sorted(m for m in ('cv2', 'torch', 'streamlit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bad_arguments_are_programming_errors(iso):
    with pytest.raises(ValueError, match="max_frames") as info:
        decode_video(b"x", space=iso.space, max_frames=0)
    assert not isinstance(info.value, VideoDecodeError)
