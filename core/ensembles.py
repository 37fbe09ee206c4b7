"""Ensembles of small shapes CNNs trained live: averaging vs voting, size, disagreement, TTA.

The Ensembles page trains up to five shapes CNNs (:func:`core.livetrain.train`) that differ
only in their seed (initialisation and shuffling order) and, optionally, their width, on a
deliberately small training set so that each member is imperfect and they disagree::

    recipe = Recipe(members=5, n_train=800, epochs=5, seed=0, mixed_widths=True)
    result = train_ensemble(recipe, progress=..., deadline=...)   # plain, picklable data
    result["probs"]          # (M, N, C) held-out softmax of every member
    result["tta_probs"]      # (M, N, C) the same, averaged over flips and shifts
    result["state_dicts"]    # [{name: numpy array}] to rebuild a member (rebuild_members)

Everything after training is numpy on these arrays (:func:`soft_average`, :func:`hard_vote`,
:func:`size_curve`, :func:`disagreement_table`, :func:`nll`, :func:`ece`), so the page's
charts re-render instantly and the tests can feed hand-made probabilities.

Voting tie-break (documented and tested): when several classes get the same largest number
of votes, the vote goes to the tied class with the highest *averaged* probability, and if
that also ties, to the lowest class index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import combinations

import numpy as np

MAX_MEMBERS = 5
MIXED_WIDTHS = (4, 6, 8)  # member i gets MIXED_WIDTHS[i % 3] when widths are mixed
SAME_WIDTH = 6
N_TEST = 400
SHIFT_PX = 4
TTA_VIEWS = ("original", "horizontal flip", "vertical flip", f"shift right {SHIFT_PX} px",
             f"shift down {SHIFT_PX} px")


@dataclass(frozen=True)
class Recipe:
    members: int = 5
    n_train: int = 800  # the page's defaults: about 30 s on one core
    epochs: int = 5
    seed: int = 0
    mixed_widths: bool = True
    n_test: int = N_TEST
    batch_size: int = 16  # smaller batches than livetrain's 32: more steps from a few hundred crops

    def member_specs(self) -> list[dict]:
        """[{"name", "seed", "width"}]: member i trains with seed ``100 * seed + i``."""
        if not 1 <= self.members <= MAX_MEMBERS:
            raise ValueError(f"members must be 1..{MAX_MEMBERS}")
        return [{"name": f"member {i + 1}", "seed": 100 * self.seed + i,
                 "width": MIXED_WIDTHS[i % len(MIXED_WIDTHS)] if self.mixed_widths else SAME_WIDTH}
                for i in range(self.members)]


# --- combiners (numpy) ------------------------------------------------------------------------


def soft_average(probs: np.ndarray) -> np.ndarray:
    """(M, N, C) member probabilities -> (N, C) their plain mean (soft voting)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or len(probs) == 0:
        raise ValueError("probs must be (members, examples, classes) with at least one member")
    return probs.mean(axis=0)


def votes(probs: np.ndarray) -> np.ndarray:
    """(M, N, C) -> (N, C) number of members whose top-1 is each class."""
    probs = np.asarray(probs)
    top = probs.argmax(axis=2)  # (M, N)
    counts = np.zeros(probs.shape[1:], dtype=np.int64)
    for m in range(len(probs)):
        counts[np.arange(probs.shape[1]), top[m]] += 1
    return counts


def hard_vote(probs: np.ndarray) -> np.ndarray:
    """(M, N, C) -> (N,) majority vote of the members' top-1 classes.

    Ties (equal most votes) go to the tied class with the highest averaged probability, then
    to the lowest class index."""
    counts = votes(probs)
    mean = soft_average(probs)
    tied = counts == counts.max(axis=1, keepdims=True)
    score = np.where(tied, mean, -np.inf)
    return score.argmax(axis=1)  # argmax picks the first (lowest) index among exact ties


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(y)))


def nll(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at 1e-7)."""
    p = np.asarray(p, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |accuracy - confidence| per confidence bin, weighted by size."""
    p = np.asarray(p, dtype=np.float64)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    correct = pred == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def entropy_bits(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log2(p)).sum(axis=-1)


# --- analyses ---------------------------------------------------------------------------------


def member_rows(probs: np.ndarray, y: np.ndarray, names: list[str], widths: list[int]) -> list[dict]:
    """Per member and for the two combiners: accuracy, NLL and ECE on the held-out set."""
    rows = []
    for m, name in enumerate(names):
        rows.append({"model": name, "width": widths[m], "accuracy": accuracy(probs[m].argmax(1), y),
                     "nll": nll(probs[m], y), "ece": ece(probs[m], y)})
    avg = soft_average(probs)
    rows.append({"model": "ensemble: soft average", "width": None, "accuracy": accuracy(avg.argmax(1), y),
                 "nll": nll(avg, y), "ece": ece(avg, y)})
    rows.append({"model": "ensemble: majority vote", "width": None, "accuracy": accuracy(hard_vote(probs), y),
                 "nll": None, "ece": None})
    return rows


def summary(probs: np.ndarray, y: np.ndarray) -> dict:
    """Headline numbers: best / mean member and both combiners."""
    member_acc = [accuracy(p.argmax(1), y) for p in probs]
    return {"best_member": max(member_acc), "mean_member": float(np.mean(member_acc)),
            "worst_member": min(member_acc),
            "soft_average": accuracy(soft_average(probs).argmax(1), y),
            "majority_vote": accuracy(hard_vote(probs), y),
            "mean_member_nll": float(np.mean([nll(p, y) for p in probs])),
            "ensemble_nll": nll(soft_average(probs), y),
            "mean_member_ece": float(np.mean([ece(p, y) for p in probs])),
            "ensemble_ece": ece(soft_average(probs), y),
            "mean_member_confidence": float(np.mean([p.max(1).mean() for p in probs])),
            "ensemble_confidence": float(soft_average(probs).max(1).mean())}


def size_curve(probs: np.ndarray, y: np.ndarray) -> list[dict]:
    """Accuracy of an ensemble of k members, k = 1..M, for both combiners.

    For each k the accuracy is averaged over *every* subset of k members (C(M, k) of them, at
    most 10 for M = 5), so the curve does not depend on which member happens to come first;
    ``min``/``max`` give the spread over those subsets."""
    out = []
    m = len(probs)
    for k in range(1, m + 1):
        for combiner, fn in (("soft average", lambda p: soft_average(p).argmax(1)), ("majority vote", hard_vote)):
            accs = [accuracy(fn(probs[list(s)]), y) for s in combinations(range(m), k)]
            out.append({"members": k, "combiner": combiner, "accuracy": float(np.mean(accs)),
                        "min": float(np.min(accs)), "max": float(np.max(accs)), "subsets": len(accs)})
    return out


def disagreement_table(probs: np.ndarray, y: np.ndarray) -> list[dict]:
    """Held-out examples grouped by how many members agree with the soft-average answer.

    One row per level ``agree`` = M, M-1, ... (only levels that occur): the number of examples,
    the ensemble's error rate on them, and their mean entropy of the averaged prediction."""
    avg = soft_average(probs)
    pred = avg.argmax(1)
    agree = (np.asarray(probs).argmax(2) == pred[None]).sum(axis=0)
    ent = entropy_bits(avg)
    wrong = pred != np.asarray(y)
    m = len(probs)
    rows = []
    for a in range(m, -1, -1):
        sel = agree == a
        if sel.any():
            rows.append({"agree": int(a), "label": f"{a} of {m} agree", "examples": int(sel.sum()),
                         "error_rate": float(wrong[sel].mean()), "errors": int(wrong[sel].sum()),
                         "mean_entropy_bits": float(ent[sel].mean())})
    return rows


def agreement_split(probs: np.ndarray, y: np.ndarray) -> dict:
    """Error rate of the soft-average ensemble where all members agree vs where any disagree."""
    avg = soft_average(probs)
    pred = avg.argmax(1)
    unanimous = (np.asarray(probs).argmax(2) == pred[None]).all(axis=0)
    wrong = pred != np.asarray(y)
    rate = lambda sel: float(wrong[sel].mean()) if sel.any() else float("nan")
    return {"unanimous": int(unanimous.sum()), "split": int((~unanimous).sum()),
            "error_unanimous": rate(unanimous), "error_split": rate(~unanimous),
            "share_of_errors_in_split": float(wrong[~unanimous].sum() / max(wrong.sum(), 1))}


def tta_rows(probs: np.ndarray, tta_probs: np.ndarray, y: np.ndarray, names: list[str]) -> list[dict]:
    """Accuracy without and with test-time augmentation, per member and for the soft average."""
    rows = [{"model": n, "without TTA": accuracy(probs[m].argmax(1), y),
             "with TTA": accuracy(tta_probs[m].argmax(1), y)} for m, n in enumerate(names)]
    rows.append({"model": "ensemble: soft average", "without TTA": accuracy(soft_average(probs).argmax(1), y),
                 "with TTA": accuracy(soft_average(tta_probs).argmax(1), y)})
    return rows


# --- torch: views, training, prediction -------------------------------------------------------


def tta_views(x):
    """(N, 3, H, W) in [0, 1] -> list of the same batch under each of TTA_VIEWS.

    Shifts move the crop by SHIFT_PX pixels and fill the uncovered edge by replicating the
    border (no wrap-around). Every view keeps the class: the six shapes stay themselves
    under mirror images and small moves."""
    import torch
    import torch.nn.functional as F

    s = SHIFT_PX
    right = F.pad(x, (s, 0, 0, 0), mode="replicate")[..., :, : x.shape[-1]]
    down = F.pad(x, (0, 0, s, 0), mode="replicate")[..., : x.shape[-2], :]
    return [x, torch.flip(x, dims=[3]), torch.flip(x, dims=[2]), right, down]


def predict_probs(model, x, *, tta: bool = False, batch: int = 256) -> np.ndarray:
    """Softmax (N, C) of a [0, 1]-input model (eval, inference mode), optionally averaged over TTA_VIEWS."""
    import torch

    from core.runtime import torch_threads

    model.eval()
    out = []
    with torch.inference_mode(), torch_threads(1):
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            views = tta_views(xb) if tta else [xb]
            out.append(torch.stack([torch.softmax(model(v), 1) for v in views]).mean(0))
    return torch.cat(out).double().numpy()


def train_ensemble(recipe: Recipe, *, progress=None, deadline=None) -> dict:
    """Train the recipe's members one after another on the same crops; held-out predictions.

    ``progress(frac, text, partial=rows_of_finished_members)`` is called at least every 0.5 s.
    Returns plain data (lists, dicts, numpy), safe for ``st.cache_data``."""
    from core import livetrain

    t0 = time.perf_counter()
    report = progress or (lambda *a, **k: None)
    specs = recipe.member_specs()
    data = livetrain.shapes_data(n_train=recipe.n_train, n_test=recipe.n_test, seed=recipe.seed)
    y = data.y_test.numpy()
    m = len(specs)
    probs, tta, states, members = [], [], [], []
    for i, spec in enumerate(specs):
        def member_progress(frac, text, i=i, spec=spec):
            report((i + frac) / m, f"{spec['name']} of {m} (width {spec['width']}, seed {spec['seed']}): {text}",
                   partial=list(members))
        run = livetrain.train(data, epochs=recipe.epochs, seed=spec["seed"], width=spec["width"],
                              batch_size=recipe.batch_size, progress=member_progress, deadline=deadline)
        if deadline is not None:
            deadline.check()
        p = predict_probs(run.model, data.x_test)
        p_tta = predict_probs(run.model, data.x_test, tta=True)
        probs.append(p)
        tta.append(p_tta)
        states.append({k: v.detach().cpu().numpy().copy() for k, v in run.model.state_dict().items()})
        members.append({**spec, "accuracy": accuracy(p.argmax(1), y), "seconds": run.seconds,
                        "history": run.history})
        report((i + 1) / m, f"{spec['name']} done: held-out accuracy {members[-1]['accuracy']:.1%}",
               partial=list(members))
    return {"recipe": recipe.__dict__.copy(), "members": members, "y": y, "probs": np.stack(probs),
            "tta_probs": np.stack(tta), "state_dicts": states, "seconds": time.perf_counter() - t0}


def rebuild_members(result: dict) -> list:
    """The trained members as eval-mode torch models (from the result's numpy state dicts)."""
    import torch

    from core.livetrain import make_model

    models = []
    for spec, state in zip(result["members"], result["state_dicts"]):
        model = make_model(spec["seed"], width=spec["width"])
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
        models.append(model.eval())
    return models


def image_probs(models: list, rgb: np.ndarray, *, tta: bool = False) -> np.ndarray:
    """(M, C) each member's softmax on one RGB uint8 image at its own size (fully convolutional)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1)[None].float().div(255.0)
    return np.stack([predict_probs(model, x, tta=tta)[0] for model in models])


def image_rows(member_probs: np.ndarray, names: list[str], classes) -> list[dict]:
    """Long-form rows (model, class, probability) for the bar chart: members, then the average."""
    rows = []
    avg = soft_average(member_probs[:, None, :])[0]
    for name, p in list(zip(names, member_probs)) + [("soft average", avg)]:
        rows += [{"model": name, "class": c, "probability": float(p[j])} for j, c in enumerate(classes)]
    return rows
