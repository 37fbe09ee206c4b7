"""Self-supervised (contrastive, SimCLR-style) learning on unlabelled shape crops.

Pure functions for the Self-supervised learning page (no Streamlit)::

    photo_views(rgb, seed)                 # two torchvision.transforms.v2 views of one image (a positive pair)
    augment(x, gen)                        # the same family of augmentations, batched, for training
    nt_xent(z1, z2, temperature)           # the SimCLR loss (normalised temperature-scaled cross-entropy)
    train_contrastive(recipe, ...)         # encoder + projection head trained WITHOUT labels
    linear_probe(f_train, y, f_test, ...)  # logistic regression on frozen features (labels only here)
    knn_accuracy(...), pca_2d(...)         # k-NN on cosine similarity; 2-D PCA (core.embeddings.pca)
    run(recipe, ...)                       # all of the above: trained vs random encoder, plain data out

The encoder is the project's shapes CNN trunk (``core.livetrain.make_model``: Normalise ->
ShapesNet conv blocks -> global max pool, 8*width features) with a 2-layer projection head.
Training draws ``n_unlabelled`` crops and throws their labels away on the spot
(:func:`unlabelled_crops` returns images only), so the contrastive loop cannot see a label.
The labelled data appear only afterwards: a small labelled subset trains the linear probe and
400 held-out crops score it, for the trained encoder and for the *same architecture with the
same seed's random initial weights* (the trained encoder's own starting point).

Every crop has a plain background and the training views are resampled to 32 px: on textured
backgrounds the easiest way to tell two crops apart is the texture, and 32-px views make a step
four times cheaper than 64-px ones, so a half-minute run gets enough steps to learn something.

Measured here (default recipe: 1600 crops, 10 epochs, batch 64, T = 0.2, 200 labelled crops,
400 held-out): linear probe 37.8 % / 35.0 % / 39.5 % on seeds 0 / 1 / 2 against 24.5 % / 23.8 % /
25.3 % for the random encoder (+13.3 / +11.3 / +14.3 points); chance is 16.7 %. About 16 s of
training on one quiet core (250 steps), ~25 s with drawing the crops and the probes. Contrastive learning is slow: the probe keeps
rising with more epochs. tests/test_selfsup.py asserts a 7-point margin over the random encoder.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from core.jobs import Pacer

NUM_CLASSES = 6  # len(core.shapes.SHAPE_CLASSES); not imported here so that importing this module loads no cv2
VIEW_SIZE = 32  # training views are resampled to 32 px (4x cheaper than 64) and probed at that size
UNLABELLED_SEED, LABELLED_SEED, TEST_SEED = 11_000_000, 12_000_000, 13_000_000


@dataclass(frozen=True)
class Recipe:
    n_unlabelled: int = 1600  # crops the encoder trains on, labels discarded
    epochs: int = 10
    batch_size: int = 64
    temperature: float = 0.2
    n_labelled: int = 200  # labelled crops for the linear probe
    n_test: int = 400  # held-out crops that score the probe
    width: int = 8
    lr: float = 1e-2
    seed: int = 0
    probe_each_epoch: bool = True  # a probe after every epoch (a curve), not only at the end
    background: str = "plain"  # of every crop (see the module doc)


# --- views --------------------------------------------------------------------------------------


def view_transform(size: int):
    """SimCLR's augmentation recipe in torchvision.transforms.v2 (uint8 CHW tensors in, out)."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(9, sigma=(0.1, 2.0))], p=0.5),
    ])


def photo_views(rgb: np.ndarray, seed: int, *, size: int = 160, n: int = 2) -> list[np.ndarray]:
    """``n`` random views (size x size RGB uint8) of one image; the same seed gives the same views.
    The global torch RNG is forked, so nothing else's randomness changes."""
    import torch

    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError("expected an (H, W, 3) RGB image")
    t = view_transform(size)
    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return [t(x).permute(1, 2, 0).contiguous().numpy() for _ in range(n)]


def _hue_rotation(theta):
    """(B, 3, 3) matrices rotating RGB about the grey axis by ``theta`` (radians): a hue shift."""
    import torch

    c, s = torch.cos(theta), torch.sin(theta)
    k = 1.0 / 3.0
    r = math.sqrt(1.0 / 3.0)
    m = torch.empty(len(theta), 3, 3)
    # Rodrigues' formula for the unit axis (1, 1, 1) / sqrt(3)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = c + (1 - c) * k
    m[:, 0, 1] = m[:, 1, 2] = m[:, 2, 0] = (1 - c) * k - r * s
    m[:, 0, 2] = m[:, 1, 0] = m[:, 2, 1] = (1 - c) * k + r * s
    return m


def augment(x, gen, *, out: int = VIEW_SIZE):
    """Batched SimCLR augmentations of [0, 1] crops (B, 3, H, W) -> (B, 3, out, out), each crop
    with its own random parameters from ``gen``: random resized crop (scale 0.5-1, aspect
    3/4-4/3) + horizontal flip + a random rotation, colour jitter with p = 0.8 (brightness,
    contrast, saturation 0.4, any hue), grayscale with p = 0.5, Gaussian blur (sigma 1) with
    p = 0.5. :func:`view_transform`'s recipe, vectorised (one call per batch, not per crop), with
    stronger colour distortion and a rotation: without them the cheapest way to match two views
    of a shape is its colour or its orientation, and the encoder learns those instead of shape."""
    import torch
    import torch.nn.functional as F

    b, _, h, w = x.shape
    u = lambda *shape: torch.rand(*shape, generator=gen)
    # random resized crop + flip, as one affine resampling
    scale = 0.5 + 0.5 * u(b)
    log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u(b)
    sx = torch.sqrt(scale * torch.exp(log_r)).clamp(max=1.0)
    sy = torch.sqrt(scale / torch.exp(log_r)).clamp(max=1.0)
    tx = (2 * u(b) - 1) * (1 - sx)
    ty = (2 * u(b) - 1) * (1 - sy)
    flip = torch.where(u(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    ang = u(b) * 2 * math.pi
    ca, sa = torch.cos(ang), torch.sin(ang)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = sx * flip * ca, -sy * sa, tx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sx * flip * sa, sy * ca, ty
    h = w = out
    grid = F.affine_grid(theta, (b, 3, h, w), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # colour jitter (p = 0.8): brightness, contrast, saturation, hue
    jit = (u(b) < 0.8).view(b, 1, 1, 1)
    grey_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    bright = (0.6 + 0.8 * u(b)).view(b, 1, 1, 1)
    contrast = (0.6 + 0.8 * u(b)).view(b, 1, 1, 1)
    sat = (0.6 + 0.8 * u(b)).view(b, 1, 1, 1)
    hue = (2 * u(b) - 1) * math.pi
    y = (x * bright).clamp(0, 1)
    mean = (y * grey_w).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    y = ((y - mean) * contrast + mean).clamp(0, 1)
    g = (y * grey_w).sum(1, keepdim=True)
    y = ((y - g) * sat + g).clamp(0, 1)
    y = torch.einsum("bij,bjhw->bihw", _hue_rotation(hue), y).clamp(0, 1)
    x = torch.where(jit, y, x)
    # grayscale (p = 0.2)
    g = (x * grey_w).sum(1, keepdim=True).expand(-1, 3, -1, -1)
    x = torch.where((u(b) < 0.5).view(b, 1, 1, 1), g, x)
    # Gaussian blur, sigma 1 (p = 0.5)
    k = torch.exp(-torch.arange(-2, 3, dtype=torch.float32) ** 2 / 2.0)
    k = k / k.sum()
    kern = (k[:, None] * k[None, :]).expand(3, 1, 5, 5)
    blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kern, groups=3)
    return torch.where((u(b) < 0.5).view(b, 1, 1, 1), blurred, x)


# --- loss -----------------------------------------------------------------------------------------


def nt_xent(z1, z2, temperature: float = 0.2):
    """SimCLR's NT-Xent loss for a batch of positive pairs (z1[i], z2[i]).

    Every one of the 2N embeddings is L2-normalised; for each, the softmax over its cosine
    similarities / T to the other 2N - 1 embeddings should put all the mass on its partner:
    loss = mean over the 2N anchors of -log(exp(s_pos / T) / sum_{k != anchor} exp(s_k / T))."""
    import torch
    import torch.nn.functional as F

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if z1.shape != z2.shape or z1.ndim != 2 or len(z1) < 2:
        raise ValueError("z1 and z2 must both be (N, D) with N >= 2")
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


# --- the network ---------------------------------------------------------------------------------


def make_encoder(seed: int = 0, width: int = 8):
    """(encoder, projection head). The encoder maps [0, 1] crops to 8*width features: the shapes
    CNN's conv trunk + global max pool (its classifier layer is dropped). Same seed, same weights."""
    import torch
    from torch import nn

    from core.livetrain import make_model

    net = make_model(seed, width=width)  # Normalise -> ShapesNet
    normalise, shapes = net[0], net[1]
    encoder = nn.Sequential(normalise, shapes.features, nn.AdaptiveMaxPool2d(1), nn.Flatten())
    d = 8 * width
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 32))
    return encoder, head


def features(encoder, x, batch: int = 512) -> np.ndarray:
    """Frozen encoder features (N, D) float32 for [0, 1] crops (resampled to VIEW_SIZE), eval mode."""
    import torch
    import torch.nn.functional as F

    if x.shape[-1] != VIEW_SIZE:
        x = F.interpolate(x, size=(VIEW_SIZE, VIEW_SIZE), mode="bilinear", antialias=True, align_corners=False)
    encoder.eval()
    with torch.inference_mode():
        return torch.cat([encoder(x[i:i + batch]) for i in range(0, len(x), batch)]).numpy()


def unlabelled_crops(n: int, seed: int, background: str = "textured"):
    """[0, 1] crops (n, 3, 64, 64) for contrastive training. The labels that the generator also
    returns are discarded here, so the training loop never receives them."""
    import torch

    from core.shapes import make_classification_set

    images, _ = make_classification_set(n, seed=UNLABELLED_SEED + seed, background=background)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0)


def labelled_crops(n: int, seed: int, *, offset: int, background: str = "textured"):
    import torch

    from core.shapes import make_classification_set

    images, labels = make_classification_set(n, seed=offset + seed, background=background)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0), labels


# --- evaluation on frozen features -------------------------------------------------------------------


def linear_probe(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, *,
                 num_classes: int = NUM_CLASSES, steps: int = 300, lr: float = 0.05,
                 weight_decay: float = 1e-3) -> float:
    """Held-out accuracy of multinomial logistic regression on frozen features.

    Features are standardised with the training subset's mean/std; the linear layer starts at
    zero and takes ``steps`` full-batch Adam steps (a convex problem: deterministic, no seed)."""
    import torch
    import torch.nn.functional as F

    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    xt = torch.from_numpy(((f_train - mu) / sd).astype(np.float32))
    xe = torch.from_numpy(((f_test - mu) / sd).astype(np.float32))
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    from core.runtime import torch_threads

    w = torch.zeros(xt.shape[1], num_classes, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    with torch_threads(1):  # 300 tiny steps: a second thread only spin-waits (measured: 3.9 s vs 0.2 s)
        for _ in range(steps):
            loss = F.cross_entropy(xt @ w + b, yt) + weight_decay * (w * w).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = (xe @ w + b).argmax(1).numpy()
    return float((pred == np.asarray(y_test)).mean())


def knn_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, *,
                 k: int = 5, num_classes: int = NUM_CLASSES) -> float:
    """Held-out accuracy of a k-nearest-neighbour vote on cosine similarity (votes weighted by
    similarity, so ties are broken by how close the neighbours are)."""
    a = f_train / (np.linalg.norm(f_train, axis=1, keepdims=True) + 1e-12)
    q = f_test / (np.linalg.norm(f_test, axis=1, keepdims=True) + 1e-12)
    sim = q @ a.T
    k = min(k, len(a))
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(q), num_classes))
    for j in range(k):
        np.add.at(votes, (np.arange(len(q)), np.asarray(y_train)[idx[:, j]]), sim[np.arange(len(q)), idx[:, j]])
    return float((votes.argmax(1) == np.asarray(y_test)).mean())


def pca_2d(f: np.ndarray) -> np.ndarray:
    """(N, 2) projection of centred features on their two leading principal axes, each axis'
    sign fixed so its largest-magnitude loading is positive (stable output): the lab's one PCA,
    :func:`core.embeddings.pca` (scikit-learn's ``PCA(2).fit_transform``), in float64."""
    from core.embeddings import pca

    return pca(np.asarray(f, dtype=np.float64), 2)


def class_separation(points: np.ndarray, labels: np.ndarray) -> float:
    """Share of the points' total variance that lies between the class means (0: the classes'
    centres coincide, 1: every class is a single point)."""
    p = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    mu = p.mean(0)
    total = ((p - mu) ** 2).sum()
    between = sum((y == c).sum() * ((p[y == c].mean(0) - mu) ** 2).sum() for c in np.unique(y))
    return float(between / total) if total > 0 else 0.0


def cosine_matrix(f: np.ndarray) -> np.ndarray:
    a = np.asarray(f, dtype=np.float64)
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-12)
    return a @ a.T


def view_matrix(encoder, images: list[np.ndarray], seed: int, *, size: int = 64) -> dict:
    """Two v2 views of each image, embedded by ``encoder``: the (2M, 2M) cosine-similarity matrix
    (views ordered a1, b1, a2, b2, ...), and how often each view's most similar other view is its
    own partner ("which view matches?")."""
    import torch

    views = []
    for i, img in enumerate(images):
        views.extend(photo_views(img, seed * 1000 + i, size=size))
    from core.runtime import torch_threads

    x = torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).float().div(255.0)
    with torch_threads(1):
        sim = cosine_matrix(features(encoder, x))
    m = len(views)
    partner = np.arange(m) ^ 1
    masked = sim.copy()
    np.fill_diagonal(masked, -np.inf)
    matched = masked.argmax(1) == partner
    pos = sim[np.arange(m), partner]
    neg = masked.copy()
    neg[np.arange(m), partner] = np.nan
    neg[~np.isfinite(neg)] = np.nan
    return {"sim": sim, "matched": float(matched.mean()), "positive_mean": float(pos.mean()),
            "negative_mean": float(np.nanmean(neg))}


# --- training -----------------------------------------------------------------------------------------


def train_contrastive(x_unlabelled, recipe: Recipe, *, on_epoch: Callable | None = None,
                      progress: Callable | None = None, deadline=None):
    """Train encoder + head with NT-Xent on two augmented views per crop. Takes images only.

    Returns (encoder, history) where history has one row per epoch: mean loss, and the fraction
    of views whose most similar other view in the batch is their own partner ("pair accuracy").
    ``on_epoch(encoder)`` may add figures to each row (e.g. a linear probe)."""
    import torch

    from core.runtime import torch_threads

    r = recipe
    report = progress or (lambda *a, **k: None)
    encoder, head = make_encoder(r.seed, r.width)
    params = list(encoder.parameters()) + list(head.parameters())
    n = len(x_unlabelled)
    bs = min(r.batch_size, n)
    batches = [(i, min(i + bs, n)) for i in range(0, n, bs) if min(i + bs, n) - i >= 2]
    gen = torch.Generator().manual_seed(r.seed)
    history: list[dict] = []
    pace = Pacer(deadline)
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        torch.manual_seed(r.seed)
        opt = torch.optim.AdamW(params, lr=r.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=max(1, r.epochs * len(batches)),
                                                    pct_start=0.2)
        for epoch in range(r.epochs):
            order = torch.randperm(n, generator=gen)
            total, hits, seen = 0.0, 0, 0
            for bi, (lo, hi) in enumerate(batches):
                if pace.due():
                    report((epoch + bi / len(batches)) / r.epochs,
                           f"epoch {epoch + 1}/{r.epochs}: batch {bi + 1}/{len(batches)}", partial=list(history))
                x = x_unlabelled[order[lo:hi]]
                v1, v2 = augment(x, gen), augment(x, gen)
                encoder.train()
                head.train()
                z1, z2 = head(encoder(v1)), head(encoder(v2))
                loss = nt_xent(z1, z2, r.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    m = hi - lo
                    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
                    s = z @ z.T
                    s.fill_diagonal_(-2.0)
                    partner = torch.cat([torch.arange(m, 2 * m), torch.arange(0, m)])
                    hits += int((s.argmax(1) == partner).sum())
                    seen += 2 * m
                total += loss.item() * (hi - lo)
            row = {"epoch": epoch + 1, "loss": total / max(1, sum(h - l for l, h in batches)),
                   "pair_accuracy": hits / max(1, seen)}
            if on_epoch is not None:
                row.update(on_epoch(encoder))
            history.append(row)
            report((epoch + 1) / r.epochs, f"epoch {epoch + 1}/{r.epochs}: NT-Xent {row['loss']:.3f}"
                   + (f", linear probe {row['probe_accuracy']:.1%}" if "probe_accuracy" in row else ""),
                   partial=list(history))
    encoder.eval()
    return encoder, history


def run(recipe: Recipe = Recipe(), *, progress: Callable | None = None, deadline=None) -> dict:
    """The whole experiment, as plain data (picklable): contrastive training on unlabelled crops,
    then the linear probe / k-NN / PCA for the trained encoder and for the random one."""
    from core.runtime import torch_threads

    r = recipe
    report = progress or (lambda *a, **k: None)
    t0 = time.perf_counter()
    report(0.0, "drawing the synthetic crops…")
    x_un = unlabelled_crops(r.n_unlabelled, r.seed, r.background)
    x_lab, y_lab = labelled_crops(r.n_labelled, r.seed, offset=LABELLED_SEED, background=r.background)
    x_te, y_te = labelled_crops(r.n_test, r.seed, offset=TEST_SEED, background=r.background)

    def evaluate(encoder) -> dict:
        with torch_threads(1):
            f_lab, f_te = features(encoder, x_lab), features(encoder, x_te)
        return {"probe_accuracy": linear_probe(f_lab, y_lab, f_te, y_te),
                "knn_accuracy": knn_accuracy(f_lab, y_lab, f_te, y_te), "_f_test": f_te}

    def on_epoch(encoder):
        out = evaluate(encoder)
        out.pop("_f_test")
        return out

    random_encoder, _ = make_encoder(r.seed, r.width)  # the trained encoder's own starting weights
    base = evaluate(random_encoder)
    t_train = time.perf_counter()
    encoder, history = train_contrastive(x_un, r, on_epoch=on_epoch if r.probe_each_epoch else None,
                                         progress=lambda f, text, partial=None: report(
                                             0.03 + 0.95 * f, text, partial=partial), deadline=deadline)
    train_seconds = time.perf_counter() - t_train
    final = evaluate(encoder)
    f_rand, f_tr = base.pop("_f_test"), final.pop("_f_test")
    report(1.0, "done")
    return {
        "recipe": asdict(r),
        "history": history,
        "trained": final,
        "random": base,
        "chance": 1.0 / NUM_CLASSES,
        "pca": {"random": pca_2d(f_rand).astype(np.float32), "trained": pca_2d(f_tr).astype(np.float32)},
        "test_labels": np.asarray(y_te),
        "state_dict": {k: v.detach().cpu().numpy().copy() for k, v in encoder.state_dict().items()},
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - t0,
    }


def encoder_from_state(state_dict: dict, width: int = 8):
    """A trained encoder rebuilt from :func:`run`'s ``state_dict`` (eval mode)."""
    import torch

    encoder, _ = make_encoder(0, width)
    encoder.load_state_dict({k: torch.as_tensor(v) for k, v in state_dict.items()})
    return encoder.eval()


def history_rows(result: dict) -> list[dict]:
    """Per-epoch rows with the recipe (for a CSV download)."""
    r = result["recipe"]
    return [{**row, "random_probe_accuracy": result["random"]["probe_accuracy"], "temperature": r["temperature"],
             "n_unlabelled": r["n_unlabelled"], "n_labelled": r["n_labelled"], "n_test": r["n_test"],
             "seed": r["seed"]} for row in result["history"]]
