"""The classifier the photo pages share, and the image it runs on.

    subject = active_subject(ctx, url)     # one call near the top of the page
    subject.classifier                     # core.classifier.Classifier (cached, shared)
    subject.image                          # RGB uint8: the user's photo, or a synthetic shape
    subject.truth                          # ShapeSample (true class and box) for the shape, else None

Every photo page runs a real ImageNet classifier on the user's active photo by default:
EfficientNet-Lite0, whose weights come with ``requirements.txt`` (always present, never
downloaded). Where ResNet-18's or MobileNetV3's weights are on the server, the sidebar's
**Classifier** menu (one place for every page, mirrored in the link as ``?clf=``) offers
them too; pages where a known box or class teaches something also offer the small shapes
CNN on a synthetic one-shape image (``?clf=shapes-cnn``, image number ``?shape=``). Under
the page header one caption names the model the page shows and where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from components import models as cm
from components.ui import weights_missing
from core.params import Param, parse
from core.safetext import literal
from models.classifiers import SHAPES_MODEL  # declared once, beside the loader

DEFAULT_MODEL = "efficientnet_lite0"  # always installed (requirements.txt)
IMAGENET_MODELS = (DEFAULT_MODEL, "resnet18", "mobilenet_v3_large")  # offered where present, in this order
IMAGENET_MODEL = DEFAULT_MODEL  # the ImageNet backbone other components default to
MODEL_PARAM = Param(default=DEFAULT_MODEL, kind=str, choices=(*IMAGENET_MODELS, SHAPES_MODEL))
SHAPE_SEED = Param(default=3, kind=int, lo=0, hi=9999)
SHORT = {"efficientnet_lite0": "EfficientNet-Lite0 (ImageNet)", "resnet18": "ResNet-18 (ImageNet)",
         "mobilenet_v3_large": "MobileNetV3-Large (ImageNet)",
         SHAPES_MODEL: "Shapes CNN on a synthetic shape (known class and box)"}
_CHOICE, _WIDGET = "_lab.classifier", "lab.classifier"


@dataclass(frozen=True)
class Subject:
    classifier: object  # core.classifier.Classifier
    image: np.ndarray  # RGB uint8, full working size (the classifier resizes it itself)
    title: str
    digest: str  # cache key of the image
    truth: object | None = None  # core.classifier.ShapeSample for the synthetic shape

    @property
    def offline(self) -> bool:
        """True for the shapes CNN on a synthetic image (the explicit "known box" choice)."""
        return self.classifier.kind == "shapes"


@st.cache_resource(max_entries=3, show_spinner=False)
def classifier(name: str, device: str):
    """The shared, cached Classifier for a registered model on ``device``."""
    from models.classifiers import load_classifier

    clf = load_classifier(name, device)
    cm.freeze_heap()
    return clf


@st.cache_data(max_entries=32, show_spinner=False)
def shape_sample(seed: int):
    from core.classifier import shape_sample as make

    return make(seed)


def offered(*, shapes: bool = True) -> list[str]:
    """The classifiers this server can show: EfficientNet-Lite0 always, ResNet-18 and
    MobileNetV3 where their weights are on disk (never a download from here), then the
    shapes CNN where the page allows it."""
    from models import registry

    names = [n for n in IMAGENET_MODELS if n == DEFAULT_MODEL or registry.get_spec(n).is_present()]
    return names + ([SHAPES_MODEL] if shapes else [])


def choose_model(*, shapes: bool = True) -> str:
    """The session's classifier choice: one menu in the sidebar for every photo page, kept
    across pages and mirrored in the link as ``?clf=``. A link naming a model this server
    does not have falls back to EfficientNet-Lite0 with a notice."""
    ss = st.session_state
    if _CHOICE not in ss:
        value, notice = parse(st.query_params.get("clf"), MODEL_PARAM)
        if notice:
            st.toast(f"Link parameter `clf`: {notice}", icon="🔗")
        ss[_CHOICE] = value
    options = offered(shapes=shapes)
    choice = ss[_CHOICE]
    if choice not in options:
        if choice != SHAPES_MODEL:  # a model whose weights are absent; the shapes CNN is a page matter
            st.info(f"{SHORT[choice]} is not on this server (its weights are not in the weights folder); "
                    f"showing {SHORT[DEFAULT_MODEL]}.", icon="🔗")
            ss[_CHOICE] = DEFAULT_MODEL
        choice = DEFAULT_MODEL
    if len(options) > 1:
        ss[_WIDGET] = choice

        def keep():
            ss[_CHOICE] = ss[_WIDGET]

        choice = st.sidebar.selectbox(
            "Classifier", options, key=_WIDGET, format_func=SHORT.get, on_change=keep,
            help="The network this page opens up. EfficientNet-Lite0 comes with the lab; ResNet-18 and "
                 "MobileNetV3 appear when their weights are on the server. The shapes CNN runs on a synthetic "
                 "image whose true class and box are known.")
    st.query_params["clf"] = choice
    return choice


def model_caption(clf, image_title: str) -> None:
    """One line under the header: which model this page shows, on which image, from where."""
    from models import registry

    spec = registry.get_spec(clf.name)
    where = {"package": f"installed with the lab (`{spec.pip_name}`, {spec.licence})",
             "torchvision": f"torchvision weights, {spec.licence}",
             "trained": "trained by this lab on synthetic shapes"}.get(spec.source, spec.source)
    st.caption(f"🧠 Model: **{literal(clf.title)}** · {where} · image: **{literal(image_title)}**")


def active_subject(ctx, url, *, where=None, shapes: bool = True) -> Subject:
    """The chosen classifier on the active photo, or the shapes CNN on a synthetic shape.

    ``shapes``: whether this page offers the synthetic one-shape image (where its known
    class and box teach something). ``where`` is the container for that image's number box
    (default: the page)."""
    device = ctx.device.torch_device
    name = choose_model(shapes=shapes)
    if name != SHAPES_MODEL:
        err = cm.check_available(name)
        if err is None:
            with st.spinner(f"Loading {SHORT[name]}…"):
                clf = classifier(name, device)
            model_caption(clf, ctx.image.title)
            return Subject(clf, ctx.image.work, ctx.image.title, ctx.image.digest)
        weights_missing(err)
        st.info("**Offline demonstration.** No ImageNet classifier can be loaded on this server, so this page "
                "runs the small shapes CNN this project trains itself, on a synthetic image holding one shape "
                "whose true class and box are known.", icon="🧪")
    seed = int((where or st).number_input("Synthetic image number", 0, 9999, step=1,
                                          key=url.key("shape", SHAPE_SEED),
                                          help="Each number draws another shape, colour, place and background."))
    cm.require_shipped(SHAPES_MODEL)
    clf = classifier(SHAPES_MODEL, device)
    sample = shape_sample(seed)
    title = f"synthetic {sample.name} #{seed}"
    model_caption(clf, title)
    return Subject(clf, sample.image, title, f"shape-{seed}", sample)


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
