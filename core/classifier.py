"""One classifier for the pages that look inside a network or test how robust it is.

Feature extraction, Interpretability, Occlusion & illumination, Noise & outliers,
Adversarial attacks and Missing data all need "a trained image classifier, its layers and
its pre-processing". They share this one::

    clf = Classifier.imagenet(model, categories, name=..., title=..., mean=..., std=...)
    clf = Classifier.shapes(shapes_net)                      # the shapes CNN, on synthetic shapes
    probs = clf.probs(rgb)                                   # (C,) softmax, numpy
    clf.top(probs, k=5)                                      # [Prediction(index, name, p)]
    x = clf.tensor(rgb)                                      # (1, 3, S, S) normalised input
    clf.model(x)                                             # logits: what captum attributes
    clf.layers                                               # {"conv1": module, ..., "layer4": module}

* ImageNet mode: EfficientNet-Lite0 (timm's network, always installed), torchvision's
  ResNet-18 or MobileNetV3-Large. :func:`anatomy` names each architecture's stages once
  (the layers pages open, the Grad-CAM layer, the first convolution). The whole image is
  resized to 224 x 224 (no centre crop), so that every saliency or feature map covers the
  whole photo and can be laid over it; torchvision's own evaluation crops the centre
  instead, which can cut an object off.
* Shapes mode: ``models.shapes_cnn.ShapesNet``. It is fully convolutional with a global
  max pool, so it runs at the image's own size (no resizing): on a 160-px canvas with one
  shape it is as accurate as on its 64-px training crops, and its maps are 20 x 20 instead
  of 8 x 8. :func:`shape_sample` makes such a canvas with the true class and box, which is
  what the offline demonstrations and the behavioural tests use.

A shared cached model is used by every session: forward passes here hold the model's lock
(:func:`core.hooks.lock_for`), so a page that hooks the model cannot catch another
session's activations, and run in ``inference_mode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.shapes import SHAPE_CLASSES, make_scene

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SHAPES_MEAN = (0.5, 0.5, 0.5)  # models.shapes_cnn.MEAN / STD (pinned by a test)
SHAPES_STD = (0.25, 0.25, 0.25)
SHAPE_CANVAS = 160  # side of the offline demo image (see shape_sample)
# Images per forward pass in ``probs``: an ImageNet network's activations cost about 16 MB per
# 224-px image (EfficientNet-Lite0, measured), so 8 keep a call under about 130 MB however many
# images it is given (32 at once: 514 MB), at the same speed per image.
FORWARD_BATCH = 8


@dataclass(frozen=True)
class Prediction:
    index: int
    name: str
    probability: float


@dataclass(frozen=True)
class ShapeSample:
    """A synthetic image with one shape: its true class and box (x1, y1, x2, y2)."""

    image: np.ndarray  # (H, W, 3) uint8
    label: int
    box: tuple[int, int, int, int]
    seed: int

    @property
    def name(self) -> str:
        return SHAPE_CLASSES[self.label]


def shape_sample(seed: int, *, size: int = SHAPE_CANVAS, min_size: float = 0.22,
                 max_size: float = 0.34) -> ShapeSample:
    """One shape at a random place on a textured ``size`` x ``size`` canvas (deterministic in
    ``seed``). The shape's diameter is ``min_size``..``max_size`` of the side: the scale of the
    shapes CNN's training crops, on a canvas several times larger, so a map that only lit up
    the centre or the whole image would miss it."""
    scene = make_scene(seed, size=size, n_shapes=(1, 1), min_size=min_size, max_size=max_size)
    if len(scene.labels) != 1:  # placement cannot fail with one shape, but say so if it does
        raise ValueError(f"scene {seed} holds {len(scene.labels)} shapes")
    x1, y1, x2, y2 = (int(round(v)) for v in scene.boxes[0])
    return ShapeSample(scene.image, int(scene.labels[0]), (x1, y1, x2, y2), seed)


@dataclass(frozen=True)
class Anatomy:
    """Where to look inside an ImageNet network: ordered stages (input side first), the usual
    Grad-CAM stage (the last convolutional one) and the first convolution (whose filters are
    small RGB images)."""

    layers: dict
    cam_layer: str
    first_conv: str


def anatomy(model) -> Anatomy:
    """The stages of a ResNet (torchvision), an EfficientNet (timm) or a MobileNetV3 (torchvision).

    * ResNet: ``conv1``, ``layer1`` … ``layer4`` (Grad-CAM: ``layer4``, 7 x 7 at 224 px).
    * EfficientNet (timm): ``conv_stem``, ``stage1`` … ``stage7`` (``blocks[0]`` …
      ``blocks[6]``) and ``head`` (the 1 x 1 head convolution after BatchNorm and its
      activation, 1280 x 7 x 7: the Grad-CAM stage).
    * MobileNetV3 (torchvision): ``conv_stem`` (``features[0][0]``), ``block1`` … and
      ``head`` (the last ``features`` entry)."""
    if all(hasattr(model, n) for n in ("conv1", "layer1", "layer4")):
        layers = {"conv1": model.conv1, "layer1": model.layer1, "layer2": model.layer2,
                  "layer3": model.layer3, "layer4": model.layer4}
        return Anatomy(layers, "layer4", "conv1")
    if all(hasattr(model, n) for n in ("conv_stem", "blocks", "bn2")):
        layers = {"conv_stem": model.conv_stem}
        layers.update({f"stage{i + 1}": stage for i, stage in enumerate(model.blocks)})
        layers["head"] = model.bn2
        return Anatomy(layers, "head", "conv_stem")
    features = getattr(model, "features", None)
    if features is not None and len(features) > 2 and hasattr(features[0], "__getitem__"):
        layers = {"conv_stem": features[0][0]}
        layers.update({f"block{i}": features[i] for i in range(1, len(features) - 1)})
        layers["head"] = features[-1]
        return Anatomy(layers, "head", "conv_stem")
    raise ValueError(f"no known stages for {type(model).__name__}: add it to core.classifier.anatomy")


@dataclass(frozen=True)
class Classifier:
    """A trained classifier with what pages need to run and open it up."""

    name: str  # registry name: "efficientnet_lite0", "resnet18", "mobilenet_v3_large" or "shapes-cnn"
    title: str
    kind: Literal["imagenet", "shapes"]
    model: object  # torch.nn.Module in eval mode, shared (cached)
    categories: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int | None  # square side the image is resized to; None = the image's own size
    layers: dict = field(default_factory=dict)  # ordered {name: module}, input side first
    cam_layer: str = ""  # the usual Grad-CAM layer (the last conv block)
    first_conv: str = ""  # name of the first nn.Conv2d in layers (its filters are images)

    # --- builders --------------------------------------------------------------------
    @classmethod
    def imagenet(cls, model, categories, *, name: str = "resnet18", title: str = "ResNet-18 (ImageNet)",
                 mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD,
                 input_size: int = 224) -> "Classifier":
        """An ImageNet classifier in eval mode; its stages come from :func:`anatomy`, its
        pre-processing (``mean``, ``std``, ``input_size``) from the registry's description."""
        parts = anatomy(model)
        return cls(name, title, "imagenet", model.eval(), tuple(categories), tuple(mean), tuple(std),
                   int(input_size), parts.layers, cam_layer=parts.cam_layer, first_conv=parts.first_conv)

    @classmethod
    def shapes(cls, model, *, name: str = "shapes-cnn",
               title: str = "Shapes CNN (trained here)") -> "Classifier":
        """``models.shapes_cnn.ShapesNet``: blocks ``block1``..``block4`` (block4 = Grad-CAM layer)."""
        layers = {"conv1": model.features[0][0]}
        layers.update({f"block{i + 1}": block for i, block in enumerate(model.features)})
        return cls(name, title, "shapes", model.eval(), tuple(SHAPE_CLASSES), SHAPES_MEAN, SHAPES_STD,
                   None, layers, cam_layer="block4", first_conv="conv1")

    # --- pre-processing ----------------------------------------------------------------
    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """The RGB uint8 image the network sees (its pixels line up with every map)."""
        import cv2

        rgb = np.ascontiguousarray(rgb[..., :3])
        if self.input_size is None or rgb.shape[:2] == (self.input_size, self.input_size):
            return rgb
        shrink = min(rgb.shape[:2]) > self.input_size
        return cv2.resize(rgb, (self.input_size, self.input_size),
                          interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def normalise(self, rgb01):
        """(N, 3, H, W) float tensor in [0, 1] -> the model's input (differentiable)."""
        import torch

        mean = torch.tensor(self.mean, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
        return (rgb01 - mean) / std

    def unit(self, rgb: np.ndarray):
        """RGB uint8 image (H, W, 3) or batch (N, H, W, 3) -> (N, 3, S, S) float tensor in [0, 1]
        at the network's size (before normalisation: attacks and noise work here)."""
        import torch

        batch = rgb if rgb.ndim == 4 else rgb[None]
        sized = np.stack([self.resize(img) for img in batch])
        return torch.from_numpy(sized).permute(0, 3, 1, 2).float().div(255.0)

    def tensor(self, rgb: np.ndarray):
        """The normalised network input for an RGB uint8 image or batch: (N, 3, S, S)."""
        return self.normalise(self.unit(rgb))

    def to_rgb(self, unit) -> np.ndarray:
        """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> RGB uint8 image (H, W, 3)."""
        t = unit[0] if unit.ndim == 4 else unit
        return (t.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)

    # --- inference ---------------------------------------------------------------------
    def probs_from_unit(self, unit) -> np.ndarray:
        """Softmax probabilities (N, C) for a [0, 1] batch (N, 3, H, W), ``FORWARD_BATCH`` images per pass."""
        import torch

        from core.hooks import lock_for

        device = next(self.model.parameters()).device  # the shared model may sit on a GPU
        with lock_for(self.model), torch.inference_mode():
            logits = torch.cat([self.model(self.normalise(unit[i:i + FORWARD_BATCH].to(device)))
                                for i in range(0, len(unit), FORWARD_BATCH)])
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def probs(self, rgb: np.ndarray) -> np.ndarray:
        """Softmax probabilities: (C,) for one RGB uint8 image, (N, C) for a batch."""
        out = self.probs_from_unit(self.unit(rgb))
        return out if rgb.ndim == 4 else out[0]

    def top(self, probs: np.ndarray, k: int = 5) -> list[Prediction]:
        """The ``k`` most probable classes of one probability vector, most probable first."""
        order = np.argsort(-probs, kind="stable")[:k]
        return [Prediction(int(i), self.categories[int(i)], float(probs[int(i)])) for i in order]

    def index_of(self, name: str) -> int:
        return self.categories.index(name)
