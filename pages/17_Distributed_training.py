"""Distributed training (Q12, Q29): real DDP worker processes, their measured compute and
all-reduce times, and a model that extrapolates them to many machines."""

import streamlit as st

from components.frame import lab_page
from components import distributed as cd
from components.session import session_id
from components.ui import Progress, grouped_bars
from components.urlstate import UrlState
from core import distributed as D
from core import resources
from core.devices import cpu_threads
from core.jobs import JobRefused, JobTimeout
from core.params import Param
from core.tables import rows_csv

page = lab_page("distributed-training")
ctx = page.ctx

url = UrlState("ddp")
WORKER_CHOICES = (1, 2, 4)
STEPS = Param(default=60, kind=int, lo=5, hi=120, step=5, label="Training steps",
              help=f"Optimiser steps per run; timings leave out the first {D.WARMUP_STEPS} (warm-up).")
BATCHES = (8, 16, 32, 64)
BATCH = Param(default=D.Settings.batch, kind=int, choices=BATCHES, label="Batch")
FIX = Param(default="worker", kind=str, choices=("worker", "global"), label="The batch is",
            help="Per worker: each worker takes this many crops, the global batch grows with N (weak scaling, "
                 "how DDP is normally used). Global: N workers share this batch (strong scaling).")
NORM = Param(default=D.Settings.norm, kind=str, choices=tuple(D.NORM_TITLES), label="Normalisation layers",
             help="GroupNorm (default) normalises each image on its own, so splitting the batch over workers "
                  "changes nothing. BatchNorm uses each worker's own batch statistics. SyncBatchNorm "
                  "all-reduces them, but PyTorch supports it on GPUs only.")
BANDWIDTHS = (1, 10, 25, 100, 200, 400, 800)  # Gbit/s per machine
BANDWIDTH = Param(default=10, kind=int, choices=BANDWIDTHS, label="Network bandwidth per machine (Gbit/s)",
                  help="10–25 Gbit/s: data-centre Ethernet; 100–400: InfiniBand / RoCE; "
                       "NVLink inside one machine is several hundred GB/s.")
LATENCIES = (1, 2, 5, 10, 25, 50, 100, 250)  # microseconds per message
LATENCY = Param(default=25, kind=int, choices=LATENCIES, label="Latency per message (µs)",
                help="The fixed cost of one hop of the ring (software + network).")
WORKLOAD = Param(default="measured", kind=str, choices=("measured", "custom"), label="Compute and gradients")
GRADIENTS = D.KNOWN_MODELS
GRADIENT = Param(default="resnet50", kind=str, choices=tuple(GRADIENTS), label="Model (its FP32 gradients)")
COMPUTES = (5, 10, 20, 50, 100, 200, 500, 1000)  # ms per step per worker
COMPUTE = Param(default=100, kind=int, choices=COMPUTES, label="Compute per step per worker (ms)")
SCALE_NS = (1, 2, 4, 8, 16, 32, 64)
CORES = cpu_threads()
LR = 1e-3  # AdamW; the same for every worker count (no learning-rate scaling)

# --- data or model parallelism ------------------------------------------------------------
st.header("Splitting the work")
st.markdown(
    "| | Each GPU holds | Each GPU computes | What travels, and when | PyTorch |\n"
    "|---|---|---|---|---|\n"
    "| **Data parallel** | the whole model | its own slice of the batch | every gradient, all-reduced each step "
    "(2 × model size per GPU) | `DistributedDataParallel` |\n"
    "| **Sharded data parallel** (ZeRO) | 1/N of weights, gradients, optimiser state | its slice of the batch | "
    "weights gathered per layer, gradients reduce-scattered (≈ 1.5 × DDP's traffic) | `FSDP` / `fully_shard` |\n"
    "| **Pipeline parallel** | a block of consecutive layers | every micro-batch, for its layers | "
    "activations forward, their gradients backward, between neighbours | `torch.distributed.pipelining` |\n"
    "| **Tensor parallel** | a slice of every big layer | part of every matrix product | activations "
    "all-reduced inside every layer (needs NVLink-class links) | `torch.distributed.tensor.parallel` |")
st.caption("Data parallelism when the model fits on one GPU (it is the simplest and scales the batch); "
           "model parallelism (pipeline, tensor) or sharding when it does not. Large models combine them: "
           "tensor parallel inside a machine, pipeline across machines, data parallel over the copies.")
diagram, ring_note = st.columns([2, 3])
with diagram:
    st.graphviz_chart(D.ring_dot(4), width="stretch")
with ring_note:
    st.caption("Ring all-reduce with 4 workers: each gradient is cut into 4 chunks; in 3 steps every worker "
               "passes one chunk to its neighbour and adds (reduce-scatter), in 3 more it passes the finished sums "
               "on (all-gather). Each link carries 2·(N−1)/N of the gradient, whatever N is.")

# --- real workers -------------------------------------------------------------------------
st.header("1 · Real DistributedDataParallel workers on this machine")
gpus = cd.gpu_count() if ctx.device.kind == "cuda" else 0
device = "cuda" if gpus else "cpu"
# N workers need about N x D.WORKER_MB: counts that do not fit in the memory left are not offered
# (a chosen count that stops fitting is dropped by the multiselect itself).
cap = resources.worker_cap(WORKER_CHOICES, D.WORKER_MB, resources.memory_available())
a, b, c, d, e = st.columns([1.3, 1.5, 1.3, 1.2, 1.6])
counts = a.multiselect("Worker processes", cap.allowed, default=list(cap.allowed), key="ddp.workers",
                       help="One run per count; each run starts its own processes"
                            f" (about {D.WORKER_MB:.0f} MB of memory each).")
steps = int(url.slider("steps", STEPS, b))
batch = int(url.select_slider("batch", BATCH, c))
fix = url.radio("fix", FIX, d, horizontal=False, format_func={"worker": "per worker", "global": "global (split)"}.get)
norm = url.selectbox("norm", NORM, e, format_func=lambda k: D.NORM_TITLES[k].split(" (")[0])
url.sync()
counts = sorted(int(n) for n in counts)

settings, problem = {}, None
try:
    for n in counts:
        per_worker = batch if fix == "worker" else batch // n
        settings[n] = D.Settings(world_size=n, batch=per_worker, steps=steps, norm=norm, device=device, lr=LR)
        D.plan(device, n, gpus, norm)
except (ValueError, D.DistributedError) as err:
    problem = str(err)

plans = {n: D.plan(device, n, gpus, "group").note for n in counts}
st.markdown(
    f"Each run starts **N fresh Python processes** (`python -m core.ddp_worker`, like `torchrun` does) that join "
    f"one process group through `MASTER_ADDR=127.0.0.1` and a free port, wrap the shapes CNN in "
    f"`DistributedDataParallel` and train it for {steps} steps on 1024 synthetic 64-px crops, each worker on its own "
    f"`DistributedSampler` shard. Every worker uses **one torch thread** (`torch.set_num_threads(1)`), and this "
    f"machine has {CORES} CPU core{'s' if CORES > 1 else ''}"
    + (": with more workers than that they are **oversubscribed** (they take turns on the cores), and the "
       "numbers below show it honestly. " if device == "cpu" and CORES < cap.most else ". ")
    + f"Optimiser: AdamW, learning rate {LR:g} for every N.")
if cap.note:
    st.caption(f"💾 {cap.note}")
if gpus:
    st.caption("GPU plan: " + " ".join(f"N = {n}: {p}" for n, p in plans.items()))
else:
    st.caption("No GPU here: the workers use the **gloo** backend on the CPU. With one GPU per worker the same "
               "code runs on **NCCL** (set the sidebar's device to CUDA on such a machine).")
st.caption(f"This demo uses **{D.NORM_TITLES[norm]}**. GroupNorm is the default because it makes the claim exact: "
           "N workers with the same global batch give the same weights as one process (the page's tests check it: "
           "in float64 the two differ by about 1e-14, rounding only). SyncBatchNorm would also do, but PyTorch "
           "supports it on GPUs only (it raises on CPU tensors).")

if problem:
    st.warning(problem, icon="⚠️")
elif not counts:
    st.info("Choose at least one worker count.")

runs = {n: cd.stored(s) for n, s in settings.items()} if not problem else {}
missing = [n for n, r in runs.items() if r is None]
if missing and not problem:
    st.caption(f"Not measured yet for these settings: N = {', '.join(map(str, missing))}. Each run takes a few seconds "
               "to start (Python, torch, the rendezvous, DDP's set-up) and then trains; results are kept per "
               "setting, so each runs once on this server.")
    if st.button("Launch the workers", type="primary", icon="🚀", key="ddp.run"):
        slot = st.empty()
        bar = Progress(slot)
        try:
            cd.measure([settings[n] for n in missing], session=session_id(), progress=bar, gpus=gpus)
        except (JobRefused, JobTimeout) as err:
            bar.done()
            st.warning(str(err), icon="⏳")
        except D.WorkerFailed as err:
            bar.done()
            st.error(str(err), icon="💥")
            if err.log:
                st.code(err.log, language=None)
        except D.DistributedError as err:
            bar.done()
            st.error(str(err), icon="💥")
        else:
            bar.done()
            st.rerun()  # draw the results without the button

done = {n: r for n, r in runs.items() if r is not None}
if done:
    from core.shapes import SHAPE_CLASSES  # OpenCV: only once there is something to show

    reference = done.get(1)
    figs = {n: D.summary(r, reference=reference) for n, r in done.items()}
    where = figs[min(figs)]["device_name"]
    where = ctx.device.name if where == "cpu" else where

    st.subheader("Each worker's loss on its own shard")
    cols = st.columns(len(done))
    losses = [row for r in done.values() for row in D.loss_rows(r)]
    top = max(row["loss"] for row in losses)
    for col, (n, r) in zip(cols, done.items()):
        with col:
            st.markdown(f"**N = {n}** · global batch {r.settings.global_batch} ({r.settings.batch} per worker)")
            st.vega_lite_chart({
                "data": {"values": D.loss_rows(r)},
                "mark": {"type": "line", "tooltip": True, "strokeWidth": 1.5},
                "encoding": {"x": {"field": "step", "type": "quantitative"},
                             "y": {"field": "loss", "type": "quantitative", "title": "cross-entropy",
                                   "scale": {"domain": [0, top]}},
                             "color": {"field": "worker", "type": "nominal", "title": None}},
                "height": 220,
            }, width="stretch")
            f = figs[n]
            acc = ("" if f["test_accuracy"] is None else
                   f" Held-out accuracy after {steps} steps: {f['test_accuracy']:.0%} (chance: {1 / len(SHAPE_CLASSES):.0%}).")
            if n == 1:
                st.caption("One worker: nothing to synchronise (its all-reduce is with itself)." + acc)
            else:
                sync = "✅ bit-identical" if f["identical_at_end"] else "❌ different"
                st.caption(f"Final weights on the {n} workers: {sync} (SHA-256 of every parameter)." + acc)

    st.subheader(f"What each run measured · {where}")
    rows = [D.summary_row(figs[n]) for n in sorted(figs)]
    st.dataframe([{
        "workers": r["workers"], "backend": r["backend"], "global batch": r["global_batch"],
        "step p50 / p95 (ms)": f"{r['step_ms_p50']:.1f} / {r['step_ms_p95']:.1f}",
        "compute p50 (ms)": round(r["compute_ms_p50"], 1),
        "DDP all-reduce p50 / p95 (ms)": "—" if r["ddp_allreduce_ms_p50"] is None
        else f"{r['ddp_allreduce_ms_p50']:.2f} / {r['ddp_allreduce_ms_p95']:.2f}",
        "pure all-reduce p50 / p95 (ms)": f"{r['probe_allreduce_ms_p50']:.2f} / {r['probe_allreduce_ms_p95']:.2f}",
        "images/s": round(r["images_per_s"]), "speed-up": r["speedup"],
        "efficiency": None if r["efficiency"] is None else f"{r['efficiency']:.0%}",
        "start-up (s)": r["startup_s"],
    } for r in rows], hide_index=True, width="stretch")
    grad_kb = figs[min(figs)]["grad_bytes"] / 1e3
    st.caption(
        f"p50 and p95 over steps {D.WARMUP_STEPS + 1}–{steps} (the slowest worker's step each time). **Compute** = forward "
        f"+ backward + optimiser, minus DDP's all-reduce. **DDP all-reduce**: timed by a communication hook around "
        f"DDP's own all-reduce of the gradient bucket ({grad_kb:.0f} kB, one bucket), from the moment the bucket is "
        "ready to the moment the averaged gradients are back — it includes waiting for the slowest worker. **Pure "
        "all-reduce**: a separate `dist.all_reduce` of an equally large buffer right after a barrier, not counted in "
        "the step. **Start-up**: from launching the processes to DDP being ready (importing torch dominates).")

    a, b = st.columns(2)
    with a:
        st.markdown("**Throughput** (images per second, all workers together)")
        if reference is not None:
            one = figs[1]["images_per_s"]
            grouped_bars({"workers": [f"N = {n}" for n in sorted(figs)],
                          "measured": [round(figs[n]["images_per_s"]) for n in sorted(figs)],
                          "ideal (N × one worker)": [round(n * one) for n in sorted(figs)]},
                         category="workers", series=["measured", "ideal (N × one worker)"], unit="images/s")
        else:
            grouped_bars({"workers": [f"N = {n}" for n in sorted(figs)],
                          "measured": [round(figs[n]["images_per_s"]) for n in sorted(figs)]},
                         category="workers", series=["measured"], unit="images/s")
    with b:
        st.markdown("**Where a step's time goes** (medians, ms)")
        parts = [{"workers": f"N = {n}", "part": part, "ms": round(ms, 2), "order": D.BREAKDOWN.index(part)}
                 for n in sorted(done) for part, ms in D.breakdown(done[n]).items()]
        st.vega_lite_chart({
            "data": {"values": parts},
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {"y": {"field": "workers", "type": "nominal", "title": None, "sort": None},
                         "x": {"field": "ms", "type": "quantitative", "title": "ms per step", "stack": True},
                         "color": {"field": "part", "type": "nominal", "title": None, "sort": list(D.BREAKDOWN)},
                         "order": {"field": "order", "type": "quantitative"}},
            "height": {"step": 28},
        }, width="stretch")

    biggest = done[max(done)]
    ok = [f for f in figs.values() if f["world_size"] > 1]
    if ok:
        started = "different" if all(f["started_different"] for f in ok) else "equal"
        synced = "identical on every worker afterwards" if all(f["synced_at_start"] for f in ok) else "NOT identical"
        ended = "✅ at the end of every run" if all(f["identical_at_end"] for f in ok) else "❌ not at the end"
        st.markdown(
            "**How the copies stay in sync.** Each worker built its model from its own seed (seed + rank), so the "
            f"copies started {started}; wrapping them in DDP broadcast rank 0's weights ({synced}); after that "
            f"every step applies the same averaged gradient, so the weights stay bit-identical ({ended}). "
            "BatchNorm's running statistics are the exception: each worker updates its own, and DDP re-broadcasts "
            "rank 0's at the start of every forward pass.")
    if fix == "global" and reference is not None:
        diffs = {n: D.max_weight_difference(reference, r) for n, r in done.items() if n > 1}
        if diffs:
            st.markdown(
                "**Same global batch, same result.** Largest |weight difference| from the one-worker run after "
                f"{steps} steps: " + ", ".join(f"N = {n}: {v:.1e}" for n, v in diffs.items()) + ". "
                + ("With GroupNorm the only difference is floating-point rounding (the gradients are summed in "
                   "another order), which AdamW amplifies over the steps; in float64 the tests see about 1e-14."
                   if norm == "group" else
                   "With BatchNorm each worker normalises with its own smaller batch's statistics, so the "
                   "gradients themselves differ: this is why the exact comparison uses GroupNorm."))

    st.markdown(f"**Each worker's shard** · the first batch of every worker in the run with N = {biggest.settings.world_size}")
    data = cd.training_data(biggest.settings.n_train, biggest.settings.n_test, biggest.settings.seed)
    for w in biggest.workers:
        shown = w["first_batch"][:10]
        cols = st.columns([1] + [1] * len(shown))
        cols[0].markdown(f"rank {w['rank']}  \n{w['shard_size']} crops / epoch")
        for col, i in zip(cols[1:], shown):
            col.image(data[0][i], caption=f"#{i} {SHAPE_CLASSES[int(data[1][i])]}", width="stretch")
    st.caption("DistributedSampler shuffles the crop indices with the same seed on every worker, then gives rank r the "
               "positions r, r + N, r + 2N, … of that order: disjoint shards that together are one global batch.")

    steps_rows = [{"workers": r.settings.world_size, "rank": w["rank"], **row}
                  for r in done.values() for w in r.workers for row in w["steps"]]
    a, b = st.columns(2)
    a.download_button("Download the measured runs (CSV)", lambda: rows_csv(rows), file_name="ddp_runs.csv",
                      mime="text/csv", width="stretch")
    b.download_button("Download every worker's steps (CSV)", lambda: rows_csv(steps_rows),
                      file_name="ddp_steps.csv", mime="text/csv", width="stretch")

# --- the scaling model ----------------------------------------------------------------------
st.header("2 · Extrapolating to many machines")
a, b, c = st.columns(3)
bandwidth = int(url.select_slider("bw", BANDWIDTH, a))
latency = int(url.select_slider("lat", LATENCY, b))
workload = url.radio("work", WORKLOAD, c, horizontal=True,
                     format_func={"measured": "measured here", "custom": "your own numbers"}.get)
overlap = st.checkbox("Overlap the all-reduce with the backward pass (DDP sends each gradient bucket as soon as "
                      "it is ready)", value=True, key="ddp.overlap")
url.sync()

base = done.get(1) if done else None
if workload == "measured" and base is None:
    st.info("No one-worker run for these settings yet: launch the workers above (with N = 1) to extrapolate the "
            "measured figures. Until then, your own numbers below are used.", icon="ℹ️")
if workload == "measured" and base is not None:
    f1 = D.summary(base)
    compute_s, backward_s = f1["compute"].p50 / 1e3, f1["backward"].p50 / 1e3
    grad_bytes, per_worker = f1["grad_bytes"], base.settings.batch
    source = (f"measured with one worker: compute {1e3 * compute_s:.1f} ms per step of {per_worker} crops "
              f"(backward {1e3 * backward_s:.1f} ms), gradients {grad_bytes / 1e3:.0f} kB ({f1['param_count']:,} "
              f"parameters × 4 bytes) · {where}")
else:
    a, b = st.columns(2)
    name = url.select_slider("grad", GRADIENT, a,
                             format_func=lambda k: f"{GRADIENTS[k][0]} · {4 * GRADIENTS[k][1] / 1e6:.0f} MB")
    compute_ms = int(url.select_slider("comp", COMPUTE, b))
    url.sync()
    compute_s, backward_s = compute_ms / 1e3, compute_ms / 1e3 * 2 / 3
    grad_bytes, per_worker = 4 * GRADIENTS[name][1], 1
    source = (f"your numbers: {GRADIENTS[name][0]} ({GRADIENTS[name][1]:,} parameters, {grad_bytes / 1e6:.0f} MB of "
              f"FP32 gradients), {compute_ms} ms of compute per step, of which backward is taken as 2/3")

model = dict(compute_s=compute_s, grad_bytes=grad_bytes, bandwidth_bps=bandwidth * 1e9, latency_s=latency * 1e-6,
             backward_s=backward_s, overlap=overlap, batch=per_worker)
curves = {scheme: D.scaling_curve(SCALE_NS, algorithm=alg, **model)
          for scheme, alg in (("ring all-reduce", "ring"), ("one central worker", "central"))}
points = [{"workers": r["workers"], "scheme": scheme, "speed-up": r["speedup"], "efficiency": r["efficiency"],
           "communication (ms)": r["comm_ms"]} for scheme, predicted in curves.items() for r in predicted]
points += [{"workers": n, "scheme": "ideal", "speed-up": float(n), "efficiency": 1.0, "communication (ms)": 0.0}
           for n in SCALE_NS]
st.caption("Inputs: " + source + f"; network {bandwidth} Gbit/s, {latency} µs per message.")
if workload == "measured" and base is not None and min(r["efficiency"] for r in curves["ring all-reduce"]) > 0.95:
    st.info(f"The shapes CNN's gradients are only {grad_bytes / 1e3:.0f} kB, so at {bandwidth} Gbit/s sending them "
            "costs almost nothing next to its compute and the curves stay on the ideal line. Pick **your own "
            "numbers** (e.g. ResNet-50's 102 MB) to see the network become the limit.", icon="ℹ️")
st.latex(r"T_{\text{ring}}(N) = 2(N-1)\,\alpha + \frac{2(N-1)}{N}\cdot\frac{S}{B}"
         r"\qquad T_{\text{central}}(N) = 2\alpha + 2(N-1)\,\frac{S}{B}"
         r"\qquad \text{speed-up} = \frac{N\,T_{\text{compute}}}{T_{\text{compute}} + T_{\text{exposed comm}}}")


def _chart(field: str, fmt: str, log: bool) -> dict:
    return {
        "data": {"values": points},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "workers", "type": "quantitative", "scale": {"type": "log", "base": 2},
                  "axis": {"values": list(SCALE_NS)}, "title": "workers (machines or GPUs)"},
            "y": {"field": field, "type": "quantitative", "axis": {"format": fmt},
                  **({"scale": {"type": "log", "base": 2}} if log else {"scale": {"domain": [0, 1.05]}})},
            "color": {"field": "scheme", "type": "nominal", "title": None,
                      "sort": ["ring all-reduce", "one central worker", "ideal"]},
            "strokeDash": {"condition": {"test": "datum.scheme === 'ideal'", "value": [4, 3]}, "value": [1, 0]},
        },
        "height": 280,
    }


a, b = st.columns(2)
with a:
    st.markdown("**Speed-up** (same batch per worker: throughput relative to one worker)")
    st.vega_lite_chart(_chart("speed-up", "~g", True), width="stretch")
with b:
    st.markdown("**Efficiency** (speed-up ÷ workers)")
    st.vega_lite_chart(_chart("efficiency", ".0%", False), width="stretch")
ring64, central64 = curves["ring all-reduce"][-1], curves["one central worker"][-1]
m1, m2, m3 = st.columns(3)
m1.metric("Ring all-reduce at 64 workers", f"{ring64['comm_ms']:.1f} ms", help="Per step, per worker.")
m2.metric("Central worker at 64", f"{central64['comm_ms']:.0f} ms")
m3.metric("Ring efficiency at 64", f"{ring64['efficiency']:.0%}")

page.close()
