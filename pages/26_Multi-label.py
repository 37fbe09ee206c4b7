"""Multi-label (Q50): scenes with several shapes, a sigmoid head vs a softmax head trained live,
per-class thresholds that move precision, recall, F1 and Hamming loss without retraining, and
predictions on a synthetic scene and on the user's photo."""

import streamlit as st

from components.frame import lab_page
from components import models as cm
from components import multilabel as cml
from components.ui import epoch_lines, train_button
from components.urlstate import UrlState
from core import multilabel as ml  # numpy only at import; torch inside functions
from core.params import Param
from core.shapes import SHAPE_CLASSES
from core.tables import rows_csv

F1_TITLE = f"held-out micro-F1 (threshold {ml.THRESHOLD})"

page = lab_page("multi-label")
ctx = page.ctx

N_TRAIN = Param(default=ml.N_TRAIN, kind=int, choices=cml.N_TRAIN_CHOICES, label="Training scenes")
EPOCHS = Param(default=ml.EPOCHS, kind=int, lo=cml.EPOCH_RANGE[0], hi=cml.EPOCH_RANGE[1], step=1, label="Epochs")
SEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Initialisation and shuffling; both heads share it.")
SCENE = Param(default=7, kind=int, lo=0, hi=9999, step=1, label="Scene number",
              help="Each number draws another 96-px scene with 1-4 shapes, drawn like "
                   "the training scenes (but never one of them).")
THRESHOLDS = {name: Param(default=ml.THRESHOLD, lo=0.0, hi=1.0, step=0.05, label=name,
                          help=f"Predict '{name}' when its probability is at least this.") for name in SHAPE_CLASSES}
url = UrlState("ml")

# --- 1. The data ---------------------------------------------------------------------------------
st.subheader("1 · Scenes with several shapes")
left, right = st.columns([2, 3])
with left:
    scene_seed = int(url.number_input("scene", SCENE))
    image, truth = cml.scene(scene_seed)
    present = [c for c, t in zip(SHAPE_CLASSES, truth) if t]
    st.image(image, caption=f"Scene #{scene_seed}: " + ", ".join(present), width=240)
with right:
    st.markdown(
        "Each scene holds one to four shapes, so its label is a **set**: a multi-hot vector over the six "
        f"classes, e.g. `{[int(t) for t in truth]}` here.\n\n"
        "* **Sigmoid head**: six independent probabilities, each trained with binary cross-entropy "
        "(\"is there a circle? is there a star?\"). They need not sum to anything, so several can be high.\n"
        "* **Softmax head**: one distribution over the six classes, trained with cross-entropy against the "
        "multi-hot target divided by its sum (two shapes → ½ and ½). The outputs sum to 1, so at most one "
        "class can pass 0.5: it cannot say \"circle **and** star\" with confidence. We also score it with the "
        "true number of shapes as k (top-k): an oracle a real system does not have.")

# --- 2. Train both heads ----------------------------------------------------------------------------
st.subheader("2 · Train a sigmoid head and a softmax head")
c_n, c_e, c_s = st.columns([3, 3, 1])
n_train = int(url.select_slider("n", N_TRAIN, c_n))
epochs = int(url.slider("epochs", EPOCHS, c_e))
seed = int(url.number_input("seed", SEED, c_s))

st.markdown(f"The same conv net trains twice on the same {n_train} scenes with the same seed and order for "
            f"{epochs} epochs; only the head's loss differs. Both start from the conv blocks of the project's shapes "
            "CNN (trained on one centred shape per crop, so it already has detectors for the six shapes; its global "
            "max pool asks \"does this detector fire anywhere?\") with a fresh, seeded 6-output head; blocks 1-3 stay frozen "
            "(run once per scene), block 4 and the head are trained. Scored on 300 held-out scenes. With the defaults this takes about 25 s on one core (most of it drawing the scenes, done once per size and seed).")
cm.require_shipped("shapes-cnn")
settings = (n_train, epochs, seed)
result, stopped = train_button("Train both heads", key="ml.train", settings=settings,
                               start=lambda bar: cml.run_compare(*settings, _progress=bar))
if result is None:
    if stopped and stopped.get("partial"):
        epoch_lines(stopped["partial"], y="micro_f1", title=F1_TITLE, percent=False, height=240)
    st.caption("Not trained yet for these settings in this session: press the button (results are shared between "
               "sessions). The thresholds below act on the trained heads' held-out probabilities.")
else:
    epoch_lines(result["curve"], y="micro_f1", title=F1_TITLE, percent=False, height=240)
    st.caption(f"Training took {result['seconds']['sigmoid']:.0f} s (sigmoid) and {result['seconds']['softmax']:.0f} s "
               f"(softmax); drawing the scenes (about 20 ms each) is done once per size and seed and shared.")

# --- 3. Thresholds and metrics ---------------------------------------------------------------------
st.subheader("3 · Per-class thresholds")
cols = st.columns(len(SHAPE_CLASSES))
thresholds = [float(url.slider(f"t_{name}", THRESHOLDS[name], col)) for col, name in zip(cols, SHAPE_CLASSES)]
url.sync()
if result is not None:
    board = ml.scoreboard(result, thresholds)
    titles = {"sigmoid": "Sigmoid, your thresholds", "softmax": "Softmax, your thresholds",
              "softmax top-k": "Softmax, top-k (k = true count)"}
    st.dataframe([{"model": titles[k], "micro P": m["micro"]["precision"], "micro R": m["micro"]["recall"],
                   "micro F1": m["micro"]["f1"], "macro P": m["macro"]["precision"], "macro R": m["macro"]["recall"],
                   "macro F1": m["macro"]["f1"], "Hamming loss": m["hamming_loss"],
                   "exact set": m["subset_accuracy"]} for k, m in board.items()],
                 hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in
                                ("micro P", "micro R", "micro F1", "macro P", "macro R", "macro F1", "Hamming loss",
                                 "exact set")})
    s, x = board["sigmoid"], board["softmax"]
    m = st.columns(4)
    m[0].metric("Sigmoid micro-F1", f"{s['micro']['f1']:.3f}", f"{s['micro']['f1'] - x['micro']['f1']:+.3f} vs softmax")
    m[1].metric("Sigmoid macro-F1", f"{s['macro']['f1']:.3f}")
    m[2].metric("Sigmoid Hamming loss", f"{s['hamming_loss']:.3f}", help="Share of the (scene, class) decisions "
                "that are wrong. Lower is better.")
    m[3].metric("Softmax Hamming loss", f"{x['hamming_loss']:.3f}")
    st.caption(f"Held-out: {len(result['targets'])} scenes, {int(result['targets'].sum())} shape labels. Micro pools "
               "every (scene, class) decision; macro averages the six classes' scores, so a rare or hard class counts "
               "as much as an easy one. Moving a slider only re-scores the stored probabilities: no retraining.")
    st.markdown("**Per class (sigmoid head)**")
    per = [{**r, "threshold": t} for r, t in zip(s["per_class"], thresholds)]
    st.dataframe(per, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("precision", "recall", "f1")})
    st.download_button("Download per-class table (CSV)", lambda: rows_csv(per), file_name=f"multilabel_n{n_train}_e{epochs}_s{seed}.csv",
                       mime="text/csv", key="ml.csv")

    # --- 4. Predictions on images ------------------------------------------------------------------
    st.subheader("4 · Predictions on a scene and on your photo")
    models = {h: cml.trained(h, settings, result["state"][h]) for h in ml.HEADS}
    photo = cml.photo96(ctx.image.digest, ctx.image.work)
    for title, img, key, tr in ((f"Scene #{scene_seed}", image, f"scene-{scene_seed}", truth),
                                (ctx.image.title, photo, ctx.image.digest, None)):
        st.markdown(f"**{title}**" + ("" if tr is not None else " — the network only knows the six synthetic shapes: "
                                       "on a real photo its answers say which shape detectors fire, nothing more."))
        c0, c1, c2 = st.columns([1, 2, 2])
        c0.image(img, width=140)
        for col, head in ((c1, "sigmoid"), (c2, "softmax")):
            with col:
                p = cml.predict(head, settings, key, models[head], img)
                st.caption(f"{ml.HEAD_TITLES[head]} (sum {p.sum():.2f}); red tick = threshold")
                cml.probability_bars(p, thresholds, SHAPE_CLASSES, tr)

page.close()
