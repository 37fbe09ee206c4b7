"""Backpropagation (Q2): a small CNN trained step by step, its gradients computed by a
hand-written backward pass and checked against torch.autograd on every step."""

import streamlit as st

from components.frame import lab_page
from components import backprop as cb
from components.ui import run_job, stopped_job
from components.urlstate import UrlState
from core import backprop as bp  # numpy only at import; torch inside functions
from core.classifier import shape_sample
from core.params import Param
from core.shapes import SHAPE_CLASSES
from core.tables import rows_csv

page = lab_page("backpropagation")
ctx = page.ctx

LR = Param(default=bp.DEFAULT_LR, choices=bp.LR_CHOICES, label="Learning rate",
           help="Adam works well around 0.003–0.01; plain SGD needs roughly 0.1–0.3.")
OPT = Param(default=bp.DEFAULT_OPTIMIZER, kind=str, choices=bp.OPTIMIZERS, label="Optimiser",
            help="SGD: every weight moves by −lr × its gradient. Adam: by −lr × m̂/(√v̂+ε), a step "
                 "size of about lr for every weight, whatever the size of its gradient.")
ACT = Param(default="relu", kind=str, choices=bp.ACTIVATIONS, label="Activation",
            help="Sigmoid's derivative is at most 1/4, so gradients shrink layer by layer toward the input.")
N = Param(default=50, kind=int, lo=1, hi=200, label="Steps per run")
SEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Initial weights and the order of the batches.")
SHAPE = Param(default=3, kind=int, lo=0, hi=9999, step=1, label="Synthetic image number")

url = UrlState("bp")
c0, c1, c2, c3, c4 = st.columns([2, 3, 2, 2, 1])
optimizer = url.radio("opt", OPT, c0, horizontal=True)
lr = float(url.select_slider("lr", LR, c1))
activation = url.radio("act", ACT, c2, horizontal=True)
n_steps = int(url.slider("n", N, c3))
seed = int(url.number_input("seed", SEED, c4))
url.sync()

t = cb.trainer(seed, activation, optimizer)
st.markdown(f"**The network** ({bp.count_params(t.params):,} parameters): 32×32 RGB → 6 × [3×3 conv, 8 channels → "
            f"{activation}] with a 2×2 max pool after conv2 and conv4 → global max pool → linear → 6 shape "
            f"classes, cross-entropy loss, no BatchNorm. Batches of {bp.BATCH} crops from {len(t.y)} synthetic "
            f"shapes (seed {seed}); {optimizer} updates, both written by hand.")
if optimizer == "SGD" and lr < 0.05:
    st.caption(f"With plain SGD, lr = {lr:g} moves the weights very little; try 0.1–0.3 (even then this un-normalised net stays near chance loss — compare Adam).")
elif optimizer == "Adam" and lr > 0.02:
    st.caption(f"Adam with lr = {lr:g} takes steps of about {lr:g} per weight — large for this net; the loss may jump.")

b1, b2, b3, b4 = st.columns([1, 2, 1, 3])
if b1.button("Step", type="primary", key="bp.step"):
    t.step(lr)
if b2.button(f"Run {n_steps} steps", key="bp.run", help="About 20–80 ms per step on one core."):
    run_job(lambda bar: cb.run_steps(t, n_steps, lr, _progress=bar), stop="bp.train")
if b3.button("Reset", key="bp.reset"):
    cb.reset()
    t = cb.trainer(seed, activation, optimizer)
stopped_job("bp.train")
b4.caption(f"Step = one {optimizer} step with the autograd check. A run checks its last step. With the defaults "
           "(Adam, lr 0.005, ReLU) the loss typically falls from about 1.9 to 1.1–1.5 in 150 steps (a few "
           "seconds). Changing the seed, activation or optimiser starts a fresh network.")

m = st.columns(4)
m[0].metric("Steps taken", str(t.step_no))
last_row = t.history[-1] if t.history else None
m[1].metric("Batch loss (last step)", f"{last_row['loss']:.3f}" if last_row else "—",
            f"{last_row['loss'] - t.history[0]['loss']:+.3f} since step 1" if last_row and t.step_no > 1 else None,
            delta_color="inverse")
diff = t.last["diff"] if t.last else None
m[2].metric("max |manual − autograd|", f"{diff:.2e}" if diff is not None else "—",
            help="Largest difference, over every parameter and every input pixel, between this page's "
                 "hand-written backward pass and torch.autograd on the same batch (float32 rounding ≈ 1e-7).")
m[3].metric("Chance loss (ln 6)", "1.792")

left, right = st.columns(2)
with left:
    st.subheader("Loss")
    if t.history:
        cb.loss_chart(t.history)
        st.download_button("Download history (CSV)", lambda: rows_csv(t.history), file_name=f"backprop_{activation}_s{seed}.csv",
                           mime="text/csv", key="bp.csv")
    else:
        st.caption("Press **Step** or **Run** to train; the loss of every step appears here.")
with right:
    st.subheader("Gradient norm per layer")
    if t.last:
        cb.norm_bars([{"layer": k, "grad_norm": v} for k, v in t.last["norms"].items()])
        st.caption(f"Last step, {activation}. conv1 sits next to the input, fc next to the loss.")
    else:
        st.caption("At initialisation, same weights, same batch — ReLU vs sigmoid:")
        cb.norm_bars(cb.init_norms(seed), colour="activation")

st.subheader("Gradient with respect to the input image")
src = st.radio("Image", ["A synthetic shape", "Your active photo"], horizontal=True, key="bp.src")
if src == "A synthetic shape":
    shape_no = int(url.number_input("shape", SHAPE))
    sample = shape_sample(shape_no)
    rgb, label, title, digest = sample.image, sample.label, f"synthetic {sample.name} #{shape_no}", f"shape-{shape_no}"
else:
    rgb, label, title, digest = ctx.image.work, None, ctx.image.title, ctx.image.digest
g = cb.input_gradient(t, digest, rgb, label)

i1, i2, i3 = st.columns([1, 1, 2])
i1.image(g["input"], caption=f"Network input: {title} at 32×32",
         width="stretch")
i2.image(bp.heat_rgb(g["saliency"]), caption="|∂L/∂x| (max over RGB)", width="stretch")
i3.markdown(f"Loss taken against **{SHAPE_CLASSES[g['class']]}** "
            + ("(the true class)" if label is not None else "(the class the network currently predicts)")
            + f"; the network gives it {g['probs'][g['class']]:.1%}. Bright pixels are those whose change would "
            f"move the loss most. Manual vs autograd on this image: max difference {g['max_abs_diff']:.1e}.")

st.subheader("One first-layer filter: before and after the last step")
if t.last:
    f_idx = int(st.slider("Filter of conv1", 0, bp.CHANNELS[1] - 1, 0, key="bp.filter"))
    rows = bp.filter_rows(t.last, t.params, "conv1", f_idx)
    cb.filter_heatmap(rows)
    upd = [r["value"] for r in rows if r["what"].startswith("update")]
    sgd = [r["value"] for r in rows if r["what"].startswith("−lr·grad")] or upd
    delta = [a["value"] - b["value"] for a, b in zip([r for r in rows if r["what"] == "after"],
                                                     [r for r in rows if r["what"] == "before"])]
    gap = max(abs(a - b) for a, b in zip(delta, upd))
    if t.last["optimizer"] == "SGD":
        st.caption(f"Plain SGD: after − before = −lr·∂L/∂W exactly (largest gap here {gap:.1e}, float32 rounding). "
                   f"Largest change in this filter: {max(abs(u) for u in upd):.2e} at lr = {t.last['lr']:g}.")
    else:
        st.caption(f"Adam: after − before = −lr·m̂/(√v̂+ε) (largest gap here {gap:.1e}). m̂ is a running mean of the "
                   f"gradient and √v̂ a running root-mean-square, so each weight gets its own step size: a weight "
                   f"with a steady gradient moves by about lr whatever the gradient's scale, a noisy one by less. "
                   f"That is why this panel differs from −lr·grad below it: largest Adam step here "
                   f"{max(abs(u) for u in upd):.2e}, largest −lr·grad {max(abs(u) for u in sgd):.2e} at lr = {t.last['lr']:g}.")
else:
    st.caption("Take a step to see how one 3×3×3 filter of conv1 moves.")

page.close()
