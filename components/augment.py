"""Cached, bounded work for the Data augmentation page.

* :func:`draws` - the seeded grid of augmented draws of one source (photo + box, or a
  shapes scene), drawn with boxes and mask outlines; per (source, settings, seed).
* :func:`stability` - the active classifier on the un-augmented image and on each draw,
  per (model, device, image digest, settings, seed): moving another widget reruns nothing.
* :func:`run_compare` - the shapes CNN trained with and without augmentation
  (:func:`core.augment.compare`) in a :data:`core.jobs.TRAINING` slot, cached per settings.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from components.session import session_id
from core.jobs import MODEL_TURNS


@st.cache_data(max_entries=8, show_spinner=False)
def draws(source: tuple, settings: tuple, seed: int, _sample) -> dict:
    """Rendered original and draws, with what happened to the instances in each draw."""
    from core import augment as aug

    sample = _sample
    out = aug.augment(sample, settings, seed=seed)
    return {
        "original": aug.render(sample),
        "images": [aug.render(d) for d in out],
        "kept": [len(d.labels) for d in out],
        "instances": len(sample.labels),
        "looseness": [aug.box_looseness(d) for d in out],
    }


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def stability(model: str, device: str, digest: str, settings: tuple, seed: int, _clf, _image) -> dict:
    """Probabilities of the classifier on the image and on each of its augmented draws."""
    from core import augment as aug
    from core.acceleration import num_threads

    clf = _clf
    sample = aug.plain_sample(_image)
    out = aug.augment(sample, settings, seed=seed)
    with num_threads(1):  # two threads spin-wait on each other on a busy 2-core server (3x slower there)
        base = clf.probs(sample.image)
        if clf.input_size:  # every draw resized to the network's square input: one batched pass
            probs = clf.probs(np.stack([clf.resize(d.image) for d in out]))
        else:  # the shapes CNN runs at each draw's own size, which may differ: one at a time
            probs = np.stack([clf.probs(d.image) for d in out])
    summary = aug.stability(base, probs, clf.categories)
    return summary | {"images": [d.image for d in out], "image": sample.image}


@st.cache_data(max_entries=8, show_spinner=False)
def mix(kind: str, alpha: float, seed: int, partner_seed: int, digest: str, _image) -> dict:
    from core import augment as aug

    crop, name = aug.shape_crop(partner_seed)
    return aug.mix_pair(_image, crop, kind, alpha=alpha, seed=seed) | {"partner": name}


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(n_train: int, epochs: int, augs: tuple, seed: int, _progress=None) -> dict:
    """:func:`core.augment.compare` in the shared live-training slot (JobRefused / JobTimeout
    propagate, and nothing is cached then)."""
    from core import augment as aug
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return aug.compare(n_train=n_train, epochs=epochs, seed=seed, augs=augs, progress=_progress,
                           deadline=deadline)


def grid_image(images: list[np.ndarray], cols: int, gap: int = 4) -> np.ndarray:
    """The draws tiled into one picture (for the PNG download)."""
    h, w = images[0].shape[:2]
    rows = (len(images) + cols - 1) // cols
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = im[:h, :w]
    return out


def label_bars(names: list[str], weights: list[float]) -> None:
    st.vega_lite_chart({
        "data": {"values": [{"class": n, "weight": w} for n, w in zip(names, weights)]},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "class", "type": "nominal", "title": None, "sort": None},
            "x": {"field": "weight", "type": "quantitative", "title": "mixed label (target weight)",
                  "scale": {"domain": [0, 1]}},
        },
        "height": {"step": 30},
    }, width="stretch")
