"""Cached pieces of the Embeddings and retrieval page: the backbone (the sidebar's classifier:
EfficientNet-Lite0 by default), the gallery (sample photos, uploads, synthetic shapes), its
embeddings per (backbone, gallery digest), the 2-D maps and the charts.

Moving k, the layer, the pooling or the query never re-embeds the gallery: :func:`embeddings`
returns every layer and both poolings from one pass, cached by the gallery's digest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from components import models as cm
from components.classifier import SHAPES_MODEL, SHORT, choose_model, classifier, model_caption
from components.ui import weights_missing
from core.jobs import MODEL_TURNS

MAX_UPLOADS = 24
EMBED_LONG_SIDE = 256  # gallery photos are kept at this size (the networks see 224 or 64 px)
THUMB_LONG_SIDE = 160


@dataclass(frozen=True)
class Item:
    name: str  # as given (an upload's file name): through core.safetext.literal wherever Markdown shows it
    label: str  # sample key, "upload" or the shape class
    source: str  # "sample" | "upload" | "shape"
    digest: str
    rgb: np.ndarray  # what is embedded
    thumb: np.ndarray


def backbone(ctx):
    """The sidebar's classifier as the embedding network: EfficientNet-Lite0 (installed with the
    lab) unless ResNet-18 or MobileNetV3 is chosen there, or the shapes CNN as an explicit choice
    (it was trained on the six synthetic shapes, so it shows what a network trained for the
    gallery's own classes retrieves). A caption names the model."""
    device = ctx.device.torch_device
    name = choose_model(shapes=True)
    query = f"{ctx.image.title} (query) and the gallery below"
    if name != SHAPES_MODEL:
        err = cm.check_available(name)
        if err is None:
            with st.spinner(f"Loading {SHORT[name]}…"):
                clf = classifier(name, device)
            model_caption(clf, query)
            return clf
        weights_missing(err)
        st.info(f"**Offline demonstration.** {SHORT[name]} "
                "cannot be loaded on this server, so the embeddings come from the small shapes CNN this project "
                "trains itself (its blocks 1–4, at 64 px).", icon="🧪")
    else:
        st.info("**Shapes CNN chosen in the sidebar.** This small network was trained here on the six synthetic "
                "shapes, at 64 px: on the shapes it retrieves by class far better than an ImageNet network (switch "
                "the Classifier back and compare section 4); on photos it still gives vectors, but they mean little.",
                icon="🔷")
    cm.require_shipped(SHAPES_MODEL)
    clf = classifier(SHAPES_MODEL, device)
    model_caption(clf, query)
    return clf


def _item(image, *, name: str, label: str, source: str) -> Item:
    from core.imageio import fit_long_side

    rgb = fit_long_side(image.work, EMBED_LONG_SIDE)
    return Item(name, label, source, image.digest, rgb, fit_long_side(rgb, THUMB_LONG_SIDE))


@st.cache_resource(max_entries=1, show_spinner=False)
def sample_items() -> tuple[Item, ...]:
    """The sample photos that have a file (not the synthetic scene), labelled by their key."""
    from core.images import SAMPLES, load_sample

    return tuple(_item(load_sample(key), name=title.split(" (")[0], label=key, source="sample")
                 for key, (title, file) in SAMPLES.items() if file is not None)


@st.cache_data(max_entries=8, show_spinner=False)
def shape_items(per_class: int, seed: int) -> tuple[Item, ...]:
    """``per_class`` synthetic one-shape crops of each of the six classes (class c from seed
    ``seed * 16 + c``), labelled by class."""
    from core.imageio import image_digest
    from core.shapes import SHAPE_CLASSES, make_classification_set

    out = []
    for c, cls in enumerate(SHAPE_CLASSES):
        images, _ = make_classification_set(per_class, seed=seed * 16 + c, classes=[c])
        for i, img in enumerate(images):
            img.flags.writeable = False
            out.append(Item(f"{cls} #{i}", cls, "shape", image_digest(img), img, img))
    return tuple(out)


@st.cache_data(max_entries=64, show_spinner=False)
def _decode(file_id: str, name: str, _data: bytes) -> Item | str:
    """One uploaded file as an Item, or the sentence saying why it is not an image we read."""
    from core.imageio import ImageDecodeError
    from core.images import from_bytes
    from core.safetext import literal

    shown = literal(name, 60)
    try:
        image = from_bytes(_data, name=name)
    except ImageDecodeError as err:
        return f"**{shown}** was left out: {literal(str(err), 300)}"
    return _item(image, name=name, label="upload", source="upload")


def upload_items(files) -> tuple[tuple[Item, ...], list[str]]:
    """Decoded uploads (at most MAX_UPLOADS) and messages for the files left out."""
    items, notes = [], []
    for f in files[:MAX_UPLOADS]:
        got = _decode(f.file_id, f.name, f.getvalue())
        (notes if isinstance(got, str) else items).append(got)
    if len(files) > MAX_UPLOADS:
        notes.append(f"Only the first {MAX_UPLOADS} of {len(files)} uploaded files are used.")
    return tuple(items), notes


def gallery_key(items) -> str:
    from core.embeddings import gallery_digest

    return gallery_digest([it.digest for it in items], [it.label for it in items])


@st.cache_data(max_entries=8, show_spinner=False)
@MODEL_TURNS.take
def embeddings(name: str, device: str, digest: str, _images, _progress=None) -> dict:
    """core.embeddings.embed of the gallery ``digest`` with backbone ``name``: every layer, both poolings."""
    from core.embeddings import embed

    return embed(classifier(name, device), list(_images), progress=_progress or (lambda *a, **k: None))


@st.cache_data(max_entries=16, show_spinner=False)
@MODEL_TURNS.take
def query_embedding(name: str, device: str, digest: str, _rgb: np.ndarray) -> dict:
    """The same embeddings for one image (the active photo as the query)."""
    from core.embeddings import embed
    from core.imageio import fit_long_side

    return embed(classifier(name, device), [fit_long_side(_rgb, EMBED_LONG_SIDE)])


@st.cache_data(max_entries=16, show_spinner=False)
def projection(key: tuple, method: str, seed: int, _features: np.ndarray) -> np.ndarray:
    """core.embeddings.project, cached by ``key`` (backbone, pooling, layer, gallery and query digests)."""
    from core.embeddings import project

    return project(_features, method, seed=seed)


# --- charts ------------------------------------------------------------------------------


def scatter(rows: list[dict], *, title: str) -> None:
    """The 2-D map: one point per image coloured by label (shape by source), neighbours larger,
    the query a black diamond."""
    tooltip = [{"field": "name"}, {"field": "label"}, {"field": "source"}, {"field": "cosine", "format": ".3f"}]
    base = {"x": {"field": "x", "type": "quantitative", "title": f"{title} 1", "axis": {"labels": False}},
            "y": {"field": "y", "type": "quantitative", "title": f"{title} 2", "axis": {"labels": False}},
            "tooltip": tooltip}
    st.vega_lite_chart({
        "data": {"values": rows},
        "layer": [
            {"transform": [{"filter": "datum.role != 'query'"}],
             "mark": {"type": "point", "filled": True, "opacity": 0.85},
             "encoding": {**base,
                          "color": {"field": "label", "type": "nominal", "title": "label",
                                    "scale": {"scheme": "category20"}},
                          "shape": {"field": "source", "type": "nominal", "title": "source"},
                          "size": {"field": "role", "type": "nominal", "title": None,
                                   "scale": {"domain": ["neighbour", "gallery"], "range": [220, 60]}}}},
            {"transform": [{"filter": "datum.role == 'query'"}],
             "mark": {"type": "point", "shape": "diamond", "filled": True, "size": 380, "color": "black"},
             "encoding": base},
        ],
        "height": 420,
    }, width="stretch")


def precision_bars(rows: list[dict], chance: float, k: int) -> None:
    """precision@k per layer (bars coloured by pooling) with the chance level as a dashed line."""
    st.vega_lite_chart({
        "data": {"values": rows},
        "layer": [
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {"x": {"field": "layer", "type": "nominal", "sort": None, "title": None,
                                "axis": {"labelAngle": 0}},
                          "xOffset": {"field": "pooling"},
                          "y": {"field": "precision", "type": "quantitative", "title": f"precision@{k}",
                                "scale": {"domain": [0, 1]}, "axis": {"format": "%"}},
                          "color": {"field": "pooling", "type": "nominal", "title": "pooling"}}},
            {"data": {"values": [{"what": "chance", "value": chance}]},
             "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#616161", "tooltip": True},
             "encoding": {"y": {"field": "value", "type": "quantitative"},
                          "tooltip": [{"field": "what"}, {"field": "value", "format": ".1%"}]}},
        ],
        "height": 260,
    }, width="stretch")
