"""The app part of the benchmark: a real `streamlit run Home.py` and Chromium, as a user has it.

* Cold start: from spawning ``streamlit run Home.py`` to Home's script having finished in
  the browser (title shown, sidebar rendered), several times, each with a new server.
* Pages: every script in ``pages/`` (discovered, like the tests), plus Home. Each is
  opened from the sidebar navigation, as a user does, in several *tours* of the whole app:
  the first tour meets the models cold, later tours (each a new browser session) warm.
  On each visit the page's main slider (the first slider in its main area) is moved one
  step back and forth ``repeats`` times; each move is one warm rerun. A page without a
  slider is rerun with Streamlit's own "R" shortcut.
* Memory: the server's resident memory and its peak after each tour.
* First visit on a cold server: for each page (or those named), a new server is started and
  the page's own URL is opened first, as a shared link is: nothing is imported or loaded
  yet, so it pays for torch, its models and its first computation (nothing is trained:
  the project's own models are shipped). Measured from the request to the end of the run.

* Memory with DDP workers: on the server that made the tours, a new session opens the
  Distributed training page at its largest setting (batch 64; runs of 1, 2 and 4 worker
  processes, one after another) and launches the workers; the server's and its child processes' memory is sampled every
  0.1 s, and the peak of the sum is reported, as RSS (a library page shared by several
  processes counted in each) and as PSS (each shared page split between its sharers: what
  they take together). ``python -m benchmark --part ddp-memory`` measures only this, on a
  newly started server that has served nothing else.

Every time is measured in the page: from the action (spawn, click, key press) to the
arrival of the last message of the script run it caused (see ``driver.RUN_COUNTER_JS``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

from benchmark import driver
from core import perf
from core.topics import page_by_file

HOME_TITLE = "CV Interview Lab"
DDP_PAGE = "pages/17_Distributed_training.py"
DDP_QUERY = "?batch=64&steps=20"  # the page's largest batch; steps do not change the memory
DDP_WORKERS = 4  # the page's largest worker count
FLOOR_APP = "benchmark/floor/one_line_app.py"  # Streamlit's own cold start, for comparison
COLD_TIMEOUT_S = 900.0  # a first visit may load torch and a model


def _summary(samples: list[float]) -> dict:
    timing = perf.Timing(tuple(s * 1000 for s in samples))
    return {"p50_s": timing.p50 / 1000, "p95_s": timing.p95 / 1000, "n": timing.n,
            "samples_s": [round(s, 3) for s in samples]}


def _problems(page) -> list[str]:
    """Exceptions and st.error boxes on the page (sidebar included)."""
    found = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [text[:300] for text in found.all_inner_texts()]


def _home_title(page, timeout_ms: int = 15_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator('[data-testid="stMain"] h1').filter(has_text=HOME_TITLE)).to_be_visible(timeout=timeout_ms)


def _moves(page, repeats: int) -> tuple[str, list[float]]:
    """Move the main slider ``repeats`` times (alternating right/left); the seconds of each rerun."""
    thumb = driver.main_slider(page)
    samples = []
    if thumb is None:
        label = "rerun (R)"
        for _ in range(repeats):
            page.evaluate("() => document.activeElement && document.activeElement.blur()")  # "r" in a text box is typing
            samples.append(driver.rerun(page, lambda: page.keyboard.press("r")))
        return label, samples
    label = "slider: " + page.locator('[data-testid="stMain"] [data-testid="stSlider"]').first.locator(
        '[data-testid="stWidgetLabel"]').inner_text().strip()
    # Right then left, or left then right when the slider starts at its maximum (a right
    # arrow there would change nothing and start no rerun).
    first, second = ("ArrowLeft", "ArrowRight") if driver.at_max(thumb) else ("ArrowRight", "ArrowLeft")
    for i in range(repeats):
        key = first if i % 2 == 0 else second
        samples.append(driver.rerun(page, lambda: driver.nudge(page, thumb, key)))
    return label, samples


def _status_mb(pid: int, keys=("VmRSS",)) -> dict[str, float]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in keys:
                out[key] = int(rest.split()[0]) / 1024
    except (OSError, ValueError):
        pass
    return out


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children, their children...), from ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the fields after "(comm)": state, ppid, ...
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class FamilyMemory:
    """Samples a process and its descendants every ``every_s`` in a thread; ``peak`` holds the
    largest sums seen (MB): ``rss`` and ``pss`` of all of them, the server's own ``server_rss``,
    and how many descendants were alive at the RSS peak."""

    def __init__(self, pid: int, every_s: float = 0.1):
        self.pid, self.every_s = pid, every_s
        self.peak = {"rss_mb": 0.0, "pss_mb": 0.0, "server_rss_mb": 0.0, "children_at_peak": 0,
                     "max_children": 0, "samples": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        kids = descendants(self.pid)
        server = _status_mb(self.pid).get("VmRSS", 0.0)
        rss = server + sum(_status_mb(k).get("VmRSS", 0.0) for k in kids)
        pss = _pss_mb(self.pid) + sum(_pss_mb(k) for k in kids)
        peak = self.peak
        peak["samples"] += 1
        peak["max_children"] = max(peak["max_children"], len(kids))
        peak["server_rss_mb"] = max(peak["server_rss_mb"], server)
        peak["pss_mb"] = max(peak["pss_mb"], pss)
        if rss > peak["rss_mb"]:
            peak["rss_mb"], peak["children_at_peak"] = rss, len(kids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.every_s)

    def __enter__(self) -> "FamilyMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def ddp_memory(browser, server, log: Callable[[str], None] = print) -> dict:
    """Peak memory of ``server`` and its child processes while the Distributed training page
    runs its largest setting, launched from a new browser session: batch 64 and the page's
    default selection, every worker count it offers (1, 2, 4 unless memory caps it), one run
    after another, so the peak is the largest count's."""
    from playwright.sync_api import expect

    script = driver.ROOT / DDP_PAGE
    page = driver.new_page(browser)
    try:
        driver.open_url(page, f"{server.base}/{driver.url_name(script)}{DDP_QUERY}", timeout=COLD_TIMEOUT_S)
        before = _status_mb(server.proc.pid).get("VmRSS", 0.0)  # the page is open, nothing launched yet
        offered = page.locator('[data-testid="stMain"] [data-testid="stMultiSelect"]').first.inner_text()
        button = page.get_by_role("button", name="Launch the workers")
        expect(button).to_be_visible(timeout=30_000)
        with FamilyMemory(server.proc.pid) as family:
            seconds = driver.rerun(page, button.click, timeout=COLD_TIMEOUT_S)
        errors = _problems(page)
    finally:
        page.context.close()
    peak = {k: round(v, 1) if isinstance(v, float) else v for k, v in family.peak.items()}
    counts = [int(t) for t in offered.split() if t.isdigit()]
    out = {"workers": max(counts, default=DDP_WORKERS), "batch": 64, "server_rss_before_mb": round(before, 1), **peak,
           "seconds": round(seconds, 1), "offered": counts, "errors": errors}
    log(f"  {out['workers']} DDP workers (batch 64): peak RSS of server + workers {out['rss_mb']:.0f} MB "
        f"(PSS {out['pss_mb']:.0f} MB; server alone {before:.0f} MB before, {out['server_rss_mb']:.0f} MB peak; "
        f"{out['max_children']} child processes)")
    return out


def ddp_memory_alone(*, out_dir: Path, env: dict[str, str], log: Callable[[str], None] = print) -> dict:
    """:func:`ddp_memory` on a newly started server that has served nothing else."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = driver.launch_chromium(pw)
        try:
            with driver.AppServer(out_dir / "server-ddp-memory.log", env=env) as server:
                return {**ddp_memory(browser, server, log), "server": "new, nothing else served"}
        finally:
            browser.close()


def cold_server_visits(browser, scripts: list[Path], *, out_dir: Path, env: dict[str, str],
                       log: Callable[[str], None] = print) -> dict[str, dict]:
    """Per page file: seconds from opening its URL on a newly started server to the end of its
    first run, and what the page showed as an error ({"seconds", "errors"})."""
    out: dict[str, dict] = {}
    for script in scripts:
        file = f"pages/{script.name}"
        with driver.AppServer(out_dir / f"cold-{script.stem}.log", env=env) as server:
            page = driver.new_page(browser)
            try:
                seconds = driver.open_url(page, f"{server.base}/{driver.url_name(script)}", timeout=COLD_TIMEOUT_S)
                out[file] = {"seconds": round(seconds, 3), "errors": _problems(page)}
            finally:
                page.context.close()
        log(f"  first visit on a cold server · {file}: {out[file]['seconds']:.2f} s")
    return out


def run(*, out_dir: Path, env: dict[str, str], env_label: str, repeats: int = 5, tours: int = 3,
        cold_repeats: int = 3, cold_pages: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """``cold_pages``: the page files (``pages/01_Object_detection.py``) whose first visit on a
    cold server is measured; None: every page."""
    from playwright.sync_api import sync_playwright

    from benchmark.report import rerun_budget_s

    visits: list[tuple[Path | None, dict]] = []  # (page script, its figures); None is Home
    for script in [None, *driver.page_files()]:
        meta = script and page_by_file(script.relative_to(driver.ROOT).as_posix())
        models = meta.models if meta else ()
        visits.append((script, {
            "title": "Home" if script is None else (meta.title if meta else script.stem),
            "file": "Home.py" if script is None else f"pages/{script.name}",
            "models": list(models), "budget_s": rerun_budget_s(models),
            "first_render_cold_s": None, "first_render_warm_s": [], "samples": [], "errors": [],
            "first_visit_cold_server_s": None,
        }))

    with sync_playwright() as pw:
        browser = driver.launch_chromium(pw)
        warm = driver.new_page(browser)  # Chromium's own first start is not the app's cold start
        warm.goto("about:blank")
        warm.context.close()

        cold: list[float] = []
        floor: list[float] = []
        for i in range(cold_repeats):
            # Streamlit's own floor first, then the lab, in turns, so both meet the same machine.
            page = driver.new_page(browser)
            with driver.AppServer(out_dir / f"floor-{i}.log", env=env, script=FLOOR_APP) as bare:
                floor.append(driver.open_url(page, bare.base, timeout=120, since=bare.started_at))
            page.context.close()
            page = driver.new_page(browser)  # the tab is ready before the server starts, as a user's is
            server = driver.AppServer(out_dir / f"server-{i}.log", env=env).start()
            cold.append(driver.open_url(page, server.base, timeout=120, since=server.started_at))
            _home_title(page)
            log(f"  cold start {i + 1}/{cold_repeats}: {cold[-1]:.2f} s (one-line Streamlit app: {floor[-1]:.2f} s)")
            if i < cold_repeats - 1:
                page.context.close()
                server.stop()

        memory = []
        try:
            for tour in range(tours):
                if tour:
                    page = driver.new_page(browser)
                    driver.open_url(page, server.base)
                    _home_title(page)
                for script, row in visits:
                    if script is None:
                        seconds = 0.0  # Home is already open: its first render is the cold start
                    else:
                        link, _ = driver.nav_link(page, script)
                        seconds = driver.rerun(page, link.click, timeout=COLD_TIMEOUT_S)
                        driver.wait_title(page, row["title"])
                        if tour == 0:
                            row["first_render_cold_s"] = seconds
                        else:
                            row["first_render_warm_s"].append(seconds)
                    row["errors"] += [f"tour {tour + 1}: {p}" for p in _problems(page)]
                    row["control"], samples = _moves(page, repeats)
                    row["samples"] += samples
                    log(f"  tour {tour + 1}/{tours} · {row['title']}: first render {seconds:.2f} s, "
                        f"reruns p50 {perf.percentile(samples, 50):.2f} s")
                page.context.close()
                memory.append({k: round(v, 1) for k, v in server.memory_mb().items()})
                log(f"  after tour {tour + 1}: server RSS {memory[-1]['rss']:.0f} MB, peak {memory[-1]['peak']:.0f} MB")
            try:
                ddp = {**ddp_memory(browser, server, log), "server": f"after {tours} tours of every page"}
            except Exception as exc:  # its figure is lost, not the tours'
                ddp = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                log(f"  DDP memory failed: {ddp['error']}")
        finally:
            server.stop()
        try:
            wanted = [s for s, _ in visits[1:] if cold_pages is None or f"pages/{s.name}" in cold_pages]
            for file, seen in cold_server_visits(browser, wanted, out_dir=out_dir, env=env, log=log).items():
                row = next(r for _, r in visits if r["file"] == file)
                row["first_visit_cold_server_s"] = seen["seconds"]
                row["errors"] += [f"cold server: {p}" for p in seen["errors"]]
        finally:
            browser.close()

    for _, row in visits:
        row["rerun"] = _summary(row.pop("samples"))
    visits[0][1]["first_render_cold_s"] = perf.percentile(cold, 50)
    first, last = memory[0]["rss"], memory[-1]["rss"]
    return {
        "env": env_label,
        "cold_start": {"samples_s": [round(c, 3) for c in cold], "p50_s": perf.percentile(cold, 50),
                       "streamlit_floor_samples_s": [round(c, 3) for c in floor],
                       "streamlit_floor_p50_s": perf.percentile(floor, 50)},
        "pages": [row for _, row in visits],
        "memory": {"tours": [{"rss_mb": m["rss"], "peak_mb": m["peak"]} for m in memory],
                   "growth_pct": (last - first) / first * 100},
        "ddp_memory": ddp,
    }
