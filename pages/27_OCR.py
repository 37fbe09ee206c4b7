"""OCR (Q8, Q25): EasyOCR (CRAFT detector + convolutional-recurrent recogniser with CTC) on the
active image, the classic challenges on a rendered line, and the project's own small CRNN."""

import streamlit as st

from components.frame import lab_page
from components import models as cm
from components import ocr as co
from components.ui import Progress
from components.urlstate import UrlState
from core import ocr
from core.imageio import encode_png
from core.params import Param
from core.safetext import literal
from core.tables import rows_csv

page = lab_page("ocr")
ctx = page.ctx

C = ocr.CHALLENGES
TEXT = Param(default=ocr.DEFAULT_TEXT, kind=str, label="Text to render",
             help="Drawn with Pillow's bundled font. The small CRNN reads digits, lowercase letters, "
                  "space, '.' and '-'.")
TEXT_MAX = 60  # characters in the text box (a longer link value is cut)
SIZE = Param(default=ocr.FONT_SIZE, kind=int, lo=16, hi=64, step=2, label="Font size (px)")
LEVELS = {name: Param(default=c.clean, lo=min(c.clean, c.worst), hi=max(c.clean, c.worst), step=c.step,
                      label=c.label)
          for name, c in C.items()}
url = UrlState("ocr")

reader, reader_err = co.reader()
if reader_err:
    st.error(f"**EasyOCR cannot run here.** {reader_err} The small CRNN below still works.", icon="📦")

# --- 1. EasyOCR on the active image ----------------------------------------------------------
st.subheader("1 · Detect, then recognise: EasyOCR on the active image")
st.caption(f"Active image: {literal(ctx.image.title, 60)}. CRAFT (a VGG-16 U-Net) predicts per-pixel "
           "'character here' and 'gap between characters' scores; connected regions become line boxes. Each "
           "box is cut out, resized to height 64 and read by a conv + BiLSTM recogniser trained with CTC.")
if reader is not None:
    work = ctx.image.work
    with st.spinner("EasyOCR: detecting and reading text (about a second per image on 2 cores; cached)…"):
        lines = co.read(ctx.image.digest, work)
    if not lines:
        st.info(f"**No text found** in {literal(ctx.image.title, 60)}: the detector found no character regions. "
                "Pick the **Scanned book page** sample (`page`) in the sidebar to see detection and recognition "
                "on real printed text. The challenges and the small CRNN below work on any image.", icon="🔍")
    else:
        left, right = st.columns([3, 2])
        picture = ocr.draw_boxes(work, [ln.box for ln in lines])
        rows = [{"#": i, "text": ln.text, "confidence": round(ln.confidence, 3),
                 "box (x, y corners)": " ".join(f"{x},{y}" for x, y in ln.box)} for i, ln in enumerate(lines, 1)]
        with left:
            st.image(picture, caption=f"{len(lines)} text lines detected (numbered in reading order)", width="stretch")
            a, b = st.columns(2)
            a.download_button("Download annotated PNG", lambda: encode_png(picture), file_name="ocr_boxes.png",
                              mime="image/png", key="ocr.png", width="stretch")
            b.download_button("Download text (CSV)", lambda: rows_csv(rows), file_name="ocr_text.csv",
                              mime="text/csv", key="ocr.csv", width="stretch")
        with right:
            st.dataframe(rows, hide_index=True, width="stretch", height=min(420, 38 + 35 * len(rows)),
                         column_config={"box (x, y corners)": None})
        pick = st.selectbox("Look inside the recogniser for line", range(len(lines)),
                            format_func=lambda i: f"{i + 1}: {lines[i].text}")
        found = co.line_steps(ctx.image.digest, int(pick), work, lines[int(pick)])
        steps, probs = found["steps"], found["probs"]
        co.heatmap(probs, found["alphabet"], title=f"Line {pick + 1}: per-column probabilities, "
                   f"{len(probs)} columns × the {min(co.TOP_K, probs.shape[1])} most likely characters")
        st.dataframe(co.steps_table(steps), hide_index=True, width="stretch")
        if found["pass"] == "first":
            st.success(f"Greedy CTC decoding gives **{literal(steps.text, 80)}**, exactly EasyOCR's text; its "
                       f"confidence {ocr.easyocr_confidence(probs):.3f} is recomputed from these columns "
                       f"(EasyOCR: {lines[pick].confidence:.3f}).", icon="✅")
        elif found["pass"] == "contrast":
            st.info("EasyOCR's first pass was below its 0.1 confidence threshold, so it re-read this line with "
                    "contrast stretched and kept the better read: the columns above are from that second pass, and "
                    f"their greedy decoding **{literal(steps.text, 80)}** equals EasyOCR's text.", icon="🔁")
        else:
            st.warning(f"Greedy decoding of these columns gives {literal(steps.text, 80)}, but EasyOCR returned "
                       f"{literal(lines[pick].text, 80)}: EasyOCR re-reads low-confidence lines with contrast "
                       "stretched and keeps the more confident read; neither pass reproduced it here.", icon="⚠️")

# --- 2. Challenges on a rendered line ---------------------------------------------------------
st.subheader("2 · Why OCR is hard: degrade a rendered line")
c_text, c_size = st.columns([3, 1])
text_key = url.key("text", TEXT)
st.session_state[text_key] = str(st.session_state[text_key])[:TEXT_MAX]  # a long link value must not break the box
text = c_text.text_input(TEXT.label, key=text_key, max_chars=TEXT_MAX, help=TEXT.help).strip()
size = int(url.slider("size", SIZE, c_size))
cols = st.columns(3)
levels = {name: float(url.slider(name, LEVELS[name], cols[i % 3])) for i, name in enumerate(C)}
url.sync()
if not text:
    st.info("The text box is empty: showing the default sentence.", icon="⌨️")
    text = ocr.DEFAULT_TEXT
changed = tuple((n, v) for n, v in levels.items() if v != C[n].clean)
clean_img = ocr.render_line(text, size=size)
degraded = co.rendered(text, changed, size)
a, b = st.columns(2)
a.image(clean_img, caption=f"Rendered ({clean_img.shape[1]}×{clean_img.shape[0]} px)", clamp=True)
b.image(degraded, caption="Degraded: " + (", ".join(f"{C[n].label} {v:g}" for n, v in changed) or "nothing yet"),
        clamp=True)
use_crnn = co.fits_crnn(text)
m1, m2, m3, m4 = st.columns(4)
if reader is not None:
    with st.spinner("EasyOCR reading the line…"):
        e = co.easyocr_on_line(text, changed, size)
    m1.caption("EasyOCR read")  # a metric would cut a long line short
    m1.code(e["text"] or "(nothing)", language=None, wrap_lines=True)
    m2.metric("EasyOCR confidence · CER", f"{e['confidence']:.2f} · {e['cer']:.0%}",
              help="CER = edit distance (insertions + deletions + substitutions) / length of the true text.")
cm.require_shipped("ocr-crnn")
if use_crnn:
    c_run = co.crnn_on_line(text, changed, size)
    m3.caption("Small CRNN read")
    m3.code(c_run["text"] or "(nothing)", language=None, wrap_lines=True)
    m4.metric("Small CRNN CER", f"{c_run['cer']:.0%}")
else:
    m3.caption("The small CRNN only knows digits, lowercase letters, space, '.' and '-': this text has other "
               "characters, so only EasyOCR reads it.")
st.caption("The rendered image is one line, so it goes straight to each recogniser (no detection step).")

st.markdown("**Character error rate curve**: each challenge alone, over six levels (clean first).")
curve_key = (text, size, use_crnn, reader is not None)
done = st.session_state.setdefault("ocr.curves", [])
if reader is None:
    st.caption("Needs EasyOCR.")
elif st.button("Compute the CER curves", key="ocr.curve", disabled=curve_key in done,
               help="36 EasyOCR reads (and 36 CRNN reads): about 10-20 s the first time, then cached."):
    bar = Progress(st.empty())
    co.cer_curve(text, size, use_crnn, _progress=bar)
    bar.done()
    done.append(curve_key)
    del done[:-4]
if reader is not None and curve_key in done:
    curve = co.cer_curve(text, size, use_crnn)
    g1, g2 = st.columns(2)
    with g1:
        co.cer_lines(curve, "EasyOCR")
    if use_crnn:
        with g2:
            co.cer_lines(curve, "small CRNN")
    st.download_button("Download the CER table (CSV)", lambda: rows_csv(curve), file_name="ocr_cer_curve.csv",
                       mime="text/csv", key="ocr.curve.csv")
    st.caption("Levels per step: " + "; ".join(f"{C[n].label}: {', '.join(f'{v:g}' for v in C[n].sweep)}"
                                               for n in ocr.ORDER))

# --- 3. The small CRNN's insides ---------------------------------------------------------------
st.subheader("3 · Inside a small CRNN + CTC (trained on this machine)")
facts = co.crnn_facts()
met = facts["metrics"]
left, right = st.columns([3, 2])
with left:
    st.dataframe(facts["layers"], hide_index=True, width="stretch")
with right:
    st.markdown(f"**{facts['parameters']:,} parameters.** Trained by this project (and shipped with it) with CTC loss on "
                f"{met.get('n_train', '?')} rendered lines (random words, letter strings and numbers; Pillow's font "
                f"and two Hershey fonts; random sizes, ink, offsets, blur, noise) for {met.get('epochs', '?')} epochs "
                f"in {met.get('train_seconds', 0):.0f} s.")
    if met:
        st.metric("Held-out CER, clean lines", f"{met['test_cer_clean']:.1%}")
        st.metric("Held-out CER, jittered lines", f"{met['test_cer_jitter']:.1%}")
if use_crnn:
    st.image(1.0 - c_run["input"], caption="What the CRNN sees: the degraded line at height 32 "
             "(each output column covers 4 pixels)", clamp=True)
    co.heatmap(c_run["probs"], facts["alphabet"], k=len(facts["alphabet"]),
               title=f"All {len(c_run['probs'])} columns × all {len(facts['alphabet'])} classes")
    st.dataframe(co.steps_table(c_run["steps"]), hide_index=True, width="stretch")
else:
    st.info(f"Type text using only {literal(facts['charset'], 60)} to see the CRNN read it.", icon="🔡")

page.close()
