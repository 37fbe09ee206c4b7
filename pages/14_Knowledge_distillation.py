"""Knowledge distillation (Q10, Q27): a teacher's soft targets at several temperatures on the
active image, and a small student trained live with and without them."""

import streamlit as st

from components.frame import lab_page
from components import distill as cd
from components.classifier import active_subject
from components.ui import epoch_lines, run_job, train_button
from components.urlstate import UrlState
from core import distill as kd  # numpy only at import; torch inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("knowledge-distillation")
ctx = page.ctx

RECIPE = kd.Recipe()  # the tested recipe is the page's default
TEMP = Param(default=RECIPE.T, lo=1.0, hi=20.0, step=0.5, label="Temperature T",
             help="The logits z are divided by T before the softmax. T = 1 is the model's normal "
                  "output; a larger T flattens it and shows how the teacher ranks the wrong classes. "
                  "The same T is used to train the KD student below.")
ALPHA = Param(default=RECIPE.alpha, lo=0.0, hi=1.0, step=0.05, label="α: weight of the soft (teacher) term",
              help="loss = α·T²·KL(teacher‖student at T) + (1 − α)·CE(student, label). α = 0 is plain training.")
WIDTH = Param(default=RECIPE.width, kind=int, choices=cd.WIDTHS, label="Student width",
              help="Channels of the student's first block (then ×2, ×4, ×8). The teacher has width 8.")
N_TRAIN = Param(default=RECIPE.n_train, kind=int, choices=cd.N_TRAIN_CHOICES, label="Training crops",
                help="Few crops = the regime where the teacher's extra information matters most.")
EPOCHS = Param(default=RECIPE.epochs, kind=int, lo=2, hi=20, step=1, label="Epochs")
SEED = Param(default=RECIPE.seed, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Initialisation and shuffling; both students share it.")

url = UrlState("kd")
device = ctx.device.torch_device

# --- 1. Soft targets on the active image (cheap: the logits are cached per image) -------------
st.subheader("1 · The teacher's soft targets")
subject = active_subject(ctx, url)
clf = subject.classifier
T = float(url.slider("T", TEMP))
logits = cd.image_logits(clf.name, device, subject.digest, clf, subject.image)
temps = sorted(set(kd.SOFT_TEMPS) | {T})
many = len(clf.categories) > 10
rows = kd.soft_target_rows(logits, clf.categories, temps, top_k=8 if many else None)
summary = {s["T"]: s for s in kd.soft_target_summary(logits, temps)}
left, right = st.columns([3, 2])
with left:
    st.markdown(f"**{clf.title}** on *{subject.title}*: softmax(z / T) per class"
                + (" (the 8 most probable classes at T = 1, and the rest of the mass in one bar)" if many else ""))
    cd.soft_target_bars(rows, temps, T)
with right:
    st.image(clf.resize(subject.image), caption=f"What the teacher sees ({subject.title})", width="stretch")
    s1, s = summary[1.0], summary[T]
    m1, m2 = st.columns(2)
    m1.metric(f"Top class at T = {T:g}", f"{s['top_probability']:.1%}", f"{(s['top_probability'] - s1['top_probability']) * 100:+.1f} points vs T = 1")
    m2.metric(f"Entropy at T = {T:g}", f"{s['entropy_bits']:.2f} bits",
              help=f"0 bits = all mass on one class; {s['max_entropy_bits']:.2f} bits = uniform over all "
                   f"{len(clf.categories)} classes.")
    st.caption(" · ".join(f"T = {t:g}: {summary[t]['entropy_bits']:.2f} bits, {summary[t]['other_mass']:.1%} "
                          "on the other classes" for t in temps))
if many:
    tail = {r["T"]: r["probability"] for r in rows if r["class"].startswith("other ")}
    st.caption(f"With {len(clf.categories)} classes, the {len(clf.categories) - 8} outside the top 8 hold "
               f"{tail[1.0]:.1%} of the probability at T = 1 and {tail[T]:.1%} at T = {T:g}: a thousand small "
               "probabilities add up quickly as T grows, so a student distilled at a high T learns mostly how "
               "the teacher ranks the many unlikely classes.")
if subject.truth is not None:
    st.caption(f"True class: **{subject.truth.name}**. The mass the teacher puts on the *other* shapes at a "
               "high T is the 'dark knowledge' a one-hot label throws away: which wrong answers are almost right.")

# --- 2. Teacher and student -------------------------------------------------------------------------
st.subheader("2 · Teacher and student")
c_w, c_a, c_n, c_e, c_s = st.columns([2, 3, 2, 3, 1])
width = int(url.radio("width", WIDTH, c_w, horizontal=True))
alpha = float(url.slider("alpha", ALPHA, c_a))
n_train = int(url.select_slider("n", N_TRAIN, c_n))
epochs = int(url.slider("epochs", EPOCHS, c_e))
seed = int(url.number_input("seed", SEED, c_s))
url.sync()

size = cd.sizes(width)
te, stu = size["teacher"], size["student"]
k = st.columns(4)
k[0].metric("Teacher parameters", f"{te['params']:,}", help="The project's trained shapes CNN (registry "
            "'shapes-cnn'): 4 conv blocks, width 8, trained on 2000 crops.")
k[1].metric(f"Student parameters (width {width})", f"{stu['params']:,}",
            f"{te['params'] / stu['params']:.1f}× fewer", delta_color="off")
k[2].metric("Size in float32 (teacher → student)", f"{te['mb'] * 1000:.0f} → {stu['mb'] * 1000:.0f} kB")
k[3].metric("FLOPs per 64-px crop (teacher → student)", f"{te['flops'] / 1e6:.1f} → {stu['flops'] / 1e6:.2f} M",
            f"{te['flops'] / stu['flops']:.1f}× fewer", delta_color="off")
if clf.kind == "imagenet":
    st.caption(f"The soft targets above come from {clf.title} on your photo: what such a teacher would hand a "
               "student. Distilling an ImageNet network needs its 1.28 million training images and many GPU-hours, "
               "so the live run below distils the "
               "shapes CNN into a smaller shapes CNN instead, which fits in a minute on this server.")

# --- 3. Train both students ---------------------------------------------------------------------
st.subheader("3 · Train the student with and without the teacher")
st.markdown(
    f"Both students start from the same weights (seed {seed}), see the same {n_train} synthetic crops in the "
    f"same order for {epochs} epochs with the same optimiser; only the loss differs: **KD** uses "
    f"α = {alpha:g}, T = {T:g}, **plain** uses cross-entropy on the labels alone. Accuracy is measured after every "
    "epoch on 400 held-out crops the teacher never saw. Takes about 15–40 s (both runs, one core).")
settings = (n_train, epochs, width, T, alpha, seed)
result, stopped = train_button("Train both students", key="kd.train", settings=settings,
                               start=lambda bar: cd.run_compare(*settings, _progress=bar))
if result is None:
    if stopped is None:
        st.caption("Not trained yet for these settings in this session: press the button (results are shared between "
                   "sessions, so settings someone already trained come back at once). With the defaults the KD "
                   "student usually ends several points ahead of the plain one; at width 2 both are unstable and the "
                   "gap depends on the seed — try a few.")
else:
    epoch_lines(result["curve"], rule=("teacher", result["teacher_accuracy"]), height=280)
    fk, fp = result["final"]["KD student"], result["final"]["plain student"]
    m = st.columns(4)
    m[0].metric("Teacher (held-out)", f"{result['teacher_accuracy']:.1%}", help="Dashed line in the chart.")
    m[1].metric("KD student", f"{fk:.1%}", f"{(fk - fp) * 100:+.1f} points vs plain")
    m[2].metric("Plain student", f"{fp:.1%}")
    m[3].metric("Chance (6 classes)", f"{1 / 6:.1%}")
    verdict = ("the KD student ends ahead" if fk > fp else "the two students tie" if fk == fp
               else "the plain student ends ahead this time")
    secs = result["seconds"]
    st.caption(f"After {epochs} epochs {verdict}. Training took {secs['KD student']:.0f} s (KD) and "
               f"{secs['plain student']:.0f} s (plain), {result['total_seconds']:.0f} s in all with drawing the data "
               "and the teacher's logits (computed once for the whole training set).")
    st.download_button("Download accuracy curves (CSV)", lambda: rows_csv(kd.curve_rows(result)),
                       file_name=f"distillation_w{width}_T{T:g}_a{alpha:g}_n{n_train}_e{epochs}_s{seed}.csv",
                       mime="text/csv", key="kd.csv")

# --- 4. Speed -------------------------------------------------------------------------------------
st.subheader("4 · Is the student faster?")
timed = st.session_state.setdefault("_kd.timed", {})
tkey = (device, width)
if st.button(f"Time teacher and student on {ctx.device.name}", disabled=tkey in timed, key="kd.time"):
    result = run_job(lambda bar: cd.run_latency(device, width, _progress=bar))
    if result is not None:
        timed[tkey] = result
lat = timed.get(tkey)
if lat is None:
    st.caption("Press the button to time both networks (FP32, eval mode, 3 warm-up calls then 20 timed ones per "
               "batch size; latency does not depend on the weights, so no training is needed).")
else:
    by = {(r["model"], r["batch"]): r for r in lat}
    table = ["| Model | " + " | ".join(f"batch {b}: p50 / p95" for b in cd.LATENCY_BATCHES) + " |",
             "|---|" + "---|" * len(cd.LATENCY_BATCHES)]
    for name, title in (("teacher", "Teacher (width 8)"), ("student", f"Student (width {width})")):
        table.append(f"| {title} | " + " | ".join(f"{by[(name, b)]['p50_ms']:.2f} / {by[(name, b)]['p95_ms']:.2f} ms"
                                                for b in cd.LATENCY_BATCHES) + " |")
    st.markdown("\n".join(table))
    ratios = {b: by[("teacher", b)]["p50_ms"] / max(by[("student", b)]["p50_ms"], 1e-9) for b in cd.LATENCY_BATCHES}
    where = ctx.device.name if device.startswith("cuda") else f"{ctx.device.name}, timed on {kd.CPU_TIMING_THREADS} thread"
    st.caption(f"Measured on **{where}**. The student is "
               + " and ".join(f"{r:.1f}× faster at batch {b}" for b, r in ratios.items())
               + f" (p50), against {te['flops'] / stu['flops']:.1f}× fewer FLOPs: networks this small pay a fixed "
               "cost per layer and per call that fewer channels do not shrink, most visibly at batch 1."
               + ("" if device.startswith("cuda") else " No GPU is in use here: these are CPU timings (one thread, "
                  "so that other users' jobs on the server's cores do not distort them)."))

page.close()
