"""Deployment (Q46): export the active classifier to TorchScript and ONNX, prove the exports
compute the same logits, time each runtime (single image and batches), see what a serving
pipeline that pre-processes differently does, and what this app itself does for production."""

import streamlit as st

from components.frame import lab_page
from components import deploy as cd
from components.classifier import active_subject
from components.ui import run_job
from components.urlstate import UrlState
from core import deploy as dp  # numpy only at import; torch inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("deployment")
ctx = page.ctx

BUDGETS = (5, 10, 20, 50, 100, 200, 500, 1000)
BUDGET = Param(default=100, kind=int, choices=BUDGETS, label="Latency budget per request (p95, ms)",
               help="A service-level target: which runtime and batch size answer within it? "
                    "Judged on the measured p95 once you press the button below.")

url = UrlState("dep")
subject = active_subject(ctx, url)
clf = subject.classifier
device = ctx.device.torch_device
budget = int(url.select_slider("budget", BUDGET))
url.sync()

# --- live: the model, its input, and pre-processing mistakes ------------------------------
with st.spinner("Running the classifier through every pre-processing pipeline…"):
    rows = cd.mistakes(clf.name, device, subject.digest, clf, subject.image)
correct = rows[0]
side = "×".join(map(str, correct.input_shape[-2:]))
stats = "mean " + " / ".join(f"{v:g}" for v in clf.mean) + ", std " + " / ".join(f"{v:g}" for v in clf.std)
st.caption(f"**{clf.title}** on {subject.title} · network input {side} px · normalised with its own {stats} · "
           f"answer with the correct pipeline: **{correct.top_name}** ({correct.top_prob:.0%})"
           + (f" · true class: **{subject.truth.name}**" if subject.truth is not None else ""))

st.subheader("Pre-processing parity: the silent production bug")
st.markdown("The exported file is only half of the model: the other half is the code that turns an image into "
            "its input tensor. Each row feeds the *same* weights the *same* photo, prepared the way a "
            "serving pipeline might get it wrong.")
st.dataframe([r.as_row() for r in rows], hide_index=True, width="stretch", column_config={
    "confidence": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
    "p(correct class)": st.column_config.ProgressColumn(
        min_value=0.0, max_value=1.0, format="percent",
        help=f"Probability given to '{correct.top_name}', the correct pipeline's answer."),
    "max input change": st.column_config.NumberColumn(
        format="%.3f", help="Largest |difference| from the correct input tensor (empty: a different size)."),
})
cols = st.columns(len(rows))
for col, r in zip(cols, rows):
    col.image(r.seen, caption=f"{r.title}: {r.top_name} {r.top_prob:.0%}", width="stretch")
st.caption("Thumbnails: the tensor each pipeline produced, shown through the *correct* normalisation, i.e. the "
           "picture the model effectively received. " + " ".join(f"**{r.title}**: {r.what}" for r in rows[1:]))
bgr = next(r for r in rows if r.key == "bgr")
if bgr.max_input_change == 0:
    st.info("This image is grey, so swapping R and B changes nothing: try a colourful one.", icon="ℹ️")
if clf.kind == "imagenet":
    agree = cd.mistake_agreement(clf.name, device, clf)
    st.markdown("**On the 13 sample photos** (scikit-image's and scikit-learn's), how often each pipeline keeps the "
                "correct pipeline's answer:")
    st.dataframe(agree, hide_index=True, width="stretch", column_config={
        "same answer as correct": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        "mean p(correct class)": st.column_config.ProgressColumn(
            min_value=0.0, max_value=1.0, format="percent",
            help="Mean probability the pipeline gives the class the correct pipeline chose.")})
    st.caption("No labels here: the correct pipeline's answer is the reference. A confident answer often survives a "
               "bug with less confidence; a hesitant one flips. The mistakes are silent either way: nothing raises "
               "an error.")
if clf.kind == "shapes":
    acc = cd.mistake_accuracy(clf.name, device, cd.N_HELD_OUT, clf)
    st.markdown(f"**On {cd.N_HELD_OUT} held-out synthetic images with known classes**, each pipeline's accuracy:")
    st.dataframe(acc, hide_index=True, width="stretch", column_config={
        "accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        "answer differs from correct pipeline": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                 format="percent")})
    st.caption("The shapes CNN was trained on shapes of random hues, so the order of the colour channels barely "
               "matters to it (BGR keeps almost every answer); scale and normalisation matter a lot. For an "
               "ImageNet classifier such as EfficientNet-Lite0, trained on natural photos, colour is part of what "
               "it learnt.")

# --- export and measure (behind a button) -------------------------------------------------
st.subheader("Export, check, time")
st.markdown(
    "**TorchScript** is made with `torch.jit.trace`: it still works, but torch 2.14 warns that it is *deprecated* "
    "(below). The way forward is **`torch.export`** (a clean ATen graph, the basis of AOTInductor and ExecuTorch) "
    "or **ONNX**, which this page exports with torch.onnx's `torch.export`-based exporter (dynamic batch) and runs "
    "in **ONNX Runtime**. Both files are loaded back and run: what is checked is what would ship.")
if ctx.device.kind == "cpu":
    st.caption(f"No GPU selected: every runtime runs on the CPU ({ctx.device.name}).")
else:
    st.caption(f"Eager and TorchScript run on **{ctx.device.name}**; ONNX Runtime on the GPU only where its CUDA "
               "provider is installed, else on the CPU (the table's last column says which).")
x = clf.tensor(subject.image)  # (1, 3, S, S): exactly what the correct pipeline gives
key = (clf.name, device, subject.digest)
report = cd.recall(key)
if st.button("Export and measure", type="primary", key="dep.measure", disabled=report is not None,
             help="Traces and exports the model, compares logits, then times each runtime at batch 1, 8 and 16 "
                  "(warm-up, then repeats; p50/p95): EfficientNet-Lite0 takes about half a minute on a small "
                  "server. One timing run at a time on the server."):
    report = run_job(lambda bar: cd.export_and_measure(clf, x, device, ctx.device.name, bar))
    if report is not None:
        cd.remember(key, report)

if report is None:
    st.caption("Not measured yet for this model and image in this session: press the button.")
else:
    arts = report.artifacts
    table = report.rows()
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "max |Δ logit| vs eager": st.column_config.NumberColumn(format="%.2e",
                                                               help="Largest absolute difference of any logit"),
        "file MB": st.column_config.NumberColumn(format="%.2f"),
        "p50 ms": st.column_config.NumberColumn(format="%.2f"),
        "p95 ms": st.column_config.NumberColumn(format="%.2f"),
    })
    st.caption(f"One image, batch 1, timed on {report.device_name} after warm-up "
               f"({', '.join(f'{k}: {t.n} runs' for k, t in report.latency.items())}). Export took "
               f"{arts.seconds['torchscript']:.1f} s (TorchScript) and {arts.seconds['onnx']:.1f} s (ONNX).")
    kind, sentence = dp.verdict(report)
    {"success": st.success, "info": st.info, "warning": st.warning}[kind](
        sentence, icon={"success": "✅", "info": "ℹ️", "warning": "⚠️"}[kind])
    for err in arts.errors.values():
        st.error(err)
    if arts.torch_warnings:
        with st.expander(f"What torch said while tracing and saving TorchScript ({len(arts.torch_warnings)} warnings)"):
            for w in arts.torch_warnings:
                st.code(w, language=None)

    st.markdown("**Single image vs batches** (the same image repeated): throughput in images per second")
    st.vega_lite_chart({
        "data": {"values": report.throughput},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "batch", "type": "ordinal", "title": "batch size"},
            "xOffset": {"field": "runtime"},
            "y": {"field": "images/s", "type": "quantitative", "title": "images / s (from p50)"},
            "color": {"field": "runtime", "type": "nominal", "title": None},
        },
        "height": 220,
    }, width="stretch")
    fits = [r for r in report.throughput if r["p95 ms"] <= budget]
    if fits:
        best = max(fits, key=lambda r: r["images/s"])
        st.markdown(f"Within a **{budget} ms** p95 budget, the best throughput here is **{best['runtime']} at "
                    f"batch {best['batch']}**: {best['images/s']:.0f} images/s (p95 {best['p95 ms']:.1f} ms per "
                    "batch). A request that waits for a batch to fill adds that wait to its latency.")
    else:
        fastest = min(report.throughput, key=lambda r: r["p95 ms"])
        st.markdown(f"Nothing measured fits a **{budget} ms** p95 budget: the fastest is {fastest['runtime']} "
                    f"at batch {fastest['batch']} with p95 {fastest['p95 ms']:.1f} ms. A smaller model, INT8 "
                    "or a GPU would be needed.")
    st.dataframe(report.throughput, hide_index=True, width="stretch")

    d1, d2, d3 = st.columns(3)
    if arts.onnx_bytes:
        d1.download_button(f"Download the ONNX model ({arts.onnx_mb:.1f} MB)", lambda: arts.onnx_bytes,
                           file_name=f"{clf.name}.onnx", mime="application/octet-stream", key="dep.onnx")
    d2.download_button(f"Download the TorchScript model ({arts.torchscript_mb:.1f} MB)",
                       arts.torchscript_file, file_name=f"{clf.name}_traced.pt",
                       mime="application/octet-stream", key="dep.ts")
    d3.download_button("Download the results (CSV)",
                       lambda: rows_csv(report.csv_rows()),
                       file_name=f"deployment_{clf.name}.csv", mime="text/csv", key="dep.csv")

# --- the production checklist --------------------------------------------------------------
st.subheader("Production checklist, and what this app itself does")
st.markdown("\n".join(["| Concern | Why it matters | What this app does |", "|---|---|---|"]
                      + [f"| **{c.concern}** | {c.why} | {c.here} |" for c in dp.CHECKLIST]))

page.close()
