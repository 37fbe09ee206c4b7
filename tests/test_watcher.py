"""Streamlit's default file watcher is safe with this lab, and it does its job.

`.streamlit/config.toml` once set ``fileWatcherType = "none"`` because Streamlit's module
watcher tripped over ``torch.classes`` ("Examining the path of torch.classes raised …",
"no running event loop"). Streamlit fixed that in 1.46, and with "none" code pushed to a
Community Cloud app does not show until a reboot. This test runs a copy of the lab with the
default watcher, opens pages that import torch, Ultralytics and captum, finds no watcher
error in the server log, then edits a module those pages import and sees the next run use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from benchmark import driver

ROOT = driver.ROOT
WATCHER_ERRORS = ("torch.classes", "no running event loop", "__path__._path", "Traceback",
                  "Exception in thread", "inotify", "OSError: [Errno 24]", "too many open files")
# pages/<file> -> the heavy package its first run imports
PAGES = {"01_Object_detection.py": "ultralytics", "07_Interpretability.py": "captum",
         "21_Pooling.py": "torch"}

pytestmark = pytest.mark.skipif(not driver.chromium_available(), reason="Chromium is not installed")


def test_config_keeps_the_default_watcher():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert "fileWatcherType" not in config.get("server", {}), "the default watcher (auto) is wanted"


def _copy_of_the_lab(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def test_default_watcher_raises_nothing_and_picks_up_an_edit(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    lab = _copy_of_the_lab(tmp_path / "lab")
    log_path = tmp_path / "server.log"
    port = driver.free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CVLAB_OFFLINE": "1", "MALLOC_ARENA_MAX": "2"}
    env.pop("STREAMLIT_SERVER_FILE_WATCHER_TYPE", None)
    cmd = [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--client.showErrorDetails", "full",
           "--logger.level", "debug"]  # the watcher logs "Path changed: …" at debug level
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=lab, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + driver.HEALTH_TIMEOUT_S
        while not driver.healthy(f"{base}/_stcore/health"):
            assert proc.poll() is None and time.monotonic() < deadline, driver.log_tail(log_path)
            time.sleep(0.1)
        with sync_api.sync_playwright() as pw:
            browser = driver.launch_chromium(pw)
            try:
                page = driver.new_page(browser)
                for file in PAGES:
                    driver.open_url(page, f"{base}/{driver.url_name(Path(file))}", timeout=240)
                    assert not page.locator('[data-testid="stException"]').count(), file
                text = log_path.read_text(errors="replace")
                found = [e for e in WATCHER_ERRORS if e in text]
                assert not found, f"watcher trouble in the server log: {found}\n{driver.log_tail(log_path)}"

                # Edit a module the page imports (its title in core/topics.py): the watcher sees
                # it and the session's next rerun (here: another sample picked in the sidebar)
                # imports the new code. With "none" the old module stays loaded until a restart.
                topics = lab / "core" / "topics.py"
                source = topics.read_text()
                assert source.count('"Pooling"') >= 1
                topics.write_text(source.replace('"Pooling"', '"Pooling (edited live)"', 1))
                deadline = time.monotonic() + 30
                while "Path changed: " + str(topics) not in log_path.read_text(errors="replace"):
                    assert time.monotonic() < deadline, "the watcher never reported the edit"
                    time.sleep(0.2)
                driver.choose_sample(page, "Chelsea the cat")
                driver.wait_title(page, "Pooling (edited live)", timeout=60)
            finally:
                browser.close()
        text = log_path.read_text(errors="replace")
        assert not [e for e in WATCHER_ERRORS if e in text], driver.log_tail(log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
