"""Cached, bounded work and charts for the CNNs-for-text page (core.textcnn does the maths)."""

from __future__ import annotations


import streamlit as st

from components.session import session_id
from core.safetext import literal

EMB_CHOICES = (8, 16, 32, 64)
EPOCH_RANGE = (1, 20)
SUBSETS = {"test_accuracy": "all held-out", "no_negation": "no negation word",
           "negation": "a negation word anywhere", "negated_adjective": "negated adjective"}


@st.cache_data(max_entries=2, show_spinner=False)
def dataset() -> dict:
    """Counts, samples and vocabulary of the fixed review set (plain data)."""
    from core import textcnn, textdata

    data = textdata.make_text_set()
    vocab = textcnn.Vocab.build([s.text for s in data.train])
    lengths = [len(textcnn.tokenize(s.text)) for s in data.train]
    samples = textdata.samples(data.train, per_class=4)
    return {
        "counts": data.counts(),
        "samples": {c: [{"sentence": s.text, "negated adjective": s.negated, "negation in filler": s.filler_negation}
                        for s in ss] for c, ss in samples.items()},
        "vocab": len(vocab), "median_len": int(sorted(lengths)[len(lengths) // 2]), "max_len": max(lengths),
        "held_out_pairs": [f"{i} + {a}" for i, a in data.held_out_pairs],
    }


@st.cache_data(max_entries=8, show_spinner=False)
def run_compare(widths: tuple[int, ...], emb: int, epochs: int, seed: int, _progress=None) -> dict:
    """The chosen CNN and the bag-of-words CNN (:func:`core.textcnn.compare`) in a shared training slot."""
    from core import textcnn
    from core.jobs import TRAINING

    with TRAINING.slot(session_id()) as deadline:
        return textcnn.compare(widths=widths, emb=emb, epochs=epochs, seed=seed, progress=_progress,
                               deadline=deadline)


@st.cache_resource(max_entries=4, show_spinner=False)
def trained(settings: tuple, which: str, _result: dict):
    """(model, vocab) of one finished run, rebuilt from its state dict, shared read-only."""
    from core import textcnn

    widths = _result["model_widths"][which]
    model = textcnn.load_model(_result["vocab"], widths, _result["emb"], _result["state"][which])
    return model, textcnn.Vocab(tuple(_result["vocab"]))


@st.cache_data(max_entries=32, show_spinner=False)
def explain(settings: tuple, which: str, sentence: str, _model, _vocab) -> dict:
    from core import textcnn

    return textcnn.explain(_model, _vocab, sentence)


def subset_bars(final: dict, order: list[str]) -> None:
    rows = [{"sentences": SUBSETS[k], "model": m, "accuracy": final[m][k]}
            for k in SUBSETS for m in order if final[m][k] == final[m][k]]  # skip NaN (empty subset)
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "sentences", "type": "nominal", "title": None, "sort": list(SUBSETS.values())},
            "yOffset": {"field": "model", "sort": order},
            "x": {"field": "accuracy", "type": "quantitative", "title": "held-out accuracy",
                  "scale": {"domain": [0, 1]}, "axis": {"format": "%"}},
            "color": {"field": "model", "type": "nominal", "title": None, "sort": order},
        },
        "height": {"step": 16},
    }, width="stretch")


def _word(token: str, mark: str | None) -> str:
    """One token as Markdown (user text: escaped by ``literal``), with a Streamlit colour directive."""
    text = literal(token, 60)
    if token in ("<unk>", "<pad>"):
        return f":gray[{text}]"
    if mark == "red-background":  # the strongest words also in bold: Streamlit's background tints are pale
        text = f"**{text}**"
    return f":{mark}[{text}]" if mark else text


def highlighted(tokens: list[str], start: int, width: int) -> str:
    """Markdown: the tokens with the window [start, start + width) marked."""
    return " ".join(_word(t, "orange-background" if start <= i < start + width else None)
                    for i, t in enumerate(tokens))


def word_heat(tokens: list[str], filters: list[dict]) -> str:
    """Markdown: each word marked by the largest evidence of any shown filter whose max window
    covers it - strong (at least half the top word's) or weaker."""
    score = [0.0] * len(tokens)
    for f in filters:
        for i in range(f["argmax"], min(f["argmax"] + f["width"], len(tokens))):
            score[i] = max(score[i], f["evidence"])
    top = max(score, default=0.0)

    def mark(s: float) -> str | None:
        if top <= 0 or s <= 0:
            return None
        return "red-background" if s >= top / 2 else "orange-background"

    return " ".join(_word(t, mark(s)) for t, s in zip(tokens, score))


def activation_bars(tokens: list[str], filters: list[dict], names: list[str]) -> None:
    """One small bar chart per filter: its ReLU activation at each window position (labelled by
    the n-gram under it); the max-over-time bar is the one coloured, with its value printed."""
    rows = []
    for f, name in zip(filters, names):
        for p, a in enumerate(f["activations"]):
            gram = " ".join(tokens[p:p + f["width"]])
            # zero-padded: an ordinal axis in a facet may sort its labels as text ("11." before "2.")
            rows.append({"filter": name, "position": f"{p + 1:02d}. {gram}", "p": p, "activation": float(a),
                         "picked": "max over time" if p == f["argmax"] else "other positions"})
    st.vega_lite_chart({
        "data": {"values": rows},
        "facet": {"row": {"field": "filter", "type": "nominal", "title": None, "sort": names,
                          "header": {"labelAngle": 0, "labelAlign": "left", "labelFontWeight": "bold"}}},
        "spec": {
            "layer": [
                {"mark": {"type": "bar", "tooltip": True},
                 "encoding": {"x": {"field": "position", "type": "ordinal", "sort": {"field": "p"}, "title": None,
                                    "axis": {"labelAngle": -35, "labelLimit": 140}},
                              "y": {"field": "activation", "type": "quantitative", "title": "ReLU(conv)"},
                              "color": {"field": "picked", "type": "nominal", "title": None,
                                        "scale": {"domain": ["max over time", "other positions"],
                                                  "range": ["#e67e00", "#b0bec5"]}}}},
                {"transform": [{"filter": "datum.picked == 'max over time'"}],
                 "mark": {"type": "text", "dy": -6, "fontWeight": "bold"},
                 "encoding": {"x": {"field": "position", "type": "ordinal", "sort": {"field": "p"}},
                              "y": {"field": "activation", "type": "quantitative"},
                              "text": {"field": "activation", "format": ".2f"}}},
            ],
            "height": 90,
        },
        "resolve": {"scale": {"x": "independent", "y": "independent"}},
    })
