"""One worker of a real DistributedDataParallel run: ``python -m core.ddp_worker CONFIG.json``.

core.distributed.launch starts ``world_size`` copies of this module as separate processes,
each with the usual torch.distributed environment (``MASTER_ADDR``, ``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Every copy

1. joins the process group (gloo on CPU; NCCL when each worker has its own GPU),
2. builds the shapes CNN (core.livetrain.make_model: Normalise -> ShapesNet) with its
   BatchNorm layers kept, swapped for GroupNorm, or converted to SyncBatchNorm (CUDA only),
   initialised from ``seed + rank`` on purpose: DistributedDataParallel broadcasts rank 0's
   weights when it wraps the model, and the worker records that the copies differed
   before and agree after,
3. reads the shared training crops (``.npy`` files written by the launcher; loaded with
   ``allow_pickle=False``) and takes its own shard of each epoch with
   ``DistributedSampler`` (same seed on every rank: the ranks' batches at step k are
   disjoint and together form one global batch),
4. trains ``steps`` steps; DDP averages the gradients with an all-reduce during backward.
   Each step records the forward, backward and optimiser times, the time DDP's own
   all-reduce took (a communication hook: from the moment the gradient bucket is ready to
   the moment the averaged bucket is back, which includes waiting for the slowest worker),
   and a "probe": one ``dist.all_reduce`` of a buffer as large as all gradients, timed
   right after a barrier (pure communication, no waiting; excluded from the step time),
5. writes ``status-<rank>.json`` after every step (progress) and ``result-<rank>.json`` at
   the end: JSON only, each written atomically.

A watchdog thread ends the process if its parent (the launcher) disappears or the time
limit passes, so a crashed server cannot leave workers behind; the launcher also kills the
whole process group on finish, error or timeout. Every worker uses
``torch.set_num_threads(threads)`` (1 by default): with more workers than cores they
share the cores, and more threads would only spin against each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

NORMS = ("group", "batch", "sync")
LAUNCHER_ENV = "CVLAB_DDP_LAUNCHER"  # pid of the process that started the workers
GROUPS = 4  # GroupNorm groups per layer (channels 8, 16, 32, 64 -> 2..16 channels a group)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def build_model(norm: str, seed: int):
    """The shapes CNN with the chosen normalisation: "batch" (BatchNorm2d, statistics of
    each worker's own batch), "group" (GroupNorm: per image, so the result does not depend
    on how the batch is split) or "sync" (SyncBatchNorm: statistics all-reduced over the
    workers; torch supports it on GPUs only)."""
    from torch import nn

    from core.livetrain import make_model

    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    model = make_model(seed)
    if norm == "group":
        def swap(module):
            for name, child in module.named_children():
                if isinstance(child, nn.BatchNorm2d):
                    setattr(module, name, nn.GroupNorm(GROUPS, child.num_features))
                else:
                    swap(child)
        swap(model)
    elif norm == "sync":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def weights_digest(model) -> str:
    """SHA-256 of every parameter, in order (equal digests = bit-identical weights). Buffers
    (BatchNorm's running statistics) are left out: DDP re-broadcasts them from rank 0 at
    the start of every forward pass, so between steps each worker holds its own."""
    digest = hashlib.sha256()
    for name, tensor in model.named_parameters():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _watchdog(parent: int, limit_s: float) -> None:
    end = time.monotonic() + limit_s
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            sys.stderr.write("ddp_worker: the launcher is gone; exiting\n")
            os._exit(3)
        if time.monotonic() > end:
            sys.stderr.write(f"ddp_worker: time limit of {limit_s:g} s reached; exiting\n")
            os._exit(4)


def run(cfg: dict, rank: int, world: int, local_rank: int, out: Path) -> dict:
    """Train this worker's part; returns the result dict (also written to result-<rank>.json)."""
    import numpy as np
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data.distributed import DistributedSampler

    phases = {"imported": time.time()}
    torch.set_num_threads(int(cfg["threads"]))
    cuda = cfg["device"] == "cuda"
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    from datetime import timedelta

    dist.init_process_group(cfg["backend"], rank=rank, world_size=world,
                            timeout=timedelta(seconds=float(cfg["collective_timeout_s"])),
                            **({"device_id": device} if cuda else {}))
    try:
        phases["joined"] = time.time()
        t_joined = time.perf_counter()
        x_np = np.load(cfg["x_train"], allow_pickle=False)
        y_np = np.load(cfg["y_train"], allow_pickle=False)
        n = len(x_np)

        dtype = getattr(torch, cfg.get("dtype", "float32"))
        model = build_model(cfg["norm"], int(cfg["seed"]) + rank).to(device=device, dtype=dtype)
        digest_before = weights_digest(model)
        ddp = DDP(model, device_ids=[local_rank] if cuda else None)  # broadcasts rank 0's weights
        digest_after = weights_digest(model)
        phases["wrapped"] = time.time()

        hook_s: list[float] = []

        def timed_allreduce(state, bucket):
            """torch's default allreduce_hook (divide by world size, all-reduce), timed."""
            t = time.perf_counter()
            fut = dist.all_reduce(bucket.buffer().div_(world), async_op=True).get_future()

            def done(f):
                hook_s.append(time.perf_counter() - t)
                return f.value()[0]

            return fut.then(done)

        if not cuda:  # on a GPU the future completes when NCCL is enqueued, not when it is done
            ddp.register_comm_hook(None, timed_allreduce)
        grad_numel = sum(p.numel() for p in model.parameters() if p.requires_grad)
        probe = torch.ones(grad_numel, dtype=dtype, device=device)  # as many bytes as the gradients

        if cfg["optimizer"] == "sgd":
            opt = torch.optim.SGD(ddp.parameters(), lr=float(cfg["lr"]), momentum=0.9)
        else:
            opt = torch.optim.AdamW(ddp.parameters(), lr=float(cfg["lr"]), weight_decay=1e-4)
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True,
                                     seed=int(cfg["seed"]), drop_last=True)
        batch, steps = int(cfg["batch"]), int(cfg["steps"])
        per_epoch = len(sampler) // batch
        if per_epoch < 1:
            raise ValueError(f"each worker's shard ({len(sampler)} crops) is smaller than its batch ({batch})")

        rows, first_batch, step, epoch = [], [], 0, 0
        ddp.train()
        while step < steps:
            sampler.set_epoch(epoch)
            order = list(sampler)
            for k in range(per_epoch):
                if step >= steps:
                    break
                idx = order[k * batch:(k + 1) * batch]
                if step == 0:
                    first_batch = [int(i) for i in idx]
                if cfg.get("fail") and cfg["fail"].get("rank") == rank and cfg["fail"].get("step") == step:
                    raise RuntimeError(f"injected failure on rank {rank} at step {step} (a test asked for it)")
                t0 = time.perf_counter()
                x = torch.from_numpy(x_np[idx]).to(device)
                x = x.permute(0, 3, 1, 2).to(dtype).div_(255.0)
                y = torch.from_numpy(y_np[idx]).to(device)
                sync()
                t1 = time.perf_counter()
                loss = F.cross_entropy(ddp(x), y)
                sync()
                t2 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                before = len(hook_s)
                loss.backward()  # DDP all-reduces the gradient buckets during this call
                sync()
                t3 = time.perf_counter()
                opt.step()
                sync()
                t4 = time.perf_counter()
                dist.barrier()
                sync()
                p0 = time.perf_counter()
                dist.all_reduce(probe)
                sync()
                p1 = time.perf_counter()
                rows.append({"step": step + 1, "loss": float(loss.item()),
                             "data_ms": 1e3 * (t1 - t0), "forward_ms": 1e3 * (t2 - t1),
                             "backward_ms": 1e3 * (t3 - t2), "optimizer_ms": 1e3 * (t4 - t3),
                             "step_ms": 1e3 * (t4 - t0),
                             "ddp_allreduce_ms": 1e3 * sum(hook_s[before:]) if not cuda else None,
                             "probe_allreduce_ms": 1e3 * (p1 - p0)})
                step += 1
                write_json(out / f"status-{rank}.json", {"step": step, "steps": steps, "loss": rows[-1]["loss"]})
            epoch += 1

        phases["trained"] = time.time()
        result = {
            "rank": rank, "world_size": world, "backend": cfg["backend"], "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
            "threads": torch.get_num_threads(), "norm": cfg["norm"], "batch": batch,
            "global_batch": batch * world, "steps": rows, "shard_size": len(sampler),
            "first_batch": first_batch, "param_count": grad_numel, "grad_bytes": probe.element_size() * grad_numel,
            "buckets": len(hook_s) // max(1, len(rows)) if not cuda else None,
            "phases": phases, "digest_before": digest_before, "digest_after": digest_after,
            "digest_final": weights_digest(model), "train_s": time.perf_counter() - t_joined,
        }
        if rank == 0 and cfg.get("x_test"):
            from core.livetrain import accuracy

            x_te = torch.from_numpy(np.load(cfg["x_test"], allow_pickle=False)).permute(0, 3, 1, 2).to(dtype).div(255.0)
            y_te = torch.from_numpy(np.load(cfg["y_test"], allow_pickle=False))
            result["test_accuracy"] = accuracy(model.cpu(), x_te, y_te)
        phases["evaluated"] = time.time()
        if cfg.get("dump_weights") and rank == 0:
            result["weights"] = {k: v.detach().cpu().flatten().tolist() for k, v in model.state_dict().items()}
        from core.memory import peak_mb

        result["peak_rss_mb"] = peak_mb()  # this worker process's peak resident memory
        write_json(out / f"result-{rank}.json", result)
        return result
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m core.ddp_worker CONFIG.json\n")
        return 2
    config = Path(argv[0])
    cfg = json.loads(config.read_text())
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    # The launcher's pid comes in the environment: by the time this line runs, a launcher that
    # died at once would already be replaced as parent, and getppid() alone would not notice.
    launcher = int(os.environ.get(LAUNCHER_ENV) or os.getppid())
    threading.Thread(target=_watchdog, args=(launcher, float(cfg["time_limit_s"])), daemon=True).start()
    try:
        run(cfg, rank, world, local_rank, config.parent)
    except Exception:  # the launcher shows the tail of this worker's log
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
