"""Noise and outliers (Q39): noisy pixels vs denoisers, and noisy labels vs a robust loss, live."""

import math

import streamlit as st

from components.frame import lab_page
from components import noise as cn
from components.classifier import active_subject
from components.session import session_id
from components.urlstate import UrlState
from core import noise as N
from core.jobs import JobRefused, JobTimeout
from core.params import Param

page = lab_page("noise-outliers")
ctx = page.ctx

url = UrlState("noise")
KIND = Param(default="gaussian", kind=str, choices=tuple(N.NOISE_KINDS), label="Corruption")
STRENGTH_HELP = "JPEG: lower quality is stronger. Everything is recomputed from the clean image."
SEED = Param(default=0, kind=int, lo=0, hi=9999, step=1, label="Noise seed",
             help="The same seed gives exactly the same noise, so a rerun is stable.")
LABEL_NOISE = Param(default=N.LABEL_NOISE_DEFAULT, kind=int, lo=0, hi=80, step=10,
                    label="Training labels flipped to a wrong class (%)")
ROBUST = Param(default="sce", kind=str, choices=tuple(k for k in N.LABEL_LOSSES if k != "ce"), label="Robust loss")
TRAIN_SEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Training seed")


def strength_param(kind: str) -> Param:
    """The strength slider of one corruption, declared from its NoiseKind (limits, step, default, unit)."""
    spec = N.NOISE_KINDS[kind]
    return Param(default=spec.default, lo=spec.lo, hi=spec.hi, step=spec.step, label=f"Strength: {spec.unit}",
                 help=STRENGTH_HELP)


def _bars(rows: list[dict], *, field: str, title: str, fmt: str, domain=None) -> dict:
    x = {"field": field, "type": "quantitative", "title": title, "axis": {"format": fmt}}
    if domain:
        x["scale"] = {"domain": domain}
    return {"data": {"values": rows}, "mark": {"type": "bar", "tooltip": True},
            "encoding": {"y": {"field": "variant", "type": "nominal", "sort": None, "title": None},
                         "x": x, "color": {"field": "variant", "type": "nominal", "legend": None, "sort": None}},
            "height": {"step": 22}}


# --- 1. Noisy pixels --------------------------------------------------------------------
st.header("1 · Noisy pixels and denoisers")
subject = active_subject(ctx, url)
clf = subject.classifier
left, mid, right = st.columns([1.2, 2, 1])
kind = url.selectbox("kind", KIND, left, format_func=lambda k: N.NOISE_KINDS[k].title)
spec = N.NOISE_KINDS[kind]
strength = url.slider(kind, strength_param(kind), mid)
seed = int(url.number_input("seed", SEED, right))

truth_index = subject.truth.label if subject.truth is not None else None
with st.spinner("Adding noise, denoising and classifying the five versions…"):
    comp = cn.comparison(clf.name, subject.digest, kind, float(strength), seed, truth_index, clf, subject.image)
target = clf.categories[comp.class_index]
url.sync()

who = "the true class" if subject.truth is not None else "the clean image's top class"
st.caption(f"Confidence = {clf.title}'s probability for **{target}** ({who}). PSNR is measured against the "
           f"clean image at {comp.variants['clean'].image.shape[1]}×{comp.variants['clean'].image.shape[0]} px; "
           "the denoisers do not know which noise was added (bilateral and non-local means estimate its level).")
cols = st.columns(len(comp.variants))
for col, v in zip(cols, comp.variants.values()):
    with col:
        st.image(v.image, width="stretch")
        st.markdown(f"**{v.title}**")
        db = "∞ (reference)" if math.isinf(v.psnr) else f"{v.psnr:.1f} dB"
        col.metric("PSNR", db)
        col.metric(f"P({target})", f"{v.confidence:.1%}")
        if v.top_index != comp.class_index:
            st.caption(f"Now predicts **{clf.categories[v.top_index]}** ({v.top_probability:.0%})")

st.caption("Denoisers: " + " · ".join(N.DENOISERS.values()) + ".")

rows = [{"variant": v.title, "PSNR (dB)": None if math.isinf(v.psnr) else round(v.psnr, 2),
         "confidence": round(v.confidence, 4)} for v in comp.variants.values()]
a, b = st.columns(2)
with a:
    st.markdown("**PSNR against the clean image** (higher = closer)")
    st.vega_lite_chart(_bars([r for r in rows if r["PSNR (dB)"] is not None], field="PSNR (dB)",
                             title="PSNR (dB)", fmt=".0f"), width="stretch")
with b:
    st.markdown(f"**Confidence in {target}**")
    st.vega_lite_chart(_bars(rows, field="confidence", title=f"P({target})", fmt=".0%", domain=[0, 1]),
                       width="stretch")

with st.spinner(f"Sweeping {spec.title.lower()} over {len(spec.sweep)} strengths…"):
    curve = cn.sweep(clf.name, subject.digest, kind, seed, comp.class_index, clf, subject.image)
sweep_rows = [{"strength": s, "version": name, "confidence": c}
              for name, key in (("noisy", "noisy"), ("median-filtered", "median"))
              for s, c in zip(curve["strength"], curve[key])]
st.markdown(f"**Confidence in {target} as the {spec.title.lower()} grows** (same seed; "
            f"{'quality falls to the right' if spec.stronger_is_lower else 'stronger to the right'})")
st.vega_lite_chart({
    "data": {"values": sweep_rows},
    "mark": {"type": "line", "point": True, "tooltip": True},
    "encoding": {
        "x": {"field": "strength", "type": "quantitative", "title": spec.unit,
              "scale": {"reverse": spec.stronger_is_lower}},
        "y": {"field": "confidence", "type": "quantitative", "title": f"P({target})",
              "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}},
        "color": {"field": "version", "type": "nominal", "title": None},
    },
    "height": 260,
}, width="stretch")
st.download_button("Download this comparison (CSV)",
                   lambda: "variant,psnr_db,confidence\n" + "".join(
                       f"{r['variant']},{'' if r['PSNR (dB)'] is None else r['PSNR (dB)']},{r['confidence']}\n"
                       for r in rows),
                   file_name=f"noise_{kind}_{strength:g}.csv", mime="text/csv")

# --- 2. Noisy labels ----------------------------------------------------------------------
st.header("2 · Noisy labels: memorisation and a robust loss")
live_note = (f"{clf.title.split(' (')[0]} was trained on 1.3 million ImageNet photos; retraining it with wrong "
             "labels is far beyond a live demo, so this experiment trains small networks here instead. "
             if clf.kind == "imagenet" else "")
st.markdown(
    f"{live_note}Three fresh shapes CNNs are trained the same way on {N.LABEL_TRAIN} synthetic 64-px crops for "
    f"{N.LABEL_EPOCHS} epochs (same seed, so the same initial weights and batches); only the labels and the loss "
    f"differ. A small set trained for many epochs is the regime in which a network learns its wrong labels by "
    f"heart. Accuracy is always measured on {N.LABEL_TEST} **clean** held-out crops.")
a, b, c = st.columns([2, 2, 1])
pct = url.slider("flip", LABEL_NOISE, a)
robust = url.selectbox("loss", ROBUST, b, format_func=lambda k: N.LABEL_LOSSES[k])
train_seed = int(url.number_input("tseed", TRAIN_SEED, c))
url.sync()

settings = [(0, "ce"), (pct, "ce"), (pct, robust)]
names = {settings[0]: "clean labels · cross-entropy", settings[1]: f"{pct} % flipped · cross-entropy",
         settings[2]: f"{pct} % flipped · {N.LABEL_LOSSES[robust]}"}
size = dict(seed=train_seed, n_train=N.LABEL_TRAIN, epochs=N.LABEL_EPOCHS)
runs = {s: cn.stored_run(*s, **size) for s in dict.fromkeys(settings)}
missing = [s for s, r in runs.items() if r is None]
if missing:
    st.caption(f"{len(missing)} of these models {'is' if len(missing) == 1 else 'are'} not trained yet "
               f"(about 15 s each on one CPU core; results are kept per setting and seed, so each trains once).")
    if st.button("Train the models", type="primary", icon="🏋️"):
        bar = st.progress(0.0, text="Preparing the synthetic crops…")
        try:
            cn.label_noise_runs(list(dict.fromkeys(settings)), n_test=N.LABEL_TEST, session=session_id(),
                                bar=bar, **size)
        except (JobRefused, JobTimeout) as err:
            bar.empty()
            st.warning(str(err), icon="⏳")
        else:
            st.rerun()  # draw the results without the button

if not missing:
    named = {names[s]: runs[s] for s in settings}
    st.vega_lite_chart({
        "data": {"values": N.curves(named)},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative", "axis": {"tickMinStep": 1}},
            "y": {"field": "accuracy", "type": "quantitative", "title": "clean test accuracy",
                  "axis": {"format": ".0%"}},
            "color": {"field": "run", "type": "nominal", "title": None, "sort": list(named)},
        },
        "height": 280,
    }, width="stretch")
    cols = st.columns(3)
    for col, (name, r) in zip(cols, named.items()):
        col.metric(name, f"{r.test_accuracy:.1%}", help=f"Clean test accuracy after the last epoch; trained in {r.seconds:.0f} s.")
        if len(r.flipped):
            col.caption(f"On its {len(r.flipped)} flipped training crops it predicts the **wrong label it was "
                        f"taught** for {r.memorised:.0%} (memorised) and the **true class** for {r.corrected:.0%}.")
        else:
            col.caption("No flipped labels: the reference.")
    noisy_ce = runs[settings[1]]
    if len(noisy_ce.flipped):
        st.markdown("**Some flipped training crops**: the label the models were taught, the true class, and "
                    "what each trained model says now.")
        with st.spinner("Drawing the training crops…"):
            data = cn.training_data(N.LABEL_TRAIN, N.LABEL_TEST, train_seed)
        from core.shapes import SHAPE_CLASSES

        show = st.columns(8)
        for j, col in enumerate(show):
            if j >= len(noisy_ce.flipped):
                break
            i = int(noisy_ce.flipped[j])
            crop = (data.x_train[i].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            col.image(crop, width="stretch")
            rb = runs[settings[2]]

            def verdict(r, j=j):
                said = SHAPE_CLASSES[r.predicted[j]]
                return f"{said} (taught)" if r.predicted[j] == r.given[j] else (
                    f"{said} ✓" if r.predicted[j] == r.true[j] else said)

            col.caption(f"taught **{SHAPE_CLASSES[noisy_ce.given[j]]}**, is **{SHAPE_CLASSES[noisy_ce.true[j]]}**  \n"
                        f"CE says {verdict(noisy_ce)}  \nrobust says {verdict(rb)}")

page.close()
