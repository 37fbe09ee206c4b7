"""A YOLO11 detector trained here on synthetic shapes scenes: the offline stand-in for COCO YOLO.

It is the same ultralytics model type as the real ``yolo11n.pt``: a DetectionModel built
from ultralytics' own ``yolo11n.yaml`` layers (only the width is halved, see
:data:`MODEL_SCALE`), trained by ultralytics' own trainer and loaded back with
``ultralytics.YOLO(path)``, so the Object detection page runs the same code path on it;
only the classes (``SHAPE_CLASSES``) and the weights differ. Nothing is downloaded: the
network is built from the yaml (no pretrained weights) and the data are drawn by
:func:`detection_scene` into a temporary YOLO-format folder. Training from scratch takes
about 17 minutes on one CPU core (``python -m models.train --only shapes-yolo``); the file is
shipped in ``models/trained`` as weights and layer config only (:class:`ShippedYolo`).

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
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence
from unittest import mock

import cv2
import numpy as np

from core.shapes import SHAPE_CLASSES, Scene, make_scene
from models.checkpoints import Shipped
from models.ultra import ultralytics as _ultralytics

if TYPE_CHECKING:  # imported lazily: ultralytics is slow to import
    from ultralytics import YOLO

os.environ.setdefault("YOLO_OFFLINE", "1")

Progress = Callable[[float, str], None]

FORMAT_VERSION = 2  # 2: weights-only file (layer config + state dict), shipped in models/trained
IMGSZ = 192  # training and inference size (scenes are drawn at 320 and downscaled)
# The scenes the detector is trained and judged on: at most 5 shapes, none smaller than 18 %
# of the side, so every shape keeps enough pixels at IMGSZ to be told apart.
SCENE = dict(size=320, n_shapes=(1, 5), min_size=0.18, max_size=0.36)
# yolo11.yaml's [depth, width, max_channels] for scale "n" is [0.50, 0.25, 1024]; half the
# width (a quarter of the compute) is what fits a from-scratch training in ~2 CPU minutes.
MODEL_SCALE = (0.50, 0.125, 256)
TRAIN_SEEDS_START, VAL_SEEDS_START = 0, 50_000  # train scenes 0.., val scenes 50000..
EVAL_SEEDS = tuple(range(900_000, 900_050))  # held out: never used in training





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


def fit_on_shapes(model_yaml: Path, data: Path, runs: Path, *, task: str, report: Progress, seed: int,
                  epochs: int, imgsz: int, batch: int, epoch_losses: list | None = None, **train_overrides):
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
        if epoch_losses is not None:  # the sum of the loss terms, per epoch
            epoch_losses.append(round(sum(float(v) for v in losses.values()), 4))
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


def train_shapes_yolo(*, seed: int = 0, progress: Progress | None = None, quiet: bool = True,
                      n_train: int = 1600, n_val: int = 40, epochs: int = 60, imgsz: int = IMGSZ,
                      batch: int = 16, model_scale: Sequence[float] = MODEL_SCALE, evaluate: bool = True,
                      **train_overrides) -> tuple["YOLO", dict]:
    """Train YOLO11 (from its yaml, no pretrained weights) on shapes; ``(YOLO, metrics)``.

    The model returned is already what :data:`SHIPPED` writes and loads back (ultralytics'
    EMA weights at half precision, see :func:`pack_ultralytics`), and the held-out metrics
    are measured on it."""
    return _train_yolo(SHIPPED, seed=seed, progress=progress, quiet=quiet, n_train=n_train, n_val=n_val,
                       epochs=epochs, imgsz=imgsz, batch=batch, model_scale=model_scale,
                       evaluate=(lambda yolo: evaluate_shapes_yolo(yolo, EVAL_SEEDS, imgsz=imgsz)) if evaluate else None,
                       label_lines=box_label_lines, **train_overrides)


def _train_yolo(shipped: "ShippedYolo", *, seed: int, progress: Progress | None, quiet: bool, n_train: int,
                n_val: int, epochs: int, imgsz: int, batch: int, model_scale: Sequence[float],
                evaluate: Callable[["YOLO"], dict] | None, label_lines: Callable[[Scene], list[str]],
                **train_overrides) -> tuple["YOLO", dict]:
    """The shapes YOLOs' common recipe (detector and segmenter): draw the scenes, fit, pack."""
    report = progress or (lambda frac, msg: None)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"{shipped.name}_") as tmp, _offline_training(quiet=quiet):
        tmp = Path(tmp)
        report(0.0, f"drawing {n_train + n_val} training scenes")
        data = write_dataset(tmp / "data", n_train=n_train, n_val=n_val, label_lines=label_lines)
        model_yaml = write_model_yaml(tmp, scale=model_scale, base=shipped.base_yaml)
        epoch_losses: list[float] = []
        trainer = fit_on_shapes(model_yaml, data, tmp / "runs", task=shipped.task, report=report, seed=seed,
                                epochs=epochs, imgsz=imgsz, batch=batch, epoch_losses=epoch_losses,
                                **train_overrides)
        suffixes = {"(B)": "_box", "(M)": "_mask"} if shipped.task == "segment" else {"(B)": "", "(M)": "_mask"}
        metrics = {
            "train_seconds": round(time.perf_counter() - t0, 1),
            "epochs": epochs, "n_train": n_train, "n_val": n_val, "imgsz": imgsz, "seed": seed,
            "model_scale": list(model_scale), "epoch_losses": epoch_losses,
            # ultralytics' own validation on the val scenes after the last epoch
            **{_metric_name(k, suffixes): round(float(v), 4)
               for k, v in (trainer.metrics or {}).items() if k.startswith("metrics/")},
        }
        yolo = shipped.restore(pack_ultralytics(Path(trainer.last), shipped, metrics))
    if evaluate is not None:  # held-out quality, measured on exactly what is shipped
        metrics.update(evaluate(yolo))
    metrics["total_seconds"] = round(time.perf_counter() - t0, 1)
    yolo.ckpt["cvlab"]["metrics"] = metrics
    return yolo, metrics


def _metric_name(key: str, suffixes: dict[str, str]) -> str:
    name = key.split("/")[-1]
    for tag, suffix in suffixes.items():
        name = name.replace(tag, suffix)
    return name


# --- the shipped file: weights and layer config, no pickled objects ------------------------


def pack_ultralytics(path: Path, shipped: "ShippedYolo", metrics: dict) -> dict:
    """The checkpoint :class:`ShippedYolo` stores, from an ultralytics ``last.pt`` that our
    own trainer has just written (the only pickle this module ever opens): the EMA weights at
    the half precision ultralytics saved them in, the model's layer config and the header."""
    import torch

    from models.checkpoints import jsonable

    ckpt = torch.load(path, map_location="cpu", weights_only=False)  # ultralytics' own file, just written
    model = ckpt.get("ema") or ckpt["model"]
    return {**shipped.header, "yaml": jsonable(model.yaml), "state_dict": _half(model.state_dict()),
            "metrics": jsonable(metrics)}


def _half(state: dict) -> dict:
    return {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in state.items()}


@dataclass(kw_only=True)
class ShippedYolo(Shipped):
    """A shipped ultralytics YOLO: its file holds the layer config (``yaml``) and a state dict,
    read with ``weights_only=True``; loading builds the network from the config, as
    ``YOLO("....yaml")`` does, and loads the weights into it."""

    task: str = "detect"
    base_yaml: str = "yolo11n.yaml"

    def checkpoint(self, yolo, metrics: dict) -> dict:
        from models.checkpoints import jsonable

        return {**self.header, "yaml": jsonable(yolo.model.yaml), "state_dict": _half(yolo.model.state_dict()),
                "metrics": jsonable(metrics)}

    def restore(self, ckpt: dict) -> "YOLO":
        _ultralytics()
        from ultralytics import YOLO
        from ultralytics.utils import YAML

        with tempfile.TemporaryDirectory(prefix="cvlab_yolo_") as tmp:
            cfg = Path(tmp) / f"{Path(self.base_yaml).stem}-shapes.yaml"  # "11n": ultralytics' scale "n"
            YAML.save(cfg, {k: v for k, v in ckpt["yaml"].items() if k != "yaml_file"})
            yolo = YOLO(str(cfg), task=self.task)
        yolo.model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                    for k, v in ckpt["state_dict"].items()})
        yolo.model.names = dict(enumerate(ckpt["class_names"]))
        yolo.model.eval()
        yolo.overrides.update(imgsz=IMGSZ, task=self.task)  # as a checkpoint's training args would
        yolo.ckpt = {"cvlab": {k: ckpt[k] for k in ("format_version", "class_names", "metrics") if k in ckpt}}
        return yolo


def box_fingerprint(n: int = 8) -> str:
    """Digest of the first ``n`` training scenes and their YOLO label rows."""
    from models.checkpoints import fingerprint

    parts = []
    for seed in range(TRAIN_SEEDS_START, TRAIN_SEEDS_START + n):
        scene = detection_scene(seed)
        parts += [scene.image, box_label_lines(scene)]
    return fingerprint(*parts)


RECIPE = dict(seed=0, n_train=1600, n_val=40, epochs=60)

SHIPPED = ShippedYolo(
    name="shapes-yolo", recipe=RECIPE, train=train_shapes_yolo, task="detect", base_yaml="yolo11n.yaml",
    evaluate=lambda yolo: evaluate_shapes_yolo(yolo, EVAL_SEEDS), fingerprint=box_fingerprint, score="recall",
    shown=("precision", "recall", "mAP50"),
    header={"format_version": FORMAT_VERSION, "class_names": list(SHAPE_CLASSES), "task": "detect"},
    quick=dict(n_train=48, n_val=8, epochs=3, evaluate=False),
)


def load_shapes_yolo() -> "YOLO":
    """The shipped shapes detector; raises registry.WeightsUnavailable if it is missing."""
    return SHIPPED.load()


def stored_metrics(yolo: "YOLO") -> dict:
    """The metrics saved with a shipped or freshly trained shapes YOLO ({} for other models)."""
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
