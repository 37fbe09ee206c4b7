"""Rebuild the models this project trains itself and ships in ``models/trained/``.

    python -m models.train --all                   # all seven, from their fixed seeds (about 50 min)
    python -m models.train --only shapes-cnn       # one or a few
    python -m models.train --list                  # what is shipped: recipe, held-out scores, time
    python -m models.train --check                 # shipped files vs the code (no training)
    python -m models.train --all --out /tmp/x      # train elsewhere (the manifest goes there too)
    python -m models.train --list --readme         # the shipped table into README.md

Each model is trained with the recipe its module declares (``SHIPPED.recipe``), saved, read
back and judged on its held-out data; ``manifest.json`` then records the file's SHA-256,
the recipe, the training data's fingerprint, the held-out scores, the training time and the
machine. Commit the changed files and the manifest together. The app never trains: it loads
these files (see :mod:`models.checkpoints`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

from models import registry
from models import checkpoints
from models.checkpoints import MANIFEST, Shipped, jsonable, manifest

TRAINED = tuple(name for name, spec in registry.REGISTRY.items() if spec.source == "trained")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    return {"cpu": _cpu(), "cores": os.cpu_count(), "torch": torch.__version__,
            "kernels": torch.backends.cpu.get_cpu_capability(), "python": platform.python_version(),
            "date": _dt.date.today().isoformat()}


def publish(shipped: Shipped, model, metrics: dict, seconds: float, out: Path | None = None, *,
            recipe: dict | None = None) -> dict:
    """Save ``model``, read the file back, judge it on its held-out data and record it in
    ``out/manifest.json``; returns the manifest entry."""
    out = out or checkpoints.SHIPPED_DIR
    out.mkdir(parents=True, exist_ok=True)
    path = out / shipped.path.name
    shipped.save(model, metrics, path)
    loaded, _ = shipped.read(path)
    held = shipped.evaluate(loaded)
    entry = {
        "file": path.name, "sha256": registry.sha256_of(path), "bytes": path.stat().st_size,
        "recipe": jsonable(shipped.recipe if recipe is None else recipe), "fingerprint": shipped.fingerprint(),
        "metrics": jsonable({**metrics, **held}), "train_seconds": round(seconds, 1), "built": machine(),
    }
    book = manifest(out / MANIFEST.name)
    book[shipped.name] = entry
    with registry.atomic_path(out / MANIFEST.name) as tmp:
        tmp.write_text(json.dumps(book, indent=1, sort_keys=True) + "\n")
    return entry


def rebuild(name: str, *, out: Path | None = None, quiet: bool = False, **overrides) -> dict:
    """Train ``name`` with its recipe (``overrides`` change it, e.g. for a short test run) and
    publish it into ``out``."""
    shipped = registry.shipped(name)

    def bar(fraction: float, message: str) -> None:
        if not quiet:
            filled = int(min(max(fraction, 0.0), 1.0) * 30)
            sys.stdout.write(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {fraction:5.1%} {message[:70]:<70}")
            sys.stdout.flush()

    t0 = time.perf_counter()
    recipe = {**shipped.recipe, **overrides}
    model, metrics = shipped.train(progress=bar, **recipe)
    seconds = time.perf_counter() - t0
    if not quiet:
        sys.stdout.write("\n")
    return publish(shipped, model, metrics, seconds, out, recipe=recipe)


def check(name: str) -> list[str]:
    """What no longer matches between the shipped file of ``name`` and the code ([] if all does)."""
    shipped = registry.shipped(name)
    entry = manifest().get(name)
    if entry is None:
        return [f"{name}: no manifest entry"]
    problems = []
    try:
        shipped.verified_path()
    except registry.WeightsUnavailable as exc:
        problems.append(f"{name}: {exc.reason}")
    if entry["recipe"] != jsonable(shipped.recipe):
        problems.append(f"{name}: recipe in code {jsonable(shipped.recipe)} != shipped {entry['recipe']}")
    if entry["fingerprint"] != shipped.fingerprint():
        problems.append(f"{name}: the training data generator draws other samples than the shipped model saw")
    return problems


def _summary(name: str, entry: dict) -> str:
    shipped = registry.shipped(name)
    score = entry["metrics"].get(shipped.score)
    return (f"  {name:<16} {entry['bytes'] / 1e6:5.2f} MB  {entry['train_seconds'] / 60:5.1f} min  "
            f"{shipped.score} {score:.4f}  recipe {entry['recipe']}")


# What each shown metric means, for the README's table.
METRIC_WORDS = {
    "test_accuracy": "accuracy", "mean_iou": "mean IoU (7 classes)", "precision": "precision",
    "recall": "recall", "mAP50": "mAP50", "mask_precision": "mask precision", "mask_recall": "mask recall",
    "mask_iou": "mean mask IoU", "precision_mask_iou50": "precision", "recall_mask_iou50": "recall",
    "mean_mask_iou": "mean mask IoU", "test_cer_clean": "CER clean", "test_cer_jitter": "CER jittered",
}


def markdown_table(book: dict | None = None) -> str:
    """The shipped models as a Markdown table (the README's, between its shipped: markers)."""
    book = manifest() if book is None else book
    rows = ["| Model | What | Recipe | Training (one core) | Held-out scores | File |", "|---|---|---|---|---|---|"]
    for name in TRAINED:
        entry, shipped = book.get(name), registry.shipped(name)
        if entry is None:
            rows.append(f"| `{name}` | {registry.get_spec(name).title} | — | not shipped | — | — |")
            continue
        recipe = ", ".join(f"{k} {v}" for k, v in entry["recipe"].items())
        scores = ", ".join(f"{METRIC_WORDS.get(k, k)} {entry['metrics'][k]:.3f}"
                           for k in (shipped.shown or (shipped.score,)) if k in entry["metrics"])
        minutes = entry["train_seconds"] / 60
        took = f"{entry['train_seconds']:.0f} s" if minutes < 2 else f"{minutes:.0f} min"
        rows.append(f"| `{name}` | {registry.get_spec(name).title} | {recipe} | {took} | {scores} | "
                    f"{entry['bytes'] / 1e6:.2f} MB |")
    built = {e["built"]["cpu"] + ", torch " + e["built"]["torch"] for e in book.values()}
    return "\n".join(rows) + f"\n\nBuilt on {'; '.join(sorted(built))} (`python -m models.train --all`).\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="rebuild all seven")
    which.add_argument("--only", nargs="+", metavar="NAME", choices=TRAINED)
    which.add_argument("--list", action="store_true", help="show the shipped files and their scores")
    which.add_argument("--check", action="store_true", help="check the shipped files against the code")
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default models/trained)")
    parser.add_argument("--readme", action="store_true", help="then write the shipped table into README.md")
    args = parser.parse_args(argv)

    if args.list:
        for name in TRAINED:
            entry = manifest().get(name)
            print(_summary(name, entry) if entry else f"  {name:<16} not shipped")
        if args.readme:
            write_readme()
        return 0
    if args.check:
        problems = [p for name in TRAINED for p in check(name)]
        print("\n".join(problems) or "every shipped file matches the code")
        return 1 if problems else 0
    for name in TRAINED if args.all else args.only:
        print(f"{name}: training with {registry.shipped(name).recipe}")
        print(_summary(name, rebuild(name, out=args.out)))
    if args.readme:
        write_readme()
    return 0


def write_readme() -> bool:
    """Put :func:`markdown_table` into README.md between its shipped: markers (False if absent)."""
    import re

    path = registry.REPO_ROOT / "README.md"
    start, end = "<!-- shipped:start -->", "<!-- shipped:end -->"
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        return False
    path.write_text(pattern.sub(lambda _: f"{start}\n{markdown_table()}{end}", text), encoding="utf-8")
    return True


if __name__ == "__main__":
    sys.exit(main())
