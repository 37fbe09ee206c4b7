"""The project's own models trained on synthetic shapes: ShapesNet (CNN) and the shapes YOLO.

Everything that trains writes into a temporary weights folder (CVLAB_WEIGHTS=tmp_path),
except the session fixture ``trained_shapes_yolo`` (tests/conftest.py): it uses the real default folder so the
expensive detector training happens once per machine and is reused by later runs.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from core.shapes import SHAPE_CLASSES, make_classification_set
from models import shapes_cnn, shapes_yolo
from models.shapes_cnn import ShapesNet, load_or_train_shapes_cnn, predict_proba, preprocess

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
    return shapes_cnn.train_shapes_cnn(seed=0)


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


def test_cnn_cache_round_trips_without_retraining(weights_tmp, trained_cnn, monkeypatch):
    calls = []
    model, metrics = trained_cnn

    def fake_train(**kwargs):
        calls.append(kwargs)
        return model, metrics

    monkeypatch.setattr(shapes_cnn, "train_shapes_cnn", fake_train)
    first = load_or_train_shapes_cnn()
    path = weights_tmp / "trained" / "shapes_cnn.pt"
    assert len(calls) == 1 and path.is_file()
    mtime = path.stat().st_mtime_ns
    assert [p.name for p in path.parent.iterdir()] == ["shapes_cnn.pt"]  # no temp files left

    monkeypatch.setattr(shapes_cnn, "train_shapes_cnn", lambda **k: pytest.fail("retrained"))
    second = load_or_train_shapes_cnn()
    assert path.stat().st_mtime_ns == mtime
    x, _ = make_classification_set(20, seed=9)
    np.testing.assert_allclose(predict_proba(first, x), predict_proba(second, x), atol=1e-6)

    ckpt = torch.load(path, weights_only=True)
    assert ckpt["class_names"] == list(SHAPE_CLASSES) and ckpt["input_size"] == 64
    assert ckpt["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert shapes_cnn.load_metrics()["test_accuracy"] == metrics["test_accuracy"]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: c.update(format_version=-1), id="old-version"),
        pytest.param(lambda c: c.update(class_names=["a", "b"]), id="other-classes"),
        pytest.param(lambda c: c["state_dict"].pop("classifier.2.weight"), id="broken-weights"),
    ],
)
def test_cnn_stale_or_broken_cache_is_retrained(weights_tmp, trained_cnn, monkeypatch, tamper):
    model, metrics = trained_cnn
    path = weights_tmp / "trained" / "shapes_cnn.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = shapes_cnn._checkpoint(model, metrics)
    tamper(ckpt)
    torch.save(ckpt, path)
    calls = []
    monkeypatch.setattr(shapes_cnn, "train_shapes_cnn", lambda **k: calls.append(1) or (model, metrics))
    load_or_train_shapes_cnn()
    assert calls == [1]
    assert torch.load(path, weights_only=True)["format_version"] == shapes_cnn.FORMAT_VERSION


def test_cnn_garbage_file_is_retrained(weights_tmp, trained_cnn, monkeypatch):
    path = weights_tmp / "trained" / "shapes_cnn.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a checkpoint")
    calls = []
    monkeypatch.setattr(shapes_cnn, "train_shapes_cnn", lambda **k: calls.append(1) or trained_cnn)
    load_or_train_shapes_cnn()
    assert calls == [1]


def test_cnn_concurrent_callers_train_once(weights_tmp, trained_cnn, monkeypatch):
    calls = []
    gate = threading.Event()

    def slow_train(**kwargs):
        calls.append(1)
        gate.wait(5)
        return trained_cnn

    monkeypatch.setattr(shapes_cnn, "train_shapes_cnn", slow_train)
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_or_train_shapes_cnn())) for _ in range(3)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(30)
    assert len(calls) == 1 and len(results) == 3


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
def test_yolo_training_pipeline_runs_offline_and_cleans_up(weights_tmp, no_network):
    """One tiny epoch: the trainer needs no network, leaves no runs/ folder, restores
    torch's thread count, reports progress and writes one loadable, self-describing file."""
    from ultralytics import YOLO

    threads = torch.get_num_threads()
    runs_before = (ROOT / "runs").exists()
    reports = []
    dest = weights_tmp / "tiny.pt"
    path, metrics = shapes_yolo.train_shapes_yolo(
        dest=dest, n_train=8, n_val=2, epochs=1, evaluate=False, progress=lambda f, m: reports.append((f, m))
    )
    assert path == dest and dest.is_file()
    assert [p.name for p in weights_tmp.iterdir()] == ["tiny.pt"]
    assert (ROOT / "runs").exists() == runs_before
    assert torch.get_num_threads() == threads
    assert reports[-1][0] == 1.0 and "epoch 1/1" in reports[-1][1]
    yolo = YOLO(str(dest))
    assert [yolo.names[i] for i in range(len(yolo.names))] == list(SHAPE_CLASSES)
    assert yolo.ckpt["cvlab"]["format_version"] == shapes_yolo.FORMAT_VERSION
    assert metrics["n_train"] == 8


@pytest.mark.slow
def test_yolo_fallback_finds_held_out_shapes(trained_shapes_yolo, no_network):
    yolo = trained_shapes_yolo
    assert [yolo.names[i] for i in range(len(yolo.names))] == list(SHAPE_CLASSES)
    result = shapes_yolo.evaluate_shapes_yolo(yolo, shapes_yolo.EVAL_SEEDS, conf=0.25, iou=0.7)
    assert result["n_gt"] > 100
    assert result["recall"] >= 0.8 and result["precision"] >= 0.8, result


@pytest.mark.slow
def test_yolo_cache_is_reused(trained_shapes_yolo, monkeypatch):
    path = shapes_yolo.weights_path()
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(shapes_yolo, "train_shapes_yolo", lambda **k: pytest.fail("retrained"))
    again = shapes_yolo.load_or_train_shapes_yolo()
    assert path.stat().st_mtime_ns == mtime
    assert shapes_yolo.stored_metrics(again)["recall"] >= 0.8
