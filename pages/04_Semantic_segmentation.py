"""Semantic segmentation (Q7, Q20): DeepLabV3 / LR-ASPP per-pixel classes, live."""

import numpy as np
import streamlit as st

from components.frame import lab_page
from components import instances as ci
from components import models as cm
from components import semantic as cs
from components.ui import weights_missing
from components.urlstate import UrlState
from core import semantic as sem
from core.imageio import encode_png
from core.params import Param
from models import registry

page = lab_page("semantic-segmentation")
ctx = page.ctx

TORCHVISION = ("deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
SHORT = {"deeplabv3_mobilenet_v3_large": "DeepLabV3 (ASPP)", "lraspp_mobilenet_v3_large": "LR-ASPP (fast)",
         "shapes-seg": "Shapes FCN (trained here)"}
MODEL = Param(default=TORCHVISION[0], kind=str, choices=TORCHVISION, label="Model",
              help="DeepLabV3 fuses several atrous (dilated) convolutions; LR-ASPP is its light, faster cousin.")
OPACITY = Param(default=0.55, lo=0.0, hi=1.0, step=0.05, label="Overlay opacity",
                help="How strongly the class colours are blended over the photo (0 = photo only).")
# scene 0: three circles and a triangle
SCENE = Param(default=0, kind=int, lo=0, hi=9999, step=1, label="Synthetic scene number")
ALL = "(all classes)"

url = UrlState("seg")
left, mid, right = st.columns(3)
device = ctx.device.torch_device

missing = {name: err for name in TORCHVISION if (err := cm.check_available(name))}
available = [n for n in TORCHVISION if n not in missing]
scene = None
if available:
    key = url.key("model", MODEL)
    if st.session_state[key] not in available:  # a link may name a model this server lacks
        st.session_state[key] = available[0]
    # the options are the models this server has (a subset of MODEL.choices), so drawn here
    name = left.radio(MODEL.label, available, format_func=SHORT.get, key=key, horizontal=True, help=MODEL.help)
    image = ctx.image
    for err in missing.values():
        weights_missing(err)
else:
    for err in missing.values():
        weights_missing(err)
    st.info("**Offline demonstration.** Neither pretrained segmentation network is available, so the "
            "same pipeline runs on a synthetic shapes scene with a small encoder–decoder (mini ASPP, "
            "U-Net skips) that this project trains itself on such scenes (shipped with the lab). "
            "Its classes are background plus six shapes.", icon="🧪")
    scene_no = url.number_input("scene", SCENE, left)
    cm.require_shipped("shapes-seg")
    scene = cs.shapes_scene(int(scene_no))
    image, name = scene.image, "shapes-seg"

opacity = url.slider("opacity", OPACITY, mid)
with st.spinner(f"Running {SHORT[name]} on the image…"):
    result = cs.segment(name, device, image.digest, image)
rgb = cm.working_rgb(image)
colours = sem.palette(len(result.categories))
rows = sem.legend(result)
focus_options = [ALL] + [r["class"] for r in rows]
if st.session_state.get("seg.focus") not in focus_options:  # a class of the previous image
    st.session_state["seg.focus"] = ALL
focus = right.selectbox("Isolate a class", focus_options, key="seg.focus",
                        help="Show one class in colour and grey out every other pixel.")
url.sync()

# --- the map ---------------------------------------------------------------------------------
if focus == ALL:
    picture = sem.overlay(rgb, result.classes, colours, opacity=opacity)
    title = f"Per-pixel classes at opacity {opacity:.2f}"
else:
    cls = result.categories.index(focus)
    picture = sem.isolate(rgb, result.classes, cls, colours, opacity=opacity)
    title = f"Only '{focus}' ({100 * float((result.classes == cls).mean()):.1f} % of the pixels); the rest greyed"
a, b = st.columns(2)
with a:
    st.markdown(f"**{registry.get_spec(name).title}**")
    st.image(picture, caption=title, width="stretch")
with b:
    st.markdown("**Confidence** (softmax probability of the winning class per pixel)")
    st.image(result.confidence.astype(np.float32), clamp=True, width="stretch",
             caption="Bright = sure. Object borders are where the network hesitates.")

m1, m2, m3, m4 = st.columns(4)
m1.metric(f"Forward pass ({result.device})", f"{result.latency_ms:.0f} ms",
          help="Measured when this image was first segmented (pre-processing, network, upsampling, argmax); "
               "cached afterwards, so sliders do not rerun it.")
m2.metric("Network input", f"{result.input_size[0]}×{result.input_size[1]}",
          help="What the network saw; its logits are upsampled bilinearly back to the image size "
               f"({result.size[0]}×{result.size[1]}).")
m3.metric("Classes found", len([r for r in rows if r["id"] != 0]))
m4.metric("Mean confidence", f"{float(result.confidence.astype(np.float32).mean()):.2f}")

if scene is not None:
    live = sem.mean_iou(result.classes, scene.truth, len(result.categories))
    stored = cs.shapes_metrics() or {}
    held = stored.get("mean_iou")
    st.caption(f"Against this scene's true labels: mean IoU {live:.2f} (background included). "
               + (f"Mean IoU on {stored.get('n_eval', 0)} held-out scenes: {held:.2f} "
                  f"(measured when the net was trained, {stored.get('parameters', 0):,} parameters)."
                  if held is not None else ""))

# --- legend: share of the image per class ------------------------------------------------------
st.subheader("How much of the image each class covers")
hexes = {r["class"]: "#%02x%02x%02x" % tuple(int(v) for v in colours[r["id"]]) for r in rows}
st.vega_lite_chart({
    "data": {"values": [{"class": r["class"], "share": r["share"]} for r in rows]},
    "mark": {"type": "bar", "tooltip": True, "stroke": "#888", "strokeWidth": 0.5},
    "encoding": {
        "y": {"field": "class", "type": "nominal", "sort": None, "title": None},
        "x": {"field": "share", "type": "quantitative", "title": "share of pixels", "axis": {"format": "%"}},
        "color": {"field": "class", "type": "nominal", "legend": None,
                  "scale": {"domain": list(hexes), "range": list(hexes.values())}},
    },
    "height": {"step": 22},
}, width="stretch")
st.dataframe([{"class": r["class"], "id": r["id"], "share": f"{100 * r['share']:.2f} %", "pixels": r["pixels"],
               "mean confidence": round(r["mean confidence"], 3)} for r in rows],
             hide_index=True, width="stretch")

d1, d2 = st.columns(2)
d1.download_button("Download label mask (PNG, pixel value = class id)",
                   lambda: sem.encode_label_png(result.classes, colours), file_name=f"{name}_labels.png",
                   mime="image/png", key="seg.dl.mask", width="stretch",
                   help="A palette PNG like PASCAL VOC's: each pixel's value is its class id "
                        "(0 = background); viewers show it in the legend's colours.")
d2.download_button("Download colour overlay (PNG)", lambda: encode_png(picture), file_name=f"{name}_overlay.png",
                   mime="image/png", key="seg.dl.overlay", width="stretch")


# --- semantic vs instance ------------------------------------------------------------------------
# VOC (semantic) and COCO (instance) spell a few shared classes differently.
COCO_NAME = {"aeroplane": "airplane", "diningtable": "dining table", "motorbike": "motorcycle",
             "pottedplant": "potted plant", "sofa": "couch", "tvmonitor": "tv"}


def _instance_model(offline: bool) -> str | None:
    """Which instance segmenter to compare with, or None (then the scene's true masks are used).

    Offline the scene's true instances are used: the shapes Mask R-CNN (trained for minutes)
    draws good masks but often gives one shape two classes, which would blur the one point
    this comparison makes — how many objects of a class there are."""
    if offline:
        return None
    return None if cm.check_available("maskrcnn_resnet50_fpn") else "maskrcnn_resnet50_fpn"


def semantic_vs_instance() -> None:
    from core.instances import InstanceMasks, MaskAnnotator

    st.subheader("Semantic vs instance: same image, two kinds of answer")
    present = [r for r in rows if r["id"] != 0]
    if not present:
        st.info("The semantic map holds only background on this image, so there is nothing to compare.")
        return
    inst_name = _instance_model(offline=scene is not None)
    if scene is not None and inst_name is None:
        # Ground truth: every visible shape is its own instance.
        instances = InstanceMasks(scene.masks.astype(np.float32), np.zeros((len(scene.labels), 4), np.float32),
                                  np.ones(len(scene.labels), np.float32), scene.labels.astype(np.int64),
                                  tuple(sem.display_names(result.categories)[1:]))
        source = ("the scene's **true** instance masks (ground truth, not a model; the Mask R-CNN page "
                  "runs instance models on these scenes)")
    elif inst_name is not None:
        with st.spinner(f"Running {inst_name} for the comparison…"):
            floor = 0.5
            instances = ci.instances(inst_name, device, image).select(score=floor, mask=0.5)
        source = f"**{registry.get_spec(inst_name).title}** (score > {floor}, mask probability > 0.5)"
    else:
        st.info("No instance segmentation model can run here, so there is nothing to put beside this map: "
                "an instance model would give every object of a class its own mask, where the map above "
                "gives all of them one label.", icon="🎭")
        err = cm.check_available("maskrcnn_resnet50_fpn")
        if err is not None:
            weights_missing(err)
        return
    # Compare on one class: the semantic class with the most instances, else the largest one.
    inst_names = [COCO_NAME.get(n, n) if scene is None else n for n in instances.names]
    sem_names = [r["class"] for r in present]
    counted = sorted(sem_names, key=lambda c: (-inst_names.count(COCO_NAME.get(c, c) if scene is None else c),
                                               sem_names.index(c)))
    if st.session_state.get("seg.compare") not in counted:
        st.session_state["seg.compare"] = counted[0]
    cls_name = st.selectbox("Compare on class", counted, key="seg.compare",
                            help="The class whose pixels the two kinds of model describe differently.")
    cls = result.categories.index(cls_name)
    target = COCO_NAME.get(cls_name, cls_name) if scene is None else cls_name
    keep = [i for i, n in enumerate(inst_names) if n == target]
    chosen = InstanceMasks(instances.masks[keep], instances.boxes[keep], instances.scores[keep],
                           instances.labels[keep], instances.categories, instances.mask_threshold)
    blobs = sem.count_regions(result.classes == cls)
    c1, c2 = st.columns(2)
    with c1:
        st.image(sem.isolate(rgb, result.classes, cls, colours, opacity=0.6), width="stretch",
                 caption=f"Semantic ({SHORT[name]}): every '{cls_name}' pixel carries the same label — "
                         f"{100 * float((result.classes == cls).mean()):.1f} % of the image in {blobs} "
                         f"connected blob(s); the map cannot say how many objects that is.")
    with c2:
        st.image(MaskAnnotator(opacity=0.6).annotate(rgb, chosen), width="stretch",
                 caption=f"Instance: {len(chosen)} separate '{cls_name}' mask(s), one colour per object, "
                         f"from {source}.")


semantic_vs_instance()
page.close()
