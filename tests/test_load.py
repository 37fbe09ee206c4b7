"""A classroom at once: 30 Chromium sessions against one `streamlit run` (about 6 minutes).

Judged here: nothing breaks (no exception or unexpected error on any student's page), no
student ever sees another's image, result or slider value, every student really worked
(opened, chose an image, visited pages, moved sliders), each uploader saw the error for its
own broken file, and the server's memory stays under the lab's ceiling. Latency is reported
(``bench-results``-style files in the test's folder and the test log) and judged by
``python -m benchmark.load --check``, not asserted: timings are the benchmark's job.

Run only this: ``scripts/test.sh -m load``; everything but this: ``scripts/test.sh -m "not load"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark import driver

pytestmark = [pytest.mark.browser, pytest.mark.load, pytest.mark.timeout(1500)]
ROOT = Path(__file__).resolve().parent.parent
SHARED_YOLO = ROOT.parent / "shared" / "weights" / "yolo11n_coco_test.pt"

if not driver.chromium_available():
    pytest.skip(f"Chromium not found at {driver.CHROMIUM!r} (set CHROMIUM=/path/to/chromium)", allow_module_level=True)
pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")


@pytest.fixture
def weights(tmp_path, trained_models) -> Path:
    """The app's trained fallbacks, plus the real COCO YOLO11n where ../shared has it (then the
    detection page runs on each student's own upload, and its picture is checked too)."""
    from models.registry import weights_dir

    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "trained").symlink_to(weights_dir() / "trained")
    if SHARED_YOLO.is_file():
        (folder / "yolo11n.pt").symlink_to(SHARED_YOLO)
    return folder


def test_thirty_students_at_once(weights, tmp_path):
    from benchmark import load

    result = load.run(sessions=30, weights=weights, out_dir=tmp_path)
    print(load.markdown(result))
    problems = [f"student {s['index']}: {t}" for s in result["students"] for t in s["errors"] + s["isolation"]]
    assert result["exceptions"] == 0 and result["isolation_failures"] == 0, "\n".join(problems[:40])
    students = result["students"]
    assert len(students) == 30 and result["uploaders"] == 10
    for s in students:
        kinds = [a["kind"] for a in s["actions"]]
        assert kinds[0] == "open" and ("choose sample" in kinds or kinds.count("upload") == 2), (s["index"], kinds)
        assert "navigate" in kinds, (s["index"], kinds)  # reached at least one other page
        if s["colour"] is not None:
            assert s["broken_upload_seen"], s["index"]
    assert sum("slider" in [a["kind"] for a in s["actions"]] for s in students) >= 20
    assert result["rss_mb"]["peak"] <= load.GOALS["peak_rss_mb"], result["rss_mb"]
