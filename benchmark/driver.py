"""Driving the real app: `streamlit run Home.py` on loopback and Chromium through Playwright.

Shared by the browser tests (``tests/test_browser.py``) and the benchmark, so both wait for
the app in the same way and a timing means the same thing in both.

* :class:`AppServer` - starts the server on a free port, waits for its health check, reads
  its resident memory, stops it.
* :func:`launch_chromium` - Debian's Chromium with the flags this sandbox needs.
* :func:`new_page` - a fresh browser context (its own Streamlit session) with the run
  counter installed.
* :func:`wait_idle`, :func:`rerun`, :func:`open_url` - wait for Streamlit to finish a script
  run; :func:`rerun` returns the seconds from the action to the end of the run it caused,
  timed in the page itself.
* :func:`page_files`, :func:`nav_link`, :func:`main_slider`, :func:`choose_sample` -
  finding things on a page.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
SETTLE_S = 0.5  # the app must stay idle this long to count as idle

# Counts every message the app's websocket delivers to the page and stamps (epoch ms) the
# latest one. A script run always ends with a message ("script finished"), while the DOM's
# script-state attribute may never show "running" for a run that React renders in one
# go, so messages are what an action waits for and what it is timed by. Installed in every
# document a context opens, before Streamlit's own code runs.
RUN_COUNTER_JS = """
(() => {
  window.__stMsgs = 0;
  window.__stLastMsgAt = null;
  const Native = window.WebSocket;
  class Counted extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        window.__stMsgs += 1;
        window.__stLastMsgAt = performance.timeOrigin + performance.now();
      });
    }
  }
  window.WebSocket = Counted;
})();
"""

# The app's run state as Streamlit 1.67 exposes it: the root element carries
# data-test-script-state ("initial" before the first run, then "running"/"notRunning"/
# "rerunRequested"/"compilationError"...) and data-test-connection-state; the status
# widget in the header exists only while a run is shown (running-man icon, "Running...").
# A widget whose JavaScript is loaded on demand (st.slider in 1.67) is drawn as an
# stSkeleton placeholder until its chunk arrives, after the run's last message.
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
    skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
    elements: document.querySelectorAll('[data-testid="stElementContainer"]').length,
    msgs: window.__stMsgs || 0,
    lastMsgAt: window.__stLastMsgAt,
  };
}
"""


def chromium_available() -> bool:
    return (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) or bool(shutil.which(CHROMIUM))


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    # An https:// server of the tests runs on a self-signed certificate: not verified here.
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def log_tail(log: Path, lines: int = 60) -> str:
    """The last ``lines`` of a server log, headed with its path (for failure messages)."""
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return f"(no server log at {log}: {exc})"
    tail = text.splitlines()[-lines:]
    return f"--- last {len(tail)} lines of {log} ---\n" + "\n".join(tail)


@dataclass
class AppServer:
    """``streamlit run Home.py`` on a free loopback port, logging to ``log``.

    ``started_at`` is the wall-clock time just before the process was spawned, so a cold
    start can be timed from it. ``address`` binds another interface (a LAN address);
    ``cert`` = (certificate, key) serves HTTPS (``base`` is then ``https://``); ``args`` are
    more ``streamlit run`` options."""

    log: Path
    env: dict[str, str] = field(default_factory=dict)
    show_errors: bool = True
    script: str = "Home.py"  # relative to the repository root
    port: int = 0
    started_at: float = 0.0
    proc: subprocess.Popen | None = None
    address: str = "127.0.0.1"
    cert: tuple[Path, Path] | None = None
    args: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{'https' if self.cert else 'http'}://{host}:{self.port}"

    def start(self, health_timeout: float = HEALTH_TIMEOUT_S) -> "AppServer":
        self.port = free_port()
        # As scripts/run.sh and the Dockerfile start the app (see there): 2 malloc arenas.
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"), **self.env}
        cmd = [
            sys.executable, "-m", "streamlit", "run", self.script,
            "--server.port", str(self.port),
            "--server.headless", "true",
            "--server.address", self.address,
            "--browser.gatherUsageStats", "false",
        ]
        if self.cert:
            cmd += ["--server.sslCertFile", str(self.cert[0]), "--server.sslKeyFile", str(self.cert[1])]
        cmd += list(self.args)
        if self.show_errors:
            cmd += ["--client.showErrorDetails", "full"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "w", buffering=1)
        self._log.write(f"$ {' '.join(cmd)}\n")
        self.started_at = time.time()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + health_timeout
        while not healthy(f"{self.base}/_stcore/health"):
            if self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"streamlit exited with code {self.proc.returncode} before answering\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.base}/_stcore/health did not answer 'ok' within {health_timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def memory_mb(self) -> dict[str, float]:
        """The server's resident memory now (``rss``) and its peak so far (``peak``), in MB."""
        values = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values["rss" if key == "VmRSS" else "peak"] = int(rest.split()[0]) / 1024
        return values

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log, lines)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> "AppServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- the browser


def launch_chromium(playwright, extra_args: list[str] | tuple[str, ...] = ()):
    """Chromium with ``CHROMIUM_ARGS`` plus ``extra_args`` (e.g. a fake camera:
    ``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream``)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args], timeout=60_000)


def new_page(browser, *, viewport: dict | None = None, timeout_ms: int = 30_000):
    """A fresh context (own cookies, own Streamlit session) and a tab in it; close ``page.context``."""
    context = browser.new_context(viewport=viewport or VIEWPORT)
    context.add_init_script(RUN_COUNTER_JS)
    context.set_default_timeout(timeout_ms)
    return context.new_page()


def _is_idle(state: dict) -> bool:
    return (
        state["script"] == "notRunning"
        and state["connection"] == "CONNECTED"
        and not state["widgetRunning"]
        and "running" not in (state["widget"] or "").lower()
        and state["elements"] > 0
        and not state["skeletons"]  # a widget whose code is still being lazy-loaded (a slider)
    )


def wait_idle(page, timeout: float = IDLE_TIMEOUT_S, *, after: int | None = None, settle: float = SETTLE_S,
              poll: float = 0.05) -> dict:
    """Wait until Streamlit has finished running the script and stays quiet for ``settle`` s.

    Idle = the app root says script state "notRunning" while connected, the header status
    widget shows no "Running" indicator, some element is rendered, and no message has
    arrived for ``settle`` s. With ``after`` (a value of ``messages(page)`` taken before an
    action) it first waits for a message to have arrived after that action. Returns the
    page's state, whose ``lastMsgAt`` is the epoch time (ms) of the run's last message.
    Raises AssertionError on timeout.
    """
    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout
    state: dict = {}
    while True:
        try:
            state = page.evaluate(APP_STATE_JS)
        except PlaywrightError:  # navigation in progress: the document is being replaced
            state = {}
        if state:
            if state["script"] == "compilationError":
                raise AssertionError(f"the app script failed to compile ({page.url})")
            started = after is None or state["msgs"] > after
            quiet = state["lastMsgAt"] is not None and time.time() - state["lastMsgAt"] / 1000 >= settle
            if started and quiet and _is_idle(state):
                return state
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Streamlit did not become idle within {timeout:.0f} s on {page.url}; "
                f"last state {state} (messages before the action: {after})"
            )
        time.sleep(poll)


def wait_title(page, title: str, timeout: float = IDLE_TIMEOUT_S) -> None:
    """Wait until the main area's heading shows ``title`` and the app is idle again.

    After a page switch the last message can arrive before React has put the new page into
    the DOM (or while the previous page's elements are still there), so a caller that is
    about to look for the new page's widgets waits for its title first."""
    from playwright.sync_api import expect

    heading = page.locator('[data-testid="stMain"] h1').filter(has_text=title)
    expect(heading.first).to_be_visible(timeout=timeout * 1000)
    wait_idle(page, timeout)


def messages(page) -> int:
    """How many app messages this document has received so far."""
    return page.evaluate("() => window.__stMsgs || 0")


def _seconds_since(state: dict, start: float) -> float:
    return state["lastMsgAt"] / 1000 - start


def rerun(page, action, timeout: float = IDLE_TIMEOUT_S) -> float:
    """Do ``action()`` (a click, a key press, an upload…), wait for the rerun it triggers to
    finish, and return the seconds from the action to the last message of that run."""
    before = messages(page)
    start = time.time()
    action()
    return _seconds_since(wait_idle(page, timeout, after=before), start)


def open_url(page, url: str, timeout: float = IDLE_TIMEOUT_S, *, since: float | None = None) -> float:
    """Load ``url`` and wait for the app to be idle; seconds from ``since`` (default: now) to
    the last message of the first run."""
    start = time.time() if since is None else since
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    return _seconds_since(wait_idle(page, timeout), start)


# --------------------------------------------------------------------------- finding things


def page_files() -> list[Path]:
    """Every page of the app, in Streamlit's own sidebar order."""
    from streamlit.source_util import page_sort_key

    return sorted((ROOT / "pages").glob("*.py"), key=page_sort_key)


def url_name(script: Path) -> str:
    """The URL path Streamlit serves a page script under (``Object_detection``)."""
    from streamlit.source_util import page_icon_and_name

    return page_icon_and_name(script)[1]


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def active_caption(page):
    """The sidebar caption naming the active image ("Active: <title> · W×H")."""
    captions = sidebar(page).locator('[data-testid="stImageCaption"], [data-testid="stCaptionContainer"]')
    return captions.filter(has_text=re.compile(r"^\s*Active:"))


NAV = '[data-testid="stSidebarNav"]'
NAV_MORE = '[data-testid="stSidebarNavViewButton"]'


def link_page_name(href: str | None) -> str:
    """The page a sidebar link's ``href`` points to, as ``url_name`` gives it ("" for Home)."""
    path = urllib.parse.unquote(urllib.parse.urlparse(href or "").path)
    return path.strip("/").rsplit("/", 1)[-1]


def nav_link(page, script: Path, timeout_ms: int = 15_000):
    """The sidebar-navigation link of a page script (expanding "View N more" if needed)."""
    from playwright.sync_api import expect

    name = url_name(script)
    nav = page.locator(NAV)
    expect(nav).to_be_visible(timeout=timeout_ms)

    def find():
        for link in nav.locator("a").all():
            if link_page_name(link.get_attribute("href")) == name:
                return link
        return None

    link = find()
    more = nav.locator(NAV_MORE)
    if (link is None or not link.is_visible()) and more.count() and more.inner_text().startswith("View"):
        if "more" in more.inner_text():
            more.click()
        link = find()
    assert link is not None, f"no sidebar link for {script.name} (url path {name!r}); links: " + ", ".join(
        nav.locator("a").all_inner_texts()
    )
    return link, name


def choose_sample(page, title: str, timeout_ms: int = 15_000) -> float:
    from playwright.sync_api import expect

    combo = sidebar(page).get_by_role("combobox", name="Sample")
    combo.click()
    option = page.get_by_role("option", name=title, exact=True)
    expect(option).to_be_visible(timeout=timeout_ms)
    return rerun(page, option.click)


def main_slider(page):
    """The thumb of the first slider in the page's main area (its "main slider"), or None."""
    sliders = page.locator('[data-testid="stMain"] [data-testid="stSlider"]')
    if not sliders.count():
        return None
    # Streamlit 1.67 renders a react-aria slider (a native range input); older ones a div[role=slider].
    return sliders.first.locator('input[type="range"], [role="slider"]').first


def at_max(thumb) -> bool:
    """Whether a slider's thumb sits at its maximum (a range input's value and max, or ARIA's)."""
    now, top = thumb.evaluate(
        "el => [el.value !== undefined && el.value !== '' ? el.value : el.getAttribute('aria-valuenow'),"
        " el.max !== undefined && el.max !== '' ? el.max : el.getAttribute('aria-valuemax')]")
    try:
        return now is not None and top is not None and float(now) >= float(top)
    except (TypeError, ValueError):
        return False


def nudge(page, thumb, key: str) -> None:
    """Move a slider one step with the keyboard (``ArrowRight`` / ``ArrowLeft``)."""
    thumb.focus()
    page.keyboard.press(key)
