"""Adversarial attacks (Q42): FGSM and PGD on the shared classifier (EfficientNet-Lite0 on the
user's photo by default), input defences, and normal vs adversarial training of the shapes CNN."""

import streamlit as st

from components.frame import lab_page
from components import adversarial as ca
from components.classifier import active_subject
from components.ui import Progress, train_button
from components.urlstate import UrlState
from core import adversarial as adv  # numpy only at import; torch and OpenCV inside functions
from core.imageio import encode_png
from core.params import Param

page = lab_page("adversarial-attacks")
ctx = page.ctx

METHOD_NAMES = {"fgsm": "FGSM (one step)", "pgd": "PGD (iterated)"}
EPS = Param(default=4, kind=int, lo=0, hi=32, step=1, label="ε: largest change per pixel, in grey levels (of 255)",
            help="The L∞ budget: no pixel value may move by more than ε/255. "
                 "8/255 is the usual benchmark budget; 1–2 is invisible.")
METHOD = Param(default="fgsm", kind=str, choices=tuple(METHOD_NAMES), label="Method",
               help="FGSM takes one step of size ε along the sign of the gradient; PGD takes many smaller "
                    "steps, projecting back into the ε-box after each.")
STEPS = Param(default=10, kind=int, lo=1, hi=ca.MAX_STEPS, step=1, label="PGD steps",
              help=f"Each step is one forward and backward pass (capped at {ca.MAX_STEPS}); step size 2.5·ε/steps.")
GOAL = Param(default="untargeted", kind=str, choices=("untargeted", "targeted"), label="Goal",
             help="Untargeted: make the current answer lose. Targeted: make a chosen class win.")

url = UrlState("adv")
subject = active_subject(ctx, url)
clf = subject.classifier
device = ctx.device.torch_device

st.subheader("Attack")
c_eps, c_method, c_steps, c_goal = st.columns([3, 2, 3, 2])
eps255 = int(url.slider("eps", EPS, c_eps))
method = url.radio("method", METHOD, c_method, format_func=METHOD_NAMES.get)
steps = int(url.slider("steps", STEPS, c_steps, disabled=method != "pgd"))
goal = url.radio("goal", GOAL, c_goal)

probs0 = ca.clean_probs(clf.name, device, subject.digest, clf, subject.image)
pred0 = clf.top(probs0, 1)[0]
target = None
if goal == "targeted":
    default = "toaster" if clf.kind == "imagenet" else clf.categories[(pred0.index + 1) % len(clf.categories)]
    if default == pred0.name:
        default = clf.categories[(pred0.index + 1) % len(clf.categories)]
    choice = st.selectbox("Target class", clf.categories, index=clf.categories.index(default),
                          key=f"adv.target.{clf.name}",
                          help="The class the attack tries to make the network answer.")
    target = clf.categories.index(choice)
url.sync()

steps_used = steps if method == "pgd" else 1
progress = Progress(st.empty())
with st.spinner("Computing the attack…"):
    res = ca.run_attack(clf.name, device, subject.digest, method, eps255, steps_used,
                        target, clf, subject.image, probs0, progress)
progress.done()

size = adv.size_of(res.clean, res.adv)
pred1 = clf.top(res.probs_adv, 1)[0]
label_name = clf.categories[res.label]
flipped = pred1.index != res.label
what = METHOD_NAMES[method] + (f", {steps} steps" if method == "pgd" else "")
if target is not None:
    hit = pred1.index == target
    (st.success if hit else st.warning)(
        f"**Targeted {what} at ε = {eps255}/255:** the network now says **{pred1.name}** ({pred1.probability:.0%}); "
        f"target *{clf.categories[target]}* {'reached' if hit else 'not reached'} "
        f"(its probability {res.probs_clean[target]:.1%} → {res.probs_adv[target]:.1%}).",
        icon="🎯" if hit else "🛡️")
elif eps255 == 0:
    st.info("ε = 0: no change is allowed, so the image and the answer are the original ones.", icon="ℹ️")
else:
    (st.success if flipped else st.warning)(
        f"**{what} at ε = {eps255}/255:** {label_name} ({res.probs_clean[res.label]:.0%}) → "
        f"**{pred1.name}** ({pred1.probability:.0%}). "
        + ("The answer flipped." if flipped else "The answer held at this budget; raise ε or use PGD."),
        icon="🥷" if flipped else "🛡️")

side = res.clean.shape[0]
a, b, c = st.columns(3)
a.image(res.clean, caption=f"Original, as the network sees it ({side}×{side}): {pred0.name} {pred0.probability:.0%}",
        width="stretch")
b.image(adv.amplified(res.clean, res.adv, max(eps255, 1)),
        caption=f"Perturbation × {127 / max(eps255, 1):.0f} (grey = unchanged, white/black = ±ε)", width="stretch")
c.image(res.adv, caption=f"Attacked (8-bit image): {pred1.name} {pred1.probability:.0%}", width="stretch")

m = st.columns(5)
m[0].metric("L∞ size", f"{size.linf:.0f}/255", help="Largest change of any pixel value (the budget ε bounds it).")
m[1].metric("L2 size", f"{size.l2:.2f}", help="Euclidean length of the change, pixels in [0, 1], all channels.")
m[2].metric("PSNR", "∞ dB" if size.psnr == float("inf") else f"{size.psnr:.1f} dB",
            help="Peak signal-to-noise ratio of the attacked image against the original; above ~40 dB is "
                 "usually invisible.")
m[3].metric("Values changed", f"{size.changed:.0%}")
m[4].metric("Attack time", f"{res.seconds * 1000:.0f} ms", help="Measured when this attack was first computed.")

marks = {res.label: "original class"} | ({target: "target class"} if target is not None else {})
left, right = st.columns(2)
with left:
    st.markdown("**Top-5 before the attack**")
    ca.top_bars(clf, res.probs_clean, marks=marks)
with right:
    st.markdown("**Top-5 after the attack**")
    ca.top_bars(clf, res.probs_adv, marks=marks)
if res.trace:
    keys = [k for k in ("original class", "target class") if k in res.trace[0]]
    rows = [{"step": r["step"], "class": k, "probability": r[k]} for r in res.trace for k in keys]
    st.markdown("**PGD, step by step**: the probability of the original (and target) class")
    ca.lines(rows, x="step", y="probability", series="class", x_title="PGD step", y_title="probability",
             height=200)
st.download_button("Download attacked image (PNG)", lambda: encode_png(res.adv),
                   file_name=f"adversarial_{method}_eps{eps255}.png", mime="image/png")

st.subheader("Defences: transform the input before classifying")
d1, d2, d3 = st.columns(3)
quality = int(d1.slider("JPEG quality", 10, 95, 75, step=5, help="Lower = stronger compression."))
window = int(d2.select_slider("Median filter window", [3, 5, 7], value=3))
bits = int(d3.slider("Bit depth per channel", 1, 8, 4, help="Feature squeezing: 2^bits grey levels."))
with st.spinner("Classifying the defended images…"):
    defended = ca.run_defences(clf.name, device, (subject.digest, method, eps255, steps_used, target), quality, window,
                               bits, clf, res)
names = {"none": "No defence", "jpeg": f"JPEG, quality {quality}", "median": f"Median {window}×{window}",
         "bits": f"{bits}-bit colour"}
table = ["| Defence | Clean image → | Attacked image → | Original class back? |", "|---|---|---|---|"]
for key, name in names.items():
    r = defended[key]
    pc, pa = clf.top(r["probs_clean"], 1)[0], clf.top(r["probs_adv"], 1)[0]
    back = "—" if key == "none" else ("✅ yes" if pa.index == res.label else "❌ no")
    clean_note = "" if pc.index == res.label else " ⚠️"
    table.append(f"| {name} | {pc.name} {pc.probability:.0%}{clean_note} | {pa.name} {pa.probability:.0%} | {back} |")
st.markdown("\n".join(table))
st.caption(f"Original class: **{label_name}**. ⚠️ = the defence alone already changes the answer on the clean image. "
           "These defences assume the attacker does not know about them; an attacker who differentiates through "
           "(or around) the transformation usually breaks them again.")
cols = st.columns(3)
for col, key in zip(cols, ("jpeg", "median", "bits")):
    r = defended[key]
    col.image(r["adv"], caption=f"{names[key]} on the attacked image: {clf.top(r['probs_adv'], 1)[0].name}",
              width="stretch")

st.subheader("Adversarial training: the defence that holds up")
live_note = (f"Adversarial training multiplies the cost of training {clf.title.split(' (')[0]} on ImageNet "
             "several times over, so the comparison is made on small networks trained here. "
             if clf.kind == "imagenet" else "")
st.markdown(
    f"{live_note}Two shapes CNNs are trained on the same {ca.N_TRAIN} synthetic 64-px crops with the same seed for "
    f"{ca.EPOCHS} epochs; the second one sees adversarial examples of itself in every batch. Both are then "
    f"attacked with PGD ({ca.EVAL_STEPS} steps) on {ca.N_TEST} held-out crops at several ε. "
    "This trains two models live: about a minute, more when the server is busy.")
t1, t2, t3 = st.columns(3)
train_eps = int(t1.slider("Training ε (of 255)", 1, 8, 4, step=1, key="adv.train_eps",
                          help="The budget of the attacks the second model trains on."))
train_method = t2.radio("Attack used in training", list(adv.TRAIN_METHODS), format_func=adv.TRAIN_METHODS.get,
                        key="adv.train_method")
mix = t3.radio("Each batch", [0.5, 1.0], format_func=lambda v: "50 % adversarial, 50 % clean" if v < 1
               else "100 % adversarial", key="adv.train_mix")
settings = (train_eps, train_method, float(mix), 0)
result, stopped = train_button("Train both models and attack them", key="adv.train", settings=settings,
                               start=lambda bar: ca.compare_training(*settings, bar))
if result is None:
    if stopped is None:
        st.caption("Not trained yet for these settings in this session: press the button (results are shared "
                   "between sessions, so settings someone else already trained come back at once).")
else:
    rows = [{"eps": e, "model": f"{name} training", "accuracy": acc}
            for name, curve in result["curves"].items() for e, acc in zip(result["eps"], curve)]
    ca.lines(rows, x="eps", y="accuracy", series="model", x_title="attack ε (grey levels of 255), PGD",
             y_title="accuracy under attack")
    cn, ca_ = result["curves"]["normal"], result["curves"]["adversarial"]
    at = result["eps"].index(train_eps) if train_eps in result["eps"] else len(result["eps"]) // 2
    k = st.columns(4)
    k[0].metric("Clean accuracy, normal", f"{cn[0]:.0%}")
    k[1].metric("Clean accuracy, adversarial", f"{ca_[0]:.0%}", f"{(ca_[0] - cn[0]) * 100:+.0f} points")
    k[2].metric(f"Under PGD ε={result['eps'][at]}/255, normal", f"{cn[at]:.0%}")
    k[3].metric(f"Under PGD ε={result['eps'][at]}/255, adversarial", f"{ca_[at]:.0%}",
                f"{(ca_[at] - cn[at]) * 100:+.0f} points")
    secs = result["seconds"]
    st.caption(f"Training took {secs['normal']:.0f} s (normal) and {secs['adversarial']:.0f} s (adversarial); "
               f"{result['total_seconds']:.0f} s in all with the evaluation.")

page.close()
