"""Cached work for the Distributed training page.

* ``DDP_RUNS``: a server-wide JobGate: one distributed run at a time on the whole server and
  one per session, each stopped after ``time_limit_s`` (30 students must not start 30 x 4
  worker processes on a 2-core machine).
* ``stored(settings)``: the finished core.distributed.Run for these exact settings, or None
  (never trains). Runs are kept in a bounded shared store, so a rerun, another session or
  a page revisit never relaunches the same settings.
* ``measure(...)``: launches what is missing, inside one JobGate slot, feeding the progress
  bar from the workers' status files.
* ``training_data(...)``: the shared crops (made once, written to each run's folder).
"""

from __future__ import annotations

import threading

import streamlit as st

from core.jobs import JobGate

DDP_RUNS = JobGate("distributed training run", max_running=1, per_session=1, time_limit_s=240)
_STORE_LOCK = threading.Lock()


@st.cache_resource(max_entries=1, show_spinner=False)
def training_data(n_train: int, n_test: int, seed: int):
    from core.distributed import make_data

    return make_data(n_train, n_test, seed)


@st.cache_resource(max_entries=48, show_spinner=False)
def _slot(key: tuple) -> dict:
    """A shared, bounded store for one setting's run (filled after it finished)."""
    return {}


def _key(settings) -> tuple:
    from dataclasses import astuple

    return astuple(settings)


def stored(settings):
    """The finished run for these settings, or None."""
    return _slot(_key(settings)).get("run")


def gpu_count() -> int:
    """GPUs the driver shows (no torch import)."""
    from core.devices import cuda_driver_devices

    return len(cuda_driver_devices()[1])


def measure(all_settings: list, *, session: str, progress, gpus: int = 0) -> dict:
    """Launch every settings not stored yet (one JobGate slot for the lot); returns
    {world_size: Run}. Raises JobRefused / JobTimeout / core.distributed.DistributedError."""
    from core.distributed import launch

    todo = [s for s in all_settings if stored(s) is None]
    if todo:
        with DDP_RUNS.slot(session) as deadline:
            first = todo[0]
            progress(0.0, "Drawing the synthetic training crops…")
            data = training_data(first.n_train, first.n_test, first.seed)
            for i, s in enumerate(todo):
                def report(frac, text, i=i):
                    progress((i + frac) / len(todo), f"Run {i + 1}/{len(todo)} · {text}")

                run = launch(s, data=data, deadline=deadline, timeout_s=deadline.remaining_s, progress=report,
                             gpus=gpus, dump_weights=True)
                with _STORE_LOCK:
                    _slot(_key(s))["run"] = run
    return {s.world_size: stored(s) for s in all_settings}
