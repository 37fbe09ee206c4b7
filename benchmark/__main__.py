"""CV Interview Lab's benchmark: cold start, every page, memory, and every registered model.

    python -m benchmark                      # everything (about 2 minutes on 2 CPU cores)
    python -m benchmark --part models        # only the models part (no browser needed)
    python -m benchmark --part efficiency    # INT8 vs FP32, runtimes, DDP scaling (no browser)
    python -m benchmark --part ddp-memory    # peak memory of a new server + 4 DDP workers (1 minute)
    python -m benchmark --part app --repeats 9
    python -m benchmark --weights /data/lab-weights   # pages and models use that weights folder
    python -m benchmark --readme --check     # write the table into README.md; exit 1 if a budget is missed

Writes ``bench-results/benchmark.json`` and ``bench-results/benchmark.md`` (and the server
logs). Budgets are in ``benchmark/report.py``. ``scripts/bench.sh`` sets up the venv and
Chromium first, then runs this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from benchmark import report

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


def machine(device_name: str | None) -> dict:
    from importlib.metadata import version

    from core.devices import cpu_model_name, cpu_threads

    cpu = cpu_model_name()
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        ram_gb = float("nan")
    return {
        "cpu": f"{cpu}, {platform.machine()}", "cores": cpu_threads(), "ram_gb": ram_gb, "gpu": device_name,
        "os": platform.platform(), "python": platform.python_version(), "torch": version("torch"),
        "streamlit": version("streamlit"), "ultralytics": version("ultralytics"),
        "date": dt.date.today().isoformat(),
    }


def update_readme(table: str, path: Path = README, *, start: str = START, end: str = END) -> bool:
    """Put ``table`` between the ``start``/``end`` markers of the README; False if they are missing."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda _: f"{start}\n{table}{end}", text), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "app", "models", "efficiency", "ddp-memory"), default="all",
                        help="ddp-memory: only the peak memory of a new server and its workers while the "
                             "Distributed training page runs 4 workers (part of app)")
    parser.add_argument("--repeats", type=int, default=5, help="slider moves per page visit (default 5)")
    parser.add_argument("--tours", type=int, default=3, help="tours of every page (default 3, at least 2)")
    parser.add_argument("--cold-repeats", type=int, default=5,
                        help="cold starts of the server, each after one of a one-line app (default 5)")
    parser.add_argument("--cold-pages", nargs="+", metavar="FILE",
                        help="page files whose first visit on a cold server is measured (default: every page; "
                             "'none' for none), e.g. pages/01_Object_detection.py")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="only these registered models")
    parser.add_argument("--device", default="auto", help="auto (default: the GPU if there is one), cpu, cuda, mps")
    parser.add_argument("--weights", type=Path, help="weights folder (sets CVLAB_WEIGHTS for the app and models)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--readme", action="store_true", help="write the Markdown table into README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 unless every measured budget is met")
    args = parser.parse_args(argv)
    if args.tours < 2 or args.repeats < 1 or args.cold_repeats < 1:
        parser.error("--tours must be >= 2, --repeats and --cold-repeats >= 1")
    if args.weights:
        os.environ["CVLAB_WEIGHTS"] = str(args.weights.resolve())
    args.out.mkdir(parents=True, exist_ok=True)

    from core import devices
    from models import registry

    device = devices.resolve(args.device)
    if device.notice:
        print(device.notice)
    info = machine(device.device.name if device.device.kind != "cpu" else None)
    print(f"Benchmark on {report.machine_line(info)}")
    print(f"Weights folder: {registry.weights_dir()}")
    present = [r["name"] for r in registry.status() if r["present"]]
    print(f"  present: {', '.join(present) or 'none'}")
    result: dict = {"machine": info, "weights_present": present}

    started = time.monotonic()
    # The server never downloads during the benchmark: a page runs with the weights that
    # are in the folder (or its offline fallback), so no timing includes a download.
    env = {"CVLAB_WEIGHTS": str(registry.weights_dir()), "CVLAB_OFFLINE": "1"}
    if args.part in ("all", "app"):
        from benchmark import app

        pretrained = [n for n in present if registry.get_spec(n).source != "trained"]
        label = f"weights present: {', '.join(pretrained) or 'none (offline fallbacks)'}"
        if not pretrained:
            print("  No pretrained weights in the folder: pages run their offline fallbacks. "
                  "`python -m models.prefetch` first to benchmark the real models.")
        print("App: cold start, every page, memory…")
        result["app"] = app.run(out_dir=args.out, env=env, env_label=label, repeats=args.repeats,
                                tours=args.tours, cold_repeats=args.cold_repeats,
                                cold_pages=None if args.cold_pages is None else
                                [p for p in args.cold_pages if p != "none"])
    if args.part == "ddp-memory":
        from benchmark import app

        print("Memory of a new server and its DDP workers (Distributed training page, 4 workers)…")
        result["ddp_memory"] = app.ddp_memory_alone(out_dir=args.out, env=env)
    if args.part in ("all", "models"):
        from benchmark import models

        print(f"Models on {device.device.name}…")
        result["models"] = models.run(args.models, device.device.torch_device, device.device.name)
    if args.part in ("all", "efficiency"):
        from benchmark import efficiency

        print("Efficiency pages: INT8 vs FP32, runtimes, DDP scaling…")
        result["efficiency"] = efficiency.run()
    result["seconds"] = round(time.monotonic() - started, 1)

    table = report.markdown(result)
    (args.out / "benchmark.json").write_text(json.dumps(result, indent=1, default=str))
    (args.out / "benchmark.md").write_text(table)
    print()
    print(table)
    print(f"Written: {args.out / 'benchmark.json'}, {args.out / 'benchmark.md'} ({result['seconds']:.0f} s)")
    if args.readme:
        print("README.md updated." if update_readme(table) else f"README.md has no {START} … {END} markers.")
    met = report.all_met(result)
    if not any(v.ok is not None for v in report.verdicts(result)):
        print("No budget is measured by this part.")
    else:
        print("Every measured budget is met." if met else "Some budget is missed (see the table).")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
