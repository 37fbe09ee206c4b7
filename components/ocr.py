"""Cached, bounded work and charts for the OCR page (core.ocr does the maths, models/ the models).

EasyOCR runs once per image digest (detection + recognition) and once per rendered-line
setting; the shared Reader is used under ``core.hooks.lock_for`` (models.easyocr_models)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import ocr
from core.jobs import MODEL_TURNS

TOP_K = 12  # characters (rows) in the heatmaps


@st.cache_resource(max_entries=1, show_spinner=False)
def _reader_or_error():
    from models.easyocr_models import EasyOCRUnavailable, load_reader

    try:
        return load_reader(), None
    except EasyOCRUnavailable as exc:
        return None, str(exc)


def reader():
    """(Reader, None) or (None, the sentence that says why EasyOCR cannot run)."""
    with st.spinner("Loading EasyOCR (CRAFT detector + English recogniser, first use only)…"):
        found, err = _reader_or_error()
    if err is not None:
        _reader_or_error.clear()  # try again on the next rerun (e.g. after a reinstall)
    return found, err


@st.cache_data(max_entries=16, show_spinner=False)
@MODEL_TURNS.take
def read(digest: str, _rgb: np.ndarray) -> list:
    """EasyOCR's lines (models.easyocr_models.Line) on the image with this digest."""
    from models.easyocr_models import read_image

    return read_image(reader()[0], _rgb)


@st.cache_data(max_entries=32, show_spinner=False)
def line_steps(digest: str, index: int, _rgb: np.ndarray, _line) -> dict:
    """Per-column probabilities of one detected line and its greedy decoding; says whether
    EasyOCR's own text came from the first pass or its contrast-stretched second pass."""
    from models import easyocr_models as eo

    r = reader()[0]
    _, grey = eo._bgr_grey(_rgb)
    alphabet = eo.alphabet(r)
    probs = eo.line_probs(r, grey, _line)
    steps = ocr.ctc_greedy(probs, alphabet)
    passed = "first"
    if steps.text != _line.text:
        probs2 = eo.line_probs(r, grey, _line, contrast=True)
        steps2 = ocr.ctc_greedy(probs2, alphabet)
        if steps2.text == _line.text:
            probs, steps, passed = probs2, steps2, "contrast"
        else:
            passed = "differs"
    return {"probs": probs, "alphabet": alphabet, "steps": steps, "pass": passed}


def rendered(text: str, levels: tuple, size: int) -> np.ndarray:
    return ocr.degrade(ocr.render_line(text, size=size), dict(levels), seed=0)


@st.cache_data(max_entries=64, show_spinner=False)
@MODEL_TURNS.take
def easyocr_on_line(text: str, levels: tuple, size: int) -> dict:
    """EasyOCR's recogniser on the rendered, degraded line (the whole image is the line)."""
    from models import easyocr_models as eo

    r = reader()[0]
    grey = rendered(text, levels, size)
    read_text, conf = eo.recognise_line(r, grey)
    return {"text": read_text, "confidence": conf, "cer": ocr.cer(text, read_text)}


@st.cache_resource(max_entries=1, show_spinner=False)
def crnn():
    from models.ocr_crnn import load_ocr_crnn

    return load_ocr_crnn()


@st.cache_data(max_entries=4, show_spinner=False)
def crnn_facts() -> dict:
    from models import ocr_crnn

    return {"layers": ocr_crnn.layer_table(128), "metrics": ocr_crnn.load_metrics() or {},
            "parameters": sum(p.numel() for p in crnn().parameters()), "charset": ocr_crnn.CHARSET,
            "alphabet": list(ocr_crnn.ALPHABET)}


@st.cache_data(max_entries=64, show_spinner=False)
@MODEL_TURNS.take
def crnn_on_line(text: str, levels: tuple, size: int) -> dict:
    from core.hooks import lock_for
    from models import ocr_crnn

    model = crnn()
    grey = rendered(text, levels, size)
    with lock_for(model):
        probs = ocr_crnn.column_probs(model, grey)
    steps = ocr.ctc_greedy(probs, ocr_crnn.ALPHABET)
    return {"text": steps.text, "cer": ocr.cer(text, steps.text), "probs": probs, "steps": steps,
            "input": ocr_crnn.to_line(grey)}


def fits_crnn(text: str) -> bool:
    from models.ocr_crnn import CHARSET

    return bool(text) and all(c in CHARSET for c in text)


@st.cache_data(max_entries=8, show_spinner=False)
def cer_curve(text: str, size: int, with_crnn: bool, _progress=None) -> list[dict]:
    """CER of each model at each sweep level of each challenge (one challenge at a time)."""
    jobs = [(name, step, lv) for name in ocr.ORDER for step, lv in enumerate(ocr.CHALLENGES[name].sweep)]
    rows = []
    for k, (name, step, lv) in enumerate(jobs):
        if _progress is not None:
            _progress(k / len(jobs), f"{ocr.CHALLENGES[name].label} = {lv}")
        levels = ((name, float(lv)),)
        reads = {"EasyOCR": easyocr_on_line(text, levels, size)}
        if with_crnn:
            reads["small CRNN"] = crnn_on_line(text, levels, size)
        rows += [{"challenge": name, "step": step, "level": float(lv), "model": model,
                  "cer": round(r["cer"], 4), "read": r["text"]} for model, r in reads.items()]
    if _progress is not None:
        _progress(1.0, "done")
    return rows


# --- charts -----------------------------------------------------------------------------


def heatmap(probs: np.ndarray, alphabet, *, k: int = TOP_K, title: str = "") -> None:
    """Columns x the k most probable characters (blank included), colour = probability."""
    top = ocr.top_classes(probs, k)
    names = ["blank ·" if i == 0 else "space" if alphabet[i] == " " else alphabet[i] for i in top]
    rows = [{"column": t, "character": names[j], "p": round(float(probs[t, c]), 4)}
            for t in range(len(probs)) for j, c in enumerate(top)]
    st.vega_lite_chart({
        "title": title,
        "data": {"values": rows},
        "mark": {"type": "rect", "tooltip": True},
        "encoding": {
            "x": {"field": "column", "type": "ordinal", "title": "column (left → right)",
                  "axis": {"labelOverlap": True}},
            "y": {"field": "character", "type": "nominal", "sort": names, "title": None,
                  "axis": {"labelOverlap": False}},  # every character named, not every other one
            "color": {"field": "p", "type": "quantitative", "title": "probability",
                      "scale": {"scheme": "blues", "domain": [0, 1]}},
        },
        "height": {"step": 18},
    }, width="stretch")


def cer_lines(rows: list[dict], model: str) -> None:
    data = [r for r in rows if r["model"] == model]
    st.vega_lite_chart({
        "title": f"{model}: character error rate as each challenge gets worse",
        "data": {"values": data},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "severity step (0 = clean)",
                  "axis": {"tickMinStep": 1, "format": "d"}},
            "y": {"field": "cer", "type": "quantitative", "title": "CER", "axis": {"format": "%"}},
            "color": {"field": "challenge", "type": "nominal", "title": None},
            "tooltip": [{"field": "challenge"}, {"field": "level"}, {"field": "cer", "format": ".1%"},
                        {"field": "read"}],
        },
        "height": 260,
    }, width="stretch")


def steps_table(steps: ocr.CtcSteps) -> list[dict]:
    return [
        {"step": "1 · per-column argmax (· = blank)", "sequence": "".join(steps.path), "length": len(steps.path)},
        {"step": "2 · merge repeats", "sequence": "".join(steps.merged), "length": len(steps.merged)},
        {"step": "3 · drop blanks = text", "sequence": steps.text, "length": len(steps.text)},
    ]
