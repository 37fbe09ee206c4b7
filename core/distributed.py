"""Real DistributedDataParallel runs started from the app, and a model of how they scale.

Launching (the processes are real; nothing here imports Streamlit)::

    settings = Settings(world_size=2, batch=32, steps=30)          # batch = per worker
    run = launch(settings, progress=lambda frac, text: ..., deadline=deadline)
    run.workers            # one result dict per rank (core.ddp_worker), JSON from files
    summary(run)           # step time, all-reduce times, images/s, identical weights, ...

``launch`` writes the shared training crops once as ``.npy`` files (read back with
``allow_pickle=False``) and a JSON config into a fresh temporary folder, starts
``world_size`` processes ``python -m core.ddp_worker config.json`` with the
torch.distributed environment (``MASTER_ADDR=127.0.0.1``, a free ``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) in ONE new process group, follows their
``status-<rank>.json`` files for the progress bar, and reads ``result-<rank>.json``.
Subprocesses, not ``fork``: forking a threaded server (Streamlit) is unsafe, and a fresh
interpreter per worker is what ``torchrun`` does too. On success, on a worker's failure,
on the time limit and on any exception (the user closing the page included) the whole
process group is killed with SIGKILL and reaped, and the folder removed.

The scaling model (pure arithmetic, table-tested) extrapolates measured compute and
gradient sizes to many machines: a ring all-reduce of ``S`` bytes over ``N`` workers
sends ``2(N-1)`` messages of ``S/N`` bytes in sequence per worker, so it takes
``2(N-1) * latency + 2(N-1)/N * S / bandwidth``; gathering everything on one central
worker and sending it back takes ``2 * latency + 2(N-1) * S / bandwidth`` (its link carries
every copy). A step costs compute plus the communication that is not hidden behind the
backward pass. With a fixed batch per worker (weak scaling) the speed-up is
``N * T(1) / T(N)`` and the efficiency ``speed-up / N``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from core.ddp_worker import LAUNCHER_ENV

ROOT = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 3  # first steps of a run (allocations, first all-reduce) are left out of timings
NORM_TITLES = {
    "group": "GroupNorm (per image: independent of how the batch is split)",
    "batch": "BatchNorm (statistics of each worker's own batch)",
    "sync": "SyncBatchNorm (statistics all-reduced over the workers; GPU only)",
}


# What one worker process adds to the server's memory (MB), for the page's cap on the worker
# count (core.resources.worker_cap). Measured with 1, 2 and 4 workers (shapes CNN, batch 32,
# 40 steps, gloo, torch 2.14 on x86_64), torch already loaded by the launcher as the server has
# it: the cgroup's usage rose by 501, 896 and 1714 MB (anonymous memory 482, 872 and 1679 MB),
# i.e. 430-500 MB a worker. Each worker's own peak RSS was 780-880 MB, but about 380 MB of that
# is torch's shared-library pages, which are in the page cache once for all of them. (The
# benchmark's ddp-memory part, a new server and the page's runs of 1, 2 and 4 workers at batch
# 64: peak 3.4 GB RSS, 2.2 GB PSS for the server and its workers together.) CPU workers only:
# a CUDA worker also holds a CUDA context.
WORKER_MB = 500.0

# Parameters of well-known networks (pinned on torchvision by the tests): the scaling model's
# "your own numbers" presets, as FP32 gradients of 4 bytes per parameter.
KNOWN_MODELS = {
    "resnet18": ("ResNet-18", 11_689_512), "resnet50": ("ResNet-50", 25_557_032),
    "vit_b_16": ("ViT-B/16", 86_567_656), "vit_l_16": ("ViT-L/16", 304_326_632),
}


class DistributedError(RuntimeError):
    """A run could not finish; the message is a sentence for the user."""


class WorkerFailed(DistributedError):
    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log  # the last lines the failed worker printed (shown as code, never as Markdown)


class RunTimeout(DistributedError):
    pass


# --- settings and the launch plan -----------------------------------------------------


@dataclass(frozen=True)
class Settings:
    world_size: int = 2
    batch: int = 32  # per worker: the global batch is world_size * batch
    steps: int = 30
    n_train: int = 1024
    n_test: int = 256
    seed: int = 0
    norm: str = "group"
    optimizer: str = "adamw"  # "adamw" | "sgd" (momentum 0.9)
    lr: float = 0.01
    device: str = "cpu"  # "cpu" or "cuda"
    threads: int = 1  # torch threads per worker
    dtype: str = "float32"  # "float64" makes a 1-vs-N comparison exact up to rounding (tests)

    def __post_init__(self):
        if self.world_size < 1 or self.batch < 1 or self.steps < 1 or self.threads < 1:
            raise ValueError("world_size, batch, steps and threads must be >= 1")
        if self.norm not in NORM_TITLES:
            raise ValueError(f"norm must be one of {sorted(NORM_TITLES)}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError("optimizer must be 'adamw' or 'sgd'")
        if self.dtype not in ("float32", "float64"):
            raise ValueError("dtype must be 'float32' or 'float64'")
        if self.device not in ("cpu", "cuda"):
            raise ValueError("device must be 'cpu' or 'cuda'")
        if self.n_train // self.world_size < self.batch:
            raise ValueError(f"{self.n_train} crops over {self.world_size} workers is less than one batch of "
                             f"{self.batch} each")

    @property
    def global_batch(self) -> int:
        return self.world_size * self.batch


@dataclass(frozen=True)
class Plan:
    backend: str  # "gloo" | "nccl"
    device: str  # "cpu" | "cuda"
    note: str  # one sentence for the page


def plan(device: str, world_size: int, gpus: int, norm: str = "group") -> Plan:
    """Which backend and device a run of ``world_size`` workers gets, given ``gpus`` visible GPUs.

    NCCL needs one GPU per worker (two ranks on one GPU are refused), so with fewer GPUs
    than workers the run goes to the CPU with gloo. SyncBatchNorm exists only on GPUs."""
    if device == "cuda" and gpus >= world_size:
        return Plan("nccl", "cuda", f"NCCL on {world_size} GPU{'s' if world_size > 1 else ''}, one per worker.")
    why = ""
    if device == "cuda":
        why = (f" NCCL needs one GPU per worker and this machine has {gpus}, so these {world_size} workers "
               "run on the CPU with gloo.")
    if norm == "sync":
        raise DistributedError("SyncBatchNorm works only on GPUs in PyTorch (it raises on CPU tensors); "
                               "choose GroupNorm or BatchNorm for CPU workers." + why)
    return Plan("gloo", "cpu", f"gloo on the CPU, {world_size} process{'es' if world_size > 1 else ''}." + why)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the rendezvous retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_positions(n: int, world_size: int, rank: int) -> list[int]:
    """Positions (in the epoch's shuffled order) that ``DistributedSampler`` gives ``rank``:
    every ``world_size``-th one, starting at ``rank`` (after dropping the uneven tail)."""
    usable = n - n % world_size
    return list(range(rank, usable, world_size))


# --- launching ------------------------------------------------------------------------


@dataclass
class Run:
    settings: Settings
    plan: Plan
    workers: list[dict]  # result-<rank>.json of every rank, in rank order
    wall_s: float  # from the first process start to the last exit
    launch: dict = field(default_factory=dict)  # how it was started (pids, pgid, port)


def make_data(n_train: int, n_test: int, seed: int):
    """The shapes crops every worker trains on: (x_train uint8 NHWC, y_train, x_test, y_test)."""
    from core.shapes import make_classification_set

    x, y = make_classification_set(n_train, seed=7_000_000 + seed)
    xt, yt = make_classification_set(n_test, seed=8_000_000 + seed)
    return x, y, xt, yt


def _worker_env(rank: int, world_size: int, port: int, threads: int) -> dict:
    env = dict(os.environ)
    env.update({
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PYTHONUNBUFFERED": "1", LAUNCHER_ENV: str(os.getpid()),
    })
    if "GLOO_SOCKET_IFNAME" not in env and Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # rendezvous on loopback, whatever the hostname resolves to
    return env


def kill_group(procs: list[subprocess.Popen], pgid: int | None) -> None:
    """SIGKILL the workers' process group (anything they started dies with them), then reap."""
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def launch(settings: Settings, *, data=None, timeout_s: float = 180.0, deadline=None,
           progress: Callable[[float, str], None] | None = None, gpus: int = 0, dump_weights: bool = False,
           poll_s: float = 0.1, workdir: Path | None = None, on_start: Callable[[dict], None] | None = None,
           fail: dict | None = None) -> Run:
    """Start ``settings.world_size`` worker processes, wait for them, return their results.

    ``data``: (x_train, y_train, x_test, y_test) numpy arrays (made with :func:`make_data`
    when None). ``deadline`` (core.jobs.Deadline) and ``timeout_s`` both bound the run;
    ``progress(fraction, text)`` is fed from the workers' status files. ``on_start`` gets
    {"pids", "pgid", "port", "folder"} once every process exists (tests use it). Raises
    WorkerFailed / RunTimeout (DistributedError); the workers are gone when it returns or raises.
    ``fail`` ({"rank": r, "step": k}) makes that worker raise at that step (tests of the clean-up)."""
    import numpy as np

    report = progress or (lambda frac, text: None)
    the_plan = plan(settings.device, settings.world_size, gpus, settings.norm)
    base = workdir or Path(os.environ.get("CVLAB_TMP") or tempfile.gettempdir()) / f"cvlab-{os.getpid()}"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="ddp-", dir=base))
    procs: list[subprocess.Popen] = []
    logs = []
    pgid = None
    ends = time.monotonic() + timeout_s
    if deadline is not None:
        ends = min(ends, time.monotonic() + deadline.remaining_s)
    try:
        x, y, xt, yt = data if data is not None else make_data(settings.n_train, settings.n_test, settings.seed)
        paths = {}
        for name, arr in (("x_train", x[:settings.n_train]), ("y_train", y[:settings.n_train]),
                          ("x_test", xt), ("y_test", yt)):
            paths[name] = str(folder / f"{name}.npy")
            np.save(paths[name], np.ascontiguousarray(arr), allow_pickle=False)
        port = free_port()
        cfg = {**asdict(settings), **paths, "backend": the_plan.backend, "device": the_plan.device,
               "time_limit_s": max(5.0, ends - time.monotonic() + 5.0),
               "collective_timeout_s": max(10.0, min(120.0, ends - time.monotonic())),
               "dump_weights": dump_weights, "fail": fail}
        (folder / "config.json").write_text(json.dumps(cfg))
        t0, started = time.perf_counter(), time.time()
        for rank in range(settings.world_size):
            log = open(folder / f"worker-{rank}.log", "wb")
            logs.append(log)
            # One new process group for all workers (rank 0 leads it): one killpg ends them all.
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "core.ddp_worker", str(folder / "config.json")],
                cwd=str(ROOT), env=_worker_env(rank, settings.world_size, port, settings.threads),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                process_group=0 if rank == 0 else pgid))
            if rank == 0:
                pgid = procs[0].pid
        if on_start is not None:
            on_start({"pids": [p.pid for p in procs], "pgid": pgid, "port": port, "folder": str(folder)})
        label = f"{settings.world_size} worker{'s' if settings.world_size > 1 else ''}"
        report(0.0, f"{label}: starting Python, importing torch, joining the process group…")
        while True:
            codes = [p.poll() for p in procs]
            failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                rank, code = failed[0]
                raise WorkerFailed(f"Worker {rank} of {settings.world_size} stopped with exit code {code}; "
                                   "the other workers were stopped too.", _tail(folder / f"worker-{rank}.log"))
            if all(c == 0 for c in codes):
                break
            if time.monotonic() > ends:
                raise RunTimeout(f"The {label} did not finish within the time limit and were stopped "
                                 f"(the whole process group was killed).")
            statuses = [_read_json(folder / f"status-{r}.json") for r in range(settings.world_size)]
            done = [s["step"] for s in statuses if s]
            if done:
                mean = sum(done) / settings.world_size
                losses = ", ".join(f"{s['loss']:.3f}" for s in statuses if s)
                report(mean / settings.steps, f"{label}: step {min(done)}/{settings.steps} · losses per worker {losses}")
            time.sleep(poll_s)
        wall = time.perf_counter() - t0
        workers = []
        for rank in range(settings.world_size):
            result = _read_json(folder / f"result-{rank}.json")
            if result is None:
                raise WorkerFailed(f"Worker {rank} exited without writing its result.")
            if "weights" in result:
                result["weights"] = {k: np.asarray(v) for k, v in result["weights"].items()}
            workers.append(result)
        report(1.0, f"{label}: done in {wall:.1f} s")
        return Run(settings, the_plan, workers, wall,
                   {"pids": [p.pid for p in procs], "pgid": pgid, "port": port, "started": started})
    finally:
        kill_group(procs, pgid)
        for log in logs:
            log.close()
        shutil.rmtree(folder, ignore_errors=True)


# --- what a run measured ----------------------------------------------------------------


def _timing(samples: list[float]):
    from core.perf import Timing

    return Timing(tuple(max(0.0, s) for s in samples)) if samples else None


def summary(run: Run, *, reference: "Run | None" = None) -> dict:
    """The figures of one run (timings over steps after the warm-up, as core.perf.Timing).

    ``step`` is the job's step time: each step, the slowest worker's (they wait for each
    other in the all-reduce anyway). ``compute`` is forward + backward + optimiser minus
    DDP's all-reduce (the one bucket of this small CNN is ready only at the end of
    backward, so nothing is overlapped). ``reference``: the one-worker run for speed-up."""
    s = run.settings
    steps = [w["steps"][WARMUP_STEPS:] or w["steps"] for w in run.workers]
    step_ms = [max(ws[k]["step_ms"] for ws in steps) for k in range(min(len(ws) for ws in steps))]
    pooled = [row for ws in steps for row in ws]
    ddp = [r["ddp_allreduce_ms"] for r in pooled if r.get("ddp_allreduce_ms") is not None]
    compute = [r["forward_ms"] + r["backward_ms"] + r["optimizer_ms"] - (r.get("ddp_allreduce_ms") or 0.0)
               for r in pooled]
    out = {
        "world_size": s.world_size, "backend": run.plan.backend, "device": run.plan.device,
        "device_name": run.workers[0].get("device_name", run.plan.device),
        "threads": run.workers[0]["threads"], "batch": s.batch, "global_batch": s.global_batch,
        "step": _timing(step_ms), "compute": _timing(compute), "ddp_allreduce": _timing(ddp),
        "probe_allreduce": _timing([r["probe_allreduce_ms"] for r in pooled]),
        "backward": _timing([r["backward_ms"] - (r.get("ddp_allreduce_ms") or 0.0) for r in pooled]),
        "grad_bytes": run.workers[0]["grad_bytes"], "param_count": run.workers[0]["param_count"],
        "startup_s": max(w["phases"]["wrapped"] for w in run.workers) - run.launch.get("started", 0.0), "wall_s": run.wall_s,
        "test_accuracy": run.workers[0].get("test_accuracy"),
        "final_loss": sum(w["steps"][-1]["loss"] for w in run.workers) / len(run.workers),
        "started_different": len({w["digest_before"] for w in run.workers}) == len(run.workers),
        "synced_at_start": len({w["digest_after"] for w in run.workers}) == 1,
        "identical_at_end": len({w["digest_final"] for w in run.workers}) == 1,
        "worker_peak_rss_mb": max((w.get("peak_rss_mb") or 0.0 for w in run.workers), default=0.0) or None,
    }
    out["images_per_s"] = s.global_batch / (out["step"].p50 / 1e3)
    probe = out["probe_allreduce"].p50 / 1e3
    out["bus_gbit_s"] = (bus_bytes(s.world_size, out["grad_bytes"]) * 8 / probe / 1e9
                         if s.world_size > 1 and probe > 0 else None)
    if reference is not None:
        ref = summary(reference)
        out["speedup"] = out["images_per_s"] / ref["images_per_s"]
        out["efficiency"] = out["speedup"] / s.world_size
    return out


def summary_row(fig: dict) -> dict:
    """One flat CSV/table row of :func:`summary`'s figures (times in ms)."""
    def t(name, q):
        timing = fig.get(name)
        return None if timing is None else round(getattr(timing, q), 3)

    return {
        "workers": fig["world_size"], "backend": fig["backend"], "device": fig["device_name"],
        "threads_per_worker": fig["threads"], "batch_per_worker": fig["batch"], "global_batch": fig["global_batch"],
        "step_ms_p50": t("step", "p50"), "step_ms_p95": t("step", "p95"),
        "compute_ms_p50": t("compute", "p50"), "compute_ms_p95": t("compute", "p95"),
        "ddp_allreduce_ms_p50": t("ddp_allreduce", "p50"), "ddp_allreduce_ms_p95": t("ddp_allreduce", "p95"),
        "probe_allreduce_ms_p50": t("probe_allreduce", "p50"), "probe_allreduce_ms_p95": t("probe_allreduce", "p95"),
        "gradient_bytes": fig["grad_bytes"], "images_per_s": round(fig["images_per_s"], 1),
        "speedup": None if fig.get("speedup") is None else round(fig["speedup"], 3),
        "efficiency": None if fig.get("efficiency") is None else round(fig["efficiency"], 3),
        "startup_s": round(fig["startup_s"], 2), "final_loss": round(fig["final_loss"], 4),
        "test_accuracy": None if fig["test_accuracy"] is None else round(fig["test_accuracy"], 4),
        "identical_weights_at_end": fig["identical_at_end"],
        "worker_peak_rss_mb": None if fig.get("worker_peak_rss_mb") is None else round(fig["worker_peak_rss_mb"], 1),
    }


def loss_rows(run: Run) -> list[dict]:
    """(workers, worker, step, loss) rows: every worker's loss on its own shard, every step."""
    return [{"workers": run.settings.world_size, "worker": f"rank {w['rank']}", "step": row["step"],
             "loss": row["loss"]} for w in run.workers for row in w["steps"]]


def max_weight_difference(a: Run, b: Run) -> float:
    """Largest |difference| between rank 0's final weights in two runs made with dump_weights."""
    import numpy as np

    wa, wb = a.workers[0]["weights"], b.workers[0]["weights"]
    if wa.keys() != wb.keys():
        raise ValueError("the two runs trained different models")
    return max(float(np.max(np.abs(np.asarray(wa[k], dtype=np.float64) - np.asarray(wb[k], dtype=np.float64)),
                            initial=0.0)) for k in wa)


# --- the scaling model ----------------------------------------------------------------


def bus_bytes(n: int, grad_bytes: float) -> float:
    """Bytes each worker sends in a ring all-reduce of ``grad_bytes``: 2(N-1)/N x S."""
    return 0.0 if n <= 1 else 2 * (n - 1) / n * grad_bytes


def ring_allreduce_s(n: int, grad_bytes: float, bandwidth_bps: float, latency_s: float) -> float:
    """Ring all-reduce: N-1 reduce-scatter and N-1 all-gather steps, each sending S/N bytes.
    ``bandwidth_bps`` is in bits per second (network units); 0 for one worker."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) * latency_s + bus_bytes(n, grad_bytes) * 8 / bandwidth_bps


def central_allreduce_s(n: int, grad_bytes: float, bandwidth_bps: float, latency_s: float) -> float:
    """Everything to one central worker and back (parameter-server style): its link carries
    N-1 gradients in, then N-1 averaged copies out."""
    if n <= 1:
        return 0.0
    return 2 * latency_s + 2 * (n - 1) * grad_bytes * 8 / bandwidth_bps


ALGORITHMS = {"ring": ring_allreduce_s, "central": central_allreduce_s}


def step_time_s(compute_s: float, comm_s: float, *, backward_s: float = 0.0, overlap: bool = False) -> float:
    """Compute plus exposed communication. With ``overlap`` (DDP's gradient buckets are
    all-reduced while backward still runs) up to ``backward_s`` of communication is hidden."""
    exposed = max(0.0, comm_s - backward_s) if overlap else comm_s
    return compute_s + exposed


def scaling_curve(ns, *, compute_s: float, grad_bytes: float, bandwidth_bps: float, latency_s: float,
                  backward_s: float = 0.0, overlap: bool = False, algorithm: str = "ring",
                  batch: int = 1) -> list[dict]:
    """Predicted step time, speed-up and efficiency for each N (fixed batch per worker)."""
    comm_of = ALGORITHMS[algorithm]
    t1 = step_time_s(compute_s, 0.0)
    rows = []
    for n in ns:
        comm = comm_of(n, grad_bytes, bandwidth_bps, latency_s)
        t = step_time_s(compute_s, comm, backward_s=backward_s, overlap=overlap)
        speedup = n * t1 / t
        rows.append({"workers": n, "comm_ms": 1e3 * comm, "step_ms": 1e3 * t, "speedup": speedup,
                     "efficiency": speedup / n, "images_per_s": n * batch / t})
    return rows


# --- pictures and breakdowns -----------------------------------------------------------------

BREAKDOWN = ("data", "forward", "backward", "all-reduce (DDP)", "optimiser")


def breakdown(run: Run) -> dict[str, float]:
    """Median ms of each part of a step (all workers' steps after the warm-up pooled)."""
    from core.perf import percentile

    rows = [row for w in run.workers for row in (w["steps"][WARMUP_STEPS:] or w["steps"])]
    comm = [row.get("ddp_allreduce_ms") or 0.0 for row in rows]
    parts = {
        "data": [r["data_ms"] for r in rows],
        "forward": [r["forward_ms"] for r in rows],
        "backward": [max(0.0, r["backward_ms"] - c) for r, c in zip(rows, comm)],
        "all-reduce (DDP)": comm,
        "optimiser": [r["optimizer_ms"] for r in rows],
    }
    return {k: percentile(v, 50) for k, v in parts.items()}


def ring_dot(n: int = 4) -> str:
    """Graphviz DOT of ``n`` workers in a ring (what a ring all-reduce sends where)."""
    nodes = "\n".join(f'  w{i} [label="worker {i}\\ngradient chunks 0..{n - 1}"];' for i in range(n))
    edges = "\n".join(f'  w{i} -> w{(i + 1) % n} [label="1/{n} of the gradient"];' for i in range(n))
    return ("digraph ring {\n  layout=circo; node [shape=box, style=rounded, fontsize=10]; "
            "edge [fontsize=9];\n" + nodes + "\n" + edges + "\n}")


def main(argv: list[str] | None = None) -> int:
    """``python -m core.distributed --workers 1 2 4 --steps 40 [--device cuda]``: measure and
    print one JSON row per worker count (what the page shows), e.g. on a machine with GPUs."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32, help="per worker")
    parser.add_argument("--norm", default="group", choices=sorted(NORM_TITLES))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    gpus = 0
    if args.device == "cuda":
        import torch

        gpus = torch.cuda.device_count()
    data = make_data(1024, 256, 0)
    runs: dict[int, Run] = {}
    for n in args.workers:
        s = Settings(world_size=n, batch=args.batch, steps=args.steps, norm=args.norm, device=args.device,
                     threads=args.threads, lr=1e-3)
        runs[n] = launch(s, data=data, gpus=gpus, timeout_s=600)
        row = summary_row(summary(runs[n], reference=runs.get(1)))
        print(json.dumps({"plan": runs[n].plan.note, **row}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
