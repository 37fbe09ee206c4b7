"""Streamlit side of the Pooling page: cached pooling work and charts."""

from __future__ import annotations

import numpy as np
import streamlit as st

WORK_SIDE = 256  # the photo is pooled at this long side


@st.cache_data(max_entries=8, show_spinner=False)
def working_image(digest: str, _rgb: np.ndarray) -> np.ndarray:
    from core.imageio import fit_long_side

    return fit_long_side(_rgb, WORK_SIDE)


@st.cache_data(max_entries=16, show_spinner=False)
def translation_rows(digest: str, _rgb: np.ndarray, max_shift: int, k: int, s: int) -> list[dict]:
    from core import pooling as pl

    return pl.translation_curve(pl.to_tensor(_rgb, gray=True), max_shift, k, s)


def to_uint8(t) -> np.ndarray:
    """(1, 3, H, W) or (1, 1, H, W) in [0, 1] -> (H, W, 3) uint8."""
    a = t[0].permute(1, 2, 0).numpy()
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return (a.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def upscale(a: np.ndarray, target: int) -> np.ndarray:
    """Nearest-neighbour enlargement so every pooled cell stays a visible block."""
    rep = max(1, target // max(a.shape[:2]))
    return np.repeat(np.repeat(a, rep, axis=0), rep, axis=1)


def translation_chart(rows: list[dict]) -> None:
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {"x": {"field": "shift_px", "type": "quantitative", "title": "shift (pixels)",
                           "axis": {"tickMinStep": 1, "format": "d"}},
                     "y": {"field": "cosine", "type": "quantitative", "title": "cosine similarity to unshifted",
                           "scale": {"zero": False}},
                     "color": {"field": "representation", "type": "nominal", "title": None}},
        "height": 260,
    }, width="stretch")


def draw_boxes(rgb: np.ndarray, boxes: list[tuple[tuple[float, float, float, float], tuple[int, int, int]]]) -> np.ndarray:
    """Rectangles (x1, y1, x2, y2) 2 px wide on a copy of the image."""
    out = rgb.copy()
    h, w = out.shape[:2]
    for (x1, y1, x2, y2), colour in boxes:
        x1, y1 = int(np.clip(round(x1), 0, w - 1)), int(np.clip(round(y1), 0, h - 1))
        x2, y2 = int(np.clip(round(x2), 0, w - 1)), int(np.clip(round(y2), 0, h - 1))
        for t in range(2):
            out[max(y1 - t, 0), x1:x2 + 1] = colour
            out[min(y2 + t, h - 1), x1:x2 + 1] = colour
            out[y1:y2 + 1, max(x1 - t, 0)] = colour
            out[y1:y2 + 1, min(x2 + t, w - 1)] = colour
    return out
