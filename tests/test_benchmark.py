"""The benchmark's judging and reporting (pure), and its models part on a real small model.

The benchmark itself (``python -m benchmark``) is a command, not a test: timings are never
asserted here. What is tested is that a result is judged against the right budget, that a
missed budget is reported as missed, and that the figures it computes mean what they say.
"""

from __future__ import annotations

import copy

import pytest

from benchmark import report
from benchmark.__main__ import END, START, update_readme
from core.topics import PAGES, page_by_slug
from models.registry import REGISTRY

MACHINE = {"cpu": "Test CPU, x86_64", "cores": 2, "ram_gb": 24.0, "gpu": None, "python": "3.11.7",
           "torch": "2.14.1", "streamlit": "1.67.0", "ultralytics": "8.4.190", "date": "2026-11-23"}


def _page(title, budget, p50, p95=None, errors=()):
    return {"title": title, "file": f"pages/{title}.py", "models": [], "budget_s": budget,
            "first_render_cold_s": 2.0, "first_render_warm_s": [0.5, 0.6], "errors": list(errors),
            "control": "slider: Confidence threshold",
            "rerun": {"p50_s": p50, "p95_s": p95 or p50, "n": 10, "samples_s": [p50] * 10}}


GOOD = {
    "machine": MACHINE,
    "app": {
        "env": "weights present: none",
        "cold_start": {"samples_s": [2.1, 2.4, 2.2], "p50_s": 2.2},
        "pages": [_page("Home", 0.3, 0.12), _page("Object detection", 1.0, 0.4, 0.9)],
        "memory": {"tours": [{"rss_mb": 900.0, "peak_mb": 950.0}, {"rss_mb": 910.0, "peak_mb": 960.0},
                             {"rss_mb": 920.0, "peak_mb": 960.0}], "growth_pct": 2.2},
    },
    "models": {"device": "CPU (x86_64, 2 threads)", "peak_gflops": 90.0, "rows": [
        {"name": "yolo11n", "weights": "pretrained", "input": "1×3×640×640", "input_size": 640, "params_m": 2.6,
         "gflops": 6.5, "latency": {"p50_ms": 150.0, "p95_ms": 160.0}, "limit_ms": 72.2, "ratio": 2.08}],
        "failed": []},
    "efficiency": {"quantization": {
        "threads": 2,
        "resnet18": {"weights": "untrained (same architecture)", "device": "CPU (x86_64, 2 threads)", "fp32": 30.0,
                     "fp32_p95": 33.0, "ort_fp32": 21.0, "int8": 11.5, "int8_p95": 12.0, "int8_dynamic": 70.0,
                     "speedup": 30.0 / 11.5, "speedup_vs_ort_fp32": 21.0 / 11.5, "fp32_mb": 46.8, "int8_mb": 11.75,
                     "size_ratio": 46.8 / 11.75, "agreement": None, "n_eval": 0},
        "shapes_cnn": {"agreement": 0.995, "fp32_accuracy": 0.9925, "int8_accuracy": 0.9875, "n_eval": 400,
                       "fp32_mb": 0.11, "int8_mb": 0.05},
        "efficientnet_lite0": {"weights": "pretrained", "device": "CPU (x86_64, 2 threads)", "fp32": 8.8,
                               "fp32_p95": 9.5, "ort_fp32": 2.7, "ort_fp32_p95": 3.0, "int8": 1.26, "int8_p95": 1.4,
                               "int8_dynamic": 47.0, "int8_dynamic_agreement": 0.55, "speedup": 8.8 / 1.26,
                               "speedup_vs_ort_fp32": 2.7 / 1.26, "fp32_mb": 18.87, "ort_fp32_mb": 18.76,
                               "int8_mb": 5.08, "size_ratio": 18.87 / 5.08, "agreement": 0.96, "n_eval": 130,
                               "n_calib": 16, "max_changed_margin": 0.04,
                               "bands": [{"band": "< 0.05", "images": 38, "kept": 33, "agreement": 33 / 38},
                                         {"band": "0.05 – 0.2", "images": 38, "kept": 38, "agreement": 1.0},
                                         {"band": "≥ 0.2", "images": 54, "kept": 54, "agreement": 1.0}]}}},
}


def _with(path: str, value):
    result = copy.deepcopy(GOOD)
    target = result
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return result


def test_a_result_within_every_budget_is_met():
    verdicts = report.verdicts(GOOD)
    assert all(v.ok for v in verdicts), [v for v in verdicts if not v.ok]
    assert report.all_met(GOOD)
    # cold start, one per page, peak + growth, YOLO, INT8 speed + size + shapes agreement (the untrained
    # ResNet-18's agreement is not judged: it would mean nothing), EfficientNet-Lite0 speed + size + agreement
    assert len(verdicts) == 1 + 2 + 2 + 1 + 3 + 3


@pytest.mark.parametrize(
    "path, value, missed",
    [
        ("app.cold_start.p50_s", 3.2, "Cold start"),
        ("app.pages.0.rerun", {"p50_s": 0.31, "p95_s": 0.4, "n": 5, "samples_s": []}, "Warm rerun p50, Home"),
        ("app.pages.1.rerun", {"p50_s": 1.01, "p95_s": 2.0, "n": 5, "samples_s": []}, "Object detection"),
        ("app.pages.1.errors", ["tour 1: ValueError"], "no exception"),
        ("app.memory.tours", [{"rss_mb": 2600.0, "peak_mb": 2600.0}] * 3, "Peak RSS"),
        ("app.memory.growth_pct", 5.5, "Memory growth"),
        ("models.rows.0.ratio", 3.2, "YOLO11n latency"),
        ("efficiency.quantization.resnet18.speedup", 2.4, "INT8 (ONNX Runtime, static) vs FP32"),
        ("efficiency.quantization.resnet18.size_ratio", 3.7, "size on disk"),
        ("efficiency.quantization.shapes_cnn.agreement", 0.94, "agreement with FP32, trained shapes CNN"),
        ("efficiency.quantization.resnet18.agreement", 0.9, "agreement with FP32, ResNet-18"),  # pretrained
        ("efficiency.quantization.efficientnet_lite0.speedup", 2.4, "speed, EfficientNet-Lite0"),
        ("efficiency.quantization.efficientnet_lite0.size_ratio", 3.4, "size on disk, EfficientNet-Lite0"),
        ("efficiency.quantization.efficientnet_lite0.agreement", 0.9, "agreement with FP32, EfficientNet-Lite0"),
    ],
)
def test_each_missed_budget_is_reported_as_missed(path, value, missed):
    result = _with(path, value)
    failed = [v.what for v in report.verdicts(result) if v.ok is False]
    assert len(failed) == 1 and missed in failed[0], failed
    assert not report.all_met(result)
    assert "❌ missed" in report.markdown(result)


def test_efficientnet_int8_rows_say_where_the_agreement_is_lost():
    text = report.markdown(GOOD)
    assert "EfficientNet-Lite0 (130 real photos) | ≥ 95% | 96.0% (kept by FP32's top-1 margin over its runner-up: " \
           "< 0.05: 33/38; 0.05 – 0.2: 38/38; ≥ 0.2: 54/54; largest margin changed 0.040)" in text
    assert "6.98× (8.8 → 1.3 ms); of which the runtime 3.26×, INT8 vs ONNX Runtime FP32 2.14×" in text
    assert "3.71× (18.9 → 5.1 MB)" in text
    # a result from before EfficientNet-Lite0 was measured is still judged, on what it holds
    older = _with("efficiency.quantization", {k: v for k, v in GOOD["efficiency"]["quantization"].items()
                                              if k != "efficientnet_lite0"})
    assert len(report.verdicts(older)) == len(report.verdicts(GOOD)) - 3 and report.all_met(older)


def test_the_pretrained_page_budget_is_not_applied_to_a_plain_page():
    """0.5 s passes a page with a pretrained model and fails one without."""
    assert report.verdicts(_with("app.pages.1.rerun.p50_s", 0.5))[2].ok is True
    assert report.verdicts(_with("app.pages.0.rerun.p50_s", 0.5))[1].ok is False


def test_parts_not_run_are_not_measured_rather_than_met():
    only_models = {k: v for k, v in GOOD.items() if k not in ("app", "efficiency")}
    verdicts = report.verdicts(only_models)
    assert [v.ok for v in verdicts] == [None, True, None]
    assert report.all_met(only_models)
    assert not report.all_met({"machine": MACHINE})  # nothing measured is not a pass


@pytest.mark.parametrize(
    "models, budget",
    [
        ((), report.RERUN_PLAIN_S),
        (("shapes-cnn",), report.RERUN_PLAIN_S),
        (("shapes-yolo", "yolo11n"), report.RERUN_PRETRAINED_S),
        (("maskrcnn_resnet50_fpn",), report.RERUN_PRETRAINED_S),
    ],
)
def test_rerun_budget_follows_the_models_a_page_declares(models, budget):
    assert report.rerun_budget_s(models) == budget


def test_every_page_declares_registered_models_only():
    for page in PAGES:
        assert set(page.models) <= set(REGISTRY), (page.slug, page.models)
    assert report.rerun_budget_s(page_by_slug("object-detection").models) == report.RERUN_PRETRAINED_S


def test_markdown_names_the_machine_and_every_page_and_model():
    text = report.markdown(GOOD)
    assert "Test CPU" in text and "no GPU" in text
    for needle in ("| Home |", "| Object detection |", "| yolo11n |", "2.08×", "0.40 / 0.90 (n=10)"):
        assert needle in text, needle


def test_update_readme_replaces_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\noutro\n")
    assert update_readme("new table\n", readme)
    assert readme.read_text() == f"intro\n{START}\nnew table\n{END}\noutro\n"
    readme.write_text("no markers\n")
    assert not update_readme("x", readme) and readme.read_text() == "no markers\n"


def test_models_part_measures_a_real_model(trained_shapes_cnn):
    """The shapes CNN on this CPU: FLOPs counted by torch, latency above the compute limit."""
    from benchmark import models

    result = models.run(["shapes-cnn"], "cpu", "CPU", log=lambda _: None, max_repeats=3)
    (row,) = result["rows"]
    assert not result["failed"] and row["weights"] == models.TRAINED_HERE
    assert row["gflops"] > 0 and row["latency"]["n"] >= 3
    assert row["limit_ms"] == pytest.approx(row["gflops"] / result["peak_gflops"] * 1000)
    assert row["ratio"] >= 1.0  # nothing runs faster than the device's measured peak allows


def test_models_part_reports_a_failing_model_and_goes_on(monkeypatch):
    from benchmark import models

    def broken(name, device):
        raise RuntimeError("no such layer")

    monkeypatch.setattr(models, "prepare", broken)
    result = models.run(["resnet18"], "cpu", "CPU", log=lambda _: None)
    assert result["rows"] == [] and "no such layer" in result["failed"][0]["error"]


DDP_MEMORY = {"workers": 4, "batch": 64, "server": "after 3 tours of every page", "server_rss_before_mb": 1600.0,
              "rss_mb": 5100.0, "pss_mb": 3500.0, "server_rss_mb": 1650.0, "children_at_peak": 4, "max_children": 4,
              "samples": 300, "seconds": 40.0, "offered": [1, 2, 4], "errors": []}


def test_markdown_reports_the_peak_memory_of_the_server_and_its_ddp_workers():
    with_app = _with("app.ddp_memory", DDP_MEMORY)
    text = report.markdown(with_app)
    assert "**Server + 4 DDP workers**" in text and "5100 MB" in text and "PSS" in text and "3500 MB" in text
    alone = {"machine": MACHINE, "ddp_memory": {**DDP_MEMORY, "server": "new, nothing else served"}}
    assert "server new, nothing else served" in report.markdown(alone)
    assert "not measured (TimeoutError" in report.markdown(_with("app.ddp_memory", {"error": "TimeoutError: x"}))
    assert report.verdicts(with_app) == report.verdicts(GOOD)  # a figure, not a budget


def test_family_memory_counts_a_process_and_its_children():
    import os
    import subprocess
    import sys

    from benchmark.app import FamilyMemory, descendants

    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(80 << 20); time.sleep(30)"])
    try:
        import time

        time.sleep(1.5)
        assert child.pid in descendants(os.getpid())
        family = FamilyMemory(os.getpid())
        family.sample()
        assert family.peak["max_children"] >= 1
        assert family.peak["rss_mb"] >= family.peak["server_rss_mb"] + 70  # the child's 80 MB buffer
        assert family.peak["pss_mb"] > 0
    finally:
        child.kill()
        child.wait()
