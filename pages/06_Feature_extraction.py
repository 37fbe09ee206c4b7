"""Feature extraction (Q1): the feature maps of every layer of a CNN on your image, their
receptive fields, the first layer's filters, and one channel across many images."""

import streamlit as st

from components.frame import lab_page
from components import features as cf
from components.classifier import active_subject
from components.urlstate import UrlState
from core import features as fx
from core.imageio import encode_png, fit_long_side
from core.params import Param
from core.safetext import literal

page = lab_page("feature-extraction")
ctx = page.ctx

url = UrlState("fx")
subject = active_subject(ctx, url)
clf = subject.classifier
device = ctx.device.torch_device
names = list(clf.layers)

LAYER = Param(default=min(2, len(names) - 1), kind=int, lo=0, hi=len(names) - 1, label="Layer",
              help="From the first convolution (input side) to the last block.")
MAPS = Param(default=16, kind=int, lo=4, hi=32, step=4, label="Feature maps shown",
             help="The channels with the highest mean activation on this image, strongest first.")
SHARED = Param(default=True, kind=bool, label="One colour scale for all maps",
               help="On: brightness compares across maps. Off: every map is stretched to its own range.")
RANK_NAMES = {"mean": "mean activation", "peak": "peak activation"}
RANK = Param(default="mean", kind=str, choices=tuple(RANK_NAMES), label="Rank channels by",
             help="Mean: channels that fire over much of the image. Peak: channels with the single "
                  "strongest response somewhere (what a global max pool, as in the shapes CNN, keeps).")

left, mid, right = st.columns(3)
# a layer is an index into the classifier's layers (LAYER.lo..LAYER.hi), shown by its name
depth = left.select_slider(LAYER.label, options=list(range(LAYER.lo, LAYER.hi + 1)), format_func=names.__getitem__,
                           key=url.key("layer", LAYER), help=LAYER.help)
count = url.slider("maps", MAPS, mid)
rank = url.radio("rank", RANK, right, format_func=RANK_NAMES.get, horizontal=True)
shared = url.toggle("shared", SHARED, right)
url.sync()
layer = names[depth]

with st.spinner(f"Running {clf.title} once and recording every layer…"):
    acts = cf.activations(clf.name, device, subject.digest, subject.image)
    rfs = cf.fields(clf.name, device)
lm, rf = acts.layers[layer], rfs[layer]
in_h, in_w = acts.input_size
guess = ", ".join(f"{p.name} {p.probability:.0%}" for p in clf.top(acts.probs, 3))
st.caption(f"{literal(clf.title)} on {literal(subject.title)} (network input {in_w}×{in_h} px) · "
           f"its top guesses: {guess}")

# --- the most active maps of the chosen layer --------------------------------------------
st.subheader(f"Most active feature maps · {layer}")
shown = lm.top(min(count, lm.channels), by=rank)
labels = [f"#{c} m={lm.means[c]:.2f}" if rank == "mean" else f"#{c} p={lm.maxima[c]:.2f}" for c in shown]
grid = fx.grid_image(fx.heat_tiles(lm.maps, shown, shared=shared, cell=96), labels)
st.caption(f"**{layer}** outputs **{lm.channels} channels** of **{lm.size[0]}×{lm.size[1]}** units. "
           f"Each unit sees a **{rf.size[0]}×{rf.size[1]} px** window of the input (neighbours are "
           f"{rf.stride[0]} px apart). Showing the {len(shown)} channels with the highest {RANK_NAMES[rank]} "
           "(viridis: dark = low, yellow = high), labelled with the channel number and its "
           + ("mean (m)." if rank == "mean" else "peak (p)."))
st.image(grid)
st.download_button("Download this grid (PNG)", lambda: encode_png(grid),
                   file_name=f"{clf.name}_{layer}_feature_maps.png", mime="image/png")
if subject.truth is not None:
    box = subject.truth.box
    inside = fx.peaks_inside(lm, rf, shown, box)
    share = (box[2] - box[0] + 1) * (box[3] - box[1] + 1) / (in_h * in_w)
    st.caption(f"Against the true **{subject.truth.name}** box: **{inside} of {len(shown)}** of these maps have "
               f"their strongest unit inside it (the box is {share:.0%} of the image, so a map peaking at a "
               "random place would land there that often).")

# --- every layer: size, channels, receptive field ----------------------------------------
st.subheader("Every layer: size, channels and receptive field")
st.dataframe(fx.layer_table(acts, rfs), hide_index=True, width="stretch")
st.caption("Receptive fields are computed by following one forward pass through the network's own layers: "
           "every convolution or pooling layer adds (kernel − 1) × dilation × (stride so far) pixels, "
           "element-wise layers keep it, a residual sum takes the union of its branches. Padding lets the "
           "field reach past the image border, so deep fields can be larger than the image itself; uneven "
           "padding (EfficientNet pads like TensorFlow: before a stride-2 convolution the extra pixel goes "
           "right and below) shifts where the fields start, and the walk follows that too.")

# --- one channel across images ----------------------------------------------------------
st.subheader(f"One channel of {layer} across images")
order = [int(c) for c in lm.top(lm.channels, by=rank)]
channel = st.selectbox("Channel", order, key=f"fx.channel.{clf.name}.{layer}.{rank}",
                       format_func=lambda c: f"#{c} (on this image: mean {lm.means[c]:.2f}, peak {lm.maxima[c]:.2f})",
                       help="Listed from the most to the least active channel on the active image (by the ranking above).")
items = cf.gallery(subject.offline)
with st.spinner("Running the gallery images (first time only)…"):
    others = [cf.activations(clf.name, device, g.digest, g.rgb).layers[layer] for g in items]
values = [lm.maps[channel]] + [o.maps[channel] for o in others]
lo = float(min(v.min() for v in values))
hi = float(max(v.max() for v in values))
a, b = st.columns([2, 3])
with a:
    view = fit_long_side(subject.image, 480)
    scale = (view.shape[0] / in_h, view.shape[1] / in_w)
    pic = fx.overlay(view, lm.maps[channel], rf, acts.input_size, lo=lo, hi=hi)
    if subject.truth is not None:
        pic = fx.draw_box(pic, subject.truth.box, colour=(0, 220, 0), scale=scale)
    i, k = lm.peak(channel)
    pic = fx.draw_box(pic, rf.box(i, k, clip=acts.input_size), scale=scale)
    st.image(pic, width="stretch",
             caption=f"{subject.title}: channel #{channel} (mean {lm.means[channel]:.2f}). White box: the "
                     f"receptive field of its strongest unit (row {i}, column {k})"
                     + ("; green: the true shape." if subject.truth is not None else "."))
with b:
    pics = [fx.overlay(g.thumb, o.maps[channel], rf, acts.input_size, lo=lo, hi=hi) for g, o in zip(items, others)]
    st.image(pics, caption=[f"{g.title} · mean {o.means[channel]:.2f} · peak {o.maxima[channel]:.2f}"
                           for g, o in zip(items, others)], width=150)
    st.caption("The same channel on other images, on one colour scale (jet: blue = low, red = high): "
               "a channel is one detector applied everywhere, so it lights up wherever its pattern occurs.")

# --- the first layer's filters ------------------------------------------------------------
st.subheader(f"First-layer filters ({clf.first_conv})")
weights = cf.filters(clf.name, device)
st.image(cf.filter_grid(clf.name, device))
st.caption(f"The {len(weights)} filters of {clf.first_conv}, each {weights.shape[1]}×{weights.shape[2]} px over "
           "R, G and B, drawn as colour images (each stretched to its own range: grey = zero-ish, a colour = "
           "the colour it responds to). Its feature maps are these filters slid over the image.")

page.close()
