"""Frameworks (Q13, Q30): one small CNN as PyTorch eager, torch.compile, TorchScript and ONNX
Runtime, outputs and latency compared live; PyTorch vs TensorFlow concept by concept; the
same network written in Keras, checked layer by layer against the PyTorch model."""

import inspect

import streamlit as st

from components.frame import lab_page
from components import frameworks as cfw
from components import models as cm
from components.classifier import classifier
from components.ui import run_job
from components.urlstate import UrlState
from core import frameworks as fw  # numpy only at import; torch inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("frameworks")
ctx = page.ctx

BATCHES = (1, 2, 4, 8, 16, 32)
BATCH = Param(default=16, kind=int, choices=BATCHES, label="Batch size (synthetic shape images)",
              help="How many 160-px shape images go through each runtime in one call.")
SEED = Param(default=3, kind=int, lo=0, hi=9999, step=1, label="First synthetic image",
             help="The batch is this image and the ones after it.")
FREEZE = Param(default=True, kind=bool, label="Inductor freezing",
               help="torch._inductor.config.freezing: weights become graph constants, so conv+BN "
                    "folding and weight pre-packing happen at compile time (inference only).")

url = UrlState("fw")
device = ctx.device.torch_device
c1, c2, c3 = st.columns([3, 2, 2])
n = int(url.select_slider("batch", BATCH, c1))
seed = int(url.number_input("shape", SEED, c2))
freezing = url.toggle("freeze", FREEZE, c3)
url.sync()

cm.require_shipped(cfw.MODEL)
clf = classifier(cfw.MODEL, device)
images, labels = cfw.samples(seed, n)
probs = cfw.eager_probs(device, seed, n, clf)
pred = probs.argmax(1)
n_params = sum(p.numel() for p in clf.model.parameters())
st.caption(f"**{clf.title}**: {n_params:,} parameters, the same weights in every runtime · eager PyTorch gets "
           f"**{int((pred == labels).sum())}/{n}** of these images right.")
shown = min(n, 8)
cols = st.columns(8)
for i in range(shown):
    ok = "✅" if pred[i] == labels[i] else "❌"
    cols[i].image(images[i], caption=f"{ok} {clf.categories[pred[i]]} {probs[i, pred[i]]:.0%}", width="stretch")
if n > shown:
    st.caption(f"First {shown} of {n} images shown.")

# --- four runtimes, behind a button -------------------------------------------------------
st.subheader("One model, four runtimes")
st.markdown(
    "**Eager** runs each layer as Python reaches it. **torch.compile** (TorchDynamo + inductor) captures the graph "
    "and generates fused C++/OpenMP kernels on a CPU (Triton on a GPU), paying a compile time first. "
    "**TorchScript** (`torch.jit.trace`, deprecated in torch 2.14) runs a recorded graph without Python. "
    "**ONNX Runtime** runs the ONNX export (torch.onnx's `torch.export`-based exporter).")
if ctx.device.kind == "cpu":
    st.caption(f"No GPU selected: every runtime runs on the CPU ({ctx.device.name}).")
else:
    st.caption(f"PyTorch runtimes run on **{ctx.device.name}**; ONNX Runtime on the CPU unless its CUDA provider "
               "is installed (see the device column). On the GPU, PyTorch's float32 convolutions use TF32 tensor "
               "cores by default, so a CPU runtime in full float32 differs by about 1e-3 there.")
x = clf.tensor(images)
settings = (device, seed, n, bool(freezing))
done = st.session_state.setdefault("_fw.results", {})
if st.button("Compile, export and time the four runtimes", type="primary", key="fw.measure",
             disabled=settings in done,
             help="torch.compile's first call takes seconds (once per server and settings); export ~4 s; then "
                  "each runtime is timed after warm-up (p50/p95). One timing run at a time on the server."):
    result = run_job(lambda bar: cfw.measure(clf, x, device, bool(freezing), bar))
    if result is not None:
        done[settings] = result

result = done.get(settings)
if result is None:
    st.caption("Not measured yet with these settings in this session: press the button.")
else:
    rows, comp = result["rows"], result["compile"]
    if comp.error:
        st.error(comp.error, icon="🧰")
    st.dataframe(rows, hide_index=True, width="stretch", column_config={
        "max |Δ logit| vs eager": st.column_config.NumberColumn(format="%.2e"),
        "p50 ms": st.column_config.NumberColumn(format="%.2f"),
        "p95 ms": st.column_config.NumberColumn(format="%.2f"),
        "build s": st.column_config.NumberColumn(
            format="%.2f", help="torch.compile: its first call (graph capture, code generation, C++ build), made "
                                "once per server for these settings. TorchScript: trace + save + load. ONNX: export "
                                "+ session."),
    })
    timed = [r for r in rows if r["p50 ms"] is not None]
    st.vega_lite_chart({
        "data": {"values": [{"runtime": r["runtime"], "ms": r["p50 ms"], "p95": r["p95 ms"]} for r in timed]},
        "layer": [
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {"y": {"field": "runtime", "type": "nominal", "sort": None, "title": None},
                          "x": {"field": "ms", "type": "quantitative", "title": f"ms per batch of {n} (p50; tick: p95)"}}},
            {"mark": {"type": "tick", "color": "black", "thickness": 2},
             "encoding": {"y": {"field": "runtime", "type": "nominal", "sort": None},
                          "x": {"field": "p95", "type": "quantitative"}}},
        ],
        "height": {"step": 28},
    }, width="stretch")
    if comp.fn is not None:
        st.caption(f"torch.compile{' with freezing' if comp.freezing else ''}: first call {comp.seconds:.1f} s on "
                   f"this server (inductor's graph cache makes a repeat compile of the same graph faster). A "
                   f"compiled model pays off only after enough calls to win that time back.")
    st.download_button("Download the results (CSV)", lambda: rows_csv(rows), file_name="frameworks_runtimes.csv",
                       mime="text/csv", key="fw.csv")

# --- PyTorch vs TensorFlow ----------------------------------------------------------------
st.subheader("PyTorch vs TensorFlow, concept by concept")
st.markdown("\n".join(["| | PyTorch | TensorFlow / Keras |", "|---|---|---|"]
                      + [f"| **{what}** | {pt} | {tf} |" for what, pt, tf in fw.CONCEPTS]))

st.subheader("The same network in both")
left, right = st.columns(2)
with left:
    from core import shapes_net

    st.markdown("**PyTorch** (`core/shapes_net.py`, the network `models/shapes_cnn.py` trained above)")
    st.code(inspect.getsource(shapes_net._block) + "\n\n" + inspect.getsource(shapes_net.ShapesNet), language="python")
with right:
    st.markdown("**Keras 3** (written for this page; TensorFlow is not installed here, so it is checked, not run)")
    st.code(fw.KERAS_CODE, language="python")

counts = fw.param_counts(fw.layers_in_code())
k = st.columns(4)
k[0].metric("PyTorch parameters", f"{n_params:,}", help="sum(p.numel() for p in model.parameters())")
k[1].metric("Keras trainable (from the listing)", f"{counts['trainable']:,}",
            help="Counted from the listing's layers alone: kernels, biases, BN gamma/beta, dense weights.")
k[2].metric("Keras non-trainable", f"{counts['non_trainable']:,}",
            help="BatchNormalization's moving mean and variance: PyTorch keeps them as buffers, not parameters.")
check = cfw.keras_check(device, seed, clf)
k[3].metric("Keras listing vs PyTorch, max |Δ logit|", f"{check['max_abs_diff']:.1e}",
            help=f"The listing's layers run in NumPy (NHWC) on {check['n']} images with the PyTorch weights "
                 "converted to Keras layouts (kernels HWIO, dense (in, out)); top-1 "
                 + ("identical." if check["same_top1"] else "differs!"))
with st.expander("Layer by layer: each PyTorch module and its Keras line"):
    st.dataframe(fw.layer_table(clf.model), hide_index=True, width="stretch")
    st.caption("BatchNorm momentum: PyTorch's 0.1 weights the *new* batch statistic, Keras's 0.9 the *old* moving "
               "value, so they are the same rule; the epsilon must be set (Keras's default is 1e-3). "
               "Conv kernels are (out, in, kh, kw) in PyTorch and (kh, kw, in, out) in Keras.")

page.close()
