"""core.classifier: the classifier the interpretability and robustness pages share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import classifier as C
from core.shapes import SHAPE_CLASSES


@pytest.fixture(scope="module")
def shapes_clf():
    from models.shapes_cnn import load_or_train_shapes_cnn

    return C.Classifier.shapes(load_or_train_shapes_cnn())


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
