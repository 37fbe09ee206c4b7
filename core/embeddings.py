"""Image embeddings and similarity search: pure functions behind the Embeddings page.

    feats = embed(clf, images)["avg"]             # {"stage1": (N, 16), ..., "head": (N, 1280), "raw pixels": (N, 768)}
    feats["head"]                                 # global-average-pooled, L2-normalised rows
    idx, sims = cosine_top_k(q, feats["head"], k=5, exclude=3)
    precision_at_k(feats["head"], labels, k=5)    # leave-one-out: share of the k neighbours with the same label
    xy = project(feats["head"], "t-SNE", seed=0)  # (N, 2) map, seeded

An embedding here is what a pretrained CNN computes before its classifier: the output of one
stage (EfficientNet-Lite0's ``stage1``..``stage7`` and ``head``, ResNet-18's ``layer1``..``layer4``
or the shapes CNN's ``block1``..``block4``: every stage :func:`core.classifier.anatomy` names but
the first convolution), averaged over all positions (global average pooling, what the ImageNet
networks' own heads do; or the maximum, global max pooling, which is what the shapes CNN's head
uses) into one vector per image, then scaled to length 1, so that the dot product of two
embeddings is their cosine similarity. The layers are read with forward hooks
(:class:`core.hooks.capture`, which holds the shared model's lock and removes the hooks on
exit). ``RAW`` ("raw pixels") is the baseline: the image shrunk to 16 x 16, minus its own mean,
L2-normalised (a correlation of thumbnails).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

RAW = "raw pixels"
RAW_SIDE = 16
SHAPES_SIDE = 64  # the shapes CNN sees every image at its training size
METHODS = ("PCA", "t-SNE")
EPS = 1e-12

Progress = Callable[[float, str], None]


def _quiet(*_a, **_k) -> None:
    return None


def embedding_layers(clf) -> tuple[str, ...]:
    """The pooled stages of ``clf`` (a core.classifier.Classifier), input side first: all its
    named layers but the first convolution (EfficientNet: stage1..stage7, head; ResNet:
    layer1..layer4; shapes CNN: block1..block4)."""
    return tuple(name for name in clf.layers if name != clf.first_conv)


def input_side(clf) -> int:
    """Square side every image is resized to before the network (ImageNet models: 224, shapes CNN: 64)."""
    return clf.input_size or SHAPES_SIDE


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, EPS)


def _square(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    rgb = np.ascontiguousarray(rgb[..., :3]) if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
    if rgb.shape[:2] == (side, side):
        return rgb
    shrink = min(rgb.shape[:2]) > side
    return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def raw_pixels(images: Sequence[np.ndarray], side: int = RAW_SIDE) -> np.ndarray:
    """Baseline embedding: each image at ``side`` x ``side`` RGB in [0, 1], minus its mean, L2-normalised."""
    rows = np.stack([_square(img, side).astype(np.float32).reshape(-1) / 255.0 for img in images]) \
        if len(images) else np.zeros((0, side * side * 3), np.float32)
    return l2_normalise(rows - rows.mean(axis=1, keepdims=True))


POOLS = ("avg", "max")
POOL_NAMES = {"avg": "global average pool", "max": "global max pool"}


def head_pool(clf) -> str:
    """The pooling the network's own classifier head uses: the ImageNet models (EfficientNet,
    ResNet, MobileNet) average, the shapes CNN takes the max."""
    return "max" if clf.kind == "shapes" else "avg"


def embed(clf, images: Sequence[np.ndarray], *, pools: Sequence[str] = POOLS, layers: Sequence[str] | None = None,
          batch: int = 8, progress: Progress = _quiet) -> dict[str, dict[str, np.ndarray]]:
    """{pool: {layer: (N, C) float32 unit rows, ..., RAW: (N, 768)}} for every pooled stage of
    ``clf`` and every pooling in ``pools`` ("avg": mean over positions, "max": maximum).

    One forward pass per batch records all the layers at once (hooks under the model's lock),
    with one CPU thread: on the shared 2-core server two threads spin-wait on each other
    (measured while it was busy: 59 images with EfficientNet-Lite0 in 12-13 s with two threads,
    3.7-4.1 s with one)."""
    import torch

    from core.acceleration import num_threads
    from core.hooks import capture

    layers = tuple(layers or embedding_layers(clf))
    for pool in pools:
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}")
    side = input_side(clf)
    device = next(clf.model.parameters()).device
    parts: dict[tuple[str, str], list[np.ndarray]] = {(p, name): [] for p in pools for name in layers}
    n = len(images)
    progress(0.0, f"Embedding {n} images…")
    for start in range(0, n, batch):
        chunk = np.stack([_square(img, side) for img in images[start:start + batch]])
        x = torch.from_numpy(chunk).permute(0, 3, 1, 2).float().div(255.0).to(device)
        with capture(clf.model, {name: clf.layers[name] for name in layers}) as seen, torch.inference_mode(), \
                num_threads(1):
            clf.model(clf.normalise(x))
            for name in layers:
                maps = seen.activations[name].float()
                for p in pools:
                    pooled = maps.mean(dim=(2, 3)) if p == "avg" else maps.amax(dim=(2, 3))
                    parts[(p, name)].append(pooled.cpu().numpy())
        done = min(start + batch, n)
        progress(done / n, f"Embedded {done} of {n} images")
    raw = raw_pixels(images)
    out: dict[str, dict[str, np.ndarray]] = {}
    for p in pools:
        out[p] = {name: l2_normalise(np.concatenate(parts[(p, name)])) if n else np.zeros((0, 0), np.float32)
                  for name in layers}
        out[p][RAW] = raw
    return out


def cosine_top_k(query: np.ndarray, gallery: np.ndarray, k: int, *,
                 exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` gallery rows most similar to ``query``,
    most similar first (ties: lower index first); ``exclude`` leaves one row out (the query itself)."""
    q = l2_normalise(np.asarray(query, np.float32).reshape(-1))
    g = l2_normalise(gallery)
    sims = g @ q
    order = np.argsort(-sims, kind="stable")
    if exclude is not None:
        order = order[order != exclude]
    order = order[:max(int(k), 0)]
    return order, sims[order]


def neighbour_labels(features: np.ndarray, labels: Sequence, k: int) -> list[list]:
    """For every row: the labels of its ``k`` nearest other rows (cosine, leave-one-out)."""
    feats = l2_normalise(features)
    sims = feats @ feats.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    labels = list(labels)
    return [[labels[j] for j in row] for row in order]


def precision_at_k(features: np.ndarray, labels: Sequence, k: int) -> float:
    """Mean over rows of the share of its ``k`` nearest other rows that carry its label."""
    labels = list(labels)
    n = len(labels)
    if n < 2:
        raise ValueError("precision@k needs at least two items")
    k = min(int(k), n - 1)
    if k < 1:
        raise ValueError("k must be at least 1")
    found = neighbour_labels(features, labels, k)
    return float(np.mean([sum(lab == labels[i] for lab in row) / k for i, row in enumerate(found)]))


def chance_precision(labels: Sequence) -> float:
    """Expected precision@k of neighbours drawn at random (any k): mean over rows of
    (other rows with its label) / (other rows)."""
    labels = list(labels)
    n = len(labels)
    if n < 2:
        raise ValueError("chance needs at least two items")
    counts = {lab: labels.count(lab) for lab in set(labels)}
    return float(np.mean([(counts[lab] - 1) / (n - 1) for lab in labels]))


def perplexity_for(n: int) -> float:
    """t-SNE's perplexity for ``n`` points: 30 (the usual value) for large sets, about n / 4 for
    small ones (it must stay below n)."""
    return float(min(30.0, max(2.0, (n - 1) / 4)))


def project(features: np.ndarray, method: str, *, seed: int = 0) -> np.ndarray:
    """(N, 2) float32 map of the rows: ``"PCA"`` (the two directions of largest variance) or
    ``"t-SNE"`` (keeps near neighbours near; seeded, PCA start). Fewer than 4 rows: PCA only."""
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if method not in METHODS:
        raise ValueError(f"unknown projection {method!r}")
    out = np.zeros((n, 2), np.float32)
    if n < 2:
        return out
    from threadpoolctl import threadpool_limits

    # one BLAS/OpenMP thread: on a busy 2-core server t-SNE of 80 points took 5 s with the
    # default thread pool (threads spin-waiting on each other) and 0.4 s with one
    with threadpool_limits(1):
        if method == "t-SNE" and n >= 4:
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, perplexity=perplexity_for(n), init="pca", random_state=seed,
                      max_iter=500).fit_transform(x)
        else:
            xy = pca(x, min(2, n, x.shape[1]))
    out[:, :xy.shape[1]] = xy
    return out


def pca(x: np.ndarray, k: int) -> np.ndarray:
    """The rows of ``x`` on their ``k`` directions of largest variance: numpy's SVD of the
    centred data, with scikit-learn's sign rule (each direction's largest loading positive), so
    it equals ``sklearn.decomposition.PCA(k).fit_transform(x)`` without importing scikit-learn
    (about 0.8 s at a page's first visit on a cold server)."""
    centred = x - x.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    signs[signs == 0] = 1.0
    return (u[:, :k] * s[:k]) * signs[:k]


def gallery_digest(digests: Sequence[str], labels: Sequence[str]) -> str:
    """One key for a gallery: its images' digests and labels, in order."""
    h = hashlib.sha256()
    for d, lab in zip(digests, labels):
        h.update(f"{d}\x00{lab}\x01".encode())
    return h.hexdigest()[:24]


def layer_precision(features: dict[str, np.ndarray], labels: Sequence, k: int,
                    rows: Sequence[int]) -> list[dict]:
    """precision@k of each embedding in ``features`` on the subset ``rows`` (neighbours searched
    within that subset): [{"layer", "precision"}], in ``features``' order."""
    rows = list(rows)
    sub = [labels[i] for i in rows]
    return [{"layer": name, "precision": precision_at_k(feats[rows], sub, k)} for name, feats in features.items()]
