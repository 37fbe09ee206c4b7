"""Self-supervised learning (Q36): two augmented views of the active image (a positive pair), a
small encoder trained with SimCLR's NT-Xent loss on unlabelled shape crops, a linear probe of
the trained vs the random encoder, and the embeddings before / after."""

import numpy as np
import streamlit as st

from components.frame import lab_page
from components import selfsup as cs
from components.ui import train_button
from components.urlstate import UrlState
from core import selfsup as ss  # numpy only at import; torch inside functions
from core.imageio import encode_png
from core.params import Param
from core.tables import rows_csv

page = lab_page("self-supervised-learning")
ctx = page.ctx

R = ss.Recipe()
VIEW_SEED = Param(default=0, kind=int, lo=0, hi=999, step=1, label="View seed",
                  help="Seeds the random augmentations; the same seed gives the same two views.")
TEMP = Param(default=R.temperature, lo=0.05, hi=1.0, step=0.05, label="Temperature τ",
             help="Cosine similarities are divided by τ before the softmax. A small τ "
                  "punishes the hardest negatives most; a large τ treats all negatives alike.")
N_UNLABELLED = Param(default=R.n_unlabelled, kind=int, choices=cs.N_UNLABELLED_CHOICES, label="Unlabelled crops")
EPOCHS = Param(default=R.epochs, kind=int, lo=1, hi=12, step=1, label="Epochs")
SEED = Param(default=R.seed, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Initialisation, shuffling and augmentations. The random encoder is this seed's "
                  "initial weights: exactly where training starts.")
url = UrlState("ssl")

# --- 1. The positive pair -------------------------------------------------------------------
st.subheader("1 · Two views of your image: a positive pair")
left, right = st.columns([1, 2])
with left:
    view_seed = int(url.number_input("vseed", VIEW_SEED))
    st.markdown("Each view: **random resized crop** (25–100 % of the area) → **horizontal flip** (p = 0.5) → "
                "**colour jitter** (brightness, contrast, saturation 0.4, hue 0.1; p = 0.8) → **grayscale** "
                "(p = 0.2) → **Gaussian blur** (p = 0.5), with `torchvision.transforms.v2`.")
    st.caption("The network is told only that these two images come from the same picture. Everything the two "
               "views share (the object) is what it should encode; everything the augmentations change "
               "(framing, colour, sharpness) is what it learns to ignore.")
with right:
    pair = cs.views(ctx.image.digest, view_seed, ctx.image.work)
    c1, c2, c3 = st.columns(3)
    c1.image(ctx.image.work, caption=f"Original ({ctx.image.title})", width="stretch")
    c2.image(pair[0], caption="View A", width="stretch")
    c3.image(pair[1], caption="View B", width="stretch")
    st.download_button("Download the pair (PNG)", lambda: encode_png(np.concatenate(pair, axis=1)),
                       file_name=f"positive_pair_seed{view_seed}.png", mime="image/png", key="ssl.pair_png")

# --- 2. The loss and the data ------------------------------------------------------------------
st.subheader("2 · NT-Xent on unlabelled shapes")
c_t, c_n, c_e, c_s = st.columns([3, 3, 3, 1])
temperature = float(url.slider("T", TEMP, c_t))
n_unlabelled = int(url.select_slider("n", N_UNLABELLED, c_n))
epochs = int(url.slider("epochs", EPOCHS, c_e))
seed = int(url.number_input("seed", SEED, c_s))
url.sync()
st.latex(r"\ell_i = -\log \frac{\exp(\mathrm{sim}(z_i, z_{j(i)})/\tau)}{\sum_{k \neq i} \exp(\mathrm{sim}(z_i, z_k)/\tau)}"
         r"\qquad \mathcal{L} = \frac{1}{2N}\sum_{i=1}^{2N} \ell_i")
st.markdown(
    f"A batch of {R.batch_size} crops gives {2 * R.batch_size} views; for each view its partner is the one "
    f"positive and the other {2 * R.batch_size - 2} views are negatives. Encoder: the shapes CNN's 4 conv blocks "
    f"(width {R.width}) + global max pool → {8 * R.width} features; a 2-layer projection head maps them to the "
    f"32-d space where the loss is computed (and is thrown away afterwards). The crops' **labels are discarded "
    "when they are drawn**: `core.selfsup.unlabelled_crops` returns images only. Training views add a random "
    "rotation, any hue and grayscale half the time (stronger than the photo's views above): with weaker colour "
    "distortion the easiest way to match two views of a shape is its colour, and the encoder learns colour.")
with st.expander("What the encoder trains on (first 16 unlabelled crops)"):
    crops = (ss.unlabelled_crops(16, seed, R.background).permute(0, 2, 3, 1).numpy() * 255).astype("uint8")
    st.image(list(crops), width=64)

# --- 3. Train -----------------------------------------------------------------------------------
st.subheader("3 · Train the encoder, then probe it")
st.markdown(
    f"Contrastive training on {n_unlabelled} unlabelled crops for {epochs} epochs (batch {R.batch_size}, "
    f"AdamW, one-cycle lr {R.lr:g}, views at {ss.VIEW_SIZE} px). Then a **linear probe** (logistic regression, "
    f"300 full-batch steps on frozen features) learns from {R.n_labelled} labelled crops and is scored on "
    f"{R.n_test} held-out crops, after every epoch and for the same network with its random initial weights. "
    "Takes about 25 s with the defaults on one quiet core (longer when the server is busy).")
settings = (n_unlabelled, epochs, temperature, seed)
result, stopped = train_button("Train the encoder (no labels)", key="ssl.train", settings=settings,
                               start=lambda bar: cs.run_training(*settings, _progress=bar))
if result is None:
    if stopped and stopped.get("partial"):
        st.caption("Curves up to the stop:")
        cs.curves(stopped["partial"], None, 1 / 6)
    st.caption("Not trained yet for these settings in this session: press the button (results are shared between "
               "sessions, so settings someone already trained come back at once).")
else:
    tr, rnd = result["trained"], result["random"]
    m = st.columns(5)
    m[0].metric("Linear probe, trained encoder", f"{tr['probe_accuracy']:.1%}",
                f"{(tr['probe_accuracy'] - rnd['probe_accuracy']) * 100:+.1f} points vs random")
    m[1].metric("Linear probe, random encoder", f"{rnd['probe_accuracy']:.1%}")
    m[2].metric("5-NN, trained → random", f"{tr['knn_accuracy']:.1%}",
                f"{(tr['knn_accuracy'] - rnd['knn_accuracy']) * 100:+.1f} points vs random ({rnd['knn_accuracy']:.1%})")
    m[3].metric("Chance (6 classes)", f"{result['chance']:.1%}")
    m[4].metric("Training time", f"{result['train_seconds']:.0f} s",
                help=f"{result['total_seconds']:.0f} s in all, with drawing the crops and the probes.")
    cs.curves(result["history"], rnd["probe_accuracy"], result["chance"])
    st.download_button("Download the per-epoch figures (CSV)", lambda: rows_csv(ss.history_rows(result)),
                       file_name=f"selfsup_n{n_unlabelled}_e{epochs}_T{temperature:g}_s{seed}.csv",
                       mime="text/csv", key="ssl.csv")

    # --- 4. Embeddings ----------------------------------------------------------------------------
    st.subheader("4 · Embeddings before and after")
    a, b = st.columns(2)
    with a:
        cs.scatter(result["pca"]["random"], result["test_labels"], "Random encoder: held-out crops, PCA")
    with b:
        cs.scatter(result["pca"]["trained"], result["test_labels"], "Trained encoder: held-out crops, PCA")
    sep = {k: ss.class_separation(result["pca"][k], result["test_labels"]) for k in ("random", "trained")}
    st.caption(f"Each point is one of the {R.n_test} held-out crops, projected on the two leading principal axes of "
               "its encoder's features (numpy SVD). The colour is the true class, used only to colour the points: "
               "no label was seen by the encoder. Share of the 2-D variance between the class centres: "
               f"**{sep['random']:.1%}** (random) and **{sep['trained']:.1%}** (trained). The two directions of "
               "largest variance need not be the ones that separate classes: the probe uses all "
               f"{8 * R.width} dimensions.")

    st.markdown("**Which view matches?** Two fresh views of your photo and of one held-out crop of five classes "
                "(12 views), embedded by both encoders: cosine similarity of every pair.")
    mats = cs.view_matrices(ctx.image.digest, settings, view_seed, ctx.image.work, result["state_dict"], R.width)
    labels = [f"{n} · {ab}" for n in mats["names"] for ab in ("A", "B")]
    a, b = st.columns(2)
    for col, name, title in ((a, "random", "Random encoder"), (b, "trained", "Trained encoder")):
        with col:
            cs.heatmap(mats[name]["sim"], labels, title)
            mm = mats[name]
            st.caption(f"{title}: the most similar other view is the partner for **{mm['matched']:.0%}** of the 12 "
                       f"views; mean cosine to the partner {mm['positive_mean']:.2f}, to the others "
                       f"{mm['negative_mean']:.2f}.")
    st.caption("The encoder was trained only on plain-background shapes at 32 px, so your photo is far outside its "
               "training data: how well its two views match says how invariant the features are to the "
               "augmentations, not that the network understands the photo.")

page.close()
