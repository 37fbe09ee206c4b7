"""Cached, bounded work for the Adversarial attacks page.

* :func:`clean_probs` - the classifier's answer on the clean image, per (model, image).
* :func:`run_attack` - one FGSM/PGD attack per (model, image, method, eps, steps, target):
  the gradient passes hold the shared model's lock (``core.hooks.lock_for``), PGD one
  step at a time, so other sessions can run the model between steps.
* :func:`run_defences` - JPEG / median / bit-depth on the clean and the attacked image,
  one batched forward pass, per attack and defence settings.
* :func:`compare_training` - a normally and an adversarially trained shapes CNN and their
  robust accuracy against PGD at several eps; one run per server at a time (:data:`TRAINING`).

Progress bars: a cached function records the Streamlit calls it makes and replays them on a
hit; a bar created outside it must not be recorded. :class:`components.ui.Progress` updates its bar in a
copy of the page's ``contextvars`` context taken before the cached call (where Streamlit's
"inside a cached function" flag is unset), and creates the bar on the first update only,
so a cache hit shows none (the same device as components/tracking.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import streamlit as st

from components.session import session_id

from core.jobs import MODEL_TURNS, JobGate

MAX_STEPS = 20
TRAINING = JobGate("adversarial training run", max_running=1, per_session=1, time_limit_s=480)
# The comparison's fixed recipe (a page states it; tests/test_adversarial.py checks the claim).
N_TRAIN, N_TEST, EPOCHS, EVAL_STEPS = 1500, 200, 6, 7
EVAL_EPS = (0, 1, 2, 4, 8)


def model_fn(clf):
    """[0, 1] batch -> logits of the classifier (its normalisation included)."""
    return lambda unit: clf.model(clf.normalise(unit))


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def clean_probs(model: str, device: str, digest: str, _clf, _image: np.ndarray) -> np.ndarray:
    return _clf.probs(_image)


@dataclass(frozen=True)
class AttackResult:
    clean: np.ndarray  # RGB uint8 at the network's size (what it sees)
    adv: np.ndarray  # the attacked image, same size, rounded to 8 bits
    probs_clean: np.ndarray  # (C,)
    probs_adv: np.ndarray  # (C,) on the rounded attacked image
    label: int  # the class attacked (the clean prediction)
    target: int | None
    trace: tuple[dict, ...]  # PGD: per step, probabilities of the label (and target)
    seconds: float


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def run_attack(model: str, device: str, digest: str, method: str, eps255: int, steps: int, target: int | None,
               _clf, _image: np.ndarray, _probs_clean: np.ndarray, _progress=None) -> AttackResult:
    """Attack the clean prediction of ``_clf`` on ``_image`` (untargeted if ``target`` is None);
    ``_probs_clean`` is :func:`clean_probs` of the same image."""
    import torch

    from core import adversarial as adv
    from core.hooks import lock_for

    clf, report = _clf, _progress or (lambda f, t: None)
    t0 = time.perf_counter()
    x = clf.unit(_image)
    probs_clean = _probs_clean
    label = int(np.argmax(probs_clean))
    steps = 1 if method == "fgsm" else max(1, min(int(steps), MAX_STEPS))
    trace: list[dict] = []

    def on_step(i, logits):
        p = torch.softmax(logits.float(), dim=1)[0]
        row = {"step": i - 1, "original class": float(p[label])}
        if target is not None:
            row["target class"] = float(p[target])
        trace.append(row)
        report(i / steps, f"PGD step {i}/{steps}")

    lock = lock_for(clf.model)
    eps = eps255 / 255.0
    if method == "fgsm":
        x_adv = adv.fgsm(model_fn(clf), x, label, eps, target is not None, target, lock=lock)
    else:
        x_adv = adv.pgd(model_fn(clf), x, label, eps, steps, targeted=target is not None, target=target,
                        lock=lock, on_step=on_step)
    x_adv = adv.quantise(x_adv)
    probs_adv = clf.probs_from_unit(x_adv)[0]
    if method == "pgd" and trace:
        row = {"step": steps, "original class": float(probs_adv[label])}
        if target is not None:
            row["target class"] = float(probs_adv[target])
        trace.append(row)
    return AttackResult(clf.to_rgb(x), clf.to_rgb(x_adv), probs_clean, probs_adv, label, target, tuple(trace),
                        time.perf_counter() - t0)


@st.cache_data(max_entries=32, show_spinner=False)
@MODEL_TURNS.take
def run_defences(model: str, device: str, attack_key: tuple, quality: int, window: int, bits: int,
                 _clf, _result: AttackResult) -> dict:
    """{defence: {"clean": image, "adv": image, "probs_clean": (C,), "probs_adv": (C,)}} for
    JPEG / median / bit depth (one batched forward pass of six images), and the undefended
    pair under "none" (its probabilities are the attack's)."""
    from core import adversarial as adv

    settings = {"jpeg": quality, "median": window, "bits": bits}
    images = {name: (adv.defend(name, _result.clean, v), adv.defend(name, _result.adv, v))
              for name, v in settings.items()}
    probs = _clf.probs(np.stack([img for pair in images.values() for img in pair]))
    out = {"none": {"clean": _result.clean, "adv": _result.adv, "probs_clean": _result.probs_clean,
                    "probs_adv": _result.probs_adv}}
    for i, (name, (clean, attacked)) in enumerate(images.items()):
        out[name] = {"clean": clean, "adv": attacked, "probs_clean": probs[2 * i], "probs_adv": probs[2 * i + 1]}
    return out


@st.cache_data(max_entries=4, show_spinner=False)
def compare_training(eps255: int, method: str, mix: float, seed: int, _progress=None) -> dict:
    """:func:`core.adversarial.compare_training` at the page's recipe, in a :data:`TRAINING` slot (JobRefused /
    JobTimeout propagate, and nothing is cached then)."""
    from core.adversarial import compare_training as run

    with TRAINING.slot(session_id()) as deadline:
        return run(eps255, method, mix, seed, n_train=N_TRAIN, n_test=N_TEST, epochs=EPOCHS, eval_eps=EVAL_EPS,
                   eval_steps=EVAL_STEPS, progress=_progress, deadline=deadline)


# --- charts (plain Vega-Lite dicts: no Altair validation on every rerun) --------------------


def top_bars(clf, probs: np.ndarray, *, k: int = 5, marks: dict[int, str] | None = None) -> None:
    """Horizontal bars of the ``k`` most probable classes; ``marks`` {class index: role}
    colours the attacked / target class (and adds it below the top k if it is not among them)."""
    marks = marks or {}
    rows = [{"class": p.name, "probability": p.probability, "role": marks.get(p.index, "other")}
            for p in clf.top(probs, k)]
    shown = {p.index for p in clf.top(probs, k)}
    for index, role in marks.items():
        if index not in shown:
            rows.append({"class": f"{clf.categories[index]} (rank {int((probs > probs[index]).sum()) + 1})",
                         "probability": float(probs[index]), "role": role})
    roles = ["original class", "target class", "other"]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "class", "type": "nominal", "title": None, "sort": None},
            "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}},
            "color": {"field": "role", "type": "nominal", "title": None,
                      "scale": {"domain": roles, "range": ["#2e7d32", "#c62828", "#90a4ae"]}},
        },
        "height": {"step": 22},
    }, width="stretch")


def lines(rows: list[dict], *, x: str, y: str, series: str, x_title: str, y_title: str,
          y_format: str = "%", height: int = 260) -> None:
    """A line chart with points from long-form rows."""
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": x, "type": "quantitative", "title": x_title, "axis": {"tickMinStep": 1, "format": "d"}},
            "y": {"field": y, "type": "quantitative", "title": y_title, "scale": {"domain": [0, 1]},
                  "axis": {"format": y_format}},
            "color": {"field": series, "type": "nominal", "title": None},
        },
        "height": height,
    }, width="stretch")
