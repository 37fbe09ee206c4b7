"""OCR building blocks (pure: numpy, Pillow, OpenCV inside functions; no model, no streamlit).

* :func:`render_line` draws a text line (Pillow's bundled font or an OpenCV Hershey font),
  dark ink on a light background, as a grey uint8 array.
* The challenges (:data:`CHALLENGES`) degrade a rendered line: blur, rotation, perspective,
  noise, low contrast, small size. Each takes a level (0 = untouched) and returns a new
  grey image; :func:`degrade` applies several in a fixed order.
* :func:`edit_distance` / :func:`cer`: the character error rate (Levenshtein distance over
  the reference length).
* :func:`ctc_greedy`: the per-column argmax path of a CTC model, its repeats merged and its
  blanks dropped, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BLANK_MARK = "·"  # how a CTC blank column is shown
FONTS = ("pillow", "hershey_simplex", "hershey_duplex")
DEFAULT_TEXT = "cnns read 2024 scanned pages"
FONT_SIZE = 32  # px: the rendered line's default font size
INK, PAPER = 20, 245


# --- rendering ------------------------------------------------------------------------------


def _pillow_font(size: int):
    return ImageFont.load_default(size=size)


def render_line(text: str, *, size: int = FONT_SIZE, font: str = "pillow", pad: int | None = None,
                ink: int = INK, paper: int = PAPER, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """``text`` drawn on one line at font height ~``size`` px; grey uint8 (H, W).

    ``offset`` shifts the text by (dx, dy) pixels inside its padding (training jitter)."""
    size = int(max(6, size))
    pad = max(4, int(round(size * 0.25))) if pad is None else int(pad)
    text = text if text.strip() else " "
    if font == "pillow":
        f = _pillow_font(size)
        left, top, right, bottom = f.getbbox(text)
        asc, desc = f.getmetrics()
        w, h = max(1, right - left), asc + desc
        img = Image.new("L", (w + 2 * pad, h + 2 * pad), paper)
        ImageDraw.Draw(img).text((pad - left + offset[0], pad + offset[1]), text, fill=ink, font=f)
        return np.asarray(img, dtype=np.uint8).copy()
    if font not in FONTS:
        raise ValueError(f"unknown font {font!r}; choose one of {FONTS}")
    import cv2

    face = cv2.FONT_HERSHEY_SIMPLEX if font == "hershey_simplex" else cv2.FONT_HERSHEY_DUPLEX
    scale = size / 30.0  # Hershey glyph cap height ~22 px at scale 1, line height ~30
    thick = max(1, int(round(size / 16)))
    (w, h), base = cv2.getTextSize(text, face, scale, thick)
    img = np.full((h + base + 2 * pad, w + 2 * pad), paper, np.uint8)
    org = (int(round(pad + offset[0])), int(round(pad + h + offset[1])))
    cv2.putText(img, text, org, face, scale, int(ink), thick, cv2.LINE_AA)
    return img


# --- challenges -----------------------------------------------------------------------------


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (defocus, motion-free)."""
    if sigma <= 0:
        return img.copy()
    import cv2

    return cv2.GaussianBlur(img, (0, 0), float(sigma), borderType=cv2.BORDER_REPLICATE)


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate anticlockwise by ``degrees`` about the centre; the canvas grows to keep every
    pixel; new area is paper-coloured. Multiples of 90 are exact (np.rot90)."""
    if degrees % 360 == 0:
        return img.copy()
    if degrees % 90 == 0:
        return np.ascontiguousarray(np.rot90(img, int(degrees // 90) % 4))
    import cv2

    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(degrees), 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=_paper(img))


def perspective(img: np.ndarray, amount: float) -> np.ndarray:
    """Keystone: the right edge shrinks towards its middle by ``amount`` (0-0.9) of the height,
    as if the line were seen from its left at an angle."""
    if amount <= 0:
        return img.copy()
    import cv2

    h, w = img.shape[:2]
    d = min(float(amount), 0.9) * h / 2
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[0, 0], [w, d], [w, h - d], [0, h]])
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=_paper(img))


def noise(img: np.ndarray, sigma: float, *, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise (grey levels), clipped to 0-255; same seed, same noise."""
    if sigma <= 0:
        return img.copy()
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def low_contrast(img: np.ndarray, keep: float) -> np.ndarray:
    """Ink and paper pulled towards the paper: ``keep`` (0-1] of the original contrast is left
    (a faded print). The standard deviation scales by ``keep``."""
    if keep >= 1:
        return img.copy()
    p = float(_paper(img))
    return np.clip(np.round(p + (img.astype(np.float32) - p) * max(keep, 0.0)), 0, 255).astype(np.uint8)


def small_size(img: np.ndarray, scale: float) -> np.ndarray:
    """Text too small: shrunk to ``scale`` of its size (area averaging loses strokes), then
    enlarged back to the original size so the model sees what detail is left."""
    if scale >= 1:
        return img.copy()
    import cv2

    h, w = img.shape[:2]
    sw, sh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _paper(img: np.ndarray) -> int:
    """The background level: the brightest common value (90th percentile)."""
    return int(np.percentile(img, 90))


@dataclass(frozen=True)
class Challenge:
    name: str
    label: str
    unit: str
    clean: float  # the level that leaves the image untouched
    worst: float  # slider end
    step: float
    sweep: tuple[float, ...]  # ~6 levels for the CER curve, clean first
    apply: Callable[[np.ndarray, float], np.ndarray]


CHALLENGES: dict[str, Challenge] = {c.name: c for c in (
    Challenge("blur", "Blur (σ, px)", "σ px", 0.0, 4.0, 0.25, (0.0, 0.75, 1.5, 2.25, 3.0, 4.0), blur),
    Challenge("rotation", "Rotation (°)", "degrees", 0.0, 45.0, 1.0, (0, 5, 10, 20, 30, 45), rotate),
    Challenge("perspective", "Perspective (edge shrink)", "fraction of height", 0.0, 0.8, 0.05,
              (0.0, 0.15, 0.3, 0.45, 0.6, 0.8), perspective),
    Challenge("noise", "Noise (σ, grey levels)", "σ grey levels", 0.0, 120.0, 5.0, (0, 20, 40, 60, 90, 120), noise),
    Challenge("contrast", "Contrast kept", "fraction kept", 1.0, 0.03, 0.01,
              (1.0, 0.5, 0.25, 0.12, 0.06, 0.03), low_contrast),
    Challenge("small", "Size kept", "fraction of size", 1.0, 0.15, 0.05, (1.0, 0.7, 0.5, 0.35, 0.25, 0.15), small_size),
)}
ORDER = ("small", "perspective", "rotation", "blur", "contrast", "noise")  # roughly physical order


def degrade(img: np.ndarray, levels: dict[str, float], *, seed: int = 0) -> np.ndarray:
    """Apply every challenge in ``levels`` (name -> level) in :data:`ORDER`."""
    out = img
    for name in ORDER:
        if name not in levels:
            continue
        c = CHALLENGES[name]
        level = float(levels[name])
        if level == c.clean:
            continue
        out = noise(out, level, seed=seed) if name == "noise" else c.apply(out, level)
    return out if out is not img else img.copy()


# --- character error rate -------------------------------------------------------------------


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions turning a into b."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance / reference length (can exceed 1; empty ref -> 0 or 1)."""
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return edit_distance(reference, hypothesis) / len(reference)


# --- CTC greedy decoding ----------------------------------------------------------------


def collapse(indices: Sequence[int], blank: int = 0) -> list[int]:
    """CTC collapse: merge consecutive repeats, then drop blanks."""
    out, prev = [], None
    for i in indices:
        i = int(i)
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


@dataclass(frozen=True)
class CtcSteps:
    path: list[str]  # per-column argmax symbol (blank shown as BLANK_MARK)
    merged: list[str]  # after merging runs of the same symbol (blanks still there)
    text: str  # blanks dropped: the recognised text
    confidence: list[float]  # per-column max probability


def ctc_greedy(probs: np.ndarray, alphabet: Sequence[str], blank: int = 0) -> CtcSteps:
    """Greedy CTC decoding of per-column probabilities ``probs`` (T, C), ``alphabet[c]`` the
    symbol of class c (``alphabet[blank]`` ignored)."""
    idx = np.asarray(probs).argmax(axis=1)
    sym = [BLANK_MARK if i == blank else alphabet[i] for i in idx]
    merged, prev = [], None
    for i in idx:
        if i != prev:
            merged.append(BLANK_MARK if i == blank else alphabet[i])
        prev = i
    text = "".join(alphabet[i] for i in collapse(idx, blank))
    return CtcSteps(sym, merged, text, [float(v) for v in np.asarray(probs).max(axis=1)])


def top_classes(probs: np.ndarray, k: int) -> list[int]:
    """The ``k`` classes with the highest probability in any column (blank included), best first."""
    peak = np.asarray(probs).max(axis=0)
    return [int(i) for i in np.argsort(-peak, kind="stable")[:k]]


def easyocr_confidence(probs: np.ndarray) -> float:
    """EasyOCR's line confidence from per-column probabilities: the max probability of every
    non-blank column, multiplied, raised to 2/sqrt(n) (``recognition.custom_mean``)."""
    p = np.asarray(probs)
    peak, idx = p.max(axis=1), p.argmax(axis=1)
    kept = peak[idx != 0]
    if len(kept) == 0:
        kept = np.array([0.0])
    return float(kept.prod() ** (2.0 / np.sqrt(len(kept))))


def draw_boxes(rgb: np.ndarray, boxes: Sequence[Sequence[Sequence[int]]], *,
               colour: tuple[int, int, int] = (230, 25, 75)) -> np.ndarray:
    """A copy of ``rgb`` with each quadrilateral outlined and numbered 1, 2, … at its top-left."""
    import cv2

    out = np.ascontiguousarray(rgb.copy())
    thick = max(1, round(max(out.shape[:2]) / 400))
    for n, box in enumerate(boxes, 1):
        pts = np.asarray(box, np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], True, colour, thick, cv2.LINE_AA)
        x, y = int(pts[:, 0, 0].min()), int(pts[:, 0, 1].min())
        label = str(n)
        scale = 0.4 * thick
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        y0 = max(th + 2, y)
        cv2.rectangle(out, (x, y0 - th - 2), (x + tw + 2, y0), colour, -1)
        cv2.putText(out, label, (x + 1, y0 - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
