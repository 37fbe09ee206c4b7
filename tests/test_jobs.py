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
