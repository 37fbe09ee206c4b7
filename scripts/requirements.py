"""Which requirements file scripts/setup.sh installs: requirements.txt as it is, or, where
PyTorch's CPU wheel index cannot be reached, a copy that takes the same torch versions from
the index pip is configured with — said out loud, never silently.

    python scripts/requirements.py requirements-dev.txt .venv/req
        prints the file to install (the given one, or a rewritten copy under .venv/req/);
        notes on stderr say what was changed and why.

Standard library only: it runs before the virtual environment has anything in it.
"""

from __future__ import annotations

import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_INDEX_LINE = re.compile(r"^\s*--(extra-)?index-url\s+(\S+)\s*$")
_LOCAL_PIN = re.compile(r"^(\s*[A-Za-z0-9_.\-\[\]]+\s*==\s*[^\s;#+]+)\+[A-Za-z0-9_.]+(.*)$")
_INCLUDE = re.compile(r"^\s*-r\s+(\S+)\s*$")


def index_reachable(url: str = CPU_INDEX, timeout: float = 5.0) -> bool:
    """Whether ``url``'s torch page answers (a quick check, so pip never waits on retries)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/torch/", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def without_index(text: str, index: str = CPU_INDEX) -> tuple[str, list[str]]:
    """``text`` without the index line for ``index`` and without local version labels
    (``torch==2.14.1+cpu`` -> ``torch==2.14.1``): (new text, one note per change)."""
    out, notes = [], []
    for line in text.splitlines():
        m = _INDEX_LINE.match(line)
        if m and m.group(2).rstrip("/") == index.rstrip("/"):
            notes.append(f"dropped '{line.strip()}'")
            continue
        pin = _LOCAL_PIN.match(line)
        if pin:
            new = pin.group(1) + pin.group(2)
            notes.append(f"'{line.strip()}' -> '{new.strip()}' (same version, the build the configured index serves)")
            line = new
        out.append(line)
    return "\n".join(out) + "\n", notes


def offline_copy(req: Path, out_dir: Path) -> tuple[Path, list[str]]:
    """Rewrite ``req`` and the files it includes (``-r``) into ``out_dir``; returns the copy
    of ``req`` and the notes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    lines = []
    for line in req.read_text().splitlines():
        inc = _INCLUDE.match(line)
        if inc:
            child, child_notes = offline_copy(req.parent / inc.group(1), out_dir)
            notes += child_notes
            line = f"-r {child.name}"
        lines.append(line)
    text, own = without_index("\n".join(lines), CPU_INDEX)
    notes += [f"{req.name}: {n}" for n in own]
    target = out_dir / req.name
    target.write_text(text)
    return target, notes


def main(argv: list[str]) -> int:
    req, out_dir = Path(argv[1]), Path(argv[2])
    mentions = CPU_INDEX in req.read_text() or any(
        CPU_INDEX in (req.parent / m.group(1)).read_text()
        for m in map(_INCLUDE.match, req.read_text().splitlines()) if m)
    if not mentions or index_reachable():
        print(req)
        return 0
    target, notes = offline_copy(req, out_dir)
    print(f"!! PyTorch's CPU wheel index ({CPU_INDEX}) cannot be reached from here, so the CPU-only\n"
          f"!! pins cannot be installed as written. Installing {target} instead:", file=sys.stderr)
    for note in notes:
        print(f"!!   {note}", file=sys.stderr)
    print("!! Same torch and torchvision versions; which build (CPU or CUDA) depends on that index.",
          file=sys.stderr)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
