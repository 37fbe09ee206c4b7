"""ShapesNet: the tiny CNN that classifies 64x64 shape crops, and its pre-processing.

Architecture and input conventions only (no weights, no files): ``models.shapes_cnn`` trains,
ships and loads it and re-exports everything here; core modules that build fresh copies (live
training, transfer learning, attention, multi-label) import it from here. Layout::

    model.features      nn.Sequential of 4 conv blocks (Conv2d -> BatchNorm2d -> ReLU [-> MaxPool2d])
                        with 8, 16, 32, 64 channels; 64x64 -> 32 -> 16 -> 8 (the last block does not pool)
    model.features[-1]  the last conv block, output (N, 64, 8, 8): the usual Grad-CAM target layer
    model.features[-1][0] == model.last_conv   the last nn.Conv2d
    model.classifier    global max pool -> flatten -> Linear(64, 6)

The head pools with a global *max* ("is this corner/edge detector firing anywhere?"):
on these crops it learns several times faster than average pooling, whose mean over the
8x8 grid is diluted by background cells. Grad-CAM works unchanged on ``features[-1]``.
ReLUs are not in-place, so forward/backward hooks on any layer are safe.

The shipped checkpoint's state-dict keys (``features.0.0.weight`` ...) follow from this
layout: changing it breaks ``models/trained/shapes_cnn.pt``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from core.shapes import SHAPE_CLASSES

INPUT_SIZE = 64
MEAN = (0.5, 0.5, 0.5)  # pixel / 255, then (x - MEAN) / STD
STD = (0.25, 0.25, 0.25)
TRAIN_SEED_OFFSET, TEST_SEED_OFFSET = 0, 1_000_003  # held-out images come from another seed


def _block(c_in: int, c_out: int, *, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                               nn.BatchNorm2d(c_out), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ShapesNet(nn.Module):
    """Four conv blocks and a linear head; ~25 k parameters."""

    def __init__(self, num_classes: int = len(SHAPE_CLASSES), width: int = 8):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _block(3, w, pool=True),  # 64 -> 32
            _block(w, 2 * w, pool=True),  # 32 -> 16
            _block(2 * w, 4 * w, pool=True),  # 16 -> 8
            _block(4 * w, 8 * w, pool=False),  # 8x8 feature maps (Grad-CAM target)
        )
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes))

    @property
    def last_conv(self) -> nn.Conv2d:
        """The last convolution (``features[-1][0]``)."""
        return self.features[-1][0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for normalised images (N, 3, 64, 64)."""
        return self.classifier(self.features(x))


# --- pre-processing and inference ------------------------------------------------------


def preprocess(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 image (H, W, 3), grey (H, W) or batch (N, H, W, 3) -> float tensor (N, 3, 64, 64)."""
    batch = rgb if rgb.ndim == 4 else rgb[None]  # one image: (H, W, 3) or grey (H, W)
    out = []
    for img in batch:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = img[..., :3]  # drop alpha if any
        if img.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
            shrink = min(img.shape[:2]) > INPUT_SIZE
            img = cv2.resize(img, (INPUT_SIZE, INPUT_SIZE),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out.append(img)
    x = torch.from_numpy(np.ascontiguousarray(np.stack(out))).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def predict_proba(model: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Class probabilities: (C,) for one image, (N, C) for a batch (N, H, W, 3)."""
    was_training = model.training
    model.eval()
    probs = torch.softmax(model(preprocess(rgb)), dim=1).numpy()
    model.train(was_training)
    return probs if rgb.ndim == 4 else probs[0]
