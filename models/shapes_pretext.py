"""The offline "pretrained" backbone of the Transfer learning page.

Transfer learning needs a network that learnt something *else* first. Offline there are no
ImageNet weights, so the project trains its own shapes CNN (``models.shapes_cnn.ShapesNet``,
the same layers as the offline classifier) on a different task: telling **circles, squares
and triangles** apart. The page then transfers its convolutional features to the three
shapes this network never saw (**star, hexagon, cross**), from a handful of labelled
examples. Trained once per machine (about 10 s on one core), cached under
``models.registry.trained_dir()`` like the other trained models.
"""

from __future__ import annotations

from models.checkpoints import TrainedCache
from models.shapes_cnn import INPUT_SIZE, MEAN, STD, Progress, ShapesNet, train_shapes_cnn
from core.shapes import SHAPE_CLASSES

FORMAT_VERSION = 1
SOURCE_CLASSES: tuple[int, ...] = (0, 1, 2)  # circle, square, triangle: the task it was trained on
TARGET_CLASSES: tuple[int, ...] = (3, 4, 5)  # star, hexagon, cross: never seen, the transfer task
SEED = 11

_CACHE = TrainedCache(
    "shapes-pretext", build=lambda: ShapesNet(num_classes=len(SOURCE_CLASSES)),
    header={"format_version": FORMAT_VERSION, "class_names": [SHAPE_CLASSES[c] for c in SOURCE_CLASSES],
            "input_size": INPUT_SIZE},
    extra={"mean": list(MEAN), "std": list(STD)},
)


def train_shapes_pretext(*, progress: Progress | None = None):
    """(model, metrics): ShapesNet trained on the source classes only (1500 crops, 5 epochs)."""
    return train_shapes_cnn(seed=SEED, n_train=1500, n_test=450, epochs=5, classes=SOURCE_CLASSES,
                            progress=progress)


def load_or_train_shapes_pretext(progress: Progress | None = None) -> ShapesNet:
    """The cached source-task network (eval mode), trained once if missing or stale."""
    return _CACHE.load_or_train(train_shapes_pretext, progress)


def load_metrics() -> dict | None:
    """Metrics stored with the cached network (None if there is no valid cache)."""
    return _CACHE.metrics()
