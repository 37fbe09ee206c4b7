"""Anchor boxes (Q23): torchvision's AnchorGenerator and Matcher on the active image, and
YOLO11's anchor-free grid points for contrast."""

import streamlit as st

from components.frame import lab_page
from components import anchors as ca_cache
from components import models as cm
from components.ui import weights_missing
from components.urlstate import UrlState
from core import anchors as ca
from core import detection as det
from core.imageio import encode_png, fit_long_side
from core.params import Param
from core.tables import rows_csv

page = lab_page("anchor-boxes")
ctx = page.ctx

MAX_OBJECTS = 50  # matching uses at most this many objects (highest scores first)
DET_CONF, DET_IOU = 0.25, 0.7  # ultralytics' predict defaults
LEVELS = Param(default="fpn", kind=str, choices=tuple(ca.LEVEL_PRESETS), label="Feature levels (strides)",
               help="One feature map per stride; each of its cells carries a set of anchors.")
SCALES = Param(default="one", kind=str, choices=tuple(ca.SCALE_PRESETS), label="Sizes per level")
RATIOS = Param(default="frcnn", kind=str, choices=tuple(ca.RATIO_PRESETS), label="Aspect ratios")
BASE = Param(default=ca.AnchorConfig.base_size, kind=int, lo=8, hi=256, step=8, label="Base anchor size (px, first level)",
             help="Size (√(w·h)) of the first level's anchors; every next level doubles it.")
HIGH = Param(default=0.7, lo=0.05, hi=1.0, step=0.05, label="Positive if IoU ≥",
             help="Matcher's high threshold (0.7 in Faster R-CNN's RPN, 0.5 in RetinaNet).")
LOW = Param(default=0.3, lo=0.0, hi=0.95, step=0.05, label="Negative if IoU <",
            help="Matcher's low threshold (0.3 in the RPN, 0.4 in RetinaNet). In between: ignored.")
LOWQ = Param(default=True, kind=bool, label="Low-quality matches",
             help="Also make each object's best anchor(s) positive, whatever their IoU "
                  "(allow_low_quality_matches: on in the RPN and RetinaNet).")
STRIDE = Param(default=16, kind=int, choices=(4, 8, 16, 32, 64, 128), label="Level")
POS_X = Param(default=50, kind=int, lo=0, hi=100, label="Position x (% of width)")
POS_Y = Param(default=50, kind=int, lo=0, hi=100, label="Position y (% of height)")
SCENE = Param(default=1, kind=int, lo=0, hi=9999, step=1, label="Synthetic scene number")

url = UrlState("anc")
st.subheader("Lay out the anchors")
c1, c2, c3, c4 = st.columns(4)
levels = url.selectbox("levels", LEVELS, c1, format_func=lambda k: ca.LEVEL_PRESETS[k][0])
base = url.slider("base", BASE, c2)
scales = url.selectbox("scales", SCALES, c3, format_func=lambda k: ca.SCALE_PRESETS[k][0])
ratios = url.selectbox("ratios", RATIOS, c4, format_func=lambda k: ca.RATIO_PRESETS[k][0])
config = ca.preset_config(levels, scales, ratios, base)

st.subheader("Match them to the objects")
m1, m2, m3, m4 = st.columns(4)
high = url.slider("high", HIGH, m1)
low = url.slider("low", LOW, m2)
low_quality = url.checkbox("lowq", LOWQ, m3)

missing = cm.check_available("yolo11n")
if missing is None:
    image = ctx.image
    yolo_name = "yolo11n"
    with st.spinner("Running YOLO11n on the image…"):
        cands = cm.detect(yolo_name, ctx.device.torch_device, image.digest, image)
    kept = det.select(cands.detections, conf=DET_CONF, iou=DET_IOU).kept.subset(slice(0, MAX_OBJECTS))
    obj_boxes, obj_names, source = kept.boxes, kept.names(), f"yolo11n@{ctx.device.torch_device}"
    source_text = (f"Objects: YOLO11n's detections on this image (confidence > {DET_CONF}, NMS {DET_IOU}, at most "
                   f"{MAX_OBJECTS}), standing in for the ground-truth boxes a training set would give.")
else:
    weights_missing(missing)
    st.info("**Offline demonstration.** YOLO11n's COCO weights are not available, so the anchors are "
            "laid over a synthetic shapes scene and matched to its true boxes (green, dashed) — exactly "
            "what happens in training — and the anchor-free part runs the YOLO11n-architecture detector "
            "this project trains itself on such scenes.", icon="🧪")
    scene_no = url.number_input("scene", SCENE, m4)
    cm.require_shipped("shapes-yolo")
    image, truth = cm.shapes_scene(int(scene_no))
    yolo_name, source = "shapes-yolo", "truth"
    obj_boxes, obj_names = truth.boxes, truth.names()
    source_text = "Objects: the scene's true boxes."

if low > high:
    st.warning(f"The negative threshold ({low:.2f}) is above the positive one ({high:.2f}); "
               f"using {high:.2f} for both (the Matcher requires low ≤ high).", icon="↕️")
    low = high

# Anchors and IoUs at a working size (long side <= 640): anchor counts grow with the area.
work = fit_long_side(image.work, ca.MATCH_LONG_SIDE)
scale = work.shape[1] / image.work.shape[1]
boxes = obj_boxes * scale
keys = (levels, scales, ratios, int(base))
anchors = ca_cache.anchor_set(work.shape[0], work.shape[1], *keys)
key = f"{image.digest}:{source}:{work.shape[1]}x{work.shape[0]}"
overlaps = ca_cache.overlaps(key, *keys, anchors, boxes)
matching = ca_cache.matching(key, *keys, float(high), float(low), bool(low_quality), overlaps)

strides = config.strides
stride_key = url.key("stride", STRIDE)
url.key("x", POS_X), url.key("y", POS_Y)  # bound before url.sync below; their sliders come further down
if st.session_state[stride_key] not in strides:  # the level set changed: nearest level
    st.session_state[stride_key] = min(strides, key=lambda s: abs(s - st.session_state[stride_key]))
url.sync()

st.caption(f"{source_text} Anchors are computed on the image at {work.shape[1]}×{work.shape[0]} "
           f"(long side ≤ {ca.MATCH_LONG_SIDE}), padded to {anchors.padded_size[1]}×{anchors.padded_size[0]} "
           f"(a multiple of {ca.SIZE_DIVISIBLE}, as torchvision's detectors pad), by calling torchvision's "
           "`AnchorGenerator` on the feature-map sizes their backbones give; IoU is "
           "`torchvision.ops.box_iou` and the labels come from torchvision's `Matcher`.")
k1, k2, k3, k4, k5 = st.columns(5)
k1.metric("Anchors", f"{len(anchors):,}")
k2.metric("Positive anchors", f"{matching.positives:,}")
k3.metric("Ignored anchors", f"{matching.ignored:,}")
k4.metric("Negative anchors", f"{matching.negatives:,}")
unmatched = int((matching.positives_per_object() == 0).sum())
k5.metric("Objects with no positive anchor", unmatched,
          help="With low-quality matches off, an object whose best anchor is below the positive threshold "
               "gets no positive anchor at all: the detector is never trained to find it.")

left, right = st.columns(2)
with left:
    st.markdown("**The anchors of one feature-map cell**")
    p1, p2, p3 = st.columns(3)
    # the options are the chosen levels' strides (a subset of STRIDE.choices), so drawn here
    stride = p1.selectbox(STRIDE.label, list(strides), key=stride_key, format_func=lambda s: f"stride {s}",
                          help=STRIDE.help)
    px = url.slider("x", POS_X, p2)
    py = url.slider("y", POS_Y, p3)
    level = strides.index(stride)
    col, row = ca.locate(anchors, level, px / 100, py / 100)
    lv = anchors.levels[level]
    cell_picture = ca.draw_cell(work, anchors, matching, level, col, row, boxes, obj_names)
    st.image(cell_picture, width="stretch",
             caption=f"Cell (col {col}, row {row}) of the stride-{stride} grid ({lv.grid[1]}×{lv.grid[0]} cells, "
                     f"white outline): its {config.per_cell} anchors, centred on the white dot — torchvision puts "
                     f"the centre at (col·{lv.step_x}, row·{lv.step_y}) px, the cell's top-left corner "
                     f"(sizes {', '.join(map(str, lv.sizes))}; "
                     "orange positive, cyan ignored, grey negative).")
    st.download_button("Download this picture (PNG)", lambda: encode_png(cell_picture),
                       file_name=f"anchors_stride{stride}_c{col}_r{row}.png", mime="image/png", key="dl.png")
with right:
    st.markdown("**Every anchor, matched**")
    whole = ca_cache.matching_picture(key, *keys, float(high), float(low), bool(low_quality), stride,
                                      work, anchors, matching, boxes, obj_names)
    st.image(whole, width="stretch",
             caption=f"White dots: the {lv.grid[0] * lv.grid[1]:,} anchor centres of stride {stride}. Thin boxes: "
                     f"positive anchors, coloured by level (at most {ca.MAX_DRAWN} drawn). White boxes: each "
                     "object's best anchor with its IoU. Green dashed: the objects.")

cell_rows = ca.cell_table(anchors, matching, anchors.cell(level, col, row))
st.dataframe(cell_rows, hide_index=True, width="stretch")
st.download_button("Download this cell's anchors (CSV)", lambda: rows_csv(cell_rows),
                   file_name=f"anchors_stride{stride}_c{col}_r{row}.csv", mime="text/csv", key="dl.cell")

st.subheader("How many anchors, and which match")
t1, t2 = st.columns([3, 2])
level_rows = ca.level_table(anchors, matching)
with t1:
    st.dataframe(level_rows, hide_index=True, width="stretch")
    obj_rows = ca.object_table(anchors, matching, boxes, obj_names)
    if obj_rows:
        st.markdown("**Each object's best anchor** (coordinates in working-image pixels)")
        st.dataframe(obj_rows, hide_index=True, width="stretch")
        st.download_button("Download the match table (CSV)", lambda: rows_csv(obj_rows),
                           file_name="anchor_matches.csv", mime="text/csv", key="dl.match")
    else:
        st.info("No objects in this image, so every anchor is a negative (background) example.")
with t2:
    st.vega_lite_chart(ca_cache.level_chart(level_rows), width="stretch")
    hist = [r for r in ca.iou_histogram(matching) if r["anchors"] > 0]
    if hist:
        st.vega_lite_chart(ca_cache.iou_chart(hist, low, high), width="stretch")

st.subheader("The anchor-free contrast: YOLO11's grid points")
with st.spinner(f"Running {yolo_name}'s network on the image…"):
    stride_rows, found, yolo_picture, input_hw = ca_cache.yolo_points(
        yolo_name, ctx.device.torch_device, image.digest, image, DET_CONF, DET_IOU)
n_points = sum(r["anchor points"] for r in stride_rows)
st.markdown(
    f"YOLO11 has **no anchor boxes**: its head predicts, at every cell of the stride "
    f"{', '.join(str(r['stride']) for r in stride_rows)} grids, the distances from the cell's centre point to "
    f"the four sides of a box, plus class scores. On this image ({input_hw[1]}×{input_hw[0]} after letterboxing) "
    f"that is **{n_points:,} points**, one per cell, against {len(anchors):,} anchors above. Below, its raw "
    f"head output went through the confidence filter ({DET_CONF}) and NMS ({DET_IOU}) here, keeping the "
    "index of each surviving point, so every box says which stride and grid cell produced it.")
y1, y2 = st.columns([3, 2])
with y1:
    st.image(yolo_picture, width="stretch",
             caption="Each final box with the grid cell (filled, tagged with its stride) and the point (white) "
                     "that predicted it. Coordinates in the tables: working-image pixels, as above.")
with y2:
    st.dataframe(stride_rows, hide_index=True, width="stretch")
    rows = ca.point_table(found)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
        st.download_button("Download detections with their grid points (CSV)", lambda: rows_csv(rows),
                           file_name=f"{yolo_name}_grid_points.csv", mime="text/csv", key="dl.points")
    else:
        st.info(f"{yolo_name} finds nothing above confidence {DET_CONF} in this image.")
page.close()
