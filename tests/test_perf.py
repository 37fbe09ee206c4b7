"""core.perf: percentiles, timings, FLOP counting and the matmul peak, on cases with known answers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import perf


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
        ([10.0, 0.0], 0, 0.0),
        ([10.0, 0.0], 100, 10.0),
        ([3.0, 1.0, 2.0], 25, 1.5),
    ],
)
def test_percentile_matches_hand_computed(values, q, expected):
    assert perf.percentile(values, q) == pytest.approx(expected)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_agrees_with_numpy(values, q):
    import numpy as np

    assert perf.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0], [float("inf")]])
def test_timing_refuses_meaningless_samples(bad):
    with pytest.raises(ValueError):
        perf.Timing(tuple(bad))


def test_percentile_refuses_bad_q():
    with pytest.raises(ValueError):
        perf.percentile([1.0], 101)


def test_time_call_counts_warmup_and_repeats_and_times_the_call():
    import time

    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.02)

    timing = perf.time_call(slow, warmup=2, repeats=3)
    assert len(calls) == 5 and timing.n == 3
    assert all(19.0 <= s < 500 for s in timing.samples_ms)  # it measured the sleep, in ms
    assert timing.as_dict()["p50_ms"] == pytest.approx(timing.p50, abs=0.01)


def test_count_flops_on_a_hand_sized_network():
    """conv 3->8, 3x3, on 16x16 (padding 1): 2*8*16*16*3*3*3 FLOPs; linear 8->4: 2*8*4."""
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 4, bias=False))
    expected = 2 * 8 * 16 * 16 * 3 * 3 * 3 + 2 * 8 * 4
    assert perf.count_flops(net, torch.zeros(1, 3, 16, 16)) == expected
    assert perf.count_flops(net, torch.zeros(2, 3, 16, 16)) == 2 * expected  # batch doubles it


def test_matmul_peak_is_the_products_flops_over_its_best_time(monkeypatch):
    """With a fake clock that makes every product take 0.5 s, the peak is 2 n^3 / 0.5 s."""
    ticks = iter(range(0, 10_000))
    monkeypatch.setattr(perf.time, "perf_counter", lambda: next(ticks) * 0.5)
    assert perf.matmul_peak_gflops("cpu", n=64, repeats=3) == pytest.approx(2 * 64**3 / 0.5 / 1e9)


def test_matmul_peak_of_this_cpu_is_plausible():
    peak = perf.matmul_peak_gflops("cpu", n=512, repeats=3)
    assert math.isfinite(peak) and 0.5 < peak < 1e5  # GFLOP/s of a real CPU, not a unit slip
