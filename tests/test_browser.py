"""End-to-end browser tests: Chromium (via Playwright) against a real `streamlit run Home.py`.

The server runs offline (CVLAB_OFFLINE=1), so the Object detection page shows its offline
demonstration (the project's own shapes YOLO on a synthetic scene) instead of a COCO model.

Artifacts (git-ignored) land in ``test-artifacts/``: one full-page screenshot per page,
``upload_error.png``, ``FAILED-<test>.png`` when a test fails, and the server log
``streamlit-server.log`` whose tail is included in every failure message.

Run: ``.venv/bin/python -m pytest tests/test_browser.py -q -x`` (a few minutes on 2 CPUs;
the very first run also trains the shapes YOLO once, which can take several minutes).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

# The generous per-test timeout covers the one-time training of the shapes YOLO in the
# first test's setup on a fresh machine (about 10 minutes on 2 cores); later runs load it.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
SERVER_LOG = ARTIFACTS / "streamlit-server.log"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}

HEALTH_TIMEOUT_S = 60.0
IDLE_TIMEOUT_S = 60.0  # an ordinary rerun
SLOW_IDLE_TIMEOUT_S = 240.0  # Object detection: torch + model load on 2 CPUs (first visit)
SETTLE_S = 0.5  # the app must stay idle this long to count as idle
EXPECT_MS = 15_000  # auto-retrying DOM assertions, after the app is idle

if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    pytest.skip(
        f"Chromium not found at {CHROMIUM!r} (set CHROMIUM=/path/to/chromium; "
        "`playwright install` needs internet)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect
PlaywrightError = sync_api.Error

# Counts every transition of the app's script state to "running", so an action can wait
# for *its* rerun to start and finish instead of mistaking the idle state before it for
# the idle state after it. Installed in every document the context opens.
RUN_COUNTER_JS = """
(() => {
  window.__stRuns = 0;
  const attr = 'data-test-script-state';
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes' && r.attributeName === attr
          && r.target.getAttribute(attr) === 'running') window.__stRuns += 1;
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: [attr]});
})();
"""

# The app's run state as Streamlit 1.67 exposes it: the root element carries
# data-test-script-state ("initial" before the first run, then "running"/"notRunning"/
# "rerunRequested"/"compilationError"...) and data-test-connection-state; the status
# widget in the header exists only while a run is shown (running-man icon, "Running...").
APP_STATE_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const widget = document.querySelector('[data-testid="stStatusWidget"]');
  return {
    script: app ? app.getAttribute('data-test-script-state') : null,
    connection: app ? app.getAttribute('data-test-connection-state') : null,
    widget: widget ? (widget.innerText || '') : null,
    widgetRunning: !!document.querySelector(
        '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidget"] [aria-label^="Running"]'),
    stale: document.querySelectorAll('[data-stale="true"]').length,
    elements: document.querySelectorAll('[data-testid="stElementContainer"]').length,
    runs: window.__stRuns || 0,
  };
}
"""


# --------------------------------------------------------------------------- helpers


def log_tail(lines: int = 60) -> str:
    try:
        text = SERVER_LOG.read_text(errors="replace")
    except OSError as exc:
        return f"(no server log at {SERVER_LOG}: {exc})"
    tail = text.splitlines()[-lines:]
    return f"--- last {len(tail)} lines of {SERVER_LOG.relative_to(ROOT)} ---\n" + "\n".join(tail)


def _is_idle(state: dict) -> bool:
    return (
        state["script"] == "notRunning"
        and state["connection"] == "CONNECTED"
        and not state["widgetRunning"]
        and "running" not in (state["widget"] or "").lower()
        and state["elements"] > 0
    )


def wait_idle(page, timeout: float = IDLE_TIMEOUT_S, *, after_runs: int | None = None, settle: float = SETTLE_S):
    """Wait until Streamlit has finished running the script and stays idle for ``settle`` s.

    Idle = the app root says script state "notRunning" while connected, the header status
    widget shows no "Running" indicator, and some element is rendered. With ``after_runs``
    (a value of ``runs(page)`` taken before an action) it first waits for a rerun to have
    started after that action. Raises AssertionError (with the server log tail) on timeout.
    """
    deadline = time.monotonic() + timeout
    idle_since = None
    state: dict = {}
    while True:
        now = time.monotonic()
        try:
            state = page.evaluate(APP_STATE_JS)
        except PlaywrightError:  # navigation in progress: the document is being replaced
            state = {}
            idle_since = None
        if state:
            if state["script"] == "compilationError":
                raise AssertionError(f"the app script failed to compile ({page.url})\n{log_tail()}")
            started = after_runs is None or state["runs"] > after_runs
            if started and _is_idle(state):
                idle_since = idle_since or now
                if now - idle_since >= settle:
                    return state
            else:
                idle_since = None
        if now > deadline:
            raise AssertionError(
                f"Streamlit did not become idle within {timeout:.0f} s on {page.url}; "
                f"last state {state} (runs before action: {after_runs})\n{log_tail()}"
            )
        time.sleep(0.1)


def runs(page) -> int:
    return page.evaluate("() => window.__stRuns || 0")


def rerun(page, action, timeout: float = IDLE_TIMEOUT_S):
    """Do ``action()`` (a click, an upload…) and wait for the rerun it triggers to finish."""
    before = runs(page)
    action()
    return wait_idle(page, timeout, after_runs=before)


def open_url(page, url: str, timeout: float = IDLE_TIMEOUT_S):
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    return wait_idle(page, timeout)


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def active_caption(page):
    """The sidebar caption naming the active image ("Active: <title> · W×H"), whether it is
    rendered as the image's own caption or as an st.caption below it."""
    captions = sidebar(page).locator('[data-testid="stImageCaption"], [data-testid="stCaptionContainer"]')
    return captions.filter(has_text=re.compile(r"^\s*Active:"))


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


def assert_healthy(page, where: str):
    """No Python exception and no st.error anywhere on the page (sidebar included)."""
    exceptions = page.locator('[data-testid="stException"]')
    if exceptions.count():
        raise AssertionError(f"{where}: exception shown on the page:\n" + "\n---\n".join(exceptions.all_inner_texts()))
    errors = page.locator('[data-testid="stAlertContentError"]')
    if errors.count():
        raise AssertionError(f"{where}: st.error shown on the page:\n" + "\n---\n".join(errors.all_inner_texts()))


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
        raise AssertionError(f"{type(exc).__name__}: {message}{url}{shot}\n{log_tail()}") from exc


def page_files() -> list[Path]:
    """Every page of the app, in Streamlit's own sidebar order."""
    from streamlit.source_util import page_sort_key

    return sorted((ROOT / "pages").glob("*.py"), key=page_sort_key)


def nav_link(page, script: Path):
    """The sidebar-navigation link of a page script (expanding "View N more" if needed)."""
    from streamlit.source_util import page_icon_and_name

    _, url_name = page_icon_and_name(script)
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav).to_be_visible(timeout=EXPECT_MS)

    def find():
        for link in nav.locator("a").all():
            path = urllib.parse.unquote(urllib.parse.urlparse(link.get_attribute("href") or "").path)
            if path.strip("/").rsplit("/", 1)[-1] == url_name:
                return link
        return None

    link = find()
    more = nav.locator('[data-testid="stSidebarNavViewButton"]')
    if (link is None or not link.is_visible()) and more.count() and more.inner_text().startswith("View"):
        if "more" in more.inner_text():
            more.click()
        link = find()
    assert link is not None, f"no sidebar link for {script.name} (url path {url_name!r}); links: " + ", ".join(
        nav.locator("a").all_inner_texts()
    )
    return link, url_name


def choose_sample(page, title: str):
    combo = sidebar(page).get_by_role("combobox", name="Sample")
    combo.click()
    option = page.get_by_role("option", name=title, exact=True)
    expect(option).to_be_visible(timeout=EXPECT_MS)
    rerun(page, option.click)


# --------------------------------------------------------------------------- fixtures


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def server(trained_shapes_yolo):
    """`streamlit run Home.py` on a free loopback port; yields the base URL."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("FAILED-*.png"):  # from an earlier run
        old.unlink()
    port = _free_port()
    env = dict(os.environ, CVLAB_OFFLINE="1", YOLO_OFFLINE="1", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable, "-m", "streamlit", "run", "Home.py",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--client.showErrorDetails", "full",
        "--browser.gatherUsageStats", "false",
    ]
    log = open(SERVER_LOG, "w", buffering=1)
    log.write(f"$ {' '.join(cmd)}\n")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while not _healthy(f"{base}/_stcore/health"):
            if proc.poll() is not None:
                raise AssertionError(f"streamlit exited with code {proc.returncode} before answering\n{log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{base}/_stcore/health did not answer 'ok' within {HEALTH_TIMEOUT_S:.0f} s\n{log_tail()}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context (own cookies, own Streamlit session) per test."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(RUN_COUNTER_JS)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


# --------------------------------------------------------------------------- tests


def test_tour_every_page(page, server):
    with diagnosed(page, "tour"):
        open_url(page, server)
        expect(page.locator('[data-testid="stMain"] h1').filter(has_text="CV Interview Lab")).to_be_visible(
            timeout=EXPECT_MS
        )
        choose_sample(page, "Chelsea the cat")
        expect(active_caption(page)).to_contain_text("Active: Chelsea", timeout=EXPECT_MS)
        assert_healthy(page, "Home")
        screenshot(page, "Home")

        scripts = page_files()
        assert scripts, "no pages found in pages/*.py"
        for script in scripts:
            where = f"pages/{script.name}"
            link, url_name = nav_link(page, script)
            slow = SLOW_IDLE_TIMEOUT_S  # any page may load torch or a model the first time
            rerun(page, link.click, timeout=slow)
            assert urllib.parse.unquote(urllib.parse.urlparse(page.url).path).rstrip("/").endswith(
                "/" + url_name
            ), f"{where}: clicking its link led to {page.url}"
            assert_healthy(page, where)
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
            screenshot(page, script.stem)


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
