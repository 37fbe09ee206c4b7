"""Distributed training: real DDP worker processes and the scaling model.

* The scaling model is exact on hand-computed cases.
* DistributedSampler's shards are what the page says (disjoint; together one global batch).
* Two processes with the same global batch reach the same weights as one process
  (float64: rounding only; float32 over a few steps: within 1e-4); with BatchNorm they do
  not (each worker normalises with its own batch's statistics) - the negative control.
* Every worker ends bit-identical to the others; they started different (seed + rank)
  and DDP's broadcast synchronised them.
* A failing worker, a timeout, or an exception in the caller kills the whole process group:
  no worker is left (checked by pid and by process group), the folder is removed; a worker
  whose launcher vanished, or that runs past its limit, exits by itself.
* The page renders offline and its launch button shows per-worker losses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core import distributed as D
from core.jobs import Deadline
from core.tables import rows_csv

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/17_Distributed_training.py"
SMALL = dict(n_train=256, n_test=64, seed=0)


@pytest.fixture(scope="module")
def data():
    return D.make_data(SMALL["n_train"], SMALL["n_test"], SMALL["seed"])


def _alive(pids, pgid) -> list:
    """Worker processes still running (zombies count as gone only once reaped, so they count)."""
    left = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid in pids or os.getpgid(proc.pid) == pgid:
                left.append(proc.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return left


# --- the scaling model: hand-computed cases ----------------------------------------------

GB = 1e9  # bits per second in one Gbit/s


@pytest.mark.parametrize("n, size, bw, lat, expected", [
    (1, 100e6, 10 * GB, 1e-5, 0.0),                       # one worker sends nothing
    (2, 100e6, 10 * GB, 0.0, 2 * 1 / 2 * 100e6 * 8 / 10e9),  # 0.08 s
    (4, 100e6, 10 * GB, 0.0, 0.12),                       # 2*3/4 * 0.8 Gbit / 10 Gbit/s
    (4, 100e6, 10 * GB, 1e-5, 0.12 + 6e-5),               # + 2(N-1) hops of 10 us
    (8, 1e6, 1 * GB, 0.0, 2 * 7 / 8 * 8e6 / 1e9),         # 0.014 s
    (64, 0.0, 1 * GB, 25e-6, 126 * 25e-6),                # latency only
])
def test_ring_allreduce_time(n, size, bw, lat, expected):
    assert math.isclose(D.ring_allreduce_s(n, size, bw, lat), expected, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize("n, size, bw, lat, expected", [
    (1, 100e6, 10 * GB, 1e-5, 0.0),
    (2, 100e6, 10 * GB, 0.0, 0.16),                       # 2 * 1 * 0.8 Gbit / 10 Gbit/s
    (4, 100e6, 10 * GB, 1e-5, 0.48 + 2e-5),
    (64, 1e6, 1 * GB, 0.0, 2 * 63 * 8e6 / 1e9),           # 1.008 s: the server's link carries every copy
])
def test_central_allreduce_time(n, size, bw, lat, expected):
    assert math.isclose(D.central_allreduce_s(n, size, bw, lat), expected, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize("compute, comm, backward, overlap, expected", [
    (0.1, 0.05, 0.06, False, 0.15),
    (0.1, 0.05, 0.06, True, 0.1),     # fully hidden behind backward
    (0.1, 0.08, 0.06, True, 0.12),    # 0.02 s exposed
    (0.1, 0.0, 0.06, True, 0.1),
])
def test_step_time(compute, comm, backward, overlap, expected):
    assert math.isclose(D.step_time_s(compute, comm, backward_s=backward, overlap=overlap), expected, rel_tol=1e-12)


def test_scaling_curve_hand_computed():
    # 100 ms compute, 100 MB gradients, 10 Gbit/s, no latency, no overlap:
    # N=4: comm 0.12 s, step 0.22 s, speed-up 4 * 0.1 / 0.22, efficiency 0.1 / 0.22.
    rows = D.scaling_curve([1, 2, 4], compute_s=0.1, grad_bytes=100e6, bandwidth_bps=10 * GB, latency_s=0.0, batch=32)
    assert [r["workers"] for r in rows] == [1, 2, 4]
    assert rows[0]["speedup"] == 1.0 and rows[0]["efficiency"] == 1.0 and rows[0]["comm_ms"] == 0.0
    r4 = rows[2]
    assert math.isclose(r4["comm_ms"], 120.0) and math.isclose(r4["step_ms"], 220.0)
    assert math.isclose(r4["speedup"], 0.4 / 0.22) and math.isclose(r4["efficiency"], 0.1 / 0.22)
    assert math.isclose(r4["images_per_s"], 4 * 32 / 0.22)
    # With overlap and 60 ms of backward, 60 of the 120 ms are hidden.
    r4o = D.scaling_curve([4], compute_s=0.1, grad_bytes=100e6, bandwidth_bps=10 * GB, latency_s=0.0,
                          backward_s=0.06, overlap=True)[0]
    assert math.isclose(r4o["step_ms"], 160.0)
    # The central scheme is never faster than the ring, and the gap grows with N.
    ring = D.scaling_curve([2, 8, 64], compute_s=0.1, grad_bytes=100e6, bandwidth_bps=10 * GB, latency_s=0.0)
    central = D.scaling_curve([2, 8, 64], compute_s=0.1, grad_bytes=100e6, bandwidth_bps=10 * GB, latency_s=0.0,
                              algorithm="central")
    gaps = [c["comm_ms"] / r["comm_ms"] for r, c in zip(ring, central)]
    assert gaps == sorted(gaps) and math.isclose(gaps[0], 2.0) and math.isclose(gaps[-1], 64.0)


def test_bus_bytes():
    assert D.bus_bytes(1, 100) == 0.0 and D.bus_bytes(2, 100) == 100.0 and D.bus_bytes(4, 100) == 150.0


# --- shards, plans, settings ---------------------------------------------------------------


@pytest.mark.parametrize("n, world", [(256, 2), (256, 4), (10, 3)])
def test_shards_are_what_distributed_sampler_gives(n, world):
    from torch.utils.data.distributed import DistributedSampler

    shards = []
    for rank in range(world):
        ours = D.shard_positions(n, world, rank)
        theirs = list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False, drop_last=True))
        assert ours == theirs
        shards.append(set(ours))
    assert set().union(*shards) == set(range(n - n % world)) and sum(map(len, shards)) == n - n % world
    # With shuffling (same seed on every rank) the ranks' k-th batches together are the one-process k-th batch.
    b = 4
    single = list(DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=3, drop_last=True))
    per_rank = [list(DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=True, seed=3, drop_last=True))
                for r in range(world)]
    for k in range(len(per_rank[0]) // b):
        union = sorted(i for r in per_rank for i in r[k * b:(k + 1) * b])
        assert union == sorted(single[k * b * world:(k + 1) * b * world])


@pytest.mark.parametrize("device, n, gpus, backend, dev", [
    ("cpu", 4, 0, "gloo", "cpu"), ("cuda", 1, 1, "nccl", "cuda"), ("cuda", 2, 1, "gloo", "cpu"),
    ("cuda", 4, 8, "nccl", "cuda"), ("cpu", 2, 8, "gloo", "cpu"),
])
def test_plan(device, n, gpus, backend, dev):
    p = D.plan(device, n, gpus)
    assert (p.backend, p.device) == (backend, dev)
    if device == "cuda" and dev == "cpu":
        assert "one GPU per worker" in p.note


def test_sync_batchnorm_is_refused_on_cpu_and_planned_on_gpus():
    with pytest.raises(D.DistributedError, match="GPUs"):
        D.plan("cpu", 2, 0, "sync")
    assert D.plan("cuda", 2, 2, "sync").backend == "nccl"


def test_settings_are_validated():
    with pytest.raises(ValueError):
        D.Settings(world_size=0)
    with pytest.raises(ValueError):
        D.Settings(norm="layer")
    with pytest.raises(ValueError):
        D.Settings(world_size=4, batch=64, n_train=128)  # 32 crops per worker < one batch
    assert D.Settings(world_size=4, batch=8).global_batch == 32


def test_known_parameter_counts_match_torchvision():
    """The scaling model's presets are the real networks' parameter counts."""
    import torch
    import torchvision

    assert set(D.KNOWN_MODELS) == {"resnet18", "resnet50", "vit_b_16", "vit_l_16"}
    with torch.device("meta"):  # no memory, no weights
        for name, (_, count) in D.KNOWN_MODELS.items():
            model = getattr(torchvision.models, name)()
            assert sum(p.numel() for p in model.parameters()) == count, name


# --- real runs: equality, synchronisation, figures ----------------------------------------


def _pair(data, tmp_path, **kw):
    one = D.launch(D.Settings(world_size=1, batch=32, **SMALL, **kw), data=data, dump_weights=True,
                   workdir=tmp_path, timeout_s=150)
    two = D.launch(D.Settings(world_size=2, batch=16, **SMALL, **kw), data=data, dump_weights=True,
                   workdir=tmp_path, timeout_s=150)
    return one, two


def test_two_workers_equal_one_process_in_float64(data, tmp_path):
    one, two = _pair(data, tmp_path, steps=8, dtype="float64", norm="group")
    assert D.max_weight_difference(one, two) < 1e-10
    # The loss of the one process is the mean of the two workers' losses (same global batch).
    for k in range(8):
        mean = (two.workers[0]["steps"][k]["loss"] + two.workers[1]["steps"][k]["loss"]) / 2
        assert math.isclose(one.workers[0]["steps"][k]["loss"], mean, rel_tol=1e-9)
    fig = D.summary(two, reference=one)
    assert fig["started_different"] and fig["synced_at_start"] and fig["identical_at_end"]
    assert fig["backend"] == "gloo" and fig["threads"] == 1 and fig["global_batch"] == 32
    assert fig["grad_bytes"] == 8 * fig["param_count"]  # float64 gradients
    assert fig["ddp_allreduce"] is not None and fig["probe_allreduce"].p50 > 0 and fig["images_per_s"] > 0
    assert two.workers[0]["buckets"] == 1  # the whole CNN is one 25 MB-capped bucket
    # The workers' first batches are disjoint and together the one process's first batch.
    firsts = [set(w["first_batch"]) for w in two.workers]
    assert not firsts[0] & firsts[1] and firsts[0] | firsts[1] == set(one.workers[0]["first_batch"])
    assert list(tmp_path.iterdir()) == []  # each run's folder was removed
    row = D.summary_row(fig)
    assert row["workers"] == 2 and row["identical_weights_at_end"] is True
    assert rows_csv([row]).startswith("workers,backend,")


def test_two_workers_equal_one_process_in_float32_over_a_few_steps(data, tmp_path):
    one, two = _pair(data, tmp_path, steps=3, norm="group")
    assert D.max_weight_difference(one, two) < 1e-4


def test_batchnorm_breaks_the_equality(data, tmp_path):
    """The negative control: per-worker BatchNorm statistics change the gradients themselves."""
    one, two = _pair(data, tmp_path, steps=8, dtype="float64", norm="batch")
    assert D.max_weight_difference(one, two) > 1e-4
    assert D.summary(two)["identical_at_end"]  # the workers still agree with each other


# --- clean-up: nothing is left behind ----------------------------------------------------


def test_a_failing_worker_stops_all_of_them(data, tmp_path):
    seen = {}
    with pytest.raises(D.WorkerFailed) as err:
        D.launch(D.Settings(world_size=2, batch=16, steps=500, **SMALL), data=data, workdir=tmp_path,
                 on_start=seen.update, fail={"rank": 1, "step": 2})
    assert "injected failure" in err.value.log
    assert _alive(seen["pids"], seen["pgid"]) == []
    assert list(tmp_path.iterdir()) == []


def test_a_timeout_kills_the_process_group(data, tmp_path):
    seen = {}
    t0 = time.monotonic()
    with pytest.raises(D.RunTimeout):
        D.launch(D.Settings(world_size=2, batch=16, steps=10_000, **SMALL), data=data, workdir=tmp_path,
                 on_start=seen.update, deadline=Deadline("test run", 3.0))
    assert time.monotonic() - t0 < 20
    assert _alive(seen["pids"], seen["pgid"]) == []
    assert list(tmp_path.iterdir()) == []


def test_an_exception_in_the_caller_kills_the_workers(data, tmp_path):
    """What happens when Streamlit stops the script (the user left): the progress callback raises."""
    seen = {}

    def progress(frac, text):
        if "step" in text:
            raise KeyboardInterrupt("the page was closed")

    with pytest.raises(KeyboardInterrupt):
        D.launch(D.Settings(world_size=2, batch=16, steps=10_000, **SMALL), data=data, workdir=tmp_path,
                 on_start=seen.update, progress=progress)
    assert _alive(seen["pids"], seen["pgid"]) == []
    assert list(tmp_path.iterdir()) == []


def _stuck_worker_config(tmp_path, limit_s: float) -> tuple[Path, dict]:
    """A rank-1 worker whose rank 0 never comes: it waits in the rendezvous until something ends it."""
    cfg = {**dataclasses.asdict(D.Settings(world_size=2, batch=16, **SMALL)), "backend": "gloo", "time_limit_s": limit_s,
           "collective_timeout_s": 300, "x_train": "", "y_train": ""}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    env = D._worker_env(1, 2, D.free_port(), 1)
    return path, env


def test_a_worker_past_its_time_limit_exits_by_itself(tmp_path):
    path, env = _stuck_worker_config(tmp_path, 2.0)
    proc = subprocess.Popen([sys.executable, "-m", "core.ddp_worker", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.wait(timeout=60) == 4
    finally:
        proc.kill()
    assert b"time limit" in proc.stderr.read()


def test_a_worker_whose_launcher_vanished_exits(tmp_path):
    path, env = _stuck_worker_config(tmp_path, 300.0)
    # A shell starts the worker in the background and exits at once: the worker is orphaned.
    env.pop("CVLAB_DDP_LAUNCHER")
    script = f'CVLAB_DDP_LAUNCHER=$$ "{sys.executable}" -m core.ddp_worker "{path}" >/dev/null 2>&1 & echo $!'
    out = subprocess.run(["sh", "-c", script],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    pid = int(out.stdout.strip())
    ends = time.monotonic() + 60
    while time.monotonic() < ends:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, 9)
        pytest.fail("the orphaned worker was still running after 60 s")


# --- the page -----------------------------------------------------------------------------


def _charts(at) -> list[tuple[str, list[dict]]]:
    """(spec JSON text, data rows) of each Vega-Lite chart (a single view's data travels as Arrow)."""
    import pyarrow as pa

    out = []
    for el in at.get("vega_lite_chart"):
        spec, data = el.proto.spec, el.proto.data.data
        rows = pa.ipc.open_stream(data).read_all().to_pylist() if data else json.loads(spec)["data"]["values"]
        out.append((spec, rows))
    return out


def test_page_renders_offline_before_any_run():
    from tests.test_pages import _page

    at = _page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    assert any(b.label == "Launch the workers" for b in at.button)
    assert len(at.get("vega_lite_chart")) == 2  # the scaling model is live before any run
    # The run's defaults are core.distributed.Settings' (the page declares them from it).
    assert at.select_slider(key="ddp.batch").value == D.Settings().batch
    assert at.selectbox(key="ddp.norm").value == D.Settings().norm
    steps = at.slider(key="ddp.steps")
    assert (steps.label, steps.min, steps.max, steps.step) == ("Training steps", 5, 120, 5)
    # Moving the bandwidth slider only recomputes the formula: 10x less bandwidth, 10x the
    # bandwidth term of the ring all-reduce at 64 workers (ResNet-50's 102 MB, 25 us hops).
    def ring64(at) -> float:
        return float(next(m.value for m in at.metric if m.label.startswith("Ring all-reduce")).split()[0])

    assert math.isclose(ring64(at), 1e3 * D.ring_allreduce_s(64, 4 * 25_557_032, 10e9, 25e-6), rel_tol=1e-3)
    before = _charts(at)
    at.select_slider(key="ddp.bw").set_value(1).run()
    assert not at.exception and _charts(at) != before
    assert math.isclose(ring64(at), 1e3 * D.ring_allreduce_s(64, 4 * 25_557_032, 1e9, 25e-6), rel_tol=1e-3)


def test_page_launch_button_shows_per_worker_losses(tmp_path, monkeypatch):
    from components import distributed as cd
    from tests.test_pages import _page

    monkeypatch.setenv("CVLAB_TMP", str(tmp_path))
    at = _page(PAGE)
    at.multiselect(key="ddp.workers").set_value([1, 2])
    at.slider(key="ddp.steps").set_value(5)
    at.select_slider(key="ddp.batch").set_value(8)
    at.run()
    # While another session holds the server's slot, the click is refused with a message.
    with cd.DDP_RUNS.slot("someone else"):
        at.button(key="ddp.run").click().run()
    assert any("busy" in w.value for w in at.warning)
    at.button(key="ddp.run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    text = "\n".join(m.value for m in at.markdown)
    assert "**N = 1**" in text and "**N = 2**" in text
    loss_charts = [rows for spec, rows in _charts(at) if "cross-entropy" in spec]
    assert len(loss_charts) == 2
    assert {r["worker"] for r in loss_charts[0]} == {"rank 0"}
    assert {r["worker"] for r in loss_charts[1]} == {"rank 0", "rank 1"}
    assert all(len([r for r in loss_charts[1] if r["worker"] == w]) == 5 for w in ("rank 0", "rank 1"))
    captions = "\n".join(c.value for c in at.caption)
    assert "identical" in captions
    assert not any(b.label == "Launch the workers" for b in at.button)  # cached: nothing to launch
    assert len(at.get("download_button")) == 2


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_one_worker_on_a_gpu_uses_nccl(data, tmp_path):
    import torch

    run = D.launch(D.Settings(world_size=1, batch=32, steps=6, device="cuda", **SMALL), data=data,
                   gpus=torch.cuda.device_count(), workdir=tmp_path)
    fig = D.summary(run)
    assert fig["backend"] == "nccl" and fig["device"] == "cuda" and fig["images_per_s"] > 0
