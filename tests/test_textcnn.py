"""CNNs for text (Q43): the tokenizer and vocabulary, the review set's split, the explanation is
exactly the forward pass (argmax n-gram, pooled = max, contributions + bias = logit), a short
seeded run learns far above chance, n-gram filters beat a bag-of-words CNN on negated held-out
sentences, determinism, and the page."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import textcnn as tc
from core import textdata as td


@pytest.mark.parametrize("text, tokens", [
    ("The lamp is GOOD.", ["the", "lamp", "is", "good", "."]),
    ("isn't great", ["is", "not", "great"]),
    ("It wasn’t bad!", ["it", "was", "not", "bad", "!"]),
    ("can't won't", ["can", "not", "will", "not"]),
    ("  never   disappointing ,so far ", ["never", "disappointing", ",", "so", "far"]),
    ("", []),
    ("zorbo's 2 lamps", ["zorbo's", "2", "lamps"]),
])
def test_tokenize(text, tokens):
    assert tc.tokenize(text) == tokens


@pytest.mark.parametrize("text, ids, shown", [
    ("good lamp", [3, 5], ["good", "lamp"]),
    ("the lamp is not good", [7, 5, 4, 6, 3], ["the", "lamp", "is", "not", "good"]),
    ("the gadget is good", [7, 1, 4, 3], ["the", "<unk>", "is", "good"]),
    ("Isn't it?", [4, 6, 1, 1], ["is", "not", "<unk>", "<unk>"]),
    ("", [], []),
])
def test_vocab_encodes_and_marks_unknown_words(text, ids, shown):
    vocab = tc.Vocab.build(["the lamp is good", "The lamp is not good."])
    assert vocab.words == ("<pad>", "<unk>", ".", "good", "is", "lamp", "not", "the")
    assert vocab.encode(text) == ids
    assert vocab.shown(text) == shown


def test_text_set_split_is_new_combinations_of_known_words():
    data = td.make_text_set()
    assert (len(data.train), len(data.test)) == (1600, 400)
    train_pairs = {(s.item, s.adjective) for s in data.train}
    test_pairs = {(s.item, s.adjective) for s in data.test}
    assert not train_pairs & test_pairs  # held-out sentences pair an item and adjective never seen together
    assert not {s.text for s in data.train} & {s.text for s in data.test}
    vocab = tc.Vocab.build([s.text for s in data.train])
    assert all(1 not in vocab.encode(s.text) for s in data.test)  # ... but every word was seen
    for s in data.train[:200] + data.test[:200]:  # the label rule
        assert s.label == int((s.adjective in td.POSITIVE) != s.negated)
        toks = tc.tokenize(s.text)
        if s.negated:
            j = toks.index(s.adjective)
            assert toks[j - 1] in td.NEGATORS or (toks[j - 2] in td.NEGATORS and toks[j - 1] in td.INTENSIFIERS)
    assert data.train == td.make_text_set().train  # deterministic
    counts = {(r["split"], r["class"]): r["sentences"] for r in data.counts()}
    assert sum(counts.values()) == 2000 and min(counts.values()) > 150


def test_masking_makes_features_independent_of_padding():
    model = tc.make_model(20, 8, (1, 2, 3), seed=3).eval()
    short = [4, 5, 6]
    with torch.no_grad():
        alone, _ = model.features(*tc.batch([short], 3))
        padded, _ = model.features(*tc.batch([short, list(range(2, 14))], 3))
    assert torch.allclose(alone[0], padded[0], atol=1e-6)  # equal up to float summation order


# --- one shared seeded run: the chosen CNN (widths 1/2/3) and the bag-of-words CNN ----------------

DATA = td.make_text_set()


@pytest.fixture(scope="module")
def run():
    return tc.compare(widths=(1, 2, 3), emb=32, epochs=8, seed=0, data=DATA)


def test_short_run_is_far_above_chance(run):
    """Seed 0, 8 epochs (~3 s): 100 % held-out; bar 90 % against 50 % chance."""
    assert run["final"][run["main"]]["test_accuracy"] >= 0.90


def test_ngram_filters_beat_bag_of_words_on_negated_held_out_sentences(run):
    """Measured by hand at these settings (8 epochs, emb 32), seeds 0 / 1 / 2:
    widths 1/2/3: 100 / 100 / 100 % on held-out sentences containing a negation word;
    bag of words:  56 / 54 / 58 %  (and 19 / 13 / 25 % on negated adjectives, where it reads the
    adjective's own polarity). Margin asserted: 25 points (it was >= 42 on all three seeds). On
    sentences with no negation both are near 100 %: order matters only where negation is."""
    main, bow = run["final"][run["main"]], run["final"][run["bow"]]
    assert main["negation"] - bow["negation"] >= 0.25, (main, bow)
    assert main["negated_adjective"] - bow["negated_adjective"] >= 0.4, (main, bow)
    assert bow["no_negation"] >= 0.9  # the bag of words is not broken: it fails only where order matters


@pytest.fixture(scope="module")
def trained(run):
    model = tc.load_model(run["vocab"], run["widths"], run["emb"], run["state"][run["main"]])
    return model, tc.Vocab(tuple(run["vocab"]))


@pytest.mark.parametrize("sentence", ["the zorbo lamp is not very good",
                                      "i did not expect much , the vexa tent was never disappointing",
                                      "gizmo", "The Frobnicator is great!"])
def test_explanation_is_the_forward_pass(trained, sentence):
    model, vocab = trained
    ex = tc.explain(model, vocab, sentence)
    assert len(ex["filters"]) == 3 * tc.N_FILTERS
    ids, lengths = tc.batch([vocab.encode(sentence)], 3)
    with torch.no_grad():
        logits = model(ids, lengths)[0].numpy()
        pooled, _ = model.features(ids, lengths)
    assert np.array_equal(ex["logits"], logits)
    for f, p in zip(ex["filters"], pooled[0].numpy()):
        assert f["pooled"] == float(p) == float(f["activations"].max())  # pooled IS the max over time
        assert f["argmax"] == int(np.argmax(f["activations"]))
        assert f["ngram"] == ex["tokens"][f["argmax"]:f["argmax"] + f["width"]]
        assert len(f["activations"]) == max(ex["n_tokens"] - f["width"] + 1, 1)
    pred = ex["pred"]
    assert sum(f["contribution"] for f in ex["filters"]) + ex["bias"] == pytest.approx(float(logits[pred]), abs=1e-4)
    margin = float(logits[pred] - logits[1 - pred])
    assert sum(f["evidence"] for f in ex["filters"]) + ex["bias_evidence"] == pytest.approx(margin, abs=1e-4)
    assert ex["probs"][pred] >= 0.5


def test_the_trained_net_reads_negation_and_unknown_words(trained):
    model, vocab = trained
    p = tc.predict_proba(model, vocab, ["the zorbo lamp is good", "the zorbo lamp is not good",
                                        "the zorbo lamp is disappointing", "the zorbo lamp was never disappointing"])
    assert list(p.argmax(1)) == [1, 0, 0, 1]
    ex = tc.explain(model, vocab, "the frobnicator lamp is good")
    assert ex["tokens"][1] == "<unk>" and ex["unknown"] == ["<unk>"]
    top = tc.top_filters(tc.explain(model, vocab, "the zorbo lamp is not good"), 3)
    assert any("not" in f["ngram"] and f["width"] >= 2 for f in top), top  # an n-gram with the negation decides


def test_same_seed_same_history():
    small = td.make_text_set(200, 100)
    a = tc.train(small, widths=(2,), emb=8, epochs=2, seed=5)
    b = tc.train(small, widths=(2,), emb=8, epochs=2, seed=5)
    assert a.history == b.history
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    c = tc.train(small, widths=(2,), emb=8, epochs=2, seed=6)
    assert c.history != a.history


def test_progress_reports_both_runs_with_their_curves():
    calls = []
    tc.compare(widths=(2,), emb=8, epochs=2, seed=0, data=td.make_text_set(200, 100),
               progress=lambda frac, text, partial=None: calls.append((frac, text, partial)))
    fracs = [c[0] for c in calls]
    assert fracs == sorted(fracs) and {0.25, 0.5, 0.75, 1.0} <= set(fracs)  # each epoch end, in one bar
    last = calls[-1][2]
    assert [(r["model"], r["epoch"]) for r in last] == [("widths 2", 1), ("widths 2", 2),
                                                         ("bag of words (width 1)", 1), ("bag of words (width 1)", 2)]


def test_architecture_counts_the_parameters():
    model = tc.make_model(100, 16, (1, 2, 3))
    rows = tc.architecture(100, 16, (1, 2, 3), length=12)
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert rows[2]["output shape"] == f"{tc.N_FILTERS} × 12" and rows[4]["output shape"] == f"{tc.N_FILTERS} × 10"


# --- the page -------------------------------------------------------------------------------------

PAGE = "pages/30_CNNs_for_text.py"


def test_page_trains_from_a_link_and_predicts_a_typed_sentence():
    from components import textcnn as ct
    from tests.test_pages import _page

    at = _page(PAGE, widths="2-3", emb="16", epochs="8", seed="1")  # ~3 s for both nets
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[0].value["sentences"].sum() == 2000
    next(b for b in at.button if "Train" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    acc = float(metrics["widths 2/3 (held-out)"].rstrip("%")) / 100
    assert acc >= 0.85, metrics
    assert "bag of words (held-out)" in metrics
    at.text_input(key="textcnn.sentence").set_value("the zorbo kettle isn't reliable at all").run()
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(m.value for m in at.markdown)
    assert "Prediction: **negative**" in text, text
    assert "reads: the zorbo kettle is not reliable \\<unk\\> \\<unk\\>" in text  # "at", "all" never seen
    assert "Filter #" in text and ":orange-background[" in text  # the top filters with their n-gram marked
    ct.run_compare.clear()


def test_highlights_mark_exactly_the_window_and_escape_what_the_user_typed():
    from components import textcnn as ct

    tokens = ["the", "lamp", "is", "not", "good", "<unk>"]
    assert ct.highlighted(tokens, 3, 2) == ("the lamp is :orange-background[not] :orange-background[good] "
                                            ":gray[\\<unk\\>]")
    heat = ct.word_heat(["a](http://x)", "good"], [{"argmax": 0, "width": 1, "evidence": 2.0},
                                                   {"argmax": 1, "width": 1, "evidence": 0.5}])
    assert heat == ":red-background[**a\\]\\(http\\:\u2060//x\\)**] :orange-background[good]"


def test_page_controls_start_at_the_recipe_of_core():
    """Each control is declared once on the page, with its default taken from core.textcnn."""
    from components import textcnn as ct
    from tests.test_pages import _page

    at = _page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    w = at.radio(key="textcnn.widths")
    assert (w.label, w.value, list(w.options)) == ("Filter widths (n-gram sizes)", tc.DEFAULT_WIDTHS,
                                                   list(tc.WIDTH_CHOICES))
    assert w.help == f"Each width gets its own {tc.N_FILTERS} filters. '1' alone is a bag-of-words CNN."
    emb = at.select_slider(key="textcnn.emb")
    assert (emb.label, emb.value) == ("Embedding size", tc.EMB)
    e = at.slider(key="textcnn.epochs")
    assert (e.label, e.value, e.min, e.max, e.step) == ("Epochs", tc.EPOCHS, *ct.EPOCH_RANGE, 1)

