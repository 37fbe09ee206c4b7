"""Cached, bounded work and charts for the Medical imaging and U-Net page (core.unet does the maths)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from components.ui import epoch_lines
from core.jobs import MODEL_TURNS

N_TRAIN_CHOICES = (40, 80, 120, 200, 300, 400)
EPOCH_RANGE = (1, 10)
LONG_SIDES = (96, 128, 192, 256)
MODELS = ("with skips", "without skips")


@st.cache_data(max_entries=8, show_spinner="Building the U-Net…")
def architecture(skips: bool, size: int = 64) -> dict:
    """The DOT diagram (real output shapes for a size x size input), parameter count, layer rows."""
    from core import unet

    net = unet.make_unet(0, skips=skips)
    return {"dot": unet.architecture_dot(net, size), "params": unet.n_parameters(net),
            "rows": unet.layer_shapes(net, size)}


@st.cache_data(max_entries=8, show_spinner=False)
def samples(seed: int, n: int = 6) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """The first ``n`` training images of ``seed``, the same with their true outline drawn, and cell counts."""
    from scipy.ndimage import binary_erosion

    from core import unet

    images, outlined, counts = [], [], []
    for i in range(n):
        img, mask = unet.make_cell_image(unet.TRAIN_SEED0 + seed, i)
        rgb = np.repeat(img[..., None], 3, axis=2).copy()
        edge = mask & ~binary_erosion(mask, np.ones((3, 3), bool), border_value=1)
        rgb[edge] = (255, 60, 60)
        images.append(img)
        outlined.append(rgb)
        counts.append(len(unet.cell_params(unet.TRAIN_SEED0 + seed, i)))
    return images, outlined, counts


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(n_train: int, epochs: int, seed: int, _progress=None) -> dict:
    """With vs without skips (:func:`core.unet.compare`) in the shared training slot."""
    from core import unet
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return unet.compare(n_train=n_train, epochs=epochs, seed=seed, progress=_progress, deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def trained_net(settings: tuple, which: str, _state: dict):
    """One finished run's net, rebuilt from its state dict, shared read-only."""
    from core import unet

    return unet.load_unet(_state, skips=which == "with skips")


@st.cache_data(max_entries=16, show_spinner=False)
@MODEL_TURNS.take
def segment(settings: tuple, which: str, digest: str, long_side: int, invert: bool, _net,
            _rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gray working image, probability map) of the active image (threshold applied by the page)."""
    from core import unet

    gray = unet.prepare_gray(_rgb, long_side, invert=invert)
    return gray, unet.predict(_net, gray)


def curves(rows: list[dict]) -> None:
    """Held-out Dice and boundary Dice per epoch (colour = model, dash = metric) and the training loss."""
    long = [{"epoch": r["epoch"], "model": r["model"], "metric": name, "value": r[key]}
            for r in rows for key, name in (("dice", "Dice"), ("boundary_dice", "boundary Dice"))]
    colour = {"field": "model", "type": "nominal", "title": None, "sort": list(MODELS)}
    x = {"field": "epoch", "type": "quantitative", "title": "epoch", "axis": {"tickMinStep": 1, "format": "d"}}
    left, right = st.columns(2)
    with left:
        st.vega_lite_chart({
            "data": {"values": long},
            "mark": {"type": "line", "point": True, "tooltip": True},
            "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "title": "Dice (solid), boundary (dashed)",
                                       "scale": {"domain": [0, 1]}},
                         "color": colour, "strokeDash": {"field": "metric", "type": "nominal", "legend": None,
                                        "sort": ["Dice", "boundary Dice"]}},  # dashes named in the y title
            "height": 260,
        }, width="stretch")
    with right:
        epoch_lines(rows, y="loss", title="training loss (BCE + 1 − Dice)", percent=False, unit_range=False,
                    order=list(MODELS))


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(gray, np.uint8)[..., None], 3, axis=2)
