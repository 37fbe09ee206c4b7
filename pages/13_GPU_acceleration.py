"""GPU acceleration (Q14, Q31): the same forward pass timed on the CPU and the GPU across batch
sizes and precisions, the host->device copy on its own, memory, CPU thread scaling, and how
far each latency is from the device's measured compute limit."""

from dataclasses import replace

import streamlit as st

from components.frame import lab_page
from components import acceleration as ca
from components.classifier import active_subject
from components.urlstate import UrlState
from core import acceleration as acc  # torch is imported inside its functions
from core.devices import cpu_threads
from core.params import Param
from core.tables import rows_csv

page = lab_page("gpu-acceleration")
ctx = page.ctx

# the page's classifier first; the help starts with a line on why to compare (it depends on the model)
MODEL = Param(default="subject", kind=str, choices=("subject", ca.UNTRAINED), label="Model to time",
              help="ResNet-18's architecture with untrained weights runs exactly as fast as the trained one: "
                   "latency does not depend on the weight values.")
MODEL_SHAPES = replace(MODEL, default=ca.UNTRAINED)  # the tiny shapes CNN: the comparison first
REPEATS = Param(default=5, kind=int, lo=3, hi=30, step=1, label="Timed repeats per point",
                help=f"After {ca.WARMUP} warm-up passes. p50 and p95 are taken over these.")
CAP = Param(default=90, kind=int, lo=10, hi=240, step=10, label="Stop after (seconds)",
            help="A cap on the whole run: batch sizes left when it is reached are skipped, and the "
                 "repeats of a slow point are cut to fit (never below 3).")

url = UrlState("gpu")
subject = active_subject(ctx, url)
gpu = ca.available_devices().get("cuda")
cpu_name = ca.available_devices()["cpu"].name

if gpu is None:
    st.warning(f"**No GPU on this server.** Only the CPU ({cpu_name}) can be timed here, so this page "
               f"shows what the CPU can: latency and images/s across batch sizes, how the forward pass "
               f"scales from 1 to {cpu_threads()} threads, and how far each latency is from the CPU's own "
               "measured compute limit. On a machine with an NVIDIA GPU the same button also times the GPU, "
               "the host→device copy, FP16/BF16 mixed precision and the GPU's peak memory.", icon="🖥️")
else:
    st.success(f"**GPU found: {gpu.name}.** The button times it and the CPU ({cpu_name}) side by side.",
               icon="⚡")

# --- the model ------------------------------------------------------------------------------
choices = {"subject": subject.classifier.title}
if subject.classifier.name != "resnet18":
    choices[ca.UNTRAINED] = ca.UNTRAINED_TITLE
    why = ("The tiny shapes CNN is over in microseconds, so overheads hide what batching, threads and GPUs do. "
           if subject.offline else
           f"{subject.classifier.title} is built for phones: few FLOPs, many depthwise and 1×1 convolutions that move "
           "a lot of memory per FLOP. ResNet-18 is the heavier, plainer comparison, with several times its FLOPs "
           "(see *FLOPs per image* below for each). ")
    spec = MODEL_SHAPES if subject.offline else MODEL
    model_key = url.radio("model", replace(spec, help=why + spec.help), format_func=choices.get, horizontal=True)
else:
    model_key = "subject"
clf = subject.classifier if model_key == "subject" else ca.untrained_resnet18()
example = clf.tensor(subject.image)  # the image as the network sees it, (1, 3, S, S)
input_desc = "×".join(str(d) for d in example.shape[1:])
with st.spinner("Counting FLOPs and layer sizes…"):
    facts = ca.facts(f"{model_key}:{clf.name}", input_desc, clf.model, example)

st.subheader("The model, before any timing")
m = st.columns(5)
m[0].metric("Model", clf.title if model_key == "subject" else "ResNet-18",
            help=None if model_key == "subject" else
            "Untrained weights, the same layers and FLOPs as the trained ImageNet ResNet-18.")
m[1].metric("Parameters", f"{facts.parameters / 1e6:.2f} M" if facts.parameters > 1e5 else f"{facts.parameters:,}")
m[2].metric("Weights (FP32)", f"{facts.weight_mb:.1f} MB")
m[3].metric("FLOPs per image", f"{facts.flops_per_image / 1e9:.2f} G" if facts.flops_per_image > 1e8
            else f"{facts.flops_per_image / 1e6:.1f} M",
            help="Counted by torch.utils.flop_counter on one forward pass (a multiply-add = 2 FLOPs).")
m[4].metric("Activations per image", f"{facts.activation_mb_per_image:.1f} MB",
            help="FP32 sum of every layer's output for one image: an estimate of the activation memory.")
st.caption(f"Input {input_desc} ({subject.title}). Arithmetic intensity (FLOP per byte moved) of each conv and "
           "linear layer is below the results; a GPU needs a high one to keep its arithmetic units busy.")

# --- the settings -----------------------------------------------------------------------------
st.subheader("Measure")
c1, c2, c3 = st.columns([3, 3, 3])
default_batches = [1, 2, 4, 8, 16] + ([32] if gpu else [])
batches = c1.multiselect("Batch sizes", ca.BATCH_CHOICES, default=default_batches, key="gpu.batches",
                         help=f"Images per forward pass. On the CPU batches above {ca.CPU_MAX_BATCH} are skipped.")
cpu_prec = c2.multiselect("CPU precision", ["fp32", "bf16"], default=["fp32"], key="gpu.cpu_prec",
                          format_func=acc.PRECISION_LABELS.get,
                          help="BF16 autocast is correct on any CPU but fast only on CPUs with BF16 units "
                               "(AVX-512 BF16, AMX).")
gpu_prec = []
if gpu:
    gpu_choices = ["fp32", "fp16", "bf16"]
    gpu_prec = c2.multiselect("GPU precision", gpu_choices, default=gpu_choices, key="gpu.gpu_prec",
                              format_func=acc.PRECISION_LABELS.get,
                              help="torch.autocast: convolutions and matrix products in FP16/BF16 on tensor "
                                   "cores, weights kept in FP32.")
use_graphs = bool(gpu) and c2.checkbox("Also replay each pass as a CUDA graph", value=True, key="gpu.graphs",
                                       help="One launch for all of the network's kernels instead of one launch per "
                                            "layer from Python: what is left is the GPU's own time.")
repeats = int(url.slider("repeats", REPEATS, c3))
cap = int(url.slider("cap", CAP, c3))
url.sync()

batches = sorted(batches)
devices = ["cpu"] + ([gpu.torch_device] if gpu else [])
plan_batches = {"cpu": [b for b in batches if b <= ca.CPU_MAX_BATCH]}
precisions = {"cpu": cpu_prec or ["fp32"]}
if gpu:
    plan_batches[gpu.torch_device] = batches
    precisions[gpu.torch_device] = gpu_prec or ["fp32"]
largest_cpu = max(plan_batches["cpu"], default=1)
thread_batches = sorted({min(b, largest_cpu) for b in ca.THREAD_BATCHES})
key = ca.settings_key(model_key, clf.name, input_desc, tuple(batches), tuple(precisions["cpu"]),
                      tuple(precisions.get(gpu.torch_device, ()) if gpu else ()), use_graphs, repeats,
                      tuple(thread_batches))

if not batches:
    st.info("Choose at least one batch size.", icon="☝️")
    report = None
else:
    clicked = st.button("Measure", type="primary", key="gpu.run",
                        help="Times every device, precision and batch size above, then CPU thread scaling. "
                             "One timing run per server at a time.")
    if clicked:
        ca.measure(key, clf.model, example, label=clf.title if model_key == "subject" else ca.UNTRAINED_TITLE,
                   devices=devices, precisions=precisions, batches=plan_batches, repeats=repeats, cap_s=cap,
                   thread_batches=thread_batches, model_facts=facts, cuda_graphs=use_graphs)
    report = ca.stored(key)
    if report is None:
        st.info(f"**Not measured yet for these settings.** Press *Measure*: it takes roughly "
                f"{'10–40' if clf.name.startswith('resnet') else '5–15'} s here (capped at {cap} s).", icon="⏱️")

# --- the results ------------------------------------------------------------------------------
if report is not None:
    timed = [r for r in report.rows if "p50_ms" in r]
    names = {r["series"]: r["device_name"] for r in timed}
    st.caption(f"Measured in {report.seconds:.0f} s. Every point: p50 (and p95) of the timed forward passes after "
               f"{ca.WARMUP} warm-up passes, on a batch already on the device. "
               + "; ".join(f"{s}: {n}" for s, n in names.items()) + f". Sidebar device: {ctx.device.name}.")
    for note in report.notes:
        st.warning(note, icon="⏱️")
    for r in report.rows:
        if "error" in r:
            st.warning(f"{r['series']}, batch {r['batch']}: {r['error']}.", icon="💥")

    st.subheader("Latency and throughput vs batch size")
    a, b = st.columns(2)
    with a:
        ca.lines(timed, x="batch", y="p50_ms", series="series", x_title="batch size",
                 y_title="latency per batch, p50 (ms)", log_y=True,
                 tooltip=[{"field": "series"}, {"field": "batch"}, {"field": "p50_ms", "format": ".2f"},
                          {"field": "p95_ms", "format": ".2f"}])
    with b:
        ca.lines(timed, x="batch", y="images_per_s", series="series", x_title="batch size",
                 y_title="throughput (images/s)", log_y=True,
                 tooltip=[{"field": "series"}, {"field": "batch"}, {"field": "images_per_s", "format": ".1f"}])
    st.dataframe(ca.display(report.rows, {
        "series": "device / precision", "batch": "batch", "p50_ms": "p50 ms", "p95_ms": "p95 ms",
        "repeats": "n", "images_per_s": "images/s", "ms_per_image": "ms / image", "memory_mb": "memory MB", "forward_memory_mb": "of it, forward MB",
        "copy_p50_ms": "copy to device ms", "bound_ms": "compute bound ms", "measured_over_bound": "× bound",
        "error": "error"}), width="stretch", hide_index=True)
    hows = sorted({r["memory_how"] for r in timed})
    st.caption("Memory: " + " · ".join(hows) + ". *Of it, forward*: what the forward pass adds above the weights "
               "and input (its activations and workspace). images/s = batch × 1000 / p50.")

    st.subheader("Host → device copy, timed on its own")
    copies = [c for c in report.copies if c["copy_p50_ms"] is not None]
    if not copies:
        st.info("**Copy cost: not applicable (0 ms, nothing is timed).** On the CPU the batch is already in host "
                "memory and the forward pass reads it where it lies. On a GPU machine this section times "
                "`x.to('cuda')` on its own (pageable and pinned memory) next to the forward pass.", icon="ℹ️")
    else:
        fwd = {(r["device"], r["batch"]): r["p50_ms"] for r in timed if r["precision"] == "fp32"}
        rows = []
        for c in copies:
            rows += [{"batch": c["batch"], "what": "copy, pageable (x.to)", "ms": c["copy_p50_ms"]},
                     {"batch": c["batch"], "what": "copy, pinned + non_blocking", "ms": c["pinned_p50_ms"]},
                     {"batch": c["batch"], "what": "copy, pinned uint8 pixels", "ms": c["pinned_uint8_p50_ms"]}]
            if (c["device"], c["batch"]) in fwd:
                rows.append({"batch": c["batch"], "what": "GPU forward FP32 (data on device)",
                             "ms": fwd[(c["device"], c["batch"])]})
        ca.lines(rows, x="batch", y="ms", series="what", x_title="batch size", y_title="p50 (ms)", log_y=True)
        first = copies[0]
        if (first["device"], first["batch"]) in fwd:
            share = first["copy_p50_ms"] / (first["copy_p50_ms"] + fwd[(first["device"], first["batch"])])
            st.caption(f"At batch {first['batch']} the pageable copy ({first['batch_mb']:.2f} MB at "
                       f"{first['copy_gb_s']:.1f} GB/s) is {share:.0%} of copy + forward.")
        st.dataframe(ca.display(copies, {"batch": "batch", "batch_mb": "MB (FP32)", "copy_p50_ms": "pageable p50 ms",
                                         "copy_p95_ms": "pageable p95 ms", "copy_gb_s": "pageable GB/s",
                                         "pinned_p50_ms": "pinned p50 ms", "pinned_uint8_p50_ms": "uint8 pinned p50 ms"},
                                 digits=3), width="stretch", hide_index=True)

    st.subheader("How far from the compute limit?")
    for lim in report.limits:
        cols = st.columns(4)
        label = f"{'GPU' if lim['device'] != 'cpu' else 'CPU'} {acc.PRECISION_LABELS[lim['precision']]}"
        cols[0].metric(f"{label}: matmul peak", f"{lim['peak_gflops']:,.0f} GFLOP/s",
                       help=f"Best of a large matrix product on {lim['device_name']} (core.perf.matmul_peak_gflops).")
        cols[1].metric("Lower bound per image", f"{lim['bound_ms_per_image']:.3g} ms",
                       help="FLOPs per image / peak: no implementation can be faster on this device.")
        if lim["batch1_p50_ms"] is not None:
            graph_1 = lim.get("batch1_graph_p50_ms")
            cols[2].metric("Measured, batch 1", f"{lim['batch1_p50_ms']:.3g} ms",
                           f"{lim['batch1_p50_ms'] / lim['bound_ms_per_image']:.1f}× the bound", delta_color="off",
                           help=None if graph_1 is None else f"As a CUDA graph: {graph_1:.3g} ms "
                                f"({graph_1 / lim['bound_ms_per_image']:.1f}× the bound).")
        if lim["best_ms_per_image"] is not None:
            how = "" if lim.get("best_mode", "eager") == "eager" else ", CUDA graph"
            cols[3].metric(f"Best per image (batch {lim['best_batch']}{how})", f"{lim['best_ms_per_image']:.3g} ms",
                           f"{lim['best_over_bound']:.1f}× the bound", delta_color="off")
    st.caption("Measured ÷ bound ≥ 1 always; the gap is time spent not doing arithmetic at the peak rate: "
               "launch and framework overhead, memory traffic, layers too small to fill the device.")

    if report.threads:
        st.subheader(f"CPU thread scaling, 1 to {max(r['threads'] for r in report.threads)} threads")
        scaling = [{**r, "batch size": f"batch {r['batch']}"} for r in report.threads]
        ideal = [{"threads": t, "speedup": t} for t in sorted({r["threads"] for r in report.threads})]
        ca.lines(scaling, x="threads", y="speedup", series="batch size", x_title="intra-op threads",
                 y_title="speed-up over 1 thread",
                 extra=[{"data": {"values": ideal}, "mark": {"type": "line", "strokeDash": [4, 4], "color": "#888"},
                         "encoding": {"x": {"field": "threads", "type": "quantitative"},
                                      "y": {"field": "speedup", "type": "quantitative"}}}])
        st.dataframe(ca.display(report.threads, {"batch": "batch", "threads": "threads",
                                                 "threads_seen": "torch.get_num_threads() inside",
                                                 "p50_ms": "p50 ms", "p95_ms": "p95 ms", "images_per_s": "images/s",
                                                 "speedup": "speed-up", "efficiency": "efficiency"}),
                     width="stretch", hide_index=True)
        st.caption(f"torch.set_num_threads inside a block that restores it ({cpu_threads()} cores available to "
                   "this server). The dashed line is perfect scaling. On a shared server other work competes "
                   "for the same cores, and a thread that waits for a busy core stalls the whole layer.")

    d1, d2, d3 = st.columns(3)
    d1.download_button("Download batch sweep (CSV)", lambda: rows_csv(report.rows), file_name="gpu_batch_sweep.csv",
                       mime="text/csv", key="gpu.dl.rows", width="stretch")
    if report.threads:
        d2.download_button("Download thread scaling (CSV)", lambda: rows_csv(report.threads),
                           file_name="cpu_thread_scaling.csv", mime="text/csv", key="gpu.dl.threads", width="stretch")
    d3.download_button("Download limits and copies (CSV)", lambda: rows_csv(report.limits) + "\n" + rows_csv(report.copies),
                       file_name="compute_limits.csv", mime="text/csv", key="gpu.dl.limits", width="stretch")

# --- arithmetic intensity per layer (live; ridge points once measured) -------------------------
st.subheader("Arithmetic intensity per layer")
biggest = max(batches, default=1)
ridges = [] if report is None else [
    {"device": f"{'GPU' if lim['device'] != 'cpu' else 'CPU'} {acc.PRECISION_LABELS[lim['precision']]} ridge",
     "ridge": lim["ridge_flop_per_byte"]} for lim in report.limits if lim["precision"] == "fp32"]
ca.intensity_chart(list(facts.layers), sorted({1, biggest}), ridges)
st.caption("FLOPs of each conv/linear layer ÷ bytes it must read and write (input, weights, output, FP32, each once). "
           "A bigger batch reuses the same weights for more images, so late layers (few pixels, many weights) gain "
           "most. " + ("Red rules: each device's ridge point, measured peak GFLOP/s ÷ measured memory bandwidth "
                       "(a large buffer copy): below it a layer waits for memory, above it for arithmetic."
                       if ridges else "Press *Measure* to add each device's ridge point (peak ÷ memory bandwidth)."))

page.close()
