"""Cached work for the Noise & outliers page.

* ``comparison(...)`` / ``sweep(...)``: pixel noise, denoisers, PSNR and the classifier's
  confidence (core.noise), cached per (model, image digest, settings): a rerun with the same
  settings costs nothing, and moving the strength slider runs one small batch.
* ``label_noise_runs(...)``: the label-noise experiment (core.livetrain), trained only when
  the user presses the button, inside a server-wide JobGate slot, with a progress bar. Its
  results are kept per (noise %, loss, seed, size) in a bounded shared store, so a rerun,
  another session or a page revisit never retrains the same settings.
"""

from __future__ import annotations

import threading

import numpy as np
import streamlit as st

from core.jobs import MODEL_TURNS, JobGate

WORK_SIDE = 320  # long side the pixel-noise lab works at (the classifier sees 224 anyway)
TRAINING = JobGate("label-noise training run", max_running=1, per_session=1, time_limit_s=300)
_STORE_LOCK = threading.Lock()


@st.cache_data(max_entries=24, show_spinner=False)
@MODEL_TURNS.take
def comparison(model: str, digest: str, kind: str, strength: float, seed: int, class_index: int | None,
               _clf, _image: np.ndarray):
    """core.noise.compare on the working copy of the image whose digest is ``digest``."""
    from core import noise

    return noise.compare(working(digest, _image), kind, strength, probs=_clf.probs,
                         class_index=class_index, seed=seed)


@st.cache_data(max_entries=24, show_spinner=False)
@MODEL_TURNS.take
def sweep(model: str, digest: str, kind: str, seed: int, class_index: int, _clf, _image: np.ndarray):
    from core import noise

    return noise.sweep(working(digest, _image), kind, probs=_clf.probs, class_index=class_index, seed=seed)


@st.cache_data(max_entries=16, show_spinner=False)
def working(digest: str, _image: np.ndarray) -> np.ndarray:
    from core.imageio import fit_long_side

    return fit_long_side(_image, WORK_SIDE)


# --- label noise ----------------------------------------------------------------------


@st.cache_resource(max_entries=1, show_spinner=False)
def training_data(n_train: int, n_test: int, seed: int):
    """The seeded crops (tensors, ~75 MB at 1500): shared read-only, never copied."""
    from core.livetrain import shapes_data

    return shapes_data(n_train=n_train, n_test=n_test, seed=seed)


@st.cache_resource(max_entries=24, show_spinner=False)
def _slot(noise_pct: int, loss: str, seed: int, n_train: int, epochs: int) -> dict:
    """A shared, bounded store for one setting's result (filled after training)."""
    return {}


def stored_run(noise_pct: int, loss: str, seed: int, n_train: int, epochs: int):
    """The finished run for these settings, or None (never trains)."""
    return _slot(noise_pct, loss, seed, n_train, epochs).get("run")


def label_noise_runs(settings: list[tuple[int, str]], *, seed: int, n_train: int, n_test: int, epochs: int,
                     session: str, bar) -> dict:
    """Train what is not stored yet (one JobGate slot for the lot) and return
    {(noise %, loss): core.noise.LabelNoiseRun}. Raises JobRefused / JobTimeout."""
    from core.noise import LABEL_LOSSES, run_experiment

    todo = [s for s in settings if stored_run(*s, seed, n_train, epochs) is None]
    if todo:
        with TRAINING.slot(session) as deadline:
            data = training_data(n_train, n_test, seed)
            for i, (pct, loss) in enumerate(todo):
                def progress(frac, text, i=i, pct=pct, loss=loss):
                    bar.progress(min(1.0, (i + frac) / len(todo)),
                                 text=f"Model {i + 1}/{len(todo)} ({LABEL_LOSSES[loss]}, "
                                      f"{pct} % flipped) · {text}")
                result = run_experiment(data, pct, loss, epochs=epochs, seed=seed, progress=progress,
                                        deadline=deadline)
                with _STORE_LOCK:
                    _slot(pct, loss, seed, n_train, epochs)["run"] = result
    return {s: stored_run(*s, seed, n_train, epochs) for s in settings}
