"""Bounded jobs: one user cannot start a job twice, the server runs at most N, and a job
that runs past its limit is stopped."""

from __future__ import annotations

import threading
import time

import pytest

from core.jobs import JobGate, JobRefused, JobTimeout


def test_a_session_cannot_start_a_second_job_while_one_runs():
    gate = JobGate("training run", max_running=4, per_session=1)
    with gate.slot("alice"):
        with pytest.raises(JobRefused, match="already have a training run"):
            with gate.slot("alice"):
                pass
        with gate.slot("bob"):
            assert gate.running == 2
    assert gate.running == 0
    with gate.slot("alice"):  # free again once the first finished
        pass


def test_hundreds_of_clicks_start_at_most_max_running_jobs():
    gate = JobGate("benchmark", max_running=2, per_session=1)
    started, refused, peak = [], [], [0]
    hold = threading.Event()
    lock = threading.Lock()

    def click(i: int) -> None:
        try:
            with gate.slot(f"session-{i % 7}"):
                with lock:
                    started.append(i)
                    peak[0] = max(peak[0], gate.running)
                hold.wait(2)
        except JobRefused as err:
            refused.append(str(err))

    threads = [threading.Thread(target=click, args=(i,)) for i in range(300)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    hold.set()
    for t in threads:
        t.join(10)
    assert peak[0] <= 2 and len(started) >= 1 and len(started) + len(refused) == 300
    assert any("busy" in r for r in refused) and gate.running == 0


def test_a_job_past_its_limit_is_stopped():
    gate = JobGate("training run", time_limit_s=0.05)
    with pytest.raises(JobTimeout, match="limit of 0.05 s"):
        with gate.slot("alice") as deadline:
            for _ in range(1000):
                deadline.check()
                time.sleep(0.01)
    assert gate.running == 0  # the slot is released on the way out


@pytest.mark.parametrize("kw", [{"max_running": 0}, {"per_session": 0}, {"time_limit_s": 0}])
def test_bad_limits_are_refused(kw):
    with pytest.raises(ValueError):
        JobGate("x", **kw)


def test_pacer_checks_the_deadline_every_batch_and_paces_reports():
    from core.jobs import Deadline, JobTimeout, Pacer

    slow = Pacer(None, every=1e9)
    assert not any(slow.due() for _ in range(100))  # never due within its interval
    fast = Pacer(None, every=0.0)
    time.sleep(0.001)
    assert fast.due()
    fast.every = 1e9
    fast.reset()
    assert not fast.due()
    expired = Pacer(Deadline("test job", 0.0))
    with pytest.raises(JobTimeout, match="test job"):
        expired.due()


# --- Turns: automatic work waits its turn instead of being refused ---------------------------


def test_turns_run_at_most_at_once_and_every_caller_finishes():
    from core.jobs import Turns

    released = []
    turns = Turns("model computation", at_once=2, release=lambda: released.append(1))
    lock, now, peak, done = threading.Lock(), [0], [0], []

    @turns.take
    def work(i):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.01)
        with lock:
            now[0] -= 1
        return i

    threads = [threading.Thread(target=lambda i=i: done.append(work(i))) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(done) == list(range(40))  # nobody refused
    assert peak[0] == 2 and turns.running == turns.waiting == 0
    assert 1 <= len(released) < 40  # memory is given back when the last runner leaves, not after every call


def test_a_turn_taker_may_call_another_in_the_same_thread():
    from core.jobs import Turns

    turns = Turns("model computation", at_once=1, release=None)
    inner = turns.take(lambda: "inner")
    outer = turns.take(lambda: inner() + " in outer")
    assert outer() == "inner in outer" and turns.running == 0


def test_a_caller_that_must_wait_hears_why_and_gives_up_after_the_limit():
    from core.jobs import Turns

    turns = Turns("model computation", at_once=1, wait_limit_s=0.2, release=None)
    heard = []
    holding, finish = threading.Event(), threading.Event()

    def hold():
        with turns.turn():
            holding.set()
            finish.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)

    @turns.take
    def heat_map(_progress=None):
        return "map"

    with pytest.raises(JobRefused, match="busy for 0.2 s"):
        heat_map(_progress=lambda fraction, text: heard.append((fraction, text)))
    assert heard == [(0.0, "Waiting for the server: 1 other model computation ahead of this one…")]
    finish.set()
    holder.join(5)
    assert heat_map() == "map" and turns.waiting == 0


@pytest.mark.parametrize("kw", [{"at_once": 0}, {"wait_limit_s": 0}])
def test_turns_refuse_bad_limits(kw):
    from core.jobs import Turns

    with pytest.raises(ValueError):
        Turns("x", **kw)


def test_release_gives_freed_heap_memory_back_to_the_os():
    """Freed small blocks with live ones between them stay resident until ``release``."""
    import sys

    from core import memory

    if not sys.platform.startswith("linux") or memory.resident_mb() is None:
        pytest.skip("resident memory is read from Linux /proc")
    blocks = [bytearray(64_000) for _ in range(4000)]  # 256 MB of heap (each below malloc's mmap threshold)
    for b in blocks:
        b[::4096] = b"\x01" * len(b[::4096])  # touch every page
    keep = blocks[::16]  # one live block in 16 pins the heap's top
    del blocks
    before = memory.resident_mb()
    assert memory.release() is True  # glibc
    after = memory.resident_mb()
    assert before - after > 100, (before, after)
    del keep


def test_waiters_are_served_in_the_order_they_arrived():
    """Even the caller that just finished goes to the back of the queue for its next step."""
    from core.jobs import Turns

    turns = Turns("model computation", at_once=1, release=None)
    order, holding, go = [], threading.Event(), threading.Event()

    def first():
        with turns.turn():
            holding.set()
            go.wait(5)
        turns.take(order.append)("next step")

    threads = [threading.Thread(target=first)]
    threads[0].start()
    holding.wait(5)
    for i in range(8):  # queue up one at a time, so arrival order is known
        t = threading.Thread(target=lambda i=i: turns.take(order.append)(i))
        t.start()
        threads.append(t)
        while turns.waiting < i + 1:
            time.sleep(0.001)
    go.set()
    for t in threads:
        t.join(5)
    assert order == [*range(8), "next step"] and turns.running == 0 and turns.waiting == 0


def test_no_turn_taker_calls_another_cached_turn_taker():
    """Streamlit computes a cached value under a per-value lock. If a function holding a turn
    called another cached turn-taker whose value a second session was computing, that session
    would hold the value's lock while waiting for the turn, and each would wait for the other
    for ever. So turn-takers (``@MODEL_TURNS.take`` under ``st.cache_data``) never call each other."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    takers = {}
    for file in sorted((root / "components").glob("*.py")):
        for node in ast.parse(file.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any("MODEL_TURNS" in ast.unparse(d) for d in node.decorator_list):
                takers[(file.stem, node.name)] = node
    assert len(takers) >= 30, sorted(takers)  # the photo and detection pages' computations are found
    names = {name for _, name in takers}
    nested = [(module, name, ast.unparse(call.func)) for (module, name), node in takers.items()
              for call in ast.walk(node) if isinstance(call, ast.Call)
              and ast.unparse(call.func).split(".")[-1] in names - {name}]
    assert not nested, nested
