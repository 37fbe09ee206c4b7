"""Backpropagation written out layer by layer, checked against torch.autograd (Q2).

A small plain CNN (six 3x3 conv layers of a few channels, two 2x2 max pools, global
max pool, one linear layer) on 32-px shape crops. :func:`forward` keeps every
intermediate value; :func:`backward` walks the chain rule back through it by hand:

* cross-entropy + softmax:  dL/dz = (softmax(z) - onehot(y)) / B
* linear layer:             dW = g^T h,  db = sum g,  dh = g W
* global max pool:          each channel's dL/dfeat goes to its argmax position, zeros elsewhere
* max pool 2x2:             the gradient goes only to the position that won the max
* ReLU / sigmoid:           times 1[z > 0]  /  times s (1 - s)   (s <= 1/4: vanishing)
* conv layer:               dW = conv2d_weight(x, g), db = sum g, dx = conv2d_input(W, g)

:func:`autograd_gradients` gets the same numbers from torch.autograd, so the page can show
the largest difference live. The update is written by hand too: plain SGD
(w <- w - lr * grad) or Adam (running means m, v of g and g^2, bias-corrected,
w <- w - lr * m_hat / (sqrt(v_hat) + eps)). Training is deterministic in the seed: the
initial weights come from a seeded generator and the batch of step t from ``(seed, t)``.
Torch is imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ACTIVATIONS = ("relu", "sigmoid")
INPUT_SIZE = 32
CHANNELS = (3, 8, 8, 8, 8, 8, 8)  # input + six conv layers
POOL_AFTER = (1, 3)  # 2x2 max pool after conv layers 2 and 4 (0-based indices 1 and 3)
N_CLASSES = 6
DATA_SIZE = 512  # training crops drawn once per seed
BATCH = 32
OPTIMIZERS = ("Adam", "SGD")
DEFAULT_OPTIMIZER = "Adam"
LR_CHOICES = (0.0003, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
DEFAULT_LR = 0.005  # for Adam (the default optimiser; measured most reliable of 0.003-0.01); SGD needs ~0.1
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam defaults
ADAM_EPS = 1e-8


def layer_names() -> list[str]:
    """conv1..conv6 then fc, in forward order."""
    return [f"conv{i + 1}" for i in range(len(CHANNELS) - 1)] + ["fc"]


def init_params(seed: int, *, dtype=None) -> dict:
    """Seeded weights: He-normal (std sqrt(2 / fan_in)) convs, zero biases, small linear layer.

    The same initial weights serve both activations, so any difference in the gradients is
    the activation's doing."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(int(seed))
    params = {}
    for i, name in enumerate(layer_names()[:-1]):
        c_in, c_out = CHANNELS[i], CHANNELS[i + 1]
        std = np.sqrt(2.0 / (c_in * 9))
        params[f"{name}.weight"] = (torch.randn(c_out, c_in, 3, 3, generator=g) * std).to(dtype)
        params[f"{name}.bias"] = torch.zeros(c_out, dtype=dtype)
    c = CHANNELS[-1]
    bound = 1.0 / np.sqrt(c)
    params["fc.weight"] = ((torch.rand(N_CLASSES, c, generator=g) * 2 - 1) * bound).to(dtype)
    params["fc.bias"] = ((torch.rand(N_CLASSES, generator=g) * 2 - 1) * bound).to(dtype)
    return params


def count_params(params: dict) -> int:
    return int(sum(p.numel() for p in params.values()))


def _act(z, activation: str):
    import torch

    if activation == "relu":
        return torch.relu(z)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    raise ValueError(f"unknown activation {activation!r}")


def forward(params: dict, x, activation: str) -> tuple:
    """(logits, cache): the cache holds what :func:`backward` needs, layer by layer."""
    import torch.nn.functional as F

    cache = {"layers": []}
    h = x
    for i, name in enumerate(layer_names()[:-1]):
        z = F.conv2d(h, params[f"{name}.weight"], params[f"{name}.bias"], padding=1)
        a = _act(z, activation)
        entry = {"name": name, "x": h, "z": z, "a": a}
        if i in POOL_AFTER:
            pooled, idx = F.max_pool2d(a, 2, return_indices=True)
            entry.update(pool_idx=idx, pool_in_shape=a.shape)
            a = pooled
        cache["layers"].append(entry)
        h = a
    cache["gmp_shape"] = h.shape
    feat, arg = h.flatten(2).max(dim=2)  # global max pool: (B, C) values and their flat positions
    cache["feat"], cache["gmp_idx"] = feat, arg
    logits = feat @ params["fc.weight"].T + params["fc.bias"]
    return logits, cache


def loss_value(logits, y) -> float:
    import torch.nn.functional as F

    return float(F.cross_entropy(logits, y))


def backward(params: dict, logits, y, cache: dict, activation: str) -> tuple[dict, object]:
    """The chain rule by hand: (gradients of the mean cross-entropy per parameter, dL/dinput)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.grad import conv2d_input, conv2d_weight

    grads = {}
    b = logits.shape[0]
    g = torch.softmax(logits, dim=1)  # dL/dlogits = (softmax - onehot) / B
    g[torch.arange(b), y] -= 1.0
    g = g / b
    grads["fc.weight"] = g.T @ cache["feat"]
    grads["fc.bias"] = g.sum(0)
    g = g @ params["fc.weight"]  # dL/dfeat
    bb, cc, hh, ww = cache["gmp_shape"]  # global max pool: route each channel's gradient to its argmax
    g = torch.zeros(bb, cc, hh * ww, dtype=g.dtype).scatter_(2, cache["gmp_idx"][:, :, None], g[:, :, None])
    g = g.view(bb, cc, hh, ww)
    for entry in reversed(cache["layers"]):
        name = entry["name"]
        if "pool_idx" in entry:  # max pool: route to the argmax position only
            g = F.max_unpool2d(g, entry["pool_idx"], 2, output_size=entry["pool_in_shape"][2:])
        if activation == "relu":
            g = g * (entry["z"] > 0).to(g.dtype)
        else:
            s = entry["a"]
            g = g * s * (1 - s)
        w = params[f"{name}.weight"]
        grads[f"{name}.weight"] = conv2d_weight(entry["x"], w.shape, g, padding=1)
        grads[f"{name}.bias"] = g.sum(dim=(0, 2, 3))
        g = conv2d_input(entry["x"].shape, w, g, padding=1)
    return grads, g


def manual_gradients(params: dict, x, y, activation: str) -> tuple[float, dict, object]:
    """(loss, parameter gradients, input gradient) from the hand-written backward pass."""
    import torch

    with torch.no_grad():
        logits, cache = forward(params, x, activation)
        grads, gx = backward(params, logits, y, cache, activation)
    return loss_value(logits, y), grads, gx


def autograd_gradients(params: dict, x, y, activation: str) -> tuple[float, dict, object]:
    """The same three things from torch.autograd (the reference the page compares against)."""
    import torch
    import torch.nn.functional as F

    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits, _ = forward(leaves, xin, activation)
        loss = F.cross_entropy(logits, y)
        loss.backward()
    return float(loss.detach()), {k: v.grad for k, v in leaves.items()}, xin.grad


def dataset_loss(params: dict, x, y, activation: str) -> float:
    """Mean cross-entropy over a whole set (no gradients)."""
    import torch

    with torch.no_grad():
        logits, _ = forward(params, x, activation)
    return loss_value(logits, y)


def max_abs_difference(a: dict, b: dict) -> float:
    return float(max((a[k] - b[k]).abs().max() for k in a))


def grad_norms(grads: dict) -> dict[str, float]:
    """L2 norm of each layer's weight gradient, in forward order."""
    return {name: float(grads[f"{name}.weight"].norm()) for name in layer_names()}


# --- data -----------------------------------------------------------------------------------------


def to_input(images: np.ndarray):
    """uint8 (N, H, W, 3) -> float32 (N, 3, 32, 32) in [-1, 1] (area-resized when larger)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="area")
    return x * 2 - 1


def training_data(seed: int, n: int = DATA_SIZE) -> tuple:
    """(x, y) tensors: ``n`` 32-px shape crops drawn from ``seed``."""
    import torch

    from core.shapes import make_classification_set

    images, labels = make_classification_set(n, seed=1000 + int(seed), size=INPUT_SIZE)
    return to_input(images), torch.from_numpy(labels)


def batch_indices(seed: int, step: int, n: int, batch: int = BATCH) -> np.ndarray:
    """The crops of step ``step``: depends only on (seed, step)."""
    return np.random.default_rng([int(seed), int(step)]).choice(n, size=batch, replace=False)


# --- updates -------------------------------------------------------------------------------------


def sgd_update(params: dict, grads: dict, lr: float) -> tuple[dict, dict]:
    """(new params, update) with update = -lr * grad."""
    upd = {k: -lr * grads[k] for k in params}
    return {k: params[k] - lr * grads[k] for k in params}, upd


def adam_update(params: dict, grads: dict, state: dict, lr: float, *, betas=ADAM_BETAS,
                eps: float = ADAM_EPS) -> tuple[dict, dict, dict]:
    """One Adam step by hand: (new params, update, new state); state = {"t", "m", "v"}.

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,  m_hat = m / (1 - b1^t),
    v_hat = v / (1 - b2^t),  w <- w - lr * m_hat / (sqrt(v_hat) + eps)."""
    import torch

    b1, b2 = betas
    t = state.get("t", 0) + 1
    m_old, v_old = state.get("m", {}), state.get("v", {})
    m, v, new, upd = {}, {}, {}, {}
    for k, w in params.items():
        g = grads[k]
        m[k] = b1 * m_old.get(k, torch.zeros_like(w)) + (1 - b1) * g
        v[k] = b2 * v_old.get(k, torch.zeros_like(w)) + (1 - b2) * g * g
        m_hat = m[k] / (1 - b1 ** t)
        v_hat = v[k] / (1 - b2 ** t)
        upd[k] = -lr * m_hat / (v_hat.sqrt() + eps)
        new[k] = w + upd[k]
    return new, upd, {"t": t, "m": m, "v": v}


# --- training state -------------------------------------------------------------------------------


@dataclass
class Trainer:
    """One session's training run: weights, the data, and the history of every step."""

    seed: int
    activation: str
    params: dict
    x: object
    y: object
    optimizer: str = DEFAULT_OPTIMIZER
    opt_state: dict = field(default_factory=dict)  # Adam's t, m, v (empty for SGD)
    step_no: int = 0
    history: list = field(default_factory=list)  # one dict per step
    last: dict | None = None  # the latest step's gradients, update and check

    @classmethod
    def new(cls, seed: int, activation: str, data: tuple | None = None,
            optimizer: str = DEFAULT_OPTIMIZER) -> "Trainer":
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}")
        x, y = data if data is not None else training_data(seed)
        return cls(int(seed), activation, init_params(seed), x, y, optimizer)

    def step(self, lr: float, *, check: bool = True) -> dict:
        """One optimiser step (SGD or Adam) on the batch of this step number. Returns its history row."""
        import torch

        idx = torch.from_numpy(batch_indices(self.seed, self.step_no, len(self.y)))
        xb, yb = self.x[idx], self.y[idx]
        loss, grads, gx = manual_gradients(self.params, xb, yb, self.activation)
        diff = None
        if check:
            _, ref, ref_x = autograd_gradients(self.params, xb, yb, self.activation)
            diff = max(max_abs_difference(grads, ref), float((gx - ref_x).abs().max()))
        before = {k: v.clone() for k, v in self.params.items()}
        with torch.no_grad():
            if self.optimizer == "SGD":
                self.params, update = sgd_update(self.params, grads, lr)
            else:
                self.params, update, self.opt_state = adam_update(self.params, grads, self.opt_state, lr)
        with torch.no_grad():
            logits, _ = forward(self.params, xb, self.activation)
        acc = float((logits.argmax(1) == yb).float().mean())
        self.step_no += 1
        row = {"step": self.step_no, "loss": loss, "batch_accuracy_after": acc, "lr": float(lr),
               "max_abs_diff_vs_autograd": diff, **{f"grad_norm_{k}": v for k, v in grad_norms(grads).items()}}
        self.history.append(row)
        self.last = {"grads": grads, "update": update, "before": before, "lr": float(lr), "diff": diff,
                     "norms": grad_norms(grads), "optimizer": self.optimizer}
        return row

    def run(self, n: int, lr: float, progress=None, deadline=None) -> list[dict]:
        """``n`` steps; the autograd check on the last one only (it doubles the cost)."""
        import time

        from core.runtime import torch_threads

        rows, t0, shown = [], time.monotonic(), 0.0
        with torch_threads(1):
            for i in range(n):
                if deadline is not None:
                    deadline.check()
                rows.append(self.step(lr, check=i == n - 1))
                now = time.monotonic() - t0
                if progress is not None and (now - shown >= 0.25 or i == n - 1):
                    shown = now
                    progress((i + 1) / n, f"step {i + 1}/{n}, loss {rows[-1]['loss']:.3f}",
                             partial=list(self.history))
        return rows


def input_gradient(params: dict, rgb: np.ndarray, activation: str, label: int | None = None) -> dict:
    """dL/dinput for one image (resized to 32 px) against ``label`` (default: the predicted class).

    Returns the network input as uint8 (32, 32, 3), the class used, the probabilities, the
    saliency |dL/dx| max over channels (32, 32) and the largest difference to autograd."""
    import torch

    x = to_input(rgb[None])
    with torch.no_grad():
        logits, _ = forward(params, x, activation)
    probs = torch.softmax(logits, 1)[0].numpy()
    cls = int(np.argmax(probs)) if label is None else int(label)
    y = torch.tensor([cls])
    _, _, gx = manual_gradients(params, x, y, activation)
    _, _, ref = autograd_gradients(params, x, y, activation)
    shown = ((x[0].permute(1, 2, 0).numpy() + 1) / 2 * 255).clip(0, 255).astype(np.uint8)
    return {"input": shown, "class": cls, "probs": probs, "saliency": gx[0].abs().amax(0).numpy(),
            "gradient": gx[0].numpy(), "max_abs_diff": float((gx - ref).abs().max())}


def init_grad_norms(seed: int, n: int = BATCH) -> list[dict]:
    """Per-layer weight-gradient norms at initialisation for ReLU and sigmoid (same seed, batch)."""
    x, y = training_data(seed, n)
    rows = []
    for act in ACTIVATIONS:
        params = init_params(seed)
        _, grads, _ = manual_gradients(params, x, y, act)
        for layer, v in grad_norms(grads).items():
            rows.append({"layer": layer, "activation": act, "grad_norm": v})
    return rows


def heat_rgb(values: np.ndarray, size: int = 256) -> np.ndarray:
    """A non-negative map as an inferno-like uint8 RGB picture, nearest-upscaled to ``size``."""
    v = np.asarray(values, dtype=np.float64)
    v = v / v.max() if v.max() > 0 else v
    stops = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], float)
    pos = v * (len(stops) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    t = (pos - lo)[..., None]
    rgb = (stops[lo] * (1 - t) + stops[lo + 1] * t).astype(np.uint8)
    rep = max(1, size // v.shape[0])
    return np.repeat(np.repeat(rgb, rep, axis=0), rep, axis=1)


def filter_rows(last: dict, params: dict, layer: str = "conv1", index: int = 0) -> list[dict]:
    """One filter's weights before and after the last step, the optimiser's update and -lr * grad, per cell.

    For SGD the update is -lr * grad; for Adam it is -lr * m_hat / (sqrt(v_hat) + eps)."""
    w0 = last["before"][f"{layer}.weight"][index].numpy()
    w1 = params[f"{layer}.weight"][index].numpy()
    sgd = -last["lr"] * last["grads"][f"{layer}.weight"][index].numpy()
    panels = [("before", w0), ("after", w1)]
    if last.get("optimizer", "SGD") == "SGD":
        panels.append(("update = −lr·grad", sgd))
    else:
        panels += [("update = −lr·m̂/(√v̂+ε)", last["update"][f"{layer}.weight"][index].numpy()),
                   ("−lr·grad (for comparison)", sgd)]
    rows = []
    for what, arr in panels:
        for c in range(arr.shape[0]):
            for i in range(arr.shape[1]):
                for j in range(arr.shape[2]):
                    rows.append({"what": what, "channel": "RGB"[c] if arr.shape[0] == 3 else str(c),
                                 "row": i, "col": j, "value": float(arr[c, i, j])})
    return rows
