"""Small annotators in the style of `supervision`: the look lives in ``__init__``,
``annotate`` returns a new image and never touches its input."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.detection import Detections

# 12 colours that stay distinct on a projector (Tableau-like), RGB.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (255, 215, 0), (0, 128, 128),
)


def class_colour(label: int) -> tuple[int, int, int]:
    return PALETTE[int(label) % len(PALETTE)]


@dataclass(frozen=True)
class BoxAnnotator:
    """Draws boxes with a "class score" tag; thickness and text scale follow the image size."""

    thickness: int | None = None  # None: about 1/300 of the long side, at least 2 px
    show_labels: bool = True
    show_scores: bool = True
    colour: tuple[int, int, int] | None = None  # one colour for all boxes, else per class
    dashed: bool = False

    def annotate(self, rgb: np.ndarray, dets: Detections) -> np.ndarray:
        out = np.ascontiguousarray(rgb).copy()
        long_side = max(out.shape[:2])
        thick = self.thickness or max(2, long_side // 300)
        scale = max(0.4, long_side / 1400)
        for box, score, label in zip(dets.boxes, dets.scores, dets.labels):
            colour = self.colour or class_colour(label)
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            if self.dashed:
                _dashed_rect(out, (x1, y1), (x2, y2), colour, max(1, thick // 2))
            else:
                cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
            if self.show_labels or self.show_scores:
                parts = [dets.categories[int(label)]] if self.show_labels else []
                if self.show_scores:
                    parts.append(f"{score:.2f}")
                _tag(out, " ".join(parts), (x1, y1), colour, scale)
        return out


def _tag(img: np.ndarray, text: str, corner: tuple[int, int], colour, scale: float) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    weight = max(1, int(scale * 2))
    (w, h), base = cv2.getTextSize(text, font, scale, weight)
    x, y = corner
    y_top = y - h - base - 4 if y - h - base - 4 >= 0 else y
    cv2.rectangle(img, (x, y_top), (x + w + 4, y_top + h + base + 4), colour, -1)
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    ink = (0, 0, 0) if luminance > 150 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, y_top + h + 2), font, scale, ink, weight, cv2.LINE_AA)


def _dashed_rect(img, p1, p2, colour, thick, dash: int = 6) -> None:
    (x1, y1), (x2, y2) = p1, p2
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = int(np.hypot(b[0] - a[0], b[1] - a[1]))
        for s in range(0, max(length, 1), dash * 2):
            t0, t1 = s / max(length, 1), min(s + dash, length) / max(length, 1)
            q0 = (int(a[0] + (b[0] - a[0]) * t0), int(a[1] + (b[1] - a[1]) * t0))
            q1 = (int(a[0] + (b[0] - a[0]) * t1), int(a[1] + (b[1] - a[1]) * t1))
            cv2.line(img, q0, q1, colour, thick, cv2.LINE_AA)
