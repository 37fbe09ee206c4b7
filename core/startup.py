"""Once per process, before anything heavy: malloc arenas and thread counts from the real limits.

Streamlit Community Cloud turns its secrets into environment variables only after the
interpreter has started, so settings that glibc or OpenMP read at start-up cannot come from
there. :func:`apply` does their work from Python instead, on the first import of the app's
own code (``components/__init__.py``, which every page and Home import first):

* ``core.memory.limit_arenas()``: at most 2 glibc malloc arenas from now on, what
  ``MALLOC_ARENA_MAX=2`` does (``CVLAB_ARENAS=0`` switches it off, an explicit
  ``MALLOC_ARENA_MAX`` is left to glibc). In a Streamlit 1.67 server this comes too late:
  its threads have made about 14 arenas before the app's first script run, more than
  glibc's ``ARENA_TEST`` (8), so glibc's own ceiling (8 per core) is already fixed; the
  outcome says so and a ``streamlit run`` server logs a warning. (Restarting the server
  process from here with the variable set was tried: the first visitor's page could be
  left blank, its JavaScript cut off mid-load.)
* threads: where the container's CPU quota allows fewer CPUs than the cores the process
  may run on (``core.devices.cpu_threads``), ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``
  are set to the quota's count unless the user set either, so that torch, imported later, sizes
  its thread pool to it (its default is every core of the affinity mask); if torch is
  already imported, ``torch.set_num_threads`` is called instead. ONNX Runtime sessions are
  given ``cpu_threads()`` (or torch's count) by the code that makes them.

Nothing here imports torch or Streamlit; it costs about a millisecond.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_done: dict | None = None
_log = logging.getLogger("cvlab.startup")


def server_argv(argv: list[str] | None = None) -> list[str] | None:
    """This process's command line if it is a ``streamlit run`` server (``python -m streamlit
    run ...`` or ``.../bin/streamlit run ...``), else None (tests, AppTest, the benchmark)."""
    argv = list(getattr(sys, "orig_argv", None) or []) if argv is None else argv
    if "run" not in argv[1:]:
        return None
    before = argv[1:argv.index("run", 1)]
    if "streamlit" in before or any(Path(a).name == "streamlit" for a in before):
        return argv
    return None


def apply() -> dict:
    """Apply the start-up settings once; returns what was done (later calls: the same dict)."""
    global _done
    if _done is not None:
        return _done
    from core.devices import cpu_affinity, cpu_threads
    from core.memory import ARENAS, fix_mmap_threshold, limit_arenas

    arenas = limit_arenas()
    if arenas.startswith("too late") and server_argv():
        _log.warning("malloc arena limit %s: Streamlit's threads came first, so glibc keeps its own ceiling "
                     "(8 per core). Set MALLOC_ARENA_MAX=%d before the server starts (scripts/run.sh, the Dockerfile).",
                     arenas, ARENAS)
    # Where the arena limit came too late, a fixed mmap threshold still keeps large freed
    # blocks from piling up in the arenas (benchmark.arenas measures both).
    mmap = fix_mmap_threshold() if not arenas.startswith(("set to", "environment")) else "not needed"
    cores, threads = cpu_affinity(), cpu_threads()
    env = {}
    if threads < cores and not any(os.environ.get(name) for name in THREAD_VARS):  # a user's setting wins
        for name in THREAD_VARS:
            os.environ[name] = env[name] = str(threads)
        torch = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() > threads:
            torch.set_num_threads(threads)
    _done = {"arenas": arenas, "mmap": mmap, "cores": cores, "threads": threads, "env": env}
    return _done
