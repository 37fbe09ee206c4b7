"""Bounded jobs: work a user can start (training a model, a latency benchmark) that takes
seconds to minutes must not be startable hundreds of times, nor run for ever.

    TRAINING = JobGate("training run", max_running=1, per_session=1, time_limit_s=600)

    with TRAINING.slot(session_id) as deadline:          # JobRefused if not allowed now
        for epoch in range(epochs):
            deadline.check()                              # JobTimeout once over the limit
            ...

* ``max_running``: jobs of this kind running on the whole server (the rest are refused
  with a message, not queued: a queue of 30 would only grow while students click).
* ``per_session``: jobs one session may have running at once.
* ``time_limit_s``: the job checks its deadline (cheaply, e.g. once per batch) and stops.
Memory is bounded by the jobs themselves (fixed dataset, batch and image sizes), which
their pages state. ``str()`` of both exceptions is a sentence for the user.

Work that starts on its own when a page opens (a forward pass over a batch, attribution maps,
an embedding gallery, a detector's run) is not refused but waits its turn in :class:`Turns`:
with 30 students each opening pages, a few hundred megabytes per run at once would add up past
what one server holds, while on a small server's cores one run at a time finishes them as soon.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager

from core import memory


class JobRefused(RuntimeError):
    """The job was not started; the message says why and what to do."""


class JobTimeout(RuntimeError):
    """The job ran past its time limit and was stopped."""


class Deadline:
    def __init__(self, what: str, limit_s: float):
        self.what, self.limit_s = what, limit_s
        self.ends_at = time.monotonic() + limit_s

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.ends_at - time.monotonic())

    def check(self) -> None:
        if time.monotonic() >= self.ends_at:
            raise JobTimeout(f"The {self.what} was stopped after its limit of {self.limit_s:g} s.")


REPORT_EVERY_S = 0.5  # a live training loop reports progress at least this often (and after every epoch)


class Pacer:
    """The per-batch chores of a live training loop: the job's deadline, and whether progress is
    due (every ``REPORT_EVERY_S``), so a page's Stop button acts within about that long."""

    def __init__(self, deadline=None, every: float = REPORT_EVERY_S):
        self.deadline, self.every, self.last = deadline, every, time.perf_counter()

    def due(self) -> bool:
        """Call before every batch: raises when the deadline has passed; True when a report is due."""
        if self.deadline is not None:
            self.deadline.check()
        now = time.perf_counter()
        if now - self.last <= self.every:
            return False
        self.last = now
        return True

    def reset(self) -> None:
        """After a report made outside :meth:`due` (the end of an epoch)."""
        self.last = time.perf_counter()


class JobGate:
    def __init__(self, what: str, *, max_running: int = 1, per_session: int = 1, time_limit_s: float = 600.0):
        if max_running < 1 or per_session < 1 or time_limit_s <= 0:
            raise ValueError("max_running and per_session must be >= 1 and time_limit_s > 0")
        self.what, self.max_running, self.per_session = what, max_running, per_session
        self.time_limit_s = time_limit_s
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()

    @property
    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())

    @contextmanager
    def slot(self, session_id: str) -> Iterator[Deadline]:
        with self._lock:
            if self._running[session_id] >= self.per_session:
                raise JobRefused(f"You already have a {self.what} running; wait for it to finish.")
            total = sum(self._running.values())
            if total >= self.max_running:
                raise JobRefused(f"The server is busy with {total} other {self.what}"
                                 f"{'s' if total > 1 else ''}; please try again in a minute.")
            self._running[session_id] += 1
        try:
            yield Deadline(self.what, self.time_limit_s)
        finally:
            with self._lock:
                self._running[session_id] -= 1
                if not self._running[session_id]:
                    del self._running[session_id]


# Latency measurements (Quantization, GPU acceleration, Deployment, Frameworks). One at a
# time on the whole server: two timing runs at once would each slow the other and both
# would report figures that are not the machine's.
TIMING = JobGate("timing run", max_running=1, per_session=1, time_limit_s=300)

# Live training on the "How networks learn" pages (Backpropagation, Transfer learning, Data
# augmentation, Class imbalance, Self-supervised learning, Ensembles, Attention, Multi-label).
# Each run uses one torch thread, so two at once fill the two cores of a small server; the
# third user is told to wait a minute instead of slowing everyone down. Runs are short
# (seconds to a minute), so a limit of 3 minutes only stops a run that has gone wrong.
TRAINING = JobGate("live training run", max_running=2, per_session=1, time_limit_s=180)


class Turns:
    """A first-come, first-served queue for automatic work: at most ``at_once`` callers run at
    a time on the server, the others wait in arrival order (up to ``wait_limit_s``, then
    :class:`JobRefused`); a finishing caller hands its turn straight to the longest waiter, so
    no one is overtaken. Re-entrant per thread (a nested ``turn`` passes straight through), but
    a cached turn-taker must not call another cached one: Streamlit's per-value compute lock
    would let two sessions wait on each other (``tests/test_jobs.py`` checks the components).
    When the last running caller leaves, freed memory goes back to the OS
    (:func:`core.memory.release`).

        MODEL_TURNS = Turns("model computation", at_once=1)

        @MODEL_TURNS.take                    # under @st.cache_data: a cache hit never waits
        def heat_map(..., _progress=None): ...

    A decorated function with a ``_progress`` parameter is told (0, "Waiting…") before it waits.
    """

    def __init__(self, what: str, *, at_once: int = 1, wait_limit_s: float = 300.0, release=memory.release):
        if at_once < 1 or wait_limit_s <= 0:
            raise ValueError("at_once must be >= 1 and wait_limit_s > 0")
        self.what, self.at_once, self.wait_limit_s = what, at_once, wait_limit_s
        self._release = release
        self._lock = threading.Lock()
        self._queue: deque[threading.Event] = deque()
        self._mine = threading.local()
        self.running = 0

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def _wait_for_turn(self, on_wait) -> None:
        with self._lock:
            if self.running < self.at_once and not self._queue:
                self.running += 1
                return
            mine = threading.Event()
            self._queue.append(mine)
            ahead = self.running + len(self._queue) - 1
        if on_wait is not None:
            on_wait(f"Waiting for the server: {ahead} other {self.what}{'s' if ahead != 1 else ''} ahead of this one…")
        if mine.wait(self.wait_limit_s):
            return  # handed over by a finishing caller (``running`` unchanged)
        with self._lock:
            if mine.is_set():  # handed over just as the wait ran out
                return
            self._queue.remove(mine)
        raise JobRefused(f"The server has been busy for {self.wait_limit_s:g} s with other "
                         f"{self.what}s; please try again in a minute.")

    def _leave(self) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().set()  # the turn passes on; ``running`` stays the same
                return
            self.running -= 1
            last = self.running == 0
        if last and self._release is not None:
            self._release()

    @contextmanager
    def turn(self, on_wait=None) -> Iterator[None]:
        """Hold a turn for the ``with`` block; ``on_wait(text)`` is called once if it must wait."""
        if getattr(self._mine, "depth", 0):  # this thread already holds a turn
            self._mine.depth += 1
            try:
                yield
            finally:
                self._mine.depth -= 1
            return
        self._wait_for_turn(on_wait)
        self._mine.depth = 1
        try:
            yield
        finally:
            self._mine.depth = 0
            self._leave()

    def take(self, fn):
        """Decorator: every call of ``fn`` runs in a turn (its ``_progress``, if any, hears of a wait)."""
        reports = "_progress" in inspect.signature(fn).parameters

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            progress = kwargs.get("_progress") if reports else None
            with self.turn(None if progress is None else (lambda text: progress(0.0, text))):
                return fn(*args, **kwargs)

        return wrapper


# Computations a page starts on its own (classifier forwards over a batch, attribution maps,
# embeddings, OCR, detector and segmenter runs): one at a time on the whole server. Each already uses every core
# through torch's threads, and each can allocate 100–500 MB for a second; thirty students at
# once would otherwise stack those. Button-started jobs keep their own gates above.
MODEL_TURNS = Turns("model computation", at_once=1)
