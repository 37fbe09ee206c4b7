"""The classifier the robustness and interpretability pages share, and the image it runs on.

    subject = active_subject(ctx, url)     # one call near the top of the page
    subject.classifier                     # core.classifier.Classifier (cached, shared)
    subject.image                          # RGB uint8: the user's photo, or a synthetic shape
    subject.truth                          # ShapeSample (true class and box) offline, else None

With ResNet-18's ImageNet weights on the server, the pages run it on the user's active
image. Without them (offline, or not downloaded yet) the page says so, shows how to get
them, and runs the shapes CNN this project trains itself on a synthetic one-shape image
chosen with a number box (mirrored in the URL as ``?shape=``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from components import models as cm
from components.ui import weights_missing
from core.params import Param

IMAGENET_MODEL = "resnet18"
SHAPES_MODEL = "shapes-cnn"
SHAPE_SEED = Param(default=3, kind=int, lo=0, hi=9999)


@dataclass(frozen=True)
class Subject:
    classifier: object  # core.classifier.Classifier
    image: np.ndarray  # RGB uint8, full working size (the classifier resizes it itself)
    title: str
    digest: str  # cache key of the image
    truth: object | None = None  # core.classifier.ShapeSample offline

    @property
    def offline(self) -> bool:
        return self.classifier.kind == "shapes"


@st.cache_resource(max_entries=2, show_spinner=False)
def classifier(name: str, device: str):
    """The shared, cached Classifier for a registered model on ``device``."""
    from core.classifier import Classifier
    from models import registry

    if name == SHAPES_MODEL:
        from models.shapes_cnn import load_or_train_shapes_cnn

        clf = Classifier.shapes(registry.for_inference(load_or_train_shapes_cnn(), device))
    else:
        model = registry.for_inference(registry.build_torchvision(name), device)
        clf = Classifier.imagenet(model, registry.categories(name), name=name,
                                  title=registry.get_spec(name).title)
    cm.freeze_heap()
    return clf


@st.cache_data(max_entries=32, show_spinner=False)
def shape_sample(seed: int):
    from core.classifier import shape_sample as make

    return make(seed)


def active_subject(ctx, url, *, where=None) -> Subject:
    """ResNet-18 on the active photo, or (with a notice) the shapes CNN on a synthetic shape.

    ``where`` is the container for the offline number box (default: the page)."""
    device = ctx.device.torch_device
    err = cm.check_available(IMAGENET_MODEL)
    if err is None:
        with st.spinner("Loading ResNet-18…"):
            clf = classifier(IMAGENET_MODEL, device)
        return Subject(clf, ctx.image.work, ctx.image.title, ctx.image.digest)
    weights_missing(err)
    st.info("**Offline demonstration.** ResNet-18's ImageNet weights are not on this server, so this page "
            "runs the small shapes CNN this project trains itself, on a synthetic image holding one shape "
            "whose true class and box are known. With the weights in place it runs on your own photo.",
            icon="🧪")
    seed = int((where or st).number_input("Synthetic image number", 0, 9999, step=1,
                                          key=url.key("shape", SHAPE_SEED),
                                          help="Each number draws another shape, colour, place and background."))
    cm.ensure_trained(SHAPES_MODEL)
    clf = classifier(SHAPES_MODEL, device)
    sample = shape_sample(seed)
    return Subject(clf, sample.image, f"synthetic {sample.name} #{seed}", f"shape-{seed}", sample)


PHOTO, SHAPE = "Your photo", "A synthetic shape"


def shape_or_photo(ctx, url, *, where=None, default: str = SHAPE) -> Subject:
    """The image for a page whose small network only knows the six synthetic shapes: a radio
    between a synthetic one-shape image (number box, ``?shape=``; its true class and box come
    along as ``.truth``) and the user's active photo (``.truth`` None). ``.classifier`` is None:
    the page brings its own network. Loads no model."""
    box = where or st
    src = box.radio("Image", (SHAPE, PHOTO), horizontal=True,
                    key=url.key("src", Param(default=default, kind=str, choices=(SHAPE, PHOTO))),
                    help="These networks were trained on synthetic shapes only: on your photo they still "
                         "answer, but with one of the six shapes.")
    if src == PHOTO:
        return Subject(None, ctx.image.work, ctx.image.title, ctx.image.digest)
    seed = int(box.number_input("Synthetic image number", 0, 9999, step=1, key=url.key("shape", SHAPE_SEED),
                                help="Each number draws another shape, colour, place and background."))
    sample = shape_sample(seed)
    return Subject(None, sample.image, f"synthetic {sample.name} #{seed}", f"shape-{seed}", sample)
