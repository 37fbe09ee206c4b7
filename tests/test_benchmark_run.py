"""The benchmark's app part, run for real (briefly) against `streamlit run` and Chromium.

No timing is judged here (budgets are the benchmark's job, not the tests'): this checks that
the command in the README works, finds every page by itself, moves a control on each, and
records what it says it records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmark import driver

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parent.parent

if not driver.chromium_available():
    pytest.skip(f"Chromium not found at {driver.CHROMIUM!r} (set CHROMIUM=/path/to/chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def test_benchmark_app_part_covers_every_page(tmp_path, trained_models):
    from benchmark.__main__ import main

    cold = ["pages/01_Object_detection.py", "pages/03_Mask_R-CNN.py"]  # every page in the full benchmark
    assert main(["--part", "app", "--tours", "2", "--repeats", "2", "--cold-repeats", "1", "--cold-pages", *cold,
                 "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "benchmark.json").read_text())
    app = result["app"]
    pages = {p["file"]: p for p in app["pages"]}
    assert set(pages) == {"Home.py"} | {f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py")}
    for file, page in pages.items():
        assert not page["errors"], (file, page["errors"])
    assert pages["pages/01_Object_detection.py"]["control"] == "slider: Confidence threshold"
    for file, page in pages.items():
        assert page["rerun"]["n"] == 4, file  # 2 tours x 2 moves, each one a rerun that finished
        assert all(0 < s < 120 for s in page["rerun"]["samples_s"]), (file, page["rerun"])
        assert page["control"] == "rerun (R)" or page["control"].startswith("slider: "), page["control"]
        assert math.isfinite(page["first_render_cold_s"]) and page["first_render_cold_s"] > 0
        if file in cold:  # a new server per page, nothing trained: torch, the model, the first run
            assert 0.5 < page["first_visit_cold_server_s"] < 120, (file, page["first_visit_cold_server_s"])
        else:
            assert page["first_visit_cold_server_s"] is None, file
    assert len(app["memory"]["tours"]) == 2 and all(t["rss_mb"] > 100 for t in app["memory"]["tours"])
    assert app["cold_start"]["samples_s"][0] > 0.5  # a server process really started
    table = (tmp_path / "benchmark.md").read_text()
    assert "**Budgets**" in table and "| Home |" in table and "YOLO11n" in table
    assert "First visit on a cold server, Object detection" in table
