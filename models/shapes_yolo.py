"""A YOLO11 detector trained here on synthetic shapes scenes: the offline stand-in for COCO YOLO.

It is the same ultralytics model type as the real ``yolo11n.pt``: a DetectionModel built
from ultralytics' own ``yolo11n.yaml`` layers (only the width is halved, see
:data:`MODEL_SCALE`), trained by ultralytics' own trainer and loaded back with
``ultralytics.YOLO(path)``, so the Object detection page runs the same code path on it;
only the classes (``SHAPE_CLASSES``) and the weights differ. Nothing is downloaded: the
network is built from the yaml (no pretrained weights) and the data are drawn by
:func:`detection_scene` into a temporary YOLO-format folder. Training from scratch takes
about 10 minutes on 2 CPU cores (one torch thread), once per machine.

Offline pitfalls of ultralytics (8.4) and what this module does about them:

* ``ONLINE`` is probed once, at ``import ultralytics`` (DNS look-ups); ``YOLO_OFFLINE=1``
  makes it False (no telemetry, no hub, no update checks). ``models.ultra`` sets it
  (``setdefault``) before importing ultralytics, and turns settings sync off.
* ``check_det_dataset`` always calls ``check_font("Arial.ttf")``, which does an HTTP HEAD
  for the font when it is not installed, even with ``plots=False``; it is replaced by a
  no-op while training (nothing is plotted).
* the AMP check downloads ``yolo11n.pt``: ``amp=False`` (and CPU, where it is skipped anyway);
  ``plots=False`` avoids the font download for plots.
* ``select_device("cpu")`` (train and predict) calls ``torch.set_num_threads(cpu_count - 1)``
  for the whole process and never restores it; training restores the previous count.
* runs go to a temporary ``project`` folder (never ``./runs``), removed afterwards;
  ``cache="disk"`` because ultralytics warns that ``cache="ram"`` is not deterministic.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence
from unittest import mock

import cv2
import numpy as np

from core.shapes import SHAPE_CLASSES, Scene, make_scene
from models.registry import atomic_torch_save, trained_dir
from models.ultra import ultralytics as _ultralytics

if TYPE_CHECKING:  # imported lazily: ultralytics is slow to import
    from ultralytics import YOLO

os.environ.setdefault("YOLO_OFFLINE", "1")

Progress = Callable[[float, str], None]

FORMAT_VERSION = 1
FILE_NAME = "shapes_yolo.pt"
IMGSZ = 192  # training and inference size (scenes are drawn at 320 and downscaled)
# The scenes the detector is trained and judged on: at most 5 shapes, none smaller than 18 %
# of the side, so every shape keeps enough pixels at IMGSZ to be told apart.
SCENE = dict(size=320, n_shapes=(1, 5), min_size=0.18, max_size=0.36)
# yolo11.yaml's [depth, width, max_channels] for scale "n" is [0.50, 0.25, 1024]; half the
# width (a quarter of the compute) is what fits a from-scratch training in ~2 CPU minutes.
MODEL_SCALE = (0.50, 0.125, 256)
TRAIN_SEEDS_START, VAL_SEEDS_START = 0, 50_000  # train scenes 0.., val scenes 50000..
EVAL_SEEDS = tuple(range(900_000, 900_050))  # held out: never used in training

_LOCK = threading.Lock()




# --- dataset ------------------------------------------------------------------------------


def yolo_label_lines(boxes: np.ndarray, labels: np.ndarray, width: int, height: int) -> list[str]:
    """YOLO txt rows ``cls cx cy w h`` (normalised to [0, 1]) for xyxy pixel boxes."""
    rows = []
    for (x0, y0, x1, y1), cls in zip(boxes, labels, strict=True):
        cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
        rows.append(f"{int(cls)} {cx:.6f} {cy:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")
    return rows


def detection_scene(seed: int) -> Scene:
    """The scene with this seed from the distribution the shapes detector is trained on."""
    return make_scene(seed, **SCENE)


def box_label_lines(scene: Scene) -> list[str]:
    """A scene's YOLO detection label rows (one ``cls cx cy w h`` per instance)."""
    h, w = scene.image.shape[:2]
    return yolo_label_lines(scene.boxes, scene.labels, w, h)


def write_dataset(root: Path, *, n_train: int, n_val: int,
                  label_lines: Callable[[Scene], list[str]] = box_label_lines) -> Path:
    """Draw scenes into ``root/images|labels/train|val`` and return the data yaml's path.

    Train scenes use seeds ``0 .. n_train-1``, val scenes ``50000 ..``; anything from
    100000 on (tests, :data:`EVAL_SEEDS`) is never seen in training. ``label_lines`` turns
    a scene into its label file's rows (boxes here; polygons for the segmenter).
    """
    splits = {"train": (TRAIN_SEEDS_START, n_train), "val": (VAL_SEEDS_START, n_val)}
    if n_train > VAL_SEEDS_START - TRAIN_SEEDS_START or n_val > 50_000:
        raise ValueError("too many scenes: the train/val seed ranges would overlap held-out seeds")
    for split, (seed0, n) in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            scene = detection_scene(seed0 + i)
            cv2.imwrite(str(root / "images" / split / f"{i:05d}.png"), scene.image[..., ::-1])
            lines = label_lines(scene)
            (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n" if lines else "")
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(SHAPE_CLASSES))
    yaml = root / "shapes.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return yaml


# --- training -----------------------------------------------------------------------------


@contextmanager
def _offline_training(*, quiet: bool = True) -> Iterator[None]:
    """Train without the font look-up in check_det_dataset, without progress bars and log
    lines (``quiet``), and restore torch's thread count afterwards."""
    import torch
    _ultralytics()
    import ultralytics.data.utils as data_utils
    from ultralytics.utils import LOGGER

    threads, level = torch.get_num_threads(), LOGGER.level
    try:
        if quiet:  # ultralytics' progress bars switch themselves off above INFO
            LOGGER.setLevel(logging.WARNING)
        with mock.patch.object(data_utils, "check_font", lambda *a, **k: None):
            yield
    finally:
        torch.set_num_threads(threads)
        LOGGER.setLevel(level)


def write_model_yaml(folder: Path, *, scale: Sequence[float] = MODEL_SCALE, base: str = "yolo11n.yaml") -> Path:
    """``base`` (yolo11n.yaml: the layers ultralytics ships; yolo11n-seg.yaml for the
    segmenter) with ``nc`` = 6 and scale "n" set to ``scale``."""
    _ultralytics()
    from ultralytics.nn.tasks import yaml_model_load
    from ultralytics.utils import YAML

    cfg = yaml_model_load(base)  # packaged with ultralytics: no download
    cfg = {k: v for k, v in cfg.items() if k not in ("scale", "yaml_file")}
    cfg["nc"] = len(SHAPE_CLASSES)
    cfg["scales"] = {"n": [float(scale[0]), float(scale[1]), int(scale[2])]}
    path = folder / f"{Path(base).stem}-shapes.yaml"  # the "11n" in the name selects scale "n"
    YAML.save(path, cfg)
    return path


def weights_path() -> Path:
    """Where the trained detector is cached (inside ``models.registry.trained_dir()``)."""
    return trained_dir() / FILE_NAME


def fit_on_shapes(model_yaml: Path, data: Path, runs: Path, *, task: str, report: Progress, seed: int,
                  epochs: int, imgsz: int, batch: int, **train_overrides):
    """Ultralytics' own trainer on a shapes dataset from ``model_yaml`` (no pretrained weights),
    with the offline-safe arguments; runs go to ``runs``. Returns the finished trainer.

    Call it inside :func:`_offline_training`. ``report(fraction, text)`` is told after each epoch."""
    _ultralytics()
    from ultralytics import YOLO

    model = YOLO(str(model_yaml), task=task)

    def on_epoch_end(trainer) -> None:
        done = trainer.epoch + 1
        losses = trainer.label_loss_items(trainer.tloss) if isinstance(trainer.tloss, dict) else {}
        text = ", ".join(f"{k.split('/')[-1]} {float(v):.2f}" for k, v in losses.items())
        report(done / trainer.epochs, f"epoch {done}/{trainer.epochs}: {text}")

    model.add_callback("on_train_epoch_end", on_epoch_end)
    args = dict(data=str(data), imgsz=imgsz, epochs=epochs, batch=batch, nbs=batch, workers=0,
                device="cpu", plots=False, amp=False, val=False, project=str(runs),
                name="train", exist_ok=True, seed=seed, deterministic=True, verbose=False,
                pretrained=False, cache="disk", optimizer="AdamW", lr0=0.004, warmup_epochs=1,
                # cache="disk": .npy next to the temp images; "ram" caching is not deterministic.
                # Mosaic and strong rescaling shrink shapes to a few pixels at this size.
                close_mosaic=0, mosaic=0.0, scale=0.2, fliplr=0.5, patience=epochs, save_period=-1)
    args.update(train_overrides)
    model.train(**args)
    return model.trainer


def train_shapes_yolo(*, seed: int = 0, progress: Progress | None = None, dest: Path | None = None,
                      quiet: bool = True,
                      n_train: int = 800, n_val: int = 40, epochs: int = 30, imgsz: int = IMGSZ,
                      batch: int = 16, model_scale: Sequence[float] = MODEL_SCALE, evaluate: bool = True,
                      **train_overrides) -> tuple[Path, dict]:
    """Train YOLO11 (from its yaml, no pretrained weights) on shapes; write it atomically to ``dest``.

    Returns ``(dest, metrics)``; ``dest`` defaults to :func:`weights_path`. The checkpoint is
    ultralytics' own ``last.pt`` (optimizer stripped) with an extra ``"cvlab"`` entry holding
    the format version, class names and metrics, so ``ultralytics.YOLO(dest)`` loads it and
    ``YOLO(dest).ckpt["cvlab"]`` describes it.
    """
    import torch

    _ultralytics()
    from ultralytics import YOLO

    dest = Path(dest) if dest is not None else weights_path()
    report = progress or (lambda frac, msg: None)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shapes_yolo_") as tmp, _offline_training(quiet=quiet):
        tmp = Path(tmp)
        report(0.0, f"drawing {n_train + n_val} training scenes")
        data = write_dataset(tmp / "data", n_train=n_train, n_val=n_val)
        trainer = fit_on_shapes(write_model_yaml(tmp, scale=model_scale), data, tmp / "runs", task="detect",
                                report=report, seed=seed, epochs=epochs, imgsz=imgsz, batch=batch,
                                **train_overrides)
        weights = Path(trainer.last)
        metrics = {
            "train_seconds": round(time.perf_counter() - t0, 1),
            "epochs": epochs, "n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed,
            "model_scale": list(model_scale),
            **{k.split("/")[-1].replace("(B)", ""): round(float(v), 4)
               for k, v in (trainer.metrics or {}).items() if k.startswith("metrics/")},
        }
        ckpt = torch.load(weights, map_location="cpu", weights_only=False)  # our own file, just written
        ckpt["cvlab"] = {"format_version": FORMAT_VERSION, "class_names": list(SHAPE_CLASSES),
                         "metrics": metrics}
        if evaluate:  # held-out quality, measured on the exact file we are about to publish
            torch.save(ckpt, tmp / "final.pt")
            metrics.update(evaluate_shapes_yolo(YOLO(str(tmp / "final.pt"), task="detect"), EVAL_SEEDS))
        metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
        atomic_torch_save(ckpt, dest)
    return dest, metrics


def _load(path: Path, *, task: str = "detect", format_version: int = FORMAT_VERSION) -> "YOLO | None":
    """The cached model, or None if it is absent, unreadable, of another task or from another
    code version (``format_version``)."""
    if not path.is_file():
        return None
    _ultralytics()
    from ultralytics import YOLO

    try:
        yolo = YOLO(str(path), task=task)
    except Exception:  # a corrupt or foreign file is simply retrained
        return None
    meta = (getattr(yolo, "ckpt", None) or {}).get("cvlab") or {}
    names = tuple(yolo.names[i] for i in sorted(yolo.names))
    if meta.get("format_version") != format_version or names != SHAPE_CLASSES or yolo.task != task:
        return None
    return yolo


def load_or_train_shapes_yolo(progress: Progress | None = None) -> "YOLO":
    """The cached shapes detector, trained once (even with concurrent callers) if missing or stale."""
    with _LOCK:
        path = weights_path()
        yolo = _load(path)
        if yolo is None:
            train_shapes_yolo(progress=progress, dest=path)
            yolo = _load(path)
            if yolo is None:
                raise RuntimeError(f"trained shapes detector at {path} could not be loaded back")
        return yolo


def stored_metrics(yolo: "YOLO") -> dict:
    """The metrics saved with a detector from :func:`train_shapes_yolo` ({} for other models)."""
    return dict(((getattr(yolo, "ckpt", None) or {}).get("cvlab") or {}).get("metrics") or {})


# --- evaluation ---------------------------------------------------------------------------


def evaluate_shapes_yolo(yolo: "YOLO", seeds: Iterable[int] = EVAL_SEEDS, conf: float = 0.25,
                         iou: float = 0.7, *, iou_thr: float = 0.5, imgsz: int = IMGSZ) -> dict:
    """Recall and precision at IoU >= ``iou_thr`` (class must match) on ``detection_scene(seed)``,
    through the Object detection page's own path (candidates, then ``core.detection.select``)."""
    from core.detection import match_to_truth, select
    from models.detectors import UltralyticsDetector

    detector = UltralyticsDetector(yolo, name="shapes-yolo", title="shapes", imgsz=imgsz)
    tp = n_pred = n_gt = 0
    for seed in seeds:
        scene = detection_scene(seed)
        dets = select(detector.candidates(scene.image).detections, conf=conf, iou=iou).kept
        tp += match_to_truth(dets, scene.boxes, scene.labels, iou=iou_thr).true_positives
        n_pred += len(dets)
        n_gt += len(scene.boxes)
    return {"recall": tp / max(n_gt, 1), "precision": tp / max(n_pred, 1) if n_pred else 0.0,
            "true_positives": tp, "n_pred": n_pred, "n_gt": n_gt}
