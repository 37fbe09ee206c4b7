"""The one image decoder used everywhere in the app.

``decode_image(data)`` turns uploaded bytes into an (H, W, 3) uint8 RGB array, or raises
``ImageDecodeError`` whose message is a short sentence a user can act on. The pipeline:

1. size check   - empty input and inputs over ``max_bytes`` are refused before parsing;
2. sniff        - magic bytes name the file type, so a PDF, ZIP, video or HEIC photo
                  gets a message that says so instead of "cannot identify image file";
3. open         - Pillow, restricted to an allow-list of raster formats (no EPS/Ghostscript),
                  with its DecompressionBombWarning turned into an error for this call only;
4. header checks - pixel count, aspect ratio and minimum side are checked from the header,
                  before any pixel data is decoded;
5. frame 0      - animated and multi-page files use their first frame (with a note);
6. load         - pixel decoding; truncated or corrupt data becomes ``ImageDecodeError``
                  (``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set);
7. EXIF transpose - camera orientation is applied, so sizes are as the user sees them;
8. mode conversion - every mode becomes RGB uint8: 16-bit is scaled, float is min-max
                  normalised, transparency is flattened onto white (each with a note);
9. final checks - shape and dtype of the result.

No global Pillow state is changed. The module has no Streamlit or torch dependency.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000
MIN_SIDE = 16
MAX_ASPECT = 20.0
WORK_LONG_SIDE = 1280
DISPLAY_LONG_SIDE = 2048

# Pillow formats we open (JPEG also yields MPO files) and the sniffed kinds they match.
_PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
_SUPPORTED_KINDS = frozenset({"jpeg", "png", "gif", "webp", "bmp", "tiff", "avif"})
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
# warnings.catch_warnings() swaps process-wide filters; serialise it so that concurrent
# Streamlit sessions (threads) cannot interleave the save/restore and leak a filter.
_WARNINGS_LOCK = threading.Lock()
_ASK = "Please upload a JPEG, PNG, WebP, GIF, BMP, TIFF or AVIF image."

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"),
    (b"GIF89a", "gif"), (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"), (b"%PDF-", "pdf"), (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"), (b"8BPS", "psd"), (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jpeg2000"),
    (b"\xffO\xffQ", "jpeg2000"), (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jxl"), (b"\xff\x0a", "jxl"),
    (b"\x00\x00\x01\x00", "ico"), (b"\x1f\x8b", "gzip"), (b"Rar!\x1a\x07", "rar"),
    (b"7z\xbc\xaf\x27\x1c", "7z"), (b"\x1aE\xdf\xa3", "webm"), (b"ID3", "mp3"), (b"OggS", "ogg"),
)
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_RIFF = {b"WEBP": "webp", b"AVI ": "avi", b"WAVE": "wav"}
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm",
                          b"hevs", b"mif1", b"msf1"})
_KIND_NAMES = {
    "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP", "bmp": "BMP", "tiff": "TIFF",
    "avif": "AVIF", "heic": "HEIC/HEIF", "jxl": "JPEG XL", "jpeg2000": "JPEG 2000",
    "psd": "Photoshop (PSD)", "ico": "icon (ICO)", "svg": "SVG", "pdf": "PDF document",
    "zip": "ZIP archive", "gzip": "gzip archive", "rar": "RAR archive", "7z": "7-Zip archive",
    "mp4": "MP4 video", "mov": "QuickTime video", "webm": "WebM/Matroska video",
    "avi": "AVI video", "wav": "WAV audio", "mp3": "MP3 audio", "ogg": "Ogg media file",
    "html": "web page (HTML)",
}
_UNSUPPORTED_IMAGE_KINDS = frozenset({"heic", "jxl", "jpeg2000", "psd", "ico", "svg"})


class ImageDecodeError(ValueError):
    """str(err) is a short, user-facing sentence saying what is wrong and what to do."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded upload: RGB pixels plus what the user should know about the conversion."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, EXIF orientation applied
    format: str | None  # Pillow's format name, e.g. "JPEG", "PNG"
    mode: str  # the original Pillow mode, e.g. "CMYK", "I;16", "P"
    original_size: tuple[int, int]  # (width, height) after EXIF transpose
    notes: tuple[str, ...]  # user-facing notes about what was changed


def sniff_kind(data: bytes) -> str | None:
    """Name the file type from its magic bytes ("jpeg", "pdf", "heic", ...), or None."""
    head = bytes(data[:1024])
    if head[4:8] == b"ftyp":
        size = max(16, min(int.from_bytes(head[:4], "big"), 64))
        brands = {head[i:i + 4] for i in range(16, size - 3, 4)} | {head[8:12]}
        if brands & {b"avif", b"avis"}:
            return "avif"
        if brands & _HEIC_BRANDS:
            return "heic"
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    text = head.lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "svg"
    if text.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def _human(n: int) -> str:
    """Format a byte count for messages: "532 bytes", "12.5 KB", "50 MB"."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = (n / 2**20, "MB") if n >= 2**20 else (n / 1024, "KB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def _refuse_kind(kind: str | None) -> None:
    """Raise a clear error for recognised files that are not images we can decode."""
    if kind is None or kind in _SUPPORTED_KINDS:
        return
    name = _KIND_NAMES.get(kind, kind.upper())
    if kind == "heic":
        raise ImageDecodeError("HEIC/HEIF photos (the iPhone default) can't be read here. "
                               "Please convert the photo to JPEG or PNG and upload it again.")
    if kind in _UNSUPPORTED_IMAGE_KINDS:
        raise ImageDecodeError(f"{name} images aren't supported here. "
                               "Please convert it to JPEG or PNG and upload it again.")
    raise ImageDecodeError(f"This looks like a {name}, not an image. {_ASK}")


def _corrupt(kind: str | None) -> ImageDecodeError:
    """The error for a file of a known image type whose data cannot be decoded."""
    name = _KIND_NAMES.get(kind or "", "image")
    return ImageDecodeError(f"This {name} file is truncated or corrupt and could not be "
                            "decoded. Please re-export or re-download it and try again.")


def _too_large(what: str, max_pixels: int) -> ImageDecodeError:
    """The error for an image whose pixel count exceeds the limit."""
    return ImageDecodeError(f"This image is too large to decode safely ({what}); the limit is "
                            f"{max_pixels / 1e6:.0f} megapixels. Please downscale it first.")


def _check_header(size: tuple[int, int], max_pixels: int, min_side: int,
                  max_aspect: float) -> None:
    """Check the header dimensions before any pixel data is decoded."""
    w, h = size
    if w * h > max_pixels:
        raise _too_large(f"{w}×{h} pixels, {w * h / 1e6:.1f} megapixels", max_pixels)
    if min(w, h) >= 1 and max(w, h) / min(w, h) > max_aspect:
        raise ImageDecodeError(f"This image has an extreme aspect ratio ({w}×{h} pixels); "
                               f"at most {max_aspect:g}:1 is supported. Please crop it first.")
    if min(w, h) < min_side:
        raise ImageDecodeError(f"This image is too small ({w}×{h} pixels); each side must be "
                               f"at least {min_side} pixels.")


def _stretch(arr: np.ndarray) -> np.ndarray:
    """Min-max normalise any numeric array to uint8 (non-finite values become 0)."""
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, np.uint8)
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return np.rint(np.where(finite, scaled, 0.0)).astype(np.uint8)


def _to_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to an (H, W, 3) uint8 array."""
    mode = im.mode
    if mode == "F" or mode == "I" or mode.startswith("I;16"):
        arr = np.asarray(im)
        if mode != "F" and arr.min() >= 0 and arr.max() <= 65535:
            gray = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
            notes.append("16-bit image converted to 8-bit.")
        else:
            gray = _stretch(arr)
            kind = "Floating-point" if mode == "F" else "High bit-depth"
            notes.append(f"{kind} image was min-max normalised to 0–255.")
        return np.repeat(gray[:, :, None], 3, axis=2)
    try:
        if im.has_transparency_data:
            rgba = im.convert("RGBA")
            if rgba.getchannel("A").getextrema()[0] < 255:
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                rgba = Image.alpha_composite(white, rgba)
                notes.append("Transparency was flattened onto white.")
            im = rgba
        return np.array(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise ImageDecodeError(f"This image uses the pixel format '{mode}', which can't be "
                               "converted to RGB. Please re-save it as PNG or JPEG.") from exc


def _first_frame(im: Image.Image, notes: list[str]) -> None:
    """Select frame 0 of animated / multi-page files, noting how many frames there were."""
    n = int(getattr(im, "n_frames", 1) or 1)
    if n > 1:
        im.seek(0)
        if im.format in _ANIMATED_FORMATS:
            notes.append(f"Animated image: the first of {n} frames is used.")
        elif im.format != "MPO":  # phone JPEGs carry depth/gain maps as extra MPO frames
            notes.append(f"Multi-page image: the first of {n} pages is used.")


def _exif_transpose(im: Image.Image, notes: list[str]) -> None:
    """Apply the EXIF orientation in place; unreadable EXIF leaves the image as stored."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception:  # noqa: BLE001 - malformed EXIF must not make a good image unusable
        notes.append("The EXIF orientation could not be read, so the image is shown as stored.")


def _open_and_load(data: bytes, kind: str | None, notes: list[str], max_pixels: int,
                   min_side: int, max_aspect: float) -> Image.Image:
    """Open with Pillow, check the header, select frame 0 and decode the pixels."""
    Image.init()  # register all plugins so the format allow-list can be honoured (idempotent)
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_large("its header claims too many pixels", max_pixels) from exc
        except UnidentifiedImageError as exc:
            if kind is None:
                raise ImageDecodeError(f"This file is not an image we can read. {_ASK}") from exc
            raise _corrupt(kind) from exc
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on bad input
            raise _corrupt(kind) from exc
        try:
            _check_header(im.size, max_pixels, min_side, max_aspect)
            _first_frame(im, notes)
            im.load()
        except ImageDecodeError:
            im.close()
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            im.close()
            raise _too_large("a frame claims too many pixels", max_pixels) from exc
        except Exception as exc:  # noqa: BLE001 - truncated data, bad chunks, bad codes...
            im.close()
            raise _corrupt(kind) from exc
    return im


def decode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                 min_side: int = MIN_SIDE, max_aspect: float = MAX_ASPECT) -> DecodedImage:
    """Decode uploaded bytes to RGB, or raise ImageDecodeError with a user-facing message."""
    if not data:
        raise ImageDecodeError("The file is empty (0 bytes). Please choose an image file.")
    if len(data) > max_bytes:
        raise ImageDecodeError(f"The file is too big ({_human(len(data))}); the limit is "
                               f"{_human(max_bytes)}. Please upload a smaller image.")
    kind = sniff_kind(data)
    _refuse_kind(kind)
    notes: list[str] = []
    with _open_and_load(data, kind, notes, max_pixels, min_side, max_aspect) as im:
        fmt, mode = im.format, im.mode
        _exif_transpose(im, notes)
        if kind == "png" and data[24:25] == b"\x10" and mode in ("RGB", "RGBA", "LA"):
            notes.append("16-bit image converted to 8-bit.")
        rgb = np.ascontiguousarray(_to_rgb(im, notes))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[1::-1] != im.size:
        raise _corrupt(kind)
    return DecodedImage(rgb=rgb, format=fmt, mode=mode, original_size=im.size,
                        notes=tuple(notes))


def fit_long_side(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """Downscale (never upscale) so the longer side is at most ``long_side`` (INTER_AREA)."""
    if long_side < 1:
        raise ValueError(f"long_side must be >= 1, got {long_side}")
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    import cv2  # here, not at the top: Home (no resizing) should not pay for OpenCV's import

    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def image_digest(rgb: np.ndarray) -> str:
    """A stable 16-hex-character cache key from the array's shape, dtype and bytes."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{rgb.shape}|{rgb.dtype.str}|".encode())
    h.update(memoryview(np.ascontiguousarray(rgb)).cast("B"))
    return h.hexdigest()


def _encode(rgb: np.ndarray, **save) -> bytes:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, **save)
    return buf.getvalue()


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as PNG bytes (lossless: for download buttons)."""
    return _encode(rgb, format="PNG")


def encode_jpeg(rgb: np.ndarray, quality: int = 88) -> bytes:
    """Encode an (H, W, 3) uint8 array as JPEG bytes (small and fast: for previews on screen)."""
    return _encode(rgb, format="JPEG", quality=quality)
