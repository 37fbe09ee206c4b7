"""core.classifier: the classifier the interpretability and robustness pages share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import classifier as C
from core.shapes import SHAPE_CLASSES


@pytest.fixture(scope="module")
def shapes_clf():
    from models.shapes_cnn import load_shapes_cnn

    return C.Classifier.shapes(load_shapes_cnn())


def test_shapes_normalisation_is_the_training_one():
    from models import shapes_cnn

    assert C.SHAPES_MEAN == shapes_cnn.MEAN and C.SHAPES_STD == shapes_cnn.STD
    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    clf = C.Classifier.shapes(shapes_cnn.ShapesNet())
    assert torch.allclose(clf.tensor(crop), shapes_cnn.preprocess(crop), atol=1e-6)


def test_imagenet_normalisation_is_torchvisions():
    from torchvision.models import ResNet18_Weights

    from models import registry

    clf = C.Classifier.imagenet(registry.build_architecture("resnet18"), registry.categories("resnet18"))
    preset = ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert clf.mean == tuple(preset.mean) and clf.std == tuple(preset.std)
    assert len(clf.categories) == 1000 and clf.categories[281] == "tabby"
    x = clf.tensor(np.zeros((300, 500, 3), np.uint8))
    assert x.shape == (1, 3, 224, 224)  # the whole image, squashed: maps cover the whole photo
    assert torch.allclose(x[0, :, 0, 0], -torch.tensor(preset.mean) / torch.tensor(preset.std))
    assert list(clf.layers) == ["conv1", "layer1", "layer2", "layer3", "layer4"] and clf.cam_layer == "layer4"


def test_shape_sample_is_deterministic_and_its_box_holds_the_shape():
    a, b = C.shape_sample(5), C.shape_sample(5)
    assert np.array_equal(a.image, b.image) and a.box == b.box and a.label == b.label
    x1, y1, x2, y2 = a.box
    side = a.image.shape[0]
    assert a.image.shape == (C.SHAPE_CANVAS, C.SHAPE_CANVAS, 3)
    assert 0.15 * side < x2 - x1 < 0.4 * side and 0.15 * side < y2 - y1 < 0.4 * side  # small in its canvas
    assert len({C.shape_sample(s).box for s in range(10)}) > 5  # not always in the same place


def test_shapes_cnn_reads_the_demo_canvas_at_its_own_size(shapes_clf):
    """The offline demos run the shapes CNN on 160-px canvases (not its 64-px crops)."""
    samples = [C.shape_sample(1000 + i) for i in range(60)]
    probs = shapes_clf.probs(np.stack([s.image for s in samples]))
    assert probs.shape == (60, len(SHAPE_CLASSES)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    accuracy = np.mean(probs.argmax(1) == np.array([s.label for s in samples]))
    assert accuracy >= 0.9, accuracy


def test_top_and_round_trip(shapes_clf):
    probs = np.array([0.1, 0.4, 0.05, 0.3, 0.1, 0.05])
    top = shapes_clf.top(probs, k=3)
    assert [(p.index, p.name) for p in top] == [(1, "square"), (3, "star"), (0, "circle")]
    assert top[0].probability == pytest.approx(0.4)
    img = C.shape_sample(2).image
    assert np.array_equal(shapes_clf.to_rgb(shapes_clf.unit(img)), img)


def test_anatomy_of_mobilenet_v3_names_its_blocks():
    from models import registry

    model = registry.build_architecture("mobilenet_v3_large")
    parts = C.anatomy(model)
    assert parts.first_conv == "conv_stem" and parts.layers["conv_stem"] is model.features[0][0]
    assert parts.cam_layer == "head" and parts.layers["head"] is model.features[-1]
    assert list(parts.layers)[1] == "block1" and len(parts.layers) == len(model.features)  # stem conv, 15 blocks, head


def test_anatomy_refuses_an_unknown_network():
    with pytest.raises(ValueError, match="no known stages"):
        C.anatomy(torch.nn.Linear(2, 2))


# --- the sidebar's Classifier menu (components.classifier) ------------------------------------

from pathlib import Path  # noqa: E402

from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INTERPRETABILITY = "pages/07_Interpretability.py"


def _open(file: str, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=300)
    at.query_params.update(query)
    at.switch_page(file)
    return at.run()


def _model_caption(at) -> str:
    """The model caption as a reader sees it (Markdown escapes removed)."""
    return next(c.value for c in at.caption if c.value.startswith("🧠 Model:")).replace("\\", "")


def _menu(at):
    return next((s for s in at.sidebar.selectbox if s.label == "Classifier"), None)


@pytest.fixture
def resnet18_present(tmp_path, monkeypatch):
    """A weights folder with a ResNet-18 file (the real architecture, untrained weights): the
    menu only asks whether the file is there, so this is enough to make it offer ResNet-18."""
    from models import registry

    spec = registry.get_spec("resnet18")
    torch.save(registry.build_architecture("resnet18").state_dict(), tmp_path / spec.file)
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
    return tmp_path


def test_photo_pages_default_to_efficientnet_on_the_photo_and_say_so(trained_shapes_cnn):
    at = _open(INTERPRETABILITY, img="chelsea")
    assert not at.exception, [e.value for e in at.exception]
    caption = _model_caption(at)
    assert "EfficientNet" in caption and "Chelsea the cat" in caption and "Apache-2.0" in caption
    assert not any("Offline demonstration" in i.value for i in at.info)
    assert at.query_params["clf"] in ("efficientnet_lite0", ["efficientnet_lite0"])
    # Only EfficientNet and the explicit synthetic shape are on offer here (no ResNet-18 file).
    assert _menu(at).options == ["EfficientNet-Lite0 (ImageNet)",
                                 "Shapes CNN on a synthetic shape (known class and box)"]


def test_the_synthetic_shape_is_an_explicit_choice_kept_across_pages(trained_shapes_cnn):
    at = _open(INTERPRETABILITY, img="chelsea", clf="shapes-cnn")
    assert not at.exception, [e.value for e in at.exception]
    assert "Shapes CNN" in _model_caption(at) and "synthetic" in _model_caption(at)
    at.switch_page("pages/06_Feature_extraction.py").run()  # the same session on another page
    assert "Shapes CNN" in _model_caption(at)
    _menu(at).select("efficientnet_lite0").run()
    assert "EfficientNet" in _model_caption(at)


def test_a_link_to_an_absent_model_falls_back_with_a_notice(trained_shapes_cnn):
    at = _open(INTERPRETABILITY, img="chelsea", clf="resnet18")
    assert not at.exception
    assert any("ResNet-18 (ImageNet) is not on this server" in i.value for i in at.info)
    assert "EfficientNet" in _model_caption(at)
    bad = _open(INTERPRETABILITY, img="chelsea", clf="vgg16")
    assert not bad.exception and "EfficientNet" in _model_caption(bad)


def test_resnet18_is_offered_where_its_weights_are_present_and_mirrored_in_the_link(resnet18_present,
                                                                                   trained_shapes_cnn):
    at = _open(INTERPRETABILITY, img="chelsea")
    assert "ResNet-18 (ImageNet)" in _menu(at).options
    _menu(at).select("resnet18").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "ResNet-18" in _model_caption(at) and "BSD-3-Clause" in _model_caption(at)
    assert at.query_params["clf"] in ("resnet18", ["resnet18"])
    linked = _open(INTERPRETABILITY, img="chelsea", clf="resnet18")  # the link opens it again
    assert "ResNet-18" in _model_caption(linked)


def test_pages_without_the_shape_choice_do_not_offer_it(trained_shapes_cnn):
    """A page can leave the synthetic shape out of the menu (shapes=False); a session that chose
    it elsewhere sees EfficientNet there instead of an error."""
    import streamlit as st

    from components import classifier as cc

    at = AppTest.from_function(_page_without_shapes, default_timeout=120)
    at.session_state["_lab.classifier"] = cc.SHAPES_MODEL
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text[0].value == "efficientnet_lite0"
    assert st  # imported for the function below


def _page_without_shapes():
    import streamlit as st

    from components.classifier import choose_model

    st.text(choose_model(shapes=False))
