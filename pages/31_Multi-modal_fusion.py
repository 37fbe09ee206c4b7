"""Multi-modal fusion (Q44): a shape crop plus a word whose label needs both; train image-only,
word-only, early, intermediate and late fusion live, then take a modality away at test time."""

import math

import streamlit as st

from components.frame import lab_page
from components import fusion as cf
from components.classifier import shape_or_photo
from components.ui import epoch_lines, train_button
from components.urlstate import UrlState
from core import fusion as fu  # numpy only at import; torch inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("multi-modal-fusion")
ctx = page.ctx

MODELS = list(fu.MODELS)
N_TRAIN = Param(default=fu.N_TRAIN, kind=int, choices=cf.N_TRAIN_CHOICES, label="Training pairs")
EPOCHS = Param(default=fu.EPOCHS, kind=int, lo=1, hi=15, step=1, label="Epochs")
SEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Draws the pairs, the initial weights, the batch order and the dropped "
                  "modalities; every model shares it.")
P_TRAIN = Param(default=fu.P_TRAIN, lo=0.0, hi=0.8, step=0.05, label="Modality dropout in training",
                help="Each training pair loses its image or its word (50/50) with this probability, "
                     "redrawn every epoch.")
START = Param(default=cf.STARTS[0], kind=str, choices=cf.STARTS, label="Image branches start from",
              help="Pretrained: a CNN first trained to NAME the shape on 1,000 other crops (like an ImageNet "
                   "backbone); every image branch starts from it. Random: everything learns from the pairs alone.")
P_TEST = Param(default=0.5, lo=0.0, hi=1.0, step=0.05, label="Probability that it is missing")
MISSING = Param(default=fu.MISSING[0], kind=str, choices=fu.MISSING, label="Missing",
                help="A missing image is replaced by the training set's mean colour; a missing word "
                     "by the `<unk>` token.")
WORD = Param(default=fu.WORDS[1], kind=str, choices=fu.VOCAB, label="Word",
             help="`<unk>` is what a missing word becomes.")

url = UrlState("fus")

# --- 1. The task -------------------------------------------------------------------------------
st.subheader("1 · A task that needs both modalities")
table = fu.rule_table()
by_shape, by_word = fu.marginal_counts(table)
left, right = st.columns([2, 3])
with left:
    st.markdown("\n".join(
        ["| shape \\ word | " + " | ".join(f"**{w}**" for w in fu.WORDS) + " |", "|---" * (len(fu.WORDS) + 1) + "|"]
        + [f"| **{s}** | " + " | ".join(fu.LABELS[table[i, j]] for j in range(len(fu.WORDS))) + " |"
           for i, s in enumerate(fu.SHAPES)]))
    uniform = bool((by_shape == 1).all() and (by_word == 1).all())
    st.caption("The rule: label = (shape index + word index) mod 3, shapes circle 0, square 1, triangle 2. "
               + ("Counted from the table: every row and every column holds A, B and C exactly once. "
                  if uniform else "") +
               "Shapes and words are drawn independently and uniformly, so given the image alone the label is "
               "A, B or C with probability 1/3 each, and the same given the word alone: **each modality on its own "
               "is at chance (33.3 %) by construction**; only the pair decides.")
    best, cells = cf.ceiling()
    st.markdown(f"Late fusion adds a score from the image to a score from the word. No such sum can reproduce this "
                f"table: the best any additive scores can do is **{best} of 9** cells (a linear programme over every "
                f"set of cells, computed now), and trained by likelihood it does not even get that (see the "
                f"results in section 3).")
seed = int(url.number_input("seed", SEED, right))
with right:
    images, shapes, words, labels = cf.sample_pairs(seed)
    st.image([im for im in images], width=64,
             caption=[f"{fu.WORDS[w]} → {fu.LABELS[y]}" for w, y in zip(words, labels)])
    st.caption(f"The first 12 training pairs: a {fu.SIZE}-px crop of one shape (on a plain background, so that the "
               "question is fusion, not finding the shape), the word, and the label. Pair i depends only on (seed, i).")

# --- 2. The models -----------------------------------------------------------------------------
st.subheader("2 · Five ways to use the pair")
params = cf.parameter_counts()
st.markdown(
    f"Image branch: 3 conv blocks ({fu.WIDTH}, {2 * fu.WIDTH}, {2 * fu.WIDTH} channels, BatchNorm, ReLU, max-pool) "
    f"and a global max-pool → {2 * fu.WIDTH} features. Word branch: an embedding table over "
    f"{', '.join(f'`{v}`' for v in fu.VOCAB)}. Heads: a 2-layer MLP (64 hidden units) → 3 logits.\n\n"
    f"| Model | Where the modalities meet | Parameters |\n|---|---|---|\n"
    f"| image only | never: sees the crop | {params['image only']:,} |\n"
    f"| word only | never: sees the word | {params['word only']:,} |\n"
    f"| early fusion | at the input: the word's {fu.EARLY_EMBED}-d embedding is broadcast as {fu.EARLY_EMBED} extra "
    f"channels, constant over the image, and concatenated with RGB before the first conv | "
    f"{params['early fusion']:,} |\n"
    f"| intermediate fusion | at the features: [{2 * fu.WIDTH} image features, 32-d word embedding] → MLP head | "
    f"{params['intermediate fusion']:,} |\n"
    f"| late fusion | at the decision: (image branch's logits + word branch's logits) / 2 | "
    f"{params['late fusion']:,} |")

# --- 3. Train ----------------------------------------------------------------------------------
st.subheader("3 · Train all five on the same pairs")
c_n, c_e, c_s, c_p = st.columns(4)
n_train = int(url.select_slider("n", N_TRAIN, c_n))
epochs = int(url.slider("epochs", EPOCHS, c_e))
start = url.radio("start", START, c_s)
p_train = float(url.slider("ptrain", P_TRAIN, c_p))
url.sync()
settings = (n_train, epochs, seed, p_train, start)
secs = (4 if start == cf.STARTS[0] else 0) + 2.2 * n_train * epochs / 1500  # measured on one quiet core
st.caption(f"About {secs:.0f} s on one quiet core (the shape encoder, then {len(MODELS)} runs of {epochs} epochs on "
           f"{n_train} pairs; longer while others train). Every model starts from the same seed and sees the same "
           f"batches. Results are shared between sessions: settings someone already trained come back at once.")
result, stopped = train_button("Train the five models", key="fusion.train", settings=settings,
                               start=lambda bar: cf.run_fusion(*settings, _progress=bar))
if stopped and stopped.get("partial"):
    epoch_lines(stopped["partial"], order=MODELS, rule=("chance", fu.CHANCE))
if result is None:
    st.caption("Not trained yet for these settings in this session: press the button.")
else:
    acc = result["accuracy"]
    st.markdown("\n".join(
        ["| Model | Held-out accuracy | vs chance (33.3 %) | Train time |", "|---|---|---|---|"]
        + [f"| {m} | **{acc[m]:.1%}** | {100 * (acc[m] - fu.CHANCE):+.1f} points | {result['seconds'][m]:.1f} s |"
           for m in MODELS]))
    enc = result.get("encoder_accuracy")
    st.caption(f"{len(result['y_test'])} held-out pairs from other seeds. "
               + (f"The pretrained encoder names the shape right on {enc:.0%} of its own held-out crops "
                  f"({result['seconds'].get('encoder', 0):.1f} s). " if enc is not None else "")
               + f"{result['total_seconds']:.0f} s in all.")
    epoch_lines(result["history"], order=MODELS, rule=("chance", fu.CHANCE))
    late_gap = acc["late fusion"] - fu.CHANCE
    st.markdown(
        f"Image only and word only sit at chance, as the rule forces. Late fusion: **{acc['late fusion']:.1%}** "
        + ("- also at chance. " if abs(late_gap) < 0.08 else "- ")
        + "Averaging two branches' logits gives scores f(image) + g(word): each branch can only say what its own "
          "modality implies, and here neither implies anything. The best a sum could do is 7 of 9 cells, and "
          "cross-entropy does not even aim there: for such a main-effects model the best fit reproduces the label's "
          "frequencies per shape and per word, which are uniform, so it predicts 1/3 everywhere. Early and "
          "intermediate fusion let a nonlinear layer see both at once, so they can learn the interaction "
          "(\"triangle AND two → B\").")

    # --- 4. Missing modality at test time ----------------------------------------------------------
    st.subheader("4 · Take a modality away at test time (no retraining)")
    c_m, c_pt = st.columns([2, 3])
    missing = url.radio("miss", MISSING, c_m, horizontal=True)
    p = float(url.slider("p", P_TEST, c_pt))
    url.sync()
    rows = cf.curve(settings, missing, result)
    cf.missing_lines(rows, p, MODELS, missing)
    now = {m: fu.dropout_scores(result["logits"][m], result["y_test"], p, missing) for m in MODELS}
    st.markdown("\n".join(
        [f"| Model | Accuracy, nothing missing | Accuracy at p = {p:.2f} | Log-loss at p = {p:.2f} | "
         "Mean confidence |", "|---|---|---|---|---|"]
        + [f"| {m} | {acc[m]:.1%} | **{now[m]['accuracy']:.1%}** | {now[m]['log_loss']:.3f} | "
           f"{now[m]['confidence']:.0%} |" for m in MODELS]))
    st.caption(f"The stored models' held-out logits for the four cases (both present, image missing, word missing, "
               f"both missing) are kept, so moving p only re-counts: each pair's modality is missing when its fixed "
               f"random number is below p (p = 0: the accuracy above exactly; p = 1: all gone). With one modality "
               f"missing, nothing can beat chance here (the other one alone says nothing), so the best possible curve "
               f"is a straight line from the model's accuracy down to 33 %. Log-loss of a uniform guess: "
               f"{math.log(3):.3f}. Modality dropout in training ({p_train:.2f} here) cannot lift that "
               "floor; what it changes is how sure the model is when a modality is gone (compare log-loss and "
               "confidence with and without it).")
    st.download_button("Download results (CSV)", lambda: rows_csv(fu.summary_rows(result, p, missing)),
                       file_name=f"fusion_n{n_train}_e{epochs}_s{seed}_pt{p_train:g}.csv", mime="text/csv",
                       key="fusion.csv")

    # --- 5. One pair ------------------------------------------------------------------------------
    st.subheader("5 · Ask the trained models about one pair")
    c_img, c_w = st.columns([3, 2])
    subject = shape_or_photo(ctx, url, where=c_img)
    word_name = url.selectbox("word", WORD, c_w)
    no_image = c_w.checkbox("Image missing (mean colour)", key="fus.noimg")
    url.sync()
    box = subject.truth.box if subject.truth is not None else None
    crop = cf.crop(subject.digest, subject.image, box)
    word = fu.VOCAB.index(word_name)
    truth = None
    if subject.truth is not None and subject.truth.label < len(fu.SHAPES) and word != fu.UNK and not no_image:
        truth = fu.LABELS[fu.rule(subject.truth.label, word)]
    with c_img:
        st.image(crop, width=128, caption=f"The {fu.SIZE}-px crop the models see ({subject.title})")
    if subject.truth is not None and subject.truth.label >= len(fu.SHAPES):
        c_w.info("This synthetic image holds a shape the models never saw (they know circle, square and "
                 "triangle): try another number.")
    nets = cf.trained_nets(settings, result["state"])
    probs = cf.predict(settings, subject.digest, word, no_image, nets, crop, tuple(result["fill"]))
    cf.prob_bars(probs, list(fu.LABELS), MODELS, truth)
    st.caption(("True label by the rule: **" + truth + "** (full-opacity bars). ") if truth else
               "No true label here (your photo, an unknown shape, or a missing modality). ")

page.close()
