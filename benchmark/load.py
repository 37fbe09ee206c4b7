"""A classroom at once: many browser sessions against one ``streamlit run``, for a fixed time.

    python -m benchmark.load                       # 30 sessions: join over 3 min, work 2 min more (about 6 minutes)
    python -m benchmark.load --sessions 10 --seconds 30
    python -m benchmark.load --weights DIR --check # exit 1 unless every goal is met
    python -m benchmark.load --readme              # and write the table into README.md

One server on 127.0.0.1, one Chromium, one Playwright context per student (its own cookies,
websocket and Streamlit session). Students join over ``ramp`` seconds, as a class does. Each
one picks an image: every third uploads a picture of its own (first a broken file, whose
error only that student may see, then a PNG of a colour no other student has); the others
choose a sample photo. Then, until the time is up, each visits a random page from the
sidebar and moves that page's main slider a few steps (or reruns a page without one).

The pace is a class listening to a teacher: a student acts, then looks for 8–25 s. On a
2-core machine the 30 Chromium tabs themselves need more CPU than the server (opening the app
costs a tab about 4 CPU-seconds, a page switch 2–3, a slider move 0.3; the server's rerun
0.1–0.2), which in a real class 30 laptops provide; a faster pace measures this machine's
browsers, not the lab.

After every action the student's page is checked for what it must show, and only that:
* no exception box and no error except the one its own broken upload caused;
* the sidebar names *its* image ("Active: …"), and for an uploader the thumbnail the
  server sends has *its* colour (nearest of all students' colours, and close to it);
* the main slider shows the value this student moved it to;
* with real detector weights, the detection page's picture is of *its* upload.

Measured: every action's latency (from the rerun request the tab sent to the "script
finished" message it received, see ``Wire``; also from the action to the run's last message
as stamped inside the page), exceptions, isolation failures, and the server's
resident memory (sampled each second) and peak. Before the class arrives one visitor opens
every page once (the teacher checking the projector), so the figures are of a warm server;
that warm-up is timed and reported too. Goals are in ``GOALS``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import colorsys
import io
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark import driver

ROOT = driver.ROOT
GOALS = {"exceptions": 0, "isolation_failures": 0, "p95_s": 5.0, "peak_rss_mb": 2500.0}
ACTION_TIMEOUT_S = 120.0
POLL_S = 0.25
THINK_S = (8.0, 25.0)  # a student looks at the result (and listens) before the next move
UPLOAD_EVERY = 3  # every third student uploads an image of their own
BROKEN = b"\xff\xd8\xff\xe0 this is not really a JPEG"
COLOUR_TOLERANCE = 40.0  # per-channel mean distance between what was sent and what is shown

_FETCH_IMAGE_JS = """
async (img) => {
  const response = await fetch(img.src);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(text);
}
"""


def student_colour(index: int, total: int) -> tuple[int, int, int]:
    """A saturated colour per student, evenly spaced in hue and alternating in brightness."""
    r, g, b = colorsys.hsv_to_rgb((index / max(total, 1)) % 1.0, 0.85, 0.95 if index % 2 else 0.6)
    return round(r * 255), round(g * 255), round(b * 255)


def student_png(colour: tuple[int, int, int], seed: int) -> bytes:
    """A 480×360 PNG of ``colour`` with mild noise (so it is a photo-like upload, not a flat file)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour, np.int16) + rng.integers(-12, 13, (360, 480, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def mean_colour(data: bytes) -> tuple[float, float, float]:
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return tuple(float(v) for v in np.asarray(im.convert("RGB"), np.float64).reshape(-1, 3).mean(0))


def nearest(colour: tuple[float, ...], palette: list[tuple[int, int, int]]) -> tuple[int, float]:
    """Index of the palette colour nearest ``colour`` and the largest per-channel difference to it."""
    dist = [max(abs(a - b) for a, b in zip(colour, p)) for p in palette]
    best = min(range(len(palette)), key=dist.__getitem__)
    return best, dist[best]


@dataclass
class Student:
    index: int
    sample: str | None  # sample title, or None for an uploader
    colour: tuple[int, int, int] | None = None
    file_name: str = ""
    actions: list[dict] = field(default_factory=list)  # {"kind", "page", "seconds"}
    errors: list[str] = field(default_factory=list)
    isolation: list[str] = field(default_factory=list)
    broken_upload_seen: bool = False

    @property
    def expected_title(self) -> str:
        return self.sample or self.file_name


# --------------------------------------------------------------------------- async driver


async def _state(page) -> dict:
    from playwright.async_api import Error as PlaywrightError

    try:
        return await page.evaluate(driver.APP_STATE_JS)
    except PlaywrightError:  # a navigation is replacing the document
        return {}


async def wait_idle(page, timeout: float, *, after: int | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = await _state(page)
        if state:
            started = after is None or state["msgs"] > after
            quiet = state["lastMsgAt"] is not None and time.time() - state["lastMsgAt"] / 1000 >= driver.SETTLE_S
            if started and quiet and driver._is_idle(state):
                return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"no idle app within {timeout:.0f} s on {page.url} (last state {state})")
        await asyncio.sleep(POLL_S)


class Wire:
    """One tab's Streamlit messages from its DevTools network log (CDP), decoded. A run is
    timed from the ``rerun_script`` request the tab sent to the ``script_finished`` message
    it received, so heartbeats and upload-URL requests do not count. The stamps are taken as
    the tab handles each frame, so this includes the tab taking in the run's messages (busy
    when 29 other tabs share its CPU) but not the painting after them, which the in-page
    time includes."""

    def __init__(self):
        self.reruns: list[float] = []  # when each rerun request left the browser
        self.finished: list[float] = []  # when each "script finished" arrived

    def _sent(self, event: dict) -> None:
        if self._kind(event, sent=True) == "rerun_script":
            self.reruns.append(event["timestamp"])

    def _received(self, event: dict) -> None:
        if self._kind(event, sent=False) == "script_finished":
            self.finished.append(event["timestamp"])

    @staticmethod
    def _kind(event: dict, *, sent: bool) -> str | None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        frame = event["response"]
        if frame.get("opcode") != 2:  # binary frames carry the protobuf messages
            return None
        msg = BackMsg() if sent else ForwardMsg()
        try:
            msg.ParseFromString(base64.b64decode(frame["payloadData"]))
        except Exception:  # noqa: BLE001 - not a Streamlit message
            return None
        return msg.WhichOneof("type")

    async def attach(self, context, page) -> None:
        cdp = await context.new_cdp_session(page)
        cdp.on("Network.webSocketFrameSent", self._sent)
        cdp.on("Network.webSocketFrameReceived", self._received)
        await cdp.send("Network.enable")

    def mark(self) -> tuple[int, int]:
        return len(self.reruns), len(self.finished)

    def seconds(self, mark: tuple[int, int]) -> float | None:
        """From the first rerun request after ``mark`` to the last run that finished after it
        (None while no run requested since ``mark`` has finished)."""
        reruns = self.reruns[mark[0]:]
        finished = [t for t in self.finished[mark[1]:] if reruns and t >= reruns[0]]
        if not finished:
            return None
        return finished[-1] - reruns[0]


async def act(page, action, wire: Wire | None = None, timeout: float = ACTION_TIMEOUT_S, *,
              again_after: float | None = None) -> dict:
    """Do ``await action()`` and wait for the rerun it causes. Returns ``seconds`` (server
    answer time on the wire, see ``Wire``; the in-page time when there is no wire) and
    ``page_seconds`` (action to the run's last message, stamped inside the page)."""
    before = await page.evaluate("() => window.__stMsgs || 0")
    mark = wire.mark() if wire else (0, 0)
    start = time.time()
    await action()
    deadline = time.monotonic() + timeout
    # An upload first asks for upload URLs (a message back, then quiet), then uploads, then
    # reruns: with a wire, wait for a run requested after the action to have finished.
    retry_at = time.monotonic() + again_after if again_after else None
    while wire and wire.seconds(mark) is None and time.monotonic() < deadline:
        if retry_at and time.monotonic() > retry_at and len(wire.reruns) == mark[0]:
            await action()  # a key press that landed while the page was busy: no rerun was asked for
            retry_at = None
        await asyncio.sleep(POLL_S)
    state = await wait_idle(page, max(1.0, deadline - time.monotonic()), after=before)
    in_page = max(0.0, state["lastMsgAt"] / 1000 - start)
    on_wire = wire.seconds(mark) if wire else None
    return {"seconds": in_page if on_wire is None else on_wire, "page_seconds": in_page}


async def _nav(page, name: str) -> None:
    """Click the sidebar link whose URL path is ``name`` ("" for Home), expanding the
    navigation's "View N more" first when the link is hidden behind it (as driver.nav_link)."""
    nav = page.locator(driver.NAV)
    for expanded in (False, True):
        for link in await nav.locator("a").all():
            if driver.link_page_name(await link.get_attribute("href")) == name and await link.is_visible():
                await link.click()
                return
        more = nav.locator(driver.NAV_MORE)
        if expanded or not await more.count() or "more" not in await more.inner_text():
            break
        await more.click()
    raise AssertionError(f"no sidebar link to {name or 'Home'!r}")


# --------------------------------------------------------------------------- one student


class Classroom:
    def __init__(self, base: str, students: list[Student], pages: list[tuple[str, str]], *, coco: bool):
        self.base, self.students, self.pages, self.coco = base, students, pages, coco
        self.palette = [s.colour for s in students if s.colour is not None]

    async def check(self, page, student: Student, where: str) -> None:
        """Everything the student's page must show after an action (see the module docstring)."""
        problems = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
        for text in await problems.all_inner_texts():
            mine = student.colour is not None and "previous image stays active" in text and "broken" in text
            if not mine:
                student.errors.append(f"{where}: {text[:200]}")
        caption = await driver.active_caption(page).first.inner_text()
        if not caption.strip().startswith(f"Active: {student.expected_title}"):
            student.isolation.append(f"{where}: sidebar says {caption.strip()!r}, expected {student.expected_title!r}")
        if student.colour is not None:
            await self._check_colour(page, student, '[data-testid="stSidebar"] [data-testid="stImage"] img',
                                     f"{where} (sidebar thumbnail)")
            if self.coco and where.endswith("Object_detection"):
                await self._check_colour(page, student, '[data-testid="stMain"] [data-testid="stImage"] img',
                                         f"{where} (detection picture)")

    async def _check_colour(self, page, student: Student, selector: str, where: str) -> None:
        img = page.locator(selector).first
        for attempt in range(3):  # a newer run may have replaced the image file in between
            if not await img.count():
                student.isolation.append(f"{where}: no image")
                return
            try:
                seen = mean_colour(base64.b64decode(await img.evaluate(_FETCH_IMAGE_JS)))
                break
            except Exception:  # noqa: BLE001 - not an image (yet): fetch the current one again
                if attempt == 2:
                    raise
                await asyncio.sleep(0.5)
        who, diff = nearest(seen, self.palette)
        if self.palette[who] != student.colour or diff > COLOUR_TOLERANCE:
            student.isolation.append(f"{where}: shows mean colour {tuple(round(c) for c in seen)}, "
                                     f"this student's is {student.colour}")

    async def choose_image(self, page, wire: Wire, student: Student) -> None:
        side = driver.sidebar(page)
        if student.sample:
            combo = side.get_by_role("combobox", name="Sample")
            await combo.click()
            option = page.get_by_role("option", name=student.sample, exact=True)
            await option.wait_for(state="visible", timeout=30_000)
            student.actions.append({"kind": "choose sample", "page": "Home", **await act(page, option.click, wire)})
            return
        radio = side.locator('[data-testid="stRadio"] label').filter(has_text="Upload")
        student.actions.append({"kind": "choose source", "page": "Home", **await act(page, radio.click, wire)})
        file_input = side.locator('[data-testid="stFileUploader"] input[type="file"]')
        await file_input.wait_for(state="attached", timeout=30_000)
        broken = {"name": f"broken-{student.index}.jpg", "mimeType": "image/jpeg", "buffer": BROKEN}
        timing = await act(page, lambda: file_input.set_input_files(files=[broken]), wire)
        student.actions.append({"kind": "upload", "page": "Home", **timing})
        error = page.locator('[data-testid="stAlertContentError"]').filter(has_text=broken["name"])
        student.broken_upload_seen = await error.count() == 1
        good = {"name": student.file_name, "mimeType": "image/png",
                "buffer": student_png(student.colour, seed=student.index)}
        timing = await act(page, lambda: file_input.set_input_files(files=[good]), wire)
        student.actions.append({"kind": "upload", "page": "Home", **timing})
        # Replacing a file can take two runs (the old file removed, then the new one added);
        # the check that follows must see the state after both, so wait for it to show.
        caption = driver.active_caption(page).filter(has_text=f"Active: {student.file_name}")
        try:
            await caption.first.wait_for(state="visible", timeout=60_000)
            await wait_idle(page, ACTION_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the check below reports what the page shows instead
            pass

    async def move_slider(self, page, wire: Wire, student: Student, where: str, rng: random.Random) -> None:
        slider = page.locator('[data-testid="stMain"] [data-testid="stSlider"]').first
        if not await slider.count():
            async def press_r():
                await page.evaluate("() => document.activeElement && document.activeElement.blur()")
                await page.keyboard.press("r")

            timing = await act(page, press_r, wire, again_after=5.0)
            student.actions.append({"kind": "rerun", "page": where, **timing})
            return
        thumb = slider.locator('input[type="range"], [role="slider"]').first
        lo, hi, step = [float(await thumb.get_attribute(a)) for a in ("min", "max", "step")]
        value = float(await thumb.input_value())
        key = rng.choice(["ArrowRight", "ArrowLeft"])
        target = min(hi, value + step) if key == "ArrowRight" else max(lo, value - step)
        if target == value:
            key, target = ("ArrowLeft", value - step) if key == "ArrowRight" else ("ArrowRight", value + step)

        async def press():
            await thumb.focus()
            await page.keyboard.press(key)

        student.actions.append({"kind": "slider", "page": where, **await act(page, press, wire)})
        shown = float(await thumb.input_value())
        if abs(shown - target) > step / 2:
            student.isolation.append(f"{where}: slider shows {shown}, this student moved it to {target}")

    async def run_student(self, browser, student: Student, start_at: float, end_at: float) -> None:
        rng = random.Random(student.index)
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        # A laptop-sized window with reduced motion: the 30 browsers share this machine's two
        # cores with the server, which a real class's laptops do not.
        context = await browser.new_context(viewport={"width": 1100, "height": 800}, reduced_motion="reduce")
        await context.add_init_script(driver.RUN_COUNTER_JS)
        context.set_default_timeout(ACTION_TIMEOUT_S * 1000)
        page = await context.new_page()
        wire = Wire()
        try:
            await wire.attach(context, page)
            start = time.time()
            await page.goto(self.base, wait_until="domcontentloaded")
            state = await wait_idle(page, ACTION_TIMEOUT_S)
            in_page = state["lastMsgAt"] / 1000 - start
            student.actions.append({"kind": "open", "page": "Home", "seconds": wire.seconds((0, 0)) or in_page,
                                    "page_seconds": in_page})
            await self.choose_image(page, wire, student)
            await self.check(page, student, "Home")
            current = ""
            while time.monotonic() < end_at:
                await asyncio.sleep(rng.uniform(*THINK_S))
                name, title = rng.choice([p for p in self.pages if p[0] != current] or self.pages)
                timing = await act(page, lambda: _nav(page, name), wire)
                student.actions.append({"kind": "navigate", "page": name or "Home", **timing})
                current = name
                await self.check(page, student, name or "Home")
                for _ in range(rng.randint(2, 5)):
                    await asyncio.sleep(rng.uniform(*THINK_S))
                    if time.monotonic() >= end_at:
                        break
                    await self.move_slider(page, wire, student, name or "Home", rng)
                    await self.check(page, student, name or "Home")
            if student.colour is not None and not student.broken_upload_seen:
                student.errors.append("the broken upload gave no error message in this session")
        except Exception as exc:  # noqa: BLE001 - one student's failure is a result, not a crash
            student.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            try:
                await page.screenshot(path=str(ROOT / "test-artifacts" / f"load-student-{student.index}.png"))
            except Exception:  # noqa: BLE001
                pass
        finally:
            await context.close()


async def _sample_memory(server: driver.AppServer, samples: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(server.memory_mb()["rss"])
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


async def _warm_up(browser, base: str, pages: list[tuple[str, str]]) -> float:
    """One visitor opens every page once (models loaded); seconds it took."""
    context = await browser.new_context()
    await context.add_init_script(driver.RUN_COUNTER_JS)
    page = await context.new_page()
    start = time.monotonic()
    await page.goto(base, wait_until="domcontentloaded")
    await wait_idle(page, 900)
    for name, _ in pages:
        if name:
            await act(page, lambda: _nav(page, name), timeout=900)
    await context.close()
    return time.monotonic() - start


async def _run(*, sessions: int, seconds: float, ramp: float, env: dict[str, str], coco: bool,
               out_dir: Path, log) -> dict:
    from playwright.async_api import async_playwright

    from core.images import SAMPLES
    from core.topics import page_by_file

    titles = [title for title, file in SAMPLES.values() if file]
    pages = [("", "Home")] + [(driver.url_name(p), getattr(page_by_file(f"pages/{p.name}"), "title", p.stem))
                              for p in driver.page_files()]
    students = []
    for i in range(sessions):
        if i % UPLOAD_EVERY == 0:
            students.append(Student(i, None, student_colour(i, sessions), f"student-{i}.png"))
        else:
            # Not the first sample: it is already active, so choosing it would start no run.
            students.append(Student(i, titles[1 + i % (len(titles) - 1)]))
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    server = driver.AppServer(out_dir / "load-server.log", env=env).start()
    memory: list[float] = []
    stop = asyncio.Event()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=driver.CHROMIUM, args=driver.CHROMIUM_ARGS)
            log(f"Warm-up: one visitor opens all {len(pages)} pages…")
            warm = await _warm_up(browser, server.base, pages)
            log(f"  {warm:.1f} s. Now {sessions} students for {seconds:.0f} s (joining over {ramp:.0f} s)…")
            room = Classroom(server.base, students, pages, coco=coco)
            sampler = asyncio.create_task(_sample_memory(server, memory, stop))
            is_server = lambda cmd: f"--server.port {server.port}" in cmd  # noqa: E731
            is_browser = lambda cmd: "chromium" in cmd  # noqa: E731
            cpu0 = {"server": cpu_seconds(is_server), "browsers": cpu_seconds(is_browser)}
            t0 = time.monotonic()
            end_at = t0 + ramp + seconds
            await asyncio.gather(*(room.run_student(browser, s, t0 + ramp * s.index / max(sessions, 1), end_at)
                                   for s in students))
            cpu = {k: round(cpu_seconds(f) - cpu0[k], 1) for k, f in (("server", is_server), ("browsers", is_browser))}
            stop.set()
            await sampler
            await browser.close()
        peak = server.memory_mb()["peak"]
    finally:
        server.stop()
    return _summary(students, warm, memory, peak, cpu, sessions=sessions, seconds=seconds, ramp=ramp, coco=coco)


def cpu_seconds(match) -> float:
    """CPU seconds (user + system) used so far by the processes whose command line matches."""
    import os

    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if match(proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")):
                fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def _summary(students: list[Student], warm: float, memory: list[float], peak: float, cpu: dict | None = None,
             **setup) -> dict:
    from core import perf

    latencies = [a["seconds"] for s in students for a in s.actions]
    in_page = [a["page_seconds"] for s in students for a in s.actions]
    by_kind: dict[str, list[float]] = {}
    for s in students:
        for a in s.actions:
            by_kind.setdefault(a["kind"], []).append(a["seconds"])
    return {
        "setup": setup,
        "warm_up_s": round(warm, 2),
        "actions": len(latencies),
        "p50_s": perf.percentile(latencies, 50) if latencies else None,
        "p95_s": perf.percentile(latencies, 95) if latencies else None,
        "max_s": max(latencies, default=None),
        "page_p50_s": perf.percentile(in_page, 50) if in_page else None,
        "page_p95_s": perf.percentile(in_page, 95) if in_page else None,
        "by_kind": {k: {"n": len(v), "p50_s": perf.percentile(v, 50), "p95_s": perf.percentile(v, 95)}
                    for k, v in sorted(by_kind.items())},
        "exceptions": sum(len(s.errors) for s in students),
        "isolation_failures": sum(len(s.isolation) for s in students),
        "uploaders": sum(s.colour is not None for s in students),
        "cpu_s": cpu or {},
        "rss_mb": {"start": memory[0] if memory else None, "end": memory[-1] if memory else None,
                   "max_sampled": max(memory, default=None), "peak": peak},
        "students": [asdict(s) | {"n_actions": len(s.actions)} for s in students],
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def verdicts(result: dict) -> list[tuple[str, str, str, bool]]:
    """(what, goal, measured, met) rows."""
    return [
        ("Exceptions and unexpected errors on any page", "0", str(result["exceptions"]),
         result["exceptions"] <= GOALS["exceptions"]),
        ("A student shown another's image, result or value", "0", str(result["isolation_failures"]),
         result["isolation_failures"] <= GOALS["isolation_failures"]),
        ("p95 interaction latency", f"≤ {GOALS['p95_s']:g} s", f"{result['p95_s']:.2f} s (p50 {result['p50_s']:.2f} s, "
         f"max {result['max_s']:.2f} s, n={result['actions']})", result["p95_s"] <= GOALS["p95_s"]),
        ("Server peak RSS", f"≤ {GOALS['peak_rss_mb'] / 1000:.1f} GB", f"{result['rss_mb']['peak'] / 1000:.2f} GB",
         result["rss_mb"]["peak"] <= GOALS["peak_rss_mb"]),
    ]


def markdown(result: dict) -> str:
    s = result["setup"]
    lines = [f"**Classroom load test**: {s['sessions']} browser sessions ({result['uploaders']} uploading their own "
             f"image), joining over {s.get('ramp', 0):g} s and working {s['seconds']:g} s more, against one "
             f"`streamlit run` on 127.0.0.1; "
             f"{'real YOLO11n weights' if s['coco'] else 'offline fallbacks'}; warm-up visit {result['warm_up_s']:.1f} s.",
             "", "Latency runs from the rerun request a tab sent to the 'script finished' message it received, "
             "both stamped by the tab's DevTools network log: the server's work plus the tab taking in the run's "
             "messages, but not painting them. The same actions timed inside the pages, "
             f"where {s['sessions']} browsers wait for the CPU the server uses: p50 {result['page_p50_s']:.2f} s, "
             f"p95 {result['page_p95_s']:.2f} s. CPU used during the class: server "
             f"{result['cpu_s'].get('server', 0):.0f} s, the {s['sessions']} browsers {result['cpu_s'].get('browsers', 0):.0f} s "
             f"(of {(s['seconds'] + s.get('ramp', 0)) * _cores():.0f} CPU-seconds the machine had).",
             "", "| What | Goal | Measured |  |", "|---|---|---|---|"]
    for what, goal, measured, met in verdicts(result):
        lines.append(f"| {what} | {goal} | {measured} | {'✅ met' if met else '❌ missed'} |")
    lines += ["", "| Action | n | p50 (s) | p95 (s) |", "|---|---|---|---|"]
    for kind, v in result["by_kind"].items():
        lines.append(f"| {kind} | {v['n']} | {v['p50_s']:.2f} | {v['p95_s']:.2f} |")
    return "\n".join(lines)


def run(*, sessions: int = 30, seconds: float = 120.0, ramp: float = 180.0, weights: Path | None = None,
        out_dir: Path = ROOT / "bench-results", log=print) -> dict:
    """Run the classroom; returns the result dict (also written as load.json / load.md)."""
    from models import registry

    out_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(weights) if weights else registry.weights_dir()
    env = {"CVLAB_WEIGHTS": str(folder.resolve()), "CVLAB_OFFLINE": "1"}
    coco = (folder / "yolo11n.pt").is_file()
    result = asyncio.run(_run(sessions=sessions, seconds=seconds, ramp=ramp, env=env, coco=coco,
                              out_dir=out_dir, log=log))
    (out_dir / "load.json").write_text(json.dumps(result, indent=1))
    (out_dir / "load.md").write_text(markdown(result) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the class works after joining")
    parser.add_argument("--ramp", type=float, default=180.0, help="students join over this many seconds")
    parser.add_argument("--weights", type=Path, help="weights folder for the server (default: the app's)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every goal is met")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args(argv)
    result = run(sessions=args.sessions, seconds=args.seconds, ramp=args.ramp, weights=args.weights,
                 out_dir=args.out)
    print(markdown(result))
    if args.readme:
        from benchmark.__main__ import update_readme

        stamp = f"\n\nMeasured {time.strftime('%Y-%m-%d')} with `python -m benchmark.load`.\n"
        if not update_readme(markdown(result) + stamp, start="<!-- load:start -->", end="<!-- load:end -->"):
            print("README.md has no <!-- load:start --> / <!-- load:end --> markers")
    for s in result["students"]:
        for text in s["errors"] + s["isolation"]:
            print(f"  student {s['index']}: {text}")
    return 0 if not args.check or all(met for *_, met in verdicts(result)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
