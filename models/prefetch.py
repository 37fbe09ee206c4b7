"""Fetch every registered model's weights ahead of time (for offline use and Docker).

    python -m models.prefetch            # download what is missing, check the shipped models
    python -m models.prefetch --list     # what is present, where, and its size
    python -m models.prefetch --only yolo11n resnet18
    python -m models.prefetch --verify   # re-check checksums of present files

The project's own small models are not downloaded: they are shipped in models/trained/ and
only checked here (rebuild them with ``python -m models.train``).

Exit code 0 when every requested model is present afterwards, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from models import registry


def _bar(name: str):
    def progress(fraction: float, message: str) -> None:
        filled = int(fraction * 30)
        sys.stdout.write(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {fraction:5.1%} {message[:60]:<60}")
        sys.stdout.flush()

    return progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.prefetch", description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="show what is present and exit")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(registry.REGISTRY))
    parser.add_argument("--verify", action="store_true", help="verify checksums of present files")
    args = parser.parse_args(argv)

    print(f"Weights folder: {registry.weights_dir()}")
    if args.list:
        for row in registry.status():
            mark = "present" if row["present"] else "missing"
            print(f"  {row['name']:<36} {mark:<8} {row['size_mb']:>7.1f} MB  {row['source']:<11} {row['file']}")
        print("('package': installed by pip with requirements.txt; 'trained': shipped in models/trained, "
              "rebuilt with python -m models.train)")
        return 0

    ok = True
    for name in args.only or list(registry.REGISTRY):
        spec = registry.get_spec(name)
        if spec.source in ("trained", "package"):  # shipped in models/trained, or installed by pip  # installed by pip with requirements.txt, never downloaded
            try:
                registry.ensure_weights(name)  # presence and SHA-256
                where = f"package {spec.pip_name}" if spec.source == "package" else "shipped in models/trained"
                print(f"{name}: present ({where}, checksum ok)")
            except registry.WeightsUnavailable as exc:
                print(f"{name}: FAILED — {exc}")
                ok = False
            continue
        if spec.is_present():
            check = registry.verify(spec) if args.verify else None
            note = {True: "checksum ok", False: "CHECKSUM MISMATCH", None: ""}[check]
            print(f"{name}: present {note}")
            ok &= check is not False
            continue
        print(f"{name}: downloading {spec.url}")
        try:
            registry.ensure_weights(name, progress=_bar(name), timeout=60)
            print(f"\n{name}: ok ({'checksum ok' if registry.verify(spec) else 'no published checksum'})")
        except (registry.WeightsUnavailable, registry.ChecksumMismatch) as exc:
            print(f"\n{name}: FAILED — {exc}")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
