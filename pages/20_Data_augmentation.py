"""Data augmentation (Q4, Q34): torchvision.transforms.v2 on the active image with its boxes and
masks, a seeded grid of random draws, the classifier's stability across them, and the shapes CNN
trained on a few hundred crops with and without augmentation."""

import streamlit as st

from components.frame import lab_page
from components import augment as ca
from components.classifier import active_subject
from components.ui import epoch_lines, train_button
from components.urlstate import UrlState
from core import augment as aug  # numpy only at import; torch inside functions
from core.imageio import encode_png
from core.params import Param
from core.tables import rows_csv

CURVE_ORDER = ["without augmentation", "with augmentation"]

page = lab_page("data-augmentation")
ctx = page.ctx

SOURCES = ("Your photo", "Synthetic shapes scene")
SOURCE = Param(default=SOURCES[0], kind=str, choices=SOURCES, label="Augment",
               help="Your photo with a box you place (its mask: the ellipse inside the box), or a "
                    "synthetic scene whose shapes have exact boxes and masks.")
BOX = {k: Param(default=0.5, lo=0.05 if k in ("bw", "bh") else 0.0, hi=1.0, step=0.01, label=label)
       for k, label in (("bx", "Box centre x"), ("by", "Box centre y"), ("bw", "Box width"), ("bh", "Box height"))}
# One checkbox and one strength slider per transform, declared from core.augment.TRANSFORMS.
ON = {name: Param(default=name in aug.DEFAULT_ON, kind=bool, label=label)
      for name, (label, *_) in aug.TRANSFORMS.items()}
STRENGTH = {name: Param(default=default, lo=lo, hi=hi, step=step, label=f"{label}: strength", help=meaning)
            for name, (label, default, lo, hi, step, meaning) in aug.TRANSFORMS.items()}
SCENE = Param(default=4, kind=int, lo=0, hi=9999, step=1, label="Scene number")
SEED = Param(default=0, kind=int, lo=0, hi=9999, step=1, label="Seed of the grid",
             help="The same seed draws the same twelve augmentations.")
MIX_KINDS = ("MixUp", "CutMix")
MIX = Param(default="MixUp", kind=str, choices=MIX_KINDS, label="Mix")
ALPHA = Param(default=1.0, lo=0.1, hi=4.0, step=0.1, label="α of the Beta(α, α) mixing weight",
              help="Small α: mostly one image or the other; α = 1: any weight equally likely; "
                   "large α: close to half and half.")
PARTNER = Param(default=2, kind=int, lo=0, hi=9999, step=1, label="Partner shape")
N_TRAIN = Param(default=aug.TRAIN_N_DEFAULT, kind=int, choices=aug.N_TRAIN_CHOICES, label="Training crops",
                help="64-px synthetic shape crops. Few crops: the plain model memorises them.")
EPOCHS = Param(default=aug.TRAIN_EPOCHS_DEFAULT, kind=int, lo=2, hi=60, step=1, label="Epochs")
TSEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Seed",
              help="Data, initialisation, order and the augmentation draws; both runs share it.")
TRAIN_ON = {name: Param(default=name in aug.TRAIN_DEFAULT, kind=bool, label=name, help=text)
            for name, text in aug.TRAIN_AUGS.items()}

url = UrlState("aug")
device = ctx.device.torch_device
rows, cols = aug.GRID

# --- 1. Source and transforms -------------------------------------------------------------------
st.subheader("1 · One image, its boxes and masks, through the same transform")
left, right = st.columns([1, 2])
with left:
    source = url.radio("src", SOURCE, horizontal=True)
    if source == SOURCES[0]:
        b = st.columns(2)
        box = tuple(url.slider(k, spec, b[i % 2]) for i, (k, spec) in enumerate(BOX.items()))
        try:
            sample = aug.photo_sample(ctx.image.work, box)
        except ValueError as err:
            st.warning(f"{err}. Using the default centred box.")
            sample = aug.photo_sample(ctx.image.work)
        source_key = ("photo", ctx.image.digest, tuple(round(v, 3) for v in box))
    else:
        scene_no = int(url.number_input("scene", SCENE))
        sample = aug.scene_sample(scene_no)
        source_key = ("scene", scene_no)
    seed = int(url.number_input("seed", SEED))
with right:
    st.markdown("**Transforms** (applied in this order; geometric ones move the boxes and masks too)")
    tcols = st.columns(4)
    settings = []
    for i, name in enumerate(aug.TRANSFORMS):
        with tcols[i % 4]:
            on = url.checkbox(f"on_{name}", ON[name])
            s = url.slider(name, STRENGTH[name], disabled=not on, label_visibility="collapsed")
            st.caption(STRENGTH[name].help)
            if on:
                settings.append((name, float(s)))
settings = aug.normalise_settings(settings)

with st.spinner("Drawing the augmentations…"):
    grid = ca.draws(source_key, settings, seed, sample)
g_left, g_right = st.columns([1, 3])
with g_left:
    st.image(grid["original"], caption="Original: solid = box, thin outline = mask", width="stretch")
    kept = grid["kept"]
    st.metric("Instances kept per draw", f"{sum(kept) / len(kept):.1f} of {grid['instances']}",
              help="SanitizeBoundingBoxes drops an instance (box, mask and label) that a crop or rotation "
                   "pushed out of the image.")
    loose = [v for v in grid["looseness"] if v == v]
    if loose:
        st.metric("Box vs mask fit (mean IoU)", f"{sum(loose) / len(loose):.2f}",
                  help="IoU between each transformed box and the tight box of its transformed mask. 1.00: the "
                       "boxes still fit; rotations make boxes looser (dashed: the mask's tight box).")
    st.download_button("Download the grid (PNG)", lambda: encode_png(ca.grid_image(grid["images"], cols)),
                       file_name=f"augmentations_seed{seed}.png", mime="image/png", key="aug.png", width="stretch")
with g_right:
    for r in range(rows):
        cells = st.columns(cols)
        for c in range(cols):
            i = r * cols + c
            cells[c].image(grid["images"][i], caption=f"draw {i + 1}", width="stretch")
if not settings:
    st.caption("No transform is ticked: every draw is the original image.")
st.caption("One `v2.Compose` call per draw gets the image (`tv_tensors.Image`), the boxes (`BoundingBoxes`), "
           "the masks (`Mask`) and the labels together, so all of them see the same random flip, angle and "
           "crop. Dashed boxes appear where the transformed box no longer hugs its mask (after a rotation, v2 can "
           "only take the box around the rotated corners).")

# --- 2. MixUp / CutMix ----------------------------------------------------------------------------
st.subheader("2 · MixUp and CutMix: mixing two images and their labels")
m_ctl, m_a, m_b, m_out = st.columns([2, 1, 1, 2])
with m_ctl:
    kind = url.radio("mix", MIX, horizontal=True)
    alpha = float(url.slider("alpha", ALPHA))
    partner = int(url.number_input("partner", PARTNER))
mixed = ca.mix(kind.lower(), alpha, seed, partner, ctx.image.digest, ctx.image.work)
names = ["A: your photo", f"B: {mixed['partner']}"]
m_a.image(mixed["inputs"][0], caption="A: your photo (label 0)", width="stretch")
m_b.image(mixed["inputs"][1], caption=f"B: a {mixed['partner']} (label 1)", width="stretch")
with m_out:
    st.image(mixed["image"], caption=f"{kind} of A and B (seed {seed})", width="stretch")
with m_ctl:
    ca.label_bars(names, mixed["label"])
    lam = mixed["label"][0]
    if kind == "CutMix":
        st.caption(f"The target is {lam:.2f} · A + {1 - lam:.2f} · B: exactly the share of pixels that still come "
                   f"from A ({mixed['from_a']:.2f}). The loss is the same mix of the two cross-entropies.")
    else:
        st.caption(f"Pixels and target are both {lam:.2f} · A + {1 - lam:.2f} · B (λ drawn from Beta({alpha:g}, "
                   f"{alpha:g})). The network is asked to be {lam:.0%} sure of A's class.")

# --- 3. Prediction stability ---------------------------------------------------------------------
st.subheader("3 · Does the classifier's answer survive the augmentations?")
subject = active_subject(ctx, url)
clf = subject.classifier
with st.spinner(f"Running {clf.title} on the original and the twelve draws…"):
    stab = ca.stability(clf.name, device, subject.digest, settings, seed, clf, subject.image)
k = st.columns(4)
k[0].metric("Un-augmented prediction", stab["base"], f"{stab['base_confidence']:.1%}", delta_color="off")
k[1].metric("Draws that agree", f"{stab['agreement']:.0%}", help="Top-1 on the draw == top-1 on the original.")
k[2].metric("Mean top-1 confidence", f"{stab['mean_confidence']:.1%}")
k[3].metric(f"Mean p({stab['base']})", f"{stab['mean_p_base_class']:.1%}",
            f"{(stab['mean_p_base_class'] - stab['base_confidence']) * 100:+.1f} points vs original")
for r in range(rows):
    cells = st.columns(cols)
    for c in range(cols):
        i = r * cols + c
        row = stab["rows"][i]
        mark = "✅" if row["agrees"] else "❌"
        cells[c].image(stab["images"][i], caption=f"{mark} {row['top1']} {row['confidence']:.0%}", width="stretch")
st.caption(f"{clf.title} on *{subject.title}* with the transforms and seed above ({stab['distinct']} different "
           "top-1 classes over the twelve draws). A model that flips its answer under a transform it should be "
           "invariant to is a model that would profit from training with that transform.")
st.download_button("Download predictions (CSV)", lambda: rows_csv(stab["rows"]), file_name=f"stability_seed{seed}.csv",
                   mime="text/csv", key="aug.stab.csv")

# --- 4. Training with and without augmentation --------------------------------------------------------
st.subheader("4 · A few hundred images: train with and without augmentation")
c_n, c_e, c_s = st.columns([3, 3, 1])
n_train = int(url.select_slider("n", N_TRAIN, c_n))
epochs = int(url.slider("epochs", EPOCHS, c_e))
tseed = int(url.number_input("tseed", TSEED, c_s))
acols = st.columns(len(TRAIN_ON))
augs = tuple(name for i, (name, spec) in enumerate(TRAIN_ON.items()) if url.checkbox(f"t_{name}", spec, acols[i]))
url.sync()

st.markdown(
    f"Both runs train the same shapes CNN from the same weights (seed {tseed}) on the same {n_train} crops in the "
    f"same order for {epochs} epochs; the augmented run gives every crop of every batch its own random draw of: "
    + ("; ".join(aug.TRAIN_AUGS[a] for a in augs) or "nothing (tick at least one)")
    + ". Accuracy is measured after each epoch on 400 held-out crops. About 30 s for both runs with the "
      "defaults on one core.")
settings_t = (n_train, epochs, augs, tseed)
result, stopped = train_button("Train both", key="aug.train", settings=settings_t, disabled=not augs,
                               start=lambda bar: ca.run_compare(n_train, epochs, augs, tseed, _progress=bar))
if result is None:
    if stopped and stopped.get("partial"):
        epoch_lines(stopped["partial"], order=CURVE_ORDER, height=280)
    st.caption("Not trained yet for these settings in this session: press the button (results are shared between "
               "sessions, so settings someone already trained come back at once).")
else:
    epoch_lines(result["curve"], order=CURVE_ORDER, height=280)
    fa, fp = result["final"]["with augmentation"], result["final"]["without augmentation"]
    m = st.columns(3)
    m[0].metric("With augmentation (held-out)", f"{fa:.1%}", f"{(fa - fp) * 100:+.1f} points vs without")
    m[1].metric("Without augmentation (held-out)", f"{fp:.1%}")
    m[2].metric("Chance (6 classes)", f"{1 / 6:.1%}")
    secs = result["seconds"]
    st.caption(f"Training took {secs['without augmentation']:.0f} s without and {secs['with augmentation']:.0f} s "
               f"with augmentation ({result['total_seconds']:.0f} s in all with drawing the crops).")
    st.download_button("Download accuracy curves (CSV)", lambda: rows_csv(result["curve"]),
                       file_name=f"augmentation_n{n_train}_e{epochs}_s{tseed}.csv", mime="text/csv", key="aug.csv")

page.close()
