"""CV Interview Lab — Home: what the lab is, and every question with a link to its page."""

from pathlib import Path

import streamlit as st

from components.sidebar import lab_sidebar
from core.topics import QUESTIONS, filter_questions, grouped, page_by_slug

# A Material icon, not an emoji: checking an emoji compiles Streamlit's emoji table (0.15 s of cold start).
st.set_page_config(page_title="CV Interview Lab", page_icon=":material/biotech:", layout="wide")
ROOT = Path(__file__).resolve().parent

st.title("🔬 CV Interview Lab")
st.markdown(
    "Fifty computer-vision interview questions, each answered by a page that runs the idea "
    "live on **your own photo**: real detectors, saliency maps, quantised models and small "
    "networks trained in front of you. Pick an image in the sidebar (a sample, an upload or "
    "your camera); it stays active on every page."
)

query = st.text_input("Search the questions", placeholder="e.g. anchor, quantization, q24, tracking occlusion")
found = filter_questions(query)
built = sum(1 for q in QUESTIONS if (ROOT / page_by_slug(q.page).file).exists())
st.caption(f"{len(found)} of {len(QUESTIONS)} questions shown · "
           + ("every one answered by a live page." if built == len(QUESTIONS) else
              f"{built} answered by a live page so far; the others are listed without a link until their page exists."))

for group, pages in grouped(found):
    st.subheader(group, divider="gray")
    for page, questions in pages:
        # Few elements per card: each is a message the browser must take in on a cold start.
        blurb_and_questions = f":small[:gray[{page.blurb}]]\n\n" + "\n".join(
            f"- **Q{q.number}.** {q.text}" for q in questions)
        with st.container(border=True):
            if (ROOT / page.file).exists():
                # The emoji goes in the label: as ``icon=`` Streamlit validates it against its emoji
                # table, whose first use costs 0.2 s of the cold start.
                st.page_link(page.file, label=f"{page.icon} **{page.title}** — open the live demo")
                st.markdown(blurb_and_questions)
            else:
                st.markdown(f"{page.icon} **{page.title}** · *page coming*\n\n{blurb_and_questions}")
if not found:
    st.info("No question matches that search. Try fewer or shorter words.")

# The sidebar comes last so the page text is on screen before torch is imported.
ctx = lab_sidebar()
st.divider()
st.caption(f"Device in use: **{ctx.device.name}** (change it in the sidebar).")
