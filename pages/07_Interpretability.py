"""Interpretability (Q45): Grad-CAM, Guided Grad-CAM, Integrated Gradients, Saliency and
Occlusion (captum) side by side for one class, and two checks of whether to trust them."""

import streamlit as st

from components.frame import lab_page
from components import saliency as cs
from components.classifier import active_subject
from components.urlstate import UrlState
from core import saliency as sal
from core.imageio import encode_png
from core.jobs import JobRefused, JobTimeout
from core.params import Param
from core.safetext import literal

page = lab_page("interpretability")
ctx = page.ctx

url = UrlState("xai")
subject = active_subject(ctx, url)
clf = subject.classifier
device = ctx.device.torch_device
layers = list(clf.layers)

OPACITY = Param(default=0.6, lo=0.0, hi=1.0, step=0.05, label="Heat-map opacity",
                help="Only re-colours the cached maps; nothing is recomputed.")
LAYER = Param(default=clf.cam_layer, kind=str, choices=tuple(layers), label="Grad-CAM layer",
              help="Deeper layers: coarser maps, more about the class. Earlier layers: finer, "
                   "more about edges and textures.")
FILL = Param(default="blur", kind=str, choices=sal.FILLS, label="Deleted pixels become")
STEP = Param(default=5, kind=int, choices=(5, 10), label="Delete in steps of")
ABOUT = {
    "Grad-CAM": "class-weighted sum of the chosen layer's maps (1 backward pass)",
    "Guided Grad-CAM": "Grad-CAM × guided backprop: pixel detail inside Grad-CAM's region",
    "Integrated Gradients": f"gradients averaged from a black image to this one ({sal.IG_STEPS} steps)",
    "Saliency": "|∂ class score / ∂ pixel|: one backward pass",
    "Occlusion": "drop in the class probability when a patch of the mean colour covers each of 8 × 8 places",
}

# The first slider on the page is the cheap one: opacity only re-blends cached maps.
left, mid, right = st.columns(3)
opacity = url.slider("opacity", OPACITY, left)
probs = cs.probabilities(clf.name, device, subject.digest, clf, subject.image)
top5 = clf.top(probs, 5)
target = mid.selectbox("Explain the class", [p.index for p in top5], key=f"xai.target.{subject.digest}",
                       format_func=lambda i: f"{clf.categories[i]} ({probs[i]:.1%})",
                       help="The network's five most probable classes for this image; the first is its answer.")
layer = url.selectbox("layer", LAYER, right)
url.sync()
name = clf.categories[target]
st.caption(f"{literal(clf.title)} on {literal(subject.title)} · explaining **{literal(name)}** "
           f"(p = {probs[target]:.1%}, rank {[p.index for p in top5].index(target) + 1} of 5) · "
           f"network input {'224×224 (whole photo, squashed)' if clf.input_size else 'the image at its own size'}")

# --- the maps (cached per image, class, layer and method) -----------------------------------
bar = cs.Progress(st.empty())
maps, seconds = {}, {}
for i, method in enumerate(sal.METHODS):
    def show(frac, text, i=i):
        bar((i + frac) / len(sal.METHODS), f"Computing {text} ({i + 1} of {len(sal.METHODS)})")
    key_layer = layer if method in sal.LAYER_METHODS else ""
    maps[method], seconds[method] = cs.heat_map(clf.name, device, subject.digest, target, method, key_layer,
                                                clf, subject.image, show)
bar.done()

base = cs.display_image(clf.name, subject.digest, clf, subject.image)
truth = subject.truth
scale = base.shape[1] / subject.image.shape[1]
box_share = None if truth is None else float(sal.box_mask(subject.image.shape[:2], truth.box,
                                                          subject.image.shape[:2]).mean())


def with_box(rgb):
    """The true box of the offline shape, drawn in green."""
    if truth is None:
        return rgb
    import cv2

    out = rgb.copy()
    x1, y1, x2, y2 = (int(round(v * scale)) for v in truth.box)
    cv2.rectangle(out, (x1, y1), (x2, y2), (0, 200, 0), max(1, base.shape[0] // 160))
    return out


def against_box(heat) -> str:
    """Where the map lies against the true box: its peak (after a 3-px blur, so one stray
    pixel of a per-pixel map does not decide) and the share of its total inside the box."""
    size = subject.image.shape[:2]
    inside = sal.peak_in_box(heat, truth.box, size)
    mass = sal.mass_in_box(heat, truth.box, size)
    return (" · peak " + ("inside ✅" if inside else "outside ❌") + " the true box"
            + ("" if mass != mass else f" · {mass:.0%} of the map in it"))


st.subheader(f"Where the network looked for “{literal(name)}”")
tiles = [("Image", None)] + [(m, maps[m]) for m in sal.METHODS]
cols = st.columns(3)
for n, (title, heat) in enumerate(tiles):
    with cols[n % 3]:
        if heat is None:
            st.image(with_box(base), width="stretch", caption="The image" + (
                "" if truth is None else f" · green: the shape's true box ({box_share:.0%} of the image: a map "
                                         "spread evenly would put that share of itself in it)"))
            continue
        picture = with_box(sal.overlay(base, sal.display_scale(heat, title), opacity))
        where = f" · {layer}" if title in sal.LAYER_METHODS else ""
        st.image(picture, width="stretch", caption=f"{title}{where}: {ABOUT[title]}")
        note = f"**{title}** · computed in {seconds[title]:.2f} s"
        if truth is not None:
            note += against_box(heat)
        st.caption(note)
        st.download_button("Download overlay PNG", lambda picture=picture: encode_png(picture),
                           file_name=f"{title.lower().replace(' ', '_')}_{name.replace(' ', '_')}.png",
                           mime="image/png", key=f"xai.dl.{title}", width="stretch")

# --- trust checks -------------------------------------------------------------------------------
st.subheader("Can you trust these maps?")
st.markdown("Two tests from the literature, run live on this image and class: a map should **change** when the "
            "network's weights are destroyed (it must explain *this* network), and deleting the pixels it "
            "ranks highest should **hurt** the prediction faster than deleting pixels at random.")
run_checks = st.toggle("Run the trust checks (several seconds: dozens of forward passes)", key="xai.checks")
if run_checks:
    rand_tab, del_tab = st.tabs(["Model randomisation", "Deletion curves"])
    with rand_tab:
        slot = st.empty()
        try:
            stages = cs.randomisation(clf.name, device, subject.digest, target, layer, clf, subject.image,
                                      cs.Progress(slot))
        except (JobRefused, JobTimeout) as exc:
            st.warning(str(exc))
            stages = None
        slot.empty()
        if stages:
            methods = list(stages[0].maps)
            st.markdown(f"A private copy of the network is re-initialised **from the output down**, one layer "
                        f"group at a time (He-normal weights, seed 0). After each step the maps are recomputed "
                        f"and compared with the trained network's by Spearman rank correlation (1 = same ranking "
                        f"of pixels, 0 = unrelated). The Grad-CAM layer is **{layer}**. This is one random draw: "
                        f"another seed can give quite different numbers, so read the trend, not a single value.")
            rows = [{"randomised down to": s.name, "method": m, "Spearman ρ": s.spearman[m]}
                    for s in stages[1:] for m in methods if s.spearman[m] == s.spearman[m]]
            st.vega_lite_chart({
                "data": {"values": rows},
                "mark": {"type": "line", "point": True, "tooltip": True},
                "encoding": {
                    "x": {"field": "randomised down to", "type": "ordinal", "sort": [s.name for s in stages[1:]]},
                    "y": {"field": "Spearman ρ", "type": "quantitative", "scale": {"domain": [-1, 1]}},
                    "color": {"field": "method", "type": "nominal"},
                },
                "height": 220,
            }, width="stretch")
            table = ["| randomised down to | " + " | ".join(f"{m} ρ | {m} SSIM" for m in methods) + " |",
                     "|---" * (1 + 2 * len(methods)) + "|"]
            for s in stages[1:]:
                cells = " | ".join(("—" if s.spearman[m] != s.spearman[m] else f"{s.spearman[m]:.2f}")
                                   + f" | {s.ssim[m]:.2f}" for m in methods)
                table.append(f"| {s.name} | {cells} |")
            st.markdown("\n".join(table))
            st.caption("— : the map is all zero (Grad-CAM's ReLU removed everything), so it has no ranking.")
            for m in methods:
                st.markdown(f"**{m}** as the network is randomised →")
                cells = st.columns(len(stages))
                for c, s in zip(cells, stages):
                    c.image(sal.overlay(base, sal.display_scale(s.maps[m], m), opacity), caption=s.name,
                            width="stretch")
    with del_tab:
        a, b = st.columns(2)
        fill = url.radio("fill", FILL, a, horizontal=True,
                         format_func={"blur": "a blurred copy", "mean": "the mean colour"}.get)
        step = url.radio("step", STEP, b, horizontal=True, format_func=lambda k: f"{k} % of the pixels")
        url.sync()
        slot = st.empty()
        layer_maps = {m: maps[m] for m in sal.METHODS}
        try:
            curves = cs.deletion(clf.name, device, subject.digest, target, layer, fill, step / 100, clf,
                                 subject.image, layer_maps, cs.Progress(slot))
        except (JobRefused, JobTimeout) as exc:
            st.warning(str(exc))
            curves = None
        slot.empty()
        if curves:
            rows = [{"fraction deleted": float(f), "probability": float(p), "order": m}
                    for m, c in curves.items() for f, p in zip(c.fractions, c.probs)]
            st.vega_lite_chart({
                "data": {"values": rows},
                "mark": {"type": "line", "tooltip": True},
                "encoding": {
                    "x": {"field": "fraction deleted", "type": "quantitative", "axis": {"format": "%"}},
                    "y": {"field": "probability", "type": "quantitative", "title": f"p({name})",
                          "scale": {"domain": [0, 1]}},
                    "color": {"field": "order", "type": "nominal"},
                    "strokeDash": {"condition": {"test": "datum.order === 'random order'", "value": [4, 4]},
                                   "value": [1, 0]},
                },
                "height": 260,
            }, width="stretch")
            baseline = curves["random order"].auc
            st.markdown(f"Area under each curve (**lower = the map found the pixels the decision needs**); "
                        f"random order: **{baseline:.3f}**.")
            cells = st.columns(len(curves) - 1)
            for c, m in zip(cells, [m for m in curves if m != "random order"]):
                c.metric(f"{m} AUC", f"{curves[m].auc:.3f}", delta=f"{curves[m].auc - baseline:+.3f} vs random",
                         delta_color="inverse")

page.close()
