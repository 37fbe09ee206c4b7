"""Object detection (Q5): a one-stage and a two-stage detector, thresholds and NMS, live."""

import streamlit as st

from components.frame import lab_page
from components import models as cm
from components.ui import grouped_bars, weights_missing
from components.urlstate import UrlState
from core import detection as det
from core.annotate import BoxAnnotator
from core.imageio import encode_png
from core.params import Param

page = lab_page("object-detection")
ctx = page.ctx

COCO_DETECTORS = ("yolo11n", "fasterrcnn_mobilenet_v3_large_fpn")
CONF = Param(default=0.25, lo=0.05, hi=0.95, step=0.05, label="Confidence threshold",
             help="Boxes scoring at or below this are dropped before NMS.")
IOU = Param(default=0.7, lo=0.1, hi=1.0, step=0.05, label="NMS IoU threshold",
            help="A box overlapping a better box of the same class by more than this is removed. 1.0 = NMS off.")
SCENE = Param(default=1, kind=int, lo=0, hi=9999, step=1, label="Synthetic scene number")

url = UrlState("det")
left, mid, right = st.columns(3)
conf = url.slider("conf", CONF, left)
iou = url.slider("iou", IOU, mid)

# Which detectors can run here; a missing one says exactly what to fetch, in its column.
missing = {name: err for name in COCO_DETECTORS if (err := cm.check_available(name))}
names = [n for n in COCO_DETECTORS if n not in missing]
truth = None
if names:
    image = ctx.image
else:
    st.info("**Offline demonstration.** Neither COCO detector is available, so the same pipeline "
            "runs on a synthetic shapes scene with a YOLO11n-architecture detector that this "
            "project trains itself on such scenes (shipped with the lab). Green dashed "
            "boxes are the scene's true objects.", icon="🧪")
    scene_no = url.number_input("scene", SCENE, right)
    cm.require_shipped("shapes-yolo")
    image, truth = cm.shapes_scene(int(scene_no))
    names = ["shapes-yolo"]

runs = {}
for name in names:
    with st.spinner(f"Running {name} on the image…"):
        runs[name] = cm.detect(name, ctx.device.torch_device, image.digest, image)
titles = {name: cm.detector(name, ctx.device.torch_device).title for name in names}
present = sorted({c.detections.categories[i] for c in runs.values() for i in c.detections.labels[c.detections.scores > conf]})
chosen = right.multiselect("Only these classes", present, placeholder="All classes",
                           help="Classes found above the confidence threshold in this image.")

results = {name: det.select_by_names(c.detections, conf=conf, iou=iou, names=chosen) for name, c in runs.items()}
url.sync()

st.subheader("Detections")
draw = BoxAnnotator()
truth_draw = BoxAnnotator(colour=(0, 200, 0), dashed=True, show_scores=False)
cols = st.columns(2)  # one column per detector; extra missing-model cards stack in the last
columns = {name: cols[min(i, 1)] for i, name in enumerate([*runs, *missing])}
for name, err in missing.items():
    with columns[name]:
        weights_missing(err)
for name, cands in runs.items():
    kept = results[name].kept
    base = truth_draw.annotate(image.work, truth) if truth is not None else image.work
    picture = draw.annotate(base, kept)
    with columns[name]:
        st.markdown(f"**{titles[name]}** · {cm.stages(name)}")
        st.image(picture, width="stretch")
        a, b = st.columns(2)
        a.metric("Objects kept", len(kept))
        b.metric(f"Forward pass ({cands.device})", f"{cands.latency_ms:.0f} ms",
                 help="Measured when this image was first run through the model (pre/post-processing included).")
        if truth is not None:
            report = det.match_to_truth(kept, truth.boxes, truth.labels)
            st.caption(f"Against the true shapes (IoU ≥ 0.5, same class): recall {report.recall:.0%}, "
                       f"precision {report.precision:.0%} ({report.true_positives} found, "
                       f"{report.missed} missed, {report.false_positives} wrong).")
        counts = det.count_by_class(kept)
        if counts:
            st.caption(" · ".join(f"{k}: {v}" for k, v in counts.items()))
        # Files are made when the button is clicked (PNG encoding was half of every rerun's time).
        st.download_button("Download annotated PNG", lambda picture=picture: encode_png(picture),
                           file_name=f"{name}_detections.png", mime="image/png", key=f"dl.{name}", width="stretch")
        if len(kept):
            st.download_button("Download boxes (CSV)", lambda kept=kept: det.to_csv(kept), file_name=f"{name}_boxes.csv",
                               mime="text/csv", key=f"csv.{name}", width="stretch")

st.subheader("Non-maximum suppression, step by step")
nms_model = st.radio("Show NMS for", list(runs), format_func=lambda n: titles[n], horizontal=True)
sel = results[nms_model]
a, b = st.columns(2)
with a:
    st.image(BoxAnnotator(show_labels=False, show_scores=False, thickness=2).annotate(image.work, sel.before_nms),
             caption=f"Before NMS: {len(sel.before_nms)} candidate boxes above confidence {conf:.2f}",
             width="stretch")
with b:
    st.image(draw.annotate(image.work, sel.kept),
             caption=f"After NMS at IoU {iou:.2f}: {len(sel.kept)} kept, "
                     f"{len(sel.before_nms) - len(sel.kept)} suppressed", width="stretch")
grouped_bars(det.nms_counts(sel), category="class", series=["before NMS", "kept"], unit="boxes")

page.close()
