"""Squeeze-and-excitation and CBAM-style attention inside the shapes CNN (Attention page, Q41).

* :class:`SqueezeExcite` - channel attention: ``x * sigmoid(W2 relu(W1 avgpool(x)))``; its
  ``gate`` (an ``nn.Sigmoid``) outputs the (N, C, 1, 1) channel weights, so a forward hook on
  ``gate`` sees exactly the numbers that multiply the features.
* :class:`SpatialAttention` - CBAM's spatial half: ``x * sigmoid(conv7x7([mean_c x, max_c x]))``;
  its ``gate`` outputs the (N, 1, H, W) map in [0, 1].
* :class:`CBAM` - channel (CBAM pools avg and max through one shared MLP) then spatial.
* :func:`make_net` - Normalise -> ShapesNet's four conv blocks with an attention module after
  the blocks in ``SITES``; "plain" inserts nothing. The conv blocks and the head are built first
  from the same seed, so the plain and the attention net start from identical conv weights.
* :func:`train` / :func:`compare` - a seeded loop with livetrain's discipline (forked RNG, own
  shuffling generator, one torch thread, deadline per batch, progress every 0.5 s).

Inputs are [0, 1] crops (N, 3, 64, 64) from :func:`core.livetrain.shapes_data`.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from core.livetrain import normalise_layer

KINDS = ("plain", "se", "cbam")
KIND_TITLES = {"plain": "plain CNN", "se": "CNN + squeeze-and-excitation", "cbam": "CNN + CBAM (channel + spatial)"}
SITES = (1, 3)  # attention after block 2 (16 x 16 maps, 16 ch at width 8) and block 4 (8 x 8, 64 ch)
REDUCTION = 4
# The comparison's recipe (compare()'s defaults; the page's controls start here)
KIND = "cbam"
N_TRAIN = 1000
EPOCHS = 6


def _modules():
    """The torch classes, built on first use (torch is imported lazily)."""
    global SqueezeExcite, SpatialAttention, CBAM, AttentionNet
    if AttentionNet is not None:
        return
    import torch
    from torch import nn

    class _SqueezeExcite(nn.Module):
        """Channel attention (Hu et al. 2018). ``pool="avg"`` is SE; ``"avg+max"`` is CBAM's channel half."""

        def __init__(self, channels: int, reduction: int = REDUCTION, pool: str = "avg"):
            super().__init__()
            hidden = max(channels // reduction, 2)
            self.pool = pool
            self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
            self.gate = nn.Sigmoid()

        def forward(self, x):
            z = self.mlp(x.mean(dim=(2, 3)))
            if self.pool == "avg+max":
                z = z + self.mlp(x.amax(dim=(2, 3)))
            w = self.gate(z[:, :, None, None])
            return x * w

    class _SpatialAttention(nn.Module):
        """CBAM's spatial attention (Woo et al. 2018): one 7x7 conv over [channel mean, channel max]."""

        def __init__(self, kernel: int = 7):
            super().__init__()
            self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)
            self.gate = nn.Sigmoid()

        def forward(self, x):
            s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
            return x * self.gate(self.conv(s))

    class _CBAM(nn.Module):
        def __init__(self, channels: int, reduction: int = REDUCTION):
            super().__init__()
            self.channel = _SqueezeExcite(channels, reduction, pool="avg+max")
            self.spatial = _SpatialAttention()

        def forward(self, x):
            return self.spatial(self.channel(x))


    class _AttentionNet(nn.Module):
        """ShapesNet's blocks with attention after ``sites``; ``attention[str(i)]`` follows block i."""

        def __init__(self, kind: str = "cbam", width: int = 8, sites=SITES, num_classes: int = 6):
            super().__init__()
            from core.shapes_net import ShapesNet

            if kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}")
            base = ShapesNet(num_classes=num_classes, width=width)  # conv blocks + head first (same init)
            self.kind, self.sites = kind, tuple(sites)
            self.normalise = normalise_layer()
            self.blocks = base.features
            self.classifier = base.classifier
            channels = [width, 2 * width, 4 * width, 8 * width]
            self.attention = nn.ModuleDict()
            if kind != "plain":
                for i in self.sites:
                    self.attention[str(i)] = (_SqueezeExcite(channels[i]) if kind == "se"
                                              else _CBAM(channels[i]))

        def forward(self, x):
            x = self.normalise(x)
            for i, block in enumerate(self.blocks):
                x = block(x)
                if str(i) in self.attention:
                    x = self.attention[str(i)](x)
            return self.classifier(x)

        def gates(self) -> dict:
            """{"block2 channel": module, "block2 spatial": module, ...}: the gates to hook."""
            out = {}
            for i, att in self.attention.items():
                name = f"block{int(i) + 1}"
                if isinstance(att, _SqueezeExcite):
                    out[f"{name} channel"] = att.gate
                else:
                    out[f"{name} channel"] = att.channel.gate
                    out[f"{name} spatial"] = att.spatial.gate
            return out

    SqueezeExcite, SpatialAttention, CBAM = _SqueezeExcite, _SpatialAttention, _CBAM
    AttentionNet = _AttentionNet


SqueezeExcite = SpatialAttention = CBAM = AttentionNet = None  # built by _modules()


def make_net(kind: str = "cbam", *, seed: int = 0, width: int = 8, sites=SITES):
    """A fresh net (seeded; the global RNG is restored afterwards)."""
    import torch

    _modules()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AttentionNet(kind, width=width, sites=sites)


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def architecture(width: int = 8, sites=SITES) -> list[dict]:
    """One row per kind: parameters in total and in the attention modules."""
    rows = []
    for kind in KINDS:
        net = make_net(kind, width=width, sites=sites)
        extra = sum(p.numel() for p in net.attention.parameters())
        rows.append({"model": KIND_TITLES[kind], "kind": kind, "parameters": count_params(net),
                     "attention parameters": int(extra)})
    plain = rows[0]["parameters"]
    for r in rows:
        r["overhead"] = r["parameters"] / plain - 1.0
    return rows


def train(kind: str, data, *, epochs: int = 5, seed: int = 0, width: int = 8, batch_size: int = 32,
          lr: float = 1e-2, progress: Callable | None = None, deadline=None, span=(0.0, 1.0),
          label: str = "") -> tuple[object, list[dict]]:
    """Train a fresh ``kind`` net on ``data`` (core.livetrain.ShapesData) with the shared loop
    (core.livetrain.train: AdamW, one-cycle, seeded order). Returns (model in eval mode, history
    [{"epoch", "loss", "test_accuracy"}]). ``span`` maps this run's progress into a part of the
    caller's bar. Deterministic in its arguments."""
    from core.livetrain import train as train_live

    report = progress or (lambda *a, **k: None)
    lo, hi = span

    def part(fraction, text, partial=None):
        report(lo + (hi - lo) * fraction, f"{label}{text}", partial=partial)

    run = train_live(data, epochs=epochs, seed=seed, width=width, batch_size=batch_size, lr=lr,
                     model=make_net(kind, seed=seed, width=width), progress=part, deadline=deadline, partial=True)
    return run.model, run.history


def state_to_numpy(model) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_net(kind: str, state: dict, width: int = 8):
    import torch

    net = make_net(kind, width=width)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return net.eval()


def compare(*, kind: str = KIND, n_train: int = N_TRAIN, n_test: int = 400, epochs: int = EPOCHS, seed: int = 0,
            width: int = 8, batch_size: int = 16, progress: Callable | None = None, deadline=None) -> dict:
    """The plain net and the ``kind`` net, same seed, data and order. Plain, picklable result:
    {"curve": [{"epoch", "model", "test_accuracy"}], "final": {title: acc}, "seconds": {...},
    "state": {kind: numpy state dict}, "params": {...}}."""
    from core.livetrain import shapes_data

    report = progress or (lambda *a, **k: None)
    t0 = time.perf_counter()
    report(0.0, "drawing the crops")
    data = shapes_data(n_train=n_train, n_test=n_test, seed=seed)
    out = {"curve": [], "final": {}, "seconds": {}, "state": {}, "params": {}, "kind": kind,
           "settings": {"n_train": n_train, "n_test": n_test, "epochs": epochs, "seed": seed, "width": width,
                        "batch_size": batch_size}}
    for j, k in enumerate(("plain", kind)):
        title = KIND_TITLES[k]
        t = time.perf_counter()

        def relay(frac, text, partial=None, _title=title):
            rows = list(out["curve"]) + [{"epoch": r["epoch"], "model": _title, "test_accuracy": r["test_accuracy"]}
                                         for r in (partial or [])]
            report(frac, text, partial=rows)

        model, hist = train(k, data, epochs=epochs, seed=seed, width=width, batch_size=batch_size, progress=relay, deadline=deadline,
                            span=(0.05 + 0.475 * j, 0.05 + 0.475 * (j + 1)), label=f"{title}: ")
        out["curve"] += [{"epoch": r["epoch"], "model": title, "test_accuracy": r["test_accuracy"]} for r in hist]
        out["final"][k] = hist[-1]["test_accuracy"]
        out["seconds"][k] = time.perf_counter() - t
        out["state"][k] = state_to_numpy(model)
        out["params"][k] = count_params(model)
    out["total_seconds"] = time.perf_counter() - t0
    return out


# --- attention on one image ----------------------------------------------------------------------


def crop64(rgb: np.ndarray, box=None, *, margin: float = 0.35) -> np.ndarray:
    """A 64 x 64 RGB crop: a square around ``box`` (x1, y1, x2, y2) grown by ``margin`` (the
    scale of the training crops), or the centre square of the image when ``box`` is None."""
    import cv2

    h, w = rgb.shape[:2]
    if box is None:
        side = min(h, w)
        cx, cy = w / 2, h / 2
    else:
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = int(round(min(side, h, w)))
    x0 = int(round(np.clip(cx - side / 2, 0, w - side)))
    y0 = int(round(np.clip(cy - side / 2, 0, h - side)))
    crop = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side, :3])
    return cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA if side > 64 else cv2.INTER_LINEAR)


def explain(model, rgb64: np.ndarray) -> dict:
    """Run ``model`` on one 64-px RGB uint8 crop with forward hooks on every gate.

    Returns {"probs": (6,), "gates": {name: array}} where a channel gate is (C,) and a
    spatial gate (H, W) - exactly the tensors that multiplied the features in this pass."""
    import torch

    from core.hooks import capture

    x = torch.from_numpy(np.ascontiguousarray(rgb64[..., :3])).permute(2, 0, 1)[None].float() / 255.0
    with capture(model, model.gates()) as seen, torch.inference_mode():
        probs = torch.softmax(model(x), dim=1)[0].numpy()
    gates = {}
    for name, t in seen.activations.items():
        a = t[0].numpy()
        gates[name] = a.reshape(-1) if name.endswith("channel") else a[0]
    return {"probs": probs, "gates": gates}


def upsample(m: np.ndarray, size: int = 64) -> np.ndarray:
    import cv2

    return cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


def overlay(rgb: np.ndarray, amap: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The map (values in [0, 1], any size) as a colour heat map over ``rgb`` (uint8)."""
    import cv2

    h, w = rgb.shape[:2]
    m = cv2.resize(amap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.clip(m * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return np.clip((1 - alpha) * rgb[..., :3] + alpha * heat, 0, 255).astype(np.uint8)


def mass_inside(amap: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Mean attention on the shape's pixels and on the background (map upsampled to the mask)."""
    import cv2

    m = cv2.resize(amap.astype(np.float32), mask.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return float(m[mask].mean()), float(m[~mask].mean())
