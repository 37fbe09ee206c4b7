"""A small U-Net trained live on synthetic microscopy-like cell images (Medical imaging page).

    images, masks = cell_set(200, seed=0)              # (N, 64, 64) uint8 gray, (N, 64, 64) bool
    net = make_unet(seed=0, skips=True)                # or skips=False: same parameters, no skip features
    run = train(n_train=200, epochs=5, seed=0, skips=True)
    run["history"]                                     # [{"epoch", "loss", "dice", "boundary_dice"}]
    prob = predict(net, gray_image)                    # (H, W) float probabilities, any size

* Data: bright ellipses (cells) of varied size and contrast, some touching, under an uneven
  illumination field, blurred and noisy. The masks are exact (the ellipse equations at pixel
  centres); image ``i`` of a set depends only on ``(seed, i)``.
* ``skips=False`` feeds the decoder zeros where the encoder's features would go: the
  parameter count, the initial weights and the compute are identical, only the information
  path differs.
* ``dice`` and ``boundary_dice`` (Dice restricted to a band of +-``BAND`` px around the true
  boundary, where the missing fine detail of a skip-less net shows).
* Deterministic training: a forked global RNG, its own generator for shuffling, one torch thread.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Callable

import numpy as np

from core.jobs import Pacer

SIZE = 64  # training images are SIZE x SIZE
BAND = 2  # boundary band half-width (px) of boundary_dice
TRAIN_SEED0, TEST_SEED0 = 5_100_000, 5_200_000  # data seeds: disjoint train / held-out sets
N_TEST = 48
# The training recipe (train() and compare() defaults; the page's controls start here)
N_TRAIN = 200
EPOCHS = 5
THRESHOLD = 0.5  # probability at or above which a pixel is "cell" (held-out scores, the page's default)


# --- synthetic cells ------------------------------------------------------------------------------

def cell_params(seed: int, i: int, size: int = SIZE) -> list[tuple[float, float, float, float, float, float]]:
    """The cells of image ``i``: (cx, cy, a, b, angle, brightness) per cell; a third of them are
    placed touching an earlier cell."""
    rng = np.random.default_rng([int(seed), int(i), 1])
    s = size / 64.0
    cells: list[tuple] = []
    for _ in range(int(rng.integers(3, 9))):
        a = rng.uniform(3.5, 10.0) * s
        b = a * rng.uniform(0.6, 1.0)
        angle = rng.uniform(0.0, np.pi)
        if cells and rng.random() < 0.35:  # touching a previous cell
            px, py, pa, pb, *_ = cells[int(rng.integers(len(cells)))]
            d = rng.uniform(0.0, 2 * np.pi)
            r = (0.5 * (pa + pb) + 0.5 * (a + b)) * rng.uniform(0.85, 1.0)
            cx, cy = px + r * np.cos(d), py + r * np.sin(d)
        else:
            cx, cy = rng.uniform(0.0, size), rng.uniform(0.0, size)
        cells.append((float(cx), float(cy), float(a), float(b), float(angle), float(rng.uniform(0.45, 1.0))))
    return cells


def _ellipse_r2(cell, size: int) -> np.ndarray:
    """Normalised squared radius of every pixel centre (<= 1 inside the ellipse)."""
    cx, cy, a, b, angle = cell[:5]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dx, dy = xx - cx, yy - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = dx * c + dy * s, -dx * s + dy * c
    return (u / a) ** 2 + (v / b) ** 2


def cells_mask(cells, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    for cell in cells:
        mask |= _ellipse_r2(cell, size) <= 1.0
    return mask


def make_cell_image(seed: int, i: int, size: int = SIZE, *, clean: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(gray uint8 image, exact bool mask) of image ``i``. ``clean=True``: the cells on a flat
    background with no illumination, blur or noise (what the mask describes)."""
    from scipy.ndimage import gaussian_filter

    cells = cell_params(seed, i, size)
    rng = np.random.default_rng([int(seed), int(i), 2])
    signal = np.zeros((size, size))
    for cell in cells:
        r2 = _ellipse_r2(cell, size)
        inside = r2 <= 1.0
        # a cell is brighter in its middle than at its rim (a dim rim makes the boundary hard)
        value = np.where(inside, cell[5] * (1.0 - 0.35 * np.clip(r2, 0, 1)), 0.0)
        signal = np.maximum(signal, value)
    mask = cells_mask(cells, size)
    if clean:
        img = 0.1 + 0.9 * signal
        return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), mask
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    t = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(t) * (xx - 0.5) + np.sin(t) * (yy - 0.5))  # in about [-0.7, 0.7]
    hx, hy = rng.uniform(0.2, 0.8, 2)
    spot = np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * rng.uniform(0.15, 0.4) ** 2))
    light = 0.7 + rng.uniform(0.2, 0.5) * ramp + rng.uniform(0.0, 0.4) * spot
    background = rng.uniform(0.08, 0.25) + 0.06 * gaussian_filter(rng.standard_normal((size, size)), 3.0 * size / 64)
    img = light * (background + 0.75 * signal)
    img = gaussian_filter(img, rng.uniform(0.6, 1.4) * size / 64)
    img = img + rng.standard_normal((size, size)) * rng.uniform(0.02, 0.07)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), mask


def cell_set(n: int, *, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images and masks: image i is ``make_cell_image(seed, i)``."""
    pairs = [make_cell_image(seed, i, size) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# --- metrics ----------------------------------------------------------------------------------------

def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|P∩T| / (|P| + |T|) of two binary masks; 1.0 when both are empty."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def boundary_band(truth: np.ndarray, width: int = BAND) -> np.ndarray:
    """Pixels within ``width`` px (chessboard distance) of the true mask's boundary, both sides."""
    from scipy.ndimage import binary_dilation, binary_erosion

    t = np.asarray(truth, bool)
    st = np.ones((3, 3), bool)
    grown = binary_dilation(t, st, iterations=width)
    shrunk = binary_erosion(t, st, iterations=width, border_value=1)
    return grown & ~shrunk


def boundary_dice(pred: np.ndarray, truth: np.ndarray, width: int = BAND) -> float:
    """Dice counted only inside :func:`boundary_band` of the truth (where outlines are decided)."""
    band = boundary_band(truth, width)
    return dice(np.asarray(pred, bool) & band, np.asarray(truth, bool) & band)


def mean_scores(preds: np.ndarray, truths: np.ndarray) -> dict[str, float]:
    return {"dice": float(np.mean([dice(p, t) for p, t in zip(preds, truths)])),
            "boundary_dice": float(np.mean([boundary_dice(p, t) for p, t in zip(preds, truths)]))}


def error_overlay(gray: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """RGB: the image dimmed, correct cell pixels white-ish green, misses (false negatives) blue,
    false alarms (false positives) red."""
    g = np.asarray(gray, np.float32)[..., None].repeat(3, axis=2) * 0.45
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    out = g.copy()
    out[p & t] = 0.4 * out[p & t] + 0.6 * np.array([90, 220, 90])
    out[~p & t] = np.array([40, 110, 255])
    out[p & ~t] = np.array([255, 50, 50])
    return out.clip(0, 255).astype(np.uint8)


def mask_overlay(gray: np.ndarray, prob: np.ndarray, threshold: float) -> np.ndarray:
    """RGB: the gray image with the thresholded mask tinted yellow and its outline red."""
    from scipy.ndimage import binary_erosion

    g = np.asarray(gray, np.float32)[..., None].repeat(3, axis=2)
    m = np.asarray(prob) >= threshold
    out = g.copy()
    out[m] = 0.55 * out[m] + 0.45 * np.array([255, 220, 0])
    edge = m & ~binary_erosion(m, np.ones((3, 3), bool), border_value=1)
    out[edge] = np.array([255, 40, 40])
    return out.clip(0, 255).astype(np.uint8)


def prob_image(prob: np.ndarray) -> np.ndarray:
    """Probability map as a gray RGB image (0 black, 1 white)."""
    v = (np.clip(prob, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)


# --- the network ----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _classes():
    import torch
    from torch import nn

    def double_conv(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class Standardise(nn.Module):
        """Per-image zero mean, unit variance: brightness and contrast of a new photo do not matter."""

        def forward(self, x):
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            s = x.std(dim=(1, 2, 3), keepdim=True)
            return (x - m) / (s + 1e-3)

    class Skip(nn.Module):
        """The skip connection of one level: passes the encoder's features, or zeros when off."""

        def __init__(self, enabled: bool):
            super().__init__()
            self.enabled = enabled

        def forward(self, x):
            return x if self.enabled else torch.zeros_like(x)

        def extra_repr(self):
            return f"enabled={self.enabled}"

    class UNet(nn.Module):
        """Encoder (3 x double conv + max pool), bottleneck, decoder (transposed conv up x2,
        concatenate the skip, double conv) and a 1x1 conv to one logit per pixel."""

        def __init__(self, width: int = 8, depth: int = 3, skips: bool = True):
            super().__init__()
            self.skips, self.depth = skips, depth
            ch = [width * 2 ** k for k in range(depth + 1)]
            self.norm = Standardise()
            self.down = nn.ModuleList([double_conv(1 if k == 0 else ch[k - 1], ch[k]) for k in range(depth)])
            self.pool = nn.MaxPool2d(2)
            self.bottleneck = double_conv(ch[depth - 1], ch[depth])
            self.up = nn.ModuleList([nn.ConvTranspose2d(ch[k + 1], ch[k], 2, stride=2) for k in reversed(range(depth))])
            self.skip = nn.ModuleList([Skip(skips) for _ in reversed(range(depth))])
            self.dec = nn.ModuleList([double_conv(2 * ch[k], ch[k]) for k in reversed(range(depth))])
            self.head = nn.Conv2d(ch[0], 1, 1)

        def forward(self, x):
            h = self.norm(x)
            feats = []
            for k, block in enumerate(self.down):
                h = block(h)
                feats.append(h)
                h = self.pool(h)
            h = self.bottleneck(h)
            for up, skip, dec, f in zip(self.up, self.skip, self.dec, reversed(feats)):
                h = dec(torch.cat([up(h), skip(f)], dim=1))
            return self.head(h)

    return UNet


def make_unet(seed: int = 0, *, skips: bool = True, width: int = 8, depth: int = 3):
    """A fresh U-Net; the same seed gives the same initial weights with or without skips."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _classes()(width=width, depth=depth, skips=skips)


def n_parameters(net) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def layer_shapes(net, size: int = SIZE) -> list[dict]:
    """Every block's real output shape for a (1, 1, size, size) input, read with forward hooks:
    [{"name", "kind", "level", "channels", "height", "width", "params"}] in execution order."""
    import torch

    rows: list[dict] = []
    named = [(f"enc{k + 1}", "encoder", k, m) for k, m in enumerate(net.down)]
    named += [(f"pool{k + 1}", "pool", k, net.pool) for k in range(net.depth)]
    named += [("bottleneck", "bottleneck", net.depth, net.bottleneck)]
    for j, (up, dec) in enumerate(zip(net.up, net.dec)):
        k = net.depth - 1 - j
        named += [(f"up{k + 1}", "up", k, up), (f"dec{k + 1}", "decoder", k, dec)]
    named += [("head", "head", 0, net.head)]
    seen: list[tuple] = []
    handles = []
    for name, kind, level, module in named:
        if module is net.pool:
            continue
        handles.append(module.register_forward_hook(
            lambda m, i, o, name=name, kind=kind, level=level: seen.append((name, kind, level, tuple(o.shape), m))))
    pool_calls: list[tuple] = []
    handles.append(net.pool.register_forward_hook(lambda m, i, o: pool_calls.append(tuple(o.shape))))
    was = net.training
    net.eval()
    try:
        with torch.inference_mode():
            net(torch.zeros(1, 1, size, size))
    finally:
        for h in handles:
            h.remove()
        net.train(was)
    for name, kind, level, shape, module in seen:
        rows.append({"name": name, "kind": kind, "level": level, "channels": shape[1], "height": shape[2],
                     "width": shape[3], "params": int(sum(p.numel() for p in module.parameters()))})
    for k, shape in enumerate(pool_calls):
        rows.append({"name": f"pool{k + 1}", "kind": "pool", "level": k, "channels": shape[1], "height": shape[2],
                     "width": shape[3], "params": 0})
    return rows


def architecture_dot(net, size: int = SIZE) -> str:
    """Graphviz DOT of the U-Net with each block's real output shape for a size x size input;
    skip edges dashed (and labelled "zeros") when the net has its skips off."""
    rows = {r["name"]: r for r in layer_shapes(net, size)}

    def label(r):
        return f"{r['name']}\\n{r['channels']}×{r['height']}×{r['width']}"

    colours = {"encoder": "#bbdefb", "bottleneck": "#ffe082", "decoder": "#c8e6c9", "up": "#e1bee7",
               "pool": "#eeeeee", "head": "#ffccbc"}
    lines = ["digraph unet {", "  rankdir=TB; nodesep=0.3; ranksep=0.25;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             f'  input [label="input\\n1×{size}×{size}", fillcolor="#ffffff"];']
    for name, r in rows.items():
        lines.append(f'  {name} [label="{label(r)}", fillcolor="{colours[r["kind"]]}"];')
    d = net.depth
    chain = ["input"]
    for k in range(1, d + 1):
        chain += [f"enc{k}", f"pool{k}"]
    chain += ["bottleneck"]
    for k in range(d, 0, -1):
        chain += [f"up{k}", f"dec{k}"]
    chain += ["head"]
    for a, b in zip(chain, chain[1:]):
        lines.append(f"  {a} -> {b};")
    for k in range(1, d + 1):
        lines.append(f"  {{ rank=same; enc{k}; dec{k}; }}")
        if net.skips:
            lines.append(f'  enc{k} -> dec{k} [style=bold, color="#1565c0", label=" skip (concat)", fontsize=9, '
                         'constraint=false];')
        else:
            lines.append(f'  enc{k} -> dec{k} [style=dashed, color="#9e9e9e", label=" zeros", fontsize=9, '
                         'fontcolor="#9e9e9e", constraint=false];')
    lines.append("}")
    return "\n".join(lines)


def state_to_numpy(net) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def load_unet(state: dict, *, skips: bool, width: int = 8, depth: int = 3):
    import torch

    net = _classes()(width=width, depth=depth, skips=skips)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return net.eval()


# --- training ---------------------------------------------------------------------------------------

def _tensors(images: np.ndarray, masks: np.ndarray):
    import torch

    x = torch.from_numpy(images).float().div(255.0)[:, None]
    y = torch.from_numpy(masks.astype(np.float32))[:, None]
    return x, y


def predict_batch(net, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Probabilities (N, H, W) for gray uint8 images (N, H, W) whose sides are multiples of 8."""
    import torch

    x = torch.from_numpy(np.asarray(images)).float().div(255.0)[:, None]
    net.eval()
    with torch.inference_mode():
        out = [torch.sigmoid(net(x[i:i + batch]))[:, 0] for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def dice_bce_loss(logits, target):
    """BCE + (1 - soft Dice over the batch): BCE gives every pixel a gradient, Dice keeps the
    (minority) foreground from being ignored."""
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = logits.sigmoid()
    inter = (p * target).sum()
    soft = (2 * inter + 1.0) / (p.sum() + target.sum() + 1.0)
    return bce + (1.0 - soft)


def train(*, n_train: int = N_TRAIN, epochs: int = EPOCHS, seed: int = 0, skips: bool = True, n_test: int = N_TEST,
          batch_size: int = 8, lr: float = 1e-2, width: int = 8, data=None,
          progress: Callable | None = None, deadline=None, label: str = "") -> dict:
    """Train a fresh U-Net on ``n_train`` synthetic images, held-out scores after every epoch.

    Returns {"history": [{"epoch", "loss", "dice", "boundary_dice"}], "state" (numpy state dict),
    "params", "seconds", "skips"}. ``data``: (train images, train masks, test images, test masks)
    to skip generating them. ``progress(frac, text, partial=history)`` at least every 0.5 s."""
    import torch

    from core.runtime import torch_threads

    t0 = time.perf_counter()
    report = progress or (lambda *a, **k: None)
    if data is None:
        data = make_data(n_train, n_test, seed)
    tr_x, tr_y = _tensors(data[0], data[1])
    te_img, te_mask = data[2], data[3]
    net = make_unet(seed, skips=skips, width=width)
    n = len(tr_x)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    pace = Pacer(deadline)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        # at least 10 scheduled steps: OneCycleLR divides by zero when its warm-up is under 2 steps
        steps = max(10, epochs * ((n + batch_size - 1) // batch_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            net.train()
            for i in range(0, n, batch_size):
                if pace.due():
                    report((epoch + i / n) / epochs, f"{label}epoch {epoch + 1}/{epochs}: {i}/{n} images",
                           partial=list(history))
                idx = order[i:i + batch_size]
                flip = torch.randint(0, 4, (1,), generator=gen).item()  # cheap augmentation: flips
                x, y = tr_x[idx], tr_y[idx]
                if flip & 1:
                    x, y = x.flip(3), y.flip(3)
                if flip & 2:
                    x, y = x.flip(2), y.flip(2)
                loss = dice_bce_loss(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            pred = predict_batch(net, te_img) >= THRESHOLD
            row = {"epoch": epoch + 1, "loss": total / n, **mean_scores(pred, te_mask)}
            history.append(row)
            pace.reset()
            report((epoch + 1) / epochs, f"{label}epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f}, "
                   f"held-out Dice {row['dice']:.3f}", partial=list(history))
    net.eval()
    return {"history": history, "state": state_to_numpy(net), "params": n_parameters(net),
            "seconds": time.perf_counter() - t0, "skips": skips}


def make_data(n_train: int, n_test: int, seed: int):
    tr = cell_set(n_train, seed=TRAIN_SEED0 + seed)
    te = cell_set(n_test, seed=TEST_SEED0 + seed)
    return tr[0], tr[1], te[0], te[1]


def compare(*, n_train: int = N_TRAIN, epochs: int = EPOCHS, seed: int = 0, n_test: int = N_TEST, n_show: int = 4,
            progress: Callable | None = None, deadline=None) -> dict:
    """The same U-Net trained twice, with and without skips, on the same data, initial weights
    and batch order. Returns {"curve": rows for a chart, "final", "state", "params", "seconds",
    "examples": {"images", "truth", "with skips", "without skips"} (held-out, first ``n_show``)}."""
    report = progress or (lambda *a, **k: None)
    data = make_data(n_train, n_test, seed)
    names = {True: "with skips", False: "without skips"}
    runs, curve = {}, []
    for j, skips in enumerate((True, False)):
        def sub(frac, text, partial=None, j=j, skips=skips):
            rows = curve + [{"model": names[skips], **r} for r in (partial or [])]
            report((j + frac) / 2, text, partial=rows)

        runs[skips] = train(n_train=n_train, epochs=epochs, seed=seed, skips=skips, data=data, progress=sub,
                            deadline=deadline, label=f"{names[skips]}: ")
        curve += [{"model": names[skips], **r} for r in runs[skips]["history"]]
    examples = {"images": data[2][:n_show], "truth": data[3][:n_show]}
    for skips, r in runs.items():
        net = load_unet(r["state"], skips=skips)
        examples[names[skips]] = predict_batch(net, data[2][:n_show])
    return {"curve": curve,
            "final": {names[s]: r["history"][-1] if r["history"] else {} for s, r in runs.items()},
            "state": {names[s]: r["state"] for s, r in runs.items()},
            "params": {names[s]: r["params"] for s, r in runs.items()},
            "seconds": {names[s]: r["seconds"] for s, r in runs.items()},
            "examples": examples}


# --- any image --------------------------------------------------------------------------------------

def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB uint8 image (or the image itself if already 2-D)."""
    a = np.asarray(rgb)
    if a.ndim == 2:
        return a.astype(np.uint8)
    g = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return g.round().clip(0, 255).astype(np.uint8)


def prepare_gray(rgb: np.ndarray, long_side: int, *, invert: bool = False) -> np.ndarray:
    """Gray, resized so the long side is ``long_side`` (cells of the training size then fit),
    optionally inverted (dark cells on a light background)."""
    import cv2

    g = to_gray(rgb)
    h, w = g.shape
    scale = long_side / max(h, w)
    size = (max(8, int(round(w * scale))), max(8, int(round(h * scale))))
    g = cv2.resize(g, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return 255 - g if invert else g


def predict(net, gray: np.ndarray) -> np.ndarray:
    """Probability map (same H, W as ``gray``). The net is fully convolutional: the whole image
    is padded (reflect) to a multiple of 8 plus a 16-px margin and run in one pass; the
    margin's predictions are dropped."""
    import torch

    g = np.asarray(gray, np.uint8)
    h, w = g.shape
    m = 16
    H, W = -(-h // 8) * 8, -(-w // 8) * 8
    padded = np.pad(g, ((m, H - h + m), (m, W - w + m)), mode="reflect")
    net.eval()
    with torch.inference_mode():
        x = torch.from_numpy(padded.copy()).float().div(255.0)[None, None]
        p = torch.sigmoid(net(x))[0, 0].numpy()
    return p[m:m + h, m:m + w].copy()
