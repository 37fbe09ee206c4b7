"""A small CRNN (conv layers -> column features -> BiLSTM -> per-column logits) trained with
CTC loss on text lines this project renders (no download). Registry name ``ocr-crnn``.

Layout (input: grey line, height 32, any width W; ink = 1 - pixel/255, padding = 0)::

    conv  1->32, 3x3, ReLU, maxpool 2x2        32 x W      -> 16 x W/2
    conv 32->64, 3x3, BN, ReLU, maxpool 2x2    16 x W/2    ->  8 x W/4
    conv 64->96, 3x3, BN, ReLU, maxpool 2x1     8 x W/4    ->  4 x W/4
    conv 96->128, (4x1), BN, ReLU               4 x W/4    ->  1 x W/4  (one feature vector per column)
    BiLSTM(128 -> 2 x 96)                       T = W/4 columns
    Linear(192 -> 1 + len(CHARSET))             per-column logits; class 0 is the CTC blank

Training lines: random words / digit groups / symbols from :data:`CHARSET`, in Pillow's
bundled font and two Hershey fonts at random sizes, with a small random offset, blur and
noise. Held-out lines come from another seed; the greedy-decoded character error rate
(CER) on them is stored in the checkpoint.
"""

from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
import torch
from torch import nn

from core.ocr import FONTS, cer, collapse, render_line
from core.runtime import torch_threads
from models.checkpoints import Shipped

Progress = Callable[[float, str], None]

FORMAT_VERSION = 3
CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz .-"
ALPHABET = ("<blank>",) + tuple(CHARSET)  # class c -> symbol
HEIGHT = 32
STRIDE = 4  # input pixels per output column
TRAIN_SEED_OFFSET, TEST_SEED_OFFSET = 0, 1_000_003
_WORDS = ("the", "cnn", "ocr", "text", "line", "page", "read", "model", "error", "rate", "scan",
          "print", "font", "blur", "noise", "word", "code", "data", "lab", "test", "deep", "layer")


class CRNN(nn.Module):
    def __init__(self, num_classes: int = len(ALPHABET), hidden: int = 96):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 96, 3, padding=1, bias=False), nn.BatchNorm2d(96), nn.ReLU(), nn.MaxPool2d((2, 1)),
            nn.Conv2d(96, 128, (4, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        )
        self.rnn = nn.LSTM(128, hidden, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 32, W) -> logits (N, T=W/4, classes)."""
        f = self.conv(x).squeeze(2).permute(0, 2, 1)  # (N, T, 128)
        return self.head(self.rnn(f)[0])


def layer_table(width: int = 128) -> list[dict]:
    """Each layer's output shape for a line of ``width`` px (what the page prints)."""
    model = CRNN()
    x = torch.zeros(1, 1, HEIGHT, width)
    rows = [{"layer": "input (grey line, ink = 1 - pixel/255)", "output shape": str(tuple(x.shape)), "parameters": 0}]
    with torch.no_grad():
        for layer in model.conv:
            x = layer(x)
            rows.append({"layer": layer.__class__.__name__ + _args(layer), "output shape": str(tuple(x.shape)),
                         "parameters": sum(p.numel() for p in layer.parameters())})
        f = x.squeeze(2).permute(0, 2, 1)
        rows.append({"layer": "squeeze height -> columns", "output shape": str(tuple(f.shape)), "parameters": 0})
        r = model.rnn(f)[0]
        rows.append({"layer": "BiLSTM(128 -> 2 x 96)", "output shape": str(tuple(r.shape)),
                     "parameters": sum(p.numel() for p in model.rnn.parameters())})
        y = model.head(r)
        rows.append({"layer": f"Linear(192 -> {len(ALPHABET)}) per column", "output shape": str(tuple(y.shape)),
                     "parameters": sum(p.numel() for p in model.head.parameters())})
    return rows


def _args(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d):
        return f"({layer.in_channels}->{layer.out_channels}, k={tuple(layer.kernel_size)})"
    if isinstance(layer, nn.MaxPool2d):
        return f"({layer.kernel_size})"
    return ""


# --- data -----------------------------------------------------------------------------------


def random_text(rng: np.random.Generator) -> str:
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.random()
        if kind < 0.45:
            parts.append(_WORDS[int(rng.integers(len(_WORDS)))])
        elif kind < 0.75:
            n = int(rng.integers(2, 7))
            parts.append("".join(rng.choice(list(CHARSET[10:36]), n)))
        else:
            n = int(rng.integers(1, 6))
            parts.append("".join(rng.choice(list(CHARSET[:10]), n)))
        if rng.random() < 0.15:
            parts[-1] += rng.choice([".", "-"])
    return " ".join(parts)[:18].strip() or "a"


def to_line(grey: np.ndarray) -> np.ndarray:
    """Grey uint8 line -> float32 ink map (32, W'): resized to height 32, width a multiple of 4."""
    h, w = grey.shape[:2]
    nw = max(STRIDE * 4, int(round(w * HEIGHT / h / STRIDE)) * STRIDE)
    interp = cv2.INTER_AREA if h > HEIGHT else cv2.INTER_LINEAR
    small = cv2.resize(grey, (nw, HEIGHT), interpolation=interp)
    return 1.0 - small.astype(np.float32) / 255.0


def make_line(seed: int, i: int, *, jitter: bool = True) -> tuple[np.ndarray, str]:
    """Line i of the set drawn with ``seed``: (ink map (32, W), its text)."""
    rng = np.random.default_rng([seed, i])
    text = random_text(rng)
    font = FONTS[int(rng.integers(len(FONTS)))]
    size = int(rng.integers(18, 40))
    ink, paper = (int(rng.integers(0, 90)), int(rng.integers(180, 256))) if jitter else (20, 245)
    off = (float(rng.uniform(-2, 2)), float(rng.uniform(-2, 2))) if jitter else (0.0, 0.0)
    pad = int(round(size * rng.uniform(0.15, 0.45))) if jitter else None
    img = render_line(text, size=size, font=font, ink=ink, paper=paper, offset=off, pad=pad)
    if jitter:
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 1.0)))
        if rng.random() < 0.3:
            img = np.clip(img + rng.normal(0, rng.uniform(2, 12), img.shape), 0, 255).astype(np.uint8)
    return to_line(img), text


def _batch(lines: list[np.ndarray]) -> torch.Tensor:
    w = max(x.shape[1] for x in lines)
    out = np.zeros((len(lines), 1, HEIGHT, w), np.float32)
    for k, x in enumerate(lines):
        out[k, 0, :, :x.shape[1]] = x
    return torch.from_numpy(out)


def encode(text: str) -> list[int]:
    return [CHARSET.index(c) + 1 for c in text]


def decode(indices) -> str:
    return "".join(ALPHABET[i] for i in collapse(indices))


# --- inference ----------------------------------------------------------------------------


@torch.no_grad()
def column_probs(model: CRNN, grey: np.ndarray) -> np.ndarray:
    """Per-column softmax (T, classes) of one grey line (any height; resized to 32)."""
    model.eval()
    x = _batch([to_line(grey)])
    return torch.softmax(model(x)[0], dim=-1).numpy()


@torch.no_grad()
def read_lines(model: CRNN, lines: list[np.ndarray]) -> list[str]:
    model.eval()
    out = []
    for i in range(0, len(lines), 64):
        chunk = lines[i:i + 64]
        logits = model(_batch(chunk))
        for k, x in enumerate(chunk):
            t = x.shape[1] // STRIDE
            out.append(decode(logits[k, :t].argmax(-1).tolist()))
    return out


def evaluate(model: CRNN, seed: int, n: int, *, jitter: bool) -> float:
    """Mean CER of greedy decoding on ``n`` lines drawn with ``seed``."""
    data = [make_line(seed, i, jitter=jitter) for i in range(n)]
    preds = read_lines(model, [x for x, _ in data])
    return float(np.mean([cer(t, p) for (_, t), p in zip(data, preds)]))


# --- training -------------------------------------------------------------------------------


def train_ocr_crnn(*, seed: int = 0, n_train: int = 3000, n_test: int = 300, epochs: int = 6,
                   batch_size: int = 32, lr: float = 3e-3, progress: Progress | None = None,
                   time_limit_s: float | None = None) -> tuple[CRNN, dict]:
    """Train the CRNN with CTC loss; returns (eval model, metrics). Deterministic per seed."""
    t0 = time.perf_counter()
    report = progress or (lambda frac, msg: None)
    report(0.0, "rendering training lines")
    data = [make_line(seed + TRAIN_SEED_OFFSET, i) for i in range(n_train)]
    order_w = np.argsort([x.shape[1] for x, _ in data], kind="stable")  # similar widths per batch
    batches = [order_w[i:i + batch_size] for i in range(0, n_train, batch_size)]
    gen = torch.Generator().manual_seed(seed)
    last = time.monotonic()
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        model = CRNN()
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        steps = epochs * len(batches)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
        ctc = nn.CTCLoss(blank=0, zero_infinity=True)
        step = 0
        epoch_losses = []
        for epoch in range(epochs):
            model.train()
            total = 0.0
            for b in torch.randperm(len(batches), generator=gen).tolist():
                idx = batches[b]
                x = _batch([data[k][0] for k in idx])
                targets = [encode(data[k][1]) for k in idx]
                logits = model(x)  # (N, T, C)
                logp = logits.log_softmax(-1).permute(1, 0, 2)
                in_len = torch.tensor([data[k][0].shape[1] // STRIDE for k in idx])
                tg_len = torch.tensor([len(t) for t in targets])
                loss = ctc(logp, torch.tensor([c for t in targets for c in t]), in_len, tg_len)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                step += 1
                total += loss.item()
                if time.monotonic() - last > 0.5:
                    last = time.monotonic()
                    report(step / steps, f"epoch {epoch + 1}/{epochs}: CTC loss {total / max(1, step - epoch * len(batches)):.3f}")
                if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                    raise TimeoutError(f"CRNN training exceeded {time_limit_s:.0f} s")
            epoch_losses.append(round(total / len(batches), 4))
        report(1.0, "measuring held-out CER")
        test_clean = evaluate(model, seed + TEST_SEED_OFFSET, n_test, jitter=False)
        test_jitter = evaluate(model, seed + TEST_SEED_OFFSET, n_test, jitter=True)
        train_cer = evaluate(model, seed + TRAIN_SEED_OFFSET, min(n_test, n_train), jitter=True)
    metrics = {
        "test_cer_clean": test_clean, "test_cer_jitter": test_jitter, "train_cer": train_cer,
        "n_train": n_train, "n_test": n_test, "epochs": epochs, "seed": seed,
        "charset": CHARSET, "train_seconds": round(time.perf_counter() - t0, 2),
        "epoch_losses": epoch_losses,
    }
    return model.eval(), metrics


# --- the shipped file ------------------------------------------------------------------------


def lines_fingerprint(seed: int = 0) -> str:
    """Digest of the first 16 training lines (ink maps and texts) the renderer draws."""
    from models.checkpoints import fingerprint

    lines = [make_line(seed + TRAIN_SEED_OFFSET, i) for i in range(16)]
    return fingerprint(*[(np.round(x * 255).astype(np.uint8), t) for x, t in lines])


def evaluate_ocr_crnn(model: CRNN, *, seed: int = 0, n_test: int = 300) -> dict:
    """Held-out character error rates, clean and jittered lines (as measured in training)."""
    with torch_threads(1):
        return {"test_cer_clean": evaluate(model, seed + TEST_SEED_OFFSET, n_test, jitter=False),
                "test_cer_jitter": evaluate(model, seed + TEST_SEED_OFFSET, n_test, jitter=True)}


RECIPE = dict(seed=0, n_train=3000, n_test=300, epochs=6)

SHIPPED = Shipped(
    name="ocr-crnn", recipe=RECIPE, train=train_ocr_crnn, build=lambda: CRNN(),
    evaluate=lambda model: evaluate_ocr_crnn(model, seed=RECIPE["seed"], n_test=RECIPE["n_test"]),
    fingerprint=lambda: lines_fingerprint(RECIPE["seed"]), score="test_cer_jitter", higher_is_better=False,
    shown=("test_cer_clean", "test_cer_jitter"),
    header={"format_version": FORMAT_VERSION, "charset": CHARSET, "input_size": HEIGHT},
    quick=dict(n_train=256, n_test=32, epochs=2),
)


def load_ocr_crnn() -> CRNN:
    """The shipped CRNN (eval mode); raises registry.WeightsUnavailable if it is missing."""
    return SHIPPED.load()


def load_metrics() -> dict:
    """The held-out metrics recorded for the shipped CRNN."""
    return SHIPPED.metrics()
