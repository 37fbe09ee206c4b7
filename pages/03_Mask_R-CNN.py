"""Mask R-CNN and instance segmentation (Q21, Q24): the two-stage pipeline stage by stage,
next to a one-stage YOLO-seg model."""

import numpy as np
import streamlit as st

from components.frame import lab_page
from components import instances as ci
from components import models as cm
from components.ui import weights_missing
from components.urlstate import UrlState
from core import maskrcnn as mr
from core.annotate import BoxAnnotator
from core.detection import Detections
from core.imageio import encode_png
from core.instances import InstanceMasks, MaskAnnotator, best_match_ious, correct_detections, encode_label_png, label_image
from core.params import Param
from models import registry

page = lab_page("mask-r-cnn")
ctx = page.ctx

TOP_K = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
# Mask R-CNN's usual 0.5, COCO and shapes alike
SCORE = Param(default=0.5, lo=0.05, hi=0.95, step=0.05, label="Score threshold",
              help="Detections scoring at or below this are hidden (the network is not rerun).")
MASK = Param(default=InstanceMasks.mask_threshold, lo=0.05, hi=0.95, step=0.05, label="Mask threshold",
             help="A pixel belongs to an instance when its mask probability exceeds this. "
                  "Mask R-CNN's own default is 0.5.")
TOPK = Param(default=20, kind=int, choices=TOP_K, label="RPN proposals drawn (top-k)",
             help="The k region proposals with the highest objectness, out of those the RPN keeps.")
SCENE = Param(default=1, kind=int, lo=0, hi=9999, step=1, label="Synthetic scene number")
SHOWN_LOGITS = 8  # 28x28 mask-logit maps shown
TRUTH_COLOUR = np.array([(0, 200, 0)], np.uint8)  # true masks' outlines (offline scenes)


def _held_out() -> str:
    """The shipped shapes Mask R-CNN's recorded held-out scores, as a sentence."""
    m = registry.shipped("shapes-maskrcnn").metrics()
    if not m:
        return ""
    return (f" On {m['n_eval_shapes']} shapes of held-out scenes, at score {m['eval_score']:g}, it found "
            f"{m['recall_mask_iou50']:.0%} of them, {m['precision_mask_iou50']:.0%} of its detections were right "
            f"(class and mask IoU ≥ 0.5) and its masks covered their shapes with a mean IoU of "
            f"{m['mean_mask_iou']:.2f}.")

device = ctx.device.torch_device
two_err = cm.check_available("maskrcnn_resnet50_fpn")
url = UrlState("mrc")
left, mid, right = st.columns(3)
score = url.slider("score", SCORE, left)
mask_thr = url.slider("mask", MASK, mid)
top_k = url.select_slider("topk", TOPK, right)

truth = None
if two_err is None:
    image = ctx.image
    two_stage = "maskrcnn_resnet50_fpn"
    one_err = cm.check_available("yolo11n-seg")
    one_stage = None if one_err else "yolo11n-seg"
else:
    weights_missing(two_err)
    one_err = cm.check_available("yolo11n-seg")
    if one_err:
        weights_missing(one_err)
    st.info("**Offline demonstration.** The COCO Mask R-CNN weights are not here, so the same staged "
            "pipeline runs on a synthetic shapes scene with a small Mask R-CNN (torchvision's MaskRCNN "
            "class, tiny backbone) that this project trains itself, next to a YOLO11n-seg-architecture "
            "model trained on the same scenes (both shipped with the lab). Green outlines are the "
            "scene's true masks." + _held_out(), icon="🧪")
    scene_no = url.number_input("scene", SCENE)
    cm.require_shipped("shapes-maskrcnn")
    cm.require_shipped("shapes-yolo-seg")
    image, _ = cm.shapes_scene(int(scene_no))
    truth = ci.shapes_truth(int(scene_no))
    two_stage, one_stage, one_err = "shapes-maskrcnn", "shapes-yolo-seg", None
url.sync()

with st.spinner("Running Mask R-CNN stage by stage (first time for this image only)…"):
    run = ci.maskrcnn(two_stage, device, image.digest, image)
one = None
if one_stage:
    with st.spinner("Running YOLO-seg…"):
        one = ci.yolo_seg(one_stage, device, image.digest, image)
rgb = cm.working_rgb(image)
kept = run.instances.select(score=score, mask=mask_thr)


def overlay(instances, base):
    if truth is not None:
        base = MaskAnnotator(opacity=0.0, outline=2, palette=TRUTH_COLOUR).annotate(base, truth.select(score=0))
    picture = MaskAnnotator(opacity=0.45).annotate(base, instances)
    boxes = Detections(instances.boxes, instances.scores, instances.labels, instances.categories)
    return BoxAnnotator(thickness=1).annotate(picture, boxes)


def truth_caption(instances) -> str:
    ious = best_match_ious(instances, truth)
    right = correct_detections(instances, truth)
    return (f"Against the {len(ious)} true shapes (best mask of the same class): mean mask IoU "
            f"{ious.mean():.2f}, {int((ious >= 0.5).sum())} of {len(ious)} found at IoU ≥ 0.5; "
            f"{int(right.sum())} of {len(right)} detections are right.")


st.subheader("Instance masks: two-stage and one-stage")
cols = st.columns(2)
sides = [(two_stage, kept, run.wall_ms, run.device)]
if one is not None:
    sides.append((one_stage, one[0].select(score=score, mask=mask_thr), one[1], device))
for col, (name, inst, ms, dev) in zip(cols, sides):
    spec = registry.get_spec(name)
    picture = overlay(inst, rgb)
    with col:
        st.markdown(f"**{spec.title}** · {spec.stages}")
        st.image(picture, width="stretch")
        a, b = st.columns(2)
        a.metric("Instances kept", len(inst), help="Detections above the score threshold.")
        b.metric(f"Forward pass ({dev})", f"{ms:.0f} ms",
                 help="Measured when this image was first run (pre- and post-processing included).")
        if truth is not None:
            st.caption(truth_caption(inst))
        if len(inst):
            area = inst.areas()
            st.caption(f"Mask pixels at threshold {mask_thr:.2f}: {int(area.sum()):,} "
                       f"({area.sum() / (rgb.shape[0] * rgb.shape[1]):.1%} of the image, overlaps counted twice) · "
                       + " · ".join(f"{n} {s:.2f}" for n, s in zip(inst.names[:6], inst.scores[:6]))
                       + (" …" if len(inst) > 6 else ""))
        d1, d2 = st.columns(2)
        d1.download_button("Overlay (PNG)", lambda picture=picture: encode_png(picture),
                           file_name=f"{name}_overlay.png", mime="image/png", key=f"dl.{name}", width="stretch")
        d2.download_button("Instance ids (PNG)", lambda inst=inst: encode_label_png(label_image(inst)),
                           file_name=f"{name}_instances.png", mime="image/png", key=f"ids.{name}",
                           width="stretch", help="0 = background, 1 = best-scoring instance, 2 = next, …")
if one is None and one_err is not None:
    with cols[1]:
        weights_missing(one_err)

st.subheader("Inside Mask R-CNN, stage by stage")
st.markdown(f"**1 · Backbone + FPN.** The image is resized to {run.input_size[0]}×{run.input_size[1]} "
            "and normalised (the transform), then the backbone and the feature pyramid produce one map per "
            "scale. Each picture is the mean over channels of one level (bright = strong activation).")
level_cols = st.columns(len(run.levels))
for col, level in zip(level_cols, run.levels):
    c, h, w = level.shape
    col.image(mr.heatmap(level.mean_map), caption=f"'{level.name}': {c}×{h}×{w}, stride {level.stride:g}",
              width="stretch")

a, b = st.columns(2)
with a:
    shown = run.top_proposals(top_k)
    st.markdown(f"**2 · Region proposal network.** {run.anchors:,} anchors scored over all levels; after "
                f"per-level top-n and NMS the RPN keeps {len(run.proposals)} proposals.")
    floor = f", objectness ≥ {run.objectness[len(shown) - 1]:.2f}" if len(shown) else ""
    st.image(mr.draw_proposals(rgb, shown), width="stretch")
    st.caption(f"Top {len(shown)} proposals by objectness{floor}")
with b:
    st.markdown("**3 · Mask head.** For each kept detection, RoIAlign crops a 14×14 feature patch; the "
                "mask head returns 28×28 logits per class and only the predicted class's map is used. "
                "Below: that map's sigmoid (black 0 → yellow 1), before it is resized into the box.")
    picked = np.flatnonzero(run.instances.scores > score)[:SHOWN_LOGITS]
    if len(picked):
        grid = st.columns(4)
        for j, i in enumerate(picked):
            name = run.instances.categories[run.instances.labels[i]]
            grid[j % 4].image(mr.mask_logit_picture(run.mask_logits[i]),
                              caption=f"#{j + 1} {name} {run.instances.scores[i]:.2f}", width="stretch")
    else:
        st.caption("No detection above the score threshold.")

st.markdown("**4 · Where the time goes** (first run of this image, " + run.device + ")")
st.vega_lite_chart({
    "data": {"values": mr.timing_rows(run.timings_ms)},
    "mark": {"type": "bar", "tooltip": True},
    "encoding": {
        "y": {"field": "stage", "type": "nominal", "sort": None, "title": None},
        "x": {"field": "ms", "type": "quantitative", "title": "milliseconds"},
    },
    "height": {"step": 22},
}, width="stretch")
st.caption(f"Stages sum to {run.total_ms:.0f} ms of {run.wall_ms:.0f} ms for the whole call. "
           f"{len(run.instances)} detections scored above {ci.SCORE_FLOOR} were kept in the cache, so "
           "moving the sliders reruns nothing.")

page.close()
