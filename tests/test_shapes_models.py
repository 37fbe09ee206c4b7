"""The project's own models trained on synthetic shapes: ShapesNet (CNN) and the shapes YOLO.

The shipped files (models/trained) are what pages run; the checks they share with the other
shipped models (checksum, recipe, held-out score, short training) are in test_shipped.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from core.shapes import SHAPE_CLASSES, make_classification_set
from models import shapes_cnn, shapes_yolo
from models.shapes_cnn import ShapesNet, load_shapes_cnn, predict_proba, preprocess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def weights_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a host name or open a connection fails the test.

    Attempts are recorded and refused with OSError (what an offline machine does), and the
    test fails afterwards even if the library swallowed the error (ultralytics' URL checks
    catch every exception)."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert attempts == [], f"network access attempted: {attempts}"


# --- ShapesNet -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_cnn() -> tuple[ShapesNet, dict]:
    return load_shapes_cnn(), shapes_cnn.load_metrics()


def test_cnn_layout_exposes_the_layers_pages_hook():
    model = ShapesNet().eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert model.last_conv is convs[-1] is model.features[-1][0]
    seen = {}
    model.features[-1].register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    logits = model(torch.zeros(2, 3, 64, 64))
    assert logits.shape == (2, len(SHAPE_CLASSES))
    assert seen["out"].shape == (2, 64, 8, 8)
    assert isinstance(model.classifier[-1], torch.nn.Linear)


@pytest.mark.parametrize(
    "image, expected",
    [
        (np.zeros((64, 64, 3), np.uint8), (1, 3, 64, 64)),
        (np.zeros((100, 37, 3), np.uint8), (1, 3, 64, 64)),
        (np.zeros((20, 20), np.uint8), (1, 3, 64, 64)),  # grey
        (np.zeros((64, 64, 4), np.uint8), (1, 3, 64, 64)),  # RGBA
        (np.zeros((5, 80, 80, 3), np.uint8), (5, 3, 64, 64)),  # batch
    ],
)
def test_preprocess_shapes(image, expected):
    x = preprocess(image)
    assert tuple(x.shape) == expected and x.dtype == torch.float32


def test_preprocess_normalises_with_the_stored_constants():
    x = preprocess(np.full((64, 64, 3), 255, np.uint8))
    np.testing.assert_allclose(x.numpy(), (1 - 0.5) / 0.25)


def test_cnn_training_is_deterministic():
    a, _ = shapes_cnn.train_shapes_cnn(seed=3, n_train=128, n_test=32, epochs=1)
    b, _ = shapes_cnn.train_shapes_cnn(seed=3, n_train=128, n_test=32, epochs=1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert torch.get_num_threads() >= 1


def test_cnn_beats_chance_by_far(trained_cnn):
    model, metrics = trained_cnn
    assert not model.training
    assert metrics["test_accuracy"] >= 0.9
    # An independent check on images neither training nor the stored metric used.
    x, y = make_classification_set(300, seed=424242)
    probs = predict_proba(model, x)
    assert probs.shape == (300, len(SHAPE_CLASSES))
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(axis=1) == y).mean() >= 0.9
    single = predict_proba(model, x[0])
    assert single.shape == (len(SHAPE_CLASSES),)
    np.testing.assert_allclose(single, probs[0], atol=1e-6)


# --- shapes YOLO: pieces that need no training --------------------------------------------


@pytest.mark.parametrize(
    "box, size, expected",
    [
        ((0, 0, 320, 320), (320, 320), (0.5, 0.5, 1.0, 1.0)),
        ((10, 20, 30, 60), (100, 200), (0.2, 0.2, 0.2, 0.2)),  # (width, height) = (100, 200)
        ((0, 0, 1, 1), (10, 10), (0.05, 0.05, 0.1, 0.1)),
    ],
)
def test_yolo_label_lines_are_normalised_cxcywh(box, size, expected):
    (line,) = shapes_yolo.yolo_label_lines(np.array([box], np.float32), np.array([4]), *size)
    cls, *vals = line.split()
    assert cls == "4"
    np.testing.assert_allclose([float(v) for v in vals], expected, atol=1e-6)


def test_write_dataset_matches_the_scenes(tmp_path):
    yaml = shapes_yolo.write_dataset(tmp_path, n_train=3, n_val=2)
    text = yaml.read_text()
    for i, name in enumerate(SHAPE_CLASSES):
        assert f"{i}: {name}" in text
    import cv2

    for split, seed0, n in (("train", shapes_yolo.TRAIN_SEEDS_START, 3), ("val", shapes_yolo.VAL_SEEDS_START, 2)):
        images = sorted((tmp_path / "images" / split).iterdir())
        assert len(images) == n
        for i, img_path in enumerate(images):
            scene = shapes_yolo.detection_scene(seed0 + i)
            bgr = cv2.imread(str(img_path))
            assert np.array_equal(bgr[..., ::-1], scene.image)  # lossless, channel order right
            rows = np.loadtxt(tmp_path / "labels" / split / f"{img_path.stem}.txt", ndmin=2)
            assert np.array_equal(rows[:, 0], scene.labels)
            assert rows[:, 1:].min() >= 0 and rows[:, 1:].max() <= 1
            h, w = scene.image.shape[:2]
            cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
            back = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
            np.testing.assert_allclose(back, scene.boxes, atol=0.01)


def test_training_and_held_out_seeds_do_not_overlap():
    with pytest.raises(ValueError):
        shapes_yolo.write_dataset(Path("/nonexistent"), n_train=60_000, n_val=1)
    assert min(shapes_yolo.EVAL_SEEDS) >= 100_000


def test_model_yaml_builds_the_yolo11_layers_offline(tmp_path, no_network):
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(str(shapes_yolo.write_model_yaml(tmp_path)), nc=len(SHAPE_CLASSES), verbose=False)
    assert model.yaml["nc"] == len(SHAPE_CLASSES)
    assert type(model.model[-1]).__name__ == "Detect"
    full = DetectionModel("yolo11n.yaml", nc=len(SHAPE_CLASSES), verbose=False)
    assert [type(m).__name__ for m in model.model] == [type(m).__name__ for m in full.model]


# --- shapes YOLO: training ----------------------------------------------------------------


@pytest.mark.slow
def test_yolo_training_pipeline_runs_offline_and_cleans_up(tmp_path, no_network):
    """One tiny epoch: the trainer needs no network, leaves no runs/ folder, restores
    torch's thread count, reports progress and gives the model as it will be shipped."""
    threads = torch.get_num_threads()
    runs_before = (ROOT / "runs").exists()
    reports = []
    yolo, metrics = shapes_yolo.train_shapes_yolo(
        n_train=8, n_val=2, epochs=1, evaluate=False, progress=lambda f, m: reports.append((f, m))
    )
    assert (ROOT / "runs").exists() == runs_before
    assert torch.get_num_threads() == threads
    assert reports[-1][0] == 1.0 and "epoch 1/1" in reports[-1][1]
    assert [yolo.names[i] for i in range(len(yolo.names))] == list(SHAPE_CLASSES)
    assert yolo.ckpt["cvlab"]["format_version"] == shapes_yolo.FORMAT_VERSION
    assert metrics["n_train"] == 8 and len(metrics["epoch_losses"]) == 1
    shapes_yolo.SHIPPED.save(yolo, metrics, tmp_path / "tiny.pt")
    ckpt = torch.load(tmp_path / "tiny.pt", weights_only=True)  # tensors and plain data only
    assert set(ckpt) == {"format_version", "class_names", "task", "yaml", "state_dict", "metrics"}


@pytest.mark.slow
def test_shipped_yolo_gives_what_ultralytics_gives_from_its_own_checkpoint(tmp_path):
    """The weights-only file loads into the same network ultralytics would unpickle: the
    same boxes, scores and classes on held-out scenes."""
    from ultralytics import YOLO

    yolo = shapes_yolo.load_shapes_yolo()
    # ultralytics' own checkpoint format, made from the shipped weights
    ckpt = {"model": yolo.model, "train_args": {"imgsz": 192, "task": "detect"}, "date": None, "version": None}
    torch.save(ckpt, tmp_path / "ultra.pt")
    theirs = YOLO(str(tmp_path / "ultra.pt"), task="detect")
    for seed in shapes_yolo.EVAL_SEEDS[:3]:
        image = shapes_yolo.detection_scene(seed).image
        a = yolo.predict(image, imgsz=192, conf=0.1, verbose=False)[0].boxes.data
        b = theirs.predict(image, imgsz=192, conf=0.1, verbose=False)[0].boxes.data
        torch.testing.assert_close(a, b)
