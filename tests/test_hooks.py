"""Shared models under concurrency: hooks, state changes and detection from many threads.

A tiny hand-weighted net gives exact expected activations (captum-style), so a mixed-up
activation between two "sessions" (threads) is detected exactly, not statistically."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from core.hooks import capture, exclusive, lock_for


class Doubler(nn.Module):
    """y = relu(2 * x) then sum: layer outputs are known exactly for any input."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Conv2d(1, 1, 1, bias=False)
        with torch.no_grad():
            self.scale.weight.fill_(2.0)
        self.act = nn.ReLU()

    def forward(self, x):
        y = self.act(self.scale(x))
        time.sleep(0.002)  # widen the window in which another thread could interfere
        return y.sum()


def test_capture_records_this_calls_activations_and_gradients():
    net = Doubler().eval()
    x = torch.full((1, 1, 2, 2), 3.0, requires_grad=True)
    with capture(net, {"scale": net.scale}, grads=True) as seen:
        net(x).backward()
    assert torch.equal(seen.activations["scale"], torch.full((1, 1, 2, 2), 6.0))
    assert torch.equal(seen.gradients["scale"], torch.ones(1, 1, 2, 2))  # d(sum relu(y))/dy = 1 for y > 0
    assert not net.scale._forward_hooks


def test_hooks_are_removed_even_when_the_forward_pass_fails():
    net = Doubler().eval()
    with pytest.raises(RuntimeError):
        with capture(net, {"scale": net.scale}):
            net(torch.zeros(1, 3, 2, 2))  # wrong channel count
    assert not net.scale._forward_hooks
    assert lock_for(net).acquire(blocking=False)  # the lock was released too
    lock_for(net).release()


def test_concurrent_sessions_each_see_only_their_own_activations():
    net = Doubler().eval()
    done = []

    def session(k: int) -> bool:
        x = torch.full((1, 1, 3, 3), float(k))
        for _ in range(5):
            with capture(net, {"scale": net.scale}) as seen:
                net(x)
            if not torch.equal(seen.activations["scale"], torch.full((1, 1, 3, 3), 2.0 * k)):
                return False
            with exclusive(net), torch.inference_mode():  # plain inference, as the detectors run it
                assert net(x).item() == pytest.approx(18.0 * k)
        done.append(k)
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(session, range(1, 17)))
    assert sorted(done) == list(range(1, 17))
    assert not net.scale._forward_hooks


def test_without_the_lock_hooks_would_leak_between_sessions():
    """The hazard the lock removes is real: an unlocked hook fires in another thread's call."""
    net = Doubler().eval()
    seen: list[float] = []
    handle = net.scale.register_forward_hook(lambda m, i, o: seen.append(float(o.flatten()[0])))
    try:
        threading.Thread(target=lambda: net(torch.full((1, 1, 1, 1), 5.0))).start()
        time.sleep(0.2)
    finally:
        handle.remove()
    assert seen == [10.0]  # "session B"'s activation landed in "session A"'s hook


def test_exclusive_blocks_other_users_of_the_model():
    net = Doubler().eval()
    order = []

    def other():
        with exclusive(net):
            order.append("other")

    with exclusive(net):
        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.1)
        order.append("holder")
    t.join(5)
    assert order == ["holder", "other"]


@pytest.mark.slow
def test_concurrent_detection_equals_serial(trained_shapes_yolo):
    """Eight sessions detecting on different images at once get exactly the serial results."""
    from models.detectors import load_detector
    from models.shapes_yolo import detection_scene

    det = load_detector("shapes-yolo")
    scenes = [detection_scene(seed).image for seed in range(8)]
    serial = [det.candidates(img).detections for img in scenes]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda img: det.candidates(img).detections, scenes * 2))
    for i, got in enumerate(parallel):
        want = serial[i % 8]
        assert np.array_equal(got.labels, want.labels), i
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-3)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
