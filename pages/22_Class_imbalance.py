"""Class imbalance (Q17, Q35, Q47): skew a shapes training set, train plain CE, class-weighted CE,
focal loss and oversampling on it, and compare them on a balanced test set; then move the
minority class's decision threshold without retraining."""

from dataclasses import replace

import streamlit as st

from components.frame import lab_page
from components import imbalance as ci
from components.ui import grouped_bars, train_button
from components.urlstate import UrlState
from core import imbalance as im  # numpy only at import; torch inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("class-imbalance")
ctx = page.ctx

CLASSES = list(im.CLASSES)
RATIO = Param(default=10, kind=int, lo=1, hi=100, step=1, label="Imbalance ratio (majority : minority)",
              help="Every other class is drawn `ratio` times as often as the minority class.")
MINORITY = Param(default=im.CLASSES[im.MINORITY], kind=str, choices=tuple(CLASSES), label="Minority class")
N_TRAIN = Param(default=1000, kind=int, choices=ci.N_TRAIN_CHOICES, label="Training crops")
EPOCHS = Param(default=6, kind=int, lo=1, hi=12, step=1, label="Epochs")
GAMMA = Param(default=2.0, lo=0.0, hi=5.0, step=0.5, label="Focal loss γ",
              help="loss = −(1 − p_t)^γ · log p_t. γ = 0 is plain cross-entropy.")
SEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Draws the data, the initial weights and the batch order; every method shares it.")
# The label names the chosen minority class: {m} is filled in where the slider is drawn.
THRESH = Param(default=0.5, lo=0.01, hi=0.99, step=0.01,
               label="Predict {m} when p({m}) ≥ t, else the most probable other class")

url = UrlState("imb")

# --- 1. The data --------------------------------------------------------------------------------
st.subheader("1 · An imbalanced training set")
c_r, c_m, c_n, c_s = st.columns([4, 2, 2, 1])
ratio = int(url.slider("ratio", RATIO, c_r))
minority_name = url.selectbox("minority", MINORITY, c_m)
n_train = int(url.select_slider("n", N_TRAIN, c_n))
seed = int(url.number_input("seed", SEED, c_s))
minority = CLASSES.index(minority_name)
counts = ci.train_counts(n_train, ratio, minority, seed)
weights = im.inverse_frequency_weights(counts)
left, right = st.columns([3, 2])
with left:
    ci.histogram(counts, CLASSES, minority)
    st.caption(f"{n_train} training crops (32 px) of {len(CLASSES)} shapes; **{minority_name}**: {counts[minority]} "
               f"crops ({counts[minority] / n_train:.1%}). The test set is **balanced**: "
               "60 crops of every class, drawn from other seeds.")
with right:
    images, labels = ci.sample_crops(ratio, minority, seed)
    st.image(list(images), caption=[CLASSES[i] for i in labels], width=64)
    st.caption("The first 12 training crops: a random sample of the training set, so the minority class is rare "
               "here too.")
if counts[minority] == 0:
    st.warning(f"At this ratio the training set holds **no {minority_name}** at all: no method can learn a class it "
               "never sees. Lower the ratio or add training crops.")
n_test = 60 * len(CLASSES)
rare_test = n_test * float(im.prior(ratio, minority)[minority])
st.markdown(
    f"Why a balanced test set? Drawn with the training mix, {n_test} test crops would hold about "
    f"{rare_test:.0f} {minority_name}s, and its recall would move in steps of {100 / max(rare_test, 1):.0f} points. "
    "Equal counts measure every class equally well; the accuracy a user would see on data drawn **like the "
    "training set** is then computed exactly from the per-class recalls (Σ prior × recall).")

# --- 2. The methods -----------------------------------------------------------------------------
st.subheader("2 · Four ways to train on it")
c_meth, c_g, c_e = st.columns([4, 2, 2])
methods = c_meth.multiselect("Methods", im.METHODS, default=list(im.METHODS), key="imb.methods")
gamma = float(url.slider("gamma", GAMMA, c_g))
epochs = int(url.slider("epochs", EPOCHS, c_e))
url.sync()
st.markdown(
    "- **plain CE**: cross-entropy, every crop counts the same — the baseline.\n"
    "- **class-weighted CE**: each crop's loss × w(class), with w = N / (C · n_class) (inverse frequency, "
    "normalised so the average weight per crop is 1): "
    + ", ".join(f"{c} **{w:.2f}**" for c, w in zip(CLASSES, weights)) + ".\n"
    f"- **focal loss** (γ = {gamma:g}): down-weights crops the model already gets right, whichever class they are.\n"
    "- **oversampling**: the same number of crops per epoch, drawn with replacement with probability ∝ "
    "1 / n_class (what `WeightedRandomSampler` does), so every class is seen equally often — the minority's "
    f"{counts[minority]} crops repeated about {n_train / len(CLASSES) / max(counts[minority], 1):.0f} times each.\n\n"
    f"All of them start from the same weights (seed {seed}) and take the same number of optimiser steps.")

# --- 3. Train ----------------------------------------------------------------------------------
settings = (n_train, ratio, minority, tuple(m for m in im.METHODS if m in methods), gamma, epochs, seed)
secs = 1 + 0.65 * len(methods) * n_train * epochs / 1000  # measured: 1000 crops x 6 epochs ~ 3.9 s a method
st.caption(f"About {secs:.0f} s on one quiet core ({len(methods)} short runs of {epochs} epochs on {n_train} crops; "
           "longer while other users train). Results are shared between sessions, so settings someone already "
           "trained come back at once.")
result, stopped = train_button("Train the chosen methods", key="imb.train", settings=settings, disabled=not methods,
                               start=lambda bar: ci.run_compare(*settings, _progress=bar))
if stopped and stopped.get("partial"):
    st.markdown("Finished before the stop: " + "; ".join(
        f"**{name}** minority recall {p['minority_recall']:.0%}, balanced accuracy {p['balanced_accuracy']:.1%}"
        for name, p in stopped["partial"].items()))
if not methods:
    st.info("Choose at least one method.")
elif result is None:
    st.caption("Not trained yet for these settings in this session: press the button.")
else:
    prior = im.prior(ratio, minority)
    y = result["y_test"]
    names = list(result["methods"])

    st.subheader("4 · Per-class recall on the balanced test set")
    per = {name: im.scores(y, im.predict(r["probs"]))["recall"] for name, r in result["methods"].items()}
    grouped_bars({"class": CLASSES, **{n: [round(100 * v) for v in per[n]] for n in names}},
                 category="class", series=names, unit="recall (%)")
    rows = im.summary_rows(result, prior)
    table = ["| Method | Accuracy at the training mix | Balanced accuracy | Macro-F1 | "
             f"{minority_name} recall | {minority_name} precision | {minority_name} AP | Train time |",
             "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['method']} | {r['accuracy_at_training_mix']:.1%} | {r['balanced_accuracy']:.1%} | "
              f"{r['macro_f1']:.3f} | {r['minority_recall']:.0%} | {r['minority_precision']:.0%} | "
              f"{r['average_precision_minority']:.2f} | {r['train_seconds']:.1f} s |" for r in rows]
    st.markdown("\n".join(table))
    prior_never = float(1.0 - prior[minority])
    st.caption(f"Why plain accuracy lies: on data drawn like the training set ({ratio} : 1), a model that **never** "
               f"predicts {minority_name} and is perfect on the rest scores {prior_never:.1%} accuracy. Balanced "
               "accuracy (mean per-class recall) and macro-F1 give the rare class the same say as the others. "
               f"AP = average precision of the {minority_name} scores (threshold-free: how well the model ranks "
               f"{minority_name} crops above the rest). {result['seconds']:.0f} s in all.")

    st.subheader("5 · Confusion matrices (argmax)")
    cols = st.columns(len(names))
    for col, name in zip(cols, names):
        with col:
            ci.confusion_heatmap(im.scores(y, im.predict(result["methods"][name]["probs"]))["confusion"],
                                 CLASSES, name)
    st.caption("Rows: true class, columns: predicted class; numbers are test crops (60 per row).")

    st.subheader(f"6 · Tune the {minority_name} threshold (no retraining)")
    t = float(url.slider("t", replace(THRESH, label=THRESH.label.format(m=minority_name))))
    url.sync()
    curves, points, live = [], [], []
    for name in names:
        probs = result["methods"][name]["probs"]
        pr = im.pr_curve(probs[:, minority], y == minority)
        curves += [{"method": name, "step": i, "recall": float(r), "precision": float(p), "threshold": float(th)}
                   for i, (r, p, th) in enumerate(zip(pr["recall"], pr["precision"], pr["threshold"]))]
        s_t = im.scores(y, im.predict(probs, minority, t))
        s_a = im.scores(y, im.predict(probs))
        points.append({"method": name, "recall": float(s_t["recall"][minority]),
                       "precision": float(s_t["precision"][minority]), "threshold": t})
        live.append({"method": name, "threshold": t, "minority_recall_argmax": float(s_a["recall"][minority]),
                     "minority_recall": float(s_t["recall"][minority]),
                     "minority_precision": float(s_t["precision"][minority]),
                     "balanced_accuracy": s_t["balanced_accuracy"], "macro_f1": s_t["macro_f1"]})
    ci.pr_lines(curves, points)
    st.markdown("\n".join(
        [f"| Method | {minority_name} recall (argmax → t = {t:.2f}) | {minority_name} precision | "
         "Balanced accuracy | Macro-F1 |", "|---|---|---|---|---|"]
        + [f"| {r['method']} | {r['minority_recall_argmax']:.0%} → **{r['minority_recall']:.0%}** | "
           f"{r['minority_precision']:.0%} | {r['balanced_accuracy']:.1%} | {r['macro_f1']:.3f} |" for r in live]))
    st.caption(f"Lines: the {minority_name} precision–recall curve of each method on the balanced test set; "
               "diamonds: where the threshold t puts each method. The held-out probabilities are stored, so moving t "
               "only re-counts predictions. Precision here is for a balanced test set; at the training mix, with "
               f"{ratio}× fewer {minority_name}s, the same false positives would weigh {ratio}× more.")
    st.download_button("Download results (CSV)", lambda: rows_csv(im.summary_rows(result, prior, t)),
                       file_name=f"class_imbalance_r{ratio}_{minority_name}_n{n_train}_e{epochs}_s{seed}.csv",
                       mime="text/csv", key="imb.csv")

page.close()
