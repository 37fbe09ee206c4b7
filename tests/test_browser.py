"""End-to-end browser tests: Chromium (via Playwright) against a real `streamlit run Home.py`.

The server runs offline (CVLAB_OFFLINE=1), so the Object detection page shows its offline
demonstration (the project's own shapes YOLO on a synthetic scene) instead of a COCO model.

The tour visits every page on the Chelsea sample and fails, listing every page at fault, when
a Vega-Lite chart draws no marks, when the page logs a JavaScript error (console "error" or
an uncaught exception) other than the allow-listed noise in ``HARMLESS_CONSOLE_ERRORS``, or
when a photo page (``PHOTO_PAGES``) shows an "Offline demonstration" or a model caption that
names another model than EfficientNet-Lite0.

Artifacts (git-ignored) land in ``test-artifacts/``: one full-page screenshot per page,
``upload_error.png``, ``FAILED-<test>.png`` when a test fails, and the server log
``streamlit-server.log`` whose tail is included in every failure message.

Run: ``.venv/bin/python -m pytest tests/test_browser.py -q -x`` (a few minutes on 2 CPUs;
the very first run also trains the shapes YOLO once, which can take several minutes).
"""

from __future__ import annotations

import contextlib
import re
import time
import urllib.parse
from pathlib import Path

import pytest

from benchmark import driver
from benchmark.driver import (
    VIEWPORT,
    active_caption,
    choose_sample,
    nav_link,
    open_url,
    page_files,
    rerun,
    sidebar,
)

# The generous per-test timeout covers the one-time training of the shapes YOLO in the
# first test's setup on a fresh machine (about 10 minutes on 2 cores); later runs load it.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
SERVER_LOG = ARTIFACTS / "streamlit-server.log"
SLOW_IDLE_TIMEOUT_S = 240.0  # Object detection: torch + model load on 2 CPUs (first visit)
EXPECT_MS = 15_000  # auto-retrying DOM assertions, after the app is idle

if not driver.chromium_available():
    pytest.skip(
        f"Chromium not found at {driver.CHROMIUM!r} (set CHROMIUM=/path/to/chromium; "
        "`playwright install` needs internet)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
PlaywrightError = sync_api.Error


# --------------------------------------------------------------------------- helpers


MAX_SHOT_HEIGHT = 16_000

# Streamlit scrolls inside its own containers, not the document, so Playwright's full_page
# alone captures just the viewport: measure the tallest scroll container instead.
CONTENT_HEIGHT_JS = """
() => Math.max(document.documentElement.scrollHeight, ...Array.from(document.querySelectorAll(
    '[data-testid="stMain"], [data-testid="stAppViewContainer"], [data-testid="stSidebarContent"]'),
    el => el.scrollHeight))
"""


def screenshot(page, name: str) -> Path:
    """A screenshot of the whole page (the viewport is stretched to the content, then restored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    viewport = page.viewport_size or VIEWPORT
    height = min(int(page.evaluate(CONTENT_HEIGHT_JS)), MAX_SHOT_HEIGHT)
    if height > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": height})
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if height > viewport["height"]:
            page.set_viewport_size(viewport)
    return path


# Every chart Streamlit draws with Vega (st.vega_lite_chart and the st.*_chart built on it) is
# checked in Vega's own scenegraph, whichever renderer drew it (Streamlit 1.67 switches to a
# canvas above 2,000 marks, where the DOM shows no marks at all): the Vega View is found in the
# React ref where Streamlit keeps it. A data mark's item counts as drawn when its bounds are
# finite and not degenerate (a 1-D rule/line/trail needs a length; a bar, area, point or text an
# area). Where the View cannot be reached (Streamlit's internals changed), an SVG chart's mark
# groups (<g class="mark-<type> role-mark">) are measured in the DOM instead. A chart fails when
# it draws no mark at all, or when a mark has items but draws none of them: a log scale over a
# zero, or NaN data, leaves the bars in the chart at zero size (the Anchor boxes page's two
# charts did exactly that). A chart not displayed (a closed expander, another tab) and not
# drawn yet is skipped.
CHARTS_JS = """
() => {
  const thin = kind => ['rule', 'line', 'trail'].includes(kind);
  const drawn = (kind, w, h) => [w, h].every(Number.isFinite) && (thin(kind) ? w > 0 || h > 0 : w > 0 && h > 0);
  const viewOf = el => {
    const key = Object.keys(el).find(k => k.startsWith('__reactFiber$'));
    for (let fiber = key && el[key], up = 0; fiber && up < 50; fiber = fiber.return, up++) {
      for (let hook = fiber.memoizedState; hook && typeof hook === 'object' && 'next' in hook; hook = hook.next) {
        const s = hook.memoizedState, v = s && typeof s === 'object' && 'current' in s ? s.current : s;
        if (v && typeof v.scenegraph === 'function' && typeof v.container === 'function'
            && v.container() && el.contains(v.container())) return v;
      }
    }
    return null;
  };
  const fromScene = view => {
    const groups = [], titles = {'title-text': [], 'axis-title': []};
    const visit = mark => {
      if (mark.role === 'mark') {
        groups.push({kind: mark.marktype, items: mark.items.length, drawn: mark.items.filter(
          i => i.bounds && drawn(mark.marktype, i.bounds.x2 - i.bounds.x1, i.bounds.y2 - i.bounds.y1)).length});
      } else if (mark.role in titles) {
        titles[mark.role].push(...mark.items.map(i => [].concat(i.text).join(' ')));
      }
      if (mark.marktype === 'group') for (const g of mark.items) for (const m of (g.items || [])) visit(m);
    };
    visit(view.scenegraph().root);
    return {groups, title: (titles['title-text'].length ? titles['title-text'] : titles['axis-title']).join(' / ')};
  };
  const fromSvg = svg => ({
    title: Array.from(svg.querySelectorAll('.role-title-text').length ? svg.querySelectorAll('.role-title-text')
                      : svg.querySelectorAll('.role-axis-title'), t => t.textContent).join(' / '),
    groups: Array.from(svg.querySelectorAll('g.role-mark'), g => {
      const kind = ((g.getAttribute('class') || '').match(/\\bmark-(\\w+)/) || [null, '?'])[1];
      const items = Array.from(g.children);
      return {kind, items: items.length, drawn: items.filter(i => { const b = i.getBBox();
        return Number.isFinite(b.x) && Number.isFinite(b.y) && drawn(kind, b.width, b.height); }).length};
    }),
  });
  return Array.from(document.querySelectorAll('[data-testid="stVegaLiteChart"], .stVegaLiteChart'), el => {
    const view = viewOf(el), svg = el.querySelector('svg.marks');
    const shown = el.checkVisibility();
    if (view) return {shown, via: 'view', ...fromScene(view)};
    if (svg && shown) return {shown, via: 'svg', ...fromSvg(svg)};
    return {shown, via: null, canvas: !!el.querySelector('canvas'), title: '', groups: []};
  });
}
"""
CHART_RENDER_S = 15.0  # Vega's code loads on demand and Streamlit adds the data after the first draw


def chart_problems(page) -> list[str]:
    """What is wrong with the charts on the page ([] when every chart draws its marks). A chart
    is drawn after the script run ends, so a problem counts only once it outlasts CHART_RENDER_S."""
    deadline = time.monotonic() + CHART_RENDER_S
    while True:
        problems = []
        for n, c in enumerate(page.evaluate(CHARTS_JS), 1):
            name = f"chart {n} ({c['title'][:80] or 'untitled'!r})"
            if c["via"] is None:
                if c["shown"]:
                    problems.append(f"{name}: no Vega view reachable and no SVG " + (
                        "(a canvas: Streamlit's internals changed? update CHARTS_JS)" if c["canvas"] else "drawn"))
                continue
            marks = ", ".join(f"{g['kind']} {g['drawn']}/{g['items']}" for g in c["groups"]) or "none"
            if not any(g["drawn"] for g in c["groups"]):
                problems.append(f"{name} draws no marks (drawn/items per mark: {marks})")
            elif any(g["items"] and not g["drawn"] for g in c["groups"]):
                problems.append(f"{name}: a mark has items but draws none of them (drawn/items per mark: {marks})")
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.2)


# Console errors that are not the app's, each with its reason: (reason, message pattern, source pattern).
HARMLESS_CONSOLE_ERRORS: list[tuple[str, re.Pattern, re.Pattern]] = [
    ("This machine has no internet: Streamlit fetches the Material Symbols icon of a page_icon "
     "(Home's ':material/biotech:') from Google's font server for the tab's favicon; the page is unaffected.",
     re.compile(r"^Failed to load resource: net::ERR_"), re.compile(r"^https://fonts\.gstatic\.com/")),
]


class Console:
    """Everything the page logs: console messages and uncaught exceptions, in order."""

    def __init__(self, page):
        self.entries: list[tuple[str, str, str]] = []  # (type, text, source url)
        page.on("console", lambda m: self.entries.append((m.type, m.text, (m.location or {}).get("url", ""))))
        page.on("pageerror", lambda e: self.entries.append(
            ("pageerror", f"{e.name}: {e.message}", self._frame(e.stack))))

    @staticmethod
    def _frame(stack: str | None) -> str:
        """Where an uncaught exception was thrown: the first "at ..." line of its stack."""
        return next((line.strip() for line in (stack or "").splitlines() if line.strip().startswith("at ")), "")

    def mark(self) -> int:
        return len(self.entries)

    def errors(self, since: int) -> list[str]:
        """The JavaScript errors logged since ``since`` (a ``mark()``), allow-listed noise left out."""
        found = []
        for kind, text, source in self.entries[since:]:
            if kind not in ("error", "pageerror"):
                continue
            if any(m.search(text) and s.search(source) for _, m, s in HARMLESS_CONSOLE_ERRORS):
                continue
            found.append(f"{kind}: {text}" + (f" ({source})" if source else ""))
        return found

    def vega_warnings(self, since: int) -> list[str]:
        """Vega's own warnings since ``since``: they usually say why a chart drew nothing."""
        return sorted({text for kind, text, _ in self.entries[since:]
                       if kind == "warning" and text.startswith("WARN ")})


# The photo pages run the default ImageNet classifier on the active photo (components.classifier
# .active_subject) and say so in a caption line: "🧠 Model: **EfficientNet-Lite0 (…)** · … · image: …".
PHOTO_PAGES = ("Feature_extraction", "Interpretability", "Occlusion_and_illumination", "Noise_and_outliers",
               "Adversarial_attacks", "Missing_data", "Quantization", "GPU_acceleration", "Knowledge_distillation",
               "Deployment", "Data_augmentation", "Embeddings_and_retrieval", "Transfer_learning")
PHOTO_MODEL, PHOTO_IMAGE = "EfficientNet-Lite0", "Chelsea the cat"


def photo_page_problems(page) -> list[str]:
    main = page.locator('[data-testid="stMain"]')
    problems = []
    offline = main.get_by_text("Offline demonstration")
    if offline.count():
        problems.append("shows an offline demonstration: " + offline.first.inner_text().strip()[:200])
    captions = [t.strip() for t in main.locator('[data-testid="stCaptionContainer"]').filter(
        has_text=re.compile(r"^\s*🧠 Model:")).all_inner_texts()]
    if not captions:
        problems.append(f"no model caption ('🧠 Model: …'; expected {PHOTO_MODEL} on {PHOTO_IMAGE})")
    problems += [f"model caption is not {PHOTO_MODEL} on {PHOTO_IMAGE}: {t!r}" for t in captions
                 if PHOTO_MODEL not in t.split("·")[0] or PHOTO_IMAGE not in t]
    return problems


def health_problems(page) -> list[str]:
    """Python exceptions and st.error messages shown anywhere on the page (sidebar included)."""
    problems = []
    for what, testid in (("exception", "stException"), ("st.error", "stAlertContentError")):
        shown = page.locator(f'[data-testid="{testid}"]')
        if shown.count():
            text = "\n---\n".join(shown.all_inner_texts())
            problems.append(f"{what} shown on the page:\n" + (text if len(text) <= 1500 else text[:1500] + " …"))
    return problems


def assert_healthy(page, where: str):
    """No Python exception and no st.error anywhere on the page (sidebar included)."""
    problems = health_problems(page)
    if problems:
        raise AssertionError(f"{where}: " + "\n".join(problems))


@contextlib.contextmanager
def diagnosed(page, name: str):
    """On any failure: save FAILED-<name>.png and re-raise with the server log tail."""
    try:
        yield
    except (AssertionError, PlaywrightError) as exc:
        shot = ""
        with contextlib.suppress(Exception):
            shot = f"\nscreenshot: {screenshot(page, f'FAILED-{name}')}"
        url = ""
        with contextlib.suppress(Exception):
            url = f"\nurl: {page.url}"
        message = str(exc).split("\nAria snapshot:")[0]  # Playwright appends a page dump
        if len(message) > 4000:
            message = message[:4000] + " …"
        raise AssertionError(f"{type(exc).__name__}: {message}{url}{shot}\n{driver.log_tail(SERVER_LOG)}") from exc


@pytest.fixture(scope="module")
def server(trained_models):
    """`streamlit run Home.py` on a free loopback port; yields the base URL."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("FAILED-*.png"):  # from an earlier run
        old.unlink()
    with driver.AppServer(SERVER_LOG, env={"CVLAB_OFFLINE": "1", "YOLO_OFFLINE": "1"}) as app:
        yield app.base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = driver.launch_chromium(pw)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context (own cookies, own Streamlit session) per test."""
    tab = driver.new_page(browser)
    try:
        yield tab
    finally:
        tab.context.close()


# --------------------------------------------------------------------------- tests


def test_tour_every_page(page, server):
    console = Console(page)
    problems: dict[str, list[str]] = {}  # page -> what is wrong there (charts, JS errors, model)

    def check(where: str, since: int, photo: bool = False) -> None:
        found = health_problems(page) + chart_problems(page)
        if photo:
            found += photo_page_problems(page)
        found += [f"JavaScript {e}" for e in console.errors(since)]
        if found:
            warnings = console.vega_warnings(since)
            problems[where] = found + ([f"(Vega warned: {'; '.join(warnings)})"] if warnings else [])

    with diagnosed(page, "tour"):
        since = console.mark()
        open_url(page, server)
        expect(page.locator('[data-testid="stMain"] h1').filter(has_text="CV Interview Lab")).to_be_visible(
            timeout=EXPECT_MS
        )
        choose_sample(page, "Chelsea the cat")
        expect(active_caption(page)).to_contain_text("Active: Chelsea", timeout=EXPECT_MS)
        check("Home", since)
        screenshot(page, "Home")

        scripts = page_files()
        assert scripts, "no pages found in pages/*.py"
        missing = set(PHOTO_PAGES) - {driver.url_name(s) for s in scripts}
        assert not missing, f"PHOTO_PAGES names pages that do not exist: {sorted(missing)}"
        for script in scripts:
            where = f"pages/{script.name}"
            link, url_name = nav_link(page, script)
            slow = SLOW_IDLE_TIMEOUT_S  # any page may load torch or a model the first time
            since = console.mark()
            rerun(page, link.click, timeout=slow)
            assert urllib.parse.unquote(urllib.parse.urlparse(page.url).path).rstrip("/").endswith(
                "/" + url_name
            ), f"{where}: clicking its link led to {page.url}"
            expect(active_caption(page), f"{where}: the active image did not persist").to_contain_text(
                "Active: Chelsea", timeout=EXPECT_MS
            )
            if script.stem.endswith("Object_detection"):
                main = page.locator('[data-testid="stMain"]')
                expect(main.get_by_text("Objects kept").first).to_be_visible(timeout=EXPECT_MS)
                images = main.locator('[data-testid="stImage"] img')
                expect(images.first).to_be_visible(timeout=EXPECT_MS)
                rendered = images.evaluate_all("els => els.filter(e => e.complete && e.naturalWidth > 0).length")
                assert rendered >= 1, f"{where}: no image in the main area finished loading"
            check(where, since, photo=url_name in PHOTO_PAGES)
            screenshot(page, script.stem)
        assert not problems, f"{len(problems)} page(s) with problems (screenshots in {ARTIFACTS}):\n" + "\n".join(
            f"{where}:\n  - " + "\n  - ".join(found) for where, found in problems.items())


def test_bad_upload_keeps_previous_image(page, server, tmp_path):
    with diagnosed(page, "upload"):
        open_url(page, server)
        side = sidebar(page)
        rerun(page, side.locator('[data-testid="stRadio"] label').filter(has_text=re.compile(r"^\s*Upload\s*$")).click)
        file_input = side.locator('[data-testid="stFileUploader"] input[type="file"]')
        expect(file_input).to_have_count(1, timeout=EXPECT_MS)

        rerun(page, lambda: file_input.set_input_files(
            files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": b"this is not an image"}]
        ))
        error = page.locator('[data-testid="stAlertContentError"]')
        expect(error).to_contain_text("previous image stays active", timeout=EXPECT_MS)
        expect(error).to_contain_text("broken.jpg")
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)
        expect(active_caption(page)).to_contain_text("Active: Astronaut", timeout=EXPECT_MS)
        screenshot(page, "upload_error")

        from PIL import Image
        from skimage import data

        good = tmp_path / "my_coffee.png"
        Image.fromarray(data.coffee()).save(good)
        rerun(page, lambda: file_input.set_input_files(str(good)))
        expect(active_caption(page)).to_contain_text("Active: my_coffee.png", timeout=EXPECT_MS)
        expect(error).to_have_count(0, timeout=EXPECT_MS)
        assert_healthy(page, "Home after a good upload")


def _slider_value(page, label: str) -> float:
    slider = page.locator('[data-testid="stSlider"]').filter(has_text=label)
    expect(slider).to_have_count(1, timeout=EXPECT_MS)
    # Streamlit 1.67 renders a react-aria slider: a native range input (value/aria-valuetext);
    # older versions used a div[role=slider] with aria-valuenow.
    thumb = slider.locator('input[type="range"], [role="slider"]').first
    raw = thumb.get_attribute("aria-valuenow") or thumb.get_attribute("aria-valuetext") or thumb.input_value()
    shown = slider.locator('[data-testid="stSliderThumbValue"]').inner_text().strip()
    assert float(raw) == pytest.approx(float(shown)), f"slider {label!r}: DOM value {raw} but shows {shown}"
    return float(raw)


def test_shared_link_restores_controls(page, server):
    with diagnosed(page, "shared_link"):
        open_url(page, f"{server}/Object_detection?conf=0.55&img=coffee", timeout=SLOW_IDLE_TIMEOUT_S)
        expect(active_caption(page)).to_contain_text("Active: Coffee cup", timeout=EXPECT_MS)
        assert _slider_value(page, "Confidence threshold") == pytest.approx(0.55)
        assert_healthy(page, "Object detection from a shared link")

        open_url(page, f"{server}/Object_detection?conf=banana", timeout=SLOW_IDLE_TIMEOUT_S)
        notice = page.locator('[data-testid="stAlertContentInfo"]').filter(has_text="banana")
        expect(notice).to_have_count(1, timeout=EXPECT_MS)
        expect(notice).to_contain_text("conf")
        expect(page.locator('[data-testid="stException"]')).to_have_count(0)
        assert _slider_value(page, "Confidence threshold") == pytest.approx(0.25)


def test_ocr_reads_the_scanned_page_and_a_live_run_finishes_in_the_browser(page, server):
    """The issue-9 pages in a real browser: EasyOCR reads the scanned book page (its lines appear
    in the table and the CTC check is green), and the CNNs for text page trains from a link,
    shows its held-out accuracy and explains a sentence."""
    with diagnosed(page, "ocr_and_textcnn"):
        open_url(page, f"{server}/OCR?img=page", timeout=SLOW_IDLE_TIMEOUT_S)
        main = page.locator('[data-testid="stMain"]')
        expect(main.get_by_text("exactly EasyOCR's text").first).to_be_visible(timeout=EXPECT_MS)
        expect(main.get_by_text("text lines detected").first).to_be_visible(timeout=EXPECT_MS)
        assert_healthy(page, "OCR on the scanned page")
        screenshot(page, "OCR-page-sample")

        open_url(page, f"{server}/CNNs_for_text?widths=2-3&emb=16&epochs=8&seed=1", timeout=SLOW_IDLE_TIMEOUT_S)
        button = page.get_by_role("button", name="Train the text CNN")
        rerun(page, button.click, timeout=SLOW_IDLE_TIMEOUT_S)
        expect(main.get_by_text("widths 2/3 (held-out)").first).to_be_visible(timeout=EXPECT_MS)
        expect(main.get_by_text("Prediction:").first).to_be_visible(timeout=EXPECT_MS)
        assert_healthy(page, "CNNs for text after training")
        screenshot(page, "CNNs_for_text-trained")
