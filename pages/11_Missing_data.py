"""Missing data (Q49): remove pixels, fill them back four ways, and train a model that
expects gaps (random erasing) against one that does not."""

from dataclasses import replace

import streamlit as st

from components.frame import lab_page
from components import missing as cmm
from components.classifier import active_subject
from components.session import session_id
from components.urlstate import UrlState
from core.jobs import JobRefused, JobTimeout
from core.missing import (ERASING, INPAINTING, MASK_KINDS, MASK_TITLES, PLAIN, STRATEGIES, STRATEGY_TITLES,
                          ErasingSettings, MaskSpec, reference_table, show_missing)
from core.params import Param

page = lab_page("missing-data")
ctx = page.ctx

MASK, ERASE = MaskSpec(), ErasingSettings()  # the recipes' defaults are the controls' defaults
KIND = Param(default=MASK.kind, kind=str, choices=MASK_KINDS, label="What goes missing",
             help="Random pixels: dead sensor pixels or a lossy channel. Blocks: occluders, "
                  "dropped packets of a tiled codec. Stripes: lost scan lines of a rolling sensor.")
PCT = Param(default=round(MASK.fraction * 100), kind=int, lo=0, hi=95, step=5, label="Pixels removed (%)")
PCT_LABELS = {"pixels": PCT.label, "stripes": "Scan lines removed (%)"}  # the same control, named per mask kind
BLOCKS = Param(default=MASK.blocks, kind=int, lo=1, hi=40, label="Number of blocks")
BLOCK_SIZE = Param(default=round(MASK.block_size * 100), kind=int, lo=5, hi=50, step=5,
                   label="Block size (% of the long side)")
STRIPE = Param(default=MASK.stripe_height, kind=int, lo=1, hi=16, label="Stripe height (px)")
SEED = Param(default=MASK.seed, kind=int, lo=0, hi=9999, step=1, label="Mask seed",
             help="The same seed always removes the same pixels.")
RADIUS = Param(default=3, kind=int, lo=1, hi=8, label="Inpainting radius (px)",
               help="How far around each missing pixel cv2.inpaint looks for known pixels "
                    "(its time grows with the square of the radius).")
ERASE_P = Param(default=ERASE.erase_p, lo=0.1, hi=1.0, step=0.1, label="Erasing probability",
                help="Chance that a training image gets one erased rectangle.")
ERASE_AREA = Param(default=ERASE.erase_max_area, lo=0.05, hi=0.5, step=0.05, label="Largest erased area",
                   help="Upper end of RandomErasing's scale: the rectangle covers 2 % up to this share of the crop.")
TEST_FILL = Param(default="zeros", kind=str, choices=("zeros", "mean", "telea"), label="Fill at test time",
                  help="What replaces the missing test pixels before the models see them.")
TRAIN_SEED = Param(default=ERASE.seed, kind=int, lo=0, hi=99, step=1, label="Training seed")

url = UrlState("miss")
subject = active_subject(ctx, url)
clf = subject.classifier

st.subheader("Remove pixels, then fill them back")
left, mid, right = st.columns(3)
kind = url.radio("kind", KIND, left, format_func=MASK_TITLES.get)
if kind == "blocks":
    blocks = url.slider("blocks", BLOCKS, mid)
    size = url.slider("size", BLOCK_SIZE, mid)
    spec_args = dict(blocks=int(blocks), block_size=size / 100)
else:
    pct = url.slider("pct", replace(PCT, label=PCT_LABELS[kind]), mid)
    spec_args = dict(fraction=pct / 100)
    if kind == "stripes":
        spec_args["stripe_height"] = int(url.slider("stripe", STRIPE, mid))
seed = url.number_input("seed", SEED, right)
radius = int(url.slider("radius", RADIUS, right))
spec = MaskSpec(kind=kind, seed=int(seed), **spec_args)

rgb = cmm.working(subject.digest, subject.image)
mask = cmm.mask(subject.digest, spec, rgb.shape[:2])


def _db(value: float) -> str:
    if value != value:  # NaN: there is no missing pixel to measure
        return "— (nothing missing)"
    return "∞ (identical)" if value == float("inf") else f"{value:.1f} dB"


def fills_section() -> None:
    with st.spinner("Filling the gaps (inpainting is the slow one)…"):
        results = [cmm.filled(subject.digest, spec, s, radius if s in INPAINTING else 0, rgb) for s in STRATEGIES]
        probs = cmm.predictions(clf.name, subject.digest, spec, radius, clf, [rgb, *(r.image for r in results)])
    original_probs, fill_probs = probs[0], probs[1:]
    reference = subject.truth.label if subject.truth is not None else int(original_probs.argmax())
    ref_name = clf.categories[reference]
    ref_why = "the true class" if subject.truth is not None else "the class it predicts on the intact image"

    a, b = st.columns(2)
    a.image(rgb, caption=f"{subject.title}: intact ({rgb.shape[1]}×{rgb.shape[0]} working copy)", width="stretch")
    b.image(show_missing(rgb, mask), width="stretch", caption="The same image with its missing pixels in magenta")
    b.caption(f"Removed: {spec.describe()} → **{mask.mean():.1%} of the image** "
              f"({int(mask.sum()):,} of {mask.size:,} pixels).")

    cols = st.columns(len(results))
    for col, r, p in zip(cols, results, fill_probs):
        top = int(p.argmax())
        col.image(r.image, width="stretch", caption=f"{r.title}")
        tracked = "" if top == reference else f", {ref_name} {p[reference]:.0%}"
        col.caption(f"PSNR on the missing pixels **{_db(r.psnr_missing)}** (whole image {_db(r.psnr_whole)}) · "
                    f"predicted **{clf.categories[top]}** {p[top]:.0%}{tracked}")

    table = reference_table(results, fill_probs, original_probs, clf.categories, reference)
    st.markdown(f"**{clf.title}** on each version. The tracked class is **{ref_name}** ({ref_why}).")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "PSNR missing (dB)": st.column_config.NumberColumn(format="%.1f"),
        "PSNR whole (dB)": st.column_config.NumberColumn(format="%.1f"),
        "confidence": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        f"p({ref_name})": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
    })
    bars = [{"fill": f, "series": s, "probability": table[col][i]}
            for i, f in enumerate(table["fill"]) for s, col in ((f"p({ref_name})", f"p({ref_name})"),
                                                                ("top-1 confidence", "confidence"))]
    st.vega_lite_chart({
        "data": {"values": bars},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "fill", "type": "nominal", "title": None, "sort": None},
            "yOffset": {"field": "series"},
            "x": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}},
            "color": {"field": "series", "type": "nominal", "title": None},
        },
        "height": {"step": 14},
    }, width="stretch")

    def _csv() -> bytes:
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(list(table))
        writer.writerows(zip(*table.values()))
        return out.getvalue().encode()

    st.download_button("Download the table (CSV)", _csv, file_name="missing_data_fills.csv", mime="text/csv")


if mask.all():
    st.warning("Every pixel is missing: there is nothing left to fill the gaps from. "
               "Use fewer or smaller blocks.", icon="🕳️")
else:
    fills_section()

st.subheader("Train a model to expect gaps: random erasing")
live_note = (f"Retraining {clf.title.split(' (')[0]} on ImageNet with random erasing is far beyond a live "
             "demo, so the comparison is made on small networks trained here. " if clf.kind == "imagenet" else "")
st.markdown(
    f"{live_note}Two copies of the small shapes CNN are trained on the same synthetic 64-px crops, with the same seed "
    "and the same loop; the only difference is that one sees every training image through "
    "`torchvision.transforms.v2.RandomErasing` (a random rectangle set to zero, with the probability and "
    "largest area below). Both are then tested on held-out crops with a growing share of their pixels "
    "removed. Training takes about half a minute per model on one CPU core.")
c1, c2, c3, c4 = st.columns(4)
erase_p = url.slider("erase_p", ERASE_P, c1)
erase_area = url.slider("erase_area", ERASE_AREA, c2)
test_fill = url.radio("test_fill", TEST_FILL, c3, format_func=STRATEGY_TITLES.get)
train_seed = url.number_input("train_seed", TRAIN_SEED, c4)
url.sync()
settings = ErasingSettings(seed=int(train_seed), erase_p=round(float(erase_p), 2),
                           erase_max_area=round(float(erase_area), 2), n_train=cmm.TRAIN_SIZE,
                           epochs=cmm.EPOCHS, n_test=cmm.TEST_SIZE, fractions=cmm.FRACTIONS)
comparison = cmm.cached_comparison(settings, test_fill)
label = "Test both models again" if cmm.has_models(settings) else "Train both models and test them"
if comparison is None and st.button(label, type="primary"):
    try:
        comparison = cmm.run_comparison(settings, test_fill, session_id())
    except (JobRefused, JobTimeout) as err:
        st.warning(str(err), icon="⏳")

if comparison is None:
    st.caption(f"Training set: {settings.n_train} crops, {settings.epochs} epochs per model; "
               f"test set: {settings.n_test} held-out crops. Results are kept for everyone using these settings.")
else:
    charts = st.columns(len(settings.kinds))
    for col, k in zip(charts, settings.kinds):
        curve = comparison.curve(k)
        points = [{"removed": f, "model": name, "accuracy": curve[name][i]}
                  for i, f in enumerate(curve["fraction"]) for name in (PLAIN, ERASING)]
        col.markdown(f"**{MASK_TITLES[k]}**")
        col.vega_lite_chart({
            "data": {"values": points},
            "mark": {"type": "line", "point": True, "tooltip": True},
            "encoding": {
                "x": {"field": "removed", "type": "quantitative", "title": "pixels removed",
                      "axis": {"format": "%"}},
                "y": {"field": "accuracy", "type": "quantitative", "scale": {"domain": [0, 1]},
                      "axis": {"format": "%"}},
                "color": {"field": "model", "type": "nominal", "title": None, "sort": [PLAIN, ERASING]},
            },
            "height": 220,
        }, width="stretch")
    clean = {name: comparison.history[name][-1]["test_accuracy"] for name in (PLAIN, ERASING)}
    st.caption(f"Clean test accuracy: plain {clean[PLAIN]:.1%}, random erasing {clean[ERASING]:.1%} · "
               f"training time: plain {comparison.seconds[PLAIN]:.0f} s, random erasing "
               f"{comparison.seconds[ERASING]:.0f} s · test-time fill: {STRATEGY_TITLES[test_fill].lower()} · "
               "chance (six shapes) is 17 %.")

page.close()
