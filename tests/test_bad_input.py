"""Bad input through the real pages (AppTest, offline): every awkward upload, video and link.

For each input the page must show a clear message (or take the image, converted, with a
note), keep the previous valid image/video, show no traceback, and write nothing outside the
session's temporary space. The decoders' own unit tests are in test_imageio.py and
test_video.py; these check what a user sees."""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "Home.py")
DETECTION = "pages/01_Object_detection.py"
TIMEOUT = 300


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _photo(w=96, h=64, mode="RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).convert(mode)


def _bomb() -> bytes:
    """A tiny PNG whose header claims 100000×100000 pixels."""
    data = bytearray(_save(Image.new("L", (16, 16)), "PNG"))
    ihdr = struct.pack(">II", 100_000, 100_000) + data[24:29]
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    return _save(_photo(96, 64), "JPEG", exif=exif.tobytes())


def _gif() -> bytes:
    frames = [Image.new("RGB", (48, 32), c).convert("P") for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _palette_transparent() -> bytes:
    im = Image.new("P", (40, 40), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    return _save(im, "PNG", transparency=0)


def _heic_header() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


# (name, bytes, phrases in the error message) — each is refused and the previous image stays.
REFUSED = [
    ("corrupt.jpg", b"\xff\xd8\xff\xe0" + np.random.default_rng(1).bytes(2000), ["corrupt"]),
    ("notes.png", b"these are my lecture notes, not a picture", ["not an image we can read"]),
    ("truncated.jpg", _save(_photo(640, 480), "JPEG", quality=95)[:4000], ["truncated or corrupt"]),
    ("bomb.png", _bomb(), ["too large", "megapixels"]),
    ("tiny.png", _save(Image.new("RGB", (1, 1)), "PNG"), ["too small"]),
    ("strip.png", _save(Image.new("RGB", (20000, 10)), "PNG"), ["aspect ratio"]),
    ("photo.heic", _heic_header(), ["HEIC", "convert"]),
    ("empty.png", b"", ["empty"]),
    ("report.pdf.png", b"%PDF-1.7\n" + b"0" * 100, ["PDF"]),
]
# (name, bytes, expected (w, h), a phrase of the note or None) — each becomes the active image.
CONVERTED = [
    ("deep.png", _save(Image.fromarray(np.full((48, 64), 40000, np.uint16)), "PNG"), (64, 48), "16-bit"),
    ("print.jpg", _save(_photo(80, 60, "CMYK"), "JPEG"), (80, 60), None),
    ("palette.png", _palette_transparent(), (40, 40), "Transparency"),
    ("alpha.png", _save(Image.new("RGBA", (50, 30), (255, 0, 0, 128)), "PNG"), (50, 30), "Transparency"),
    ("gray.png", _save(_photo(70, 50, "L"), "PNG"), (70, 50), None),
    ("phone.jpg", _exif_rotated(), (64, 96), None),
    ("loop.gif", _gif(), (48, 32), "first of 3 frames"),
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Temporary files go to tmp_path; the test checks nothing else was written."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("CVLAB_TMP", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    before = _tree(ROOT)
    yield tmp
    written = sorted(set(_tree(ROOT)) - set(before))
    assert not written, f"files written into the project: {written}"
    leftovers = [p for p in tmp.rglob("*") if p.is_file()]
    assert not leftovers, f"files left in the temporary space: {leftovers}"


def _tree(root: Path) -> list[str]:
    skip = {".venv", ".git", "test-artifacts", "bench-results", ".pytest_cache", ".hypothesis"}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip and d != "__pycache__"]
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def _upload_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    if page:
        at.switch_page(page)
    at.run()
    at.radio(key="lab.source").set_value("Upload").run()
    return at


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="lab.upload").set_value((name, data, "application/octet-stream"))
    return at.run()


def _captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def _plain(markdown: str) -> str:
    return markdown.replace("\\", "")


def test_every_refused_upload_says_why_and_keeps_the_previous_image(sandbox):
    at = _upload_app()
    for name, data, phrases in REFUSED:
        _upload(at, name, data)
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = _plain("\n".join(e.value for e in at.error))
        assert name in errors and "previous image stays active" in errors, (name, errors)
        for phrase in phrases:
            assert phrase.lower() in errors.lower(), (name, phrase, errors)
        assert "Traceback" not in errors and "Error:" not in errors, errors
        assert "Active: Astronaut" in _captions(at), name


def test_a_refused_upload_after_a_good_one_keeps_the_good_one(sandbox):
    at = _upload_app()
    _upload(at, "mine.png", _save(_photo(120, 90), "PNG"))
    assert "Active: mine" in _plain(_captions(at))
    _upload(at, "corrupt.jpg", REFUSED[0][1])
    assert "Active: mine" in _plain(_captions(at)) and "120×90" in _captions(at)
    assert any("corrupt.jpg" in _plain(e.value) for e in at.error)


@pytest.mark.parametrize("name,data,size,note", CONVERTED, ids=[c[0] for c in CONVERTED])
def test_odd_but_valid_images_are_converted_with_a_note(sandbox, name, data, size, note):
    at = _upload_app()
    _upload(at, name, data)
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = _plain(_captions(at))
    assert f"Active: {name} · {size[0]}×{size[1]}" in captions, captions
    if note:
        assert note in captions, captions


def test_bad_upload_on_the_detection_page_keeps_the_page_working(sandbox, trained_shapes_yolo):
    at = _upload_app(DETECTION)
    _upload(at, "bomb.png", _bomb())
    assert not at.exception
    assert any("too large" in e.value for e in at.error)
    assert at.title[0].value.endswith("Object detection") and at.metric, "the page stopped rendering"


def test_file_name_is_shown_literally_never_as_markdown(sandbox):
    name = "![x](http://example.invalid/p.png) [click](http://example.invalid) <b>hi</b>.png"
    at = _upload_app()
    _upload(at, name, b"not an image")
    error = next(e.value for e in at.error)
    assert "](" not in error.replace("\\]\\(", "")  # every bracket escaped: no link or image
    assert "\\!\\[x\\]\\(" in error and "\\<b\\>" in error


# --------------------------------------------------------------------------- videos


def _video_app() -> AppTest:
    def app():
        import streamlit as st

        from components.session import session_space, video_input

        video = video_input("Your video", key="vid")
        st.write(f"frames={len(video.frames) if video else 0}")
        st.write(f"space={len(session_space().files())}")

    return AppTest.from_function(app, default_timeout=TIMEOUT).run()


def _avi(path: Path, n: int, size=(64, 48)) -> bytes:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for i in range(n):
        out.write(np.full((size[1], size[0], 3), 20 * (i % 10), np.uint8))
    out.release()
    return path.read_bytes()


def test_bad_videos_say_why_and_keep_the_previous_video(sandbox, tmp_path):
    good = _avi(tmp_path / "good.avi", 12)
    at = _video_app()
    at.file_uploader(key="vid").set_value(("good.avi", good, "video/x-msvideo"))
    at.run()
    assert "frames=12" in at.markdown[0].value and not at.error
    bad = [
        ("garbage.mp4", b"\x00\x00\x00\x18ftypisom" + np.random.default_rng(2).bytes(3000), "could not be read"),
        ("empty.mp4", b"", "empty"),
        ("photo.mp4", _save(_photo(), "PNG"), "image, not a video"),
        ("none.avi", _avi(tmp_path / "none.avi", 0), "no frames"),
        ("playlist.mp4", b"#EXTM3U\n#EXTINF:10,\nhttp://example.invalid/a.ts\n", "text file"),
    ]
    for name, data, phrase in bad:
        at.file_uploader(key="vid").set_value((name, data, "video/mp4"))
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = _plain("\n".join(e.value for e in at.error))
        assert name in errors and phrase in errors and "previous video stays active" in errors, (name, errors)
        assert "frames=12" in at.markdown[0].value, name
        assert "space=0" in at.markdown[1].value, name  # nothing left behind in the session folder


def test_long_video_is_cut_with_a_note(sandbox, tmp_path, monkeypatch):
    from core import video

    monkeypatch.setattr(video, "MAX_FRAMES", 5)
    monkeypatch.setattr(video.decode_video, "__kwdefaults__", {**video.decode_video.__kwdefaults__, "max_frames": 5})
    at = _video_app()
    at.file_uploader(key="vid").set_value(("long.avi", _avi(tmp_path / "long.avi", 30), "video/x-msvideo"))
    at.run()
    assert "frames=5" in at.markdown[0].value
    assert any("first 5 of 30 frames" in c.value for c in at.caption), [c.value for c in at.caption]


# --------------------------------------------------------------------------- links

BAD_VALUES = ["banana", "nan", "inf", "-inf", "1e309", "-1", "99999999999999999999", "", " ", "0x10",
              "0.5; DROP TABLE", "[x](http://example.invalid)", "é" * 300, "%00", "../../etc/passwd"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_malformed_link_values_fall_back_with_a_notice(value, trained_shapes_yolo):
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params.update(img=value, conf=value, iou=value, scene=value)
    at.switch_page(DETECTION)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="det.conf").value == 0.25 and at.slider(key="det.iou").value == 0.7
    assert at.number_input(key="det.scene").value == 1
    assert "Active: Astronaut" in _captions(at)
    notices = "\n".join(i.value for i in at.info)
    if value.strip():
        assert "`conf`" in notices and "`iou`" in notices, notices
    assert "](http" not in notices  # a link value is shown escaped, never as a link
