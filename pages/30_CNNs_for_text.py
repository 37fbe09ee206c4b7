"""CNNs for text (Q43): a Kim-style 1-D CNN (word embeddings, n-gram filters of widths 1-3, max over
time, linear head) trained live on the lab's own reviews of imaginary products, against a
bag-of-words CNN (width-1 filters only); a typed sentence's prediction and the n-grams that fired."""

import streamlit as st

from components.frame import lab_page
from components import textcnn as ct
from components.ui import epoch_lines, train_button
from components.urlstate import UrlState
from core import textcnn as tc  # numpy only at import; torch inside functions
from core.params import Param
from core.safetext import literal
from core.tables import rows_csv
from core.textdata import CLASSES

page = lab_page("cnns-for-text")
ctx = page.ctx

WIDTHS = Param(default=tc.DEFAULT_WIDTHS, kind=str, choices=tuple(tc.WIDTH_CHOICES),
               label="Filter widths (n-gram sizes)",
               help=f"Each width gets its own {tc.N_FILTERS} filters. '1' alone is a bag-of-words CNN.")
EMB = Param(default=tc.EMB, kind=int, choices=ct.EMB_CHOICES, label="Embedding size",
            help="Numbers per word vector, learned from scratch with the rest of the net.")
EPOCHS = Param(default=tc.EPOCHS, kind=int, lo=ct.EPOCH_RANGE[0], hi=ct.EPOCH_RANGE[1], step=1, label="Epochs")
SEED = Param(default=0, kind=int, lo=0, hi=99, step=1, label="Seed",
             help="Initialisation, dropout and shuffling; both nets share it.")
url = UrlState("textcnn")
DEFAULT_SENTENCE = "i did not expect much , the zorbo lamp is never disappointing"

# --- 1. The data ---------------------------------------------------------------------------------
st.subheader("1 · The data: reviews of products that do not exist")
info = ct.dataset()
left, right = st.columns([2, 3])
with left:
    st.dataframe(info["counts"], hide_index=True, width="stretch")
    st.caption(f"Vocabulary (training side): **{info['vocab']}** words incl. `<pad>` and `<unk>`; sentences are "
               f"{info['median_len']} tokens long (median), at most {info['max_len']}. Held-out sentences pair an "
               f"item with an adjective never seen together in training ({len(info['held_out_pairs'])} of 192 pairs, "
               "e.g. " + ", ".join(info["held_out_pairs"][:4]) + "); every word in them was seen.")
with right:
    for name in CLASSES:
        st.markdown(f"**{name}**")
        st.dataframe(info["samples"][name], hide_index=True, width="stretch")
st.markdown("The label is the adjective's polarity, flipped by a `not` / `never` right before it (an intensifier "
            "may sit between: *not very good*). Half the openers and closers carry a negation that changes "
            "nothing (*i did **not** expect much ,*), next to a plain twin (*i did expect much ,*). So "
            "*i did not expect much , the lamp is good* and *i did expect much , the lamp is not good* contain "
            "the **same set of words** with opposite labels: only word order can tell them apart.")

# --- 2. The architecture -------------------------------------------------------------------------
st.subheader("2 · The network")
c_w, c_e = st.columns(2)
widths_key = url.radio("widths", WIDTHS, c_w, horizontal=True)
emb = int(url.select_slider("emb", EMB, c_e))
widths = tc.WIDTH_CHOICES[widths_key]
left, right = st.columns([3, 2])
with left:
    length = info["median_len"]
    st.dataframe(tc.architecture(info["vocab"], emb, widths, length=length), hide_index=True, width="stretch")
with right:
    st.markdown(f"Shapes for a {length}-token sentence. A width-*w* filter is a {emb} × *w* weight block slid "
                "along the sentence one word at a time: at each position it scores *w* consecutive word vectors "
                "— an n-gram detector. **Max over time** keeps one number per filter (*did this n-gram occur "
                "anywhere?*), so sentences of any length give the head the same "
                f"{tc.N_FILTERS * len(widths)} numbers. Padding positions are masked before the max.")

# --- 3. Train --------------------------------------------------------------------------------------
st.subheader("3 · Train it, and a bag-of-words CNN beside it")
c_ep, c_s = st.columns([4, 1])
epochs = int(url.slider("epochs", EPOCHS, c_ep))
seed = int(url.number_input("seed", SEED, c_s))
url.sync()
bow_note = ("" if widths == tc.BAG_OF_WORDS else
            f" and a bag-of-words CNN ({tc.N_FILTERS * len(widths)} filters of width 1: the same number of "
            "filters, but none can see word order)")
st.markdown(f"Trains the CNN with widths {'/'.join(map(str, widths))}{bow_note} on the 1,600 training sentences "
            f"for {epochs} epochs (Adam, batches of 32, same seed and order); accuracy on the 400 held-out "
            "sentences after each epoch. With the defaults: about 5 s for both on one quiet core (15 s measured "
            "while the machine was busy).")
settings = (widths, emb, epochs, seed)
result, stopped = train_button("Train the text CNN", key="textcnn.train", settings=settings,
                               start=lambda bar: ct.run_compare(*settings, _progress=bar))
if result is None:
    if stopped and stopped.get("partial"):
        epoch_lines(stopped["partial"], rule=("chance", 0.5))
    st.caption("Not trained yet for these settings in this session: press the button (results are shared between "
               "sessions). The prediction and the filters that fired appear below once a model exists.")
else:
    main, bow = result["main"], result["bow"]
    order = [main] + ([bow] if bow else [])
    c1, c2 = st.columns(2)
    with c1:
        epoch_lines(result["curve"], order=order, rule=("chance", 0.5))
    with c2:
        epoch_lines(result["curve"], y="loss", title="training loss (CE)", percent=False,
                    unit_range=False, order=order, height=220)
    final = result["final"]
    m = st.columns(4)
    m[0].metric(f"{main} (held-out)", f"{final[main]['test_accuracy']:.1%}")
    if bow:
        m[1].metric("bag of words (held-out)", f"{final[bow]['test_accuracy']:.1%}",
                    f"{(final[bow]['test_accuracy'] - final[main]['test_accuracy']) * 100:+.1f} points")
        m[2].metric("With a negation word: n-grams vs bag", f"{final[main]['negation']:.0%} vs {final[bow]['negation']:.0%}")
    m[3].metric("Training time", " / ".join(f"{result['seconds'][k]:.1f} s" for k in order))
    ct.subset_bars(final, order)
    if bow:
        st.caption(f"This run: on held-out sentences with a negated adjective the n-gram CNN scores "
                   f"{final[main]['negated_adjective']:.0%}, the bag of words {final[bow]['negated_adjective']:.0%}; "
                   f"with no negation word at all {final[main]['no_negation']:.0%} vs {final[bow]['no_negation']:.0%}. "
                   "What we measured (defaults, seeds 0-2): 100 % vs 54-58 % with a negation word, both ≥ 98 % "
                   "without: the bag of words reads *not good* as *good*.")
    st.download_button("Download curves (CSV)", lambda: rows_csv(result["curve"]),
                       file_name=f"textcnn_w{widths_key}_e{emb}_ep{epochs}_s{seed}.csv", mime="text/csv",
                       key="textcnn.csv")

    # --- 4. Type a sentence ----------------------------------------------------------------------
    st.subheader("4 · Type a review: which n-grams fired?")
    sentence = st.text_input("Your sentence", value=DEFAULT_SENTENCE, max_chars=200, key="textcnn.sentence",
                             help="Words the training set never had become <unk> (the net has no vector for them).")
    if not tc.tokenize(sentence):
        st.warning("Type a few words (letters or digits) to classify.")
    else:
        model, vocab = ct.trained(settings, main, result)
        ex = ct.explain(settings, main, sentence, model, vocab)
        pred, probs = ex["pred"], ex["probs"]
        shown = " ".join(ex["tokens"][: ex["n_tokens"]])
        st.markdown(f"Prediction: **{CLASSES[pred]}** ({probs[pred]:.1%}) by the {main} CNN. "
                    f"The model reads: {literal(shown, 300)}"
                    + (f" — {len(ex['unknown'])} word(s) unknown, read as `<unk>`." if ex["unknown"] else "."))
        if bow:
            bmodel, _ = ct.trained(settings, bow, result)
            bex = ct.explain(settings, bow, sentence, bmodel, vocab)
            st.caption(f"The bag-of-words CNN says **{CLASSES[bex['pred']]}** ({bex['probs'][bex['pred']]:.1%}).")
        top = tc.top_filters(ex, 5)
        names = [f"#{f['index']} (w{f['width']})" for f in top]
        st.markdown("**Words behind the prediction** (words inside a top-5 filter's picked n-gram: red and bold where that "
                    "filter's evidence is at least half the strongest, orange below):")
        st.markdown(ct.word_heat(ex["tokens"], top))  # tokens escaped by core.safetext.literal
        c1, c2 = st.columns([2, 3])
        with c1:
            for f, name in zip(top, names):
                st.markdown(f"**Filter {name}** max {f['pooled']:.2f} at position {f['argmax'] + 1} · "
                            f"evidence {f['evidence']:+.2f}  \n{ct.highlighted(ex['tokens'], f['argmax'], f['width'])}")
        with c2:
            ct.activation_bars(ex["tokens"], top, names)
        total = sum(f["contribution"] for f in ex["filters"])
        st.caption(f"Max-over-time pooling: each bar chart is one filter's ReLU output at every position (labelled by "
                   f"the n-gram under it); only the orange maximum reaches the head. The {len(ex['filters'])} "
                   f"contributions (pooled value × head weight to *{CLASSES[pred]}*) sum to {total:+.3f}; with the "
                   f"bias {ex['bias']:+.3f} that is the logit {ex['logits'][pred]:+.3f}. *Evidence* uses the weight "
                   "difference between the two classes, so it adds up to the log-odds that decide the probability.")
        with st.expander("All filters for this sentence"):
            st.dataframe([{"filter": f["index"], "width": f["width"], "n-gram": " ".join(f["ngram"]),
                           "position": f["argmax"] + 1, "pooled (max)": round(f["pooled"], 4),
                           "head weight": round(f["weight"], 4), "contribution": round(f["contribution"], 4),
                           "evidence": round(f["evidence"], 4)}
                          for f in sorted(ex["filters"], key=lambda f: -f["evidence"])],
                         hide_index=True, width="stretch")

page.close()
