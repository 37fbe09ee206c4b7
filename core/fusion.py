"""Multi-modal fusion on a synthetic task where neither modality alone says anything.

Each example is a pair: a 32-px crop of one shape (circle, square or triangle, from
``core.shapes.make_classification_set``) and a word from a three-word vocabulary. The label is

    label = (shape index + word index) mod 3        (a Latin square: see :func:`rule_table`)

so for every shape each label occurs for exactly one word, and for every word each label
occurs for exactly one shape: with shape and word drawn uniformly and independently, the label
is uniform given the image alone and given the word alone. A model that sees one modality is at
chance (1/3) by construction; only the pair determines the label.

Five small networks are trained on the same pairs, in the same order, from the same seed::

    image only     CNN(image) -> MLP head
    word only      Embedding(word) -> MLP head
    early fusion   CNN([image, embedding(word) broadcast as extra channels]) -> MLP head
    intermediate   [CNN(image) features, embedding(word)] concatenated -> MLP head
    late fusion    (MLP(CNN(image)) logits + MLP(embedding(word)) logits) / 2

With ``pretrained=True`` (the default) every image branch starts from one small CNN first
trained to NAME the shape on 1,000 other crops (:func:`pretrain_encoder`, the stand-in for an
ImageNet backbone; early fusion's extra word channels keep random weights). From random weights
the fusion models sit on a long plateau first: neither modality alone gives a gradient to follow.

Late fusion's scores are a sum f(image) + g(word): an additive model. No additive model can
represent this rule (:func:`additive_ceiling` finds the most (shape, word) cells any additive
scores can get right: 7 of 9), and trained by likelihood it does worse still: a main-effects
model's best fit matches the label's marginals per shape and per word, which are uniform, so
its maximum-likelihood solution predicts 1/3 for every class.

A missing modality is an input like any other: a missing image is the training set's mean
colour, a missing word is the ``<unk>`` token (index 3). ``train(..., p_train=)`` blanks one
modality of a pair with probability ``p_train`` during training (modality dropout); after
training, the held-out logits of every model are stored for the four cases (image present or
missing x word present or missing), so :func:`dropout_scores` re-scores any test-time missing
rate exactly, without running a network again.

Deterministic: pair i depends only on (seed, i); one torch thread, a forked global RNG for
initialisation and an own generator for batch order and modality dropout.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from core.jobs import Pacer

SHAPES = ("circle", "square", "triangle")  # core.shapes class ids 0, 1, 2
WORDS = ("zero", "one", "two")
UNK = len(WORDS)  # the token a missing word becomes
VOCAB = WORDS + ("<unk>",)
LABELS = ("A", "B", "C")
NUM_CLASSES = len(LABELS)
CHANCE = 1.0 / NUM_CLASSES
MODELS = ("image only", "word only", "early fusion", "intermediate fusion", "late fusion")
SIZE = 32  # crop side in pixels
N_TEST = 600
# The training recipe (train() defaults; the page's controls start here)
N_TRAIN = 1500
EPOCHS = 8
P_TRAIN = 0.0  # modality dropout in training
TRAIN_SEED, TEST_SEED, MISSING_SEED, PRETRAIN_SEED = 31_000_000, 32_000_000, 33_000_000, 34_000_000
MISSING = ("image", "word", "each independently")
BACKGROUND = "plain"  # one flat colour behind the shape: this page is about fusion, not about finding the shape
WIDTH = 12  # channels of the first conv (then 2x, 2x)
EARLY_EMBED = 4  # word channels added to the image for early fusion
PRETRAIN_N, PRETRAIN_EPOCHS = 1000, 5  # the shape-naming set the image encoder is pretrained on
# (image present, word present) for the four stored cases, in this order
CASES = ((True, True), (False, True), (True, False), (False, False))


# --- the rule ---------------------------------------------------------------------------------


def rule(shape: int, word: int) -> int:
    """The label of a (shape, word) pair."""
    return (int(shape) + int(word)) % NUM_CLASSES


def rule_table() -> np.ndarray:
    """(shapes, words) -> label id."""
    return np.array([[rule(s, w) for w in range(len(WORDS))] for s in range(len(SHAPES))], dtype=np.int64)


def marginal_counts(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How often each label occurs in each row (shape) and in each column (word) of the rule table:
    (shapes, labels) and (words, labels) counts. All ones = each marginal uniform."""
    c = int(table.max()) + 1
    by_shape = np.stack([np.bincount(row, minlength=c) for row in table])
    by_word = np.stack([np.bincount(col, minlength=c) for col in table.T])
    return by_shape, by_word


def additive_ceiling(table: np.ndarray) -> tuple[int, list[tuple[int, int]]]:
    """The largest number of cells of ``table`` that any additive scores ``a[s, c] + b[w, c]``
    (what late fusion by averaging computes) classify correctly by argmax with a margin, and one
    such set of cells. Exhaustive over cell subsets, largest first, each checked by a linear
    programme (feasible margins >= 1)."""
    from scipy.optimize import linprog

    n_s, n_w = table.shape
    c = int(table.max()) + 1
    nv = (n_s + n_w) * c
    cells = [(s, w) for s in range(n_s) for w in range(n_w)]
    for k in range(len(cells), 0, -1):
        for subset in itertools.combinations(cells, k):
            rows = []
            for s, w in subset:
                label = int(table[s, w])
                for other in range(c):
                    if other == label:
                        continue
                    row = np.zeros(nv)
                    row[s * c + other] += 1
                    row[(n_s + w) * c + other] += 1
                    row[s * c + label] -= 1
                    row[(n_s + w) * c + label] -= 1
                    rows.append(row)
            res = linprog(np.zeros(nv), A_ub=np.array(rows), b_ub=-np.ones(len(rows)),
                          bounds=[(None, None)] * nv, method="highs")
            if res.status == 0:
                return k, list(subset)
    return 0, []


# --- the data ---------------------------------------------------------------------------------


def words_for(n: int, seed: int) -> np.ndarray:
    """The word of pair i depends only on (seed, i), like its image."""
    return np.array([np.random.default_rng([seed, i, 1]).integers(len(WORDS)) for i in range(n)], dtype=np.int64)


def make_pairs(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` pairs: images (n, size, size, 3) uint8, shape ids, word ids, labels."""
    from core.shapes import make_classification_set

    images, shapes = make_classification_set(n, seed=seed, size=size, classes=range(len(SHAPES)),
                                             background=BACKGROUND)
    words = words_for(n, seed)
    labels = (shapes + words) % NUM_CLASSES
    return images, shapes, words, labels


@dataclass(frozen=True)
class FusionData:
    x_train: object  # (N, 3, S, S) float tensor in [0, 1]
    w_train: object  # (N,) int64 tensor
    y_train: object
    x_test: object
    w_test: object
    y_test: object
    fill: tuple  # the training images' mean colour: what a missing image becomes
    seed: int


def fusion_data(*, n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0) -> FusionData:
    import torch

    def tensors(n, s):
        images, _, words, labels = make_pairs(n, s)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
        return x, torch.from_numpy(words), torch.from_numpy(labels)

    x_tr, w_tr, y_tr = tensors(n_train, TRAIN_SEED + seed)
    x_te, w_te, y_te = tensors(n_test, TEST_SEED + seed)
    fill = tuple(float(v) for v in x_tr.mean(dim=(0, 2, 3)))
    return FusionData(x_tr, w_tr, y_tr, x_te, w_te, y_te, fill, seed)


def blank(x, w, image_missing, word_missing, fill):
    """Inputs with the chosen modalities removed: a missing image becomes the constant ``fill``
    colour, a missing word the ``<unk>`` token. Masks are boolean tensors (N,)."""
    import torch

    fill_img = torch.tensor(fill, dtype=x.dtype).view(1, 3, 1, 1).expand_as(x)
    x = torch.where(image_missing.view(-1, 1, 1, 1), fill_img, x)
    w = torch.where(word_missing, torch.full_like(w, UNK), w)
    return x, w


# --- the networks -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _net_class():
    import torch
    from torch import nn

    from core.livetrain import normalise_layer

    def cnn(in_ch: int, width: int):
        def block(a, b, pool):
            layers = [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
            return layers + ([nn.MaxPool2d(2)] if pool else [])

        return nn.Sequential(*block(in_ch, width, True), *block(width, 2 * width, True),
                             *block(2 * width, 2 * width, False), nn.AdaptiveMaxPool2d(1), nn.Flatten())

    def mlp(d_in: int, hidden: int = 64):
        return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, NUM_CLASSES))

    class FusionNet(nn.Module):
        """One of MODELS; ``forward(x, w)`` with x (N, 3, S, S) in [0, 1] and w (N,) word ids."""

        def __init__(self, kind: str, width: int = WIDTH, embed: int = 32, early_embed: int = EARLY_EMBED):
            super().__init__()
            if kind not in MODELS:
                raise ValueError(f"unknown model {kind!r}")
            self.kind = kind
            self.norm = normalise_layer()
            feat = 2 * width
            if kind in ("image only", "late fusion"):
                self.cnn, self.head = cnn(3, width), mlp(feat)
            if kind in ("word only", "late fusion"):
                self.embed, self.word_head = nn.Embedding(len(VOCAB), embed), mlp(embed)
            if kind == "early fusion":
                self.embed = nn.Embedding(len(VOCAB), early_embed)
                self.cnn, self.head = cnn(3 + early_embed, width), mlp(feat)
            if kind == "intermediate fusion":
                self.embed = nn.Embedding(len(VOCAB), embed)
                self.cnn, self.head = cnn(3, width), mlp(feat + embed)

        def forward(self, x, w):
            k = self.kind
            if k == "word only":
                return self.word_head(self.embed(w))
            x = self.norm(x)
            if k == "image only":
                return self.head(self.cnn(x))
            if k == "early fusion":  # the word as extra input channels, constant over the image
                e = self.embed(w)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
                return self.head(self.cnn(torch.cat([x, e], dim=1)))
            if k == "intermediate fusion":
                return self.head(torch.cat([self.cnn(x), self.embed(w)], dim=1))
            return (self.head(self.cnn(x)) + self.word_head(self.embed(w))) / 2  # late: mean of logits

    return FusionNet


def make_net(kind: str, seed: int = 0):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _net_class()(kind)


def parameters(kind: str) -> int:
    return sum(p.numel() for p in make_net(kind).parameters())


def predict_logits(net, x, w, batch: int = 600) -> np.ndarray:
    import torch

    net.eval()
    with torch.inference_mode():
        return torch.cat([net(x[i:i + batch], w[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def case_logits(net, data: FusionData) -> np.ndarray:
    """Held-out logits (4, N, C) for the CASES: both present, image missing, word missing, both missing."""
    import torch

    n = len(data.x_test)
    out = []
    for img_ok, word_ok in CASES:
        x, w = blank(data.x_test, data.w_test, torch.full((n,), not img_ok), torch.full((n,), not word_ok),
                     data.fill)
        out.append(predict_logits(net, x, w))
    return np.stack(out).astype(np.float32)


def state_of(net) -> dict:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def load_net(kind: str, state: dict):
    import torch

    net = make_net(kind)
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return net.eval()


# --- training ---------------------------------------------------------------------------------


def encoder_data(n: int, seed: int, n_test: int = 300) -> FusionData:
    """The pretraining task: NAME the shape (labels = shape ids), on its own crops (its own seed;
    the last ``n_test`` held out). Words play no part."""
    import torch

    images, shapes, words, _ = make_pairs(n + n_test, PRETRAIN_SEED + seed)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)
    y, w = torch.from_numpy(shapes), torch.from_numpy(words)
    return FusionData(x[:n], w[:n], y[:n], x[n:], w[n:], y[n:], tuple(float(v) for v in x[:n].mean(dim=(0, 2, 3))),
                      seed)


def pretrain_encoder(*, n: int = PRETRAIN_N, epochs: int = PRETRAIN_EPOCHS, seed: int = 0, report=None,
                     deadline=None) -> tuple[dict, float]:
    """An image encoder trained to name the shape (another task, other images), like an ImageNet
    backbone: (the state dict of its CNN, which every image branch then starts from, and its held-out
    shape-naming accuracy)."""
    data = encoder_data(n, seed)
    net, hist = train_one("image only", data, epochs=epochs, seed=seed, report=report, deadline=deadline,
                          batch_size=32)
    return {k: v.detach().clone() for k, v in net.cnn.state_dict().items()}, hist[-1]["test_accuracy"]


_ENCODERS: dict[int, tuple[dict, float]] = {}  # seed -> pretrained encoder: it depends on nothing else
_ENCODERS_LOCK = threading.Lock()


def _encoder_for(seed: int) -> tuple[dict | None, float | None]:
    with _ENCODERS_LOCK:
        return _ENCODERS.get(seed, (None, None))


def _keep_encoder(seed: int, encoder: dict, accuracy: float) -> None:
    with _ENCODERS_LOCK:
        _ENCODERS[seed] = (encoder, accuracy)
        while len(_ENCODERS) > 4:  # bounded: the oldest goes first
            _ENCODERS.pop(next(iter(_ENCODERS)))


def init_from_encoder(net, encoder: dict) -> None:
    """Copy the pretrained CNN into ``net``'s image branch. Early fusion's first conv has extra
    input channels for the word: those weights keep their random initial values."""
    if not hasattr(net, "cnn"):
        return
    state = dict(encoder)
    own = net.cnn.state_dict()
    first = next(k for k in own if k.endswith("weight") and own[k].dim() == 4)
    if own[first].shape != state[first].shape:
        w = own[first].clone()  # the word channels keep their random initial weights
        w[:, :state[first].shape[1]] = state[first]
        state[first] = w
    net.cnn.load_state_dict(state)


def train_one(kind: str, data: FusionData, *, epochs: int, seed: int, p_train: float = 0.0,
              batch_size: int = 64, lr: float = 1e-2, report: Callable | None = None, deadline=None,
              encoder: dict | None = None) -> tuple:
    """Train one model; returns (net, history rows {"epoch", "loss", "test_accuracy"}).
    ``report(done_fraction_of_this_model, text)`` is called at least every core.jobs.REPORT_EVERY_S."""
    import torch
    import torch.nn.functional as F

    from core.runtime import torch_threads

    report = report or (lambda frac, text: None)
    net = make_net(kind, seed)
    if encoder is not None:
        init_from_encoder(net, encoder)
    n = len(data.x_train)
    gen = torch.Generator().manual_seed(seed)
    history = []
    pace = Pacer(deadline)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        steps = epochs * ((n + batch_size - 1) // batch_size)
        sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
                 if steps >= 10 else None)  # a handful of steps: constant lr (OneCycle needs a few per phase)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen)
            drop = torch.rand(n, generator=gen) < p_train  # this pair loses a modality this epoch...
            which = torch.rand(n, generator=gen) < 0.5  # ...the image (True) or the word (False)
            total = 0.0
            net.train()
            for i in range(0, n, batch_size):
                if pace.due():
                    report((epoch + i / n) / epochs, f"{kind}: epoch {epoch + 1}/{epochs}, {i}/{n} pairs")
                idx = order[i:i + batch_size]
                x, w = blank(data.x_train[idx], data.w_train[idx], drop[idx] & which[idx], drop[idx] & ~which[idx],
                             data.fill)
                loss = F.cross_entropy(net(x, w), data.y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total += loss.item() * len(idx)
            pred = predict_logits(net, data.x_test, data.w_test).argmax(1) if len(data.x_test) else np.zeros(0)
            acc = float((torch.from_numpy(pred) == data.y_test).float().mean()) if len(pred) else float("nan")
            history.append({"epoch": epoch + 1, "loss": total / n, "test_accuracy": acc})
            net.train()
            report((epoch + 1) / epochs, f"{kind}: epoch {epoch + 1}/{epochs}, held-out accuracy {acc:.1%}")
    net.eval()
    return net, history


def train(*, n_train: int = N_TRAIN, epochs: int = EPOCHS, seed: int = 0, p_train: float = P_TRAIN,
          pretrained: bool = True, models: tuple[str, ...] = MODELS, progress: Callable | None = None, deadline=None,
          n_test: int = N_TEST) -> dict:
    """Every model in ``models`` trained on the same pairs (same seed, batch order and dropped
    modalities), their image branches started from one pretrained shape encoder (``pretrained``) or
    from random weights. Plain data: {"history": [{"model", "epoch", "loss", "test_accuracy"}],
    "accuracy": {model: final held-out accuracy}, "logits": {model: (4, N, C) case logits},
    "state": {model: state dict as numpy}, "seconds": {model: s}, "encoder_accuracy", "y_test",
    "w_test", "fill", "settings", "total_seconds"}. ``progress(frac, text, partial=history so far)``."""
    t0 = time.perf_counter()
    progress = progress or (lambda *a, **k: None)
    units = len(models) + (1 if pretrained else 0)  # the pretraining costs about one model's run
    out = {"history": [], "accuracy": {}, "logits": {}, "state": {}, "seconds": {}, "encoder_accuracy": None,
           "settings": {"n_train": n_train, "epochs": epochs, "seed": seed, "p_train": p_train,
                        "pretrained": pretrained}}
    encoder = None
    if pretrained:
        t1 = time.perf_counter()
        encoder, out["encoder_accuracy"] = _encoder_for(seed)
        if encoder is None:
            encoder, out["encoder_accuracy"] = pretrain_encoder(
                seed=seed, deadline=deadline,
                report=lambda frac, text: progress(frac / units, f"pretraining the image encoder (naming shapes): "
                                                   f"{text}", partial=[]))
            _keep_encoder(seed, encoder, out["encoder_accuracy"])
        out["seconds"]["encoder"] = time.perf_counter() - t1
    progress(1 / units if pretrained else 0.0, "drawing the pairs", partial=[])
    data = fusion_data(n_train=n_train, n_test=n_test, seed=seed)
    out.update(y_test=data.y_test.numpy().copy(), w_test=data.w_test.numpy().copy(), fill=data.fill)
    for k, kind in enumerate(models):
        t1 = time.perf_counter()
        done = list(out["history"])
        offset = k + (1 if pretrained else 0)

        def report(frac, text, offset=offset, done=done):
            progress((offset + frac) / units, text, partial=done)

        net, hist = train_one(kind, data, epochs=epochs, seed=seed, p_train=p_train, report=report,
                              deadline=deadline, encoder=encoder)
        out["history"] += [{"model": kind, **row} for row in hist]
        out["accuracy"][kind] = hist[-1]["test_accuracy"]
        out["logits"][kind] = case_logits(net, data)
        out["state"][kind] = state_of(net)
        out["seconds"][kind] = time.perf_counter() - t1
    out["total_seconds"] = time.perf_counter() - t0
    progress(1.0, "done", partial=out["history"])
    return out


# --- scoring with missing modalities ----------------------------------------------------------


def missing_masks(n: int, p: float, missing: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Which held-out pairs lose their image / word at missing rate ``p``. One fixed uniform draw per
    pair and modality, missing when below ``p``: a larger p removes a superset, p = 0 nothing, p = 1
    everything chosen."""
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}")
    u = np.random.default_rng([MISSING_SEED, seed]).random((n, 2))
    img = (u[:, 0] < p) if missing in ("image", "each independently") else np.zeros(n, bool)
    word = (u[:, 1] < p) if missing in ("word", "each independently") else np.zeros(n, bool)
    return img, word


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def dropout_scores(logits: np.ndarray, y: np.ndarray, p: float, missing: str, seed: int = 0) -> dict:
    """Held-out accuracy, log-loss and mean confidence when each pair loses the chosen modality with
    probability ``p``, read from the stored case logits (4, N, C): no network runs."""
    img, word = missing_masks(len(y), p, missing, seed)
    case = np.where(img & word, 3, np.where(word, 2, np.where(img, 1, 0)))
    z = logits[case, np.arange(len(y))]
    prob = _softmax(z.astype(np.float64))
    return {"accuracy": float((z.argmax(1) == y).mean()),
            "log_loss": float(-np.log(np.clip(prob[np.arange(len(y)), y], 1e-12, None)).mean()),
            "confidence": float(prob.max(1).mean()),
            "missing_image": float(img.mean()), "missing_word": float(word.mean())}


P_GRID = tuple(float(v) for v in np.round(np.linspace(0, 1, 11), 2))


def dropout_curve(result: dict, missing: str, grid=P_GRID, seed: int = 0) -> list[dict]:
    """Rows {"model", "p", "accuracy", "log_loss", "confidence"} for every stored model and p in ``grid``."""
    rows = []
    for kind, logits in result["logits"].items():
        for p in grid:
            s = dropout_scores(logits, result["y_test"], float(p), missing, seed)
            rows.append({"model": kind, "p": float(p), "accuracy": s["accuracy"], "log_loss": s["log_loss"],
                         "confidence": s["confidence"]})
    return rows


def summary_rows(result: dict, p: float = 0.0, missing: str = "image") -> list[dict]:
    """One CSV/table row per model: final accuracy, and the scores at test-time missing rate p."""
    rows = []
    for kind in result["accuracy"]:
        s = dropout_scores(result["logits"][kind], result["y_test"], p, missing)
        rows.append({"model": kind, "held_out_accuracy": result["accuracy"][kind], "chance": CHANCE,
                     "missing": missing, "p_missing": p, "accuracy_with_missing": s["accuracy"],
                     "log_loss_with_missing": s["log_loss"], "train_seconds": round(result["seconds"][kind], 2),
                     **result["settings"]})
    return rows


# --- one example -----------------------------------------------------------------------------


def crop(rgb: np.ndarray, box=None, *, margin: float = 0.3, size: int = SIZE) -> np.ndarray:
    """A size x size crop: a square around ``box`` (x1, y1, x2, y2) grown by ``margin`` (the scale
    of the training crops), or the image's centre square when ``box`` is None."""
    import cv2

    h, w = rgb.shape[:2]
    if box is None:
        side, cx, cy = min(h, w), w / 2, h / 2
    else:
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(1, int(round(min(side, h, w))))
    x0 = int(round(np.clip(cx - side / 2, 0, w - side)))
    y0 = int(round(np.clip(cy - side / 2, 0, h - side)))
    part = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side, :3])
    return cv2.resize(part, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)


def predict_example(nets: dict, rgb32: np.ndarray, word: int, fill: tuple) -> dict[str, np.ndarray]:
    """Class probabilities of each net for one crop (None = missing image) and word id (UNK = missing)."""
    import torch

    if rgb32 is None:
        x = torch.tensor(fill, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, SIZE, SIZE)
    else:
        x = torch.from_numpy(np.ascontiguousarray(rgb32)).permute(2, 0, 1)[None].float().div(255.0)
    w = torch.tensor([int(word)])
    return {kind: _softmax(predict_logits(net, x, w)[0].astype(np.float64)) for kind, net in nets.items()}
