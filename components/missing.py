"""Cached wrappers for the Missing data page (core.missing does the work).

* ``working(digest, rgb)``: the image at long side <= WORK_SIDE (inpainting a 4000-px photo
  would take seconds per strategy; the classifier sees 224 px anyway).
* ``filled(digest, spec, strategy, radius, rgb)``: one fill and its PSNRs, cached per
  (image, mask settings, strategy, radius), so moving one slider back to a value it had is
  free and changing the radius never recomputes the zero or mean fill.
* ``predictions(...)``: the classifier on the intact image and every filled one, one batch.
* Random-erasing comparison: trained pairs and their curves are kept in a small bounded
  store shared by all sessions (keyed by the settings); training runs only on a button, in
  a ``core.jobs.JobGate`` slot, with a progress bar.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import streamlit as st

from core.jobs import MODEL_TURNS, JobGate
from core.missing import ErasingComparison, ErasingSettings, MaskSpec, TrainedPair

WORK_SIDE = 384
MAX_PAIRS = 3  # trained pairs kept (two 25 k-parameter CNNs and 400 test crops each: ~5 MB)
MAX_CURVES = 12
TRAIN_SIZE, EPOCHS, TEST_SIZE = 1500, 6, 400  # ~15-30 s per model on one core
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
TRAINING = JobGate("random-erasing training run", max_running=1, per_session=1, time_limit_s=420)


@st.cache_data(max_entries=32, show_spinner=False)
def working(digest: str, _rgb: np.ndarray) -> np.ndarray:
    from core.imageio import fit_long_side

    return fit_long_side(_rgb, WORK_SIDE)


@st.cache_data(max_entries=32, show_spinner=False)
def mask(digest: str, spec: MaskSpec, shape: tuple[int, int]) -> np.ndarray:
    return spec.build(shape)


@st.cache_data(max_entries=128, show_spinner=False)
def filled(digest: str, spec: MaskSpec, strategy: str, radius: int, _rgb: np.ndarray):
    """core.missing.Filled for the working image ``_rgb`` (whose cache key is ``digest``)."""
    from core.missing import fill_and_score

    return fill_and_score(_rgb, mask(digest, spec, _rgb.shape[:2]), strategy, max(1, radius))


@st.cache_data(max_entries=128, show_spinner=False)
@MODEL_TURNS.take
def predictions(classifier: str, digest: str, spec: MaskSpec, radius: int, _clf, _images: list) -> np.ndarray:
    """Softmax (len(_images), C) of the classifier on the intact image and each filled one."""
    return np.asarray(_clf.probs(np.stack(_images)), dtype=np.float32)


class _Store:
    """A small LRU dict shared by every session (what st.cache_data would be, without
    pickling models, and filled only when a user clicks the button)."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _stores() -> tuple[_Store, _Store]:
    return _Store(MAX_PAIRS), _Store(MAX_CURVES)


def cached_comparison(settings: ErasingSettings, fill_with: str) -> ErasingComparison | None:
    """The curves for these settings if someone has computed them (no work here)."""
    return _stores()[1].get((settings, fill_with))


def has_models(settings: ErasingSettings) -> bool:
    return _stores()[0].get(settings) is not None


def run_comparison(settings: ErasingSettings, fill_with: str, session: str) -> ErasingComparison:
    """Train (unless this pair is stored) and evaluate, with a progress bar, in a job slot.
    Raises core.jobs.JobRefused / JobTimeout (their str() is a sentence for the user)."""
    from core.missing import evaluate_pair, train_pair

    pairs, curves = _stores()
    bar = st.progress(0.0, text="Starting…")

    def show(lo: float, hi: float):
        return lambda frac, text: bar.progress(min(max(lo + (hi - lo) * frac, 0.0), 1.0), text=text)

    try:
        with TRAINING.slot(session) as deadline:
            pair: TrainedPair | None = pairs.get(settings)
            if pair is None:
                pair = train_pair(settings, progress=show(0.0, 0.85), deadline=deadline)
                pairs.put(settings, pair)
                lo = 0.85
            else:
                lo = 0.0
            evaluate = show(lo, 1.0)
            result = evaluate_pair(pair, fill_with, deadline=deadline,
                                   progress=lambda f, t: evaluate(f, f"Testing both models: {t}"))
    finally:
        bar.empty()
    curves.put((settings, fill_with), result)
    return result
