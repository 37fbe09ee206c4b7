"""Cached pieces of the Feature extraction page: the captured activations of every layer
per (model, image digest), each model's receptive fields and first-layer filters, and
the gallery the "same channel across images" view compares.

Moving the layer or map-count controls never reruns the network: activations of all
layers come from :func:`activations` (bounded, float16 maps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from components.classifier import classifier, shape_sample
from core.jobs import MODEL_TURNS

GALLERY_SEEDS = tuple(range(8))  # offline: these synthetic one-shape images
THUMB_LONG_SIDE = 240


@dataclass(frozen=True)
class GalleryImage:
    title: str
    digest: str
    rgb: np.ndarray  # what the network is given (the classifier resizes it itself)
    thumb: np.ndarray  # small copy for display


@st.cache_data(max_entries=12, show_spinner=False)  # about 5 MB each (every stage of one image)
@MODEL_TURNS.take
def activations(name: str, device: str, digest: str, _rgb: np.ndarray):
    """core.features.Activations of every layer of model ``name`` on the image ``digest``."""
    from core.features import capture_layers

    return capture_layers(classifier(name, device), _rgb)


@st.cache_resource(max_entries=4, show_spinner=False)
def fields(name: str, device: str):
    """{layer: ReceptiveField} of the model, from walking its graph (computed once per model)."""
    from core.features import receptive_fields

    clf = classifier(name, device)
    return receptive_fields(clf.model, clf.layers)


@st.cache_data(max_entries=4, show_spinner=False)
def filters(name: str, device: str) -> np.ndarray:
    from core.features import filter_images

    clf = classifier(name, device)
    return filter_images(clf.layers[clf.first_conv].weight)


@st.cache_data(max_entries=4, show_spinner=False)
def filter_grid(name: str, device: str) -> np.ndarray:
    """The first layer's filters as one labelled picture."""
    from core.features import filter_tiles, grid_image

    images = filters(name, device)
    return grid_image(filter_tiles(images, cell=56), [f"#{n}" for n in range(len(images))], cols=16,
                      min_width=56)


@st.cache_resource(max_entries=2, show_spinner=False)
def gallery(offline: bool) -> tuple[GalleryImage, ...]:
    """The images the chosen channel is compared on: the sidebar's sample photos, or
    (offline) a few synthetic one-shape images."""
    from core.imageio import fit_long_side

    out = []
    if offline:
        for seed in GALLERY_SEEDS:
            s = shape_sample(seed)
            out.append(GalleryImage(f"{s.name} #{seed}", f"shape-{seed}", s.image, s.image))
    else:
        from core.images import SAMPLES, load_sample

        for key in SAMPLES:
            img = load_sample(key)
            out.append(GalleryImage(SAMPLES[key][0].split(" (")[0], img.digest, img.work,
                                    fit_long_side(img.work, THUMB_LONG_SIDE)))
    return tuple(out)
