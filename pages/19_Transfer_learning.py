"""Transfer learning (Q3, Q18, Q48): a backbone trained on one task reused on another with a few
labels - frozen + new head vs full fine-tuning vs from scratch on synthetic shapes, and frozen
EfficientNet-Lite0 (ImageNet) features + a new head on your own images."""

import streamlit as st

from components.frame import lab_page
from components import models as cm
from components import transfer as ct
from components.classifier import SHORT, choose_model, classifier, model_caption
from components.ui import run_job, train_button, weights_missing
from components.urlstate import UrlState
from core import transfer as tl  # numpy only at import; torch inside functions
from core.params import Param
from core.safetext import literal
from core.tables import rows_csv

page = lab_page("transfer-learning")
ctx = page.ctx

CROP = Param(default=0, kind=int, lo=0, hi=299, step=1, label="Held-out target crop #",
             help="One of the 300 held-out target crops every accuracy below is measured on.")
KMAX = Param(default=20, kind=int, choices=ct.KMAX_CHOICES, label="Largest number of labelled examples per class",
             help="The sweep trains at every count of 1, 2, 5, 10, 20, 50 up to this one.")
STEPS = Param(default=tl.Recipe.steps, kind=int, lo=10, hi=150, step=10, label="Optimiser steps per run",
              help="Adam, batches of up to 32 crops; the same number of steps for every run.")
SEED = Param(default=tl.Recipe.seed, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Which labelled examples are drawn, the new head's initialisation and the "
                  "batch order; all three regimes share it.")
NCLS = Param(default=2, kind=int, lo=2, hi=5, step=1, label="Number of classes")

url = UrlState("tl")
model = choose_model(shapes=False)  # section 3's backbone: EfficientNet-Lite0 unless chosen otherwise
cm.require_shipped("shapes-pretext")
metrics = ct.pretext_metrics()
src_names, tgt_names = tl.class_names(tl.SOURCE_CLASSES), tl.class_names(tl.TARGET_CLASSES)
st.info(f"**Sections 1 and 2 use a backbone this project trained itself, on a different task**: telling "
        f"**{', '.join(src_names)}** apart (registry model `shapes-pretext`, {metrics.get('n_train', 1500)} synthetic "
        f"crops, {metrics.get('test_accuracy', float('nan')):.0%} held-out on its own task). It is small enough to "
        f"fine-tune and to train from scratch here in seconds. The target task is **{', '.join(tgt_names)}**: shapes "
        f"that network has never seen. Section 3 uses **{SHORT[model]}**, pretrained on ImageNet, on your own "
        "photos.", icon="🎓")

# --- 1. Source task vs target task ---------------------------------------------------------------
st.subheader("1 · Source task and target task")
crops = ct.samples(6)
for key, title in (("source", "Source task (what the backbone was trained on)"),
                   ("target", "Target task (new classes, only a few labels)")):
    images, names = crops[key]
    st.markdown(f"**{title}**")
    st.image(list(images), caption=names, width=96)

c_pick, c_probs, c_photo = st.columns([2, 3, 3])
with c_pick:
    index = int(url.number_input("crop", CROP))
    crop, truth, probs = ct.pretext_view(index)
    st.image(crop, caption=f"a {truth}", width=160)
with c_probs:
    st.markdown(f"**What the source network 'thinks' this {truth} is**")
    ct.probability_bars(src_names, probs)
    best = max(range(3), key=lambda i: probs[i])
    st.caption(f"It can only answer {', '.join(src_names)}: it calls the {truth} a **{src_names[best]}** "
               f"({probs[best]:.0%}). Its last layer is useless here, but the edge and corner detectors before "
               "it may still be useful: that is what the sections below measure.")
with c_photo:
    photo = ct.pretext_on_photo(ctx.image.digest, ctx.image.work)
    st.markdown(f"**...and your active image ({literal(ctx.image.title)})**")
    ct.probability_bars(src_names, photo)
    st.caption("Squashed to 64 × 64 px, your photo is still forced into one of the three source shapes: a network "
               "only knows the categories it was trained on.")

# --- 2. The few-shot sweep ----------------------------------------------------------------------
st.subheader("2 · Few labels: frozen backbone, fine-tuning, or from scratch")
c_k, c_s, c_seed = st.columns([3, 3, 1])
kmax = int(url.select_slider("kmax", KMAX, c_k))
steps = int(url.slider("steps", STEPS, c_s))
seed = int(url.number_input("seed", SEED, c_seed))
shots = tuple(k for k in (1, 2, 5, 10, 20, 50) if k <= kmax)
st.markdown(
    f"For each of **{', '.join(map(str, shots))}** labelled crops per target class, three networks with the same "
    f"architecture, the same new 3-way head (seed {seed}), the same examples and batch order train for {steps} steps: "
    f"**(1)** the source network's convolutional layers **frozen** (their features computed once), only the new "
    f"linear head trains, lr {tl.Recipe().lr:g}; **(2)** **full fine-tuning** from the pretrained weights (backbone "
    f"lr {tl.Recipe().backbone_lr:g}, head lr {tl.Recipe().lr:g}); **(3)** the same network **from scratch** (random "
    f"weights, lr {tl.Recipe().lr:g} everywhere). Accuracy: 300 held-out target crops.")
expected = 0.004 * steps * sum(min(3 * k, tl.BATCH) for k in shots) + 4  # ~2 ms per crop-step, two regimes
st.caption(f"Takes about {expected:.0f} s on one core of a quiet server (up to twice that when it is busy). "
           "Regime (1) costs almost nothing: most of the time is (2) and (3).")
settings = (shots, steps, seed)
result, stopped = train_button("Run the sweep", key="tl.train", settings=settings,
                               start=lambda bar: ct.run_sweep(*settings, _progress=bar))
if result is None:
    if stopped and stopped.get("partial"):
        st.markdown("**What the stopped run had finished:**")
        ct.accuracy_lines(stopped["partial"], 1 / 3)
    elif stopped is None:
        st.caption("Not run yet for these settings in this session: press the button (results are shared between "
                   "sessions, so settings someone already ran come back at once).")
else:
    rows = result["rows"]
    ct.accuracy_lines(rows, result["chance"])
    by = {(r["shots"], r["regime"]): r for r in rows}
    k_show = 5 if 5 in result["shots"] else result["shots"][-1]
    fz, ft, sc = (by[(k_show, r)]["accuracy"] for r in ("frozen", "finetune", "scratch"))
    m = st.columns(4)
    m[0].metric(f"Frozen + head, {k_show} per class", f"{fz:.0%}", f"{(fz - sc) * 100:+.0f} points vs scratch")
    m[1].metric(f"Fine-tuned, {k_show} per class", f"{ft:.0%}", f"{(ft - sc) * 100:+.0f} points vs scratch")
    m[2].metric(f"From scratch, {k_show} per class", f"{sc:.0%}")
    m[3].metric("Chance (3 classes)", f"{result['chance']:.0%}")
    lines = ["| Examples per class | Frozen + head | Full fine-tuning | From scratch |", "|---|---|---|---|"]
    for k in result["shots"]:
        cell = lambda r: f"{by[(k, r)]['accuracy']:.1%} · {by[(k, r)]['seconds']:.2f} s"
        lines.append(f"| {k} | {cell('frozen')} | {cell('finetune')} | {cell('scratch')} |")
    st.markdown("Held-out accuracy · training time of each run (the frozen backbone's features were computed once "
                "for all runs):\n\n" + "\n".join(lines))
    t_frozen = sum(r["seconds"] for r in rows if r["regime"] == "frozen")
    t_tune = sum(r["seconds"] for r in rows if r["regime"] == "finetune")
    top = result["shots"][-1]
    winner = max(("frozen", "finetune", "scratch"), key=lambda r: by[(top, r)]["accuracy"])
    st.caption(f"Whole sweep: {result['total_seconds']:.0f} s. All frozen-head runs together took {t_frozen:.1f} s, "
               f"the fine-tuning runs {t_tune:.1f} s. At {top} per class the best regime is "
               f"**{tl.REGIMES[winner]}**.")
    st.download_button("Download the sweep (CSV)", lambda: rows_csv(tl.table_rows(result)),
                       file_name=f"transfer_sweep_k{kmax}_s{steps}_seed{seed}.csv", mime="text/csv", key="tl.csv")

# --- 3. Your own images --------------------------------------------------------------------------
st.subheader("3 · Your own images")
err = cm.check_available(model)
if err is None:
    kind, bname = model, SHORT[model]
    with st.spinner(f"Loading {bname}…"):
        clf = classifier(model, ctx.device.torch_device)
        top = ct.imagenet_top(model, ctx.device.torch_device, ctx.image.digest, ctx.image.work)
    model_caption(clf, ctx.image.title)
    c_text, c_top = st.columns([3, 2])
    c_text.markdown(f"Backbone: **{bname}**, frozen: its last stage, averaged over all positions (the vector its "
                    "own ImageNet classifier reads), feeds a new linear head for your classes. Full fine-tuning is "
                    "not offered here: every step would be a forward and backward pass through the whole network "
                    "at 224 × 224 px, for many steps (minutes on a CPU, not seconds), and with a handful of images "
                    "it would overfit. A frozen backbone and a new head is the right first choice anyway.")
    with c_top:
        st.markdown(f"**What its own ImageNet head says about your active image ({literal(ctx.image.title)})**")
        ct.probability_bars([name for name, _ in top], [p for _, p in top], title="ImageNet softmax")
        st.caption(f"Top {len(top)} of ImageNet's {len(clf.categories)} classes. For your classes this head is "
                   "dropped; the numbers it reads are kept.")
else:
    kind, bname = "shapes", "shapes-pretext (trained here on circles, squares, triangles)"
    weights_missing(err)
    st.info("**Offline demonstration.** No ImageNet classifier can be loaded on this server, so your images go "
            "through the shapes backbone (squashed to 64 × 64 px). A network that has only ever seen flat "
            "synthetic shapes is a poor feature extractor for photos: expect it to do little better than raw "
            "pixels. That is itself the lesson - transfer works when the source data resembles the target data.")
ncls = int(url.number_input("classes", NCLS))
url.sync()
names, files = [], []
cols = st.columns(ncls)
for i, col in enumerate(cols):
    with col:
        names.append(st.text_input(f"Class {i + 1} name", value=f"class {i + 1}", max_chars=40, key=f"tl.name{i}"))
        files.append(st.file_uploader(f"Images of class {i + 1}", type=["jpg", "jpeg", "png", "webp", "bmp", "gif",
                                                                         "tif", "tiff", "avif"],
                                      accept_multiple_files=True, key=f"tl.files{i}"))
if not any(files):
    st.caption(f"Sort a few photos into {ncls} classes above (for example 5-10 each of two kinds of object). "
               f"Accuracy is measured by leave-one-out: each image is predicted by a head trained on all the "
               f"others. Up to {tl.MAX_PER_CLASS} images per class are used.")
else:
    images, labels, bad = [], [], []
    for i, group in enumerate(files):
        pairs = [(f.name, f.getvalue()) for f in (group or [])][: tl.MAX_PER_CLASS]
        decoded, errors = tl.decode_files(pairs)
        images += decoded
        labels += [i] * len(decoded)
        bad += errors
    for name, why in bad:
        st.warning(f"Skipped **{literal(name)}**: {literal(why, 300)}", icon="🖼️")
    counts = [labels.count(i) for i in range(ncls)]
    problems = tl.upload_problems(counts, names)
    st.caption(" · ".join(f"{literal(n) or '(no name)'}: {c} image{'s' if c != 1 else ''}"
                          for n, c in zip(names, counts)))
    if problems:
        st.info(" ".join(problems))
    else:
        from core.imageio import image_digest

        key = tuple(image_digest(im) for im in images)
        ukey = (kind, key, tuple(labels), ncls)
        udone = st.session_state.setdefault("_tl.uploads", {})
        if st.button(f"Train heads on {bname} features and on raw pixels (leave-one-out)", key="tl.upload",
                     disabled=ukey in udone):
            out = run_job(lambda bar: ct.run_uploads(kind, ctx.device.torch_device, key, tuple(labels), ncls,
                                                      images, _progress=bar))
            if out is not None:
                udone[ukey] = out
        res = udone.get(ukey)
        if res is not None:
            import numpy as np

            y = np.array(res["labels"])
            acc_f = float((np.array(res["features"]) == y).mean())
            acc_p = float((np.array(res["pixels"]) == y).mean())
            m = st.columns(3)
            m[0].metric(f"Frozen {bname.split(' (')[0]} features + head", f"{acc_f:.0%}",
                        f"{(acc_f - acc_p) * 100:+.0f} points vs raw pixels")
            m[1].metric("Raw 16 × 16 pixels + head (no pretraining)", f"{acc_p:.0%}")
            m[2].metric(f"Chance ({ncls} classes)", f"{1 / ncls:.0%}")
            lines = ["| Class | Images | Correct (features) | Correct (pixels) |", "|---|---|---|---|"]
            for i, n in enumerate(names):
                sel = y == i
                lines.append(f"| {literal(n)} | {int(sel.sum())} | {int((np.array(res['features'])[sel] == i).sum())} "
                             f"| {int((np.array(res['pixels'])[sel] == i).sum())} |")
            st.markdown("\n".join(lines))
            note = (f" With only {len(y)} images each one moves the accuracy by {1 / len(y):.0%}: treat these numbers "
                    "as rough." if len(y) < 30 else "")
            st.caption(f"Leave-one-out over {len(y)} images: features took {res['feature_seconds']:.1f} s "
                       f"({res['feature_dim']} numbers per image), the {len(y)} heads {res['head_seconds']:.1f} s." + note)

page.close()
