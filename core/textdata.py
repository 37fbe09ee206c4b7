"""The project's own small labelled text set: reviews of imaginary products, positive or negative.

Every sentence is built from templates and word lists written for this lab::

    [opener] the <brand> <item> <verb> [negator] [intensifier] <adjective> [closer]

The label is the adjective's polarity, flipped when a negator ("not", "never") stands right
before it (an intensifier may sit in between: "not very good" is negative, "never really
disappointing" positive). Openers and closers are neutral filler, and on purpose half of them
carry a negation of their own that changes nothing ("i did not expect much ,", "though i am not
an expert"), with a plain twin ("i did expect much ,"). So the *set* of words in "i did not expect
much , the lamp is good" and "i did expect much , the lamp is not good" is the same while the
labels differ: a bag-of-words model cannot separate them, only word order (n-grams) can.

Split: every (item, adjective) pair belongs to either the training or the held-out side (a
seeded 25 % of pairs are held out), so a held-out sentence is a combination never seen in
training, while every word in it was seen. Everything depends only on ``seed`` (numpy's
Generator; no torch here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASSES = ("negative", "positive")
DATA_SEED = 43

BRANDS = ("zorbo", "quillet", "lumina", "vexa", "plinth", "marlo", "ostra", "brindle")
ITEMS = ("kettle", "lamp", "backpack", "blender", "keyboard", "tent", "watch", "speaker")
VERBS = ("is", "was", "feels", "seems", "looks")
NEGATORS = ("not", "never")
INTENSIFIERS = ("very", "really", "quite", "truly", "so")
POSITIVE = ("good", "great", "excellent", "reliable", "comfortable", "sturdy", "lovely",
            "impressive", "superb", "pleasant", "solid", "brilliant")
NEGATIVE = ("bad", "terrible", "awful", "flimsy", "disappointing", "noisy", "clumsy",
            "broken", "poor", "annoying", "useless", "cheap")
# (plain, with a negation that does not touch the adjective): neutral filler
OPENERS = (("i did expect much ,", "i did not expect much ,"),
           ("i had tried one before ,", "i had never tried one before ,"),
           ("honestly ,", "not going to lie ,"),
           ("after a week ,", "after a week , and not a day more ,"))
CLOSERS = (("for the price", "for the price , which is not much"),
           ("if you ask me", "though i am not an expert"),
           ("so far", "so far , never used it outdoors"))
NEGATION_WORDS = frozenset(NEGATORS) | {"n't", "hardly", "no"}

HELD_OUT_PAIRS = 0.25
NEGATED_SHARE = 0.35  # sentences whose adjective is negated


@dataclass(frozen=True)
class Sentence:
    text: str
    label: int  # index into CLASSES
    negated: bool  # a negator flips the adjective
    filler_negation: bool  # a negation word in the neutral filler (changes nothing)
    item: str
    adjective: str

    @property
    def has_negation(self) -> bool:
        """The sentence contains a negation word anywhere (adjective or filler)."""
        return self.negated or self.filler_negation


@dataclass
class TextSet:
    train: list[Sentence]
    test: list[Sentence]
    held_out_pairs: list[tuple[str, str]] = field(default_factory=list)
    seed: int = DATA_SEED

    def counts(self) -> list[dict]:
        rows = []
        for side, sents in (("train", self.train), ("held-out", self.test)):
            for c, name in enumerate(CLASSES):
                s = [x for x in sents if x.label == c]
                rows.append({"split": side, "class": name, "sentences": len(s),
                             "negated adjective": sum(x.negated for x in s),
                             "negation in filler": sum(x.filler_negation for x in s)})
        return rows


def held_out_pairs(seed: int = DATA_SEED, fraction: float = HELD_OUT_PAIRS) -> list[tuple[str, str]]:
    """The (item, adjective) pairs reserved for the held-out side; each adjective keeps at least
    one item on the training side (it always does at 25 % of 8 items)."""
    rng = np.random.default_rng([seed, 1])
    pairs = [(i, a) for i in ITEMS for a in POSITIVE + NEGATIVE]
    pick = rng.permutation(len(pairs))[: int(round(fraction * len(pairs)))]
    return sorted(pairs[k] for k in pick)


def make_sentence(rng: np.random.Generator, item: str, adjective: str) -> Sentence:
    negated = bool(rng.random() < NEGATED_SHARE)
    parts: list[str] = []
    filler_neg = False
    if rng.random() < 0.6:  # an opener, half the time its negated twin
        pair = OPENERS[int(rng.integers(len(OPENERS)))]
        neg = bool(rng.random() < 0.5)
        filler_neg |= neg
        parts.append(pair[neg])
    parts += ["the", BRANDS[int(rng.integers(len(BRANDS)))], item, VERBS[int(rng.integers(len(VERBS)))]]
    if negated:
        parts.append(NEGATORS[int(rng.integers(len(NEGATORS)))])
    if rng.random() < 0.4:
        parts.append(INTENSIFIERS[int(rng.integers(len(INTENSIFIERS)))])
    parts.append(adjective)
    if rng.random() < 0.6:
        pair = CLOSERS[int(rng.integers(len(CLOSERS)))]
        neg = bool(rng.random() < 0.5)
        filler_neg |= neg
        parts.append(pair[neg])
    positive = adjective in POSITIVE
    label = int(positive != negated)
    return Sentence(" ".join(parts), label, negated, filler_neg, item, adjective)


def make_text_set(n_train: int = 1600, n_test: int = 400, seed: int = DATA_SEED) -> TextSet:
    """``n_train`` sentences from the training pairs and ``n_test`` from the held-out pairs, no
    sentence repeated within or across the sides. Deterministic for ``seed``."""
    held = held_out_pairs(seed)
    held_set = set(held)
    train_pairs = [(i, a) for i in ITEMS for a in POSITIVE + NEGATIVE if (i, a) not in held_set]
    rng = np.random.default_rng([seed, 2])
    seen: set[str] = set()

    def draw(pairs, n):
        out: list[Sentence] = []
        tries = 0
        while len(out) < n and tries < 50 * n:
            tries += 1
            item, adj = pairs[int(rng.integers(len(pairs)))]
            s = make_sentence(rng, item, adj)
            if s.text not in seen:
                seen.add(s.text)
                out.append(s)
        return out

    return TextSet(draw(train_pairs, n_train), draw(held, n_test), held, seed)


def samples(sents: list[Sentence], per_class: int = 4, seed: int = 0) -> dict[str, list[Sentence]]:
    """A few sentences of each class, mixing plain and negated ones."""
    rng = np.random.default_rng(seed)
    out = {}
    for c, name in enumerate(CLASSES):
        pool = [s for s in sents if s.label == c]
        neg = [s for s in pool if s.negated]
        plain = [s for s in pool if not s.negated]
        k = per_class // 2
        pick = [plain[i] for i in rng.permutation(len(plain))[: per_class - k]]
        pick += [neg[i] for i in rng.permutation(len(neg))[:k]]
        out[name] = pick
    return out
