"""Tests for core/topics.py: the catalogue of pages and questions."""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also works under a bare `pytest` run
    sys.path.insert(0, str(ROOT))

from core import topics  # noqa: E402
from core.topics import (  # noqa: E402
    GROUPS,
    PAGES,
    QUESTIONS,
    Page,
    Question,
    filter_questions,
    grouped,
    page_by_file,
    page_by_slug,
    questions_for,
)

FILE_RE = re.compile(r"^pages/\d\d_[A-Za-z0-9_\-]+\.py$")

EXPECTED_GROUPS: dict[str, list[str]] = {
    "Detection and segmentation": [
        "Object detection", "Anchor boxes", "Mask R-CNN and instance segmentation",
        "Semantic segmentation", "Object tracking",
    ],
    "Inside the network and robustness": [
        "Feature extraction", "Interpretability", "Occlusion and illumination",
        "Noise and outliers", "Adversarial attacks", "Missing data",
    ],
    "Efficiency and deployment": [
        "Quantization", "GPU acceleration", "Knowledge distillation", "Deployment",
        "Frameworks", "Distributed training",
    ],
    "How networks learn": [
        "Backpropagation", "Transfer learning", "Data augmentation", "Pooling",
        "Class imbalance", "Self-supervised learning", "Ensembles", "Attention", "Multi-label",
    ],
    "Beyond plain classification": [
        "OCR", "Embeddings and retrieval", "Medical imaging and U-Net", "CNNs for text",
        "Multi-modal fusion",
    ],
}


# --------------------------------------------------------------------------- topics.md


def _find_topics_md() -> Path | None:
    for candidate in (ROOT / "shared" / "topics.md", ROOT.parent / "shared" / "topics.md"):
        if candidate.is_file():
            return candidate
    return None


def _parse_topics_md(path: Path) -> dict[int, tuple[str, list[str], str]]:
    """{number: (paraphrase, [page titles, main first], raw page cell)} from the table."""
    rows: dict[int, tuple[str, list[str], str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].isdigit():
            continue
        number, paraphrase, page_cell = int(cells[0]), cells[1], cells[2]
        titles = [re.sub(r"\s*\(.*?\)\s*$", "", t).strip() for t in page_cell.split(";")]
        rows[number] = (paraphrase, [t for t in titles if t], page_cell)
    return rows


TOPICS_MD = _find_topics_md()
TOPICS_ROWS = _parse_topics_md(TOPICS_MD) if TOPICS_MD else {}
needs_topics_md = pytest.mark.skipif(
    TOPICS_MD is None,
    reason="shared/topics.md not found (it is a planning file; the app never reads it)",
)


@needs_topics_md
def test_topics_md_table_has_all_50_rows():
    assert sorted(TOPICS_ROWS) == list(range(1, 51))


@needs_topics_md
@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: f"Q{q.number}")
def test_question_page_matches_topics_md(question: Question):
    paraphrase, titles, cell = TOPICS_ROWS[question.number]
    assert page_by_slug(question.page).title == titles[0], cell
    assert [page_by_slug(s).title for s in question.also] == titles[1:], cell
    # Our wording is our own: the paraphrase is not copied into the question.
    assert paraphrase.casefold() not in question.text.casefold()


# --------------------------------------------------------------------------- structure


def test_exactly_50_questions_numbered_once_in_order():
    assert len(QUESTIONS) == 50
    assert [q.number for q in QUESTIONS] == list(range(1, 51))
    assert all(isinstance(q, Question) for q in QUESTIONS)


def test_exactly_31_pages_with_unique_slugs_titles_files():
    assert len(PAGES) == 31
    assert all(isinstance(p, Page) for p in PAGES)
    for field in ("slug", "title", "file"):
        values = [getattr(p, field) for p in PAGES]
        assert len(set(values)) == 31, f"duplicate {field}"


def test_groups_and_page_order():
    assert GROUPS == tuple(EXPECTED_GROUPS)
    assert [p.title for p in PAGES] == [t for ts in EXPECTED_GROUPS.values() for t in ts]
    for page in PAGES:
        assert page.title in EXPECTED_GROUPS[page.group], page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.slug)
def test_page_fields(page: Page):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", page.slug)
    assert FILE_RE.fullmatch(page.file), page.file
    assert page.file.isascii() and " " not in page.file
    assert len(page.file) <= 48
    assert page.group in GROUPS
    # One emoji: a single pictograph, optionally followed by a variation selector.
    assert page.icon and not page.icon.isascii()
    base = page.icon.rstrip("\ufe0f")
    assert len(base) == 1 and unicodedata.category(base) == "So", page.icon
    # One sentence.
    assert page.blurb.endswith(".") and page.blurb.count(". ") == 0, page.blurb
    assert "\n" not in page.blurb


def test_files_numbered_01_to_31_in_order():
    assert [p.file[len("pages/"):][:2] for p in PAGES] == [f"{i:02d}" for i in range(1, 32)]


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: f"Q{q.number}")
def test_question_fields(question: Question):
    assert question.text.endswith("?")
    assert question.text.count("?") == 1 and "\n" not in question.text
    assert question.text[0].isupper()
    page_by_slug(question.page)  # exists
    assert isinstance(question.also, tuple)
    for slug in question.also:
        page_by_slug(slug)
    assert question.page not in question.also
    assert len(set(question.also)) == len(question.also)


def test_question_texts_are_distinct():
    texts = [q.text.casefold() for q in QUESTIONS]
    assert len(set(texts)) == len(texts)


def test_every_page_answers_at_least_one_question():
    answered = {q.page for q in QUESTIONS}
    assert [p.slug for p in PAGES if p.slug not in answered] == []


def test_pages_folder_has_only_catalogued_files():
    pages_dir = Path(topics.__file__).resolve().parents[1] / "pages"
    if not pages_dir.is_dir():
        pytest.skip("no pages/ folder next to core/")
    known = {p.file for p in PAGES}
    stray = sorted(
        f"pages/{f.name}" for f in pages_dir.glob("*.py") if f"pages/{f.name}" not in known
    )
    assert stray == [], f"page files without a catalogue entry in core/topics.py: {stray}"


# --------------------------------------------------------------------------- look-ups


@pytest.mark.parametrize(
    "file, slug",
    [
        ("pages/01_Object_detection.py", "object-detection"),
        ("01_Object_detection.py", "object-detection"),
        ("/srv/app/pages/03_Mask_R-CNN.py", "mask-r-cnn"),
        ("C:\\app\\pages\\31_Multi-modal_fusion.py", "multi-modal-fusion"),
        ("pages/99_Nope.py", None),
        ("", None),
        ("Home.py", None),
    ],
)
def test_page_by_file(file, slug):
    page = page_by_file(file)
    assert (page.slug if page else None) == slug


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.slug)
def test_page_by_file_and_slug_round_trip(page: Page):
    assert page_by_file(page.file) is page
    assert page_by_slug(page.slug) is page


def test_page_by_slug_unknown_raises_helpful_keyerror():
    with pytest.raises(KeyError) as info:
        page_by_slug("object-detektion")
    message = str(info.value)
    assert "object-detektion" in message and "object-detection" in message


@pytest.mark.parametrize(
    "slug, numbers",
    [
        ("object-detection", [5]),
        ("occlusion-illumination", [15, 19, 32, 33]),
        ("object-tracking", [6, 22, 32]),
        ("class-imbalance", [17, 35, 47]),
        ("transfer-learning", [3, 18, 48]),
        ("quantization", [11, 28]),
        ("medical-imaging-unet", [37, 38]),
    ],
)
def test_questions_for(slug, numbers):
    assert [q.number for q in questions_for(slug)] == numbers


def test_questions_for_unknown_slug_raises():
    with pytest.raises(KeyError):
        questions_for("no-such-page")


# --------------------------------------------------------------------------- filtering


@pytest.mark.parametrize(
    "query, expected",
    [
        ("q5", [5]),
        ("Q5", [5]),
        ("5", [5]),
        ("#5", [5]),
        ("quantization", [11, 28]),
        ("QUANTIZATION", [11, 28]),
        ("zzzz", []),
        ("pytorch tensorflow", [13, 30]),
        ("u-net", [37, 38]),
        ("tracking occlusion", [32]),  # Q32 is also on the Object tracking page
        ("q5 quantization", []),  # every word must match
        ("q11 quantization", [11]),
    ],
)
def test_filter_examples(query, expected):
    assert [q.number for q in filter_questions(query)] == expected


def test_filter_anchor_puts_q23_first():
    result = filter_questions("anchor")
    assert result and result[0].number == 23


@pytest.mark.parametrize("query", ["", " ", "\t\n  "])
def test_filter_blank_query_returns_all(query):
    assert filter_questions(query) == list(QUESTIONS)


@pytest.mark.parametrize(
    "query",
    ["(", "[a-z]+", ".*", "\\", "?", "***", "q", "q-1", "q0", "q9999999999", "a" * 100_000,
     "ß İ ﬁ", "\x00", "😀"],
)
def test_filter_odd_queries_do_not_raise(query):
    result = filter_questions(query)
    assert [q.number for q in result] == sorted(q.number for q in result)


def test_filter_respects_the_given_pool():
    pool = [QUESTIONS[27], QUESTIONS[10], QUESTIONS[0]]  # Q28, Q11, Q1, unordered
    assert [q.number for q in filter_questions("quantization", pool)] == [11, 28]
    assert [q.number for q in filter_questions("", pool)] == [1, 11, 28]
    assert filter_questions("anything", []) == []


_VOCAB = sorted({w for q in QUESTIONS for w in q.text.casefold().split()} | {"q5", "Q12", "7"})


@settings(max_examples=300, deadline=None)
@given(
    query=st.one_of(
        st.text(max_size=200),
        st.lists(st.sampled_from(_VOCAB), max_size=4).map(" ".join),
    ),
    pool=st.lists(st.sampled_from(QUESTIONS), unique=True, max_size=50),
)
def test_filter_never_raises_and_returns_ordered_subset(query, pool):
    result = filter_questions(query, pool)
    assert set(result) <= set(pool)
    numbers = [q.number for q in result]
    assert numbers == sorted(set(numbers))
    # Words are combined with AND: the result of "a b" is the overlap of "a" and "b".
    words = query.split()
    if len(words) >= 2:
        first = set(filter_questions(words[0], pool))
        rest = set(filter_questions(" ".join(words[1:]), pool))
        assert set(result) == first & rest


# --------------------------------------------------------------------------- grouping


def test_grouped_covers_every_question_once_in_order():
    groups = grouped(QUESTIONS)
    assert [g for g, _ in groups] == list(GROUPS)
    pages = [p for _, entries in groups for p, _ in entries]
    assert pages == list(PAGES)  # every page answers something, in catalogue order
    seen = [q.number for _, entries in groups for _, qs in entries for q in qs]
    assert sorted(seen) == list(range(1, 51)) and len(seen) == 50
    for group, entries in groups:
        for page, qs in entries:
            assert page.group == group
            assert qs and all(q.page == page.slug for q in qs)  # main page only
            assert [q.number for q in qs] == sorted(q.number for q in qs)


def test_grouped_omits_empty_pages_and_groups():
    result = grouped(filter_questions("quantization"))
    assert [(g, [(p.slug, [q.number for q in qs]) for p, qs in e]) for g, e in result] == [
        ("Efficiency and deployment", [("quantization", [11, 28])]),
    ]
    assert grouped([]) == []


def test_grouped_lists_q32_under_its_main_page_only():
    result = grouped([QUESTIONS[31], QUESTIONS[5]])  # Q32, Q6
    flat = [(p.slug, [q.number for q in qs]) for _, e in result for p, qs in e]
    assert flat == [("object-tracking", [6]), ("occlusion-illumination", [32])]
