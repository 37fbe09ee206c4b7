"""Feature extraction: what each layer of a CNN computes on one image, and what it can see.

Pure functions (no Streamlit) behind the Feature extraction page::

    acts = capture_layers(clf, rgb)                 # every layer of clf.layers, one forward pass
    acts.layers["layer3"].maps                      # (C, H, W) float16 feature maps
    acts.layers["layer3"].top(8)                    # the 8 channels with the highest mean
    rfs = receptive_fields(clf.model, clf.layers)   # {name: ReceptiveField}, from the real modules
    filter_images(clf.layers[clf.first_conv].weight)  # conv1's filters as RGB images

Receptive fields are found by following one forward pass through the network from the
input: every convolution and pooling call's kernel, stride, padding and dilation grows the
field (``r += (k - 1) * d * j``, ``j *= s``); element-wise steps (BatchNorm, ReLU) keep it;
a residual addition takes the union of its branches' fields. Nothing is hard-coded per
architecture. (Not with ``torch.fx``: its tracer patches ``nn.Module.__call__`` for every
thread while it runs, which would break other sessions' forward passes on a shared server.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# --- receptive fields ----------------------------------------------------------------


@dataclass(frozen=True)
class ReceptiveField:
    """Where one unit of a layer's map looks in the network's input (per axis: y, x).

    ``size``: side of the field in input pixels; ``stride``: input pixels between
    neighbouring units (the "jump"); ``start``: the input pixel at the centre of unit
    (0, 0) (it can be negative or fractional: the field may reach into the padding)."""

    size: tuple[int, int]
    stride: tuple[int, int]
    start: tuple[float, float]

    def centre(self, i: int, k: int) -> tuple[float, float]:
        """Input pixel (y, x) at the centre of unit (row ``i``, column ``k``)."""
        return self.start[0] + i * self.stride[0], self.start[1] + k * self.stride[1]

    def box(self, i: int, k: int, *, clip: tuple[int, int] | None = None) -> tuple[float, float, float, float]:
        """(x1, y1, x2, y2), inclusive input pixels, that unit (i, k) depends on; ``clip`` = (H, W)
        of the input cuts off what lies in the padding."""
        cy, cx = self.centre(i, k)
        hy, hx = (self.size[0] - 1) / 2, (self.size[1] - 1) / 2
        x1, y1, x2, y2 = cx - hx, cy - hy, cx + hx, cy + hy
        if clip is not None:
            h, w = clip
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w - 1), min(y2, h - 1)
        return x1, y1, x2, y2


@dataclass(frozen=True)
class _Field:  # the walk's state for one tensor (per axis y, x); lo/hi: input extent of unit 0
    lo: tuple[float, float]
    hi: tuple[float, float]
    jump: tuple[int, int]

    def to_public(self) -> ReceptiveField:
        size = tuple(int(round(h - lo)) + 1 for lo, h in zip(self.lo, self.hi))
        start = tuple((lo + h) / 2 for lo, h in zip(self.lo, self.hi))
        return ReceptiveField(size, self.jump, start)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _sliding(f: _Field, kernel, stride, padding, dilation) -> _Field:
    """A window of ``kernel`` with ``stride``, ``padding`` and ``dilation`` over field ``f``."""
    k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
    if isinstance(padding, str):  # "same" keeps the centre, "valid" pads nothing
        p = tuple(dd * (kk - 1) / 2 for kk, dd in zip(k, d)) if padding == "same" else (0, 0)
    else:
        p = _pair(padding)
    lo = tuple(f.lo[a] - p[a] * f.jump[a] for a in range(2))
    hi = tuple(f.lo[a] - p[a] * f.jump[a] + (f.hi[a] - f.lo[a]) + (k[a] - 1) * d[a] * f.jump[a] for a in range(2))
    return _Field(lo, hi, tuple(f.jump[a] * s[a] for a in range(2)))


def _union(fields: list[_Field]) -> _Field:
    jumps = {f.jump for f in fields}
    if len(jumps) != 1:
        raise ValueError(f"branches with different strides {sorted(jumps)} are merged")
    return _Field(tuple(min(f.lo[a] for f in fields) for a in range(2)),
                  tuple(max(f.hi[a] for f in fields) for a in range(2)), fields[0].jump)


def _arg(args, kwargs, index: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _step(name: str, args, kwargs, inputs: list[tuple[object, _Field]], out) -> _Field | None:
    """The field of ``out`` after the torch function ``name``; None once it is global."""
    first = inputs[0][1]
    if name == "conv2d":
        weight = _arg(args, kwargs, 1, "weight")
        return _sliding(first, tuple(weight.shape[-2:]), _arg(args, kwargs, 3, "stride", 1),
                        _arg(args, kwargs, 4, "padding", 0), _arg(args, kwargs, 5, "dilation", 1))
    if name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "lp_pool2d"):
        if name == "lp_pool2d":  # (input, norm_type, kernel_size, stride)
            kernel, stride, padding, dilation = args[2], _arg(args, kwargs, 3, "stride"), 0, 1
        else:
            kernel, stride = _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride")
            padding = _arg(args, kwargs, 3, "padding", 0)
            dilation = _arg(args, kwargs, 4, "dilation", 1) if name.startswith("max") else 1
        return _sliding(first, kernel, stride if stride not in (None, [], ()) else kernel, padding, dilation)
    if name == "pad":
        pad = list(_arg(args, kwargs, 1, "pad")) + [0, 0, 0, 0]
        left, top = pad[0], pad[2]  # (left, right, top, bottom, ...): unit 0 moves up/left
        j = first.jump
        return _Field((first.lo[0] - top * j[0], first.lo[1] - left * j[1]),
                      (first.hi[0] - top * j[0], first.hi[1] - left * j[1]), j)
    if name.startswith("adaptive_") or out.dim() != 4:
        return None
    same = [f for t, f in inputs if t.dim() == 4 and t.shape[-2:] == out.shape[-2:]]
    if len(same) == len(inputs):  # element-wise (BatchNorm, ReLU, a residual sum, concatenation)
        return _union(same)
    raise ValueError(f"no receptive-field rule for {name}, which changes the map size")


def receptive_fields(model, layers: dict, *, input_size: int = 224) -> dict[str, ReceptiveField]:
    """The receptive field of the output of each module in ``layers`` ({name: module of
    ``model``}), found by following one forward pass of a blank ``input_size`` image through
    the network: every convolution, pooling and padding call on the way applies its own
    kernel, stride, padding and dilation; element-wise steps keep the field; a residual sum
    takes the union of its branches. The calls are seen through a ``TorchFunctionMode``
    (per thread, so other sessions' passes are not affected), the layers' outputs through
    forward hooks held under the shared model's lock."""
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten

    from core.hooks import lock_for

    owned = {id(m) for m in model.modules()}
    for name, module in layers.items():
        if id(module) not in owned:
            raise ValueError(f"layer {name} is not a module of the model")
    known: dict[int, tuple[object, _Field | None]] = {}  # id(tensor) -> (tensor kept alive, field)

    class Follow(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            leaves = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            inputs = [(t, known[id(t)][1]) for t in leaves if id(t) in known and known[id(t)][1] is not None]
            if inputs:
                name = getattr(func, "__name__", str(func)).strip("_")
                for t in tree_flatten(out)[0]:
                    if isinstance(t, torch.Tensor) and t.dtype.is_floating_point:
                        known[id(t)] = (t, _step(name, args, kwargs, inputs, t))
                        break  # the main output (max_pool2d's indices have no field)
            return out

    found: dict[str, _Field | None] = {}

    def hook(name):
        def record(_module, _inputs, output):
            found[name] = known.get(id(output), (None, None))[1]
        return record

    x = torch.zeros(1, 3, input_size, input_size, dtype=next(model.parameters()).dtype,
                    device=next(model.parameters()).device)
    known[id(x)] = (x, _Field((0.0, 0.0), (0.0, 0.0), (1, 1)))
    with lock_for(model):
        handles = [module.register_forward_hook(hook(name)) for name, module in layers.items()]
        try:
            with torch.no_grad(), Follow():
                model(x)
        finally:
            for h in handles:
                h.remove()
    out = {}
    for name in layers:
        if found.get(name) is None:
            raise ValueError(f"could not follow the network to layer {name}")
        out[name] = found[name].to_public()
    return out


# --- activations -----------------------------------------------------------------------


@dataclass(frozen=True)
class LayerMaps:
    """One layer's output for one image: maps stored as float16 (display only), the
    per-channel statistics in float32 computed before rounding."""

    maps: np.ndarray  # (C, H, W) float16
    means: np.ndarray  # (C,) float32: mean activation of each channel over the map
    maxima: np.ndarray  # (C,) float32

    @property
    def channels(self) -> int:
        return int(self.maps.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.maps.shape[1]), int(self.maps.shape[2])

    def top(self, k: int, by: str = "mean") -> np.ndarray:
        """Indices of the ``k`` channels with the highest mean (``by="mean"``) or peak
        (``by="peak"``) activation, highest first."""
        score = {"mean": self.means, "peak": self.maxima}[by]
        return np.argsort(-score, kind="stable")[:k]

    def peak(self, channel: int) -> tuple[int, int]:
        """(row, column) of the channel's strongest unit."""
        flat = int(np.argmax(self.maps[channel]))
        return divmod(flat, self.maps.shape[2])


@dataclass(frozen=True)
class Activations:
    layers: dict[str, LayerMaps]
    input_size: tuple[int, int]  # (H, W) of the network input the maps come from
    probs: np.ndarray  # (num_classes,) the network's prediction for this image


def capture_layers(clf, rgb: np.ndarray) -> Activations:
    """Run ``clf`` once on ``rgb`` and record the output of every layer in ``clf.layers``
    (forward hooks under the shared model's lock, removed on exit)."""
    import torch

    from core.hooks import capture

    device = next(clf.model.parameters()).device
    x = clf.tensor(rgb).to(device)
    with capture(clf.model, clf.layers) as seen, torch.inference_mode():
        logits = clf.model(x)
    layers = {}
    for name in clf.layers:
        a = seen.activations[name][0].float().cpu()
        layers[name] = LayerMaps(a.numpy().astype(np.float16), a.mean(dim=(1, 2)).numpy().astype(np.float32),
                                 a.amax(dim=(1, 2)).numpy().astype(np.float32))
    probs = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()
    return Activations(layers, (int(x.shape[2]), int(x.shape[3])), probs)


# --- pictures --------------------------------------------------------------------------


def _colourise(values01: np.ndarray, colormap: int) -> np.ndarray:
    import cv2

    u8 = np.clip(values01 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, colormap), cv2.COLOR_BGR2RGB)


def _upscale(img: np.ndarray, cell: int) -> np.ndarray:
    """Nearest-neighbour enlargement by a whole factor so the long side is about ``cell``."""
    f = max(1, int(round(cell / max(img.shape[:2]))))
    return np.repeat(np.repeat(img, f, axis=0), f, axis=1)


def heat_tiles(maps: np.ndarray, channels, *, shared: bool = True, cell: int = 96) -> list[np.ndarray]:
    """One viridis image per channel (cells enlarged without smoothing). ``shared``: one
    colour scale (min..max over the shown maps) so brightness compares across maps; else
    each map is stretched to its own range."""
    import cv2

    chosen = np.asarray(maps[list(channels)], dtype=np.float32)
    if not len(chosen):
        return []
    lo, hi = float(chosen.min()), float(chosen.max())
    tiles = []
    for m in chosen:
        a, b = (lo, hi) if shared else (float(m.min()), float(m.max()))
        scaled = (m - a) / (b - a) if b > a else np.zeros_like(m)
        tiles.append(_upscale(_colourise(scaled, cv2.COLORMAP_VIRIDIS), cell))
    return tiles


def grid_image(tiles: list[np.ndarray], labels: list[str], *, cols: int = 8, pad: int = 4,
               label_h: int = 18, min_width: int = 90) -> np.ndarray:
    """Tiles in a grid on white, each with its (ASCII) label underneath; columns are at least
    ``min_width`` px wide so the labels fit."""
    import cv2

    if not tiles:
        return np.full((label_h, 64, 3), 255, np.uint8)
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    tw_label = max(tw, min_width)
    cols = max(1, min(cols, len(tiles)))
    rows = math.ceil(len(tiles) / cols)
    out = np.full((rows * (th + label_h + pad) + pad, cols * (tw_label + pad) + pad, 3), 255, np.uint8)
    for n, (tile, label) in enumerate(zip(tiles, labels)):
        r, c = divmod(n, cols)
        y, x = pad + r * (th + label_h + pad), pad + c * (tw_label + pad)
        out[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        cv2.putText(out, label, (x, y + th + label_h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def filter_images(weight) -> np.ndarray:
    """A first-layer convolution's filters as RGB images: (F, kh, kw, 3) float in [0, 1],
    each filter min-max normalised on its own (a flat filter is mid-grey). Channel order is
    the input's (R, G, B), so a filter that is red in the picture responds to red."""
    w = weight.detach().float().cpu().numpy() if hasattr(weight, "detach") else np.asarray(weight, np.float32)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected (F, 3, kh, kw) filters of an RGB layer, got {w.shape}")
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - lo
    norm = np.where(span > 0, (w - lo) / np.where(span > 0, span, 1), 0.5)
    return norm.transpose(0, 2, 3, 1)


def filter_tiles(images01: np.ndarray, *, cell: int = 56) -> list[np.ndarray]:
    return [_upscale(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), cell) for img in images01]


def map_to_input(fmap: np.ndarray, rf: ReceptiveField, input_size: tuple[int, int]) -> np.ndarray:
    """A (H, W) map resampled onto the network input (``input_size`` = (H, W)), each unit
    placed at the centre of its receptive field (bilinear between centres)."""
    import cv2

    m = np.asarray(fmap, np.float32)
    sy, sx = rf.stride
    cy, cx = rf.start
    # input (x, y) -> map (k, i): k = (x - cx) / sx; warpAffine takes the forward map->input matrix.
    forward = np.array([[sx, 0, cx], [0, sy, cy]], np.float64)
    return cv2.warpAffine(m, forward, (input_size[1], input_size[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def overlay(rgb: np.ndarray, fmap: np.ndarray, rf: ReceptiveField, input_size: tuple[int, int], *,
            lo: float, hi: float, alpha: float = 0.55) -> np.ndarray:
    """``rgb`` (any size, showing the same picture as the network input) with ``fmap`` laid
    over it in the jet colour map on the scale ``lo``..``hi``."""
    import cv2

    on_input = map_to_input(fmap, rf, input_size)
    sized = cv2.resize(on_input, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    scaled = (sized - lo) / (hi - lo) if hi > lo else np.zeros_like(sized)
    heat = _colourise(scaled, cv2.COLORMAP_JET).astype(np.float32)
    return (rgb[..., :3].astype(np.float32) * (1 - alpha) + heat * alpha + 0.5).astype(np.uint8)


def draw_box(rgb: np.ndarray, box: tuple[float, float, float, float], *, colour=(255, 255, 255),
             scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """A copy of ``rgb`` with ``box`` (x1, y1, x2, y2 in input pixels, scaled by (sy, sx))."""
    import cv2

    out = np.ascontiguousarray(rgb[..., :3]).copy()
    sy, sx = scale
    x1, y1, x2, y2 = box
    p1 = (int(round(x1 * sx)), int(round(y1 * sy)))
    p2 = (int(round((x2 + 1) * sx)) - 1, int(round((y2 + 1) * sy)) - 1)
    thick = max(1, max(out.shape[:2]) // 200)
    cv2.rectangle(out, p1, p2, (0, 0, 0), thick + 2)
    cv2.rectangle(out, p1, p2, colour, thick)
    return out


# --- tables and checks -------------------------------------------------------------------


def layer_table(acts: Activations, rfs: dict[str, ReceptiveField]) -> dict[str, list]:
    """Per layer: channels, map size, stride and receptive field (columns of a table)."""
    h, w = acts.input_size
    rows: dict[str, list] = {"layer": [], "channels": [], "map size": [], "stride (px)": [],
                             "receptive field (px)": [], "field / input side": []}
    for name, lm in acts.layers.items():
        rf = rfs[name]
        rows["layer"].append(name)
        rows["channels"].append(lm.channels)
        rows["map size"].append(f"{lm.size[0]} × {lm.size[1]}")
        rows["stride (px)"].append(rf.stride[0] if rf.stride[0] == rf.stride[1] else f"{rf.stride[0]} × {rf.stride[1]}")
        rows["receptive field (px)"].append(rf.size[0] if rf.size[0] == rf.size[1] else f"{rf.size[0]} × {rf.size[1]}")
        rows["field / input side"].append(f"{rf.size[1] / w:.0%}")
    return rows


def peak_inside(lm: LayerMaps, rf: ReceptiveField, channel: int, box) -> bool:
    """Whether the centre of the channel's strongest unit lies inside ``box`` (x1, y1, x2, y2)."""
    i, k = lm.peak(channel)
    cy, cx = rf.centre(i, k)
    x1, y1, x2, y2 = box
    return x1 <= cx <= x2 and y1 <= cy <= y2


def peaks_inside(lm: LayerMaps, rf: ReceptiveField, channels, box) -> int:
    return sum(peak_inside(lm, rf, int(c), box) for c in channels)
