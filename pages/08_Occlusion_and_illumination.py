"""Occlusion and illumination (Q15, Q19, Q32, Q33): cover part of the image or change its
light, watch the classifier's top-5 or the detector's boxes, then try the usual remedies."""

import json

import streamlit as st

from components.frame import lab_page
from components import models as cm
from components import perturb as cp
from components.classifier import active_subject
from components.session import session_id
from components.ui import weights_missing
from components.urlstate import UrlState
from core import perturb as P
from core.jobs import JobRefused, JobTimeout
from core.params import Param
from core.tables import rows_csv

page = lab_page("occlusion-illumination")
ctx = page.ctx

MODES = {"classifier": "Classifier (top-5)", "detector": "Detector (boxes)"}
EQUALISERS = {"off": "Off", "histogram": "Histogram", "clahe": "CLAHE"}
COCO_DETECTOR = "yolo11n"
MODE = Param(default="classifier", kind=str, choices=tuple(MODES), label="Model",
             help="A classifier answers 'what is in the image' (Q15, Q33); a detector answers "
                  "'what and where' for every object (Q19).")
OX = Param(default=0.5, lo=0.0, hi=1.0, step=0.01, label="Occluder x (fraction of the width)")
OY = Param(default=0.45, lo=0.0, hi=1.0, step=0.01, label="Occluder y (fraction of the height)")
OSIZE = Param(default=0.3, lo=0.0, hi=0.9, step=0.01, label="Occluder size (fraction of the short side)",
              help="0 removes the occluder.")
FILL = Param(default=P.Occluder.fill, kind=str, choices=P.FILLS, label="Fill",
             help="Black: the object is cut away. Noise: random texture (a distractor). "
                  "Blur: the object is still there but its edges and texture are gone.")
# the lighting starts unchanged: core.perturb.Lighting's defaults
BRIGHT = Param(default=P.Lighting.brightness, lo=0.05, hi=4.0, step=0.05, label="Brightness (exposure ×)")
CONTRAST = Param(default=P.Lighting.contrast, lo=0.05, hi=3.0, step=0.05, label="Contrast ×")
GAMMA = Param(default=P.Lighting.gamma, lo=0.25, hi=4.0, step=0.05, label="Gamma (> 1 darkens mid-tones)")
CAST = Param(default=P.Lighting.cast, lo=-1.0, hi=1.0, step=0.05, label="Colour cast (−1 blue … +1 warm)")
SHADOW = Param(default=P.Lighting.shadow, lo=0.0, hi=0.95, step=0.05, label="Shadow gradient depth")
SIDE = Param(default=P.Lighting.shadow_side, kind=str, choices=P.SHADOW_SIDES, label="Shadow darkest at")
EQ = Param(default="off", kind=str, choices=tuple(EQUALISERS), label="Equalise lightness (L channel)",
           help="Histogram equalisation of L in CIE L*a*b*: global, or CLAHE (per tile, contrast-limited).")
GW = Param(default=False, kind=bool, label="Gray-world white balance",
           help="Scale each colour channel so its mean equals the mean grey: removes a global colour cast.")
TTA = Param(default=False, kind=bool, label="Test-time augmentation",
            help="Average the class probabilities over the image, its mirror and four small shifts "
                 "(one batch of 6). Classifier mode only: detectors would need their boxes merged.")
WIN = Param(default=25, kind=int, lo=5, hi=50, label="Window (% of the side)")
STRIDE = Param(default=12, kind=int, lo=3, hi=25, label="Stride (% of the side)")
CONF = Param(default=0.25, lo=0.05, hi=0.95, step=0.05, label="Show boxes scoring above")
SCENE = Param(default=1, kind=int, lo=0, hi=9999, step=1, label="Synthetic scene number")

url = UrlState("occ")
mode = url.radio("mode", MODE, format_func=MODES.get, horizontal=True)
device = ctx.device.torch_device

# --- the subject: a classifier on an image, or a detector on an image -----------------------
truth = None
if mode == "classifier":
    subject = active_subject(ctx, url)
    clf = subject.classifier
    rgb, digest, model_name = subject.image, subject.digest, clf.name
else:
    err = cm.check_available(COCO_DETECTOR)
    if err is None:
        det_name, lab_image = COCO_DETECTOR, ctx.image
    else:
        weights_missing(err)
        st.info("**Offline demonstration.** The COCO YOLO11n weights are not on this server, so this "
                "page runs the YOLO11n-architecture detector this project trains itself, on a synthetic "
                "shapes scene whose true boxes are known (green dashed).", icon="🧪")
        scene_no = url.number_input("scene", SCENE)
        cm.require_shipped("shapes-yolo")
        lab_image, truth = cm.shapes_scene(int(scene_no))
        det_name = "shapes-yolo"
    rgb, digest, model_name = lab_image.work, lab_image.digest, det_name

# --- controls --------------------------------------------------------------------------------
st.subheader("Perturb the image")
occ_col, light_col = st.columns(2)
with occ_col:
    st.markdown("**Occluder** (a square patch)")
    ox = url.slider("ox", OX)
    oy = url.slider("oy", OY)
    osize = url.slider("size", OSIZE)
    fill = url.radio("fill", FILL, horizontal=True)
with light_col:
    st.markdown("**Lighting**")
    a, b = st.columns(2)
    bright = url.slider("bright", BRIGHT, a)
    contrast = url.slider("contrast", CONTRAST, b)
    gam = url.slider("gamma", GAMMA, a)
    cast = url.slider("cast", CAST, b)
    shadow = url.slider("shadow", SHADOW, a)
    side = url.selectbox("side", SIDE, b)

st.markdown("**Remedies** applied to the perturbed image")
r1, r2, r3 = st.columns(3)
eq = url.radio("eq", EQ, r1, format_func=EQUALISERS.get, horizontal=True)
gw = url.toggle("gw", GW, r2)
tta = url.toggle("tta", TTA, r3, disabled=mode != "classifier")
tta = tta and mode == "classifier"

occ = P.Occluder(ox, oy, osize, fill)
light = P.Lighting(bright, contrast, gam, cast, shadow, side)
steps = tuple(s for s in ((eq,) if eq != "off" else ()) + (("gray-world",) if gw else ()))
key = cp.settings_key(occ, light)
seen = cp.perturbed(digest, key, rgb, occ, light)
fixed = cp.remedied(digest, key, seen, steps) if steps else seen
remedy_names = [EQUALISERS[s] if s in EQUALISERS else s for s in steps] + (["TTA"] if tta else [])
remedy_title = " + ".join(remedy_names)
patch = P.occluder_box(rgb.shape, occ)


def bars(rows: list[dict], *, x: str, y: str, title: str, highlight: str | None = None) -> None:
    """Horizontal bars from a plain Vega-Lite dict (no Altair validation on every rerun)."""
    colour = ({"condition": {"test": f"datum[{json.dumps(y)}] === {json.dumps(highlight)}", "value": "#d62728"},
               "value": "#1f77b4"}
              if highlight is not None else {"value": "#1f77b4"})
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {"y": {"field": y, "type": "nominal", "sort": None, "title": None,
                           "axis": {"labelOverlap": False}},  # every class name, even on short bars
                     "x": {"field": x, "type": "quantitative", "scale": {"domain": [0, 1]}, "title": title},
                     "color": colour},
        "height": {"step": 18},
    }, width="stretch")


# --- classifier mode ---------------------------------------------------------------------------
if mode == "classifier":
    p_orig = cp.class_probs(model_name, digest, "original", clf, rgb)
    target = clf.top(p_orig, 1)[0]
    p_seen = cp.class_probs(model_name, digest, key, clf, seen)
    p_fixed = (cp.class_probs(model_name, digest, cp.settings_key(occ, light, steps + ("tta",) * tta), clf, fixed, tta)
               if (steps or tta) else None)

    def top5(column, probs, caption: str) -> None:
        rows = [{"class": p.name, "probability": round(p.probability, 4)} for p in clf.top(probs, 5)]
        with column:
            bars(rows, x="probability", y="class", title=caption, highlight=target.name)

    cols = st.columns(3)
    panels = [("Original", rgb, p_orig), ("Perturbed", seen, p_seen)]
    if p_fixed is not None:
        panels.append((f"Remedied: {remedy_title}", fixed, p_fixed))
    for column, (title, picture, probs) in zip(cols, panels):
        p_target = float(probs[target.index])
        delta = None if title == "Original" else f"{p_target - target.probability:+.2f}"
        column.image(picture, caption=title, width="stretch")
        column.metric(f"P({target.name})", f"{p_target:.2f}", delta=delta,
                      help="Probability of the original image's top class.")
        top5(column, probs, "top-5 probability")
    if p_fixed is None:
        cols[2].info("Turn on a remedy above (equalisation, gray-world, TTA) to see what it recovers.", icon="🩹")
    if subject.truth is not None:
        st.caption(f"True class of this synthetic image: **{subject.truth.name}**. The red bar is the original "
                   f"image's top class, **{target.name}**, followed through every panel.")
    else:
        st.caption(f"The red bar is the original image's top class, **{target.name}**, followed through every panel.")

    if steps or tta:  # each remedy alone and together: what does each buy back?
        rows = [{"image": "original", "P": float(target.probability)},
                {"image": "perturbed", "P": float(p_seen[target.index])}]
        for s in steps:
            alone = cp.remedied(digest, key, seen, (s,))
            p = cp.class_probs(model_name, digest, cp.settings_key(occ, light, (s,)), clf, alone)
            rows.append({"image": f"+ {EQUALISERS.get(s, s)}", "P": float(p[target.index])})
        if tta:
            p = cp.class_probs(model_name, digest, cp.settings_key(occ, light, ("tta",)), clf, seen, True)
            rows.append({"image": "+ TTA", "P": float(p[target.index])})
        if len(remedy_names) > 1:
            rows.append({"image": f"+ {remedy_title}", "P": float(p_fixed[target.index])})
        st.markdown(f"**What each remedy recovers** — probability of *{target.name}*")
        bars([{**r, "P": round(r["P"], 4)} for r in rows], x="P", y="image", title=f"P({target.name})")

# --- detector mode -----------------------------------------------------------------------------
else:
    import numpy as np

    from core import detection as det
    from core.annotate import BoxAnnotator

    conf = url.slider("conf", CONF)
    with st.spinner(f"Running {det_name}…"):
        c_orig = cm.detect(det_name, device, digest, lab_image)
        c_seen = cp.detect_rgb(det_name, device, digest, key, seen)
        c_fixed = cp.detect_rgb(det_name, device, digest, cp.settings_key(occ, light, steps), fixed) if steps else None
    if truth is not None:
        ref_boxes, ref_labels, ref_what = truth.boxes, truth.labels, "true objects"
    else:
        ref = det.select(c_orig.detections, conf=0.25, iou=0.7).kept
        ref_boxes, ref_labels, ref_what = ref.boxes, ref.labels, "objects found on the original (score > 0.25)"
    categories = c_orig.detections.categories
    draw = BoxAnnotator()
    truth_draw = BoxAnnotator(colour=(0, 200, 0), dashed=True, show_scores=False)
    patch_draw = BoxAnnotator(colour=(255, 0, 255), show_labels=False, show_scores=False, dashed=True)
    panels = [("Original", rgb, c_orig), ("Perturbed", seen, c_seen)]
    if c_fixed is not None:
        panels.append((f"Remedied: {remedy_title}", fixed, c_fixed))
    cols = st.columns(3)
    scores = {}
    for column, (title, picture, cands) in zip(cols, panels):
        kept = det.select(cands.detections, conf=conf, iou=0.7).kept
        base = truth_draw.annotate(picture, truth) if truth is not None else picture
        if title != "Original" and patch[2] > patch[0]:
            base = patch_draw.annotate(base, det.Detections(np.float32([patch]), np.ones(1, np.float32),
                                                            np.zeros(1, np.int64), ("occluder",)))
        column.image(draw.annotate(base, kept), caption=f"{title}: {len(kept)} boxes above {conf:.2f}", width="stretch")
        scores[title] = P.best_scores(cands.detections, ref_boxes, ref_labels)
        if len(ref_boxes):
            column.metric("Mean best score of the reference objects", f"{scores[title].mean():.2f}",
                          delta=None if title == "Original"
                          else f"{scores[title].mean() - scores['Original'].mean():+.2f}")
    if c_fixed is None:
        cols[2].info("Turn on equalisation or gray-world above to see what it recovers.", icon="🩹")
    if len(ref_boxes):
        covered = P.covered_fraction(ref_boxes, patch)
        table = []
        for i in range(len(ref_boxes)):
            row = {"object": f"{i + 1}. {categories[int(ref_labels[i])]}", "covered by occluder": f"{covered[i]:.0%}"}
            row.update({f"best score · {t.split(':')[0].lower()}": round(float(s[i]), 3) for t, s in scores.items()})
            table.append(row)
        st.markdown(f"**Per object** ({ref_what}): the best score of any box of the same class overlapping it "
                    "by IoU ≥ 0.5, before NMS; 0 = the detector lost it.")
        st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.caption("No object was found on the original image above 0.25, so there is nothing to follow.")
    st.caption(f"{cm.detector(det_name, device).title}; the magenta dashed square is the occluder. In video "
               "(Q32) a tracker carries a hidden object on: its motion model predicts the box, the track is kept "
               "alive for some frames, and low-score boxes like the ones above are still matched (ByteTrack).")

# --- robustness sweep ----------------------------------------------------------------------------
st.subheader("Robustness curves")
if mode == "classifier":
    st.caption(f"Probability of the original top class (*{target.name}*) as each change grows from none (0) to "
               "its strongest (1). One batch of forward passes per 16 images; the occluder curve grows a patch "
               "with your fill at your occluder's position.")
else:
    st.caption("Mean best score of the reference objects as each change grows from none (0) to its strongest (1); "
               "one detector pass per image. The occluder curve grows a patch at your occluder's position.")
sweep_key = (mode, model_name, digest, occ.x, occ.y, occ.fill)
curves = P.sweeps(occ, steps=7 if mode == "classifier" else 5)  # a detector runs image by image
n_sweep = 1 + sum(len(c.values) - 1 for c in curves)
run_sweep = st.button("Run the sweep", icon="📈", help=f"{n_sweep} images through the model (seconds).")
if run_sweep:
    if mode == "classifier":
        score = cp.classifier_score(clf, target.index)
    else:
        score = cp.detector_score(det_name, device, ref_boxes, ref_labels)
    bar = st.progress(0.0, text="Sweeping…")
    try:
        with cp.HEAVY.slot(session_id()) as deadline:
            def progress(fraction: float, message: str) -> None:
                deadline.check()
                bar.progress(fraction, text=message)

            st.session_state["occ.sweep"] = (sweep_key, P.run_sweep(rgb, curves, score, progress=progress))
    except (JobRefused, JobTimeout) as exc:
        st.warning(str(exc))
    bar.empty()
stored = st.session_state.get("occ.sweep")
if stored and stored[0] == sweep_key:
    rows = stored[1]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "strength", "type": "quantitative", "title": "strength (0 = unchanged, 1 = strongest)"},
            "y": {"field": "score", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "title": "P(original top class)" if mode == "classifier" else "mean best score"},
            "color": {"field": "curve", "type": "nominal", "title": None},
            "tooltip": [{"field": "curve"}, {"field": "parameter"}, {"field": "value"},
                        {"field": "score", "format": ".3f"}],
        },
        "height": 320,
    }, width="stretch")
    worst = min((r for r in rows if r["strength"] == 1.0), key=lambda r: r["score"])
    st.caption(f"Most damaging at full strength: **{worst['curve']}** ({worst['parameter']} {worst['value']:g}) "
               f"→ {worst['score']:.2f}. Hover a point for the parameter value.")
    st.download_button("Download the curves (CSV)", lambda rows=rows: rows_csv(rows),
                       file_name="robustness_curves.csv",
                       mime="text/csv", key="occ.sweep_csv")
elif stored is None:
    st.caption("Press *Run the sweep* to draw the curves for this image.")
else:
    st.caption("The image, model or occluder position changed since the last sweep: run it again.")

# --- occlusion sensitivity (captum) ----------------------------------------------------------------
st.subheader("Occlusion sensitivity map")
if mode != "classifier":
    st.caption("This map is computed for the classifier: switch the model above to *Classifier*.")
else:
    w_col, s_col, b_col = st.columns(3)
    win = url.slider("win", WIN, w_col)
    stride = url.slider("stride", STRIDE, s_col)
    side_px = clf.input_size or min(rgb.shape[:2])
    n_eval = P.occlusion_windows(side_px, *P.occlusion_geometry(side_px, win / 100, stride / 100))
    map_key = (model_name, digest, target.index, win, stride)
    fill_rgb = ", ".join(str(round(255 * m)) for m in clf.mean)  # 0 after the model's normalisation
    if b_col.button(f"Compute ({n_eval} forward passes)", icon="🗺️",
                    help=f"captum's Occlusion: a window of the colour the model normalises to zero (its "
                         f"normalisation mean, RGB {fill_rgb}) slides over the network's input; each place is "
                         "coloured by how much the probability of the top class drops."):
        try:
            with cp.HEAVY.slot(session_id()), st.spinner(f"Occluding {n_eval} windows…"):
                cp.occlusion(model_name, digest, target.index, win / 100, stride / 100, clf, rgb)
            st.session_state["occ.map"] = map_key
        except JobRefused as exc:
            st.warning(str(exc))
    if st.session_state.get("occ.map") == map_key:
        omap = cp.occlusion(model_name, digest, target.index, win / 100, stride / 100, clf, rgb)
        m1, m2 = st.columns(2)
        m1.image(omap.seen, caption=f"What the network sees ({omap.seen.shape[1]} px)", width="stretch")
        m2.image(P.overlay_signed(omap.seen, omap.drop), width="stretch",
                 caption=f"Red: covering here lowers P({target.name}) (max drop {omap.drop.max():.2f}); "
                         f"blue: raises it. Window {omap.window} px, stride {omap.stride} px.")
        hot = P.hottest_spot(omap.drop, omap.window)

        def move_occluder(hot=hot, size=win / 100) -> None:
            st.session_state["occ.ox"], st.session_state["occ.oy"] = hot
            st.session_state["occ.size"] = round(max(size, 0.05), 2)

        st.button("Put the occluder on the most sensitive spot", on_click=move_occluder,
                  help="Moves the occluder sliders above to the window that hurts most.")
    else:
        st.caption("Press the button to compute the map for these window and stride settings (cached afterwards).")

url.sync()
page.close()
