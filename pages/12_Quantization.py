"""Quantization (Q11, Q28): weights on an integer grid, how many bits a CNN needs, and FP32 vs
INT8 (ONNX Runtime, CPU) vs FP16/BF16 measured on this machine."""

import streamlit as st

from components.frame import lab_page
from components import quantization as cq
from components.classifier import active_subject
from components.ui import Progress
from components.urlstate import UrlState
from core import quantization as qz  # numpy only at import; torch and onnxruntime inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("quantization")
ctx = page.ctx

SCALES = {"channel": "per output channel", "tensor": "per tensor (one for the layer)"}
BITS = Param(default=8, kind=int, lo=2, hi=8, step=1, label="Weight bits",
             help="Symmetric quantisation: each weight becomes an integer q in ±(2^(bits-1) − 1) "
                  "times one scale s = max|w| / (2^(bits-1) − 1). 8 bits = INT8.")
SCALE = Param(default="channel", kind=str, choices=tuple(SCALES), label="One scale",
              help="Per channel: every output channel (filter) gets its own step, as ONNX Runtime's "
                   "INT8 weights below do. Per tensor: one step for the whole layer.")
WHOLE = -1

url = UrlState("quant")
subject = active_subject(ctx, url)
clf = subject.classifier
device = ctx.device.torch_device
shapes = subject.offline  # the shapes CNN on a synthetic shape (labels known)

# --- 1. the grid ----------------------------------------------------------------------------
st.subheader("Weights on an integer grid")
c_bits, c_scale, c_layer, c_channel = st.columns([3, 2, 2, 3])
bits = int(url.slider("bits", BITS, c_bits))
scale_mode = url.radio("scale", SCALE, c_scale, format_func=SCALES.get)
per_channel = scale_mode == "channel"
layer_names = list(qz.quantizable_layers(clf.model))
default_layer = next((name for name in ("layer3.0.conv1", "blocks.6.0.conv_dw") if name in layer_names),
                     layer_names[len(layer_names) // 2])
layer = c_layer.selectbox("Layer", layer_names, index=layer_names.index(default_layer), key=f"quant.layer.{clf.name}",
                          help="Every convolution and the final linear layer are quantised; pick one to look at.")
narrow = cq.narrowest(clf.name, layer, clf)
n_channels = int(qz.quantizable_layers(clf.model)[layer].weight.shape[0])
channel = c_channel.selectbox(
    "Show", [WHOLE, *range(n_channels)], index=narrow + 1, key=f"quant.channel.{clf.name}.{layer}",
    format_func=lambda c: "the whole layer" if c == WHOLE else f"output channel {c}" + (" (narrowest)" if c == narrow
                                                                                       else ""),
    help="The narrowest channel (smallest largest weight) is where one scale for the whole layer wastes most levels.")
url.sync()

hist = cq.histogram(clf.name, layer, bits, per_channel, None if channel == WHOLE else channel, clf)
left, right = st.columns([3, 2])
with left:
    cq.histogram_chart(hist)
    what = "the whole layer" if channel == WHOLE else f"output channel {channel}"
    if hist.scale is None:
        st.caption(f"Weights of {what} of `{layer}` ({hist.n_weights:,} values). Per-channel scales: every output "
                   "channel has its own grid, so there is no single one to draw; pick a channel to see its grid.")
    else:
        st.caption(f"Weights of {what} of `{layer}` ({hist.n_weights:,} values). Red lines: the {bits}-bit grid, "
                   f"step s = {hist.scale:.3g} ({'this channel' if per_channel else 'one step for the layer'}); "
                   "every weight is rounded to the nearest line. Scroll to zoom.")
with right:
    m1, m2 = st.columns(2)
    m1.metric("Grid levels used", f"{hist.levels_used} of {hist.levels_total}",
              help="Distinct integer codes among the weights shown. With one scale for the layer, a narrow "
                   "channel uses only a few of them.")
    m2.metric("Max |rounding error|", f"{hist.max_abs_error:.2g}",
              help="Never more than half a step (s/2): nothing is clipped, the largest weight sits on the end level.")
    m3, m4 = st.columns(2)
    m3.metric("Mean |rounding error|", f"{hist.mean_abs_error:.2g}")
    if hist.half_step is not None:
        m4.metric("Bound s/2", f"{hist.half_step:.2g}")
    st.markdown(f"**Whole layer at {bits} bits**: one scale vs one per channel")
    st.dataframe(cq.errors(clf.name, layer, bits, clf), hide_index=True, width="stretch", column_config={
        "max |error|": st.column_config.NumberColumn(format="%.2e"),
        "mean |error|": st.column_config.NumberColumn(format="%.2e"),
        "relative error": st.column_config.NumberColumn(format="%.2e",
                                                         help="‖w_q − w‖ / ‖w‖ over the whole layer"),
    })

# --- 2. how many bits -----------------------------------------------------------------------
st.subheader("How many bits does the network need?")
eval_key = "held-out" if shapes else subject.digest
evals = cq.eval_set(clf.name, eval_key, clf, None if shapes else subject.image, subject.title)
bar = Progress(st.empty())
with st.spinner("Fake-quantising the weights at each bit width…"):
    points = cq.curve(clf.name, device, eval_key, per_channel, clf, evals, bar)
bar.done()
by_bits = {p.bits: p for p in points}
fp32 = by_bits[32]
rows = [{"bits": p.bits, "series": "top-1 agreement with FP32", "value": p.agreement} for p in points if p.bits < 32]
if fp32.accuracy is not None:
    rows += [{"bits": p.bits, "series": "accuracy (true labels)", "value": p.accuracy} for p in points if p.bits < 32]
now = by_bits[bits]
c_chart, c_now = st.columns([3, 2])
with c_chart:
    cq.curve_chart(rows, bits)
    st.caption(f"Every convolution and linear weight rounded onto a {SCALES[scale_mode]} symmetric grid of the "
               f"given width and stored back as floats, on a copy of the model; activations stay FP32. Measured on "
               f"{evals.description}." + (f" FP32 accuracy: {fp32.accuracy:.1%}." if fp32.accuracy is not None else
                                          " These photos have no labels: agreement with FP32 is the measure. "
                                          "The INT8 measurement below uses a larger set (130 photos)."))
with c_now:
    k1, k2 = st.columns(2)
    k1.metric(f"Agreement at {bits} bits", f"{now.agreement:.1%}", f"{(now.agreement - 1) * 100:+.1f} points",
              help="Share of the evaluation images on which the top-1 class is the FP32 model's.")
    if now.accuracy is not None:
        k2.metric(f"Accuracy at {bits} bits", f"{now.accuracy:.1%}",
                  f"{(now.accuracy - fp32.accuracy) * 100:+.1f} points vs FP32")
    ans32 = cq.subject_answer(clf.name, device, subject.digest, 32, per_channel, clf, subject.image)
    ans = cq.subject_answer(clf.name, device, subject.digest, bits, per_channel, clf, subject.image)
    st.image(clf.resize(subject.image), width=220,
             caption=f"{subject.title}: FP32 says {clf.categories[ans32[0]]} ({ans32[1]:.0%}); "
                     f"with {bits}-bit weights {clf.categories[ans[0]]} ({ans[1]:.0%})")

# --- 3. measured -----------------------------------------------------------------------------
st.subheader("Measured on this machine: size, latency, agreement")
native_bf16, bf16_text = qz.cpu_bf16_support()
st.markdown(
    "INT8 here goes through **ONNX Runtime's quantizer** on the model exported with `torch.onnx`: static "
    "post-training quantization (activation ranges calibrated on sample images, QDQ format, per-channel INT8 "
    "weights, BatchNorm folded first) and dynamic quantization. PyTorch's own `torch.ao.quantization` is "
    "deprecated in the installed torch, and its replacement (the PT2E flow in `torchao`) does not run here. "
    "ONNX Runtime's INT8 kernels run on the **CPU**; on a GPU the fair low-precision comparison is **FP16/BF16**, "
    "timed below when the lab runs on a CUDA GPU. Speed-up is against **PyTorch FP32 eager on the same device**; "
    "ONNX Runtime FP32 is listed too, so you can see how much comes from the runtime and how much from INT8.")
st.caption(bf16_text + ("" if native_bf16 else " BF16 is therefore not timed on this CPU unless you ask for it "
                                               "below, and then it is labelled emulated."))

weights_kind = qz.TRAINED_HERE if shapes else qz.PRETRAINED
models = [(clf, weights_kind)]
why_big = ("The shapes CNN has ~25 k weights: the runtime's fixed costs hide any INT8 gain. " if shapes else
           f"{clf.title} and ResNet-18 are built differently (depthwise and 1×1 convolutions vs plain 3×3 ones), "
           "so INT8 kernels help them differently: timing both shows how much. ")
include_big = clf.name != "resnet18" and st.checkbox(
    "Also time ResNet-18's architecture (untrained weights) for comparison", value=True, key="quant.big",
    help=why_big + "Latency and size do not depend on the weight values, so ResNet-18's architecture with untrained "
                   "weights times exactly like the trained network; its answers mean nothing, so no agreement is "
                   "reported for it.")
if include_big:
    models.append((cq.resnet_sized(), qz.UNTRAINED))

sizes = []
for model_clf, kind in models:
    s = cq.weight_sizes(model_clf.name, model_clf)
    sizes.append({"model": model_clf.title, "weights": kind, "parameters": f"{s['parameters']:,}",
                  "FP32 (MB)": s["FP32"], "FP16 / BF16 (MB)": s["FP16 / BF16"], "INT8 (MB)": s["INT8"]})
st.markdown("**Before measuring**: the weights alone take 4, 2 or 1 byte each")
st.dataframe(sizes, hide_index=True, width="stretch", column_config={
    c: st.column_config.NumberColumn(format="%.3f") for c in ("FP32 (MB)", "FP16 / BF16 (MB)", "INT8 (MB)")})

from core.devices import cpu_threads  # noqa: E402  (cheap: no torch)

o1, o2, o3 = st.columns([2, 2, 3])
n_cpu = cpu_threads()
threads = int(o1.radio("CPU threads", list(range(1, n_cpu + 1)), index=n_cpu - 1, horizontal=True,
                       key="quant.threads", help="Used by PyTorch and ONNX Runtime alike."))
emulate = False if native_bf16 else o2.checkbox("Also time BF16 on this CPU (emulated)", key="quant.bf16",
                                                help="Without native BF16 this shows what emulation costs.")
gpu_batch = 1
if ctx.device.kind == "cuda":
    gpu_batch = int(o3.radio("GPU batch", [1, 8, 64], index=2, horizontal=True, key="quant.gpu_batch",
                             help="Images per timed call on the GPU. At batch 1 a large GPU waits on kernel "
                                  "launches and every precision takes about the same time."))
    o3.caption(f"GPU rows (FP32, FP16, BF16) are timed on **{ctx.device.name}**; INT8 rows on the CPU (batch 1).")
else:
    o3.caption(f"No CUDA GPU selected ({ctx.device.name}): only CPU rows. On a GPU the page adds FP32, FP16 "
               "(channels-last and NCHW) and BF16 rows with peak GPU memory.")
dynamic = o2.checkbox("Also dynamic INT8", value=True, key="quant.dynamic",
                      help="INT8 weights, activation ranges measured on every call. Made for Linear/LSTM layers: "
                           "on a CNN it is slow (ConvInteger has no fused kernel), and running it on every "
                           "evaluation image adds most of the measuring time.")
measure_device = device if ctx.device.kind == "cuda" else "cpu"
measure_key = "held-out" if shapes else "photos"  # the same images whatever the active photo
settings = (clf.name, measure_key, measure_device, threads, bool(emulate), include_big, gpu_batch, dynamic)
done = st.session_state.setdefault("_quant.results", {})
if st.button("Measure FP32 vs INT8" + (" vs FP16/BF16" if ctx.device.kind == "cuda" else ""), type="primary",
             key="quant.measure", disabled=settings in done,
             help="Exports to ONNX, quantizes (static and dynamic INT8), times every variant (warm-up + 10 "
                  "repeats) and runs each one on the evaluation images. About half a minute to a minute on a small "
                  "server; one timing run at a time on the server."):
    from core.export import ExportError
    from core.jobs import JobRefused, JobTimeout

    results = []
    try:
        for model_clf, kind in models:
            bar = Progress(st.empty())
            ev = cq.photo_set(clf.name, clf) if model_clf is clf else None
            results.append(cq.measure(model_clf.name, kind, measure_device, threads, bool(emulate), gpu_batch,
                                      measure_key if ev is not None else "-", dynamic, model_clf.model,
                                      cq.calibration(model_clf.name, model_clf), ev, bar))
            bar.done()
        done[settings] = results
    except (JobRefused, JobTimeout) as err:
        st.warning(str(err), icon="⏳")
    except ExportError as err:  # the exporter or the quantizer failed: say what, no traceback
        st.error(str(err))

results = done.get(settings)
if results is None:
    st.caption("Not measured yet with these settings in this session: press the button (a measurement someone "
               "else already made with the same settings comes back at once).")
else:
    titles = {m.name: m.title for m, _ in models}
    all_rows = []
    for cmp in results:
        table = cmp.to_rows()
        all_rows += table
        st.markdown(f"**{titles.get(cmp.model, cmp.model)}** · weights: "
                    f"{cmp.weights} · input {' × '.join(map(str, cmp.input_shape))} · {cmp.threads} CPU "
                    f"thread{'s' if cmp.threads > 1 else ''} · measured in {cmp.seconds:.0f} s")
        shown = [{"variant": r["variant"], "device": r["device"], "size (MB)": r["size_mb"],
                  "p50 (ms)": r["p50_ms"], "p95 (ms)": r["p95_ms"], "speed-up vs FP32": r["speedup_vs_fp32"],
                  **({"agreement": r["top1_agreement"]} if cmp.n_eval else {}),
                  **({"accuracy": r["accuracy"]} if r["accuracy"] is not None else {}),
                  **({"batch": r["batch"], "peak GPU (MB)": r["peak_gpu_mb"]} if ctx.device.kind == "cuda" else {}),
                  "note": r["note"]}
                 for r in table]
        st.dataframe(shown, hide_index=True, width="stretch", column_config={
            "size (MB)": st.column_config.NumberColumn(format="%.3f"),
            "p50 (ms)": st.column_config.NumberColumn(format="%.2f"),
            "p95 (ms)": st.column_config.NumberColumn(format="%.2f"),
            "speed-up vs FP32": st.column_config.NumberColumn(format="×%.2f"),
            "agreement": st.column_config.NumberColumn(format="percent",
                                                       help="Top-1 equal to PyTorch FP32 on the CPU"),
            "accuracy": st.column_config.NumberColumn(format="percent"),
        })
        agreement = (f"Agreement: top-1 equal to PyTorch FP32 on {cmp.eval_description}. " if cmp.eval_description
                     else "No agreement: the weights are untrained, so the answers mean nothing. ")
        st.caption("Latency: p50 and p95 of 10 timed calls after 2 warm-up calls, batch 1 (GPU rows: the batch "
                   "shown), on the device named in each row. Speed-up: against PyTorch FP32 eager on the same "
                   "device (CPU rows against the CPU's, GPU rows against the GPU's). " + agreement +
                   "Size: the PyTorch state dict or the .onnx file.")
        cq.comparison_chart(table)
        for note in cmp.notes:
            if note.startswith("No ONNX Runtime rows"):
                st.warning(note, icon="⚠️")
            elif not note.startswith(bf16_text):  # said once above
                st.caption(note)
        if cmp.has(qz.INT8_STATIC):
            fp, i8, ort = cmp.row(qz.EAGER_FP32), cmp.row(qz.INT8_STATIC), cmp.row(qz.ORT_FP32)
            k = st.columns(5)
            k[0].metric("Smaller than FP32", f"{fp.size_mb / i8.size_mb:.2f}×",
                        help=f"PyTorch state dict {fp.size_mb:.2f} MB vs the quantized .onnx file {i8.size_mb:.2f} MB.")
            k[1].metric("Faster than eager FP32", f"{i8.speedup:.2f}×",
                        help=f"PyTorch eager FP32 {fp.p50:.2f} ms → ONNX Runtime INT8 {i8.p50:.2f} ms on {i8.device}")
            k[2].metric("…of which the runtime", f"{ort.speedup:.2f}×",
                        help="ONNX Runtime FP32 against PyTorch eager FP32: the gain before any INT8.")
            k[3].metric("…and of which INT8", f"{ort.p50 / i8.p50:.2f}×",
                        help=f"ONNX Runtime INT8 against ONNX Runtime FP32 ({ort.p50:.2f} → {i8.p50:.2f} ms): "
                             "the gain of the integer kernels alone.")
            if i8.agreement is not None:
                k[4].metric("Same top-1 as FP32", f"{i8.agreement:.1%}", help=cmp.eval_description)
            else:
                k[4].metric("Same top-1 as FP32", "—", help="Untrained weights: its answers mean nothing.")
            if cmp.answers is not None:
                answers = cmp.answers
                model_clf = next(m for m, _ in models if m.name == cmp.model)
                cats = model_clf.categories
                flips = answers.flips(qz.INT8_STATIC)
                flipped = set(flips)
                margin = answers.margin
                st.markdown(f"**Which answers does INT8 change?** {len(flips)} of {cmp.n_eval} images, split by how "
                            "far FP32's top-1 probability was ahead of its runner-up (its *margin*):")
                b1, b2 = st.columns([2, 3])
                bands = answers.by_margin(qz.INT8_STATIC)
                b1.dataframe([{"FP32 margin": r["band"], "images": r["images"], "kept by INT8": r["kept"],
                               "agreement": r["agreement"]} for r in bands], hide_index=True, width="stretch",
                             column_config={"agreement": st.column_config.NumberColumn(format="percent")})
                if flips:
                    b1.caption(f"Every changed answer had an FP32 margin of at most **{margin[flips].max():.3f}**; "
                               f"{int((margin >= margin[flips].max()).sum())} images with a larger one all kept "
                               "theirs.")
                with b2:
                    cq.margin_chart([{"image": answers.names[i] if answers.names else str(i),
                                      "FP32": f"{cats[int(answers.top1[i])]} ({answers.p1[i]:.0%})",
                                      "INT8": cats[int(answers.predictions[qz.INT8_STATIC][i])],
                                      "margin": float(margin[i]),
                                      "INT8 static": "changed" if i in flipped else "kept"}
                                     for i in range(cmp.n_eval)], qz.MARGIN_EDGES)
                if flips:
                    st.dataframe([{"image": answers.names[i] if answers.names else str(i),
                                   "FP32 top-1": f"{cats[int(answers.top1[i])]} ({answers.p1[i]:.1%})",
                                   "FP32 runner-up": f"{cats[int(answers.runner_up[i])]} ({answers.p2[i]:.1%})",
                                   "margin": float(margin[i]),
                                   "INT8 says": cats[int(answers.predictions[qz.INT8_STATIC][i])]} for i in flips],
                                 hide_index=True, width="stretch",
                                 column_config={"margin": st.column_config.NumberColumn(format="%.3f")})
                grid_only = cq.weight_grid_agreement(model_clf.name, "photos", 8, True, model_clf,
                                                     cq.photo_set(model_clf.name, model_clf), answers.top1)
                st.caption("INT8 moves every logit a little (weights rounded to 255 levels per channel, activations "
                           "to 256 per tensor). That can only swap two classes whose probabilities were already "
                           "close: the images it changes are those where FP32 itself was torn between two answers. "
                           f"With only the weights on the 8-bit per-channel grid (activations FP32, the curve above) "
                           f"agreement on these images is already **{grid_only:.1%}**: the rounding of the weights "
                           "alone flips such near-ties, whatever the activations' calibration.")
                st.download_button("Download every image's answers (CSV)",
                                   lambda a=answers, c=cats: rows_csv(a.image_rows(c)),
                                   file_name=f"{cmp.model}_answers.csv", mime="text/csv",
                                   key=f"quant.answers.{cmp.model}")
            st.download_button(f"Download the INT8 model (.onnx, {len(cmp.int8_onnx) / 1e6:.2f} MB)",
                               lambda b=cmp.int8_onnx: b, file_name=f"{cmp.model}_int8_static.onnx",
                               mime="application/octet-stream", key=f"quant.onnx.{cmp.model}")
    measured = [c for c in results if c.has(qz.INT8_STATIC)]
    if len(measured) > 1:
        st.markdown("**Side by side**: the same INT8 recipe on both networks, on this CPU")
        st.dataframe([{"model": titles.get(c.model, c.model), "weights": c.weights,
                       "FP32 → INT8 (MB)":
                           f"{c.row(qz.EAGER_FP32).size_mb:.1f} → {c.row(qz.INT8_STATIC).size_mb:.1f}",
                       "size ×": c.row(qz.EAGER_FP32).size_mb / c.row(qz.INT8_STATIC).size_mb,
                       "eager FP32 p50 (ms)": c.row(qz.EAGER_FP32).p50, "ORT FP32 p50 (ms)": c.row(qz.ORT_FP32).p50,
                       "ORT INT8 p50 (ms)": c.row(qz.INT8_STATIC).p50,
                       "INT8 vs eager ×": c.row(qz.INT8_STATIC).speedup,
                       "INT8 vs ORT FP32 ×": c.row(qz.ORT_FP32).p50 / c.row(qz.INT8_STATIC).p50,
                       "agreement": c.row(qz.INT8_STATIC).agreement} for c in measured],
                     hide_index=True, width="stretch", column_config={
                         **{col: st.column_config.NumberColumn(format="%.2f") for col in
                            ("size ×", "eager FP32 p50 (ms)", "ORT FP32 p50 (ms)", "ORT INT8 p50 (ms)",
                             "INT8 vs eager ×", "INT8 vs ORT FP32 ×")},
                         "agreement": st.column_config.NumberColumn(format="percent")})
        st.caption("Batch 1, the threads chosen above. Measured one after the other, so a busy machine affects "
                   "both; press again for another sample.")
    st.download_button("Download the comparison (CSV)", lambda: rows_csv(all_rows), file_name="quantization.csv",
                       mime="text/csv", key="quant.csv")

page.close()
