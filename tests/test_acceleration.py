"""GPU acceleration page: the pure measurements (core/acceleration.py), then the page (AppTest,
offline: no GPU message, a measurement behind the button), then CUDA paths where a GPU exists.

Nothing here asserts a wall-clock figure. What is asserted would fail if the page lied:
throughput is exactly batch * 1000 / p50, the thread count really changes inside the
scaling block and is restored, FLOPs of a hand-sized convolution match the formula, the
compute bound never exceeds a measured latency, and the CPU has no fake copy cost."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from core import acceleration as acc
from core import perf

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
STREAMLIT = pytest.mark.skipif(importlib.util.find_spec("streamlit") is None, reason="needs streamlit (page test)")
SEEN_THREADS: list[int] = []  # module-level: private copies of a model deep-copy its attributes


class ThreadSpy(nn.Module):
    """A conv that records torch's thread count every time it runs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)

    def forward(self, x):
        SEEN_THREADS.append(torch.get_num_threads())
        return self.conv(x)


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(16, 5)).eval()


@pytest.fixture(scope="module")
def resnet18():
    from models import registry

    return registry.build_architecture("resnet18").eval()


# --- pure helpers ---------------------------------------------------------------------------
def test_throughput_and_thread_counts():
    assert acc.throughput(4, 20.0) == 200.0
    assert acc.throughput(1, 0.5) == 2000.0
    assert acc.thread_counts(1) == [1]
    assert acc.thread_counts(2) == [1, 2]
    assert acc.thread_counts(6) == [1, 2, 4, 6]
    assert acc.thread_counts(16) == [1, 2, 4, 8, 16]
    with pytest.raises(ValueError):
        acc.thread_counts(0)


def test_num_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with acc.num_threads(target) as seen:
        assert seen == torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), acc.num_threads(target):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_batch_sweep_rows_report_throughput_exactly_as_computed():
    model = small_cnn()
    rows = acc.batch_sweep(model, input_size=32, batches=[1, 3, 4], device="cpu", repeats=3, warmup=1, label="tiny")
    assert [r["batch"] for r in rows] == [1, 3, 4]
    for r in rows:
        assert r["images_per_s"] == r["batch"] * 1000 / r["p50_ms"]
        assert r["ms_per_image"] == r["p50_ms"] / r["batch"]
        assert 0 < r["p50_ms"] <= r["p95_ms"]
        assert r["repeats"] >= 3 and r["warmup"] == 1
        assert r["device"] == "cpu" and "thread" in r["device_name"] and r["series"] == "CPU FP32"
        assert r["input"] == "3×32×32" and r["model"] == "tiny"
        assert r["memory_how"] == acc.CPU_MEMORY_HOW and r["memory_mb"] > 0


def test_sweep_stops_at_the_budget():
    model = small_cnn()
    assert acc.batch_sweep(model, input_size=16, batches=[1, 2], budget=0.0, repeats=3) == []

    class Spent:
        remaining_s = 0.0

    assert acc.batch_sweep(model, input_size=16, batches=[1, 2], budget=Spent(), repeats=3) == []


def test_thread_scaling_really_changes_the_thread_count_and_restores_it():
    before = torch.get_num_threads()
    SEEN_THREADS.clear()
    rows = acc.thread_scaling(ThreadSpy(), input_size=16, threads=[1, 2], batch=2, repeats=3, warmup=1)
    assert [r["threads"] for r in rows] == [1, 2]
    assert [r["threads_seen"] for r in rows] == [1, 2]
    # the forward passes themselves ran with 1, then 2 threads (warm-up + at least 3 repeats each)
    ones, twos = SEEN_THREADS[:SEEN_THREADS.index(2)], SEEN_THREADS[SEEN_THREADS.index(2):]
    assert set(ones) == {1} and set(twos) == {2} and len(ones) >= 4 and len(twos) >= 4
    assert torch.get_num_threads() == before
    assert rows[0]["speedup"] == 1.0 and rows[1]["speedup"] == rows[0]["p50_ms"] / rows[1]["p50_ms"]
    assert rows[1]["efficiency"] == rows[1]["speedup"] / 2
    for r in rows:
        assert r["images_per_s"] == r["batch"] * 1000 / r["p50_ms"]


def test_flops_of_a_hand_sized_conv():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(1, 3, 16, 16)
    expected = 2 * 8 * 3 * 3 * 3 * 16 * 16
    limit = acc.compute_limit(conv, x, peak_gflops=10.0)
    assert limit.flops_per_image == expected
    assert limit.bound_ms(1) == expected / 10e9 * 1000
    assert limit.bound_ms(4) == 4 * limit.bound_ms(1)
    assert limit.ratio(2 * limit.bound_ms(3), 3) == pytest.approx(2.0)
    [layer] = acc.layer_costs(conv, x)
    assert layer.flops == expected and layer.weights == 8 * 3 * 3 * 3
    assert layer.activations == 3 * 16 * 16 + 8 * 16 * 16
    assert layer.intensity(1, 4) == expected / ((3 * 256 + 8 * 256 + 216) * 4)
    # a bigger batch reuses the weights: intensity grows with the batch
    assert layer.intensity(8, 4) > layer.intensity(1, 4)


def test_resnet18_layer_table_adds_up_to_torchs_flop_count(resnet18):
    x = acc.example_input(64)
    facts = acc.describe(resnet18, x)
    assert facts.parameters == 11_689_512
    assert facts.flops_per_image == perf.count_flops(resnet18, x)
    assert sum(layer.flops for layer in facts.layers) == facts.flops_per_image
    assert len(facts.layers) == 21  # 20 convolutions (3 of them 1x1 downsamples) + the classifier
    assert facts.input_desc == "3×64×64"


def test_cpu_activation_estimate_counts_each_output_once():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                          nn.Conv2d(4, 2, 1, bias=False), nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    # conv1 out 4x8x8, in-place ReLU adds nothing, conv2 out 2x8x8, ReLU out 2x8x8 (not in place)
    assert acc.activation_bytes(model, x) == (4 * 64 + 2 * 64 + 2 * 64) * 4
    mb, own, how = acc.peak_memory_mb(model, torch.randn(5, 3, 8, 8), "cpu")
    weights = (4 * 3 * 9 + 2 * 4) * 4
    assert own * 2**20 == 5 * (4 + 2 + 2) * 64 * 4  # exactly proportional to the batch
    assert mb * 2**20 == pytest.approx(weights + 5 * 3 * 64 * 4 + own * 2**20)
    assert how.startswith("estimate")


def test_compute_bound_never_exceeds_a_measured_latency(resnet18):
    x = acc.example_input(96)
    flops = perf.count_flops(resnet18, x)
    peak_before = acc.device_peak_gflops("cpu")
    rows = acc.batch_sweep(resnet18, example=x, batches=[1, 2], device="cpu", repeats=3, warmup=1,
                           limit=acc.ComputeLimit("cpu", "fp32", flops, peak_before))
    peak = max(peak_before, acc.device_peak_gflops("cpu"))  # the peak is a best-of: take the better reading
    limit = acc.ComputeLimit("cpu", "fp32", flops, peak)
    for r in rows:
        assert limit.bound_ms(r["batch"]) <= r["p50_ms"]  # physics: FLOPs / peak is a floor
        assert limit.ratio(r["p50_ms"], r["batch"]) >= 1.0
        assert r["bound_ms"] == r["batch"] * flops / (peak_before * 1e9) * 1000
        assert r["measured_over_bound"] == r["p50_ms"] / r["bound_ms"]


def test_copy_cost_on_the_cpu_is_not_applicable_not_a_number():
    x = acc.make_batch(acc.example_input(16), 4)
    cost = acc.copy_cost(x, "cpu")
    assert cost.applicable is False and cost.pageable is None and cost.pinned is None
    row = cost.row()
    assert row["copy_p50_ms"] is None and row["copy_gb_s"] is None and "not applicable" in row["note"]
    rows = acc.batch_sweep(small_cnn(), input_size=16, batches=[4], repeats=3, warmup=1, copies={4: cost})
    assert rows[0]["copy_p50_ms"] is None and "not applicable" in rows[0]["copy_note"]
    assert "images_per_s_with_copy" not in rows[0]


def test_measuring_never_changes_the_shared_model():
    model = small_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc.batch_sweep(model, input_size=16, batches=[1], precision="bf16", repeats=3, warmup=1)
    acc.thread_scaling(model, input_size=16, threads=[1], repeats=3, warmup=1)
    for k, v in model.state_dict().items():
        assert v.dtype == before[k].dtype and v.device.type == "cpu" and torch.equal(v, before[k])
    assert model[0].weight.is_contiguous()  # not turned channels-last
    assert all(p.requires_grad for p in model.parameters())


def test_run_all_on_the_cpu_gives_rows_limits_and_threads():
    model = small_cnn()
    steps = []
    report = acc.run_all(model, acc.example_input(32), label="tiny", devices=["cpu"], precisions={"cpu": ["fp32"]},
                         batches={"cpu": [1, 2]}, repeats=3, warmup=1, thread_batches=(1,), threads=[1, 2],
                         progress=lambda f, t: steps.append(f))
    assert [r["batch"] for r in report.rows] == [1, 2]
    assert [c["copy_p50_ms"] for c in report.copies] == [None, None]
    [lim] = report.limits
    assert lim["flops_per_image"] == report.facts.flops_per_image and lim["peak_gflops"] > 0
    assert lim["best_over_bound"] >= 1.0 and lim["ridge_flop_per_byte"] > 0
    assert [r["threads"] for r in report.threads] == [1, 2]
    assert steps == sorted(steps) and steps[-1] == 1.0 and not report.notes


# --- the page (offline) -------------------------------------------------------------------------
def _page(**query):
    from tests.test_pages import _page as open_page

    return open_page("pages/13_GPU_acceleration.py", **query)


def _text(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning] + [s.value for s in at.success])


@STREAMLIT
def test_page_offline_says_no_gpu_and_measures_on_the_button(trained_models, monkeypatch):
    from components import acceleration as ca
    from core.devices import available

    monkeypatch.setattr(ca, "THREAD_BATCHES", (1,))
    calls = []
    real = acc.run_all
    monkeypatch.setattr(acc, "run_all", lambda *a, **k: calls.append(k["batches"]) or real(*a, **k))
    at = _page(shape="3", repeats="3", model="subject", clf="shapes-cnn")
    assert not at.exception, [e.value for e in at.exception]
    if "cuda" not in available():
        assert any("No GPU on this server" in w.value for w in at.warning)
    assert "Not measured yet" in _text(at)
    assert {m.label for m in at.metric} >= {"Parameters", "FLOPs per image", "Weights (FP32)"}
    at.multiselect(key="gpu.batches").set_value([1, 2]).run()
    at.button(key="gpu.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == 1 and calls[0]["cpu"] == [1, 2]
    table = at.dataframe[0].value
    assert list(table["batch"]) == [1, 2] and list(table["n"]) == [3, 3]
    assert (table["images/s"] > 0).all()
    assert "not applicable" in _text(at)
    assert any(m.label.endswith("matmul peak") for m in at.metric)
    assert "CPU thread scaling" in "\n".join(h.value for h in at.subheader)
    # a plain rerun only re-renders the stored report
    at.run()
    assert not at.exception and len(calls) == 1 and list(at.dataframe[0].value["batch"]) == [1, 2]


# --- CUDA -----------------------------------------------------------------------------------
@CUDA
def test_cuda_autocast_outputs_are_close_to_fp32(resnet18):
    net = acc.private_copy(resnet18, "cuda")
    x = acc.make_batch(acc.example_input(128), 2).to("cuda")
    ref = acc.forward(net, x, "cuda", "fp32").float()
    scale = ref.abs().max()
    half = acc.forward(net, x, "cuda", "fp16")
    assert half.dtype == torch.float16
    assert (half.float() - ref).abs().max() <= 1e-2 * scale
    if "bf16" in acc.precisions_for("cuda"):
        bf = acc.forward(net, x, "cuda", "bf16")
        assert bf.dtype == torch.bfloat16 and (bf.float() - ref).abs().max() <= 5e-2 * scale
    assert next(resnet18.parameters()).device.type == "cpu"  # the shared model never moved


@CUDA
def test_cuda_sweep_memory_copy_and_bound(resnet18):
    x = acc.example_input(112)
    precision_before = torch.get_float32_matmul_precision()
    flops = perf.count_flops(resnet18, x)
    peaks = {p: acc.device_peak_gflops("cuda", p) for p in ("fp32", "fp16")}
    assert torch.get_float32_matmul_precision() == precision_before
    copies = {b: acc.copy_cost(acc.make_batch(x, b), "cuda", repeats=5) for b in (1, 8)}
    for b, cost in copies.items():
        assert cost.applicable and cost.pageable.p50 > 0 and cost.pinned.p50 > 0 and cost.pinned_uint8.p50 > 0
        assert cost.row()["copy_gb_s"] > 0
    for precision, peak in peaks.items():
        rows = acc.batch_sweep(resnet18, example=x, batches=[1, 8], device="cuda", precision=precision, repeats=5,
                               limit=acc.ComputeLimit("cuda", precision, flops, peak), copies=copies)
        assert [r["batch"] for r in rows] == [1, 8]
        weights_mb = acc.weight_bytes(resnet18) / 2**20
        for r in rows:
            assert r["memory_how"] == acc.CUDA_MEMORY_HOW and r["memory_mb"] > weights_mb
            assert 0 < r["forward_memory_mb"] < r["memory_mb"]
            assert r["memory_mb"] == pytest.approx(weights_mb + r["batch"] * 3 * 112 * 112 * 4 / 2**20
                                                   + r["forward_memory_mb"])
            assert r["images_per_s"] == r["batch"] * 1000 / r["p50_ms"]
            assert r["bound_ms"] <= r["p50_ms"]
            assert r["copy_p50_ms"] == copies[r["batch"]].pageable.p50
            assert r["images_per_s_with_copy"] < r["images_per_s"]
        assert rows[1]["forward_memory_mb"] > rows[0]["forward_memory_mb"]  # activations grow with the batch
    assert torch.cuda.memory_allocated() < 2**20 * 64  # nothing of the sweeps is left on the GPU


@CUDA
def test_cuda_graph_replays_the_same_forward_pass(resnet18):
    net = acc.private_copy(resnet18, "cuda")
    x = acc.make_batch(acc.example_input(96), 4).to("cuda")
    for precision in ("fp32", "fp16"):
        graph, out = acc.cuda_graph(net, x, "cuda", precision)
        graph.replay()
        torch.cuda.synchronize()
        eager = acc.forward(net, x, "cuda", precision)
        assert out.dtype == eager.dtype
        assert torch.allclose(out.float(), eager.float(), rtol=1e-3, atol=1e-3 * eager.abs().max().item())
    x = acc.example_input(96)
    rows = acc.batch_sweep(resnet18, example=x, batches=[1, 16], device="cuda", graph=True, repeats=5)
    assert [r["mode"] for r in rows] == ["CUDA graph"] * 2 and rows[0]["series"].endswith("CUDA graph")
    weights_mb = acc.weight_bytes(resnet18) / 2**20
    for r in rows:  # memory = weights + input + the pool the capture filled (independent of earlier leftovers)
        input_mb = r["batch"] * 3 * 96 * 96 * 4 / 2**20
        assert r["memory_mb"] == pytest.approx(weights_mb + input_mb + r["forward_memory_mb"])
    assert rows[1]["forward_memory_mb"] > rows[0]["forward_memory_mb"] > 0
    with pytest.raises(ValueError):
        acc.batch_sweep(resnet18, input_size=32, batches=[1], device="cpu", graph=True)
