"""The offline "pretrained" backbone of the Transfer learning page.

Transfer learning needs a network that learnt something *else* first. Offline there are no
ImageNet weights, so the project trains its own shapes CNN (``models.shapes_cnn.ShapesNet``,
the same layers as the offline classifier) on a different task: telling **circles, squares
and triangles** apart. The page then transfers its convolutional features to the three
shapes this network never saw (**star, hexagon, cross**), from a handful of labelled
examples. Trained here (about 6 s on one core) and shipped in ``models/trained/`` like the
other trained models.
"""

from __future__ import annotations

from models.checkpoints import Shipped
from models.shapes_cnn import (INPUT_SIZE, MEAN, STD, Progress, ShapesNet, crops_fingerprint, evaluate_shapes_cnn,
                               train_shapes_cnn)
from core.shapes import SHAPE_CLASSES

FORMAT_VERSION = 1
SOURCE_CLASSES: tuple[int, ...] = (0, 1, 2)  # circle, square, triangle: the task it was trained on
TARGET_CLASSES: tuple[int, ...] = (3, 4, 5)  # star, hexagon, cross: never seen, the transfer task
RECIPE = dict(seed=11, n_train=1500, n_test=450, epochs=5)

def train_shapes_pretext(*, progress: Progress | None = None, **recipe):
    """(model, metrics): ShapesNet trained on the source classes only."""
    return train_shapes_cnn(**{**RECIPE, **recipe}, classes=SOURCE_CLASSES, progress=progress)


SHIPPED = Shipped(
    name="shapes-pretext", recipe=RECIPE, train=train_shapes_pretext,
    build=lambda: ShapesNet(num_classes=len(SOURCE_CLASSES)),
    evaluate=lambda model: evaluate_shapes_cnn(model, seed=RECIPE["seed"], n_test=RECIPE["n_test"],
                                               classes=SOURCE_CLASSES),
    fingerprint=lambda: crops_fingerprint(seed=RECIPE["seed"], classes=SOURCE_CLASSES), score="test_accuracy",
    header={"format_version": FORMAT_VERSION, "class_names": [SHAPE_CLASSES[c] for c in SOURCE_CLASSES],
            "input_size": INPUT_SIZE},
    extra={"mean": list(MEAN), "std": list(STD)},
    quick=dict(n_train=192, n_test=48, epochs=2),
)


def load_shapes_pretext() -> ShapesNet:
    """The shipped source-task network (eval mode)."""
    return SHIPPED.load()


def load_metrics() -> dict:
    """The held-out metrics recorded for the shipped network."""
    return SHIPPED.metrics()
