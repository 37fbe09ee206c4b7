"""The lab's speed and memory budgets, judged on a benchmark result, and the Markdown table.

Pure Python: a result is the JSON-able dict that ``python -m benchmark`` writes, and
:func:`verdicts` turns it into one line per budget (met, missed, or not measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COLD_START_S = 3.0
FIRST_VISIT_S = 5.0  # a page's first render on a newly started server (issue 19: nothing trains)
RERUN_PLAIN_S = 0.3  # pages without a pretrained model
RERUN_PRETRAINED_S = 1.0  # pages with a pretrained model (YOLO, classifier, DeepLab, CAM, Mask R-CNN)
PEAK_RSS_MB = 2500.0  # Community Cloud's ceiling is about 2.7 GB
GROWTH_PCT = 5.0
YOLO_LIMIT_RATIO = 3.0  # YOLO11n latency at 640 within 3x of FLOPs / measured peak
YOLO_MODEL = "yolo11n"


@dataclass(frozen=True)
class Verdict:
    what: str
    budget: str
    measured: str
    ok: bool | None  # None: not measured in this run

    @property
    def mark(self) -> str:
        return {True: "✅ met", False: "❌ missed", None: "— not measured"}[self.ok]


def rerun_budget_s(models: tuple[str, ...] | list[str]) -> float:
    """A page's warm-rerun budget: the slower one if it may load a pretrained (downloaded) model."""
    from models.registry import get_spec

    pretrained = any(get_spec(name).source != "trained" for name in models)
    return RERUN_PRETRAINED_S if pretrained else RERUN_PLAIN_S


def verdicts(result: dict[str, Any]) -> list[Verdict]:
    """One verdict per budget of issue 3, for whatever parts ``result`` holds."""
    out: list[Verdict] = []
    app = result.get("app")
    if app:
        cold = app["cold_start"]
        out.append(Verdict("Cold start to Home rendered (p50 of runs)", f"≤ {COLD_START_S:g} s",
                           f"{cold['p50_s']:.2f} s (max {max(cold['samples_s']):.2f} s)"
                           + (f"; a one-line Streamlit app: {cold['streamlit_floor_p50_s']:.2f} s"
                              if cold.get("streamlit_floor_p50_s") is not None else ""),
                           cold["p50_s"] <= COLD_START_S))
        for page in app["pages"]:
            rerun = page["rerun"]
            kind = "pretrained model" if page["budget_s"] == RERUN_PRETRAINED_S else "no pretrained model"
            out.append(Verdict(f"Warm rerun p50, {page['title']} ({kind}; {page['control']})",
                               f"≤ {page['budget_s']:g} s", f"{rerun['p50_s']:.2f} s (p95 {rerun['p95_s']:.2f} s)",
                               rerun["p50_s"] <= page["budget_s"]))
            if page.get("first_visit_cold_server_s") is not None:
                seconds = page["first_visit_cold_server_s"]
                out.append(Verdict(f"First visit on a cold server, {page['title']}", f"≤ {FIRST_VISIT_S:g} s",
                                   f"{seconds:.2f} s", seconds <= FIRST_VISIT_S))
            if page.get("errors"):
                out.append(Verdict(f"{page['title']}: no exception or error shown", "none",
                                   f"{len(page['errors'])} shown", False))
        mem = app["memory"]
        peak = mem["tours"][0]["peak_mb"]
        out.append(Verdict("Peak RSS of the server after visiting every page", f"≤ {PEAK_RSS_MB / 1000:g} GB",
                           f"{peak / 1000:.2f} GB", peak <= PEAK_RSS_MB))
        out.append(Verdict(f"Memory growth between the 1st and last of {len(mem['tours'])} tours (RSS)",
                           f"≤ {GROWTH_PCT:g} %", f"{mem['growth_pct']:+.1f} %", mem["growth_pct"] <= GROWTH_PCT))
    else:
        out.append(Verdict("Cold start, warm reruns, memory (the app part)", "see issue 3", "—", None))
    models = result.get("models")
    yolo = next((r for r in (models or {}).get("rows", []) if r["name"] == YOLO_MODEL), None)
    if yolo:
        out.append(Verdict(f"YOLO11n latency at {yolo['input_size']} vs FLOPs ÷ peak ({models['device']})",
                           f"≤ {YOLO_LIMIT_RATIO:g}× the compute limit",
                           f"{yolo['ratio']:.2f}× ({yolo['latency']['p50_ms']:.0f} ms vs {yolo['limit_ms']:.0f} ms)",
                           yolo["ratio"] <= YOLO_LIMIT_RATIO))
    else:
        out.append(Verdict("YOLO11n latency vs FLOPs ÷ peak", f"≤ {YOLO_LIMIT_RATIO:g}×", "—", None))
    out += _efficiency_verdicts(result.get("efficiency"))
    return out


def _efficiency_verdicts(eff: dict | None) -> list[Verdict]:
    """Issue 7's INT8 figures: speed and size for ResNet-18 on the CPU, top-1 agreement; and the
    photo classifier's: EfficientNet-Lite0's size and its agreement on 130 real photos (the
    ResNet-18 speed bar applied to it too, with the share of the runtime said)."""
    from benchmark.efficiency import EFFNET_SIZE_RATIO, INT8_AGREEMENT, INT8_SIZE_RATIO, INT8_SPEEDUP

    q = (eff or {}).get("quantization") or {}
    r18, shapes, lite = q.get("resnet18"), q.get("shapes_cnn"), q.get("efficientnet_lite0")
    if not r18:
        return [Verdict("INT8 vs FP32 (the efficiency part)", f"≥ {INT8_SPEEDUP:g}× faster", "—", None)]
    where = f"ResNet-18 ({r18['weights']}), {r18['device']}"
    out = [Verdict(f"INT8 (ONNX Runtime, static) vs FP32 (PyTorch eager) speed, {where}", f"≥ {INT8_SPEEDUP:g}×",
                   f"{r18['speedup']:.2f}× ({r18['fp32']:.1f} → {r18['int8']:.1f} ms); "
                   f"vs ONNX Runtime FP32 {r18['speedup_vs_ort_fp32']:.2f}×", r18["speedup"] >= INT8_SPEEDUP),
           Verdict("INT8 vs FP32 size on disk, ResNet-18", f"≥ {INT8_SIZE_RATIO:g}× smaller",
                   f"{r18['size_ratio']:.2f}× ({r18['fp32_mb']:.1f} → {r18['int8_mb']:.1f} MB)",
                   r18["size_ratio"] >= INT8_SIZE_RATIO)]
    if r18.get("agreement") is not None:
        out.append(Verdict(f"INT8 top-1 agreement with FP32, ResNet-18 ({r18['n_eval']} images)",
                           f"≥ {INT8_AGREEMENT:.0%}", f"{r18['agreement']:.1%}", r18["agreement"] >= INT8_AGREEMENT))
    if lite:
        bands = "; ".join(f"{b['band']}: {b['kept']}/{b['images']}" for b in lite.get("bands", []))
        changed = ("" if lite.get("max_changed_margin") is None
                   else f"; largest margin changed {lite['max_changed_margin']:.3f}")
        out += [Verdict(f"INT8 (ONNX Runtime, static) vs FP32 (PyTorch eager) speed, EfficientNet-Lite0 "
                        f"({lite['weights']}), {lite['device']}", f"≥ {INT8_SPEEDUP:g}× (ResNet-18's bar)",
                        f"{lite['speedup']:.2f}× ({lite['fp32']:.1f} → {lite['int8']:.1f} ms); of which the runtime "
                        f"{lite['fp32'] / lite['ort_fp32']:.2f}×, INT8 vs ONNX Runtime FP32 "
                        f"{lite['speedup_vs_ort_fp32']:.2f}×", lite["speedup"] >= INT8_SPEEDUP),
                Verdict("INT8 vs FP32 size on disk, EfficientNet-Lite0", f"≥ {EFFNET_SIZE_RATIO:g}× smaller",
                        f"{lite['size_ratio']:.2f}× ({lite['fp32_mb']:.1f} → {lite['int8_mb']:.1f} MB)",
                        lite["size_ratio"] >= EFFNET_SIZE_RATIO),
                Verdict(f"INT8 top-1 agreement with FP32, EfficientNet-Lite0 ({lite['n_eval']} real photos)",
                        f"≥ {INT8_AGREEMENT:.0%}", f"{lite['agreement']:.1%}" + (
                            f" (kept by FP32's top-1 margin over its runner-up: {bands}{changed})" if bands else ""),
                        lite["agreement"] >= INT8_AGREEMENT)]
    if shapes and shapes.get("agreement") is not None:
        out.append(Verdict(f"INT8 top-1 agreement with FP32, trained shapes CNN ({shapes['n_eval']} held-out crops)",
                           f"≥ {INT8_AGREEMENT:.0%}", f"{shapes['agreement']:.1%} (accuracy {shapes['fp32_accuracy']:.1%}"
                           f" → {shapes['int8_accuracy']:.1%})", shapes["agreement"] >= INT8_AGREEMENT))
    return out


def all_met(result: dict[str, Any]) -> bool:
    """Every measured budget met (and something measured)."""
    judged = [v.ok for v in verdicts(result) if v.ok is not None]
    return bool(judged) and all(judged)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    gpu = f", GPU: {machine['gpu']}" if machine.get("gpu") else ", no GPU"
    return (f"{machine['cpu']} ({machine['cores']} cores), {machine['ram_gb']:.0f} GB RAM{gpu}; "
            f"Python {machine['python']}, torch {machine['torch']}, Streamlit {machine['streamlit']}, "
            f"Ultralytics {machine['ultralytics']}; {machine['date']}")


def markdown(result: dict[str, Any]) -> str:
    """The benchmark as Markdown: budgets first, then pages, memory and models."""
    parts = [f"Measured on: {machine_line(result['machine'])}.", "", "**Budgets**", "",
             _table(["What", "Budget", "Measured", ""],
                    [[v.what, v.budget, v.measured, v.mark] for v in verdicts(result)])]
    app = result.get("app")
    if app:
        rows = []
        for page in app["pages"]:
            rerun = page["rerun"]
            warm = page["first_render_warm_s"]
            cold_server = page.get("first_visit_cold_server_s")
            rows.append([page["title"], "—" if cold_server is None else f"{cold_server:.2f}",
                         f"{page['first_render_cold_s']:.2f}",
                         f"{min(warm):.2f}–{max(warm):.2f}" if warm else "—",
                         f"{rerun['p50_s']:.2f} / {rerun['p95_s']:.2f} (n={rerun['n']})", page["control"]])
        cold = app["cold_start"]
        parts += ["", f"**Pages** (Chromium against `streamlit run Home.py`, {app['env']}; cold start "
                      f"{', '.join(f'{s:.2f}' for s in cold['samples_s'])} s"
                      + (f"; a one-line Streamlit app, started in turn with it: "
                         f"{', '.join(f'{s:.2f}' for s in cold['streamlit_floor_samples_s'])} s"
                         if cold.get("streamlit_floor_samples_s") else "") + ")", "",
                  _table(["Page", "First visit, cold server (s)", "First render in a tour, models cold (s)",
                          "First render, warm (s)",
                          "Warm rerun p50 / p95 (s)", "Control moved"], rows)]
        tours = app["memory"]["tours"]
        parts += ["", "**Server memory** after each tour of every page: "
                  + ", ".join(f"tour {i + 1}: RSS {t['rss_mb']:.0f} MB (peak {t['peak_mb']:.0f} MB)"
                              for i, t in enumerate(tours))
                  + f"; growth {app['memory']['growth_pct']:+.1f} %."]
    ddp = (app or {}).get("ddp_memory") or result.get("ddp_memory")
    if ddp:
        parts += ["", ddp_memory_line(ddp)]
    models = result.get("models")
    if models:
        rows = [[r["name"], r["weights"], r["input"], f"{r['params_m']:.1f}", f"{r['gflops']:.2f}",
                 f"{r['latency']['p50_ms']:.1f} / {r['latency']['p95_ms']:.1f}", f"{r['limit_ms']:.1f}",
                 f"{r['ratio']:.1f}×"] for r in models["rows"]]
        rows += [[r["name"], "—", "—", "—", "—", r["error"], "—", "—"] for r in models.get("failed", [])]
        parts += ["", f"**Models** on {models['device']} (matrix-multiply peak {models['peak_gflops']:.0f} GFLOP/s "
                      f"in float32; compute limit = FLOPs ÷ peak)", "",
                  _table(["Model", "Weights", "Input", "Params (M)", "GFLOPs", "Latency p50 / p95 (ms)",
                          "Compute limit (ms)", "× limit"], rows)]
    parts += _efficiency_tables(result.get("efficiency"))
    return "\n".join(parts) + "\n"


def ddp_memory_line(ddp: dict[str, Any]) -> str:
    """The Markdown sentence for the peak memory of the server and its DDP workers."""
    if ddp.get("error"):
        return f"**Server + DDP workers**: not measured ({ddp['error']})."
    return (f"**Server + {ddp['workers']} DDP workers** (Distributed training page, batch {ddp['batch']}; server "
            f"{ddp['server']}): peak RSS of the server and its child processes together "
            f"{ddp['rss_mb']:.0f} MB (PSS, shared library pages split between the processes: "
            f"{ddp['pss_mb']:.0f} MB); the server alone {ddp['server_rss_before_mb']:.0f} MB with the page open, "
            f"{ddp['server_rss_mb']:.0f} MB at most during it"
            + (f"; errors shown: {len(ddp['errors'])}" if ddp.get("errors") else "") + ".")


def _efficiency_tables(eff: dict | None) -> list[str]:
    if not eff:
        return []
    parts: list[str] = []
    rt = eff.get("runtimes") or {}
    if rt.get("rows"):
        rows = [[r["runtime"], f"{r['p50 ms']:.2f} / {r['p95 ms']:.2f}" if r.get("p50 ms") else "—",
                 f"{r['× eager']:.2f}×" if r.get("× eager") else "—",
                 "—" if r.get("max |Δ logit| vs eager") is None else f"{r['max |Δ logit| vs eager']:.1e}",
                 r.get("same top-1", "—"), "—" if r.get("build s") is None else f"{r['build s']:.1f}",
                 r.get("error") or ""] for r in rt["rows"]]
        parts += ["", f"**Runtimes** (Frameworks page's code): the shapes CNN on a batch {tuple(rt['input'])}, CPU", "",
                  _table(["Runtime", "p50 / p95 (ms)", "Speed vs eager", "Max abs Δ logit", "Same top-1",
                          "Build (s)", "Error"], rows)]
    dd = eff.get("ddp") or {}
    if dd.get("rows"):
        rows = [[r["workers"], r["backend"], f"{r['step_ms_p50']:.1f}", f"{r['compute_ms_p50']:.1f}",
                 "—" if r.get("ddp_allreduce_ms_p50") is None else f"{r['ddp_allreduce_ms_p50']:.2f}",
                 f"{r['images_per_s']:.0f}", "—" if r.get("speedup") is None else f"{r['speedup']:.2f}×"]
                for r in dd["rows"]]
        parts += ["", f"**DDP** (Distributed training page's code): worker processes training the shapes CNN, "
                      f"{dd['batch_per_worker']} crops per worker per step, {dd['steps']} steps, one thread each", "",
                  _table(["Workers", "Backend", "Step p50 (ms)", "Compute p50 (ms)", "All-reduce p50 (ms)",
                          "Images/s", "Speed-up"], rows)]
    for name in ("quantization", "runtimes", "ddp"):
        if (eff.get(name) or {}).get("error"):
            parts += ["", f"Efficiency part `{name}` failed: {eff[name]['error']}"]
    return parts
