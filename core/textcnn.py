"""A Kim-style 1-D CNN for sentence classification, trained live on core.textdata's reviews.

Pipeline: tokenizer -> vocabulary (ids; unseen words -> ``<unk>``) -> learned word embeddings
(E numbers per word) -> 1-D convolutions of widths w (each filter reads w consecutive word
vectors: a learned n-gram detector) -> ReLU -> max over time (one number per filter: how
strongly its n-gram occurs anywhere) -> a linear head on the concatenated pooled values.

``explain`` opens the forward pass for one sentence: each filter's activation at every
position, where the max was taken (the n-gram it picked) and the filter's contribution to the
predicted class's logit (pooled value x head weight; they sum with the bias to the logit).

Padding: a batch is padded with ``<pad>`` (id 0, a zero embedding), and window positions that
start past ``len - w`` are masked to -inf before the max, so a sentence's features do not depend
on the batch it sits in. A sentence shorter than the widest filter is padded to that width.

torch is imported inside functions; importing this module is cheap.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from core.jobs import Pacer

PAD, UNK = "<pad>", "<unk>"
N_FILTERS = 16  # per width
WIDTH_CHOICES = {"1-2-3": (1, 2, 3), "2-3": (2, 3), "1-2": (1, 2), "3-4-5": (3, 4, 5), "2": (2,), "1": (1,)}
BAG_OF_WORDS = (1,)
# The recipe (train() and compare() defaults; the page's controls start here)
DEFAULT_WIDTHS = "1-2-3"  # a WIDTH_CHOICES key
EMB = 32
EPOCHS = 8

_CONTRACTIONS = ((re.compile(r"\bcan't\b"), "can not"), (re.compile(r"\bwon't\b"), "will not"),
                 (re.compile(r"n't\b"), " not"))
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words and single punctuation marks; "isn't" -> "is", "not" (so the negation
    is the same token however it was written). Apostrophes in other words stay in the word."""
    s = str(text).lower().replace("\u2019", "'")
    for pattern, repl in _CONTRACTIONS:
        s = pattern.sub(repl, s)
    return _TOKEN.findall(s)


@dataclass(frozen=True)
class Vocab:
    words: tuple[str, ...]  # index -> word; 0 is <pad>, 1 is <unk>

    @classmethod
    def build(cls, texts: Sequence[str], min_count: int = 1) -> "Vocab":
        counts: dict[str, int] = {}
        for t in texts:
            for w in tokenize(t):
                counts[w] = counts.get(w, 0) + 1
        kept = sorted(w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK))
        return cls((PAD, UNK, *kept))

    @property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        index = self.index
        return [index.get(w, 1) for w in tokenize(text)]

    def shown(self, text: str) -> list[str]:
        """The tokens as the model sees them (unknown words as <unk>)."""
        index = self.index
        return [w if w in index else UNK for w in tokenize(text)]


def make_model(vocab_size: int, emb: int, widths: Sequence[int], *, n_filters: int = N_FILTERS,
               n_classes: int = 2, dropout: float = 0.3, seed: int = 0):
    import torch
    from torch import nn

    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.widths = tuple(int(w) for w in widths)
            self.embed = nn.Embedding(vocab_size, emb, padding_idx=0)
            self.convs = nn.ModuleList(nn.Conv1d(emb, n_filters, w) for w in self.widths)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(n_filters * len(self.widths), n_classes)

        def features(self, ids, lengths):
            """(pooled (N, F_total), [conv activations per width (N, F, T_w) with -inf past the end])."""
            x = self.embed(ids).transpose(1, 2)  # (N, E, T)
            pooled, acts = [], []
            for w, conv in zip(self.widths, self.convs):
                a = torch.relu(conv(x))  # (N, F, T - w + 1)
                valid = torch.clamp(lengths - w + 1, min=1)  # positions whose window starts in the sentence
                pos = torch.arange(a.shape[2], device=a.device)
                a = a.masked_fill(pos[None, None, :] >= valid[:, None, None], float("-inf"))
                acts.append(a)
                pooled.append(a.amax(dim=2))
            return torch.cat(pooled, dim=1), acts

        def forward(self, ids, lengths):
            pooled, _ = self.features(ids, lengths)
            return self.head(self.drop(pooled))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TextCNN()


def batch(ids_list: Sequence[Sequence[int]], min_len: int):
    """Padded (N, T) id tensor and lengths; every row at least ``min_len`` long."""
    import torch

    lengths = [max(len(x), 1) for x in ids_list]
    t = max(max(lengths, default=1), min_len)
    out = torch.zeros((len(ids_list), t), dtype=torch.long)
    for i, x in enumerate(ids_list):
        out[i, : len(x)] = torch.tensor(list(x), dtype=torch.long)
    return out, torch.tensor(lengths, dtype=torch.long)


def architecture(vocab_size: int, emb: int, widths: Sequence[int], n_filters: int = N_FILTERS,
                 length: int = 12) -> list[dict]:
    """The layers and their shapes for a sentence of ``length`` tokens."""
    rows = [{"layer": "tokens → ids", "output shape": f"{length}", "parameters": 0},
            {"layer": f"embedding ({vocab_size} words × {emb})", "output shape": f"{length} × {emb}",
             "parameters": vocab_size * emb}]
    for w in widths:
        rows.append({"layer": f"conv1d width {w} ({n_filters} filters) + ReLU",
                     "output shape": f"{n_filters} × {max(length - w + 1, 1)}",
                     "parameters": n_filters * (emb * w + 1)})
    total = n_filters * len(widths)
    rows.append({"layer": "max over time (each filter → 1 number)", "output shape": f"{total}", "parameters": 0})
    rows.append({"layer": "linear head (dropout 0.3 in training)", "output shape": "2", "parameters": total * 2 + 2})
    return rows


@dataclass
class Trained:
    model: object
    vocab: Vocab
    widths: tuple[int, ...]
    emb: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _encode_all(vocab: Vocab, sents) -> list[list[int]]:
    return [vocab.encode(s.text) for s in sents]


def predict_proba(model, vocab: Vocab, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    import torch

    model.eval()
    min_len = max(model.widths)
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            ids, lengths = batch([vocab.encode(t) for t in texts[i:i + batch_size]], min_len)
            out.append(torch.softmax(model(ids, lengths), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


def subset_accuracy(model, vocab: Vocab, sents) -> dict[str, float]:
    """Held-out accuracy overall and on the negation subsets."""
    probs = predict_proba(model, vocab, [s.text for s in sents])
    pred = probs.argmax(1)
    y = np.array([s.label for s in sents])
    ok = pred == y

    def acc(mask):
        mask = np.asarray(mask, dtype=bool)
        return float(ok[mask].mean()) if mask.any() else float("nan")

    return {"test_accuracy": acc(np.ones(len(sents))),
            "negation": acc([s.has_negation for s in sents]),
            "negated_adjective": acc([s.negated for s in sents]),
            "no_negation": acc([not s.has_negation for s in sents])}


def _partial(run: Trained, label: str) -> list[dict]:
    return [{"model": label or "text CNN", **row} for row in run.history]


def train(data, *, widths: Sequence[int] = WIDTH_CHOICES[DEFAULT_WIDTHS], emb: int = EMB, epochs: int = EPOCHS,
          seed: int = 0, batch_size: int = 32, lr: float = 5e-3, n_filters: int = N_FILTERS,
          progress: Callable | None = None, deadline=None, label: str = "",
          fraction: tuple[float, float] = (0.0, 1.0)) -> Trained:
    """Train a fresh TextCNN on ``data`` (a core.textdata.TextSet). Deterministic for ``seed``:
    init and dropout from a forked global RNG, shuffling from its own Generator, one torch
    thread. ``progress(frac, text, partial=history)`` at least every 0.5 s; ``fraction`` maps
    this run into a part of a longer job's bar."""
    import torch
    import torch.nn.functional as F

    from core.runtime import torch_threads

    t0 = time.perf_counter()
    report = progress or (lambda *a, **k: None)
    lo, hi = fraction
    vocab = Vocab.build([s.text for s in data.train])
    x_ids = _encode_all(vocab, data.train)
    y = torch.tensor([s.label for s in data.train], dtype=torch.long)
    widths = tuple(int(w) for w in widths)
    model = make_model(len(vocab), emb, widths, n_filters=n_filters, seed=seed)
    run = Trained(model, vocab, widths, emb)
    n = len(x_ids)
    gen = torch.Generator().manual_seed(seed)
    pace = Pacer(deadline)
    name = f"{label}: " if label else ""
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for epoch in range(epochs):
            order = torch.randperm(n, generator=gen).tolist()
            total = 0.0
            model.train()
            for i in range(0, n, batch_size):
                if pace.due():
                    report(lo + (hi - lo) * (epoch + i / n) / epochs,
                           f"{name}epoch {epoch + 1}/{epochs}: {i}/{n} sentences", partial=_partial(run, label))
                idx = order[i:i + batch_size]
                ids, lengths = batch([x_ids[k] for k in idx], max(widths))
                loss = F.cross_entropy(model(ids, lengths), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            row = {"epoch": epoch + 1, "loss": total / n, **subset_accuracy(model, vocab, data.test)}
            model.train()
            run.history.append(row)
            report(lo + (hi - lo) * (epoch + 1) / epochs,
                   f"{name}epoch {epoch + 1}/{epochs}: loss {row['loss']:.3f}, held-out {row['test_accuracy']:.1%}",
                   partial=_partial(run, label))
    model.eval()
    run.seconds = time.perf_counter() - t0
    return run


def compare(*, widths: Sequence[int] = WIDTH_CHOICES[DEFAULT_WIDTHS], emb: int = EMB, epochs: int = EPOCHS,
            seed: int = 0, data=None, progress: Callable | None = None, deadline=None) -> dict:
    """The chosen CNN and a bag-of-words CNN (width-1 filters only, the same number of filters
    in total), same data, seed, optimiser and order. Plain data back (picklable): the curves,
    the final subset accuracies, the seconds and both state dicts with their vocabulary."""
    from core.textdata import make_text_set

    data = data if data is not None else make_text_set()
    widths = tuple(int(w) for w in widths)
    name = "widths " + "/".join(map(str, widths))
    runs = {name: train(data, widths=widths, emb=emb, epochs=epochs, seed=seed, progress=progress,
                        deadline=deadline, label=name, fraction=(0.0, 0.5))}
    bow = "bag of words (width 1)"
    if widths != BAG_OF_WORDS:
        done = [{"model": name, **row} for row in runs[name].history]
        report = progress or (lambda *a, **k: None)

        def second(frac, text, partial=None):  # the stopped-run chart keeps the first model's curve
            report(frac, text, partial=done + list(partial or []))

        runs[bow] = train(data, widths=(1,) * len(widths), emb=emb, epochs=epochs, seed=seed,
                          progress=second, deadline=deadline, label=bow, fraction=(0.5, 1.0))
    curve = [{"model": k, **row} for k, r in runs.items() for row in r.history]
    main = runs[name]
    return {
        "main": name, "bow": bow if bow in runs else None, "curve": curve,
        "final": {k: r.history[-1] for k, r in runs.items()},
        "seconds": {k: r.seconds for k, r in runs.items()},
        "widths": widths, "emb": emb, "vocab": list(main.vocab.words),
        "state": {k: {p: v.detach().numpy().copy() for p, v in r.model.state_dict().items()} for k, r in runs.items()},
        "model_widths": {k: r.widths for k, r in runs.items()},
    }


def load_model(vocab_words: Sequence[str], widths: Sequence[int], emb: int, state: dict):
    """Rebuild a trained TextCNN from :func:`compare`'s plain state (eval mode)."""
    import torch

    n_filters = int(state["convs.0.weight"].shape[0])
    model = make_model(len(vocab_words), emb, widths, n_filters=n_filters)
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return model.eval()


def explain(model, vocab: Vocab, sentence: str) -> dict:
    """One sentence through the trained net, opened up.

    Returns ``tokens`` (as the model sees them, ``<unk>`` for unknown words, padded with
    ``<pad>`` to the widest filter), ``probs``, ``pred``, ``logits``, ``bias`` (the head's bias of
    the predicted class) and ``filters``: one dict per filter with ``width``, ``channel``,
    ``activations`` (ReLU output at each valid position), ``argmax`` (the position the max
    picked), ``ngram`` (the tokens under it), ``pooled`` (the max-over-time value the head
    sees), ``weight`` (head weight to the predicted class), ``contribution`` (pooled x weight: the
    contributions plus ``bias`` are the predicted logit) and ``evidence`` (pooled x (weight to the
    predicted class - weight to the other): they plus the bias difference are the log-odds)."""
    import torch

    model.eval()
    tokens = vocab.shown(sentence)
    ids = vocab.encode(sentence)
    n_tok = len(ids)
    wmax = max(model.widths)
    padded = tokens + [PAD] * max(0, wmax - len(tokens))
    x, lengths = batch([ids], wmax)
    with torch.inference_mode():
        pooled, acts = model.features(x, lengths)
        logits = model.head(pooled)[0]
    probs = torch.softmax(logits, dim=0).numpy()
    pred = int(probs.argmax())
    other = 1 - pred
    W = model.head.weight.detach().numpy()
    b = model.head.bias.detach().numpy()
    pooled_np = pooled[0].numpy()
    filters = []
    k = 0
    for w, a in zip(model.widths, acts):
        a = a[0].numpy()
        valid = max(n_tok - w + 1, 1)
        for c in range(a.shape[0]):
            act = a[c, :valid].copy()
            p = int(np.argmax(act))
            filters.append({
                "index": k, "width": w, "channel": c, "activations": act, "argmax": p,
                "ngram": padded[p:p + w], "pooled": float(pooled_np[k]),
                "weight": float(W[pred, k]), "contribution": float(pooled_np[k] * W[pred, k]),
                "evidence": float(pooled_np[k] * (W[pred, k] - W[other, k])),
            })
            k += 1
    return {"tokens": padded, "n_tokens": n_tok, "probs": probs, "pred": pred,
            "logits": logits.numpy(), "bias": float(b[pred]), "bias_evidence": float(b[pred] - b[other]),
            "filters": filters, "unknown": [t for t in tokens if t == UNK]}


def top_filters(explained: dict, k: int = 5) -> list[dict]:
    """The ``k`` filters that pushed hardest towards the prediction (largest evidence)."""
    return sorted(explained["filters"], key=lambda f: -f["evidence"])[:k]
