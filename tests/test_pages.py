"""Every page, run headless by Streamlit's AppTest with a sample image active.

Pages are discovered from pages/*.py, so a new page is covered the day it appears."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components.ui import SECTIONS, page_text
from core.topics import PAGES, page_by_file

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "Home.py")
PAGE_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
TIMEOUT = 300


def _home(**query) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def _page(file: str, **query) -> AppTest:
    """A fresh session opened on ``file`` with ``query`` in its URL (like a shared link)."""
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.switch_page(file)
    return at.run()


def _param(at, name: str) -> str:
    value = at.query_params[name]
    return value[-1] if isinstance(value, list) else value


def _captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.mark.parametrize("file", PAGE_FILES)
def test_page_renders_without_exception(file, trained_models):
    page = page_by_file(file)
    assert page is not None, f"{file} is not in core/topics.py"
    at = _page(file)
    assert not at.exception, [e.value for e in at.exception]
    assert page.title in at.title[0].value
    assert "Active: Astronaut" in _captions(at)  # the shared sidebar ran with the sample image
    assert at.subheader[-1].value == "What to notice"  # the frame's closing section, last


@pytest.mark.parametrize("file", PAGE_FILES)
def test_page_has_its_explanation_answer_and_notes(file):
    page = page_by_file(file)
    text = page_text(page.slug)
    for section in SECTIONS:
        assert len(text.get(section, "")) > 200, f"content/{page.slug}.md lacks a real '{section}'"
    source = (ROOT / file).read_text()
    # One frame (components/frame.py): the page names its topic once, and the frame draws the
    # page config, sidebar and header; the page closes it with "What to notice".
    assert re.findall(r"lab_page\((['\"])(.+?)\1\)", source) == [('"', page.slug)], f"{file}: lab_page(<its slug>) once"
    assert source.count("page.close()") == 1, f"{file}: page.close() once, at the end"
    for own_frame in ("set_page_config", "lab_sidebar(", "page_header(", "what_to_notice("):
        assert own_frame not in source, f"{file} draws {own_frame!r} itself instead of using the frame"


# The photo pages: every page whose topic declares the always-present ImageNet classifier.
PHOTO_PAGES = [p.file for p in PAGES if "efficientnet_lite0" in p.models]


def _all_text(at) -> str:
    """Every message, caption and Markdown block of a run, as a reader sees it (escapes removed)."""
    parts = [e.value for kind in (at.info, at.warning, at.error, at.success, at.caption, at.markdown)
             for e in kind]
    return "\n".join(str(p) for p in parts).replace("\\", "")


def test_the_photo_pages_are_the_ones_the_issue_lists():
    titles = {page_by_file(f).title for f in PHOTO_PAGES}
    assert titles == {"Feature extraction", "Interpretability", "Occlusion and illumination", "Noise and outliers",
                      "Adversarial attacks", "Missing data", "Quantization", "GPU acceleration",
                      "Knowledge distillation", "Deployment", "Data augmentation", "Embeddings and retrieval",
                      "Transfer learning"}


@pytest.mark.parametrize("file", PHOTO_PAGES)
def test_photo_page_runs_the_real_classifier_on_chelsea(file, trained_models):
    """Offline, with no downloaded weights, each photo page shows the user's photo with a real
    ImageNet model: EfficientNet-Lite0 named in the model caption, no offline notice."""
    at = _page(file, img="chelsea")
    assert not at.exception, [e.value for e in at.exception]
    text = _all_text(at)
    assert "Offline demonstration" not in text
    models = [line for line in text.splitlines() if line.startswith("🧠 Model:")]
    assert models, f"{file}: no caption names the model it shows"
    assert all("EfficientNet-Lite0" in line and "Chelsea the cat" in line for line in models), models


STOP_KEY = re.compile(r"""stop=["']([^"']+)["']|train_button\(.*?\bkey=["']([^"']+)["']""", re.S)
STOPPABLE = [(f, a or b) for f in PAGE_FILES for a, b in STOP_KEY.findall((ROOT / f).read_text())]


@pytest.mark.parametrize("file,key", STOPPABLE)
def test_page_after_a_stopped_run_says_so_and_keeps_working(file, key, trained_models):
    """A run stopped half way (the Stop button, or a widget touched while it ran) leaves its
    record in the session; the next run of the page must show the note, not a traceback."""
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.switch_page(file)
    at.session_state["_ui.jobs"] = {key: {"started": 0.0, "fraction": 0.4, "text": "epoch 2/5", "seconds": 3.2,
                                          "partial": None}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Stopped" in i.value and "epoch 2/5" in i.value for i in at.info), f"{file}: no note for {key}"


def test_stoppable_pages_are_found():
    found = dict(STOPPABLE)
    assert found["pages/14_Knowledge_distillation.py"] == "kd.train"  # through train_button
    assert found["pages/18_Backpropagation.py"] == "bp.train"  # through run_job(stop=)
    assert len(found) >= 10


def test_home_lists_every_question_and_filters():
    at = _home()
    assert not at.exception
    text = "\n".join(m.value for m in at.markdown)
    for n in range(1, 51):
        assert f"**Q{n}.**" in text
    at.text_input[0].input("anchor").run()
    text = "\n".join(m.value for m in at.markdown)
    assert "**Q23.**" in text and "**Q5.**" not in text
    at.text_input[0].input("zzzz").run()
    assert any("No question matches" in i.value for i in at.info)


HEAVY = ("torch", "torchvision", "ultralytics", "cv2", "scipy", "skimage", "captum", "pandas", "altair")


def test_home_imports_nothing_heavy():
    """Cold start budget (issue 3): Home renders without importing torch, OpenCV, SciPy...,
    without Streamlit's emoji table (an emoji ``icon=`` loads it: 0.2 s) and without
    Streamlit's once-per-process REPL check (``inspect.stack()``: 0.2 s; the sidebar marks it
    done, through a private flag that this test notices if an upgrade renames it).
    Run in a fresh interpreter, since this test process has imported them all already."""
    import subprocess
    import sys

    code = (
        "import inspect, sys\n"
        "calls = []\n"
        "real_stack = inspect.stack\n"
        "inspect.stack = lambda *a, **k: calls.append(1) or real_stack(*a, **k)\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({HOME!r}, default_timeout=120).run()\n"
        "assert not at.exception, at.exception\n"
        f"heavy = [m for m in {HEAVY!r} + ('streamlit.emojis',) if m in sys.modules]\n"
        "print(','.join(heavy + ['inspect.stack()'] * bool(calls)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"Home's first run used {out.stdout.strip()}"


def test_sample_choice_persists_across_pages():
    at = _home()
    at.selectbox(key="lab.sample").set_value("coffee").run()
    assert "Active: Coffee cup" in _captions(at)
    assert _param(at, "img") == "coffee"
    at.switch_page("pages/01_Object_detection.py").run()
    assert "Active: Coffee cup" in _captions(at)


def test_link_restores_sample_and_rejects_bad_values():
    at = _home(img="rocket")
    assert "Active: Rocket" in _captions(at)
    at = _home(img="../../etc/passwd")
    assert "Active: Astronaut" in _captions(at) and not at.exception


def test_unavailable_device_falls_back_with_a_message():
    at = _home()
    at.selectbox(key="lab.device").set_value("mps").run()
    assert not at.exception
    assert any("not available" in w.value for w in at.warning)


DETECTION = "pages/01_Object_detection.py"


def _metric(at, label: str):
    return next(m.value for m in at.metric if m.label.startswith(label))


def test_detection_offline_demo_finds_the_shapes(trained_shapes_yolo, monkeypatch, tmp_path):
    """No COCO weights: the page says what is missing and detects the synthetic shapes."""
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))  # empty: the shipped shapes YOLO only
    at = _page(DETECTION)
    assert not at.exception
    warnings = "\n".join(w.value for w in at.warning)
    assert "yolo11n.pt" in warnings and "python -m models.prefetch --only yolo11n" in warnings
    assert any("Offline demonstration" in i.value for i in at.info)
    assert int(_metric(at, "Objects kept")) >= 1
    recall = next(c.value for c in at.caption if c.value.startswith("Against the true shapes"))
    assert "recall 100%" in recall or "recall 8" in recall or "recall 9" in recall, recall


@pytest.mark.real_weights
def test_detection_page_with_real_weights_finds_the_cat(coco_weights_dir):
    at = _page(DETECTION, img="chelsea")
    assert not at.exception
    assert "cat: 1" in _captions(at)
    kept = int(_metric(at, "Objects kept"))
    at.slider(key="det.conf").set_value(0.95).run()  # warm rerun: cached forward pass
    assert not at.exception and int(_metric(at, "Objects kept")) < kept
    assert _param(at, "conf") == "0.95"


def test_detection_page_bad_link_value_gives_a_notice(trained_shapes_yolo):
    at = _page(DETECTION, conf="banana", iou="7")
    assert not at.exception
    notices = "\n".join(i.value for i in at.info)
    assert "`conf`" in notices and "`iou`" in notices
    assert at.slider(key="det.conf").value == 0.25
