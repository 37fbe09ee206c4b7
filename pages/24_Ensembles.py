"""Ensembles (Q40): several small shapes CNNs trained live, combined by averaging or voting;
accuracy vs number of members, disagreement as uncertainty, and test-time augmentation."""

import streamlit as st

from components.frame import lab_page
from components import ensembles as ce
from components.classifier import shape_sample
from components.ui import train_button
from components.urlstate import UrlState
from core import ensembles as E  # numpy only at import; torch inside functions
from core.params import Param
from core.shapes import SHAPE_CLASSES
from core.tables import rows_csv

page = lab_page("ensembles")
ctx = page.ctx

R = E.Recipe()  # the page's defaults
MEMBERS = Param(default=R.members, kind=int, lo=2, hi=E.MAX_MEMBERS, step=1, label="Members")
N_TRAIN = Param(default=R.n_train, kind=int, choices=ce.N_TRAIN_CHOICES, label="Training crops",
                help="Deliberately few, so that every member is imperfect and they make "
                     "different mistakes. All members see the same crops.")
EPOCHS = Param(default=R.epochs, kind=int, lo=1, hi=10, step=1, label="Epochs")
SEED = Param(default=R.seed, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Draws the training crops; member i is initialised and shuffled with seed 100·seed + i.")
WIDTHS = Param(default="mixed" if R.mixed_widths else "same", kind=str, choices=ce.WIDTH_MODES,
               label="Members differ by", help="Width = channels of the first conv block (then ×2, ×4, ×8).")
SHAPE = Param(default=3, kind=int, lo=0, hi=9999, step=1, label="Synthetic image number",
              help="Each number draws another shape, colour, place and background.")
TTA = Param(default=False, kind=bool, label="With test-time augmentation")
WIDTH_TITLES = {"mixed": f"seed and width ({'/'.join(map(str, E.MIXED_WIDTHS))})",
                "same": f"seed only (all width {E.SAME_WIDTH})"}

url = UrlState("ens")

# --- 1. The members -------------------------------------------------------------------------------
st.subheader("1 · The members")
c_m, c_n, c_e, c_w, c_s = st.columns([2, 3, 2, 3, 1])
n_members = int(url.slider("members", MEMBERS, c_m))
n_train = int(url.select_slider("n", N_TRAIN, c_n))
epochs = int(url.slider("epochs", EPOCHS, c_e))
widths = url.radio("widths", WIDTHS, c_w, format_func=WIDTH_TITLES.get, horizontal=True)
seed = int(url.number_input("seed", SEED, c_s))
recipe = ce.recipe(n_members, n_train, epochs, seed, widths)
specs = recipe.member_specs()
sizes = ce.member_sizes(tuple(sorted({s["width"] for s in specs})))
st.markdown(" · ".join(f"**{s['name']}**: width {s['width']}, seed {s['seed']}, {sizes[s['width']]:,} parameters"
                       for s in specs))
crops, labels = ce.crop_samples(seed)
st.image(list(crops), caption=[SHAPE_CLASSES[int(k)] for k in labels], width=72)
st.caption(f"The first training crops for seed {seed} (64 × 64, one shape each). Every member sees the same "
           f"{n_train} crops for {epochs} epochs; only the random initialisation, the shuffling order"
           + (" and the width" if widths == "mixed" else "") + f" differ. Accuracy is measured on {E.N_TEST} "
           "held-out crops drawn from another seed.")

# --- 2. Train --------------------------------------------------------------------------------------
st.subheader("2 · Train the ensemble")
settings = (n_members, n_train, epochs, seed, widths)
cost = n_members * n_train * epochs
st.markdown(f"Trains {n_members} shapes CNNs one after another. Expected time: **about {max(1, round(cost / 650))} s** "
            "on one quiet core (the defaults take about 30 s), longer when the server is busy; the Stop button "
            "ends it within a second.")
result, stopped = train_button(f"Train {n_members} members", key="ens.train", settings=settings,  # keeps 4 runs, ~1 MB each
                               start=lambda bar: ce.run_ensemble(*settings, _progress=bar))
if result is None:
    if stopped and stopped.get("partial"):
        st.markdown("Members finished before the stop: " + ", ".join(
            f"{m['name']} {m['accuracy']:.1%}" for m in stopped["partial"]))
    elif stopped is None:
        st.caption("Not trained yet for these settings in this session: press the button (results are shared "
                   "between sessions, so settings someone already trained come back at once).")

if result is not None:
    probs, tta_probs, y = result["probs"], result["tta_probs"], result["y"]
    names = [m["name"] for m in result["members"]]
    s = E.summary(probs, y)

    # --- 3. Averaging vs voting ---------------------------------------------------------------
    st.subheader("3 · Averaging vs voting")
    k = st.columns(4)
    k[0].metric("Best single member", f"{s['best_member']:.1%}")
    k[1].metric("Mean member", f"{s['mean_member']:.1%}")
    k[2].metric("Ensemble: soft average", f"{s['soft_average']:.1%}",
                f"{(s['soft_average'] - s['mean_member']) * 100:+.1f} points vs mean member")
    k[3].metric("Ensemble: majority vote", f"{s['majority_vote']:.1%}",
                f"{(s['majority_vote'] - s['mean_member']) * 100:+.1f} points vs mean member")
    rows = E.member_rows(probs, y, names, [m["width"] for m in result["members"]])
    table = ["| Model | Width | Held-out accuracy | NLL | ECE |", "|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['model']} | {r['width'] or '–'} | {r['accuracy']:.1%} | "
                     + (f"{r['nll']:.3f} | {r['ece']:.3f} |" if r["nll"] is not None else "– | – |"))
    st.markdown("\n".join(table))
    beats = "beats" if s["soft_average"] > s["best_member"] else "does not beat"
    st.caption(f"Soft averaging takes the mean of the members' probabilities, then the top class; majority voting "
               f"counts each member's top-1 (a tie goes to the tied class with the higher average probability, then "
               f"the lower class index). Here the averaged ensemble {beats} the best member. NLL (lower is better) "
               f"goes from {s['mean_member_nll']:.3f} for the mean member to {s['ensemble_nll']:.3f} for the "
               f"average; ECE (calibration error, 10 bins) from {s['mean_member_ece']:.3f} to {s['ensemble_ece']:.3f}. "
               f"Mean confidence: {s['mean_member_confidence']:.1%} for a member, {s['ensemble_confidence']:.1%} for "
               "the average (against the accuracies above): averaging always makes the ensemble *less* confident, "
               "which fixes over-confident members but raises the ECE of members that are under-confident already, "
               "as short training runs like these often are. "
               f"Training took {result['seconds']:.0f} s.")

    # --- 4. How many members? -------------------------------------------------------------------
    st.subheader("4 · Accuracy vs number of members")
    curve = E.size_curve(probs, y)
    ce.size_lines(curve)
    st.caption("For each k the accuracy is the mean over every subset of k members (C(M, k) subsets, so it does "
               "not depend on which member comes first); the shaded band is the worst to best subset. With two "
               "members a split vote is settled by the averaged probability, so voting almost always matches "
               "averaging; from three on the two combiners differ more, and averaging, which keeps how sure "
               "each member was, usually wins.")

    # --- 5. Disagreement as uncertainty ----------------------------------------------------------
    st.subheader("5 · Disagreement as uncertainty")
    dis = E.disagreement_table(probs, y)
    split = E.agreement_split(probs, y)
    left, right = st.columns([3, 2])
    with left:
        ce.disagreement_bars(dis)
    with right:
        st.metric("Error rate where all members agree", f"{split['error_unanimous']:.1%}",
                  help=f"{split['unanimous']} of {len(y)} held-out crops.")
        st.metric("Error rate where they disagree", f"{split['error_split']:.1%}",
                  help=f"{split['split']} of {len(y)} held-out crops.")
        st.caption(f"{split['share_of_errors_in_split']:.0%} of the ensemble's mistakes are on crops where the "
                   "members disagree: disagreement is a free uncertainty signal, e.g. for sending an example to a "
                   "human. Numbers above the bars: held-out crops at that level.")
        st.markdown("\n".join(["| Agreement | Crops | Error rate | Mean entropy |", "|---|---|---|---|"]
                              + [f"| {r['label']} | {r['examples']} | {r['error_rate']:.1%} | "
                                 f"{r['mean_entropy_bits']:.2f} bits |" for r in dis]))

    # --- 6. Test-time augmentation ---------------------------------------------------------------
    st.subheader("6 · Test-time augmentation")
    tta = E.tta_rows(probs, tta_probs, y, names)
    ce.tta_bars(tta)
    st.caption("TTA averages one model's probabilities over " + ", ".join(E.TTA_VIEWS) + " of each held-out crop "
               "(shifts replicate the border): an ensemble over inputs instead of over weights, at 5× the "
               "inference cost and no extra training. Every view keeps the class, since these shapes stay "
               "themselves when mirrored or moved a little.")

    st.download_button("Download the results (CSV)",
                       lambda: rows_csv([{k2: r[k2] for k2 in ("model", "width", "accuracy", "nll", "ece")} for r in rows]
                                        + [{"model": f"{c['members']} members, {c['combiner']}", "width": None,
                                            "accuracy": c["accuracy"], "nll": None, "ece": None} for c in curve]),
                       file_name=f"ensemble_m{n_members}_n{n_train}_e{epochs}_s{seed}_{widths}.csv",
                       mime="text/csv", key="ens.csv")

# --- 7. On one image ----------------------------------------------------------------------------
st.subheader("7 · The members on one image")
left, right = st.columns([1, 3])
shape_seed = int(url.number_input("shape", SHAPE, left))
use_tta = bool(url.toggle("tta", TTA, left))
sample = shape_sample(shape_seed)
left.image(sample.image, caption=f"synthetic {sample.name} #{shape_seed} (160 × 160)", width="stretch")
url.sync()
with right:
    st.caption(f"These members only know six shapes, so they run on a synthetic shape image rather than on your "
               f"photo ({ctx.image.title} is not a circle, square, triangle, star, hexagon or cross). Ensembling "
               "ImageNet classifiers works the same way but needs several pretrained networks, i.e. several "
               "downloads and several times the memory and inference time.")
    if result is None:
        st.info("Train the ensemble above to see each member's answer on this image, their average and their vote.")
    else:
        p = ce.sample_probs(settings, shape_seed, use_tta, result, sample.image)
        order = names + ["soft average"]
        ce.probability_bars(E.image_rows(p, names, list(SHAPE_CLASSES)), order)
        vote = int(E.hard_vote(p[:, None, :])[0])
        avg = E.soft_average(p[:, None, :])[0]
        tops = [SHAPE_CLASSES[int(i)] for i in p.argmax(1)]
        agree = sum(t == SHAPE_CLASSES[int(avg.argmax())] for t in tops)
        mark = lambda c: "✅" if c == sample.name else "❌"
        st.markdown(" · ".join(f"{n}: **{t}** {mark(t)}" for n, t in zip(names, tops)))
        st.markdown(f"**Soft average: {SHAPE_CLASSES[int(avg.argmax())]}** ({avg.max():.0%}) "
                    f"{mark(SHAPE_CLASSES[int(avg.argmax())])} · **Majority vote: {SHAPE_CLASSES[vote]}** "
                    f"{mark(SHAPE_CLASSES[vote])} · true class: **{sample.name}** · "
                    f"{agree} of {len(names)} members agree with the average.")

page.close()
