"""A small semantic segmentation net trained here on synthetic shapes scenes (no download).

It is the offline stand-in for DeepLabV3: the same idea at toy scale. Every pixel gets one
of ``SEG_CLASSES`` (0 = background, 1..6 = ``core.shapes.SHAPE_CLASSES``). Layout::

    stem      Conv 3x3 stride 2          128 -> 64 px, 16 channels   (encoder)
    enc1      Conv 3x3                   64 px, 16 channels          (skip to the decoder)
    enc2      MaxPool, Conv 3x3          32 px, 32 channels          (skip to the decoder)
    enc3      MaxPool, 2 x Conv 3x3      16 px, 48 channels
    aspp      parallel atrous 3x3 convs (dilation 1, 2, 4) + image-level pooling,
              concatenated and fused by a 1x1 conv: DeepLab's ASPP in miniature
    dec2      upsample x2, concat enc2, Conv 3x3 -> 32 px, 24 channels
    dec1      upsample x2, concat enc1, Conv 3x3 -> 64 px, 16 channels
    head      Conv 1x1 -> 7 class logits at 64 px, upsampled bilinearly to the input size

86 k parameters; the channels are widest where the maps are smallest, so a training step
costs little. Trained with per-pixel cross-entropy (background down-weighted, it is ~85 %
of the pixels) on scenes drawn by ``core.shapes.make_scene`` at 256 px and shrunk to
128 px (the label of a pixel is 1 + the class of the instance visible there, 0 elsewhere):
about two minutes on 2 idle cores, one torch thread. Its mean IoU on 200 held-out scenes
(seeds from ``EVAL_SEED_START`` on, never used in training), measured through the same
upsample-to-image-size path the page uses, is stored with the shipped file
(``models/trained/manifest.json``).
"""

from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.runtime import torch_threads
from core.shapes import SHAPE_CLASSES, Scene, make_scene
from models.checkpoints import Shipped

Progress = Callable[[float, str], None]

FORMAT_VERSION = 1
SEG_CLASSES: tuple[str, ...] = ("background", *SHAPE_CLASSES)
INPUT_SIZE = 128  # the net sees scenes shrunk to this long side
# The scenes it is trained and judged on (drawn at 256 px, twice the input size).
SCENE = dict(size=256, n_shapes=(1, 4), min_size=0.22, max_size=0.42)
MEAN = (0.5, 0.5, 0.5)  # pixel / 255, then (x - MEAN) / STD
STD = (0.25, 0.25, 0.25)
BACKGROUND_WEIGHT = 0.25
TRAIN_SEED_START = 0
EVAL_SEED_START, N_EVAL = 100_000, 200  # held-out scenes: never drawn for training



def _conv(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class MiniASPP(nn.Module):
    """Atrous spatial pyramid pooling: the same features seen through several dilations
    (receptive fields) plus a global average, concatenated and fused by a 1x1 conv."""

    def __init__(self, c_in: int, c_branch: int, c_out: int, rates=(1, 2, 4)):
        super().__init__()
        self.branches = nn.ModuleList(_conv(c_in, c_branch, dilation=r) for r in rates)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, c_branch, 1), nn.ReLU())
        self.fuse = _conv(c_branch * (len(rates) + 1), c_out, k=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [b(x) for b in self.branches]
        parts.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.fuse(torch.cat(parts, dim=1))


class ShapesSegNet(nn.Module):
    """Tiny encoder-decoder (U-Net skips + mini ASPP); logits at the input's size."""

    def __init__(self, num_classes: int = len(SEG_CLASSES)):
        super().__init__()
        self.stem = _conv(3, 16, stride=2)
        self.enc1 = _conv(16, 16)
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), _conv(16, 32))
        self.enc3 = nn.Sequential(nn.MaxPool2d(2), _conv(32, 48), _conv(48, 48))
        self.aspp = MiniASPP(48, 16, 32)
        self.dec2 = _conv(32 + 32, 24)
        self.dec1 = _conv(24 + 16, 16)
        self.head = nn.Conv2d(16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) for normalised images (N, 3, H, W), H and W multiples of 8."""
        e1 = self.enc1(self.stem(x))
        e2 = self.enc2(e1)
        y = self.aspp(self.enc3(e2))
        y = self.dec2(torch.cat([F.interpolate(y, size=e2.shape[2:], mode="bilinear", align_corners=False), e2], 1))
        y = self.dec1(torch.cat([F.interpolate(y, size=e1.shape[2:], mode="bilinear", align_corners=False), e1], 1))
        return F.interpolate(self.head(y), size=x.shape[2:], mode="bilinear", align_corners=False)


# --- data ----------------------------------------------------------------------------------


def segmentation_scene(seed: int) -> Scene:
    """The scene with this seed from the distribution the net is trained and judged on."""
    return make_scene(seed, **SCENE)


def scene_class_map(scene: Scene) -> np.ndarray:
    """(H, W) uint8 per-pixel labels: 1 + the class of the visible instance, 0 elsewhere."""
    out = np.zeros(scene.image.shape[:2], np.uint8)
    for mask, label in zip(scene.masks, scene.labels, strict=True):
        out[mask] = 1 + int(label)
    return out


def input_size(height: int, width: int) -> tuple[int, int]:
    """(h, w) the net runs at: long side INPUT_SIZE, both sides multiples of 8."""
    scale = INPUT_SIZE / max(height, width)
    return max(8, round(height * scale / 8) * 8), max(8, round(width * scale / 8) * 8)


def shrink(rgb: np.ndarray) -> np.ndarray:
    """The RGB image at the net's working size (area averaging)."""
    h, w = input_size(*rgb.shape[:2])
    if (h, w) == rgb.shape[:2]:
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (N, H, W, 3) uint8 -> normalised float (N, 3, H, W)."""
    batch = rgb if rgb.ndim == 4 else rgb[None]
    x = torch.from_numpy(np.array(batch, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0  # writable copy
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def preprocess(rgb: np.ndarray) -> torch.Tensor:
    """One RGB uint8 image of any size -> (1, 3, h, w) input of the net (long side 128)."""
    return to_tensor(shrink(rgb))


def make_set(seeds) -> tuple[np.ndarray, np.ndarray]:
    """Training tensors for ``seeds``: images (N, 128, 128, 3) uint8, labels (N, 128, 128) uint8."""
    images, labels = [], []
    for seed in seeds:
        scene = segmentation_scene(int(seed))
        h, w = input_size(*scene.image.shape[:2])
        images.append(shrink(scene.image))
        labels.append(cv2.resize(scene_class_map(scene), (w, h), interpolation=cv2.INTER_NEAREST))
    return np.stack(images), np.stack(labels)


# --- evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def predict_logits(model: nn.Module, rgb: np.ndarray) -> torch.Tensor:
    """Logits (C, H, W) at the image's own size: the net at 128 px, upsampled bilinearly."""
    logits = model(preprocess(rgb))
    return F.interpolate(logits, size=rgb.shape[:2], mode="bilinear", align_corners=False)[0]


def evaluate(model: nn.Module, seeds=range(EVAL_SEED_START, EVAL_SEED_START + N_EVAL)) -> dict:
    """Dataset mean IoU (background included) on full-size scenes, the page's own pipeline."""
    from core.semantic import confusion, iou_per_class

    was_training = model.training
    model.eval()
    total = np.zeros((len(SEG_CLASSES), len(SEG_CLASSES)), np.int64)
    for seed in seeds:
        scene = segmentation_scene(int(seed))
        pred = predict_logits(model, scene.image).argmax(0).numpy()
        total += confusion(pred, scene_class_map(scene), len(SEG_CLASSES))
    model.train(was_training)
    ious = iou_per_class(total)
    return {
        "mean_iou": float(np.nanmean(ious)),
        "iou_per_class": {name: (None if np.isnan(v) else round(float(v), 4)) for name, v in zip(SEG_CLASSES, ious)},
        "pixel_accuracy": float(np.trace(total) / max(total.sum(), 1)),
        "n_eval": len(seeds),
        "eval_seeds": [int(seeds[0]), int(seeds[-1])],
    }


# --- training -----------------------------------------------------------------------------------


def train_shapes_seg(*, seed: int = 0, n_train: int = 1000, epochs: int = 8, batch_size: int = 16,
                     lr: float = 6e-3, progress: Progress | None = None,
                     n_eval: int = N_EVAL) -> tuple[ShapesSegNet, dict]:
    """Train the net; returns (model in eval mode, metrics). Deterministic for a seed."""
    t0 = time.perf_counter()
    report = progress or (lambda frac, msg: None)
    report(0.0, "drawing training scenes")
    x_img, y_np = make_set(range(TRAIN_SEED_START + seed * n_train, TRAIN_SEED_START + (seed + 1) * n_train))
    x, y = torch.from_numpy(x_img), torch.from_numpy(y_np)  # uint8; made float/long per batch
    report(0.1, "training")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        model = ShapesSegNet()
        # Background is ~80 % of the pixels: down-weight it so the shapes drive the loss.
        weight = torch.tensor([BACKGROUND_WEIGHT] + [1.0] * len(SHAPE_CLASSES))
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        per_epoch = (n_train + batch_size - 1) // batch_size
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch, pct_start=0.15)
        epoch_losses = []
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n_train, generator=gen)
            total = 0.0
            for i in range(0, n_train, batch_size):
                idx = order[i:i + batch_size]
                xb, yb = to_tensor(x[idx].numpy()), y[idx].long()
                if torch.rand(1, generator=gen).item() < 0.5:  # flips: shapes have no handedness here
                    xb, yb = xb.flip(-1), yb.flip(-1)
                if torch.rand(1, generator=gen).item() < 0.5:
                    xb, yb = xb.flip(-2), yb.flip(-2)
                loss = F.cross_entropy(model(xb), yb, weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            epoch_losses.append(round(total / n_train, 4))
            report(0.1 + 0.8 * (epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}: loss {total / n_train:.3f}")
        report(0.92, f"measuring mean IoU on {n_eval} held-out scenes")
        metrics = evaluate(model, range(EVAL_SEED_START, EVAL_SEED_START + n_eval))
    metrics.update(n_train=n_train, epochs=epochs, seed=seed, parameters=sum(p.numel() for p in model.parameters()),
                   train_seconds=round(time.perf_counter() - t0, 1), epoch_losses=epoch_losses)
    report(1.0, f"done: mean IoU {metrics['mean_iou']:.2f}")
    return model.eval(), metrics


# --- the shipped file ------------------------------------------------------------------------


def scenes_fingerprint(seed: int = 0, n_train: int = 1000) -> str:
    """Digest of the first 8 training scenes (images and label maps) the generator draws."""
    from models.checkpoints import fingerprint

    start = TRAIN_SEED_START + seed * n_train
    return fingerprint(*make_set(range(start, start + 8)))


RECIPE = dict(seed=0, n_train=1000, epochs=8)

SHIPPED = Shipped(
    name="shapes-seg", recipe=RECIPE, train=train_shapes_seg, build=lambda: ShapesSegNet(),
    evaluate=lambda model: {"mean_iou": evaluate(model)["mean_iou"]},
    fingerprint=lambda: scenes_fingerprint(RECIPE["seed"], RECIPE["n_train"]), score="mean_iou",
    header={"format_version": FORMAT_VERSION, "class_names": list(SEG_CLASSES), "input_size": INPUT_SIZE,
            "scene": dict(SCENE)},
    extra={"mean": list(MEAN), "std": list(STD)},
    quick=dict(n_train=64, epochs=2, n_eval=8),
)


def load_shapes_seg() -> ShapesSegNet:
    """The shipped net (eval mode); raises registry.WeightsUnavailable if it is missing."""
    return SHIPPED.load()


def load_metrics() -> dict:
    """The held-out metrics recorded for the shipped net."""
    return SHIPPED.metrics()
